import type { SigningKey } from '../catalog/model.js';
import { PgError } from '../errors/pg-error.js';
import type { Execution } from '../wire/handler.js';
import { newSigningKeyRow } from './issuer.js';
import { authorize } from './privileges.js';
import { col, commandDone, rowsResult } from './results.js';
import { type Cmd, type StatementContext, writeTx } from './statement-context.js';
import { formatTimestamp, parseInterval, valueText } from './values.js';

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
