import type { PlaneDatabase } from './types.js';

/**
 * The one mapping from a portcullis database to names in the data plane.
 *
 * A portcullis database is identified by ids that never change (tenant id, database id);
 * its name can be renamed and a tenant's name reused, so no data-plane name is built from
 * names. From the ids:
 *
 * - `planeDatabaseName(db)` = `pcu_t<tenantId>_d<databaseId>`, e.g. `pcu_t1_d3`: the
 *   PostgreSQL database on an upstream server, and the directory of the PGlite instance
 *   (`<dataDir>/plane/pcu_t1_d3`) on the embedded plane;
 * - `planeDbKey(db)` = `t<tenantId>d<databaseId>`, e.g. `t1d3`: the short key that makes
 *   per-database role names unique, since roles are cluster-wide on an upstream server
 *   (`pcu_owner_t1d3`, ...).
 *
 * Both are lower-case ASCII letters, digits and `_` (no quoting needed anywhere), at most
 * 4 + 10 + 2 + 10 = 26 bytes for ids up to 2^31, well inside PostgreSQL's 63-byte limit.
 * They are reversible: `parsePlaneDatabaseName` gives the ids back, and the catalog gives
 * the tenant's and database's current names from the ids.
 */

const NAME = /^pcu_t(0|[1-9][0-9]*)_d(0|[1-9][0-9]*)$/;
/** A namespace: a letter, then letters and digits; 16 at most, so role names stay under 63 bytes. */
const NAMESPACE = /^[a-z][a-z0-9]{0,15}$/;

/** The namespace part of a name: `<namespace>_`, or nothing. */
function space(db: { namespace?: string }): string {
  if (db.namespace === undefined) return '';
  if (!NAMESPACE.test(db.namespace)) throw new Error(`data plane: a namespace is a lower-case letter and up to 15 letters or digits, got "${db.namespace}"`);
  return `${db.namespace}_`;
}
const KEY = /^t(0|[1-9][0-9]*)d(0|[1-9][0-9]*)$/;

function checkId(what: string, id: number): void {
  if (!Number.isSafeInteger(id) || id < 0) throw new Error(`data plane: ${what} id must be a non-negative integer, got ${id}`);
}

/**
 * The PostgreSQL database name of a portcullis database (see above); in a namespace,
 * `pcu_<namespace>_t<tenantId>_d<databaseId>`.
 */
export function planeDatabaseName(db: Pick<PlaneDatabase, 'tenantId' | 'databaseId' | 'namespace'>): string {
  checkId('tenant', db.tenantId);
  checkId('database', db.databaseId);
  return `pcu_${space(db)}t${db.tenantId}_d${db.databaseId}`;
}

/** The short per-database key for role names (see above); in a namespace, `<namespace>_t<tenantId>d<databaseId>`. */
export function planeDbKey(db: Pick<PlaneDatabase, 'tenantId' | 'databaseId' | 'namespace'>): string {
  checkId('tenant', db.tenantId);
  checkId('database', db.databaseId);
  return `${space(db)}t${db.tenantId}d${db.databaseId}`;
}

/** A LIKE pattern matching every database and role name made in `namespace` (`_` escaped). */
export function namespaceLike(namespace: string): string {
  return `pcu\\_${space({ namespace }).replaceAll('_', '\\_')}%`;
}

/** The ids behind a data-plane database name, or null when the name is not one of ours. */
export function parsePlaneDatabaseName(name: string): { tenantId: number; databaseId: number } | null {
  const m = NAME.exec(name);
  if (!m) return null;
  const tenantId = Number(m[1]);
  const databaseId = Number(m[2]);
  return Number.isSafeInteger(tenantId) && Number.isSafeInteger(databaseId) ? { tenantId, databaseId } : null;
}

/** The ids behind a dbKey, or null. */
export function parsePlaneDbKey(key: string): { tenantId: number; databaseId: number } | null {
  const m = KEY.exec(key);
  if (!m) return null;
  const tenantId = Number(m[1]);
  const databaseId = Number(m[2]);
  return Number.isSafeInteger(tenantId) && Number.isSafeInteger(databaseId) ? { tenantId, databaseId } : null;
}
