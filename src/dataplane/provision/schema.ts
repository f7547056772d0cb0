/**
 * installSchema: what a data-plane database needs before any client SQL reaches it.
 *
 * - schema `portcullis`, owned by portcullis's own role, holding the `$auth` store (a table
 *   keyed by pg_backend_pid(), written only by portcullis) and `portcullis.auth(name)` /
 *   `portcullis.auth_as(name, type)`, which anyone may call and which read the calling
 *   backend's row only;
 * - the owner role `pcu_<dbKey>_owner` (NOLOGIN), which will own every table;
 * - PUBLIC locked down: no USAGE on the languages plpgsql and sql (so a profile role can
 *   run no code of its own: no DO, no CREATE FUNCTION), no EXECUTE on set_config and the
 *   backend-signalling and activity functions, no UPDATE on pg_settings, no CREATE on
 *   schema public (PostgreSQL 14 still grants it).
 *
 * Languages and pg_catalog functions belong to the bootstrap superuser: only a superuser
 * can revoke PUBLIC's rights on them. On PGlite portcullis is one; on an upstream where it
 * is not, those REVOKEs do nothing (PostgreSQL says "no privileges could be revoked"), and
 * the report says so: identity must then not rest on them (see docs/data-plane.md,
 * "login mode").
 */
import type { AdminSql } from '../types.js';
import { createRoleIfMissing, withProvisionLock } from './lock.js';
import { DATA_SCHEMA, ownerRoleName, PORTCULLIS_SCHEMA } from './names.js';
import { qualified, quoteIdent, quoteLiteral } from './quote.js';

export interface InstallReport {
  /** current_user: portcullis's own role in this database. */
  role: string;
  superuser: boolean;
  /** server_version_num, e.g. 150018. */
  serverVersion: number;
  ownerRole: string;
  /**
   * What PUBLIC can still use that the lock-down meant to take away ('language plpgsql',
   * 'function set_config(text,text,boolean)', ...). Empty when the lock-down is complete:
   * only then may a session's identity rest on SET ROLE (docs/data-plane.md).
   */
  exposed: string[];
}

const S = quoteIdent(PORTCULLIS_SCHEMA);

/** Functions PUBLIC must not execute: each either changes identity/settings or reaches other sessions. */
export const LOCKED_FUNCTIONS = [
  // SET for any name, role included (the SET statement itself is the forwarder's to refuse).
  'pg_catalog.set_config(text, text, boolean)',
  // Another session's query text (with its $auth literals) and the power to end it: allowed
  // by PostgreSQL between backends of the same role, and sessions of one profile share one.
  'pg_catalog.pg_stat_get_activity(integer)',
  'pg_catalog.pg_cancel_backend(integer)',
  'pg_catalog.pg_terminate_backend(integer, bigint)',
] as const;

/** Already superuser-only (no EXECUTE for PUBLIC) in PostgreSQL 14+: checked, not revoked. */
export const CHECKED_FUNCTIONS = [
  'pg_catalog.pg_read_file(text, bigint, bigint, boolean)',
  'pg_catalog.pg_read_binary_file(text, bigint, bigint, boolean)',
  'pg_catalog.pg_ls_dir(text, boolean, boolean)',
  'pg_catalog.pg_stat_file(text, boolean)',
  'pg_catalog.lo_import(text)',
  'pg_catalog.lo_export(oid, text)',
  'pg_catalog.pg_reload_conf()',
  'pg_catalog.pg_rotate_logfile()',
] as const;

/** The body of the two reading functions; `auth_as` is typed with pg_input_is_valid where it exists (16+). */
function functionsSql(serverVersion: number): string {
  const authAs =
    serverVersion >= 160000
      ? `CREATE OR REPLACE FUNCTION ${S}.auth_as(name text, type regtype) RETURNS text
  LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
  AS $fn$ SELECT CASE WHEN pg_catalog.pg_input_is_valid(v, pg_catalog.format_type($2, NULL)) THEN v END FROM (SELECT ${S}.auth($1) AS v) x $fn$;`
      : // Before 16 there is no way to test a cast but trying it: one subtransaction, paid
        // once per statement (policies call it from an InitPlan, not per row).
        `CREATE OR REPLACE FUNCTION ${S}.auth_as(name text, type regtype) RETURNS text
  LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
  AS $fn$
DECLARE v text := ${S}.auth(name);
BEGIN
  IF v IS NULL THEN RETURN NULL; END IF;
  EXECUTE pg_catalog.format('SELECT %L::%s', v, type);
  RETURN v;
EXCEPTION WHEN others THEN RETURN NULL;
END $fn$;`;
  return `
CREATE UNLOGGED TABLE IF NOT EXISTS ${S}.session_auth (
  pid integer PRIMARY KEY,
  login name NOT NULL,
  vals jsonb NOT NULL
);
REVOKE ALL ON ${S}.session_auth FROM PUBLIC;
-- The outcome of a transaction that changed both the catalog and this database (the commit
-- protocol of docs/data-plane.md): a row commits with the data plane's block, and recovery
-- at start reads it. Only portcullis's own role writes it (no grant to anyone).
CREATE TABLE IF NOT EXISTS ${S}.commits (
  txid text PRIMARY KEY,
  at timestamptz NOT NULL DEFAULT now()
);
REVOKE ALL ON ${S}.commits FROM PUBLIC;
-- The calling backend's own values, and only while it is still the login they were written
-- for (a pid reused by another login reads nothing). SECURITY DEFINER: callers cannot read
-- the table itself. plpgsql, not sql: a sql function's query is planned again at every
-- execution of the statement calling it, plpgsql keeps its plan for the session (a
-- primary-key SELECT under a policy: 57 -> 37 µs of PostgreSQL's CPU, bench/README.md).
CREATE OR REPLACE FUNCTION ${S}.auth(name text) RETURNS text
  LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
  AS $fn$ BEGIN RETURN (SELECT s.vals ->> $1 FROM ${S}.session_auth s WHERE s.pid = pg_catalog.pg_backend_pid() AND s.login = SESSION_USER); END $fn$;
${authAs}
REVOKE ALL ON FUNCTION ${S}.auth(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ${S}.auth(text) TO PUBLIC;
REVOKE ALL ON FUNCTION ${S}.auth_as(text, regtype) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ${S}.auth_as(text, regtype) TO PUBLIC;
COMMENT ON FUNCTION ${S}.auth(text) IS ${quoteLiteral("This session's $auth value (SPEC §5); NULL when it has none.")};
COMMENT ON FUNCTION ${S}.auth_as(text, regtype) IS ${quoteLiteral("This session's $auth value if it reads as the type, else NULL.")};
`;
}

/** What installSchema takes away from PUBLIC when portcullis is a superuser (PGlite). */
export const LOCKDOWN_SQL = `
REVOKE USAGE ON LANGUAGE plpgsql FROM PUBLIC;
REVOKE USAGE ON LANGUAGE sql FROM PUBLIC;
${LOCKED_FUNCTIONS.map((f) => `REVOKE EXECUTE ON FUNCTION ${f} FROM PUBLIC;`).join('\n')}
REVOKE UPDATE ON pg_catalog.pg_settings FROM PUBLIC;
REVOKE CREATE ON SCHEMA ${quoteIdent(DATA_SCHEMA)} FROM PUBLIC;
`;

/**
 * The lock-down as a PostgreSQL superuser runs it once, in template1 (so every database
 * portcullis creates inherits it), for an upstream where portcullis's own role is not a
 * superuser: only a superuser can take PUBLIC's rights on languages and pg_catalog
 * functions away. portcullis's role keeps the languages for its own functions.
 */
export function superuserLockdownSql(portcullisRole: string): string {
  const r = quoteIdent(portcullisRole);
  return `${LOCKDOWN_SQL}GRANT USAGE ON LANGUAGE plpgsql TO ${r};\nGRANT USAGE ON LANGUAGE sql TO ${r};\n`;
}

/**
 * What a role that is no superuser can take away itself: the rest belongs to the bootstrap
 * superuser (REVOKE on a function the role holds no grant option on is an error, on a
 * language a warning), and `exposed` reports what PUBLIC kept.
 */
const PUBLIC_SCHEMA_LOCKDOWN = `REVOKE CREATE ON SCHEMA ${quoteIdent(DATA_SCHEMA)} FROM PUBLIC;\n`;

/** What PUBLIC still holds of what the lock-down takes away. */
const EXPOSED_SQL = `
SELECT 'language ' || l.lanname AS what FROM pg_catalog.pg_language l
 WHERE l.lanname IN ('plpgsql', 'sql')
   AND CASE WHEN l.lanacl IS NULL THEN l.lanpltrusted
            ELSE EXISTS (SELECT 1 FROM pg_catalog.aclexplode(l.lanacl) a WHERE a.grantee = 0 AND a.privilege_type = 'USAGE') END
UNION ALL
SELECT 'function ' || p.oid::regprocedure::text FROM pg_catalog.pg_proc p
 WHERE p.oid = ANY ($1::regprocedure[]::oid[])
   AND (p.proacl IS NULL OR EXISTS (SELECT 1 FROM pg_catalog.aclexplode(p.proacl) a WHERE a.grantee = 0 AND a.privilege_type = 'EXECUTE'))
UNION ALL
SELECT 'table pg_settings (UPDATE)' WHERE EXISTS (
  SELECT 1 FROM pg_catalog.pg_class c, pg_catalog.aclexplode(c.relacl) a
   WHERE c.oid = 'pg_catalog.pg_settings'::regclass AND a.grantee = 0 AND a.privilege_type = 'UPDATE')
UNION ALL
SELECT 'schema ' || n.nspname || ' (CREATE)' FROM pg_catalog.pg_namespace n
 WHERE n.nspname = $2
   AND (n.nspacl IS NULL OR EXISTS (SELECT 1 FROM pg_catalog.aclexplode(n.nspacl) a WHERE a.grantee = 0 AND a.privilege_type = 'CREATE'))
ORDER BY 1`;

/** The functions whose EXECUTE the lock-down revokes or expects revoked, in the array literal exposedOf takes. */
const lockedList = (): string => `{${[...LOCKED_FUNCTIONS, ...CHECKED_FUNCTIONS].map((f) => `"${f}"`).join(',')}}`;

export async function exposedToPublic(sql: AdminSql): Promise<string[]> {
  const rows = await sql.query(EXPOSED_SQL, [lockedList(), DATA_SCHEMA]);
  return rows.map((r) => r.what!);
}

/**
 * Idempotent set-up of one data-plane database (safe to run at every start and from two
 * sessions at once). `dbKey` is the database's key from the planes' name mapping.
 */
export async function installSchema(sql: AdminSql, dbKey: string): Promise<InstallReport> {
  const owner = ownerRoleName(dbKey);
  return withProvisionLock(sql, async () => {
    const [me] = await sql.query(
      `SELECT current_user::text AS role, r.rolsuper::text AS superuser, current_setting('server_version_num') AS version,
              (SELECT pg_catalog.pg_get_userbyid(n.nspowner)::text FROM pg_catalog.pg_namespace n WHERE n.nspname = $1) AS schema_owner
         FROM pg_catalog.pg_roles r WHERE r.rolname = current_user`,
      [PORTCULLIS_SCHEMA],
    );
    const role = me!.role!;
    const superuser = me!.superuser === 'true';
    const serverVersion = Number(me!.version);
    if (me!.schema_owner !== null && me!.schema_owner !== role) {
      // Someone else's schema of that name: its functions would be someone else's code.
      throw new Error(`schema "${PORTCULLIS_SCHEMA}" exists and is owned by "${me!.schema_owner}", not by portcullis's role "${role}"`);
    }
    await createRoleIfMissing(sql, owner, `CREATE ROLE ${quoteIdent(owner)} NOLOGIN NOINHERIT NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS`);
    await sql.exec(`
CREATE SCHEMA IF NOT EXISTS ${S};
REVOKE ALL ON SCHEMA ${S} FROM PUBLIC;
GRANT USAGE ON SCHEMA ${S} TO PUBLIC;
-- portcullis acts as the owner (ALTER TABLE, CREATE POLICY, REASSIGN OWNED) by membership.
GRANT ${quoteIdent(owner)} TO ${quoteIdent(role)};
-- A new owner must be able to create in the object's schema (ALTER ... OWNER checks it).
GRANT USAGE, CREATE ON SCHEMA ${quoteIdent(DATA_SCHEMA)} TO ${quoteIdent(owner)};
COMMENT ON ROLE ${quoteIdent(owner)} IS ${quoteLiteral(`portcullis: owner of the tables of data-plane database ${dbKey}`)};
${functionsSql(serverVersion)}
${superuser ? LOCKDOWN_SQL : PUBLIC_SCHEMA_LOCKDOWN}`);
    const exposed = await exposedToPublic(sql);
    return { role, superuser, serverVersion, ownerRole: owner, exposed };
  });
}

/** `portcullis.<name>`, for the SQL other modules write. */
export const portcullisObject = (name: string): string => qualified(PORTCULLIS_SCHEMA, name);
