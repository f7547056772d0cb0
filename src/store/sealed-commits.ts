import { formatKeyId, type Keys } from './cipher.js';

/**
 * Encryption at rest for a catalog in PostgreSQL (`--catalog URL --encryption-key-file F`):
 * each row of portcullis.commits holds its commit's mutations (password verifiers, API key
 * hashes, the server secret that seals the token signing keys) sealed with the data
 * directory's record format (AES-256-GCM, src/store/cipher.ts):
 *
 *   {"sealed": "<base64 of nonce | ciphertext | tag>", "key": "<key id, 8 hex digits>"}
 *
 * in place of the plain JSON array. The commit's number is the additional data, so a
 * sealed row copied over another commit's number does not open. A catalog is sealed
 * throughout or not at all: a plain row read with a key, or a sealed one without the key
 * that sealed it, is an error that says what to do, never a silent mix.
 */

const aad = (seq: number): Buffer => Buffer.from(`portcullis catalog commit ${seq}`, 'utf8');

/** The text of commit `seq`'s row: `json` itself, or sealed with the write key. */
export function sealCommit(json: string, seq: number, keys: Keys): string {
  if (keys.write === null) return json;
  const sealed = keys.write.seal(Buffer.from(json, 'utf8'), aad(seq));
  return JSON.stringify({ sealed: sealed.toString('base64'), key: formatKeyId(keys.write.keyId) });
}

/** The mutations' JSON of commit `seq` from its row's text, or an error naming what is wrong. */
export function openCommit(row: string, seq: number, keys: Keys): string {
  const where = `commit ${seq} of the catalog in PostgreSQL`;
  if (!row.startsWith('{')) {
    if (keys.read.includes(null)) return row;
    throw new Error(
      `${where} is not encrypted, but an encryption key was given; start without --encryption-key-file, or move the catalog into a new database encrypted: ` +
        'portcullis dump --catalog URL | portcullis apply --catalog NEW_URL --encryption-key-file FILE',
    );
  }
  const { sealed, key } = JSON.parse(row) as { sealed?: unknown; key?: unknown };
  if (typeof sealed !== 'string' || typeof key !== 'string') throw new Error(`${where} is neither a list of changes nor a sealed one`);
  const cipher = keys.read.find((k) => k !== null && formatKeyId(k.keyId) === key) ?? null;
  if (cipher === null) {
    const given = keys.write;
    throw new Error(
      given === null
        ? `${where} is encrypted (key id ${key}); start with --encryption-key-file FILE (or PORTCULLIS_ENCRYPTION_KEY_FILE)`
        : `${where} is encrypted with key id ${key}, but the key given has id ${formatKeyId(given.keyId)}: wrong encryption key`,
    );
  }
  const plain = cipher.open(Buffer.from(sealed, 'base64'), aad(seq));
  if (plain === null) throw new Error(`${where} does not open with key id ${key}: it was altered or moved from another commit's row`);
  return plain.toString('utf8');
}
