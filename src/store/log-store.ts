import { mkdir, open, readFile, rename, rm, type FileHandle } from 'node:fs/promises';
import { constants, fdatasyncSync } from 'node:fs';
import { datasync, syncDir, writeAllSync } from './files.js';
import path from 'node:path';
import type { Mutation } from '../catalog/model.js';
import { checkSnapshotHeader, decodeLog, decodeRecordBody, decodeSnapshotRecord, encodeRecord, encodeSnapshotRecord, header, HEADER_SIZE, logKeyId, MAX_RECORD, RECORD_HEADER, snapshotHeader, SNAPSHOT_VERSION } from './log-format.js';
import { checkAside, type ChecksumVerdict } from './checksums.js';
import type { SnapshotPart } from '../catalog/catalog.js';
import { keyFor, PLAINTEXT, type Cipher, type Keys } from './cipher.js';
import type { Store } from './store.js';
import { lockDataDir } from './dir-lock.js';
import { PoolFlusher, ThreadFlusher, type Flusher } from './flusher.js';

export const LOG_FILE = 'catalog.log';
export const SNAPSHOT_FILE = 'catalog.snapshot';

/**
 * How commits reach the file. Records are written with a plain pwrite (they land in the
 * page cache, which does not block), then flushed with fdatasync: a lone commit inline on
 * the event loop while the disk answers quickly, everything else by the flusher thread
 * (flusher.ts). Tests inject an Io that fails (ENOSPC, EIO, a short write) to prove that a
 * failed commit leaves nothing behind; with an injected Io, flushes that leave the event
 * loop run on the thread pool through it, by the same rules.
 */
export interface LogIo {
  /** Writes all of `data` at `position`. */
  write(fd: number, data: Buffer, position: number): void;
  /** fdatasync: blocking when `inline`, else on the thread pool. */
  datasync(fd: number, inline: boolean): void | Promise<void>;
}

export const fileIo: LogIo = {
  write: writeAllSync,
  datasync: (fd, inline) => (inline ? fdatasyncSync(fd) : datasync(fd)),
};

/**
 * Above this (a moving average of observed flush times), lone commits leave the event loop
 * too. Handing a flush to another thread costs ~100 µs on a small machine, as much as the
 * flush itself on a fast disk, so a lone commit is cheaper to flush inline (reads and
 * logins wait at most one flush); a slow disk would stall every session, so there it goes
 * to the flusher. A batch of several commits means several sessions are writing: its flush
 * goes to the flusher too, so the next batch is parsed, checked and written while this one
 * reaches the disk.
 */
const INLINE_FLUSH_MAX_US = 1000;

/** Writes a whole buffer through a file handle (snapshots and log rewrites: off the loop). */
async function writeAll(fh: FileHandle, data: Buffer, position: number): Promise<void> {
  for (let off = 0; off < data.length; ) off += (await fh.write(data, off, data.length - off, position + off)).bytesWritten;
}

/**
 * The log grows by this much at a time, written as zeros and fsynced once: appends then
 * land in space the file already has, and their fdatasync flushes data only, never the
 * file's size (PostgreSQL zero-fills its WAL segments for the same reason).
 */
const PREALLOCATE = 16 * 1024 * 1024;
const ZEROS = Buffer.alloc(1024 * 1024);

/** A batch written to the log, waiting for a flush that covers it. */
interface Flight {
  ticket: number;
  /** Where its records start in the file, and the first one's sequence number. */
  at: number;
  firstSeq: number;
  batch: Pending[];
  started: bigint;
}

interface Pending {
  rec: Buffer;
  resolve: (seq: number) => void;
  reject: (err: unknown) => void;
}

/** Below this, a worker thread costs more to start than the checksums take. */
const CHECK_ASIDE_AT = 64 * 1024 * 1024;

/**
 * The embedded catalog: a snapshot and an append-only, checksummed log in the data
 * directory (formats in log-format.ts). A commit is written and fdatasync'ed before its
 * append resolves, so it is durable before its CommandComplete. Group commit:
 * the commits of one event-loop turn are written as one batch at once, even while an
 * earlier batch flushes; the flusher's next fdatasync covers every batch written before it
 * started, and batches are acknowledged in log order.
 */
export class LogStore implements Store {
  private fh: FileHandle | null = null;
  /** Bytes of whole records after the header: the next record goes there. */
  private size = 0;
  /** The file's length: header, records, then preallocated zeros. */
  private allocated = 0;
  /** The sequence number the next record gets. */
  private nextSeq = 1;
  private queue: Pending[] = [];
  /** Moving average of fdatasync times, in µs: decides inline or thread-pool flushes. */
  private flushMicros = 0;
  private writing: Promise<void> | null = null;
  /** Batches written whose flush has not been answered, oldest first. */
  private flights: Flight[] = [];
  private tickets = 0;
  private flush: Flusher | null = null;
  /** Waiting for `flights` to empty. */
  private landed: (() => void)[] = [];
  /** Zeros going over batches a failed flush took with it; nothing is written meanwhile. */
  private recovering: Promise<void> | null = null;
  private unlock: (() => Promise<void>) | null = null;
  /** Commits per write (for the bench and the metrics to come). */
  readonly stats = { writes: 0, commits: 0 };

  /** What new records are sealed with (null: written in plaintext). */
  private cipher: Cipher | null;

  constructor(
    readonly dir: string,
    private readonly warn: (line: string) => void = (l) => process.stderr.write(`${l}\n`),
    private readonly io: LogIo = fileIo,
    private keys: Keys = PLAINTEXT,
    /** Snapshots this large or larger have their checksums checked on a worker thread. */
    private readonly checkAsideAt = CHECK_ASIDE_AT,
  ) {
    this.cipher = keys.write;
  }

  get description(): string {
    return `data directory ${path.resolve(this.dir)}`;
  }

  /** Bytes in the log since the last snapshot (what triggers compaction). */
  get logBytes(): number {
    return this.size;
  }

  async load(apply: (commit: Mutation[], seq: number) => void, bulk: (part: SnapshotPart) => void): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    this.unlock = await lockDataDir(this.dir, this.warn);
    try {
      await this.open(apply, bulk);
    } catch (err) {
      await this.unlock();
      this.unlock = null;
      throw err;
    }
  }

  private file(name: string): string {
    return path.join(this.dir, name);
  }

  private async open(apply: (commit: Mutation[], seq: number) => void, bulk: (part: SnapshotPart) => void): Promise<void> {
    const snapshotSeq = await this.readSnapshot(apply, bulk);
    const file = this.file(LOG_FILE);
    const buf = await readIfExists(file);
    if (buf === null || buf.length === 0) {
      await this.startLog(snapshotSeq + 1);
      return;
    }
    const res = decodeLog(buf, keyFor(file, logKeyId(buf), this.keys));
    if (res.kind === 'damaged') throw damaged(file, res.offset, res.reason);
    if (res.firstSeq > snapshotSeq + 1) {
      throw damaged(file, 16, `the log starts at commit ${res.firstSeq} but the snapshot ends at ${snapshotSeq}: commits are missing`);
    }
    res.records.forEach((r, i) => {
      if (res.firstSeq + i > snapshotSeq) apply(r as Mutation[], res.firstSeq + i);
    });
    this.nextSeq = res.firstSeq + res.records.length;
    if (res.kind === 'torn') {
      this.warn(`warning: ${file}: discarding a torn final record (${res.tornBytes} bytes at offset ${res.end}) left by an interrupted write`);
    }
    if (res.version !== 2 || res.keyId !== (this.cipher?.keyId ?? 0)) {
      // The upgrade path: an older log (or one under the previous key, in a rekey) is
      // rewritten in the current format and key, records unchanged.
      if (res.version !== 2) this.warn(`${file}: upgrading the log from format version ${res.version} to 2`);
      await this.replaceLog(res.firstSeq, res.records as Mutation[][]);
      return;
    }
    this.fh = await open(file, constants.O_WRONLY, 0o600);
    this.allocated = buf.length;
    this.size = res.end - HEADER_SIZE;
    if (res.kind === 'torn') {
      // Zeros over the torn record: the data ends where the last whole record ends.
      await this.zero(res.end, res.tornBytes);
      await this.fh.sync();
    }
  }

  private async zero(position: number, length: number): Promise<void> {
    for (let off = 0; off < length; off += ZEROS.length) {
      await writeAll(this.fh!, ZEROS.subarray(0, Math.min(ZEROS.length, length - off)), position + off);
    }
  }

  /**
   * Streams the snapshot (if any) into `apply` a record at a time, so a large catalog is
   * never in memory twice; returns the sequence of the last commit it holds (0: none).
   * It was renamed into place only once whole, so anything short of whole is damage.
   */
  private async readSnapshot(apply: (commit: Mutation[], seq: number) => void, bulk: (part: SnapshotPart) => void): Promise<number> {
    const file = this.file(SNAPSHOT_FILE);
    let fh: FileHandle;
    try {
      fh = await open(file, constants.O_RDONLY);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
      throw err;
    }
    const reader = new SnapshotReader(fh);
    let next: Promise<unknown> = Promise.resolve();
    // A large version 2 snapshot has its checksums checked on a worker thread meanwhile;
    // nothing read is served before both are done (start-up fails on either's verdict).
    let aside: Promise<ChecksumVerdict> | null = null;
    try {
      const head = checkSnapshotHeader(await reader.header());
      if (typeof head === 'string') throw damaged(file, 0, head);
      const cipher = keyFor(file, head.keyId, this.keys);
      this.snapshotKeyId = head.keyId;
      if (head.version === SNAPSHOT_VERSION && (await fh.stat()).size >= this.checkAsideAt) aside = checkAside(file, HEADER_SIZE);
      const decode = (body: Buffer, sum: number) =>
        head.version === 1 ? decodeRecordBody(body, sum, cipher) : decodeSnapshotRecord(body, aside ? null : sum, cipher);
      let reading = reader.record(decode);
      let chunks = 0;
      for (;;) {
        const { at, value: rec } = await reading;
        if (typeof rec === 'string') throw damaged(file, at, rec, await aside);
        if (!Array.isArray(rec) && 'end' in (rec as object)) {
          if ((rec as { end: number }).end !== chunks) throw damaged(file, at, 'the end record does not match the snapshot', await aside);
          if (reader.offset !== (await fh.stat()).size) throw damaged(file, reader.offset, 'data follows the end record');
          const verdict = await aside;
          if (verdict && 'reason' in verdict) throw damaged(file, verdict.offset, verdict.reason);
          if (verdict && verdict.records !== chunks + 1) throw damaged(file, HEADER_SIZE, `the checksum check saw ${verdict.records} records, not ${chunks + 1}`);
          return head.lastSeq;
        }
        next = reading = reader.record(decode); // read ahead while this one is applied
        if (Array.isArray(rec)) apply(rec as Mutation[], head.lastSeq);
        else {
          try {
            bulk(rec as SnapshotPart);
          } catch (err) {
            throw damaged(file, at, (err as Error).message, await aside);
          }
        }
        chunks++;
      }
    } finally {
      await aside?.catch(() => undefined); // no worker left reading a file start-up gave up on
      await next.catch(() => undefined); // no read left running on a closed file
      await fh.close();
    }
  }

  private async startLog(firstSeq: number): Promise<void> {
    await this.replaceLog(firstSeq, []);
  }

  /** Writes a new log (header + records) beside the old one, then renames it into place. */
  private async replaceLog(firstSeq: number, records: Mutation[][]): Promise<void> {
    const tmp = this.file(`${LOG_FILE}.tmp`);
    const fh = await open(tmp, constants.O_CREAT | constants.O_TRUNC | constants.O_WRONLY, 0o600);
    let size = 0;
    try {
      await writeAll(fh, header(firstSeq, this.cipher?.keyId ?? 0), 0);
      for (const r of records) {
        const rec = encodeRecord(r, this.cipher);
        await writeAll(fh, rec, HEADER_SIZE + size);
        size += rec.length;
      }
      await fh.sync();
    } finally {
      await fh.close();
    }
    await this.fh?.close();
    await rename(tmp, this.file(LOG_FILE));
    await syncDir(this.dir);
    this.fh = await open(this.file(LOG_FILE), constants.O_WRONLY, 0o600);
    this.size = size;
    this.allocated = HEADER_SIZE + size;
    this.nextSeq = firstSeq + records.length;
  }

  append(commit: Mutation[]): Promise<number> {
    return new Promise((resolve, reject) => {
      this.queue.push({ rec: encodeRecord(commit, this.cipher), resolve, reject });
      // The first commit of a batch waits for the event loop's turn to end, so that every
      // statement whose bytes arrived in this turn joins it: one write, one fdatasync.
      if (!this.writing) this.writing = new Promise<void>((r) => setImmediate(r)).then(() => this.drain());
    });
  }

  /**
   * Writes what has queued up as one batch after the last, until the queue is empty. A lone
   * commit with nothing in the air, on a fast disk, is flushed inline; any other batch goes
   * to the flusher, and the next batch is written while it flushes (it waits for a later
   * flush). Acknowledgements follow log order (`flushed`).
   */
  private async drain(): Promise<void> {
    while (this.queue.length > 0) {
      if (this.recovering) await this.recovering;
      const batch = this.queue;
      this.queue = [];
      const fh = this.fh;
      const data = batch.length === 1 ? batch[0]!.rec : Buffer.concat(batch.map((p) => p.rec));
      let at = HEADER_SIZE + this.size;
      try {
        if (!fh) throw new Error('catalog log is not open');
        if (at + data.length + RECORD_HEADER > this.allocated) await this.grow(at + data.length + RECORD_HEADER);
        if (this.recovering) await this.recovering; // a flush failed meanwhile: the log ends earlier now
        at = HEADER_SIZE + this.size;
        this.io.write(fh.fd, data, at);
      } catch (err) {
        // Leave no partial record behind: zeros again where it was (the next commit writes
        // there anyway, and start-up stops at zeros).
        await this.zero(at, data.length).catch(() => undefined);
        for (const p of batch) p.reject(err);
        continue;
      }
      const flight: Flight = { ticket: ++this.tickets, at, firstSeq: this.nextSeq, batch, started: process.hrtime.bigint() };
      this.size += data.length;
      this.nextSeq += batch.length;
      if (this.flights.length === 0 && batch.length === 1 && this.flushMicros < INLINE_FLUSH_MAX_US) {
        this.flights.push(flight);
        let error: Error | null = null;
        try {
          await this.io.datasync(fh.fd, true);
        } catch (err) {
          error = err as Error;
        }
        this.flushed(flight.ticket, error);
      } else {
        this.flights.push(flight);
        this.flusher().request(fh.fd, flight.ticket);
      }
    }
    this.writing = null;
  }

  private flusher(): Flusher {
    if (!this.flush) {
      const done = (ticket: number, error: Error | null) => this.flushed(ticket, error);
      try {
        this.flush = this.io === fileIo ? new ThreadFlusher(done, this.io) : new PoolFlusher(this.io, done);
      } catch {
        this.flush = new PoolFlusher(this.io, done); // no thread to be had: the pool does it
      }
    }
    return this.flush;
  }

  /**
   * A flush covering every batch up to `ticket` ended. Success acknowledges them, oldest
   * first. A failure fails every batch in the air — those behind it too, whose place in the
   * file comes after the doubtful one — moves the end of the log back to the first of them
   * and puts zeros over all of it before another batch is written.
   */
  private flushed(ticket: number, error: Error | null): void {
    if (error) {
      const first = this.flights[0];
      // With batches in the air, this may be a failure reported late, for a flush asked for
      // before an earlier failure: it fails them all the same, since a batch written after
      // the flush was asked for may have been written back (and lost) by it, and a later
      // fdatasync would not report that again (docs/decisions.md, group commit).
      if (!first) return; // answered for batches already failed
      const end = HEADER_SIZE + this.size;
      this.size = first.at - HEADER_SIZE;
      this.nextSeq = first.firstSeq;
      for (const f of this.flights) for (const p of f.batch) p.reject(error);
      this.flights = [];
      const fd = this.fh!.fd;
      this.recovering = this.zero(first.at, end - first.at)
        .then(() => this.io.datasync(fd, false))
        .catch(() => undefined)
        .finally(() => (this.recovering = null));
    } else {
      while (this.flights.length > 0 && this.flights[0]!.ticket <= ticket) {
        const f = this.flights.shift()!;
        this.flushMicros = 0.9 * this.flushMicros + 0.1 * (Number(process.hrtime.bigint() - f.started) / 1000);
        this.stats.writes++;
        this.stats.commits += f.batch.length;
        f.batch.forEach((p, i) => p.resolve(f.firstSeq + i));
      }
    }
    if (this.flights.length === 0) for (const w of this.landed.splice(0)) w();
  }

  /** Until nothing is queued, in the air or being zeroed (compaction and close). */
  private async idle(): Promise<void> {
    while (this.writing || this.flights.length > 0 || this.recovering) {
      if (this.writing) await this.writing;
      else if (this.flights.length > 0) await new Promise<void>((r) => this.landed.push(r));
      else await this.recovering;
    }
  }

  /** More zeros at the end of the log (ENOSPC surfaces here, before any record is written). */
  private async grow(needed: number): Promise<void> {
    const from = this.allocated;
    const to = Math.max(needed, from + PREALLOCATE);
    try {
      for (let off = from; off < to; off += ZEROS.length) this.io.write(this.fh!.fd, ZEROS.subarray(0, Math.min(ZEROS.length, to - off)), off);
      await this.fh!.sync(); // the size changed: a full fsync, once per 16 MiB
    } catch (err) {
      await this.fh!.truncate(from).catch(() => undefined);
      throw err;
    }
    this.allocated = to;
  }

  /**
   * Compaction: the catalog as it is now (`image`, chunks of insert mutations) becomes the
   * snapshot, and the log starts again empty after it. The caller holds back commits while
   * this runs. A crash at any point leaves either the old snapshot and the whole log, or the
   * new snapshot and a log whose records it already holds (skipped at start-up).
   */
  async compact(image: Iterable<SnapshotPart>): Promise<{ logBytesBefore: number; snapshotBytes: number }> {
    await this.idle();
    const lastSeq = this.nextSeq - 1;
    const tmp = this.file(`${SNAPSHOT_FILE}.tmp`);
    const fh = await open(tmp, constants.O_CREAT | constants.O_TRUNC | constants.O_WRONLY, 0o600);
    let snapshotBytes = 0;
    try {
      const write = async (b: Buffer) => {
        await writeAll(fh, b, snapshotBytes);
        snapshotBytes += b.length;
      };
      await write(snapshotHeader(lastSeq, this.cipher?.keyId ?? 0));
      let chunks = 0;
      for (const part of image) {
        await write(encodeSnapshotRecord(part, this.cipher));
        chunks++;
      }
      await write(encodeSnapshotRecord({ end: chunks }, this.cipher));
      await fh.sync();
    } catch (err) {
      await fh.close();
      await rm(tmp, { force: true });
      throw err;
    }
    await fh.close();
    await rename(tmp, this.file(SNAPSHOT_FILE));
    await syncDir(this.dir);
    const logBytesBefore = this.size;
    await this.replaceLog(lastSeq + 1, []);
    this.snapshotKeyId = this.cipher?.keyId ?? 0;
    return { logBytesBefore, snapshotBytes };
  }

  /** The snapshot's key id as read or last written (undefined: no snapshot). */
  private snapshotKeyId: number | undefined;

  /** True when a file holds records under another key than the one new records get (a rekey to finish). */
  get needsRekey(): boolean {
    return this.snapshotKeyId !== undefined && this.snapshotKeyId !== (this.cipher?.keyId ?? 0);
  }

  /**
   * `portcullis rekey`: from now on records are sealed with the new key; the caller then
   * compacts, which rewrites the snapshot and the log under it.
   */
  useKey(keys: Keys): void {
    this.keys = keys;
    this.cipher = keys.write;
  }

  async close(): Promise<void> {
    await this.idle();
    await this.flush?.close();
    this.flush = null;
    await this.fh?.close();
    this.fh = null;
    await this.unlock?.();
    this.unlock = null;
  }
}

/**
 * Reads a file front to back, a record at a time, each record into a buffer of its own:
 * a snapshot's rows stay in memory as those bytes (see Table.load), so nothing is copied
 * twice. One read per record fetches its body and the next record's header, so the next
 * read can start at once while the caller works on this one (start-up overlaps the disk
 * and the indexing).
 */
class SnapshotReader {
  /** Where the next record starts. */
  offset = HEADER_SIZE;
  /** The next record's header, read with the previous body. */
  private head: Buffer | null = null;

  constructor(private readonly fh: FileHandle) {}

  async header(): Promise<Buffer | null> {
    return this.readAt(0, HEADER_SIZE, HEADER_SIZE);
  }

  /** The next record's payload (or why there is none) and its offset. */
  async record(decode: (body: Buffer, sum: number) => unknown): Promise<{ at: number; value: unknown }> {
    const at = this.offset;
    const head = this.head ?? (await this.readAt(at, RECORD_HEADER, RECORD_HEADER));
    if (!head) return { at, value: 'the snapshot is cut short (no end record)' };
    const len = head.readUInt32BE(0);
    if (len > MAX_RECORD) return { at, value: `record length ${len} is implausible` };
    const buf = await this.readAt(at + RECORD_HEADER, len + RECORD_HEADER, len);
    if (!buf) return { at, value: 'the snapshot is cut short' };
    this.head = buf.length === len + RECORD_HEADER ? buf.subarray(len) : null;
    this.offset = at + RECORD_HEADER + len;
    return { at, value: decode(buf.subarray(0, len), head.readUInt32BE(4)) };
  }

  /** Up to `n` bytes at `position`; null when fewer than `min` are there. */
  private async readAt(position: number, n: number, min: number): Promise<Buffer | null> {
    const buf = Buffer.allocUnsafe(n);
    let got = 0;
    while (got < n) {
      const { bytesRead } = await this.fh.read(buf, got, n - got, position + got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    return got < min ? null : buf.subarray(0, got);
  }
}

async function readIfExists(file: string): Promise<Buffer | null> {
  try {
    return await readFile(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

/**
 * `verdict`: the checksums' (when they were checked aside). A damaged record may decode
 * into nonsense before its checksum is known to fail; the checksum is the better witness.
 */
function damaged(file: string, offset: number, reason: string, verdict?: ChecksumVerdict | null): Error {
  if (verdict && 'reason' in verdict && verdict.offset <= offset) ({ offset, reason } = verdict);
  return new Error(
    `the catalog file ${file} is damaged at byte offset ${offset}: ${reason}. ` +
      'Committed data follows the damage, so portcullis will not cut it off. ' +
      'Restore the data directory from a backup (or `portcullis dump` of a replica), or move the file aside to start empty.',
  );
}
