import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';

/**
 * Encryption at rest: AES-256-GCM over every record the data directory holds —
 * catalog log, snapshot, audit trail, JWKS cache. A record is sealed on its own:
 *
 *   sealed = 12-byte random nonce | ciphertext | 16-byte GCM tag
 *
 * with the file's magic as additional data, so a record cannot be moved to another kind of
 * file. Each file's header carries the key's id (a 32-bit fingerprint, never the key), so
 * a missing or wrong key is named at start-up, before any record is opened.
 */
export interface Cipher {
  /** The key's fingerprint, never 0 (0 in a header means "not encrypted"). */
  readonly keyId: number;
  seal(plain: Buffer, aad: Buffer): Buffer;
  /** The plaintext, or null when the record was not sealed by this key unchanged. */
  open(sealed: Buffer, aad: Buffer): Buffer | null;
}

const NONCE = 12;
const TAG = 16;

export class AesGcmCipher implements Cipher {
  readonly keyId: number;

  constructor(private readonly key: Buffer) {
    if (key.length !== 32) throw new Error('an encryption key is 32 bytes (AES-256)');
    this.keyId = keyIdOf(key);
  }

  seal(plain: Buffer, aad: Buffer): Buffer {
    const nonce = randomBytes(NONCE);
    const c = createCipheriv('aes-256-gcm', this.key, nonce);
    c.setAAD(aad);
    const body = c.update(plain);
    const final = c.final();
    return Buffer.concat([nonce, body, final, c.getAuthTag()]);
  }

  open(sealed: Buffer, aad: Buffer): Buffer | null {
    if (sealed.length < NONCE + TAG) return null;
    try {
      const d = createDecipheriv('aes-256-gcm', this.key, sealed.subarray(0, NONCE));
      d.setAAD(aad);
      d.setAuthTag(sealed.subarray(sealed.length - TAG));
      return Buffer.concat([d.update(sealed.subarray(NONCE, sealed.length - TAG)), d.final()]);
    } catch {
      return null;
    }
  }
}

/** A key's fingerprint: safe to show and to store (32 bits of a hash, never the key). */
function keyIdOf(key: Buffer): number {
  const id = createHash('sha256').update('portcullis key id\0').update(key).digest().readUInt32BE(0);
  return id === 0 ? 1 : id;
}

export const formatKeyId = (id: number): string => id.toString(16).padStart(8, '0');

/**
 * Reads a key file: 64 hex digits or 44 base64 characters (surrounding whitespace
 * ignored), or exactly 32 raw bytes. `openssl rand -hex 32 > key` makes one.
 */
export function readKeyFile(file: string): AesGcmCipher {
  let raw: Buffer;
  try {
    raw = readFileSync(file);
  } catch (err) {
    throw new Error(`cannot read the encryption key file ${file}: ${(err as Error).message}`);
  }
  const text = raw.toString('latin1').trim();
  let key: Buffer | null = null;
  if (/^[0-9a-fA-F]{64}$/.test(text)) key = Buffer.from(text, 'hex');
  else if (/^[A-Za-z0-9+/]{43}=$/.test(text)) key = Buffer.from(text, 'base64');
  else if (raw.length === 32) key = raw;
  if (!key || key.length !== 32) {
    throw new Error(`the encryption key file ${file} does not hold a 256-bit key (64 hex digits, 44 base64 characters or 32 bytes); make one with: openssl rand -hex 32`);
  }
  return new AesGcmCipher(key);
}

/**
 * The keys a data directory is opened with: `write` seals everything written (null: not
 * encrypted); `read` may also hold the previous key (and null for plaintext) while
 * `portcullis rekey` moves the files from one to the other.
 */
export interface Keys {
  write: Cipher | null;
  read: (Cipher | null)[];
}

export const keysOf = (cipher: Cipher | null): Keys => ({ write: cipher, read: [cipher] });
export const PLAINTEXT: Keys = keysOf(null);

/**
 * The key that opens a file whose header names `fileKeyId` (0: not encrypted), or an error
 * that says what to do. `what` names the file.
 */
export function keyFor(what: string, fileKeyId: number, keys: Keys): Cipher | null {
  for (const k of keys.read) if ((k?.keyId ?? 0) === fileKeyId) return k;
  const cipher = keys.write;
  if (fileKeyId === 0) {
    throw new Error(`${what} is not encrypted, but an encryption key was given; to encrypt an existing data directory, run: portcullis rekey --data DIR --new-key-file FILE`);
  }
  if (cipher === null) {
    throw new Error(`${what} is encrypted (key id ${formatKeyId(fileKeyId)}); start with --encryption-key-file FILE (or PORTCULLIS_ENCRYPTION_KEY_FILE)`);
  }
  throw new Error(`${what} is encrypted with key id ${formatKeyId(fileKeyId)}, but the key given has id ${formatKeyId(cipher.keyId)}: wrong encryption key` +
    ' (if a `portcullis rekey` was interrupted, run it again with the same keys)');
}
