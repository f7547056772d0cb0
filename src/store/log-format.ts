import { crc32 } from 'node:zlib';
import { isAscii } from 'node:buffer';
import type { Cipher } from './cipher.js';
import type { SnapshotPart } from '../catalog/catalog.js';

/**
 * The data directory's on-disk formats. All integers big-endian.
 *
 * catalog.log, version 2 (version 1 is read, and rewritten as 2 at start-up):
 *
 *   header  = "PCULLOG" 0x00 | u32 version (2) | u32 key id (0: not encrypted) | u64 sequence of the first record
 *   record  = u32 payload length | u32 CRC-32 of the payload | payload (UTF-8 JSON of one commit)
 *
 *   Encrypted (key id ≠ 0, see cipher.ts), a payload is the JSON sealed with AES-256-GCM
 *   (nonce | ciphertext | tag, the file's magic as additional data); the CRC covers the
 *   sealed bytes, so a torn write is told from a wrong key.
 *
 *   Version 1 had the same records after a 16-byte header (no sequence: its first record is 1).
 *   A record is a whole commit: entirely present (length and checksum agree), or a torn tail
 *   that start-up cuts off. The file is preallocated with zeros in 16 MiB steps (so that an
 *   fdatasync never has to change the file's size); the data ends at the first all-zero
 *   record header, and only zeros may follow it.
 *
 * catalog.snapshot, version 2 (written to a temporary file, fsynced, renamed into place):
 *
 *   header  = "PCUSNAP" 0x00 | u32 version (2) | u32 key id | u64 sequence of the last commit it holds
 *   records = framed (and sealed) as in the log; each payload is
 *             u32 head length | head (UTF-8 JSON) | rows (the rows' JSON, back to back)
 *             heads: {"init": <init mutation>} first, then one per chunk of a table's rows,
 *             {"table": t, "indexes": [index names], "keys": [per row: id, byte length of its
 *             JSON, unique key, its key in each index]}, and last {"end": <number of chunks>}.
 *   The keys let start-up index every row without decoding it (rows are decoded when first
 *   read, see Table.load).
 *
 *   Version 1 (read; the next compaction writes 2): each payload was JSON, a chunk of the
 *   catalog as insert mutations, the first starting with `init`, the last {"end": n}.
 *
 * Start-up = the snapshot, then the log's records whose sequence is above the snapshot's.
 */
export const MAGIC = Buffer.from('PCULLOG\0', 'latin1');
export const SNAPSHOT_MAGIC = Buffer.from('PCUSNAP\0', 'latin1');
export const FORMAT_VERSION = 2;
export const SNAPSHOT_VERSION = 2;
const V1_HEADER_SIZE = 16;
export const HEADER_SIZE = 24;
export const RECORD_HEADER = 8;
/** A sanity cap on one record: a larger length field means damage, not a real commit. */
export const MAX_RECORD = 256 * 1024 * 1024;

/** The header of every data-directory file: magic, version, key id, a sequence number. */
export function fileHeader(magic: Buffer, version: number, seq: number, keyId = 0): Buffer {
  const h = Buffer.alloc(HEADER_SIZE);
  magic.copy(h, 0);
  h.writeUInt32BE(version, 8);
  h.writeUInt32BE(keyId, 12);
  h.writeBigUInt64BE(BigInt(seq), 16);
  return h;
}

/** A log header; `firstSeq` is the sequence number of the log's first record. */
export const header = (firstSeq = 1, keyId = 0): Buffer => fileHeader(MAGIC, FORMAT_VERSION, firstSeq, keyId);
/** A snapshot header; `lastSeq` is the last commit the snapshot holds. */
export const snapshotHeader = (lastSeq: number, keyId = 0): Buffer => fileHeader(SNAPSHOT_MAGIC, SNAPSHOT_VERSION, lastSeq, keyId);

/** A record of `payload` as JSON, sealed when a cipher is given (`aad`: the file's magic). */
export function encodeRecord(payload: unknown, cipher: Cipher | null = null, aad: Buffer = MAGIC): Buffer {
  return frameRecord(JSON.stringify(payload), cipher, aad);
}

/**
 * Length, checksum and body: the framing every record file shares. A text body (UTF-8) is
 * written straight into the record: one buffer per commit on the hot path, not three.
 */
export function frameRecord(plain: Buffer | string, cipher: Cipher | null = null, aad: Buffer = MAGIC): Buffer {
  if (cipher) return frameBody(cipher.seal(typeof plain === 'string' ? Buffer.from(plain, 'utf8') : plain, aad));
  if (typeof plain !== 'string') return frameBody(plain);
  const n = Buffer.byteLength(plain, 'utf8');
  const rec = Buffer.allocUnsafe(RECORD_HEADER + n); // every byte is written below
  rec.write(plain, RECORD_HEADER, 'utf8');
  rec.writeUInt32BE(n, 0);
  rec.writeUInt32BE(crc32(rec.subarray(RECORD_HEADER)), 4);
  return rec;
}

function frameBody(body: Buffer): Buffer {
  const rec = Buffer.allocUnsafe(RECORD_HEADER + body.length);
  rec.writeUInt32BE(body.length, 0);
  rec.writeUInt32BE(crc32(body), 4);
  body.copy(rec, RECORD_HEADER);
  return rec;
}

export type DecodeResult =
  | { kind: 'ok'; version: number; keyId: number; firstSeq: number; records: unknown[]; end: number }
  /** The last record is incomplete or fails its checksum: cut at `end`. */
  | { kind: 'torn'; version: number; keyId: number; firstSeq: number; records: unknown[]; end: number; tornBytes: number }
  | { kind: 'damaged'; offset: number; reason: string };

/** A log's header fields (for the key check before its records are opened). */
export function logKeyId(buf: Buffer): number {
  return buf.length >= HEADER_SIZE && buf.readUInt32BE(8) === FORMAT_VERSION ? buf.readUInt32BE(12) : 0;
}

export function decodeLog(buf: Buffer, cipher: Cipher | null = null): DecodeResult {
  if (buf.length < V1_HEADER_SIZE || !buf.subarray(0, 8).equals(MAGIC)) {
    return { kind: 'damaged', offset: 0, reason: 'not a portcullis catalog log (bad magic)' };
  }
  const version = buf.readUInt32BE(8);
  if (version !== 1 && version !== FORMAT_VERSION) {
    return { kind: 'damaged', offset: 8, reason: `unsupported log format version ${version} (this build reads 1 and ${FORMAT_VERSION})` };
  }
  if (version === FORMAT_VERSION && buf.length < HEADER_SIZE) return { kind: 'damaged', offset: 0, reason: 'the log header is incomplete' };
  const firstSeq = version === 1 ? 1 : Number(buf.readBigUInt64BE(16));
  const keyId = version === 1 ? 0 : buf.readUInt32BE(12);
  const r = decodeRecords(buf, version === 1 ? V1_HEADER_SIZE : HEADER_SIZE, cipher);
  return r.kind === 'damaged' ? r : { ...r, version, keyId, firstSeq };
}

/** A snapshot header's sequence number and key id, or what is wrong with it. */
export function checkSnapshotHeader(h: Buffer | null): { version: number; lastSeq: number; keyId: number } | string {
  if (!h || !h.subarray(0, 8).equals(SNAPSHOT_MAGIC)) return 'not a portcullis catalog snapshot (bad magic)';
  const version = h.readUInt32BE(8);
  if (version !== 1 && version !== SNAPSHOT_VERSION) return `unsupported snapshot format version ${version} (this build reads 1 and ${SNAPSHOT_VERSION})`;
  return { version, lastSeq: Number(h.readBigUInt64BE(16)), keyId: h.readUInt32BE(12) };
}

/** A version 2 snapshot record's payload: what it holds (see the format above). */
export type SnapshotRecord = SnapshotPart | { end: number };

export function encodeSnapshotRecord(r: SnapshotRecord, cipher: Cipher | null = null): Buffer {
  const { rows, ...rest } = 'table' in r ? r : { ...r, rows: undefined };
  const head = Buffer.from(JSON.stringify(rest), 'utf8');
  const plain = Buffer.allocUnsafe(4 + head.length + (rows?.length ?? 0));
  plain.writeUInt32BE(head.length, 0);
  head.copy(plain, 4);
  rows?.copy(plain, 4 + head.length);
  return frameRecord(plain, cipher, SNAPSHOT_MAGIC);
}

/** A version 2 snapshot record, or why it is not one; `sum` null: its checksum is checked elsewhere (checksums.ts). */
export function decodeSnapshotRecord(sealed: Buffer, sum: number | null, cipher: Cipher | null = null): SnapshotRecord | string {
  if (sum !== null && crc32(sealed) !== sum) return 'checksum mismatch';
  const body = openBody(sealed, cipher, SNAPSHOT_MAGIC);
  if (typeof body === 'string') return body;
  const headLength = body.length >= 4 ? body.readUInt32BE(0) : -1;
  if (headLength < 0 || 4 + headLength > body.length) return 'the record head runs past the record';
  let head: Record<string, unknown>;
  try {
    const text = body.subarray(4, 4 + headLength);
    head = JSON.parse(text.toString(isAscii(text) ? 'latin1' : 'utf8')) as Record<string, unknown>;
  } catch {
    return 'record is not valid JSON although its checksum matches';
  }
  const rows = body.subarray(4 + headLength);
  if (typeof head.table === 'string' && Array.isArray(head.indexes) && Array.isArray(head.keys)) {
    const stride = 3 + head.indexes.length;
    const keys = head.keys as unknown[];
    if (keys.length % stride !== 0) return 'a chunk whose keys do not divide into rows';
    let bytes = 0;
    for (let j = 1; j < keys.length; j += stride) {
      if (!Number.isInteger(keys[j]) || !Number.isInteger(keys[j - 1])) return 'a chunk with a row id or length that is not a number';
      bytes += keys[j] as number;
    }
    if (bytes !== rows.length) return `a chunk whose row lengths add up to ${bytes} bytes, not ${rows.length}`;
    return { table: head.table, indexes: head.indexes, keys, rows } as SnapshotPart;
  }
  if (head.init && typeof head.init === 'object') return head as SnapshotRecord;
  if (typeof head.end === 'number' && rows.length === 0) return { end: head.end };
  return 'not a snapshot record';
}

/** A sealed body opened (or a plain one as is); a string says why it cannot be. */
export function openBody(body: Buffer, cipher: Cipher | null, aad: Buffer): Buffer | string {
  if (!cipher) return body;
  return cipher.open(body, aad) ?? 'record cannot be decrypted with this key (edited, or sealed by another key)';
}

/** A record's payload, or why it is not one (a checksum that fails, JSON that does not parse). */
export function decodeRecordBody(sealed: Buffer, sum: number, cipher: Cipher | null = null, aad: Buffer = SNAPSHOT_MAGIC): unknown | string {
  if (crc32(sealed) !== sum) return 'checksum mismatch';
  const body = openBody(sealed, cipher, aad);
  if (typeof body === 'string') return body;
  try {
    // Records are mostly ASCII, and decoding ASCII as latin1 is a plain copy (3× faster
    // than UTF-8 decoding, which matters when a snapshot of a million users is read).
    return JSON.parse(body.toString(isAscii(body) ? 'latin1' : 'utf8')) as unknown;
  } catch {
    return 'record is not valid JSON although its checksum matches';
  }
}

type Records = { kind: 'ok'; records: unknown[]; end: number } | { kind: 'torn'; records: unknown[]; end: number; tornBytes: number } | { kind: 'damaged'; offset: number; reason: string };

/**
 * Records from `start` to the end of the data. The log is preallocated with zeros, so the
 * data ends at a record header of zeros — after which every byte must be zero — or at the
 * end of the file. A bad record is a torn tail only when nothing but zeros follows it;
 * otherwise committed data is damaged.
 */
function decodeRecords(buf: Buffer, start: number, cipher: Cipher | null): Records {
  const records: unknown[] = [];
  let off = start;
  while (off < buf.length) {
    const left = buf.length - off;
    if (left < RECORD_HEADER) return tailOrDamage(records, off, buf, 'a record header is cut short', buf.length);
    const len = buf.readUInt32BE(off);
    const sum = buf.readUInt32BE(off + 4);
    if (len === 0 && sum === 0) {
      // The preallocated zeros: the end of the data, if nothing but zeros follows.
      const stray = firstNonZero(buf, off);
      if (stray < 0) return { kind: 'ok', records, end: off };
      return { kind: 'damaged', offset: off, reason: `zeros where a record should be, and data again at offset ${stray}` };
    }
    if (len > MAX_RECORD || left < RECORD_HEADER + len) {
      return tailOrDamage(records, off, buf, `record length ${len} runs past the data`, off + RECORD_HEADER);
    }
    const body = buf.subarray(off + RECORD_HEADER, off + RECORD_HEADER + len);
    if (crc32(body) !== sum) {
      return tailOrDamage(records, off, buf, 'checksum mismatch', off + RECORD_HEADER + len);
    }
    const plain = openBody(body, cipher, MAGIC);
    if (typeof plain === 'string') return { kind: 'damaged', offset: off, reason: plain };
    try {
      records.push(JSON.parse(plain.toString('utf8')));
    } catch {
      return { kind: 'damaged', offset: off, reason: 'record is not valid JSON although its checksum matches' };
    }
    off += RECORD_HEADER + len;
  }
  return { kind: 'ok', records, end: off };
}

/** Where the last write stopped: a bad record with only zeros (or nothing) after `from`. */
function tailOrDamage(records: unknown[], off: number, buf: Buffer, reason: string, from: number): Records {
  if (firstNonZero(buf, Math.min(from, buf.length)) < 0) {
    return { kind: 'torn', records, end: off, tornBytes: lastNonZero(buf, off) + 1 - off };
  }
  return { kind: 'damaged', offset: off, reason };
}

function firstNonZero(buf: Buffer, from: number): number {
  for (let i = from; i < buf.length; i++) if (buf[i] !== 0) return i;
  return -1;
}

function lastNonZero(buf: Buffer, from: number): number {
  let i = buf.length - 1;
  while (i >= from && buf[i] === 0) i--;
  return Math.max(i, from);
}

/**
 * A small file of one record (the JWKS cache): header (magic, version 1, key id) and one
 * record, sealed when a cipher is given.
 */
export function encodeOneRecordFile(magic: Buffer, payload: unknown, cipher: Cipher | null): Buffer {
  return Buffer.concat([fileHeader(magic, 1, 0, cipher?.keyId ?? 0), encodeRecord(payload, cipher, magic)]);
}

/** The key id of a one-record file, or null when it is not one (bad magic, short). */
export function oneRecordFileKeyId(buf: Buffer, magic: Buffer): number | null {
  return buf.length >= HEADER_SIZE && buf.subarray(0, 8).equals(magic) ? buf.readUInt32BE(12) : null;
}

/** The payload of a one-record file, or why it has none. */
export function decodeOneRecordFile(buf: Buffer, magic: Buffer, cipher: Cipher | null): unknown | string {
  if (buf.length < HEADER_SIZE + RECORD_HEADER || !buf.subarray(0, 8).equals(magic)) return 'not a portcullis file of this kind (bad magic)';
  const len = buf.readUInt32BE(HEADER_SIZE);
  if (buf.length !== HEADER_SIZE + RECORD_HEADER + len) return 'the file is cut short or has data after its record';
  return decodeRecordBody(buf.subarray(HEADER_SIZE + RECORD_HEADER), buf.readUInt32BE(HEADER_SIZE + 4), cipher, magic);
}
