/**
 * The AST: the contract between grammar/ (syntax) and src/ (meaning). Names are already
 * folded the PostgreSQL way (unquoted → lower case, quoted or string literal → exact).
 */

/** A value position: a literal or a `$n` parameter bound through the extended protocol. */
export type Value =
  | { kind: 'string'; value: string; position: number }
  | { kind: 'number'; value: string; position: number }
  | { kind: 'boolean'; value: boolean; position: number }
  | { kind: 'null'; position: number }
  | { kind: 'param'; index: number; position: number };

/** A name with the 1-based character position where it was written (for error carets). */
export interface Name {
  value: string;
  position: number;
}

/** A tenant named by id (`TENANT 42`) or by name (`TENANT acme`). */
export type TenantRef = Name | { id: string; position: number };

export type UserOption =
  | { kind: 'password'; value: Value }
  | { kind: 'role'; role: Name }
  | { kind: 'tenant'; tenant: TenantRef }
  | { kind: 'validUntil'; value: Value }
  | { kind: 'connectionLimit'; value: Value }
  | { kind: 'login'; value: boolean; position: number }
  | { kind: 'certificateSubject'; value: Value };

export type UserRef = { kind: 'name'; name: Name } | { kind: 'currentUser'; position: number };

export type Expr =
  | { kind: 'value'; value: Value }
  | { kind: 'auth'; path: string[]; position: number }
  | { kind: 'function'; name: string; call: boolean; position: number }
  | { kind: 'cast'; expr: Expr; type: string; position: number };

export interface SelectItem {
  expr: Expr;
  alias: string | null;
}

/** A word in a GRANT / REVOKE list: a privilege keyword or a role name; the engine decides. */
export interface GrantItem {
  word: string;
  /** Quoted or a string literal: always a role name, never a privilege keyword. */
  quoted: boolean;
  position: number;
}

export type GrantTarget =
  | { kind: 'databases'; names: Name[] }
  | { kind: 'collection'; database: Name; collection: Name }
  /** No ON clause: every database of the grantee's tenant, or role membership. */
  | null;

export type Expiry = { kind: 'until'; value: Value } | { kind: 'interval'; value: Value } | null;

/** When an API key stops working: at a timestamp, after an interval, or never (null). */
export type KeyExpiry = { kind: 'at'; value: Value } | { kind: 'in'; value: Value } | { kind: 'never' };

export type ApiKeyOption =
  | { kind: 'role'; role: Name }
  | { kind: 'databases'; names: Name[] }
  | { kind: 'scopes'; scopes: Value[] }
  | { kind: 'expires'; expiry: KeyExpiry };

export type ApiKeyChange =
  | { kind: 'rotate'; grace: Value | null }
  | { kind: 'databases'; names: Name[] }
  | { kind: 'role'; role: Name }
  | { kind: 'expires'; expiry: KeyExpiry };

/** `key = 'value'` in an OIDC provider's WITH (...) or SET (...) list. */
export interface ProviderOption {
  key: Name;
  value: Value;
}

/** An operand of an RLS predicate. */
export type Operand =
  | { kind: 'column'; path: string[]; position: number }
  | { kind: 'auth'; path: string[]; position: number }
  | { kind: 'literal'; value: Value };

export type CompareOp = '=' | '<>' | '<' | '<=' | '>' | '>=';

/** The RLS predicate language, as a tree (never kept as text). */
export type Predicate =
  | { kind: 'or'; left: Predicate; right: Predicate }
  | { kind: 'and'; left: Predicate; right: Predicate }
  | { kind: 'not'; expr: Predicate }
  | { kind: 'compare'; op: CompareOp; left: Operand; right: Operand }
  | { kind: 'in'; operand: Operand; list: Operand[] }
  | { kind: 'contains'; left: Operand; right: Operand }
  | { kind: 'isNull'; operand: Operand; negated: boolean }
  /** A bare operand used as a condition (a boolean column, TRUE, FALSE). */
  | { kind: 'operand'; operand: Operand };

export type PolicyKind = 'read' | 'write' | 'all';

/** `[db.]collection`: db null means the session's current database. */
export interface CollectionRef {
  database: Name | null;
  collection: Name;
}

export type TransactionAction = 'begin' | 'commit' | 'rollback';

export type AdminCommand =
  | { type: 'CreateUser'; name: Name; ifNotExists: boolean; options: UserOption[] }
  | { type: 'AlterUser'; user: UserRef; options: UserOption[] }
  | { type: 'RenameUser'; user: UserRef; newName: Name }
  | { type: 'UnlockUser'; user: UserRef }
  | { type: 'DropUser'; names: Name[]; ifExists: boolean; cascade: boolean }
  | { type: 'ShowUsers' }
  | { type: 'CreateTenant'; name: Name; ifNotExists: boolean; id: { value: string; position: number } | null }
  | { type: 'DropTenant'; name: Name; ifExists: boolean; cascade: boolean }
  | { type: 'ShowTenants' }
  | { type: 'CreateDatabase'; name: Name; ifNotExists: boolean; tenant: TenantRef | null }
  | { type: 'DropDatabase'; name: Name; ifExists: boolean; tenant: TenantRef | null; cascade: boolean }
  | { type: 'ShowDatabases' }
  | { type: 'CreateRole'; name: Name; ifNotExists: boolean; tenant: TenantRef | null }
  | { type: 'DropRole'; name: Name; ifExists: boolean; tenant: TenantRef | null; cascade: boolean }
  | { type: 'ShowRoles' }
  | { type: 'Grant'; items: GrantItem[]; target: GrantTarget; grantees: Name[]; expiry: Expiry }
  | { type: 'Revoke'; items: GrantItem[]; target: GrantTarget; grantees: Name[] }
  /** GRANT SCOPE 'scope' [, ...] TO grantee [, ...] [expiry]: what a grantee's API keys may carry. */
  | { type: 'GrantScope'; scopes: Value[]; grantees: Name[]; expiry: Expiry }
  | { type: 'RevokeScope'; scopes: Value[]; grantees: Name[] }
  | { type: 'ShowGrants'; grantee: Name | null }
  | { type: 'ShowPermissions' }
  | { type: 'ShowLockouts' }
  | { type: 'ShowPools' }
  | { type: 'ShowAuditLog'; limit: Value | null; position: number }
  | { type: 'CreateApiKey'; name: Name; ifNotExists: boolean; owner: Name | null; options: ApiKeyOption[] }
  | { type: 'AlterApiKey'; name: Name; owner: Name | null; change: ApiKeyChange }
  | { type: 'DropApiKey'; name: Name; ifExists: boolean; owner: Name | null }
  | { type: 'ShowApiKeys'; owner: Name | null }
  | { type: 'ShowTokenIssuer' }
  | { type: 'CreateToken'; owner: Name; options: ApiKeyOption[] }
  | { type: 'ShowTokens'; owner: Name | null }
  | { type: 'RevokeToken'; jti: Value }
  | { type: 'RevokeTokens'; owner: Name }
  | { type: 'AlterTokenIssuer'; grace: Value | null }
  | { type: 'CreateServiceAccount'; name: Name; ifNotExists: boolean; databases: Name[]; role: Name | null; tenant: TenantRef | null }
  | { type: 'AlterServiceAccount'; name: Name; change: { kind: 'databases'; names: Name[] } | { kind: 'role'; role: Name } | { kind: 'rename'; name: Name } }
  | { type: 'DropServiceAccount'; name: Name; ifExists: boolean; cascade: boolean }
  | { type: 'ShowServiceAccounts' }
  | { type: 'CreateOidcProvider'; name: Name; ifNotExists: boolean; options: ProviderOption[]; tenant: TenantRef | null }
  | { type: 'AlterOidcProvider'; name: Name; options: ProviderOption[] }
  | { type: 'DropOidcProvider'; name: Name; ifExists: boolean }
  | { type: 'ShowOidcProviders' }
  | { type: 'CreateRlsPolicy'; name: Name; ifNotExists: boolean; on: CollectionRef; kind: PolicyKind; predicate: Predicate; restrictive: boolean }
  | { type: 'DropRlsPolicy'; name: Name; ifExists: boolean; on: CollectionRef }
  | { type: 'ShowRlsPolicies'; on: CollectionRef | null }
  | { type: 'ExplainRls'; on: CollectionRef; kind: 'read' | 'write' }
  /** SET SESSION AUTHORIZATION name; null: DEFAULT or RESET SESSION AUTHORIZATION. */
  | { type: 'SetSessionAuthorization'; user: Name | null }
  /** SET SESSION AUTHORIZATION JWT PROVIDER p CLAIMS '{...}': act as a token would. */
  | { type: 'SetSessionAuthorizationJwt'; provider: Name; claims: Value }
  /** SET SESSION AUTHORIZATION API KEY 'name' [FOR owner]: act as a login with that key would (owner null: the session user's key). */
  | { type: 'SetSessionAuthorizationApiKey'; name: Name; owner: Name | null }
  /** SET TENANT t / RESET TENANT (tenant null): a superuser's names resolve in that tenant. */
  | { type: 'SetTenant'; tenant: TenantRef | null }
  | { type: 'ShowAuth' }
  /** DUMP CATALOG: the whole catalog as statements that restore it (superuser). */
  | { type: 'DumpCatalog' }
  | { type: 'Select'; items: SelectItem[]; from: Name | null }
  | { type: 'Transaction'; action: TransactionAction; keyword: string }
  /** SET name TO value; value null = DEFAULT. `local`: SET LOCAL. */
  | { type: 'SetVariable'; name: string; value: string | null; local: boolean; position: number }
  | { type: 'ResetVariable'; name: string | null; position: number }
  | { type: 'ShowVariable'; name: string; position: number }
  /** SET TRANSACTION ... / SET SESSION CHARACTERISTICS ...: accepted, no effect on the catalog. */
  | { type: 'SetTransactionMode' }
  /** DISCARD ALL | PLANS | SEQUENCES | TEMP[ORARY]: what PgBouncer and poolers reset a session with. */
  | { type: 'Discard'; what: 'ALL' | 'PLANS' | 'SEQUENCES' | 'TEMP'; position: number }
  /** DEALLOCATE [PREPARE] name | ALL (name null): drops the wire layer's prepared statements. */
  | { type: 'Deallocate'; name: Name | null }
  /** CLOSE name | ALL (name null): closes a cursor. */
  | { type: 'Close'; name: Name | null }
  /** UNLISTEN channel | * (channel null). */
  | { type: 'Unlisten'; channel: Name | null }
  /** LISTEN channel: refused, no notifications are ever sent. */
  | { type: 'Listen'; channel: Name; position: number };

/**
 * `IMPORT (key = value, ...)` after a statement: what `portcullis dump` writes so that a
 * restore is exact (ids, creation times, key hashes). Superuser only; the engine decides
 * which keys each statement takes.
 */
export interface ImportItem {
  key: Name;
  value: Value;
}

/** One statement of a query string, with where it stands in that string. */
export interface Statement {
  command: AdminCommand;
  imports: ImportItem[] | null;
  /** 0-based code-unit offsets into the query string. */
  start: number;
  end: number;
  /** The highest `$n` the statement uses (0: none). */
  paramCount: number;
}
