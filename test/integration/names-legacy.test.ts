import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatVerifier, makeVerifier } from '../../src/auth/verifier.js';
import type { SnapshotPart } from '../../src/catalog/catalog.js';
import type { Database, Tenant, User } from '../../src/catalog/model.js';
import type { RowChunk } from '../../src/catalog/table.js';
import type { RunningServer } from '../../src/server.js';
import { LogStore } from '../../src/store/log-store.js';
import { cli } from '../support/cli.js';
import { ADMIN_PASSWORD, client, loginError, startTestServer } from '../support/server.js';

/**
 * A data directory written before names were checked (SPEC §2): its snapshot holds two
 * users that read `admin` and one whose name ends with a space, and carries no look-alike
 * index. Start-up must not fail, both keep working, and only new names are checked.
 */

const SPOOF = '\u0430dmin'; // a Cyrillic а
const NOW = Date.UTC(2026, 0, 1);

/** A snapshot chunk as this build's predecessor wrote it: only the indexes it had. */
function oldChunk(rows: { id: number }[], key: (r: never) => string, indexes: [string, (r: never) => string | number][] = []): RowChunk {
  const json = rows.map((r) => Buffer.from(JSON.stringify(r), 'utf8'));
  return {
    indexes: indexes.map(([name]) => name),
    keys: rows.flatMap((r, i) => [r.id, json[i]!.length, key(r as never), ...indexes.map(([, of]) => of(r as never))]),
    rows: Buffer.concat(json),
  };
}

async function writeOldDataDir(dir: string): Promise<void> {
  const verifier = formatVerifier(await makeVerifier(ADMIN_PASSWORD, 4096));
  const spoofVerifier = formatVerifier(await makeVerifier('spoof', 4096));
  const user = (id: number, name: string, v: string): User => ({
    id, name, tenantId: 1, role: 'superuser', verifier: v, login: true, validUntil: null, connectionLimit: -1,
    certificateSubject: null, createdAt: NOW, updatedAt: NOW, createdBy: null,
  });
  const tenants: Tenant[] = [{ id: 1, name: 'default', createdAt: NOW }];
  const databases: Database[] = [{ id: 2, tenantId: 1, name: 'default', createdAt: NOW }];
  const users = [user(3, 'admin', verifier), user(4, SPOOF, spoofVerifier), user(5, 'bob ', spoofVerifier)];
  const image: SnapshotPart[] = [
    { init: { op: 'init', serverSecret: 'ab'.repeat(32), at: NOW, nextId: 10 } },
    { table: 'tenants', ...oldChunk(tenants, (t: Tenant) => t.name) },
    { table: 'databases', ...oldChunk(databases, (d: Database) => `0000000001/${d.name}`, [['tenant', (d: Database) => d.tenantId]]) },
    { table: 'users', ...oldChunk(users, (u: User) => u.name) },
  ];
  const store = new LogStore(dir, () => {});
  await store.load(() => {}, () => {});
  await store.compact(image);
  await store.close();
}

let dir: string;
let server: RunningServer;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'names-legacy-'));
  await writeOldDataDir(path.join(dir, 'data'));
  server = await startTestServer({ dataDir: path.join(dir, 'data') });
});
afterAll(async () => {
  await server?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('a catalog that already holds look-alike names', () => {
  it('starts, and both users keep logging in and being altered', async () => {
    expect(await loginError(server.port, SPOOF, 'spoof')).toBeNull();
    const c = await client(server.port);
    try {
      expect((await c.query('SHOW USERS')).rows.map((r) => r.name)).toEqual(['admin', 'bob ', SPOOF]);
      await c.query(`ALTER USER "${SPOOF}" CONNECTION LIMIT 2; ALTER USER "bob " NOLOGIN`);
    } finally {
      await c.end();
    }
  });

  it('checks new names against all of them, from the index rebuilt at load', async () => {
    const c = await client(server.port);
    try {
      await expect(c.query('CREATE USER "ADMIN"')).rejects.toMatchObject({ code: '42710', message: expect.stringMatching(/^user "ADMIN" looks like existing user "(admin|\u0430dmin)"$/) });
      // A rename of one of the pair is a new name too: it may not look like the other.
      await expect(c.query(`ALTER USER "${SPOOF}" RENAME TO "${SPOOF.toUpperCase()}"`)).rejects.toMatchObject({
        code: '42710',
        message: `user "${SPOOF.toUpperCase()}" looks like existing user "admin"`,
      });
      await expect(c.query('CREATE USER "BOB "')).rejects.toMatchObject({ code: '22023', message: 'user name "BOB " ends with white space' });
      await c.query('CREATE USER bob');
    } finally {
      await c.end();
    }
  });

  it('dumps into a script that apply restores as it was (a restore brings old names back)', async () => {
    const dump = await cli(['dump', '--url', `postgresql://admin:${ADMIN_PASSWORD}@127.0.0.1:${server.port}/default`]);
    expect(dump.stderr).toBe('');
    const file = path.join(dir, 'dump.sql');
    await writeFile(file, dump.stdout);
    const restored = path.join(dir, 'restored');
    const apply = await cli(['apply', '--data', restored, file], '', { env: { PORTCULLIS_BOOTSTRAP_PASSWORD: ADMIN_PASSWORD } });
    expect(apply.stderr).toBe('');
    expect(apply.code).toBe(0);
    expect((await cli(['dump', '--data', restored])).stdout).toBe(dump.stdout);
  });
});
