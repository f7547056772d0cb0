/**
 * Catalog policies as PostgreSQL policies, objects principals create, profiles from the
 * catalog, and syncs: against PGlite (set-role mode) and Debian's PostgreSQL with a
 * non-superuser portcullis (login mode).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Catalog } from '../../src/catalog/catalog.js';
import type { Grant, RlsPolicy, User } from '../../src/catalog/model.js';
import {
  adoptNewObjects,
  canonicalProfile,
  ensureProfileRole,
  installSchema,
  installedPolicySql,
  profileFor,
  profileRoleName,
  renderPolicy,
  syncDatabase,
  type Profile,
} from '../../src/dataplane/provision/index.js';
import { effectiveOf } from '../../src/engine/effective.js';
import type { Predicate } from '../../grammar/ast.js';
import { authOf, pglitePlane, postgresPlane, sqlState, type Plane } from '../support/provision-planes.js';

const READWRITE = canonicalProfile(['SELECT', 'INSERT', 'UPDATE', 'DELETE'], {}, false);
const ADMIN = canonicalProfile(['SELECT', 'INSERT', 'UPDATE', 'DELETE'], {}, true);
const alice = authOf({ id: '2', username: 'alice', scopes: ['news', 'sports'], org_id: 'o1' });
const bob = authOf({ id: '3', username: 'bob', scopes: ['news'], org_id: 'o2' });

let nextId = 100;
const policy = (collection: string, name: string, predicate: Predicate, kind: RlsPolicy['kind'] = 'all', restrictive = false): RlsPolicy => ({
  id: nextId++,
  tenantId: 1,
  databaseId: 1,
  collection,
  name,
  kind,
  predicate,
  restrictive,
  createdAt: 0,
  createdBy: 'admin',
});
const col = (name: string) => ({ kind: 'column' as const, path: [name], position: 0 });
const auth = (...path: string[]) => ({ kind: 'auth' as const, path, position: 0 });
const str = (value: string) => ({ kind: 'literal' as const, value: { kind: 'string' as const, value, position: 0 } });
const eq = (left: ReturnType<typeof col>, right: ReturnType<typeof auth> | ReturnType<typeof str>): Predicate => ({ kind: 'compare', op: '=', left, right });
const TRUE: Predicate = { kind: 'operand', operand: { kind: 'literal', value: { kind: 'boolean', value: true, position: 0 } } };

describe('policy SQL (pure)', () => {
  const columns = { owner: { type: 'text', element: null }, customer_id: { type: 'integer', element: null }, 'we"ird': { type: 'text', element: null }, tags: { type: 'text[]', element: 'text' } };

  it('types $auth against the column and reads it once per statement', () => {
    const r = renderPolicy(policy('orders', 'own', eq(col('owner'), auth('username'))), columns);
    expect(r.pg.map((p) => p.create)).toEqual([
      `CREATE POLICY "own" ON "public"."orders" AS PERMISSIVE FOR ALL TO PUBLIC USING ((SELECT "portcullis"."auth"('username')) IS NOT NULL AND ("owner" = (SELECT "portcullis"."auth"('username'))))`,
    ]);
    const i = renderPolicy(policy('invoices', 'mine', eq(col('customer_id'), auth('id')), 'read'), columns);
    expect(i.pg[0]!.create).toContain(`FOR SELECT TO PUBLIC USING ((SELECT "portcullis"."auth_as"('id', 'integer'))::integer IS NOT NULL AND ("customer_id" = (SELECT "portcullis"."auth_as"('id', 'integer'))::integer))`);
  });

  it('WRITE is three policies, restrictive ones say so, names and values are quoted', () => {
    const w = renderPolicy(policy('t', `it's "w"`, eq(col('we"ird'), str(`a'b\\c`)), 'write', true), columns);
    expect(w.pg.map((p) => p.name)).toEqual([`it's "w"/insert`, `it's "w"/update`, `it's "w"/delete`]);
    expect(w.pg[0]!.create).toBe(`CREATE POLICY "it's ""w""/insert" ON "public"."t" AS RESTRICTIVE FOR INSERT TO PUBLIC WITH CHECK ("we""ird" = E'a''b\\\\c')`);
    expect(w.pg[1]!.create).toContain('FOR UPDATE TO PUBLIC USING (');
    expect(w.pg[2]!.create).toContain('FOR DELETE TO PUBLIC USING (');
  });

  it('a predicate that does not type against the table installs as false (fail closed)', () => {
    const r = renderPolicy(policy('orders', 'bad', eq(col('nope'), auth('username')), 'read', true), columns);
    expect(r.invalid).toBe('column "nope" does not exist');
    expect(r.pg[0]!.create).toBe(`CREATE POLICY "bad" ON "public"."orders" AS RESTRICTIVE FOR SELECT TO PUBLIC USING (false)`);
  });

  it('lists: CONTAINS and IN read a list variable as an array', () => {
    const c = renderPolicy(policy('t', 'c', { kind: 'contains', left: auth('scopes'), right: col('owner') }), columns);
    expect(c.pg[0]!.create).toContain(`"owner" = ANY ((SELECT "portcullis"."auth_as"('scopes', 'text[]'))::text[])`);
    const t = renderPolicy(policy('t', 'c', { kind: 'contains', left: col('tags'), right: auth('username') }), columns);
    expect(t.pg[0]!.create).toContain(`(SELECT "portcullis"."auth"('username')) = ANY ("tags")`);
  });
});

describe.each([
  ['pglite', pglitePlane],
  ['postgres', postgresPlane],
] as const)('policies and adoption on %s', (name, open) => {
  let plane: Plane;
  const OWN = policy('orders', 'own', eq(col('owner'), auth('username')));
  const LATER = policy('later', 'mine', eq(col('owner'), auth('username')));
  const POSTS_READ = policy('posts', 'everyone reads', TRUE, 'read');
  const POSTS_WRITE = policy('posts', 'authors write', eq(col('author'), auth('username')), 'write');
  const POSTS_ORG = policy('posts', 'same org', eq(col('org'), auth('org_id')), 'read', true);
  const SCOPED = policy('news', 'scoped', { kind: 'contains', left: auth('scopes'), right: col('topic') }, 'read');
  const all = () => [OWN, LATER, POSTS_READ, POSTS_WRITE, POSTS_ORG, SCOPED];
  const desired = (profiles: Profile[], policies = all()) => ({
    dbKey: plane.dbKey,
    policies,
    profiles,
    ...(plane.mode === 'login' ? { passwords: Object.fromEntries(profiles.map((p) => [profileRoleName(plane.dbKey, p), 'test-profile-password'])) } : {}),
  });
  const rls = async (table: string) =>
    (await plane.admin.query(`SELECT relrowsecurity::text AS on, relforcerowsecurity::text AS force, (SELECT count(*) FROM pg_policy WHERE polrelid = c.oid)::text AS n FROM pg_class c WHERE oid = $1::regclass`, [`public.${table}`]))[0];

  beforeAll(async () => {
    plane = await open();
    await installSchema(plane.admin, plane.dbKey);
    const a = await plane.as(ADMIN, authOf({ username: 'admin' }));
    await a.exec(`CREATE TABLE orders (id serial PRIMARY KEY, owner text NOT NULL);
                  CREATE TABLE posts (id serial PRIMARY KEY, author text, org text, body text);
                  CREATE TABLE news (id serial PRIMARY KEY, topic text);
                  INSERT INTO news (topic) VALUES ('news'), ('sports'), ('weather')`);
    await a.close();
    await adoptNewObjects(plane.admin, plane.dbKey, all());
    for (const [who, rows] of [
      [alice, `INSERT INTO orders (owner) VALUES ('alice'); INSERT INTO posts (author, org, body) VALUES ('alice', 'o1', 'a1')`],
      [bob, `INSERT INTO orders (owner) VALUES ('bob'); INSERT INTO posts (author, org, body) VALUES ('bob', 'o2', 'b1')`],
    ] as const) {
      const s = await plane.as(READWRITE, who);
      await s.exec(rows);
      await s.close();
    }
  }, 120_000);
  afterAll(async () => plane?.close());

  it('the first policy turns RLS on and forced; the last one dropped turns it off', async () => {
    expect(await rls('orders')).toEqual({ on: 'true', force: 'true', n: '1' });
    const r = await syncDatabase(plane.admin, desired([READWRITE, ADMIN], all().filter((p) => p !== OWN)));
    expect(r.policiesDropped).toEqual(['orders.own']);
    expect(await rls('orders')).toEqual({ on: 'false', force: 'false', n: '0' });
    const b = await plane.as(READWRITE, bob);
    expect(await b.query('SELECT owner FROM orders ORDER BY id')).toEqual([{ owner: 'alice' }, { owner: 'bob' }]);
    await b.close();
    await syncDatabase(plane.admin, desired([READWRITE, ADMIN]));
    expect(await rls('orders')).toEqual({ on: 'true', force: 'true', n: '1' });
  });

  it('READ governs SELECT, WRITE governs INSERT/UPDATE/DELETE, a restrictive policy narrows', async () => {
    const a = await plane.as(READWRITE, alice);
    // Everyone reads, but only their org (restrictive): alice sees o1's post only.
    expect(await a.query('SELECT body FROM posts ORDER BY id')).toEqual([{ body: 'a1' }]);
    expect(await sqlState(a.exec(`INSERT INTO posts (author, org, body) VALUES ('bob', 'o1', 'forged')`))).toBe('42501');
    await a.exec(`INSERT INTO posts (author, org, body) VALUES ('alice', 'o1', 'a2')`);
    expect(await a.query('SELECT body FROM posts ORDER BY id')).toEqual([{ body: 'a1' }, { body: 'a2' }]);
    // A list variable: $auth.scopes CONTAINS topic.
    expect(await a.query('SELECT topic FROM news ORDER BY id')).toEqual([{ topic: 'news' }, { topic: 'sports' }]);
    await a.close();
    const b = await plane.as(READWRITE, bob);
    expect(await b.query('SELECT topic FROM news ORDER BY id')).toEqual([{ topic: 'news' }]);
    await b.close();
  });

  it('EXPLAIN RLS text: the SQL installed, or null while the table does not exist', async () => {
    expect(await installedPolicySql(plane.admin, OWN)).toBe(
      `CREATE POLICY "own" ON "public"."orders" AS PERMISSIVE FOR ALL TO PUBLIC USING (((( SELECT portcullis.auth('username'::text) AS auth) IS NOT NULL) AND (owner = ( SELECT portcullis.auth('username'::text) AS auth))));`,
    );
    const write = await installedPolicySql(plane.admin, POSTS_WRITE);
    expect(write!.split('\n').map((l) => l.slice(0, l.indexOf(' USING') > 0 ? l.indexOf(' USING') : l.indexOf(' WITH')))).toEqual([
      'CREATE POLICY "authors write/insert" ON "public"."posts" AS PERMISSIVE FOR INSERT TO PUBLIC',
      'CREATE POLICY "authors write/update" ON "public"."posts" AS PERMISSIVE FOR UPDATE TO PUBLIC',
      'CREATE POLICY "authors write/delete" ON "public"."posts" AS PERMISSIVE FOR DELETE TO PUBLIC',
    ]);
    expect(await installedPolicySql(plane.admin, LATER)).toBeNull();
  });

  it('a policy waits for its table; a principal\'s table, view and own policy are adopted safely', async () => {
    const r = await syncDatabase(plane.admin, desired([READWRITE, ADMIN]));
    expect(r.pending.map((p) => p.name)).toEqual(['mine']);
    const a = await plane.as(ADMIN, alice);
    await a.exec(`CREATE TABLE later (id serial PRIMARY KEY, owner text);
                  CREATE POLICY mine_all ON later USING (true);
                  CREATE VIEW all_orders AS SELECT * FROM orders;
                  CREATE RULE copy_out AS ON INSERT TO later DO ALSO INSERT INTO orders (owner) VALUES (NEW.owner)`);
    // Only where PUBLIC kept the sql language (login mode) can a principal create a function.
    if (plane.mode === 'login') await a.exec(`CREATE FUNCTION whoami() RETURNS text LANGUAGE sql SECURITY DEFINER AS 'SELECT current_user::text'`);
    await a.close();
    const adopted = await adoptNewObjects(plane.admin, plane.dbKey, all());
    expect(adopted.adopted).toEqual(['all_orders', 'later']);
    // What would run as the owner role for others: a rule's actions, a definer function.
    expect(adopted.neutralised).toEqual(['rule copy_out on later', ...(plane.mode === 'login' ? ['function whoami()'] : []), 'view all_orders']);
    expect(adopted.installed).toEqual(['mine']);
    expect(adopted.pending).toEqual([]);
    const [owners] = await plane.admin.query(`SELECT string_agg(DISTINCT pg_get_userbyid(relowner)::text, ',') AS o FROM pg_class WHERE relname IN ('later', 'all_orders')`);
    expect(owners!.o).toBe(`pcu_${plane.dbKey}_owner`);
    // The principal's own policy is gone; the catalog's is in, RLS forced.
    expect(await plane.admin.query(`SELECT polname::text AS p FROM pg_policy WHERE polrelid = 'public.later'::regclass`)).toEqual([{ p: 'mine' }]);
    expect(await rls('later')).toEqual({ on: 'true', force: 'true', n: '1' });
    const b = await plane.as(READWRITE, bob);
    await b.exec(`INSERT INTO later (owner) VALUES ('bob')`);
    expect(await sqlState(b.exec(`INSERT INTO later (owner) VALUES ('alice')`))).toBe('42501');
    // The view alice created reads orders with the reader's policy, not as its owner.
    expect(await b.query('SELECT owner FROM all_orders')).toEqual([{ owner: 'bob' }]);
    if (plane.mode === 'login') expect(await b.query('SELECT whoami() AS u')).toEqual([{ u: profileRoleName(plane.dbKey, READWRITE) }]);
    await b.close();
    // Granted the view alone, not its table: the view reads with the reader's privileges.
    const viewOnly = await plane.as(canonicalProfile([], { all_orders: ['SELECT'] }, false), bob);
    expect(await sqlState(viewOnly.query('SELECT owner FROM all_orders'))).toBe('42501');
    await viewOnly.close();
    // And alice, having created them, no longer owns them.
    const a2 = await plane.as(ADMIN, alice);
    expect(await sqlState(a2.exec('DROP VIEW all_orders'))).toBe('42501');
    expect(await sqlState(a2.exec('ALTER TABLE later DISABLE ROW LEVEL SECURITY'))).toBe('42501');
    expect(await a2.query('SELECT owner FROM later')).toEqual([]);
    await a2.close();
  });

  it('a predicate PostgreSQL refuses (json has no =) installs as false, reported, and stays put', async () => {
    const a = await plane.as(ADMIN, alice);
    await a.exec(`CREATE TABLE blobs (id serial PRIMARY KEY, data json); INSERT INTO blobs (data) VALUES ('"alice"')`);
    await a.close();
    const WEIRD = policy('blobs', 'weird', eq(col('data'), auth('username')), 'read');
    const r = await syncDatabase(plane.admin, desired([READWRITE, ADMIN], [...all(), WEIRD]));
    expect(r.invalid).toEqual([{ table: 'blobs', policy: 'weird', reason: expect.stringMatching(/^PostgreSQL refused it: operator does not exist: json = json/) }]);
    expect(await installedPolicySql(plane.admin, WEIRD)).toBe('CREATE POLICY "weird" ON "public"."blobs" AS PERMISSIVE FOR SELECT TO PUBLIC USING (false);');
    expect(await rls('blobs')).toEqual({ on: 'true', force: 'true', n: '1' });
    const again = await syncDatabase(plane.admin, desired([READWRITE, ADMIN], [...all(), WEIRD]));
    expect(again).toMatchObject({ policiesInstalled: [], policiesDropped: [] });
    const s = await plane.as(READWRITE, alice);
    expect(await s.query('SELECT id FROM blobs')).toEqual([]);
    await s.close();
    await syncDatabase(plane.admin, desired([READWRITE, ADMIN]));
  });

  it('a grant on a collection that does not exist yet applies when the table is created', async () => {
    const gadgetsOnly = canonicalProfile([], { gadgets: ['SELECT', 'INSERT'] }, false);
    await ensureProfileRole(plane.admin, plane.dbKey, gadgetsOnly, plane.mode === 'login' ? { password: 'test-profile-password' } : {});
    const a = await plane.as(ADMIN, alice);
    await a.exec('CREATE TABLE gadgets (id serial PRIMARY KEY, name text)');
    await a.close();
    await adoptNewObjects(plane.admin, plane.dbKey, all());
    const g = await plane.as(gadgetsOnly, bob);
    // INSERT draws from the serial's sequence: USAGE on it comes with INSERT on the table.
    await g.exec(`INSERT INTO gadgets (name) VALUES ('lamp')`);
    expect(await g.query('SELECT id::text, name FROM gadgets')).toEqual([{ id: '1', name: 'lamp' }]);
    expect(await sqlState(g.exec(`UPDATE gadgets SET name = 'x'`))).toBe('42501');
    expect(await sqlState(g.query('SELECT * FROM orders'))).toBe('42501');
    await g.close();
  });

  it.runIf(name === 'postgres')('values written for another login of the same pid read as nothing', async () => {
    const s = await plane.as(READWRITE, alice);
    const [me] = await s.query('SELECT pg_backend_pid()::text AS pid');
    expect(await s.query(`SELECT portcullis.auth('username') AS u`)).toEqual([{ u: 'alice' }]);
    const { storeAuthFor } = await import('../../src/dataplane/provision/index.js');
    await storeAuthFor(plane.admin, Number(me!.pid), 'someone_else', alice);
    expect(await s.query(`SELECT portcullis.auth('username') AS u`)).toEqual([{ u: null }]);
    expect(await s.query('SELECT owner FROM orders')).toEqual([]);
    await s.close();
  });

  it('an expired grant is another profile, so another role', async () => {
    const NOW = Date.UTC(2026, 0, 1);
    const c = new Catalog();
    c.apply({ op: 'init', serverSecret: 's', at: NOW });
    c.apply({ op: 'insert', table: 'tenants', row: { id: 1, name: 'default', createdAt: NOW } });
    c.apply({ op: 'insert', table: 'databases', row: { id: 1, tenantId: 1, name: 'shop', createdAt: NOW } });
    const carol: User = { id: 5, name: 'carol', tenantId: 1, role: 'readonly', verifier: null, login: true, validUntil: null, connectionLimit: -1, certificateSubject: null, createdAt: NOW, updatedAt: NOW, createdBy: null };
    c.apply({ op: 'insert', table: 'users', row: carol });
    const grant: Grant = { id: 9, tenantId: 1, granteeKind: 'user', granteeId: 5, privilege: 'write', databaseId: 1, collection: 'orders', builtinRole: null, roleId: null, expiresAt: NOW + 60_000, grantedBy: 'admin', createdAt: NOW };
    c.apply({ op: 'insert', table: 'grants', row: grant });
    c.apply({ op: 'insert', table: 'grants', row: { ...grant, id: 10, privilege: 'read', collection: null, expiresAt: null } });
    const before = profileFor(effectiveOf(carol, c, NOW), 1)!;
    const after = profileFor(effectiveOf(carol, c, NOW + 60_000), 1)!;
    expect(before).toEqual({ all: ['SELECT'], tables: { orders: ['INSERT', 'UPDATE'] }, schema: false });
    expect(after).toEqual({ all: ['SELECT'], tables: {}, schema: false });
    expect(profileRoleName(plane.dbKey, before)).not.toBe(profileRoleName(plane.dbKey, after));
    expect(profileFor(effectiveOf(carol, c, NOW), 2)).toBeNull();

    const carolAuth = authOf({ id: '5', username: 'carol' });
    const s1 = await plane.as(before, carolAuth);
    await s1.exec(`INSERT INTO orders (owner) VALUES ('carol')`);
    await s1.close();
    const s2 = await plane.as(after, carolAuth);
    expect(await sqlState(s2.exec(`INSERT INTO orders (owner) VALUES ('carol')`))).toBe('42501');
    expect(await s2.query('SELECT owner FROM orders')).toEqual([{ owner: 'carol' }]);
    await s2.close();
    // The catalog no longer has the old profile: a sync drops its role.
    const r = await syncDatabase(plane.admin, desired([READWRITE, ADMIN, after]));
    expect(r.rolesDropped).toContain(profileRoleName(plane.dbKey, before));
    expect(await plane.admin.query('SELECT rolname FROM pg_roles WHERE rolname = $1', [profileRoleName(plane.dbKey, before)])).toEqual([]);
  });

  it.runIf(name === 'pglite')('provisioning on a lease mid-turn keeps the session\'s identity', async () => {
    const s = await plane.as(READWRITE, alice);
    await adoptNewObjects(s, plane.dbKey, all());
    expect(await s.query(`SELECT current_user::text AS u, portcullis.auth('username') AS n`)).toEqual([{ u: profileRoleName(plane.dbKey, READWRITE), n: 'alice' }]);
    await s.close();
  });

  it.runIf(name === 'postgres')('a table portcullis cannot manage is reported, the others are still synced', async () => {
    const server = (plane as Plane & { server: { connection(u?: string, p?: string, d?: string): object } }).server;
    const pg = await import('pg');
    const su = new pg.default.Client(server.connection(undefined, undefined, `pcu_${plane.dbKey}`));
    await su.connect();
    await su.query('CREATE TABLE theirs (id int, owner text)');
    await su.end();
    const THEIRS = policy('theirs', 'guarded', eq(col('owner'), auth('username')));
    const r = await syncDatabase(plane.admin, desired([READWRITE, ADMIN], [...all(), THEIRS]));
    expect(r.invalid).toEqual([{ table: 'theirs', policy: 'guarded', reason: 'table "theirs" is owned by "postgres", not by pcu_t1_d1_owner' }]);
    expect(await rls('orders')).toEqual({ on: 'true', force: 'true', n: '1' });
  });

  it.runIf(name === 'postgres')('two connections creating the same profile role at once both succeed', async () => {
    const other = await plane.secondAdmin!();
    const p = canonicalProfile(['SELECT'], { orders: ['INSERT'] }, false);
    const names = await Promise.all([ensureProfileRole(plane.admin, plane.dbKey, p), ensureProfileRole(other, plane.dbKey, p)]);
    expect(names[0]).toBe(names[1]);
    await other.close();
  });
});
