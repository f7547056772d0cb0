import { createHash, hkdfSync } from 'node:crypto';
import { calculateJwkThumbprint, compactVerify, decodeProtectedHeader, exportJWK, generateKeyPair, importJWK, jwtVerify, SignJWT, type JWK, type JWTPayload } from 'jose';
import { AesGcmCipher } from '../store/cipher.js';
import { TokenRejected } from './jwt.js';

/**
 * portcullis as a token issuer, the jose side: making signing keys, sealing their private
 * half, signing access tokens and verifying them. With jwt.ts (tokens of other issuers),
 * the only module that imports jose. Policy is pinned here: ES256 only, issuer, audience,
 * exp, sub and jti required, the clock injected.
 */
export const ISSUER_ALG = 'ES256';
/** The audience of every access token portcullis issues. */
export const ISSUER_AUDIENCE = 'portcullis';

export interface NewSigningKey {
  kid: string;
  publicJwk: JWK;
  privateJwk: JWK;
}

/** A fresh ES256 key pair; its kid is the RFC 7638 thumbprint of the public key. */
export async function newSigningKey(): Promise<NewSigningKey> {
  const { publicKey, privateKey } = await generateKeyPair(ISSUER_ALG, { extractable: true });
  const pub = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(pub);
  return { kid, publicJwk: { ...pub, kid, alg: ISSUER_ALG, use: 'sig' }, privateJwk: await exportJWK(privateKey) };
}

/**
 * The AES-256-GCM key private halves are sealed with: HKDF-SHA256 of the server secret.
 * The seal keeps the private key out of everything that reads rows one at a time (dumps,
 * SHOW output, a PostgreSQL catalog's table, log lines); the data directory as a whole is
 * protected by encryption at rest (--encryption-key-file), which seals the server secret
 * and the row alike.
 */
function sealingCipher(serverSecret: string): AesGcmCipher {
  return new AesGcmCipher(Buffer.from(hkdfSync('sha256', Buffer.from(serverSecret, 'utf8'), Buffer.alloc(0), 'portcullis token signing key', 32)));
}

export function sealPrivateKey(jwk: JWK, kid: string, serverSecret: string): string {
  return sealingCipher(serverSecret).seal(Buffer.from(JSON.stringify(jwk), 'utf8'), Buffer.from(kid, 'utf8')).toString('base64');
}

export function openPrivateKey(sealed: string, kid: string, serverSecret: string): JWK {
  const plain = sealingCipher(serverSecret).open(Buffer.from(sealed, 'base64'), Buffer.from(kid, 'utf8'));
  if (!plain) throw new Error(`the private half of signing key ${kid} does not open with this catalog's server secret`);
  return JSON.parse(plain.toString('utf8')) as JWK;
}

type SignKey = Awaited<ReturnType<typeof importJWK>>;
const imported = new Map<string, Promise<SignKey>>();

/** Imports a JWK once per kid and half (keys never change under a kid: it is their thumbprint). */
function importOnce(jwk: JWK, kid: string, half: 'private' | 'public'): Promise<SignKey> {
  const id = `${half}:${kid}`;
  let k = imported.get(id);
  if (!k) imported.set(id, (k = importJWK(jwk, ISSUER_ALG)));
  return k;
}

export async function signAccessToken(claims: JWTPayload, privateJwk: JWK, kid: string): Promise<string> {
  const key = await importOnce(privateJwk, kid, 'private');
  return new SignJWT(claims).setProtectedHeader({ alg: ISSUER_ALG, kid, typ: 'JWT' }).sign(key);
}

/** A digest of a secret for storage and lookup (refresh tokens, password stamps). */
export const digest = (text: string): string => createHash('sha256').update(text, 'utf8').digest('hex');

/**
 * Verifies an access token portcullis issued, against the public keys that verify now
 * (the current key and rotated-out ones within their grace). Refuses `alg: none` and HS*
 * (an HMAC keyed with a public key) before anything else, as jwt.ts does.
 */
export async function verifyIssued(
  token: string,
  keys: { kid: string; publicJwk: JWK }[],
  issuer: string,
  now: number,
  clockSkewSeconds: number,
): Promise<{ claims: JWTPayload; kid: string }> {
  let header;
  try {
    header = decodeProtectedHeader(token);
  } catch {
    throw new TokenRejected('malformed', 'malformed token');
  }
  if (header.alg !== ISSUER_ALG) throw new TokenRejected('algorithm', `algorithm "${header.alg ?? 'none'}" is never accepted for tokens of this issuer`);
  const k = keys.find((x) => x.kid === header.kid);
  if (!k) throw new TokenRejected('unknown_kid', `unknown or retired kid "${header.kid ?? ''}"`);
  const key = await importOnce(k.publicJwk, k.kid, 'public');
  try {
    const { payload } = await jwtVerify(token, key, {
      issuer,
      audience: ISSUER_AUDIENCE,
      algorithms: [ISSUER_ALG],
      clockTolerance: clockSkewSeconds,
      currentDate: new Date(now),
      requiredClaims: ['exp', 'sub', 'jti', 'iat'],
    });
    return { claims: payload, kid: k.kid };
  } catch (err) {
    const e = err as { code?: string; claim?: string };
    if (e.code === 'ERR_JWT_EXPIRED') throw new TokenRejected('expired', 'token expired');
    if (e.code === 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED') throw new TokenRejected('signature', 'signature verification failed');
    if (e.claim === 'iss') throw new TokenRejected('issuer', 'wrong issuer');
    if (e.claim === 'aud') throw new TokenRejected('audience', 'wrong audience');
    throw new TokenRejected('other', `token refused: ${(err as Error).message}`);
  }
}

/**
 * The claims of an access token this issuer signed with one of `keys`, whatever its age
 * (exp and iat are not looked at), or null: for telling whose token accompanies a request,
 * never for letting it in.
 */
export async function issuedClaimsAnyTime(token: string, keys: { kid: string; publicJwk: JWK }[], issuer: string): Promise<JWTPayload | null> {
  try {
    const header = decodeProtectedHeader(token);
    const k = header.alg === ISSUER_ALG ? keys.find((x) => x.kid === header.kid) : undefined;
    if (!k) return null;
    const { payload } = await compactVerify(token, await importOnce(k.publicJwk, k.kid, 'public'), { algorithms: [ISSUER_ALG] });
    const claims = JSON.parse(Buffer.from(payload).toString('utf8')) as JWTPayload;
    return claims.iss === issuer ? claims : null;
  } catch {
    return null;
  }
}
