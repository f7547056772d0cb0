import { DEFAULT_DATABASE, isBuiltinRole, roleRank, type BuiltinRole, type OidcProvider, type User } from '../catalog/model.js';
import type { CatalogReader } from '../catalog/catalog.js';
import { PgError } from '../errors/pg-error.js';
import { acceptedUntil, stillAccepted, TokenRejected, type TokenPolicy, type VerifiedToken } from '../auth/jwt.js';
import type { JwksCache } from '../auth/jwks.js';
import type { AuthValues } from './auth-vars.js';
import { standInUser } from './stand-in.js';

/** A principal that came from a token: not a catalog user, but checked like one. */
export interface JwtPrincipal {
  user: User;
  auth: AuthValues;
}

const STANDARD = new Set(['iss', 'aud', 'exp', 'nbf', 'iat', 'jti']);

const text = (v: unknown): string | null => (v === undefined || v === null ? null : typeof v === 'string' ? v : JSON.stringify(v));

/**
 * Maps a token's claims to a principal and its $auth.* variables,
 * exactly as a verified token will be: the role from role_claim clamped to max_role (a
 * token never yields superuser), default_role when absent or unknown; the tenant from
 * tenant_claim, else the provider's; scopes from a space-separated string or an array.
 */
export function principalFromClaims(provider: OidcProvider, claims: Record<string, unknown>, view: CatalogReader): JwtPrincipal {
  const id = text(claims[provider.idClaim]);
  if (id === null) {
    throw new PgError('invalid_parameter_value', `the claims have no "${provider.idClaim}" (the provider's id_claim)`);
  }
  const asked = claims[provider.roleClaim];
  const candidates = (Array.isArray(asked) ? asked : [asked]).filter((r): r is BuiltinRole => typeof r === 'string' && isBuiltinRole(r));
  let role: BuiltinRole = candidates.length > 0 ? candidates.reduce((a, b) => (roleRank(b) > roleRank(a) ? b : a)) : provider.defaultRole;
  if (roleRank(role) > roleRank(provider.maxRole)) role = provider.maxRole;
  if (role === 'superuser') role = 'tenant_admin';

  let tenantId = provider.tenantId;
  if (provider.tenantClaim) {
    const t = text(claims[provider.tenantClaim]);
    const tenant = t === null ? undefined : /^\d+$/.test(t) ? view.tenantById(Number(t)) : view.tenantByName(t);
    if (t !== null && !tenant) throw new PgError('undefined_object', `tenant "${t}" from claim "${provider.tenantClaim}" does not exist`);
    if (tenant) tenantId = tenant.id;
  }
  const rawScopes = claims[provider.scopesClaim];
  const scopes = Array.isArray(rawScopes) ? rawScopes.map(String) : typeof rawScopes === 'string' ? rawScopes.split(/\s+/).filter(Boolean) : [];
  const username = text(claims.preferred_username) ?? id;
  const mapped = new Set([provider.idClaim, provider.roleClaim, provider.orgClaim, provider.scopesClaim, 'email', 'preferred_username', ...(provider.tenantClaim ? [provider.tenantClaim] : [])]);
  const other: Record<string, string> = {};
  for (const [k, v] of Object.entries(claims)) if (!mapped.has(k) && !STANDARD.has(k) && text(v) !== null) other[k] = text(v)!;

  const user = standInUser({ id: -1, name: username, tenantId, role });
  const defaults = view.databaseByName(tenantId, DEFAULT_DATABASE) ? [DEFAULT_DATABASE] : [];
  return {
    user,
    auth: {
      id,
      username,
      role,
      tenant_id: String(tenantId),
      org_id: text(claims[provider.orgClaim]),
      scopes,
      databases: defaults,
      roles: [role],
      email: text(claims.email),
      method: 'jwt',
      claims: other,
    },
  };
}

/**
 * A token login's principal, kept current for the life of its session (a
 * session acts with the privileges of the moment, and a dropped credential ends the
 * sessions that use it, as dropping an API key does). The session asks at each statement; the answer is what a login with the same
 * token would get now, for the provider it logged in through — without verifying the
 * signature again (stillAccepted). Cheap when nothing changed: past the expiry check, one
 * comparison of the providers table's version and of the provider's key set with the ones
 * of the last check. A refusal is a TokenRejected with the reason.
 *
 * A provider ALTER that keeps the token accepted maps its claims again: a lowered max_role
 * lowers the session's role at its next statement, as ALTER API KEY ... SET ROLE does for a
 * key's sessions. A mapping to another principal (other $auth.id, user name or tenant: the
 * id_claim, tenant or tenant_claim changed) ends the session instead: a session does not
 * change who it is.
 */
export class TokenLogin {
  private provider: OidcProvider;
  private checkedVersion: number | null = null;
  /** The key set of the last check: a JWKS URL's last fetched set, or for an inline JWKS the row that holds it. */
  private checkedKeys: object | null = null;
  /** When the token stops being accepted (its exp plus the clock skew). */
  readonly until: number;

  constructor(
    private readonly token: VerifiedToken,
    /** The provider the client named (startup user `jwt:<name>`), if it named one. */
    private readonly only: string | undefined,
    private principal: JwtPrincipal,
    policy: TokenPolicy,
  ) {
    this.provider = token.provider;
    this.until = acceptedUntil(token.claims, policy);
  }

  /** When the token's `exp` passes (for messages). */
  get expiry(): number {
    return (this.token.claims.exp as number) * 1000;
  }

  current(view: CatalogReader, jwks: JwksCache, now: number, policy: TokenPolicy): JwtPrincipal {
    if (now >= this.until) throw new TokenRejected('expired', 'token expired');
    const version = view.tables.oidcProviders.version;
    const keys = this.provider.jwksUrl ? jwks.knownKeys(this.provider.name, this.provider.jwksUrl) : this.provider;
    if (version !== null && version === this.checkedVersion && keys === this.checkedKeys) return this.principal;
    const p = stillAccepted(this.token, this.only, [...view.oidcProviders()], jwks, now, policy);
    if (p !== this.provider) {
      let next: JwtPrincipal;
      try {
        next = principalFromClaims(p, this.token.claims as Record<string, unknown>, view);
      } catch (err) {
        throw new TokenRejected('other', `claims of the token no longer map: ${(err as Error).message}`);
      }
      const was = this.principal;
      if (next.auth.id !== was.auth.id || next.user.name !== was.user.name || next.user.tenantId !== was.user.tenantId) {
        throw new TokenRejected('other', `the token now maps to another principal (provider "${p.name}" was altered)`);
      }
      this.principal = next;
      this.provider = p;
    }
    this.checkedVersion = version;
    this.checkedKeys = p.jwksUrl ? jwks.knownKeys(p.name, p.jwksUrl) : p;
    return this.principal;
  }
}
