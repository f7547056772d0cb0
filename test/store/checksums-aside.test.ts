import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { snapshotChunks, type SnapshotPart } from '../../src/catalog/catalog.js';
import type { User } from '../../src/catalog/model.js';
import { HEADER_SIZE, RECORD_HEADER } from '../../src/store/log-format.js';
import { LogStore } from '../../src/store/log-store.js';
import { checkAside, walkChecksums } from '../../src/store/checksums.js';

/**
 * A large snapshot's checksums are checked on a worker thread while the main thread
 * decodes it (checkAsideAt 0 forces that path here); a damaged record is refused exactly
 * as when the checksums are checked inline, with the same file, offset and reason.
 */
let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'pcu-aside-'));
});
afterEach(async () => rm(dir, { recursive: true, force: true }));

const USERS = 12_000; // three chunks of users
const user = (i: number): User => ({
  id: 10 + i, name: `user_${i}`, tenantId: 1, role: 'readonly', verifier: null, login: true, validUntil: null,
  connectionLimit: -1, certificateSubject: null, createdAt: 0, updatedAt: 0, createdBy: null,
});

async function writeSnapshot(data: string): Promise<void> {
  const store = new LogStore(data, () => {});
  await store.load(() => {}, () => {});
  function* image(): Generator<SnapshotPart> {
    yield { init: { op: 'init', serverSecret: 'ab'.repeat(32), at: 0, nextId: 10 + USERS } };
    yield* snapshotChunks('users', Array.from({ length: USERS }, (_, i) => user(i)));
  }
  await store.compact(image());
  await store.close();
}

/** Offsets of the snapshot's records (the header, then { u32 length | u32 crc | body } each). */
function recordOffsets(buf: Buffer): number[] {
  const out: number[] = [];
  for (let at = HEADER_SIZE; at < buf.length; at += RECORD_HEADER + buf.readUInt32BE(at)) out.push(at);
  return out;
}

/** A part as comparable text (deep equality over megabytes of row bytes is slow). */
const digest = (p: SnapshotPart) =>
  'init' in p ? JSON.stringify(p) : JSON.stringify({ ...p, rows: createHash('sha256').update(p.rows).digest('hex') });

async function load(data: string, checkAsideAt: number): Promise<SnapshotPart[]> {
  const parts: SnapshotPart[] = [];
  const store = new LogStore(data, () => {}, undefined, undefined, checkAsideAt);
  try {
    await store.load(() => {}, (p) => void parts.push(p));
  } finally {
    await store.close();
  }
  return parts;
}

describe('snapshot checksums checked on a worker thread', () => {
  it('loads what the inline check loads', async () => {
    const data = path.join(dir, 'data');
    await writeSnapshot(data);
    const aside = await load(data, 0);
    const inline = await load(data, Number.POSITIVE_INFINITY);
    expect(aside.length).toBe(4); // init and three chunks of users
    expect(aside.map(digest)).toEqual(inline.map(digest));
  });

  for (const [where, spot] of [
    ['in the rows of the middle record', (start: number, len: number) => start + RECORD_HEADER + len - 100],
    ['in the keys head of the middle record (JSON that no longer parses)', (start: number) => start + RECORD_HEADER + 6],
  ] as const) {
    it(`refuses a flipped byte ${where}, naming the record as the inline check does`, async () => {
      const data = path.join(dir, 'data');
      await writeSnapshot(data);
      const file = path.join(data, 'catalog.snapshot');
      const buf = await readFile(file);
      const offsets = recordOffsets(buf);
      const middle = offsets[2]!;
      const at = spot(middle, buf.readUInt32BE(middle));
      buf[at] = buf[at]! ^ 0x55;
      await writeFile(file, buf);
      const expected = `catalog.snapshot is damaged at byte offset ${middle}: checksum mismatch`;
      await expect(load(data, 0)).rejects.toThrow(expected);
      await expect(load(data, Number.POSITIVE_INFINITY)).rejects.toThrow(expected);
    });
  }

  it('refuses a snapshot cut short, whichever check sees it first', async () => {
    const data = path.join(dir, 'data');
    await writeSnapshot(data);
    const file = path.join(data, 'catalog.snapshot');
    const buf = await readFile(file);
    const offsets = recordOffsets(buf);
    await writeFile(file, buf.subarray(0, offsets[3]! + 50));
    await expect(load(data, 0)).rejects.toThrow(/catalog\.snapshot is damaged at byte offset \d+: the snapshot is cut short/);
  });

  it('checks on the main thread when the worker cannot start, with the same verdict', async () => {
    const data = path.join(dir, 'data');
    await writeSnapshot(data);
    const file = path.join(data, 'catalog.snapshot');
    const missing = new URL('file:///nonexistent/checksum-worker.js');
    expect(await checkAside(file, HEADER_SIZE, missing)).toEqual({ records: 5 }); // init, three chunks, end
    const buf = await readFile(file);
    const middle = recordOffsets(buf)[2]!;
    buf[middle + RECORD_HEADER + 10] = buf[middle + RECORD_HEADER + 10]! ^ 0x55;
    await writeFile(file, buf);
    const verdict = { offset: middle, reason: 'checksum mismatch' };
    expect(walkChecksums(file, HEADER_SIZE)).toEqual(verdict);
    expect(await checkAside(file, HEADER_SIZE, missing)).toEqual(verdict);
  });
});
