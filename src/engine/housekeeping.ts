import { PgError } from '../errors/pg-error.js';
import type { Execution } from '../wire/handler.js';
import type { Cmd, StatementContext } from './statement-context.js';
import { commandDone } from './results.js';

/**
 * Session housekeeping that drivers and poolers send whatever the server is: asyncpg's pool
 * runs `SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL;` on every release,
 * psycopg 3 sends `DEALLOCATE ALL` after a DROP once it has prepared statements, PgBouncer
 * resets a server connection with `DISCARD ALL`. Each answers with PostgreSQL's command tag.
 * None touches the catalog; the session has no cursors, notification channels, temporary
 * tables, sequences or cached plans, so most of them have nothing to drop.
 */

/**
 * DISCARD ALL: as PostgreSQL, `CLOSE ALL; SET SESSION AUTHORIZATION DEFAULT; RESET ALL;
 * DEALLOCATE ALL; UNLISTEN *; SELECT pg_advisory_unlock_all(); DISCARD PLANS; DISCARD TEMP;
 * DISCARD SEQUENCES`. Session authorization goes back to the login user, who the session
 * is (a superuser acting as alice is itself again; alice logged in is still alice), so it
 * cannot raise anyone's privileges. SET TENANT is session state too, and is reset with it.
 */
export function discard(cmd: Cmd<'Discard'>, ctx: StatementContext): Execution {
  if (cmd.what !== 'ALL') return commandDone(`DISCARD ${cmd.what}`);
  // PreventInTransactionBlock: a block, or several statements in one Query message.
  if (ctx.inBlock || ctx.multiStatement) {
    throw new PgError('active_sql_transaction', 'DISCARD ALL cannot run inside a transaction block', { position: cmd.position });
  }
  ctx.session.settings.discardAll();
  ctx.protocol?.deallocateAll();
  return commandDone('DISCARD ALL');
}

/** DEALLOCATE [PREPARE] name | ALL: the connection's prepared statements, made by Parse. */
export function deallocate(cmd: Cmd<'Deallocate'>, ctx: StatementContext): Execution {
  if (cmd.name === null) {
    ctx.protocol?.deallocateAll();
    return commandDone('DEALLOCATE ALL');
  }
  if (!ctx.protocol?.deallocate(cmd.name.value)) {
    throw new PgError('invalid_sql_statement_name', `prepared statement "${cmd.name.value}" does not exist`, { position: cmd.name.position });
  }
  return commandDone('DEALLOCATE');
}

/** CLOSE name | ALL: there are no SQL cursors (no DECLARE), so ALL closes nothing and a name is unknown. */
export function closeCursor(cmd: Cmd<'Close'>): Execution {
  if (cmd.name === null) return commandDone('CLOSE CURSOR ALL');
  throw new PgError('invalid_cursor_name', `cursor "${cmd.name.value}" does not exist`, { position: cmd.name.position });
}

/** UNLISTEN channel | *: this session listens on nothing, so there is nothing to stop. */
export function unlisten(): Execution {
  return commandDone('UNLISTEN');
}

/** LISTEN: refused clearly rather than accepted and never answered. */
export function listen(cmd: Cmd<'Listen'>): Execution {
  throw new PgError('feature_not_supported', 'LISTEN is not supported: portcullis sends no notifications', {
    position: cmd.position,
    detail: `Nothing would ever be delivered on channel "${cmd.channel.value}".`,
  });
}
