import { timingSafeEqual } from 'node:crypto';
import { hashKey, parseKey } from '../auth/apikey.js';
import { TokenRejected, verifyJwt } from '../auth/jwt.js';
import type { Refusal, RefusalCode } from '../auth/refusal.js';
import type { CatalogReader } from '../catalog/catalog.js';
import { roleRank, type ApiKey, type BuiltinRole, type User } from '../catalog/model.js';
import { passwordAuthValues, type AuthValues } from './auth-vars.js';
import type { Engine } from './engine.js';
import { keyScopes } from './effective.js';
import { principalFromClaims, TokenLogin, type JwtPrincipal } from './jwt-principal.js';
import type { JwksCache } from '../auth/jwks.js';
import type { TokenPolicy } from '../auth/jwt.js';
import { standInUser } from './stand-in.js';
import { ISSUER_PROVIDER } from './issuer.js';

/**
 * Credentials other than passwords, turned into the principal a session acts as (with
 * its $auth.* variables): an API key (its owner, narrowed by the key's role and databases) or an OIDC token.
 * pgwire and HTTP both come through here, so a credential means the same on either.
 */
export type LoginMethod = 'password' | 'api_key' | 'jwt' | 'certificate' | 'refresh_token';

/** A refused credential, with its code and real reason: recorded, never shown to the client. */
export class CredentialRefused extends Error implements Refusal {
  constructor(
    readonly code: RefusalCode,
    readonly reason: string,
  ) {
    super(reason);
  }
}

export interface Principal {
  /** Who statements run as: a catalog user, or a stand-in carrying the credential's limits. */
  user: User;
  method: LoginMethod;
  /** The API key behind the login (re-checked at every statement: dropping it ends access). */
  apiKeyId: number | null;
  auth: AuthValues;
  /** The earliest of the credential's and the account's expiry (for the login NOTICE). */
  expiresAt: { what: string; at: number } | null;
  /** The token behind a token login (re-checked at every statement, as a key is). */
  token?: TokenSession;
}

/**
 * A token login as its session re-checks it: an OIDC provider's token (TokenLogin) or one
 * portcullis issued (IssuedTokenLogin). `current` answers the principal as of now, or
 * throws TokenRejected once a login with the token would be refused.
 */
export interface TokenSession {
  /** When the token stops being accepted (its exp plus the clock skew). */
  readonly until: number;
  /** When its `exp` passes (for messages). */
  readonly expiry: number;
  current(view: CatalogReader, jwks: JwksCache, now: number, policy: TokenPolicy): JwtPrincipal;
}

const narrower = (a: BuiltinRole, b: BuiltinRole | null): BuiltinRole => (b !== null && roleRank(b) < roleRank(a) ? b : a);

function earliest(...xs: ({ what: string; at: number } | null)[]): { what: string; at: number } | null {
  return xs.reduce<{ what: string; at: number } | null>((m, x) => (x && (!m || x.at < m.at) ? x : m), null);
}

/**
 * The principal an API key yields now, or why it yields none: expired, owner dropped,
 * disabled (NOLOGIN) or expired. The key's role and database set narrow the owner's.
 */
export function keyPrincipal(key: ApiKey, view: CatalogReader, now: number): Principal {
  if (key.expiresAt !== null && key.expiresAt <= now) throw new CredentialRefused('expired', `API key ${key.keyId} expired`);
  let actor: User;
  let accountExpiry: number | null = null;
  if (key.ownerKind === 'user') {
    const owner = view.userById(key.ownerId);
    if (!owner) throw new CredentialRefused('no_longer_exists', `the owner of API key ${key.keyId} no longer exists`);
    if (!owner.login) throw new CredentialRefused('disabled', `the owner of API key ${key.keyId} is disabled (NOLOGIN)`);
    if (owner.validUntil !== null && owner.validUntil <= now) throw new CredentialRefused('expired', `the owner of API key ${key.keyId} has expired (VALID UNTIL)`);
    accountExpiry = owner.validUntil;
    // Always a cap, if only for the scopes: a key carries its own, never its owner's.
    actor = { ...owner, limits: { role: key.role ?? 'superuser', databaseIds: key.databaseIds, exact: false, scopes: keyScopes(key, view, now) } };
  } else {
    const sa = view.serviceAccountById(key.ownerId);
    if (!sa) throw new CredentialRefused('no_longer_exists', `the owner of API key ${key.keyId} no longer exists`);
    const ids = key.databaseIds ? key.databaseIds.filter((id) => sa.databaseIds.includes(id)) : sa.databaseIds;
    const role = narrower(sa.role, key.role);
    actor = standInUser({
      id: sa.id,
      name: sa.name,
      tenantId: sa.tenantId,
      role,
      createdAt: sa.createdAt,
      updatedAt: sa.createdAt,
      createdBy: sa.createdBy,
      limits: { role, databaseIds: ids, exact: true, scopes: keyScopes(key, view, now) },
    });
  }
  const auth = passwordAuthValues(actor, view, 'api_key', now);
  return {
    user: actor,
    method: 'api_key',
    apiKeyId: key.id,
    auth,
    expiresAt: earliest(
      key.expiresAt === null ? null : { what: 'API key', at: key.expiresAt },
      accountExpiry === null ? null : { what: 'account', at: accountExpiry },
    ),
  };
}

/**
 * A presented API key (HTTP): well-formed, known, and its hash equal — compared in
 * constant time — to the current secret's, or to the previous one's during its grace.
 */
export function keyFromText(text: string, view: CatalogReader, now: number): { key: ApiKey; previous: boolean } {
  const parsed = parseKey(text);
  if (!parsed) throw new CredentialRefused('not_a_well-formed', 'not a well-formed API key');
  const key = view.apiKeyByKeyId(parsed.keyId);
  if (!key) throw new CredentialRefused('unknown_api_key', `unknown API key ${parsed.keyId}`);
  const h = Buffer.from(hashKey(text), 'hex');
  const current = timingSafeEqual(h, Buffer.from(key.secret.hash, 'hex'));
  const previous = key.previous !== null && timingSafeEqual(h, Buffer.from(key.previous.hash, 'hex'));
  if (current) return { key, previous: false };
  if (previous && key.previous!.validUntil > now) return { key, previous: true };
  throw previous ? new CredentialRefused('grace', `API key ${key.keyId}: the rotated-out secret's grace period is over`) : new CredentialRefused('wrong_secret', `wrong secret for API key ${key.keyId}`);
}

/**
 * The principal an OIDC token yields: verified (jwt.ts), then mapped by its provider's
 * claim mapping (jwt-principal.ts), roles clamped, never superuser. `only`: the provider
 * the client named (startup user `jwt:<name>`).
 */
export async function tokenPrincipal(engine: Engine, token: string, only?: string): Promise<Principal> {
  const view = engine.catalog;
  const now = engine.clock();
  // The built-in provider: tokens portcullis issued itself (issuer.ts), named as
  // jwt:portcullis or recognised by their issuer.
  if (only === ISSUER_PROVIDER || (only === undefined && engine.issuer.issuedHere(token))) {
    try {
      return (await engine.issuer.principalOf(token)).principal;
    } catch (err) {
      if (err instanceof CredentialRefused) throw err;
      throw err instanceof TokenRejected ? new CredentialRefused(err.code, err.reason) : new CredentialRefused('other', `token refused: ${(err as Error).message}`);
    }
  }
  let verified;
  try {
    verified = await verifyJwt(token, [...view.oidcProviders()], engine.jwks, now, engine.tokenPolicy, only);
  } catch (err) {
    throw err instanceof TokenRejected ? new CredentialRefused(err.code, err.reason) : new CredentialRefused('other', `token refused: ${(err as Error).message}`);
  }
  let p;
  try {
    p = principalFromClaims(verified.provider, verified.claims as Record<string, unknown>, engine.catalog);
  } catch (err) {
    throw new CredentialRefused('other', `claims of a token from provider "${verified.provider.name}" do not map: ${(err as Error).message}`);
  }
  // Tokens are short-lived by design: their expiry is no news worth a NOTICE.
  return { user: p.user, method: 'jwt', apiKeyId: null, auth: p.auth, expiresAt: null, token: new TokenLogin(verified, only, p, engine.tokenPolicy) };
}

/** The principal of a password login (the user itself). */
export function passwordPrincipal(user: User, view: CatalogReader, now: number): Principal {
  return {
    user,
    method: 'password',
    apiKeyId: null,
    auth: passwordAuthValues(user, view, 'password', now),
    expiresAt: user.validUntil === null ? null : { what: 'password', at: user.validUntil },
  };
}

/** A NOTICE at login when the password, key or account expires within 7 days. */
export function expiryNotice(p: Principal, now: number): string | null {
  const e = p.expiresAt;
  if (!e || e.at - now > 7 * 24 * 3600 * 1000) return null;
  const days = Math.max(0, (e.at - now) / (24 * 3600 * 1000));
  const when = days < 1 ? `in ${Math.max(1, Math.round((e.at - now) / 3600000))} hour(s)` : `in ${Math.floor(days)} day(s)`;
  return `your ${e.what} expires ${when}, at ${new Date(e.at).toISOString()}`;
}
