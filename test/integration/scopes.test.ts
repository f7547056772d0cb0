import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseKey } from '../../src/auth/apikey.js';
import type { RunningServer } from '../../src/server.js';
import { client, startTestServer } from '../support/server.js';

/**
 * Scopes are granted (SPEC §2, §3: GRANT SCOPE 'billing:read' TO alice): an API key carries
 * only scopes its owner holds — at creation and again at every use — a password login's
 * $auth.scopes are the principal's granted scopes, a token's stay the token's. Nobody
 * grants a scope they do not hold (SPEC §4).
 */
let now = Date.UTC(2026, 5, 1, 12);
let server: RunningServer;
let admin: pg.Client;
const HOUR = 3600_000;

beforeAll(async () => {
  server = await startTestServer({ clock: () => now, httpPort: 0, scramIterations: 16 });
  admin = await client(server.port);
  await admin.query(`
    CREATE DATABASE billing; CREATE TENANT other;
    CREATE USER rita PASSWORD 'pw' ROLE readwrite;
    CREATE USER vera PASSWORD 'pw' ROLE readonly;
    CREATE USER adam PASSWORD 'pw' ROLE admin;
    CREATE USER tess PASSWORD 'pw' ROLE tenant_admin;
    CREATE USER olaf PASSWORD 'pw' ROLE readonly TENANT other;
    GRANT READ ON DATABASE billing TO rita;
    CREATE RLS POLICY billing_scope ON billing.invoices FOR READ USING ($auth.scopes CONTAINS 'billing:read');
    CREATE OIDC PROVIDER idp WITH (issuer = 'https://idp.example/', jwks_url = 'https://idp.example/jwks', audience = 'api');
  `);
});
afterAll(async () => {
  await admin.end();
  await server.close();
});

async function login(user: string, password: string, database = 'default'): Promise<pg.Client> {
  const c = new pg.Client({ host: '127.0.0.1', port: server.port, user, password, database });
  c.on('error', () => {});
  await c.connect();
  return c;
}

const keyLogin = (key: string, database = 'default') => login(`pcu_${parseKey(key)!.keyId}`, key, database);

async function as<T>(user: string, f: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = await login(user, 'pw');
  try {
    return await f(c);
  } finally {
    await c.end();
  }
}

const scopesOf = async (c: pg.Client): Promise<string[]> => (await c.query('SELECT $auth.scopes AS s')).rows[0].s as string[];

async function failure(p: Promise<unknown>): Promise<{ code?: string; message: string; detail?: string }> {
  try {
    await p;
  } catch (err) {
    return err as { code?: string; message: string };
  }
  throw new Error('expected an error');
}

async function whoamiScopes(key: string): Promise<unknown> {
  const r = await fetch(`http://127.0.0.1:${server.httpPort}/v1/whoami`, { headers: { authorization: `Bearer ${key}` } });
  return ((await r.json()) as { auth: { scopes: unknown } }).auth.scopes;
}

describe('GRANT SCOPE and API keys', () => {
  it('a user cannot give their own key a scope they were not granted (42501 naming it), nor can anyone else', async () => {
    await as('rita', async (c) => {
      const e = await failure(c.query("CREATE API KEY 'billing' SCOPES ('billing:read')"));
      expect(e).toMatchObject({ code: '42501', message: 'API key scope "billing:read" is not held by its owner' });
    });
    // Not even a superuser mints a scope for someone who was not given it.
    await expect(admin.query("CREATE API KEY 'billing' FOR rita SCOPES ('billing:read')")).rejects.toMatchObject({ code: '42501' });
  });

  it('once granted, the key carries the scope, and the RLS policy sees it', async () => {
    await admin.query("GRANT SCOPE 'billing:read' TO rita");
    const key = await as('rita', async (c) => (await c.query("CREATE API KEY 'billing' SCOPES ('billing:read')")).rows[0].key as string);
    const k = await keyLogin(key, 'billing');
    try {
      expect(await scopesOf(k)).toEqual(['billing:read']);
      const explain = (await k.query('EXPLAIN RLS ON billing.invoices')).rows[0];
      expect(explain.predicate).toContain("'billing:read'");
    } finally {
      await k.end();
      await admin.query("DROP API KEY 'billing' FOR rita");
    }
  });

  it("a password login's $auth.scopes are the principal's granted scopes, directly and through custom roles", async () => {
    await admin.query("CREATE ROLE finance; GRANT SCOPE 'reports:read' TO finance; GRANT finance TO rita");
    await as('rita', async (c) => expect(await scopesOf(c)).toEqual(['billing:read', 'reports:read']));
    // A member's key may carry its role's scopes.
    await as('rita', (c) => c.query("CREATE API KEY 'reports' SCOPES ('reports:read'); DROP API KEY 'reports'"));
    await as('vera', async (c) => expect(await scopesOf(c)).toEqual([]));
  });

  it("a token's scopes stay the token's", async () => {
    await admin.query(`SET SESSION AUTHORIZATION JWT PROVIDER idp CLAIMS '{"sub": "rita", "preferred_username": "rita", "scope": "from:token"}'`);
    try {
      expect(await scopesOf(admin)).toEqual(['from:token']);
    } finally {
      await admin.query('RESET SESSION AUTHORIZATION');
    }
  });

  it('a key loses a scope revoked from its owner at its next use: next statement, next login, next HTTP request', async () => {
    await admin.query("GRANT SCOPE 'ledger:write' TO rita");
    const key = (await admin.query("CREATE API KEY 'ledger' FOR rita SCOPES ('ledger:write', 'billing:read')")).rows[0].key as string;
    const open = await keyLogin(key);
    try {
      expect(await scopesOf(open)).toEqual(['ledger:write', 'billing:read']);
      expect(await whoamiScopes(key)).toEqual(['ledger:write', 'billing:read']);
      await admin.query("REVOKE SCOPE 'ledger:write' FROM rita");
      expect(await scopesOf(open)).toEqual(['billing:read']);
      const again = await keyLogin(key);
      expect(await scopesOf(again)).toEqual(['billing:read']);
      await again.end();
      expect(await whoamiScopes(key)).toEqual(['billing:read']);
      // The key keeps what it was created with (SHOW API KEYS); a new grant brings it back.
      const shown = (await admin.query('SHOW API KEYS FOR rita')).rows.find((r) => r.name === 'ledger');
      expect(shown.scopes).toEqual(['ledger:write', 'billing:read']);
      await admin.query("GRANT SCOPE 'ledger:write' TO rita");
      expect(await scopesOf(open)).toEqual(['ledger:write', 'billing:read']);
    } finally {
      await open.end();
      await admin.query("DROP API KEY 'ledger' FOR rita; REVOKE SCOPE 'ledger:write' FROM rita");
    }
  });

  it('an expired scope grant no longer counts: not for new keys, not for keys at use, not in SHOW GRANTS', async () => {
    await admin.query("GRANT SCOPE 'temp:x' TO rita FOR INTERVAL '1 hour'");
    const key = (await admin.query("CREATE API KEY 'temp' FOR rita SCOPES ('temp:x')")).rows[0].key as string;
    expect(await whoamiScopes(key)).toEqual(['temp:x']);
    now += 2 * HOUR;
    expect(await whoamiScopes(key)).toEqual([]);
    await as('rita', async (c) => {
      expect(await scopesOf(c)).toEqual(['billing:read', 'reports:read']);
      await expect(c.query("CREATE API KEY 'temp2' SCOPES ('temp:x')")).rejects.toMatchObject({ code: '42501' });
    });
    const grants = (await admin.query('SHOW GRANTS FOR rita')).rows.map((r) => r.scope).filter(Boolean);
    expect(grants).toEqual(['billing:read']);
    await admin.query("DROP API KEY 'temp' FOR rita");
  });

  it('service accounts are grantees too, and their grants go with them', async () => {
    await admin.query('CREATE SERVICE ACCOUNT etl FOR DATABASE billing');
    await expect(admin.query("CREATE API KEY 'run' FOR etl SCOPES ('etl:run')")).rejects.toMatchObject({ code: '42501', message: 'API key scope "etl:run" is not held by its owner' });
    await admin.query("GRANT SCOPE 'etl:run' TO etl");
    const key = (await admin.query("CREATE API KEY 'run' FOR etl SCOPES ('etl:run')")).rows[0].key as string;
    const k = await keyLogin(key, 'billing');
    expect(await scopesOf(k)).toEqual(['etl:run']);
    await k.end();
    expect((await admin.query('SHOW GRANTS FOR etl')).rows).toMatchObject([{ grantee: 'etl', grantee_kind: 'service account', scope: 'etl:run', privilege: null, role: null }]);
    await admin.query('DROP SERVICE ACCOUNT etl CASCADE');
    expect((await admin.query('SHOW GRANTS')).rows.filter((r) => r.scope === 'etl:run')).toEqual([]);
  });

  it('nobody grants a scope they do not hold: a superuser any, admin and tenant_admin only their own', async () => {
    const denied = (user: string, sql: string) => as(user, (c) => failure(c.query(sql)));
    expect(await denied('rita', "GRANT SCOPE 'billing:read' TO vera")).toMatchObject({ code: '42501', message: 'permission denied for GRANT' });
    expect(await denied('adam', "GRANT SCOPE 'billing:read' TO vera")).toMatchObject({
      code: '42501',
      message: 'permission denied to grant scope "billing:read"',
      detail: 'adam does not hold scope "billing:read"; nobody grants a scope they do not hold.',
    });
    expect(await denied('tess', "GRANT SCOPE 'billing:read' TO vera")).toMatchObject({ code: '42501', message: 'permission denied to grant scope "billing:read"' });
    await admin.query("GRANT SCOPE 'billing:read' TO adam, tess");
    await as('adam', (c) => c.query("GRANT SCOPE 'billing:read' TO vera"));
    await as('vera', async (c) => expect(await scopesOf(c)).toEqual(['billing:read']));
    expect(await denied('adam', "GRANT SCOPE 'billing:read' TO adam")).toMatchObject({ code: '42501', message: 'permission denied to grant scope to yourself' });
    expect(await denied('adam', "GRANT SCOPE 'other:thing' TO vera")).toMatchObject({ code: '42501' });
    await as('tess', (c) => c.query("REVOKE SCOPE 'billing:read' FROM vera"));
    await as('vera', async (c) => expect(await scopesOf(c)).toEqual([]));
    // Another tenant's user cannot be seen, so cannot be a grantee.
    expect(await denied('tess', "GRANT SCOPE 'billing:read' TO olaf")).toMatchObject({ code: '42704' });
  });

  it('GRANT SCOPE to a name that does not exist is 42704; REVOKE of a scope not granted is a WARNING', async () => {
    await expect(admin.query("GRANT SCOPE 'x' TO nobody")).rejects.toMatchObject({ code: '42704', message: 'user, service account or role "nobody" does not exist' });
    const notices: { severity?: string; code?: string; message?: string }[] = [];
    const onNotice = (n: { severity?: string; code?: string; message?: string }) => notices.push(n);
    admin.on('notice', onNotice);
    try {
      const r = await admin.query("REVOKE SCOPE 'never:granted' FROM vera");
      expect(r.command).toBe('REVOKE');
    } finally {
      admin.off('notice', onNotice);
    }
    expect(notices).toMatchObject([{ severity: 'WARNING', code: '01006', message: 'no privileges could be revoked: vera was not granted scope "never:granted"' }]);
  });
});
