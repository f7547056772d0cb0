import type { Execution } from '../wire/handler.js';
import type { StatementContext } from './statement-context.js';
import { AUTH_VARIABLES, authValueText } from './auth-vars.js';
import { col, rowsResult } from './results.js';

export const authColumns = [col('variable'), col('value')];

/** SHOW AUTH: every `$auth.*` variable of this session, one row each, in AUTH_VARIABLES order. */
export function runShowAuth(ctx: StatementContext): Execution {
  const values = ctx.session.authValues(ctx.view, ctx.now);
  const rows = AUTH_VARIABLES.map((v) => [`$auth.${v}`, authValueText(values[v])]);
  // While SET TENANT is in force, say where names resolve: it is not an identity, so not $auth.
  const nameTenant = ctx.session.nameTenantId;
  if (nameTenant !== null) rows.push(['SET TENANT', ctx.view.tenantById(nameTenant)?.name ?? `${nameTenant} (dropped)`]);
  return rowsResult(authColumns, rows[Symbol.iterator](), 'SHOW', false);
}
