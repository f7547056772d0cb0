import pg from 'pg';
import { serialize } from 'pg-protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningServer } from '../../src/server.js';
import { RawClient } from '../support/raw-client.js';
import { client, startTestServer } from '../support/server.js';

/**
 * The built-in issuer's access tokens on the embedded data plane: a token obtained over
 * HTTP logs in over pgwire (as the password of jwt:portcullis, and by SASL OAUTHBEARER)
 * and sees, under a policy on $auth.username, the rows its principal sees with its
 * password; HTTP Bearer carries the same $auth.*. A token minted for a service account
 * reaches the databases of its set only.
 */
let server: RunningServer;

type Rows = Record<string, unknown>[];

beforeAll(async () => {
  server = await startTestServer({ dataPlane: 'embedded', httpPort: 0 });
  const admin = await client(server.port);
  for (const sql of [
    'CREATE DATABASE shop',
    'CREATE DATABASE other',
    "CREATE USER alice WITH PASSWORD 'alice-pw-1' ROLE readwrite",
    'GRANT READ, WRITE ON DATABASE shop TO alice',
    "GRANT SCOPE 'orders:read' TO alice",
    "CREATE SERVICE ACCOUNT 'node1' FOR DATABASES (shop) ROLE readonly",
  ]) {
    await admin.query(sql);
  }
  await admin.end();
  const shop = await connect('admin', undefined, 'shop');
  await shop.query('CREATE TABLE orders (id serial PRIMARY KEY, owner text NOT NULL, amount int)');
  await shop.query("INSERT INTO orders (owner, amount) VALUES ('alice', 1), ('bob', 2), ('node1', 3), ('alice', 4)");
  await shop.query('CREATE RLS POLICY own ON shop.orders FOR ALL USING (owner = $auth.username)');
  await shop.end();
}, 120_000);

afterAll(async () => {
  await server?.close();
});

async function connect(user: string, password: string | undefined, database: string): Promise<pg.Client> {
  const c = new pg.Client({ host: '127.0.0.1', port: server.port, user, password: password ?? 'bootstrap-secret', database });
  c.on('error', () => {});
  await c.connect();
  return c;
}

async function connectError(user: string, password: string, database: string): Promise<{ code?: string; message: string } | null> {
  try {
    await (await connect(user, password, database)).end();
    return null;
  } catch (err) {
    return err as { code?: string; message: string };
  }
}

const http = () => `http://127.0.0.1:${server.httpPort}`;

async function accessToken(params: Record<string, string>): Promise<string> {
  const r = await fetch(`${http()}/v1/token`, { method: 'POST', body: new URLSearchParams(params) });
  const body = (await r.json()) as { access_token: string };
  expect(r.status).toBe(200);
  return body.access_token;
}

/** $auth.* as SHOW AUTH lists them, without what tells the login methods apart. */
async function authOf(c: pg.Client): Promise<Record<string, string>> {
  const rows = (await c.query('SHOW AUTH')).rows as { variable: string; value: string }[];
  return Object.fromEntries(rows.filter((r) => r.variable !== '$auth.method' && !r.variable.startsWith('$auth.claims')).map((r) => [r.variable, r.value]));
}

const ordersSql = 'SELECT owner, amount FROM orders ORDER BY id';

/** The rows of `ordersSql`, over OAUTHBEARER (RFC 7628) with the token as the bearer. */
async function ordersByOauthbearer(token: string, database: string): Promise<string[][]> {
  const c = await RawClient.connect(server.port);
  try {
    c.send(serialize.startup({ user: 'anyone', database }));
    await c.until('authenticationSASL');
    c.send(serialize.sendSASLInitialResponseMessage('OAUTHBEARER', `n,,\x01auth=Bearer ${token}\x01\x01`));
    const refused = await Promise.race([c.until('readyForQuery').then(() => null), c.until('error')]);
    if (refused) throw refused;
    const ms = await c.roundTrip(serialize.query(ordersSql));
    const error = ms.find((m) => m.name === 'error');
    if (error) throw error;
    return ms.filter((m) => m.name === 'dataRow').map((m) => (m as unknown as { fields: string[] }).fields);
  } finally {
    c.end();
  }
}

describe('an access token of the built-in issuer on the data plane', () => {
  it('sees the rows its principal sees, over jwt:portcullis and OAUTHBEARER, with the same $auth.*', async () => {
    const byPassword = await connect('alice', 'alice-pw-1', 'shop');
    const expected = (await byPassword.query(ordersSql)).rows as Rows;
    expect(expected).toEqual([
      { owner: 'alice', amount: 1 },
      { owner: 'alice', amount: 4 },
    ]);
    const auth = await authOf(byPassword);
    await byPassword.end();

    const token = await accessToken({ grant_type: 'password', username: 'alice', password: 'alice-pw-1' });
    const byToken = await connect('jwt:portcullis', token, 'shop');
    expect((await byToken.query(ordersSql)).rows).toEqual(expected);
    expect(await authOf(byToken)).toEqual(auth);
    expect((await byToken.query('SELECT $auth.method AS m')).rows).toEqual([{ m: 'jwt' }]);
    // The policy holds for writes as well: a row for someone else is refused.
    await expect(byToken.query("INSERT INTO orders (owner, amount) VALUES ('bob', 9)")).rejects.toThrow(/row-level security/);
    await byToken.end();

    expect(await ordersByOauthbearer(token, 'shop')).toEqual(expected.map((r) => [r.owner, String(r.amount)]));

    // HTTP Bearer: the same principal and $auth.* (HTTP runs the admin language only).
    const w = (await (await fetch(`${http()}/v1/whoami`, { headers: { authorization: `Bearer ${token}` } })).json()) as { principal: { name: string }; auth: Record<string, unknown> };
    expect(w.principal.name).toBe('alice');
    expect(w.auth).toMatchObject({ username: auth['$auth.username'], id: auth['$auth.id'], role: auth['$auth.role'], scopes: ['orders:read'] });
  });

  it('narrowed to one database at the token endpoint, it opens no other', async () => {
    const token = await accessToken({ grant_type: 'password', username: 'alice', password: 'alice-pw-1', database: 'default' });
    expect(await connectError('jwt:portcullis', token, 'shop')).toMatchObject({ code: '42501', message: expect.stringContaining('DATABASE_NOT_AUTHORIZED') });
    await expect(ordersByOauthbearer(token, 'shop')).rejects.toMatchObject({ code: '42501' });
    expect(await connectError('jwt:portcullis', token, 'default')).toBeNull();
  });
});

describe("a token minted for a service account (a cluster node's)", () => {
  it('sees its own rows in a database of its set, read-only, and opens no database outside it', async () => {
    const admin = await client(server.port);
    const { token } = (await admin.query(`CREATE TOKEN FOR node1 EXPIRES IN '30 days'`)).rows[0] as { token: string };
    await admin.end();

    const node = await connect('jwt:portcullis', token, 'shop');
    expect((await node.query(ordersSql)).rows).toEqual([{ owner: 'node1', amount: 3 }]);
    expect((await node.query('SELECT $auth.username AS u, $auth.role AS r')).rows).toEqual([{ u: 'node1', r: 'readonly' }]);
    await expect(node.query("INSERT INTO orders (owner, amount) VALUES ('node1', 5)")).rejects.toMatchObject({ code: '42501' });
    await node.end();
    expect(await ordersByOauthbearer(token, 'shop')).toEqual([['node1', '3']]);

    for (const db of ['other', 'default']) {
      expect(await connectError('jwt:portcullis', token, db)).toMatchObject({ code: '42501', message: expect.stringContaining('DATABASE_NOT_AUTHORIZED') });
      await expect(ordersByOauthbearer(token, db)).rejects.toMatchObject({ code: '42501' });
    }
  });
});
