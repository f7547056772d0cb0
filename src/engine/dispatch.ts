import type { AdminCommand, Statement } from '../../grammar/index.js';
import type { Column, Execution } from '../wire/handler.js';
import { assertNever, TypeOid } from '../wire/messages.js';
import type { StatementContext } from './statement-context.js';
import { DUMP_COLUMNS, dumpCatalog } from './dump.js';
import { selectColumns, runSelect, selectParamTypes } from './select.js';
import { runSetting, settingColumns } from './settings-statements.js';
import { authColumns, runShowAuth } from './show-auth.js';
import { createDatabase, createTenant, DATABASE_COLUMNS, dropDatabase, dropTenant, showDatabases, showTenants, TENANT_COLUMNS } from './tenants.js';
import { createRole, dropRole, grant, GRANT_COLUMNS, grantScope, PERMISSION_COLUMNS, revoke, revokeScope, ROLE_COLUMNS, showGrants, showPermissions, showRoles } from './grants.js';
import { setSessionAuthorization, setSessionAuthorizationJwt } from './session-authorization.js';
import { setTenant } from './tenant-scope.js';
import { alterApiKey, API_KEY_COLUMNS, createApiKey, dropApiKey, KEY_RESULT_COLUMNS, showApiKeys } from './api-keys.js';
import { alterServiceAccount, createServiceAccount, dropServiceAccount, SERVICE_ACCOUNT_COLUMNS, showServiceAccounts } from './service-accounts.js';
import { alterOidcProvider, createOidcProvider, dropOidcProvider, OIDC_COLUMNS, showOidcProviders } from './oidc-providers.js';
import { createRlsPolicy, dropRlsPolicy, EXPLAIN_COLUMNS, explainRls, RLS_COLUMNS, showRlsPolicies } from './rls.js';
import { AUDIT_COLUMNS, LOCKOUT_COLUMNS, showAuditLog, showLockouts } from './defences.js';
import { closeCursor, deallocate, discard, listen, unlisten } from './housekeeping.js';
import { alterUser, createUser, dropUser, renameUser, showUsers, unlockUser, USER_COLUMNS, userParamTypes } from './users.js';

/** Table-driven dispatch: one entry per statement kind, each exhaustive over AdminCommand. */
export async function dispatch(cmd: AdminCommand, ctx: StatementContext): Promise<Execution> {
  switch (cmd.type) {
    case 'CreateUser':
      return createUser(cmd, ctx);
    case 'AlterUser':
      return alterUser(cmd, ctx);
    case 'RenameUser':
      return renameUser(cmd, ctx);
    case 'UnlockUser':
      return unlockUser(cmd, ctx);
    case 'DropUser':
      return dropUser(cmd, ctx);
    case 'ShowUsers':
      return showUsers(ctx);
    case 'CreateTenant':
      return createTenant(cmd, ctx);
    case 'DropTenant':
      return dropTenant(cmd, ctx);
    case 'ShowTenants':
      return showTenants(ctx);
    case 'CreateDatabase':
      return createDatabase(cmd, ctx);
    case 'DropDatabase':
      return dropDatabase(cmd, ctx);
    case 'ShowDatabases':
      return showDatabases(ctx);
    case 'CreateRole':
      return createRole(cmd, ctx);
    case 'DropRole':
      return dropRole(cmd, ctx);
    case 'ShowRoles':
      return showRoles(ctx);
    case 'Grant':
      return grant(cmd, ctx);
    case 'Revoke':
      return revoke(cmd, ctx);
    case 'GrantScope':
      return grantScope(cmd, ctx);
    case 'RevokeScope':
      return revokeScope(cmd, ctx);
    case 'ShowGrants':
      return showGrants(cmd, ctx);
    case 'ShowPermissions':
      return showPermissions(ctx);
    case 'ShowLockouts':
      return showLockouts(ctx);
    case 'DumpCatalog':
      return dumpCatalog(ctx);
    case 'ShowAuditLog':
      return showAuditLog(cmd, ctx);
    case 'SetSessionAuthorization':
      return setSessionAuthorization(cmd, ctx);
    case 'SetSessionAuthorizationJwt':
      return setSessionAuthorizationJwt(cmd, ctx);
    case 'SetTenant':
      return setTenant(cmd, ctx);
    case 'CreateApiKey':
      return createApiKey(cmd, ctx);
    case 'AlterApiKey':
      return alterApiKey(cmd, ctx);
    case 'DropApiKey':
      return dropApiKey(cmd, ctx);
    case 'ShowApiKeys':
      return showApiKeys(cmd, ctx);
    case 'CreateServiceAccount':
      return createServiceAccount(cmd, ctx);
    case 'AlterServiceAccount':
      return alterServiceAccount(cmd, ctx);
    case 'DropServiceAccount':
      return dropServiceAccount(cmd, ctx);
    case 'ShowServiceAccounts':
      return showServiceAccounts(ctx);
    case 'CreateOidcProvider':
      return createOidcProvider(cmd, ctx);
    case 'AlterOidcProvider':
      return alterOidcProvider(cmd, ctx);
    case 'DropOidcProvider':
      return dropOidcProvider(cmd, ctx);
    case 'ShowOidcProviders':
      return showOidcProviders(ctx);
    case 'CreateRlsPolicy':
      return createRlsPolicy(cmd, ctx);
    case 'DropRlsPolicy':
      return dropRlsPolicy(cmd, ctx);
    case 'ShowRlsPolicies':
      return showRlsPolicies(cmd, ctx);
    case 'ExplainRls':
      return explainRls(cmd, ctx);
    case 'ShowAuth':
      return runShowAuth(ctx);
    case 'Select':
      return runSelect(cmd, ctx);
    case 'SetVariable':
    case 'ResetVariable':
    case 'ShowVariable':
    case 'SetTransactionMode':
      return runSetting(cmd, ctx);
    case 'Discard':
      return discard(cmd, ctx);
    case 'Deallocate':
      return deallocate(cmd, ctx);
    case 'Close':
      return closeCursor(cmd);
    case 'Unlisten':
      return unlisten();
    case 'Listen':
      return listen(cmd);
    case 'Transaction':
      throw new Error('transaction control is handled by the session');
    default:
      return assertNever(cmd);
  }
}

export function isWrite(cmd: AdminCommand): boolean {
  switch (cmd.type) {
    case 'CreateUser':
    case 'AlterUser':
    case 'RenameUser':
    case 'UnlockUser':
    case 'DropUser':
    case 'CreateTenant':
    case 'DropTenant':
    case 'CreateDatabase':
    case 'DropDatabase':
    case 'CreateRole':
    case 'DropRole':
    case 'Grant':
    case 'Revoke':
    case 'GrantScope':
    case 'RevokeScope':
    case 'CreateApiKey':
    case 'AlterApiKey':
    case 'DropApiKey':
    case 'CreateServiceAccount':
    case 'AlterServiceAccount':
    case 'DropServiceAccount':
    case 'CreateOidcProvider':
    case 'AlterOidcProvider':
    case 'DropOidcProvider':
    case 'CreateRlsPolicy':
    case 'DropRlsPolicy':
      return true;
    default:
      return false;
  }
}

/** The result columns of a statement, known before it runs (Describe). */
export function describeColumns(cmd: AdminCommand): Column[] | null {
  switch (cmd.type) {
    case 'ShowUsers':
      return USER_COLUMNS;
    case 'ShowTenants':
      return TENANT_COLUMNS;
    case 'ShowDatabases':
      return DATABASE_COLUMNS;
    case 'ShowRoles':
      return ROLE_COLUMNS;
    case 'ShowGrants':
      return GRANT_COLUMNS;
    case 'ShowPermissions':
      return PERMISSION_COLUMNS;
    case 'ShowLockouts':
      return LOCKOUT_COLUMNS;
    case 'ShowAuditLog':
      return AUDIT_COLUMNS;
    case 'DumpCatalog':
      return DUMP_COLUMNS;
    case 'ShowApiKeys':
      return API_KEY_COLUMNS;
    case 'ShowServiceAccounts':
      return SERVICE_ACCOUNT_COLUMNS;
    case 'ShowOidcProviders':
      return OIDC_COLUMNS;
    case 'ShowRlsPolicies':
      return RLS_COLUMNS;
    case 'ExplainRls':
      return EXPLAIN_COLUMNS;
    case 'CreateApiKey':
      return KEY_RESULT_COLUMNS;
    case 'AlterApiKey':
      return cmd.change.kind === 'rotate' ? KEY_RESULT_COLUMNS : null;
    case 'ShowAuth':
      return authColumns;
    case 'Select':
      return selectColumns(cmd);
    case 'ShowVariable':
      return settingColumns(cmd);
    default:
      return null;
  }
}

/** Parameter types inferred from where each `$n` stands; text where nothing says otherwise. */
export function paramTypesOf(st: Statement): number[] {
  const types: number[] = Array.from({ length: st.paramCount }, () => TypeOid.text);
  const cmd = st.command;
  const hints = cmd.type === 'Select' ? selectParamTypes(cmd) : userParamTypes(cmd);
  for (const [index, oid] of hints) if (index >= 1 && index <= types.length) types[index - 1] = oid;
  return types;
}
