import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { decodeLog, HEADER_SIZE, RECORD_HEADER } from '../../src/store/log-format.js';
import { LOG_FILE } from '../../src/store/log-store.js';
import { DIST, runDriver, SPY } from './driver.js';

/**
 * Every acknowledged commit was fdatasync'ed first. A SIGKILL test cannot show it (the page
 * cache survives the process), so this one watches the calls themselves: the store runs in a
 * process of its own with its production file IO and flusher thread, over node:fs functions
 * the fs spy (test/support/fs-spy.mjs) records in every thread — each write to catalog.log
 * with its byte range, each fdatasync's start and end — and the driver adds a line when an
 * append resolves. Each fdatasync takes 20 ms longer, so an acknowledgement that does not
 * wait for its flush shows up before that flush ends.
 */
let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'pcu-durable-'));
});
afterEach(async () => rm(dir, { recursive: true, force: true }));

type Event =
  | { kind: 'W'; thread: number; from: number; to: number }
  | { kind: 'S'; thread: number; id: string }
  | { kind: 'E'; thread: number; id: string; result: string }
  | { kind: 'A'; seq: number };

function parseTrace(text: string): Event[] {
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => {
      const [kind, a, b, c] = l.split(' ') as [string, string, string, string];
      if (kind === 'W') return { kind, thread: Number(a), from: Number(b), to: Number(c) };
      if (kind === 'S') return { kind, thread: Number(a), id: b };
      if (kind === 'E') return { kind, thread: Number(a), id: b, result: c };
      if (kind === 'A') return { kind, seq: Number(a) };
      throw new Error(`unexpected trace line: ${l}`);
    });
}

/** Each record's byte range in the log, by sequence number. */
function recordRanges(log: Buffer): Map<number, [number, number]> {
  const decoded = decodeLog(log);
  if (decoded.kind === 'damaged') throw new Error(decoded.reason);
  const ranges = new Map<number, [number, number]>();
  let at = HEADER_SIZE;
  for (let i = 0; i < decoded.records.length; i++) {
    const end = at + RECORD_HEADER + log.readUInt32BE(at);
    ranges.set(decoded.firstSeq + i, [at, end]);
    at = end;
  }
  return ranges;
}

/**
 * For each acknowledgement: every byte of its record was written, and an fdatasync that
 * started after the last of those writes had returned, successfully, before it. Returns what
 * falls short, and which thread ran each covering fdatasync.
 */
function check(events: Event[], ranges: Map<number, [number, number]>) {
  const problems: string[] = [];
  const coveredBy: number[] = [];
  const ends = new Map<string, number>();
  events.forEach((e, i) => e.kind === 'E' && e.result === 'ok' && ends.set(e.id, i));
  events.forEach((ack, a) => {
    if (ack.kind !== 'A') return;
    const range = ranges.get(ack.seq);
    if (!range) return problems.push(`commit ${ack.seq}: acknowledged but not in the log`);
    const [from, to] = range;
    const writes = events
      .map((e, i) => ({ e, i }))
      .filter((w): w is { e: Extract<Event, { kind: 'W' }>; i: number } => w.i < a && w.e.kind === 'W' && w.e.from < to && w.e.to > from);
    let reached = from;
    for (const { e } of [...writes].sort((x, y) => x.e.from - y.e.from)) if (e.from <= reached) reached = Math.max(reached, e.to);
    if (reached < to) return problems.push(`commit ${ack.seq}: acknowledged before bytes ${reached}..${to} of its record were written`);
    const lastWrite = Math.max(...writes.map((w) => w.i));
    const sync = events.findIndex((e, i) => i > lastWrite && e.kind === 'S' && (ends.get(e.id) ?? Infinity) < a);
    if (sync < 0) return problems.push(`commit ${ack.seq}: acknowledged with no fdatasync started after its record was written and ended before the acknowledgement`);
    coveredBy.push((events[sync] as { thread: number }).thread);
  });
  return { problems, coveredBy };
}

describe('acknowledged commits are fdatasynced first', () => {
  it('inline and on the flusher thread, each commit is acknowledged only after an fdatasync that started after its record was written', async () => {
    const data = path.join(dir, 'data');
    const trace = path.join(dir, 'trace');
    await writeFile(trace, '');
    const r = await runDriver(
      `import { trace } from ${JSON.stringify(SPY)};
      import { LogStore } from ${JSON.stringify(DIST('store/log-store.js'))};
      const store = new LogStore(${JSON.stringify(data)}, () => {});
      await store.load(() => {}, () => {});
      let n = 0;
      const commit = () => {
        const i = n++;
        return store.append([{ op: 'insert', table: 'tenants', row: { id: 100 + i, name: 't' + i, createdAt: 0 } }]).then((seq) => trace('A ' + seq));
      };
      // Lone commits one after another: the first is flushed inline (the disk then looks slow).
      for (let k = 0; k < 3; k++) await commit();
      // Batches: commits of one turn share a write and a flush on the flusher thread.
      for (let k = 0; k < 3; k++) await Promise.all(Array.from({ length: 4 }, commit));
      // Batches in the air: each written while the flush of the one before it runs.
      const waves = [];
      for (let k = 0; k < 4; k++) {
        waves.push(...Array.from({ length: 3 }, commit));
        await new Promise((r) => setTimeout(r, 5));
      }
      await Promise.all(waves);
      await store.close();
      console.log(n);`,
      { PCU_FS_SPY_FLUSH_MS: '20', PCU_FS_SPY_TRACE: trace },
    );
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('27\n');

    const events = parseTrace(await readFile(trace, 'utf8'));
    const acks = events.flatMap((e) => (e.kind === 'A' ? [e.seq] : []));
    expect(acks.sort((x, y) => x - y)).toEqual(Array.from({ length: 27 }, (_, i) => i + 1));
    const { problems, coveredBy } = check(events, recordRanges(await readFile(path.join(data, LOG_FILE))));
    expect(problems).toEqual([]);
    // Both flushes the store has in production were seen: inline (the main thread, id 0)
    // and by the flusher thread.
    expect(coveredBy).toContain(0);
    expect(coveredBy.some((t) => t !== 0)).toBe(true);
    // Batches shared flushes: fewer fdatasyncs than commits.
    expect(events.filter((e) => e.kind === 'S').length).toBeLessThan(27);
  });
});
