import type { Name } from '../../grammar/index.js';
import { PgError } from '../errors/pg-error.js';

/** PostgreSQL's NAMEDATALEN - 1: longer names are refused, not silently truncated. */
export const MAX_NAME = 63;

/** Names beginning with these are the login names of API keys and JWT logins (SPEC §9). */
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

/** A login name (user, service account): also not one of the reserved prefixes. */
export function checkLoginName(kind: string, n: Name): void {
  checkObjectName(kind, n);
  const prefix = RESERVED_PREFIXES.find((p) => n.value.toLowerCase().startsWith(p));
  if (prefix) {
    throw new PgError('reserved_name', `${kind} name "${n.value}" is reserved`, {
      detail: `Names beginning with "${prefix}" are the login names of API keys and token logins.`,
      position: n.position,
    });
  }
}
