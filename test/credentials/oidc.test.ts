import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { SignJWT } from 'jose';
import pg from 'pg';
import { serialize } from 'pg-protocol';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { RunningServer } from '../../src/server.js';
import { RawClient } from '../support/raw-client.js';
import { b64url, JwksServer, mint, signingKey, type SigningKey } from '../support/jwks-server.js';
import { ADMIN_PASSWORD, client, startTestServer } from '../support/server.js';
import { psql } from '../support/psql.js';

/**
 * OIDC tokens in use (SPEC §2, §5): a JWKS server on loopback with ES256, ES384 and RS256
 * keys; tokens over HTTP (Bearer) and pgwire (as the password of `jwt:<provider>`, and
 * OAUTHBEARER); claim mapping; every attack refused with 28P01 / 401 and its real reason
 * recorded; the JWKS cache, its disk fallback, its staleness bound, and key rotation.
 */
let now = Date.UTC(2026, 5, 1, 12);
let jwks: JwksServer;
let es256: SigningKey;
let es384: SigningKey;
let rs256: SigningKey;
let server: RunningServer;
const logs: string[] = [];
let dataDir: string;

const AUD = 'portcullis-api';
const claims = { sub: 'u-42', preferred_username: 'ada', email: 'ada@example.com', role: 'superuser', org_id: 'org-7', scope: 'read:orders write:orders', team: 'blue' };

async function start(): Promise<RunningServer> {
  // Dozens of refused tokens from one address: lockouts are tested on their own.
  return startTestServer({ clock: () => now, dataDir, httpPort: 0, log: (l) => logs.push(l), lockoutPolicy: { ipFailures: 10_000, userFailures: 10_000 } });
}

beforeAll(async () => {
  dataDir = path.join(await mkdtemp(path.join(os.tmpdir(), 'pcu-oidc-')), 'data');
  [es256, es384, rs256] = await Promise.all([signingKey('k-es256', 'ES256'), signingKey('k-es384', 'ES384'), signingKey('k-rs256', 'RS256')]);
  jwks = await JwksServer.start([es256, es384, rs256]);
  server = await start();
  const admin = await client(server.port);
  await admin.query(`CREATE OIDC PROVIDER acme WITH (issuer = '${jwks.issuer}', jwks_url = '${jwks.jwksUrl}', audience = '${AUD}', role_claim = 'role', max_role = 'admin')`);
  // Provider B: same keys, another audience (a token for A must not get in as B).
  await admin.query(`CREATE OIDC PROVIDER other WITH (issuer = '${jwks.issuer}', jwks_url = '${jwks.jwksUrl}', audience = 'other-api')`);
  await admin.end();
});

afterAll(async () => {
  await server.close();
  await jwks.close();
  await rm(path.dirname(dataDir), { recursive: true, force: true });
});

beforeEach(() => {
  logs.length = 0;
});

const token = (key: SigningKey = es256, extra: Record<string, unknown> = {}, o: { audience?: string | null; issuer?: string; expiresInS?: number } = {}) =>
  mint(key, { ...claims, ...extra }, { nowMs: now, issuer: o.issuer ?? jwks.issuer, audience: o.audience === undefined ? AUD : o.audience, expiresInS: o.expiresInS });

async function whoami(t: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const r = await fetch(`http://127.0.0.1:${server.httpPort}/v1/whoami`, { headers: { authorization: `Bearer ${t}` } });
  return { status: r.status, body: (await r.json()) as Record<string, unknown> };
}

async function pgLogin(t: string, provider = 'acme'): Promise<pg.Client> {
  const c = new pg.Client({ host: '127.0.0.1', port: server.port, user: `jwt:${provider}`, password: t, database: 'default' });
  c.on('error', () => {});
  await c.connect();
  return c;
}

async function pgLoginError(t: string, provider = 'acme'): Promise<string | undefined> {
  try {
    const c = await pgLogin(t, provider);
    await c.end();
    return undefined;
  } catch (err) {
    return (err as { code?: string }).code;
  }
}

const lastFailure = () => logs.filter((l) => l.startsWith('login failed')).at(-1) ?? '';

describe('valid tokens', () => {
  it.each([
    ['ES256', () => es256],
    ['ES384', () => es384],
    ['RS256', () => rs256],
  ])('%s logs in over HTTP and over pgwire', async (_alg, key) => {
    const t = await token(key());
    const r = await whoami(t);
    expect(r.status).toBe(200);
    expect(r.body.principal).toMatchObject({ name: 'ada', id: 'u-42', method: 'jwt' });
    const c = await pgLogin(t);
    const { rows } = await c.query('SELECT $auth.method AS m, current_user AS u');
    expect(rows).toEqual([{ m: 'jwt', u: 'ada' }]);
    await c.end();
  });

  it('maps claims into every $auth variable, clamps the role, and reads the same over HTTP and pgwire', async () => {
    const t = await token();
    const c = await pgLogin(t);
    const { rows } = await c.query('SHOW AUTH');
    const auth = Object.fromEntries(rows.map((r: { variable: string; value: string | null }) => [r.variable, r.value]));
    expect(auth).toEqual({
      '$auth.id': 'u-42',
      '$auth.username': 'ada',
      '$auth.role': 'admin', // superuser asked for, clamped to the provider's max_role
      '$auth.tenant_id': '1',
      '$auth.org_id': 'org-7',
      '$auth.scopes': '{read:orders,write:orders}',
      '$auth.databases': '{default}',
      '$auth.roles': '{admin}',
      '$auth.email': 'ada@example.com',
      '$auth.method': 'jwt',
    });
    const team = await c.query('SELECT $auth.claims.team AS team');
    expect(team.rows).toEqual([{ team: 'blue' }]);
    await c.end();
    const http = await whoami(t);
    expect(http.body.auth).toMatchObject({ id: 'u-42', username: 'ada', role: 'admin', org_id: 'org-7', scopes: ['read:orders', 'write:orders'], email: 'ada@example.com', method: 'jwt', 'claims.team': 'blue' });
  });

  it('prefers a JWT bearer to an API key when a request carries both (SPEC §5 precedence)', async () => {
    const admin = await client(server.port);
    const key = (await admin.query("CREATE API KEY 'both'")).rows[0].key as string;
    await admin.end();
    const r = await fetch(`http://127.0.0.1:${server.httpPort}/v1/whoami`, { headers: { authorization: `Bearer ${await token()}`, 'x-api-key': key } });
    expect(((await r.json()) as { principal: { method: string } }).principal.method).toBe('jwt');
    const k = await fetch(`http://127.0.0.1:${server.httpPort}/v1/whoami`, { headers: { 'x-api-key': key } });
    expect(((await k.json()) as { principal: { method: string } }).principal.method).toBe('api_key');
  });

  it('logs in with psql itself, the token as the password of jwt:<provider>', async () => {
    const r = await psql(server.port, ['-At', '-c', 'SELECT $auth.method, $auth.username, current_database()'], { user: 'jwt:acme', password: await token() });
    expect(r, r.stderr).toMatchObject({ code: 0, stdout: 'jwt|ada|default\n' });
  });

  it('logs in with SASL OAUTHBEARER (RFC 7628), routed by issuer and audience', async () => {
    const t = await token();
    const c = await RawClient.connect(server.port);
    c.send(serialize.startup({ user: 'anyone', database: 'default' }));
    const sasl = (await c.until('authenticationSASL')) as unknown as { mechanisms: string[] };
    expect(sasl.mechanisms).toEqual(['SCRAM-SHA-256', 'OAUTHBEARER']);
    c.send(serialize.sendSASLInitialResponseMessage('OAUTHBEARER', `n,,\x01auth=Bearer ${t}\x01\x01`));
    await c.until('readyForQuery');
    const ms = await c.roundTrip(serialize.query('SELECT $auth.username AS u'));
    expect(ms.find((m) => m.name === 'dataRow')).toMatchObject({ fields: ['ada'] });
    c.end();
  });

  it('answers a refused OAUTHBEARER token with the RFC 7628 error, then 28P01', async () => {
    const t = await token(es256, {}, { audience: 'someone-else' });
    const c = await RawClient.connect(server.port);
    c.send(serialize.startup({ user: 'anyone', database: 'default' }));
    await c.until('authenticationSASL');
    c.send(serialize.sendSASLInitialResponseMessage('OAUTHBEARER', `n,,\x01auth=Bearer ${t}\x01\x01`));
    const cont = (await c.until('authenticationSASLContinue')) as unknown as { data: string };
    expect(JSON.parse(cont.data)).toMatchObject({ status: 'invalid_token' });
    c.send(serialize.sendSCRAMClientFinalMessage('\x01'));
    const err = (await c.until('error')) as unknown as { code: string };
    expect(err.code).toBe('28P01');
    expect(lastFailure()).toContain('wrong audience');
  });
});

/** An address of this machine that is not loopback, if it has one (tests of the cleartext rule need it). */
const external = Object.values(os.networkInterfaces())
  .flat()
  .find((i) => i && i.family === 'IPv4' && !i.internal)?.address;

describe('tokens never travel in cleartext off this machine', () => {
  it.skipIf(!external)('refuses jwt:<provider> as a password and does not offer OAUTHBEARER over cleartext TCP from another address', async () => {
    const s = await startTestServer({ host: external!, clock: () => now });
    try {
      const admin = new pg.Client({ host: external, port: s.port, user: 'admin', password: ADMIN_PASSWORD, database: 'default' });
      await admin.connect();
      await admin.query(`CREATE OIDC PROVIDER acme WITH (issuer = '${jwks.issuer}', jwks_url = '${jwks.jwksUrl}', audience = '${AUD}')`);
      await admin.end();
      const c = new pg.Client({ host: external, port: s.port, user: 'jwt:acme', password: await token(), database: 'default' });
      c.on('error', () => {});
      await expect(c.connect()).rejects.toMatchObject({ code: '28000', message: expect.stringContaining('only over TLS') });
      const raw = net.connect(s.port, external!);
      await new Promise((r) => raw.once('connect', r));
      const got: Buffer[] = [];
      raw.on('data', (d) => got.push(d));
      raw.write(serialize.startup({ user: 'admin', database: 'default' }));
      await new Promise((r) => raw.once('data', r));
      expect(Buffer.concat(got).toString()).toContain('SCRAM-SHA-256');
      expect(Buffer.concat(got).toString()).not.toContain('OAUTHBEARER');
      raw.destroy();
    } finally {
      await s.close();
    }
  });
});

describe('attacks', () => {
  const attacks: [string, () => Promise<string>, RegExp][] = [
    ['alg none', async () => `${b64url({ alg: 'none', typ: 'JWT' })}.${b64url({ ...claims, iss: jwks.issuer, aud: AUD, exp: Math.floor(now / 1000) + 600 })}.`, /never accepted/],
    [
      'HS256 signed with the public key',
      async () => {
        const secret = new TextEncoder().encode(JSON.stringify(es256.publicJwk));
        return new SignJWT({ ...claims }).setProtectedHeader({ alg: 'HS256', kid: es256.kid }).setIssuer(jwks.issuer).setAudience(AUD).setExpirationTime(Math.floor(now / 1000) + 600).sign(secret);
      },
      /never accepted/,
    ],
    ['wrong issuer', () => token(es256, {}, { issuer: 'https://evil.example/' }), /no OIDC provider has issuer/],
    ['wrong audience', () => token(es256, {}, { audience: 'someone-else' }), /wrong audience/],
    ['missing audience', () => token(es256, {}, { audience: null }), /missing audience/],
    ['expired', () => token(es256, {}, { expiresInS: -120 }), /expired/],
    ['nbf in the future', () => token(es256, { nbf: Math.floor(now / 1000) + 3600 }), /not yet valid/],
    ['unknown kid', () => mint(es256, claims, { nowMs: now, issuer: jwks.issuer, audience: AUD, header: { kid: 'nobody' } }), /unknown kid/],
    [
      'tampered payload',
      async () => {
        const [h, , s] = (await token()).split('.');
        return `${h}.${b64url({ ...claims, sub: 'root', iss: jwks.issuer, aud: AUD, exp: Math.floor(now / 1000) + 600 })}.${s}`;
      },
      /signature/,
    ],
    ['oversized token', () => token(es256, { pad: 'x'.repeat(9000) }), /larger than/],
  ];

  it.each(attacks)('%s: 401 over HTTP, 28P01 over pgwire, real reason recorded', async (_name, make, reason) => {
    const t = await make();
    const r = await whoami(t);
    expect(r.status).toBe(401);
    expect(r.body).toEqual({ error: { code: '28P01', message: 'authentication failed' } });
    expect(lastFailure()).toMatch(reason);
    expect(lastFailure()).toContain('via=http');
    expect(await pgLoginError(t)).toBe('28P01');
    expect(lastFailure()).toContain('via=pgwire');
    // Nothing of the token is ever echoed or logged.
    expect(logs.join('\n')).not.toContain(t.split('.')[2] || t);
  });

  it('a token of provider A presented as provider B is refused', async () => {
    const t = await token(); // audience of acme
    expect(await pgLoginError(t, 'other')).toBe('28P01');
    expect(lastFailure()).toMatch(/wrong audience/);
    expect(await pgLoginError(t, 'acme')).toBeUndefined();
  });

  it('counts failures by method and reason in /metrics', async () => {
    await whoami(await token(es256, {}, { expiresInS: -120 }));
    const text = await (await fetch(`http://127.0.0.1:${server.httpPort}/metrics`)).text();
    expect(text).toMatch(/portcullis_logins_total\{method="jwt",outcome="failure",reason="expired"\} \d+/);
    expect(text).toMatch(/portcullis_jwks_fetches_total\{outcome="ok"\} \d+/);
    expect(text).toMatch(/portcullis_jwks_cache_age_seconds\{provider="acme",state="fresh"/);
  });
});

describe('JWKS availability', () => {
  it('serves from the cache while the provider is down, fails closed past the staleness bound', async () => {
    expect((await whoami(await token())).status).toBe(200);
    jwks.down = true;
    try {
      now += 2 * 3600 * 1000; // past the 1 h TTL: a refresh is tried, fails, the cache serves
      expect((await whoami(await token())).status).toBe(200);
      now += 23 * 3600 * 1000; // 25 h since the last good fetch: beyond the 24 h bound
      expect((await whoami(await token())).status).toBe(401);
      expect(lastFailure()).toMatch(/staleness bound/);
    } finally {
      jwks.down = false;
    }
    now += 31 * 1000; // past the circuit breaker's 30 s
    expect((await whoami(await token())).status).toBe(200);
  });

  it('uses the JWKS kept in the data directory when the provider is down at start', async () => {
    expect((await whoami(await token())).status).toBe(200); // a good fetch, kept on disk
    await server.close();
    jwks.down = true;
    try {
      server = await start();
      const before = jwks.fetches;
      expect((await whoami(await token())).status).toBe(200);
      expect(jwks.fetches).toBe(before); // fresh on disk: no fetch needed
    } finally {
      jwks.down = false;
    }
  });

  it('picks up a new key at the provider and refuses a removed one after the refresh', async () => {
    const fresh = await signingKey('k-new', 'ES256');
    jwks.keys = [fresh, es384, rs256]; // es256 rotated out
    now += 61 * 1000; // the unknown-kid re-fetch is throttled to once a minute
    expect((await whoami(await token(fresh))).status).toBe(200);
    expect((await whoami(await token(es256))).status).toBe(401);
    expect(lastFailure()).toMatch(/unknown kid \\"k-es256\\"/);
    jwks.keys = [es256, es384, rs256];
    now += 61 * 1000;
  });
});
