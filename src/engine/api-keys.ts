import type { ApiKeyOption, KeyExpiry, Name } from '../../grammar/index.js';
import { newKey, newKeyId } from '../auth/apikey.js';
import { formatVerifier, makeVerifier, parseVerifier, SALT_LEN } from '../auth/verifier.js';
import { roleRank, type ApiKey, type BuiltinRole, type Database, type ServiceAccount, type User } from '../catalog/model.js';
import { authorizeServiceAccount, databasesOf } from './service-accounts.js';
import { builtinRoleNamed, tokenHasNoUser } from './users.js';
import { PgError } from '../errors/pg-error.js';
import type { Execution } from '../wire/handler.js';
import { checkNewName, checkObjectName } from './names.js';
import { type StatementContext, writeTx, type Cmd } from './statement-context.js';
import { effectiveOf, scopesOf } from './effective.js';
import { authorize, canListKeysOf, canSeeServiceAccount, canSeeUser, limitKey } from './privileges.js';
import { col, commandDone, rowsResult } from './results.js';
import { formatTextArray, formatTimestamp, parseInterval, parseTimestamp, valueText } from './values.js';
import { restoringToken } from './issuer-restore.js';

/** The full key is shown exactly once, as it is made (created or rotated), with this notice. */
const SHOWN_ONCE = 'store this key now: it cannot be shown again';
export const KEY_RESULT_COLUMNS = [col('name'), col('key_id'), col('key'), col('expires_at', 'timestamptz')];


/** A key's owner: a user or a service account. */
export type Owner = { kind: 'user'; user: User; name: string; id: number; tenantId: number } | { kind: 'service_account'; sa: ServiceAccount; name: string; id: number; tenantId: number };

export const ownerWord = (o: Owner) => (o.kind === 'user' ? 'user' : 'service account');

export function resolveOwner(owner: Name | null, ctx: StatementContext): Owner {
  const asUser = (user: User): Owner => ({ kind: 'user', user, name: user.name, id: user.id, tenantId: user.tenantId });
  const asAccount = (sa: ServiceAccount): Owner => ({ kind: 'service_account', sa, name: sa.name, id: sa.id, tenantId: sa.tenantId });
  if (owner === null) {
    if (ctx.actor.id < 0) throw tokenHasNoUser();
    // Through one of its keys, a service account is the session's principal (a stand-in).
    const self = ctx.actor.limits?.exact ? ctx.view.serviceAccountById(ctx.actor.id) : undefined;
    return self ? asAccount(self) : asUser(ctx.actor);
  }
  const u = ctx.view.userByName(owner.value);
  // Oneself by name is oneself as the session acts: through a key, with the key's limits.
  if (u && u.id === ctx.actor.id && !ctx.actor.limits?.exact) return asUser(ctx.actor);
  if (u && canSeeUser(ctx.actor, u)) return asUser(u);
  const sa = ctx.view.serviceAccountByName(owner.value);
  if (sa && canSeeServiceAccount(ctx.actor, sa)) return asAccount(sa);
  throw new PgError('undefined_object', `user or service account "${owner.value}" does not exist`, { position: owner.position });
}

export function authorizeOwner(owner: Owner, statement: string, ctx: StatementContext): void {
  if (owner.kind === 'user') authorize(ctx.actor, { kind: 'manageApiKey', owner: owner.user, ownerRole: effectiveOf(owner.user, ctx.view, ctx.now).role, statement });
  else authorizeServiceAccount(owner.sa, statement, ctx);
}

/** What a key reaches, as far as a session acting through another key is concerned. */
interface Reach {
  name: string;
  role: BuiltinRole | null;
  databaseIds: number[] | null;
  scopes: string[];
}

/**
 * A session acting through an API key (its actor carries the key's limits) manages keys
 * only within that key's reach (a key narrows its owner, never widens it).
 * Without this a ROLE readonly key could mint a key without ROLE — its owner's full role —
 * or rotate a wider key of its owner and read the new secret. A key without ROLE or WITH
 * DATABASES reaches all its owner's, so it is wider than any key that has them.
 */
export function withinSession(k: Reach, statement: string, ctx: StatementContext): void {
  const cap = ctx.actor.limits;
  if (!cap) return;
  const beyond: string[] = [];
  if (cap.role !== 'superuser' && (k.role === null || roleRank(k.role) > roleRank(cap.role))) beyond.push(`role (${k.role ?? "its owner's"}, this session's key: ${cap.role})`);
  const ids = cap.databaseIds;
  if (ids && (k.databaseIds === null || k.databaseIds.some((id) => !ids.includes(id)))) beyond.push('databases');
  const scope = k.scopes.find((x) => !cap.scopes.includes(x));
  if (scope !== undefined) beyond.push(`scope "${scope}"`);
  if (beyond.length === 0) return;
  throw new PgError('insufficient_privilege', `permission denied for ${statement}: API key "${k.name}" would reach beyond the API key of this session`, {
    detail: `It goes beyond in ${beyond.join(', ')}; a session acting through an API key manages only keys no wider than that key.`,
    hint: 'Log in with a password to manage wider keys.',
  });
}

function findKey(name: Name, owner: Owner, ctx: StatementContext): ApiKey | undefined {
  return ctx.view.apiKeyByName(owner.kind, owner.id, name.value);
}

const missingKey = (name: Name, owner: Owner) =>
  new PgError('undefined_object', `API key "${name.value}" does not exist for ${ownerWord(owner)} "${owner.name}"`, { position: name.position });

export const keyRole = (role: Name): BuiltinRole => builtinRoleNamed(role, 'A key');

export function keyDatabases(names: Name[], owner: Owner, ctx: StatementContext): Database[] {
  return names.map((n) => {
    const db = ctx.view.databaseByName(owner.tenantId, n.value);
    if (!db) throw new PgError('undefined_object', `database "${n.value}" does not exist`, { position: n.position });
    return db;
  });
}

/**
 * When a key stops working. An expiry must be in the future — a key born expired is a
 * mistake (a wrong year, a time zone), refused rather than minted dead. A restore (IMPORT)
 * brings keys back as they were, expired ones included.
 */
export function expiryOf(e: KeyExpiry, ctx: StatementContext): number | null {
  if (e.kind === 'never') return null;
  const text = valueText(e.value, ctx.params);
  if (text === null) return null;
  if (e.kind === 'at') {
    const at = parseTimestamp(text, ctx.session.settings.get('timezone'));
    if (at !== null && at <= ctx.now && !restoring(ctx)) {
      throw new PgError('invalid_parameter_value', `EXPIRES AT must be in the future, got "${text}"`, {
        position: e.value.position,
        hint: 'Drop the key to end its use now; EXPIRES NULL removes an expiry.',
      });
    }
    return at;
  }
  const ms = parseInterval(text);
  if (ms <= 0) throw new PgError('invalid_parameter_value', `EXPIRES IN must be positive, got "${text}"`, { position: e.value.position });
  return ctx.now + ms;
}

/** A restore of a dump (IMPORT of the key's hashes): the key comes back exactly as it was. */
const restoring = (ctx: StatementContext) => ctx.imports?.has('hash') === true || restoringToken(ctx);

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

export function checkLimits(owner: Owner, role: BuiltinRole | null, dbs: Database[], ctx: StatementContext, scopes: string[] = []): void {
  if (owner.kind === 'service_account') {
    limitKey(owner, owner.sa.role, role, dbs, databasesOf(owner.sa, ctx.view), scopes, scopesOf(ctx.view, 'service_account', owner.id, ctx.now));
    return;
  }
  // The owner as it acts now: through an API key, the key's scopes are what it holds.
  const e = effectiveOf(owner.user, ctx.view, ctx.now);
  limitKey(owner, e.role, role, dbs, e.databases, scopes, e.scopes);
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
  const opts = credentialOptions(cmd.options, owner, ctx);
  let { role, dbs } = opts;
  const expiresAt = opts.expiresAt;
  const scopes = opts.scopes ?? [];
  // A restore (IMPORT key_id, hash, verifier) brings the secret's hashes: nothing to mint or
  // show, and scopes as they were (a scope revoked since is clamped at use, not at restore).
  const restore = restoring(ctx);
  const cap = ctx.actor.limits;
  if (cap && !restore) {
    // Minted through a key: what is left out defaults to that key's reach, not the owner's.
    if (role === null && cap.role !== 'superuser') role = cap.role;
    if (dbs === null && cap.databaseIds) dbs = cap.databaseIds.map((id) => ctx.view.databaseById(id)).filter((d): d is Database => d !== undefined);
    withinSession({ name: cmd.name.value, role, databaseIds: dbs?.map((d) => d.id) ?? null, scopes }, 'CREATE API KEY', ctx);
  }
  checkLimits(owner, role, dbs ?? [], ctx, restore ? [] : scopes);
  const keyId = restore ? '' : newKeyId(ctx.engine.random);
  const { key, secret } = restore ? { key: '', secret: { hash: '', verifier: '' } } : await mint(keyId, ctx);
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
  if (restore) return commandDone('CREATE API KEY');
  const tz = ctx.session.settings.get('timezone');
  return shownOnce([cmd.name.value, keyId, key, expiresAt === null ? null : formatTimestamp(expiresAt, tz)], ctx, 'CREATE API KEY');
}

export async function alterApiKey(cmd: Cmd<'AlterApiKey'>, ctx: StatementContext): Promise<Execution> {
  const tx = writeTx(ctx);
  const owner = resolveOwner(cmd.owner, ctx);
  authorizeOwner(owner, 'ALTER API KEY', ctx);
  const k = findKey(cmd.name, owner, ctx);
  if (!k) throw missingKey(cmd.name, owner);
  withinSession(k, 'ALTER API KEY', ctx);
  const c = cmd.change;
  switch (c.kind) {
    case 'rotate': {
      const text = c.grace ? valueText(c.grace, ctx.params) : null;
      const grace = text === null ? 0 : parseInterval(text);
      if (grace < 0) throw new PgError('invalid_parameter_value', `GRACE must not be negative, got "${text}"`);
      const { key, secret } = await mint(k.keyId, ctx, grace > 0 ? k.secret.verifier : undefined);
      // The old secret keeps working for the grace period (zero-downtime rotation).
      // Uses so far were of the old secret: its last use goes with it; the new one starts unused.
      const previous = grace > 0 ? { ...k.secret, validUntil: ctx.now + grace, lastUsedAt: ctx.engine.lastUsed(k) } : null;
      tx.update('apiKeys', { ...k, secret, previous, rotatedAt: ctx.now, lastUsedAt: null });
      const tz = ctx.session.settings.get('timezone');
      return shownOnce([k.name, k.keyId, key, k.expiresAt === null ? null : formatTimestamp(k.expiresAt, tz)], ctx, 'ALTER API KEY');
    }
    case 'databases': {
      const dbs = keyDatabases(c.names, owner, ctx);
      withinSession({ ...k, databaseIds: dbs.map((d) => d.id) }, 'ALTER API KEY', ctx);
      checkLimits(owner, k.role, dbs, ctx);
      tx.update('apiKeys', { ...k, databaseIds: dbs.map((d) => d.id) });
      break;
    }
    case 'role': {
      const role = keyRole(c.role);
      withinSession({ ...k, role }, 'ALTER API KEY', ctx);
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
  withinSession(k, 'DROP API KEY', ctx);
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

/** The options an API key and a minted token share (ROLE, WITH DATABASES, SCOPES, EXPIRES), each at most once. */
export function credentialOptions(
  options: readonly ApiKeyOption[],
  owner: Parameters<typeof keyDatabases>[1],
  ctx: StatementContext,
): { role: BuiltinRole | null; dbs: Database[] | null; scopes: string[] | null; expiresAt: number | null } {
  let role: BuiltinRole | null = null;
  let dbs: Database[] | null = null;
  let scopes: string[] | null = null;
  let expiresAt: number | null = null;
  const seen = new Set<string>();
  for (const o of options) {
    if (seen.has(o.kind)) throw new PgError('syntax_error', 'conflicting or redundant options');
    seen.add(o.kind);
    if (o.kind === 'role') role = keyRole(o.role);
    else if (o.kind === 'databases') dbs = keyDatabases(o.names, owner, ctx);
    else if (o.kind === 'scopes') scopes = [...new Set(o.scopes.map((v) => valueText(v, ctx.params) ?? ''))].filter((x) => x !== '');
    else expiresAt = expiryOf(o.expiry, ctx);
  }
  return { role, dbs, scopes, expiresAt };
}
