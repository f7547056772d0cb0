import { pbkdf2, randomBytes, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';
import { decodeJwt, type JWK, type JWTPayload } from 'jose';
import { TokenRejected, type TokenPolicy } from '../auth/jwt.js';
import type { JwksCache } from '../auth/jwks.js';
import { saslprep } from '../auth/saslprep.js';
import { digest, ISSUER_ALG, ISSUER_AUDIENCE, issuedClaimsAnyTime, newSigningKey, openPrivateKey, sealPrivateKey, signAccessToken, verifyIssued } from '../auth/signing.js';
import { keysFromSaltedPassword, parseVerifier } from '../auth/verifier.js';
import type { CatalogReader } from '../catalog/catalog.js';
import { roleRank, type BuiltinRole, type IssuedToken, type Mutation, type SigningKey, type User } from '../catalog/model.js';
import { CatalogTransaction } from '../catalog/transaction.js';
import { PgError } from '../errors/pg-error.js';
import type { AuthValues } from './auth-vars.js';
import { CredentialRefused, keyFromText, keyPrincipal, passwordPrincipal, type Principal } from './credentials.js';
import { effectiveOf, scopesOf } from './effective.js';
import { passwordAuthValues } from './auth-vars.js';
import { standInUser } from './stand-in.js';
import type { Engine } from './engine.js';
import type { JwtPrincipal } from './jwt-principal.js';

const pbkdf2Async = promisify(pbkdf2);

/**
 * portcullis as a token issuer (SPEC §12): the built-in OIDC provider `portcullis`. It
 * exchanges a password, an API key or a refresh token for a short-lived access token (an
 * ES256 JWT signed with a key held in the catalog) and an opaque, single-use refresh
 * token; it publishes its public keys (JWKS) and discovery document; and it turns its own
 * access tokens back into principals — the catalog's user or service account, narrowed by
 * the credential exchanged, never wider, and re-derived at every statement so that a
 * dropped or disabled principal or key ends the token's access.
 */
export const ISSUER_PROVIDER = 'portcullis';

export interface IssuerPolicy {
  /** The `iss` of its tokens; by default the HTTP API's own URL, set when it listens. */
  url: string;
  accessTokenSeconds: number;
  refreshTokenSeconds: number;
  /** The longest CREATE TOKEN may make a token live (a cluster node's token). */
  maxMintedTokenSeconds: number;
}

export const DEFAULT_ISSUER_POLICY: IssuerPolicy = { url: 'http://127.0.0.1', accessTokenSeconds: 15 * 60, refreshTokenSeconds: 30 * 24 * 3600, maxMintedTokenSeconds: 365 * 24 * 3600 };

/**
 * What a token was granted for: whom, through which credential, and the caps it puts on
 * that principal (a database asked for at the token endpoint; CREATE TOKEN's ROLE,
 * DATABASES and SCOPES) — null where it does not narrow.
 */
export interface TokenGrant {
  ownerKind: 'user' | 'service_account';
  ownerId: number;
  apiKeyId: number | null;
  role: BuiltinRole | null;
  databaseIds: number[] | null;
  scopes: string[] | null;
}

/** An RFC 6749 §5.1 token response. */
export interface TokenResponse {
  access_token: string;
  token_type: 'Bearer';
  expires_in: number;
  refresh_token: string;
}

/** An RFC 6749 §5.2 error: its code, its HTTP status, and the real reason (recorded, not sent). */
export class TokenGrantError extends Error {
  constructor(
    readonly error: 'invalid_request' | 'invalid_grant' | 'unsupported_grant_type',
    readonly description: string,
    readonly status = 400,
  ) {
    super(description);
  }
}

const REFRESH_PREFIX = 'pcr_';
/** Expired rows removed per grant, at most (sweep). */
const SWEEP = 100;
/** Attempts of the commit that ends a principal's token rows, when concurrent grants move them. */
const END_ATTEMPTS = 5;

/**
 * The token rows a commit ends: every row of a dropped user or service account, the rows
 * issued through a dropped API key, and the live refresh tokens of a user set NOLOGIN (all
 * of them) or given a new password (those of password grants). Worked out before the
 * commit, from its mutations and the committed state they replace.
 */
export interface TokenEndings {
  owners: { kind: 'user' | 'service_account'; id: number }[];
  keys: { kind: 'user' | 'service_account'; ownerId: number; keyId: number }[];
  refreshOf: { userId: number; passwordOnly: boolean }[];
}

export function tokenEndings(ms: readonly Mutation[], before: CatalogReader, after: CatalogReader): TokenEndings | null {
  const e: TokenEndings = { owners: [], keys: [], refreshOf: [] };
  const updated = new Set<number>();
  for (const m of ms) {
    if (m.op === 'delete') {
      if (m.table === 'users') e.owners.push({ kind: 'user', id: m.id });
      else if (m.table === 'serviceAccounts') e.owners.push({ kind: 'service_account', id: m.id });
      else if (m.table === 'apiKeys') {
        const k = before.apiKeyById(m.id);
        if (k) e.keys.push({ kind: k.ownerKind, ownerId: k.ownerId, keyId: k.id });
      }
    } else if (m.op === 'update' && m.table === 'users') updated.add(m.row.id);
  }
  for (const id of updated) {
    const now = after.userById(id);
    const was = before.userById(id);
    if (!now || !was) continue;
    if (!now.login) e.refreshOf.push({ userId: id, passwordOnly: false });
    else if (now.verifier !== was.verifier) e.refreshOf.push({ userId: id, passwordOnly: true });
  }
  return e.owners.length + e.keys.length + e.refreshOf.length > 0 ? e : null;
}

const narrower = (a: BuiltinRole, b: BuiltinRole | null): BuiltinRole => (b !== null && roleRank(b) < roleRank(a) ? b : a);

/** The principal of a grant as of now, or why none: CredentialRefused. */
export function grantPrincipal(g: TokenGrant, view: CatalogReader, now: number): Principal {
  let p: Principal;
  if (g.apiKeyId !== null) {
    const key = view.apiKeyById(g.apiKeyId);
    if (!key || key.ownerKind !== g.ownerKind || key.ownerId !== g.ownerId) throw new CredentialRefused('no_longer_exists', 'the API key the token was issued for was dropped');
    p = keyPrincipal(key, view, now);
  } else if (g.ownerKind === 'service_account') {
    // A service account without a key (CREATE TOKEN FOR it): its role, databases and scopes.
    const sa = view.serviceAccountById(g.ownerId);
    if (!sa) throw new CredentialRefused('no_longer_exists', 'the service account the token was issued for no longer exists');
    const user = standInUser({
      id: sa.id,
      name: sa.name,
      tenantId: sa.tenantId,
      role: sa.role,
      createdAt: sa.createdAt,
      updatedAt: sa.createdAt,
      createdBy: sa.createdBy,
      limits: { role: sa.role, databaseIds: sa.databaseIds, exact: true, scopes: scopesOf(view, 'service_account', sa.id, now) },
    });
    p = { user, method: 'jwt', apiKeyId: null, auth: passwordAuthValues(user, view, 'jwt', now), expiresAt: null };
  } else {
    const u = view.userById(g.ownerId);
    if (!u) throw new CredentialRefused('no_longer_exists', 'the user the token was issued for no longer exists');
    if (!u.login) throw new CredentialRefused('disabled', `user "${u.name}" is disabled (NOLOGIN)`);
    if (u.validUntil !== null && u.validUntil <= now) throw new CredentialRefused('expired', `user "${u.name}" has expired (VALID UNTIL)`);
    p = passwordPrincipal(u, view, now);
  }
  if (g.role === null && g.databaseIds === null && g.scopes === null) return p;
  // The token's caps on top of the credential's, as an API key's on its owner: never wider.
  const base = p.user;
  const e = effectiveOf(base, view, now);
  const limits = base.limits ?? { role: 'superuser' as const, databaseIds: null, exact: false, scopes: e.scopes };
  let databaseIds = limits.databaseIds;
  if (g.databaseIds !== null) {
    const reach = new Set(e.databases.map((d) => d.id));
    databaseIds = g.databaseIds.filter((id) => reach.has(id));
    if (databaseIds.length === 0) throw new CredentialRefused('other', 'the credential no longer reaches the databases the token was issued for');
  }
  const role = narrower(limits.role, g.role);
  const scopes = g.scopes === null ? limits.scopes : limits.scopes.filter((x) => g.scopes!.includes(x));
  const user: User = { ...base, role: limits.exact ? narrower(base.role, g.role) : base.role, limits: { ...limits, role, databaseIds, scopes } };
  return { ...p, user, auth: passwordAuthValues(user, view, p.method, now) };
}

export class TokenIssuer {
  readonly policy: IssuerPolicy;
  /** The private halves opened so far, by kid. */
  private readonly opened = new Map<string, JWK>();
  private creating: Promise<SigningKey> | null = null;
  /** Access tokens already verified, by text (an ECDSA verification costs more than the rest of a request). */
  private readonly verified = new Map<string, { claims: JWTPayload; kid: string }>();

  constructor(
    private readonly engine: Engine,
    policy: Partial<IssuerPolicy> = {},
  ) {
    this.policy = { ...DEFAULT_ISSUER_POLICY, ...policy };
  }

  get url(): string {
    return this.policy.url;
  }

  /** The keys that verify tokens now: the current one, and rotated-out ones within their grace. */
  verifyingKeys(view: CatalogReader, now: number): SigningKey[] {
    return [...view.signingKeys()].filter((k) => k.retiresAt === null || k.retiresAt > now).sort((a, b) => a.createdAt - b.createdAt || a.id - b.id);
  }

  /** The JWKS document (RFC 7517): public halves only. */
  jwks(view: CatalogReader, now: number): { keys: JWK[] } {
    return { keys: this.verifyingKeys(view, now).map((k) => JSON.parse(k.publicJwk) as JWK) };
  }

  /** The discovery document (OpenID Connect Discovery 1.0 §3), for clients and verifiers. */
  discovery(): Record<string, unknown> {
    const u = this.url;
    return {
      issuer: u,
      jwks_uri: `${u}/.well-known/jwks.json`,
      token_endpoint: `${u}/v1/token`,
      grant_types_supported: ['password', 'api_key', 'refresh_token'],
      response_types_supported: ['token'],
      subject_types_supported: ['public'],
      id_token_signing_alg_values_supported: [ISSUER_ALG],
      token_endpoint_auth_methods_supported: ['none'],
    };
  }

  /**
   * The current signing key, created (and committed) on first need: a catalog that never
   * issues a token holds none. Concurrent first uses wait for one creation.
   */
  async currentKey(): Promise<SigningKey> {
    const current = [...this.engine.catalog.signingKeys()].find((k) => k.retiresAt === null);
    if (current) return current;
    if (!this.creating) {
      this.creating = (async () => {
        const tx = new CatalogTransaction(this.engine.catalog);
        const row = await newSigningKeyRow(tx, this.engine.clock());
        tx.insert('signingKeys', row);
        await this.engine.commit(tx);
        return row;
      })().finally(() => {
        this.creating = null;
      });
    }
    return this.creating;
  }

  private privateHalf(k: SigningKey): JWK {
    let jwk = this.opened.get(k.kid);
    if (!jwk) this.opened.set(k.kid, (jwk = openPrivateKey(k.sealedPrivate, k.kid, this.engine.catalog.serverSecret)));
    return jwk;
  }

  /** Is this token (unverified) one of ours? Decides which verifier a bearer token goes to. */
  issuedHere(token: string): boolean {
    try {
      return decodeJwt(token).iss === this.url;
    } catch {
      return false;
    }
  }

  /** An access token for a grant, and a new refresh token of `family` (a new family when null). */
  async issue(g: TokenGrant, family: string | null, tx: CatalogTransaction = new CatalogTransaction(this.engine.catalog)): Promise<TokenResponse> {
    const key = await this.currentKey();
    const now = this.engine.clock();
    const { token: access } = await this.signInto(tx, g, key, now, this.policy.accessTokenSeconds, false, null);
    const refresh = REFRESH_PREFIX + randomBytes(32).toString('base64url');
    tx.insert('refreshTokens', {
      id: tx.allocateId(),
      hash: digest(refresh),
      family: family ?? randomBytes(16).toString('hex'),
      ownerKind: g.ownerKind,
      ownerId: g.ownerId,
      apiKeyId: g.apiKeyId,
      databaseId: g.databaseIds?.length === 1 ? g.databaseIds[0]! : null,
      credentialStamp: stampOf(g, this.engine.catalog),
      usedAt: null,
      revokedAt: null,
      expiresAt: now + this.policy.refreshTokenSeconds * 1000,
      createdAt: now,
    });
    await this.engine.commit(tx);
    void this.sweep(g, now);
    return { access_token: access, token_type: 'Bearer', expires_in: this.policy.accessTokenSeconds, refresh_token: refresh };
  }

  /**
   * Removes some of the owner's expired token rows (access tokens past exp, refresh tokens
   * past their expiry, used ones included: reuse detection needs them only until then), so
   * an owner's rows stay about as many as its live tokens. Its own commit, after the
   * grant's, and best effort: a concurrent sweep of the same rows conflicts, and the next
   * grant tries again.
   */
  private async sweep(g: TokenGrant, now: number): Promise<void> {
    const view = this.engine.catalog;
    const tx = new CatalogTransaction(view);
    let n = 0;
    for (const t of view.issuedTokensOf(g.ownerKind, g.ownerId)) if (t.expiresAt <= now && n++ < SWEEP) tx.delete('issuedTokens', t.id);
    for (const r of view.refreshTokensOf(g.ownerKind, g.ownerId)) if (r.expiresAt <= now && n++ < SWEEP) tx.delete('refreshTokens', r.id);
    try {
      await this.engine.commit(tx);
    } catch {
      // Another grant swept first; what is left goes at the next one.
    }
  }

  /**
   * Ends the token rows a commit made dead (tokenEndings): deleted with their owner or API
   * key, revoked (refresh tokens) with NOLOGIN or a new password, so that neither lingers
   * nor comes back with LOGIN. Its own commit, right after the one that ended them and
   * before that one is acknowledged; a grant racing it moves a row, and it tries again on
   * the state as it is then. Until it commits, the grant's checks (the owner and key must
   * exist, LOGIN, the password's stamp) already refuse those tokens.
   */
  async endTokens(e: TokenEndings): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const view = this.engine.catalog;
      const now = this.engine.clock();
      const tx = new CatalogTransaction(view);
      const dropped = new Set<number>();
      const drop = (table: 'issuedTokens' | 'refreshTokens', id: number) => {
        if (!dropped.has(id)) tx.delete(table, id);
        dropped.add(id);
      };
      for (const o of e.owners) {
        for (const t of view.issuedTokensOf(o.kind, o.id)) drop('issuedTokens', t.id);
        for (const r of view.refreshTokensOf(o.kind, o.id)) drop('refreshTokens', r.id);
      }
      for (const k of e.keys) {
        for (const t of view.issuedTokensOf(k.kind, k.ownerId)) if (t.apiKeyId === k.keyId) drop('issuedTokens', t.id);
        for (const r of view.refreshTokensOf(k.kind, k.ownerId)) if (r.apiKeyId === k.keyId) drop('refreshTokens', r.id);
      }
      for (const u of e.refreshOf) {
        for (const r of view.refreshTokensOf('user', u.userId)) {
          if (dropped.has(r.id) || r.revokedAt !== null || r.usedAt !== null || r.expiresAt <= now || (u.passwordOnly && r.apiKeyId !== null)) continue;
          tx.update('refreshTokens', { ...r, revokedAt: now });
        }
      }
      try {
        await this.engine.commit(tx);
        return;
      } catch (err) {
        if (err instanceof PgError && err.state === 'serialization_failure' && attempt < END_ATTEMPTS) continue;
        // The commit that ended the principal stands; its tokens are refused by the grant's checks.
        this.engine.log(`could not remove the token rows of a dropped or disabled principal: ${(err as Error).message}`);
        return;
      }
    }
  }

  /** CREATE TOKEN: a token signed with the current key of `tx` (made there if there is none yet). */
  async mint(tx: CatalogTransaction, g: TokenGrant, seconds: number, now: number, createdBy: string): Promise<{ token: string; row: IssuedToken }> {
    let key = [...tx.signingKeys()].find((k) => k.retiresAt === null);
    if (!key) tx.insert('signingKeys', (key = await newSigningKeyRow(tx, now)));
    return this.signInto(tx, g, key, now, seconds, true, createdBy);
  }

  /**
   * Signs an access token for a grant and records it (its jti and grant, never the token)
   * in `tx`. `tx`'s view decides the principal it names.
   */
  async signInto(tx: CatalogTransaction, g: TokenGrant, key: SigningKey, now: number, seconds: number, minted: boolean, createdBy: string | null): Promise<{ token: string; row: IssuedToken }> {
    const view = tx;
    const p = grantPrincipal(g, view, now);
    const iat = Math.floor(now / 1000);
    const jti = randomBytes(16).toString('hex');
    const claims: JWTPayload = {
      iss: this.url,
      sub: p.user.name,
      aud: ISSUER_AUDIENCE,
      iat,
      exp: iat + seconds,
      jti,
      uid: `${g.ownerKind}:${g.ownerId}`,
      role: p.auth.role,
      tenant: view.tenantById(p.user.tenantId)?.name ?? String(p.user.tenantId),
      databases: p.auth.databases,
      scopes: p.auth.scopes,
      ...(g.apiKeyId !== null ? { key: view.apiKeyById(g.apiKeyId)?.keyId } : {}),
    };
    const row: IssuedToken = {
      id: tx.allocateId(),
      jti,
      ownerKind: g.ownerKind,
      ownerId: g.ownerId,
      apiKeyId: g.apiKeyId,
      role: g.role,
      databaseIds: g.databaseIds,
      scopes: g.scopes,
      minted,
      issuedAt: now,
      expiresAt: (iat + seconds) * 1000,
      revokedAt: null,
      createdBy,
    };
    tx.insert('issuedTokens', row);
    return { token: await signAccessToken(claims, this.privateHalf(key), key.kid), row };
  }

  // ---- the grants of POST /v1/token ----------------------------------------------------

  /**
   * grant_type=password: the user's password checked against its SCRAM verifier (an
   * unknown user or one without a password costs the same PBKDF2 work, against a mock
   * verifier). Refusals carry the real reason for the record; the client hears invalid_grant.
   */
  async passwordGrant(username: string, password: string, database: string | null): Promise<{ grant: TokenGrant; user: User }> {
    const view = this.engine.catalog;
    const u = view.userByName(username);
    const v = u?.verifier ? parseVerifier(u.verifier) : null;
    const salt = v?.salt ?? this.mockSalt(username);
    const iterations = v?.iterations ?? this.engine.scramIterations;
    let prepared: string;
    try {
      prepared = saslprep(password);
    } catch {
      prepared = password;
    }
    const salted = await pbkdf2Async(Buffer.from(prepared, 'utf8'), salt, iterations, 32, 'sha256');
    const { storedKey } = keysFromSaltedPassword(salted);
    const ok = v !== null && storedKey.length === v.storedKey.length && timingSafeEqual(storedKey, v.storedKey);
    if (!u || !v) throw new CredentialRefused('unknown_user', 'unknown user or no password');
    if (!ok) throw new CredentialRefused('wrong_password', 'wrong password');
    const now = this.engine.clock();
    if (u.validUntil !== null && u.validUntil <= now) throw new CredentialRefused('expired', 'password expired (VALID UNTIL)');
    if (!u.login) throw new CredentialRefused('nologin', 'NOLOGIN');
    return { grant: { ownerKind: 'user', ownerId: u.id, apiKeyId: null, role: null, databaseIds: this.databaseFor(u, database, now), scopes: null }, user: u };
  }

  /** grant_type=api_key: the key as any HTTP request presents it. */
  apiKeyGrant(text: string, database: string | null): { grant: TokenGrant; user: User } {
    const view = this.engine.catalog;
    const now = this.engine.clock();
    const { key, previous } = keyFromText(text, view, now);
    const p = keyPrincipal(key, view, now);
    this.engine.noteKeyUse(key.id, previous);
    return { grant: { ownerKind: key.ownerKind, ownerId: key.ownerId, apiKeyId: key.id, role: null, databaseIds: this.databaseFor(p.user, database, now), scopes: null }, user: p.user };
  }

  /** The database a grant is narrowed to: one the credential reaches, or a refusal. */
  private databaseFor(u: User, database: string | null, now: number): number[] | null {
    if (database === null) return null;
    const db = effectiveOf(u, this.engine.catalog, now).databases.find((d) => d.name === database);
    if (!db) throw new CredentialRefused('other', `DATABASE_NOT_AUTHORIZED: the credential does not reach database "${database}"`);
    return [db.id];
  }

  /**
   * grant_type=refresh_token: single-use, rotated on use (RFC 6819 §5.2.2.3, OAuth 2.0
   * Security BCP §4.14). A used (or revoked) token presented again revokes its whole family:
   * one of the two holders is a thief, and the server cannot tell which. The use is a
   * delete of the row and an insert of its used copy under a new id, so two uses racing
   * each other conflict at commit (the later one is a reuse).
   *
   * `bearer` is an access token the request carried as well (a client sends its old one
   * along): when it is one of ours, of any age, and names another principal than the
   * refresh token's, the refresh token is in the hands of someone else than its owner's
   * client, and its family is revoked as for a reuse.
   */
  async refreshGrant(text: string, bearer: string | null = null): Promise<{ response: TokenResponse; grant: TokenGrant }> {
    const view = this.engine.catalog;
    const now = this.engine.clock();
    const row = text.startsWith(REFRESH_PREFIX) ? view.refreshTokenByHash(digest(text)) : undefined;
    if (!row) throw new CredentialRefused('wrong_secret', 'unknown refresh token');
    if (row.usedAt !== null || row.revokedAt !== null) {
      await this.revokeFamily(row.family, now);
      throw new CredentialRefused('other', `refresh token reused (family ${row.family.slice(0, 8)} revoked)`);
    }
    if (row.expiresAt <= now) throw new CredentialRefused('expired', 'refresh token expired');
    if (bearer !== null) {
      const keys = this.verifyingKeys(view, now).map((k) => ({ kid: k.kid, publicJwk: JSON.parse(k.publicJwk) as JWK }));
      const other = await issuedClaimsAnyTime(bearer, keys, this.url);
      if (other && other.uid !== `${row.ownerKind}:${row.ownerId}`) {
        await this.revokeFamily(row.family, now);
        throw new CredentialRefused('other', `refresh token presented with an access token of ${String(other.uid)} (family ${row.family.slice(0, 8)} revoked)`);
      }
    }
    const g: TokenGrant = { ownerKind: row.ownerKind, ownerId: row.ownerId, apiKeyId: row.apiKeyId, role: null, databaseIds: row.databaseId === null ? null : [row.databaseId], scopes: null };
    grantPrincipal(g, view, now); // the principal and key still good: else refused with the reason
    if (stampOf(g, view) !== row.credentialStamp) throw new CredentialRefused('other', 'the password changed since the refresh token was issued');
    const tx = new CatalogTransaction(view);
    tx.delete('refreshTokens', row.id);
    tx.insert('refreshTokens', { ...row, id: tx.allocateId(), usedAt: now });
    try {
      return { response: await this.issue(g, row.family, tx), grant: g };
    } catch (err) {
      if (err instanceof PgError && err.state === 'serialization_failure') {
        await this.revokeFamily(row.family, now);
        throw new CredentialRefused('other', `refresh token reused concurrently (family ${row.family.slice(0, 8)} revoked)`);
      }
      throw err;
    }
  }

  private async revokeFamily(family: string, now: number): Promise<void> {
    const tx = new CatalogTransaction(this.engine.catalog);
    for (const r of this.engine.catalog.refreshTokenFamily(family)) if (r.revokedAt === null) tx.update('refreshTokens', { ...r, revokedAt: now });
    try {
      await this.engine.commit(tx);
    } catch (err) {
      // A concurrent use of the family moved a row: revoke what is there now.
      if (!(err instanceof PgError && err.state === 'serialization_failure')) throw err;
      await this.revokeFamily(family, now);
    }
  }

  private mockSalt(name: string): Buffer {
    return Buffer.from(digest(`${this.engine.catalog.serverSecret}\0mock-salt:${name}`), 'hex').subarray(0, 16);
  }

  // ---- access tokens presented back --------------------------------------------------

  /** The principal of one of our access tokens, or TokenRejected / CredentialRefused with the reason. */
  async principalOf(token: string): Promise<{ principal: Principal; login: IssuedTokenLogin }> {
    const now = this.engine.clock();
    const view = this.engine.catalog;
    const skew = this.engine.tokenPolicy.clockSkewSeconds;
    if (Buffer.byteLength(token) > this.engine.tokenPolicy.maxTokenBytes) throw new TokenRejected('larger_than', 'token too large');
    let v = this.verified.get(token);
    const keys = this.verifyingKeys(view, now);
    if (!v || !keys.some((k) => k.kid === v!.kid) || (v.claims.exp as number) + skew <= now / 1000) {
      this.verified.delete(token);
      v = await verifyIssued(token, keys.map((k) => ({ kid: k.kid, publicJwk: JSON.parse(k.publicJwk) as JWK })), this.url, now, skew);
      if (this.verified.size >= 10_000) this.verified.delete(this.verified.keys().next().value!);
      this.verified.set(token, v);
    }
    const login = new IssuedTokenLogin(this, v.claims, v.kid, skew);
    const current = login.current(view, null, now);
    return { principal: { user: current.user, method: 'jwt', apiKeyId: null, auth: current.auth, expiresAt: null, token: login }, login };
  }
}

/**
 * The grant behind an access token: its row (by jti), which must be there, unrevoked, and
 * for the principal the token names. REVOKE TOKEN and REVOKE TOKENS act here, at once.
 */
function grantOf(c: JWTPayload, view: CatalogReader): TokenGrant {
  const row = typeof c.jti === 'string' ? view.issuedTokenByJti(c.jti) : undefined;
  if (!row) throw new TokenRejected('no_longer_exists', 'no such token was issued (or it was removed)');
  if (row.revokedAt !== null) throw new TokenRejected('disabled', `token ${row.jti} was revoked`);
  if (c.uid !== `${row.ownerKind}:${row.ownerId}`) throw new TokenRejected('other', `token ${row.jti} names another principal than it was issued for`);
  return { ownerKind: row.ownerKind, ownerId: row.ownerId, apiKeyId: row.apiKeyId, role: row.role, databaseIds: row.databaseIds, scopes: row.scopes };
}

/** What a refresh token's family stays bound to: the owner's password (a new one ends it). */
function stampOf(g: TokenGrant, view: CatalogReader): string | null {
  if (g.apiKeyId !== null || g.ownerKind !== 'user') return null;
  return digest(`stamp\0${view.userById(g.ownerId)?.verifier ?? ''}`).slice(0, 32);
}

/**
 * A session logged in with one of our access tokens: at each statement, the token must
 * still be within its exp (plus skew), its signing key still verifying (a rotation's grace
 * over ends it), and its grant's principal still good — asked of the catalog as of now.
 */
export class IssuedTokenLogin {
  readonly until: number;

  constructor(
    private readonly issuer: TokenIssuer,
    private readonly claims: JWTPayload,
    private readonly kid: string,
    skewSeconds: number,
  ) {
    this.until = ((claims.exp as number) + skewSeconds) * 1000;
  }

  get expiry(): number {
    return (this.claims.exp as number) * 1000;
  }

  current(view: CatalogReader, _jwks: JwksCache | null, now: number, _policy?: TokenPolicy): JwtPrincipal {
    if (now >= this.until) throw new TokenRejected('expired', 'token expired');
    if (!this.issuer.verifyingKeys(view, now).some((k) => k.kid === this.kid)) throw new TokenRejected('unknown_kid', `signing key ${this.kid} was rotated out`);
    const grant = grantOf(this.claims, view);
    let p: Principal;
    try {
      p = grantPrincipal(grant, view, now);
    } catch (err) {
      if (err instanceof CredentialRefused) throw new TokenRejected(err.code, err.reason);
      throw err;
    }
    const auth: AuthValues = { ...p.auth, method: 'jwt', claims: { jti: String(this.claims.jti), iss: String(this.claims.iss) } };
    return { user: p.user, auth };
  }
}

/** A new signing key row, its private half sealed under the catalog's server secret. */
export async function newSigningKeyRow(view: CatalogReader & { allocateId(): number }, now: number): Promise<SigningKey> {
  const k = await newSigningKey();
  return {
    id: view.allocateId(),
    kid: k.kid,
    alg: ISSUER_ALG,
    publicJwk: JSON.stringify(k.publicJwk),
    sealedPrivate: sealPrivateKey(k.privateJwk, k.kid, view.serverSecret),
    createdAt: now,
    retiresAt: null,
  };
}
