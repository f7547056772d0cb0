import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseKey } from '../../src/auth/apikey.js';
import type { RunningServer } from '../../src/server.js';
import { client, startTestServer } from '../support/server.js';
import { psql } from '../support/psql.js';

/**
 * API keys in use (SPEC §2, §9): over pgwire by SCRAM (startup user `pcu_<key id>`, the
 * whole key as the password) and over HTTP (Bearer and X-API-Key); database scoping, role
 * narrowing, expiry, revocation on the next login, rotation grace; $auth from the key.
 */
let now = Date.UTC(2026, 5, 1, 12);
let server: RunningServer;
let admin: pg.Client;
const logs: string[] = [];

beforeAll(async () => {
  server = await startTestServer({ clock: () => now, httpPort: 0, log: (l) => logs.push(l), scramIterations: 4096 });
  admin = await client(server.port);
  await admin.query("CREATE DATABASE prod; CREATE DATABASE dev; CREATE USER ana PASSWORD 'pw' ROLE admin");
  await admin.query("GRANT ALL ON DATABASE prod TO ana; GRANT ALL ON DATABASE dev TO ana; GRANT SCOPE 'read:orders' TO ana");
});
afterAll(async () => {
  await admin.end();
  await server.close();
});

async function newKey(sql: string): Promise<string> {
  const r = await admin.query(sql);
  const key = r.rows[0].key as string;
  expect(parseKey(key)).not.toBeNull();
  return key;
}

const keyUser = (key: string) => `pcu_${parseKey(key)!.keyId}`;

async function keyClient(key: string, database = 'prod'): Promise<pg.Client> {
  const c = new pg.Client({ host: '127.0.0.1', port: server.port, user: keyUser(key), password: key, database });
  c.on('error', () => {});
  await c.connect();
  return c;
}

async function keyLoginError(key: string, database = 'prod'): Promise<{ code?: string; message: string } | null> {
  try {
    await (await keyClient(key, database)).end();
    return null;
  } catch (err) {
    return err as { code?: string; message: string };
  }
}

async function http(pathname: string, headers: Record<string, string>, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const r = await fetch(`http://127.0.0.1:${server.httpPort}${pathname}`, {
    method: body === undefined ? 'GET' : 'POST',
    headers: { ...headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: r.status, json: (await r.json()) as Record<string, unknown> };
}

describe('an API key over pgwire and HTTP', () => {
  let key: string;
  beforeAll(async () => {
    key = await newKey("CREATE API KEY 'reporting' FOR ana ROLE readonly WITH DATABASES (prod) SCOPES ('read:orders')");
  });

  it('logs in by SCRAM as pcu_<key id>, narrowed to the key role, databases and scopes', async () => {
    const c = await keyClient(key);
    const auth = Object.fromEntries((await c.query('SHOW AUTH')).rows.map((r) => [r.variable, r.value]));
    expect(auth).toMatchObject({
      '$auth.username': 'ana',
      '$auth.role': 'readonly',
      '$auth.databases': '{prod}',
      '$auth.scopes': '{read:orders}',
      '$auth.method': 'api_key',
    });
    // The owner is an admin; the key is readonly: granting is refused.
    await expect(c.query('GRANT READ ON DATABASE prod TO ana')).rejects.toMatchObject({ code: '42501' });
    await c.end();
  });

  it('refuses a startup database or a statement outside the key with DATABASE_NOT_AUTHORIZED', async () => {
    const e = await keyLoginError(key, 'dev');
    expect(e).toMatchObject({ code: '42501' });
    expect(e!.message).toContain('DATABASE_NOT_AUTHORIZED');
    const c = await keyClient(key);
    const err = await c.query('SHOW RLS POLICIES ON dev.orders').catch((x: { code: string; message: string }) => x);
    expect(err).toMatchObject({ code: '42501' });
    expect((err as { message: string }).message).toContain('DATABASE_NOT_AUTHORIZED');
    await c.end();
  });

  it('logs in with psql itself, as the README shows', async () => {
    const r = await psql(server.port, ['-At', '-c', 'SELECT $auth.method, current_user, current_database()'], { user: keyUser(key), password: key, db: 'prod' });
    expect(r).toMatchObject({ code: 0, stdout: 'api_key|ana|prod\n' });
  });

  it('answers over HTTP with Bearer and X-API-Key the same $auth, and runs queries as the key', async () => {
    for (const headers of [{ authorization: `Bearer ${key}` }, { 'x-api-key': key }] as Record<string, string>[]) {
      const r = await http('/v1/whoami', headers);
      expect(r.status).toBe(200);
      expect(r.json.principal).toMatchObject({ name: 'ana', role: 'readonly', method: 'api_key' });
      expect(r.json.auth).toMatchObject({ databases: ['prod'], scopes: ['read:orders'] });
    }
    const q = await http('/v1/query', { 'x-api-key': key }, { sql: 'SELECT $auth.role AS role, current_database() AS db', database: 'prod' });
    expect(q).toEqual({ status: 200, json: { results: [{ command: 'SELECT 1', columns: [{ name: 'role', type_oid: 25 }, { name: 'db', type_oid: 25 }], rows: [['readonly', 'prod']] }], notices: [] } });
    const denied = await http('/v1/query', { 'x-api-key': key }, { sql: "CREATE USER x PASSWORD 'never-echoed'" });
    expect(denied.status).toBe(403);
    expect((denied.json.error as { code: string }).code).toBe('42501');
    expect(JSON.stringify(denied.json)).not.toContain('never-echoed');
    const auth = await http('/v1/authenticate', {}, { credential: key, database: 'dev' });
    expect(auth.status).toBe(403);
    expect(JSON.stringify(auth.json)).toContain('DATABASE_NOT_AUTHORIZED');
  });

  it('fails like a wrong password for a wrong, unknown or malformed key', async () => {
    const wrong = `${key.slice(0, 30)}${key[30] === 'A' ? 'B' : 'A'}${key.slice(31)}`;
    const c = new pg.Client({ host: '127.0.0.1', port: server.port, user: keyUser(key), password: wrong, database: 'prod' });
    c.on('error', () => {});
    await expect(c.connect()).rejects.toMatchObject({ code: '28P01' });
    for (const bad of [wrong, 'pcu_aaaaaaaaaaaaaaaa_nope', 'hello']) {
      expect(await http('/v1/whoami', { authorization: `Bearer ${bad}` })).toEqual({ status: 401, json: { error: { code: '28P01', message: 'authentication failed' } } });
    }
    expect(await http('/v1/whoami', {})).toMatchObject({ status: 401 });
    expect(logs.join('\n')).not.toContain(key.slice(21));
  });
});

describe('the life of a key', () => {
  it('stops working at its expiry, warns within 7 days, and on the next login after DROP', async () => {
    const key = await newKey("CREATE API KEY 'short' FOR ana EXPIRES IN '3 days'");
    const notices: string[] = [];
    const c = new pg.Client({ host: '127.0.0.1', port: server.port, user: keyUser(key), password: key, database: 'prod' });
    c.on('notice', (n) => notices.push(n.message ?? ''));
    await c.connect();
    await c.query('SELECT 1');
    expect(notices.join()).toMatch(/your API key expires in 3 day/);
    // Dropped while a session is open: the next login fails, and so does the open session's next statement.
    await admin.query("DROP API KEY 'short' FOR ana");
    expect(await keyLoginError(key)).toMatchObject({ code: '28P01' });
    await expect(c.query('SELECT 1')).rejects.toThrow(/no longer grants access/);
    await c.end().catch(() => undefined);

    const later = await newKey("CREATE API KEY 'later' FOR ana EXPIRES IN '1 hour'");
    expect(await keyLoginError(later)).toBeNull();
    now += 2 * 3600 * 1000;
    expect(await keyLoginError(later)).toMatchObject({ code: '28P01' });
    expect((await http('/v1/whoami', { 'x-api-key': later })).status).toBe(401);
    expect(logs.filter((l) => l.includes('login failed')).at(-1)).toMatch(/expired/);
  });

  it('keeps the old secret working through a rotation grace period, then only the new one', async () => {
    const old = await newKey("CREATE API KEY 'rolling' FOR ana");
    const rotated = (await admin.query("ALTER API KEY 'rolling' FOR ana ROTATE GRACE '1 hour'")).rows[0].key as string;
    expect(parseKey(rotated)!.keyId).toBe(parseKey(old)!.keyId);
    for (const k of [old, rotated]) {
      now += 1000;
      expect(await keyLoginError(k)).toBeNull();
      expect((await http('/v1/whoami', { 'x-api-key': k })).status).toBe(200);
    }
    // SPEC §9: SHOW API KEYS shows the last use of each secret.
    const [row] = (await admin.query("SHOW API KEYS FOR ana")).rows.filter((r) => r.name === 'rolling');
    expect(row.previous_last_used_at).toEqual(new Date(now - 1000));
    expect(row.last_used_at).toEqual(new Date(now));
    now += 2 * 3600 * 1000;
    expect(await keyLoginError(old)).toMatchObject({ code: '28P01' });
    expect((await http('/v1/whoami', { 'x-api-key': old })).status).toBe(401);
    expect(await keyLoginError(rotated)).toBeNull();
  });

  it('stops working when its owner is disabled or dropped, and records its last use without a commit per use', async () => {
    await admin.query("CREATE USER bo PASSWORD 'pw'");
    const key = await newKey("CREATE API KEY 'bo-key' FOR bo");
    expect(await keyLoginError(key, 'default')).toBeNull();
    const shown = await admin.query("SHOW API KEYS FOR bo");
    expect(shown.rows[0].last_used_at).not.toBeNull();
    await admin.query('ALTER USER bo NOLOGIN');
    expect(await keyLoginError(key, 'default')).toMatchObject({ code: '28P01' });
    await admin.query('ALTER USER bo LOGIN');
    expect(await keyLoginError(key, 'default')).toBeNull();
    await admin.query('DROP USER bo CASCADE');
    expect(await keyLoginError(key, 'default')).toMatchObject({ code: '28P01' });
  });
});

describe('a service account key', () => {
  it('acts as the service account, on its databases only', async () => {
    await admin.query("CREATE SERVICE ACCOUNT 'etl' FOR DATABASES (prod, dev) ROLE readwrite");
    const key = await newKey("CREATE API KEY 'etl-key' FOR etl WITH DATABASES (dev)");
    const c = await keyClient(key, 'dev');
    const auth = Object.fromEntries((await c.query('SHOW AUTH')).rows.map((r) => [r.variable, r.value]));
    expect(auth).toMatchObject({ '$auth.username': 'etl', '$auth.role': 'readwrite', '$auth.databases': '{dev}', '$auth.method': 'api_key' });
    await c.end();
    expect(await keyLoginError(key, 'prod')).toMatchObject({ code: '42501' });
    // A service account cannot log in with a password.
    const pw = new pg.Client({ host: '127.0.0.1', port: server.port, user: 'etl', password: 'x', database: 'dev' });
    pw.on('error', () => {});
    await expect(pw.connect()).rejects.toMatchObject({ code: '28P01' });
  });
});

describe('last use', () => {
  it('is written without a commit per use, and survives a restart', async () => {
    const { mkdtemp, rm } = await import('node:fs/promises');
    const os = await import('node:os');
    const path = await import('node:path');
    const dir = await mkdtemp(path.join(os.tmpdir(), 'pcu-lastuse-'));
    let s = await startTestServer({ dataDir: path.join(dir, 'data'), clock: () => now, scramIterations: 4096 });
    try {
      const a = await client(s.port);
      const key = (await a.query("CREATE API KEY 'k'")).rows[0].key as string;
      await a.end();
      const before = s.engine.storeStats!.commits;
      for (let i = 0; i < 5; i++) {
        const c = new pg.Client({ host: '127.0.0.1', port: s.port, user: keyUser(key), password: key, database: 'default' });
        await c.connect();
        await c.end();
      }
      const after = s.engine.storeStats!.commits;
      expect(after).toBe(before); // five logins, no commit
      await s.close(); // writes the last use
      s = await startTestServer({ dataDir: path.join(dir, 'data'), clock: () => now, scramIterations: 4096 });
      const b = await client(s.port);
      const shown = await b.query('SHOW API KEYS');
      expect(shown.rows.find((r) => r.name === 'k').last_used_at).not.toBeNull();
      await b.end();
    } finally {
      await s.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
