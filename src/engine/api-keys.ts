import type { KeyExpiry, Name } from '../../grammar/index.js';
import { newKey, newKeyId } from '../auth/apikey.js';
import { formatVerifier, makeVerifier, parseVerifier, SALT_LEN } from '../auth/verifier.js';
import { type ApiKey, type BuiltinRole, type Database, type ServiceAccount, type User } from '../catalog/model.js';
import { authorizeServiceAccount, databasesOf } from './service-accounts.js';
import { builtinRoleNamed, tokenHasNoUser } from './users.js';
import { PgError } from '../errors/pg-error.js';
import type { Execution } from '../wire/handler.js';
import { checkNewName, checkObjectName } from './names.js';
import { valueText, type StatementContext, writeTx, type Cmd } from './dispatch.js';
import { effectiveOf } from './effective.js';
import { authorize, canListKeysOf, canSeeServiceAccount, canSeeUser, limitKey } from './privileges.js';
import { col, commandDone, rowsResult } from './results.js';
import { formatTextArray, formatTimestamp, parseInterval, parseTimestamp } from './values.js';

/** SPEC §3: the full key is shown exactly once, with this notice. */
const SHOWN_ONCE = 'store this key now: it cannot be shown again';
export const KEY_RESULT_COLUMNS = [col('name'), col('key_id'), col('key'), col('expires_at', 'timestamptz')];


/** A key's owner: a user or a service account (SPEC §2). */
type Owner = { kind: 'user'; user: User; name: string; id: number; tenantId: number } | { kind: 'service_account'; sa: ServiceAccount; name: string; id: number; tenantId: number };

const ownerWord = (o: Owner) => (o.kind === 'user' ? 'user' : 'service account');

function resolveOwner(owner: Name | null, ctx: StatementContext): Owner {
  const asUser = (user: User): Owner => ({ kind: 'user', user, name: user.name, id: user.id, tenantId: user.tenantId });
  if (owner === null) {
    if (ctx.actor.id < 0) throw tokenHasNoUser();
    return asUser(ctx.actor);
  }
  const u = ctx.view.userByName(owner.value);
  if (u && canSeeUser(ctx.actor, u)) return asUser(u);
  const sa = ctx.view.serviceAccountByName(owner.value);
  if (sa && canSeeServiceAccount(ctx.actor, sa)) {
    return { kind: 'service_account', sa, name: sa.name, id: sa.id, tenantId: sa.tenantId };
  }
  throw new PgError('undefined_object', `user or service account "${owner.value}" does not exist`, { position: owner.position });
}

function authorizeOwner(owner: Owner, statement: string, ctx: StatementContext): void {
  if (owner.kind === 'user') authorize(ctx.actor, { kind: 'manageApiKey', owner: owner.user, statement });
  else authorizeServiceAccount(owner.sa, statement, ctx);
}

function findKey(name: Name, owner: Owner, ctx: StatementContext): ApiKey | undefined {
  return ctx.view.apiKeyByName(owner.kind, owner.id, name.value);
}

const missingKey = (name: Name, owner: Owner) =>
  new PgError('undefined_object', `API key "${name.value}" does not exist for ${ownerWord(owner)} "${owner.name}"`, { position: name.position });

const keyRole = (role: Name): BuiltinRole => builtinRoleNamed(role, 'A key');

function keyDatabases(names: Name[], owner: Owner, ctx: StatementContext): Database[] {
  return names.map((n) => {
    const db = ctx.view.databaseByName(owner.tenantId, n.value);
    if (!db) throw new PgError('undefined_object', `database "${n.value}" does not exist`, { position: n.position });
    return db;
  });
}

function expiryOf(e: KeyExpiry, ctx: StatementContext): number | null {
  if (e.kind === 'never') return null;
  const text = valueText(e.value, ctx.params);
  if (text === null) return null;
  if (e.kind === 'at') return parseTimestamp(text, ctx.session.settings.get('timezone'));
  const ms = parseInterval(text);
  if (ms <= 0) throw new PgError('invalid_parameter_value', `EXPIRES IN must be positive, got "${text}"`, { position: e.value.position });
  return ctx.now + ms;
}

/**
 * A new secret: the key (returned once), its hash, and a SCRAM verifier for pgwire logins.
 * `like`: a rotation with a grace period keeps the old verifier's salt and iterations, so
 * that one SCRAM exchange (one salt sent to the client) can check the proof against both
 * the new and the old secret while both are valid.
 */
async function mint(keyId: string, ctx: StatementContext, like?: string) {
  const k = newKey(keyId, ctx.engine.random);
  const old = like ? parseVerifier(like) : null;
  const iterations = old?.iterations ?? Number(ctx.session.settings.get('scram_iterations'));
  const verifier = formatVerifier(await makeVerifier(k.key, iterations, old?.salt ?? ctx.engine.random(SALT_LEN)));
  return { key: k.key, secret: { hash: k.hash, verifier } };
}

function shownOnce(row: (string | null)[], ctx: StatementContext, tag: string): Execution {
  ctx.notice({ severity: 'NOTICE', code: '00000', message: SHOWN_ONCE });
  return rowsResult(KEY_RESULT_COLUMNS, [row][Symbol.iterator](), tag, false);
}

function checkLimits(owner: Owner, role: BuiltinRole | null, dbs: Database[], ctx: StatementContext): void {
  if (owner.kind === 'service_account') {
    limitKey(owner, owner.sa.role, role, dbs, databasesOf(owner.sa, ctx.view));
    return;
  }
  const e = effectiveOf(owner.user, ctx.view, ctx.now);
  limitKey(owner, e.role, role, dbs, e.databases);
}

export async function createApiKey(cmd: Cmd<'CreateApiKey'>, ctx: StatementContext): Promise<Execution> {
  const tx = writeTx(ctx);
  const owner = resolveOwner(cmd.owner, ctx);
  authorizeOwner(owner, 'CREATE API KEY', ctx);
  checkObjectName('API key', cmd.name);
  if (findKey(cmd.name, owner, ctx)) {
    if (cmd.ifNotExists) {
      ctx.notice({ severity: 'NOTICE', code: '42710', message: `API key "${cmd.name.value}" already exists for ${ownerWord(owner)} "${owner.name}", skipping` });
      return commandDone('CREATE API KEY');
    }
    throw new PgError('duplicate_object', `API key "${cmd.name.value}" already exists for ${ownerWord(owner)} "${owner.name}"`, { position: cmd.name.position });
  }
  checkNewName(cmd.name, { kind: 'API key', ownerKind: owner.kind, ownerId: owner.id }, ctx);
  let role: BuiltinRole | null = null;
  let dbs: Database[] | null = null;
  let scopes: string[] = [];
  let expiresAt: number | null = null;
  const seen = new Set<string>();
  for (const o of cmd.options) {
    if (seen.has(o.kind)) throw new PgError('syntax_error', 'conflicting or redundant options');
    seen.add(o.kind);
    if (o.kind === 'role') role = keyRole(o.role);
    else if (o.kind === 'databases') dbs = keyDatabases(o.names, owner, ctx);
    else if (o.kind === 'scopes') scopes = [...new Set(o.scopes.map((v) => valueText(v, ctx.params) ?? ''))].filter((x) => x !== '');
    else expiresAt = expiryOf(o.expiry, ctx);
  }
  checkLimits(owner, role, dbs ?? [], ctx);
  // A restore (IMPORT key_id, hash, verifier) brings the secret's hashes: nothing to mint or show.
  const restoring = ctx.imports?.has('hash') === true;
  const keyId = restoring ? '' : newKeyId(ctx.engine.random);
  const { key, secret } = restoring ? { key: '', secret: { hash: '', verifier: '' } } : await mint(keyId, ctx);
  tx.insert('apiKeys', {
    id: tx.allocateId(),
    tenantId: owner.tenantId,
    ownerKind: owner.kind,
    ownerId: owner.id,
    name: cmd.name.value,
    keyId,
    secret,
    previous: null,
    role,
    databaseIds: dbs ? dbs.map((d) => d.id) : null,
    scopes,
    expiresAt,
    createdAt: ctx.now,
    createdBy: ctx.actor.name,
    rotatedAt: null,
    lastUsedAt: null,
  });
  if (restoring) return commandDone('CREATE API KEY');
  const tz = ctx.session.settings.get('timezone');
  return shownOnce([cmd.name.value, keyId, key, expiresAt === null ? null : formatTimestamp(expiresAt, tz)], ctx, 'CREATE API KEY');
}

export async function alterApiKey(cmd: Cmd<'AlterApiKey'>, ctx: StatementContext): Promise<Execution> {
  const tx = writeTx(ctx);
  const owner = resolveOwner(cmd.owner, ctx);
  authorizeOwner(owner, 'ALTER API KEY', ctx);
  const k = findKey(cmd.name, owner, ctx);
  if (!k) throw missingKey(cmd.name, owner);
  const c = cmd.change;
  switch (c.kind) {
    case 'rotate': {
      const text = c.grace ? valueText(c.grace, ctx.params) : null;
      const grace = text === null ? 0 : parseInterval(text);
      if (grace < 0) throw new PgError('invalid_parameter_value', `GRACE must not be negative, got "${text}"`);
      const { key, secret } = await mint(k.keyId, ctx, grace > 0 ? k.secret.verifier : undefined);
      // SPEC §9: the old secret keeps working for the grace period (zero-downtime rotation).
      // Uses so far were of the old secret: its last use goes with it; the new one starts unused.
      const previous = grace > 0 ? { ...k.secret, validUntil: ctx.now + grace, lastUsedAt: ctx.engine.lastUsed(k) } : null;
      tx.update('apiKeys', { ...k, secret, previous, rotatedAt: ctx.now, lastUsedAt: null });
      const tz = ctx.session.settings.get('timezone');
      return shownOnce([k.name, k.keyId, key, k.expiresAt === null ? null : formatTimestamp(k.expiresAt, tz)], ctx, 'ALTER API KEY');
    }
    case 'databases': {
      const dbs = keyDatabases(c.names, owner, ctx);
      checkLimits(owner, k.role, dbs, ctx);
      tx.update('apiKeys', { ...k, databaseIds: dbs.map((d) => d.id) });
      break;
    }
    case 'role': {
      const role = keyRole(c.role);
      checkLimits(owner, role, [], ctx);
      tx.update('apiKeys', { ...k, role });
      break;
    }
    case 'expires':
      tx.update('apiKeys', { ...k, expiresAt: expiryOf(c.expiry, ctx) });
      break;
  }
  return commandDone('ALTER API KEY');
}

export async function dropApiKey(cmd: Cmd<'DropApiKey'>, ctx: StatementContext): Promise<Execution> {
  const tx = writeTx(ctx);
  const owner = resolveOwner(cmd.owner, ctx);
  authorizeOwner(owner, 'DROP API KEY', ctx);
  const k = findKey(cmd.name, owner, ctx);
  if (!k) {
    if (cmd.ifExists) {
      ctx.notice({ severity: 'NOTICE', code: '00000', message: `API key "${cmd.name.value}" does not exist for ${ownerWord(owner)} "${owner.name}", skipping` });
      return commandDone('DROP API KEY');
    }
    throw missingKey(cmd.name, owner);
  }
  tx.delete('apiKeys', k.id);
  return commandDone('DROP API KEY');
}

export const API_KEY_COLUMNS = [
  col('name'),
  col('owner'),
  col('owner_kind'),
  col('key_id'),
  col('role'),
  col('databases', 'textArray'),
  col('scopes', 'textArray'),
  col('expires_at', 'timestamptz'),
  col('created_at', 'timestamptz'),
  col('created_by'),
  col('rotated_at', 'timestamptz'),
  col('previous_valid_until', 'timestamptz'),
  col('last_used_at', 'timestamptz'),
  col('previous_last_used_at', 'timestamptz'),
];

/** SHOW API KEYS [FOR owner]: never a key, a hash or a verifier. */
export function showApiKeys(cmd: Cmd<'ShowApiKeys'>, ctx: StatementContext): Execution {
  const { view, actor } = ctx;
  const only = cmd.owner ? resolveOwner(cmd.owner, ctx) : null;
  const tz = ctx.session.settings.get('timezone');
  const ts = (ms: number | null) => (ms === null ? null : formatTimestamp(ms, tz));
  function* rows(): Generator<(string | null)[]> {
    for (const k of view.apiKeys()) {
      if (only && (k.ownerKind !== only.kind || k.ownerId !== only.id)) continue;
      let ownerName: string;
      if (k.ownerKind === 'user') {
        const user = view.userById(k.ownerId);
        if (!user || !canListKeysOf(actor, { kind: 'user', user })) continue;
        ownerName = user.name;
      } else {
        const sa = view.serviceAccountById(k.ownerId);
        if (!sa || !canListKeysOf(actor, { kind: 'service_account', sa })) continue;
        ownerName = sa.name;
      }
      yield [
        k.name,
        ownerName,
        k.ownerKind === 'user' ? 'user' : 'service account',
        k.keyId,
        k.role,
        k.databaseIds === null ? null : formatTextArray(k.databaseIds.map((id) => view.databaseById(id)?.name ?? `#${id}`)),
        formatTextArray(k.scopes),
        ts(k.expiresAt),
        ts(k.createdAt),
        k.createdBy,
        ts(k.rotatedAt),
        k.previous && k.previous.validUntil > ctx.now ? ts(k.previous.validUntil) : null,
        ts(ctx.engine.lastUsed(k)),
        k.previous && k.previous.validUntil > ctx.now ? ts(ctx.engine.lastUsed(k, true)) : null,
      ];
    }
  }
  return rowsResult(API_KEY_COLUMNS, rows(), 'SHOW', false);
}
