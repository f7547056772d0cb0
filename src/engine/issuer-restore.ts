import type { BuiltinRole, Database, IssuedToken, RefreshToken, SigningKey } from '../catalog/model.js';
import { ISSUER_ALG } from '../auth/signing.js';
import { PgError } from '../errors/pg-error.js';
import type { Execution } from '../wire/handler.js';
import type { ImportRules } from './imports.js';
import { IMPORT_ID } from './imports.js';
import { commandDone } from './results.js';
import { type StatementContext, writeTx } from './statement-context.js';

/**
 * Restoring the token issuer's state from a dump (`portcullis dump` writes it so that the
 * tokens a moved catalog issued keep working there, refresh tokens included):
 *
 *   ALTER TOKEN ISSUER ROTATE KEY IMPORT (id, kid, public_jwk, created_at, retires_at)
 *   CREATE TOKEN FOR owner [ROLE ..] EXPIRES AT ..
 *     IMPORT (id, jti, minted, api_key_id, database_ids, scopes, issued_at, revoked_at,
 *             created_by)                                                              an access token's row
 *   CREATE TOKEN FOR owner EXPIRES AT ..
 *     IMPORT (id, refresh_hash, family, api_key_id, database_id, credential_stamp,
 *             used_at, revoked_at, created_at)                                          a refresh token's row
 *
 * A token's databases and scopes are imported as JSON (`[3, 4]`, `["a"]`, `[]`, NULL), not
 * as WITH DATABASES / SCOPES: a token narrowed to no scope stays so, and a database dropped
 * since stays out of reach by its id. Nothing is generated, signed or shown.
 *
 * A signing key comes back with its public half only: the private half never leaves the
 * catalog that made it, in a dump or anywhere else. So every imported key is a retiring
 * one (the dump gives the key that was current the time the last token issued before the
 * dump expires): it verifies the tokens it signed until then, and the catalog signs new
 * tokens with a key of its own, made on first need. Superuser only, as every IMPORT.
 */

export const SIGNING_KEY_IMPORTS: ImportRules = {
  signingKeys: {
    ...IMPORT_ID,
    kid: ['kid', 'text'],
    public_jwk: ['publicJwk', 'text'],
    created_at: ['createdAt', 'timestamp'],
    retires_at: ['retiresAt', 'timestamp'],
  },
};

export const TOKEN_IMPORTS: ImportRules = {
  issuedTokens: {
    ...IMPORT_ID,
    jti: ['jti', 'text'],
    minted: ['minted', 'bool'],
    api_key_id: ['apiKeyId', 'ref'],
    database_ids: ['databaseIds', 'json'],
    scopes: ['scopes', 'json'],
    issued_at: ['issuedAt', 'timestamp'],
    revoked_at: ['revokedAt', 'timestamp'],
    created_by: ['createdBy', 'text'],
  },
  refreshTokens: {
    ...IMPORT_ID,
    refresh_hash: ['hash', 'secret'],
    family: ['family', 'text'],
    api_key_id: ['apiKeyId', 'ref'],
    database_id: ['databaseId', 'ref'],
    credential_stamp: ['credentialStamp', 'text'],
    used_at: ['usedAt', 'timestamp'],
    revoked_at: ['revokedAt', 'timestamp'],
    created_at: ['createdAt', 'timestamp'],
  },
};

/** Whether a statement restores a token row (its expiry may then be past, as it was). */
export const restoringToken = (ctx: StatementContext): boolean => ctx.imports?.has('jti') === true || ctx.imports?.has('refresh_hash') === true;

function need(ctx: StatementContext, what: string, keys: string[]): void {
  const missing = keys.filter((k) => !ctx.imports!.has(k));
  if (missing.length > 0) throw new PgError('invalid_parameter_value', `IMPORT of ${what} needs ${keys.join(', ')}`, { detail: `Missing: ${missing.join(', ')}.` });
}

/** ALTER TOKEN ISSUER ROTATE KEY IMPORT (...): a signing key back, to verify what it signed until it retires. */
export function restoreSigningKey(ctx: StatementContext): Execution {
  const tx = writeTx(ctx);
  const plan = ctx.imports!;
  need(ctx, 'a signing key', ['id', 'kid', 'public_jwk', 'created_at', 'retires_at']);
  if (plan.get('retires_at') === null) {
    throw new PgError('invalid_parameter_value', 'IMPORT of a signing key needs a retires_at: it comes without its private half, so it can only verify', {
      hint: 'This catalog signs with a key of its own, made on first need.',
    });
  }
  let pub: { kty?: unknown; d?: unknown } | null = null;
  try {
    pub = JSON.parse(String(plan.get('public_jwk'))) as { kty?: unknown; d?: unknown };
  } catch {
    /* refused below */
  }
  if (!pub || pub.kty !== 'EC' || pub.d !== undefined) throw new PgError('invalid_parameter_value', 'public_jwk must be the public half of an EC key, as a JWK');
  const kid = String(plan.get('kid'));
  if ([...tx.signingKeys()].some((k) => k.kid === kid)) throw new PgError('duplicate_object', `signing key ${kid} already exists`);
  // The IMPORT fills every field (patch); these are placeholders of the right shape. No
  // private half: the issuer never signs with a retiring key.
  const row: SigningKey = { id: tx.allocateId(), kid, alg: ISSUER_ALG, publicJwk: '', sealedPrivate: '', createdAt: ctx.now, retiresAt: ctx.now };
  tx.insert('signingKeys', row);
  return commandDone('ALTER TOKEN ISSUER');
}

/** CREATE TOKEN ... IMPORT (...): an issued access token's row, or a refresh token's. */
export function restoreToken(
  ctx: StatementContext,
  owner: { kind: 'user' | 'service_account'; id: number },
  opts: { role: BuiltinRole | null; dbs: Database[] | null; scopes: string[] | null; expiresAt: number | null },
): Execution {
  const tx = writeTx(ctx);
  const plan = ctx.imports!;
  if (plan.has('jti') === plan.has('refresh_hash')) {
    throw new PgError('invalid_parameter_value', 'CREATE TOKEN with IMPORT restores one row: an access token (jti) or a refresh token (refresh_hash)');
  }
  if (opts.expiresAt === null) throw new PgError('invalid_parameter_value', 'CREATE TOKEN needs an expiry', { hint: "Add EXPIRES AT 'timestamp'." });
  if (opts.dbs !== null || opts.scopes !== null) {
    throw new PgError('invalid_parameter_value', 'CREATE TOKEN with IMPORT takes its databases and scopes from IMPORT (database_ids, scopes)');
  }
  if (plan.has('jti')) {
    need(ctx, 'an access token', ['id', 'jti']);
    const ids = plan.get('database_ids');
    const scopes = plan.get('scopes');
    if (ids != null && !(Array.isArray(ids) && ids.every((x) => Number.isSafeInteger(x) && (x as number) > 0))) throw new PgError('invalid_parameter_value', 'database_ids must be a JSON list of ids, or NULL');
    if (scopes != null && !(Array.isArray(scopes) && scopes.every((x) => typeof x === 'string'))) throw new PgError('invalid_parameter_value', 'scopes must be a JSON list of strings, or NULL');
    const row: IssuedToken = {
      id: tx.allocateId(),
      jti: '',
      ownerKind: owner.kind,
      ownerId: owner.id,
      apiKeyId: null,
      role: opts.role,
      databaseIds: null,
      scopes: null,
      minted: true,
      issuedAt: ctx.now,
      expiresAt: opts.expiresAt,
      revokedAt: null,
      createdBy: ctx.actor.name,
    };
    tx.insert('issuedTokens', row);
  } else {
    need(ctx, 'a refresh token', ['id', 'refresh_hash', 'family']);
    if (opts.role !== null) {
      throw new PgError('invalid_parameter_value', 'a refresh token takes no ROLE (IMPORT database_id narrows it)');
    }
    const row: RefreshToken = {
      id: tx.allocateId(),
      hash: '',
      family: '',
      ownerKind: owner.kind,
      ownerId: owner.id,
      apiKeyId: null,
      databaseId: null,
      credentialStamp: null,
      usedAt: null,
      revokedAt: null,
      expiresAt: opts.expiresAt,
      createdAt: ctx.now,
    };
    tx.insert('refreshTokens', row);
  }
  return commandDone('CREATE TOKEN');
}
