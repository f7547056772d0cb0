import * as T from '../tokens.js';
import type { AdminCommand, ApiKeyOption, Value } from '../ast.js';
import { RlsRules } from './rls.js';

/**
 * The built-in token issuer: CREATE TOKEN, ALTER TOKEN ISSUER. SHOW TOKEN ISSUER and SHOW
 * TOKENS are in session.ts, REVOKE TOKEN[S] in grants.ts (with REVOKE).
 */
export class IssuerRules extends RlsRules {
  /** CREATE TOKEN FOR name [ROLE r] [WITH DATABASES (...)] [SCOPES (...)] [EXPIRES ...], options in any order. */
  protected createToken = this.RULE('createToken', (): AdminCommand => {
    this.CONSUME(T.Token);
    this.CONSUME(T.For);
    const owner = this.SUBRULE(this.name);
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
    return { type: 'CreateToken', owner, options };
  });

  /** ALTER TOKEN ISSUER ROTATE KEY [GRACE 'interval']. */
  protected alterTokenIssuer = this.RULE('alterTokenIssuer', (): AdminCommand => {
    this.CONSUME(T.Token);
    this.CONSUME(T.Issuer);
    this.CONSUME(T.Rotate);
    this.CONSUME(T.Key);
    let grace: Value | null = null;
    this.OPTION(() => {
      this.CONSUME(T.Grace);
      grace = this.SUBRULE(this.stringValue);
    });
    return { type: 'AlterTokenIssuer', grace };
  });
}
