import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { EmbeddedPlane } from '../../src/dataplane/embedded.js';
import type { PlaneDatabase } from '../../src/dataplane/types.js';
import { extended, serialize, simple, summary, untilReady } from './planes-support.js';

/**
 * The embedded plane through its leases: raw protocol frames in, PostgreSQL's answers out,
 * against one PGlite instance (on disk, under a throwaway data directory) for the file.
 */
const dir = mkdtempSync(path.join(os.tmpdir(), 'planes-embedded-'));
const plane = new EmbeddedPlane({ dataDir: dir });
const db: PlaneDatabase = { tenantId: 1, databaseId: 1, tenantName: 'default', databaseName: 'default' };

beforeAll(async () => {
  await plane.ensureDatabase(db);
  await plane.withAdmin(db, (sql) => sql.exec("CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (1, 'a'), (2, 'b')"));
}, 120_000);

afterAll(async () => {
  await plane.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('embedded plane', () => {
  it('runs Parse/Bind/Describe/Execute/Sync through a lease and returns rows', async () => {
    const lease = await plane.lease(db, {});
    try {
      lease.write(Buffer.concat([extended('SELECT v FROM t WHERE id = $1', ['2']), serialize.sync()]));
      expect(summary(await untilReady(lease))).toEqual(['parseComplete', 'bindComplete', 'rowDescription', 'row ["b"]', 'complete SELECT 1', 'ready I']);
    } finally {
      lease.release();
    }
  });

  it('discards the rest of a pipeline after an error until Sync, then is idle', async () => {
    const lease = await plane.lease(db, {});
    try {
      lease.write(Buffer.concat([extended('SELECT 1 / (id - 1) FROM t WHERE id = 1'), extended('SELECT v FROM t WHERE id = 1')]));
      lease.write(serialize.sync());
      // The second statement is discarded (no second parseComplete), and the status is idle.
      expect(summary(await untilReady(lease))).toEqual(['parseComplete', 'bindComplete', 'rowDescription', 'error 22012', 'ready I']);
      expect(await simple(lease, 'SELECT 1')).toEqual(['rowDescription', 'row ["1"]', 'complete SELECT 1', 'ready I']);
    } finally {
      lease.release();
    }
  });

  it('reports the transaction status: T inside BEGIN, E after an error there', async () => {
    const lease = await plane.lease(db, {});
    try {
      expect(await simple(lease, 'BEGIN')).toEqual(['complete BEGIN', 'ready T']);
      expect(await simple(lease, 'SELECT 1/0')).toEqual(['error 22012', 'ready E']);
      expect(await simple(lease, 'ROLLBACK')).toEqual(['complete ROLLBACK', 'ready I']);
    } finally {
      lease.release();
    }
  });

  it('withAdmin runs portcullis SQL with text parameters and text results', async () => {
    const rows = await plane.withAdmin(db, (sql) => sql.query('SELECT id, v, $1::int + 1 AS n FROM t ORDER BY id', ['41']));
    expect(rows).toEqual([
      { id: '1', v: 'a', n: '42' },
      { id: '2', v: 'b', n: '42' },
    ]);
    await expect(plane.withAdmin(db, (sql) => sql.exec('SELECT * FROM missing'))).rejects.toMatchObject({ code: '42P01' });
  });
});
