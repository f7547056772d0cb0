import type { CatalogReader } from '../catalog/catalog.js';
import type { User } from '../catalog/model.js';
import { sqlLiteral } from '../dataplane/classify.js';
import type { LibPgQuery } from '../dataplane/pg-parser.js';
import { canSeeDatabase, canSeeTenant, canSeeUser } from './privileges.js';

/**
 * psql's `\du` and `\l` on a data plane. They read pg_roles and pg_database, which on the
 * data plane hold portcullis's internal roles (pcu_*) and, on a shared upstream, every
 * tenant's databases. The two query shapes are recognised with PostgreSQL's own parser
 * (libpg-query): a single SELECT whose only FROM item is pg_catalog.pg_roles (alias r) or
 * pg_catalog.pg_database (alias d), every output column one this module knows. Such a
 * query is replaced by a SELECT over VALUES with the same output columns, built from the
 * catalog: the principals SHOW USERS lists and the custom roles SHOW ROLES lists (\du), the
 * databases SHOW DATABASES lists (\l). psql formats these columns itself, so the listing
 * reads as PostgreSQL's. Any other query of those catalogs goes to the data plane as it is.
 */

export type CatalogQuery = { kind: 'roles' | 'databases'; columns: string[] };

/** Output columns of psql's \du (versions 9.5 to 17), with their types. */
const ROLE_TYPES: Record<string, string> = {
  rolname: 'name',
  rolsuper: 'bool',
  rolinherit: 'bool',
  rolcreaterole: 'bool',
  rolcreatedb: 'bool',
  rolcanlogin: 'bool',
  rolconnlimit: 'int4',
  rolvaliduntil: 'timestamptz',
  memberof: 'name[]',
  rolreplication: 'bool',
  rolbypassrls: 'bool',
  description: 'text',
};

/** Output columns of psql's \l (versions 9.5 to 17), with their types. */
const DATABASE_TYPES: Record<string, string> = {
  Name: 'name',
  Owner: 'name',
  Encoding: 'name',
  Collate: 'text',
  Ctype: 'text',
  'ICU Locale': 'text',
  'ICU Rules': 'text',
  Locale: 'text',
  'Locale Provider': 'text',
  'Access privileges': 'text',
  Size: 'text',
  Tablespace: 'name',
  Description: 'text',
};

/** The query `sql` asks when it is psql's \du or \l; null for anything else. */
export function recognise(pg: LibPgQuery, sql: string): CatalogQuery | null {
  let parsed: { stmts?: { stmt?: Record<string, unknown> }[] };
  try {
    parsed = pg.parseSync(sql) as typeof parsed;
  } catch {
    return null;
  }
  if (parsed.stmts?.length !== 1) return null;
  const select = parsed.stmts[0]!.stmt?.SelectStmt as
    | { fromClause?: { RangeVar?: { schemaname?: string; relname?: string; alias?: { aliasname?: string } } }[]; targetList?: { ResTarget?: { name?: string; val?: unknown } }[]; op?: string; withClause?: unknown; intoClause?: unknown }
    | undefined;
  if (!select || (select.op !== undefined && select.op !== 'SETOP_NONE') || select.withClause || select.intoClause) return null;
  const from = select.fromClause;
  if (from?.length !== 1) return null;
  const rel = from[0]!.RangeVar;
  if (!rel || rel.schemaname !== 'pg_catalog') return null;
  const shape = rel.relname === 'pg_roles' && rel.alias?.aliasname === 'r' ? 'roles' : rel.relname === 'pg_database' && rel.alias?.aliasname === 'd' ? 'databases' : null;
  if (!shape) return null;
  const types = shape === 'roles' ? ROLE_TYPES : DATABASE_TYPES;
  const columns: string[] = [];
  for (const t of select.targetList ?? []) {
    const name = t.ResTarget?.name ?? columnName(t.ResTarget?.val);
    if (name === null || !(name in types)) return null;
    columns.push(name);
  }
  if (columns[0] !== (shape === 'roles' ? 'rolname' : 'Name')) return null;
  return { kind: shape, columns };
}

/** `r.rolname` → rolname: the name PostgreSQL gives a column reference without an alias. */
function columnName(val: unknown): string | null {
  const fields = (val as { ColumnRef?: { fields?: { String?: { sval?: string } }[] } } | undefined)?.ColumnRef?.fields;
  return fields?.at(-1)?.String?.sval ?? null;
}

type Value = string | boolean | number | readonly string[] | null;

/** One row of \du: a user the session may see, or a custom role of a tenant it may see. */
function roleRows(actor: User, view: CatalogReader, now: number): Record<string, Value>[] {
  const live = (g: { expiresAt: number | null }) => g.expiresAt === null || g.expiresAt > now;
  const rows: Record<string, Value>[] = [];
  for (const u of view.users()) {
    if (!canSeeUser(actor, u)) continue;
    const memberOf: string[] = [u.role];
    for (const g of view.grantsTo('user', u.id)) {
      if (!live(g)) continue;
      if (g.roleId !== null) {
        const r = view.roleById(g.roleId);
        if (r) memberOf.push(r.name);
      } else if (g.builtinRole !== null && !memberOf.includes(g.builtinRole)) memberOf.push(g.builtinRole);
    }
    const admin = u.role === 'admin' || u.role === 'tenant_admin' || u.role === 'superuser';
    rows.push({
      rolname: u.name,
      rolsuper: u.role === 'superuser',
      rolinherit: true,
      rolcreaterole: admin,
      rolcreatedb: admin,
      rolcanlogin: u.login,
      rolconnlimit: u.connectionLimit,
      rolvaliduntil: u.validUntil === null ? null : new Date(u.validUntil).toISOString(),
      memberof: memberOf,
      rolreplication: false,
      rolbypassrls: false,
      description: null,
    });
  }
  for (const r of view.roles()) {
    const t = view.tenantById(r.tenantId);
    if (!t || !canSeeTenant(actor, t)) continue;
    rows.push({ rolname: r.name, rolsuper: false, rolinherit: true, rolcreaterole: false, rolcreatedb: false, rolcanlogin: false, rolconnlimit: -1, rolvaliduntil: null, memberof: [], rolreplication: false, rolbypassrls: false, description: null });
  }
  return rows;
}

/** One row of \l per database SHOW DATABASES lists; its owner is its tenant. */
function databaseRows(actor: User, view: CatalogReader, now: number): Record<string, Value>[] {
  const rows: Record<string, Value>[] = [];
  for (const d of view.databases()) {
    if (!canSeeDatabase(actor, d, view, now)) continue;
    rows.push({
      Name: d.name,
      Owner: view.tenantById(d.tenantId)?.name ?? String(d.tenantId),
      Encoding: 'UTF8',
      Collate: 'C',
      Ctype: 'C',
      'ICU Locale': null,
      'ICU Rules': null,
      Locale: null,
      'Locale Provider': 'libc',
      'Access privileges': null,
      Size: null,
      Tablespace: 'pg_default',
      Description: null,
    });
  }
  return rows;
}

const ident = (s: string) => `"${s.replaceAll('"', '""')}"`;

function literal(v: Value, type: string): string {
  if (v === null) return `NULL::${type}`;
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (typeof v === 'number') return `${v}::${type}`;
  return `${sqlLiteral(v)}::${type}`;
}

/**
 * The SELECT that answers `q` for this session: its columns, in its order, over VALUES of
 * the catalog's rows, ordered by the first column as psql's queries are.
 */
export function answerSql(q: CatalogQuery, actor: User, view: CatalogReader, now: number): string {
  const types = q.kind === 'roles' ? ROLE_TYPES : DATABASE_TYPES;
  const rows = q.kind === 'roles' ? roleRows(actor, view, now) : databaseRows(actor, view, now);
  const cols = q.columns.map(ident).join(', ');
  if (rows.length === 0) {
    return `SELECT ${q.columns.map((c) => `${literal(null, types[c]!)} AS ${ident(c)}`).join(', ')} WHERE false`;
  }
  const values = rows.map((r) => `(${q.columns.map((c) => literal(r[c] ?? null, types[c]!)).join(', ')})`).join(', ');
  return `SELECT ${cols} FROM (VALUES ${values}) AS v(${cols}) ORDER BY 1`;
}
