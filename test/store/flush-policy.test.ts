import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { fileIo, LogStore, type LogIo } from '../../src/store/log-store.js';
import type { Mutation } from '../../src/catalog/model.js';

/**
 * fdatasync of a lone commit runs inline while the disk is fast and moves to the thread
 * pool once it is slow (so a slow disk never stalls every session); concurrent commits
 * share one flush, on the thread pool.
 */
let dir: string;
afterEach(async () => rm(dir, { recursive: true, force: true }));

const commit = (i: number): Mutation[] => [{ op: 'insert', table: 'tenants', row: { id: 100 + i, name: `t${i}`, createdAt: 0 } }];

function recordingIo(slowMs: () => number): { io: LogIo; flushes: boolean[] } {
  const flushes: boolean[] = [];
  const io: LogIo = {
    write: (fd, data, at) => fileIo.write(fd, data, at),
    // No real flush (this is about the policy, not durability): the fast disk takes ~0 µs,
    // whatever the machine's disk does; the slow one blocks at least `slowMs`.
    datasync: (_fd, inline) => {
      flushes.push(inline);
      const ms = slowMs();
      if (ms > 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
      return inline ? undefined : Promise.resolve();
    },
  };
  return { io, flushes };
}

describe('log flush policy', () => {
  it('flushes a lone commit inline on a fast disk, a batch and every flush of a slow disk on the thread pool', async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'pcu-flush-'));
    let slow = 0;
    const { io, flushes } = recordingIo(() => slow);
    const store = new LogStore(path.join(dir, 'data'), () => {}, io);
    await store.load(() => {}, () => {});
    try {
      for (let i = 0; i < 3; i++) await store.append(commit(i));
      expect(flushes).toEqual([true, true, true]);

      // Ten commits in one turn of the event loop: one write, one flush, on the thread pool
      // (several sessions are writing: the next batch forms while this one is flushed).
      const before = store.stats.writes;
      await Promise.all(Array.from({ length: 10 }, (_, i) => store.append(commit(10 + i))));
      expect(store.stats.writes - before).toBe(1);
      expect(flushes).toEqual([true, true, true, false]);

      slow = 5; // 5 ms per flush: the moving average passes 1 ms within a few commits
      for (let i = 0; i < 30; i++) await store.append(commit(30 + i));
      expect(flushes.at(-1)).toBe(false);
      // Lone commits: inline until the average passes 1 ms, on the pool from then on.
      const lone = flushes.slice(4);
      const firstPooled = lone.indexOf(false);
      expect(firstPooled).toBeGreaterThan(0);
      expect(lone.slice(firstPooled).every((inline) => !inline)).toBe(true);
    } finally {
      await store.close();
    }
  });
});
