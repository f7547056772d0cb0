import type { Execution } from '../wire/handler.js';
import type { Cmd, StatementContext } from './statement-context.js';
import { authorize } from './privileges.js';
import { commandDone } from './results.js';
import { resolveTenant } from './tenants.js';

/**
 * SET TENANT t / RESET TENANT: a superuser's names resolve in tenant t until reset,
 * so one migration file can set a tenant up end to end (CREATE TENANT acme; SET TENANT acme;
 * CREATE DATABASE ...; GRANT ... ON DATABASE ... TO ...). It is a session setting like any
 * SET: a ROLLBACK undoes it, and it lasts for the session otherwise. It changes where names
 * resolve, never who the session is: $auth.* and the privilege checks stay the principal's.
 */
export function setTenant(cmd: Cmd<'SetTenant'>, ctx: StatementContext): Execution {
  authorize(ctx.actor, { kind: 'setTenant' });
  ctx.session.resolveNamesIn(cmd.tenant === null ? null : resolveTenant(cmd.tenant, ctx).id);
  return commandDone(cmd.tenant === null ? 'RESET' : 'SET');
}
