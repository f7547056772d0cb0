/**
 * Catalog RLS policies as PostgreSQL policies. A catalog policy on `db.coll` is installed
 * on table `public.coll` of the database:
 *   READ  → one policy FOR SELECT USING (p)
 *   WRITE → three: FOR INSERT WITH CHECK (p), FOR UPDATE USING (p) WITH CHECK (p), FOR
 *           DELETE USING (p), named `<name>/insert`, `/update`, `/delete` (FOR ALL would
 *           also govern SELECT, which a WRITE policy must not)
 *   ALL   → one policy FOR ALL USING (p) (WITH CHECK defaults to USING)
 * restrictive ones AS RESTRICTIVE, all TO PUBLIC (the owner role too: RLS is forced).
 * A table with at least one policy has row-level security enabled and forced; one with
 * none has it disabled (governed by privileges alone, SPEC §10). A predicate that cannot
 * be typed against the table installs as `false`: fail closed, whether the policy is
 * permissive or restrictive. Each installed policy carries a COMMENT with the catalog id
 * and a hash of its SQL, so a sync sees what is already right.
 */
import { createHash } from 'node:crypto';
import type { RlsPolicy } from '../../catalog/model.js';
import type { AdminSql } from '../types.js';
import { DATA_SCHEMA } from './names.js';
import { sqlStateOf } from './lock.js';
import { columnsOf, policiesOn, type Columns, type TableInfo } from './objects.js';
import { PolicyTypingError, predicateSql } from './predicate.js';
import { MAX_NAME_BYTES, nameBytes, qualified, quoteIdent, quoteLiteral } from './quote.js';

/** One PostgreSQL policy of a catalog policy. */
export interface PgPolicy {
  name: string;
  /** The CREATE POLICY statement. */
  create: string;
  /** What the COMMENT holds: `portcullis <catalog id> <sha256 prefix of create>`. */
  signature: string;
}

export interface RenderedPolicy {
  policy: RlsPolicy;
  table: string;
  pg: PgPolicy[];
  /** Why the predicate installed as `false`; null when it typed. */
  invalid: string | null;
}

/** A PostgreSQL name no longer than 63 bytes: a long one is cut and given a hash, never truncated by the server. */
function pgName(s: string): string {
  if (nameBytes(s) <= MAX_NAME_BYTES) return s;
  const hash = createHash('sha256').update(s).digest('hex').slice(0, 8);
  let head = s;
  while (nameBytes(head) > MAX_NAME_BYTES - 9) head = head.slice(0, -1);
  return `${head}~${hash}`;
}

/**
 * The PostgreSQL policies of one catalog policy, typed against `columns` (pure: what
 * EXPLAIN RLS can show before anything is installed). With `failed`, the policies as
 * installed when PostgreSQL refused the typed predicate: `false`, under the typed SQL's
 * signature, so the next sync sees them as in place until the table changes.
 */
export function renderPolicy(policy: RlsPolicy, columns: Columns, failed?: string): RenderedPolicy {
  let expr: string;
  let invalid: string | null = null;
  try {
    expr = predicateSql(policy.predicate, columns);
  } catch (err) {
    if (!(err instanceof PolicyTypingError)) throw err;
    expr = 'false';
    invalid = err.message;
  }
  const table = qualified(DATA_SCHEMA, policy.collection);
  const as = policy.restrictive ? 'RESTRICTIVE' : 'PERMISSIVE';
  const one = (name: string, clause: (e: string) => string): PgPolicy => {
    const create = `CREATE POLICY ${quoteIdent(name)} ON ${table} AS ${as} ${clause(expr)}`;
    const signature = `portcullis ${policy.id} ${createHash('sha256').update(create).digest('hex').slice(0, 16)}`;
    return { name, create: failed === undefined ? create : `CREATE POLICY ${quoteIdent(name)} ON ${table} AS ${as} ${clause('false')}`, signature };
  };
  const pg: PgPolicy[] =
    policy.kind === 'read'
      ? [one(pgName(policy.name), (e) => `FOR SELECT TO PUBLIC USING (${e})`)]
      : policy.kind === 'all'
        ? [one(pgName(policy.name), (e) => `FOR ALL TO PUBLIC USING (${e})`)]
        : [
            one(pgName(`${policy.name}/insert`), (e) => `FOR INSERT TO PUBLIC WITH CHECK (${e})`),
            one(pgName(`${policy.name}/update`), (e) => `FOR UPDATE TO PUBLIC USING (${e}) WITH CHECK (${e})`),
            one(pgName(`${policy.name}/delete`), (e) => `FOR DELETE TO PUBLIC USING (${e})`),
          ];
  return { policy, table: policy.collection, pg, invalid: invalid ?? failed ?? null };
}

/**
 * The SQL installed for a catalog policy, as EXPLAIN RLS shows it: read back from
 * pg_policies (what PostgreSQL holds, not what portcullis meant to write); null when
 * nothing is installed for it (its table does not exist yet: pending).
 */
export async function installedPolicySql(sql: AdminSql, policy: RlsPolicy): Promise<string | null> {
  const names = renderPolicy(policy, {}).pg.map((p) => p.name);
  const rows = await sql.query(
    `SELECT policyname::text AS name, permissive, cmd, roles::text[]::text AS roles, qual, with_check
       FROM pg_catalog.pg_policies WHERE schemaname = $1 AND tablename = $2 AND policyname = ANY ($3::text[])
      ORDER BY array_position($3::text[], policyname::text)`,
    [DATA_SCHEMA, policy.collection, `{${names.map((n) => `"${n.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`).join(',')}}`],
  );
  if (rows.length === 0) return null;
  const table = qualified(DATA_SCHEMA, policy.collection);
  return rows
    .map((r) => {
      const roles = r.roles === '{public}' ? 'PUBLIC' : r.roles!.slice(1, -1);
      const using = r.qual === null ? '' : ` USING (${r.qual})`;
      const check = r.with_check === null ? '' : ` WITH CHECK (${r.with_check})`;
      return `CREATE POLICY ${quoteIdent(r.name!)} ON ${table} AS ${r.permissive} FOR ${r.cmd} TO ${roles}${using}${check};`;
    })
    .join('\n');
}

export interface TableSyncResult {
  installed: string[];
  dropped: string[];
  invalid: { policy: string; reason: string }[];
}

/**
 * Brings one existing table's policies and RLS switches in line with `policies` (the
 * catalog's policies on it, possibly none): policies nobody asked for are dropped — a
 * principal's own CREATE POLICY on a table it created before adoption included — missing
 * or changed ones created, RLS enabled+forced or disabled. One implicit transaction.
 */
export async function syncTable(sql: AdminSql, table: TableInfo, policies: RlsPolicy[]): Promise<TableSyncResult> {
  const result: TableSyncResult = { installed: [], dropped: [], invalid: [] };
  const columns = (await columnsOf(sql, table.name)) ?? {};
  const wanted = new Map<string, PgPolicy>();
  const rendered = policies.map((p) => renderPolicy(p, columns));
  for (const r of rendered) {
    if (r.invalid !== null) result.invalid.push({ policy: r.policy.name, reason: r.invalid });
    for (const x of r.pg) wanted.set(x.name, x);
  }
  const have = await policiesOn(sql, table.name);
  const t = qualified(DATA_SCHEMA, table.name);
  const drops: string[] = [];
  const kept = new Set<string>();
  for (const h of have) {
    const w = wanted.get(h.name);
    if (w && w.signature === h.comment) kept.add(h.name);
    else {
      drops.push(`DROP POLICY ${quoteIdent(h.name)} ON ${t};`);
      result.dropped.push(h.name);
    }
  }
  const create = (w: PgPolicy) => [`${w.create};`, `COMMENT ON POLICY ${quoteIdent(w.name)} ON ${t} IS ${quoteLiteral(w.signature)};`];
  const creates: string[] = [];
  for (const w of wanted.values()) {
    if (kept.has(w.name)) continue;
    creates.push(...create(w));
    result.installed.push(w.name);
  }
  // Enabled and forced before any policy is created (an empty policy set shows nothing).
  const switches: string[] = [];
  if (wanted.size > 0 && !(table.rowSecurity && table.forceRowSecurity)) switches.push(`ALTER TABLE ${t} ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;`);
  if (wanted.size === 0 && (table.rowSecurity || table.forceRowSecurity)) switches.push(`ALTER TABLE ${t} DISABLE ROW LEVEL SECURITY, NO FORCE ROW LEVEL SECURITY;`);
  const all = [...switches, ...drops, ...creates];
  if (all.length === 0) return result;
  try {
    await sql.exec(all.join('\n'));
  } catch (err) {
    if (creates.length === 0 || sqlStateOf(err) === undefined) throw err;
    // PostgreSQL refused a predicate portcullis typed (an operator the column's type lacks,
    // say): the table is locked down first, then each policy is created on its own, and
    // one PostgreSQL refuses is installed as false.
    await sql.exec([...switches, ...drops].join('\n'));
    for (const r of rendered) {
      const todo = r.pg.filter((w) => !kept.has(w.name));
      if (todo.length === 0) continue;
      try {
        await sql.exec(todo.flatMap(create).join('\n'));
      } catch (e) {
        if (sqlStateOf(e) === undefined) throw e;
        const reason = `PostgreSQL refused it: ${(e as Error).message}`;
        result.invalid.push({ policy: r.policy.name, reason });
        await sql.exec(renderPolicy(r.policy, columns, reason).pg.filter((w) => !kept.has(w.name)).flatMap(create).join('\n'));
      }
    }
  }
  return result;
}
