import pg from 'pg';
import { serialize } from 'pg-protocol';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { RunningServer } from '../../src/server.js';
import { RawClient } from '../support/raw-client.js';
import { JwksServer, mint, signingKey, type SigningKey } from '../support/jwks-server.js';
import { client, startTestServer } from '../support/server.js';

/**
 * An open session that logged in with an OIDC token is checked again at each statement, as
 * an API-key session is: once a login with the same token would be refused — the token
 * expired, its provider dropped, disabled, or altered so the token no longer routes to it
 * or verifies there, its signing key gone from the provider's key set — the next statement
 * ends the session with FATAL 28000. A provider ALTER that keeps the token accepted maps it
 * again: the session's role follows max_role. Every test logs in over the real server
 * (node-postgres, the token as the password of `jwt:<provider>`; OAUTHBEARER where routing
 * matters), with the JWKS on loopback and the server's clock injected.
 */
let now = Date.UTC(2026, 7, 1, 9);
let jwks: JwksServer;
let k1: SigningKey;
let k2: SigningKey;
let server: RunningServer;
let admin: pg.Client;
const logs: string[] = [];

const SKEW_S = 60; // the server's default clock skew for tokens
const LIFETIME_S = 6 * 3600;

beforeAll(async () => {
  [k1, k2] = await Promise.all([signingKey('k1', 'ES256'), signingKey('k2', 'ES256')]);
  jwks = await JwksServer.start([k1]);
  server = await startTestServer({ clock: () => now, log: (l) => logs.push(l), lockoutPolicy: { ipFailures: 10_000, userFailures: 10_000 } });
  admin = await client(server.port);
});

afterAll(async () => {
  await admin.end();
  await server.close();
  await jwks.close();
});

beforeEach(() => {
  jwks.keys = [k1];
  logs.length = 0;
});

const inline = (...keys: SigningKey[]) => JSON.stringify({ keys: keys.map((k) => k.publicJwk) });

/** A provider on the test's JWKS server (or with an inline JWKS); each test has its own audience. */
async function provider(name: string, audience: string, opts: { inline?: SigningKey[]; maxRole?: string } = {}): Promise<void> {
  const keys = opts.inline ? `jwks = '${inline(...opts.inline)}'` : `jwks_url = '${jwks.jwksUrl}'`;
  await admin.query(`CREATE OIDC PROVIDER ${name} WITH (issuer = '${jwks.issuer}', ${keys}, audience = '${audience}', max_role = '${opts.maxRole ?? 'admin'}')`);
}

const token = (audience: string | string[], opts: { key?: SigningKey; lifetimeS?: number; role?: string } = {}) =>
  mint(opts.key ?? k1, { sub: 'u-7', preferred_username: 'grace', role: opts.role ?? 'admin' }, { nowMs: now, issuer: jwks.issuer, audience: audience as string, expiresInS: opts.lifetimeS ?? LIFETIME_S });

/** A session logged in as `jwt:<provider>` with the token as the password. */
async function session(t: string, providerName: string): Promise<pg.Client> {
  const c = new pg.Client({ host: '127.0.0.1', port: server.port, user: `jwt:${providerName}`, password: t, database: 'default' });
  c.on('error', () => {});
  await c.connect();
  return c;
}

async function whoami(c: pg.Client): Promise<{ id: string; role: string }> {
  return (await c.query('SELECT $auth.id AS id, $auth.role AS role')).rows[0];
}

/** The next statement ends the session: FATAL 28000, and the connection is gone. */
async function expectEnded(c: pg.Client, detail?: RegExp): Promise<void> {
  const err = await c.query('SELECT 1').then(
    () => null,
    (e: pg.DatabaseError) => e,
  );
  expect(err).toMatchObject({ code: '28000', severity: 'FATAL', message: 'the token of this session no longer grants access' });
  if (detail) expect(err!.detail).toMatch(detail);
  await expect(c.query('SELECT 1')).rejects.toThrow();
  await c.end().catch(() => undefined);
}

describe('a token session ends at its next statement', () => {
  it('when its provider is dropped, and stays ended when a provider of that name comes back', async () => {
    await provider('p_drop', 'aud-drop');
    await provider('p_bystander', 'aud-bystander');
    const c = await session(await token('aud-drop'), 'p_drop');
    const other = await session(await token('aud-bystander'), 'p_bystander');
    expect(await whoami(c)).toEqual({ id: 'u-7', role: 'admin' });
    await admin.query('DROP OIDC PROVIDER p_drop');
    await provider('p_drop', 'aud-drop'); // same name, issuer, audience, keys: another provider
    await expectEnded(c);
    // A session of another provider is not touched by the change.
    expect(await whoami(other)).toEqual({ id: 'u-7', role: 'admin' });
    await other.end();
  });

  it('when its provider is disabled', async () => {
    await provider('p_off', 'aud-off');
    const c = await session(await token('aud-off'), 'p_off');
    await c.query('SELECT 1');
    await admin.query(`ALTER OIDC PROVIDER p_off SET (enabled = 'false')`);
    await expectEnded(c);
  });

  it("when its provider's audience or issuer changes", async () => {
    await provider('p_aud', 'aud-aud');
    await provider('p_iss', 'aud-iss');
    const a = await session(await token('aud-aud'), 'p_aud');
    const b = await session(await token('aud-iss'), 'p_iss');
    await admin.query(`ALTER OIDC PROVIDER p_aud SET (audience = 'aud-aud-elsewhere')`);
    await admin.query(`ALTER OIDC PROVIDER p_iss SET (issuer = 'http://127.0.0.1:1/')`);
    await expectEnded(a);
    await expectEnded(b);
  });

  it('when its signing key leaves an inline JWKS, and not while the key stays', async () => {
    await provider('p_inline', 'aud-inline', { inline: [k1] });
    const c = await session(await token('aud-inline'), 'p_inline');
    // Another key added: the session's key is still there (a new row, parsed anew).
    await admin.query(`ALTER OIDC PROVIDER p_inline SET (jwks = '${inline(k2, k1)}')`);
    expect(await whoami(c)).toEqual({ id: 'u-7', role: 'admin' });
    await admin.query(`ALTER OIDC PROVIDER p_inline SET (jwks = '${inline(k2)}')`);
    await expectEnded(c);
  });

  it("when the provider's JWKS is fetched again without its key; an old cached set alone ends nothing", async () => {
    await provider('p_url', 'aud-url');
    const c = await session(await token('aud-url'), 'p_url');
    jwks.keys = [k2]; // k1 rotated out at the identity provider: not known here yet
    now += 2 * 3600 * 1000; // past the cache's 1 h TTL; nothing fetches it
    const fetches = jwks.fetches;
    expect(await whoami(c)).toEqual({ id: 'u-7', role: 'admin' });
    expect(jwks.fetches).toBe(fetches);
    // A login with a k2 token fetches the set again, and it no longer holds k1.
    const fresh = await session(await token('aud-url', { key: k2 }), 'p_url');
    expect(jwks.fetches).toBe(fetches + 1);
    await expectEnded(c);
    expect(await whoami(fresh)).toEqual({ id: 'u-7', role: 'admin' });
    await fresh.end();
  });

  it('once its exp passes, with the clock skew, naming the expiry', async () => {
    await provider('p_exp', 'aud-exp');
    const issued = Math.floor(now / 1000) * 1000;
    const c = await session(await token('aud-exp', { lifetimeS: 600 }), 'p_exp');
    const exp = issued + 600 * 1000;
    now = exp + SKEW_S * 1000 - 1000; // still within the skew a login allows
    expect(await whoami(c)).toEqual({ id: 'u-7', role: 'admin' });
    await c.query('BEGIN');
    await c.query('SELECT 1');
    now = exp + SKEW_S * 1000;
    await expectEnded(c, new RegExp(`^The token expired at ${new Date(exp).toISOString()}\\.$`));
  });

  it('when an ALTER makes its claims map to another principal', async () => {
    await provider('p_id', 'aud-id');
    const c = await session(await token('aud-id'), 'p_id');
    expect(await whoami(c)).toMatchObject({ id: 'u-7' });
    await admin.query(`ALTER OIDC PROVIDER p_id SET (id_claim = 'preferred_username')`);
    await expectEnded(c);
  });

  it('when it was routed by audience (OAUTHBEARER) and another provider makes its token ambiguous', async () => {
    await provider('p_multi_one', 'aud-multi-1');
    const t = await token(['aud-multi-1', 'aud-multi-2']);
    const named = await session(t, 'p_multi_one');
    const c = await RawClient.connect(server.port);
    c.send(serialize.startup({ user: 'anyone', database: 'default' }));
    await c.until('authenticationSASL');
    c.send(serialize.sendSASLInitialResponseMessage('OAUTHBEARER', `n,,\x01auth=Bearer ${t}\x01\x01`));
    await c.until('readyForQuery');
    const ok = await c.roundTrip(serialize.query('SELECT $auth.id AS id'));
    expect(ok.find((m) => m.name === 'dataRow')).toMatchObject({ fields: ['u-7'] });
    await provider('p_multi_two', 'aud-multi-2');
    const ms = await c.roundTrip(serialize.query('SELECT $auth.id AS id')).catch(() => c.take());
    expect(ms.find((m) => m.name === 'error')).toMatchObject({ code: '28000', severity: 'FATAL', message: 'the token of this session no longer grants access' });
    await c.untilClosed();
    // The session that named its provider is still that provider's.
    expect(await whoami(named)).toEqual({ id: 'u-7', role: 'admin' });
    await named.end();
  });
});

describe('a token session that stays', () => {
  it("follows max_role at its next statement, down and up, and outlives ALTERs that keep its token accepted", async () => {
    // CREATE ROLE needs tenant_admin.
    await provider('p_role', 'aud-role', { maxRole: 'tenant_admin' });
    const c = await session(await token('aud-role', { role: 'tenant_admin' }), 'p_role');
    expect(await whoami(c)).toEqual({ id: 'u-7', role: 'tenant_admin' });
    await c.query('CREATE ROLE role_follow_a');
    await admin.query(`ALTER OIDC PROVIDER p_role SET (max_role = 'readonly')`);
    expect(await whoami(c)).toEqual({ id: 'u-7', role: 'readonly' });
    expect((await c.query('SHOW AUTH')).rows).toContainEqual({ variable: '$auth.role', value: 'readonly' });
    await expect(c.query('CREATE ROLE role_follow_b')).rejects.toMatchObject({ code: '42501', detail: expect.stringMatching(/readonly/) });
    await admin.query(`ALTER OIDC PROVIDER p_role SET (max_role = 'tenant_admin', scopes_claim = 'scp')`);
    expect(await whoami(c)).toEqual({ id: 'u-7', role: 'tenant_admin' });
    await c.query('CREATE ROLE role_follow_b');
    await c.end();
  });

  it('follows a lowered max_role inside an open transaction block', async () => {
    await provider('p_role_block', 'aud-role-block', { maxRole: 'tenant_admin' });
    const c = await session(await token('aud-role-block', { role: 'tenant_admin' }), 'p_role_block');
    await c.query('BEGIN');
    await c.query('CREATE ROLE role_block_a');
    await admin.query(`ALTER OIDC PROVIDER p_role_block SET (max_role = 'readonly')`);
    await expect(c.query('CREATE ROLE role_block_b')).rejects.toMatchObject({ code: '42501' });
    await c.query('ROLLBACK');
    expect(await whoami(c)).toEqual({ id: 'u-7', role: 'readonly' });
    await c.end();
  });
});

describe('a token login', () => {
  it('fails when its provider is dropped while the login fetches its keys', async () => {
    await provider('p_race', 'aud-race');
    const t = await token('aud-race');
    const held = jwks.hold();
    const login = session(t, 'p_race').then(
      (c) => c,
      (e: pg.DatabaseError) => e,
    );
    await held.arrived; // the login is waiting for the provider's JWKS
    await admin.query('DROP OIDC PROVIDER p_race');
    held.release();
    const outcome = await login;
    if (outcome instanceof pg.Client) await outcome.end();
    expect(outcome).toMatchObject({ code: '28P01' });
    expect(logs.filter((l) => l.startsWith('login failed')).at(-1)).toMatch(/reason="OIDC provider \\"p_race\\" was dropped"/);
  });
});
