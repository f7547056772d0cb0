import { crc32 } from 'node:zlib';

/**
 * The catalog log's on-disk format, version 1:
 *
 *   header  = "PCULLOG" 0x00 (8 bytes) | u32 format version | u32 reserved (0)
 *   record  = u32 payload length | u32 CRC-32 of the payload | payload (UTF-8 JSON of one commit)
 *
 * All integers big-endian. A record is a whole commit, so a commit is either entirely
 * present (length and checksum agree) or a torn tail that start-up cuts off.
 */
export const MAGIC = Buffer.from('PCULLOG\0', 'latin1');
export const FORMAT_VERSION = 1;
export const HEADER_SIZE = 16;
export const RECORD_HEADER = 8;
/** A sanity cap on one record: a larger length field means damage, not a real commit. */
export const MAX_RECORD = 256 * 1024 * 1024;

export function header(): Buffer {
  const h = Buffer.alloc(HEADER_SIZE);
  MAGIC.copy(h, 0);
  h.writeUInt32BE(FORMAT_VERSION, 8);
  return h;
}

export function encodeRecord(payload: unknown): Buffer {
  const body = Buffer.from(JSON.stringify(payload), 'utf8');
  const rec = Buffer.alloc(RECORD_HEADER + body.length);
  rec.writeUInt32BE(body.length, 0);
  rec.writeUInt32BE(crc32(body), 4);
  body.copy(rec, RECORD_HEADER);
  return rec;
}

export type DecodeResult =
  | { kind: 'ok'; records: unknown[]; end: number }
  /** The last record is incomplete or fails its checksum: cut at `end`. */
  | { kind: 'torn'; records: unknown[]; end: number; tornBytes: number }
  | { kind: 'damaged'; offset: number; reason: string };

export function decodeLog(buf: Buffer): DecodeResult {
  if (buf.length < HEADER_SIZE || !buf.subarray(0, 8).equals(MAGIC)) {
    return { kind: 'damaged', offset: 0, reason: 'not a portcullis catalog log (bad magic)' };
  }
  const version = buf.readUInt32BE(8);
  if (version !== FORMAT_VERSION) {
    return { kind: 'damaged', offset: 8, reason: `unsupported log format version ${version} (this build reads ${FORMAT_VERSION})` };
  }
  const records: unknown[] = [];
  let off = HEADER_SIZE;
  while (off < buf.length) {
    const left = buf.length - off;
    if (left < RECORD_HEADER) return { kind: 'torn', records, end: off, tornBytes: left };
    const len = buf.readUInt32BE(off);
    const sum = buf.readUInt32BE(off + 4);
    if (len > MAX_RECORD) {
      return tailOrDamage(records, off, buf.length, `record length ${len} is implausible`);
    }
    if (left < RECORD_HEADER + len) return { kind: 'torn', records, end: off, tornBytes: left };
    const body = buf.subarray(off + RECORD_HEADER, off + RECORD_HEADER + len);
    if (crc32(body) !== sum) {
      return tailOrDamage(records, off, buf.length, 'checksum mismatch', off + RECORD_HEADER + len);
    }
    try {
      records.push(JSON.parse(body.toString('utf8')));
    } catch {
      return { kind: 'damaged', offset: off, reason: 'record is not valid JSON although its checksum matches' };
    }
    off += RECORD_HEADER + len;
  }
  return { kind: 'ok', records, end: off };
}

/** A bad record is a torn tail only when nothing follows it; otherwise committed data is damaged. */
function tailOrDamage(records: unknown[], off: number, size: number, reason: string, recordEnd = size): DecodeResult {
  if (recordEnd >= size) return { kind: 'torn', records, end: off, tornBytes: size - off };
  return { kind: 'damaged', offset: off, reason };
}
