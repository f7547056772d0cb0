import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningServer, ServerOptions } from '../../src/server.js';
import { JwksServer, mint, signingKey, type SigningKey } from '../support/jwks-server.js';
import { psql } from '../support/psql.js';
import { ADMIN_PASSWORD, startTestServer } from '../support/server.js';
import { bothPlanes } from './planes-under-test.js';

/**
 * The data plane's promise, end to end through psql: the catalog's users, grants, keys,
 * tokens and RLS policies guard real rows, on the embedded plane (PGlite) and on Debian's
 * PostgreSQL reached as a role that is no superuser. Each assertion is what a user sees.
 */

const AUD = 'shop-api';

describe.each(bothPlanes())('the shop scenario on the $name data plane', (plane) => {
  let server: RunningServer;
  let dataDir: string;
  let jwks: JwksServer;
  let key: SigningKey;
  let opts: Partial<ServerOptions>;
  let aliceKey: string;

  const as = (user: string, password: string, sql: string, db = 'shop') => psql(server.port, ['-v', 'ON_ERROR_STOP=1', '-At', '-c', sql], { user, password, db });
  const admin = (sql: string, db = 'shop') => as('admin', ADMIN_PASSWORD, sql, db);
  const lines = (out: string) => out.split('\n').filter((l) => l !== '');

  beforeAll(async () => {
    dataDir = path.join(await mkdtemp(path.join(os.tmpdir(), 'pcu-scenario-')), 'data');
    key = await signingKey('k1', 'ES256');
    jwks = await JwksServer.start([key]);
    opts = { dataDir, ...(await plane.options()) };
    server = await startTestServer(opts);
    const setup = await psql(server.port, ['-v', 'ON_ERROR_STOP=1', '-q'], {
      input: [
        'CREATE DATABASE shop;',
        "CREATE USER alice WITH PASSWORD 'alice-pw' ROLE readwrite;",
        "CREATE USER bob WITH PASSWORD 'bob-pw' ROLE readonly;",
        'GRANT READ, WRITE ON DATABASE shop TO alice;',
        'GRANT READ ON DATABASE shop TO bob;',
        `CREATE OIDC PROVIDER idp WITH (issuer = '${jwks.issuer}', jwks_url = '${jwks.jwksUrl}', audience = '${AUD}', max_role = 'readonly');`,
      ].join('\n'),
    });
    expect(setup.stderr).toBe('');
    const created = await admin("CREATE API KEY 'default-only' FOR alice WITH DATABASES (default)");
    aliceKey = created.stdout.split('|')[2]!.trim();
  }, 120_000);

  afterAll(async () => {
    await server?.close();
    await jwks?.close();
    await plane.stop();
    await rm(path.dirname(dataDir), { recursive: true, force: true });
  });

  it('admin creates a table and loads rows through psql, then a policy', async () => {
    const r = await psql(server.port, ['-v', 'ON_ERROR_STOP=1'], {
      db: 'shop',
      input: [
        'CREATE TABLE orders (id serial PRIMARY KEY, owner text NOT NULL, org text, amount numeric);',
        "INSERT INTO orders (owner, amount) VALUES ('bob', 5), ('carol', 7);",
        'CREATE RLS POLICY own ON shop.orders FOR ALL USING (owner = $auth.username);',
      ].join('\n'),
    });
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('CREATE TABLE\nINSERT 0 2\nCREATE RLS POLICY\n');
  });

  it('EXPLAIN RLS shows the policy PostgreSQL holds', async () => {
    const r = await admin('EXPLAIN RLS ON shop.orders');
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/^1\|owner = 'admin'\|CREATE POLICY "own" ON "public"\."orders" AS PERMISSIVE FOR ALL TO PUBLIC USING/);
    expect(r.stdout).toContain("portcullis.auth('username'");
  });

  it('alice inserts her own rows; a row for bob is refused by the policy', async () => {
    expect((await as('alice', 'alice-pw', "INSERT INTO orders (owner, amount) VALUES ('alice', 10)")).stdout).toBe('INSERT 0 1\n');
    const refused = await as('alice', 'alice-pw', "INSERT INTO orders (owner, amount) VALUES ('bob', 10)");
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain('new row violates row-level security policy');
  });

  it('each principal sees its own rows only', async () => {
    expect(lines((await as('alice', 'alice-pw', 'SELECT owner, amount FROM orders ORDER BY id')).stdout)).toEqual(['alice|10']);
    expect(lines((await as('bob', 'bob-pw', 'SELECT owner, amount FROM orders ORDER BY id')).stdout)).toEqual(['bob|5']);
    // $auth in plain forwarded SQL
    expect(lines((await as('bob', 'bob-pw', 'SELECT count(*) FROM orders WHERE owner = $auth.username')).stdout)).toEqual(['1']);
  });

  it('a setting cannot change who alice is', async () => {
    const r = await psql(server.port, ['-At'], {
      user: 'alice',
      password: 'alice-pw',
      db: 'shop',
      input: "SELECT set_config('auth.username', 'bob', false);\nSET auth.username = 'bob';\nSELECT owner FROM orders ORDER BY id;\n",
    });
    // Both refused (set_config is not PUBLIC's; auth.* is read-only), and the rows stay hers.
    expect(r.stderr.match(/ERROR:/g)?.length).toBe(2);
    expect(lines(r.stdout)).toEqual(['alice']);
  });

  it('bob has no WRITE: 42501', async () => {
    const r = await as('bob', 'bob-pw', "INSERT INTO orders (owner, amount) VALUES ('bob', 1)");
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('permission denied for table orders');
  });

  it("an API key of alice's for the default database cannot open shop", async () => {
    const keyId = aliceKey.split('_')[1]!;
    const r = await as(`pcu_${keyId}`, aliceKey, 'SELECT 1');
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('DATABASE_NOT_AUTHORIZED');
  });

  it('an integer column compares with $auth.id', async () => {
    const setup = await admin(
      "CREATE TABLE accounts (customer_id int, note text); INSERT INTO accounts SELECT id, 'x' FROM (VALUES (1), (2)) v(id)",
    );
    expect(setup.stderr).toBe('');
    // The ids of alice and bob in the catalog, read as alice and bob see them.
    const aliceId = lines((await as('alice', 'alice-pw', 'SELECT $auth.id')).stdout)[0]!;
    expect((await admin(`INSERT INTO accounts VALUES (${aliceId}, 'alice''s')`)).stderr).toBe('');
    expect((await admin('CREATE RLS POLICY mine ON shop.accounts FOR READ USING (customer_id = $auth.id)')).stderr).toBe('');
    expect(lines((await as('alice', 'alice-pw', 'SELECT note FROM accounts')).stdout)).toEqual(["alice's"]);
    expect(lines((await as('bob', 'bob-pw', 'SELECT note FROM accounts')).stdout)).toEqual([]);
  });

  it("a JWT's org claim picks its organisation's rows", async () => {
    const setup = await admin(
      "CREATE TABLE invoices (org text, total int); INSERT INTO invoices VALUES ('o1', 1), ('o2', 2), ('o1', 3)",
      'default',
    );
    expect(setup.stderr).toBe('');
    expect((await admin('CREATE RLS POLICY by_org ON default.invoices FOR READ USING (org = $auth.org_id)', 'default')).stderr).toBe('');
    const token = await mint(key, { sub: 'u-1', org_id: 'o1', role: 'readonly' }, { nowMs: Date.now(), issuer: jwks.issuer, audience: AUD });
    const r = await as('jwt:idp', token, 'SELECT total FROM invoices ORDER BY total', 'default');
    expect(r.stderr).toBe('');
    expect(lines(r.stdout)).toEqual(['1', '3']);
  });

  // A built-in readwrite role writes wherever its holder reaches (readonly reads there): so
  // WRITE granted to and revoked from readonly bob shows the grant at work, and alice loses
  // shop only when nothing of hers reaches it any more.
  it("GRANT and REVOKE WRITE take effect at bob's open session's next statement", async () => {
    const bob = new pg.Client({ host: '127.0.0.1', port: server.port, user: 'bob', password: 'bob-pw', database: 'shop' });
    await bob.connect();
    try {
      const insert = () =>
        bob.query("INSERT INTO orders (owner, amount) VALUES ('bob', 6)").then(
          () => 'ok',
          (e: Error & { code?: string }) => e.code,
        );
      expect(await insert()).toBe('42501');
      expect((await admin('GRANT WRITE ON DATABASE shop TO bob')).stderr).toBe('');
      expect(await insert()).toBe('ok');
      expect((await admin('REVOKE WRITE ON DATABASE shop FROM bob')).stderr).toBe('');
      expect(await insert()).toBe('42501');
      expect((await bob.query('SELECT amount FROM orders ORDER BY id')).rows.map((r: { amount: string }) => r.amount)).toEqual(['5', '6']);
    } finally {
      await bob.end();
    }
  });

  it("REVOKE of all alice holds on shop: her open session's next statement is 42501", async () => {
    const alice = new pg.Client({ host: '127.0.0.1', port: server.port, user: 'alice', password: 'alice-pw', database: 'shop' });
    await alice.connect();
    try {
      await alice.query("INSERT INTO orders (owner, amount) VALUES ('alice', 11)");
      expect((await admin('REVOKE READ, WRITE ON DATABASE shop FROM alice')).stderr).toBe('');
      const err = await alice.query('SELECT amount FROM orders').then(
        () => null,
        (e: Error & { code?: string }) => e,
      );
      expect(err?.code).toBe('42501');
    } finally {
      await alice.end();
    }
    expect((await admin('GRANT READ, WRITE ON DATABASE shop TO alice')).stderr).toBe('');
  });

  it('after a restart the rows, the policy and the privileges are all still there', async () => {
    await server.close();
    server = await startTestServer(opts);
    expect(lines((await as('alice', 'alice-pw', 'SELECT amount FROM orders ORDER BY id')).stdout)).toEqual(['10', '11']);
    expect(lines((await as('bob', 'bob-pw', 'SELECT amount FROM orders ORDER BY id')).stdout)).toEqual(['5', '6']);
    const r = await as('bob', 'bob-pw', "INSERT INTO orders (owner, amount) VALUES ('bob', 13)");
    expect(r.stderr).toContain('permission denied for table orders');
    // and the policy is still installed: alice still may not write bob's rows
    expect((await as('alice', 'alice-pw', "INSERT INTO orders (owner, amount) VALUES ('bob', 1)")).stderr).toContain('row-level security');
  }, 120_000);
});
