import type http from 'node:http';
import { looksLikeJwt } from '../auth/jwt.js';
import { LocalConnection } from '../client/local-connection.js';
import type { QueryOutcome } from '../client/connection.js';
import { CredentialRefused, keyFromText, keyPrincipal, tokenPrincipal, type LoginMethod, type Principal } from '../engine/credentials.js';
import { TokenGrantError, type TokenGrant, type TokenResponse } from '../engine/issuer.js';
import { TokenRejected } from '../auth/jwt.js';
import type { Engine } from '../engine/engine.js';
import { effectiveOf, permissionsOf } from '../engine/effective.js';
import { effectivePredicate } from '../engine/rls.js';
import { EngineSession } from '../engine/session.js';
import { asPgError, errorFields, type ErrorFields } from '../errors/pg-error.js';
import type { PeerInfo } from '../wire/handler.js';
import { DEFAULT_RATE_LIMIT, RateLimiter, type RateLimitPolicy } from './rate-limit.js';

/**
 * The HTTP API, on node:http: five routes and JSON both ways do not need a
 * framework, and node:http lets us bound every request (body size, header size, time)
 * ourselves. Every route that acts runs through the same engine sessions as pgwire.
 */
export const MAX_BODY_BYTES = 1024 * 1024;

type Json = Record<string, unknown>;

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly fields: ErrorFields,
    readonly headers: Record<string, string> = {},
  ) {
    super(fields.message);
  }
}

/** SQLSTATE → HTTP status: credentials 401, privileges 403, capacity 503, the rest 400. */
function statusOf(code: string): number {
  if (code.startsWith('28')) return 401;
  if (code === '53400') return 429;
  if (code === '42501') return 403;
  if (code === '53300' || code.startsWith('53') || code.startsWith('58')) return 503;
  if (code === '57014') return 408;
  if (code === 'XX000') return 500;
  return 400;
}

const unauthorized = () =>
  new HttpError(401, { severity: 'ERROR', code: '28P01', message: 'authentication failed' }, { 'www-authenticate': 'Bearer realm="portcullis"' });

const fail = (status: number, code: string, message: string, hint?: string) =>
  new HttpError(status, { severity: 'ERROR', code, message, ...(hint ? { hint } : {}) });

export class HttpApi {
  private readonly rate: RateLimiter;

  constructor(
    private readonly engine: Engine,
    rateLimit: RateLimitPolicy = DEFAULT_RATE_LIMIT,
  ) {
    this.rate = new RateLimiter(rateLimit, engine.clock);
  }

  /** Instances sharing a catalog count requests together (the server calls this before it listens). */
  async shareRateLimits(): Promise<void> {
    if (this.engine.rateLedger) await this.rate.share(this.engine.rateLedger);
  }

  /** Counts the request against its principal's windows: headers always, 429 when used up. */
  private limit(p: Principal, res: http.ServerResponse): void {
    const d = this.rate.take(p.apiKeyId !== null ? `key:${p.apiKeyId}` : `${p.method}:${String(p.auth.id)}`);
    for (const [k, v] of Object.entries(d.headers)) res.setHeader(k, v);
    if (!d.allowed) throw fail(429, '53400', 'rate limit exceeded', `Retry after ${d.headers['retry-after']} s.`);
  }

  /** The node:http request listener. */
  readonly handle = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const started = process.hrtime.bigint();
    const route = `${req.method ?? ''} ${(req.url ?? '').split('?')[0]}`;
    const known = ROUTES.has(route) ? route : 'other';
    this.serve(req, res, route)
      .catch((err: unknown) => {
        if (err instanceof HttpError) return send(res, err.status, { error: publicFields(err.fields) }, err.headers);
        // RFC 6749 §5.2: the token endpoint's errors have their own shape.
        if (err instanceof TokenGrantError) return send(res, err.status, { error: err.error, error_description: err.description }, { pragma: 'no-cache' });
        const e = asPgError(err);
        if (e.state === 'internal_error') console.error(`portcullis: internal error on ${route}: ${(err as Error)?.stack ?? String(err)}`);
        return send(res, statusOf(e.code), { error: publicFields(errorFields(e)) });
      })
      .finally(() => {
        const seconds = Number(process.hrtime.bigint() - started) / 1e9;
        this.engine.metrics.httpRequests.inc({ route: known, status: String(res.statusCode) });
        this.engine.metrics.httpSeconds.observe(seconds, { route: known });
      });
  };

  private async serve(req: http.IncomingMessage, res: http.ServerResponse, route: string): Promise<void> {
    switch (route) {
      case 'GET /healthz':
        return send(res, 200, { status: 'ok' });
      case 'GET /readyz':
        return send(res, 200, { status: 'ready' });
      case 'GET /metrics':
        res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' }).end(this.engine.metrics.text());
        return;
      case 'GET /v1/whoami': {
        const p = await this.principalOf(req);
        this.limit(p, res);
        return send(res, 200, { ...describePrincipal(p), permissions: this.permissions(p, null) });
      }
      case 'POST /v1/query':
        return this.query(req, res);
      case 'POST /v1/authenticate':
        return this.authenticate(req, res);
      case 'POST /v1/token':
        return this.token(req, res);
      case 'GET /.well-known/jwks.json': {
        // The first look at the keys creates the signing key, so the set is never empty.
        await this.engine.issuer.currentKey();
        return send(res, 200, this.engine.issuer.jwks(this.engine.catalog, this.engine.clock()), { 'cache-control': 'public, max-age=300' });
      }
      case 'GET /.well-known/openid-configuration':
        return send(res, 200, this.engine.issuer.discovery(), { 'cache-control': 'public, max-age=300' });
    }
    const path = route.slice(route.indexOf(' ') + 1);
    if ([...ROUTES].some((r) => r.endsWith(` ${path}`))) throw fail(405, '0A000', `method ${req.method} not allowed on ${path}`);
    throw fail(404, '42704', `no route ${path}`, 'Routes: POST /v1/query, GET /v1/whoami, POST /v1/authenticate, POST /v1/token, GET /.well-known/jwks.json, /.well-known/openid-configuration, /healthz, /readyz, /metrics.');
  }

  /**
   * The request's credential (a JWT bearer before an API key), or 401
   * for a missing or refused one — the same answer for every reason, which is recorded.
   */
  private async principalOf(req: http.IncomingMessage): Promise<Principal> {
    const bearer = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '')?.[1];
    const apiKey = typeof req.headers['x-api-key'] === 'string' ? req.headers['x-api-key'].trim() : undefined;
    const presented = bearer && looksLikeJwt(bearer) ? bearer : (bearer ?? apiKey);
    if (!presented) throw unauthorized();
    return this.verify(presented, peerOf(req));
  }

  /** An API key or a token, to a principal; failures recorded with their real reason. */
  private async verify(credential: string, peer: PeerInfo): Promise<Principal> {
    const isJwt = looksLikeJwt(credential);
    const method = isJwt ? 'jwt' : 'api_key';
    const subject = isJwt ? 'token' : (/^pcu_[a-z0-9]{16}/.exec(credential)?.[0] ?? 'not a key');
    const started = process.hrtime.bigint();
    try {
      let p: Principal;
      if (isJwt) p = await tokenPrincipal(this.engine, credential);
      else {
        const { key, previous } = keyFromText(credential, this.engine.catalog, this.engine.clock());
        p = keyPrincipal(key, this.engine.catalog, this.engine.clock());
        this.engine.noteKeyUse(key.id, previous);
      }
      const locked = this.engine.lockouts.locked(peer.address, subject);
      if (locked) throw new CredentialRefused(locked.code, locked.reason);
      await this.engine.recordLogin({ method, ok: true, principal: subject, tenant: p.user.tenantId, address: peer.address, via: 'http' });
      return p;
    } catch (err) {
      if (!(err instanceof CredentialRefused)) throw err;
      this.engine.recordLogin({ method, ok: false, code: err.code, reason: err.reason, principal: subject, address: peer.address, via: 'http' });
      throw unauthorized();
    } finally {
      this.engine.metrics.loginSeconds.observe(Number(process.hrtime.bigint() - started) / 1e9, { method });
    }
  }

  private async query(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const p = await this.principalOf(req);
    this.limit(p, res);
    const body = await readJson(req);
    if (typeof body.sql !== 'string') throw fail(400, '22023', 'the body must be {"sql": "..."}', 'Optionally with "database".');
    const database = typeof body.database === 'string' ? body.database : '';
    const session = EngineSession.open(this.engine, p, { user: p.user.name, database, params: new Map([['application_name', 'http']]) }, peerOf(req));
    const conn = LocalConnection.over(session);
    let outcome: QueryOutcome;
    try {
      outcome = await conn.query(body.sql);
    } finally {
      await conn.close();
    }
    const results = outcome.results.map((r) => ({
      command: r.tag,
      ...(r.columns ? { columns: r.columns.map((c) => ({ name: c.name, type_oid: c.typeOid })), rows: r.rows } : {}),
    }));
    const notices = outcome.notices.map((n) => ({ severity: n.severity, code: n.code, message: n.message }));
    if (outcome.error) {
      // Statements before the failing one in the same request were rolled back with it.
      return send(res, statusOf(outcome.error.code), { error: publicFields(outcome.error), notices });
    }
    return send(res, 200, { results, notices });
  }

  /**
   * POST /v1/token (SPEC §12, RFC 6749 §4.3 and §6): a password, an API key or a refresh
   * token for an access token and a refresh token. The body is a form (RFC 6749's encoding)
   * or a JSON object. A refused credential counts towards the lockouts as any failed login
   * does, is recorded with its real reason, and answers `invalid_grant` whatever the
   * reason; a locked address or user is refused the same way.
   */
  private async token(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const peer = peerOf(req);
    const d = this.rate.take(`token:${peer.address}`);
    for (const [k, v] of Object.entries(d.headers)) res.setHeader(k, v);
    if (!d.allowed) throw fail(429, '53400', 'rate limit exceeded', `Retry after ${d.headers['retry-after']} s.`);
    const body = await readForm(req);
    const field = (name: string): string => {
      const v = body[name];
      if (typeof v !== 'string' || v === '') throw new TokenGrantError('invalid_request', `the request has no "${name}"`);
      return v;
    };
    const optional = (name: string): string | null => (typeof body[name] === 'string' && body[name] !== '' ? (body[name] as string) : null);
    const grantType = field('grant_type');
    const issuer = this.engine.issuer;
    let method: LoginMethod;
    let subject: string;
    let obtain: () => Promise<{ grant: TokenGrant; response?: TokenResponse; tenant: number | null }>;
    switch (grantType) {
      case 'password': {
        const username = field('username');
        const password = field('password');
        method = 'password';
        subject = username;
        obtain = async () => {
          const { grant, user } = await issuer.passwordGrant(username, password, optional('database'));
          return { grant, tenant: user.tenantId };
        };
        break;
      }
      case 'api_key': {
        const key = field('api_key');
        method = 'api_key';
        subject = /^pcu_[a-z0-9]{16}/.exec(key)?.[0] ?? 'not a key';
        obtain = async () => {
          const { grant, user } = issuer.apiKeyGrant(key, optional('database'));
          return { grant, tenant: user.tenantId };
        };
        break;
      }
      case 'refresh_token': {
        const token = field('refresh_token');
        method = 'refresh_token';
        subject = 'refresh token';
        obtain = async () => {
          // A locked address spends no refresh token (the check comes first: guessing one is
          // a lookup, with nothing to time).
          const locked = this.engine.lockouts.locked(peer.address, subject);
          if (locked) throw new CredentialRefused(locked.code, locked.reason);
          const bearer = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '')?.[1];
          const { response, grant } = await issuer.refreshGrant(token, bearer && looksLikeJwt(bearer) ? bearer : null);
          return { grant, response, tenant: null };
        };
        break;
      }
      default:
        throw new TokenGrantError('unsupported_grant_type', `grant_type "${grantType}" is not supported`, 400);
    }
    let response: TokenResponse;
    try {
      const got = await obtain();
      const locked = this.engine.lockouts.locked(peer.address, subject);
      if (locked) throw new CredentialRefused(locked.code, locked.reason);
      response = got.response ?? (await issuer.issue(got.grant, null));
      await this.engine.recordLogin({ method, ok: true, principal: subject, tenant: got.tenant, address: peer.address, via: 'http' });
    } catch (err) {
      if (!(err instanceof CredentialRefused) && !(err instanceof TokenRejected)) throw err;
      this.engine.recordLogin({ method, ok: false, code: err.code, reason: err.reason, principal: subject, address: peer.address, via: 'http' });
      throw new TokenGrantError('invalid_grant', 'the credential was refused');
    }
    return send(res, 200, response, { pragma: 'no-cache' });
  }

  /**
   * For data planes: is this credential good, who is it, which databases does it reach and
   * which RLS predicates apply — or 401 (and 403 for a database it does not reach).
   */
  private async authenticate(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const body = await readJson(req);
    if (typeof body.credential !== 'string') throw fail(400, '22023', 'the body must be {"credential": "<API key or JWT>"}', 'Optionally with "database".');
    const p = await this.verify(body.credential, peerOf(req));
    this.limit(p, res);
    const view = this.engine.catalog;
    const databases = (p.auth.databases as string[] | null) ?? [];
    if (typeof body.database === 'string' && !databases.includes(body.database)) {
      const reason = `DATABASE_NOT_AUTHORIZED: this credential does not reach database "${body.database}"`;
      await this.engine.record({ kind: 'denial', at: this.engine.clock(), tenant: p.user.tenantId, actor: p.user.name, address: peerOf(req).address, statement: 'Authenticate', object: body.database, reason });
      throw fail(403, '42501', reason);
    }
    const rls: Json[] = [];
    for (const dbName of typeof body.database === 'string' ? [body.database] : databases) {
      const db = view.databaseByName(p.user.tenantId, dbName);
      if (!db) continue;
      const policies = [...view.rlsPolicies()].filter((x) => x.databaseId === db.id);
      for (const collection of [...new Set(policies.map((x) => x.collection))].sort()) {
        for (const kind of ['read', 'write'] as const) {
          const e = effectivePredicate(policies.filter((x) => x.collection === collection && (x.kind === kind || x.kind === 'all')), p.auth);
          rls.push({ database: dbName, collection, for: kind, policies: e.policies, predicate: e.predicate, postgresql: e.postgresql });
        }
      }
    }
    const permissions = this.permissions(p, typeof body.database === 'string' ? body.database : null);
    return send(res, 200, { authenticated: true, ...describePrincipal(p), databases, permissions, rls });
  }

  /**
   * The principal's effective privileges (those SHOW PERMISSIONS lists), from the one
   * function every check uses: a key's role caps what its owner's grants give.
   */
  private permissions(p: Principal, database: string | null): Json[] {
    const e = effectiveOf(p.user, this.engine.catalog, this.engine.clock());
    return permissionsOf(e)
      .filter((x) => database === null || x.database === database)
      .map((x) => ({ database: x.database, collection: x.collection, privilege: x.privilege.toUpperCase(), source: x.source }));
  }
}

const ROUTES = new Set([
  'GET /healthz',
  'GET /readyz',
  'GET /metrics',
  'GET /v1/whoami',
  'POST /v1/query',
  'POST /v1/authenticate',
  'POST /v1/token',
  'GET /.well-known/jwks.json',
  'GET /.well-known/openid-configuration',
]);

function describePrincipal(p: Principal): Json {
  const auth: Json = {};
  for (const [k, v] of Object.entries(p.auth)) if (k !== 'claims') auth[k] = v;
  for (const [k, v] of Object.entries(p.auth.claims)) auth[`claims.${k}`] = v;
  return { principal: { name: p.user.name, id: p.auth.id, role: p.auth.role, tenant_id: p.auth.tenant_id, method: p.method }, auth };
}

/** Error fields a client may see: SQLSTATE, message, detail, hint (never the statement). */
function publicFields(f: ErrorFields): Json {
  return { code: f.code, message: f.message, ...(f.detail ? { detail: f.detail } : {}), ...(f.hint ? { hint: f.hint } : {}), ...(f.position ? { position: Number(f.position) } : {}) };
}

function peerOf(req: http.IncomingMessage): PeerInfo {
  return { address: req.socket.remoteAddress ?? '', port: req.socket.remotePort ?? 0, tls: 'encrypted' in req.socket };
}

function send(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent) return void res.end();
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store', ...headers }).end(text);
}

/**
 * The token endpoint's body: application/x-www-form-urlencoded (RFC 6749 §4.3.2), or a
 * JSON object for clients that send one.
 */
async function readForm(req: http.IncomingMessage): Promise<Json> {
  if (!/^application\/x-www-form-urlencoded\b/i.test(req.headers['content-type'] ?? '')) return readJson(req);
  const text = await readText(req);
  const out: Json = {};
  for (const [k, v] of new URLSearchParams(text)) {
    // RFC 6749 §3.2: parameters must not be included more than once.
    if (k in out) throw new TokenGrantError('invalid_request', `parameter "${k}" given more than once`);
    out[k] = v;
  }
  return out;
}

/** A JSON object body of at most MAX_BODY_BYTES (413 beyond, 400 when not JSON). */
async function readJson(req: http.IncomingMessage): Promise<Json> {
  const text = await readText(req);
  try {
    const v = JSON.parse(text) as unknown;
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('not an object');
    return v as Json;
  } catch {
    throw fail(400, '22P02', 'the request body is not a JSON object');
  }
}

/** A body of at most MAX_BODY_BYTES (413 beyond), as text. */
function readText(req: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > MAX_BODY_BYTES) {
      req.resume();
      return reject(fail(413, '54000', `request body larger than ${MAX_BODY_BYTES} bytes`));
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) {
        reject(fail(413, '54000', `request body larger than ${MAX_BODY_BYTES} bytes`));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

