import type { AdminCommand } from '../../grammar/index.js';
import { PgError } from '../errors/pg-error.js';
import type { Execution } from '../wire/handler.js';
import type { StatementContext } from './dispatch.js';
import { authorize } from './privileges.js';
import { col, rowsResult } from './results.js';
import { formatTimestamp } from './values.js';

/**
 * SHOW LOCKOUTS and SHOW AUDIT LOG (SPEC §3). The audit trail is not built yet: SHOW AUDIT
 * LOG is a recognised statement that is not supported (0A000), never an empty lie.
 */
export const LOCKOUT_COLUMNS = [col('kind'), col('subject'), col('failures', 'int8'), col('locked_until', 'timestamptz')];

/** SHOW LOCKOUTS: addresses and user names locked out now, with their failures. */
export function showLockouts(ctx: StatementContext): Execution {
  authorize(ctx.actor, { kind: 'showLockouts' });
  const tz = ctx.session.settings.get('timezone');
  const rows = ctx.engine.lockouts.list().map((l) => [l.kind, l.subject, String(l.failures), formatTimestamp(l.lockedUntil, tz)]);
  return rowsResult(LOCKOUT_COLUMNS, rows[Symbol.iterator](), 'SHOW', false);
}

export function showAuditLog(cmd: Extract<AdminCommand, { type: 'ShowAuditLog' }>): Execution {
  throw new PgError('feature_not_supported', 'SHOW AUDIT LOG is not supported yet', {
    position: cmd.position,
    detail: 'The hash-chained audit trail is not built yet.',
  });
}
