import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, copyFileSync, cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { account, chownTree, freePort, pgEnv, postgresBinaries, templateCluster, waitReady, type Account } from './postgres.js';
import type { TestCerts } from './certs.js';

/**
 * PostgreSQL servers a test stops, kills, restarts and fails over, for the catalog shared by
 * several instances (test/support/postgres.ts starts a server that only stops). Each node
 * keeps its port across restarts, so the URLs given to portcullis stay right; the test's own
 * queries go through the node's Unix socket, so they work whatever the TCP rules (TLS only).
 *
 *   const primary = await startNode({ settings: { synchronous_standby_names: '*' } });
 *   const standby = await startStandby(primary);
 *   await primary.kill(); await standby.promote();
 */
export interface PgNode {
  readonly port: number;
  readonly password: string;
  /** postgres://postgres:PW@127.0.0.1:PORT/DB over TCP (add ?sslmode=... for TLS). */
  url(db?: string): string;
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(sql: string, params?: unknown[], db?: string): Promise<R[]>;
  /** SIGKILL of the postmaster: no shutdown at all (its backends exit as they notice). */
  kill(): Promise<void>;
  /** Fast shutdown (SIGINT): sessions are ended, as by `pg_ctl stop -m fast`. */
  stop(): Promise<void>;
  /** Starts it again on the same port and data. */
  start(): Promise<void>;
  /** A standby becomes a primary (pg_promote, waiting for it). */
  promote(): Promise<void>;
  log(): string;
  /** Stops it (if running) and removes its directory. */
  remove(): Promise<void>;
}

export interface NodeOptions {
  settings?: Record<string, string>;
  /** TLS on, and pg_hba taking TCP connections over TLS only (SCRAM), refusing them without. */
  tls?: TestCerts;
}

const SOCKET_PASSWORD_FILE = 'password';

/** Runs a PostgreSQL tool as the server's account, with the superuser's password; throws with its output on failure. */
async function runTool(who: Account | null, tool: string, args: string[], password: string): Promise<void> {
  const child = spawn(path.join(postgresBinaries().dir, tool), args, { env: { ...pgEnv(), PGPASSWORD: password }, stdio: ['ignore', 'pipe', 'pipe'], ...(who ? { uid: who.uid, gid: who.gid } : {}) });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const [code] = (await once(child, 'exit')) as [number | null];
  if (code !== 0) throw new Error(`${tool} ${args.join(' ')} failed (${code}): ${out}`);
}

async function makeNode(root: string, data: string, password: string, who: Account | null, opts: NodeOptions): Promise<PgNode> {
  const port = await freePort();
  const settings: Record<string, string> = {
    listen_addresses: '127.0.0.1',
    unix_socket_directories: root,
    password_encryption: 'scram-sha-256',
    // Durable: these tests kill servers and count what survives.
    fsync: 'on',
    synchronous_commit: 'on',
    full_page_writes: 'on',
    wal_level: 'replica',
    max_wal_senders: '5',
    wal_keep_size: '64MB',
    ...(opts.tls ? { ssl: 'on', ssl_cert_file: path.join(root, 'server.pem'), ssl_key_file: path.join(root, 'server.key'), ssl_ca_file: path.join(root, 'ca.pem') } : {}),
    ...opts.settings,
  };
  const args = ['-D', data, '-p', String(port), ...Object.entries(settings).flatMap(([k, v]) => ['-c', `${k}=${v}`])];
  let child: ChildProcess | null = null;
  let stderr = '';
  let exited: Promise<unknown> = Promise.resolve();
  const start = async () => {
    const c = spawn(path.join(postgresBinaries().dir, 'postgres'), args, { env: pgEnv(), stdio: ['ignore', 'ignore', 'pipe'], ...(who ? { uid: who.uid, gid: who.gid } : {}) });
    c.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    exited = once(c, 'exit');
    child = c;
    await waitReady(c, port, Date.now() + 60_000, () => stderr);
  };
  const running = () => child !== null && child.exitCode === null && child.signalCode === null;
  const signal = async (sig: NodeJS.Signals) => {
    if (!running()) return;
    child!.kill(sig);
    await exited;
  };
  const node: PgNode = {
    port,
    password,
    url: (db = 'postgres') => `postgres://postgres:${password}@127.0.0.1:${port}/${db}`,
    async query<R extends pg.QueryResultRow>(sql: string, params?: unknown[], db = 'postgres') {
      const c = new pg.Client({ host: root, port, user: 'postgres', password, database: db });
      await c.connect();
      try {
        return (await c.query<R>(sql, params)).rows;
      } finally {
        await c.end();
      }
    },
    kill: () => signal('SIGKILL'),
    stop: () => signal('SIGINT'),
    start,
    async promote() {
      await node.query('SELECT pg_promote(true, 60)');
    },
    log: () => stderr,
    async remove() {
      await signal('SIGINT');
      rmSync(root, { recursive: true, force: true });
    },
  };
  await start();
  return node;
}

/** A primary: the template cluster copied (see postgres.ts), on a free port. */
export async function startNode(opts: NodeOptions = {}): Promise<PgNode> {
  const who = account();
  const tpl = await templateCluster(who);
  const root = mkdtempSync(path.join(os.tmpdir(), 'portcullis-pgnode-'));
  const data = path.join(root, 'data');
  cpSync(tpl.dir, data, { recursive: true });
  if (opts.tls) {
    copyFileSync(opts.tls.certFile, path.join(root, 'server.pem'));
    copyFileSync(opts.tls.keyFile, path.join(root, 'server.key'));
    copyFileSync(opts.tls.caFile, path.join(root, 'ca.pem'));
    // SCRAM everywhere; over TCP, TLS or nothing.
    writeFileSync(
      path.join(data, 'pg_hba.conf'),
      ['local all all scram-sha-256', 'hostssl all all 127.0.0.1/32 scram-sha-256', 'hostnossl all all 127.0.0.1/32 reject', 'host replication all 127.0.0.1/32 scram-sha-256', ''].join('\n'),
    );
  }
  writeFileSync(path.join(root, SOCKET_PASSWORD_FILE), tpl.password);
  chownTree(root, who);
  chmodSync(data, 0o700);
  if (opts.tls) chmodSync(path.join(root, 'server.key'), 0o600);
  return makeNode(root, data, tpl.password, who, opts);
}

/** A streaming standby of `primary` (pg_basebackup -R), started and replicating. */
export async function startStandby(primary: PgNode, opts: NodeOptions = {}): Promise<PgNode> {
  const who = account();
  const root = mkdtempSync(path.join(os.tmpdir(), 'portcullis-pgstandby-'));
  const data = path.join(root, 'data');
  chownTree(root, who);
  await runTool(who, 'pg_basebackup', ['-D', data, '-h', '127.0.0.1', '-p', String(primary.port), '-U', 'postgres', '-R', '-X', 'stream', '-c', 'fast', '--no-sync'], primary.password);
  chmodSync(data, 0o700);
  const node = await makeNode(root, data, primary.password, who, opts);
  // Streaming, not only restored: the primary sees it.
  for (const started = Date.now(); ; ) {
    const r = await primary.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_stat_replication WHERE state = 'streaming'`);
    if (r[0]!.n > 0) break;
    if (Date.now() - started > 30_000) throw new Error(`the standby did not start streaming:\n${node.log()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return node;
}
