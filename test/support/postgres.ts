import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, chownSync, cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';

/**
 * A real PostgreSQL server for interop tests: Debian's binaries (/usr/lib/postgresql/N/bin,
 * the newest N), a fresh cluster in a temporary directory, listening on a free loopback
 * port only, SCRAM-SHA-256 for every connection (pg_hba) and for every stored password
 * (password_encryption). Tests run as root and PostgreSQL refuses to run as root, so the
 * server runs as the `postgres` OS user (Debian's package creates it).
 *
 *   const pgsrv = await startPostgres();
 *   const c = new pg.Client(pgsrv.url); ...
 *   await pgsrv.stop();            // stops the server and removes its directory
 */
export interface PostgresServer {
  /** postgres://postgres:PASSWORD@127.0.0.1:PORT/postgres */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  /** The bootstrap superuser and its password. */
  readonly user: string;
  readonly password: string;
  readonly database: string;
  /** The server's version (`15.18`), from its binaries. */
  readonly version: string;
  /** A node-postgres client config for `user` (or another role) on `database`. */
  connection(user?: string, password?: string, database?: string): pg.ClientConfig;
  /** Runs SQL as the superuser on a fresh connection and returns the rows. */
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(sql: string, params?: unknown[]): Promise<R[]>;
  /** The server's log so far (stderr), for failure messages. */
  log(): string;
  /** Stops the server (fast shutdown) and removes its directory. Safe to call twice. */
  stop(): Promise<void>;
}

export interface PostgresOptions {
  /** Extra `-c name=value` server settings. */
  settings?: Record<string, string>;
  /** Milliseconds to wait for readiness (default 60 s: initdb and start on a busy 2-core box). */
  timeoutMs?: number;
}

const PG_ROOT = '/usr/lib/postgresql';
const MISSING = `PostgreSQL server binaries not found under ${PG_ROOT}/*/bin (initdb, postgres, pg_isready): run \`bash scripts/test-deps.sh\` to install them`;

interface Binaries {
  dir: string;
  version: string;
}

let binaries: Binaries | undefined;

/** The newest installed major version's bin directory; a clear error naming the installer when there is none. */
export function postgresBinaries(): Binaries {
  if (binaries) return binaries;
  const majors = existsSync(PG_ROOT)
    ? readdirSync(PG_ROOT)
        .filter((d) => /^\d+$/.test(d) && ['initdb', 'postgres', 'pg_isready'].every((b) => existsSync(path.join(PG_ROOT, d, 'bin', b))))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  if (majors.length === 0) throw new Error(MISSING);
  const dir = path.join(PG_ROOT, majors[0]!, 'bin');
  const v = spawnSync(path.join(dir, 'postgres'), ['--version'], { encoding: 'utf8' });
  const version = /(\d+(?:\.\d+)?)/.exec(v.stdout ?? '')?.[1] ?? majors[0]!;
  binaries = { dir, version };
  return binaries;
}

export interface Account {
  uid: number;
  gid: number;
}

/** Who the server runs as: `postgres` when we are root (PostgreSQL refuses root), else ourselves. */
export function account(): Account | null {
  if (process.getuid?.() !== 0) return null;
  const id = (flag: string) => spawnSync('id', [flag, 'postgres'], { encoding: 'utf8' });
  const u = id('-u');
  const g = id('-g');
  if (u.status !== 0 || g.status !== 0) throw new Error(`tests run as root and PostgreSQL refuses root, but there is no "postgres" user: ${MISSING}`);
  return { uid: Number(u.stdout.trim()), gid: Number(g.stdout.trim()) };
}

/** Runs a PostgreSQL binary to completion as the server's account; throws with its output on failure. */
function runAs(who: Account | null, bin: string, args: string[]): void {
  const r = spawnSync(bin, args, { encoding: 'utf8', env: pgEnv(), ...(who ? { uid: who.uid, gid: who.gid } : {}) });
  if (r.status !== 0) throw new Error(`${path.basename(bin)} ${args.join(' ')} failed (${r.status ?? r.signal}): ${r.stdout}${r.stderr}${r.error?.message ?? ''}`);
}

/** A minimal environment: no PG* variables of the caller leak into the server or its tools. */
export function pgEnv(): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH, LANG: 'C.UTF-8', LC_ALL: 'C.UTF-8', TZ: 'UTC' };
}

export function chownTree(dir: string, who: Account | null): void {
  if (!who) return;
  chownSync(dir, who.uid, who.gid);
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    chownSync(path.join(entry.parentPath, entry.name), who.uid, who.gid);
  }
}

/**
 * initdb is the slow part (seconds on a busy machine), so one template cluster per
 * PostgreSQL version is kept in the temporary directory and copied for each server. It is
 * built aside and renamed into place, so parallel test workers never see half of one; every
 * copy has the template's superuser password, which is fine for throwaway loopback servers.
 */
let template: Promise<{ dir: string; password: string }> | undefined;

export function templateCluster(who: Account | null): Promise<{ dir: string; password: string }> {
  template ??= (async () => {
    const { dir: bin, version } = postgresBinaries();
    const cache = path.join(os.tmpdir(), `portcullis-pg-template-${version}-${process.getuid?.() ?? 'user'}`);
    const ready = () => ({ dir: path.join(cache, 'data'), password: readFileSync(path.join(cache, 'password'), 'utf8') });
    if (existsSync(path.join(cache, 'password'))) return ready();
    const work = mkdtempSync(`${cache}.building-`);
    try {
      const password = randomBytes(12).toString('hex');
      const pwfile = path.join(work, 'pwfile');
      writeFileSync(pwfile, `${password}\n`, { mode: 0o600 });
      chownTree(work, who);
      runAs(who, path.join(bin, 'initdb'), [
        '-D', path.join(work, 'data'),
        '-U', 'postgres',
        `--pwfile=${pwfile}`,
        // Every login, over TCP and the socket, is SCRAM-SHA-256: the method under test.
        '--auth=scram-sha-256',
        '-E', 'UTF8',
        '--locale=C.UTF-8',
        '--no-sync',
      ]);
      rmSync(pwfile);
      writeFileSync(path.join(work, 'password'), password);
      renameSync(work, cache);
    } catch (err) {
      rmSync(work, { recursive: true, force: true });
      // Another worker renamed its template into place first: use that one.
      if (existsSync(path.join(cache, 'password'))) return ready();
      throw err;
    }
    return ready();
  })();
  return template;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/** Polls pg_isready until the server accepts connections; fails at once if it exits. */
export async function waitReady(child: ChildProcess, port: number, deadline: number, log: () => string): Promise<void> {
  const { dir: bin } = postgresBinaries();
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`postgres exited (${child.exitCode ?? child.signalCode}) before it was ready:\n${log()}`);
    const probe = spawn(path.join(bin, 'pg_isready'), ['-q', '-h', '127.0.0.1', '-p', String(port), '-d', 'postgres', '-t', '2'], { env: pgEnv(), stdio: 'ignore' });
    const [code] = (await once(probe, 'exit')) as [number | null];
    if (code === 0) return;
    if (Date.now() > deadline) throw new Error(`postgres on port ${port} not ready in time:\n${log()}`);
    // A short pause between probes (pg_isready answers at once while the server starts).
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Starts a throwaway PostgreSQL server on a free loopback port (see PostgresServer). */
export async function startPostgres(opts: PostgresOptions = {}): Promise<PostgresServer> {
  const { dir: bin, version } = postgresBinaries();
  const who = account();
  const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
  const tpl = await templateCluster(who);
  const root = mkdtempSync(path.join(os.tmpdir(), 'portcullis-pg-'));
  const data = path.join(root, 'data');
  cpSync(tpl.dir, data, { recursive: true });
  chownTree(root, who);
  chmodSync(data, 0o700);
  const settings: Record<string, string> = {
    listen_addresses: '127.0.0.1',
    unix_socket_directories: root,
    password_encryption: 'scram-sha-256',
    // Throwaway data: no need to survive a crash, and the disk is shared with other tests.
    fsync: 'off',
    synchronous_commit: 'off',
    full_page_writes: 'off',
    ...opts.settings,
  };
  const settingArgs = Object.entries(settings).flatMap(([k, v]) => ['-c', `${k}=${v}`]);

  let lastError: Error | undefined;
  // The free port is found by binding port 0 and letting it go; another process may take it
  // before PostgreSQL binds it, so a start that fails to bind is retried on a new port.
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort();
    const child = spawn(path.join(bin, 'postgres'), ['-D', data, '-p', String(port), ...settingArgs], {
      env: pgEnv(),
      stdio: ['ignore', 'ignore', 'pipe'],
      ...(who ? { uid: who.uid, gid: who.gid } : {}),
    });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = once(child, 'exit');
    try {
      await waitReady(child, port, deadline, () => stderr);
    } catch (err) {
      lastError = err as Error;
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
      if (/could not bind|Address already in use/i.test(stderr) && Date.now() < deadline) continue;
      rmSync(root, { recursive: true, force: true });
      throw lastError;
    }
    const host = '127.0.0.1';
    const user = 'postgres';
    const password = tpl.password;
    const database = 'postgres';
    const connection = (u = user, p = password, db = database): pg.ClientConfig => ({ host, port, user: u, password: p, database: db });
    let stopped: Promise<void> | undefined;
    return {
      url: `postgres://${user}:${password}@${host}:${port}/${database}`,
      host,
      port,
      user,
      password,
      database,
      version,
      connection,
      async query<R extends pg.QueryResultRow>(sql: string, params?: unknown[]) {
        const c = new pg.Client(connection());
        await c.connect();
        try {
          return (await c.query<R>(sql, params)).rows;
        } finally {
          await c.end();
        }
      },
      log: () => stderr,
      stop() {
        stopped ??= (async () => {
          // SIGINT is PostgreSQL's fast shutdown: open sessions are ended, not waited for.
          if (child.exitCode === null && child.signalCode === null) child.kill('SIGINT');
          await exited;
          rmSync(root, { recursive: true, force: true });
        })();
        return stopped;
      },
    };
  }
  rmSync(root, { recursive: true, force: true });
  throw lastError ?? new Error('postgres did not start');
}
