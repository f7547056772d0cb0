import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readKeyFile } from '../../src/store/cipher.js';
import { cli } from '../support/cli.js';
import { JwksServer, mint, signingKey, type SigningKey } from '../support/jwks-server.js';
import { client, startTestServer } from '../support/server.js';

/**
 * Encryption at rest (issue 7): with --encryption-key-file, the catalog's log and snapshot,
 * the audit trail and the JWKS cache hold no plaintext; a missing or wrong key refuses to
 * start and says why; `portcullis rekey` moves a directory to a new key (or encrypts a
 * plaintext one), after which only the new key opens it.
 */
let root: string;
let k1: string;
let k2: string;
let jwks: SigningKey;
let jwksServer: JwksServer;

/** Names that must not appear in plaintext anywhere in an encrypted data directory. */
const NEEDLES = ['zebra_person_8812', 'yak_person_9931', 'okta_corp_5521', 'k-es256-enc', 'CreateUser'];

beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'pcu-enc-'));
  k1 = path.join(root, 'k1');
  k2 = path.join(root, 'k2');
  await writeFile(k1, `${randomBytes(32).toString('hex')}\n`);
  await writeFile(k2, randomBytes(32).toString('base64'));
  jwks = await signingKey('k-es256-enc', 'ES256');
  jwksServer = await JwksServer.start([jwks]);
});
afterAll(async () => {
  await jwksServer.close();
  await rm(root, { recursive: true, force: true });
});

async function filesOf(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...(await filesOf(p)));
    else out.push(p);
  }
  return out;
}

/** Which needles each file holds, searching its bytes (UTF-8 and UTF-16, as written). */
async function plaintextFound(dir: string, needles: string[]): Promise<string[]> {
  const hits: string[] = [];
  for (const f of await filesOf(dir)) {
    const bytes = await readFile(f);
    for (const n of needles) {
      if (bytes.includes(Buffer.from(n, 'utf8')) || bytes.includes(Buffer.from(n, 'utf16le'))) hits.push(`${path.relative(dir, f)}: ${n}`);
    }
  }
  return hits;
}

async function users(port: number): Promise<string[]> {
  const c = await client(port);
  try {
    return ((await c.query('SHOW USERS')).rows as { name: string }[]).map((r) => r.name);
  } finally {
    await c.end();
  }
}

const serve = (dir: string, extra: string[] = []) => cli(['serve', '--port', '0', '--http-port', 'off', '--data', dir, ...extra], '', { env: { PORTCULLIS_BOOTSTRAP_PASSWORD: 'x' } });

describe('encryption at rest', () => {
  const dir = () => path.join(root, 'data');

  it('an encrypted data directory holds no plaintext name: log, snapshot, audit trail, JWKS cache', async () => {
    const server = await startTestServer({ dataDir: dir(), encryption: readKeyFile(k1), httpPort: 0 });
    const c = await client(server.port);
    await c.query("CREATE USER zebra_person_8812 PASSWORD 'zebra-Secret-1'");
    await c.query(`CREATE OIDC PROVIDER okta_corp_5521 WITH (issuer = '${jwksServer.issuer}', jwks_url = '${jwksServer.jwksUrl}', audience = 'api')`);
    await c.end();
    // A token login fetches the provider's keys, and keeps them on disk.
    const token = await mint(jwks, { sub: 'u1' }, { nowMs: Date.now(), issuer: jwksServer.issuer, audience: 'api' });
    const r = await fetch(`http://127.0.0.1:${server.httpPort}/v1/whoami`, { headers: { authorization: `Bearer ${token}` } });
    expect(r.status).toBe(200);
    await server.engine.compact(); // the snapshot holds zebra_person_8812 …
    const c2 = await client(server.port);
    await c2.query("CREATE USER yak_person_9931 PASSWORD 'yak-Secret-2'"); // … and the log yak_person_9931
    await c2.end();
    await server.close();

    const files = (await filesOf(dir())).map((f) => path.relative(dir(), f)).sort();
    expect(files).toEqual(expect.arrayContaining(['audit.log', 'catalog.log', 'catalog.snapshot', expect.stringMatching(/^jwks\/okta_corp_5521\.jwks$/)]));
    expect(await plaintextFound(dir(), NEEDLES)).toEqual([]);

    // And it opens again with its key: everything is there.
    const again = await startTestServer({ dataDir: dir(), encryption: readKeyFile(k1) });
    expect(await users(again.port)).toEqual(expect.arrayContaining(['zebra_person_8812', 'yak_person_9931']));
    await again.close();
  });

  it('a missing key or a wrong key refuses to start, naming the file and the key ids', async () => {
    const missing = await serve(dir());
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/catalog\.snapshot is encrypted \(key id [0-9a-f]{8}\); start with --encryption-key-file FILE/);
    const wrong = await serve(dir(), ['--encryption-key-file', k2]);
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toMatch(/is encrypted with key id [0-9a-f]{8}, but the key given has id [0-9a-f]{8}: wrong encryption key/);
    await writeFile(path.join(root, 'short'), 'abc');
    const bad = await serve(dir(), ['--encryption-key-file', path.join(root, 'short')]);
    expect(bad.stderr).toMatch(/does not hold a 256-bit key/);
  });

  it('rekey round trip: the new key opens it, the old one no longer does, the audit chain is whole', async () => {
    const before = await cli(['audit', 'verify', '--data', dir(), '--encryption-key-file', k1]);
    expect(before.code).toBe(0);
    const r = await cli(['rekey', '--data', dir(), '--encryption-key-file', k1, '--new-key-file', k2]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const old = await serve(dir(), ['--encryption-key-file', k1]);
    expect(old.stderr).toMatch(/wrong encryption key/);
    const after = await cli(['audit', 'verify', '--data', dir(), '--encryption-key-file', k2]);
    expect(after.code).toBe(0);
    // Same records, same chain head: rekey re-seals, it never rewrites history.
    expect(after.stdout.replace(/^\S+: /, '')).toBe(before.stdout.replace(/^\S+: /, ''));
    const server = await startTestServer({ dataDir: dir(), encryption: readKeyFile(k2) });
    expect(await users(server.port)).toEqual(expect.arrayContaining(['zebra_person_8812', 'yak_person_9931']));
    await server.close();
    expect(await plaintextFound(dir(), NEEDLES)).toEqual([]);
  });

  it('rekey encrypts a plaintext data directory; a key given to a plaintext one is refused', async () => {
    const plain = path.join(root, 'plain');
    const server = await startTestServer({ dataDir: plain });
    const c = await client(server.port);
    await c.query('CREATE USER zebra_person_8812');
    await c.end();
    await server.close();
    expect((await plaintextFound(plain, ['zebra_person_8812'])).length).toBeGreaterThan(0);
    const refused = await serve(plain, ['--encryption-key-file', k1]);
    expect(refused.stderr).toMatch(/is not encrypted, but an encryption key was given; to encrypt an existing data directory, run: portcullis rekey/);
    const r = await cli(['rekey', '--data', plain, '--new-key-file', k1]);
    expect(r.code).toBe(0);
    expect(await plaintextFound(plain, ['zebra_person_8812'])).toEqual([]);
    const again = await startTestServer({ dataDir: plain, encryption: readKeyFile(k1) });
    expect(await users(again.port)).toContain('zebra_person_8812');
    await again.close();
  });
});
