import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readKeyFile } from '../../src/store/cipher.js';
import { useCatalogPostgres } from '../support/catalog-postgres.js';
import { cli } from '../support/cli.js';
import { client, loginError, startTestServer } from '../support/server.js';

/**
 * Encryption at rest for a catalog in PostgreSQL: with --encryption-key-file, the rows of
 * portcullis.commits (verifiers, key hashes, the server secret) are sealed; a missing or
 * wrong key, a plain catalog given a key, and a row moved over another commit's number are
 * refused at start with what to do; dump and apply take the key too.
 */
const cat = useCatalogPostgres('sealed');
let root: string;
let k1: string;
let k2: string;

beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'pcu-catenc-'));
  k1 = path.join(root, 'k1');
  k2 = path.join(root, 'k2');
  await writeFile(k1, `${randomBytes(32).toString('hex')}\n`);
  await writeFile(k2, `${randomBytes(32).toString('hex')}\n`);
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

async function rows(catalog: string): Promise<{ seq: string; mutations: string }[]> {
  const c = new pg.Client({ connectionString: catalog });
  await c.connect();
  try {
    return (await c.query('SELECT seq::text, mutations::text FROM portcullis.commits ORDER BY seq')).rows;
  } finally {
    await c.end();
  }
}

async function onCatalog(catalog: string, sql: string): Promise<void> {
  const c = new pg.Client({ connectionString: catalog });
  await c.connect();
  await c.query(sql).finally(() => c.end());
}

/** The error an instance fails to start with. */
async function refusal(catalog: string, keyFile: string | null): Promise<string> {
  try {
    const s = await startTestServer({ catalog, encryption: keyFile === null ? null : readKeyFile(keyFile), log: () => {} });
    await s.close();
    return 'started';
  } catch (err) {
    return (err as Error).message;
  }
}

describe('a catalog in PostgreSQL, encrypted at rest', () => {
  it('seals every commit: no name, verifier or change kind in the rows; the key opens it again', async () => {
    const catalog = await cat.freshCatalog();
    const a = await cat.instance(catalog, { encryption: readKeyFile(k1) });
    const admin = await client(a.port);
    await admin.query("CREATE USER zebra_person_8812 WITH PASSWORD 'zebra secret' ROLE readwrite");
    await admin.end();
    await cat.stop(a);
    const all = await rows(catalog);
    expect(all.length).toBeGreaterThan(1);
    const text = all.map((r) => r.mutations).join('\n');
    for (const needle of ['zebra_person_8812', 'SCRAM-SHA-256', 'CreateUser', 'admin', 'secret']) expect(text).not.toContain(needle);
    for (const r of all) expect(JSON.parse(r.mutations)).toEqual({ sealed: expect.any(String), key: expect.stringMatching(/^[0-9a-f]{8}$/) });
    const again = await cat.instance(catalog, { encryption: readKeyFile(k1) });
    expect(await loginError(again.port, 'zebra_person_8812', 'zebra secret')).toBeNull();
  });

  it('refuses to start without the key, with another key, and a plain catalog given a key; each says what to do', async () => {
    const sealed = await cat.freshCatalog();
    await cat.stop(await cat.instance(sealed, { encryption: readKeyFile(k1) }));
    expect(await refusal(sealed, null)).toMatch(/^commit 1 of the catalog in PostgreSQL is encrypted \(key id [0-9a-f]{8}\); start with --encryption-key-file FILE/);
    expect(await refusal(sealed, k2)).toMatch(/is encrypted with key id [0-9a-f]{8}, but the key given has id [0-9a-f]{8}: wrong encryption key/);

    const plain = await cat.freshCatalog();
    await cat.stop(await cat.instance(plain));
    expect(await refusal(plain, k1)).toContain('is not encrypted, but an encryption key was given; start without --encryption-key-file, or move the catalog');
    expect(await refusal(plain, null)).toBe('started');
  });

  it('a sealed row copied over another commit does not open: the instance refuses to start rather than load it', async () => {
    const catalog = await cat.freshCatalog();
    const a = await cat.instance(catalog, { encryption: readKeyFile(k1) });
    const admin = await client(a.port);
    await admin.query("CREATE USER first_one PASSWORD 'p1'");
    await admin.query("CREATE USER second_one PASSWORD 'p2'");
    await admin.end();
    await cat.stop(a);
    const last = (await rows(catalog)).at(-1)!;
    await onCatalog(catalog, `UPDATE portcullis.commits SET mutations = (SELECT mutations FROM portcullis.commits WHERE seq = ${Number(last.seq) - 1}) WHERE seq = ${last.seq}`);
    expect(await refusal(catalog, k1)).toBe(`commit ${last.seq} of the catalog in PostgreSQL does not open with key id ${JSON.parse(last.mutations).key}: it was altered or moved from another commit's row`);
  });

  it('dump --catalog takes the key; a plain catalog moves into an encrypted one with dump | apply --encryption-key-file', async () => {
    const plain = await cat.freshCatalog();
    const a = await cat.instance(plain);
    const admin = await client(a.port);
    await admin.query("CREATE USER mover WITH PASSWORD 'mover pw' ROLE readwrite");
    await admin.end();
    await cat.stop(a);
    const dump = await cli(['dump', '--catalog', plain]);
    expect(dump.code, dump.stderr).toBe(0);
    const sealed = await cat.freshCatalog();
    const applied = await cli(['apply', '--catalog', sealed, '--encryption-key-file', k1], dump.stdout);
    expect(applied.code, applied.stderr).toBe(0);
    expect((await rows(sealed)).map((r) => r.mutations).join('\n')).not.toContain('mover');
    const refused = await cli(['dump', '--catalog', sealed]);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain('is encrypted (key id');
    const again = await cli(['dump', '--catalog', sealed, '--encryption-key-file', k1]);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toContain('mover');
    const b = await cat.instance(sealed, { encryption: readKeyFile(k1) });
    expect(await loginError(b.port, 'mover', 'mover pw')).toBeNull();
  });
});
