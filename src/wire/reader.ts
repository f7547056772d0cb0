import { PgError } from '../errors/pg-error.js';

/**
 * Bounded reads over one message body. Every read checks the bytes left, so a hostile
 * length or a missing terminator becomes 08P01, never a read past the message.
 */
export class MessageReader {
  private offset: number;
  private readonly end: number;

  constructor(
    private readonly buf: Buffer,
    start = 0,
    end = buf.length,
  ) {
    this.offset = start;
    this.end = end;
  }

  get remaining(): number {
    return this.end - this.offset;
  }

  int16(): number {
    this.need(2);
    const v = this.buf.readInt16BE(this.offset);
    this.offset += 2;
    return v;
  }

  int32(): number {
    this.need(4);
    const v = this.buf.readInt32BE(this.offset);
    this.offset += 4;
    return v;
  }

  byte(): number {
    this.need(1);
    return this.buf[this.offset++]!;
  }

  /** A NUL-terminated string; the terminator must lie inside this message. */
  cstring(): string {
    const nul = this.buf.indexOf(0, this.offset);
    if (nul < 0 || nul >= this.end) throw malformed('unterminated string');
    const s = this.buf.toString('utf8', this.offset, nul);
    this.offset = nul + 1;
    return s;
  }

  bytes(n: number): Buffer {
    if (n < 0) throw malformed('negative length');
    this.need(n);
    const b = this.buf.subarray(this.offset, this.offset + n);
    this.offset += n;
    return b;
  }

  rest(): Buffer {
    return this.bytes(this.remaining);
  }

  /** The whole message must have been consumed (PostgreSQL's pq_getmsgend). */
  end_(): void {
    if (this.offset !== this.end) throw malformed('invalid message format');
  }

  private need(n: number): void {
    if (this.end - this.offset < n) throw malformed('message is shorter than its contents');
  }
}

export const malformed = (what: string): PgError =>
  new PgError('protocol_violation', `invalid frontend message: ${what}`, { severity: 'FATAL' });
