import os from 'node:os';
import { median, pgbench, postgresBin, psql, startFloor, startPortcullis, startPostgres, type BenchServer } from './servers.js';

/**
 * portcullis against PostgreSQL, both measured here in the same run with pgbench (simple
 * protocol, 1 and 8 clients, median of several runs), each workload as the nearest thing
 * PostgreSQL does: users are roles, SHOW USERS is a pg_roles query, SHOW AUTH is SELECT 1.
 */
const VERIFIER = 'SCRAM-SHA-256$4096:c2FsdHNhbHRzYWx0c2FsdA==$47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=';
const NAME = '\\set n random(1, 999999999999)\n';

interface Workload {
  name: string;
  /** Targets at 8 clients, as ratios to PostgreSQL (issue 5); 0 = no target, for context. */
  target: number;
  setup?: { portcullis: string; postgres: string };
  portcullis: string;
  postgres: string;
  connectEach?: boolean;
  /** Also measure the floor servers (pg-floor.ts) at 8 clients: what any Node.js server here gets. */
  floor?: boolean;
}

const users = (n: number, create: (i: number) => string) => Array.from({ length: n }, (_, i) => create(i)).join('\n');

const HUNDRED_USERS = {
  portcullis: users(100, (i) => `CREATE USER list_${i};`),
  postgres: users(100, (i) => `CREATE ROLE list_${i};`),
};

export const WORKLOADS: Workload[] = [
  {
    name: 'create + drop user, plain password (hashed by the server)',
    target: 2,
    portcullis: `${NAME}CREATE USER u:n WITH PASSWORD 'secret-pw';\nDROP USER u:n;\n`,
    postgres: `${NAME}CREATE ROLE u:n LOGIN PASSWORD 'secret-pw';\nDROP ROLE u:n;\n`,
  },
  {
    name: 'create + drop user, pre-hashed SCRAM verifier',
    target: 5,
    portcullis: `${NAME}CREATE USER u:n WITH PASSWORD '${VERIFIER}';\nDROP USER u:n;\n`,
    postgres: `${NAME}CREATE ROLE u:n LOGIN PASSWORD '${VERIFIER}';\nDROP ROLE u:n;\n`,
  },
  {
    name: 'GRANT + REVOKE of a role',
    target: 3,
    setup: {
      portcullis: `CREATE ROLE crew;\n${users(8, (i) => `CREATE USER g${i + 1};`)}`,
      postgres: `CREATE ROLE crew;\n${users(8, (i) => `CREATE ROLE g${i + 1};`)}`,
    },
    portcullis: 'GRANT crew TO g:c;\nREVOKE crew FROM g:c;\n',
    postgres: 'GRANT crew TO g:c;\nREVOKE crew FROM g:c;\n',
    floor: true,
  },
  {
    name: 'the user list, 100 users (SHOW USERS / pg_roles)',
    target: 1,
    setup: HUNDRED_USERS,
    portcullis: 'SHOW USERS;\n',
    postgres: 'SELECT rolname FROM pg_roles;\n',
  },
  {
    // SHOW USERS has twelve columns; pg_roles with all of its is the like-for-like peer.
    name: 'the user list, 100 users, all columns (SHOW USERS / SELECT * FROM pg_roles)',
    target: 0,
    setup: HUNDRED_USERS,
    portcullis: 'SHOW USERS;\n',
    postgres: 'SELECT * FROM pg_roles;\n',
  },
  {
    name: 'login rate, SCRAM-SHA-256 (pgbench -C)',
    target: 2,
    portcullis: 'SELECT 1;\n',
    postgres: 'SELECT 1;\n',
    connectEach: true,
  },
  {
    name: 'a read statement (SHOW AUTH / SELECT 1)',
    target: 0.5,
    portcullis: 'SHOW AUTH;\n',
    postgres: 'SELECT 1;\n',
  },
];

// pgbench's client ids start at 0; the GRANT workload's users are g1..g8.
const withClient = (script: string) => (script.includes(':c') ? `\\set c :client_id + 1\n${script}` : script);

export interface Comparison {
  workload: string;
  clients: number;
  portcullis: number;
  postgres: number;
  ratio: number;
  target: number | null;
  /** Server CPU per transaction (µs), over all runs of the figure; portcullis's main thread and how busy it was; pgbench's own (against portcullis). */
  cpu: { portcullis: number; portcullisMain: number; mainBusy: number; postgres: number; pgbench: number };
  /** The floor servers' tps (8 clients, workloads with `floor`). */
  floor?: { durable: number; reply: number };
}

export async function benchAgainstPostgres(runs: number, seconds: number, log: (s: string) => void): Promise<Comparison[] | null> {
  const bin = postgresBin();
  if (!bin) {
    log('pgbench comparison skipped: PostgreSQL is not installed (apt-get install postgresql postgresql-client)');
    return null;
  }
  const out: Comparison[] = [];
  const only = process.env.BENCH_WORKLOAD; // a part of a workload's name, to run just that one
  for (const w of WORKLOADS.filter((x) => !only || x.name.includes(only))) {
    const pg = await startPostgres(bin, 55432);
    const pcu = await startPortcullis();
    const floors: BenchServer[] = [];
    try {
      if (w.floor) floors.push(await startFloor('durable'), await startFloor('reply'));
      if (w.setup) {
        psql(bin, pcu, w.setup.portcullis);
        psql(bin, pg, w.setup.postgres);
      }
      for (const clients of [1, 8]) {
        // Run by run in turn, so every server sees the same machine weather.
        const servers: [BenchServer, string][] = [[pcu, w.portcullis], [pg, w.postgres]];
        if (clients > 1) for (const f of floors) servers.push([f, w.portcullis]);
        const tallies = servers.map(() => ({ tps: [] as number[], tx: 0, all: 0, main: 0, wall: 0, client: 0 }));
        for (let r = 0; r < runs; r++) {
          servers.forEach(([s, script], i) => {
            const run = pgbench(bin, s, withClient(script), clients, seconds, w.connectEach);
            if (run.failed > 0) throw new Error(`${w.name} on ${s.name}: ${run.failed} failed transactions`);
            const t = tallies[i]!;
            t.tps.push(run.tps);
            t.tx += run.transactions;
            t.all += run.cpu.all;
            t.main += run.cpu.main;
            t.wall += run.wallUs;
            t.client += run.clientCpu;
          });
        }
        const figures = tallies.map((t) => {
          const per = (us: number) => (t.tx > 0 ? us / t.tx : 0);
          return { tps: median(t.tps), cpu: per(t.all), main: per(t.main), busy: t.main / t.wall, client: per(t.client) };
        });
        const [p, q] = [figures[0]!, figures[1]!];
        const [durable, reply] = figures.slice(2);
        const c: Comparison = {
          workload: w.name,
          clients,
          portcullis: p.tps,
          postgres: q.tps,
          ratio: p.tps / q.tps,
          target: clients === 8 && w.target > 0 ? w.target : null,
          cpu: { portcullis: p.cpu, portcullisMain: p.main, mainBusy: p.busy, postgres: q.cpu, pgbench: p.client },
        };
        if (durable && reply) c.floor = { durable: durable.tps, reply: reply.tps };
        out.push(c);
        const n = (x: number) => Math.round(x).toLocaleString('en-US');
        log(
          `  ${w.name}, ${clients} client${clients > 1 ? 's' : ''}: portcullis ${n(p.tps)} tps, ` +
            `PostgreSQL ${n(q.tps)} tps → ${c.ratio.toFixed(2)}×` +
            (c.target !== null ? ` (target ≥ ${c.target}×: ${c.ratio >= c.target ? 'met' : 'NOT met'})` : ''),
        );
        // Where the time goes: every statement passes through portcullis's one event loop, so
        // its CPU per transaction bounds the rate whatever the disk or the clients do.
        if (clients > 1 && p.main > 0) {
          log(
            `    server CPU per transaction: portcullis ${n(p.cpu)} µs, of which its main thread ${n(p.main)} µs ` +
              `(busy ${(100 * p.busy).toFixed(0)}% of the runs: at 100%, ≤ ${n(1e6 / p.main)} tps = ${(1e6 / p.main / q.tps).toFixed(2)}× PostgreSQL); ` +
              `PostgreSQL ${n(q.cpu)} µs over all its processes`,
          );
        }
        // A Node.js server that does no work per statement bounds what portcullis can reach here.
        if (c.floor) {
          log(
            `    floor (bench/pg-floor.ts, a bare Node.js pgwire server, no work per statement): answering after a durable append to ` +
              `portcullis's log ${n(c.floor.durable)} tps = ${(c.floor.durable / q.tps).toFixed(2)}× PostgreSQL (portcullis reached ` +
              `${((100 * p.tps) / c.floor.durable).toFixed(0)}% of it); answering at once, no disk, ${n(c.floor.reply)} tps = ${(c.floor.reply / q.tps).toFixed(2)}×`,
          );
        }
        // What the machine allows at the target: pgbench and the server share its cores.
        if (c.target !== null && c.ratio < c.target && p.main > 0) {
          const budget = (os.cpus().length * 1e6) / (c.target * q.tps);
          log(
            `    at ${c.target}× PostgreSQL (${n(c.target * q.tps)} tps) this machine has ${n(budget)} µs of CPU per transaction for everything: ` +
              `pgbench took ${n(p.client)} µs of it here, leaving ≤ ${n(budget - p.client)} µs for the server (portcullis used ${n(p.cpu)})`,
          );
        }
      }
    } finally {
      for (const f of floors) await f.stop();
      await pcu.stop();
      await pg.stop();
    }
  }
  return out;
}
