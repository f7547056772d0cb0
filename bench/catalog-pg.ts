import pg from 'pg';
import { median, PASSWORD, pgbench, postgresBin, psql, startPortcullis, startPostgres, type BenchServer } from './servers.js';

/**
 * The catalog in PostgreSQL (`BENCH_ONLY=catalog-pg`): what `--catalog` costs one instance
 * against the embedded log — the login rate (pgbench -C, SCRAM, each login's audit record
 * durable before AuthenticationOk) and GRANT + REVOKE (one commit each), 8 clients — and
 * how soon a commit through instance A holds on instance B. Both stores durable: the
 * embedded log fdatasyncs, PostgreSQL runs with its defaults (fsync, synchronous_commit on).
 * The data plane is off: the figures are the catalog's.
 */
const WORKLOADS = [
  { name: 'login rate, SCRAM-SHA-256 (pgbench -C, SHOW AUTH)', script: 'SHOW AUTH;\n', connectEach: true, setup: '' },
  {
    name: 'GRANT + REVOKE of a role',
    script: '\\set c :client_id + 1\nGRANT crew TO g:c;\nREVOKE crew FROM g:c;\n',
    connectEach: false,
    setup: `CREATE ROLE crew;\n${Array.from({ length: 8 }, (_, i) => `CREATE USER g${i + 1};`).join('\n')}`,
  },
];

export async function benchCatalogPg(runs: number, seconds: number, commits: number, log: (s: string) => void): Promise<void> {
  const bin = postgresBin();
  if (!bin) {
    log('catalog-pg skipped: PostgreSQL is not installed (apt-get install postgresql postgresql-client)');
    return;
  }
  const postgres = await startPostgres(bin, 55434);
  let databases = 0;
  const freshCatalog = () => {
    const db = `catalog_${++databases}`;
    psql(bin, postgres, `CREATE DATABASE ${db};`);
    return `postgres://bench:${PASSWORD}@127.0.0.1:${postgres.port}/${db}`;
  };
  const n = (x: number) => Math.round(x).toLocaleString('en-US');
  try {
    for (const w of WORKLOADS) {
      const embedded = await startPortcullis(['--data-plane', 'off']);
      const shared = await startPortcullis(['--data-plane', 'off'], freshCatalog());
      try {
        const servers: BenchServer[] = [embedded, shared];
        if (w.setup) for (const s of servers) psql(bin, s, w.setup);
        const tallies = servers.map(() => ({ tps: [] as number[], tx: 0, main: 0 }));
        // Run by run in turn, so both see the same machine weather.
        for (let r = 0; r < runs; r++) {
          servers.forEach((s, i) => {
            const run = pgbench(bin, s, w.script, 8, seconds, w.connectEach);
            if (run.failed > 0) throw new Error(`${w.name} on ${s.name}: ${run.failed} failed transactions`);
            tallies[i]!.tps.push(run.tps);
            tallies[i]!.tx += run.transactions;
            tallies[i]!.main += run.cpu.main;
          });
        }
        const [e, p] = tallies.map((t) => ({ tps: median(t.tps), main: t.tx > 0 ? t.main / t.tx : 0 }));
        log(
          `  ${w.name}, 8 clients: embedded log ${n(e!.tps)} tps, --catalog ${n(p!.tps)} tps → ${(p!.tps / e!.tps).toFixed(2)}× ` +
            `(portcullis main thread per transaction ${n(e!.main)} / ${n(p!.main)} µs)`,
        );
      } finally {
        await embedded.stop();
        await shared.stop();
      }
    }
    await latency(freshCatalog(), commits, log);
  } finally {
    await postgres.stop();
  }
}

/**
 * A commit through A, and how soon B shows it: `CREATE ROLE r_i` on A, then `SHOW GRANTS FOR
 * r_i` on B (42704 until B has applied the commit) as fast as it answers. Measured from the
 * moment A's client has its acknowledgement; B's round trip (~0.2 ms) bounds the resolution.
 */
async function latency(catalog: string, commits: number, log: (s: string) => void): Promise<void> {
  const a = await startPortcullis(['--data-plane', 'off'], catalog);
  const b = await startPortcullis(['--data-plane', 'off'], catalog);
  const connect = async (s: BenchServer) => {
    const c = new pg.Client({ host: '127.0.0.1', port: s.port, user: 'bench', password: PASSWORD, database: 'default' });
    await c.connect();
    return c;
  };
  const [ca, cb] = [await connect(a), await connect(b)];
  try {
    const afterAck: number[] = [];
    const commitMs: number[] = [];
    for (let i = 0; i < commits; i++) {
      const sent = performance.now();
      await ca.query(`CREATE ROLE r_${i}`);
      const acked = performance.now();
      for (;;) {
        try {
          await cb.query(`SHOW GRANTS FOR r_${i}`);
          break;
        } catch (err) {
          if ((err as { code?: string }).code !== '42704') throw err;
        }
      }
      afterAck.push(performance.now() - acked);
      commitMs.push(acked - sent);
    }
    const pct = (xs: number[], p: number) => [...xs].sort((x, y) => x - y)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;
    log(
      `  a commit through A, in effect on B (${commits} commits, one at a time): p50 ${pct(afterAck, 50).toFixed(2)} ms, p99 ${pct(afterAck, 99).toFixed(2)} ms ` +
        `after A acknowledged it (the commit itself took p50 ${pct(commitMs, 50).toFixed(2)} ms, p99 ${pct(commitMs, 99).toFixed(2)} ms on A)`,
    );
  } finally {
    await ca.end();
    await cb.end();
    await a.stop();
    await b.stop();
  }
}
