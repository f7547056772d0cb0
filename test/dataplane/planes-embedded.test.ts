import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { EmbeddedPlane } from '../../src/dataplane/embedded.js';
import type { PlaneDatabase } from '../../src/dataplane/types.js';
import { decode, extended, serialize, simple, summary, untilReady } from './planes-support.js';

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

describe('embedded plane: COPY', () => {
  it('COPY FROM STDIN takes rows sent in later writes, and COPY TO STDOUT returns them', async () => {
    const lease = await plane.lease(db, {});
    try {
      expect(await simple(lease, 'CREATE TABLE c (id int, name text)')).toEqual(['complete CREATE TABLE', 'ready I']);
      lease.write(serialize.query('COPY c FROM STDIN'));
      const start = summary([decode(await lease.next())]);
      expect(start).toEqual(['copyInResponse']);
      lease.write(serialize.copyData(Buffer.from('1\tone\n')));
      lease.write(serialize.copyData(Buffer.from('2\ttwo\n')));
      lease.write(serialize.copyDone());
      expect(summary(await untilReady(lease))).toEqual(['complete COPY 2', 'ready I']);
      expect(await simple(lease, 'COPY c TO STDOUT')).toEqual(['copyOutResponse', 'copyData 1\tone\n', 'copyData 2\ttwo\n', 'copyDone', 'complete COPY 2', 'ready I']);
      // CopyFail ends it with PostgreSQL's error, and the connection goes on.
      lease.write(serialize.query('COPY c (id) FROM STDIN'));
      const cols = decode(await lease.next()) as unknown as { name: string; columnTypes: number[] };
      expect(cols.name).toBe('copyInResponse');
      expect(cols.columnTypes).toHaveLength(1);
      lease.write(Buffer.concat([serialize.copyData(Buffer.from('3\n')), serialize.copyFail('client gave up')]));
      expect(summary(await untilReady(lease))).toEqual(['error 57014', 'ready I']);
      expect(await simple(lease, 'SELECT count(*) FROM c')).toEqual(['rowDescription', 'row ["2"]', 'complete SELECT 1', 'ready I']);
    } finally {
      lease.release();
    }
  });

  it('COPY FROM STDIN through the extended protocol is refused with 0A000, the pipeline discarded until Sync', async () => {
    const lease = await plane.lease(db, {});
    try {
      lease.write(Buffer.concat([extended('SELECT 1'), extended('COPY c FROM STDIN'), extended('SELECT 2'), serialize.sync()]));
      expect(summary(await untilReady(lease))).toEqual(['parseComplete', 'bindComplete', 'rowDescription', 'row ["1"]', 'complete SELECT 1', 'error 0A000', 'ready I']);
    } finally {
      lease.release();
    }
  });
});

describe('embedded plane: turns', () => {
  it('a second session waits while the first is in a transaction; fresh flips between sessions', async () => {
    const alice = {};
    const bob = {};
    const a = await plane.lease(db, alice);
    expect(await simple(a, 'BEGIN; INSERT INTO t VALUES (3, $$c$$)')).toEqual(['complete BEGIN', 'complete INSERT 0 1', 'ready T']);
    let bobHasIt = false;
    const b = plane.lease(db, bob).then((l) => {
      bobHasIt = true;
      return l;
    });
    // Alice's transaction goes on while Bob waits.
    expect(await simple(a, 'SELECT count(*) FROM t')).toEqual(['rowDescription', 'row ["3"]', 'complete SELECT 1', 'ready T']);
    expect(bobHasIt).toBe(false);
    expect(await simple(a, 'COMMIT')).toEqual(['complete COMMIT', 'ready I']);
    a.release();
    const bl = await b;
    expect(bl.fresh).toBe(true);
    expect(await simple(bl, 'SELECT count(*) FROM t')).toEqual(['rowDescription', 'row ["3"]', 'complete SELECT 1', 'ready I']);
    bl.release();
    const again = await plane.lease(db, bob);
    expect(again.fresh, 'the same session again: not fresh').toBe(false);
    again.release();
    const back = await plane.lease(db, alice);
    expect(back.fresh).toBe(true);
    back.release();
  });

  it('a lease released inside a transaction is rolled back, not inherited', async () => {
    const a = await plane.lease(db, {});
    expect(await simple(a, 'BEGIN; DELETE FROM t')).toEqual(['complete BEGIN', 'complete DELETE 3', 'ready T']);
    a.release();
    const b = await plane.lease(db, {});
    try {
      expect(await simple(b, 'SELECT count(*) FROM t')).toEqual(['rowDescription', 'row ["3"]', 'complete SELECT 1', 'ready I']);
    } finally {
      b.release();
    }
  });

  it('a new database opens from the template fast', async () => {
    const second: PlaneDatabase = { tenantId: 1, databaseId: 2, tenantName: 'default', databaseName: 'second' };
    const started = performance.now();
    await plane.ensureDatabase(second);
    const ms = performance.now() - started;
    console.log(`embedded plane: template (initdb) ${plane.templateMs.toFixed(0)} ms, first database opened in ${plane.openTime(db).toFixed(0)} ms including it, second in ${ms.toFixed(0)} ms`);
    // initdb (seconds) ran once, for the template; the second database is a copy of it: the
    // same database system identifier (the first 8 bytes of pg_control, random per initdb).
    expect(plane.templateMs).toBeGreaterThan(0);
    expect(ms).toBeLessThan(plane.templateMs);
    const systemId = (d: string) => readFileSync(path.join(dir, 'plane', d, 'global', 'pg_control')).subarray(0, 8).toString('hex');
    expect(systemId('pcu_t1_d2')).toBe(systemId('.template'));
    // Separate databases: the first one's tables are not there.
    await expect(plane.withAdmin(second, (sql) => sql.exec('SELECT * FROM t'))).rejects.toMatchObject({ code: '42P01' });
    await plane.dropDatabase(second);
  });

  it('a long query runs in its own thread: the server and other databases go on meanwhile', async () => {
    const other: PlaneDatabase = { tenantId: 1, databaseId: 3, tenantName: 'default', databaseName: 'third' };
    await plane.ensureDatabase(other);
    const slow = await plane.lease(db, {});
    const fast = await plane.lease(other, {});
    try {
      let ticks = 0;
      const timer = setInterval(() => ticks++, 5);
      slow.write(serialize.query('SELECT count(*) FROM generate_series(1, 5000000)'));
      const slowDone = untilReady(slow).then(() => ticks);
      // Another database answers while the first one is still counting.
      expect(await simple(fast, 'SELECT 1')).toEqual(['rowDescription', 'row ["1"]', 'complete SELECT 1', 'ready I']);
      const ticksAtFast = ticks;
      const ticksAtSlow = await slowDone;
      clearInterval(timer);
      expect(ticksAtSlow, 'timers ran while the long query did').toBeGreaterThan(ticksAtFast + 5);
    } finally {
      slow.release();
      fast.release();
      await plane.dropDatabase(other);
    }
  });

  it('withAdmin ends its turn idle, even when its SQL left a transaction open', async () => {
    await plane.withAdmin(db, (sql) => sql.exec('BEGIN; DELETE FROM t'));
    const l = await plane.lease(db, {});
    try {
      expect(await simple(l, 'SELECT count(*) FROM t')).toEqual(['rowDescription', 'row ["3"]', 'complete SELECT 1', 'ready I']);
    } finally {
      l.release();
    }
  });

  it('a turn waiting for a database that is dropped meanwhile fails, and does not bring it back', async () => {
    const doomed: PlaneDatabase = { tenantId: 1, databaseId: 4, tenantName: 'default', databaseName: 'doomed' };
    await plane.ensureDatabase(doomed);
    const holder = await plane.lease(doomed, {});
    const dropped = plane.dropDatabase(doomed);
    const late = plane.lease(doomed, {});
    holder.release();
    await dropped;
    await expect(late).rejects.toThrow(/pcu_t1_d4 was dropped/);
    expect(existsSync(path.join(dir, 'plane', 'pcu_t1_d4'))).toBe(false);
  });

  it('an idle instance is closed and opens again, with its data, on the next lease', async () => {
    const held = await plane.lease(db, {});
    expect(await plane.closeIdle(0), 'a held instance stays open').toBe(0);
    held.release();
    await plane.withAdmin(db, async () => undefined);
    expect(await plane.closeIdle(0)).toBeGreaterThanOrEqual(1);
    expect(plane.openInstances).toBe(0);
    const b = await plane.lease(db, {});
    try {
      expect(b.fresh).toBe(true);
      expect(await simple(b, 'SELECT count(*) FROM t')).toEqual(['rowDescription', 'row ["3"]', 'complete SELECT 1', 'ready I']);
    } finally {
      b.release();
    }
  });

  it('a frame PGlite cannot survive is refused: next() rejects, the instance and its data stay', async () => {
    const a = await plane.lease(db, {});
    // A Sync longer than PostgreSQL's small-message limit: PostgreSQL drops the connection,
    // PGlite would loop forever.
    const big = Buffer.alloc(5 + 20_000);
    big.write('S', 0, 'latin1');
    big.writeInt32BE(4 + 20_000, 1);
    a.write(big);
    await expect(a.next()).rejects.toThrow(/refused to forward a "S" message of 20004 bytes/);
    a.release(true);
    const b = await plane.lease(db, {});
    try {
      expect(b.fresh).toBe(true);
      expect(await simple(b, 'SELECT count(*) FROM t')).toEqual(['rowDescription', 'row ["3"]', 'complete SELECT 1', 'ready I']);
    } finally {
      b.release();
    }
  });
});
