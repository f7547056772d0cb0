import { BackendCode, assertNever, type BackendMessage, type NoticeFields } from './messages.js';

/**
 * Serializes backend messages into one growing buffer, so a burst of messages
 * (RowDescription, DataRows, CommandComplete, ReadyForQuery) costs one socket write.
 */
export class BackendWriter {
  private buf = Buffer.allocUnsafe(1024);
  private len = 0;
  private msgStart = 0;
  private lent = false;

  get size(): number {
    return this.len;
  }

  /** Takes what was written so far (a copy) and starts over. */
  take(): Buffer {
    const out = Buffer.from(this.buf.subarray(0, this.len));
    this.len = 0;
    return out;
  }

  /**
   * Hands out what was written so far without copying it, and starts over. The writer
   * will not touch that memory again unless `reclaim()` says the consumer is done with it
   * (a socket that took every byte at once): then the next response reuses it.
   */
  lend(): Buffer {
    const out = this.buf.subarray(0, this.len);
    this.len = 0;
    this.lent = true;
    return out;
  }

  reclaim(): void {
    this.lent = false;
  }

  /** Appends messages already encoded (by `encode`). */
  raw(messages: Buffer): this {
    this.own();
    return this.bytes(messages);
  }

  /** After lend(): fresh memory to write into, as the lent one may still be in use. */
  private own(): void {
    if (!this.lent) return;
    this.buf = Buffer.allocUnsafe(Math.min(this.buf.length, 64 * 1024));
    this.lent = false;
  }

  write(m: BackendMessage): this {
    this.own();
    switch (m.type) {
      case 'AuthenticationOk':
        return this.begin(BackendCode.Authentication).int32(0).end();
      case 'AuthenticationCleartextPassword':
        return this.begin(BackendCode.Authentication).int32(3).end();
      case 'AuthenticationSASL': {
        this.begin(BackendCode.Authentication).int32(10);
        for (const mech of m.mechanisms) this.cstring(mech);
        return this.byte(0).end();
      }
      case 'AuthenticationSASLContinue':
        return this.begin(BackendCode.Authentication).int32(11).bytes(m.data).end();
      case 'AuthenticationSASLFinal':
        return this.begin(BackendCode.Authentication).int32(12).bytes(m.data).end();
      case 'ParameterStatus':
        return this.begin(BackendCode.ParameterStatus).cstring(m.name).cstring(m.value).end();
      case 'BackendKeyData':
        return this.begin(BackendCode.BackendKeyData).int32(m.processId).int32(m.secretKey).end();
      case 'ReadyForQuery':
        return this.begin(BackendCode.ReadyForQuery).byte(m.status.charCodeAt(0)).end();
      case 'RowDescription': {
        this.begin(BackendCode.RowDescription).int16(m.fields.length);
        for (const f of m.fields) {
          this.cstring(f.name).int32(f.tableOid).int16(f.columnAttr).int32(f.typeOid);
          this.int16(f.typeSize).int32(f.typeModifier).int16(f.format);
        }
        return this.end();
      }
      case 'DataRow': {
        // The hottest message: one bound check for the whole row, then plain writes.
        let bound = 7;
        for (const v of m.values) bound += v === null ? 4 : typeof v === 'string' ? v.length * 3 + 4 : v.length + 4;
        this.ensure(bound);
        this.begin(BackendCode.DataRow).int16(m.values.length);
        for (const v of m.values) {
          if (v === null) this.int32(-1);
          else if (typeof v === 'string') this.lengthPrefixedString(v, false);
          else this.int32(v.length).bytes(v);
        }
        return this.end();
      }
      case 'CommandComplete':
        return this.begin(BackendCode.CommandComplete).cstring(m.tag).end();
      case 'EmptyQueryResponse':
        return this.begin(BackendCode.EmptyQueryResponse).end();
      case 'ErrorResponse':
        return this.notice(BackendCode.ErrorResponse, m.fields);
      case 'NoticeResponse':
        return this.notice(BackendCode.NoticeResponse, m.fields);
      case 'ParseComplete':
        return this.begin(BackendCode.ParseComplete).end();
      case 'BindComplete':
        return this.begin(BackendCode.BindComplete).end();
      case 'CloseComplete':
        return this.begin(BackendCode.CloseComplete).end();
      case 'NoData':
        return this.begin(BackendCode.NoData).end();
      case 'ParameterDescription': {
        this.begin(BackendCode.ParameterDescription).int16(m.typeOids.length);
        for (const oid of m.typeOids) this.int32(oid);
        return this.end();
      }
      case 'PortalSuspended':
        return this.begin(BackendCode.PortalSuspended).end();
      case 'NegotiateProtocolVersion': {
        this.begin(BackendCode.NegotiateProtocolVersion).int32((3 << 16) | m.newestMinor);
        this.int32(m.unrecognized.length);
        for (const o of m.unrecognized) this.cstring(o);
        return this.end();
      }
      default:
        return assertNever(m);
    }
  }

  /** A single byte outside any message: the answer to SSLRequest / GSSENCRequest. */
  rawByte(b: number): this {
    return this.byte(b);
  }

  private notice(code: number, f: NoticeFields): this {
    this.begin(code);
    // Field codes from "Error and Notice Message Fields".
    this.byte(0x53).cstring(f.severity); // S
    this.byte(0x56).cstring(f.severity); // V (non-localized)
    this.byte(0x43).cstring(f.code); // C
    this.byte(0x4d).cstring(f.message); // M
    if (f.detail !== undefined) this.byte(0x44).cstring(f.detail); // D
    if (f.hint !== undefined) this.byte(0x48).cstring(f.hint); // H
    if (f.position !== undefined) this.byte(0x50).cstring(String(f.position)); // P
    return this.byte(0).end();
  }

  private begin(code: number): this {
    this.ensure(5);
    this.buf[this.len] = code;
    this.msgStart = this.len + 1;
    this.len += 5;
    return this;
  }

  private end(): this {
    this.buf.writeInt32BE(this.len - this.msgStart, this.msgStart);
    return this;
  }

  private ensure(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.len + n) cap *= 2;
    const next = Buffer.allocUnsafe(cap);
    this.buf.copy(next, 0, 0, this.len);
    this.buf = next;
  }

  private byte(b: number): this {
    this.ensure(1);
    this.buf[this.len++] = b;
    return this;
  }

  private int16(v: number): this {
    this.ensure(2);
    this.buf.writeInt16BE(v, this.len);
    this.len += 2;
    return this;
  }

  private int32(v: number): this {
    this.ensure(4);
    this.buf.writeInt32BE(v | 0, this.len);
    this.len += 4;
    return this;
  }

  private bytes(b: Buffer): this {
    this.ensure(b.length);
    b.copy(this.buf, this.len);
    this.len += b.length;
    return this;
  }

  private cstring(s: string): this {
    // A NUL inside a string would end it early on the client: strip it (PostgreSQL text cannot hold NUL).
    const clean = s.includes('\0') ? s.replaceAll('\0', '') : s;
    const n = Buffer.byteLength(clean);
    this.ensure(n + 1);
    this.buf.write(clean, this.len, 'utf8');
    this.len += n;
    this.buf[this.len++] = 0;
    return this;
  }

  private lengthPrefixedString(s: string, check = true): this {
    // At most 3 bytes per UTF-16 unit: reserve that, write once, then fill in the length.
    if (check) this.ensure(s.length * 3 + 4);
    const buf = this.buf;
    const start = this.len + 4;
    let n = 0;
    if (s.length <= 32) {
      // Short values (names, flags, timestamps) are mostly ASCII: copying them by hand
      // is cheaper than a call into the native UTF-8 encoder.
      for (; n < s.length; n++) {
        const c = s.charCodeAt(n);
        if (c >= 0x80) break;
        buf[start + n] = c;
      }
      if (n < s.length) n += buf.write(s.slice(n), start + n, 'utf8');
    } else n = buf.write(s, start, 'utf8');
    buf.writeInt32BE(n, this.len);
    this.len = start + n;
    return this;
  }
}

export function encode(...messages: BackendMessage[]): Buffer {
  const w = new BackendWriter();
  for (const m of messages) w.write(m);
  return w.take();
}
