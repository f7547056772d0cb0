import type { TenantRef } from '../../grammar/index.js';
import { DEFAULT_DATABASE, type Database, type Tenant } from '../catalog/model.js';
import { PgError } from '../errors/pg-error.js';
import type { Execution } from '../wire/handler.js';
import { writeTx, type StatementContext, type Cmd } from './statement-context.js';
import { authorize, canSeeDatabase, canSeeTenant } from './privileges.js';
import { col, commandDone, rowsResult } from './results.js';
import { formatTimestamp } from './values.js';
import { checkNewName, checkObjectName } from './names.js';


const refText = (ref: TenantRef) => ('id' in ref ? ref.id : ref.value);

/** A tenant by id or name; one the actor may not see reads as missing (42704). */
export function resolveTenant(ref: TenantRef, ctx: StatementContext): Tenant {
  const t = 'id' in ref ? ctx.view.tenantById(Number(ref.id)) : ctx.view.tenantByName(ref.value);
  if (!t || !canSeeTenant(ctx.actor, t)) {
    throw new PgError('undefined_object', `tenant "${refText(ref)}" does not exist`, { position: ref.position });
  }
  return t;
}


export async function createTenant(cmd: Cmd<'CreateTenant'>, ctx: StatementContext): Promise<Execution> {
  const tx = writeTx(ctx);
  authorize(ctx.actor, { kind: 'createTenant' });
  checkObjectName('tenant', cmd.name);
  if (tx.tenantByName(cmd.name.value)) {
    if (cmd.ifNotExists) {
      ctx.notice({ severity: 'NOTICE', code: '42710', message: `tenant "${cmd.name.value}" already exists, skipping` });
      return commandDone('CREATE TENANT');
    }
    throw new PgError('duplicate_object', `tenant "${cmd.name.value}" already exists`, { position: cmd.name.position });
  }
  checkNewName(cmd.name, { kind: 'tenant' }, ctx);
  let id: number;
  if (cmd.id) {
    id = Number(cmd.id.value);
    if (!Number.isSafeInteger(id) || id < 1 || id > 2 ** 31 - 1) {
      throw new PgError('invalid_parameter_value', `invalid tenant id ${cmd.id.value}`, {
        hint: 'Tenant ids are integers from 1 to 2147483647.',
        position: cmd.id.position,
      });
    }
    const holder = tx.tenantById(id);
    if (holder) throw new PgError('duplicate_object', `tenant id ${id} is already used by tenant "${holder.name}"`, { position: cmd.id.position });
    tx.reserveId(id); // ids are global: the default database must not be given this one
  } else id = tx.allocateId();
  const now = ctx.now;
  tx.insert('tenants', { id, name: cmd.name.value, createdAt: now });
  // Every tenant has a database named `default`.
  tx.insert('databases', { id: tx.allocateId(), tenantId: id, name: DEFAULT_DATABASE, createdAt: now });
  return commandDone('CREATE TENANT');
}

export async function dropTenant(cmd: Cmd<'DropTenant'>, ctx: StatementContext): Promise<Execution> {
  const tx = writeTx(ctx);
  authorize(ctx.actor, { kind: 'dropTenant' });
  const t = tx.tenantByName(cmd.name.value);
  if (!t) {
    if (cmd.ifExists) {
      ctx.notice({ severity: 'NOTICE', code: '00000', message: `tenant "${cmd.name.value}" does not exist, skipping` });
      return commandDone('DROP TENANT');
    }
    throw new PgError('undefined_object', `tenant "${cmd.name.value}" does not exist`, { position: cmd.name.position });
  }
  if (t.id === ctx.actor.tenantId) {
    throw new PgError('object_in_use', `cannot drop tenant "${t.name}": it is the tenant of the current user`, { position: cmd.name.position });
  }
  const users = [...tx.users()].filter((u) => u.tenantId === t.id);
  const dbs = [...tx.databases()].filter((d) => d.tenantId === t.id);
  const roles = [...tx.roles()].filter((r) => r.tenantId === t.id);
  const accounts = [...tx.serviceAccounts()].filter((a) => a.tenantId === t.id);
  const extraDbs = dbs.filter((d) => d.name !== DEFAULT_DATABASE);
  if (!cmd.cascade && (users.length > 0 || extraDbs.length > 0 || roles.length > 0 || accounts.length > 0)) {
    throw new PgError('dependent_objects_still_exist', `cannot drop tenant "${t.name}" because other objects depend on it`, {
      detail: `${count(users.length, 'user')}, ${count(accounts.length, 'service account')}, ${count(roles.length, 'role')} and ${count(extraDbs.length, 'database')} besides "default" belong to it.`,
      hint: 'Use DROP TENANT ... CASCADE to drop them too.',
    });
  }
  for (const g of [...tx.grants()]) if (g.tenantId === t.id) tx.delete('grants', g.id);
  for (const k of [...tx.apiKeys()]) if (k.tenantId === t.id) tx.delete('apiKeys', k.id);
  for (const sa of [...tx.serviceAccounts()]) if (sa.tenantId === t.id) tx.delete('serviceAccounts', sa.id);
  for (const p of [...tx.rlsPolicies()]) if (p.tenantId === t.id) tx.delete('rlsPolicies', p.id);
  for (const r of roles) tx.delete('roles', r.id);
  for (const u of users) tx.delete('users', u.id);
  for (const d of dbs) tx.delete('databases', d.id);
  tx.delete('tenants', t.id);
  return commandDone('DROP TENANT');
}

const count = (n: number, what: string) => `${n} ${what}${n === 1 ? '' : 's'}`;

export const TENANT_COLUMNS = [col('id', 'int8'), col('name'), col('databases', 'int8'), col('users', 'int8'), col('created_at', 'timestamptz')];

export function showTenants(ctx: StatementContext): Execution {
  const { view, actor } = ctx;
  const tz = ctx.session.settings.get('timezone');
  function* rows(): Generator<(string | null)[]> {
    const tenants = [...view.tenants()].filter((t) => canSeeTenant(actor, t)).sort((a, b) => a.id - b.id);
    const users = new Map<number, number>();
    for (const u of view.users()) users.set(u.tenantId, (users.get(u.tenantId) ?? 0) + 1);
    const dbs = new Map<number, number>();
    for (const d of view.databases()) dbs.set(d.tenantId, (dbs.get(d.tenantId) ?? 0) + 1);
    for (const t of tenants) {
      yield [String(t.id), t.name, String(dbs.get(t.id) ?? 0), String(users.get(t.id) ?? 0), formatTimestamp(t.createdAt, tz)];
    }
  }
  return rowsResult(TENANT_COLUMNS, rows(), 'SHOW', false);
}

/** The tenant a database statement concerns: the TENANT clause, or the actor's own. */
function targetTenant(ref: TenantRef | null, ctx: StatementContext): Tenant {
  if (ref) return resolveTenant(ref, ctx);
  const own = ctx.view.tenantById(ctx.actor.tenantId);
  if (!own) throw new PgError('undefined_object', `tenant ${ctx.actor.tenantId} does not exist`);
  return own;
}

export async function createDatabase(cmd: Cmd<'CreateDatabase'>, ctx: StatementContext): Promise<Execution> {
  const tx = writeTx(ctx);
  authorize(ctx.actor, { kind: 'createDatabase', tenantId: ctx.actor.tenantId, namesTenant: cmd.tenant !== null });
  checkObjectName('database', cmd.name);
  const tenant = targetTenant(cmd.tenant, ctx);
  if (tx.databaseByName(tenant.id, cmd.name.value)) {
    if (cmd.ifNotExists) {
      ctx.notice({ severity: 'NOTICE', code: '42710', message: `database "${cmd.name.value}" already exists, skipping` });
      return commandDone('CREATE DATABASE');
    }
    throw new PgError('duplicate_object', `database "${cmd.name.value}" already exists`, { position: cmd.name.position });
  }
  checkNewName(cmd.name, { kind: 'database', tenantId: tenant.id }, ctx);
  tx.insert('databases', { id: tx.allocateId(), tenantId: tenant.id, name: cmd.name.value, createdAt: ctx.now });
  return commandDone('CREATE DATABASE');
}

export async function dropDatabase(cmd: Cmd<'DropDatabase'>, ctx: StatementContext): Promise<Execution> {
  const tx = writeTx(ctx);
  const tenant = targetTenant(cmd.tenant, ctx);
  const db = tx.databaseByName(tenant.id, cmd.name.value);
  if (!db || !canSeeDatabase(ctx.actor, db, tx, ctx.now)) {
    if (cmd.ifExists) {
      ctx.notice({ severity: 'NOTICE', code: '00000', message: `database "${cmd.name.value}" does not exist, skipping` });
      return commandDone('DROP DATABASE');
    }
    throw new PgError('undefined_object', `database "${cmd.name.value}" does not exist`, { position: cmd.name.position });
  }
  authorize(ctx.actor, { kind: 'dropDatabase', target: db, namesTenant: cmd.tenant !== null });
  if (db.name === DEFAULT_DATABASE) {
    throw new PgError('object_in_use', `cannot drop database "default" of tenant "${tenant.name}"`, {
      detail: 'Every tenant has a default database; it goes with DROP TENANT.',
      position: cmd.name.position,
    });
  }
  if (db.tenantId === ctx.actor.tenantId && db.name === ctx.session.database) {
    throw new PgError('object_in_use', 'cannot drop the currently open database', { position: cmd.name.position });
  }
  const grants = [...tx.grants()].filter((g) => g.databaseId === db.id);
  const keys = [...tx.apiKeys()].filter((k) => k.databaseIds?.includes(db.id));
  const accounts = [...tx.serviceAccounts()].filter((a) => a.databaseIds.includes(db.id));
  if ((grants.length > 0 || keys.length > 0 || accounts.length > 0) && !cmd.cascade) {
    throw new PgError('dependent_objects_still_exist', `cannot drop database "${db.name}" because other objects depend on it`, {
      detail: `${count(grants.length, 'grant')} on the database, ${count(keys.length, 'API key')} and ${count(accounts.length, 'service account')} limited to it.`,
      hint: 'REVOKE them first, or use DROP DATABASE ... CASCADE (which drops those keys and takes the database out of those service accounts).',
    });
  }
  for (const g of grants) tx.delete('grants', g.id);
  for (const k of keys) tx.delete('apiKeys', k.id);
  // Policies live on the database's collections: they go with it.
  for (const p of [...tx.rlsPolicies()]) if (p.databaseId === db.id) tx.delete('rlsPolicies', p.id);
  for (const a of accounts) tx.update('serviceAccounts', { ...a, databaseIds: a.databaseIds.filter((id) => id !== db.id) });
  tx.delete('databases', db.id);
  return commandDone('DROP DATABASE');
}

export const DATABASE_COLUMNS = [col('tenant'), col('name'), col('id', 'int8'), col('created_at', 'timestamptz')];

/** SHOW DATABASES: what the session may reach, by tenant then name. */
export function showDatabases(ctx: StatementContext): Execution {
  const { view, actor } = ctx;
  const tz = ctx.session.settings.get('timezone');
  const now = ctx.now;
  function* rows(): Generator<(string | null)[]> {
    for (const d of view.databases() as IterableIterator<Database>) {
      if (!canSeeDatabase(actor, d, view, now)) continue;
      yield [view.tenantById(d.tenantId)?.name ?? String(d.tenantId), d.name, String(d.id), formatTimestamp(d.createdAt, tz)];
    }
  }
  return rowsResult(DATABASE_COLUMNS, rows(), 'SHOW', false);
}
