import * as T from '../tokens.js';
import type { AdminCommand, ApiKeyChange, ApiKeyOption, KeyExpiry, Name, Value } from '../ast.js';
import { GrantRules } from './grants.js';

/** CREATE / ALTER / DROP API KEY. SHOW API KEYS is in session.ts. */
export class KeyRules extends GrantRules {
  protected createApiKey = this.RULE('createApiKey', (): AdminCommand => {
    this.CONSUME(T.Api);
    this.CONSUME(T.Key);
    const ifNotExists = this.SUBRULE(this.ifNotExists);
    const name = this.SUBRULE(this.name);
    const owner = this.SUBRULE(this.keyOwner);
    const options: ApiKeyOption[] = [];
    this.MANY(() => {
      const o = this.OR([
        {
          ALT: (): ApiKeyOption => {
            this.CONSUME(T.Role);
            return { kind: 'role', role: this.SUBRULE2(this.name) };
          },
        },
        {
          ALT: (): ApiKeyOption => {
            this.CONSUME(T.With);
            this.CONSUME(T.Databases);
            return { kind: 'databases', names: this.SUBRULE(this.databaseNameList) };
          },
        },
        {
          ALT: (): ApiKeyOption => {
            this.CONSUME(T.Scopes);
            return { kind: 'scopes', scopes: this.SUBRULE(this.stringList) };
          },
        },
        { ALT: (): ApiKeyOption => ({ kind: 'expires', expiry: this.SUBRULE(this.keyExpiry) }) },
      ]);
      this.ACTION(() => options.push(o));
    });
    return { type: 'CreateApiKey', name, ifNotExists, owner, options };
  });

  protected alterApiKey = this.RULE('alterApiKey', (): AdminCommand => {
    this.CONSUME(T.Api);
    this.CONSUME(T.Key);
    const name = this.SUBRULE(this.name);
    const owner = this.SUBRULE(this.keyOwner);
    const change = this.OR([
      {
        ALT: (): ApiKeyChange => {
          this.CONSUME(T.Rotate);
          let grace: Value | null = null;
          this.OPTION(() => {
            this.CONSUME(T.Grace);
            grace = this.SUBRULE(this.stringValue);
          });
          return { kind: 'rotate', grace };
        },
      },
      {
        ALT: (): ApiKeyChange => {
          this.CONSUME(T.Set);
          return this.OR2([
            {
              ALT: (): ApiKeyChange => {
                this.CONSUME(T.Databases);
                return { kind: 'databases', names: this.SUBRULE(this.databaseNameList) };
              },
            },
            {
              ALT: (): ApiKeyChange => {
                this.CONSUME(T.Role);
                return { kind: 'role', role: this.SUBRULE2(this.name) };
              },
            },
            { ALT: (): ApiKeyChange => ({ kind: 'expires', expiry: this.SUBRULE(this.keyExpiry) }) },
          ]);
        },
      },
    ]);
    return { type: 'AlterApiKey', name, owner, change };
  });

  protected dropApiKey = this.RULE('dropApiKey', (): AdminCommand => {
    this.CONSUME(T.Api);
    this.CONSUME(T.Key);
    const ifExists = this.SUBRULE(this.ifExists);
    const name = this.SUBRULE(this.name);
    const owner = this.SUBRULE(this.keyOwner);
    return { type: 'DropApiKey', name, ifExists, owner };
  });

  protected keyOwner = this.RULE('keyOwner', (): Name | null => {
    let owner: Name | null = null;
    this.OPTION(() => {
      this.CONSUME(T.For);
      owner = this.SUBRULE(this.name);
    });
    return owner;
  });

  /** EXPIRES AT 'timestamp' | EXPIRES IN 'interval' | EXPIRES NEVER (NULL). */
  protected keyExpiry = this.RULE('keyExpiry', (): KeyExpiry => {
    this.CONSUME(T.Expires);
    return this.OR([
      {
        ALT: (): KeyExpiry => {
          this.CONSUME(T.At);
          return { kind: 'at', value: this.SUBRULE(this.stringValue) };
        },
      },
      {
        ALT: (): KeyExpiry => {
          this.CONSUME(T.In);
          return { kind: 'in', value: this.SUBRULE2(this.stringValue) };
        },
      },
      { ALT: (): KeyExpiry => (this.CONSUME(T.Null), { kind: 'never' }) },
    ]);
  });

  /** ('a', 'b') or 'a', 'b'. */
  protected stringList = this.RULE('stringList', (): Value[] => {
    const out: Value[] = [];
    const item = () => {
      const v = this.SUBRULE(this.stringValue);
      this.ACTION(() => out.push(v));
    };
    this.OR([
      {
        ALT: () => {
          this.CONSUME(T.LParen);
          this.AT_LEAST_ONE_SEP({ SEP: T.Comma, DEF: item });
          this.CONSUME(T.RParen);
        },
      },
      { ALT: () => this.AT_LEAST_ONE_SEP2({ SEP: T.Comma, DEF: () => {
        const v = this.SUBRULE2(this.stringValue);
        this.ACTION(() => out.push(v));
      } }) },
    ]);
    return out;
  });
}
