import * as T from '../tokens.js';
import type { AdminCommand, Expiry, GrantItem, GrantTarget, Name, Value } from '../ast.js';
import { TenantRules } from './tenants.js';

/** CREATE / DROP ROLE, GRANT and REVOKE in every form. */
export class GrantRules extends TenantRules {
  protected createRole = this.RULE('createRole', (): AdminCommand => {
    this.CONSUME(T.Role);
    const ifNotExists = this.SUBRULE(this.ifNotExists);
    const name = this.SUBRULE(this.name);
    const tenant = this.SUBRULE(this.inTenant);
    return { type: 'CreateRole', name, ifNotExists, tenant };
  });

  protected dropRole = this.RULE('dropRole', (): AdminCommand => {
    this.CONSUME(T.Role);
    const ifExists = this.SUBRULE(this.ifExists);
    const name = this.SUBRULE(this.name);
    const tenant = this.SUBRULE(this.inTenant);
    const cascade = this.SUBRULE(this.dropBehavior);
    return { type: 'DropRole', name, ifExists, tenant, cascade };
  });

  /** GRANT: of scopes (GRANT SCOPE 'x' TO ...), or of privileges and roles. */
  protected grantStmt = this.RULE('grantStmt', (): AdminCommand => {
    this.CONSUME(T.Grant);
    return this.OR([
      {
        // SCOPE followed by a string (or a list of them): never a role named "scope",
        // which is followed by a comma, ON or TO.
        ALT: (): AdminCommand => {
          this.CONSUME(T.Scope);
          const scopes = this.SUBRULE(this.scopeList);
          this.CONSUME(T.To);
          const grantees = this.SUBRULE(this.nameList);
          const expiry = this.SUBRULE(this.grantExpiry);
          return { type: 'GrantScope', scopes, grantees, expiry };
        },
      },
      {
        ALT: (): AdminCommand => {
          const items = this.SUBRULE(this.grantItems);
          const target = this.SUBRULE(this.grantTarget);
          this.CONSUME2(T.To);
          const grantees = this.SUBRULE2(this.nameList);
          const expiry = this.SUBRULE2(this.grantExpiry);
          return { type: 'Grant', items, target, grantees, expiry };
        },
      },
    ]);
  });

  protected revokeStmt = this.RULE('revokeStmt', (): AdminCommand => {
    this.CONSUME(T.Revoke);
    return this.OR([
      {
        ALT: (): AdminCommand => {
          this.CONSUME(T.Token);
          return { type: 'RevokeToken', jti: this.SUBRULE(this.stringValue) };
        },
      },
      {
        ALT: (): AdminCommand => {
          this.CONSUME(T.Tokens);
          this.CONSUME(T.For);
          return { type: 'RevokeTokens', owner: this.SUBRULE(this.name) };
        },
      },
      {
        ALT: (): AdminCommand => {
          this.CONSUME(T.Scope);
          const scopes = this.SUBRULE(this.scopeList);
          this.CONSUME(T.From);
          const grantees = this.SUBRULE(this.nameList);
          return { type: 'RevokeScope', scopes, grantees };
        },
      },
      {
        ALT: (): AdminCommand => {
          const items = this.SUBRULE(this.grantItems);
          const target = this.SUBRULE(this.grantTarget);
          this.CONSUME2(T.From);
          const grantees = this.SUBRULE2(this.nameList);
          return { type: 'Revoke', items, target, grantees };
        },
      },
    ]);
  });

  /** `VALID UNTIL 'timestamp' | FOR INTERVAL 'interval'`, or nothing (null). */
  private grantExpiry = this.RULE('grantExpiry', (): Expiry => {
    let expiry: Expiry = null;
    this.OPTION(() => {
      expiry = this.OR([
        {
          ALT: (): Expiry => {
            this.CONSUME(T.Valid);
            this.CONSUME(T.Until);
            return { kind: 'until', value: this.SUBRULE(this.stringValue) };
          },
        },
        {
          ALT: (): Expiry => {
            this.CONSUME(T.For);
            this.CONSUME(T.Interval);
            return { kind: 'interval', value: this.SUBRULE2(this.stringValue) };
          },
        },
      ]);
    });
    return expiry;
  });

  /** Scope strings (or `$n`), with or without parentheses (lists take either). */
  private scopeList = this.RULE('scopeList', (): Value[] => {
    const out: Value[] = [];
    this.OR([
      {
        ALT: () => {
          this.CONSUME(T.LParen);
          this.AT_LEAST_ONE_SEP({
            SEP: T.Comma,
            DEF: () => {
              const v = this.SUBRULE(this.stringValue);
              this.ACTION(() => out.push(v));
            },
          });
          this.CONSUME(T.RParen);
        },
      },
      {
        ALT: () =>
          this.AT_LEAST_ONE_SEP2({
            SEP: T.Comma,
            DEF: () => {
              const v = this.SUBRULE2(this.stringValue);
              this.ACTION(() => out.push(v));
            },
          }),
      },
    ]);
    return out;
  });

  private grantItems = this.RULE('grantItems', (): GrantItem[] => {
    const items: GrantItem[] = [];
    this.AT_LEAST_ONE_SEP({
      SEP: T.Comma,
      DEF: () => {
        const it = this.SUBRULE(this.grantItem);
        this.ACTION(() => items.push(it));
      },
    });
    return items;
  });

  /** ALL [PRIVILEGES], SELECT and CREATE (reserved words), or any name. */
  private grantItem = this.RULE('grantItem', (): GrantItem =>
    this.OR([
      {
        ALT: (): GrantItem => {
          const t = this.CONSUME(T.All);
          this.OPTION(() => this.CONSUME(T.Privileges));
          return { word: 'all', quoted: false, position: this.pos(t) };
        },
      },
      { ALT: (): GrantItem => ({ word: 'select', quoted: false, position: this.pos(this.CONSUME(T.Select)) }) },
      { ALT: (): GrantItem => ({ word: 'create', quoted: false, position: this.pos(this.CONSUME(T.Create)) }) },
      {
        ALT: (): GrantItem => {
          const t = this.LA(1);
          const n = this.SUBRULE(this.name);
          return { word: n.value, quoted: t.tokenType === T.QuotedIdentifier || t.image.startsWith("'") || t.image.startsWith('$'), position: n.position };
        },
      },
    ]),
  );

  private grantTarget = this.RULE('grantTarget', (): GrantTarget => {
    let target: GrantTarget = null;
    this.OPTION(() => {
      this.CONSUME(T.On);
      target = this.OR([
        {
          ALT: (): GrantTarget => {
            this.CONSUME(T.Database);
            return { kind: 'databases', names: this.SUBRULE(this.databaseNameList) };
          },
        },
        {
          ALT: (): GrantTarget => {
            this.OPTION2(() => this.CONSUME(T.Collection));
            const database: Name = this.SUBRULE(this.databaseName);
            this.CONSUME(T.Dot);
            const collection: Name = this.SUBRULE2(this.name);
            return { kind: 'collection', database, collection };
          },
        },
      ]);
    });
    return target;
  });
}
