import { spawn } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { golden } from '../../src/golden/golden.js';
import { dumpStatements } from '../../src/engine/dump.js';
import { parseKey } from '../../src/auth/apikey.js';
import type { RunningServer } from '../../src/server.js';
import { useCatalogPostgres } from '../support/catalog-postgres.js';
import { cli } from '../support/cli.js';
import { ADMIN_PASSWORD, client, loginError, ROOT, spawnServer, startTestServer } from '../support/server.js';

/**
 * The tools on a catalog in PostgreSQL: golden files against an instance of it (as against
 * serve --memory), dump and apply with --catalog, and a catalog moved from a data
 * directory with `portcullis dump --data d | portcullis apply --catalog URL` — its token
 * issuer's keys and tokens included.
 */
const cat = useCatalogPostgres('tools');
const dirs: string[] = [];

afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

const FIXTURES = path.join(ROOT, 'fixtures');

describe('golden --server against an instance on --catalog', () => {
  it('every fixture prints its expected file, as on serve --memory --deterministic; the catalog it leaves, read back by a new instance, dumps the same', async () => {
    const files = (await readdir(FIXTURES)).filter((f) => f.endsWith('.sql')).sort();
    expect(files.length).toBeGreaterThan(10);
    const failed: string[] = [];
    const differ: string[] = [];
    for (const f of files) {
      // A fresh catalog per file, as the in-process runner gives each file a fresh engine (and a data plane of its own, in memory).
      const catalog = await cat.freshCatalog();
      const s = await startTestServer({ catalog, deterministic: true, bootstrapPassword: '', dataPlane: 'embedded' });
      try {
        const [o] = await golden([path.join(FIXTURES, f)], { update: false, jobs: 1, server: `postgres://admin:portcullis@127.0.0.1:${s.port}/default`, colour: false, write: () => {} });
        if (o!.status !== 'passed') failed.push(`${f}\n${o!.diff}`);
      } finally {
        await s.close();
      }
      // What PostgreSQL holds is the whole catalog the file made (every table, as dumped).
      const again = await startTestServer({ catalog });
      const dump = (r: RunningServer) => [...dumpStatements(r.engine.catalog, (k, p) => r.engine.lastUsed(k, p))].join('\n');
      if (dump(again) !== dump(s)) differ.push(f);
      await again.close();
    }
    expect(failed).toEqual([]);
    expect(differ).toEqual([]);
  }, 120_000);

  it('serve --catalog --deterministic refuses a catalog that already holds commits', async () => {
    const catalog = await cat.freshCatalog();
    const first = await startTestServer({ catalog });
    await first.close();
    await expect(startTestServer({ catalog, deterministic: true, bootstrapPassword: '' })).rejects.toThrow('--deterministic with --catalog needs an empty catalog');
  });
});

/** `sh -c script` with the CLI as $PORTCULLIS: exit code and output. */
function shell(script: string, env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn('sh', ['-c', script], { env: { ...process.env, PORTCULLIS: `${process.execPath} ${path.join(ROOT, 'bin/portcullis.js')}`, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

const ISSUER = 'https://id.example.test';

async function tokenRequest(s: RunningServer, params: Record<string, string>): Promise<{ status: number; body: Record<string, unknown> }> {
  const r = await fetch(`http://127.0.0.1:${s.httpPort}/v1/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(params).toString() });
  return { status: r.status, body: (await r.json()) as Record<string, unknown> };
}

const whoami = async (s: RunningServer, bearer: string) => (await fetch(`http://127.0.0.1:${s.httpPort}/v1/whoami`, { headers: { authorization: `Bearer ${bearer}` } })).status;

describe('moving a catalog: portcullis dump --data d | portcullis apply --catalog URL', () => {
  it('brings users, grants, keys, the tokens issued and the keys that verify them across; dump --catalog then prints the same dump', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'pcu-move-'));
    dirs.push(dir);
    const data = path.join(dir, 'data');
    // The source: a data directory with a bit of everything, tokens issued over HTTP and SQL.
    const src = await startTestServer({ dataDir: data, httpPort: 0, issuer: { url: ISSUER } });
    const admin = await client(src.port);
    await admin.query(`CREATE USER quinn WITH PASSWORD 'q-secret-1' ROLE readwrite`);
    await admin.query(`CREATE DATABASE sales`);
    await admin.query(`CREATE TENANT acme`);
    await admin.query(`GRANT READ ON DATABASE sales TO quinn`);
    await admin.query(`GRANT SCOPE 'orders:read' TO quinn`);
    const key = (await admin.query(`CREATE API KEY 'ci' FOR quinn SCOPES ('orders:read')`)).rows[0].key as string;
    const viaPassword = await tokenRequest(src, { grant_type: 'password', username: 'quinn', password: 'q-secret-1' });
    expect(viaPassword.status).toBe(200);
    await admin.query(`ALTER TOKEN ISSUER ROTATE KEY GRACE '1 hour'`); // a retiring key and a current one
    const viaKey = await tokenRequest(src, { grant_type: 'api_key', api_key: key });
    expect(viaKey.status).toBe(200);
    const minted = (await admin.query(`CREATE TOKEN FOR quinn ROLE readonly EXPIRES IN '1 hour'`)).rows[0].token as string;
    const revoked = (await admin.query(`CREATE TOKEN FOR quinn EXPIRES IN '1 hour'`)).rows[0];
    await admin.query(`REVOKE TOKEN '${revoked.jti as string}'`);
    const jwks = await (await fetch(`http://127.0.0.1:${src.httpPort}/.well-known/jwks.json`)).json();
    await admin.end();
    await src.close();

    const catalog = await cat.freshCatalog();
    const moved = await shell(`$PORTCULLIS dump --data "$DATA" | $PORTCULLIS apply --catalog "$CATALOG"`, { DATA: data, CATALOG: catalog, PORTCULLIS_BOOTSTRAP_PASSWORD: 'another-one' });
    expect(moved.stderr).toBe('');
    expect(moved.code).toBe(0);
    expect(moved.stdout).toMatch(/^applied 1 file, \d+ statements in /);

    // The same catalog on both sides, byte for byte (ids, times, hashes, the issuer's state).
    const before = await cli(['dump', '--data', data]);
    const after = await cli(['dump', '--catalog', catalog]);
    expect(after.code).toBe(0);
    expect(after.stdout).toBe(before.stdout);
    expect(after.stdout).toContain('ALTER TOKEN ISSUER ROTATE KEY IMPORT');
    expect(after.stdout).toContain('refresh_hash = ');
    // Public halves only: the private half never leaves the catalog that made it.
    expect(after.stdout).not.toMatch(/"d"\s*:/);

    // And it works there: passwords (the bootstrap superuser's too), the key, the tokens.
    const dst = await startTestServer({ catalog, httpPort: 0, issuer: { url: ISSUER } });
    try {
      expect(await loginError(dst.port, 'admin', ADMIN_PASSWORD)).toBeNull();
      expect(await loginError(dst.port, 'quinn', 'q-secret-1')).toBeNull();
      expect(await loginError(dst.port, `pcu_${parseKey(key)!.keyId}`, key)).toBeNull();
      // The moved keys, and one of its own it made to sign with (a JWKS always names the current key).
      const published = ((await (await fetch(`http://127.0.0.1:${dst.httpPort}/.well-known/jwks.json`)).json()) as { keys: unknown[] }).keys;
      expect(published).toEqual(expect.arrayContaining((jwks as { keys: unknown[] }).keys));
      expect(published).toHaveLength((jwks as { keys: unknown[] }).keys.length + 1);
      expect(await whoami(dst, viaPassword.body.access_token as string)).toBe(200); // signed by the retiring key
      expect(await whoami(dst, viaKey.body.access_token as string)).toBe(200);
      expect(await whoami(dst, minted)).toBe(200);
      expect(await whoami(dst, revoked.token as string)).toBe(401);
      const refreshed = await tokenRequest(dst, { grant_type: 'refresh_token', refresh_token: viaKey.body.refresh_token as string });
      expect(refreshed.status).toBe(200);
      // Signed by a key of the new catalog's own (the moved ones only verify).
      expect(await whoami(dst, refreshed.body.access_token as string)).toBe(200);
      const kids = (jwks as { keys: { kid: string }[] }).keys.map((k) => k.kid);
      const a = await client(dst.port);
      const issuer = (await a.query('SHOW TOKEN ISSUER')).rows;
      await a.end();
      expect(issuer.filter((r) => r.status === 'current').map((r) => kids.includes(r.kid))).toEqual([false]);
      expect(issuer.filter((r) => r.status === 'retiring').map((r) => r.kid).sort()).toEqual([...kids].sort());
      // The used refresh token is still single-use there.
      const c = new pg.Client({ host: '127.0.0.1', port: dst.port, user: 'quinn', password: 'q-secret-1', database: 'default' });
      await c.connect();
      expect((await c.query('SELECT current_user AS u')).rows).toEqual([{ u: 'quinn' }]);
      await c.end();
    } finally {
      await dst.close();
    }
  }, 60_000);

  it('apply --catalog and dump --catalog work beside a running instance; PORTCULLIS_CATALOG stands for --catalog', async () => {
    const catalog = await cat.freshCatalog();
    const s = await startTestServer({ catalog });
    try {
      const r = await cli(['apply'], "CREATE USER rory PASSWORD 'r';\nCREATE ROLE ops;\n", { env: { PORTCULLIS_CATALOG: catalog } });
      expect(r.stderr).toBe('');
      expect(r.stdout).toMatch(/^applied 1 file, 2 statements in /);
      expect(await loginError(s.port, 'rory', 'r')).toBeNull(); // heard by the running instance
      const d = await cli(['dump', '--catalog', catalog]);
      expect(d.stdout).toContain(`CREATE USER rory WITH PASSWORD 'SCRAM-SHA-256$`);
      const bad = await cli(['apply', '--catalog', catalog], 'CREATE ROLE ops;\n');
      expect(bad.code).toBe(1);
      expect(bad.stderr).toContain('<stdin>:1:13: 42710 role "ops" already exists');
    } finally {
      await s.close();
    }
  });
});

describe('serve --catalog and the data plane', () => {
  it('has none unless --upstream names one (an embedded one would be each instance\'s own, in memory), and refuses --data-plane embedded', async () => {
    const catalog = await cat.freshCatalog();
    const refused = await cli(['serve', '--catalog', catalog, '--data-plane', 'embedded']);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('--catalog cannot be used with --data-plane embedded');
    const p = await spawnServer(['--catalog', catalog]);
    try {
      const c = await client(p.port);
      await expect(c.query('CREATE TABLE t (a int)')).rejects.toMatchObject({ code: '0A000' });
      await c.end();
    } finally {
      await p.stop();
    }
  });
});

