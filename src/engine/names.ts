import type { Name } from '../../grammar/index.js';
import type { CatalogReader } from '../catalog/catalog.js';
import { BUILTIN_ROLES } from '../catalog/model.js';
import { nameSkeleton } from '../catalog/names.js';
import { PgError } from '../errors/pg-error.js';
import type { StatementContext } from './statement-context.js';
import { canSeeDatabase, canSeeServiceAccount, canSeeUser } from './privileges.js';

/** PostgreSQL's NAMEDATALEN - 1: longer names are refused, not silently truncated. */
export const MAX_NAME = 63;

/** Names beginning with these are the login names of API keys (`pcu_<key id>`) and token logins (`jwt:<provider>`). */
const RESERVED_PREFIXES = ['pcu_', 'jwt:'];

/** Every new object name: not empty, at most 63 characters. */
export function checkObjectName(kind: string, n: Name): void {
  if (n.value === '') throw new PgError('syntax_error', `zero-length ${kind} name`, { position: n.position });
  if (n.value.length > MAX_NAME) {
    throw new PgError('name_too_long', `${kind} name "${n.value.slice(0, 20)}..." is too long`, {
      detail: `Names are at most ${MAX_NAME} characters.`,
      position: n.position,
    });
  }
}

/**
 * A login name (user, service account): also not one of the reserved prefixes, nor a name
 * that looks like one (`рcu_` with a Cyrillic р would read as an API key's login name in
 * SHOW USERS and the audit trail).
 */
export function checkLoginName(kind: string, n: Name): void {
  checkObjectName(kind, n);
  const prefix = RESERVED_PREFIXES.find((p) => n.value.toLowerCase().startsWith(p) || nameSkeleton(n.value).startsWith(nameSkeleton(p)));
  if (prefix) {
    throw new PgError('reserved_name', `${kind} name "${n.value}" is reserved`, {
      detail: `Names beginning with "${prefix}" are the login names of API keys and token logins.`,
      position: n.position,
    });
  }
}

/**
 * The name spaces where no two names may look alike (LOOKALIKE_KEYS in the catalog); `self` is the object
 * being renamed (its own old name does not count).
 */
export type NameSpace =
  /** Login names, across tenants, shared with service accounts; and the grantee names of its tenant, shared with roles. */
  | { kind: 'user'; tenantId: number; self?: number }
  /** Login names, across tenants, shared with users. */
  | { kind: 'service account'; self?: number }
  /** Grantee names of a tenant (shared with its users), and the built-in roles' names. */
  | { kind: 'role'; tenantId: number }
  | { kind: 'database'; tenantId: number }
  | { kind: 'tenant' }
  | { kind: 'OIDC provider' }
  | { kind: 'API key'; ownerKind: 'user' | 'service_account'; ownerId: number }
  | { kind: 'RLS policy'; databaseId: number; collection: string };

/**
 * The one check of a new or renamed object's name, after the statement's own checks for
 * an object of exactly that name (which keep their messages and IF NOT EXISTS):
 * - 22023 unless it is NFC, has no leading or trailing white space and holds no control,
 *   format or other invisible character;
 * - 42710 when another name of its name space looks alike (the same TR39 skeleton of the
 *   case-folded form): `user "аdmin" looks like existing user "admin"`.
 * Only new names are checked: a catalog that already holds two such names keeps them. A
 * restore (a statement with IMPORT, superuser only) brings names back as they were.
 */
export function checkNewName(n: Name, space: NameSpace, ctx: StatementContext): void {
  if (ctx.imports) return;
  checkNameText(space.kind, n);
  const clash = lookalike(n.value, space, ctx);
  if (!clash) return;
  const existing = clash.visible ? `existing ${clash.kind} "${printable(clash.name)}"` : `the name of an existing ${clash.kind}`;
  throw new PgError('duplicate_object', `${space.kind} "${n.value}" looks like ${existing}`, {
    detail:
      (clash.visible ? `"${n.value}" is ${spell(n.value)}; "${printable(clash.name)}" is ${spell(clash.name)}. ` : '') +
      `Names that look alike (the same Unicode TR39 confusable skeleton, ignoring case) cannot coexist ${space.kind === 'user' && clash.kind === 'role' ? WHERE.role : WHERE[space.kind]}.`,
    position: n.position,
  });
}

const WHERE: Record<NameSpace['kind'], string> = {
  user: 'among login names (users and service accounts)',
  'service account': 'among login names (users and service accounts)',
  role: "among a tenant's roles and users and the built-in roles",
  database: 'among the databases of a tenant',
  tenant: 'among tenants',
  'OIDC provider': 'among OIDC providers',
  'API key': 'among the API keys of one owner',
  'RLS policy': 'among the RLS policies of one collection',
};

/**
 * Characters no name may hold (no control or format characters): controls
 * (a newline or an escape sequence in SHOW output or a log line), format characters (a
 * zero-width joiner, a bidi override that reorders what follows), line and paragraph
 * separators, the other default-ignorable code points (no appearance at all), and code
 * points with no defined appearance to compare: surrogates, private use, unassigned.
 */
const FORBIDDEN = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}\p{Co}\p{Cn}\p{Default_Ignorable_Code_Point}]/u;
const SPACE = /^\p{White_Space}$/u;

/** 22023 for a name that is not NFC, has white space at either end or an invisible character. */
export function checkNameText(kind: string, n: Name): void {
  const chars = [...n.value];
  const bad = (message: string, detail: string, hint?: string) => new PgError('invalid_parameter_value', `${kind} name "${printable(n.value)}" ${message}`, { detail, hint, position: n.position });
  if (SPACE.test(chars[0] ?? '') || SPACE.test(chars.at(-1) ?? '')) {
    const end = SPACE.test(chars[0] ?? '') ? 'begins' : 'ends';
    throw bad(`${end} with white space`, `Names have no leading or trailing white space: "${printable(n.value)}" is ${spell(n.value)}.`, 'Remove the white space.');
  }
  const at = chars.findIndex((c) => FORBIDDEN.test(c));
  if (at >= 0) {
    const c = chars[at]!;
    const what = /\p{Cc}/u.test(c) ? 'a control character' : /\p{Cf}/u.test(c) ? 'a format character' : 'a character with no visible form';
    throw bad(`contains ${what} (${codePoint(c)}) at character ${at + 1}`, 'Names hold no control, format or other invisible characters, so that every name reads as what it is.');
  }
  const nfc = n.value.normalize('NFC');
  if (nfc !== n.value) {
    throw bad(
      'is not in Unicode normalization form NFC',
      `It is ${spell(n.value)}; in NFC it is ${spell(nfc)}. Names are kept as written, and are all NFC, so that one name is never stored two ways.`,
      `Write it composed: "${nfc}".`,
    );
  }
}

interface Clash {
  kind: string;
  name: string;
  /** Whether the actor may see it: one it may not see is not named. */
  visible: boolean;
}

/** An object of `space` whose name looks like `name`, from the look-alike indexes. */
function lookalike(name: string, space: NameSpace, ctx: StatementContext): Clash | null {
  const view: CatalogReader = ctx.view;
  const actor = ctx.actor;
  const users = () => view.lookalikes('users', { name });
  const accounts = () => view.lookalikes('serviceAccounts', { name });
  const found = <R extends { name: string }>(kind: string, r: R | undefined, visible: (r: R) => boolean = () => true): Clash | null =>
    r ? { kind, name: r.name, visible: visible(r) } : null;
  const user = (u: ReturnType<typeof users>[number] | undefined) => found('user', u, (x) => canSeeUser(actor, x));
  const account = (a: ReturnType<typeof accounts>[number] | undefined) => found('service account', a, (x) => canSeeServiceAccount(actor, x));
  switch (space.kind) {
    case 'user':
      return (
        user(users().find((u) => u.id !== space.self)) ??
        account(accounts()[0]) ??
        found('role', view.lookalikes('roles', { tenantId: space.tenantId, name })[0])
      );
    case 'service account':
      return user(users()[0]) ?? account(accounts().find((a) => a.id !== space.self));
    case 'role': {
      const skeleton = nameSkeleton(name);
      const builtin = BUILTIN_ROLES.find((b) => nameSkeleton(b) === skeleton);
      if (builtin) return { kind: 'built-in role', name: builtin, visible: true };
      return found('role', view.lookalikes('roles', { tenantId: space.tenantId, name })[0]) ?? user(users().find((u) => u.tenantId === space.tenantId));
    }
    case 'database':
      return found('database', view.lookalikes('databases', { tenantId: space.tenantId, name })[0], (d) => canSeeDatabase(actor, d, view, ctx.now));
    case 'tenant':
      return found('tenant', view.lookalikes('tenants', { name })[0]);
    case 'OIDC provider':
      return found('OIDC provider', view.lookalikes('oidcProviders', { name })[0]);
    case 'RLS policy':
      return found('RLS policy', view.lookalikes('rlsPolicies', { databaseId: space.databaseId, collection: space.collection, name })[0]);
    case 'API key': {
      // An owner's keys, from the owner index: a handful, compared one by one.
      const skeleton = nameSkeleton(name);
      return found('API key', view.apiKeysOf(space.ownerKind, space.ownerId).find((k) => nameSkeleton(k.name) === skeleton));
    }
  }
}

const codePoint = (c: string) => `U+${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;

/** A name character by character, so that two that look alike can be told apart: `U+0430 d m i n`. */
function spell(name: string): string {
  return [...name].map((c) => (/^[\x21-\x7e]$/.test(c) ? c : codePoint(c))).join(' ');
}

/** A name as an error message may show it: an invisible character of a name from before the rules as <U+200D>. */
function printable(name: string): string {
  return [...name].map((c) => (FORBIDDEN.test(c) ? `<${codePoint(c)}>` : c)).join('');
}
