import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseKey } from '../../src/auth/apikey.js';
import type { RunningServer } from '../../src/server.js';
import { client, startTestServer } from '../support/server.js';

/**
 * An API key's role caps its owner's effective permissions everywhere they are read
 * (SPEC §2: a key narrows its owner, never widens it): SHOW PERMISSIONS over pgwire as the
 * key, and the permissions HTTP's /v1/whoami and /v1/authenticate report to data planes.
 * The owner is readwrite and was granted WRITE and ADMIN on ledger directly, and DELETE on
 * audit through a custom role; a ROLE readonly key reads, and nothing more.
 */
let server: RunningServer;
let admin: pg.Client;
const keys: Record<string, string> = {};

beforeAll(async () => {
  server = await startTestServer({ httpPort: 0, scramIterations: 16 });
  admin = await client(server.port);
  await admin.query(`
    CREATE DATABASE ledger; CREATE DATABASE audit;
    CREATE USER wanda PASSWORD 'pw' ROLE readwrite;
    GRANT WRITE, ADMIN ON DATABASE ledger TO wanda;
    CREATE ROLE clerks; GRANT DELETE ON DATABASE audit TO clerks; GRANT clerks TO wanda;
  `);
  for (const [name, role] of [['ro', 'readonly'], ['rw', 'readwrite']] as const) {
    keys[name] = (await admin.query(`CREATE API KEY '${name}' FOR wanda ROLE ${role}`)).rows[0].key as string;
  }
});
afterAll(async () => {
  await admin.end();
  await server.close();
});

type Perm = [database: string, collection: string | null, privilege: string, source: string];

const readOnly = (source: string): Perm[] => ['audit', 'default', 'ledger'].map((d) => [d, null, 'READ', source]);

async function showPermissions(user: string, password: string): Promise<Perm[]> {
  const c = new pg.Client({ host: '127.0.0.1', port: server.port, user, password, database: 'default' });
  await c.connect();
  try {
    return (await c.query('SHOW PERMISSIONS')).rows.map((r) => [r.database, r.collection, r.privilege, r.source]);
  } finally {
    await c.end();
  }
}

const keyUser = (key: string) => `pcu_${parseKey(key)!.keyId}`;

async function http(pathname: string, key: string, body?: unknown): Promise<{ status: number; json: { permissions?: { database: string; collection: string | null; privilege: string; source: string }[] } & Record<string, unknown> }> {
  const r = await fetch(`http://127.0.0.1:${server.httpPort}${pathname}`, {
    method: body === undefined ? 'GET' : 'POST',
    headers: body === undefined ? { authorization: `Bearer ${key}` } : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: r.status, json: (await r.json()) as never };
}

const asRows = (ps: { database: string; collection: string | null; privilege: string; source: string }[] | undefined): Perm[] =>
  (ps ?? []).map((p) => [p.database, p.collection, p.privilege, p.source]);

describe('a key role caps effective permissions', () => {
  it('the owner, by password, holds its role and all its grants', async () => {
    const perms = await showPermissions('wanda', 'pw');
    expect(perms).toContainEqual(['ledger', null, 'WRITE', 'grant']);
    expect(perms).toContainEqual(['ledger', null, 'ADMIN', 'grant']);
    expect(perms).toContainEqual(['audit', null, 'DELETE', 'role clerks']);
  });

  it('SHOW PERMISSIONS over pgwire as a ROLE readonly key: READ on the owner’s databases, nothing granted above it', async () => {
    expect(await showPermissions(keyUser(keys.ro!), keys.ro!)).toEqual(readOnly('role readonly'));
  });

  it('a ROLE readwrite key keeps WRITE and DELETE grants and loses ADMIN', async () => {
    const perms = await showPermissions(keyUser(keys.rw!), keys.rw!);
    expect(perms.filter((p) => p[2] === 'ADMIN' || p[2] === 'SCHEMA')).toEqual([]);
    expect(perms).toContainEqual(['ledger', null, 'WRITE', 'grant']);
    expect(perms).toContainEqual(['audit', null, 'DELETE', 'role clerks']);
  });

  it('a ROLE readonly key of a tenant_admin reads every database of its tenant, as its owner reaches them', async () => {
    await admin.query("CREATE USER tilda PASSWORD 'pw' ROLE tenant_admin");
    const key = (await admin.query("CREATE API KEY 'ro' FOR tilda ROLE readonly")).rows[0].key as string;
    expect(await showPermissions(keyUser(key), key)).toEqual(readOnly('role readonly'));
  });

  it('GET /v1/whoami with the key reports the same capped permissions', async () => {
    const r = await http('/v1/whoami', keys.ro!);
    expect(r.status).toBe(200);
    expect(r.json.principal).toMatchObject({ name: 'wanda', role: 'readonly', method: 'api_key' });
    expect(asRows(r.json.permissions)).toEqual(readOnly('role readonly'));
  });

  it('POST /v1/authenticate with the key reports them too, for all its databases or the one asked about', async () => {
    const all = await http('/v1/authenticate', keys.ro!, { credential: keys.ro });
    expect(all.status).toBe(200);
    expect(all.json.databases).toEqual(['audit', 'default', 'ledger']);
    expect(asRows(all.json.permissions)).toEqual(readOnly('role readonly'));
    const one = await http('/v1/authenticate', keys.ro!, { credential: keys.ro, database: 'ledger' });
    expect(asRows(one.json.permissions)).toEqual([['ledger', null, 'READ', 'role readonly']]);
  });
});
