import type { Execution } from '../wire/handler.js';
import { authorize } from './privileges.js';
import { col, rowsResult } from './results.js';
import type { StatementContext } from './statement-context.js';

/**
 * SHOW POOLS: the upstream data plane's transaction pools, one row per database, with
 * PgBouncer's column names (its console's SHOW POOLS), so its users read them as they
 * always have. A tenant_admin sees its own tenant's databases; a superuser every one.
 */
export const POOL_COLUMNS = [
  col('tenant'),
  col('database'),
  col('cl_active', 'int4'),
  col('cl_waiting', 'int4'),
  col('sv_active', 'int4'),
  col('sv_idle', 'int4'),
  col('sv_dedicated', 'int4'),
  col('maxwait', 'int4'),
  col('pool_size', 'int4'),
  col('pool_mode'),
];

export function showPools(ctx: StatementContext): Execution {
  const { actor, view } = ctx;
  authorize(actor, { kind: 'showPools' });
  const rows: (string | null)[][] = [];
  const pools = ctx.engine
    .poolStats()
    .filter((p) => actor.role === 'superuser' || p.db.tenantId === actor.tenantId)
    .map((p) => ({
      p,
      // Names as the catalog has them now (a renamed database keeps its pool: the pool follows ids).
      tenant: view.tenantById(p.db.tenantId)?.name ?? p.db.tenantName,
      database: view.databaseById(p.db.databaseId)?.name ?? p.db.databaseName,
    }))
    .sort((a, b) => (a.tenant === b.tenant ? a.database.localeCompare(b.database) : a.tenant.localeCompare(b.tenant)));
  for (const { p, tenant, database } of pools) {
    rows.push([tenant, database, String(p.clActive), String(p.clWaiting), String(p.svActive), String(p.svIdle), String(p.dedicated), String(p.maxwait), String(p.size), 'transaction']);
  }
  return rowsResult(POOL_COLUMNS, rows[Symbol.iterator](), 'SHOW', false);
}
