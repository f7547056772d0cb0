import type { BlockCommitHooks } from './engine/session.js';
import http from 'node:http';
import https from 'node:https';
import tls from 'node:tls';
import { tlsServerEndPoint } from './net/channel-binding.js';
import { DEFAULT_LOCKOUT_POLICY, type LockoutPolicy } from './engine/lockouts.js';
import { Engine } from './engine/engine.js';
import { deterministic, DETERMINISTIC_BOOTSTRAP_PASSWORD } from './engine/deterministic.js';
import { startLogin } from './engine/login.js';
import { HttpApi } from './http/api.js';
import { DEFAULT_RATE_LIMIT, type RateLimitPolicy } from './http/rate-limit.js';
import { DEFAULT_JWKS_POLICY, type JwksPolicy } from './auth/jwks.js';
import { DEFAULT_TOKEN_POLICY, type TokenPolicy } from './auth/jwt.js';
import type { LogIo } from './store/log-store.js';
import { MemoryStore } from './store/store.js';
import { PostgresStore } from './store/postgres-store.js';
import { keysOf, type Cipher } from './store/cipher.js';
import { dataDirOptions } from './engine/data-dir.js';
import { listen, type Listener, type TlsOffer } from './wire/listener.js';
import type { WireHandler } from './wire/handler.js';
import type { ParseLimits } from '../grammar/index.js';
import type { AuthExchange, QuerySession } from './wire/handler.js';
import { EngineSession } from './engine/session.js';
import type { DataPlane, PlaneDatabase } from './dataplane/types.js';
import { DETERMINISTIC_PLANE_SETTINGS, EmbeddedPlane } from './dataplane/embedded.js';
import { UpstreamPlane } from './dataplane/upstream.js';
import type { PoolSettings } from './dataplane/pool.js';
import { PlaneSession, type AfterDdl, type TurnIdentity } from './dataplane/forwarder.js';
import { DataPlaneGate, planeDatabaseOf } from './dataplane/gate.js';
import type { IssuerPolicy } from './engine/issuer.js';

export interface ServerOptions {
  host: string;
  port: number;
  /** null: no HTTP listener. */
  httpPort: number | null;
  /** null: in memory. */
  dataDir: string | null;
  /** A PostgreSQL URL (--catalog): the catalog lives there, shared with other instances; dataDir is not used. */
  catalog?: string | null;
  scramIterations?: number;
  bootstrapUser?: string;
  bootstrapPassword?: string;
  /** PORTCULLIS_BOOTSTRAP_DISABLE_AFTER_SETUP (see EngineOptions). */
  bootstrapDisableAfterSetup?: boolean;
  announce?: (line: string) => void;
  log?: (line: string) => void;
  authTimeoutMs?: number;
  maxConnections?: number;
  /** Deterministic mode (--deterministic): fixed clock stepping per statement, seeded random. */
  deterministic?: boolean;
  /** Milliseconds since the epoch; tests pass a fixed clock. */
  clock?: () => number;
  random?: (bytes: number) => Buffer;
  /** Compact the log into a snapshot once it holds this many bytes (default 64 MiB). */
  compactAt?: number;
  /** Encryption at rest: the data directory's or the PostgreSQL catalog's key (--encryption-key-file); null: plaintext. */
  encryption?: Cipher | null;
  /** Tests: how the log writes (to inject ENOSPC and I/O errors). */
  logIo?: LogIo;
  /** JWKS caching and token checks (DEFAULT_JWKS_POLICY, DEFAULT_TOKEN_POLICY where absent). */
  jwksPolicy?: Partial<JwksPolicy>;
  tokenPolicy?: Partial<TokenPolicy>;
  /** HTTP requests per principal (DEFAULT_RATE_LIMIT where absent, as for `portcullis serve`). */
  rateLimit?: Partial<RateLimitPolicy>;
  /** Brute-force lockouts (DEFAULT_LOCKOUT_POLICY where absent, as for `portcullis serve`). */
  lockoutPolicy?: Partial<LockoutPolicy>;
  /** TLS for pgwire (SSLRequest) and HTTPS: PEM certificate chain and key. */
  tls?: TlsFiles | null;
  /** Refuse cleartext pgwire startups (28000); 'except-loopback' exempts this machine. */
  requireTls?: 'off' | 'on' | 'except-loopback';
  /** How a verified client certificate names its user: CERTIFICATE SUBJECT (default) or CN = user name. */
  certLogin?: 'subject' | 'cn';
  /** Statement size and complexity limits (max_statement_bytes, ...); defaults where absent. */
  parseLimits?: Partial<ParseLimits>;
  /** The token issuer: its URL (default: this HTTP API's own) and token lifetimes. */
  issuer?: Partial<IssuerPolicy>;
  /**
   * Where SQL that is not the admin language runs (SPEC §10): 'embedded' (PGlite under the
   * data directory, in memory without one), an upstream PostgreSQL, a DataPlane made by the
   * caller (tests share one), or 'off' (the default here: 0A000).
   */
  dataPlane?: 'embedded' | 'off' | { upstream: string; pool?: Partial<PoolSettings> } | DataPlane;
  /**
   * For each session opened on the data plane: what each of its turns runs first (its
   * identity) and what follows its DDL (see forwarder.ts). The session is the one logging
   * in, so the hooks can read its principal, effective privileges and `$auth` values.
   */
  dataPlaneHooks?: (session: EngineSession, database: PlaneDatabase) => DataPlaneHooks;
}

export interface DataPlaneHooks {
  identity?: TurnIdentity;
  afterDdl?: AfterDdl;
  ended?: () => void;
  recheck?: () => void;
  /** The data plane's part of committing a block of both languages (without it, such a COMMIT is refused). */
  commit?: BlockCommitHooks;
}

export interface TlsFiles {
  cert: string;
  key: string;
  /** mTLS: the CA (PEM) client certificates must chain to, and its CRL (PEM). */
  clientCa?: string;
  crl?: string;
}

function tlsOffer(files: TlsFiles): TlsOffer {
  const context = tls.createSecureContext({ cert: files.cert, key: files.key, ...(files.clientCa ? { ca: files.clientCa } : {}), ...(files.crl ? { crl: files.crl } : {}) });
  return { context, requestCert: !!files.clientCa, channelBinding: tlsServerEndPoint(files.cert) };
}

/** API key last-use times are written this often (not one fsync per use). */
const KEY_USE_FLUSH_MS = 60_000;

export interface RunningServer {
  readonly port: number;
  readonly httpPort: number | null;
  readonly engine: Engine;
  /** New certificate and key (SIGHUP): new connections use them, open ones keep theirs. */
  reloadTls(files: TlsFiles): void;
  close(): Promise<void>;
}

/** Composition root: store → engine → pgwire listener (and the HTTP health endpoints). */
export async function startServer(opts: ServerOptions): Promise<RunningServer> {
  const onDisk = opts.catalog
    ? { store: new PostgresStore(opts.catalog, { log: opts.log, keys: keysOf(opts.encryption ?? null) }) }
    : opts.dataDir === null ? { store: new MemoryStore() } : dataDirOptions(opts.dataDir, { keys: keysOf(opts.encryption ?? null), warn: opts.log, io: opts.logIo });
  const det = opts.deterministic ? deterministic() : null;
  const engine = new Engine({
    ...onDisk,
    scramIterations: opts.scramIterations,
    bootstrapUser: opts.bootstrapUser,
    bootstrapPassword: opts.bootstrapPassword || (det ? DETERMINISTIC_BOOTSTRAP_PASSWORD : undefined),
    announce: opts.announce,
    bootstrapDisableAfterSetup: opts.bootstrapDisableAfterSetup,
    maxConnections: opts.maxConnections,
    compactAt: opts.compactAt,
    log: opts.log,
    clock: opts.clock ?? det?.clock,
    advanceClock: det?.advanceClock,
    random: opts.random ?? det?.random,
    jwksPolicy: opts.jwksPolicy ? { ...DEFAULT_JWKS_POLICY, ...opts.jwksPolicy } : undefined,
    tokenPolicy: opts.tokenPolicy ? { ...DEFAULT_TOKEN_POLICY, ...opts.tokenPolicy } : undefined,
    lockoutPolicy: opts.lockoutPolicy ? { ...DEFAULT_LOCKOUT_POLICY, ...opts.lockoutPolicy } : undefined,
    parseLimits: opts.parseLimits,
    issuer: opts.issuer,
  });
  await engine.open();
  if (opts.deterministic && opts.catalog && !engine.bootstrapped) {
    // Its clock and seeded ids and secrets would repeat what the catalog already holds.
    await engine.close();
    throw new Error('--deterministic with --catalog needs an empty catalog (a fresh database or schema): this one already holds commits');
  }
  let plane: DataPlane | null;
  try {
    plane = makeDataPlane(opts);
  } catch (err) {
    await engine.close();
    throw err;
  }
  // A plane the caller made is the caller's to close.
  const ownPlane = plane !== null && plane !== opts.dataPlane;
  // The gate keeps the data plane in line with the catalog and gives each turn its identity;
  // tests of the forwarding alone may bring hooks of their own.
  const gate = plane ? new DataPlaneGate(plane, { catalog: () => engine.catalog, clock: () => engine.clock(), log: opts.log }) : null;
  if (gate) {
    try {
      await recoverCommits(engine, gate, opts.log);
    } catch (err) {
      if (ownPlane) await plane!.close().catch(() => undefined);
      await engine.close();
      throw err;
    }
    engine.followCommits((mutations) => gate.committed(mutations));
    if (plane instanceof UpstreamPlane && plane.pooled) {
      const upstream = plane;
      engine.poolStats = () => upstream.poolStats();
    }
    engine.policySql = async (policy) => {
      const db = planeDatabaseOf(engine.catalog, policy.databaseId, plane!.namespace);
      return db ? gate.installed(db, policy) : null;
    };
  }
  const hooks =
    opts.dataPlaneHooks ??
    ((session: EngineSession, database: PlaneDatabase): DataPlaneHooks => ({
      identity: (turn) => gate!.turn(session, database, turn),
      afterDdl: (lease) => gate!.afterDdl(database, lease),
      ended: () => gate!.forget(session),
      recheck: () => gate!.recheck(session, database),
      commit: {
        prepareBlock: (lease, view, txid) => gate!.prepareBlock(database, lease, view, txid),
        outcome: (lease, txid) => gate!.outcome(lease.admin, txid),
      },
    }));
  const onPlane = (exchange: AuthExchange): AuthExchange => (plane ? withDataPlane(exchange, engine, plane, hooks) : exchange);
  const handler: WireHandler = { startAuth: (startup, peer) => onPlane(startLogin(engine, startup, peer, opts.certLogin ?? 'subject')) };
  let offer: TlsOffer | null = opts.tls ? tlsOffer(opts.tls) : null;
  if (opts.requireTls && opts.requireTls !== 'off' && !offer) {
    await engine.close();
    throw new Error('--require-tls needs --tls-cert and --tls-key');
  }
  let pg: Listener;
  try {
    pg = await listen(handler, opts.host, opts.port, { log: opts.log, authTimeoutMs: opts.authTimeoutMs, requireTls: opts.requireTls, tls: () => offer });
  } catch (err) {
    await engine.close();
    throw err;
  }
  let httpServer: http.Server | https.Server | null = null;
  let httpPort: number | null = null;
  if (opts.httpPort !== null) {
    const api = new HttpApi(engine, { ...DEFAULT_RATE_LIMIT, ...opts.rateLimit });
    try {
      await api.shareRateLimits();
    } catch (err) {
      await pg.close();
      await engine.close();
      throw err;
    }
    const limits = { requestTimeout: 30_000, headersTimeout: 10_000, maxHeaderSize: 16 * 1024 };
    httpServer = opts.tls ? https.createServer({ ...limits, cert: opts.tls.cert, key: opts.tls.key }, api.handle) : http.createServer(limits, api.handle);
    try {
      await new Promise<void>((resolve, reject) => {
        httpServer!.once('error', reject);
        httpServer!.listen(opts.httpPort!, opts.host, () => resolve());
      });
    } catch (err) {
      await pg.close();
      await engine.close();
      throw err;
    }
    httpPort = (httpServer.address() as { port: number }).port;
    // The issuer's URL is where its discovery document is served, unless configured.
    if (!opts.issuer?.url) engine.issuer.policy.url = `${opts.tls ? 'https' : 'http'}://${opts.host.includes(':') ? `[${opts.host}]` : opts.host}:${httpPort}`;
  }
  const flushKeyUses = setInterval(() => {
    engine.flushKeyUses().catch((err: Error) => opts.log?.(`could not record API key use (will retry): ${err.message}`));
  }, KEY_USE_FLUSH_MS);
  flushKeyUses.unref();
  return {
    port: pg.port,
    httpPort,
    engine,
    reloadTls(files: TlsFiles) {
      const next = tlsOffer(files); // throws on a bad pair: the old one stays
      offer = next;
      if (httpServer instanceof https.Server) httpServer.setSecureContext({ cert: files.cert, key: files.key });
    },
    async close() {
      clearInterval(flushKeyUses);
      await pg.close();
      if (httpServer) {
        httpServer.closeAllConnections();
        await new Promise<void>((r) => httpServer!.close(() => r()));
      }
      await engine.flushKeyUses().catch(() => undefined);
      await engine.close();
      if (ownPlane) await plane!.close();
    },
  };
}

function makeDataPlane(opts: ServerOptions): DataPlane | null {
  const p = opts.dataPlane ?? 'off';
  if (p === 'off') return null;
  // Deterministic mode's instances start as the golden runner's do (golden/planes.ts).
  if (p === 'embedded') return new EmbeddedPlane(opts.dataDir === null ? { memory: true, ...(opts.deterministic ? { settings: DETERMINISTIC_PLANE_SETTINGS } : {}) } : { dataDir: opts.dataDir });
  if ('upstream' in p) return new UpstreamPlane(p.upstream, p.pool ? { pool: p.pool } : {});
  return p;
}

/**
 * The login's session gets its data plane: the PostgreSQL database of its startup
 * database (by ids: SPEC §10's name mapping is the plane's), made on first use.
 */
function withDataPlane(exchange: AuthExchange, engine: Engine, plane: DataPlane, hooks: ServerOptions['dataPlaneHooks']): AuthExchange {
  return {
    mechanisms: exchange.mechanisms,
    immediate: exchange.immediate,
    step: (mechanism, data) => exchange.step(mechanism, data),
    password: (text) => exchange.password(text),
    async open(): Promise<QuerySession> {
      const session = await exchange.open();
      if (session instanceof EngineSession) {
        const tenantId = session.login.user.tenantId;
        const db = engine.catalog.databaseByName(tenantId, session.database);
        if (db) {
          const database: PlaneDatabase = {
            tenantId,
            databaseId: db.id,
            tenantName: engine.catalog.tenantById(tenantId)?.name ?? String(tenantId),
            databaseName: db.name,
            ...(plane.namespace === undefined ? {} : { namespace: plane.namespace }),
          };
          const h = hooks?.(session, database);
          session.attachDataPlane(new PlaneSession({ plane, database, ...h }), h?.commit);
        }
      }
      return session;
    },
  };
}

/**
 * Recovery of the commit protocol (docs/data-plane.md): a prepare record the crash left
 * without a decision is decided the way the data plane's block came out, read from its
 * outcome row. Committed there, the catalog's changes apply; not there, they are dropped.
 * The data plane is then brought in line with the catalog (each database is synced before
 * its first SQL, as at every start).
 */
async function recoverCommits(engine: Engine, gate: DataPlaneGate, log?: (line: string) => void): Promise<void> {
  for (const u of engine.undecidedCommits()) {
    const db = planeDatabaseOf(engine.catalog, u.databaseId, gate.plane.namespace);
    let committed = false;
    if (db) {
      await gate.plane.ensureDatabase(db);
      committed = await gate.plane.withAdmin(db, (sql) => gate.outcome(sql, u.txid));
    }
    await engine.decideCommit(u.txid, committed);
    log?.(`recovery: transaction ${u.txid} of both languages ${committed ? 'committed' : 'rolled back'} (as the data plane's block did)`);
  }
}
