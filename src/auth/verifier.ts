import { createHash, createHmac, pbkdf2, randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { saslprep } from './saslprep.js';

const pbkdf2Async = promisify(pbkdf2);

/** The parts of a SCRAM-SHA-256 verifier; never the password. */
export interface ScramVerifier {
  iterations: number;
  salt: Buffer;
  storedKey: Buffer;
  serverKey: Buffer;
}

export const DEFAULT_ITERATIONS = 4096;
export const SALT_LEN = 16; // PostgreSQL's SCRAM_DEFAULT_SALT_LEN

/**
 * PostgreSQL's text form (src/common/scram-common.c, scram_build_secret):
 * `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`, all base64.
 */
const VERIFIER_RE = /^SCRAM-SHA-256\$(\d{1,10}):([A-Za-z0-9+/]+={0,2})\$([A-Za-z0-9+/]+={0,2}):([A-Za-z0-9+/]+={0,2})$/;

export function looksLikeVerifier(s: string): boolean {
  return s.startsWith('SCRAM-SHA-256$');
}

export function parseVerifier(s: string): ScramVerifier | null {
  const m = VERIFIER_RE.exec(s);
  if (!m) return null;
  const iterations = Number(m[1]);
  const salt = Buffer.from(m[2]!, 'base64');
  const storedKey = Buffer.from(m[3]!, 'base64');
  const serverKey = Buffer.from(m[4]!, 'base64');
  if (iterations < 1 || iterations > 2 ** 31 - 1 || salt.length === 0) return null;
  if (storedKey.length !== 32 || serverKey.length !== 32) return null;
  return { iterations, salt, storedKey, serverKey };
}

export function formatVerifier(v: ScramVerifier): string {
  return `SCRAM-SHA-256$${v.iterations}:${v.salt.toString('base64')}$${v.storedKey.toString('base64')}:${v.serverKey.toString('base64')}`;
}

export const hmac = (key: Buffer, data: string | Buffer): Buffer => createHmac('sha256', key).update(data).digest();
export const sha256 = (data: Buffer): Buffer => createHash('sha256').update(data).digest();

/** Derives StoredKey and ServerKey from a SaltedPassword (RFC 5802 §3). */
export function keysFromSaltedPassword(salted: Buffer): { storedKey: Buffer; serverKey: Buffer } {
  const clientKey = hmac(salted, 'Client Key');
  return { storedKey: sha256(clientKey), serverKey: hmac(salted, 'Server Key') };
}

/**
 * Hashes a password into a verifier. PBKDF2 runs on libuv's thread pool (node:crypto's
 * async pbkdf2), so hashing never blocks the event loop and uses every core.
 */
export async function makeVerifier(
  password: string,
  iterations = DEFAULT_ITERATIONS,
  salt: Buffer = randomBytes(SALT_LEN),
): Promise<ScramVerifier> {
  const salted = await pbkdf2Async(Buffer.from(saslprep(password), 'utf8'), salt, iterations, 32, 'sha256');
  return { iterations, salt, ...keysFromSaltedPassword(salted) };
}
