import { readFileSync } from 'node:fs';
import { superuserLockdownSql } from '../src/dataplane/provision/index.js';
import { median, pgbench, postgresBin, psql, startPipeProxy, startPortcullis, startPostgres, type BenchServer } from './servers.js';

/**
 * The data plane's cost (`BENCH_ONLY=dataplane`): a primary-key SELECT on a 10,000-row table at
 * 8 clients with pgbench, in the same rounds against (a) PostgreSQL direct, (b) a bare Node.js
 * proxy that only pipes bytes, (c) portcullis `--upstream` to that PostgreSQL with no policy on
 * the table, (d) the same on a table with an RLS policy reading `$auth`, (e)/(f) the same two on
 * the embedded plane (PGlite); `-M simple` and `-M prepared`. portcullis's role upstream is
 * CREATEDB CREATEROLE, no superuser, with template1 locked down by the superuser first
 * (docs/data-plane.md). Also the resident memory of the embedded portcullis.
 */
const GATEWAY_PASSWORD = 'gateway-secret';
const CLIENTS = 8;
const ROWS = 10_000;

/** Two tables of ROWS rows all owned by the benchmark's user `bench`: `items` stays without a policy, `owned` gets one. */
const TABLES = ['items', 'owned']
  .map((t) => `CREATE TABLE ${t} (id int PRIMARY KEY, owner text NOT NULL, v text);\nINSERT INTO ${t} SELECT g, 'bench', md5(g::text) FROM generate_series(1, ${ROWS}) g;\n`)
  .join('');
const POLICY = 'CREATE RLS POLICY own ON pb.owned FOR ALL USING (owner = $auth.username);\n';
const select = (table: string) => `\\set id random(1, ${ROWS})\nSELECT v FROM ${table} WHERE id = :id;\n`;

const rssMb = (pid: number, field = 'VmRSS') => {
  const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : 0;
};

interface Config {
  key: string;
  label: string;
  server: BenchServer;
  script: string;
}

export async function benchDataPlane(runs: number, seconds: number, log: (s: string) => void): Promise<void> {
  const bin = postgresBin();
  if (!bin) {
    log('data-plane bench skipped: PostgreSQL is not installed (apt-get install postgresql postgresql-client)');
    return;
  }
  const pg = await startPostgres(bin, 55433);
  const started: BenchServer[] = [];
  try {
    psql(bin, pg, `CREATE ROLE gateway LOGIN CREATEDB CREATEROLE PASSWORD '${GATEWAY_PASSWORD}';\n${TABLES}ANALYZE;\n`);
    psql(bin, { ...pg, database: 'template1' }, superuserLockdownSql('gateway'));
    const proxy = await startPipeProxy(pg.port, pg.user, pg.database);
    started.push(proxy);
    const up = await startPortcullis(['--upstream', `postgres://gateway:${GATEWAY_PASSWORD}@127.0.0.1:${pg.port}/postgres`]);
    started.push(up);
    const emb = await startPortcullis();
    started.push(emb);
    const embStartRss = rssMb(emb.pid);
    for (const s of [up, emb]) {
      psql(bin, s, 'CREATE DATABASE pb;\n');
      const pb = { ...s, database: 'pb' };
      psql(bin, pb, TABLES);
      psql(bin, pb, POLICY);
    }
    const embSetupRss = rssMb(emb.pid);
    const embSetupPeak = rssMb(emb.pid, 'VmHWM');
    const pbUp = { ...up, database: 'pb' };
    const pbEmb = { ...emb, database: 'pb' };
    const configs: Config[] = [
      { key: 'a', label: 'PostgreSQL direct', server: pg, script: select('items') },
      { key: 'b', label: 'bare Node.js pipe proxy', server: proxy, script: select('items') },
      { key: 'c', label: 'portcullis --upstream, no policy', server: pbUp, script: select('items') },
      { key: 'd', label: 'portcullis --upstream, RLS policy on $auth', server: pbUp, script: select('owned') },
      { key: 'e', label: 'portcullis embedded (PGlite), no policy', server: pbEmb, script: select('items') },
      { key: 'f', label: 'portcullis embedded (PGlite), RLS policy on $auth', server: pbEmb, script: select('owned') },
    ];
    // BENCH_DATAPLANE=a,b,c,d keeps some configurations (while working on one side), BENCH_MODES=simple one mode.
    const keep = process.env.BENCH_DATAPLANE?.split(',');
    if (keep) configs.splice(0, configs.length, ...configs.filter((c) => keep.includes(c.key)));
    const modes = (process.env.BENCH_MODES?.split(',') ?? ['simple', 'prepared']) as ('simple' | 'prepared')[];
    const n = (x: number) => Math.round(x).toLocaleString('en-US');
    for (const mode of modes) {
      const tallies = configs.map(() => ({ tps: [] as number[], tx: 0, all: 0, main: 0, pg: 0, client: 0, error: '' }));
      for (let r = 0; r < runs; r++) {
        configs.forEach((c, i) => {
          const t = tallies[i]!;
          if (t.error) return;
          const pgBefore = pg.cpu().all;
          try {
            const run = pgbench(bin, c.server, c.script, CLIENTS, seconds, false, mode);
            if (run.failed > 0) throw new Error(`${run.failed} failed transactions`);
            t.tps.push(run.tps);
            t.tx += run.transactions;
            t.all += run.cpu.all;
            t.main += run.cpu.main;
            t.client += run.clientCpu;
            t.pg += pg.cpu().all - pgBefore;
          } catch (err) {
            t.error = (err as Error).message.split('\n').filter((l) => /error|fail/i.test(l)).slice(0, 2).join(' / ') || (err as Error).message.slice(0, 300);
          }
        });
      }
      const tps = (key: string) => {
        const t = tallies[configs.findIndex((c) => c.key === key)];
        return !t || t.error || t.tps.length === 0 ? NaN : median(t.tps);
      };
      log(`  -M ${mode}:`);
      configs.forEach((c, i) => {
        const t = tallies[i]!;
        if (t.error) {
          log(`    (${c.key}) ${c.label}: FAILED: ${t.error}`);
          return;
        }
        const per = (us: number) => n(us / t.tx);
        const cpu =
          c.server === pg
            ? `PostgreSQL ${per(t.pg)} µs CPU per transaction`
            : c.server === proxy
              ? `proxy ${per(t.all)} µs, PostgreSQL ${per(t.pg)} µs CPU per transaction`
              : c.server === pbUp
                ? `portcullis ${per(t.all)} µs (main thread ${per(t.main)}), PostgreSQL ${per(t.pg)} µs CPU per transaction`
                : `portcullis ${per(t.all)} µs (main thread ${per(t.main)}) CPU per transaction`;
        log(`    (${c.key}) ${c.label}: ${n(median(t.tps))} tps (runs ${t.tps.map(n).join(', ')}); ${cpu}; pgbench ${per(t.client)} µs`);
      });
      const ratio = (x: number, y: number) => (Number.isNaN(x) || Number.isNaN(y) ? 'n/a' : `${(x / y).toFixed(2)}×`);
      const verdict = (x: number, y: number, target: number) => (Number.isNaN(x) || Number.isNaN(y) ? '' : x / y >= target ? ' met' : ' NOT met');
      log(
        `    (b)/(a) ${ratio(tps('b'), tps('a'))}; (c)/(a) ${ratio(tps('c'), tps('a'))} (target ≥ 0.5×:${verdict(tps('c'), tps('a'), 0.5)}); ` +
          `(d)/(c) ${ratio(tps('d'), tps('c'))} (target ≥ 0.8×:${verdict(tps('d'), tps('c'), 0.8)}); (c)/(b) ${ratio(tps('c'), tps('b'))}; ` +
          `(e)/(a) ${ratio(tps('e'), tps('a'))}; (f)/(e) ${ratio(tps('f'), tps('e'))}`,
      );
    }
    log(
      `  portcullis embedded, resident memory: ${n(embStartRss)} MB at start, ${n(embSetupRss)} MB with database pb open (two tables of ${n(ROWS)} rows; peak so far ${n(embSetupPeak)} MB), ` +
        `${n(rssMb(emb.pid))} MB after the runs (peak ${n(rssMb(emb.pid, 'VmHWM'))} MB); portcullis --upstream: ${n(rssMb(up.pid))} MB`,
    );
  } finally {
    for (const s of started.reverse()) await s.stop();
    await pg.stop();
  }
}


