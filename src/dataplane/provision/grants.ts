/**
 * Profile roles: created on first use, granted exactly their profile (and REFERENCES on
 * every managed table when it has SCHEMA, for foreign keys). NOLOGIN by default
 * (a session reaches one by SET ROLE); with a password, LOGIN (an upstream session logs in
 * as it: docs/data-plane.md, "login mode"). Never SUPERUSER, CREATEDB, CREATEROLE,
 * REPLICATION or BYPASSRLS; NOINHERIT; a member of no role.
 */
import { formatVerifier, looksLikeVerifier, makeVerifier } from '../../auth/verifier.js';
import type { AdminSql } from '../types.js';
import { createRoleIfMissing, withProvisionLock } from './lock.js';
import { DATA_SCHEMA, PORTCULLIS_SCHEMA } from './names.js';
import { serialSequences, tablesOf } from './objects.js';
import { profileJson, profileRoleName, type Profile, type TablePrivilege } from './profile.js';
import { qualified, quoteIdent, quoteLiteral } from './quote.js';

export interface ProfileRoleOptions {
  /** LOGIN with this password, or SCRAM-SHA-256 verifier (login mode); absent: NOLOGIN. Sessions then log in with SCRAM (pg_hba: scram-sha-256). */
  password?: string;
}

const ATTRIBUTES = 'NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS NOINHERIT';
/**
 * What ALTER ROLE may name without superuser: PostgreSQL refuses a non-superuser any
 * mention of SUPERUSER, REPLICATION or BYPASSRLS in ALTER ROLE, even to turn them off; those
 * three are checked instead (a role of that name holding one is not ours to use).
 */
const ALTER_ATTRIBUTES = 'NOCREATEDB NOCREATEROLE NOINHERIT';

/**
 * The statements that make `role`'s privileges exactly `profile` on `tables` (those
 * portcullis manages, names from the catalogs): everything revoked, then granted, in one
 * implicit transaction so no session ever sees the role between the two. Table by table,
 * not ON ALL TABLES IN SCHEMA: REVOKE on a table someone else owns is an error.
 */
export function grantStatements(role: string, profile: Profile, tables: string[], sequences: { sequence: string; table: string }[]): string {
  const r = quoteIdent(role);
  const schema = quoteIdent(DATA_SCHEMA);
  const list = (names: string[]) => names.map((n) => qualified(DATA_SCHEMA, n)).join(', ');
  const out: string[] = [];
  if (tables.length > 0) out.push(`REVOKE ALL ON TABLE ${list(tables)} FROM ${r}`);
  if (sequences.length > 0) out.push(`REVOKE ALL ON SEQUENCE ${list(sequences.map((s) => s.sequence))} FROM ${r}`);
  out.push(`REVOKE ALL ON SCHEMA ${schema} FROM ${r}`, `GRANT USAGE ON SCHEMA ${schema} TO ${r}`, `GRANT USAGE ON SCHEMA ${quoteIdent(PORTCULLIS_SCHEMA)} TO ${r}`);
  if (profile.schema) out.push(`GRANT CREATE ON SCHEMA ${schema} TO ${r}`);
  // Tables with the same privileges in one GRANT.
  const byPrivileges = new Map<string, string[]>();
  const inserting = new Set<string>();
  for (const t of tables) {
    const privs = privilegesOn(profile, t);
    if (privs.length === 0) continue;
    const key = privs.join(', ');
    byPrivileges.set(key, [...(byPrivileges.get(key) ?? []), t]);
    if (privs.includes('INSERT')) inserting.add(t);
  }
  for (const [privs, ts] of byPrivileges) out.push(`GRANT ${privs} ON TABLE ${list(ts)} TO ${r}`);
  // SCHEMA may make tables; a table's foreign key needs REFERENCES on the table it points at
  // (PostgreSQL gives it to owners, and no principal owns one here). The side channel this
  // opens (a key that goes in says a hidden row exists) is docs/SECURITY.md's.
  if (profile.schema && tables.length > 0) out.push(`GRANT REFERENCES ON TABLE ${list(tables)} TO ${r}`);
  // A serial column's default is nextval(): INSERT needs USAGE on its sequence.
  const seqs = sequences.filter((s) => inserting.has(s.table)).map((s) => s.sequence);
  if (seqs.length > 0) out.push(`GRANT USAGE ON SEQUENCE ${list(seqs)} TO ${r}`);
  return out.map((s) => `${s};`).join('\n');
}

/** Applies grantStatements for one role against the tables that exist now. */
export async function regrant(sql: AdminSql, role: string, profile: Profile): Promise<void> {
  const tables = (await tablesOf(sql)).filter((t) => t.managed).map((t) => t.name);
  await sql.exec(grantStatements(role, profile, tables, await serialSequences(sql)));
}

/**
 * Creates the role that carries `profile` in database `dbKey` if it is missing, and makes
 * its attributes and grants exactly the profile's (idempotent; two sessions at once take
 * turns on the provisioning lock, and a role created by another connection in between is
 * taken as is). Returns the role's name.
 */
export async function ensureProfileRole(sql: AdminSql, dbKey: string, profile: Profile, opts: ProfileRoleOptions = {}): Promise<string> {
  const role = profileRoleName(dbKey, profile);
  const r = quoteIdent(role);
  // The password goes as a SCRAM verifier, never as itself: ALTER ROLE's text can reach the
  // server's log (log_statement) and pg_stat_activity.
  const secret = opts.password === undefined ? null : looksLikeVerifier(opts.password) ? opts.password : formatVerifier(await makeVerifier(opts.password));
  const login = secret === null ? 'NOLOGIN' : `LOGIN PASSWORD ${quoteLiteral(secret)}`;
  await withProvisionLock(sql, async () => {
    await createRoleIfMissing(sql, role, `CREATE ROLE ${r} ${ATTRIBUTES} ${login}`);
    const [attrs] = await sql.query('SELECT (rolsuper OR rolreplication OR rolbypassrls)::text AS bad FROM pg_catalog.pg_roles WHERE rolname = $1', [role]);
    if (attrs?.bad !== 'false') throw new Error(`role "${role}" is a superuser, replication or BYPASSRLS role: not a profile role portcullis may use`);
    await sql.exec(
      [
        // Again on an existing role: a role of this name with other attributes is put right.
        `ALTER ROLE ${r} ${ALTER_ATTRIBUTES} ${login}`,
        // A role may set its own defaults (ALTER ROLE CURRENT_USER SET ...); a profile role is
        // shared by every principal of the profile, so none keeps any (a login-mode session
        // would start with them: a statement_timeout of 1 ms for everyone, say).
        `ALTER ROLE ${r} RESET ALL`,
        // portcullis takes the role by SET ROLE (which needs membership) and moves what it
        // owns (REASSIGN OWNED needs membership in both roles).
        `GRANT ${r} TO CURRENT_USER`,
        `COMMENT ON ROLE ${r} IS ${quoteLiteral(profileJson(profile))}`,
      ]
        .map((s) => `${s};`)
        .join('\n'),
    );
    await regrant(sql, role, profile);
  });
  return role;
}

/** Every privilege a table gets from a profile (for tests and EXPLAIN-like displays). */
export function privilegesOn(profile: Profile, table: string): TablePrivilege[] {
  const s = new Set([...profile.all, ...(profile.tables[table] ?? [])]);
  return (['SELECT', 'INSERT', 'UPDATE', 'DELETE'] as const).filter((p) => s.has(p));
}
