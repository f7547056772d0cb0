import type { AdminCommand, Name, UserOption, UserRef } from '../../grammar/index.js';
import { isBuiltinRole, type BuiltinRole, type User } from '../catalog/model.js';
import type { CatalogTransaction } from '../catalog/transaction.js';
import { formatVerifier, looksLikeVerifier, makeVerifier, parseVerifier, SALT_LEN } from '../auth/verifier.js';
import { PgError } from '../errors/pg-error.js';
import type { Column, Execution } from '../wire/handler.js';
import { TypeOid } from '../wire/messages.js';
import { type StatementContext, writeTx, type Cmd } from './statement-context.js';
import { effectiveOf } from './effective.js';
import { authorize, canSeeUser } from './privileges.js';
import { resolveTenant } from './tenants.js';
import { checkLoginName, checkNewName } from './names.js';
import { bool, col, commandDone, memoResult, memoRow, type Row } from './results.js';
import { formatTimestamp, parseInteger, parseTimestamp, valueText } from './values.js';


const userMissing = (name: string, position?: number) =>
  new PgError('undefined_object', `user "${name}" does not exist`, position === undefined ? {} : { position });

/** What CREATE / ALTER USER options resolve to; undefined = not given. */
interface Attributes {
  verifier?: string | null;
  role?: BuiltinRole;
  tenantId?: number;
  validUntil?: number | null;
  connectionLimit?: number;
  login?: boolean;
  certificateSubject?: string | null;
}


/** Resolves options, hashing a plain password off the event loop. Never echoes a password. */
async function resolveOptions(options: UserOption[], ctx: StatementContext): Promise<Attributes> {
  const a: Attributes = {};
  const seen = new Set<string>();
  for (const o of options) {
    const key = o.kind;
    if (seen.has(key)) throw new PgError('syntax_error', 'conflicting or redundant options', { hint: `${optionName(o)} is given twice.` });
    seen.add(key);
    switch (o.kind) {
      case 'password':
        a.verifier = await passwordVerifier(valueText(o.value, ctx.params), ctx);
        break;
      case 'role':
        a.role = builtinRoleNamed(o.role, 'A user');
        break;
      case 'tenant':
        a.tenantId = resolveTenant(o.tenant, ctx).id;
        break;
      case 'validUntil': {
        const text = valueText(o.value, ctx.params);
        a.validUntil = text === null ? null : parseTimestamp(text, ctx.session.settings.get('timezone'));
        break;
      }
      case 'connectionLimit': {
        const text = valueText(o.value, ctx.params);
        const n = text === null ? -1 : parseInteger(text, 'CONNECTION LIMIT');
        if (n < -1) throw new PgError('invalid_parameter_value', `invalid connection limit: ${n}`, { hint: '-1 means no limit.' });
        a.connectionLimit = n;
        break;
      }
      case 'login':
        a.login = o.value;
        break;
      case 'certificateSubject':
        a.certificateSubject = valueText(o.value, ctx.params);
        break;
    }
  }
  return a;
}

function optionName(o: UserOption): string {
  return {
    password: 'PASSWORD',
    role: 'ROLE',
    tenant: 'TENANT',
    validUntil: 'VALID UNTIL',
    connectionLimit: 'CONNECTION LIMIT',
    login: 'LOGIN / NOLOGIN',
    certificateSubject: 'CERTIFICATE SUBJECT',
  }[o.kind];
}

async function passwordVerifier(pw: string | null, ctx: StatementContext): Promise<string | null> {
  if (pw === null) return null;
  if (pw === '') {
    ctx.notice({ severity: 'NOTICE', code: '00000', message: 'empty string is not a valid password, clearing password' });
    return null;
  }
  if (/^md5[0-9a-f]{32}$/.test(pw)) {
    throw new PgError('invalid_parameter_value', 'MD5 password hashes are not accepted', {
      hint: 'Give the plain password (it is hashed here with SCRAM-SHA-256) or a SCRAM-SHA-256 verifier from `portcullis hash-password`.',
    });
  }
  if (looksLikeVerifier(pw)) {
    if (!parseVerifier(pw)) {
      throw new PgError('invalid_parameter_value', 'invalid SCRAM-SHA-256 verifier', {
        detail: 'Expected SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey> with base64 parts and 32-byte keys.',
      });
    }
    return pw; // stored as given
  }
  const iterations = Number(ctx.session.settings.get('scram_iterations'));
  return formatVerifier(await makeVerifier(pw, iterations, ctx.engine.random(SALT_LEN)));
}

/** A built-in role by name (what users, keys and service accounts take), or 42704. */
export function builtinRoleNamed(role: Name, subject: string): BuiltinRole {
  if (!isBuiltinRole(role.value)) {
    throw new PgError('undefined_object', `role "${role.value}" does not exist`, {
      position: role.position,
      hint: `${subject} takes a built-in role: readonly, readwrite, admin, tenant_admin or superuser.`,
    });
  }
  return role.value;
}

/** A principal from a token (SET SESSION AUTHORIZATION JWT) is not a catalog user. */
export const tokenHasNoUser = () =>
  new PgError('feature_not_supported', 'the session acts as a token, which has no user in the catalog', {
    hint: 'RESET SESSION AUTHORIZATION to act as a user again.',
  });

/** Users and custom roles of a tenant share one name space: GRANT ... TO names either. */
function noRoleNamed(n: Name, tenantId: number, tx: CatalogTransaction): void {
  if (tx.roleByName(tenantId, n.value)) {
    throw new PgError('duplicate_object', `a role named "${n.value}" already exists`, {
      detail: 'Users and roles of a tenant share one name space, since GRANT ... TO names either.',
      position: n.position,
    });
  }
}


/** Finds a user the actor may see; one it may not see reads as missing (no existence oracle). */
function resolveUser(ref: UserRef, ctx: StatementContext): User {
  if (ref.kind === 'currentUser') {
    if (ctx.actor.id < 0) throw tokenHasNoUser();
    return ctx.actor;
  }
  const u = ctx.view.userByName(ref.name.value);
  if (!u || !canSeeUser(ctx.actor, u)) throw userMissing(ref.name.value, ref.name.position);
  return u;
}

export async function createUser(cmd: Cmd<'CreateUser'>, ctx: StatementContext): Promise<Execution> {
  const tx = writeTx(ctx);
  checkLoginName('user', cmd.name);
  // Privileges before anything else: a denied CREATE must not reveal whether the name exists.
  const namesTenant = cmd.options.some((o) => o.kind === 'tenant');
  const roleOpt = cmd.options.find((o) => o.kind === 'role');
  const role = roleOpt && isBuiltinRole(roleOpt.role.value) ? roleOpt.role.value : 'readonly';
  authorize(ctx.actor, { kind: 'createUser', tenantId: ctx.actor.tenantId, role, namesTenant });
  const existing = tx.userByName(cmd.name.value);
  if (!existing && tx.serviceAccountByName(cmd.name.value)) {
    throw new PgError('duplicate_object', `service account "${cmd.name.value}" already exists`, {
      detail: 'Users and service accounts share one name space: the startup message carries only a name.',
      position: cmd.name.position,
    });
  }
  if (existing) {
    if (cmd.ifNotExists) {
      ctx.notice({ severity: 'NOTICE', code: '42710', message: `user "${cmd.name.value}" already exists, skipping` });
      return commandDone('CREATE USER');
    }
    throw new PgError('duplicate_object', `user "${cmd.name.value}" already exists`, { position: cmd.name.position });
  }
  const a = await resolveOptions(cmd.options, ctx);
  noRoleNamed(cmd.name, a.tenantId ?? ctx.actor.tenantId, tx);
  checkNewName(cmd.name, { kind: 'user', tenantId: a.tenantId ?? ctx.actor.tenantId }, ctx);
  const now = ctx.now;
  tx.insert('users', {
    id: tx.allocateId(),
    name: cmd.name.value,
    tenantId: a.tenantId ?? ctx.actor.tenantId,
    role: a.role ?? 'readonly',
    verifier: a.verifier ?? null,
    login: a.login ?? true,
    validUntil: a.validUntil ?? null,
    connectionLimit: a.connectionLimit ?? -1,
    certificateSubject: a.certificateSubject ?? null,
    createdAt: now,
    updatedAt: now,
    createdBy: ctx.actor.name,
  });
  return commandDone('CREATE USER');
}

export async function alterUser(cmd: Cmd<'AlterUser'>, ctx: StatementContext): Promise<Execution> {
  const tx = writeTx(ctx);
  const target = resolveUser(cmd.user, ctx);
  const roleOpt = cmd.options.find((o) => o.kind === 'role');
  const newRole = roleOpt ? (isBuiltinRole(roleOpt.role.value) ? roleOpt.role.value : target.role) : null;
  authorize(ctx.actor, {
    kind: 'alterUser',
    target,
    targetRole: effectiveOf(target, ctx.view, ctx.now).role,
    newRole,
    changesTenant: cmd.options.some((o) => o.kind === 'tenant'),
    onlyPassword: cmd.options.every((o) => o.kind === 'password'),
  });
  const a = await resolveOptions(cmd.options, ctx);
  const updated: User = { ...target, updatedAt: ctx.now };
  for (const k of Object.keys(a) as (keyof Attributes)[]) (updated as unknown as Record<string, unknown>)[k] = a[k];
  tx.update('users', updated);
  return commandDone('ALTER USER');
}

export async function renameUser(cmd: Cmd<'RenameUser'>, ctx: StatementContext): Promise<Execution> {
  const tx = writeTx(ctx);
  const target = resolveUser(cmd.user, ctx);
  if (target.id === ctx.actor.id) {
    throw new PgError('feature_not_supported', 'session user cannot be renamed', { hint: 'Log in as another administrator to rename this user.' });
  }
  authorize(ctx.actor, { kind: 'renameUser', target, targetRole: effectiveOf(target, ctx.view, ctx.now).role });
  checkLoginName('user', cmd.newName);
  if (tx.userByName(cmd.newName.value)) {
    throw new PgError('duplicate_object', `user "${cmd.newName.value}" already exists`, { position: cmd.newName.position });
  }
  noRoleNamed(cmd.newName, target.tenantId, tx);
  if (tx.serviceAccountByName(cmd.newName.value)) {
    throw new PgError('duplicate_object', `service account "${cmd.newName.value}" already exists`, { position: cmd.newName.position });
  }
  checkNewName(cmd.newName, { kind: 'user', tenantId: target.tenantId, self: target.id }, ctx);
  tx.update('users', { ...target, name: cmd.newName.value, updatedAt: ctx.now });
  return commandDone('ALTER USER');
}

export async function unlockUser(cmd: Cmd<'UnlockUser'>, ctx: StatementContext): Promise<Execution> {
  const target = resolveUser(cmd.user, ctx);
  authorize(ctx.actor, { kind: 'unlockUser', target, targetRole: effectiveOf(target, ctx.view, ctx.now).role });
  ctx.engine.lockouts.unlockUser(target.name);
  return commandDone('ALTER USER');
}

export async function dropUser(cmd: Cmd<'DropUser'>, ctx: StatementContext): Promise<Execution> {
  const tx = writeTx(ctx);
  for (const n of cmd.names) {
    const u = tx.userByName(n.value);
    if (!u || !canSeeUser(ctx.actor, u)) {
      if (cmd.ifExists) {
        ctx.notice({ severity: 'NOTICE', code: '00000', message: `user "${n.value}" does not exist, skipping` });
        continue;
      }
      throw userMissing(n.value, n.position);
    }
    if (u.id === ctx.actor.id) {
      throw new PgError('object_in_use', 'current user cannot be dropped', { position: n.position });
    }
    if (u.id === ctx.session.sessionUserId) {
      throw new PgError('object_in_use', 'session user cannot be dropped', { position: n.position });
    }
    authorize(ctx.actor, { kind: 'dropUser', target: u, targetRole: effectiveOf(u, tx, ctx.now).role });
    const keys = tx.apiKeysOf('user', u.id);
    if (keys.length > 0 && !cmd.cascade) {
      throw new PgError('dependent_objects_still_exist', `cannot drop user "${u.name}" because it owns API keys`, {
        detail: `${u.name} owns ${keys.length} API key${keys.length === 1 ? '' : 's'}.`,
        hint: 'Drop the keys first, or use DROP USER ... CASCADE.',
        position: n.position,
      });
    }
    for (const k of keys) tx.delete('apiKeys', k.id);
    // Privileges and role memberships granted to the user go with it.
    for (const g of tx.grantsTo('user', u.id)) tx.delete('grants', g.id);
    tx.delete('users', u.id);
  }
  return commandDone('DROP USER');
}

export const USER_COLUMNS: Column[] = [
  col('name'),
  col('id', 'int8'),
  col('tenant'),
  col('role'),
  col('login', 'bool'),
  col('valid_until', 'timestamptz'),
  col('connection_limit', 'int4'),
  col('has_password', 'bool'),
  col('certificate_subject'),
  col('created_at', 'timestamptz'),
  col('updated_at', 'timestamptz'),
  col('created_by'),
];

const userRows = new WeakMap<User, { context: string; row: Row }>();
/** SHOW USERS as last shown to a user (the actor's row object: a changed actor is a new key). */
const shownTo = new WeakMap<User, { stamp: string; rows: readonly Row[] }>();

/** SHOW USERS: the users the session may see, in name order, streamed. Never a verifier. */
export function showUsers(ctx: StatementContext): Execution {
  const { view, actor } = ctx;
  const tz = ctx.session.settings.get('timezone');
  const ts = (ms: number | null) => (ms === null ? null : formatTimestamp(ms, tz));
  // What the rows depend on besides the actor: users, tenants' names, the time zone.
  const stamp = () => {
    const users = view.tables.users.version;
    const tenants = view.tables.tenants.version;
    return users === null || tenants === null ? null : `${users}:${tenants}:${tz}`;
  };
  function* rows(): Generator<Row> {
    for (const u of view.users()) {
      if (!canSeeUser(actor, u)) continue;
      const tenant = view.tenantById(u.tenantId)?.name ?? String(u.tenantId);
      yield memoRow(userRows, u, `${tz}\0${tenant}`, () => [
        u.name,
        String(u.id),
        tenant,
        u.role,
        bool(u.login),
        ts(u.validUntil),
        String(u.connectionLimit),
        bool(u.verifier !== null),
        u.certificateSubject,
        ts(u.createdAt),
        ts(u.updatedAt),
        u.createdBy,
      ]);
    }
  }
  return memoResult(shownTo, actor, stamp, { columns: USER_COLUMNS, tag: 'SHOW', withCount: false }, rows);
}

/** Types of `$n` in user statements, by the option they stand in. */
export function userParamTypes(cmd: AdminCommand): [number, number][] {
  if (cmd.type !== 'CreateUser' && cmd.type !== 'AlterUser') return [];
  const out: [number, number][] = [];
  for (const o of cmd.options) {
    if (o.kind === 'connectionLimit' && o.value.kind === 'param') out.push([o.value.index, TypeOid.int4]);
    if (o.kind === 'validUntil' && o.value.kind === 'param') out.push([o.value.index, TypeOid.timestamptz]);
  }
  return out;
}
