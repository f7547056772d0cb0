import type { Name } from '../../grammar/index.js';
import { type BuiltinRole, type Database, type ServiceAccount } from '../catalog/model.js';
import type { CatalogReader } from '../catalog/catalog.js';
import { PgError } from '../errors/pg-error.js';
import type { Execution } from '../wire/handler.js';
import { writeTx, type StatementContext, type Cmd } from './statement-context.js';
import { holdingsOf } from './effective.js';
import { authorize, canSeeServiceAccount } from './privileges.js';
import { col, commandDone, rowsResult } from './results.js';
import { resolveTenant } from './tenants.js';
import { builtinRoleNamed } from './users.js';
import { checkLoginName, checkNewName } from './names.js';
import { formatTextArray, formatTimestamp } from './values.js';


/** A service account the actor may see (its tenant; a superuser: any), or 42704. */
export function resolveServiceAccount(n: Name, ctx: StatementContext): ServiceAccount {
  const sa = ctx.view.serviceAccountByName(n.value);
  if (!sa || !canSeeServiceAccount(ctx.actor, sa)) {
    throw new PgError('undefined_object', `service account "${n.value}" does not exist`, { position: n.position });
  }
  return sa;
}

/** Users and service accounts share one login name space (the startup message carries a name). */
export function checkLoginNameFree(n: Name, view: CatalogReader, exceptServiceAccount?: number): void {
  if (view.userByName(n.value)) throw new PgError('duplicate_object', `user "${n.value}" already exists`, { position: n.position });
  const sa = view.serviceAccountByName(n.value);
  if (sa && sa.id !== exceptServiceAccount) {
    throw new PgError('duplicate_object', `service account "${n.value}" already exists`, { position: n.position });
  }
}

const saRole = (role: Name | null): BuiltinRole => (role === null ? 'readonly' : builtinRoleNamed(role, 'A service account'));

function saDatabases(names: Name[], tenantId: number, ctx: StatementContext): Database[] {
  return names.map((n) => {
    const db = ctx.view.databaseByName(tenantId, n.value);
    if (!db) throw new PgError('undefined_object', `database "${n.value}" does not exist`, { position: n.position });
    return db;
  });
}

export const databasesOf = (sa: ServiceAccount, view: CatalogReader): Database[] =>
  sa.databaseIds.map((id) => view.databaseById(id)).filter((d): d is Database => d !== undefined);

/** The authorization to touch an existing service account: as if creating it as it is. */
export function authorizeServiceAccount(sa: ServiceAccount, statement: string, ctx: StatementContext): void {
  authorize(
    ctx.actor,
    { kind: 'manageServiceAccount', role: sa.role, databases: databasesOf(sa, ctx.view), namesTenant: false, statement },
    holdingsOf(ctx.actor, ctx.view, ctx.now),
  );
}

export async function createServiceAccount(cmd: Cmd<'CreateServiceAccount'>, ctx: StatementContext): Promise<Execution> {
  const tx = writeTx(ctx);
  const tenantId = cmd.tenant ? resolveTenant(cmd.tenant, ctx).id : ctx.actor.tenantId;
  const role = saRole(cmd.role);
  const dbs = saDatabases(cmd.databases, tenantId, ctx);
  authorize(
    ctx.actor,
    { kind: 'manageServiceAccount', role, databases: dbs, namesTenant: cmd.tenant !== null, statement: 'CREATE SERVICE ACCOUNT' },
    holdingsOf(ctx.actor, ctx.view, ctx.now),
  );
  if (tx.serviceAccountByName(cmd.name.value) && cmd.ifNotExists) {
    ctx.notice({ severity: 'NOTICE', code: '42710', message: `service account "${cmd.name.value}" already exists, skipping` });
    return commandDone('CREATE SERVICE ACCOUNT');
  }
  checkLoginName('service account', cmd.name);
  checkLoginNameFree(cmd.name, tx);
  checkNewName(cmd.name, { kind: 'service account' }, ctx);
  tx.insert('serviceAccounts', {
    id: tx.allocateId(),
    tenantId,
    name: cmd.name.value,
    role,
    databaseIds: dbs.map((d) => d.id),
    createdAt: ctx.now,
    createdBy: ctx.actor.name,
  });
  return commandDone('CREATE SERVICE ACCOUNT');
}

export async function alterServiceAccount(cmd: Cmd<'AlterServiceAccount'>, ctx: StatementContext): Promise<Execution> {
  const tx = writeTx(ctx);
  const sa = resolveServiceAccount(cmd.name, ctx);
  authorizeServiceAccount(sa, 'ALTER SERVICE ACCOUNT', ctx);
  const c = cmd.change;
  let next: ServiceAccount;
  if (c.kind === 'rename') {
    checkLoginName('service account', c.name);
    checkLoginNameFree(c.name, tx, sa.id);
    checkNewName(c.name, { kind: 'service account', self: sa.id }, ctx);
    next = { ...sa, name: c.name.value };
  } else {
    const role = c.kind === 'role' ? saRole(c.role) : sa.role;
    const dbs = c.kind === 'databases' ? saDatabases(c.names, sa.tenantId, ctx) : databasesOf(sa, ctx.view);
    authorize(
      ctx.actor,
      { kind: 'manageServiceAccount', role, databases: dbs, namesTenant: false, statement: 'ALTER SERVICE ACCOUNT' },
      holdingsOf(ctx.actor, ctx.view, ctx.now),
    );
    next = { ...sa, role, databaseIds: dbs.map((d) => d.id) };
  }
  tx.update('serviceAccounts', next);
  return commandDone('ALTER SERVICE ACCOUNT');
}

export async function dropServiceAccount(cmd: Cmd<'DropServiceAccount'>, ctx: StatementContext): Promise<Execution> {
  const tx = writeTx(ctx);
  const found = tx.serviceAccountByName(cmd.name.value);
  if (!found && cmd.ifExists) {
    ctx.notice({ severity: 'NOTICE', code: '00000', message: `service account "${cmd.name.value}" does not exist, skipping` });
    return commandDone('DROP SERVICE ACCOUNT');
  }
  const sa = resolveServiceAccount(cmd.name, ctx);
  authorizeServiceAccount(sa, 'DROP SERVICE ACCOUNT', ctx);
  const keys = tx.apiKeysOf('service_account', sa.id);
  if (keys.length > 0 && !cmd.cascade) {
    throw new PgError('dependent_objects_still_exist', `cannot drop service account "${sa.name}" because it owns API keys`, {
      detail: `${sa.name} owns ${keys.length} API key${keys.length === 1 ? '' : 's'}.`,
      hint: 'Use DROP SERVICE ACCOUNT ... CASCADE to drop them too.',
    });
  }
  for (const k of keys) tx.delete('apiKeys', k.id);
  // Scopes granted to the account go with it, as a user's grants go with the user.
  for (const g of tx.grantsTo('service_account', sa.id)) tx.delete('grants', g.id);
  tx.delete('serviceAccounts', sa.id);
  return commandDone('DROP SERVICE ACCOUNT');
}

export const SERVICE_ACCOUNT_COLUMNS = [
  col('name'),
  col('tenant'),
  col('role'),
  col('databases', 'textArray'),
  col('api_keys', 'int8'),
  col('created_at', 'timestamptz'),
  col('created_by'),
];

export function showServiceAccounts(ctx: StatementContext): Execution {
  const { view, actor } = ctx;
  const tz = ctx.session.settings.get('timezone');
  function* rows(): Generator<(string | null)[]> {
    for (const sa of view.serviceAccounts()) {
      if (!canSeeServiceAccount(actor, sa)) continue;
      const keys = view.apiKeysOf('service_account', sa.id).length;
      yield [
        sa.name,
        view.tenantById(sa.tenantId)?.name ?? String(sa.tenantId),
        sa.role,
        formatTextArray(databasesOf(sa, view).map((d) => d.name)),
        String(keys),
        formatTimestamp(sa.createdAt, tz),
        sa.createdBy,
      ];
    }
  }
  return rowsResult(SERVICE_ACCOUNT_COLUMNS, rows(), 'SHOW', false);
}
