import { closeSync, constants, fstatSync, fsyncSync, ftruncateSync, openSync, readSync, renameSync } from 'node:fs';
import { datasync, syncDirSync, writeAllSync } from '../store/files.js';
import path from 'node:path';
import { fileHeader, frameRecord, HEADER_SIZE, openBody } from '../store/log-format.js';
import { FrameReader, type FrameProblem } from '../store/frames.js';
import { PgError } from '../errors/pg-error.js';
import { keyFor, PLAINTEXT, type Cipher, type Keys } from '../store/cipher.js';
import { commitOf, GENESIS, readRecord, sealRecord, type AuditEntry, type AuditRecord } from './audit-record.js';
import { ChainCheck, type AuditLog } from './audit-log.js';

/**
 * The audit trail's file, `audit.log` in the data directory:
 *
 *   header = "PCUAUDT" 0x00 | u32 version (1) | u32 key id (0: not encrypted) | u64 0
 *   record = u32 length | u32 CRC-32 | body, the body a record's JSON (audit-record.ts),
 *            sealed with AES-256-GCM when the data directory is encrypted
 *
 * Append-only: no statement removes a record; compaction never touches it.
 */
export const AUDIT_FILE = 'audit.log';
export const AUDIT_MAGIC = Buffer.from('PCUAUDT\0', 'latin1');
const AUDIT_VERSION = 1;

/**
 * Records of committed changes wait this long for others before they are written: they are
 * durable already (in the catalog log record of their commit), and a write per commit cost
 * the event loop ~12 µs of every GRANT (a tenth of its time at 8 clients). Readers of the
 * trail (`settle`), logins and denials (which need their own fdatasync) write at once.
 */
const LAZY_WRITE_MS = 10;

interface Queued {
  entry: AuditEntry;
  /** The catalog commit that carried a change's record (its durability is the log's). */
  commit: number | null;
  /** Whether the record needs an fdatasync of its own (logins and denials do). */
  sync: boolean;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/**
 * What the records of one enqueue but the last settle: they are written in the same batch
 * (whole or not at all), so the last one's resolve or reject answers for all of them.
 */
const noop = () => {};

/** One record as found by a walk over the file: where, and its text or what is wrong. */
interface Found {
  index: number;
  offset: number;
  text: string | null;
  problem: string | null;
}

/**
 * The hash-chained audit trail. Logins and denials are group-committed like the catalog's:
 * what queues up in one turn of the event loop is written at once and shares one fdatasync.
 * A change's records ride in its catalog log record (one fdatasync for both) and are
 * written here within LAZY_WRITE_MS of the commit, without a flush of their own; a crash
 * before they reach this file is repaired at start-up from the log (`recover`), and compaction
 * flushes this file before it drops log records. The chain head advances only once a
 * batch is written, so a failed write (disk full) leaves the file as it was.
 */
export class AuditTrail implements AuditLog {
  private seq = 0;
  private head = GENESIS;
  private queue: Queued[] = [];
  private writing: Promise<void> | null = null;
  /** The timer that writes records of committed changes, which wait for company (LAZY_WRITE_MS). */
  private lazy: NodeJS.Timeout | null = null;
  /** Where each record starts (file), or the records (memory). */
  private readonly offsets: number[] = [];
  private readonly memory: AuditRecord[] | null;
  private size = 0;
  private fd: number | null = null;
  /** The last catalog commit whose records are in the file. */
  private lastCommit = 0;
  private cipher: Cipher | null;

  private constructor(
    readonly file: string | null,
    keys: Keys,
  ) {
    this.cipher = keys.write;
    this.memory = file === null ? [] : null;
  }

  /** In memory (nothing survives the process): `--memory`, golden tests. */
  static inMemory(): AuditTrail {
    return new AuditTrail(null, PLAINTEXT);
  }

  /**
   * Opens (or creates) the data directory's trail. A torn last record (a crash mid-write)
   * is cut off with a warning; anything else wrong refuses to start, naming the record.
   */
  static open(dir: string, keys: Keys, warn: (line: string) => void): AuditTrail {
    const t = new AuditTrail(path.join(dir, AUDIT_FILE), keys);
    t.load(keys, warn);
    return t;
  }

  private load(keys: Keys, warn: (line: string) => void): void {
    const file = this.file!;
    let fd: number;
    try {
      fd = openSync(file, constants.O_RDWR);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      fd = openSync(file, constants.O_RDWR | constants.O_CREAT | constants.O_EXCL, 0o600);
      writeAllSync(fd, fileHeader(AUDIT_MAGIC, AUDIT_VERSION, 0, this.cipher?.keyId ?? 0), 0);
      fsyncSync(fd);
      syncDirSync(path.dirname(file));
    }
    this.fd = fd;
    let walk: Walk;
    try {
      walk = walkFile(fd, keys, file);
    } catch (err) {
      closeSync(fd);
      this.fd = null;
      throw err;
    }
    // Records go on under the key the file is under (the one given, except in a rekey).
    this.cipher = walk.cipher;
    let last: AuditRecord | null = null;
    for (const r of walk.records) {
      if (r.problem) {
        closeSync(fd);
        this.fd = null;
        throw new Error(`the audit trail ${file} is damaged at record ${r.index + 1} (byte offset ${r.offset}): ${r.problem}. ` +
          'Run `portcullis audit verify` for the details; keep the file as evidence and move it aside to start a new trail.');
      }
      this.offsets.push(r.offset);
      last = r.text === null ? null : (readRecord(r.text) as AuditRecord);
      const commit = r.text === null ? null : commitOf(r.text);
      if (commit !== null) this.lastCommit = commit;
    }
    if (walk.torn) {
      warn(`warning: ${file}: discarding a torn final record (${walk.torn.bytes} bytes at offset ${walk.torn.offset}) left by an interrupted write`);
      ftruncateSync(fd, walk.torn.offset);
      fsyncSync(fd);
    }
    this.size = walk.end;
    if (last) {
      this.seq = last.seq;
      this.head = last.hash;
    }
  }

  /** Records the entry; resolves once it is durable (or, in memory, at once). */
  append(entry: AuditEntry): Promise<void> {
    return this.enqueue([entry], null, true);
  }

  /**
   * The records of catalog commit `commit`, already durable in the catalog log: written
   * without a flush of their own. Resolves once written.
   */
  appendCommitted(entries: AuditEntry[], commit: number): Promise<void> {
    return this.enqueue(entries, commit, false);
  }

  /**
   * Start-up: the records of catalog commits the file does not have yet (a crash after the
   * commit, before its records were written here), from the log records that carried them.
   */
  async recover(carried: { commit: number; entries: AuditEntry[] }[]): Promise<number> {
    const missing = carried.filter((c) => c.commit > this.lastCommit);
    // A failure here fails start-up: the records are still in the log for the next attempt.
    await Promise.all(missing.map((c) => this.appendCommitted(c.entries, c.commit)));
    await this.sync();
    return missing.reduce((n, c) => n + c.entries.length, 0);
  }

  /** Queues records written together (a batch is written whole or not at all): one promise for all. */
  private enqueue(entries: AuditEntry[], commit: number | null, sync: boolean): Promise<void> {
    if (this.memory) {
      for (const entry of entries) {
        const seq = ++this.seq;
        const { text, hash } = sealRecord(entry, seq, this.head, commit);
        this.head = hash;
        this.memory.push(JSON.parse(text) as AuditRecord);
      }
      return Promise.resolve();
    }
    if (entries.length === 0) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const last = entries.length - 1;
      entries.forEach((entry, i) => this.queue.push(i === last ? { entry, commit, sync, resolve, reject } : { entry, commit, sync, resolve: noop, reject: noop }));
      if (sync) this.writeSoon();
      else this.lazy ??= setTimeout(() => this.writeSoon(), LAZY_WRITE_MS);
    });
  }

  /** Starts a write of the queue at the end of this event-loop turn, unless one is under way. */
  private writeSoon(): void {
    if (this.lazy) clearTimeout(this.lazy);
    this.lazy = null;
    if (!this.writing) this.writing = new Promise<void>((r) => setImmediate(r)).then(() => this.drain());
  }

  /** Everything appended so far, written and flushed (before compaction drops log records). */
  async sync(): Promise<void> {
    await this.settle();
    const fd = this.fd;
    if (fd !== null) await datasync(fd);
  }

  /** Waits until everything appended so far is on disk (or has failed). */
  async settle(): Promise<void> {
    if (this.lazy) this.writeSoon();
    while (this.writing) await this.writing;
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.queue;
      this.queue = [];
      try {
        await this.writeBatch(batch);
        for (const q of batch) q.resolve();
      } catch (err) {
        for (const q of batch) q.reject(err);
      }
    }
    this.writing = null;
  }

  private async writeBatch(entries: Queued[]): Promise<void> {
    const fd = this.fd;
    if (fd === null) throw new Error('the audit trail is closed');
    let seq = this.seq;
    let head = this.head;
    const recs: Buffer[] = [];
    const starts: number[] = [];
    let at = this.size;
    let lastCommit = this.lastCommit;
    for (const q of entries) {
      const sealed = sealRecord(q.entry, ++seq, head, q.commit);
      if (q.commit !== null) lastCommit = q.commit;
      head = sealed.hash;
      const rec = frameRecord(sealed.text, this.cipher, AUDIT_MAGIC);
      starts.push(at);
      at += rec.length;
      recs.push(rec);
    }
    try {
      writeAllSync(fd, Buffer.concat(recs), this.size);
      if (entries.some((q) => q.sync)) await datasync(fd);
    } catch (err) {
      try {
        ftruncateSync(fd, this.size); // nothing of a failed batch stays
      } catch {
        /* the next write starts at this.size anyway */
      }
      throw err;
    }
    this.seq = seq;
    this.head = head;
    this.size = at;
    this.lastCommit = lastCommit;
    this.offsets.push(...starts);
  }

  /** The chain's head: the last record's number and hash (an anchor to keep elsewhere). */
  get last(): { seq: number; hash: string } {
    return { seq: this.seq, hash: this.head };
  }

  /**
   * The last `limit` records (all when null), oldest first, read from the file as they are
   * iterated: the trail is never held in memory whole. What was appended is there only
   * once `settle()` has resolved (records of changes are written in batches).
   */
  *records(limit: number | null): Generator<AuditRecord> {
    if (this.memory) {
      yield* this.memory.slice(limit === null ? 0 : Math.max(0, this.memory.length - limit));
      return;
    }
    const count = this.offsets.length;
    const from = limit === null ? 0 : Math.max(0, count - limit);
    if (from >= count || this.fd === null) return;
    const reader = new FrameReader(this.fd, this.offsets[from]!, this.size);
    for (let i = from; i < count; i++) {
      // The file changed under the server since start-up checked it: said, never skipped.
      const r = reader.frame();
      const plain = Buffer.isBuffer(r) ? openBody(r, this.cipher, AUDIT_MAGIC) : problemOf(r);
      if (typeof plain === 'string') {
        throw new PgError('data_corrupted', `audit record ${i + 1} (byte offset ${this.offsets[i]}) is damaged: ${plain}`, {
          hint: 'Run `portcullis audit verify` for the details, and keep the file as evidence.',
        });
      }
      yield JSON.parse(plain.toString('utf8')) as AuditRecord;
    }
  }

  /** The last `limit` records of `tenant` (see AuditLog.read), read from the file as they are iterated. */
  async read(limit: number | null, tenant: number | null): Promise<Iterable<AuditRecord>> {
    return tenant === null ? this.records(limit) : lastOf(this.records(null), (r) => r.tenant === tenant, limit);
  }

  /** Rewrites every record under a new key (portcullis rekey); the chain is unchanged. */
  rekey(keys: Keys): void {
    if (this.fd === null || !this.file) return;
    const walk = walkFile(this.fd, { write: keys.write, read: [this.cipher] }, this.file);
    const tmp = `${this.file}.tmp`;
    const out = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC, 0o600);
    try {
      let at = 0;
      const put = (b: Buffer) => {
        writeAllSync(out, b, at);
        at += b.length;
      };
      put(fileHeader(AUDIT_MAGIC, AUDIT_VERSION, 0, keys.write?.keyId ?? 0));
      for (const r of walk.records) {
        if (r.problem || r.text === null) throw new Error(`audit record ${r.index + 1} (byte offset ${r.offset}): ${r.problem}; rekey stopped, nothing changed`);
        put(frameRecord(r.text, keys.write, AUDIT_MAGIC));
      }
      fsyncSync(out);
    } finally {
      closeSync(out);
    }
    renameSync(tmp, this.file);
    syncDirSync(path.dirname(this.file));
    closeSync(this.fd);
    this.fd = null;
  }

  async close(): Promise<void> {
    await this.settle();
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}

/** The last `limit` items that pass `keep` (all when null), holding at most `limit` of them. */
function* lastOf<T>(items: Iterable<T>, keep: (t: T) => boolean, limit: number | null): Generator<T> {
  const ring: T[] = [];
  for (const t of items) {
    if (!keep(t)) continue;
    ring.push(t);
    if (limit !== null && ring.length > limit) ring.shift();
    if (limit === null && ring.length > 0) yield ring.shift()!;
  }
  yield* ring;
}

// ---- reading the file ---------------------------------------------------------------------

interface Walk {
  records: Found[];
  torn: { offset: number; bytes: number } | null;
  end: number;
  cipher: Cipher | null;
}

function problemOf(p: FrameProblem): string {
  if (p.kind === 'length') return `record length ${p.length} is implausible`;
  return p.kind === 'checksum' ? 'checksum mismatch (edited or damaged)' : 'cut short';
}

/** Every record of the file, each with its text or its problem (the key chosen from `keys`). */
function walkFile(fd: number, keys: Keys, file: string): Walk {
  const size = fstatSync(fd).size;
  const head = Buffer.alloc(HEADER_SIZE);
  if (readSync(fd, head, 0, HEADER_SIZE, 0) !== HEADER_SIZE || !head.subarray(0, 8).equals(AUDIT_MAGIC)) {
    throw new Error(`${file} is not a portcullis audit trail (bad magic)`);
  }
  if (head.readUInt32BE(8) !== AUDIT_VERSION) throw new Error(`${file}: unsupported audit format version ${head.readUInt32BE(8)}`);
  const cipher = keyFor(file, head.readUInt32BE(12), keys);
  const reader = new FrameReader(fd, HEADER_SIZE, size);
  const records: Found[] = [];
  for (let index = 0; ; index++) {
    const offset = reader.offset;
    if (offset >= size) return { records, torn: null, end: offset, cipher };
    const r = reader.frame();
    if (!Buffer.isBuffer(r)) {
      if (r.kind === 'short') return { records, torn: { offset, bytes: size - offset }, end: offset, cipher };
      records.push({ index, offset, text: null, problem: problemOf(r) });
      return { records, torn: null, end: size, cipher };
    }
    const plain = openBody(r, cipher, AUDIT_MAGIC);
    if (typeof plain === 'string') records.push({ index, offset, text: null, problem: plain });
    else records.push({ index, offset, text: plain.toString('utf8'), problem: null });
  }
}

// ---- portcullis audit verify ----------------------------------------------------------------

export type Verdict =
  | { ok: true; records: number; head: string }
  | { ok: false; record: number; offset: number; reason: string; records: number };

/**
 * Checks the whole chain: every record whole, its hash right, numbered one after the other,
 * each naming the previous one's hash. The first record that fails is named.
 */
export function verifyTrail(dir: string, keys: Keys): Verdict {
  const file = path.join(dir, AUDIT_FILE);
  const fd = openSync(file, constants.O_RDONLY);
  try {
    const walk = walkFile(fd, keys, file);
    const chain = new ChainCheck();
    for (const r of walk.records) {
      const wrong = r.problem ?? (r.text === null ? 'unreadable' : chain.add(r.text));
      if (wrong) return { ok: false, record: r.index + 1, offset: r.offset, reason: wrong, records: walk.records.length };
    }
    if (walk.torn) {
      return { ok: false, record: walk.records.length + 1, offset: walk.torn.offset, reason: `a partial record (${walk.torn.bytes} bytes) ends the file`, records: walk.records.length };
    }
    return { ok: true, records: walk.records.length, head: chain.head };
  } finally {
    closeSync(fd);
  }
}
