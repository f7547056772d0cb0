import { createHash, randomBytes } from 'node:crypto';
import { crc32 } from 'node:zlib';

/**
 * API keys: `pcu_<key id>_<secret><checksum>`.
 * - key id: 16 characters [a-z0-9], public, the lookup handle (and the pgwire user name);
 * - secret: 256 random bits in base62 (43 characters);
 * - checksum: CRC-32 of everything before it, base62, 6 characters, so secret scanners can
 *   validate a leaked key offline (as GitHub's and Stripe's tokens allow).
 * Only a SHA-256 of the whole key is stored: with 256 bits of entropy a slow hash adds nothing.
 */

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const KEY_RE = /^pcu_([a-z0-9]{16})_([0-9A-Za-z]{43})([0-9A-Za-z]{6})$/;

function base62(n: bigint, width: number): string {
  let s = '';
  while (n > 0n) {
    s = BASE62[Number(n % 62n)]! + s;
    n /= 62n;
  }
  return s.padStart(width, '0');
}

export interface NewKey {
  keyId: string;
  /** The whole key: shown once, never stored. */
  key: string;
  hash: string;
}

export type RandomSource = (bytes: number) => Buffer;

export function newKeyId(random: RandomSource = randomBytes): string {
  const b = random(16);
  return Array.from(b, (x) => 'abcdefghijklmnopqrstuvwxyz0123456789'[x % 36]).join('');
}

export function newKey(keyId: string, random: RandomSource = randomBytes): NewKey {
  const secret = base62(BigInt(`0x${random(32).toString('hex')}`), 43);
  const body = `pcu_${keyId}_${secret}`;
  const key = body + base62(BigInt(crc32(Buffer.from(body))), 6);
  return { keyId, key, hash: hashKey(key) };
}

export const hashKey = (key: string): string => createHash('sha256').update(key).digest('hex');

/** Splits a presented key and checks its checksum; null when it is not a well-formed key. */
export function parseKey(key: string): { keyId: string } | null {
  const m = KEY_RE.exec(key);
  if (!m) return null;
  const body = `pcu_${m[1]}_${m[2]}`;
  if (base62(BigInt(crc32(Buffer.from(body))), 6) !== m[3]) return null;
  return { keyId: m[1]! };
}
