import http from 'node:http';
import { Engine } from './engine/engine.js';
import { deterministic, DETERMINISTIC_BOOTSTRAP_PASSWORD } from './engine/deterministic.js';
import { PasswordLogin } from './engine/login.js';
import { LogStore, type LogIo } from './store/log-store.js';
import { MemoryStore, type Store } from './store/store.js';
import { listen, type Listener } from './wire/listener.js';
import type { WireHandler } from './wire/handler.js';

export interface ServerOptions {
  host: string;
  port: number;
  /** null: no HTTP listener. */
  httpPort: number | null;
  /** null: in memory. */
  dataDir: string | null;
  scramIterations?: number;
  bootstrapUser?: string;
  bootstrapPassword?: string;
  announce?: (line: string) => void;
  log?: (line: string) => void;
  authTimeoutMs?: number;
  maxConnections?: number;
  /** Deterministic mode (SPEC §8): fixed clock stepping per statement, seeded random. */
  deterministic?: boolean;
  /** Milliseconds since the epoch; tests pass a fixed clock. */
  clock?: () => number;
  random?: (bytes: number) => Buffer;
  /** Compact the log into a snapshot once it holds this many bytes (default 64 MiB). */
  compactAt?: number;
  /** Tests: how the log writes (to inject ENOSPC and I/O errors). */
  logIo?: LogIo;
}

export interface RunningServer {
  readonly port: number;
  readonly httpPort: number | null;
  readonly engine: Engine;
  close(): Promise<void>;
}

/** Composition root: store → engine → pgwire listener (and the HTTP health endpoints). */
export async function startServer(opts: ServerOptions): Promise<RunningServer> {
  const store: Store = opts.dataDir === null ? new MemoryStore() : new LogStore(opts.dataDir, opts.log, opts.logIo);
  const det = opts.deterministic ? deterministic() : null;
  const engine = new Engine({
    store,
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
  });
  await engine.open();
  const handler: WireHandler = { startAuth: (startup, peer) => new PasswordLogin(engine, startup, peer) };
  let pg: Listener;
  try {
    pg = await listen(handler, opts.host, opts.port, { log: opts.log, authTimeoutMs: opts.authTimeoutMs });
  } catch (err) {
    await engine.close();
    throw err;
  }
  let httpServer: http.Server | null = null;
  let httpPort: number | null = null;
  if (opts.httpPort !== null) {
    httpServer = http.createServer((req, res) => {
      // The JSON API (SPEC §1.3) arrives with the credentials work; health answers now.
      if (req.method === 'GET' && (req.url === '/healthz' || req.url === '/readyz')) {
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}');
      } else {
        res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":{"code":"not_found","message":"no such route"}}');
      }
    });
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
  return {
    port: pg.port,
    httpPort,
    engine,
    async close() {
      await pg.close();
      if (httpServer) {
        httpServer.closeAllConnections();
        await new Promise<void>((r) => httpServer!.close(() => r()));
      }
      await engine.close();
    },
  };
}
