import type { User } from '../catalog/model.js';
import { effectiveOf } from './effective.js';
import type { CatalogReader } from '../catalog/catalog.js';
import { formatTextArray } from './values.js';
import type { LoginMethod } from './credentials.js';

/** The `$auth.*` variables, in the order SHOW AUTH lists them; lists are text[] values, the rest text. */
export const AUTH_VARIABLES = [
  'id',
  'username',
  'role',
  'tenant_id',
  'org_id',
  'scopes',
  'databases',
  'roles',
  'email',
  'method',
] as const;
export type AuthVariable = (typeof AUTH_VARIABLES)[number];
export const LIST_VARIABLES: ReadonlySet<string> = new Set(['scopes', 'databases', 'roles']);

export const isAuthVariable = (s: string): s is AuthVariable => (AUTH_VARIABLES as readonly string[]).includes(s);

/** A session's `$auth.*` values; a variable the session does not have is null. */
export type AuthValues = Record<AuthVariable, string | string[] | null> & { claims: Record<string, string> };

/** For a password or API-key login: derived from the (possibly narrowed) user. */
export function passwordAuthValues(user: User, view: CatalogReader, method: LoginMethod, now: number): AuthValues {
  const e = effectiveOf(user, view, now);
  const databases = e.databases.map((d) => d.name);
  return {
    id: String(user.id),
    username: user.name,
    role: e.role,
    tenant_id: String(user.tenantId),
    org_id: String(user.tenantId),
    // Granted scopes (GRANT SCOPE); through an API key, the key's, clamped to the owner's.
    scopes: e.scopes,
    databases,
    roles: [e.role, ...e.roles.map((r) => r.name)],
    email: null,
    method,
    claims: {},
  };
}

export function authValueText(v: string | string[] | null): string | null {
  if (v === null) return null;
  return Array.isArray(v) ? formatTextArray(v) : v;
}
