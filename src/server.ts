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
  /** Encryption at rest: the data directory's key (--encryption-key-file); null: plaintext. */
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
    ? { store: new PostgresStore(opts.catalog, { log: opts.log }) }
    : opts.dataDir === null ? { store: new MemoryStore() } : dataDirOptions(opts.dataDir, { keys: keysOf(opts.encryption ?? null), warn: opts.log, io: opts.logIo });
  const det = opts.deterministic ? deterministic() : null;
  const engine = new Engine({
    ...onDisk,
    scramIterations: opts.scramIterations,
    bootstrapUser: opts.bootstrapUser,
    bootstrapPassword: opts.bootstrapPassword || (det ? DETERMINISTIC_BOOTSTRAP_PASSWORD : undefined),
    announce: opts.announce,
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
  });
  await engine.open();
  const handler: WireHandler = { startAuth: (startup, peer) => startLogin(engine, startup, peer, opts.certLogin ?? 'subject') };
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
    },
  };
}
