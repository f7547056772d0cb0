import type { AdminCommand } from '../../grammar/index.js';
import { PgError } from '../errors/pg-error.js';
import type { Execution } from '../wire/handler.js';
import type { StatementContext } from './statement-context.js';
import { authorize } from './privileges.js';
import { col, rowsResult } from './results.js';
import { formatTimestamp, valueText } from './values.js';
import type { AuditRecord } from '../audit/audit-record.js';

/** SHOW LOCKOUTS and SHOW AUDIT LOG. */
export const LOCKOUT_COLUMNS = [col('kind'), col('subject'), col('failures', 'int8'), col('locked_until', 'timestamptz')];

/** SHOW LOCKOUTS: addresses and user names locked out now, with their failures. */
export function showLockouts(ctx: StatementContext): Execution {
  authorize(ctx.actor, { kind: 'showLockouts' });
  const tz = ctx.session.settings.get('timezone');
  const rows = ctx.engine.lockouts.list().map((l) => [l.kind, l.subject, String(l.failures), formatTimestamp(l.lockedUntil, tz)]);
  return rowsResult(LOCKOUT_COLUMNS, rows[Symbol.iterator](), 'SHOW', false);
}

export const AUDIT_COLUMNS = [
  col('seq', 'int8'),
  col('at', 'timestamptz'),
  col('kind'),
  col('tenant_id', 'int8'),
  col('actor'),
  col('action'),
  col('object'),
  col('outcome'),
  col('address'),
  col('detail'),
  col('hash'),
];

function auditRow(r: AuditRecord, tz: string): (string | null)[] {
  const common = [String(r.seq), formatTimestamp(r.at, tz), r.kind, r.tenant === null ? null : String(r.tenant)];
  switch (r.kind) {
    case 'login':
      return [...common, r.principal, `login ${r.method} via ${r.via}`, null, r.ok ? 'success' : 'failure', r.address, r.reason ?? (r.repeats ? `${r.repeats} more requests since the previous record` : null), r.hash];
    case 'change':
      return [...common, r.actor, r.statement, r.object, 'committed', r.address, r.text, r.hash];
    case 'denial':
      return [...common, r.actor, r.statement, r.object, 'denied', r.address, r.reason, r.hash];
  }
}

/**
 * SHOW AUDIT LOG [LIMIT n]: the last n records (all without LIMIT), oldest first, read from
 * the trail as they are sent. A superuser sees every record; a tenant_admin its tenant's.
 */
export async function showAuditLog(cmd: Extract<AdminCommand, { type: 'ShowAuditLog' }>, ctx: StatementContext): Promise<Execution> {
  authorize(ctx.actor, { kind: 'showAuditLog' });
  let limit: number | null = null;
  if (cmd.limit) {
    const text = valueText(cmd.limit, ctx.params);
    limit = text === null ? null : Number(text);
    if (limit !== null && (!Number.isSafeInteger(limit) || limit < 0)) {
      throw new PgError('invalid_parameter_value', `LIMIT must not be negative: ${text}`, { position: cmd.limit.position });
    }
  }
  const audit = ctx.engine.audit;
  await audit.settle(); // what was recorded before this statement is in what it shows
  const tz = ctx.session.settings.get('timezone');
  const tenant = ctx.actor.role === 'superuser' ? null : ctx.actor.tenantId;
  const rows = await audit.read(limit, tenant);
  return rowsResult(AUDIT_COLUMNS, map(rows, (r) => auditRow(r, tz)), 'SHOW', false);
}

function* map<T, U>(items: Iterable<T>, f: (t: T) => U): Generator<U> {
  for (const t of items) yield f(t);
}
