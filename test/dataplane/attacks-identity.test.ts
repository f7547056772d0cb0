import type pg from 'pg';
import { serialize } from 'pg-protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RawClient } from '../support/raw-client.js';
import { attempt, openShop, PASSWORDS, stateOf, type Shop } from './attack-shop.js';
import { bothPlanes } from './planes-under-test.js';

/**
 * Attacks on who a session is inside PostgreSQL: everything a principal can send to change
 * what `$auth` (portcullis.auth()) reads or which role its SQL runs as. After each one,
 * the session still reads its own rows only, as a role that is a profile role (no
 * superuser, no BYPASSRLS), and portcullis.auth('username') still names it.
 */
describe.each(bothPlanes())('changing who a session is, on the $name data plane', (plane) => {
  let shop: Shop;
  let alice: pg.Client;
  let dev: pg.Client;

  beforeAll(async () => {
    shop = await openShop(plane);
    alice = await shop.connect('alice');
    dev = await shop.connect('dev');
  }, 180_000);

  afterAll(async () => {
    await shop?.close();
  });

  /** The session's rows, its $auth name and its PostgreSQL role are still its own. */
  async function stillItself(c: pg.Client, user: string, rows: string[]): Promise<void> {
    expect(await shop.visibleOwners(user, c)).toEqual(rows);
    const who = await c.query(
      "SELECT portcullis.auth('username') AS auth, r.rolname::text AS role, r.rolsuper AS su, r.rolbypassrls AS bypass FROM pg_catalog.pg_roles r WHERE r.rolname = current_user",
    );
    expect(who.rows).toHaveLength(1);
    expect(who.rows[0]).toMatchObject({ auth: user, su: false, bypass: false });
    expect(who.rows[0].role).toMatch(/^pcu_t\d+d\d+_p_[0-9a-f]{12}$/);
  }

  it('SET, SET LOCAL, SET SESSION and RESET of auth.* and portcullis.* names: 42501', async () => {
    for (const sql of [
      "SET auth.username = 'bob'",
      "SET SESSION auth.username TO 'bob'",
      "SET LOCAL auth.username = 'bob'",
      "SET auth.id = '2'",
      "SET portcullis.username = 'bob'",
      'RESET auth.username',
    ]) {
      expect(await stateOf(alice, sql), sql).toBe('42501');
    }
    await stillItself(alice, 'alice', ['alice']);
  });

  it('set_config() of every name auth() could be thought to read, a computed name, in FROM: 42501', async () => {
    const names = ['auth.username', 'auth.id', 'auth.claims.sub', 'portcullis.auth', 'role', 'session_authorization', 'request.jwt.claims', 'app.user', 'search_path'];
    for (const name of names) {
      for (const local of ['false', 'true']) {
        const sql = `SELECT set_config('${name}', 'bob', ${local})`;
        expect(await stateOf(alice, sql), sql).toBe('42501');
      }
    }
    for (const sql of [
      "SELECT set_config('auth.' || 'username', 'bob', false)",
      "SELECT pg_catalog.set_config(name, 'bob', false) FROM pg_catalog.pg_settings LIMIT 1",
      "SELECT owner FROM orders, set_config('auth.username', 'bob', true) s",
      "UPDATE pg_catalog.pg_settings SET setting = 'bob' WHERE name = 'search_path'",
    ]) {
      expect(await stateOf(alice, sql), sql).toBe('42501');
    }
    await stillItself(alice, 'alice', ['alice']);
  });

  it('RESET ALL, DISCARD ALL, DISCARD PLANS, a search_path of its own: still alice', async () => {
    for (const sql of ['RESET ALL', 'DISCARD ALL', 'DISCARD PLANS', 'DISCARD SEQUENCES', 'SET search_path = public, pg_catalog']) {
      expect(await stateOf(alice, sql), sql).toBe('ok');
      await stillItself(alice, 'alice', ['alice']);
    }
    expect(await stateOf(alice, 'RESET search_path')).toBe('ok');
  });

  it('SET ROLE, RESET ROLE and SET SESSION AUTHORIZATION to any role: 42501', async () => {
    const owner = (await shop.admin("SELECT tableowner::text AS o FROM pg_catalog.pg_tables WHERE tablename = 'orders'")).rows[0].o as string;
    expect(owner).toMatch(/^pcu_t\d+d\d+_owner$/);
    const targets = ['postgres', 'gateway', owner, 'pg_read_all_data', 'bob'];
    for (const sql of [
      ...targets.flatMap((r) => [`SET ROLE ${r}`, `SET SESSION ROLE ${r}`, `SET LOCAL ROLE ${r}`, `SET role = '${r}'`, `SET SESSION AUTHORIZATION ${r}`]),
      'SET ROLE NONE',
      'RESET ROLE',
      'SET role TO DEFAULT',
      // In one message behind a statement that is allowed.
      'SELECT 1 FROM orders; RESET ROLE',
      // The admin language's own (superusers only, even back to the login).
      'SET SESSION AUTHORIZATION DEFAULT',
      'RESET SESSION AUTHORIZATION',
    ]) {
      expect(await stateOf(alice, sql), sql).toBe('42501');
    }
    await stillItself(alice, 'alice', ['alice']);
  });

  it('from inside PostgreSQL, with SCHEMA: DO blocks, functions of its own (sql, plpgsql, SECURITY DEFINER, internal), EXECUTE of SET ROLE over pg_roles: refused', async () => {
    const attacks = [
      "DO $$ BEGIN EXECUTE 'RESET ROLE'; END $$",
      "DO $$ DECLARE r record; BEGIN FOR r IN SELECT rolname FROM pg_catalog.pg_roles LOOP BEGIN EXECUTE format('SET ROLE %I', r.rolname); EXCEPTION WHEN others THEN NULL; END; END LOOP; END $$",
      "DO LANGUAGE sql $$ RESET ROLE $$",
      'CREATE FUNCTION public.escape() RETURNS text LANGUAGE sql AS $$ RESET ROLE; SELECT current_user::text $$',
      "CREATE FUNCTION public.escape2() RETURNS text LANGUAGE plpgsql AS $$ BEGIN EXECUTE 'RESET ROLE'; RETURN current_user; END $$",
      "CREATE FUNCTION public.definer() RETURNS SETOF public.orders LANGUAGE plpgsql SECURITY DEFINER AS $$ BEGIN RETURN QUERY SELECT * FROM public.orders; END $$",
      "CREATE FUNCTION public.who() RETURNS text LANGUAGE internal AS 'pgsql_version'",
      'CREATE PROCEDURE public.p() LANGUAGE sql AS $$ RESET ROLE $$',
      // portcullis's own objects: the store, the function, their schema.
      `INSERT INTO portcullis.session_auth VALUES (pg_backend_pid(), session_user, '{"username": "bob"}')`,
      `UPDATE portcullis.session_auth SET vals = '{"username": "bob"}'`,
      'DELETE FROM portcullis.session_auth',
      "CREATE OR REPLACE FUNCTION portcullis.auth(name text) RETURNS text LANGUAGE sql AS $$ SELECT 'bob' $$",
      'ALTER FUNCTION portcullis.auth(text) SECURITY INVOKER',
      'CREATE TABLE portcullis.mine (a int)',
      // Defaults and checks are expressions too.
      "CREATE TABLE public.sneaky (a text DEFAULT set_config('auth.username', 'bob', false))",
    ];
    for (const sql of attacks) {
      expect(await stateOf(dev, sql), sql).toBe('42501');
    }
    // query_to_xml runs its text read-only (SPI): RESET ROLE is refused there.
    const viaXml = await attempt(dev, "SELECT query_to_xml('RESET ROLE', true, true, '')");
    expect(viaXml.ok).toBe(false);
    await stillItself(dev, 'dev', []);
  });

  it("a prepared statement of bob's is not alice's, on a shared connection or not", async () => {
    const bob = await RawClient.authenticate(shop.server.port, { user: 'bob', database: 'shop' }, PASSWORDS.bob!).then(async ({ c }) => {
      await c.until('readyForQuery');
      c.take();
      return c;
    });
    const al = await RawClient.authenticate(shop.server.port, { user: 'alice', database: 'shop' }, PASSWORDS.alice!).then(async ({ c }) => {
      await c.until('readyForQuery');
      c.take();
      return c;
    });
    try {
      const rowsOf = (ms: { name: string }[]) => ms.filter((m) => m.name === 'dataRow').map((m) => (m as unknown as { fields: string[] }).fields[0]);
      const errorOf = (ms: { name: string }[]) => (ms.find((m) => m.name === 'error') as unknown as { code: string } | undefined)?.code;
      const prepared = await bob.roundTrip(
        serialize.parse({ name: 'steal', text: 'SELECT owner, 1 AS bobs FROM orders ORDER BY owner', types: [] }),
        serialize.bind({ statement: 'steal' }),
        serialize.execute({}),
        serialize.sync(),
      );
      expect(rowsOf(prepared)).toEqual(['bob']);
      // alice binds bob's statement name without preparing it.
      const stolen = await al.roundTrip(serialize.bind({ statement: 'steal' }), serialize.execute({}), serialize.sync());
      expect(errorOf(stolen)).toBe('26000');
      expect(rowsOf(stolen)).toEqual([]);
      // Nor under the name it has on the data plane's connection (shared on the embedded
      // plane): the connection alice's turn runs on holds none of bob's statements.
      const listed = await al.roundTrip(serialize.query('SELECT name, statement FROM pg_catalog.pg_prepared_statements'));
      expect(errorOf(listed)).toBeUndefined();
      expect(listed.filter((m) => m.name === 'dataRow').map((m) => (m as unknown as { fields: string[] }).fields[1])).not.toContainEqual(expect.stringContaining('bobs'));
      // Her own statement of that name reads her rows; bob's still reads his.
      const own = await al.roundTrip(
        serialize.parse({ name: 'steal', text: 'SELECT owner FROM orders ORDER BY owner', types: [] }),
        serialize.bind({ statement: 'steal' }),
        serialize.execute({}),
        serialize.sync(),
      );
      expect(rowsOf(own)).toEqual(['alice']);
      const again = await bob.roundTrip(serialize.bind({ statement: 'steal' }), serialize.execute({}), serialize.sync());
      expect(rowsOf(again)).toEqual(['bob']);
    } finally {
      bob.end();
      al.end();
    }
    // SQL PREPARE: 0A000 where sessions share a connection; upstream bob's stays on his own.
    const bobSql = await shop.connect('bob');
    expect(await stateOf(bobSql, 'PREPARE mine AS SELECT owner FROM orders')).toBe(plane.kind === 'embedded' ? '0A000' : 'ok');
    expect(await stateOf(alice, 'EXECUTE mine')).toBe('26000');
    await bobSql.end();
  });

  it('BEGIN ... ROLLBACK around them: refused inside the block, and nothing survives its end', async () => {
    const blocks: [string, string][][] = [
      [['BEGIN', 'ok'], ['SET LOCAL ROLE postgres', '42501'], ['ROLLBACK', 'ok']],
      [['BEGIN', 'ok'], ['SELECT 1 FROM orders', 'ok'], ['RESET ROLE', '42501'], ['SELECT 1 FROM orders', '25P02'], ['ROLLBACK', 'ok']],
      [['BEGIN', 'ok'], ["SELECT set_config('auth.username', 'bob', true)", '42501'], ['COMMIT', 'ok']],
      [['BEGIN', 'ok'], ['SELECT 1 FROM orders', 'ok'], ['SAVEPOINT s', 'ok'], ["SET LOCAL auth.username = 'bob'", '42501'], ['ROLLBACK TO SAVEPOINT s', 'ok'], ['SELECT owner FROM orders', 'ok'], ['COMMIT', 'ok']],
      [['BEGIN', 'ok'], ['SELECT 1 FROM orders', 'ok'], ['DISCARD ALL', '25001'], ['ROLLBACK', 'ok']],
      [['BEGIN', 'ok'], ['SET SESSION AUTHORIZATION bob', '42501'], ['ROLLBACK', 'ok']],
      // Inside a data-plane block, who the session is cannot change (0A000).
      [['BEGIN', 'ok'], ['SELECT 1 FROM orders', 'ok'], ['SET SESSION AUTHORIZATION bob', '0A000'], ['ROLLBACK', 'ok']],
    ];
    for (const block of blocks) {
      const seen: [string, string][] = [];
      for (const [sql] of block) seen.push([sql, await stateOf(alice, sql)]);
      expect(seen).toEqual(block);
      await stillItself(alice, 'alice', ['alice']);
    }
  });
});
