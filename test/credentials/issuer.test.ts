import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createRemoteJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify } from 'jose';
import { createHmac, randomBytes } from 'node:crypto';
import pg from 'pg';
import { serialize } from 'pg-protocol';
import { pipelinedPosts } from '../support/http-pipeline.js';
import { RawClient } from '../support/raw-client.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningServer } from '../../src/server.js';
import { ADMIN_PASSWORD, client, loginError, startTestServer } from '../support/server.js';

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
    expect(decodeJwt(access)).toMatchObject({ databases: ['sales'] });
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

describe('POST /v1/token, grant_type=api_key', () => {
  it("gives a token no wider than the key: its role, databases and scopes carry over", async () => {
    const admin = await client(server.port);
    await admin.query(`GRANT SCOPE 'orders:write' TO ada`);
    const key = (await admin.query(`CREATE API KEY 'narrow' FOR ada ROLE readonly WITH DATABASES (sales) SCOPES ('orders:read')`)).rows[0].key as string;
    const r = await token({ grant_type: 'api_key', api_key: key });
    expect(r.status).toBe(200);
    const access = r.body.access_token as string;
    expect(decodeJwt(access)).toMatchObject({ sub: 'ada', role: 'readonly', databases: ['sales'], scopes: ['orders:read'] });
    const w = await whoami(access);
    expect(w.body.auth).toMatchObject({ role: 'readonly', databases: ['sales'], scopes: ['orders:read'] });
    // Outside the key's databases: refused; inside, the key's role.
    const outside = new pg.Client({ host: '127.0.0.1', port: server.port, user: 'jwt:portcullis', password: access, database: 'default' });
    outside.on('error', () => {});
    await expect(outside.connect()).rejects.toMatchObject({ code: '42501' });
    const inside = new pg.Client({ host: '127.0.0.1', port: server.port, user: 'jwt:portcullis', password: access, database: 'sales' });
    await inside.connect();
    expect((await inside.query('SELECT $auth.role AS r')).rows).toEqual([{ r: 'readonly' }]);
    await expect(inside.query(`CREATE API KEY 'wider' FOR ada ROLE readwrite`)).rejects.toMatchObject({ code: '42501' });
    await inside.end();
    // Narrowing further to a database the key does not reach is refused.
    expect((await token({ grant_type: 'api_key', api_key: key, database: 'default' })).body.error).toBe('invalid_grant');
    // A refreshed token is as narrow as the first.
    const again = await token({ grant_type: 'refresh_token', refresh_token: r.body.refresh_token as string });
    expect(decodeJwt(again.body.access_token as string)).toMatchObject({ role: 'readonly', databases: ['sales'], scopes: ['orders:read'] });
    await admin.query(`DROP API KEY 'narrow' FOR ada`);
    await admin.query(`REVOKE SCOPE 'orders:write' FROM ada`);
    await admin.end();
  });
});

describe('SASL OAUTHBEARER', () => {
  it('logs in with an access token of the built-in issuer (RFC 7628)', async () => {
    const t = (await login()).body.access_token as string;
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

describe('signing key rotation', () => {
  it('keeps the old key verifying for the grace, then refuses its tokens, in open sessions too', async () => {
    const before = (await login()).body.access_token as string;
    const oldKid = decodeProtectedHeader(before).kid;
    const session = await pgLogin(before);
    const admin = await client(server.port);
    const shown = (await admin.query('SHOW TOKEN ISSUER')).rows as Record<string, string | null>[];
    expect(shown).toEqual([expect.objectContaining({ issuer: base(), kid: oldKid, algorithm: 'ES256', status: 'current', retires_at: null })]);
    await admin.query(`ALTER TOKEN ISSUER ROTATE KEY GRACE '10 minutes'`);
    const after = (await admin.query('SHOW TOKEN ISSUER')).rows as Record<string, string | null>[];
    expect(after.map((r) => r.status)).toEqual(['current', 'retiring']);
    expect(after[1]!.kid).toBe(oldKid);

    const fresh = (await login()).body.access_token as string;
    expect(decodeProtectedHeader(fresh).kid).not.toBe(oldKid);
    const kids = ((await (await fetch(`${base()}/.well-known/jwks.json`)).json()) as { keys: { kid: string }[] }).keys.map((k) => k.kid);
    expect(kids).toContain(oldKid);
    expect((await whoami(before)).status).toBe(200);
    expect((await session.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);

    now += 11 * 60_000; // past the grace, within the token's 15 minutes
    try {
      expect((await whoami(before)).status).toBe(401);
      expect(await pgLoginError(before)).toBe('28P01');
      await expect(session.query('SELECT 1')).rejects.toMatchObject({ code: '28000' });
      expect((await whoami(fresh)).status).toBe(200);
      const left = ((await (await fetch(`${base()}/.well-known/jwks.json`)).json()) as { keys: { kid: string }[] }).keys.map((k) => k.kid);
      expect(left).not.toContain(oldKid);
    } finally {
      await session.end().catch(() => {});
      await admin.end();
    }
  });

  it('is a superuser statement', async () => {
    const ada = await client(server.port, 'ada', 'ada-secret-1');
    await expect(ada.query('ALTER TOKEN ISSUER ROTATE KEY')).rejects.toMatchObject({ code: '42501' });
    await expect(ada.query('SHOW TOKEN ISSUER')).rejects.toMatchObject({ code: '42501' });
    await ada.end();
  });

  it('owns the name portcullis among OIDC providers', async () => {
    const admin = await client(server.port);
    await expect(admin.query(`CREATE OIDC PROVIDER portcullis ISSUER 'https://i/' JWKS_URI 'https://i/j' AUDIENCE 'a'`)).rejects.toMatchObject({ code: '42710' });
    await admin.end();
  });
});

describe('refresh tokens', () => {
  const refresh = (t: string) => token({ grant_type: 'refresh_token', refresh_token: t });

  it('are single-use and rotated; a reused one revokes its family', async () => {
    const first = (await login()).body;
    const second = await refresh(first.refresh_token as string);
    expect(second.status).toBe(200);
    expect(second.body.refresh_token).not.toBe(first.refresh_token);
    expect((await whoami(second.body.access_token as string)).body.principal).toMatchObject({ name: 'ada' });
    // The first one again: refused, and the family with it (the second one too).
    expect(await refresh(first.refresh_token as string)).toMatchObject({ status: 400, body: { error: 'invalid_grant' } });
    expect(await refresh(second.body.refresh_token as string)).toMatchObject({ status: 400, body: { error: 'invalid_grant' } });
    // Another family is untouched.
    const other = (await login()).body;
    expect((await refresh(other.refresh_token as string)).status).toBe(200);
  });

  it("presented with another user's access token: refused, and its family revoked", async () => {
    const admin = await client(server.port);
    await admin.query(`CREATE USER gil WITH PASSWORD 'gil-secret-1' ROLE readonly`);
    await admin.end();
    const withBearer = (refreshToken: string, access: string) =>
      fetch(`${base()}/v1/token`, { method: 'POST', headers: { authorization: `Bearer ${access}` }, body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken }) }).then(async (r) => ({ status: r.status, body: (await r.json()) as Record<string, unknown> }));
    const ada = (await login()).body as Record<string, string>;
    const gil = (await login('gil', 'gil-secret-1')).body as Record<string, string>;

    expect(await withBearer(ada.refresh_token!, gil.access_token!)).toMatchObject({ status: 400, body: { error: 'invalid_grant', error_description: 'the credential was refused' } });
    expect((await refresh(ada.refresh_token!)).status).toBe(400); // the family is revoked
    expect((await whoami(gil.access_token!)).status).toBe(200); // gil's own tokens are not
    const own = await withBearer(gil.refresh_token!, gil.access_token!);
    expect(own.status).toBe(200);
    expect(decodeJwt(own.body.access_token as string).sub).toBe('gil');

    // Its owner's own access token along with it, even expired, is what a client sends: fine.
    const again = (await login()).body as Record<string, string>;
    const saved = now;
    try {
      now += 20 * 60_000;
      expect((await whoami(again.access_token!)).status).toBe(401);
      const r = await withBearer(again.refresh_token!, again.access_token!);
      expect(r.status).toBe(200);
      expect(decodeJwt(r.body.access_token as string).sub).toBe('ada');
    } finally {
      now = saved;
    }
    // Neither kind of token stands in for the other.
    expect((await refresh(gil.access_token!)).body.error).toBe('invalid_grant');
    expect((await whoami(own.body.refresh_token as string)).status).toBe(401);
  });

  it('refuses random strings alike, without a trace of them in the log', async () => {
    const garbage = ['pcr_' + 'A'.repeat(43), 'nothing', 'pcr_'];
    for (const g of garbage) expect(await refresh(g)).toMatchObject({ status: 400, body: { error: 'invalid_grant', error_description: 'the credential was refused' } });
    expect(logs.some((l) => l.includes('AAAAAAAA'))).toBe(false);
  });

  it('die with the principal: DROP USER, NOLOGIN, a new password, DROP API KEY', async () => {
    const admin = await client(server.port);
    await admin.query(`CREATE USER bo WITH PASSWORD 'bo-secret-1' ROLE readonly`);
    const boId = server.engine.catalog.userByName('bo')!.id;
    const rows = () => ({ access: server.engine.catalog.issuedTokensOf('user', boId).length, refresh: server.engine.catalog.refreshTokensOf('user', boId).length });
    const get = async () => (await login('bo', 'bo-secret-1')).body.refresh_token as string;

    let t = await get();
    await admin.query('ALTER USER bo NOLOGIN');
    expect((await refresh(t)).status).toBe(400);
    await admin.query('ALTER USER bo LOGIN');
    expect((await refresh(t)).status).toBe(400); // ended by NOLOGIN: LOGIN does not bring it back
    const fresh = await get();
    expect((await refresh(fresh)).status).toBe(200); // a login after LOGIN is a new family

    t = await get();
    await admin.query(`ALTER USER bo WITH PASSWORD 'bo-secret-2'`);
    expect((await refresh(t)).status).toBe(400);

    const key = (await admin.query(`CREATE API KEY 'ci' FOR bo`)).rows[0].key as string;
    const viaKey = await token({ grant_type: 'api_key', api_key: key });
    expect(viaKey.status).toBe(200);
    const keyJti = decodeJwt(viaKey.body.access_token as string).jti;
    expect(decodeJwt(viaKey.body.access_token as string)).toMatchObject({ sub: 'bo', key: key.slice(4, 20) });
    const listed = async () => ((await admin.query('SHOW TOKENS FOR bo')).rows as { jti: string }[]).map((r) => r.jti);
    expect(await listed()).toContain(keyJti);
    await admin.query(`DROP API KEY 'ci' FOR bo`);
    expect((await refresh(viaKey.body.refresh_token as string)).status).toBe(400);
    expect((await whoami(viaKey.body.access_token as string)).status).toBe(401);
    expect(await listed()).not.toContain(keyJti); // its rows went with the key; bo's others stay
    expect(rows().access).toBeGreaterThan(0);

    const last = (await login('bo', 'bo-secret-2')).body;
    const session = await pgLogin(last.access_token as string);
    await admin.query('DROP USER bo');
    await expect(session.query('SELECT 1')).rejects.toMatchObject({ code: '28000' }); // an open session ends too
    await session.end().catch(() => {});
    expect(rows()).toEqual({ access: 0, refresh: 0 }); // swept with the user, before DROP USER answered
    expect((await refresh(last.refresh_token as string)).status).toBe(400);
    expect((await whoami(last.access_token as string)).status).toBe(401);
    await admin.end();
  });

  it("a dropped service account's minted tokens go with it", async () => {
    const admin = await client(server.port);
    await admin.query(`CREATE SERVICE ACCOUNT 'node9' FOR DATABASES (sales) ROLE readonly`);
    const saId = server.engine.catalog.serviceAccountByName('node9')!.id;
    const { token: t } = (await admin.query(`CREATE TOKEN FOR node9 EXPIRES IN '1 day'`)).rows[0] as { token: string };
    expect((await whoami(t)).status).toBe(200);
    await admin.query(`DROP SERVICE ACCOUNT 'node9'`);
    expect(server.engine.catalog.issuedTokensOf('service_account', saId)).toEqual([]);
    expect((await whoami(t)).status).toBe(401);
    await admin.end();
  });
});

describe('the private key', () => {
  it('never appears in the dump, the data directory, the server log or any response', async () => {
    const responses: string[] = [];
    const keep = async (r: Response) => {
      const text = await r.text();
      responses.push(text);
      return text;
    };
    const login1 = await fetch(`${base()}/v1/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'grant_type=password&username=ada&password=ada-secret-1' });
    await keep(login1);
    await keep(await fetch(`${base()}/.well-known/jwks.json`));
    await keep(await fetch(`${base()}/.well-known/openid-configuration`));
    const admin = await client(server.port);
    responses.push(JSON.stringify((await admin.query('SHOW TOKEN ISSUER')).rows));
    const dump = ((await admin.query('DUMP CATALOG')).rows as { statement: string }[]).map((r) => r.statement).join('\n');
    await admin.end();
    await server.engine.compact(); // the snapshot too

    const { openPrivateKey } = await import('../../src/auth/signing.js');
    const secrets: string[] = [];
    for (const k of server.engine.catalog.signingKeys()) {
      const d = openPrivateKey(k.sealedPrivate, k.kid, server.engine.catalog.serverSecret).d!;
      secrets.push(d, Buffer.from(d, 'base64url').toString('hex'), Buffer.from(d, 'base64url').toString('base64'));
    }
    expect(secrets.length).toBeGreaterThan(0);
    const files: Buffer[] = [];
    const walk = async (dir: string): Promise<void> => {
      for (const e of await readdir(dir, { withFileTypes: true })) {
        const p = path.join(dir, e.name);
        if (e.isDirectory()) await walk(p);
        else files.push(await readFile(p));
      }
    };
    await walk(dataDir);
    expect(files.length).toBeGreaterThan(0);
    for (const s of secrets) {
      expect(dump).not.toContain(s);
      for (const r of responses) expect(r).not.toContain(s);
      for (const l of logs) expect(l).not.toContain(s);
      for (const f of files) expect(f.includes(Buffer.from(s))).toBe(false);
    }
  });
});

describe('tokens minted and revoked from SQL', () => {
  const authenticate = async (credential: string, database: string) =>
    (await fetch(`${base()}/v1/authenticate`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ credential, database }) })).status;

  it('CREATE TOKEN FOR a service account: shown once, within its databases, listed by SHOW TOKENS without its text', async () => {
    const admin = await client(server.port);
    await admin.query(`CREATE SERVICE ACCOUNT 'node1' FOR DATABASES (sales) ROLE readwrite`);
    const r = await admin.query(`CREATE TOKEN FOR node1 ROLE readonly EXPIRES IN '30 days'`);
    expect(r.fields.map((f) => f.name)).toEqual(['jti', 'subject', 'token', 'expires_at']);
    const { jti, token: t } = r.rows[0] as { jti: string; token: string };
    expect(decodeJwt(t)).toMatchObject({ sub: 'node1', uid: expect.stringMatching(/^service_account:\d+$/), role: 'readonly', databases: ['sales'] });
    expect(decodeJwt(t).exp! - decodeJwt(t).iat!).toBe(30 * 24 * 3600);
    expect(await authenticate(t, 'sales')).toBe(200);
    expect(await authenticate(t, 'default')).toBe(403);
    const outside = new pg.Client({ host: '127.0.0.1', port: server.port, user: 'jwt:portcullis', password: t, database: 'default' });
    outside.on('error', () => {});
    await expect(outside.connect()).rejects.toMatchObject({ code: '42501' });
    const inside = new pg.Client({ host: '127.0.0.1', port: server.port, user: 'jwt:portcullis', password: t, database: 'sales' });
    await inside.connect();
    expect((await inside.query('SELECT $auth.username AS u, $auth.role AS r')).rows).toEqual([{ u: 'node1', r: 'readonly' }]);
    await inside.end();

    const shown = (await admin.query('SHOW TOKENS FOR node1')).rows as Record<string, unknown>[];
    expect(shown).toEqual([expect.objectContaining({ jti, subject: 'node1', subject_kind: 'service_account', minted: true, role: 'readonly', created_by: 'admin' })]);
    expect(JSON.stringify((await admin.query('SHOW TOKENS')).rows)).not.toContain(t.split('.')[2]);

    await expect(admin.query(`CREATE TOKEN FOR node1`)).rejects.toMatchObject({ code: '22023' });
    await expect(admin.query(`CREATE TOKEN FOR node1 EXPIRES IN '400 days'`)).rejects.toMatchObject({ code: '22023' });
    await expect(admin.query(`CREATE TOKEN FOR node1 WITH DATABASES (default) EXPIRES IN '1 day'`)).rejects.toMatchObject({ code: '42501' });
    await admin.end();
  });

  it('REVOKE TOKEN ends it at once, in an open session too', async () => {
    const admin = await client(server.port);
    const { jti, token: t } = (await admin.query(`CREATE TOKEN FOR ada EXPIRES IN '1 hour'`)).rows[0] as { jti: string; token: string };
    const session = await pgLogin(t);
    expect((await session.query('SELECT $auth.username AS u')).rows).toEqual([{ u: 'ada' }]);
    const other = (await login()).body.access_token as string;
    await admin.query(`REVOKE TOKEN '${jti}'`);
    await expect(session.query('SELECT 1')).rejects.toMatchObject({ code: '28000' });
    expect((await whoami(t)).status).toBe(401);
    expect((await whoami(other)).status).toBe(200); // only that one
    const row = ((await admin.query('SHOW TOKENS FOR ada')).rows as { jti: string; revoked_at: unknown }[]).find((x) => x.jti === jti);
    expect(row?.revoked_at).not.toBeNull();
    await expect(admin.query(`REVOKE TOKEN 'no-such-token'`)).rejects.toMatchObject({ code: '42704' });
    await session.end().catch(() => {});
    await admin.end();
  });

  it('REVOKE TOKENS FOR name ends its access and refresh tokens', async () => {
    const admin = await client(server.port);
    await admin.query(`CREATE USER cy WITH PASSWORD 'cy-secret-1' ROLE readonly`);
    const a = (await login('cy', 'cy-secret-1')).body;
    const b = (await login('cy', 'cy-secret-1')).body;
    expect((await whoami(a.access_token as string)).status).toBe(200);
    const session = await pgLogin(a.access_token as string);
    await admin.query('REVOKE TOKENS FOR cy');
    await expect(session.query('SELECT 1')).rejects.toMatchObject({ code: '28000' });
    await session.end().catch(() => {});
    expect((await whoami(a.access_token as string)).status).toBe(401);
    expect((await whoami(b.access_token as string)).status).toBe(401);
    expect((await token({ grant_type: 'refresh_token', refresh_token: b.refresh_token as string })).status).toBe(400);
    expect((await login('cy', 'cy-secret-1')).status).toBe(200); // new logins go on
    await admin.end();
  });
});

describe('PORTCULLIS_BOOTSTRAP_DISABLE_AFTER_SETUP', () => {
  it('sets the bootstrap superuser NOLOGIN in the commit that makes another superuser, audited', async () => {
    const s = await startTestServer({ bootstrapDisableAfterSetup: true });
    try {
      const admin = await client(s.port);
      await admin.query(`CREATE USER helper WITH PASSWORD 'helper-secret-1' ROLE admin`);
      expect(await loginError(s.port, 'admin', ADMIN_PASSWORD)).toBeNull(); // not a superuser: nothing changes
      await admin.query(`CREATE USER root2 WITH PASSWORD 'root2-secret-1' ROLE superuser`);
      await admin.end();
      expect(await loginError(s.port, 'admin', ADMIN_PASSWORD)).toMatchObject({ code: '28000' });
      const root2 = await client(s.port, 'root2', 'root2-secret-1');
      const audit = (await root2.query('SHOW AUDIT LOG')).rows as Record<string, string | null>[];
      expect(audit.some((r) => r.actor === 'portcullis' && String(r.detail ?? r.statement ?? '').includes('NOLOGIN'))).toBe(true);
      await root2.end();
    } finally {
      await s.close();
    }
  });

  it('also when a user is altered to superuser; the refresh tokens of the bootstrap superuser end with it', async () => {
    const s = await startTestServer({ bootstrapDisableAfterSetup: true, httpPort: 0 });
    try {
      const post = async (params: Record<string, string>) => (await fetch(`http://127.0.0.1:${s.httpPort}/v1/token`, { method: 'POST', body: new URLSearchParams(params) })).status;
      const r = await fetch(`http://127.0.0.1:${s.httpPort}/v1/token`, { method: 'POST', body: new URLSearchParams({ grant_type: 'password', username: 'admin', password: ADMIN_PASSWORD }) });
      const refreshToken = ((await r.json()) as { refresh_token: string }).refresh_token;
      const admin = await client(s.port);
      await admin.query(`CREATE USER helper WITH PASSWORD 'helper-secret-1' ROLE admin`);
      await admin.query(`ALTER USER helper ROLE superuser`);
      await admin.end();
      expect(await loginError(s.port, 'admin', ADMIN_PASSWORD)).toMatchObject({ code: '28000' });
      expect(await post({ grant_type: 'refresh_token', refresh_token: refreshToken })).toBe(400);
      // The new superuser lets the bootstrap one log in again: its old refresh token stays dead.
      const helper = await client(s.port, 'helper', 'helper-secret-1');
      await helper.query('ALTER USER admin LOGIN');
      await helper.end();
      expect(await loginError(s.port, 'admin', ADMIN_PASSWORD)).toBeNull();
      expect(await post({ grant_type: 'refresh_token', refresh_token: refreshToken })).toBe(400);
    } finally {
      await s.close();
    }
  });
});

describe('the edges of exp', () => {
  it('accepts an access token until exp plus the clock skew, and no longer: HTTP, a pgwire login, an open session', async () => {
    const t = (await login()).body.access_token as string;
    const exp = decodeJwt(t).exp! * 1000;
    const session = await pgLogin(t);
    const saved = now;
    try {
      now = exp + 60_000 - 1; // the default skew is 60 s
      expect((await whoami(t)).status).toBe(200);
      expect(await pgLoginError(t)).toBeUndefined();
      expect((await session.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
      now = exp + 60_000;
      expect((await whoami(t)).status).toBe(401);
      expect(await pgLoginError(t)).toBe('28P01');
      await expect(session.query('SELECT 1')).rejects.toMatchObject({ code: '28000' });
    } finally {
      now = saved;
      await session.end().catch(() => {});
    }
  });

  it('takes a refresh token until its expiry (30 days), and not at it', async () => {
    const saved = now;
    try {
      const first = (await login()).body.refresh_token as string;
      const second = (await login()).body.refresh_token as string;
      now = saved + 30 * 24 * 3600_000 - 1;
      expect((await token({ grant_type: 'refresh_token', refresh_token: first })).status).toBe(200);
      now = saved + 30 * 24 * 3600_000;
      expect((await token({ grant_type: 'refresh_token', refresh_token: second })).status).toBe(400);
    } finally {
      now = saved;
    }
  });
});

describe('lockouts and rate limits at the token endpoint', () => {
  it('locks an address out after failed grants: a right password or a good refresh token is then refused too, and not spent', async () => {
    let at = Date.UTC(2026, 5, 1, 12);
    const s = await startTestServer({ clock: () => at, httpPort: 0, lockoutPolicy: { ipFailures: 5, userFailures: 1000 } });
    try {
      const admin = await client(s.port);
      await admin.query(`CREATE USER dee WITH PASSWORD 'dee-secret-1'`);
      await admin.end();
      const post = async (params: Record<string, string>) => {
        const r = await fetch(`http://127.0.0.1:${s.httpPort}/v1/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(params).toString() });
        return { status: r.status, body: (await r.json()) as Record<string, unknown> };
      };
      const good = await post({ grant_type: 'password', username: 'dee', password: 'dee-secret-1' });
      expect(good.status).toBe(200);
      for (let i = 0; i < 5; i++) expect((await post({ grant_type: 'refresh_token', refresh_token: `pcr_${i}guess` })).body.error).toBe('invalid_grant');
      expect(await post({ grant_type: 'password', username: 'dee', password: 'dee-secret-1' })).toMatchObject({ status: 400, body: { error: 'invalid_grant' } });
      expect((await post({ grant_type: 'refresh_token', refresh_token: good.body.refresh_token as string })).status).toBe(400);
      at += 61 * 60_000; // the lock is over: the refresh token was not spent by the refused attempt
      expect((await post({ grant_type: 'refresh_token', refresh_token: good.body.refresh_token as string })).status).toBe(200);
    } finally {
      await s.close();
    }
  });

  it('counts requests per address against the rate limit', async () => {
    const s = await startTestServer({ httpPort: 0, rateLimit: { perMinute: 3 } });
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 4; i++) {
        const r = await fetch(`http://127.0.0.1:${s.httpPort}/v1/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'grant_type=refresh_token&refresh_token=x' });
        statuses.push(r.status);
        expect(r.headers.get('x-ratelimit-limit')).toBe('3');
      }
      expect(statuses).toEqual([400, 400, 400, 429]);
    } finally {
      await s.close();
    }
  });
});

describe('10,000 refresh attempts with random strings', () => {
  it('are rate-limited and all answered alike; the real refresh token is neither spent nor revoked', async () => {
    let at = Date.UTC(2026, 5, 1, 12);
    const lines: string[] = [];
    // The default lockout and rate-limit policies, as `portcullis serve` has them.
    const s = await startTestServer({ clock: () => at, httpPort: 0, log: (l) => lines.push(l) });
    try {
      const admin = await client(s.port);
      await admin.query(`CREATE USER fay WITH PASSWORD 'fay-secret-1'`);
      await admin.end();
      const post = async (params: Record<string, string>) => {
        const r = await fetch(`http://127.0.0.1:${s.httpPort}/v1/token`, { method: 'POST', body: new URLSearchParams(params) });
        return { status: r.status, text: await r.text() };
      };
      const good = JSON.parse((await post({ grant_type: 'password', username: 'fay', password: 'fay-secret-1' })).text) as { refresh_token: string };
      const real = good.refresh_token;
      const flip = (t: string, i: number) => t.slice(0, i) + (t[i] === 'A' ? 'B' : 'A') + t.slice(i + 1);
      // Random well-formed tokens, near misses of the real one, random text, the real one cut short.
      const attempts = Array.from({ length: 10_000 }, (_, i) => {
        switch (i % 4) {
          case 0:
            return 'pcr_' + randomBytes(32).toString('base64url');
          case 1:
            return flip(real, 4 + (i % (real.length - 4)));
          case 2:
            return randomBytes(1 + (i % 97)).toString('base64url');
          default:
            return real.slice(0, 4 + (i % (real.length - 4)));
        }
      });
      const answers = (await pipelinedPosts(s.httpPort!, '/v1/token', attempts.map((t) => new URLSearchParams({ grant_type: 'refresh_token', refresh_token: t }).toString()))).map((r) => ({ status: r.status, text: r.body }));
      const by = (status: number) => answers.filter((a) => a.status === status);
      // The password grant took one request of the address's minute; 999 more were heard, the rest refused unread.
      expect(by(400)).toHaveLength(999);
      expect(by(429)).toHaveLength(9001);
      expect(new Set(by(400).map((a) => a.text))).toEqual(new Set(['{"error":"invalid_grant","error_description":"the credential was refused"}']));
      expect(new Set(by(429).map((a) => a.text)).size).toBe(1);
      const log = lines.join('\n');
      expect(log).not.toContain('pcr_');
      for (const t of attempts.slice(0, 400)) if (t.length >= 8) expect(log).not.toContain(t);

      at += 2 * 60_000; // past the address's lockout and the minute's window
      expect((await post({ grant_type: 'refresh_token', refresh_token: real })).status).toBe(200);
    } finally {
      await s.close();
    }
  });
});

describe('expired token rows', () => {
  it('are removed as the owner is given new tokens', async () => {
    const admin = await client(server.port);
    await admin.query(`CREATE USER eve WITH PASSWORD 'eve-secret-1'`);
    await admin.end();
    const rows = () => server.engine.catalog.issuedTokensOf('user', server.engine.catalog.userByName('eve')!.id).length;
    await login('eve', 'eve-secret-1');
    await login('eve', 'eve-secret-1');
    expect(rows()).toBe(2);
    const saved = now;
    try {
      now += 16 * 60_000; // both access tokens expired
      await login('eve', 'eve-secret-1');
      // The sweep commits right after the grant's, so it is in before the next grant's.
      await login('eve', 'eve-secret-1');
      expect(rows()).toBe(2);
    } finally {
      now = saved;
    }
  });
});
