import { DEFAULT_DATABASE, isBuiltinRole, roleRank, type BuiltinRole, type OidcProvider, type User } from '../catalog/model.js';
import type { CatalogReader } from '../catalog/catalog.js';
import { PgError } from '../errors/pg-error.js';
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
 * Maps a token's claims to a principal and its $auth.* variables (SPEC §5, JWT column),
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
