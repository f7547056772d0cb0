import { createHmac } from 'node:crypto';
import { isLoopbackHost } from '../net/loopback.js';
import { ScramServer } from '../auth/scram.js';
import { TokenRejected } from '../auth/jwt.js';
import type { Refusal, RefusalCode } from '../auth/refusal.js';
import { parseVerifier, type ScramVerifier } from '../auth/verifier.js';
import type { ApiKey, User } from '../catalog/model.js';
import { PgError } from '../errors/pg-error.js';
import type { AuthExchange, PeerInfo, QuerySession, SaslStep, StartupInfo } from '../wire/handler.js';
import { CredentialRefused, keyPrincipal, passwordPrincipal, tokenPrincipal, type LoginMethod, type Principal } from './credentials.js';
import type { Engine } from './engine.js';
import { EngineSession } from './session.js';

const SCRAM = 'SCRAM-SHA-256';
const SCRAM_PLUS = 'SCRAM-SHA-256-PLUS';
const OAUTHBEARER = 'OAUTHBEARER';
/** An API key logs in with startup user `pcu_<key id>` and the whole key as password. */
const KEY_USER = /^pcu_([a-z0-9]{16})$/;
/** Older clients send a token as the password with startup user `jwt:<provider>`. */
const TOKEN_USER = 'jwt:';

/** "password authentication failed": the one answer to every credential failure (28P01). */
export const loginFailed = (user: string) =>
  new PgError('invalid_password', `password authentication failed for user "${user}"`, { severity: 'FATAL' });

/** 28000 for a user with NOLOGIN whose credential was right (PostgreSQL's answer). */
const notPermitted = (user: User) =>
  new PgError('invalid_authorization_specification', `user "${user.name}" is not permitted to log in`, {
    severity: 'FATAL',
    hint: 'The user has NOLOGIN; ALTER USER ... LOGIN allows it.',
  });

/**
 * Where a bearer token may travel: a TLS connection, or loopback (nothing leaves the
 * machine). The one rule for a token as the password and for OAUTHBEARER; a connection
 * upgraded by SSLRequest has `peer.tls` true, and a stricter deployment can drop the
 * loopback exemption here.
 */
export function tokenTransportAllowed(peer: PeerInfo): boolean {
  return peer.tls || isLoopbackHost(peer.address);
}

/**
 * The pgwire login for a startup message: by client certificate (it comes first),
 * token, API key or password.
 */
export function startLogin(engine: Engine, startup: StartupInfo, peer: PeerInfo, certLogin: 'subject' | 'cn' = 'subject'): AuthExchange {
  if (peer.clientCert) {
    const cert = certificateLogin(engine, startup, peer, certLogin);
    if (cert) return cert;
  }
  if (startup.user.startsWith(TOKEN_USER)) return new TokenPasswordLogin(engine, startup, peer, startup.user.slice(TOKEN_USER.length));
  return new SaslLogin(engine, startup, peer);
}

/**
 * A mock verifier for a name that cannot log in by SCRAM (unknown, or no password): the
 * salt is derived from the server secret and the name, so the same name always gets the
 * same salt, as a real user would, and a client cannot tell the two apart.
 */
function mockVerifier(engine: Engine, name: string): ScramVerifier {
  const mac = createHmac('sha256', engine.catalog.serverSecret).update(`mock-salt:${name}`).digest();
  return { iterations: engine.scramIterations, salt: mac.subarray(0, 16), storedKey: mac, serverKey: mac };
}

/**
 * A verified principal's session, with its login recorded: a session that cannot open
 * (database, connection limits) is a failed login after a good credential; a session
 * starts only once its audit record is on disk.
 */
async function openSession(engine: Engine, p: Principal, startup: StartupInfo, peer: PeerInfo): Promise<QuerySession> {
  const attempt = { method: p.method, principal: startup.user, tenant: p.user.tenantId, credentialOk: true, address: peer.address, via: 'pgwire' } as const;
  let session: QuerySession;
  try {
    session = EngineSession.open(engine, p, startup, peer);
  } catch (err) {
    void engine.recordLogin({ ...attempt, ok: false, code: 'other', reason: (err as Error).message });
    throw err;
  }
  await engine.recordLogin({ ...attempt, ok: true });
  return session;
}

/** Shared by the exchanges: record the outcome, open the session or fail alike. */
abstract class Login implements AuthExchange {
  abstract readonly mechanisms: string[];
  protected principal: Principal | null = null;
  protected method: LoginMethod = 'password';

  constructor(
    protected readonly engine: Engine,
    protected readonly startup: StartupInfo,
    protected readonly peer: PeerInfo,
  ) {}

  abstract step(mechanism: string | null, data: Buffer): Promise<SaslStep>;

  async password(_text: string): Promise<void> {
    throw this.fail('other', 'a password message was not asked for');
  }

  /** Records the code and real reason; the client gets the one 28P01 (loginFailed). */
  protected fail(code: RefusalCode, reason: string): PgError {
    this.engine.recordLogin({ method: this.method, ok: false, code, reason, principal: this.startup.user, address: this.peer.address, via: 'pgwire' });
    return loginFailed(this.startup.user);
  }

  protected refused(err: unknown): PgError {
    if (err instanceof CredentialRefused) return this.fail(err.code, err.reason);
    throw err;
  }

  /** Re-derives the principal (the catalog may have changed during the exchange), then opens. */
  async open(): Promise<QuerySession> {
    if (!this.principal) throw this.fail('other', 'the exchange did not complete');
    return openSession(this.engine, this.recheck(this.principal), this.startup, this.peer);
  }

  /**
   * A token's principal is taken again as of now: the catalog may have changed while the
   * token was being verified (a JWKS fetch takes up to its timeout), and a login through a
   * provider dropped or disabled meanwhile must fail, not open a session for one statement.
   */
  protected recheck(p: Principal): Principal {
    if (!p.token) return p;
    try {
      const now = p.token.current(this.engine.catalog, this.engine.jwks, this.engine.clock(), this.engine.tokenPolicy);
      return { ...p, user: now.user, auth: now.auth };
    } catch (err) {
      if (err instanceof TokenRejected) throw this.fail(err.code, err.reason);
      throw err;
    }
  }

  /**
   * Brute-force lockout, checked once the credential has been verified (or not): a locked
   * attempt costs what any attempt costs and fails the same way; the reason is recorded.
   */
  protected checkLockout(): void {
    const locked = this.engine.lockouts.locked(this.peer.address, this.startup.user);
    if (locked) throw this.fail(locked.code, locked.reason);
  }
}

/** SCRAM-SHA-256 for users and API keys, and OAUTHBEARER for tokens (RFC 7628). */
class SaslLogin extends Login {
  readonly mechanisms: string[];
  private scram: ScramServer | null = null;
  private user: User | undefined;
  private key: ApiKey | undefined;

  constructor(engine: Engine, startup: StartupInfo, peer: PeerInfo) {
    super(engine, startup, peer);
    // The built-in issuer counts once it has a signing key (it has issued, or been asked for its keys).
    const anyProvider = [...engine.catalog.oidcProviders()].some((p) => p.enabled) || !engine.catalog.signingKeys().next().done;
    // With TLS, -PLUS first: clients that can bind the channel (libpq does) choose it.
    this.mechanisms = [...(peer.channelBinding ? [SCRAM_PLUS] : []), SCRAM, ...(anyProvider && tokenTransportAllowed(peer) ? [OAUTHBEARER] : [])];
  }

  async step(mechanism: string | null, data: Buffer): Promise<SaslStep> {
    if (mechanism === OAUTHBEARER || (mechanism === null && this.scram === null)) return this.oauth(data);
    if (mechanism !== null) return { done: false, data: Buffer.from(this.startScram(mechanism === SCRAM_PLUS).clientFirst(data.toString('utf8'))) };
    const { ok, serverFinal, matched } = this.scram!.clientFinal(data.toString('utf8'));
    this.checkLockout();
    if (!ok) {
      if (this.key) throw this.fail('wrong_secret', `wrong secret for API key ${this.key.keyId}`);
      throw this.user ? this.fail('wrong_password', 'wrong password') : this.fail('unknown_user', 'unknown user or no password');
    }
    if (this.key) {
      try {
        this.principal = keyPrincipal(this.key, this.engine.catalog, this.engine.clock());
      } catch (err) {
        throw this.refused(err);
      }
      this.engine.noteKeyUse(this.key.id, matched === 1);
    } else {
      const u = this.user!;
      // An expired password fails exactly like a wrong one (PostgreSQL's VALID UNTIL).
      if (u.validUntil !== null && u.validUntil <= this.engine.clock()) throw this.fail('expired', 'password expired (VALID UNTIL)');
      this.principal = passwordPrincipal(u, this.engine.catalog, this.engine.clock());
    }
    return { done: true, data: Buffer.from(serverFinal) };
  }

  private startScram(plus: boolean): ScramServer {
    const name = this.startup.user;
    const keyId = KEY_USER.exec(name)?.[1];
    let real: ScramVerifier | null = null;
    const alternates: ScramVerifier[] = [];
    if (keyId !== undefined) {
      this.method = 'api_key';
      this.key = this.engine.catalog.apiKeyByKeyId(keyId);
      real = this.key ? parseVerifier(this.key.secret.verifier) : null;
      const prev = this.key?.previous;
      if (prev && prev.validUntil > this.engine.clock()) {
        const v = parseVerifier(prev.verifier);
        if (v) alternates.push(v);
      }
    } else {
      const user = this.engine.catalog.userByName(name);
      real = user?.verifier ? parseVerifier(user.verifier) : null;
      this.user = real ? user : undefined;
    }
    this.scram = new ScramServer(real ?? mockVerifier(this.engine, name), { doomed: !real, alternates, plus, channelBinding: this.peer.channelBinding });
    return this.scram;
  }

  /**
   * RFC 7628: `gs2-header kvsep "auth=Bearer " token kvsep kvsep`. An empty or refused
   * token gets the error JSON (a SASLContinue), the client's %x01, then 28P01.
   */
  private async oauth(data: Buffer): Promise<SaslStep> {
    this.method = 'jwt';
    if (this.failure) throw this.fail(this.failure.code, this.failure.reason);
    const text = data.toString('utf8');
    const m = /^[ny],[^,]*,\x01(.*)\x01\x01$/s.exec(text);
    const auth = m?.[1]?.split('\x01').find((kv) => kv.startsWith('auth='))?.slice(5) ?? '';
    const token = /^Bearer\s+(\S+)$/i.exec(auth)?.[1];
    if (!token) return this.oauthError({ code: 'malformed', reason: 'no bearer token (discovery request or malformed message)' });
    try {
      this.principal = await tokenPrincipal(this.engine, token);
    } catch (err) {
      if (!(err instanceof CredentialRefused)) throw err;
      return this.oauthError(err);
    }
    const locked = this.engine.lockouts.locked(this.peer.address, this.startup.user);
    if (locked) return this.oauthError(locked);
    return { done: true, data: null };
  }

  /** Why the token was refused: the exchange ends with it at the client's next message. */
  private failure: Refusal | null = null;

  private oauthError(failure: Refusal): SaslStep {
    this.failure = { code: failure.code, reason: failure.reason };
    const body = { status: 'invalid_token', scope: 'openid' };
    return { done: false, data: Buffer.from(JSON.stringify(body)) };
  }

  protected override recheck(p: Principal): Principal {
    const view = this.engine.catalog;
    const now = this.engine.clock();
    if (p.method === 'api_key') {
      const key = view.apiKeyById(p.apiKeyId!);
      if (!key) throw this.fail('other', 'API key dropped during the login');
      try {
        return keyPrincipal(key, view, now);
      } catch (err) {
        throw this.refused(err);
      }
    }
    if (p.method === 'password') {
      const user = view.userById(p.user.id);
      if (!user || user.verifier !== p.user.verifier) throw this.fail('other', 'user changed during the login');
      if (!user.login) {
        this.engine.recordLogin({ method: 'password', ok: false, code: 'nologin', reason: 'NOLOGIN', principal: user.name, address: this.peer.address, via: 'pgwire' });
        throw notPermitted(user);
      }
      return passwordPrincipal(user, view, now);
    }
    return super.recheck(p);
  }
}

/** A token as the cleartext password (startup user `jwt:<provider>`), for older clients. */
class TokenPasswordLogin extends Login {
  readonly mechanisms: string[] = [];

  constructor(
    engine: Engine,
    startup: StartupInfo,
    peer: PeerInfo,
    private readonly provider: string,
  ) {
    super(engine, startup, peer);
    this.method = 'jwt';
    if (!tokenTransportAllowed(peer)) {
      engine.recordLogin({ method: 'jwt', ok: false, code: 'other', reason: 'token as password over cleartext TCP', principal: startup.user, address: peer.address, via: 'pgwire' });
      throw new PgError('invalid_authorization_specification', 'a token may be sent as the password only over TLS or from this machine', {
        severity: 'FATAL',
        hint: 'Connect with sslmode=require, or use OAUTHBEARER.',
      });
    }
  }

  async step(): Promise<SaslStep> {
    throw this.fail('other', 'SASL response where a password was asked for');
  }

  override async password(text: string): Promise<void> {
    try {
      this.principal = await tokenPrincipal(this.engine, text, this.provider);
    } catch (err) {
      throw this.refused(err);
    }
    this.checkLockout();
  }
}

/**
 * The code of a certificate that failed verification, from OpenSSL's verify code
 * (CERT_HAS_EXPIRED, UNABLE_TO_VERIFY_LEAF_SIGNATURE, UNABLE_TO_GET_ISSUER_CERT, ...): an
 * expired certificate or CRL, a signature that does not check, an issuer not found; the
 * rest (revoked, self-signed, untrusted, ...) is "other".
 */
function certificateRefusal(verifyCode: string | null): RefusalCode {
  if (verifyCode === null) return 'other';
  if (verifyCode.includes('EXPIRED')) return 'expired';
  if (verifyCode.includes('SIGNATURE')) return 'signature';
  if (verifyCode.includes('ISSUER')) return 'issuer';
  return 'other';
}

/**
 * mTLS: a client certificate that fails verification (revoked, unknown CA, expired) ends
 * the login; a verified one logs in as the startup user when it maps to that user — by the
 * user's CERTIFICATE SUBJECT, or by CN = user name when so configured. A verified
 * certificate of someone else leaves the login to the other credentials.
 */
function certificateLogin(engine: Engine, startup: StartupInfo, peer: PeerInfo, mode: 'subject' | 'cn'): AuthExchange | null {
  const cert = peer.clientCert!;
  const record = (code: RefusalCode, reason: string) =>
    engine.recordLogin({ method: 'certificate', ok: false, code, reason, principal: startup.user, address: peer.address, via: 'pgwire' });
  if (!cert.verified) {
    record(certificateRefusal(cert.error), `client certificate "${cert.subject}" refused: ${cert.error ?? 'not verified'}`);
    throw loginFailed(startup.user);
  }
  const user = engine.catalog.userByName(startup.user);
  const norm = (s: string) => s.split(',').map((p) => p.trim()).join(',');
  const maps = user && (mode === 'cn' ? cert.commonName === user.name : user.certificateSubject !== null && norm(user.certificateSubject) === norm(cert.subject));
  if (!user || !maps) return null;
  const locked = engine.lockouts.locked(peer.address, startup.user);
  if (locked) {
    record(locked.code, locked.reason);
    throw loginFailed(startup.user);
  }
  if (user.validUntil !== null && user.validUntil <= engine.clock()) {
    record('expired', 'account expired (VALID UNTIL)');
    throw loginFailed(startup.user);
  }
  return {
    mechanisms: [],
    immediate: true,
    step: async () => {
      throw loginFailed(startup.user);
    },
    password: async () => {
      throw loginFailed(startup.user);
    },
    open: async () => {
      const current = engine.catalog.userById(user.id);
      if (!current) throw loginFailed(startup.user);
      if (!current.login) {
        record('nologin', 'NOLOGIN');
        throw notPermitted(current);
      }
      const p = passwordPrincipal(current, engine.catalog, engine.clock());
      return openSession(engine, { ...p, method: 'certificate', auth: { ...p.auth, method: 'certificate' } }, startup, peer);
    },
  };
}
