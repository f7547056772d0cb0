import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UpstreamPlane } from '../../src/dataplane/upstream.js';
import type { RunningServer } from '../../src/server.js';
import { startNode, type PgNode } from '../support/pg-cluster.js';
import { psql } from '../support/psql.js';
import { ADMIN_PASSWORD, startTestServer } from '../support/server.js';

/**
 * Transaction pooling to the upstream data plane (SPEC §10 "Pooling", issue 24), through
 * the real server, real PostgreSQL and node-postgres: what two principals sharing one
 * upstream connection can see of each other (nothing), what a session waiting for a busy
 * pool gets, session-only features, SHOW POOLS, and PostgreSQL restarting under load.
 */

const PW: Record<string, string> = { alice: 'alice-pw', bob: 'bob-pw', admin: ADMIN_PASSWORD };

let node: PgNode;
/** pool_size 1, pool_timeout 1 s: every session shares one upstream connection. */
let one: RunningServer;
/** pool_size 4 (two may be dedicated), in a namespace of its own on the same PostgreSQL. */
let four: RunningServer;

async function setup(server: RunningServer): Promise<void> {
  const r = await psql(server.port, ['-v', 'ON_ERROR_STOP=1', '-q'], {
    input: [
      'CREATE DATABASE shop;',
      "CREATE USER alice WITH PASSWORD 'alice-pw' ROLE readwrite;",
      "CREATE USER bob WITH PASSWORD 'bob-pw' ROLE readwrite;",
      'GRANT READ, WRITE ON DATABASE shop TO alice, bob;',
    ].join('\n'),
  });
  expect(r.stderr).toBe('');
  const t = await psql(server.port, ['-v', 'ON_ERROR_STOP=1', '-q'], {
    db: 'shop',
    input: [
      'CREATE TABLE orders (id int PRIMARY KEY, owner text NOT NULL, amount numeric);',
      "INSERT INTO orders VALUES (1, 'alice', 10), (2, 'bob', 20), (3, 'carol', 30);",
      'CREATE RLS POLICY own ON shop.orders FOR ALL USING (owner = $auth.username);',
    ].join('\n'),
  });
  expect(t.stderr).toBe('');
}

const open: pg.Client[] = [];
async function connect(server: RunningServer, user: string): Promise<pg.Client> {
  const c = new pg.Client({ host: '127.0.0.1', port: server.port, user, password: PW[user], database: 'shop' });
  c.on('error', () => {});
  await c.connect();
  open.push(c);
  return c;
}

async function stateOf(c: pg.Client, sql: string, values?: unknown[]): Promise<string> {
  try {
    await c.query(sql, values);
    return 'ok';
  } catch (err) {
    return (err as { code?: string }).code ?? String(err);
  }
}

beforeAll(async () => {
  node = await startNode();
  one = await startTestServer({ dataPlane: new UpstreamPlane(node.url(), { pool: { mode: 'transaction', size: 1, timeoutMs: 1000 } }) });
  four = await startTestServer({ dataPlane: new UpstreamPlane(node.url(), { namespace: 'pfour', pool: { mode: 'transaction', size: 4, timeoutMs: 5000 } }) });
  await setup(one);
  await setup(four);
}, 120_000);

afterAll(async () => {
  for (const c of open) await c.end().catch(() => undefined);
  await one?.close();
  await four?.close();
  await node?.remove();
}, 60_000);

describe('two principals on one upstream connection (pool_size 1)', () => {
  it('each sees only its rows, its $auth and its settings, interleaving transaction by transaction', async () => {
    const alice = await connect(one, 'alice');
    const bob = await connect(one, 'bob');
    const pids = new Set<number>();
    for (let i = 0; i < 5; i++) {
      for (const [c, who] of [[alice, 'alice'], [bob, 'bob']] as const) {
        const r = await c.query('SELECT owner, $auth.username AS me, current_setting($1) AS cost, pg_backend_pid() AS pid FROM orders', ['random_page_cost']);
        expect(r.rows.map((x) => [x.owner, x.me])).toEqual([[who, who]]);
        // The setting alice's blocks change stays in them.
        expect(r.rows[0].cost).toBe('4');
        pids.add(r.rows[0].pid);
      }
      await alice.query('BEGIN');
      await alice.query('SET LOCAL random_page_cost = 1.5');
      expect((await alice.query('SELECT current_setting($1) AS cost FROM orders', ['random_page_cost'])).rows).toEqual([{ cost: '1.5' }]);
      await alice.query('COMMIT');
    }
    // One connection served both.
    expect(pids.size).toBe(1);
  });

  it("a prepared statement of one is never usable or visible to the other, whatever its name", async () => {
    const alice = await connect(one, 'alice');
    const bob = await connect(one, 'bob');
    const q = { name: 'q', text: 'SELECT owner FROM orders WHERE amount > $1' };
    expect((await alice.query({ ...q, values: [0] })).rows).toEqual([{ owner: 'alice' }]);
    // Bob's statement of the same name, another text: his own.
    expect((await bob.query({ name: 'q', text: 'SELECT owner, 1 AS mine FROM orders WHERE amount > $1', values: [0] })).rows).toEqual([{ owner: 'bob', mine: 1 }]);
    // What the upstream connection holds now is bob's only.
    const seen = await bob.query('SELECT name, statement FROM pg_prepared_statements');
    expect(seen.rows.map((r) => r.statement).join('\n')).not.toContain('amount > $1\n');
    expect(seen.rows.every((r) => String(r.statement).includes('1 AS mine') || String(r.statement).includes('pg_prepared_statements'))).toBe(true);
    // Alice's still works for her (prepared again on the connection), with her rows.
    expect((await alice.query({ ...q, values: [0] })).rows).toEqual([{ owner: 'alice' }]);
    // SQL EXECUTE of a backend name bob can guess finds nothing of alice's.
    const names = (await alice.query('SELECT name FROM pg_prepared_statements')).rows.map((r) => r.name as string);
    for (const n of names) expect(await stateOf(bob, `EXECUTE ${n}(0)`)).toBe('26000');
  });

  it('temporary tables, session advisory locks, WITH HOLD cursors, SQL PREPARE and session SET are 0A000 when the pool has no connection to dedicate', async () => {
    const alice = await connect(one, 'alice');
    for (const sql of ['CREATE TEMP TABLE t (x int)', 'SELECT pg_advisory_lock(1)', 'DECLARE c CURSOR WITH HOLD FOR SELECT 1', 'SET random_page_cost = 2', 'PREPARE p AS SELECT 1']) {
      let err: (Error & { code?: string }) | undefined;
      await alice.query(sql).catch((e) => (err = e));
      expect(err?.code, sql).toBe('0A000');
      expect(err?.message).toMatch(/need a connection of their own, and the pool for database "shop" has none to spare/);
    }
    // SET LOCAL and transaction-level locks are fine.
    await alice.query('BEGIN');
    expect(await stateOf(alice, 'SET LOCAL random_page_cost = 2')).toBe('ok');
    expect(await stateOf(alice, 'SELECT pg_advisory_xact_lock(1)')).toBe('ok');
    await alice.query('COMMIT');
  });

  it('a session waiting longer than pool_timeout gets 53300 naming the database; the pool serves it after', async () => {
    const alice = await connect(one, 'alice');
    const bob = await connect(one, 'bob');
    await alice.query('BEGIN');
    await alice.query('SELECT 1 FROM orders');
    let err: (Error & { code?: string }) | undefined;
    await bob.query('SELECT owner FROM orders').catch((e) => (err = e));
    expect(err?.code).toBe('53300');
    expect(err?.message).toBe('the pool for database "shop" is exhausted: 1 connections busy for 1 s');
    await alice.query('COMMIT');
    expect((await bob.query('SELECT owner FROM orders')).rows).toEqual([{ owner: 'bob' }]);
  });
});

describe('a pooled connection whose last role is dropped', () => {
  it("serves the next session, one that makes that role again included: dora's role goes with her access while the connection idles SET ROLE to it", async () => {
    const admin = (input: string) => psql(one.port, ['-v', 'ON_ERROR_STOP=1', '-q'], { input });
    expect((await admin("CREATE USER dora WITH PASSWORD 'dora-pw' ROLE readonly;\nGRANT READ ON DATABASE shop TO dora;\n")).stderr).toBe('');
    const dora = new pg.Client({ host: '127.0.0.1', port: one.port, user: 'dora', password: 'dora-pw', database: 'shop' });
    await dora.connect();
    const role = (await dora.query('SELECT current_user::text AS r, (SELECT count(*) FROM orders) AS n')).rows[0].r as string;
    await dora.end();
    // dora may no longer reach shop, and a policy change syncs the database: her role is dropped.
    expect((await admin('REVOKE READ ON DATABASE shop FROM dora;\nCREATE RLS POLICY own_read ON shop.orders FOR READ USING (owner = $auth.username);\n')).stderr).toBe('');
    expect((await node.query(`SELECT count(*)::int AS n FROM pg_roles WHERE rolname = '${role}'`))[0]).toEqual({ n: 0 });
    // erin has dora's old privileges: her turn makes the role again, on that connection.
    expect((await admin("CREATE USER erin WITH PASSWORD 'erin-pw' ROLE readonly;\nGRANT READ ON DATABASE shop TO erin;\n")).stderr).toBe('');
    const erin = new pg.Client({ host: '127.0.0.1', port: one.port, user: 'erin', password: 'erin-pw', database: 'shop' });
    await erin.connect();
    open.push(erin);
    expect((await erin.query("SELECT current_user::text AS r, portcullis.auth('username') AS u, (SELECT count(*)::int FROM orders) AS n")).rows).toEqual([{ r: role, u: 'erin', n: 0 }]);
    expect((await admin('DROP RLS POLICY own_read ON shop.orders;\n')).stderr).toBe('');
  });
});

describe('SHOW POOLS and /metrics', () => {
  it("show clients active and waiting, connections busy and idle, the longest wait; a tenant admin sees its tenant's databases only", async () => {
    const setup = await psql(one.port, ['-v', 'ON_ERROR_STOP=1', '-q'], {
      input: "CREATE TENANT other;\nCREATE USER tadm PASSWORD 'pw' ROLE tenant_admin TENANT other;\nCREATE USER dadm PASSWORD 'pw' ROLE tenant_admin;\n",
    });
    expect(setup.stderr).toBe('');
    const admin = await connect(one, 'admin');
    const alice = await connect(one, 'alice');
    const bob = await connect(one, 'bob');
    const pools = async (c: pg.Client) => (await c.query('SHOW POOLS')).rows;
    await alice.query('SELECT 1 FROM orders');
    await bob.query('SELECT 1 FROM orders');
    expect(await pools(admin)).toEqual([{ tenant: 'default', database: 'shop', cl_active: expect.any(Number), cl_waiting: 0, sv_active: 0, sv_idle: 1, sv_dedicated: 0, maxwait: 0, pool_size: 1, pool_mode: 'transaction' }]);
    await alice.query('BEGIN');
    await alice.query('SELECT 1 FROM orders');
    const waiting = bob.query('SELECT 1 FROM orders').catch((e: Error & { code?: string }) => e.code);
    // Until bob's statement reaches the pool (it fails after pool_timeout, 1 s).
    let row = (await pools(admin))[0];
    while (row.cl_waiting === 0) row = (await pools(admin))[0];
    expect(row).toMatchObject({ cl_waiting: 1, sv_active: 1, sv_idle: 0 });
    const metrics = one.engine.metrics.text();
    expect(metrics).toMatch(/^portcullis_pool_clients_waiting\{tenant_id="\d+",database_id="\d+"\} 1$/m);
    expect(metrics).toMatch(/^portcullis_pool_server_active\{tenant_id="\d+",database_id="\d+"\} 1$/m);
    expect(metrics).toMatch(/^portcullis_pool_size\{tenant_id="\d+",database_id="\d+"\} 1$/m);
    expect(await waiting).toBe('53300');
    await alice.query('COMMIT');
    expect(await pools(admin)).toMatchObject([{ cl_waiting: 0, sv_active: 0, sv_idle: 1 }]);
    // Tenant admins: their own tenant's pools; anyone less: 42501.
    const tadm = new pg.Client({ host: '127.0.0.1', port: one.port, user: 'tadm', password: 'pw', database: 'default' });
    const dadm = new pg.Client({ host: '127.0.0.1', port: one.port, user: 'dadm', password: 'pw', database: 'default' });
    await tadm.connect();
    await dadm.connect();
    open.push(tadm, dadm);
    expect(await pools(tadm)).toEqual([]);
    expect((await pools(dadm)).map((r) => r.database)).toEqual(['shop']);
    expect(await stateOf(alice, 'SHOW POOLS')).toBe('42501');
  });
});

describe('session-only features with room in the pool (pool_size 4)', () => {
  it('session state gets the session a connection of its own, kept to its end; at most half the pool', async () => {
    const alice = await connect(four, 'alice');
    const bob = await connect(four, 'bob');
    const carol = await connect(four, 'alice');
    await alice.query('SET random_page_cost = 2');
    expect(await stateOf(alice, 'SELECT pg_advisory_lock(7)')).toBe('ok');
    const pid = (await alice.query('SELECT pg_backend_pid() AS pid')).rows[0].pid;
    // Bob's transactions never land on it: not its setting, not its lock.
    for (let i = 0; i < 4; i++) {
      const r = await bob.query('SELECT pg_backend_pid() AS pid, current_setting($1) AS cost, pg_try_advisory_xact_lock(7) AS got', ['random_page_cost']);
      expect(r.rows[0]).toMatchObject({ cost: '4', got: false });
      expect(r.rows[0].pid).not.toBe(pid);
    }
    expect((await alice.query('SELECT pg_backend_pid() AS pid, current_setting($1) AS cost', ['random_page_cost'])).rows).toEqual([{ pid, cost: '2' }]);
    // A second dedicated session (a WITH HOLD cursor) fits; a third does not.
    expect(await stateOf(bob, 'DECLARE c CURSOR WITH HOLD FOR SELECT owner FROM orders')).toBe('ok');
    expect((await bob.query('FETCH ALL FROM c')).rows).toEqual([{ owner: 'bob' }]);
    expect(await stateOf(carol, 'SET random_page_cost = 3')).toBe('0A000');
    // Alice's session ends: its connection (setting and lock) with it; the room is back.
    await alice.end();
    let state = await stateOf(carol, 'SET random_page_cost = 3');
    // Alice's Terminate may still be on its way to the server.
    for (let i = 0; i < 100 && state === '0A000'; i++) state = await stateOf(carol, 'SET random_page_cost = 3');
    expect(state).toBe('ok');
    expect((await carol.query('SELECT current_setting($1) AS cost, pg_try_advisory_xact_lock(7) AS got', ['random_page_cost'])).rows).toEqual([{ cost: '3', got: true }]);
  });
});

describe('a dedicated connection lost', () => {
  it('ends its session (08006, FATAL) instead of carrying on without its session state', async () => {
    for (const c of open.splice(0)) await c.end().catch(() => undefined);
    const alice = await connect(four, 'alice');
    // The sessions just closed may still hold their dedicated connections for a moment.
    let set = await stateOf(alice, 'SET random_page_cost = 2');
    for (let i = 0; i < 100 && set === '0A000'; i++) set = await stateOf(alice, 'SET random_page_cost = 2');
    expect(set).toBe('ok');
    const pid = (await alice.query('SELECT pg_backend_pid() AS pid')).rows[0].pid;
    await node.query('SELECT pg_terminate_backend($1)', [pid]);
    // Until the backend is gone (its socket closes right after).
    while ((await node.query('SELECT 1 FROM pg_stat_activity WHERE pid = $1', [pid])).length > 0);
    // 08006 when the pool saw the socket close first; PostgreSQL's own 57P01 (relayed, FATAL) when not.
    let code = await stateOf(alice, 'SELECT current_setting($1) AS cost', ['random_page_cost']);
    expect(['08006', '57P01']).toContain(code);
    code = await stateOf(alice, 'SELECT 1');
    expect(code).not.toBe('ok');
    // Others are served.
    const bob = await connect(four, 'bob');
    expect((await bob.query('SELECT owner FROM orders')).rows).toEqual([{ owner: 'bob' }]);
  });
});

describe('PostgreSQL restarts under load', () => {
  it('sessions in a transaction get an error, new transactions succeed once it is back, nothing hangs, nobody sees another result', async () => {
    for (const c of open.splice(0)) await c.end().catch(() => undefined);
    const users = ['alice', 'bob', 'alice', 'bob', 'alice', 'bob'];
    const codes = new Set<string>();
    let sent = 0;
    let phase: 'before' | 'down' | 'after' = 'before';
    const okAfter = users.map(() => 0);
    const wrong: string[] = [];
    const loop = async (i: number) => {
      const who = users[i]!;
      let c: pg.Client | null = null;
      let okBefore = 0;
      while (okAfter[i]! < 5) {
        try {
          c ??= await connect(four, who);
          const n = ++sent;
          const inBlock = n % 2 === 0;
          if (inBlock) await c.query('BEGIN');
          const r = await c.query('SELECT $auth.username AS me, $1::int AS n, owner, pg_sleep(0.002)::text FROM orders', [n]);
          if (inBlock) await c.query('COMMIT');
          // Whatever happened to the connection, an answer is this client's own.
          if (r.rows.length !== 1 || r.rows[0].me !== who || r.rows[0].n !== n || r.rows[0].owner !== who) wrong.push(`${who} sent ${n}, got ${JSON.stringify(r.rows)}`);
          if (phase === 'after') okAfter[i]!++;
          else okBefore++;
        } catch (err) {
          const e = err as Error & { code?: string };
          codes.add(e.code ?? e.message);
          // A session whose connection failed ends (FATAL); a fresh one carries on.
          await c?.end().catch(() => undefined);
          c = null;
          if (phase === 'after') await new Promise((r) => setImmediate(r));
        }
        if (phase === 'down' && okBefore === 0) await new Promise((r) => setImmediate(r));
      }
      await c?.end().catch(() => undefined);
    };
    const running = users.map((_, i) => loop(i));
    // Load first, then a fast shutdown (backends are terminated mid-transaction) and a start.
    while (sent < 60) await new Promise((r) => setTimeout(r, 10));
    phase = 'down';
    await node.stop();
    await node.start();
    phase = 'after';
    await Promise.all(running);
    expect(wrong).toEqual([]);
    expect(okAfter.every((n) => n >= 5)).toBe(true);
    // The errors clients saw say the connection failed, or that the server was shutting down.
    for (const code of codes) expect(['08006', '57P01', '08003', '57P03', '08001', 'Connection terminated unexpectedly']).toContain(code);
    expect(codes.size).toBeGreaterThan(0);
  }, 90_000);
});
