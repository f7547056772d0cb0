import type { AdminCommand, Name } from '../../grammar/index.js';
import type { Column, Execution } from '../wire/handler.js';
import type { StatementContext } from './statement-context.js';
import { IMPORT_CREATED, IMPORT_ID, type ImportRules } from './imports.js';
import { SIGNING_KEY_IMPORTS, TOKEN_IMPORTS } from './issuer-restore.js';
import {
  changedDatabases,
  collectionDatabases,
  grantTargetDatabases,
  keyOptionDatabases,
  listedDatabases,
  noDatabases,
  theDatabase,
} from './statement-databases.js';
import {
  grantObject,
  granteeObject,
  keyObject,
  namesObject,
  noObject,
  objectName,
  optionalName,
  policyObject,
  scopeObject,
  sessionAuthorizationObject,
  userRefObject,
} from './audit-entries.js';
import { DUMP_COLUMNS, dumpCatalog } from './dump.js';
import { selectColumns, runSelect, selectParamTypes } from './select.js';
import { runSetting, settingColumns } from './settings-statements.js';
import { authColumns, runShowAuth } from './show-auth.js';
import { createDatabase, createTenant, DATABASE_COLUMNS, dropDatabase, dropTenant, showDatabases, showTenants, TENANT_COLUMNS } from './tenants.js';
import { createRole, dropRole, grant, GRANT_COLUMNS, grantScope, PERMISSION_COLUMNS, revoke, revokeScope, ROLE_COLUMNS, showGrants, showPermissions, showRoles } from './grants.js';
import { setSessionAuthorization, setSessionAuthorizationApiKey, setSessionAuthorizationJwt } from './session-authorization.js';
import { setTenant } from './tenant-scope.js';
import { alterApiKey, API_KEY_COLUMNS, createApiKey, dropApiKey, KEY_RESULT_COLUMNS, showApiKeys } from './api-keys.js';
import { alterServiceAccount, createServiceAccount, dropServiceAccount, SERVICE_ACCOUNT_COLUMNS, showServiceAccounts } from './service-accounts.js';
import { alterOidcProvider, createOidcProvider, dropOidcProvider, OIDC_COLUMNS, showOidcProviders } from './oidc-providers.js';
import { createRlsPolicy, dropRlsPolicy, EXPLAIN_COLUMNS, explainRls, RLS_COLUMNS, showRlsPolicies } from './rls.js';
import { AUDIT_COLUMNS, LOCKOUT_COLUMNS, showAuditLog, showLockouts } from './defences.js';
import { POOL_COLUMNS, showPools } from './pools.js';
import { closeCursor, deallocate, discard, listen, unlisten } from './housekeeping.js';
import { alterTokenIssuer, createToken, ISSUER_COLUMNS, revokeToken, revokeTokens, showTokenIssuer, showTokens, TOKEN_RESULT_COLUMNS, TOKENS_COLUMNS } from './issuer-statements.js';
import { alterUser, createUser, dropUser, renameUser, showUsers, unlockUser, USER_COLUMNS, userParamTypes } from './users.js';

/**
 * The statement table: for each statement type of the grammar (AdminCommand), every fact
 * the engine reads about it, in one row, as PostgreSQL's cmdtaglist.h keeps a command's
 * facts. The table's type is a mapped type over AdminCommand['type'], so a statement
 * added to the grammar does not compile until its row gives each fact; a fact a statement
 * does not have is said so (`noDatabases`, `noObject`, `noParams`, `noColumns`,
 * `imports: null`), never left to a `default:` branch. dispatch.ts reads it.
 */

export type StatementType = AdminCommand['type'];
/** Each statement type's AST node, by type (the correlated form TypeScript needs to call a row's functions). */
export type CommandOf = { [K in StatementType]: Extract<AdminCommand, { type: K }> };
/** A parameter type a `$n` takes from where it stands: [n, type oid]. */
export type ParamHint = [index: number, oid: number];

export interface StatementSpec<K extends StatementType> {
  /**
   * It writes the catalog: the session runs it in a transaction (an implicit one outside a
   * block), and an API key's or role's write privilege decides it.
   */
  write: boolean;
  /** Runs it. */
  execute: (cmd: CommandOf[K], ctx: StatementContext) => Execution | Promise<Execution>;
  /** Its result columns, known before it runs (Describe); null: it returns no rows. */
  columns: (cmd: CommandOf[K]) => Column[] | null;
  /** Parameter types inferred from where its `$n` stand; the others are text. */
  params: (cmd: CommandOf[K]) => ParamHint[];
  /**
   * The databases it names: an API key that does not reach one of them is refused before
   * the statement runs (DATABASE_NOT_AUTHORIZED, SPEC §6).
   */
  databases: (cmd: CommandOf[K]) => Name[];
  /** What its audit record names as its object (never a value: values may be secrets). */
  object: (cmd: CommandOf[K]) => string;
  /** The IMPORT keys it takes when restoring a dump (null: it takes no IMPORT). */
  imports: ImportRules | null;
}

/** The statement has no result columns (a command tag only). */
const noColumns = (): null => null;
/** No `$n` of the statement has a type other than text. */
const noParams = (): ParamHint[] => [];

const statementColumns = (columns: Column[]) => (): Column[] => columns;

export const STATEMENTS: { readonly [K in StatementType]: StatementSpec<K> } = {
  // ---- users
  CreateUser: {
    write: true,
    execute: createUser,
    columns: noColumns,
    params: userParamTypes,
    databases: noDatabases,
    object: objectName,
    imports: { users: { ...IMPORT_ID, ...IMPORT_CREATED, updated_at: ['updatedAt', 'timestamp'] } },
  },
  AlterUser: {
    write: true,
    execute: alterUser,
    columns: noColumns,
    params: userParamTypes,
    databases: noDatabases,
    object: userRefObject,
    imports: { users: { ...IMPORT_CREATED, updated_at: ['updatedAt', 'timestamp'] } },
  },
  RenameUser: { write: true, execute: renameUser, columns: noColumns, params: noParams, databases: noDatabases, object: userRefObject, imports: null },
  UnlockUser: { write: true, execute: unlockUser, columns: noColumns, params: noParams, databases: noDatabases, object: userRefObject, imports: null },
  DropUser: { write: true, execute: dropUser, columns: noColumns, params: noParams, databases: noDatabases, object: namesObject, imports: null },
  ShowUsers: { write: false, execute: (_, ctx) => showUsers(ctx), columns: statementColumns(USER_COLUMNS), params: noParams, databases: noDatabases, object: noObject, imports: null },

  // ---- tenants and databases
  CreateTenant: {
    write: true,
    execute: createTenant,
    columns: noColumns,
    params: noParams,
    databases: noDatabases,
    object: objectName,
    // The tenant's own id is CREATE TENANT's ID clause (its default database refers to it).
    imports: {
      tenants: { created_at: ['createdAt', 'timestamp'] },
      databases: { default_database_id: ['id', 'id'], created_at: ['createdAt', 'timestamp'] },
    },
  },
  DropTenant: { write: true, execute: dropTenant, columns: noColumns, params: noParams, databases: noDatabases, object: objectName, imports: null },
  ShowTenants: { write: false, execute: (_, ctx) => showTenants(ctx), columns: statementColumns(TENANT_COLUMNS), params: noParams, databases: noDatabases, object: noObject, imports: null },
  CreateDatabase: {
    write: true,
    execute: createDatabase,
    columns: noColumns,
    params: noParams,
    databases: theDatabase,
    object: objectName,
    imports: { databases: { ...IMPORT_ID, created_at: ['createdAt', 'timestamp'] } },
  },
  DropDatabase: { write: true, execute: dropDatabase, columns: noColumns, params: noParams, databases: theDatabase, object: objectName, imports: null },
  ShowDatabases: { write: false, execute: (_, ctx) => showDatabases(ctx), columns: statementColumns(DATABASE_COLUMNS), params: noParams, databases: noDatabases, object: noObject, imports: null },

  // ---- roles and grants
  CreateRole: { write: true, execute: createRole, columns: noColumns, params: noParams, databases: noDatabases, object: objectName, imports: { roles: { ...IMPORT_ID, ...IMPORT_CREATED } } },
  DropRole: { write: true, execute: dropRole, columns: noColumns, params: noParams, databases: noDatabases, object: objectName, imports: null },
  ShowRoles: { write: false, execute: (_, ctx) => showRoles(ctx), columns: statementColumns(ROLE_COLUMNS), params: noParams, databases: noDatabases, object: noObject, imports: null },
  Grant: {
    write: true,
    execute: grant,
    columns: noColumns,
    params: noParams,
    databases: grantTargetDatabases,
    object: grantObject,
    imports: { grants: { ...IMPORT_ID, created_at: ['createdAt', 'timestamp'], granted_by: ['grantedBy', 'text'] } },
  },
  Revoke: { write: true, execute: revoke, columns: noColumns, params: noParams, databases: grantTargetDatabases, object: grantObject, imports: null },
  GrantScope: {
    write: true,
    execute: grantScope,
    columns: noColumns,
    params: noParams,
    databases: noDatabases,
    object: scopeObject,
    imports: { grants: { ...IMPORT_ID, created_at: ['createdAt', 'timestamp'], granted_by: ['grantedBy', 'text'] } },
  },
  RevokeScope: { write: true, execute: revokeScope, columns: noColumns, params: noParams, databases: noDatabases, object: scopeObject, imports: null },
  ShowGrants: { write: false, execute: showGrants, columns: statementColumns(GRANT_COLUMNS), params: noParams, databases: noDatabases, object: granteeObject, imports: null },
  ShowPermissions: { write: false, execute: (_, ctx) => showPermissions(ctx), columns: statementColumns(PERMISSION_COLUMNS), params: noParams, databases: noDatabases, object: noObject, imports: null },

  // ---- defences and the catalog as a whole
  ShowPools: { write: false, execute: (_, ctx) => showPools(ctx), columns: statementColumns(POOL_COLUMNS), params: noParams, databases: noDatabases, object: noObject, imports: null },
  ShowLockouts: { write: false, execute: (_, ctx) => showLockouts(ctx), columns: statementColumns(LOCKOUT_COLUMNS), params: noParams, databases: noDatabases, object: noObject, imports: null },
  ShowAuditLog: { write: false, execute: showAuditLog, columns: statementColumns(AUDIT_COLUMNS), params: noParams, databases: noDatabases, object: noObject, imports: null },
  DumpCatalog: { write: false, execute: (_, ctx) => dumpCatalog(ctx), columns: statementColumns(DUMP_COLUMNS), params: noParams, databases: noDatabases, object: noObject, imports: null },

  // ---- API keys
  CreateApiKey: {
    write: true,
    execute: createApiKey,
    columns: statementColumns(KEY_RESULT_COLUMNS),
    params: noParams,
    databases: keyOptionDatabases,
    object: keyObject,
    imports: {
      apiKeys: {
        ...IMPORT_ID,
        ...IMPORT_CREATED,
        key_id: ['keyId', 'secret'],
        hash: ['secret.hash', 'secret'],
        verifier: ['secret.verifier', 'verifier'],
        previous_hash: ['previous.hash', 'secret'],
        previous_verifier: ['previous.verifier', 'verifier'],
        previous_valid_until: ['previous.validUntil', 'timestamp'],
        previous_last_used_at: ['previous.lastUsedAt', 'timestamp'],
        rotated_at: ['rotatedAt', 'timestamp'],
        last_used_at: ['lastUsedAt', 'timestamp'],
      },
    },
  },
  AlterApiKey: {
    write: true,
    execute: alterApiKey,
    // ROTATE returns the new key, as CREATE API KEY does; the other changes return no rows.
    columns: (cmd) => (cmd.change.kind === 'rotate' ? KEY_RESULT_COLUMNS : null),
    params: noParams,
    databases: changedDatabases,
    object: keyObject,
    imports: null,
  },
  DropApiKey: { write: true, execute: dropApiKey, columns: noColumns, params: noParams, databases: noDatabases, object: keyObject, imports: null },
  ShowApiKeys: { write: false, execute: showApiKeys, columns: statementColumns(API_KEY_COLUMNS), params: noParams, databases: noDatabases, object: noObject, imports: null },

  // ---- service accounts
  CreateServiceAccount: {
    write: true,
    execute: createServiceAccount,
    columns: noColumns,
    params: noParams,
    databases: listedDatabases,
    object: objectName,
    imports: { serviceAccounts: { ...IMPORT_ID, ...IMPORT_CREATED } },
  },
  AlterServiceAccount: { write: true, execute: alterServiceAccount, columns: noColumns, params: noParams, databases: changedDatabases, object: objectName, imports: null },
  DropServiceAccount: { write: true, execute: dropServiceAccount, columns: noColumns, params: noParams, databases: noDatabases, object: objectName, imports: null },
  ShowServiceAccounts: {
    write: false,
    execute: (_, ctx) => showServiceAccounts(ctx),
    columns: statementColumns(SERVICE_ACCOUNT_COLUMNS),
    params: noParams,
    databases: noDatabases,
    object: noObject,
    imports: null,
  },

  // ---- OIDC providers
  CreateOidcProvider: {
    write: true,
    execute: createOidcProvider,
    columns: noColumns,
    params: noParams,
    databases: noDatabases,
    object: objectName,
    imports: { oidcProviders: { ...IMPORT_ID, ...IMPORT_CREATED } },
  },
  AlterOidcProvider: { write: true, execute: alterOidcProvider, columns: noColumns, params: noParams, databases: noDatabases, object: objectName, imports: null },
  DropOidcProvider: { write: true, execute: dropOidcProvider, columns: noColumns, params: noParams, databases: noDatabases, object: objectName, imports: null },
  ShowOidcProviders: { write: false, execute: (_, ctx) => showOidcProviders(ctx), columns: statementColumns(OIDC_COLUMNS), params: noParams, databases: noDatabases, object: noObject, imports: null },

  // ---- the built-in token issuer (its keys and tokens' rows restored by IMPORT: issuer-restore.ts)
  AlterTokenIssuer: { write: true, execute: alterTokenIssuer, columns: noColumns, params: noParams, databases: noDatabases, object: noObject, imports: SIGNING_KEY_IMPORTS },
  CreateToken: { write: true, execute: createToken, columns: statementColumns(TOKEN_RESULT_COLUMNS), params: noParams, databases: keyOptionDatabases, object: (cmd) => cmd.owner.value, imports: TOKEN_IMPORTS },
  ShowTokens: { write: false, execute: showTokens, columns: statementColumns(TOKENS_COLUMNS), params: noParams, databases: noDatabases, object: noObject, imports: null },
  RevokeToken: { write: true, execute: revokeToken, columns: noColumns, params: noParams, databases: noDatabases, object: noObject, imports: null },
  RevokeTokens: { write: true, execute: revokeTokens, columns: noColumns, params: noParams, databases: noDatabases, object: (cmd) => cmd.owner.value, imports: null },
  ShowTokenIssuer: { write: false, execute: (_, ctx) => showTokenIssuer(ctx), columns: statementColumns(ISSUER_COLUMNS), params: noParams, databases: noDatabases, object: noObject, imports: null },

  // ---- row-level security
  CreateRlsPolicy: {
    write: true,
    execute: createRlsPolicy,
    columns: noColumns,
    params: noParams,
    databases: collectionDatabases,
    object: policyObject,
    imports: { rlsPolicies: { ...IMPORT_ID, ...IMPORT_CREATED } },
  },
  DropRlsPolicy: { write: true, execute: dropRlsPolicy, columns: noColumns, params: noParams, databases: collectionDatabases, object: policyObject, imports: null },
  ShowRlsPolicies: { write: false, execute: showRlsPolicies, columns: statementColumns(RLS_COLUMNS), params: noParams, databases: collectionDatabases, object: noObject, imports: null },
  ExplainRls: { write: false, execute: explainRls, columns: statementColumns(EXPLAIN_COLUMNS), params: noParams, databases: collectionDatabases, object: noObject, imports: null },

  // ---- the session's identity and name resolution
  SetSessionAuthorization: {
    write: false,
    execute: setSessionAuthorization,
    columns: noColumns,
    params: noParams,
    databases: noDatabases,
    object: sessionAuthorizationObject,
    imports: null,
  },
  SetSessionAuthorizationJwt: { write: false, execute: setSessionAuthorizationJwt, columns: noColumns, params: noParams, databases: noDatabases, object: noObject, imports: null },
  SetSessionAuthorizationApiKey: { write: false, execute: setSessionAuthorizationApiKey, columns: noColumns, params: noParams, databases: noDatabases, object: keyObject, imports: null },
  SetTenant: { write: false, execute: setTenant, columns: noColumns, params: noParams, databases: noDatabases, object: noObject, imports: null },
  ShowAuth: { write: false, execute: (_, ctx) => runShowAuth(ctx), columns: statementColumns(authColumns), params: noParams, databases: noDatabases, object: noObject, imports: null },
  Select: { write: false, execute: runSelect, columns: selectColumns, params: selectParamTypes, databases: noDatabases, object: noObject, imports: null },

  // ---- transactions and client settings
  Transaction: {
    write: false,
    execute: () => {
      throw new Error('transaction control is handled by the session');
    },
    columns: noColumns,
    params: noParams,
    databases: noDatabases,
    object: noObject,
    imports: null,
  },
  SetVariable: { write: false, execute: runSetting, columns: noColumns, params: noParams, databases: noDatabases, object: noObject, imports: null },
  ResetVariable: { write: false, execute: runSetting, columns: noColumns, params: noParams, databases: noDatabases, object: noObject, imports: null },
  ShowVariable: { write: false, execute: runSetting, columns: settingColumns, params: noParams, databases: noDatabases, object: noObject, imports: null },
  SetTransactionMode: { write: false, execute: runSetting, columns: noColumns, params: noParams, databases: noDatabases, object: noObject, imports: null },

  // ---- session housekeeping of drivers and poolers
  Discard: { write: false, execute: discard, columns: noColumns, params: noParams, databases: noDatabases, object: noObject, imports: null },
  Deallocate: { write: false, execute: deallocate, columns: noColumns, params: noParams, databases: noDatabases, object: optionalName, imports: null },
  Close: { write: false, execute: closeCursor, columns: noColumns, params: noParams, databases: noDatabases, object: optionalName, imports: null },
  Unlisten: { write: false, execute: () => unlisten(), columns: noColumns, params: noParams, databases: noDatabases, object: noObject, imports: null },
  Listen: { write: false, execute: listen, columns: noColumns, params: noParams, databases: noDatabases, object: noObject, imports: null },
};

/**
 * A statement's row. Called as `statementSpec(cmd.type).fact(cmd)`: the row of a command's
 * own type, so its functions take that command (TypeScript checks each row against its
 * type in the table above, and sees the union here).
 */
export function statementSpec<K extends StatementType>(type: K): StatementSpec<K> {
  return STATEMENTS[type];
}
