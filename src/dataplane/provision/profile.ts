/**
 * Privilege profiles: what a session may do in one database, reduced to the table
 * privileges PostgreSQL checks. Two principals with the same effective privileges share
 * one profile and so one role; a change of privileges (a grant, a revoke, a time-bound
 * grant expiring) is a change of profile, and the session takes the other role at its
 * next turn.
 */
import { createHash } from 'node:crypto';
import { ROLE_PRIVILEGES, type Privilege } from '../../catalog/model.js';
import type { Effective } from '../../engine/effective.js';
import { profileRoleNameOf } from './names.js';

export const TABLE_PRIVILEGES = ['SELECT', 'INSERT', 'UPDATE', 'DELETE'] as const;
export type TablePrivilege = (typeof TABLE_PRIVILEGES)[number];

/**
 * A canonical profile: privileges on every table of the database (`all`), extra
 * privileges on named tables (never repeating what `all` gives), and CREATE on the
 * schema. Canonical means: equal privileges give an equal value, so an equal hash.
 */
export interface Profile {
  all: TablePrivilege[];
  /** Table name → privileges beyond `all`; keys in code-unit order, no empty entries. */
  tables: Record<string, TablePrivilege[]>;
  /** SCHEMA (or ADMIN) on the database: CREATE on the data schema. */
  schema: boolean;
}

/** SPEC §10: READ → SELECT; WRITE → INSERT, UPDATE; DELETE → DELETE; ADMIN → all of these. */
const TABLE_PRIVILEGES_OF: Record<Privilege, readonly TablePrivilege[]> = {
  read: ['SELECT'],
  write: ['INSERT', 'UPDATE'],
  delete: ['DELETE'],
  schema: [],
  admin: TABLE_PRIVILEGES,
};

const order = (set: Set<TablePrivilege>): TablePrivilege[] => TABLE_PRIVILEGES.filter((p) => set.has(p));

/** Builds the canonical form from any sets (the one constructor: everything else calls it). */
export function canonicalProfile(all: Iterable<TablePrivilege>, tables: Record<string, Iterable<TablePrivilege>>, schema: boolean): Profile {
  const a = new Set(all);
  const out: Record<string, TablePrivilege[]> = {};
  for (const name of Object.keys(tables).sort((x, y) => (x < y ? -1 : x > y ? 1 : 0))) {
    const extra = new Set([...tables[name]!].filter((p) => !a.has(p)));
    if (extra.size > 0) out[name] = order(extra);
  }
  return { all: order(a), tables: out, schema };
}

/**
 * The profile of a principal's effective privileges (effectiveOf at the turn's instant)
 * in one database; null when the database is not among those it may reach (the session
 * must not be given a lease there at all). The built-in role's privileges apply to every
 * table; grants on the database (or on every database) too; grants on a collection to that
 * table. SCHEMA on a collection gives nothing PostgreSQL can express without ownership,
 * so it adds nothing here; SCHEMA or ADMIN on the database gives CREATE on the schema.
 */
export function profileFor(effective: Effective, databaseId: number): Profile | null {
  if (!effective.databases.some((d) => d.id === databaseId)) return null;
  const all = new Set<TablePrivilege>();
  const tables: Record<string, Set<TablePrivilege>> = {};
  let schema = false;
  const add = (p: Privilege, collection: string | null) => {
    if (collection === null && (p === 'schema' || p === 'admin')) schema = true;
    const target = collection === null ? all : (tables[collection] ??= new Set());
    for (const t of TABLE_PRIVILEGES_OF[p]) target.add(t);
  };
  for (const p of ROLE_PRIVILEGES[effective.role]) add(p, null);
  for (const g of effective.grants) {
    if (g.databaseId === null || g.databaseId === databaseId) add(g.privilege, g.collection);
  }
  return canonicalProfile(all, tables, schema);
}

/** Everything `before` allows, `now` allows too (on every table, and CREATE on the schema). */
export function profileCovers(now: Profile, before: Profile): boolean {
  if (before.schema && !now.schema) return false;
  if (!before.all.every((p) => now.all.includes(p))) return false;
  for (const [table, privs] of Object.entries(before.tables)) {
    if (!privs.every((p) => now.all.includes(p) || (now.tables[table]?.includes(p) ?? false))) return false;
  }
  return true;
}

/** The profile as canonical JSON text: what is hashed, and what the role's COMMENT holds. */
export const profileJson = (p: Profile): string => JSON.stringify({ all: p.all, tables: p.tables, schema: p.schema });

/** The role that carries `profile` in the database `dbKey`: `pcu_<dbKey>_p_<12 hex of sha256>`. */
export function profileRoleName(dbKey: string, profile: Profile): string {
  const hash = createHash('sha256').update(profileJson(profile)).digest('hex').slice(0, 12);
  return profileRoleNameOf(dbKey, hash);
}

/** Reads a profile back from a role's COMMENT; null for anything that is not one. */
export function parseProfile(text: string | null): Profile | null {
  if (text === null) return null;
  try {
    const v = JSON.parse(text) as { all?: unknown; tables?: unknown; schema?: unknown };
    const privs = (x: unknown): TablePrivilege[] => {
      if (!Array.isArray(x) || !x.every((p) => (TABLE_PRIVILEGES as readonly unknown[]).includes(p))) throw new Error('not a profile');
      return x as TablePrivilege[];
    };
    if (typeof v.tables !== 'object' || v.tables === null || typeof v.schema !== 'boolean') return null;
    const tables: Record<string, TablePrivilege[]> = {};
    for (const [k, x] of Object.entries(v.tables)) tables[k] = privs(x);
    return canonicalProfile(privs(v.all), tables, v.schema);
  } catch {
    return null;
  }
}
