import { mkdir, open, readFile, type FileHandle } from 'node:fs/promises';
import { constants } from 'node:fs';
import path from 'node:path';
import type { Mutation } from '../catalog/model.js';
import { decodeLog, encodeRecord, header } from './log-format.js';
import type { Store } from './store.js';
import { lockDataDir } from './dir-lock.js';

export const LOG_FILE = 'catalog.log';

/**
 * How records reach the file. The default is the file handle itself; tests inject one that
 * fails (ENOSPC, EIO, a short write) to prove that a failed commit leaves nothing behind.
 */
export interface LogIo {
  write(fh: FileHandle, data: Buffer): Promise<void>;
  datasync(fh: FileHandle): Promise<void>;
}

export const fileIo: LogIo = {
  write: async (fh, data) => {
    // A write may be short; an append-only file must get every byte or an error.
    for (let off = 0; off < data.length; ) off += (await fh.write(data, off, data.length - off)).bytesWritten;
  },
  datasync: (fh) => fh.datasync(),
};

/**
 * The embedded catalog: an append-only, checksummed log in the data directory.
 * Every append is written and fdatasync'ed before it resolves, so a commit is durable
 * before its CommandComplete is sent (SPEC §7).
 */
export class LogStore implements Store {
  private fh: FileHandle | null = null;
  /** Appends are chained: each waits for the one before, so records never interleave. */
  private tail: Promise<void> = Promise.resolve();
  /** Bytes of whole records on disk: a failed write is cut back to this. */
  private size = 0;

  constructor(
    readonly dir: string,
    private readonly warn: (line: string) => void = (l) => process.stderr.write(`${l}\n`),
    private readonly io: LogIo = fileIo,
  ) {}

  get description(): string {
    return `data directory ${path.resolve(this.dir)}`;
  }

  private unlock: (() => Promise<void>) | null = null;

  async load(): Promise<Mutation[][]> {
    await mkdir(this.dir, { recursive: true });
    this.unlock = await lockDataDir(this.dir, this.warn);
    try {
      return await this.open();
    } catch (err) {
      await this.unlock();
      this.unlock = null;
      throw err;
    }
  }

  private async open(): Promise<Mutation[][]> {
    const file = path.join(this.dir, LOG_FILE);
    let buf: Buffer | null = null;
    try {
      buf = await readFile(file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    if (buf === null || buf.length === 0) {
      this.fh = await open(file, constants.O_CREAT | constants.O_WRONLY | constants.O_APPEND, 0o600);
      await this.fh.write(header());
      await this.fh.sync();
      await syncDir(this.dir);
      this.size = header().length;
      return [];
    }
    const res = decodeLog(buf);
    if (res.kind === 'damaged') {
      throw new Error(
        `the catalog log ${file} is damaged at byte offset ${res.offset}: ${res.reason}. ` +
          'Committed data follows the damage, so portcullis will not cut it off. ' +
          'Restore the data directory from a backup (or `portcullis dump` of a replica), or move the file aside to start empty.',
      );
    }
    this.fh = await open(file, constants.O_WRONLY, 0o600);
    if (res.kind === 'torn') {
      this.warn(`warning: ${file}: discarding a torn final record (${res.tornBytes} bytes at offset ${res.end}) left by an interrupted write`);
      await this.fh.truncate(res.end);
      await this.fh.sync();
    }
    await this.fh.close();
    this.fh = await open(file, constants.O_WRONLY | constants.O_APPEND, 0o600);
    this.size = res.end;
    return res.records as Mutation[][];
  }

  append(commit: Mutation[]): Promise<void> {
    const rec = encodeRecord(commit);
    const next = this.tail.then(async () => {
      const fh = this.fh;
      if (!fh) throw new Error('catalog log is not open');
      try {
        await this.io.write(fh, rec);
        await this.io.datasync(fh);
        this.size += rec.length;
      } catch (err) {
        // Leave no partial record behind (ENOSPC mid-write): later commits must follow whole ones.
        await fh.truncate(this.size).catch(() => undefined);
        throw err;
      }
    });
    // A failed append must not poison the chain for later commits.
    this.tail = next.catch(() => undefined);
    return next;
  }

  async close(): Promise<void> {
    await this.tail;
    await this.fh?.close();
    this.fh = null;
    await this.unlock?.();
    this.unlock = null;
  }
}

async function syncDir(dir: string): Promise<void> {
  const d = await open(dir, constants.O_RDONLY);
  try {
    await d.sync();
  } finally {
    await d.close();
  }
}
