/** What exists in a database's data schema: read from the catalogs, the truth grants and policies are typed against. */
import type { AdminSql } from '../types.js';
import { DATA_SCHEMA, profileRoleLike } from './names.js';

/** A column's type as PostgreSQL names it, and its element type when it is an array. */
export interface ColumnType {
  type: string;
  element: string | null;
}
export type Columns = Record<string, ColumnType>;

export interface TableInfo {
  name: string;
  /** r table, p partitioned, v view, m materialized view, f foreign table. */
  kind: string;
  owner: string;
  rowSecurity: boolean;
  forceRowSecurity: boolean;
  /** portcullis has its owner's privileges (the owner role's, a profile role's, its own): it can grant on it and manage its policies. */
  managed: boolean;
}

/** Relations of the data schema that privileges and policies apply to. */
export async function tablesOf(sql: AdminSql): Promise<TableInfo[]> {
  const rows = await sql.query(
    `SELECT c.relname::text AS name, c.relkind::text AS kind, pg_catalog.pg_get_userbyid(c.relowner)::text AS owner,
            c.relrowsecurity::text AS rls, c.relforcerowsecurity::text AS force,
            pg_catalog.pg_has_role(c.relowner, 'USAGE')::text AS managed
       FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = $1 AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
      ORDER BY c.relname`,
    [DATA_SCHEMA],
  );
  return rows.map((r) => ({ name: r.name!, kind: r.kind!, owner: r.owner!, rowSecurity: r.rls === 'true', forceRowSecurity: r.force === 'true', managed: r.managed === 'true' }));
}

/** Sequences of the data schema that a serial column of `table` draws from (INSERT needs USAGE on them). */
export async function serialSequences(sql: AdminSql): Promise<{ sequence: string; table: string }[]> {
  const rows = await sql.query(
    `SELECT s.relname::text AS sequence, t.relname::text AS "table"
       FROM pg_catalog.pg_depend d
       JOIN pg_catalog.pg_class s ON s.oid = d.objid AND s.relkind = 'S'
       JOIN pg_catalog.pg_class t ON t.oid = d.refobjid
       JOIN pg_catalog.pg_namespace n ON n.oid = s.relnamespace
      WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.refclassid = 'pg_catalog.pg_class'::regclass
        AND d.deptype = 'a' AND n.nspname = $1 AND pg_catalog.pg_has_role(s.relowner, 'USAGE')
      ORDER BY 1`,
    [DATA_SCHEMA],
  );
  return rows.map((r) => ({ sequence: r.sequence!, table: r.table! }));
}

/** The columns of one table of the data schema; null when there is no such table. */
export async function columnsOf(sql: AdminSql, table: string): Promise<Columns | null> {
  const rows = await sql.query(
    `SELECT a.attname::text AS name, pg_catalog.format_type(a.atttypid, NULL) AS type,
            CASE WHEN t.typcategory = 'A' AND t.typelem <> 0 THEN pg_catalog.format_type(t.typelem, NULL) END AS element
       FROM pg_catalog.pg_class c
       JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
       JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
       JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
      WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
      ORDER BY a.attnum`,
    [DATA_SCHEMA, table],
  );
  if (rows.length === 0) {
    const exists = await sql.query(
      `SELECT 1::text AS x FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2`,
      [DATA_SCHEMA, table],
    );
    if (exists.length === 0) return null;
  }
  const out: Columns = {};
  for (const r of rows) out[r.name!] = { type: r.type!, element: r.element ?? null };
  return out;
}

/** The profile roles of this database, with the COMMENT that holds each one's profile. */
export async function profileRoles(sql: AdminSql, dbKey: string): Promise<{ name: string; comment: string | null }[]> {
  const rows = await sql.query(
    `SELECT r.rolname::text AS name, pg_catalog.shobj_description(r.oid, 'pg_authid') AS comment
       FROM pg_catalog.pg_roles r WHERE r.rolname LIKE $1 ORDER BY 1`,
    [profileRoleLike(dbKey)],
  );
  return rows.map((r) => ({ name: r.name!, comment: r.comment ?? null }));
}

/** The policies on one table: name and the COMMENT portcullis wrote on each (its signature). */
export async function policiesOn(sql: AdminSql, table: string): Promise<{ name: string; comment: string | null }[]> {
  const rows = await sql.query(
    `SELECT p.polname::text AS name, pg_catalog.obj_description(p.oid, 'pg_policy') AS comment
       FROM pg_catalog.pg_policy p JOIN pg_catalog.pg_class c ON c.oid = p.polrelid
       JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = $1 AND c.relname = $2 ORDER BY 1`,
    [DATA_SCHEMA, table],
  );
  return rows.map((r) => ({ name: r.name!, comment: r.comment ?? null }));
}
