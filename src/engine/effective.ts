import { KEYS, type CatalogReader } from '../catalog/catalog.js';
import { compareNames } from '../catalog/names.js';
import {
  DEFAULT_DATABASE,
  ROLE_PRIVILEGES,
  roleRank,
  type BuiltinRole,
  type Database,
  type Grant,
  type Privilege,
  type Role,
  type User,
} from '../catalog/model.js';

/** One privilege a principal holds, and where it comes from (SHOW PERMISSIONS). */
export interface Held {
  privilege: Privilege;
  /** null: every database of the tenant. */
  databaseId: number | null;
  collection: string | null;
  source: string;
}

/** What a user holds at an instant: its role, custom roles, grants, and databases. */
export interface Effective {
  role: BuiltinRole;
  roleSource: string;
  roles: Role[];
  grants: Held[];
  databases: Database[];
}

const live = (g: Grant, now: number) => g.expiresAt === null || g.expiresAt > now;

/** The grants made to one grantee (a user or a custom role), unexpired. */
export function grantsTo(view: CatalogReader, kind: 'user' | 'role', id: number, now: number): Grant[] {
  const out: Grant[] = [];
  for (const g of view.grantsTo(kind, id)) if (live(g, now)) out.push(g);
  // In key order (tenant, grantee, what), as a scan would give them: sources read stably.
  return out.sort((a, b) => compareNames(KEYS.grants(a), KEYS.grants(b)));
}

/** Custom roles reachable from `start` through role memberships (the roles it holds). */
export function roleClosure(view: CatalogReader, start: Grant[], now: number): Role[] {
  const seen = new Map<number, Role>();
  const queue = start.filter((g) => g.roleId !== null).map((g) => g.roleId!);
  while (queue.length > 0) {
    const id = queue.shift()!;
    if (seen.has(id)) continue;
    const r = view.roleById(id);
    if (!r) continue;
    seen.set(id, r);
    for (const g of grantsTo(view, 'role', id, now)) if (g.roleId !== null) queue.push(g.roleId);
  }
  return [...seen.values()];
}

/**
 * The effective rights of `user` at `now` (SPEC §2): its built-in role raised by any live
 * time-bound built-in role grant, the custom roles it holds, the privileges granted to it
 * and to those roles, and its accessible databases — the tenant's `default`, every
 * database it holds a privilege on, all of its tenant's for tenant_admin and above.
 */
export function effectiveOf(user: User, view: CatalogReader, now: number): Effective {
  const direct = grantsTo(view, 'user', user.id, now);
  let role = user.role;
  let roleSource = 'own role';
  for (const g of direct) {
    if (g.builtinRole && roleRank(g.builtinRole) > roleRank(role)) {
      role = g.builtinRole;
      roleSource = 'granted role';
    }
  }
  const roles = roleClosure(view, direct, now);
  const grants: Held[] = [];
  const add = (gs: Grant[], source: string) => {
    for (const g of gs) if (g.privilege) grants.push({ privilege: g.privilege, databaseId: g.databaseId, collection: g.collection, source });
  };
  add(direct, 'grant');
  for (const r of roles) add(grantsTo(view, 'role', r.id, now), `role ${r.name}`);

  const cap = user.limits;
  if (cap && roleRank(role) > roleRank(cap.role)) {
    role = cap.role;
    roleSource = 'credential';
  }
  let databases: Database[] = [];
  const everything = roleRank(role) >= roleRank('tenant_admin') || grants.some((g) => g.databaseId === null);
  const granted = new Set(grants.map((g) => g.databaseId));
  const all = view.databasesOf(user.tenantId).sort((a, b) => compareNames(a.name, b.name));
  for (const d of all) {
    if (everything || d.name === DEFAULT_DATABASE || granted.has(d.id)) databases.push(d);
  }
  if (cap?.databaseIds) {
    const ids = new Set(cap.databaseIds);
    databases = (cap.exact ? all : databases).filter((d) => ids.has(d.id));
  }
  return { role, roleSource, roles, grants, databases };
}

/** Whether `e` holds `privilege` on a database (and collection): by role, or by grant. */
export function holds(e: Effective, privilege: Privilege, database: Database, collection: string | null = null): boolean {
  if (!e.databases.some((d) => d.id === database.id)) return false;
  if (ROLE_PRIVILEGES[e.role].includes(privilege)) return true;
  return e.grants.some(
    (g) =>
      g.privilege === privilege &&
      (g.databaseId === null || g.databaseId === database.id) &&
      (g.collection === null || g.collection === collection),
  );
}

/** The actor's holdings, as the grant rules of privileges.ts ask about them. */
export function holdingsOf(actor: User, view: CatalogReader, now: number): { holdsPrivilege(p: Privilege, db: Database, collection: string | null): boolean; holdsRole(r: Role): boolean } {
  const e = effectiveOf(actor, view, now);
  return {
    holdsPrivilege: (p, db, collection) => holds(e, p, db, collection),
    holdsRole: (r) => e.roles.some((x) => x.id === r.id),
  };
}
