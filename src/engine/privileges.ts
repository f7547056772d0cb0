import { PgError } from '../errors/pg-error.js';
import { roleRank, type BuiltinRole, type Database, type Privilege, type Role, type ServiceAccount, type Tenant, type User } from '../catalog/model.js';
import type { CatalogReader } from '../catalog/catalog.js';
import { effectiveOf } from './effective.js';

/**
 * The one privilege policy. Every statement asks here; nothing else in the
 * engine decides who may do what.
 *
 * Users are managed by admin and above, inside their own tenant (a superuser: anywhere).
 * A manager may assign or touch only roles up to its own, and tenant_admin and superuser
 * only a superuser may assign or touch. Everyone may change their own password.
 * Tenants are a superuser's; databases are created and dropped by tenant_admin and above.
 */

export type Action =
  | { kind: 'createUser'; tenantId: number; role: BuiltinRole; namesTenant: boolean }
  /**
   * Acting on another user: `targetRole` is its effective role (effectiveOf), which a live
   * time-bound GRANT of a built-in role raises above its own — an admin must not reset the
   * password of, or mint a key for, a user who is a tenant_admin for the day.
   */
  | { kind: 'alterUser'; target: User; targetRole: BuiltinRole; newRole: BuiltinRole | null; changesTenant: boolean; onlyPassword: boolean }
  | { kind: 'renameUser'; target: User; targetRole: BuiltinRole }
  | { kind: 'unlockUser'; target: User; targetRole: BuiltinRole }
  | { kind: 'dropUser'; target: User; targetRole: BuiltinRole }
  | { kind: 'createTenant' }
  | { kind: 'dropTenant' }
  | { kind: 'createDatabase'; tenantId: number; namesTenant: boolean }
  | { kind: 'dropDatabase'; target: Database; namesTenant: boolean }
  /** Checked first, before any name is resolved: a non-manager learns nothing about grantees. */
  | { kind: 'manageGrants'; revoke: boolean }
  | { kind: 'setSessionAuthorization' }
  | { kind: 'setTenant' }
  | { kind: 'dumpCatalog' }
  | { kind: 'showLockouts' }
  | { kind: 'showAuditLog' }
  | { kind: 'showPools' }
  | { kind: 'manageOidcProvider'; statement: string }
  /** The built-in token issuer's signing keys: one for the whole server, so its superusers'. */
  | { kind: 'manageTokenIssuer'; statement: string }
  /** RLS policies: whoever holds ADMIN on the database (the admin role, on its databases). */
  | { kind: 'manageRlsPolicy'; database: Database; statement: string }
  /**
   * Creating, changing or dropping a service account, or its keys: admin and above, in
   * their tenant (TENANT: superuser), with a role up to their own, for databases they
   * administer (hold ADMIN on).
   */
  | { kind: 'manageServiceAccount'; role: BuiltinRole; databases: Database[]; namesTenant: boolean; statement: string }
  /** CREATE / ALTER / DROP API KEY for `owner` (anyone for their own keys). */
  | { kind: 'manageApiKey'; owner: User; ownerRole: BuiltinRole; statement: string }
  | { kind: 'createRole'; namesTenant: boolean }
  | { kind: 'dropRole'; namesTenant: boolean }
  /** A privilege on a database (null: on every database of the grantee's tenant). */
  | { kind: 'grantPrivilege'; privilege: Privilege; database: Database | null; collection: string | null; grantee: Grantee; revoke: boolean }
  | { kind: 'grantBuiltinRole'; role: BuiltinRole; grantee: Grantee; revoke: boolean }
  | { kind: 'grantCustomRole'; role: Role; grantee: Grantee; revoke: boolean }
  /** GRANT / REVOKE SCOPE: a superuser any scope; admin and above only scopes they hold. */
  | { kind: 'grantScope'; scope: string; grantee: Grantee; revoke: boolean };

/** Who receives a grant: a user or a custom role (or, for scopes, a service account), in a tenant. */
export type Grantee = { kind: 'user'; user: User } | { kind: 'role'; role: Role } | { kind: 'serviceAccount'; sa: ServiceAccount };

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

/** Service accounts are seen by everyone in their tenant, and by a superuser. */
export function canSeeServiceAccount(actor: User, sa: ServiceAccount): boolean {
  return isSuper(actor) || actor.tenantId === sa.tenantId;
}

/**
 * Whose API keys SHOW API KEYS lists: one's own, and for admins and above those of every
 * user and service account they can see.
 */
export function canListKeysOf(actor: User, owner: { kind: 'user'; user: User } | { kind: 'service_account'; sa: ServiceAccount }): boolean {
  if (owner.kind === 'user') return owner.user.id === actor.id || (atLeast(actor, 'admin') && canSeeUser(actor, owner.user));
  return atLeast(actor, 'admin') && canSeeServiceAccount(actor, owner.sa);
}

export function canSeeTenant(actor: User, tenant: Tenant): boolean {
  return isSuper(actor) || actor.tenantId === tenant.id;
}

export function canSeeDatabase(actor: User, db: Database, view: CatalogReader, now: number): boolean {
  return isSuper(actor) || (actor.tenantId === db.tenantId && accessibleDatabases(actor, view, now).includes(db.name));
}

/** Accessible databases, by name, in the actor's tenant (see effectiveOf). */
export function accessibleDatabases(actor: User, view: CatalogReader, now: number): string[] {
  return effectiveOf(actor, view, now).databases.map((d) => d.name);
}

/**
 * What the actor holds, for the grant rules ("nobody grants a role, privilege or database
 * they do not hold themselves"); given by the caller, who knows the catalog view and time.
 */
export interface Holdings {
  holdsPrivilege(privilege: Privilege, database: Database, collection: string | null): boolean;
  holdsRole(role: Role): boolean;
  holdsScope(scope: string): boolean;
}

/** Throws 42501 with what was needed and what the actor has, or returns. */
export function authorize(actor: User, action: Action, holdings?: Holdings): void {
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
      manageable(actor, action.target, action.targetRole, 'ALTER USER');
      if (action.newRole !== null) assignable(actor, action.newRole, 'ALTER USER');
      return;
    }
    case 'renameUser':
      needManager(actor, 'ALTER USER ... RENAME');
      manageable(actor, action.target, action.targetRole, 'ALTER USER ... RENAME');
      return;
    case 'unlockUser':
      needManager(actor, 'ALTER USER ... UNLOCK');
      manageable(actor, action.target, action.targetRole, 'ALTER USER ... UNLOCK');
      return;
    case 'dropUser':
      needManager(actor, 'DROP USER');
      manageable(actor, action.target, action.targetRole, 'DROP USER');
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
    case 'manageServiceAccount':
      needManager(actor, action.statement);
      if (action.namesTenant) throw onlySuperuser(actor, `${action.statement} ... TENANT`);
      assignable(actor, action.role, action.statement);
      for (const d of action.databases) {
        if (!holdings?.holdsPrivilege('admin', d, null)) {
          throw denied(`permission denied for ${action.statement} on database "${d.name}"`, `${actor.name} does not hold ADMIN on "${d.name}"; service accounts are managed by the administrators of their databases.`);
        }
      }
      return;
    case 'manageApiKey':
      if (action.owner.id === actor.id) return;
      needManager(actor, action.statement);
      manageable(actor, action.owner, action.ownerRole, action.statement);
      return;
    case 'setSessionAuthorization':
      throw onlySuperuser(actor, 'SET SESSION AUTHORIZATION');
    case 'setTenant':
      throw onlySuperuser(actor, 'SET TENANT');
    case 'dumpCatalog':
      // Verifiers and key hashes are not secrets, but they are what an attacker would
      // crack offline: only a superuser reads them, as PostgreSQL's pg_authid.
      throw onlySuperuser(actor, 'DUMP CATALOG');
    case 'showLockouts':
      needManager(actor, 'SHOW LOCKOUTS');
      return;
    case 'showPools':
      // Pool figures of the tenant's own databases (a superuser's: every tenant's).
      needRole(actor, 'tenant_admin', 'SHOW POOLS');
      return;
    case 'showAuditLog':
      // A tenant_admin reads its own tenant's records; the whole log is the superuser's.
      needRole(actor, 'tenant_admin', 'SHOW AUDIT LOG');
      return;
    case 'manageOidcProvider':
      throw onlySuperuser(actor, action.statement);
    case 'manageTokenIssuer':
      throw onlySuperuser(actor, action.statement);
    case 'manageRlsPolicy':
      needManager(actor, action.statement);
      if (!holdings?.holdsPrivilege('admin', action.database, null)) {
        throw denied(`permission denied for ${action.statement} on database "${action.database.name}"`, `${actor.name} does not hold ADMIN on "${action.database.name}".`);
      }
      return;
    case 'manageGrants':
      needManager(actor, action.revoke ? 'REVOKE' : 'GRANT');
      return;
    case 'createRole':
    case 'dropRole': {
      const statement = action.kind === 'createRole' ? 'CREATE ROLE' : 'DROP ROLE';
      needRole(actor, 'tenant_admin', statement);
      if (action.namesTenant) throw onlySuperuser(actor, `${statement} ... TENANT`);
      return;
    }
    case 'grantPrivilege': {
      const statement = action.revoke ? 'REVOKE' : 'GRANT';
      needManager(actor, statement);
      notSelf(actor, action.grantee, statement);
      const what = action.privilege.toUpperCase();
      if (action.database === null) {
        needRole(actor, 'tenant_admin', `${statement} ${what} on every database`);
        return;
      }
      if (!holdings?.holdsPrivilege(action.privilege, action.database, action.collection)) {
        throw denied(
          `permission denied to ${statement.toLowerCase()} ${what} on database "${action.database.name}"`,
          `${actor.name} does not hold ${what} on "${action.database.name}"${action.collection ? ` collection "${action.collection}"` : ''}; nobody grants what they do not hold.`,
        );
      }
      return;
    }
    case 'grantBuiltinRole': {
      const statement = action.revoke ? 'REVOKE' : 'GRANT';
      needManager(actor, statement);
      notSelf(actor, action.grantee, statement);
      assignable(actor, action.role, statement);
      return;
    }
    case 'grantCustomRole': {
      const statement = action.revoke ? 'REVOKE' : 'GRANT';
      needManager(actor, statement);
      notSelf(actor, action.grantee, statement);
      if (!atLeast(actor, 'tenant_admin') && !holdings?.holdsRole(action.role)) {
        throw denied(
          `permission denied to ${statement.toLowerCase()} role "${action.role.name}"`,
          `${actor.name} does not hold role ${action.role.name}; nobody grants a role they do not hold.`,
        );
      }
      return;
    }
    case 'grantScope': {
      // No built-in role implies a scope, so a tenant_admin holds only the scopes granted
      // to it: scopes enter a tenant through a superuser and spread no further than their
      // holders pass them on (as WITH GRANT OPTION would have it in PostgreSQL).
      const statement = action.revoke ? 'REVOKE SCOPE' : 'GRANT SCOPE';
      needManager(actor, statement);
      notSelf(actor, action.grantee, statement);
      if (!holdings?.holdsScope(action.scope)) {
        throw denied(
          `permission denied to ${action.revoke ? 'revoke' : 'grant'} scope "${action.scope}"`,
          `${actor.name} does not hold scope "${action.scope}"; nobody grants a scope they do not hold.`,
        );
      }
      return;
    }
  }
}

function notSelf(actor: User, grantee: Grantee, statement: string): void {
  if (grantee.kind === 'user' && grantee.user.id === actor.id) {
    const toOrFrom = statement.startsWith('REVOKE') ? 'from' : 'to';
    throw denied(`permission denied to ${statement.toLowerCase()} ${toOrFrom} yourself`, `${actor.name} cannot change what they hold; ask another administrator.`);
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

/** `role`: the target's effective role, not its own (see the alterUser action). */
function manageable(actor: User, target: User, role: BuiltinRole, statement: string): void {
  // Visibility was checked by the caller (42704 otherwise); here the target is in the tenant.
  if (roleRank(role) > roleRank(actor.role) || role === 'tenant_admin' || role === 'superuser') {
    throw denied(
      `permission denied for ${statement} on user "${target.name}"`,
      `${actor.name} has role ${actor.role}; ${target.name} has role ${role}, which only ${role === 'superuser' || role === 'tenant_admin' ? 'a superuser' : `${role} or higher`} may manage.`,
    );
  }
}

/**
 * An API key narrows its owner, never widens it: its role at most the owner's,
 * its databases among the owner's accessible ones, its scopes among the owner's granted
 * scopes (nobody mints a scope they were not given). Applies to superusers' keys too.
 */
export function limitKey(
  owner: { name: string },
  ownerRole: BuiltinRole,
  role: BuiltinRole | null,
  databases: Database[],
  accessible: Database[],
  scopes: string[] = [],
  ownerScopes: string[] = [],
): void {
  if (role !== null && roleRank(role) > roleRank(ownerRole)) {
    throw denied(`API key role ${role} is above the role of its owner`, `${owner.name} has role ${ownerRole}; a key's role is at most its owner's.`);
  }
  for (const s of scopes) {
    if (!ownerScopes.includes(s)) {
      throw denied(
        `API key scope "${s}" is not held by its owner`,
        `${owner.name} was not granted scope "${s}"; a key's scopes are among its owner's.`,
        `A holder of the scope grants it first: GRANT SCOPE '${s.replaceAll("'", "''")}' TO ${owner.name}.`,
      );
    }
  }
  for (const d of databases) {
    if (!accessible.some((a) => a.id === d.id)) {
      throw denied(`${owner.name} may not reach database "${d.name}"`, `An API key's databases are a subset of its owner's accessible databases.`);
    }
  }
}
