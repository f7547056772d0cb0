import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createRemoteJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify } from 'jose';
import { createHmac } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningServer } from '../../src/server.js';
import { ADMIN_PASSWORD, client, startTestServer } from '../support/server.js';

/**
 * portcullis as a token issuer (SPEC §12), over real sockets: POST /v1/token's grants in
 * OAuth 2.0 shapes, the access token as an HTTP Bearer and as the password of
 * jwt:portcullis on pgwire, discovery and the JWKS as a downstream verifier uses them,
 * key rotation with a grace, forged algorithms, refresh token rotation and reuse, and the
 * private key never leaving the server in clear.
 */
let now = Date.UTC(2026, 5, 1, 12);
let server: RunningServer;
let dataDir: string;
const logs: string[] = [];

beforeAll(async () => {
  dataDir = path.join(await mkdtemp(path.join(os.tmpdir(), 'pcu-issuer-')), 'data');
  server = await startTestServer({ clock: () => now, dataDir, httpPort: 0, log: (l) => logs.push(l), lockoutPolicy: { ipFailures: 10_000, userFailures: 10_000 } });
  const admin = await client(server.port);
  await admin.query(`CREATE USER ada WITH PASSWORD 'ada-secret-1' ROLE readwrite`);
  await admin.query(`CREATE DATABASE sales`);
  await admin.query(`GRANT READ ON DATABASE sales TO ada`);
  await admin.query(`GRANT SCOPE 'orders:read' TO ada`);
  await admin.end();
});

afterAll(async () => {
  await server.close();
  await rm(path.dirname(dataDir), { recursive: true, force: true });
});

const base = () => `http://127.0.0.1:${server.httpPort}`;

async function token(params: Record<string, string>, form = true): Promise<{ status: number; body: Record<string, unknown>; headers: Headers }> {
  const r = await fetch(`${base()}/v1/token`, {
    method: 'POST',
    headers: { 'content-type': form ? 'application/x-www-form-urlencoded' : 'application/json' },
    body: form ? new URLSearchParams(params).toString() : JSON.stringify(params),
  });
  return { status: r.status, body: (await r.json()) as Record<string, unknown>, headers: r.headers };
}

async function whoami(t: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const r = await fetch(`${base()}/v1/whoami`, { headers: { authorization: `Bearer ${t}` } });
  return { status: r.status, body: (await r.json()) as Record<string, unknown> };
}

async function pgLogin(t: string): Promise<pg.Client> {
  const c = new pg.Client({ host: '127.0.0.1', port: server.port, user: 'jwt:portcullis', password: t, database: 'default' });
  c.on('error', () => {});
  await c.connect();
  return c;
}

async function pgLoginError(t: string): Promise<string | undefined> {
  try {
    const c = await pgLogin(t);
    await c.end();
    return undefined;
  } catch (err) {
    return (err as { code?: string }).code;
  }
}

const login = (username = 'ada', password = 'ada-secret-1') => token({ grant_type: 'password', username, password });

describe('POST /v1/token, grant_type=password', () => {
  it('answers an RFC 6749 §5.1 token response; the access token logs in over HTTP and pgwire', async () => {
    const r = await login();
    expect(r.status).toBe(200);
    expect(r.headers.get('cache-control')).toBe('no-store');
    expect(r.body.token_type).toBe('Bearer');
    expect(r.body.expires_in).toBe(900);
    expect(typeof r.body.refresh_token).toBe('string');
    const access = r.body.access_token as string;
    const claims = decodeJwt(access);
    expect(claims).toMatchObject({ iss: base(), sub: 'ada', aud: 'portcullis', role: 'readwrite', scopes: ['orders:read'] });
    expect(claims.exp! - claims.iat!).toBe(900);
    expect(decodeProtectedHeader(access).alg).toBe('ES256');

    const w = await whoami(access);
    expect(w.status).toBe(200);
    expect(w.body.principal).toMatchObject({ name: 'ada', role: 'readwrite', method: 'jwt' });

    const c = await pgLogin(access);
    const rows = (await c.query('SHOW AUTH')).rows as { variable: string; value: string }[];
    const auth = Object.fromEntries(rows.map((x) => [Object.values(x)[0], Object.values(x)[1]]));
    expect(auth).toMatchObject({ '$auth.username': 'ada', '$auth.role': 'readwrite', '$auth.method': 'jwt', '$auth.scopes': '{orders:read}' });
    await c.end();
  });

  it('accepts a JSON body too, and narrows to one database when asked', async () => {
    const r = await token({ grant_type: 'password', username: 'ada', password: 'ada-secret-1', database: 'sales' }, false);
    expect(r.status).toBe(200);
    const access = r.body.access_token as string;
    expect(decodeJwt(access)).toMatchObject({ db: 'sales', databases: ['sales'] });
    const w = await whoami(access);
    expect((w.body.auth as Record<string, unknown>).databases).toEqual(['sales']);
  });

  it('refuses with RFC 6749 §5.2 errors', async () => {
    const wrong = await login('ada', 'nope');
    expect(wrong).toMatchObject({ status: 400, body: { error: 'invalid_grant' } });
    const unknown = await login('nobody', 'nope');
    expect(unknown.body).toEqual(wrong.body);
    expect(await token({ grant_type: 'password', username: 'ada' })).toMatchObject({ status: 400, body: { error: 'invalid_request' } });
    expect(await token({ grant_type: 'client_credentials' })).toMatchObject({ status: 400, body: { error: 'unsupported_grant_type' } });
    expect(await token({ username: 'ada' })).toMatchObject({ status: 400, body: { error: 'invalid_request' } });
    const notReached = await token({ grant_type: 'password', username: 'ada', password: 'ada-secret-1', database: 'nowhere' });
    expect(notReached.body.error).toBe('invalid_grant');
  });
});

describe('a downstream verifier', () => {
  it('verifies a token with jose after discovery, from the published JWKS alone', async () => {
    const access = (await login()).body.access_token as string;
    const config = (await (await fetch(`${base()}/.well-known/openid-configuration`)).json()) as Record<string, string>;
    expect(config.issuer).toBe(base());
    expect(config.token_endpoint).toBe(`${base()}/v1/token`);
    const jwks = createRemoteJWKSet(new URL(config.jwks_uri!));
    const { payload } = await jwtVerify(access, jwks, { issuer: config.issuer, audience: 'portcullis', algorithms: ['ES256'], currentDate: new Date(now) });
    expect(payload.sub).toBe('ada');
  });
});

describe('forged tokens', () => {
  const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');

  it('refuses alg none and HS256 keyed with the public key', async () => {
    const access = (await login()).body.access_token as string;
    const claims = decodeJwt(access);
    const header = decodeProtectedHeader(access);
    const none = `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ ...claims, role: 'superuser' })}.`;
    const jwks = (await (await fetch(`${base()}/.well-known/jwks.json`)).json()) as { keys: Record<string, string>[] };
    const pub = jwks.keys.find((k) => k.kid === header.kid)!;
    const signingInput = `${b64({ alg: 'HS256', typ: 'JWT', kid: header.kid })}.${b64(claims)}`;
    const hs256 = `${signingInput}.${createHmac('sha256', JSON.stringify(pub)).update(signingInput).digest('base64url')}`;
    for (const forged of [none, hs256]) {
      expect((await whoami(forged)).status).toBe(401);
      expect(await pgLoginError(forged)).toBe('28P01');
    }
    expect(logs.some((l) => l.includes('algorithm \\"none\\" is never accepted'))).toBe(true);
    expect(logs.some((l) => l.includes('algorithm \\"HS256\\" is never accepted'))).toBe(true);
  });
});
