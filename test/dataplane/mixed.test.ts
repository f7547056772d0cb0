import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningServer } from '../../src/server.js';
import { psql } from '../support/psql.js';
import { ADMIN_PASSWORD, startTestServer } from '../support/server.js';
import { cli } from '../support/cli.js';
import { bothPlanes } from './planes-under-test.js';

/**
 * Both languages in one transaction (SPEC §10 "Routing", issue 22): admin statements and SQL
 * in one block commit together or not at all, through psql -1 -f, BEGIN ... COMMIT from a
 * driver, and one message of several statements. What a user sees afterwards is the proof:
 * the table and its rows, the policy installed (alice reads her rows only), the user able
 * to log in, or none of them.
 */
describe.each(bothPlanes())('both languages in one transaction on the $name data plane', (plane) => {
  let server: RunningServer;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pcu-mixed-'));
  let n = 0;

  beforeAll(async () => {
    server = await startTestServer(await plane.options());
    const r = await psql(server.port, ['-v', 'ON_ERROR_STOP=1', '-q'], {
      input: ["CREATE DATABASE shop;", "CREATE USER alice WITH PASSWORD 'alice-pw' ROLE readwrite;", 'GRANT READ, WRITE ON DATABASE shop TO alice;'].join('\n'),
    });
    expect(r.stderr).toBe('');
  }, 120_000);

  afterAll(async () => {
    await server?.close();
    await plane.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const connect = async (user = 'admin', password?: string) => {
    const c = new pg.Client({ host: '127.0.0.1', port: server.port, user, password: password ?? (user === 'alice' ? 'alice-pw' : 'bootstrap-secret'), database: 'shop' });
    c.on('error', () => {});
    await c.connect();
    return c;
  };

  /** A migration of both languages, its names made unique by `k`. */
  const migration = (k: number) => [
    `CREATE TABLE orders_${k} (id int PRIMARY KEY, owner text NOT NULL);`,
    `INSERT INTO orders_${k} VALUES (1, 'alice'), (2, 'bob');`,
    `CREATE RLS POLICY own_${k} ON shop.orders_${k} FOR ALL USING (owner = $auth.username);`,
    `CREATE USER analyst_${k} WITH PASSWORD 'analyst-pw' ROLE readonly;`,
    `GRANT READ ON DATABASE shop TO analyst_${k};`,
  ];

  /** What the migration left: alice's view of the table (or its SQLSTATE), the policy in the catalog, whether analyst logs in. */
  async function effects(k: number): Promise<{ alice: string[] | string; policy: boolean; analyst: boolean }> {
    const a = await connect('alice');
    let alice: string[] | string;
    try {
      alice = (await a.query(`SELECT owner FROM orders_${k} ORDER BY owner`)).rows.map((r: { owner: string }) => r.owner);
    } catch (err) {
      alice = (err as { code: string }).code;
    } finally {
      await a.end();
    }
    const admin = await connect();
    const policies = await admin.query('SHOW RLS POLICIES');
    await admin.end();
    const policy = policies.rows.some((r: Record<string, unknown>) => Object.values(r).includes(`own_${k}`));
    let analyst = true;
    try {
      const c = await connect(`analyst_${k}`, 'analyst-pw');
      await c.end();
    } catch {
      analyst = false;
    }
    return { alice, policy, analyst };
  }

  const ALL = { alice: ['alice'], policy: true, analyst: true };
  const NONE = { alice: '42P01', policy: false, analyst: false };

  it('psql -1 -f: the whole file commits', async () => {
    const k = ++n;
    const file = path.join(dir, `m${k}.sql`);
    writeFileSync(file, migration(k).join('\n') + '\n');
    const r = await psql(server.port, ['-v', 'ON_ERROR_STOP=1', '-q', '-1', '-f', file, '-d', 'shop']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(await effects(k)).toEqual(ALL);
  });

  it('psql -1 -f: an error in the middle leaves nothing of either language', async () => {
    const k = ++n;
    const file = path.join(dir, `m${k}.sql`);
    const m = migration(k);
    writeFileSync(file, [...m.slice(0, 4), 'INSERT INTO nowhere VALUES (1);', m[4]].join('\n') + '\n');
    const r = await psql(server.port, ['-v', 'ON_ERROR_STOP=1', '-q', '-1', '-f', file, '-d', 'shop']);
    expect(r.stderr).toContain('relation "nowhere" does not exist');
    expect(r.code).not.toBe(0);
    expect(await effects(k)).toEqual(NONE);
  });

  it('one message of both languages is one transaction: all of it, or nothing after an error', async () => {
    const c = await connect();
    try {
      const k = ++n;
      const results = (await c.query(migration(k).join('\n'))) as unknown as pg.QueryResult[];
      expect(results.map((r) => r.command)).toEqual(['CREATE', 'INSERT', 'CREATE', 'CREATE', 'GRANT']);
      expect(await effects(k)).toEqual(ALL);

      const j = ++n;
      const m = migration(j);
      const err = (await c.query([...m.slice(0, 4), 'SELECT 1/0;', m[4]].join('\n')).catch((e: unknown) => e)) as { code?: string };
      expect(err.code).toBe('22012');
      expect(await effects(j)).toEqual(NONE);
      // Inside a block, admin statements and its COMMIT in one message: the COMMIT is the block's.
      const h = ++n;
      const mh = migration(h);
      await c.query('BEGIN');
      await c.query(mh[0]!);
      await c.query(mh[1]!);
      const ended = (await c.query(`${mh[2]} ${mh[3]} ${mh[4]} COMMIT;`)) as unknown as pg.QueryResult[];
      expect(ended.map((r) => r.command)).toEqual(['CREATE', 'CREATE', 'GRANT', 'COMMIT']);
      expect(await effects(h)).toEqual(ALL);
      // The session is idle again: no block is left open on either side.
      expect((await c.query('SHOW USERS')).rows.length).toBeGreaterThan(0);
      expect((await c.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    } finally {
      await c.end();
    }
  });

  it('portcullis apply: a file of both languages commits as one, or not at all', async () => {
    const url = `postgres://admin:${ADMIN_PASSWORD}@127.0.0.1:${server.port}/shop`;
    const k = ++n;
    const good = path.join(dir, `apply${k}.sql`);
    writeFileSync(good, migration(k).join('\n') + '\n');
    const ok = await cli(['apply', '--url', url, good]);
    expect(ok.stderr).toBe('');
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/^applied 1 file, 5 statements in /);
    expect(await effects(k)).toEqual(ALL);

    const j = ++n;
    const bad = path.join(dir, `apply${j}.sql`);
    const m = migration(j);
    writeFileSync(bad, [...m.slice(0, 4), 'INSERT INTO nowhere VALUES (1);', m[4]].join('\n') + '\n');
    const failed = await cli(['apply', '--url', url, bad]);
    expect(failed.code).toBe(1);
    expect(failed.stderr).toContain(`apply${j}.sql:5:13: 42P01 relation "nowhere" does not exist`);
    expect(await effects(j)).toEqual(NONE);
  });

  it('the extended protocol: an admin statement prepared and executed inside the data plane block joins it', async () => {
    const c = await connect();
    try {
      const k = ++n;
      const m = migration(k);
      await c.query('BEGIN');
      await c.query(m[0]!);
      await c.query({ text: `INSERT INTO orders_${k} VALUES ($1, $2), ($3, $4)`, values: [1, 'alice', 2, 'bob'] });
      await c.query({ name: `policy_${k}`, text: m[2]! });
      await c.query({ name: `user_${k}`, text: m[3]! });
      await c.query({ name: `grant_${k}`, text: m[4]! });
      // COMMIT as a prepared statement cannot run the protocol: refused, and the block fails.
      expect(((await c.query({ name: 'commit', text: 'COMMIT' }).catch((e: unknown) => e)) as { code?: string }).code).toBe('0A000');
      expect((await c.query('ROLLBACK')).command).toBe('ROLLBACK');
      expect(await effects(k)).toEqual(NONE);

      await c.query('BEGIN');
      await c.query(m[0]!);
      await c.query({ text: `INSERT INTO orders_${k} VALUES ($1, $2), ($3, $4)`, values: [1, 'alice', 2, 'bob'] });
      await c.query({ name: `policy_${k}`, text: m[2]! });
      await c.query({ name: `user_${k}`, text: m[3]! });
      await c.query({ name: `grant_${k}`, text: m[4]! });
      expect((await c.query('COMMIT')).command).toBe('COMMIT');
      expect(await effects(k)).toEqual(ALL);
    } finally {
      await c.end();
    }
  });

  it('a COMMIT the catalog refuses (40001) rolls back the data plane side too', async () => {
    const a = await connect();
    const b = await connect();
    try {
      const k = ++n;
      const m = migration(k);
      await a.query('BEGIN');
      for (const s of m.slice(0, 4)) await a.query(s);
      // Another session commits the same user name first.
      await b.query(`CREATE USER analyst_${k} WITH PASSWORD 'other-pw' ROLE readonly`);
      const err = (await a.query('COMMIT').catch((e: unknown) => e)) as { code?: string };
      expect(err.code).toBe('40001');
      // Nothing of a's block: no table, no policy; the user is b's (its password, no grant).
      const seen = await effects(k);
      expect({ alice: seen.alice, policy: seen.policy }).toEqual({ alice: '42P01', policy: false });
      expect(seen.analyst).toBe(false);
      // a is idle, and its next transaction of both languages commits.
      expect((await a.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    } finally {
      await a.end();
      await b.end();
    }
  });

  it('BEGIN ... COMMIT from a driver, admin statement first; ROLLBACK undoes both sides', async () => {
    const c = await connect();
    try {
      const k = ++n;
      await c.query('BEGIN');
      // The admin statements first (the session's block), then SQL joins it, then the policy.
      const m = migration(k);
      for (const s of [m[3]!, m[4]!, m[0]!, m[1]!, m[2]!]) await c.query(s);
      expect((await c.query('COMMIT')).command).toBe('COMMIT');
      expect(await effects(k)).toEqual(ALL);

      const j = ++n;
      await c.query('BEGIN');
      for (const s of migration(j)) await c.query(s);
      expect((await c.query('ROLLBACK')).command).toBe('ROLLBACK');
      expect(await effects(j)).toEqual(NONE);

      // The catalog has no savepoints: rolling back to one would keep its half.
      const h = ++n;
      const mh = migration(h);
      await c.query('BEGIN');
      await c.query(mh[0]!);
      await c.query('SAVEPOINT s');
      await c.query(mh[3]!);
      expect(((await c.query('ROLLBACK TO SAVEPOINT s').catch((e: unknown) => e)) as { code?: string }).code).toBe('0A000');
      expect(((await c.query('COMMIT').catch((e: unknown) => e)) as { command?: string }).command).toBe('ROLLBACK');
      expect(await effects(h)).toEqual(NONE);
    } finally {
      await c.end();
    }
  });
});
