import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULTS, resolveConfig } from '../../src/config/config.js';
import { JwksServer, mint, signingKey, type SigningKey } from '../support/jwks-server.js';
import { RawClient } from '../support/raw-client.js';
import { ADMIN_PASSWORD, client, ROOT, spawnServer, type ServerProcess } from '../support/server.js';

/**
 * `portcullis serve` started with no settings at all applies the defaults README.md
 * documents: what an operator gets is observed on the real process, not read from the
 * engine's constants (tests that start the server in-process never go through the
 * command line's defaults).
 */

/** `portcullis serve --memory --port 0 --http-port 0`, and no PORTCULLIS_* of the caller's environment. */
async function serveWithNoSettings(): Promise<{ server: ServerProcess; httpPort: number }> {
  const blank = Object.fromEntries(Object.keys(process.env).filter((k) => k.startsWith('PORTCULLIS_')).map((k) => [k, '']));
  const server = await spawnServer(['--memory', '--http-port', '0'], { ...blank, PORTCULLIS_BOOTSTRAP_PASSWORD: ADMIN_PASSWORD });
  const m = /and [^ ]+:(\d+) \(http\)/.exec(server.stderr());
  if (!m) throw new Error(`no HTTP port in: ${server.stderr()}`);
  return { server, httpPort: Number(m[1]) };
}

/** One SCRAM login over pgwire from source address `from`: its SQLSTATE, or null when it succeeds. */
async function login(port: number, user: string, password: string, from: string): Promise<string | null> {
  const { c } = await RawClient.authenticate(port, { user }, password, from);
  try {
    const m = await Promise.race([c.until('authenticationOk').then(() => null), c.until('error')]);
    return m ? (m as unknown as { code: string }).code : null;
  } catch {
    return ((await c.until('error')) as unknown as { code: string }).code;
  } finally {
    c.end();
  }
}

describe('serve with no settings: lockouts and rate limits', () => {
  let server: ServerProcess;
  let httpPort: number;
  let key: string;

  beforeAll(async () => {
    ({ server, httpPort } = await serveWithNoSettings());
    const c = await client(server.port);
    await c.query("CREATE USER bob PASSWORD 'right'; CREATE USER carol PASSWORD 'right'");
    key = (await c.query("CREATE API KEY 'k' FOR bob")).rows[0].key as string;
    await c.end();
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('lockout_ip_failures = 20: 19 failures from an address still let it in, the 20th locks it out', async () => {
    for (let i = 0; i < 19; i++) expect(await login(server.port, `nobody${i}`, 'wrong', '127.0.0.2')).toBe('28P01');
    expect(await login(server.port, 'bob', 'right', '127.0.0.2')).toBeNull();
    expect(await login(server.port, 'nobody19', 'wrong', '127.0.0.2')).toBe('28P01');
    // The 21st attempt, with the right password, is refused like a wrong one; another address is not.
    expect(await login(server.port, 'bob', 'right', '127.0.0.2')).toBe('28P01');
    expect(await login(server.port, 'bob', 'right', '127.0.0.3')).toBeNull();
  });

  it('lockout_user_failures = 10: 9 failures in a row still let a user in, 10 lock the name from any address', async () => {
    for (let i = 0; i < 9; i++) expect(await login(server.port, 'carol', 'wrong', '127.0.0.4')).toBe('28P01');
    expect(await login(server.port, 'carol', 'right', '127.0.0.4')).toBeNull(); // ends the run
    for (let i = 0; i < 10; i++) expect(await login(server.port, 'carol', 'wrong', '127.0.0.4')).toBe('28P01');
    expect(await login(server.port, 'carol', 'right', '127.0.0.5')).toBe('28P01');
  });

  it('rate_limit_per_minute = 1000: the 1,001st request of a key in a minute gets 429', async () => {
    const whoami = () => fetch(`http://127.0.0.1:${httpPort}/v1/whoami`, { headers: { 'x-api-key': key } });
    const first = await whoami();
    expect(first.status).toBe(200);
    expect(first.headers.get('x-ratelimit-limit')).toBe('1000');
    expect(first.headers.get('x-ratelimit-remaining')).toBe('999');
    const statuses: number[] = [];
    for (let batch = 0; batch < 999; batch += 111) {
      const rs = await Promise.all(Array.from({ length: 111 }, () => whoami()));
      for (const r of rs) {
        statuses.push(r.status);
        await r.body?.cancel();
      }
    }
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
    const over = await whoami();
    expect(over.status).toBe(429);
    expect(over.headers.get('x-ratelimit-limit')).toBe('1000');
  });
});

describe('serve with no settings: token and JWKS figures', () => {
  const AUD = 'api';
  let server: ServerProcess;
  let inline: SigningKey;
  let key: SigningKey;
  const jwksServers: JwksServer[] = [];

  /** A provider whose JWKS is served over loopback HTTP by a JwksServer of its own. */
  async function fetchedProvider(name: string): Promise<JwksServer> {
    const j = await JwksServer.start([key]);
    jwksServers.push(j);
    const c = await client(server.port);
    await c.query(`CREATE OIDC PROVIDER ${name} WITH (issuer = '${j.issuer}', jwks_url = '${j.jwksUrl}', audience = '${AUD}')`);
    await c.end();
    return j;
  }

  const token = (k: SigningKey, issuer: string, o: { nowMs?: number; expiresInS?: number; pad?: string } = {}) =>
    mint(k, { sub: 'u-1', preferred_username: 'tess', ...(o.pad ? { pad: o.pad } : {}) }, { nowMs: o.nowMs ?? Date.now(), issuer, audience: AUD, expiresInS: o.expiresInS });

  /** A token login over pgwire (the token as the password of jwt:<provider>): its SQLSTATE, or null. */
  async function tokenLogin(provider: string, t: string): Promise<string | null> {
    const c = new pg.Client({ host: '127.0.0.1', port: server.port, user: `jwt:${provider}`, password: t, database: 'default' });
    c.on('error', () => {});
    try {
      await c.connect();
      await c.end();
      return null;
    } catch (err) {
      return (err as { code?: string }).code ?? String(err);
    }
  }

  beforeAll(async () => {
    [inline, key] = await Promise.all([signingKey('k-inline', 'ES256'), signingKey('k-fetched', 'ES256')]);
    ({ server } = await serveWithNoSettings());
    const c = await client(server.port);
    const jwks = JSON.stringify({ keys: [inline.publicJwk] });
    await c.query(`CREATE OIDC PROVIDER acme WITH (issuer = 'https://issuer.example/', jwks = '${jwks}', audience = '${AUD}')`);
    await c.end();
  });
  afterAll(async () => {
    await server?.stop();
    await Promise.all(jwksServers.map((j) => j.close()));
  });

  it('jwt_clock_skew = 60: a token expired 50 s ago is accepted, one expired 70 s ago is not', async () => {
    const now = Date.now();
    expect(await tokenLogin('acme', await token(inline, 'https://issuer.example/', { nowMs: now - 120_000, expiresInS: 70 }))).toBeNull();
    expect(await tokenLogin('acme', await token(inline, 'https://issuer.example/', { nowMs: now - 140_000, expiresInS: 70 }))).toBe('28P01');
  });

  it('jwt_max_bytes = 8192: the longest token up to 8,192 bytes is accepted, the next longer one is not', async () => {
    // Token length grows with the padding claim in steps of 1 or 2 characters (base64url).
    const ofPad = (n: number) => token(inline, 'https://issuer.example/', { pad: 'x'.repeat(n) });
    let lo = 0;
    let hi = 8192;
    while (lo < hi) {
      const mid = Math.ceil((lo + hi) / 2);
      if ((await ofPad(mid)).length <= 8192) lo = mid;
      else hi = mid - 1;
    }
    const fits = await ofPad(lo);
    const over = await ofPad(lo + 1);
    expect(fits.length).toBeGreaterThanOrEqual(8190);
    expect(over.length).toBeGreaterThan(8192);
    expect(over.length).toBeLessThanOrEqual(8194);
    expect(await tokenLogin('acme', fits)).toBeNull();
    expect(await tokenLogin('acme', over)).toBe('28P01');
  });

  it('jwks_max_bytes = 1048576: a JWKS document of exactly 1 MiB is read, one byte more is refused', async () => {
    for (const [name, extra, expected] of [['exact', 0, null], ['over', 1, '28P01']] as const) {
      const j = await fetchedProvider(name);
      // Grow the key with a member JWK consumers ignore until the document is the size wanted.
      const padded = (n: number) => ({ ...key.publicJwk, pad: 'x'.repeat(n) }) as SigningKey['publicJwk'];
      const base = Buffer.byteLength(JSON.stringify({ keys: [padded(0)] }));
      j.keys = [{ ...key, publicJwk: padded(1024 * 1024 - base + extra) }];
      expect(Buffer.byteLength(JSON.stringify({ keys: j.keys.map((k) => k.publicJwk) }))).toBe(1024 * 1024 + extra);
      expect(await tokenLogin(name, await token(key, j.issuer))).toBe(expected);
      expect(j.fetches).toBe(1);
    }
  });

  it('jwks_breaker_failures = 5: after 5 failed fetches in a row the provider is not called again', async () => {
    const j = await fetchedProvider('flaky');
    j.down = true;
    for (let i = 0; i < 8; i++) expect(await tokenLogin('flaky', await token(key, j.issuer))).toBe('28P01');
    expect(j.fetches).toBe(5);
  });
});

describe('the defaults README.md documents are the defaults', () => {
  it('every setting of the README example shown with its default has that default', () => {
    const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    const block = /```toml\n([\s\S]*?)```/.exec(readme)?.[1];
    expect(block, 'README.md has a ```toml block').toBeDefined();
    const dir = mkdtempSync(path.join(os.tmpdir(), 'pcu-readme-'));
    const file = path.join(dir, 'portcullis.toml');
    writeFileSync(file, block!);
    // The README's example is a valid config file; its data directory is an example path.
    const documented = resolveConfig({}, {}, file);
    rmSync(dir, { recursive: true, force: true });
    expect({ ...documented, data: DEFAULTS.data }).toEqual(DEFAULTS);
  });
});
