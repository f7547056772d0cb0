import type { Database, IssuedToken, RefreshToken, SigningKey } from '../catalog/model.js';
import { authorizeOwner, checkLimits, credentialOptions, ownerWord, resolveOwner, withinSession, type Owner } from './api-keys.js';
import { CredentialRefused } from './credentials.js';
import { canListKeysOf } from './privileges.js';
import { PgError } from '../errors/pg-error.js';
import type { Execution } from '../wire/handler.js';
import { newSigningKeyRow } from './issuer.js';
import { restoreSigningKey, restoreToken } from './issuer-restore.js';
import { authorize } from './privileges.js';
import { bool, col, commandDone, rowsResult } from './results.js';
import { type Cmd, type StatementContext, writeTx } from './statement-context.js';
import { formatTextArray, formatTimestamp, parseInterval, valueText } from './values.js';

/**
 * SHOW TOKEN ISSUER and ALTER TOKEN ISSUER ROTATE KEY (SPEC §12): the built-in issuer's
 * signing keys, public facts only (never the private half, sealed or not).
 */
export const ISSUER_COLUMNS = [col('issuer'), col('kid'), col('algorithm'), col('status'), col('created_at', 'timestamptz'), col('retires_at', 'timestamptz')];

export function showTokenIssuer(ctx: StatementContext): Execution {
  authorize(ctx.actor, { kind: 'manageTokenIssuer', statement: 'SHOW TOKEN ISSUER' });
  const tz = ctx.session.settings.get('timezone');
  const keys = [...ctx.view.signingKeys()].filter((k) => k.retiresAt === null || k.retiresAt > ctx.now).sort((a, b) => b.createdAt - a.createdAt || b.id - a.id);
  const url = ctx.engine.issuerUrl;
  return rowsResult(
    ISSUER_COLUMNS,
    keys.map((k) => [url, k.kid, k.alg, k.retiresAt === null ? 'current' : 'retiring', formatTimestamp(k.createdAt, tz), k.retiresAt === null ? null : formatTimestamp(k.retiresAt, tz)])[Symbol.iterator](),
    'SHOW',
    false,
  );
}

/**
 * A new current key; the old one keeps verifying (and stays in the JWKS) for the grace —
 * by default one access token lifetime, so that no token already issued is cut short.
 * Keys whose grace is over are dropped from the catalog here.
 */
export async function alterTokenIssuer(cmd: Cmd<'AlterTokenIssuer'>, ctx: StatementContext): Promise<Execution> {
  authorize(ctx.actor, { kind: 'manageTokenIssuer', statement: 'ALTER TOKEN ISSUER' });
  if (ctx.imports) return restoreSigningKey(ctx);
  const tx = writeTx(ctx);
  const text = cmd.grace ? valueText(cmd.grace, ctx.params) : null;
  const grace = text === null ? ctx.engine.accessTokenSeconds * 1000 : parseInterval(text);
  if (grace < 0) throw new PgError('invalid_parameter_value', `GRACE must not be negative, got "${text}"`);
  for (const k of [...tx.signingKeys()] as SigningKey[]) {
    if (k.retiresAt !== null && k.retiresAt <= ctx.now) tx.delete('signingKeys', k.id);
    else if (k.retiresAt === null) tx.update('signingKeys', { ...k, retiresAt: ctx.now + grace });
  }
  tx.insert('signingKeys', await newSigningKeyRow(tx, ctx.now));
  return commandDone('ALTER TOKEN ISSUER');
}

// ---- tokens minted and revoked from SQL ---------------------------------------------------

export const TOKEN_RESULT_COLUMNS = [col('jti'), col('subject'), col('token'), col('expires_at', 'timestamptz')];

/**
 * CREATE TOKEN FOR name [ROLE r] [WITH DATABASES (...)] [SCOPES (...)] EXPIRES ...: an
 * access token for a user or service account (a cluster node's token), shown once. Who
 * may mint one, and how wide, is what CREATE API KEY allows for the same owner: a token is
 * a credential of that owner. The expiry is required and capped (the issuer's
 * maxMintedTokenSeconds: the setting create_token_max_seconds); the token dies earlier if
 * its signing key is rotated out.
 */
export async function createToken(cmd: Cmd<'CreateToken'>, ctx: StatementContext): Promise<Execution> {
  const tx = writeTx(ctx);
  const owner = resolveOwner(cmd.owner, ctx);
  authorizeOwner(owner, 'CREATE TOKEN', ctx);
  const opts = credentialOptions(cmd.options, owner, ctx);
  if (ctx.imports) return restoreToken(ctx, owner, opts);
  let { role, dbs } = opts;
  const { scopes, expiresAt } = opts;
  const max = ctx.engine.maxMintedTokenSeconds;
  if (expiresAt === null) {
    throw new PgError('invalid_parameter_value', 'CREATE TOKEN needs an expiry', { hint: `Add EXPIRES IN 'interval' (at most ${max} seconds).` });
  }
  if (expiresAt - ctx.now > max * 1000) {
    throw new PgError('invalid_parameter_value', `a token may live at most ${max} seconds`, { hint: 'Choose a shorter EXPIRES IN; the limit is the setting create_token_max_seconds.' });
  }
  const cap = ctx.actor.limits;
  if (cap) {
    if (role === null && cap.role !== 'superuser') role = cap.role;
    if (dbs === null && cap.databaseIds) dbs = cap.databaseIds.map((id) => ctx.view.databaseById(id)).filter((d): d is Database => d !== undefined);
    withinSession({ name: `token for ${owner.name}`, role, databaseIds: dbs?.map((d) => d.id) ?? null, scopes: scopes ?? [] }, 'CREATE TOKEN', ctx);
  }
  checkLimits(owner, role, dbs ?? [], ctx, scopes ?? []);
  const grant = { ownerKind: owner.kind, ownerId: owner.id, apiKeyId: null, role, databaseIds: dbs?.map((d) => d.id) ?? null, scopes };
  let minted;
  try {
    minted = await ctx.engine.mintToken(tx, grant, Math.floor((expiresAt - ctx.now) / 1000), ctx.now, ctx.actor.name);
  } catch (err) {
    if (!(err instanceof CredentialRefused)) throw err;
    throw new PgError('object_not_in_prerequisite_state', `${ownerWord(owner)} "${owner.name}" cannot be given a token`, { detail: err.reason });
  }
  ctx.notice({ severity: 'NOTICE', code: '00000', message: 'store this token now: it cannot be shown again' });
  const tz = ctx.session.settings.get('timezone');
  return rowsResult(TOKEN_RESULT_COLUMNS, [[minted.row.jti, owner.name, minted.token, formatTimestamp(minted.row.expiresAt, tz)]][Symbol.iterator](), 'CREATE TOKEN', false);
}

export const TOKENS_COLUMNS = [
  col('jti'),
  col('subject'),
  col('subject_kind'),
  col('minted', 'bool'),
  col('role'),
  col('databases', 'textArray'),
  col('scopes', 'textArray'),
  col('issued_at', 'timestamptz'),
  col('expires_at', 'timestamptz'),
  col('revoked_at', 'timestamptz'),
  col('created_by'),
];

/** The owner of a token row, as CREATE API KEY's checks take it (undefined: dropped). */
function ownerOf(t: IssuedToken | RefreshToken, ctx: StatementContext): Owner | undefined {
  if (t.ownerKind === 'user') {
    const user = ctx.view.userById(t.ownerId);
    return user && { kind: 'user', user, name: user.name, id: user.id, tenantId: user.tenantId };
  }
  const sa = ctx.view.serviceAccountById(t.ownerId);
  return sa && { kind: 'service_account', sa, name: sa.name, id: sa.id, tenantId: sa.tenantId };
}

const visible = (o: Owner, ctx: StatementContext) => canListKeysOf(ctx.actor, o.kind === 'user' ? { kind: 'user', user: o.user } : { kind: 'service_account', sa: o.sa });

/** SHOW TOKENS [FOR name]: the access tokens not yet expired, never the tokens themselves. */
export function showTokens(cmd: Cmd<'ShowTokens'>, ctx: StatementContext): Execution {
  const only = cmd.owner ? resolveOwner(cmd.owner, ctx) : null;
  const tz = ctx.session.settings.get('timezone');
  const ts = (ms: number | null) => (ms === null ? null : formatTimestamp(ms, tz));
  const rows: (string | null)[][] = [];
  const tokens = only ? ctx.view.issuedTokensOf(only.kind, only.id) : [...ctx.view.issuedTokens()];
  for (const t of tokens.sort((a, b) => a.issuedAt - b.issuedAt || a.id - b.id)) {
    if (t.expiresAt <= ctx.now) continue;
    const o = ownerOf(t, ctx);
    if (!o || !visible(o, ctx)) continue;
    const dbs = t.databaseIds === null ? null : formatTextArray(t.databaseIds.map((id) => ctx.view.databaseById(id)?.name ?? String(id)));
    rows.push([t.jti, o.name, o.kind, bool(t.minted), t.role, dbs, t.scopes === null ? null : formatTextArray(t.scopes), ts(t.issuedAt), ts(t.expiresAt), ts(t.revokedAt), t.createdBy]);
  }
  return rowsResult(TOKENS_COLUMNS, rows[Symbol.iterator](), 'SHOW', false);
}

/** REVOKE TOKEN 'jti': refused from now on, in open sessions too (checked at every statement). */
export function revokeToken(cmd: Cmd<'RevokeToken'>, ctx: StatementContext): Execution {
  const tx = writeTx(ctx);
  const jti = valueText(cmd.jti, ctx.params) ?? '';
  const t = tx.issuedTokenByJti(jti);
  const o = t && t.expiresAt > ctx.now ? ownerOf(t, ctx) : undefined;
  if (!t || !o || !visible(o, ctx)) throw new PgError('undefined_object', `token "${jti}" does not exist`, { position: cmd.jti.position });
  authorizeOwner(o, 'REVOKE TOKEN', ctx);
  if (t.revokedAt === null) tx.update('issuedTokens', { ...t, revokedAt: ctx.now });
  return commandDone('REVOKE TOKEN');
}

/** REVOKE TOKENS FOR name: every access and refresh token of that user or service account. */
export function revokeTokens(cmd: Cmd<'RevokeTokens'>, ctx: StatementContext): Execution {
  const tx = writeTx(ctx);
  const owner = resolveOwner(cmd.owner, ctx);
  authorizeOwner(owner, 'REVOKE TOKENS', ctx);
  for (const t of tx.issuedTokensOf(owner.kind, owner.id)) if (t.revokedAt === null && t.expiresAt > ctx.now) tx.update('issuedTokens', { ...t, revokedAt: ctx.now });
  for (const r of tx.refreshTokensOf(owner.kind, owner.id)) if (r.revokedAt === null && r.usedAt === null && r.expiresAt > ctx.now) tx.update('refreshTokens', { ...r, revokedAt: ctx.now });
  return commandDone('REVOKE TOKENS');
}
