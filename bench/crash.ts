/**
 * npm run crash [-- --rounds N] [--plane embedded|upstream|both]: the crash test of issue 22
 * ("Both languages in one transaction"), not part of the test run. Files mixing CREATE
 * TABLE, INSERT, CREATE RLS POLICY, CREATE USER and GRANT are applied with psql -1 -f, in a
 * loop, by two clients at once, while the server is killed (SIGKILL) at a random instant,
 * N times (default 20), and started again. After each start, every transaction so far is
 * checked as users see it:
 * - acknowledged (psql exited 0): all of it is there;
 * - not acknowledged: all of it or none of it (no half);
 * - never more exposed than the committed catalog says: a table whose policy committed is
 *   read through it (alice sees only her row), and one whose policy did not is not there
 *   (its CREATE TABLE was in the same transaction).
 * Prints attempts, acknowledged transactions and the outcome of the others; exits 1 on any
 * violation.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { ROOT } from './servers.js';
import { embeddedPlane, upstreamPlane, type PlaneUnderTest } from '../test/dataplane/planes-under-test.js';

const PASSWORD = 'crash-secret';

interface Server {
  child: ChildProcess;
  port: number;
  exited: Promise<void>;
}

function start(args: string[]): Promise<Server> {
  const child = spawn(process.execPath, [path.join(ROOT, 'bin/portcullis.js'), 'serve', '--port', '0', '--http-port', 'off', ...args], {
    env: { ...process.env, PORTCULLIS_BOOTSTRAP_PASSWORD: PASSWORD },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  let err = '';
  return new Promise((resolve, reject) => {
    child.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      if (process.env.CRASH_LOG) process.stderr.write(d);
      const m = /listening on [^:]+:(\d+) \(pgwire\)/.exec(err);
      if (m) resolve({ child, port: Number(m[1]), exited });
    });
    child.once('exit', (code, signal) => reject(new Error(`server exited (${code ?? signal}) before listening: ${err}`)));
  });
}

function psql(port: number, args: string[], input = '', user = 'admin', password = PASSWORD): Promise<{ code: number | null; stderr: string }> {
  const child = spawn('psql', ['-X', '-h', '127.0.0.1', '-p', String(port), '-U', user, ...args], {
    env: { ...process.env, PGPASSWORD: password, PGCONNECT_TIMEOUT: '10' },
    stdio: ['pipe', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdin.end(input);
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stderr })));
}

const migration = (k: number) =>
  [
    `CREATE TABLE orders_${k} (id int PRIMARY KEY, owner text NOT NULL);`,
    `INSERT INTO orders_${k} VALUES (1, 'alice'), (2, 'bob');`,
    `CREATE RLS POLICY own_${k} ON shop.orders_${k} FOR ALL USING (owner = $auth.username);`,
    `CREATE USER analyst_${k} WITH PASSWORD 'analyst-pw' ROLE readonly;`,
    `GRANT READ ON DATABASE shop TO analyst_${k};`,
  ].join('\n') + '\n';

async function connect(port: number, user: string, password: string): Promise<pg.Client> {
  const c = new pg.Client({ host: '127.0.0.1', port, user, password, database: 'shop' });
  c.on('error', () => {});
  await c.connect();
  return c;
}

type State = 'all' | 'none' | string;

/** What migration `k` left: all of it, none of it, or a description of the half that is there. */
async function stateOf(port: number, k: number, policies: Set<string>): Promise<State> {
  const a = await connect(port, 'alice', 'alice-pw');
  let alice: string;
  try {
    alice = JSON.stringify((await a.query(`SELECT owner FROM orders_${k} ORDER BY owner`)).rows.map((r: { owner: string }) => r.owner));
  } catch (err) {
    alice = (err as { code: string }).code;
  } finally {
    await a.end();
  }
  const analyst = await connect(port, `analyst_${k}`, 'analyst-pw').then(
    (c) => c.end().then(() => true),
    () => false,
  );
  const policy = policies.has(`own_${k}`);
  if (alice === '["alice"]' && policy && analyst) return 'all';
  if (alice === '42P01' && !policy && !analyst) return 'none';
  return `half: alice sees ${alice}, policy ${policy ? 'in' : 'not in'} the catalog, analyst ${analyst ? 'logs in' : 'does not'}`;
}

async function run(plane: PlaneUnderTest, rounds: number): Promise<boolean> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pcu-crash-'));
  const opts = await plane.options();
  const up = opts.dataPlane && typeof opts.dataPlane === 'object' && 'upstream' in opts.dataPlane ? ['--upstream', opts.dataPlane.upstream] : [];
  const args = ['--data', path.join(dir, 'data'), ...up];
  let server = await start(args);
  await psql(server.port, ['-v', 'ON_ERROR_STOP=1', '-q'], "CREATE DATABASE shop;\nCREATE USER alice WITH PASSWORD 'alice-pw' ROLE readwrite;\nGRANT READ, WRITE ON DATABASE shop TO alice;\n");
  const acked = new Set<number>();
  const attempted: number[] = [];
  const outcomes = { committed: 0, rolledBack: 0 };
  const violations: string[] = [];
  /** psql's first error line for transactions that failed before the kill (not a crash's doing). */
  const failures: string[] = [];
  let next = 0;
  let checked = 0;
  const started = performance.now();
  for (let round = 1; round <= rounds; round++) {
    // Two clients apply migrations until the kill.
    let killed = false;
    const client = async () => {
      while (!killed) {
        const k = next++;
        attempted.push(k);
        const file = path.join(dir, `m${k}.sql`);
        writeFileSync(file, migration(k));
        const r = await psql(server.port, ['-v', 'ON_ERROR_STOP=1', '-q', '-1', '-f', file, '-d', 'shop']);
        if (r.code === 0) acked.add(k);
        else if (!killed) failures.push(r.stderr.trim().split('\n').slice(0, 2).join(' '));
      }
    };
    const clients = [client(), client()];
    // A random instant: the first migrations of a round pay for the new start's first turn.
    await new Promise((r) => setTimeout(r, 300 + Math.random() * 2500));
    killed = true;
    server.child.kill('SIGKILL');
    await server.exited;
    await Promise.all(clients);
    server = await start(args);
    // Every transaction since the last check (and the acknowledged ones again at the end).
    const admin = await connect(server.port, 'admin', PASSWORD);
    const policies = new Set((await admin.query('SHOW RLS POLICIES')).rows.flatMap((r: Record<string, unknown>) => Object.values(r).map(String)));
    await admin.end();
    for (; checked < attempted.length; checked++) {
      const k = attempted[checked]!;
      const s = await stateOf(server.port, k, policies);
      if (s !== 'all' && s !== 'none') violations.push(`round ${round}, transaction ${k}: ${s}`);
      else if (acked.has(k) && s !== 'all') violations.push(`round ${round}, transaction ${k}: acknowledged, and lost`);
      else if (!acked.has(k)) outcomes[s === 'all' ? 'committed' : 'rolledBack']++;
    }
  }
  // Acknowledged transactions of every round, once more after all the crashes.
  const admin = await connect(server.port, 'admin', PASSWORD);
  const policies = new Set((await admin.query('SHOW RLS POLICIES')).rows.flatMap((r: Record<string, unknown>) => Object.values(r).map(String)));
  await admin.end();
  for (const k of acked) if ((await stateOf(server.port, k, policies)) !== 'all') violations.push(`at the end, transaction ${k}: acknowledged, and lost`);
  server.child.kill('SIGTERM');
  await server.exited;
  await plane.stop();
  rmSync(dir, { recursive: true, force: true });
  const seconds = ((performance.now() - started) / 1000).toFixed(0);
  console.log(
    `${plane.name}: ${rounds}/${rounds} kills survived${violations.length ? ' NOT' : ''}; ${attempted.length} transactions attempted, ${acked.size} acknowledged (all there), ` +
      `${outcomes.committed} in flight at a kill committed, ${outcomes.rolledBack} rolled back, ${violations.length} violations (${seconds} s)`,
  );
  for (const v of violations) console.log(`  VIOLATION ${v}`);
  if (failures.length > 0) console.log(`  ${failures.length} failed before the kill, e.g.: ${[...new Set(failures)].slice(0, 3).join(' | ')}`);
  return violations.length === 0;
}

const argv = process.argv.slice(2);
const opt = (name: string, dflt: string) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && argv[i + 1] ? argv[i + 1]! : dflt;
};
const rounds = Number(opt('rounds', '20'));
const which = opt('plane', 'both');
const planes = [...(which !== 'upstream' ? [embeddedPlane()] : []), ...(which !== 'embedded' ? [upstreamPlane()] : [])];
let ok = true;
for (const p of planes) ok = (await run(p, rounds)) && ok;
process.exit(ok ? 0 : 1);
