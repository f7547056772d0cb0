import { spawn, spawnSync } from 'node:child_process';
import { chownSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { superuserLockdownSql } from '../src/dataplane/provision/index.js';
import { median, PASSWORD, pgbench, postgresBin, psql, startPipeProxy, startPortcullis, startPostgres, type BenchServer } from './servers.js';

/**
 * Transaction pooling against PgBouncer (`BENCH_ONLY=pool`, issue 24): pgbench's select-only
 * transaction (`-S`: a primary-key SELECT on pgbench_accounts, scale 10 = 1,000,000 rows) at
 * 8 and 32 clients, `-M simple` and `-M prepared`, in the same rounds against
 *   (a) PostgreSQL direct,
 *   (b) PgBouncer (Debian's package; pool_mode = transaction, auth_type = scram-sha-256,
 *       default_pool_size 20), on a free port with an ini of its own, as the postgres user,
 *   (c) a bare Node.js proxy that only pipes bytes (one upstream socket per client),
 *   (d) portcullis --upstream (pool_mode transaction, pool_size 20), no policy,
 *   (e) the same with an RLS policy on pgbench_accounts reading $auth;
 * then `pgbench -C` (a SCRAM login per transaction) for (a), (b), (d); then 1,000 idle client
 * connections to PgBouncer and to portcullis: resident memory per idle client, and (b), (d)
 * again at 8 clients with them connected.
 */
const GATEWAY_PASSWORD = 'gateway-secret';
const ACCOUNTS = 1_000_000; // scale 10
const SELECT_ONLY = `\\set aid random(1, ${ACCOUNTS})\nSELECT abalance FROM pgbench_accounts WHERE aid = :aid;\n`;
// pgbench -i's table (the select-only script reads only this one); `owner` for the policy.
const TABLE = (owner: boolean) =>
  `CREATE TABLE pgbench_accounts (aid int PRIMARY KEY, bid int, abalance int, filler char(84)${owner ? ", owner text NOT NULL DEFAULT 'bench'" : ''});\n` +
  `INSERT INTO pgbench_accounts (aid, bid, abalance, filler) SELECT g, (g - 1) / 100000 + 1, 0, '' FROM generate_series(1, ${ACCOUNTS}) g;\n`;
const POLICY = 'CREATE RLS POLICY own ON pbp.pgbench_accounts FOR ALL USING (owner = $auth.username);\n';

const rssKb = (pid: number) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
    s.once('error', reject);
  });
}

/** PgBouncer in transaction mode in front of PostgreSQL on `pgPort`, as the postgres user (it refuses root). */
async function startPgBouncer(pgPort: number, secret: string): Promise<BenchServer> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bench-pgbouncer-'));
  const port = await freePort();
  // The SCRAM secret as PostgreSQL stores it (not the password): PgBouncer then logs in to
  // PostgreSQL with the keys of the client's own SCRAM exchange.
  writeFileSync(path.join(dir, 'userlist.txt'), `"bench" "${secret}"\n`);
  writeFileSync(
    path.join(dir, 'pgbouncer.ini'),
    [
      '[databases]',
      // Its own logins to PostgreSQL with the password (a common set-up; the clients' SCRAM
      // keys passed through would do as well).
      `postgres = host=127.0.0.1 port=${pgPort} dbname=postgres user=bench password=${PASSWORD}`,
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${port}`,
      'unix_socket_dir =',
      'auth_type = scram-sha-256',
      `auth_file = ${path.join(dir, 'userlist.txt')}`,
      'pool_mode = transaction',
      'default_pool_size = 20',
      'max_client_conn = 3000',
      `logfile = ${path.join(dir, 'pgbouncer.log')}`,
      `pidfile = ${path.join(dir, 'pgbouncer.pid')}`,
      '',
    ].join('\n'),
  );
  const root = process.getuid?.() === 0;
  if (root) {
    const id = (f: string) => Number(spawnSync('id', [f, 'postgres'], { encoding: 'utf8' }).stdout.trim());
    for (const f of ['', 'userlist.txt', 'pgbouncer.ini']) chownSync(path.join(dir, f), id('-u'), id('-g'));
  }
  const [cmd, args] = root ? ['runuser', ['-u', 'postgres', '--', 'pgbouncer', path.join(dir, 'pgbouncer.ini')]] : ['pgbouncer', [path.join(dir, 'pgbouncer.ini')]];
  // Its log goes to its logfile; stderr too (a line per login), so stderr is not a pipe
  // nobody reads: once the pipe's 64 KiB filled, PgBouncer blocked on it mid-login.
  const child = spawn(cmd, args as string[], { stdio: 'ignore' });
  // Ready when it takes a connection.
  for (const started = Date.now(); ; ) {
    const ok = await new Promise<boolean>((r) => {
      const s = net.connect({ host: '127.0.0.1', port }, () => (s.destroy(), r(true)));
      s.once('error', () => r(false));
    });
    if (ok) break;
    if (Date.now() - started > 10_000) throw new Error('pgbouncer did not start');
    await new Promise((r) => setTimeout(r, 50));
  }
  const pid = Number(readFileSync(path.join(dir, 'pgbouncer.pid'), 'utf8').trim());
  const cpu = () => {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const x = f.slice(f.lastIndexOf(')') + 2).split(' ');
    const all = (Number(x[11]) + Number(x[12])) * 10_000;
    return { all, main: all };
  };
  return {
    name: 'PgBouncer',
    port,
    user: 'bench',
    database: 'postgres',
    pid,
    cpu,
    stop: async () => {
      const exited = new Promise((r) => child.once('exit', r));
      process.kill(pid, 'SIGTERM');
      // A PgBouncer wedged by a stalled login may not exit on SIGTERM.
      const kill = setTimeout(() => {
        try {
          process.kill(pid, 'SIGKILL');
          child.kill('SIGKILL'); // runuser, which may outlive it
        } catch {
          // gone already
        }
      }, 5000);
      await exited;
      clearTimeout(kill);
      if (!process.env.BENCH_KEEP_LOGS) rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** `n` idle client connections (logged in, nothing run), kept until closed. */
async function idleClients(s: BenchServer, n: number): Promise<pg.Client[]> {
  const out: pg.Client[] = [];
  for (let i = 0; i < n; i += 50) {
    const batch = Array.from({ length: Math.min(50, n - i) }, () => new pg.Client({ host: '127.0.0.1', port: s.port, user: s.user, password: PASSWORD, database: s.database }));
    for (const c of batch) c.on('error', () => {});
    await Promise.all(batch.map((c) => c.connect()));
    out.push(...batch);
  }
  return out;
}

interface Config {
  key: string;
  label: string;
  server: BenchServer;
}

export async function benchPool(runs: number, seconds: number, log: (s: string) => void): Promise<void> {
  const bin = postgresBin();
  if (!bin) {
    log('pool bench skipped: PostgreSQL is not installed (apt-get install postgresql postgresql-client pgbouncer)');
    return;
  }
  // Room for 32 direct clients beside PgBouncer's 20 and portcullis's 20 per database, all kept open.
  const pgsrv = await startPostgres(bin, 55434, 200);
  const started: BenchServer[] = [];
  const n = (x: number) => Math.round(x).toLocaleString('en-US');
  const ratio = (x: number, y: number) => (Number.isNaN(x) || Number.isNaN(y) || y === 0 ? 'n/a' : `${(x / y).toFixed(2)}×`);
  try {
    psql(bin, pgsrv, `CREATE ROLE gateway LOGIN CREATEDB CREATEROLE PASSWORD '${GATEWAY_PASSWORD}';\n${TABLE(false)}VACUUM ANALYZE pgbench_accounts;\n`);
    psql(bin, { ...pgsrv, database: 'template1' }, superuserLockdownSql('gateway'));
    const secret = spawnSync(path.join(bin, 'psql'), ['-X', '-At', '-h', '127.0.0.1', '-p', String(pgsrv.port), '-U', 'bench', '-d', 'postgres', '-c', "SELECT rolpassword FROM pg_authid WHERE rolname = 'bench'"], {
      encoding: 'utf8',
      env: { ...process.env, PGPASSWORD: PASSWORD },
    }).stdout.trim();
    const bouncer = await startPgBouncer(pgsrv.port, secret);
    started.push(bouncer);
    const proxy = await startPipeProxy(pgsrv.port, pgsrv.user, pgsrv.database);
    started.push(proxy);
    // 1,000 idle clients and pgbench's beside them: above the default max_connections (1,000).
    process.env.PORTCULLIS_MAX_CONNECTIONS = '2000';
    const pcu = await startPortcullis(['--upstream', `postgres://gateway:${GATEWAY_PASSWORD}@127.0.0.1:${pgsrv.port}/postgres`, '--pool-mode', 'transaction', '--pool-size', '20']);
    started.push(pcu);
    const setupStarted = Date.now();
    psql(bin, pcu, 'CREATE DATABASE pb;\nCREATE DATABASE pbp;\n');
    psql(bin, { ...pcu, database: 'pb' }, TABLE(false));
    psql(bin, { ...pcu, database: 'pbp' }, TABLE(true));
    psql(bin, { ...pcu, database: 'pbp' }, POLICY);
    log(`  (set-up through portcullis: ${((Date.now() - setupStarted) / 1000).toFixed(0)} s)`);
    const configs: Config[] = [
      { key: 'a', label: 'PostgreSQL direct', server: pgsrv },
      { key: 'b', label: 'PgBouncer 1.18, pool_mode transaction', server: bouncer },
      { key: 'c', label: 'bare Node.js pipe proxy', server: proxy },
      { key: 'd', label: 'portcullis --upstream, pool_mode transaction, no policy', server: { ...pcu, database: 'pb' } },
      { key: 'e', label: 'portcullis --upstream, pool_mode transaction, policy on $auth', server: { ...pcu, database: 'pbp' } },
    ];
    const keep = process.env.BENCH_POOL?.split(',');
    const active = keep ? configs.filter((c) => keep.includes(c.key)) : configs;
    const modes = (process.env.BENCH_MODES?.split(',') ?? ['simple', 'prepared']) as ('simple' | 'prepared')[];
    const clientCounts = (process.env.BENCH_CLIENTS?.split(',') ?? ['8', '32']).map(Number).filter((c) => c > 0);
    const bench = (list: Config[], clients: number, mode: 'simple' | 'prepared', connectEach = false, script = SELECT_ONLY) => {
      const tallies = list.map(() => ({ tps: [] as number[], tx: 0, all: 0, main: 0, pg: 0, client: 0, error: '' }));
      for (let r = 0; r < runs; r++) {
        list.forEach((c, i) => {
          const t = tallies[i]!;
          if (t.error) return;
          const pgBefore = pgsrv.cpu().all;
          try {
            const run = pgbench(bin, c.server, script, clients, seconds, connectEach, mode);
            if (run.failed > 0) throw new Error(`${run.failed} failed transactions`);
            t.tps.push(run.tps);
            t.tx += run.transactions;
            t.all += run.cpu.all;
            t.main += run.cpu.main;
            t.client += run.clientCpu;
            t.pg += pgsrv.cpu().all - pgBefore;
          } catch (err) {
            t.error = (err as Error).message.split('\n').filter((l) => /error|fail/i.test(l)).slice(0, 2).join(' / ') || (err as Error).message.slice(0, 300);
          }
        });
      }
      const tps = (key: string) => {
        const i = list.findIndex((c) => c.key === key);
        const t = tallies[i];
        return !t || t.error || t.tps.length === 0 ? NaN : median(t.tps);
      };
      list.forEach((c, i) => {
        const t = tallies[i]!;
        if (t.error) {
          log(`    (${c.key}) ${c.label}: FAILED: ${t.error}`);
          return;
        }
        const per = (us: number) => n(us / t.tx);
        const own = c.server === pgsrv ? '' : c.server.name === 'portcullis' ? `portcullis ${per(t.all)} µs (main thread ${per(t.main)}), ` : `${c.server.name} ${per(t.all)} µs, `;
        log(`    (${c.key}) ${c.label}: ${n(median(t.tps))} tps (runs ${t.tps.map(n).join(', ')}); CPU per transaction: ${own}PostgreSQL ${per(t.pg)} µs, pgbench ${per(t.client)} µs`);
      });
      return tps;
    };
    for (const clients of clientCounts) {
      for (const mode of modes) {
        log(`  pgbench -S, ${clients} clients, -M ${mode}:`);
        const tps = bench(active, clients, mode);
        const goal = clients === 8 ? 0.9 : 0.8;
        const met = (x: number, y: number, g: number) => (Number.isNaN(x / y) ? '' : x / y >= g ? ' met' : ' NOT met');
        log(
          `    portcullis/PgBouncer ${ratio(tps('d'), tps('b'))} (goal ≥ ${goal}×:${met(tps('d'), tps('b'), goal)}); portcullis/pipe ${ratio(tps('d'), tps('c'))}` +
            `${clients === 32 ? ` (goal ≥ 1.0×:${met(tps('d'), tps('c'), 1)})` : ''}; portcullis/direct ${ratio(tps('d'), tps('a'))}; PgBouncer/direct ${ratio(tps('b'), tps('a'))}; pipe/PgBouncer ${ratio(tps('c'), tps('b'))}; ` +
            `policy/no policy ${ratio(tps('e'), tps('d'))} (goal ≥ 0.8×:${met(tps('e'), tps('d'), 0.8)})`,
        );
      }
    }
    if (!process.env.BENCH_SKIP_IDLE) {
      // Before -C: a PgBouncer that wedged under -C logins would fail these too.
      const IDLE = 1000;
      const within = <T>(p: Promise<T>, ms: number) => Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`no answer in ${ms / 1000} s`)), ms).unref())]);
      const per: Record<string, string> = {};
      const held: pg.Client[] = [];
      for (const [key, s] of [['d', { ...pcu, database: 'pb' }], ['b', bouncer]] as const) {
        const before = rssKb(s.pid);
        try {
          held.push(...(await within(idleClients(s, IDLE), 120_000)));
          const after = rssKb(s.pid);
          per[key] = `${((after - before) / IDLE).toFixed(1)} KB each (RSS ${n(before / 1024)} → ${n(after / 1024)} MB)`;
        } catch (err) {
          per[key] = `FAILED: ${(err as Error).message}`;
        }
      }
      log(`  ${n(IDLE)} idle clients: portcullis ${per.d}, PgBouncer ${per.b}; with them connected, pgbench -S, 8 clients, -M simple:`);
      const tps = bench(configs.filter((c) => c.key === 'b' || c.key === 'd'), 8, 'simple');
      log(`    portcullis/PgBouncer ${ratio(tps('d'), tps('b'))}`);
      for (const c of held) await c.end().catch(() => undefined);
    }
    if (!process.env.BENCH_SKIP_C) {
      log(`  pgbench -C -S (a SCRAM login per transaction), 8 clients, -M simple:`);
      const tps = bench(configs.filter((c) => c.key === 'a' || c.key === 'b' || c.key === 'd'), 8, 'simple', true);
      log(`    portcullis/PgBouncer ${ratio(tps('d'), tps('b'))} (goal ≥ 1.0×: ${tps('d') / tps('b') >= 1 ? 'met' : 'NOT met'}); PgBouncer/direct ${ratio(tps('b'), tps('a'))}`);
    }
  } finally {
    for (const s of started.reverse()) await s.stop();
    await pgsrv.stop();
  }
}
