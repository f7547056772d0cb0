import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The two servers a comparison needs, both on loopback with durable commits: portcullis on
 * a fresh data directory (the CLI as a subprocess, as users run it), and PostgreSQL from
 * Debian's packages in a fresh cluster (fsync and synchronous_commit on, their defaults;
 * SCRAM-SHA-256 for every login). PostgreSQL refuses to run as root: as root, its commands
 * run as the `postgres` user.
 */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const PASSWORD = 'bench-password';

export interface BenchServer {
  name: string;
  port: number;
  user: string;
  database: string;
  pid: number;
  /** CPU time used so far, in µs: by the whole server, and by its busiest single thread of work. */
  cpu(): CpuTime;
  stop(): Promise<void>;
}

export interface CpuTime {
  /** Every thread and process of the server (PostgreSQL: the postmaster, its children, and the ones it has reaped). */
  all: number;
  /** portcullis: the main thread (the event loop, which every statement passes through); PostgreSQL: same as `all`. */
  main: number;
}

/** Clock ticks per second in /proc (USER_HZ: 100 on every Linux this runs on). */
const TICK_US = 1e6 / 100;

/** The fields of a /proc stat line after the command's closing parenthesis (state, ppid, ...). */
const statFields = (text: string) => text.slice(text.lastIndexOf(')') + 2).split(' ');

/** utime, stime, cutime, cstime of a /proc stat line, in µs. */
const timesOf = (f: string[]) => [f[11], f[12], f[13], f[14]].map((x) => Number(x) * TICK_US);

function statTimes(file: string): number[] {
  try {
    return timesOf(statFields(readFileSync(file, 'utf8')));
  } catch {
    return [0, 0, 0, 0]; // gone between listing and reading
  }
}

/** The CPU of this process's children it has waited for (spawnSync waits for pgbench). */
function reapedChildrenCpu(): number {
  const [, , cu, cs] = statTimes('/proc/self/stat');
  return cu! + cs!;
}

/** A process's CPU with its reaped children's, plus its live children's (PostgreSQL's backends and workers). */
function treeCpu(pid: number): number {
  // A child reaped between reading the parent and listing the children would be counted
  // nowhere (or twice the other way round): read the parent on both sides until it holds still.
  for (let tries = 0; ; tries++) {
    const before = statTimes(`/proc/${pid}/stat`);
    let children = 0;
    for (const p of readdirSync('/proc')) {
      if (!/^\d+$/.test(p)) continue;
      let f: string[];
      try {
        f = statFields(readFileSync(`/proc/${p}/stat`, 'utf8'));
      } catch {
        continue;
      }
      if (Number(f[1]) !== pid) continue;
      const [u, s] = timesOf(f); // its own user and system time
      children += u! + s!;
    }
    const after = statTimes(`/proc/${pid}/stat`);
    if (after[2] === before[2] && after[3] === before[3]) return after.reduce((a, b) => a + b, 0) + children;
    if (tries === 10) throw new Error('PostgreSQL kept reaping children while its CPU time was read');
  }
}

/** A Node.js server's CPU: the whole process, and its main thread (the event loop). */
function nodeCpu(pid: number): CpuTime {
  const [u, s] = statTimes(`/proc/${pid}/task/${pid}/stat`);
  const [pu, ps] = statTimes(`/proc/${pid}/stat`);
  return { all: pu! + ps!, main: u! + s! };
}

export function postgresBin(): string | null {
  const base = '/usr/lib/postgresql';
  if (!existsSync(base)) return null;
  const versions = readdirSync(base).filter((v) => existsSync(path.join(base, v, 'bin', 'pgbench'))).sort((a, b) => Number(b) - Number(a));
  return versions.length > 0 ? path.join(base, versions[0]!, 'bin') : null;
}

const asRoot = process.getuid?.() === 0;

function run(cmd: string, args: string[], asPostgres = false): string {
  const [c, a] = asPostgres && asRoot ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] : [cmd, args];
  const r = spawnSync(c, a, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr || r.stdout}`);
  return r.stdout;
}

export async function startPostgres(bin: string, port: number, maxConnections = 100): Promise<BenchServer> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bench-pg-'));
  const data = path.join(dir, 'data');
  const pwfile = path.join(dir, 'pw');
  writeFileSync(pwfile, `${PASSWORD}\n`);
  if (asRoot) {
    const uid = Number(run('id', ['-u', 'postgres']).trim());
    const gid = Number(run('id', ['-g', 'postgres']).trim());
    chownSync(dir, uid, gid);
    chownSync(pwfile, uid, gid);
  }
  run(path.join(bin, 'initdb'), ['-D', data, '-U', 'bench', '-A', 'scram-sha-256', `--pwfile=${pwfile}`, '--no-sync'], true);
  run(path.join(bin, 'pg_ctl'), ['-D', data, '-w', '-l', path.join(dir, 'log'), '-o', `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c max_connections=${maxConnections}`, 'start'], true);
  const pid = Number(run('head', ['-1', path.join(data, 'postmaster.pid')], true).trim());
  return {
    name: 'PostgreSQL',
    port,
    cpu: () => {
      const all = treeCpu(pid);
      return { all, main: all };
    },
    user: 'bench',
    database: 'postgres',
    pid,
    stop: async () => {
      run(path.join(bin, 'pg_ctl'), ['-D', data, '-m', 'fast', '-w', 'stop'], true);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** portcullis on a fresh data directory, or (`catalog`) on a catalog in PostgreSQL. */
export async function startPortcullis(args: string[] = [], catalog?: string): Promise<BenchServer> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bench-pcu-'));
  // BENCH_NODE_ARGS: options for portcullis's node (`--cpu-prof --cpu-prof-dir=DIR` to profile it; NODE_OPTIONS refuses --cpu-prof).
  const nodeArgs = (process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const store = catalog ? ['--catalog', catalog] : ['--data', path.join(dir, 'data')];
  const child: ChildProcess = spawn(process.execPath, [...nodeArgs, path.join(ROOT, 'bin/portcullis.js'), 'serve', ...store, '--port', '0', '--http-port', 'off', ...args], {
    env: { ...process.env, PORTCULLIS_BOOTSTRAP_USER: 'bench', PORTCULLIS_BOOTSTRAP_PASSWORD: PASSWORD },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  return nodeServer('portcullis', child, await listening(child), 'bench', 'default', () => rmSync(dir, { recursive: true, force: true }));
}

/** A Node.js server running as `child`: its CPU from /proc, stopped with SIGTERM. */
function nodeServer(name: string, child: ChildProcess, port: number, user: string, database: string, cleanup = () => {}): BenchServer {
  return {
    name,
    port,
    cpu: () => nodeCpu(child.pid!),
    user,
    database,
    pid: child.pid!,
    stop: async () => {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
      cleanup();
    },
  };
}

/**
 * The floor for write statements (pg-floor.ts): a bare pgwire server in Node.js answering
 * after a durable append to portcullis's log (`durable`), or at once (`reply`).
 */
export async function startFloor(mode: 'durable' | 'reply'): Promise<BenchServer> {
  const child = spawn(process.execPath, [path.join(ROOT, 'dist/bench/pg-floor.js'), mode], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout!.once('data', (d: Buffer) => resolve(Number(String(d).trim())));
    child.once('exit', (code) => reject(new Error(`floor server exited with ${code}`)));
  });
  return nodeServer(`floor (${mode})`, child, port, 'floor', 'floor');
}

/**
 * The floor for a proxy (pipe-proxy.ts): a bare Node.js TCP proxy to PostgreSQL on `pgPort`
 * that only pipes bytes, one upstream socket per client; logins pass through to PostgreSQL.
 */
export async function startPipeProxy(pgPort: number, user: string, database: string): Promise<BenchServer> {
  const child = spawn(process.execPath, [path.join(ROOT, 'dist/bench/pipe-proxy.js'), String(pgPort)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout!.once('data', (d: Buffer) => resolve(Number(String(d).trim())));
    child.once('exit', (code) => reject(new Error(`pipe proxy exited with ${code}`)));
  });
  return nodeServer('pipe proxy', child, port, user, database);
}

/** Readiness is the server's own "listening" line (it carries the real port). */
export function listening(child: ChildProcess): Promise<number> {
  let err = '';
  return new Promise((resolve, reject) => {
    child.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      const m = /listening on [^:]+:(\d+) \(pgwire\)/.exec(err);
      if (m) resolve(Number(m[1]));
    });
    child.once('exit', (code) => reject(new Error(`server exited with ${code}: ${err}`)));
  });
}

/** Runs SQL on a server with psql (setup steps). */
export function psql(bin: string, s: BenchServer, sql: string): void {
  const r = spawnSync(path.join(bin, 'psql'), ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-h', '127.0.0.1', '-p', String(s.port), '-U', s.user, '-d', s.database], {
    input: sql,
    encoding: 'utf8',
    env: { ...process.env, PGPASSWORD: PASSWORD },
  });
  if (r.status !== 0) throw new Error(`psql on ${s.name} failed: ${r.stderr}`);
}

export interface PgbenchRun {
  tps: number;
  failed: number;
  /** Transactions pgbench completed, and the server's CPU (µs) while it ran. */
  transactions: number;
  cpu: CpuTime;
  /** pgbench's own CPU (µs): it shares the machine with the server. */
  clientCpu: number;
  wallUs: number;
}

/** One pgbench run (simple protocol unless `mode` says otherwise); tps as pgbench reports it. */
export function pgbench(bin: string, s: BenchServer, script: string, clients: number, seconds: number, connectEach = false, mode: 'simple' | 'prepared' = 'simple'): PgbenchRun {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bench-script-'));
  const file = path.join(dir, 'script.sql');
  writeFileSync(file, script);
  const args = ['-n', '-M', mode, '-f', file, '-c', String(clients), '-j', String(Math.min(clients, 2)), '-T', String(seconds)];
  if (connectEach) args.push('-C');
  args.push('-h', '127.0.0.1', '-p', String(s.port), '-U', s.user, s.database);
  const before = s.cpu();
  const clientBefore = reapedChildrenCpu();
  const started = process.hrtime.bigint();
  // A server that stops answering fails the figure instead of hanging the bench.
  const r = spawnSync(path.join(bin, 'pgbench'), args, { encoding: 'utf8', env: { ...process.env, PGPASSWORD: PASSWORD }, timeout: (seconds + 60) * 1000 });
  const wallUs = Number(process.hrtime.bigint() - started) / 1000;
  const clientCpu = reapedChildrenCpu() - clientBefore;
  const after = s.cpu();
  rmSync(dir, { recursive: true, force: true });
  const tps = /tps = ([\d.]+)/.exec(r.stdout);
  if (!tps) throw new Error(`pgbench on ${s.name} failed: ${r.stderr || r.stdout}`);
  const failed = /number of failed transactions: (\d+)/.exec(r.stdout);
  const done = /number of transactions actually processed: (\d+)/.exec(r.stdout);
  return {
    tps: Number(tps[1]),
    failed: failed ? Number(failed[1]) : 0,
    transactions: done ? Number(done[1]) : 0,
    cpu: { all: after.all - before.all, main: after.main - before.main },
    clientCpu,
    wallUs,
  };
}

export const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
