import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { psql } from '../support/psql.js';
import { attempt, openShop, stateOf, type Shop } from './attack-shop.js';
import { bothPlanes } from './planes-under-test.js';

/**
 * Attacks across tenants. Tenant A (the default tenant) has `shop` with alice's, bob's and
 * carol's orders, and `ledger`. Tenant B (`acme`) has a database called `shop` too, of its own, where its
 * principal mallory has READ and WRITE, and an admin, acme_admin. Everything B's
 * principals name resolves in B; nothing of A's (rows, names) reaches them.
 */
describe.each(bothPlanes())("crossing into another tenant's database, on the $name data plane", (plane) => {
  let shop: Shop;
  let mallory: pg.Client;
  /** A's shop as the data plane names it (its PostgreSQL database). */
  let planeName: string;

  beforeAll(async () => {
    shop = await openShop(plane, {
      setup: [
        'CREATE DATABASE ledger;',
        'CREATE TENANT acme;',
        'SET TENANT acme;',
        'CREATE DATABASE shop;',
        "CREATE USER mallory WITH PASSWORD 'mallory-pw' ROLE readwrite;",
        'GRANT READ, WRITE ON DATABASE shop TO mallory;',
        "CREATE USER acme_admin WITH PASSWORD 'acme-pw' ROLE admin;",
        'GRANT ALL ON DATABASE shop TO acme_admin;',
        'RESET TENANT;',
      ],
    });
    // B's own orders, under the same policy, in B's shop.
    const acme = await shop.connect('acme_admin', 'shop', 'acme-pw');
    await acme.query("CREATE TABLE orders (id int PRIMARY KEY, owner text NOT NULL, amount numeric); INSERT INTO orders VALUES (1, 'mallory', 99)");
    await acme.query('CREATE RLS POLICY own ON shop.orders FOR ALL USING (owner = $auth.username)');
    await acme.end();
    mallory = await shop.connect('mallory', 'shop', 'mallory-pw');
    const alice = await shop.connect('alice');
    planeName = (await alice.query('SELECT current_database()::text AS d FROM orders LIMIT 1')).rows[0].d as string;
    await alice.end();
  }, 180_000);

  afterAll(async () => {
    await shop?.close();
  });

  it("B's principal naming `shop` reaches B's shop: its rows, never A's", async () => {
    expect(await shop.visibleOwners('mallory', mallory)).toEqual(['mallory']);
    expect((await mallory.query('SELECT count(*)::int AS n FROM orders')).rows).toEqual([{ n: 1 }]);
    // A's alice, in A's shop, does not see mallory's.
    expect(await shop.visibleOwners('alice')).toEqual(['alice']);
  });

  it("the startup packet naming A's data-plane database, or the data plane's own: 3D000 before any SQL", async () => {
    for (const db of ['ledger', planeName, 'postgres', 'template1', 'pcu_t1_d1']) {
      const err = await shop.connect('mallory', db, 'mallory-pw').then(
        async (c) => {
          await c.end();
          return 'connected';
        },
        (e: Error & { code?: string }) => e.code,
      );
      expect(err, db).toBe('3D000');
    }
  });

  it("\\c to A's database names: refused before any SQL (psql, running a script, then stops)", async () => {
    for (const db of ['ledger', planeName]) {
      const r = await psql(shop.server.port, ['-X', '-At'], {
        user: 'mallory',
        password: 'mallory-pw',
        db: 'shop',
        input: `\\c ${db}\nSELECT owner FROM orders;\n`,
      });
      expect(r.stderr).toContain(`database "${db}" does not exist`);
      expect(r.stdout).toBe('');
    }
  });

  it("a three-part name of another database is PostgreSQL's cross-database reference error (0A000); the session's own is itself", async () => {
    const names = ['ledger', 'shop', 'pcu_t1_d1', ...(plane.kind === 'upstream' ? [planeName] : [])];
    for (const sql of names.flatMap((db) => [`SELECT * FROM ${db}.public.orders`, `INSERT INTO ${db}.public.orders VALUES (9, 'mallory', 1)`])) {
      const r = await attempt(mallory, sql);
      expect(r, sql).toMatchObject({ ok: false, code: '0A000' });
      expect(r.ok ? '' : r.message).toMatch(/cross-database references are not implemented/);
    }
    // Every PGlite instance calls its database "postgres": there, that name is the session's own (B's).
    const own = (await mallory.query('SELECT current_database()::text AS d FROM orders LIMIT 1')).rows[0].d as string;
    expect(own).toBe(plane.kind === 'embedded' ? 'postgres' : own);
    expect((await mallory.query(`SELECT owner FROM ${own}.public.orders`)).rows).toEqual([{ owner: 'mallory' }]);
  });

  it('dblink does not exist and cannot be installed', async () => {
    expect(await stateOf(mallory, `SELECT dblink_connect('dbname=${planeName}')`)).toBe('42883');
    expect(await stateOf(mallory, `SELECT * FROM dblink('dbname=${planeName}', 'SELECT owner FROM orders') AS t(owner text)`)).toBe('42883');
    expect(await stateOf(mallory, 'CREATE EXTENSION dblink')).toBe('42501');
  });

  it("\\du and \\l as B's principal and B's admin list B's names only", async () => {
    for (const [user, password] of [
      ['mallory', 'mallory-pw'],
      ['acme_admin', 'acme-pw'],
    ]) {
      const du = await psql(shop.server.port, ['-X', '-At', '-v', 'ON_ERROR_STOP=1'], { user, password, db: 'shop', input: '\\du\n' });
      expect(du.stderr).toBe('');
      // What SHOW USERS shows each (a readwrite principal: itself), all of them B's.
      const users = du.stdout.split('\n').filter((x) => x !== '').map((x) => x.split('|')[0]);
      expect(users).toContain(user);
      for (const u of users) expect(['acme_admin', 'mallory']).toContain(u);
      const l = await psql(shop.server.port, ['-X', '-At', '-v', 'ON_ERROR_STOP=1'], { user, password, db: 'shop', input: '\\l\n' });
      expect(l.stderr).toBe('');
      // Name and owner (the tenant): B's own default and shop.
      expect(l.stdout.split('\n').filter((x) => x !== '').map((x) => x.split('|').slice(0, 2).join('|'))).toEqual(['default|acme', 'shop|acme']);
    }
  });

  it("the data plane's own catalogs hold no name of A's principals or databases", async () => {
    const roles = (await mallory.query("SELECT string_agg(rolname, ',') AS r FROM pg_catalog.pg_roles")).rows[0].r as string;
    for (const name of ['alice', 'bob', 'dev']) expect(roles).not.toContain(name);
    const dbs = (await mallory.query("SELECT string_agg(datname, ',') AS d FROM pg_catalog.pg_database")).rows[0].d as string;
    expect(dbs).not.toContain('shop');
  });

  it("B's admin cannot name A's databases in the admin language (42704), nor the data plane's names", async () => {
    const acme = await shop.connect('acme_admin', 'shop', 'acme-pw');
    try {
      for (const db of ['ledger', planeName]) {
        for (const sql of [`GRANT READ ON DATABASE ${db} TO acme_admin`, `CREATE RLS POLICY peek ON ${db}.orders FOR READ USING (true)`, `EXPLAIN RLS ON ${db}.orders`]) {
          expect(await stateOf(acme, sql), sql).toBe('42704');
        }
      }
    } finally {
      await acme.end();
    }
  });
});
