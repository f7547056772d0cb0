import type { AdminCommand } from '../../grammar/index.js';
import { PgError } from '../errors/pg-error.js';
import type { Execution } from '../wire/handler.js';
import type { StatementContext } from './dispatch.js';
import { authorize } from './privileges.js';
import { col, rowsResult } from './results.js';

/**
 * SHOW LOCKOUTS and SHOW AUDIT LOG (SPEC §3). Brute-force lockouts and the audit trail are
 * built with the defences work; until then there are no lockouts to list, and the audit
 * log is a recognised statement that is not supported yet (0A000), never an empty lie.
 */
export const LOCKOUT_COLUMNS = [col('kind'), col('subject'), col('failures', 'int8'), col('locked_until', 'timestamptz')];

export function showLockouts(ctx: StatementContext): Execution {
  authorize(ctx.actor, { kind: 'showLockouts' });
  return rowsResult(LOCKOUT_COLUMNS, [][Symbol.iterator](), 'SHOW', false);
}

export function showAuditLog(cmd: Extract<AdminCommand, { type: 'ShowAuditLog' }>): Execution {
  throw new PgError('feature_not_supported', 'SHOW AUDIT LOG is not supported yet', {
    position: cmd.position,
    detail: 'The hash-chained audit trail is not built yet.',
  });
}
