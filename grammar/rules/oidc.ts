import * as T from '../tokens.js';
import type { AdminCommand, ProviderOption, TenantRef, Value } from '../ast.js';
import { ServiceAccountRules } from './service-accounts.js';

/** CREATE / ALTER / DROP OIDC PROVIDER; CREATE takes WITH (...) or ISSUER '...' JWKS_URI '...'. */
export class OidcRules extends ServiceAccountRules {
  protected createOidcProvider = this.RULE('createOidcProvider', (): AdminCommand => {
    this.CONSUME(T.Oidc);
    this.CONSUME(T.Provider);
    const ifNotExists = this.SUBRULE(this.ifNotExists);
    const name = this.SUBRULE(this.name);
    let tenant: TenantRef | null = null;
    const options = this.OR([
      {
        ALT: () => {
          this.CONSUME(T.With);
          return this.SUBRULE(this.keyValueList);
        },
      },
      {
        // ISSUER '...' JWKS_URI '...' [AUDIENCE '...'] [TENANT t]
        ALT: () => {
          const out: ProviderOption[] = [];
          const opt = (key: string, t: { startOffset: number }, value: Value) => out.push({ key: { value: key, position: this.pos(t as never) }, value });
          const i = this.CONSUME(T.Issuer);
          const issuer = this.SUBRULE(this.stringValue);
          this.ACTION(() => opt('issuer', i, issuer));
          const j = this.CONSUME(T.JwksUri);
          const jwks = this.SUBRULE2(this.stringValue);
          this.ACTION(() => opt('jwks_url', j, jwks));
          this.OPTION(() => {
            const a = this.CONSUME(T.Audience);
            const audience = this.SUBRULE3(this.stringValue);
            this.ACTION(() => opt('audience', a, audience));
          });
          this.OPTION2(() => {
            this.CONSUME(T.Tenant);
            tenant = this.SUBRULE(this.tenantRef);
          });
          return out;
        },
      },
    ]);
    return { type: 'CreateOidcProvider', name, ifNotExists, options, tenant };
  });

  protected alterOidcProvider = this.RULE('alterOidcProvider', (): AdminCommand => {
    this.CONSUME(T.Oidc);
    this.CONSUME(T.Provider);
    const name = this.SUBRULE(this.name);
    this.CONSUME(T.Set);
    return { type: 'AlterOidcProvider', name, options: this.SUBRULE(this.keyValueList) };
  });

  protected dropOidcProvider = this.RULE('dropOidcProvider', (): AdminCommand => {
    this.CONSUME(T.Oidc);
    this.CONSUME(T.Provider);
    const ifExists = this.SUBRULE(this.ifExists);
    const name = this.SUBRULE(this.name);
    return { type: 'DropOidcProvider', name, ifExists };
  });
}
