import { decodeJwt, decodeProtectedHeader, importJWK, jwtVerify, type JWTPayload } from 'jose';

type VerifyKey = Awaited<ReturnType<typeof importJWK>>;
import type { OidcProvider } from '../catalog/model.js';
import { JwksError, publicKeys, type Jwk, type JwksCache } from './jwks.js';
import type { Refusal, RefusalCode } from './refusal.js';

/**
 * OIDC token verification: with signing.ts (the built-in issuer's own tokens), the only
 * module that talks to jose. A token is routed to the
 * provider whose issuer and audience both match, verified with that provider's
 * allowed algorithms only (never `none`, never HS* — an HMAC "signed" with a public key),
 * its `exp` required, `nbf` and `iat` checked with a clock skew, and its size capped.
 */
export interface TokenPolicy {
  clockSkewSeconds: number;
  maxTokenBytes: number;
}

export const DEFAULT_TOKEN_POLICY: TokenPolicy = { clockSkewSeconds: 60, maxTokenBytes: 8 * 1024 };

/** A refused token, with its code and real reason (recorded; the client only hears "failed"). */
export class TokenRejected extends Error implements Refusal {
  constructor(
    readonly code: RefusalCode,
    readonly reason: string,
  ) {
    super(reason);
  }
}

export interface VerifiedToken {
  /** The provider row that verified it. */
  provider: OidcProvider;
  claims: JWTPayload;
  /** Its header's algorithm and key id, and the key its signature was checked with. */
  alg: string;
  kid: string | undefined;
  jwk: Jwk;
}

/**
 * Tokens already verified, by their text: a service presents the same token on every
 * request until it expires, and an ECDSA or RSA verification costs far more than the rest
 * of a request. A hit is good only while everything the verification depended on still
 * holds: the clock (exp, nbf, iat); the routing, run again over the current providers with
 * the provider the client named now, landing on the very row that verified it (a row is
 * replaced by every ALTER, so a disabled, altered, dropped or re-created provider misses,
 * and so does a token another provider's creation made ambiguous); and the key that
 * verified it, still in that provider's current key set (a JWKS re-fetch without it misses).
 */
const MAX_VERIFIED = 10_000;
const verified = new Map<string, VerifiedToken>();

function remember(token: string, v: VerifiedToken): void {
  if (verified.size >= MAX_VERIFIED) verified.delete(verified.keys().next().value!);
  verified.set(token, v);
}

function timeClaimsOk(c: JWTPayload, now: number, skewS: number): boolean {
  const t = now / 1000;
  return typeof c.exp === 'number' && c.exp > t - skewS && (typeof c.nbf !== 'number' || c.nbf <= t + skewS) && (typeof c.iat !== 'number' || c.iat <= t + skewS);
}

/** Inline JWKS of a provider row, parsed once per row. */
const inlineKeys = new WeakMap<OidcProvider, Jwk[]>();
function inlineKeysOf(p: OidcProvider): Jwk[] {
  let keys = inlineKeys.get(p);
  if (!keys) inlineKeys.set(p, (keys = publicKeys(JSON.parse(p.jwks ?? '{"keys":[]}'))));
  return keys;
}

/** Does this look like a JWT at all (three base64url parts)? Decides credential kinds. */
export const looksLikeJwt = (s: string): boolean => /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/.test(s);

const imported = new WeakMap<Jwk, Map<string, Promise<VerifyKey>>>();

function importKey(jwk: Jwk, alg: string): Promise<VerifyKey> {
  let byAlg = imported.get(jwk);
  if (!byAlg) imported.set(jwk, (byAlg = new Map()));
  let k = byAlg.get(alg);
  if (!k) {
    k = importJWK(jwk as Parameters<typeof importJWK>[0], alg);
    byAlg.set(alg, k);
  }
  return k;
}

const KTY_OF: Record<string, string> = { ES: 'EC', RS: 'RSA', PS: 'RSA', Ed: 'OKP' };

/**
 * Verifies `token`. `only`: the provider the client named (startup user `jwt:<name>`); a
 * token of another provider is refused even when it would verify there.
 */
export async function verifyJwt(
  token: string,
  providers: OidcProvider[],
  jwks: JwksCache,
  now: number,
  policy: TokenPolicy = DEFAULT_TOKEN_POLICY,
  only?: string,
): Promise<VerifiedToken> {
  if (Buffer.byteLength(token) > policy.maxTokenBytes) throw new TokenRejected('larger_than', `token larger than ${policy.maxTokenBytes} bytes`);
  const hit = verified.get(token);
  if (hit) {
    const p = hit.provider;
    const keys = routesTo(providers, hit.claims, only) === p ? (p.jwksUrl ? jwks.cachedKeys(p.name, p.jwksUrl, now) : inlineKeysOf(p)) : null;
    if (keys?.includes(hit.jwk) && timeClaimsOk(hit.claims, now, policy.clockSkewSeconds)) return hit;
    verified.delete(token); // verified again below, and refused with the real reason if it now fails
  }
  let alg: string | undefined;
  let kid: string | undefined;
  let unverified: JWTPayload;
  try {
    ({ alg, kid } = decodeProtectedHeader(token));
    unverified = decodeJwt(token);
  } catch {
    throw new TokenRejected('malformed', 'malformed token');
  }
  if (!alg || alg === 'none' || alg.startsWith('HS')) throw new TokenRejected('algorithm', `algorithm "${alg ?? 'none'}" is never accepted`);

  const provider = route(providers, unverified, only);
  if (!provider.algorithms.includes(alg)) throw new TokenRejected('algorithm', `algorithm ${alg} is not allowed by provider "${provider.name}"`);

  let keys: Jwk[];
  try {
    keys = provider.jwksUrl ? await jwks.keysFor(provider.name, provider.jwksUrl, kid) : inlineKeysOf(provider);
  } catch (err) {
    throw new TokenRejected('jwks', err instanceof JwksError ? err.message : `JWKS of provider "${provider.name}" is not usable`);
  }
  const candidates = keys.filter((k) => usableFor(k, alg, kid));
  if (candidates.length === 0) throw (kid === undefined ? new TokenRejected('jwks', `no ${alg} key in the provider's JWKS`) : new TokenRejected('unknown_kid', `unknown kid "${kid}"`));

  let lastError: unknown = null;
  for (const jwk of candidates) {
    let key: VerifyKey;
    try {
      key = await importKey(jwk, alg);
    } catch {
      lastError = new TokenRejected('other', `key "${jwk.kid ?? ''}" does not fit ${alg}`);
      continue;
    }
    try {
      const { payload } = await jwtVerify(token, key, {
        issuer: provider.issuer,
        ...(provider.audience === '*' ? {} : { audience: provider.audience }),
        algorithms: provider.algorithms,
        clockTolerance: policy.clockSkewSeconds,
        currentDate: new Date(now),
        requiredClaims: ['exp'],
      });
      if (typeof payload.iat === 'number' && payload.iat * 1000 > now + policy.clockSkewSeconds * 1000) {
        throw new TokenRejected('issued_in_the_future', 'token issued in the future (iat)');
      }
      const v: VerifiedToken = { provider, claims: payload, alg, kid, jwk };
      remember(token, v);
      return v;
    } catch (err) {
      lastError = err;
      if ((err as { code?: string }).code !== 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED') break;
    }
  }
  throw lastError instanceof TokenRejected ? lastError : joseRefusal(lastError);
}

/**
 * The provider a token is for: the enabled one whose issuer and audience both match; `only`
 * (the provider the client named) must be it. Two providers never share an issuer with the
 * same audience or with audience '*' (CREATE and ALTER refuse it), but a token may carry
 * several audiences, and a clash may reach the catalog past that check (two concurrent
 * transactions, a catalog from an older version): a token matching more than one provider
 * is refused unless the client named one, rather than given the tenant and role of
 * whichever sorts first.
 */
function route(providers: OidcProvider[], claims: JWTPayload, only: string | undefined): OidcProvider {
  const enabled = providers.filter((p) => p.enabled);
  if (only !== undefined) {
    const p = enabled.find((x) => x.name === only);
    if (!p) throw new TokenRejected('no_enabled_oidc_provider', `no enabled OIDC provider "${only}"`);
    return p; // verification then fails with the real reason if the token is another's
  }
  const auds = claims.aud === undefined ? [] : Array.isArray(claims.aud) ? claims.aud : [claims.aud];
  const sameIssuer = enabled.filter((p) => p.issuer === claims.iss);
  const matches = sameIssuer.filter((p) => p.audience === '*' || auds.includes(p.audience));
  if (matches.length > 1) {
    throw new TokenRejected('audience', `ambiguous audience: the token matches OIDC providers ${matches.map((p) => `"${p.name}"`).join(', ')}; name one as user jwt:<provider>`);
  }
  if (matches[0]) return matches[0];
  if (sameIssuer[0]) return sameIssuer[0]; // verification reports the audience problem
  throw new TokenRejected('issuer', `no OIDC provider has issuer "${String(claims.iss ?? '')}"`);
}

/**
 * When a verified token stops being accepted: its `exp` plus the clock skew, the same
 * bound verification applies (a token is accepted while exp > now - skew).
 */
export function acceptedUntil(claims: JWTPayload, policy: TokenPolicy): number {
  return ((claims.exp as number) + policy.clockSkewSeconds) * 1000;
}

/**
 * Would a token verified earlier be accepted now? The provider row it would be accepted by,
 * or TokenRejected with the reason. Every check verifyJwt makes, against the providers and
 * key sets of now, except the signature itself: that depends only on the token and the key
 * it was checked with, so the key must still be one the provider offers (a key with the
 * same material and kid, usable for the token's algorithm). Never fetches: a JWKS URL's key
 * set is the last one had from that URL, however old (a set fetched again without the key
 * refuses the token; a provider whose jwks_url changed and has no set from the new URL yet
 * refuses it — fail closed). `only`: the provider the client named at login.
 */
export function stillAccepted(t: VerifiedToken, only: string | undefined, providers: OidcProvider[], jwks: JwksCache, now: number, policy: TokenPolicy): OidcProvider {
  const c = t.claims;
  if (!timeClaimsOk(c, now, policy.clockSkewSeconds)) throw new TokenRejected('expired', 'token expired');
  const p = providers.find((x) => x.id === t.provider.id);
  if (!p) throw new TokenRejected('other', `OIDC provider "${t.provider.name}" was dropped`);
  if (!p.enabled) throw new TokenRejected('disabled', `OIDC provider "${p.name}" is disabled`);
  if (route(providers, c, only) !== p) throw new TokenRejected('other', `the token is routed to another OIDC provider than "${p.name}"`);
  // jose's checks, as verifyJwt asks for them.
  if (c.iss !== p.issuer) throw new TokenRejected('issuer', 'wrong issuer');
  const auds = c.aud === undefined ? [] : Array.isArray(c.aud) ? c.aud : [c.aud];
  if (p.audience !== '*' && !auds.includes(p.audience)) throw new TokenRejected('audience', 'wrong audience');
  if (!p.algorithms.includes(t.alg)) throw new TokenRejected('algorithm', `algorithm ${t.alg} is not allowed by provider "${p.name}"`);
  const keys = p.jwksUrl ? jwks.knownKeys(p.name, p.jwksUrl) : inlineKeysOf(p);
  if (!keys) throw new TokenRejected('jwks', `no JWKS of provider "${p.name}" from its current jwks_url yet`);
  if (!keys.some((k) => k === t.jwk || (usableFor(k, t.alg, t.kid) && sameKey(k, t.jwk)))) {
    throw new TokenRejected('jwks', `key "${t.jwk.kid ?? ''}" is no longer in the JWKS of provider "${p.name}"`);
  }
  return p;
}

/** A key verifyJwt would try for a token with this algorithm and kid. */
const usableFor = (k: Jwk, alg: string, kid: string | undefined) =>
  (kid === undefined || k.kid === kid) && k.kty === KTY_OF[alg.slice(0, 2)] && (k.alg === undefined || k.alg === alg) && k.use !== 'enc';

/** The public key material of a JWK (EC, RSA, OKP): the same material checks the same signatures. */
const MATERIAL = ['kty', 'crv', 'x', 'y', 'n', 'e'] as const;
const sameKey = (a: Jwk, b: Jwk) => MATERIAL.every((f) => a[f] === b[f]);

/** Where `route` sends verified claims now, or null where it refuses them. */
function routesTo(providers: OidcProvider[], claims: JWTPayload, only: string | undefined): OidcProvider | null {
  try {
    return route(providers, claims, only);
  } catch (err) {
    if (err instanceof TokenRejected) return null;
    throw err;
  }
}

/** jose's error codes (and the claim a claim check names) to ours: one table. */
function joseRefusal(err: unknown): TokenRejected {
  const e = err as { code?: string; claim?: string; reason?: string; message?: string };
  switch (e?.code) {
    case 'ERR_JWT_EXPIRED':
      return new TokenRejected('expired', 'token expired');
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED':
      if (e.claim === 'nbf') return new TokenRejected('not_yet_valid', 'token not yet valid (nbf)');
      if (e.claim === 'iss') return new TokenRejected('issuer', 'wrong issuer');
      if (e.claim === 'aud') return new TokenRejected('audience', e.reason === 'missing' ? 'missing audience (aud)' : 'wrong audience');
      if (e.claim === 'exp') return new TokenRejected('other', 'missing expiry (exp)');
      return new TokenRejected('other', `claim ${e.claim ?? '?'} invalid: ${e.message ?? ''}`);
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
      return new TokenRejected('signature', 'signature verification failed');
    case 'ERR_JOSE_ALG_NOT_ALLOWED':
      return new TokenRejected('algorithm', 'algorithm not allowed');
    case 'ERR_JWS_INVALID':
    case 'ERR_JWT_INVALID':
      return new TokenRejected('malformed', 'malformed token');
    default:
      return new TokenRejected('other', `token refused: ${e?.message ?? String(err)}`);
  }
}
