/**
 * The data-plane role names of one portcullis database. Roles are cluster-wide on an
 * upstream PostgreSQL while tables and policies are per database, so every role name
 * carries the database's key (`dbKey`, from the planes' name mapping): two databases, or
 * two tenants, on one upstream never share a role.
 *
 *   pcu_<dbKey>_owner        owns every table of the database (NOLOGIN)
 *   pcu_<dbKey>_p_<12 hex>   a privilege profile (see profile.ts)
 */
import { MAX_NAME_BYTES } from './quote.js';

/** The schema portcullis keeps its own objects in (the `$auth` store, `auth()`). */
export const PORTCULLIS_SCHEMA = 'portcullis';
/** Where principals' tables live: the only schema profiles are granted anything on. */
export const DATA_SCHEMA = 'public';

/** 12 hex digits of a profile hash + fixed parts must fit in 63 bytes. */
const MAX_DB_KEY = MAX_NAME_BYTES - 'pcu__p_'.length - 12;

/** A dbKey is lower-case ASCII letters, digits and `_`: it goes into role names unquoted-safe. */
export function checkDbKey(dbKey: string): string {
  if (!/^[a-z0-9_]+$/.test(dbKey) || dbKey.length > MAX_DB_KEY) {
    throw new Error(`data-plane database key "${dbKey}" must be 1 to ${MAX_DB_KEY} characters of [a-z0-9_]`);
  }
  return dbKey;
}

export const ownerRoleName = (dbKey: string): string => `pcu_${checkDbKey(dbKey)}_owner`;

export const profileRolePrefix = (dbKey: string): string => `pcu_${checkDbKey(dbKey)}_p_`;

export const profileRoleNameOf = (dbKey: string, hash12: string): string => `${profileRolePrefix(dbKey)}${hash12}`;

/** A LIKE pattern matching exactly this database's profile roles (`_` escaped). */
export const profileRoleLike = (dbKey: string): string => `${profileRolePrefix(dbKey).replaceAll('_', '\\_')}%`;
