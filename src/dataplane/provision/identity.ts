/**
 * A session's identity at a turn: the SQL portcullis runs, as itself, on the connection a
 * lease hands out, before the client's first message.
 *
 * Set-role mode (PGlite; an upstream where installSchema's lock-down is complete): one
 * simple-protocol round trip that (1) drops what another session left on the connection,
 * (2) writes this session's `$auth` values into the store under pg_backend_pid(), (3) SET
 * ROLE to the profile role. The client's SQL then runs as that role, which can run no code
 * of its own (no language, no set_config), so it cannot leave it; top-level statements that
 * would are the forwarder's to refuse.
 *
 * Login mode (an upstream where portcullis is no superuser, so PUBLIC keeps plpgsql): the
 * session's connection logs in as the profile role itself (RESET ROLE then has nowhere to
 * go) and portcullis writes the values for that backend's pid from its own connection:
 * storeAuthFor.
 */
import type { AuthValues } from '../../engine/auth-vars.js';
import { authValueText, AUTH_VARIABLES } from '../../engine/auth-vars.js';
import type { AdminSql } from '../types.js';
import { portcullisObject } from './schema.js';
import { quoteIdent, quoteLiteral } from './quote.js';

/** The store's form of a session's values: text by name, lists as array literals, claims as `claims.<name>`; missing ones absent. */
export function authJson(auth: AuthValues): string {
  const out: Record<string, string> = {};
  for (const v of AUTH_VARIABLES) {
    const text = authValueText(auth[v]);
    if (text !== null) out[v] = text;
  }
  for (const [k, v] of Object.entries(auth.claims)) out[`claims.${k}`] = v;
  return JSON.stringify(out);
}

export interface IdentityOptions {
  /**
   * 'another-session' (the default; a `fresh` lease): drop everything session-scoped the
   * previous holder left — cursors, settings, prepared statements, LISTENs, advisory
   * locks, cached plans, temporary tables, sequence state. 'same-session': this
   * connection last served this very session (its privileges changed): keep its state,
   * change only the values and the role.
   */
  reset?: 'another-session' | 'same-session';
}

/**
 * DISCARD ALL, spelled out: DISCARD ALL itself cannot run in the implicit transaction of a
 * multi-statement query, and its SET SESSION AUTHORIZATION DEFAULT needs a superuser
 * session. RESET ROLE first: the INSERT below must run as portcullis, not as the role the
 * previous turn left.
 */
const RESET_ANOTHER = 'RESET ROLE; CLOSE ALL; RESET ALL; DEALLOCATE ALL; UNLISTEN *; SELECT pg_catalog.pg_advisory_unlock_all(); DISCARD PLANS; DISCARD TEMP; DISCARD SEQUENCES;';

const upsert = (pid: string, login: string, json: string) =>
  `INSERT INTO ${portcullisObject('session_auth')} (pid, login, vals) VALUES (${pid}, ${login}, ${quoteLiteral(json)}::jsonb) ` +
  `ON CONFLICT (pid) DO UPDATE SET login = EXCLUDED.login, vals = EXCLUDED.vals;`;

/** The one round trip of set-role mode (see the module comment). */
export function identitySql(role: string, auth: AuthValues, opts: IdentityOptions = {}): string {
  const reset = opts.reset === 'same-session' ? 'RESET ROLE;' : RESET_ANOTHER;
  return `${reset} ${upsert('pg_catalog.pg_backend_pid()', 'SESSION_USER', authJson(auth))} SET ROLE ${quoteIdent(role)};`;
}

/** Runs identitySql on a lease's connection (lease.admin). */
export async function applyIdentity(sql: AdminSql, role: string, auth: AuthValues, opts: IdentityOptions = {}): Promise<void> {
  await sql.exec(identitySql(role, auth, opts));
}

/** Login mode: writes the values of the backend `pid`, logged in as `login`, from portcullis's own connection. */
export async function storeAuthFor(sql: AdminSql, pid: number, login: string, auth: AuthValues): Promise<void> {
  if (!Number.isSafeInteger(pid)) throw new Error(`not a backend pid: ${pid}`);
  await sql.exec(upsert(String(pid), quoteLiteral(login), authJson(auth)));
}

/**
 * Forgets stored values: one backend's (its connection closed), or, without a pid, those
 * of every backend that no longer exists (at start: pg_stat_activity lists the pid of
 * every backend, whatever its role).
 */
export async function clearAuth(sql: AdminSql, pid?: number): Promise<void> {
  const t = portcullisObject('session_auth');
  if (pid === undefined) await sql.exec(`DELETE FROM ${t} WHERE pid <> pg_catalog.pg_backend_pid() AND pid NOT IN (SELECT a.pid FROM pg_catalog.pg_stat_activity a WHERE a.pid IS NOT NULL);`);
  else if (Number.isSafeInteger(pid)) await sql.exec(`DELETE FROM ${t} WHERE pid = ${pid};`);
}
