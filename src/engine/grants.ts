import type { Expiry, GrantItem, GrantTarget, Name, Value } from '../../grammar/index.js';
import { grantKey, type GrantShape } from '../catalog/catalog.js';
import { isBuiltinRole, type BuiltinRole, type Database, type Grant, type Privilege, type Role } from '../catalog/model.js';
import { PgError } from '../errors/pg-error.js';
import type { Execution } from '../wire/handler.js';
import { type StatementContext, writeTx, type Cmd } from './statement-context.js';
import { effectiveOf, grantsTo, holdingsOf, permissionsOf, roleClosure } from './effective.js';
import { authorize, canSeeServiceAccount, canSeeTenant, canSeeUser, type Grantee, type Holdings } from './privileges.js';
import { authorizeServiceAccount } from './service-accounts.js';
import { col, commandDone, rowsResult } from './results.js';
import { resolveTenant } from './tenants.js';
import { checkNewName, checkObjectName } from './names.js';
import { formatTimestamp, parseInterval, parseTimestamp, valueText } from './values.js';

/** Privilege keywords and their aliases. */
const PRIVILEGE_WORDS: Record<string, Privilege[]> = {
  read: ['read'],
  select: ['read'],
  write: ['write'],
  insert: ['write'],
  update: ['write'],
  delete: ['delete'],
  schema: ['schema'],
  create: ['schema'],
  admin: ['admin'],
  all: ['read', 'write', 'delete', 'schema', 'admin'],
};



// ---- roles -----------------------------------------------------------------------------

export async function createRole(cmd: Cmd<'CreateRole'>, ctx: StatementContext): Promise<Execution> {
  const tx = writeTx(ctx);
  authorize(ctx.actor, { kind: 'createRole', namesTenant: cmd.tenant !== null });
  const tenant = cmd.tenant ? resolveTenant(cmd.tenant, ctx) : { id: ctx.actor.tenantId };
  checkObjectName('role', cmd.name);
  if (isBuiltinRole(cmd.name.value)) {
    throw new PgError('reserved_name', `role name "${cmd.name.value}" is reserved`, {
      detail: 'readonly, readwrite, admin, tenant_admin and superuser are built-in roles.',
      position: cmd.name.position,
    });
  }
  if (tx.roleByName(tenant.id, cmd.name.value)) {
    if (cmd.ifNotExists) {
      ctx.notice({ severity: 'NOTICE', code: '42710', message: `role "${cmd.name.value}" already exists, skipping` });
      return commandDone('CREATE ROLE');
    }
    throw new PgError('duplicate_object', `role "${cmd.name.value}" already exists`, { position: cmd.name.position });
  }
  // Grantees are named by one name: a role may not share it with a user of its tenant.
  const user = tx.userByName(cmd.name.value);
  if (user && user.tenantId === tenant.id) {
    throw new PgError('duplicate_object', `a user named "${cmd.name.value}" already exists`, {
      detail: 'Users and roles of a tenant share one name space, since GRANT ... TO names either.',
      position: cmd.name.position,
    });
  }
  checkNewName(cmd.name, { kind: 'role', tenantId: tenant.id }, ctx);
  tx.insert('roles', { id: tx.allocateId(), tenantId: tenant.id, name: cmd.name.value, createdAt: ctx.now, createdBy: ctx.actor.name });
  return commandDone('CREATE ROLE');
}

export async function dropRole(cmd: Cmd<'DropRole'>, ctx: StatementContext): Promise<Execution> {
  const tx = writeTx(ctx);
  authorize(ctx.actor, { kind: 'dropRole', namesTenant: cmd.tenant !== null });
  if (isBuiltinRole(cmd.name.value)) {
    throw new PgError('reserved_name', `cannot drop built-in role "${cmd.name.value}"`, { position: cmd.name.position });
  }
  const tenant = cmd.tenant ? resolveTenant(cmd.tenant, ctx) : { id: ctx.actor.tenantId };
  const role = tx.roleByName(tenant.id, cmd.name.value);
  if (!role) {
    if (cmd.ifExists) {
      ctx.notice({ severity: 'NOTICE', code: '00000', message: `role "${cmd.name.value}" does not exist, skipping` });
      return commandDone('DROP ROLE');
    }
    throw new PgError('undefined_object', `role "${cmd.name.value}" does not exist`, { position: cmd.name.position });
  }
  const dependents = [...tx.grants()].filter((g) => g.roleId === role.id || (g.granteeKind === 'role' && g.granteeId === role.id));
  if (dependents.length > 0 && !cmd.cascade) {
    throw new PgError('dependent_objects_still_exist', `cannot drop role "${role.name}" because other objects depend on it`, {
      detail: `${dependents.length} grant${dependents.length === 1 ? '' : 's'} of or to the role.`,
      hint: 'REVOKE them first, or use DROP ROLE ... CASCADE.',
    });
  }
  for (const g of dependents) tx.delete('grants', g.id);
  tx.delete('roles', role.id);
  return commandDone('DROP ROLE');
}

export const ROLE_COLUMNS = [col('name'), col('tenant'), col('members', 'int8'), col('privileges', 'int8'), col('created_at', 'timestamptz')];

export function showRoles(ctx: StatementContext): Execution {
  const { view, actor } = ctx;
  const tz = ctx.session.settings.get('timezone');
  const now = ctx.now;
  function* rows(): Generator<(string | null)[]> {
    for (const r of view.roles()) {
      const t = view.tenantById(r.tenantId);
      if (!t || !canSeeTenant(actor, t)) continue;
      let members = 0;
      for (const g of view.grants()) if (g.roleId === r.id && (g.expiresAt === null || g.expiresAt > now)) members++;
      const privileges = grantsTo(view, 'role', r.id, now).filter((g) => g.privilege !== null).length;
      yield [r.name, t.name, String(members), String(privileges), formatTimestamp(r.createdAt, tz)];
    }
  }
  return rowsResult(ROLE_COLUMNS, rows(), 'SHOW', false);
}

// ---- GRANT / REVOKE ------------------------------------------------------------------------

/**
 * A grantee by name: a user the actor may see, or a custom role of the actor's tenant; with
 * `serviceAccounts` (scopes, and SHOW GRANTS FOR), also a service account it may see.
 */
function resolveGrantee(n: Name, ctx: StatementContext, serviceAccounts = false): Grantee {
  const u = ctx.view.userByName(n.value);
  if (u && canSeeUser(ctx.actor, u)) return { kind: 'user', user: u };
  if (serviceAccounts) {
    const sa = ctx.view.serviceAccountByName(n.value);
    if (sa && canSeeServiceAccount(ctx.actor, sa)) return { kind: 'serviceAccount', sa };
  }
  const r = ctx.view.roleByName(ctx.actor.tenantId, n.value);
  if (r) return { kind: 'role', role: r };
  const what = serviceAccounts ? 'user, service account or role' : 'user or role';
  throw new PgError('undefined_object', `${what} "${n.value}" does not exist`, { position: n.position });
}

const granteeTenant = (g: Grantee) => (g.kind === 'user' ? g.user.tenantId : g.kind === 'role' ? g.role.tenantId : g.sa.tenantId);
function granteeRef(g: Grantee): { granteeKind: Grant['granteeKind']; granteeId: number } {
  if (g.kind === 'user') return { granteeKind: 'user', granteeId: g.user.id };
  if (g.kind === 'role') return { granteeKind: 'role', granteeId: g.role.id };
  return { granteeKind: 'service_account', granteeId: g.sa.id };
}
const granteeName = (g: Grantee) => (g.kind === 'user' ? g.user.name : g.kind === 'role' ? g.role.name : g.sa.name);

type Resolved =
  | { kind: 'privilege'; privilege: Privilege; database: Database | null; collection: string | null }
  | { kind: 'builtin'; role: BuiltinRole }
  | { kind: 'custom'; role: Role };

/** What the items of one GRANT / REVOKE mean for one grantee (databases resolve in its tenant). */
function resolveItems(items: GrantItem[], target: GrantTarget, grantee: Grantee, ctx: StatementContext): Resolved[] {
  const tenantId = granteeTenant(grantee);
  const out: Resolved[] = [];
  const databases = (): { db: Database | null; collection: string | null }[] => {
    if (target === null) return [{ db: null, collection: null }];
    const names = target.kind === 'databases' ? target.names : [target.database];
    return names.map((n) => {
      const db = ctx.view.databaseByName(tenantId, n.value);
      if (!db) throw new PgError('undefined_object', `database "${n.value}" does not exist`, { position: n.position });
      return { db, collection: target.kind === 'collection' ? target.collection.value : null };
    });
  };
  for (const it of items) {
    const privileges = it.quoted ? undefined : PRIVILEGE_WORDS[it.word];
    // Without ON, a word that names a role is a role (GRANT admin TO bob is membership).
    const asRole = target === null && (isBuiltinRole(it.word) || ctx.view.roleByName(tenantId, it.word) !== undefined);
    if (privileges && !asRole) {
      for (const { db, collection } of databases()) for (const p of privileges) out.push({ kind: 'privilege', privilege: p, database: db, collection });
      continue;
    }
    if (target !== null) {
      throw new PgError('invalid_grant_operation', `"${it.word}" is not a privilege`, {
        position: it.position,
        hint: 'The privileges are READ, WRITE, DELETE, SCHEMA, ADMIN and ALL; grant roles without ON (GRANT analyst TO alice).',
      });
    }
    if (isBuiltinRole(it.word)) {
      out.push({ kind: 'builtin', role: it.word });
      continue;
    }
    const role = ctx.view.roleByName(tenantId, it.word);
    if (!role) throw new PgError('undefined_object', `role "${it.word}" does not exist`, { position: it.position });
    out.push({ kind: 'custom', role });
  }
  return out;
}

function authorizeItem(r: Resolved, grantee: Grantee, revoke: boolean, ctx: StatementContext, holdings: Holdings): void {
  if (r.kind === 'privilege') {
    authorize(ctx.actor, { kind: 'grantPrivilege', privilege: r.privilege, database: r.database, collection: r.collection, grantee, revoke }, holdings);
  } else if (r.kind === 'builtin') authorize(ctx.actor, { kind: 'grantBuiltinRole', role: r.role, grantee, revoke }, holdings);
  else authorize(ctx.actor, { kind: 'grantCustomRole', role: r.role, grantee, revoke }, holdings);
}

function grantShape(r: Resolved, grantee: Grantee): GrantShape {
  return {
    tenantId: granteeTenant(grantee),
    ...granteeRef(grantee),
    privilege: r.kind === 'privilege' ? r.privilege : null,
    databaseId: r.kind === 'privilege' ? (r.database?.id ?? null) : null,
    collection: r.kind === 'privilege' ? r.collection : null,
    builtinRole: r.kind === 'builtin' ? r.role : null,
    roleId: r.kind === 'custom' ? r.role.id : null,
  };
}

function expiryOf(expiry: Expiry, ctx: StatementContext): number | null {
  if (expiry === null) return null;
  const text = valueText(expiry.value, ctx.params);
  if (text === null) return null;
  if (expiry.kind === 'until') return parseTimestamp(text, ctx.session.settings.get('timezone'));
  const ms = parseInterval(text);
  if (ms <= 0) throw new PgError('invalid_parameter_value', `FOR INTERVAL must be positive, got "${text}"`, { position: expiry.value.position });
  return ctx.now + ms;
}

export async function grant(cmd: Cmd<'Grant'>, ctx: StatementContext): Promise<Execution> {
  const tx = writeTx(ctx);
  authorize(ctx.actor, { kind: 'manageGrants', revoke: false });
  const holdings = holdingsOf(ctx.actor, ctx.view, ctx.now);
  const expiresAt = expiryOf(cmd.expiry, ctx);
  const now = ctx.now;
  for (const n of cmd.grantees) {
    const grantee = resolveGrantee(n, ctx);
    for (const r of resolveItems(cmd.items, cmd.target, grantee, ctx)) {
      authorizeItem(r, grantee, false, ctx, holdings);
      if (r.kind === 'custom' && grantee.kind === 'role') {
        // A role may not end up holding itself: role grants form no cycles.
        const held = roleClosure(tx, grantsTo(tx, 'role', r.role.id, now).concat([{ roleId: r.role.id } as Grant]), now);
        if (held.some((x) => x.id === grantee.role.id)) {
          throw new PgError('invalid_grant_operation', `role "${r.role.name}" is a member of role "${grantee.role.name}"`, {
            detail: `Granting ${r.role.name} to ${grantee.role.name} would make a cycle of role memberships.`,
          });
        }
      }
      if (r.kind === 'builtin' && grantee.kind === 'role') {
        throw new PgError('invalid_grant_operation', `built-in role ${r.role} can be granted to users only`, { hint: 'Grant privileges to custom roles.' });
      }
      const shape = grantShape(r, grantee);
      const existing = tx.grantByKey(grantKey(shape));
      if (existing) tx.update('grants', { ...existing, expiresAt, grantedBy: ctx.actor.name });
      else tx.insert('grants', { id: tx.allocateId(), ...shape, expiresAt, grantedBy: ctx.actor.name, createdAt: now });
    }
  }
  return commandDone('GRANT');
}

export async function revoke(cmd: Cmd<'Revoke'>, ctx: StatementContext): Promise<Execution> {
  const tx = writeTx(ctx);
  authorize(ctx.actor, { kind: 'manageGrants', revoke: true });
  const holdings = holdingsOf(ctx.actor, ctx.view, ctx.now);
  for (const n of cmd.grantees) {
    const grantee = resolveGrantee(n, ctx);
    for (const r of resolveItems(cmd.items, cmd.target, grantee, ctx)) {
      authorizeItem(r, grantee, true, ctx, holdings);
      const existing = tx.grantByKey(grantKey(grantShape(r, grantee)));
      if (existing) {
        tx.delete('grants', existing.id);
        continue;
      }
      const what =
        r.kind === 'privilege'
          ? `${r.privilege.toUpperCase()}${r.database ? ` on database "${r.database.name}"` : ' on every database'}`
          : `role ${r.kind === 'builtin' ? r.role : r.role.name}`;
      ctx.notice({
        severity: 'WARNING',
        code: '01006',
        message: `no privileges could be revoked: ${granteeName(grantee)} was not granted ${what}`,
        hint: r.kind === 'builtin' && grantee.kind === 'user' && grantee.user.role === r.role ? `${grantee.user.name}'s own role is ${r.role}; ALTER USER ... ROLE changes it.` : undefined,
      });
    }
  }
  return commandDone('REVOKE');
}

// ---- GRANT / REVOKE SCOPE ------------------------------------------------------------------

/**
 * The scope strings of GRANT / REVOKE SCOPE: any non-empty text, as CREATE API KEY ...
 * SCOPES takes (a repeated one counts once).
 */
function scopeTexts(values: Value[], ctx: StatementContext): string[] {
  const out: string[] = [];
  for (const v of values) {
    const text = valueText(v, ctx.params);
    if (text === null || text === '') {
      throw new PgError('invalid_parameter_value', 'a scope must be a non-empty string', { position: v.position });
    }
    if (!out.includes(text)) out.push(text);
  }
  return out;
}

/** A scope grantee, authorized: a service account is touched as ALTER SERVICE ACCOUNT would. */
function scopeGrantee(n: Name, statement: string, ctx: StatementContext): Grantee {
  const grantee = resolveGrantee(n, ctx, true);
  if (grantee.kind === 'serviceAccount') authorizeServiceAccount(grantee.sa, statement, ctx);
  return grantee;
}

const scopeShape = (scope: string, grantee: Grantee): GrantShape => ({
  tenantId: granteeTenant(grantee),
  ...granteeRef(grantee),
  privilege: null,
  databaseId: null,
  collection: null,
  builtinRole: null,
  roleId: null,
  scope,
});

export async function grantScope(cmd: Cmd<'GrantScope'>, ctx: StatementContext): Promise<Execution> {
  const tx = writeTx(ctx);
  authorize(ctx.actor, { kind: 'manageGrants', revoke: false });
  const holdings = holdingsOf(ctx.actor, ctx.view, ctx.now);
  const scopes = scopeTexts(cmd.scopes, ctx);
  const expiresAt = expiryOf(cmd.expiry, ctx);
  for (const n of cmd.grantees) {
    const grantee = scopeGrantee(n, 'GRANT SCOPE', ctx);
    for (const scope of scopes) {
      authorize(ctx.actor, { kind: 'grantScope', scope, grantee, revoke: false }, holdings);
      const shape = scopeShape(scope, grantee);
      const existing = tx.grantByKey(grantKey(shape));
      if (existing) tx.update('grants', { ...existing, expiresAt, grantedBy: ctx.actor.name });
      else tx.insert('grants', { id: tx.allocateId(), ...shape, expiresAt, grantedBy: ctx.actor.name, createdAt: ctx.now });
    }
  }
  return commandDone('GRANT');
}

export async function revokeScope(cmd: Cmd<'RevokeScope'>, ctx: StatementContext): Promise<Execution> {
  const tx = writeTx(ctx);
  authorize(ctx.actor, { kind: 'manageGrants', revoke: true });
  const holdings = holdingsOf(ctx.actor, ctx.view, ctx.now);
  const scopes = scopeTexts(cmd.scopes, ctx);
  for (const n of cmd.grantees) {
    const grantee = scopeGrantee(n, 'REVOKE SCOPE', ctx);
    for (const scope of scopes) {
      authorize(ctx.actor, { kind: 'grantScope', scope, grantee, revoke: true }, holdings);
      const existing = tx.grantByKey(grantKey(scopeShape(scope, grantee)));
      if (existing) {
        // The owner's keys lose the scope at their next use (keyScopes clamps them).
        tx.delete('grants', existing.id);
        continue;
      }
      ctx.notice({ severity: 'WARNING', code: '01006', message: `no privileges could be revoked: ${granteeName(grantee)} was not granted scope "${scope}"` });
    }
  }
  return commandDone('REVOKE');
}

// ---- SHOW GRANTS / SHOW PERMISSIONS --------------------------------------------------------

/**
 * One row per live grant. What is granted is in one of three places: privilege (with
 * database and collection), role, or scope; the others are null. A scope's row reads
 * like the statement: GRANT SCOPE 'billing:read' TO alice.
 */
export const GRANT_COLUMNS = [
  col('grantee'),
  col('grantee_kind'),
  col('privilege'),
  col('database'),
  col('collection'),
  col('role'),
  col('scope'),
  col('valid_until', 'timestamptz'),
  col('granted_by'),
];

const GRANTEE_KIND_WORDS: Record<Grant['granteeKind'], string> = { user: 'user', role: 'role', service_account: 'service account' };

export function showGrants(cmd: Cmd<'ShowGrants'>, ctx: StatementContext): Execution {
  const { view, actor } = ctx;
  const tz = ctx.session.settings.get('timezone');
  const now = ctx.now;
  const only = cmd.grantee ? granteeRef(resolveGrantee(cmd.grantee, ctx, true)) : null;
  function* rows(): Generator<(string | null)[]> {
    for (const g of view.grants()) {
      if (g.expiresAt !== null && g.expiresAt <= now) continue;
      if (only && (g.granteeKind !== only.granteeKind || g.granteeId !== only.granteeId)) continue;
      const t = view.tenantById(g.tenantId);
      if (!t || !canSeeTenant(actor, t)) continue;
      let grantee: { name: string } | undefined;
      if (g.granteeKind === 'user') {
        const u = view.userById(g.granteeId);
        grantee = u && canSeeUser(actor, u) ? u : undefined;
      } else if (g.granteeKind === 'role') grantee = view.roleById(g.granteeId);
      else grantee = view.serviceAccountById(g.granteeId);
      if (!grantee) continue;
      yield [
        grantee.name,
        GRANTEE_KIND_WORDS[g.granteeKind],
        g.privilege?.toUpperCase() ?? null,
        g.privilege === null ? null : g.databaseId === null ? '*' : (view.databaseById(g.databaseId)?.name ?? null),
        g.collection,
        g.builtinRole ?? (g.roleId !== null ? (view.roleById(g.roleId)?.name ?? null) : null),
        g.scope ?? null,
        g.expiresAt === null ? null : formatTimestamp(g.expiresAt, tz),
        g.grantedBy,
      ];
    }
  }
  return rowsResult(GRANT_COLUMNS, rows(), 'SHOW', false);
}

export const PERMISSION_COLUMNS = [col('database'), col('collection'), col('privilege'), col('source')];

/** SHOW PERMISSIONS: this session's effective privileges, and where each comes from. */
export function showPermissions(ctx: StatementContext): Execution {
  const rows = permissionsOf(effectiveOf(ctx.actor, ctx.view, ctx.now)).map((p) => [p.database, p.collection, p.privilege.toUpperCase(), p.source]);
  return rowsResult(PERMISSION_COLUMNS, rows[Symbol.iterator](), 'SHOW', false);
}
