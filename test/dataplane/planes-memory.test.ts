import { afterAll, describe, expect, it } from 'vitest';
import { EmbeddedPlane } from '../../src/dataplane/embedded.js';
import type { PlaneDatabase } from '../../src/dataplane/types.js';
import { simple } from './planes-support.js';

/** The embedded plane with `memory: true` (--memory): databases from the cached template tarball, nothing on disk. */
const plane = new EmbeddedPlane({ memory: true });
const db: PlaneDatabase = { tenantId: 3, databaseId: 9, tenantName: 't', databaseName: 'd' };

afterAll(() => plane.close());

describe('embedded plane in memory', () => {
  it('opens a database from the template tarball, keeps its rows across turns, never closes it when idle', async () => {
    await plane.ensureDatabase(db);
    console.log(`in memory: template ${plane.templateMs.toFixed(0)} ms (0: cached), database opened in ${plane.openTime(db).toFixed(0)} ms`);
    const a = await plane.lease(db, {});
    expect(await simple(a, 'CREATE TABLE m (id int); INSERT INTO m VALUES (1), (2)')).toEqual(['complete CREATE TABLE', 'complete INSERT 0 2', 'ready I']);
    a.release();
    // A turn after it: the release is complete, the instance idle.
    await plane.withAdmin(db, async () => undefined);
    expect(await plane.closeIdle(0)).toBe(0);
    const b = await plane.lease(db, {});
    try {
      expect(await simple(b, 'SELECT count(*) FROM m')).toEqual(['rowDescription', 'row ["2"]', 'complete SELECT 1', 'ready I']);
    } finally {
      b.release();
    }
  }, 120_000);
});
