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

/** The PostgreSQL policies of one catalog policy, typed against `columns` (pure: what EXPLAIN RLS shows). */
export function renderPolicy(policy: RlsPolicy, columns: Columns): RenderedPolicy {
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
  const one = (name: string, clause: string): PgPolicy => {
    const create = `CREATE POLICY ${quoteIdent(name)} ON ${table} AS ${as} ${clause}`;
    return { name, create, signature: `portcullis ${policy.id} ${createHash('sha256').update(create).digest('hex').slice(0, 16)}` };
  };
  const pg: PgPolicy[] =
    policy.kind === 'read'
      ? [one(pgName(policy.name), `FOR SELECT TO PUBLIC USING (${expr})`)]
      : policy.kind === 'all'
        ? [one(pgName(policy.name), `FOR ALL TO PUBLIC USING (${expr})`)]
        : [
            one(pgName(`${policy.name}/insert`), `FOR INSERT TO PUBLIC WITH CHECK (${expr})`),
            one(pgName(`${policy.name}/update`), `FOR UPDATE TO PUBLIC USING (${expr}) WITH CHECK (${expr})`),
            one(pgName(`${policy.name}/delete`), `FOR DELETE TO PUBLIC USING (${expr})`),
          ];
  return { policy, table: policy.collection, pg, invalid };
}

/** The SQL text installed for a policy, as EXPLAIN RLS shows it; null when its table does not exist (pending). */
export async function installedPolicySql(sql: AdminSql, policy: RlsPolicy): Promise<string | null> {
  const columns = await columnsOf(sql, policy.collection);
  if (columns === null) return null;
  return renderPolicy(policy, columns).pg.map((p) => `${p.create};`).join('\n');
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
  for (const p of policies) {
    const r = renderPolicy(p, columns);
    if (r.invalid !== null) result.invalid.push({ policy: p.name, reason: r.invalid });
    for (const x of r.pg) wanted.set(x.name, x);
  }
  const have = await policiesOn(sql, table.name);
  const t = qualified(DATA_SCHEMA, table.name);
  const out: string[] = [];
  const kept = new Set<string>();
  for (const h of have) {
    const w = wanted.get(h.name);
    if (w && w.signature === h.comment) kept.add(h.name);
    else {
      out.push(`DROP POLICY ${quoteIdent(h.name)} ON ${t};`);
      result.dropped.push(h.name);
    }
  }
  for (const w of wanted.values()) {
    if (kept.has(w.name)) continue;
    out.push(`${w.create};`, `COMMENT ON POLICY ${quoteIdent(w.name)} ON ${t} IS ${quoteLiteral(w.signature)};`);
    result.installed.push(w.name);
  }
  if (wanted.size > 0 && !(table.rowSecurity && table.forceRowSecurity)) out.push(`ALTER TABLE ${t} ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;`);
  if (wanted.size === 0 && (table.rowSecurity || table.forceRowSecurity)) out.push(`ALTER TABLE ${t} DISABLE ROW LEVEL SECURITY, NO FORCE ROW LEVEL SECURITY;`);
  if (out.length > 0) await sql.exec(out.join('\n'));
  return result;
}
