import { KEYS, type CatalogReader } from '../catalog/catalog.js';
import { compareNames } from '../catalog/names.js';
import {
  DEFAULT_DATABASE,
  PRIVILEGES,
  ROLE_PRIVILEGES,
  roleRank,
  type ApiKey,
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

/** What a user holds at an instant: its role, custom roles, grants, databases and scopes. */
export interface Effective {
  role: BuiltinRole;
  roleSource: string;
  roles: Role[];
  grants: Held[];
  databases: Database[];
  /** GRANT SCOPE: what its API keys may carry, and its `$auth.scopes` (in code-unit order). */
  scopes: string[];
}

const live = (g: Grant, now: number) => g.expiresAt === null || g.expiresAt > now;

/** The grants made to one grantee (a user, a custom role or a service account), unexpired. */
export function grantsTo(view: CatalogReader, kind: Grant['granteeKind'], id: number, now: number): Grant[] {
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
 * The scopes a user or service account holds at `now`: granted to it, or to a custom role
 * it holds (scopes flow to members as privileges do). Expired grants do not count.
 */
export function scopesOf(view: CatalogReader, kind: 'user' | 'service_account', id: number, now: number): string[] {
  const direct = grantsTo(view, kind, id, now);
  const out = new Set<string>();
  const add = (gs: Grant[]) => {
    for (const g of gs) if (g.scope !== undefined) out.add(g.scope);
  };
  add(direct);
  for (const r of roleClosure(view, direct, now)) add(grantsTo(view, 'role', r.id, now));
  return [...out].sort(compareCodeUnits);
}

const compareCodeUnits = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/**
 * An API key's scopes as they count now: those it was created with that its owner still
 * holds (a key carries only scopes granted to its owner). Revoking a scope from the owner, or
 * its grant expiring, takes it from every key of the owner at the key's next use; a key
 * from a catalog written before scopes were grantable is clamped the same way.
 */
export function keyScopes(key: ApiKey, view: CatalogReader, now: number): string[] {
  if (key.scopes.length === 0) return [];
  const held = new Set(scopesOf(view, key.ownerKind, key.ownerId, now));
  return key.scopes.filter((s) => held.has(s));
}

/**
 * The effective rights of `user` at `now`: its built-in role raised by any live
 * time-bound built-in role grant, the custom roles it holds, the privileges granted to it
 * and to those roles, its accessible databases — the tenant's `default`, every database it
 * holds a privilege on, all of its tenant's for tenant_admin and above — and its scopes.
 *
 * A credential's limits (an API key's role, databases and scopes; a service account's
 * databases) cap all of it here, in one place: a key's role caps the privileges that
 * grants give as well as the built-in role (a ROLE readonly key of a user who was granted
 * WRITE holds READ only), so SHOW PERMISSIONS, the accessible databases, every privilege
 * check and what HTTP's /v1/authenticate reports agree.
 */
export function effectiveOf(user: User, view: CatalogReader, now: number): Effective {
  const direct = grantsTo(view, 'user', user.id, now);
  const cap = user.limits;
  // A key session's actor carries its capped role (what authorize reads); what the owner
  // reaches is computed from the owner's own role, as the catalog has it.
  let role = cap && !cap.exact ? (view.userById(user.id)?.role ?? user.role) : user.role;
  let roleSource = 'own role';
  for (const g of direct) {
    if (g.builtinRole && roleRank(g.builtinRole) > roleRank(role)) {
      role = g.builtinRole;
      roleSource = 'granted role';
    }
  }
  const roles = roleClosure(view, direct, now);
  const grants: Held[] = [];
  const held = new Set<string>();
  const add = (gs: Grant[], source: string) => {
    for (const g of gs) {
      if (g.privilege) grants.push({ privilege: g.privilege, databaseId: g.databaseId, collection: g.collection, source });
      else if (g.scope !== undefined) held.add(g.scope);
    }
  };
  add(direct, 'grant');
  for (const r of roles) add(grantsTo(view, 'role', r.id, now), `role ${r.name}`);

  // Accessible databases are the owner's (a key without WITH DATABASES reaches all of its
  // owner's accessible databases), then narrowed to the credential's set.
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
  // What may be done there is capped by the credential's role: the built-in role, and the
  // privileges that grants give (a ROLE readonly key reads, whatever its owner was granted).
  if (cap && roleRank(role) > roleRank(cap.role)) {
    role = cap.role;
    roleSource = 'credential';
  }
  const capped = cap ? grants.filter((g) => ROLE_PRIVILEGES[cap.role].includes(g.privilege)) : grants;
  // The same scopes scopesOf gives, from the grants already read.
  const scopes = cap ? cap.scopes : [...held].sort(compareCodeUnits);
  return { role, roleSource, roles, grants: capped, databases, scopes };
}

/** One effective privilege on one database, and where it comes from (SHOW PERMISSIONS). */
export interface Permission {
  database: string;
  collection: string | null;
  privilege: Privilege;
  source: string;
}

/**
 * Every privilege `e` holds, database by database: by its built-in role, and by grants.
 * SHOW PERMISSIONS and HTTP's /v1/whoami and /v1/authenticate all read this list.
 */
export function permissionsOf(e: Effective): Permission[] {
  const out: Permission[] = [];
  for (const d of e.databases) {
    for (const p of PRIVILEGES) {
      if (ROLE_PRIVILEGES[e.role].includes(p)) out.push({ database: d.name, collection: null, privilege: p, source: `role ${e.role}` });
      for (const g of e.grants) {
        if (g.privilege === p && (g.databaseId === null || g.databaseId === d.id)) out.push({ database: d.name, collection: g.collection, privilege: p, source: g.source });
      }
    }
  }
  return out;
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
export function holdingsOf(
  actor: User,
  view: CatalogReader,
  now: number,
): { holdsPrivilege(p: Privilege, db: Database, collection: string | null): boolean; holdsRole(r: Role): boolean; holdsScope(scope: string): boolean } {
  const e = effectiveOf(actor, view, now);
  return {
    holdsPrivilege: (p, db, collection) => holds(e, p, db, collection),
    holdsRole: (r) => e.roles.some((x) => x.id === r.id),
    holdsScope: (scope) => e.scopes.includes(scope),
  };
}
