import { PgError } from '../errors/pg-error.js';
import { DEFAULT_DATABASE, roleRank, type BuiltinRole, type Database, type Tenant, type User } from '../catalog/model.js';
import type { CatalogReader } from '../catalog/catalog.js';

/**
 * The one privilege policy (SPEC §4). Every statement asks here; nothing else in the
 * engine decides who may do what.
 *
 * Users are managed by admin and above, inside their own tenant (a superuser: anywhere).
 * A manager may assign or touch only roles up to its own, and tenant_admin and superuser
 * only a superuser may assign or touch. Everyone may change their own password.
 * Tenants are a superuser's; databases are created and dropped by tenant_admin and above.
 */

export type Action =
  | { kind: 'createUser'; tenantId: number; role: BuiltinRole; namesTenant: boolean }
  | { kind: 'alterUser'; target: User; newRole: BuiltinRole | null; changesTenant: boolean; onlyPassword: boolean }
  | { kind: 'renameUser'; target: User }
  | { kind: 'unlockUser'; target: User }
  | { kind: 'dropUser'; target: User }
  | { kind: 'createTenant' }
  | { kind: 'dropTenant' }
  | { kind: 'createDatabase'; tenantId: number; namesTenant: boolean }
  | { kind: 'dropDatabase'; target: Database; namesTenant: boolean };

const atLeast = (u: User, r: BuiltinRole) => roleRank(u.role) >= roleRank(r);
const isSuper = (u: User) => u.role === 'superuser';

const denied = (message: string, detail: string, hint?: string) =>
  new PgError('insufficient_privilege', message, hint === undefined ? { detail } : { detail, hint });

/**
 * Whether `actor` may see `target` at all. What one may not see reads exactly like what
 * does not exist (no existence oracle), so callers answer 42704 when this is false.
 */
export function canSeeUser(actor: User, target: User): boolean {
  if (isSuper(actor) || actor.id === target.id) return true;
  return atLeast(actor, 'admin') && actor.tenantId === target.tenantId;
}

export function canSeeTenant(actor: User, tenant: Tenant): boolean {
  return isSuper(actor) || actor.tenantId === tenant.id;
}

export function canSeeDatabase(actor: User, db: Database, view: CatalogReader): boolean {
  return isSuper(actor) || (actor.tenantId === db.tenantId && accessibleDatabases(actor, view).includes(db.name));
}

/**
 * Accessible databases (SPEC §2): the tenant's `default` database, every database of the
 * tenant for tenant_admin, every database for a superuser (listed here: those of its own
 * tenant; others are named with TENANT). Privileges granted on databases arrive with GRANT.
 */
export function accessibleDatabases(actor: User, view: CatalogReader): string[] {
  if (atLeast(actor, 'tenant_admin')) {
    const out: string[] = [];
    for (const d of view.databases()) if (d.tenantId === actor.tenantId) out.push(d.name);
    return out;
  }
  return view.databaseByName(actor.tenantId, DEFAULT_DATABASE) ? [DEFAULT_DATABASE] : [];
}

/** Throws 42501 with what was needed and what the actor has, or returns. */
export function authorize(actor: User, action: Action): void {
  if (isSuper(actor)) {
    if (action.kind === 'alterUser' && action.target.id === actor.id && action.newRole !== null && action.newRole !== actor.role) {
      throw denied('permission denied to change your own role', `${actor.name} has role ${actor.role}; nobody changes their own role.`);
    }
    return;
  }
  switch (action.kind) {
    case 'createUser':
      needManager(actor, 'CREATE USER');
      if (action.namesTenant) throw onlySuperuser(actor, 'CREATE USER ... TENANT');
      assignable(actor, action.role, 'CREATE USER');
      return;
    case 'alterUser': {
      if (action.target.id === actor.id) {
        if (action.onlyPassword) return;
        if (action.newRole !== null && action.newRole !== actor.role) {
          throw denied('permission denied to change your own role', `${actor.name} has role ${actor.role}; nobody changes their own role.`);
        }
        throw denied(
          `permission denied to alter user "${actor.name}"`,
          `${actor.name} has role ${actor.role}; a user may change only their own password.`,
          'Ask an administrator of your tenant to change the other attributes.',
        );
      }
      needManager(actor, 'ALTER USER');
      if (action.changesTenant) throw onlySuperuser(actor, 'ALTER USER ... TENANT');
      manageable(actor, action.target, 'ALTER USER');
      if (action.newRole !== null) assignable(actor, action.newRole, 'ALTER USER');
      return;
    }
    case 'renameUser':
      needManager(actor, 'ALTER USER ... RENAME');
      manageable(actor, action.target, 'ALTER USER ... RENAME');
      return;
    case 'unlockUser':
      needManager(actor, 'ALTER USER ... UNLOCK');
      manageable(actor, action.target, 'ALTER USER ... UNLOCK');
      return;
    case 'dropUser':
      needManager(actor, 'DROP USER');
      manageable(actor, action.target, 'DROP USER');
      return;
    case 'createTenant':
      throw onlySuperuser(actor, 'CREATE TENANT');
    case 'dropTenant':
      throw onlySuperuser(actor, 'DROP TENANT');
    case 'createDatabase':
      needRole(actor, 'tenant_admin', 'CREATE DATABASE');
      if (action.namesTenant) throw onlySuperuser(actor, 'CREATE DATABASE ... TENANT');
      return;
    case 'dropDatabase':
      needRole(actor, 'tenant_admin', 'DROP DATABASE');
      if (action.namesTenant) throw onlySuperuser(actor, 'DROP DATABASE ... TENANT');
      return;
  }
}

function needRole(actor: User, role: BuiltinRole, statement: string): void {
  if (!atLeast(actor, role)) {
    throw denied(`permission denied for ${statement}`, `${actor.name} has role ${actor.role}; ${statement} needs ${role} or higher.`);
  }
}

function needManager(actor: User, statement: string): void {
  needRole(actor, 'admin', statement);
}

function onlySuperuser(actor: User, statement: string): PgError {
  return denied(`permission denied for ${statement}`, `${actor.name} has role ${actor.role}; ${statement} needs superuser.`);
}

/** Roles up to one's own; tenant_admin and superuser are assigned by a superuser only. */
function assignable(actor: User, role: BuiltinRole, statement: string): void {
  if (roleRank(role) > roleRank(actor.role) || role === 'tenant_admin' || role === 'superuser') {
    const needed = role === 'tenant_admin' || role === 'superuser' ? 'superuser' : `${role} or higher`;
    throw denied(`permission denied to grant role ${role}`, `${actor.name} has role ${actor.role}; ${statement} with ROLE ${role} needs ${needed}.`);
  }
}

function manageable(actor: User, target: User, statement: string): void {
  // Visibility was checked by the caller (42704 otherwise); here the target is in the tenant.
  if (roleRank(target.role) > roleRank(actor.role) || target.role === 'tenant_admin' || target.role === 'superuser') {
    throw denied(
      `permission denied for ${statement} on user "${target.name}"`,
      `${actor.name} has role ${actor.role}; ${target.name} has role ${target.role}, which only ${target.role === 'superuser' || target.role === 'tenant_admin' ? 'a superuser' : `${target.role} or higher`} may manage.`,
    );
  }
}
