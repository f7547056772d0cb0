/** Provisioning of the data plane: everything that runs inside PostgreSQL as portcullis's own identity (docs/data-plane.md). */
export { IdentityLostError } from './lock.js';
export { installSchema, exposedToPublic, superuserLockdownSql, LOCKDOWN_SQL, type InstallReport } from './schema.js';
export { profileFor, profileRoleName, profileCovers, canonicalProfile, profileJson, parseProfile, type Profile, type TablePrivilege } from './profile.js';
export { ensureProfileRole, grantStatements, type ProfileRoleOptions } from './grants.js';
export { identitySql, applyIdentity, storeAuthFor, clearAuth, authJson, type IdentityOptions } from './identity.js';
export { renderPolicy, installedPolicySql, type RenderedPolicy, type PgPolicy } from './policies.js';
export { predicateSql } from './predicate.js';
export { adoptNewObjects, type AdoptResult } from './adopt.js';
export { syncDatabase, type DesiredState, type SyncResult } from './sync.js';
export { ownerRoleName, checkDbKey, PORTCULLIS_SCHEMA, DATA_SCHEMA } from './names.js';
export { quoteIdent, quoteLiteral } from './quote.js';
