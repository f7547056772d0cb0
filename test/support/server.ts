import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { startServer, type RunningServer, type ServerOptions } from '../../src/server.js';
import { psql } from './psql.js';

export const ADMIN_PASSWORD = 'bootstrap-secret';
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** An in-process server on port 0 with an in-memory catalog (or `dataDir`). */
export async function startTestServer(opts: Partial<ServerOptions> = {}): Promise<RunningServer> {
  return startServer({
    host: '127.0.0.1',
    port: 0,
    httpPort: null,
    dataDir: null,
    bootstrapPassword: ADMIN_PASSWORD,
    announce: () => {},
    log: () => {},
    ...opts,
  });
}

/** A test server with `statements` already applied by psql (ON_ERROR_STOP: any error fails). */
export async function startTestServerWith(statements: string[], opts: Partial<ServerOptions> = {}): Promise<RunningServer> {
  const server = await startTestServer(opts);
  const r = await psql(server.port, ['-v', 'ON_ERROR_STOP=1', '-q'], { input: statements.join('\n') });
  if (r.stderr !== '' || r.code !== 0) {
    await server.close();
    throw new Error(`setup script failed: ${r.stderr}`);
  }
  return server;
}

export function connectionConfig(port: number, user = 'admin', password = ADMIN_PASSWORD): pg.ClientConfig {
  return { host: '127.0.0.1', port, user, password, database: 'default' };
}

export async function client(port: number, user = 'admin', password = ADMIN_PASSWORD): Promise<pg.Client> {
  const c = new pg.Client(connectionConfig(port, user, password));
  await c.connect();
  return c;
}

/** The error a login attempt ends with (or null when it succeeds). */
export async function loginError(port: number, user: string, password: string, database = 'default'): Promise<(Error & { code?: string }) | null> {
  const c = new pg.Client({ ...connectionConfig(port, user, password), database });
  c.on('error', () => {});
  try {
    await c.connect();
    await c.end();
    return null;
  } catch (err) {
    return err as Error & { code?: string };
  }
}

export interface ServerProcess {
  child: ChildProcess;
  port: number;
  stderr: () => string;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/**
 * The real CLI as a subprocess. Readiness is its "listening on host:port" line on stderr
 * (no sleeps); the port comes from that line, since the server binds port 0.
 */
export async function spawnServer(args: string[], env: NodeJS.ProcessEnv = {}): Promise<ServerProcess> {
  const child = spawn(process.execPath, [path.join(ROOT, 'bin/portcullis.js'), 'serve', '--port', '0', '--http-port', 'off', ...args], {
    env: { ...process.env, PORTCULLIS_BOOTSTRAP_PASSWORD: ADMIN_PASSWORD, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  const port = await new Promise<number>((resolve, reject) => {
    child.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      const m = /listening on [^:]+:(\d+) \(pgwire\)/.exec(err);
      if (m) resolve(Number(m[1]));
    });
    child.once('exit', (code) => reject(new Error(`server exited with ${code}: ${err}`)));
  });
  return {
    child,
    port,
    stderr: () => err,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, 'exit');
      child.kill(signal);
      await exited;
    },
  };
}
