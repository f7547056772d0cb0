import * as T from '../tokens.js';
import type { AdminCommand, Value } from '../ast.js';
import { RlsRules } from './rls.js';

/** The built-in token issuer: ALTER TOKEN ISSUER. SHOW TOKEN ISSUER is in session.ts. */
export class IssuerRules extends RlsRules {
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
