import { PgError } from '../errors/pg-error.js';
import { TypeOid } from './messages.js';

/**
 * Binary formats ("Formats and Format Codes" in the protocol docs; each type's *send* and
 * *recv* functions in PostgreSQL's src/backend/utils/adt). The engine works in text: a
 * result value is its PostgreSQL text output, a parameter is handed to it as text. Binary
 * is a wire encoding only, so the conversions live here, one codec per type, both ways.
 *
 * Drivers choose binary on their own: asyncpg for every result and parameter, pgJDBC after
 * a statement's fifth execution, psycopg 3 for small ints (int2), floats (float8) and
 * datetimes (timestamptz), or for everything with a binary cursor.
 */

interface Codec {
  /** RowDescription's type size: the fixed width in bytes, -1 for variable width. */
  readonly size: number;
  /** PostgreSQL's text output of a value → its binary form. */
  toBinary(text: string): Buffer;
  /** A binary value → the text the engine reads, as PostgreSQL's text output would be. */
  toText(data: Buffer): string;
}

/** Bad bytes in a binary value: PostgreSQL's 22P03 invalid_binary_representation. */
class BadBinary extends Error {}

const need = (data: Buffer, n: number): void => {
  if (data.length !== n) throw new BadBinary();
};

function fixedInt(size: 2 | 4 | 8, signed = true): Codec {
  return {
    size,
    toBinary(text) {
      const b = Buffer.alloc(size);
      if (size === 8) b.writeBigInt64BE(BigInt(text.trim()));
      else if (size === 4) signed ? b.writeInt32BE(Number(text)) : b.writeUInt32BE(Number(text));
      else b.writeInt16BE(Number(text));
      return b;
    },
    toText(data) {
      need(data, size);
      if (size === 8) return data.readBigInt64BE(0).toString();
      if (size === 4) return String(signed ? data.readInt32BE(0) : data.readUInt32BE(0));
      return String(data.readInt16BE(0));
    },
  };
}

/** float4 / float8: IEEE 754, big-endian; text as PostgreSQL's shortest round-trip output. */
function float(size: 4 | 8): Codec {
  return {
    size,
    toBinary(text) {
      const b = Buffer.alloc(size);
      const v = parseFloatText(text);
      if (size === 8) b.writeDoubleBE(v);
      else b.writeFloatBE(v);
      return b;
    },
    toText(data) {
      need(data, size);
      return size === 8 ? floatText(data.readDoubleBE(0), 15) : floatText(data.readFloatBE(0), 6, true);
    },
  };
}

function parseFloatText(text: string): number {
  const t = text.trim().toLowerCase();
  if (t === 'nan') return NaN;
  if (t === 'infinity' || t === 'inf' || t === '+infinity') return Infinity;
  if (t === '-infinity' || t === '-inf') return -Infinity;
  return Number(t);
}

/**
 * float8out / float4out with extra_float_digits > 0 (the default): the shortest text that
 * reads back as the same value, fixed notation for decimal exponents from -4 up to 15
 * (float8) or 6 (float4), exponent notation with at least two exponent digits otherwise.
 */
function floatText(v: number, fixedBelow: number, single = false): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return 'Infinity';
  if (v === -Infinity) return '-Infinity';
  if (v === 0) return Object.is(v, -0) ? '-0' : '0';
  let digits = v.toExponential(); // JavaScript's shortest round trip for a double
  if (single) {
    for (let p = 1; p <= 9; p++) {
      const candidate = v.toExponential(p - 1);
      if (Math.fround(Number(candidate)) === v) {
        digits = candidate;
        break;
      }
    }
  }
  const [mantissa, exp] = digits.split('e') as [string, string];
  const e = Number(exp);
  if (e >= -4 && e < fixedBelow) return String(Number(digits));
  return `${mantissa}e${e < 0 ? '-' : '+'}${String(Math.abs(e)).padStart(2, '0')}`;
}

const utf8: Codec = {
  size: -1,
  toBinary: (text) => Buffer.from(text, 'utf8'),
  toText: (data) => data.toString('utf8'),
};

/** name: text of at most NAMEDATALEN - 1 bytes, sent like text. */
const name: Codec = { ...utf8, size: 64 };

/** jsonb's binary form is a version byte (1) and the JSON text. */
const jsonb: Codec = {
  size: -1,
  toBinary: (text) => Buffer.concat([Buffer.from([1]), Buffer.from(text, 'utf8')]),
  toText(data) {
    if (data.length < 1 || data[0] !== 1) throw new BadBinary();
    return data.subarray(1).toString('utf8');
  },
};

const bool: Codec = {
  size: 1,
  toBinary(text) {
    const t = text.trim().toLowerCase();
    return Buffer.from([t === 't' || t === 'true' || t === 'on' || t === 'yes' || t === '1' ? 1 : 0]);
  },
  toText(data) {
    need(data, 1);
    return data[0] ? 'true' : 'false';
  },
};

/** bytea: raw bytes in binary; `\x` hex (bytea_output = hex) or the escape format in text. */
const bytea: Codec = {
  size: -1,
  toBinary(text) {
    if (text.startsWith('\\x')) return Buffer.from(text.slice(2), 'hex');
    const out: number[] = [];
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c !== 0x5c) out.push(c);
      else if (text[i + 1] === '\\') out.push(0x5c), i++;
      else out.push(parseInt(text.slice(i + 1, i + 4), 8)), (i += 3);
    }
    return Buffer.from(out);
  },
  toText: (data) => `\\x${data.toString('hex')}`,
};

// ---- date and time: microseconds (timestamps) or days (date) since 2000-01-01 -------------

const POSTGRES_EPOCH_MS = Date.UTC(2000, 0, 1);
const INT64_MAX = 0x7fffffffffffffffn;
const INT64_MIN = -0x8000000000000000n;

/** PostgreSQL's ISO output: `2024-05-01 12:00:00.5+02`, `-infinity`, `0044-03-15 ... BC`. */
const TIMESTAMP_TEXT =
  /^\s*(\d{4,})-(\d{1,2})-(\d{1,2})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?)?\s*(Z|[+-]\d{1,2}(?::?\d{2}(?::?\d{2})?)?)?(\s+BC)?\s*$/i;

/** Microseconds since 2000-01-01 00:00 of a timestamp's text (its zone applied when `zoned`). */
function parseTimestampText(text: string, zoned: boolean): bigint {
  const t = text.trim().toLowerCase();
  if (t === 'infinity') return INT64_MAX;
  if (t === '-infinity') return INT64_MIN;
  const m = TIMESTAMP_TEXT.exec(text);
  if (!m) throw new BadBinary();
  const [, y, mo, d, h = '0', mi = '0', s = '0', frac = '', zone, bc] = m;
  const year = bc ? 1 - Number(y) : Number(y);
  const utc = new Date(0);
  utc.setUTCFullYear(year, Number(mo) - 1, Number(d));
  utc.setUTCHours(Number(h), Number(mi), Number(s), 0);
  let micros = (BigInt(utc.getTime()) - BigInt(POSTGRES_EPOCH_MS)) * 1000n + BigInt(frac.padEnd(6, '0') || '0');
  if (zoned && zone && zone.toUpperCase() !== 'Z') {
    const z = /^([+-])(\d{1,2})(?::?(\d{2}))?(?::?(\d{2}))?$/.exec(zone)!;
    const offset = (Number(z[2]) * 3600 + Number(z[3] ?? 0) * 60 + Number(z[4] ?? 0)) * (z[1] === '-' ? -1 : 1);
    micros -= BigInt(offset) * 1_000_000n;
  }
  return micros;
}

/** Text of microseconds since 2000-01-01, in UTC with `+00` when `zoned` (the engine reads both). */
function timestampText(micros: bigint, zoned: boolean): string {
  if (micros === INT64_MAX) return 'infinity';
  if (micros === INT64_MIN) return '-infinity';
  let ms = micros / 1000n;
  let us = micros % 1000n;
  if (us < 0n) {
    us += 1000n;
    ms -= 1n;
  }
  const d = new Date(Number(ms) + POSTGRES_EPOCH_MS);
  if (Number.isNaN(d.getTime())) throw new BadBinary();
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  const year = d.getUTCFullYear();
  let out = `${p(year > 0 ? year : 1 - year, 4)}-${p(d.getUTCMonth() + 1)}-${p(d.getUTCDate())} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())}`;
  const fraction = d.getUTCMilliseconds() * 1000 + Number(us);
  if (fraction !== 0) out += `.${p(fraction, 6)}`.replace(/0+$/, '');
  if (zoned) out += '+00';
  return year > 0 ? out : `${out} BC`;
}

function timestamp(zoned: boolean): Codec {
  return {
    size: 8,
    toBinary(text) {
      const b = Buffer.alloc(8);
      b.writeBigInt64BE(parseTimestampText(text, zoned));
      return b;
    },
    toText(data) {
      need(data, 8);
      return timestampText(data.readBigInt64BE(0), zoned);
    },
  };
}

const DAY_MICROS = 86_400_000_000n;
const INT32_MAX = 0x7fffffff;
const INT32_MIN = -0x80000000;

const date: Codec = {
  size: 4,
  toBinary(text) {
    const t = text.trim().toLowerCase();
    const b = Buffer.alloc(4);
    if (t === 'infinity') b.writeInt32BE(INT32_MAX);
    else if (t === '-infinity') b.writeInt32BE(INT32_MIN);
    else b.writeInt32BE(Number(parseTimestampText(text, false) / DAY_MICROS));
    return b;
  },
  toText(data) {
    need(data, 4);
    const days = data.readInt32BE(0);
    if (days === INT32_MAX) return 'infinity';
    if (days === INT32_MIN) return '-infinity';
    const text = timestampText(BigInt(days) * DAY_MICROS, false);
    return text.replace(/ 00:00:00/, '');
  },
};

// ---- one-dimensional arrays ------------------------------------------------------------

/**
 * Array binary form (array_send): ndim, has-nulls flag, element type; per dimension its
 * length and lower bound; then each element as a length-prefixed binary value (-1: NULL).
 */
function array(elementOid: number): Codec {
  return {
    size: -1,
    toBinary(text) {
      const element = CODECS.get(elementOid)!;
      const items = parseArrayText(text);
      const head = Buffer.alloc(items.length === 0 ? 12 : 20);
      head.writeInt32BE(items.length === 0 ? 0 : 1, 0);
      head.writeInt32BE(items.includes(null) ? 1 : 0, 4);
      head.writeUInt32BE(elementOid, 8);
      if (items.length > 0) {
        head.writeInt32BE(items.length, 12);
        head.writeInt32BE(1, 16);
      }
      const parts: Buffer[] = [head];
      for (const item of items) {
        const len = Buffer.alloc(4);
        if (item === null) {
          len.writeInt32BE(-1);
          parts.push(len);
          continue;
        }
        const value = element.toBinary(item);
        len.writeInt32BE(value.length);
        parts.push(len, value);
      }
      return Buffer.concat(parts);
    },
    toText(data) {
      const element = CODECS.get(elementOid)!;
      if (data.length < 12) throw new BadBinary();
      const ndim = data.readInt32BE(0);
      if (data.readUInt32BE(8) !== elementOid) throw new BadBinary();
      if (ndim === 0) return '{}';
      if (ndim !== 1) {
        throw new PgError('feature_not_supported', 'binary arrays of more than one dimension are not supported', { hint: 'Send the parameter in text format.' });
      }
      if (data.length < 20) throw new BadBinary();
      const count = data.readInt32BE(12);
      const items: (string | null)[] = [];
      let at = 20;
      for (let i = 0; i < count; i++) {
        if (at + 4 > data.length) throw new BadBinary();
        const len = data.readInt32BE(at);
        at += 4;
        if (len === -1) {
          items.push(null);
          continue;
        }
        if (len < 0 || at + len > data.length) throw new BadBinary();
        items.push(element.toText(data.subarray(at, at + len)));
        at += len;
      }
      if (at !== data.length) throw new BadBinary();
      return formatArrayText(items);
    },
  };
}

/** array_in for one dimension: `{a,"b c",NULL}`; quoted items keep backslash escapes. */
function parseArrayText(text: string): (string | null)[] {
  const t = text.trim();
  if (!t.startsWith('{') || !t.endsWith('}')) throw new BadBinary();
  const body = t.slice(1, -1);
  const items: (string | null)[] = [];
  if (body.trim() === '') return items;
  let i = 0;
  for (;;) {
    while (body[i] === ' ') i++;
    if (body[i] === '{') {
      throw new PgError('feature_not_supported', 'binary arrays of more than one dimension are not supported', { hint: 'Request text format results.' });
    }
    let item = '';
    let quoted = false;
    if (body[i] === '"') {
      quoted = true;
      i++;
      while (i < body.length && body[i] !== '"') {
        if (body[i] === '\\') i++;
        item += body[i] ?? '';
        i++;
      }
      i++; // closing quote
    } else {
      while (i < body.length && body[i] !== ',') {
        if (body[i] === '\\') i++;
        item += body[i] ?? '';
        i++;
      }
      item = item.trim();
    }
    items.push(!quoted && item.toLowerCase() === 'null' ? null : item);
    while (body[i] === ' ') i++;
    if (i >= body.length) return items;
    if (body[i] !== ',') throw new BadBinary();
    i++;
  }
}

/** array_out: an item is quoted when empty, NULL-like, or holding a delimiter or space. */
function formatArrayText(items: readonly (string | null)[]): string {
  return `{${items
    .map((s) => (s === null ? 'NULL' : s === '' || /[{},"\\\s]/.test(s) || s.toLowerCase() === 'null' ? `"${s.replace(/["\\]/g, '\\$&')}"` : s))
    .join(',')}}`;
}

/** void (a function that returns nothing, as pg_advisory_unlock_all()): empty either way. */
const voidCodec: Codec = { size: 4, toBinary: () => Buffer.alloc(0), toText: () => '' };

// ---- the table --------------------------------------------------------------------------

const CODECS = new Map<number, Codec>([
  [TypeOid.bool, bool],
  [TypeOid.bytea, bytea],
  [TypeOid.name, name],
  [TypeOid.int8, fixedInt(8)],
  [TypeOid.int2, fixedInt(2)],
  [TypeOid.int4, fixedInt(4)],
  [TypeOid.text, utf8],
  [TypeOid.oid, fixedInt(4, false)],
  [TypeOid.json, utf8],
  [TypeOid.float4, float(4)],
  [TypeOid.float8, float(8)],
  [TypeOid.unknown, utf8],
  [TypeOid.bpchar, utf8],
  [TypeOid.varchar, utf8],
  [TypeOid.date, date],
  [TypeOid.timestamp, timestamp(false)],
  [TypeOid.timestamptz, timestamp(true)],
  [TypeOid.jsonb, jsonb],
  [TypeOid.void, voidCodec],
]);
for (const [arrayOid, elementOid] of [
  [TypeOid.boolArray, TypeOid.bool],
  [TypeOid.byteaArray, TypeOid.bytea],
  [TypeOid.nameArray, TypeOid.name],
  [TypeOid.int2Array, TypeOid.int2],
  [TypeOid.int4Array, TypeOid.int4],
  [TypeOid.textArray, TypeOid.text],
  [TypeOid.varcharArray, TypeOid.varchar],
  [TypeOid.int8Array, TypeOid.int8],
  [TypeOid.float4Array, TypeOid.float4],
  [TypeOid.float8Array, TypeOid.float8],
  [TypeOid.oidArray, TypeOid.oid],
  [TypeOid.timestampArray, TypeOid.timestamp],
  [TypeOid.timestamptzArray, TypeOid.timestamptz],
  [TypeOid.jsonArray, TypeOid.json],
  [TypeOid.jsonbArray, TypeOid.jsonb],
] as const) {
  CODECS.set(arrayOid, array(elementOid));
}

export function binaryResultSupported(typeOid: number): boolean {
  return CODECS.has(typeOid);
}

/** RowDescription's type size of a column. */
export function typeSize(typeOid: number): number {
  return CODECS.get(typeOid)?.size ?? -1;
}

/** A result value (PostgreSQL's text output of its type) in the type's binary form. */
export function textToBinary(typeOid: number, text: string): Buffer {
  const codec = CODECS.get(typeOid);
  if (!codec) return Buffer.from(text, 'utf8');
  try {
    return codec.toBinary(text);
  } catch (err) {
    if (err instanceof PgError) throw err;
    // The engine wrote a value its column's type cannot hold: a bug, never the client's.
    throw new Error(`cannot send "${text}" as binary type ${typeOid}: ${(err as Error).message}`);
  }
}

/** A bound parameter in binary format, read as its declared type and turned into text. */
export function binaryParamToText(typeOid: number, data: Buffer, index: number): string {
  const codec = typeOid === 0 ? utf8 : CODECS.get(typeOid);
  if (!codec) {
    throw new PgError('feature_not_supported', `binary format for parameter ${index} of type ${typeOid} is not supported`, {
      hint: 'Send parameters in text format.',
    });
  }
  try {
    return codec.toText(data);
  } catch (err) {
    if (err instanceof PgError) throw err;
    throw new PgError('invalid_binary_representation', `incorrect binary data format in bind parameter ${index}`);
  }
}
