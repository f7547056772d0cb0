/**
 * Identity inside PostgreSQL: the `$auth` store, profile roles and the lock-down, against
 * PGlite (set-role mode) and Debian's PostgreSQL with a non-superuser portcullis (login
 * mode). What a principal tries in SQL must leave it with its own rows and its own values.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RlsPolicy } from '../../src/catalog/model.js';
import { adoptNewObjects, canonicalProfile, ensureProfileRole, identitySql, installSchema, profileRoleName, storeAuthFor, syncDatabase } from '../../src/dataplane/provision/index.js';
import { authOf, pglitePlane, postgresPlane, sqlState, type Plane } from '../support/provision-planes.js';

const READWRITE = canonicalProfile(['SELECT', 'INSERT', 'UPDATE', 'DELETE'], {}, false);
const READONLY = canonicalProfile(['SELECT'], {}, false);
const ADMIN = canonicalProfile(['SELECT', 'INSERT', 'UPDATE', 'DELETE'], {}, true);

const alice = authOf({ id: '2', username: 'alice', role: 'readwrite', method: 'password', roles: ['readwrite'] });
const bob = authOf({ id: '3', username: 'bob', role: 'readwrite', method: 'password' });

const policy = (id: number, collection: string, name: string, predicate: RlsPolicy['predicate'], kind: RlsPolicy['kind'] = 'all'): RlsPolicy => ({
  id,
  tenantId: 1,
  databaseId: 1,
  collection,
  name,
  kind,
  predicate,
  restrictive: false,
  createdAt: 0,
  createdBy: 'admin',
});
const col = (name: string) => ({ kind: 'column' as const, path: [name], position: 0 });
const auth = (name: string) => ({ kind: 'auth' as const, path: [name], position: 0 });
const OWN = policy(10, 'orders', 'own', { kind: 'compare', op: '=', left: col('owner'), right: auth('username') });
const MINE = policy(11, 'invoices', 'mine', { kind: 'compare', op: '=', left: col('customer_id'), right: auth('id') });

describe.each([
  ['pglite', pglitePlane],
  ['postgres', postgresPlane],
] as const)('provisioning identity on %s', (_name, open) => {
  let plane: Plane;
  beforeAll(async () => {
    plane = await open();
    await installSchema(plane.admin, plane.dbKey);
    // An admin principal creates the tables, as forwarded DDL would; portcullis adopts them.
    const a = await plane.as(ADMIN, authOf({ username: 'admin' }));
    await a.exec(`CREATE TABLE orders (id serial PRIMARY KEY, owner text NOT NULL, amount numeric);
                  CREATE TABLE invoices (id serial PRIMARY KEY, customer_id integer NOT NULL, total numeric)`);
    await a.close();
    await adoptNewObjects(plane.admin, plane.dbKey, [OWN, MINE]);
    const b = await plane.as(READWRITE, bob);
    await b.exec(`INSERT INTO orders (owner, amount) VALUES ('bob', 5)`);
    await b.close();
    const c = await plane.as(READWRITE, authOf({ id: '7' }));
    await c.exec(`INSERT INTO invoices (customer_id, total) VALUES (7, 70)`);
    await c.close();
    const d = await plane.as(READWRITE, authOf({ id: '8' }));
    await d.exec(`INSERT INTO invoices (customer_id, total) VALUES (8, 80)`);
    await d.close();
  }, 120_000);
  afterAll(async () => plane?.close());

  it('installs idempotently, and says what PUBLIC keeps where portcullis is no superuser', async () => {
    const again = await installSchema(plane.admin, plane.dbKey);
    if (plane.name === 'pglite') {
      expect(again.superuser).toBe(true);
      expect(again.exposed).toEqual([]);
    } else {
      // The languages and set_config belong to the bootstrap superuser: a CREATEROLE
      // CREATEDB role cannot take them from PUBLIC, hence login mode on such an upstream.
      expect(again.superuser).toBe(false);
      expect(again.exposed).toEqual(expect.arrayContaining(['language plpgsql', 'language sql', 'function set_config(text,text,boolean)']));
      expect(again.exposed).not.toContain('schema public (CREATE)');
      expect(again.exposed.some((e) => e.includes('pg_read_file'))).toBe(false);
    }
    const [owner] = await plane.admin.query(`SELECT pg_get_userbyid(nspowner)::text AS o FROM pg_namespace WHERE nspname = 'portcullis'`);
    expect(owner!.o).toBe(again.role);
  });

  it('a policy on owner = $auth.username shows a principal its own rows and refuses another\'s', async () => {
    const s = await plane.as(READWRITE, alice);
    await s.exec(`INSERT INTO orders (owner, amount) VALUES ('alice', 10)`);
    expect(await sqlState(s.exec(`INSERT INTO orders (owner, amount) VALUES ('bob', 10)`))).toBe('42501');
    expect(await s.query('SELECT owner, amount::text FROM orders ORDER BY id')).toEqual([{ owner: 'alice', amount: '10' }]);
    // UPDATE cannot hand a row to someone else, nor reach theirs.
    expect(await sqlState(s.exec(`UPDATE orders SET owner = 'bob' WHERE owner = 'alice'`))).toBe('42501');
    await s.exec(`UPDATE orders SET amount = 0 WHERE owner = 'bob'`);
    await s.close();
    const b = await plane.as(READWRITE, bob);
    expect(await b.query('SELECT owner, amount::text FROM orders ORDER BY id')).toEqual([{ owner: 'bob', amount: '5' }]);
    await b.close();
  });

  it('nothing a principal sends changes what portcullis.auth returns or which role it is', async () => {
    const s = await plane.as(ADMIN, alice);
    const [before] = await s.query('SELECT current_user::text AS u');
    const attempts = [
      `SET auth.username = 'bob'`,
      `SELECT set_config('auth.username', 'bob', false)`,
      `SELECT set_config('role', 'postgres', false)`,
      `UPDATE pg_settings SET setting = 'postgres' WHERE name = 'role'`,
      `DO $$ BEGIN EXECUTE 'RESET ROLE'; END $$`,
      `CREATE FUNCTION reset_me() RETURNS text LANGUAGE sql AS 'RESET ROLE; SELECT current_user::text'`,
      `CREATE FUNCTION plx() RETURNS text LANGUAGE plpgsql AS 'BEGIN RESET ROLE; RETURN current_user; END'`,
      `CREATE FUNCTION definer() RETURNS text LANGUAGE sql SECURITY DEFINER AS 'SELECT current_user::text'`,
      `INSERT INTO portcullis.session_auth VALUES (pg_backend_pid(), session_user, '{"username":"bob"}')`,
      `UPDATE portcullis.session_auth SET vals = '{"username":"bob"}'`,
      `CREATE OR REPLACE FUNCTION portcullis.auth(name text) RETURNS text LANGUAGE sql AS $$ SELECT 'bob' $$`,
    ];
    // Ending its own backend is every role's right; on PGlite the function is revoked.
    if (plane.mode === 'set-role') attempts.push(`SELECT pg_terminate_backend(pg_backend_pid())`);
    const codes: Record<string, string | undefined> = {};
    for (const a of attempts) codes[a] = await sqlState(s.exec(a));
    // Where creating them worked (login mode), calling them changes nothing either.
    if (codes[attempts[5]!] === undefined) await s.exec('SELECT reset_me()');
    if (codes[attempts[6]!] === undefined) await s.exec('SELECT plx()');
    const [after] = await s.query(`SELECT current_user::text AS u, portcullis.auth('username') AS name`);
    expect(after).toEqual({ u: before!.u, name: 'alice' });
    expect(await s.query('SELECT owner FROM orders ORDER BY id')).toEqual([{ owner: 'alice' }]);
    // Writing the store or replacing the function: refused on both planes.
    for (const a of attempts.slice(8, 11)) expect(codes[a]).toBe('42501');
    // Files and programs of the server: superuser-only on both planes.
    for (const a of [`COPY orders TO '/tmp/pcu-leak'`, `COPY orders FROM PROGRAM 'true'`, `SELECT pg_read_file('/etc/hostname')`, `SELECT lo_import('/etc/hostname')`]) {
      expect([a, await sqlState(s.exec(a))]).toEqual([a, '42501']);
    }
    if (plane.mode === 'set-role') {
      // PGlite: the role can run no code of its own and cannot set anything by function.
      for (const a of attempts.slice(1, 8)) expect(codes[a]).toBe('42501');
      expect(codes[attempts[11]!]).toBe('42501');
    }
    await s.close();
  });

  it('defaults a profile role sets for itself are gone at the next ensureProfileRole', async () => {
    const s = await plane.as(READWRITE, alice);
    await s.exec('ALTER ROLE CURRENT_USER SET statement_timeout = 1');
    await s.close();
    const role = profileRoleName(plane.dbKey, READWRITE);
    const settings = () => plane.admin.query(`SELECT setconfig::text AS c FROM pg_db_role_setting WHERE setrole = (SELECT oid FROM pg_roles WHERE rolname = $1)`, [role]);
    expect(await settings()).toEqual([{ c: '{statement_timeout=1}' }]);
    await plane.as(READWRITE, alice).then((x) => x.close());
    expect(await settings()).toEqual([]);
  });

  it('a readonly profile cannot write; a profile role cannot change RLS or policies', async () => {
    const r = await plane.as(READONLY, alice);
    expect(await sqlState(r.exec(`INSERT INTO orders (owner, amount) VALUES ('alice', 1)`))).toBe('42501');
    expect(await sqlState(r.exec(`DELETE FROM orders`))).toBe('42501');
    await r.close();
    const a = await plane.as(ADMIN, alice);
    for (const ddl of [
      'ALTER TABLE orders DISABLE ROW LEVEL SECURITY',
      'ALTER TABLE orders NO FORCE ROW LEVEL SECURITY',
      'DROP POLICY own ON orders',
      'CREATE POLICY everything ON orders USING (true)',
      'ALTER TABLE orders OWNER TO CURRENT_USER',
      'DROP TABLE orders',
      `CREATE ROLE intruder`,
    ]) {
      expect([ddl, await sqlState(a.exec(ddl))]).toEqual([ddl, '42501']);
    }
    await a.close();
  });

  it('$auth.id against an integer column: typed, and a value that is no integer matches nothing', async () => {
    const seven = await plane.as(READWRITE, authOf({ id: '7' }));
    expect(await seven.query('SELECT customer_id::text AS c FROM invoices')).toEqual([{ c: '7' }]);
    await seven.close();
    const odd = await plane.as(READWRITE, authOf({ id: 'not-a-number' }));
    expect(await odd.query('SELECT customer_id::text AS c FROM invoices')).toEqual([]);
    expect(await sqlState(odd.exec('INSERT INTO invoices (customer_id) VALUES (7)'))).toBe('42501');
    await odd.close();
    const none = await plane.as(READWRITE, authOf({}));
    expect(await none.query('SELECT customer_id FROM invoices')).toEqual([]);
    await none.close();
  });

  it('a sync keeps the rows visible as they were (idempotent)', async () => {
    const desired = { dbKey: plane.dbKey, policies: [OWN, MINE], profiles: [READWRITE, READONLY, ADMIN] };
    if (plane.mode === 'login') Object.assign(desired, { passwords: Object.fromEntries(desired.profiles.map((p) => [profileRoleName(plane.dbKey, p), 'test-profile-password'])) });
    await syncDatabase(plane.admin, desired);
    const second = await syncDatabase(plane.admin, desired);
    expect(second).toMatchObject({ rolesCreated: [], rolesDropped: [], adopted: [], policiesInstalled: [], policiesDropped: [] });
    const b = await plane.as(READWRITE, bob);
    expect(await b.query('SELECT owner FROM orders')).toEqual([{ owner: 'bob' }]);
    await b.close();
  });

  it('measures what a turn costs (printed, not asserted)', async () => {
    const role = profileRoleName(plane.dbKey, READWRITE);
    const n = 200;
    const time = async (what: string, k: number, fn: () => Promise<unknown>) => {
      const t0 = performance.now();
      for (let i = 0; i < k; i++) await fn();
      console.log(`[cost] ${plane.name}: ${what} ${((performance.now() - t0) / k).toFixed(3)} ms`);
    };
    const password = plane.mode === 'login' ? { password: 'test-profile-password' } : {};
    await time('ensureProfileRole (role exists)', 20, () => ensureProfileRole(plane.admin, plane.dbKey, READWRITE, password));
    await time('adoptNewObjects (nothing new)', 20, () => adoptNewObjects(plane.admin, plane.dbKey, [OWN, MINE]));
    const desired = { dbKey: plane.dbKey, policies: [OWN, MINE], profiles: [READWRITE], ...(plane.mode === 'login' ? { passwords: { [role]: 'test-profile-password' } } : {}) };
    await time('syncDatabase (nothing to change, one profile)', 10, () => syncDatabase(plane.admin, desired));
    if (plane.mode === 'set-role') {
      const sql = identitySql(role, alice);
      const t0 = performance.now();
      for (let i = 0; i < n; i++) await plane.admin.exec(sql);
      const ms = (performance.now() - t0) / n;
      const same = identitySql(role, alice, { reset: 'same-session' });
      const t1 = performance.now();
      for (let i = 0; i < n; i++) await plane.admin.exec(same);
      const msSame = (performance.now() - t1) / n;
      console.log(`[cost] ${plane.name}: identity SQL, another session's connection ${ms.toFixed(3)} ms; same session ${msSame.toFixed(3)} ms`);
    } else {
      const [me] = await plane.admin.query('SELECT pg_backend_pid()::text AS pid');
      const t0 = performance.now();
      for (let i = 0; i < n; i++) await storeAuthFor(plane.admin, Number(me!.pid), role, alice);
      const ms = (performance.now() - t0) / n;
      const other = await plane.setRoleSession!(READWRITE, alice);
      const sql = identitySql(role, alice);
      const t1 = performance.now();
      for (let i = 0; i < n; i++) await other.exec(sql);
      const msSet = (performance.now() - t1) / n;
      await other.close();
      console.log(`[cost] ${plane.name}: storeAuthFor (login mode) ${ms.toFixed(3)} ms; identity SQL (set-role mode) ${msSet.toFixed(3)} ms`);
    }
  });

  it.runIf(_name === 'postgres')('set-role mode holds on an upstream where portcullis is a superuser (the lock-down takes)', async () => {
    const server = (plane as Plane & { server: { query(sql: string): Promise<unknown>; connection(u?: string, p?: string, d?: string): object } }).server;
    await server.query('CREATE DATABASE pcu_t1_d2');
    const { default: pg } = await import('pg');
    const { pgAdminSql } = await import('../support/admin-sql.js');
    const c = new pg.Client(server.connection(undefined, undefined, 'pcu_t1_d2'));
    await c.connect();
    try {
      const sql = pgAdminSql(c);
      const report = await installSchema(sql, 't1_d2');
      expect({ superuser: report.superuser, exposed: report.exposed }).toEqual({ superuser: true, exposed: [] });
      const role = await ensureProfileRole(sql, 't1_d2', READWRITE);
      await sql.exec(identitySql(role, alice));
      for (const a of [`DO $$ BEGIN EXECUTE 'RESET ROLE'; END $$`, `SELECT set_config('role', 'postgres', false)`, `UPDATE pg_settings SET setting = 'postgres' WHERE name = 'role'`]) {
        expect([a, await sqlState(sql.exec(a))]).toEqual([a, '42501']);
      }
      expect(await sql.query(`SELECT current_user::text AS u, portcullis.auth('username') AS n`)).toEqual([{ u: role, n: 'alice' }]);
    } finally {
      await c.end();
    }
  });

  it.runIf(_name === 'postgres')('set-role mode without superuser does not hold: why login mode exists', async () => {
    const s = await plane.setRoleSession!(READWRITE, alice);
    await s.exec(`DO $$ BEGIN EXECUTE 'RESET ROLE'; END $$`);
    const [r] = await s.query('SELECT current_user::text AS u');
    expect(r!.u).toBe('gateway');
    await s.close();
  });
});
