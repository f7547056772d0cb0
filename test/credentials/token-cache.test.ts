import pg from 'pg';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { RunningServer } from '../../src/server.js';
import { JwksServer, mint, signingKey, type SigningKey } from '../support/jwks-server.js';
import { client, startTestServer } from '../support/server.js';

/**
 * The verified-token cache (src/auth/jwt.ts): a token is verified once and remembered by
 * its text, so every test here presents the very same token text again after something
 * changed — a key rotated out and the JWKS re-fetched, the provider disabled, altered,
 * dropped or re-created, another provider named, another provider making it ambiguous —
 * and asserts what the client sees on a real login: over pgwire (the token as the
 * password of `jwt:<provider>`, from loopback) and over HTTP (Bearer).
 */
let now = Date.UTC(2026, 5, 1, 12);
let jwks: JwksServer;
let k1: SigningKey;
let k2: SigningKey;
let server: RunningServer;
let admin: pg.Client;
/** The id of tenant `second`, as $auth.tenant_id shows it. */
let second: string;
const logs: string[] = [];

/** Long-lived tokens: the tests move the clock past JWKS throttles and TTLs. */
const LIFETIME_S = 6 * 3600;

beforeAll(async () => {
  [k1, k2] = await Promise.all([signingKey('k1', 'ES256'), signingKey('k2', 'ES256')]);
  jwks = await JwksServer.start([k1]);
  // Many refused logins from one address: lockouts are tested elsewhere.
  server = await startTestServer({ clock: () => now, httpPort: 0, log: (l) => logs.push(l), lockoutPolicy: { ipFailures: 10_000, userFailures: 10_000 } });
  admin = await client(server.port);
  await admin.query('CREATE TENANT second');
  second = String((await admin.query('SHOW TENANTS')).rows.find((r: { name: string }) => r.name === 'second').id);
});

afterAll(async () => {
  await admin.end();
  await server.close();
  await jwks.close();
});

beforeEach(() => {
  logs.length = 0;
  jwks.keys = [k1];
});

/** A provider on the test's JWKS server; each test uses its own audience. */
async function provider(name: string, audience: string, opts: { tenant?: string; maxRole?: string } = {}): Promise<void> {
  const tenant = opts.tenant ? `, tenant = '${opts.tenant}'` : '';
  await admin.query(`CREATE OIDC PROVIDER ${name} WITH (issuer = '${jwks.issuer}', jwks_url = '${jwks.jwksUrl}', audience = '${audience}', max_role = '${opts.maxRole ?? 'admin'}'${tenant})`);
}

const token = (audience: string | string[], key = k1, claims: Record<string, unknown> = {}) =>
  mint(key, { sub: 'u-1', email: 'ada@example.com', role: 'admin', ...claims }, { nowMs: now, issuer: jwks.issuer, audience: audience as string, expiresInS: LIFETIME_S });

interface Seen {
  /** SQLSTATE of a refused pgwire login, HTTP status over HTTP (200 when accepted). */
  outcome: string | number;
  id?: string;
  role?: string;
  tenant?: string;
}

/** Logs in over pgwire as `jwt:<provider>` with the token as the password. */
async function overPg(t: string, providerName: string): Promise<Seen> {
  const c = new pg.Client({ host: '127.0.0.1', port: server.port, user: `jwt:${providerName}`, password: t, database: 'default' });
  c.on('error', () => {});
  try {
    await c.connect();
  } catch (err) {
    return { outcome: (err as { code: string }).code };
  }
  const { rows } = await c.query('SELECT $auth.id AS id, $auth.role AS role, $auth.tenant_id AS tenant');
  await c.end();
  return { outcome: 'ok', ...rows[0] };
}

/** GET /v1/whoami with the token as the bearer. */
async function overHttp(t: string): Promise<Seen> {
  const r = await fetch(`http://127.0.0.1:${server.httpPort}/v1/whoami`, { headers: { authorization: `Bearer ${t}` } });
  const body = (await r.json()) as { auth?: { id: string; role: string; tenant_id: string } };
  return body.auth ? { outcome: r.status, id: body.auth.id, role: body.auth.role, tenant: body.auth.tenant_id } : { outcome: r.status };
}

/** The recorded reason of the last failed login (the log line quotes it as a JSON string). */
function lastFailure(): string {
  const line = logs.filter((l) => l.startsWith('login failed')).at(-1) ?? '';
  const quoted = /reason=("(?:[^"\\]|\\.)*")/.exec(line)?.[1];
  return quoted ? (JSON.parse(quoted) as string) : '';
}

describe('the same token text, presented again', () => {
  it('is refused as jwt:<another provider> after it logged in as its own', async () => {
    await provider('named_a', 'aud-named-a');
    await provider('named_b', 'aud-named-b');
    const t = await token('aud-named-a');
    expect(await overPg(t, 'named_a')).toMatchObject({ outcome: 'ok', id: 'u-1' });
    expect(await overPg(t, 'named_a')).toMatchObject({ outcome: 'ok', id: 'u-1' });
    expect(await overHttp(t)).toMatchObject({ outcome: 200, id: 'u-1' });
    expect(await overPg(t, 'named_b')).toEqual({ outcome: '28P01' });
    expect(lastFailure()).toMatch(/wrong audience/);
    expect(await overPg(t, 'named_a')).toMatchObject({ outcome: 'ok' });
  });

  it('is refused once the JWKS has been re-fetched without its key (a token of the new key asked for it)', async () => {
    await provider('rotated', 'aud-rotated');
    const old = await token('aud-rotated');
    expect(await overPg(old, 'rotated')).toMatchObject({ outcome: 'ok' });
    expect(await overHttp(old)).toMatchObject({ outcome: 200 });
    jwks.keys = [k2]; // k1 rotated out at the provider
    now += 61 * 1000; // past the once-a-minute throttle of unknown-kid re-fetches
    const before = jwks.fetches;
    expect(await overPg(await token('aud-rotated', k2), 'rotated')).toMatchObject({ outcome: 'ok' });
    expect(jwks.fetches).toBe(before + 1);
    expect(await overPg(old, 'rotated')).toEqual({ outcome: '28P01' });
    expect(lastFailure()).toMatch(/unknown kid "k1"/);
    expect(await overHttp(old)).toEqual({ outcome: 401 });
    expect(lastFailure()).toMatch(/unknown kid "k1"/);
  });

  it('is refused once the JWKS has been re-fetched without its key (the cached set expired)', async () => {
    await provider('expiring', 'aud-expiring');
    const old = await token('aud-expiring');
    expect(await overHttp(old)).toMatchObject({ outcome: 200 });
    expect(await overPg(old, 'expiring')).toMatchObject({ outcome: 'ok' });
    jwks.keys = [k2];
    now += 61 * 60 * 1000; // past the 1 h TTL: the next use re-fetches
    const before = jwks.fetches;
    expect(await overHttp(old)).toEqual({ outcome: 401 });
    expect(jwks.fetches).toBe(before + 1);
    expect(lastFailure()).toMatch(/unknown kid/);
    expect(await overPg(old, 'expiring')).toEqual({ outcome: '28P01' });
  });

  it('is refused once an inline JWKS no longer holds its key', async () => {
    const set = (k: SigningKey) => JSON.stringify({ keys: [k.publicJwk] });
    await admin.query(`CREATE OIDC PROVIDER inline_keys WITH (issuer = '${jwks.issuer}', jwks = '${set(k1)}', audience = 'aud-inline')`);
    const old = await token('aud-inline');
    expect(await overPg(old, 'inline_keys')).toMatchObject({ outcome: 'ok' });
    expect(await overHttp(old)).toMatchObject({ outcome: 200 });
    await admin.query(`ALTER OIDC PROVIDER inline_keys SET (jwks = '${set(k2)}')`);
    expect(await overPg(old, 'inline_keys')).toEqual({ outcome: '28P01' });
    expect(lastFailure()).toMatch(/unknown kid "k1"/);
    expect(await overHttp(old)).toEqual({ outcome: 401 });
  });

  it('is refused while its provider is disabled, and accepted again once it is enabled', async () => {
    await provider('switched', 'aud-switched');
    const t = await token('aud-switched');
    expect(await overPg(t, 'switched')).toMatchObject({ outcome: 'ok' });
    expect(await overHttp(t)).toMatchObject({ outcome: 200 });
    await admin.query(`ALTER OIDC PROVIDER switched SET (enabled = 'false')`);
    expect(await overPg(t, 'switched')).toEqual({ outcome: '28P01' });
    expect(lastFailure()).toMatch(/no enabled OIDC provider "switched"/);
    expect(await overHttp(t)).toEqual({ outcome: 401 });
    await admin.query(`ALTER OIDC PROVIDER switched SET (enabled = 'true')`);
    expect(await overPg(t, 'switched')).toMatchObject({ outcome: 'ok' });
    expect(await overHttp(t)).toMatchObject({ outcome: 200 });
  });

  it("carries the provider's current mapping after an ALTER, never the cached one", async () => {
    await provider('remapped', 'aud-remapped');
    const t = await token('aud-remapped');
    expect(await overPg(t, 'remapped')).toMatchObject({ outcome: 'ok', id: 'u-1', role: 'admin' });
    expect(await overHttp(t)).toMatchObject({ outcome: 200, id: 'u-1', role: 'admin' });
    await admin.query(`ALTER OIDC PROVIDER remapped SET (max_role = 'readonly')`);
    expect(await overPg(t, 'remapped')).toMatchObject({ outcome: 'ok', role: 'readonly' });
    expect(await overHttp(t)).toMatchObject({ outcome: 200, role: 'readonly' });
    await admin.query(`ALTER OIDC PROVIDER remapped SET (id_claim = 'email', tenant = 'second')`);
    expect(await overPg(t, 'remapped')).toMatchObject({ outcome: 'ok', id: 'ada@example.com', role: 'readonly', tenant: second });
    expect(await overHttp(t)).toMatchObject({ outcome: 200, id: 'ada@example.com', role: 'readonly', tenant: second });
  });

  it('is refused once the audience or the issuer of its provider changed', async () => {
    await provider('moved', 'aud-moved');
    const t = await token('aud-moved');
    expect(await overPg(t, 'moved')).toMatchObject({ outcome: 'ok' });
    expect(await overHttp(t)).toMatchObject({ outcome: 200 });
    await admin.query(`ALTER OIDC PROVIDER moved SET (audience = 'aud-moved-elsewhere')`);
    expect(await overPg(t, 'moved')).toEqual({ outcome: '28P01' });
    expect(lastFailure()).toMatch(/wrong audience/);
    expect(await overHttp(t)).toEqual({ outcome: 401 });
    await admin.query(`ALTER OIDC PROVIDER moved SET (audience = 'aud-moved')`);
    expect(await overPg(t, 'moved')).toMatchObject({ outcome: 'ok' });
    await admin.query(`ALTER OIDC PROVIDER moved SET (issuer = 'http://127.0.0.1:1/')`);
    expect(await overPg(t, 'moved')).toEqual({ outcome: '28P01' });
    expect(lastFailure()).toMatch(/wrong issuer/);
    expect(await overHttp(t)).toEqual({ outcome: 401 });
  });

  it('maps to the new provider when the name is dropped and created again, and is refused while there is none', async () => {
    await provider('dropped', 'aud-dropped');
    const t = await token('aud-dropped');
    expect(await overPg(t, 'dropped')).toMatchObject({ outcome: 'ok', role: 'admin', tenant: '1' });
    expect(await overHttp(t)).toMatchObject({ outcome: 200, role: 'admin', tenant: '1' });
    // Dropped and created again before the token comes back: same name, same JWKS, another row.
    await admin.query('DROP OIDC PROVIDER dropped');
    await provider('dropped', 'aud-dropped', { tenant: 'second', maxRole: 'readwrite' });
    expect(await overPg(t, 'dropped')).toMatchObject({ outcome: 'ok', role: 'readwrite', tenant: second });
    expect(await overHttp(t)).toMatchObject({ outcome: 200, role: 'readwrite', tenant: second });
    await admin.query('DROP OIDC PROVIDER dropped');
    expect(await overPg(t, 'dropped')).toEqual({ outcome: '28P01' });
    expect(lastFailure()).toMatch(/no enabled OIDC provider "dropped"/);
    expect(await overHttp(t)).toEqual({ outcome: 401 });
  });

  it('is refused unnamed once another provider makes it ambiguous, and still accepted where the client names one', async () => {
    await provider('multi_one', 'aud-multi-1');
    const t = await token(['aud-multi-1', 'aud-multi-2']);
    expect(await overHttp(t)).toMatchObject({ outcome: 200 });
    expect(await overPg(t, 'multi_one')).toMatchObject({ outcome: 'ok' });
    await provider('multi_two', 'aud-multi-2', { tenant: 'second' });
    expect(await overHttp(t)).toEqual({ outcome: 401 });
    expect(lastFailure()).toMatch(/ambiguous audience: the token matches OIDC providers "multi_one", "multi_two"/);
    expect(await overPg(t, 'multi_one')).toMatchObject({ outcome: 'ok', tenant: '1' });
    expect(await overPg(t, 'multi_two')).toMatchObject({ outcome: 'ok', tenant: second });
  });
});
