/**
 * adoptNewObjects: after a principal's DDL. What a profile role created (it owns it for
 * that moment) becomes the owner role's, so no principal owns anything: a principal cannot
 * ALTER, DROP, DISABLE ROW LEVEL SECURITY on, or CREATE POLICY on what it created. What
 * would run with the owner role's privileges for someone else is made to run with the
 * caller's instead, or removed:
 *   - views get security_invoker (PostgreSQL 15+): their tables are read with the reader's
 *     privileges, not the owner role's (which holds all of them);
 *   - functions become SECURITY INVOKER (only on an upstream that kept plpgsql/sql for
 *     PUBLIC can a principal create one at all);
 *   - rules other than a view's are dropped (a rule's actions run as the table's owner).
 * Then every profile role is granted its profile on the new tables, and the catalog's
 * policies whose table now exists are installed (with RLS on and forced), while policies
 * a principal wrote itself on its new table are dropped.
 */
import type { RlsPolicy } from '../../catalog/model.js';
import type { AdminSql } from '../types.js';
import { regrant } from './grants.js';
import { withProvisionLock } from './lock.js';
import { DATA_SCHEMA, ownerRoleName, profileRoleLike } from './names.js';
import { profileRoles, tablesOf } from './objects.js';
import { syncTable } from './policies.js';
import { parseProfile } from './profile.js';
import { qualified, quoteIdent } from './quote.js';

export interface AdoptResult {
  /** Relations of the data schema that profile roles owned and the owner role now owns. */
  adopted: string[];
  /** What was changed or removed because it would have run as the owner role ('rule r on t', 'function f(int)'). */
  neutralised: string[];
  /** Catalog policies installed (PostgreSQL policy names). */
  installed: string[];
  /** Catalog policies whose table still does not exist. */
  pending: RlsPolicy[];
}

/** Reassigns and neutralises what this database's profile roles own; the caller holds the lock. */
export async function adoptOwned(sql: AdminSql, dbKey: string): Promise<{ adopted: string[]; neutralised: string[] }> {
  const like = profileRoleLike(dbKey);
  const owned = await sql.query(
    `SELECT r.rolname::text AS role FROM pg_catalog.pg_shdepend d JOIN pg_catalog.pg_roles r ON r.oid = d.refobjid
      WHERE d.deptype = 'o' AND d.refclassid = 'pg_catalog.pg_authid'::regclass AND r.rolname LIKE $1
        AND d.dbid = (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database())
      GROUP BY 1 ORDER BY 1`,
    [like],
  );
  if (owned.length === 0) return { adopted: [], neutralised: [] };
  const ownerOf = `(SELECT oid FROM pg_catalog.pg_roles WHERE rolname LIKE $1)`;
  const rels = await sql.query(
    `SELECT c.relname::text AS name, c.relkind::text AS kind FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relowner IN ${ownerOf} AND n.nspname = $2 AND c.relkind IN ('r', 'p', 'v', 'm', 'f') ORDER BY 1`,
    [like, DATA_SCHEMA],
  );
  const funcs = await sql.query(`SELECT p.oid::regprocedure::text AS f FROM pg_catalog.pg_proc p WHERE p.proowner IN ${ownerOf} AND p.prosecdef ORDER BY 1`, [like]);
  const rules = await sql.query(
    `SELECT r.rulename::text AS rule, n.nspname::text AS schema, c.relname::text AS rel FROM pg_catalog.pg_rewrite r
       JOIN pg_catalog.pg_class c ON c.oid = r.ev_class JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relowner IN ${ownerOf} AND r.rulename <> '_RETURN' ORDER BY 2, 3, 1`,
    [like],
  );
  const [v] = await sql.query(`SELECT current_setting('server_version_num') AS v`);
  const out: string[] = [];
  const neutralised: string[] = [];
  for (const r of rules) {
    out.push(`DROP RULE ${quoteIdent(r.rule!)} ON ${qualified(r.schema!, r.rel!)};`);
    neutralised.push(`rule ${r.rule} on ${r.rel}`);
  }
  for (const f of funcs) {
    // regprocedure's text is already a quoted, qualified-if-needed signature.
    out.push(`ALTER FUNCTION ${f.f} SECURITY INVOKER;`);
    neutralised.push(`function ${f.f}`);
  }
  if (Number(v!.v) >= 150000) {
    for (const r of rels) {
      if (r.kind !== 'v') continue;
      out.push(`ALTER VIEW ${qualified(DATA_SCHEMA, r.name!)} SET (security_invoker = true);`);
      neutralised.push(`view ${r.name}`);
    }
  }
  out.push(`REASSIGN OWNED BY ${owned.map((o) => quoteIdent(o.role!)).join(', ')} TO ${quoteIdent(ownerRoleName(dbKey))};`);
  await sql.exec(out.join('\n'));
  return { adopted: rels.map((r) => r.name!), neutralised };
}

/** Grants every profile role of the database its profile on the tables that exist now; the caller holds the lock. */
export async function regrantAll(sql: AdminSql, dbKey: string): Promise<void> {
  for (const r of await profileRoles(sql, dbKey)) {
    const profile = parseProfile(r.comment);
    // A role of our prefix without a profile is not ours to grant to; sync drops it.
    if (profile) await regrant(sql, r.name, profile);
  }
}

/**
 * After a principal's DDL succeeded: see the module comment. `policies` are the catalog's
 * policies of this database (all of them: one whose table was dropped and created again
 * is installed again); those whose table does not exist are returned as pending.
 */
export async function adoptNewObjects(sql: AdminSql, dbKey: string, policies: RlsPolicy[]): Promise<AdoptResult> {
  return withProvisionLock(sql, async () => {
    const { adopted, neutralised } = await adoptOwned(sql, dbKey);
    if (adopted.length > 0) await regrantAll(sql, dbKey);
    const tables = new Map((await tablesOf(sql)).map((t) => [t.name, t]));
    const byTable = new Map<string, RlsPolicy[]>();
    const pending: RlsPolicy[] = [];
    for (const p of policies) {
      if (!tables.has(p.collection)) pending.push(p);
      else byTable.set(p.collection, [...(byTable.get(p.collection) ?? []), p]);
    }
    const installed: string[] = [];
    // The new tables (whatever a principal did to them) and the tables with catalog policies.
    const touch = new Set([...adopted, ...byTable.keys()]);
    for (const name of touch) {
      const t = tables.get(name);
      if (!t || (t.kind !== 'r' && t.kind !== 'p')) continue;
      installed.push(...(await syncTable(sql, t, byTable.get(name) ?? [])).installed);
    }
    return { adopted, neutralised, installed, pending };
  });
}
