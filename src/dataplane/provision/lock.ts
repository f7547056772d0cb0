import type { AdminSql } from '../types.js';
import { quoteIdent } from './quote.js';

/**
 * Provisioning of one database is serialised by a session-level advisory lock (advisory
 * locks are per database): two portcullis sessions creating the same profile role, or a
 * sync racing an adoption, take turns instead of failing on "tuple concurrently updated".
 * Session-level, not transaction-level, so it works whether or not a transaction is open.
 */
// Session-level advisory locks nest (the same session may take one again), so a sync that
// ensures roles takes it twice and gives it back twice.
const LOCK = '2007093043, 1'; // two int4 keys: away from applications that use one bigint

/** A profile role's name (names.ts), whatever the database key. */
const PROFILE_ROLE = /^pcu_[a-z0-9_]+_p_[0-9a-f]{12}$/;

/**
 * Runs `fn` as portcullis, under the provisioning lock. On a lease's connection in the
 * middle of a turn the role is a profile role: it is reset for `fn` and set again after,
 * so the session keeps its identity. If it cannot be set again (the role was dropped),
 * the error says so: the connection then runs as portcullis and must not carry client
 * SQL until applyIdentity runs again. A connection logged in as a profile role (login
 * mode) cannot provision at all.
 */
export async function withProvisionLock<T>(sql: AdminSql, fn: () => Promise<T>): Promise<T> {
  const [who] = await sql.query('SELECT current_user::text AS cur, session_user::text AS ses');
  if (PROFILE_ROLE.test(who!.ses!)) throw new Error(`provisioning SQL on a connection logged in as profile role "${who!.ses}": use portcullis's own connection`);
  const restore = PROFILE_ROLE.test(who!.cur!) ? who!.cur! : null;
  if (restore) await sql.exec('RESET ROLE');
  try {
    await sql.query(`SELECT pg_advisory_lock(${LOCK})::text`);
    try {
      return await fn();
    } finally {
      await sql.query(`SELECT pg_advisory_unlock(${LOCK})::text`);
    }
  } finally {
    if (restore) {
      try {
        await sql.exec(`SET ROLE ${quoteIdent(restore)}`);
      } catch (err) {
        throw new IdentityLostError(restore, err);
      }
    }
  }
}

/** The connection could not take back the session's role after provisioning on it: apply the identity again before any client SQL. */
export class IdentityLostError extends Error {
  constructor(
    readonly role: string,
    override readonly cause: unknown,
  ) {
    super(`could not SET ROLE "${role}" again after provisioning: ${(cause as Error)?.message ?? cause}`);
  }
}

/** SQLSTATE of an error thrown by an AdminSql, if it carries one (pg and PGlite both do). */
export const sqlStateOf = (err: unknown): string | undefined => (err as { code?: unknown } | null)?.code as string | undefined;

/**
 * CREATE ROLE for a name another session may be creating at the same instant (on another
 * connection, outside our lock: roles are cluster-wide): "already exists" (42710), or the
 * unique index on pg_authid seeing the other insert (23505), means it is there.
 */
export async function createRoleIfMissing(sql: AdminSql, name: string, createSql: string): Promise<boolean> {
  const rows = await sql.query('SELECT 1::text AS x FROM pg_catalog.pg_roles WHERE rolname = $1', [name]);
  if (rows.length > 0) return false;
  try {
    await sql.exec(createSql);
    return true;
  } catch (err) {
    const code = sqlStateOf(err);
    if (code === '42710' || code === '23505') return false;
    throw err;
  }
}
