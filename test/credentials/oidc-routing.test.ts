import pg from 'pg';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { RunningServer } from '../../src/server.js';
import { JwksServer, mint, signingKey, type SigningKey } from '../support/jwks-server.js';
import { client, startTestServer } from '../support/server.js';

/**
 * A token is routed to the provider whose issuer and audience both match (SPEC §2): two
 * providers a token could both match are refused at CREATE and ALTER with 42710 naming the
 * other one — the same issuer with the same audience (in any tenants), or with audience
 * '*' on either side — and a token that still matches two (several audiences) is refused
 * unless the client names its provider.
 */
let now = Date.UTC(2026, 5, 1, 12);
let server: RunningServer;
let admin: pg.Client;
let jwks: JwksServer;
let key: SigningKey;
const logs: string[] = [];

const I = 'https://idp.example.com/';
const J = 'https://other-idp.example.com/';

beforeAll(async () => {
  key = await signingKey('k1', 'ES256');
  jwks = await JwksServer.start([key]);
  server = await startTestServer({ clock: () => now, httpPort: 0, log: (l) => logs.push(l) });
  admin = await client(server.port);
  await admin.query('CREATE TENANT second');
});

afterAll(async () => {
  await admin.end();
  await server.close();
  await jwks.close();
});

beforeEach(async () => {
  logs.length = 0;
  for (const { name } of (await admin.query('SHOW OIDC PROVIDERS')).rows as { name: string }[]) await admin.query(`DROP OIDC PROVIDER ${name}`);
});

const create = (name: string, issuer: string, audience: string, extra = '') =>
  `CREATE OIDC PROVIDER ${name} WITH (issuer = '${issuer}', jwks_url = '${issuer}jwks', audience = '${audience}'${extra})`;

/** The error a statement ends with, as a client sees its fields. */
async function failure(sql: string): Promise<Record<string, unknown>> {
  try {
    await admin.query(sql);
  } catch (err) {
    const e = err as { code: string; message: string; detail?: string; hint?: string; position?: string };
    return { code: e.code, message: e.message, detail: e.detail, hint: e.hint, position: e.position === undefined ? undefined : Number(e.position) };
  }
  throw new Error(`no error from: ${sql}`);
}

const providers = async () => ((await admin.query('SHOW OIDC PROVIDERS')).rows as { name: string; tenant: string; audience: string }[]).map((r) => `${r.name}:${r.tenant}:${r.audience}`);

const HINT = "Providers with the same issuer need distinct audiences, and neither of them '*'.";

describe('CREATE OIDC PROVIDER', () => {
  it('refuses the issuer and audience of a provider in another tenant, naming it (42710)', async () => {
    await admin.query(create('first', I, 'api'));
    const sql = create('twin', I, 'api', ", tenant = 'second'");
    expect(await failure(sql)).toEqual({
      code: '42710',
      message: `OIDC provider "first" already has issuer "${I}" and audience "api"`,
      detail: 'A token of that issuer for audience "api" would match both "first" and "twin".',
      hint: HINT,
      position: sql.indexOf("'api'") + 1,
    });
    expect(await failure(create('twin', I, 'api'))).toMatchObject({ code: '42710', message: expect.stringContaining('"first"') });
    expect(await providers()).toEqual(['first:default:api']);
  });

  it("refuses audience '*' beside any audience of the same issuer, and any audience beside '*'", async () => {
    await admin.query(create('first', I, 'api'));
    expect(await failure(create('wild', I, '*', ", tenant = 'second'"))).toMatchObject({
      code: '42710',
      message: `OIDC provider "first" already has issuer "${I}" and audience "api"`,
      detail: `A token of that issuer for audience "api" would match both "first" and "wild" (audience '*' matches every audience).`,
    });
    await admin.query(create('star', J, '*'));
    expect(await failure(create('narrow', J, 'reports'))).toMatchObject({
      code: '42710',
      message: `OIDC provider "star" already has issuer "${J}" and audience '*'`,
      detail: `A token of that issuer for audience "reports" would match both "star" and "narrow" (audience '*' matches every audience).`,
    });
    expect(await failure(create('star2', J, '*'))).toMatchObject({
      code: '42710',
      detail: `A token of that issuer for any audience would match both "star" and "star2" (audience '*' matches every audience).`,
    });
  });

  it('counts a disabled provider, and IF NOT EXISTS does not skip a clash under another name', async () => {
    await admin.query(create('off', I, 'api', ", enabled = 'false'"));
    expect(await failure(create('lit', I, 'api'))).toMatchObject({ code: '42710', message: expect.stringContaining('"off"') });
    expect(await failure(create('lit', I, 'api').replace('PROVIDER', 'PROVIDER IF NOT EXISTS'))).toMatchObject({ code: '42710' });
  });

  it('accepts the same issuer with distinct audiences, and the same audience with distinct issuers', async () => {
    await admin.query(create('a', I, 'api'));
    await admin.query(create('b', I, 'reports', ", tenant = 'second'"));
    await admin.query(create('c', J, 'api'));
    // Issuers are compared exactly, as a token's iss is.
    await admin.query(create('d', 'https://idp.example.com/v2/', 'api'));
    expect(await providers()).toEqual(['a:default:api', 'b:second:reports', 'c:default:api', 'd:default:api']);
  });

  it('accepts the clash once the other provider is dropped', async () => {
    await admin.query(create('first', I, 'api'));
    await admin.query('DROP OIDC PROVIDER first');
    await admin.query(create('twin', I, 'api', ", tenant = 'second'"));
    expect(await providers()).toEqual(['twin:second:api']);
  });
});

describe('ALTER OIDC PROVIDER', () => {
  beforeEach(async () => {
    await admin.query(create('first', I, 'api'));
    await admin.query(create('b', I, 'reports', ", tenant = 'second'"));
    await admin.query(create('c', J, 'api'));
  });

  it('refuses SET (audience) or SET (issuer) that makes a clash, naming the other provider', async () => {
    const toApi = "ALTER OIDC PROVIDER b SET (audience = 'api')";
    expect(await failure(toApi)).toMatchObject({ code: '42710', message: `OIDC provider "first" already has issuer "${I}" and audience "api"`, position: toApi.indexOf("'api'") + 1, hint: HINT });
    const toI = `ALTER OIDC PROVIDER c SET (issuer = '${I}')`;
    expect(await failure(toI)).toMatchObject({ code: '42710', message: expect.stringContaining('"first"'), position: toI.indexOf(`'${I}'`) + 1 });
    expect(await failure("ALTER OIDC PROVIDER b SET (audience = '*')")).toMatchObject({ code: '42710', message: expect.stringContaining('"first"') });
    expect(await providers()).toEqual(['b:second:reports', 'c:default:api', 'first:default:api']);
  });

  it('accepts an ALTER that changes neither, or keeps them apart', async () => {
    await admin.query("ALTER OIDC PROVIDER first SET (audience = 'api', max_role = 'admin')");
    await admin.query("ALTER OIDC PROVIDER b SET (audience = 'billing')");
    await admin.query(`ALTER OIDC PROVIDER c SET (issuer = 'https://third.example.com/')`);
    await admin.query("ALTER OIDC PROVIDER first SET (enabled = 'false')");
    expect(await providers()).toEqual(['b:second:billing', 'c:default:api', 'first:default:api']);
  });
});

describe('a token whose audiences match two providers', () => {
  it('is refused when the client names no provider, and routed where it names one', async () => {
    const at = (name: string, audience: string, tenant = 'default') =>
      admin.query(`CREATE OIDC PROVIDER ${name} WITH (issuer = '${jwks.issuer}', jwks_url = '${jwks.jwksUrl}', audience = '${audience}', tenant = '${tenant}')`);
    await at('svc_one', 'svc-1');
    await at('svc_two', 'svc-2', 'second');
    // Each presentation its own token: this is routing, not the verified-token cache.
    const t = () => mint(key, { sub: 'u-1' }, { nowMs: now, issuer: jwks.issuer, audience: ['svc-1', 'svc-2'] as unknown as string });
    const r = await fetch(`http://127.0.0.1:${server.httpPort}/v1/whoami`, { headers: { authorization: `Bearer ${await t()}` } });
    expect(r.status).toBe(401);
    expect(logs.filter((l) => l.startsWith('login failed')).at(-1)).toContain('ambiguous audience: the token matches OIDC providers \\"svc_one\\", \\"svc_two\\"');
    const second = String((await admin.query('SHOW TENANTS')).rows.find((x: { name: string }) => x.name === 'second').id);
    for (const [name, tenant] of [['svc_one', '1'], ['svc_two', second]]) {
      const c = new pg.Client({ host: '127.0.0.1', port: server.port, user: `jwt:${name}`, password: await t(), database: 'default' });
      await c.connect();
      expect((await c.query('SELECT $auth.tenant_id AS tenant')).rows).toEqual([{ tenant }]);
      await c.end();
    }
  });
});
