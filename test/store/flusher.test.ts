import { closeSync, openSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Mutation } from '../../src/catalog/model.js';
import { ThreadFlusher } from '../../src/store/flusher.js';
import { HEADER_SIZE } from '../../src/store/log-format.js';
import { fileIo, LOG_FILE, LogStore, type LogIo } from '../../src/store/log-store.js';
import { DIST, runDriver } from './driver.js';

/**
 * Batches are written while an earlier one flushes and wait for a later flush; they are
 * acknowledged in log order, and a failed flush fails every batch in the air and leaves
 * zeros where they were. Here each flush off the event loop is held until the test lets
 * it finish (the store's Io is injected, so the thread-pool flusher runs it).
 */
let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'pcu-flusher-'));
});
afterEach(async () => rm(dir, { recursive: true, force: true }));

const commit = (i: number): Mutation[] => [{ op: 'insert', table: 'tenants', row: { id: 100 + i, name: `t${i}`, createdAt: 0 } }];

interface Held {
  settle(err?: Error): void;
}

/** Real writes and flushes, but a flush off the event loop ends only when the test says so. */
function heldIo(): { io: LogIo; next: () => Promise<Held> } {
  const ready: Held[] = [];
  const waiting: ((h: Held) => void)[] = [];
  const io: LogIo = {
    write: fileIo.write,
    datasync: (fd, inline) =>
      inline
        ? fileIo.datasync(fd, true)
        : new Promise<void>((resolve, reject) => {
            const h: Held = { settle: (err) => (err ? reject(err) : resolve(fileIo.datasync(fd, false) as Promise<void>)) };
            const w = waiting.shift();
            if (w) w(h);
            else ready.push(h);
          }),
  };
  const next = () => new Promise<Held>((resolve) => (ready.length > 0 ? resolve(ready.shift()!) : waiting.push(resolve)));
  return { io, next };
}

/** Two commits in one turn: one batch, flushed off the event loop. */
const pair = (store: LogStore, i: number, order: string[]) =>
  [i, i + 1].map((n) =>
    store.append(commit(n)).then(
      (seq) => (order.push(`ok ${n}`), seq),
      (err: Error) => (order.push(`failed ${n}`), Promise.reject(err)),
    ),
  );

async function reopen(data: string): Promise<number[]> {
  const ids: number[] = [];
  const store = new LogStore(data, () => {});
  await store.load((c) => c.forEach((m) => m.op === 'insert' && ids.push(m.row.id)), () => {});
  await store.close();
  return ids;
}

/** A store on a fresh data directory whose flushes off the event loop the test ends. */
async function heldStore() {
  const data = path.join(dir, 'data');
  const { io, next } = heldIo();
  const store = new LogStore(data, () => {}, io);
  await store.load(() => {}, () => {});
  return { data, store, next, order: [] as string[] };
}

describe('batches in the air', () => {
  it('writes a batch while the one before it flushes, and acknowledges both in log order', async () => {
    const { data, store, next, order } = await heldStore();
    const first = pair(store, 0, order);
    const f1 = await next();
    const second = pair(store, 2, order);
    await new Promise((r) => setImmediate(r)); // the second batch is written now, behind the held flush
    const log = await readFile(path.join(data, LOG_FILE));
    expect(log.includes(Buffer.from('"t3"'))).toBe(true);
    f1.settle();
    expect(await Promise.all(first)).toEqual([1, 2]);
    expect(order).toEqual(['ok 0', 'ok 1']); // the second waits for a flush that started after it was written
    (await next()).settle();
    expect(await Promise.all(second)).toEqual([3, 4]);
    expect(order).toEqual(['ok 0', 'ok 1', 'ok 2', 'ok 3']);
    await store.close();
    expect(await reopen(data)).toEqual([100, 101, 102, 103]);
  });

  it('fails the batch behind a failed flush too, leaves zeros, and writes the next commit where the failed one began', async () => {
    const { data, store, next, order } = await heldStore();
    const kept = pair(store, 0, order);
    (await next()).settle();
    await Promise.all(kept);
    const logBefore = await readFile(path.join(data, LOG_FILE));

    const doomed = pair(store, 2, order);
    const f1 = await next();
    const behind = pair(store, 4, order);
    await new Promise((r) => setImmediate(r));
    f1.settle(Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' }));
    const results = await Promise.allSettled([...doomed, ...behind]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected', 'rejected', 'rejected']);
    expect((results[3] as PromiseRejectedResult).reason.code).toBe('EIO');
    expect(order.slice(2)).toEqual(['failed 2', 'failed 3', 'failed 4', 'failed 5']);

    // Two more flushes are held: the one already asked for the batch behind (answered, but
    // its batch has failed), and the zeros' own. The next commit waits for the zeros, then
    // takes the failed batch's sequence number and place, flushed inline.
    const nextCommit = store.append(commit(9));
    (await next()).settle();
    (await next()).settle();
    expect(await nextCommit).toBe(3);
    await store.close();
    const logAfter = await readFile(path.join(data, LOG_FILE));
    const end = logBefore.indexOf(Buffer.alloc(8), HEADER_SIZE);
    expect(logAfter.subarray(0, end).equals(logBefore.subarray(0, end))).toBe(true);
    const afterNext = logAfter.indexOf(Buffer.alloc(8), end + 8);
    expect(logAfter.subarray(afterNext).every((b) => b === 0)).toBe(true);
    expect(await reopen(data)).toEqual([100, 101, 109]);
  });
});

describe('the flusher thread', () => {
  it('answers every ticket in order, a failure with its errno code, across the 32-bit edge', async () => {
    const fd = openSync(path.join(dir, 'f'), 'w');
    const answers: [number, string | null][] = [];
    let wake: () => void = () => {};
    const flusher = new ThreadFlusher((ticket, error) => {
      answers.push([ticket, error ? (error as NodeJS.ErrnoException).code ?? 'no code' : null]);
      wake();
    }, fileIo);
    const answered = (ticket: number) =>
      new Promise<void>((resolve) => {
        wake = () => answers.some(([t]) => t === ticket) && resolve();
        wake();
      });
    try {
      flusher.request(fd, 1);
      await answered(1);
      const big = 2 ** 31 + 5; // past what an Int32 holds
      flusher.request(fd, big);
      await answered(big);
      flusher.request(2 ** 30, big + 1); // a descriptor never opened: EBADF (a closed one could be reused)
      await answered(big + 1);
      expect(answers).toEqual([
        [1, null],
        [big, null],
        [big + 1, 'EBADF'],
      ]);
    } finally {
      await flusher.close();
      closeSync(fd);
    }
  });

  it('hands its work to the thread pool when the thread cannot start, leaving no ticket unanswered', async () => {
    const fd = openSync(path.join(dir, 'f'), 'w');
    const answers: number[] = [];
    let wake: () => void = () => {};
    const flusher = new ThreadFlusher(
      (ticket, error) => {
        if (!error) answers.push(ticket);
        wake();
      },
      fileIo,
      new URL('file:///nonexistent/flusher-worker.js'),
    );
    try {
      flusher.request(fd, 1); // asked before the thread has failed
      await new Promise<void>((resolve) => {
        wake = () => answers.includes(1) && resolve();
      });
      flusher.request(fd, 2); // and after
      await new Promise<void>((resolve) => {
        wake = () => answers.includes(2) && resolve();
        wake();
      });
      expect(answers).toEqual([1, 2]);
    } finally {
      await flusher.close();
      closeSync(fd);
    }
  });
});

describe('the flusher thread and the process', () => {
  it('keeps the process alive while a flush is outstanding, and lets it exit once idle', async () => {
    const data = path.join(dir, 'data');
    // Its own process, as `portcullis apply --data` is: three commits in one turn are one
    // batch, flushed by the thread (each fdatasync 20 ms longer); then nothing is left on
    // the event loop but that flush, and the store is never closed.
    const r = await runDriver(
      `import { LogStore } from ${JSON.stringify(DIST('store/log-store.js'))};
      const store = new LogStore(${JSON.stringify(data)}, () => {});
      await store.load(() => {}, () => {});
      const commit = (i) => [{ op: 'insert', table: 'tenants', row: { id: 100 + i, name: 't' + i, createdAt: 0 } }];
      Promise.all([0, 1, 2].map((i) => store.append(commit(i)))).then((seqs) => console.log('acknowledged ' + seqs.join(',')));`,
      { PCU_FS_SPY_FLUSH_MS: '20' },
      10_000,
    );
    expect(r.code).toBe(0); // null: killed after 10 s, the idle thread held the process
    expect(r.stdout).toBe('acknowledged 1,2,3\n');
    expect(await reopen(data)).toEqual([100, 101, 102]);
  });
});
