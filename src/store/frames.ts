import { crc32 } from 'node:zlib';
import { readAllSync } from './files.js';
import { MAX_RECORD, RECORD_HEADER } from './log-format.js';

/** What can be wrong with a frame: the file ends inside it, its length is absurd, or its bytes changed. */
export type FrameProblem = { kind: 'short' } | { kind: 'length'; length: number } | { kind: 'checksum' };

const BLOCK = 64 * 1024;

/**
 * Reads `{ u32 length | u32 crc32 | body }` frames (log-format.ts) front to back,
 * synchronously, in blocks of at least 64 KiB (a larger frame in one read): the audit
 * trail's reads (SHOW AUDIT LOG, `audit verify`, start-up) and the snapshot's checksum
 * walk on a worker thread. The catalog's own start-up reads the snapshot asynchronously
 * instead (log-store.ts), to overlap the disk with decoding.
 */
export class FrameReader {
  /** The block buffer, reused (a fresh one per block page-faulted the snapshot walk to 3× its time). */
  private store = Buffer.alloc(0);
  /** The bytes read and not yet consumed are `store[pos, filled)`. */
  private pos = 0;
  private filled = 0;
  private filePos: number;
  /** Where the next frame starts. */
  offset: number;

  constructor(
    private readonly fd: number,
    start: number,
    /** The file's length: frames end here. */
    readonly end: number,
  ) {
    this.filePos = start;
    this.offset = start;
  }

  get atEnd(): boolean {
    return this.offset >= this.end;
  }

  /** Makes `n` bytes from `pos` available, reading a block; false when the file ends first. */
  private fill(n: number): boolean {
    const left = this.filled - this.pos;
    if (left >= n) return true;
    if (this.filePos >= this.end) return false;
    const want = Math.min(Math.max(BLOCK, n), left + this.end - this.filePos);
    if (this.store.length < want) {
      const next = Buffer.allocUnsafe(want);
      this.store.copy(next, 0, this.pos, this.filled);
      this.store = next;
    } else {
      this.store.copyWithin(0, this.pos, this.filled);
    }
    const got = readAllSync(this.fd, this.store.subarray(left), want - left, this.filePos);
    this.filePos += got;
    this.filled = left + got;
    this.pos = 0;
    return this.filled >= n;
  }

  /**
   * The next frame's body (valid until the next call), or what is wrong with it. A frame
   * that is whole but fails its checksum is stepped over, so a walk can go on.
   */
  frame(): Buffer | FrameProblem {
    if (!this.fill(RECORD_HEADER)) return { kind: 'short' };
    const length = this.store.readUInt32BE(this.pos);
    const sum = this.store.readUInt32BE(this.pos + 4);
    if (length > MAX_RECORD) return { kind: 'length', length };
    if (!this.fill(RECORD_HEADER + length)) return { kind: 'short' };
    const body = this.store.subarray(this.pos + RECORD_HEADER, this.pos + RECORD_HEADER + length);
    this.pos += RECORD_HEADER + length;
    this.offset += RECORD_HEADER + length;
    return crc32(body) === sum ? body : { kind: 'checksum' };
  }
}
