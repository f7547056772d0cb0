/** The catalog model: the row of every catalog table. Plain data, so that it serializes into the log as is. */
import type { Predicate } from '../../grammar/ast.js';

/** Built-in roles, lowest first; each includes the ones before it. */
export const BUILTIN_ROLES = ['readonly', 'readwrite', 'admin', 'tenant_admin', 'superuser'] as const;
export type BuiltinRole = (typeof BUILTIN_ROLES)[number];

export const isBuiltinRole = (s: string): s is BuiltinRole => (BUILTIN_ROLES as readonly string[]).includes(s);
export const roleRank = (r: BuiltinRole): number => BUILTIN_ROLES.indexOf(r);

export interface Tenant {
  id: number;
  name: string;
  createdAt: number;
}

export interface Database {
  id: number;
  tenantId: number;
  name: string;
  createdAt: number;
}

export interface User {
  id: number;
  name: string;
  tenantId: number;
  role: BuiltinRole;
  /** PostgreSQL's SCRAM-SHA-256 verifier text; null = no password (cannot log in by password). */
  verifier: string | null;
  login: boolean;
  /** Milliseconds since the epoch; null = no expiry. */
  validUntil: number | null;
  /** -1 = no limit, as in PostgreSQL. */
  connectionLimit: number;
  certificateSubject: string | null;
  createdAt: number;
  updatedAt: number;
  createdBy: string | null;
  /**
   * Never stored: set on the stand-in a session acts as when its credential narrows the
   * principal (an API key's role and databases; a service account's databases). Every
   * privilege check derives from effectiveOf, which applies these caps.
   */
  limits?: CredentialLimits;
}

export interface CredentialLimits {
  /** The highest built-in role the credential allows. */
  role: BuiltinRole;
  /** Databases (ids) the credential reaches; null: no narrowing. */
  databaseIds: number[] | null;
  /** The databases are exactly these (a service account's), not a subset of the user's. */
  exact: boolean;
  /** The credential's scopes (an API key's, already clamped to its owner's): $auth.scopes. */
  scopes: string[];
}

/** A custom role: a name in a tenant that holds privileges and other roles. */
export interface Role {
  id: number;
  tenantId: number;
  name: string;
  createdAt: number;
  createdBy: string | null;
}

export const PRIVILEGES = ['read', 'write', 'delete', 'schema', 'admin'] as const;
export type Privilege = (typeof PRIVILEGES)[number];

/** What each built-in role may do on its accessible databases. */
export const ROLE_PRIVILEGES: Record<BuiltinRole, readonly Privilege[]> = {
  readonly: ['read'],
  readwrite: ['read', 'write', 'delete'],
  admin: PRIVILEGES,
  tenant_admin: PRIVILEGES,
  superuser: PRIVILEGES,
};

/**
 * One GRANT: a privilege (on a database, a collection, or every database of the tenant:
 * databaseId null), membership in a role (built-in by name, custom by id), or a scope
 * (GRANT SCOPE), to a user, a custom role or (scopes only) a service account, optionally
 * until `expiresAt`.
 */
export interface Grant {
  id: number;
  tenantId: number;
  granteeKind: 'user' | 'role' | 'service_account';
  granteeId: number;
  privilege: Privilege | null;
  databaseId: number | null;
  collection: string | null;
  builtinRole: BuiltinRole | null;
  roleId: number | null;
  /**
   * GRANT SCOPE: the scope string (privilege, builtinRole and roleId are then null). Absent
   * on rows written before scopes were grantable, which are privileges or memberships.
   */
  scope?: string;
  expiresAt: number | null;
  grantedBy: string;
  createdAt: number;
}

/** A key's secret material: a hash and a SCRAM verifier of the whole key, never the key. */
export interface KeySecret {
  hash: string;
  verifier: string;
}

/** A non-human identity: a role and a set of databases; logs in only by API key. */
export interface ServiceAccount {
  id: number;
  tenantId: number;
  name: string;
  role: BuiltinRole;
  databaseIds: number[];
  createdAt: number;
  createdBy: string;
}

export interface ApiKey {
  id: number;
  tenantId: number;
  ownerKind: 'user' | 'service_account';
  ownerId: number;
  name: string;
  keyId: string;
  secret: KeySecret;
  /** After ROTATE ... GRACE: the old secret, valid until `validUntil`. */
  previous: (KeySecret & { validUntil: number; lastUsedAt?: number | null }) | null;
  /** null: the owner's role at the time of use. */
  role: BuiltinRole | null;
  /** null: the owner's accessible databases at the time of use. */
  databaseIds: number[] | null;
  scopes: string[];
  expiresAt: number | null;
  createdAt: number;
  createdBy: string;
  rotatedAt: number | null;
  lastUsedAt: number | null;
}

/** An OIDC provider: whose tokens are accepted, and how their claims map. */
export interface OidcProvider {
  id: number;
  name: string;
  tenantId: number;
  issuer: string;
  jwksUrl: string | null;
  /** Inline JWKS (JSON text), instead of or besides jwksUrl. */
  jwks: string | null;
  /** '*' is the explicit opt-out of audience checking. */
  audience: string;
  algorithms: string[];
  idClaim: string;
  roleClaim: string;
  orgClaim: string;
  tenantClaim: string | null;
  scopesClaim: string;
  defaultRole: BuiltinRole;
  maxRole: BuiltinRole;
  enabled: boolean;
  createdAt: number;
  createdBy: string;
}

/** An RLS policy; the predicate is the parsed tree, never text. */
export interface RlsPolicy {
  id: number;
  tenantId: number;
  databaseId: number;
  collection: string;
  name: string;
  kind: 'read' | 'write' | 'all';
  predicate: Predicate;
  restrictive: boolean;
  createdAt: number;
  createdBy: string;
}

/**
 * A key portcullis signs its own tokens with (SPEC §12). The private half is sealed
 * (AES-256-GCM under a key derived from the server secret, the kid as associated data):
 * a row read on its own — a dump, a catalog table, a log line — never holds it in clear.
 */
export interface SigningKey {
  id: number;
  kid: string;
  alg: 'ES256';
  /** The public JWK, as JSON text (what the JWKS publishes). */
  publicJwk: string;
  /** The private JWK, sealed: base64 of nonce | ciphertext | tag. */
  sealedPrivate: string;
  createdAt: number;
  /** null: the current key; else it was rotated out and verifies tokens until then (the grace). */
  retiresAt: number | null;
}

/**
 * A refresh token (SPEC §12): only its SHA-256 is stored. Single-use: a use replaces the
 * row with a used one (`usedAt`) and issues the next token of the same family; presenting
 * a used one revokes the family.
 */
export interface RefreshToken {
  id: number;
  hash: string;
  /** Every token rotated from one grant shares its family. */
  family: string;
  ownerKind: 'user' | 'service_account';
  ownerId: number;
  /** The API key exchanged (null: a password); dropping the key ends the family. */
  apiKeyId: number | null;
  /** The database the grant was narrowed to (null: every database of the credential). */
  databaseId: number | null;
  /** A digest of the owner's password verifier at issue: a new password ends the family. */
  credentialStamp: string | null;
  usedAt: number | null;
  revokedAt: number | null;
  expiresAt: number;
  createdAt: number;
}

/**
 * An access token portcullis issued (POST /v1/token, or minted by CREATE TOKEN): its jti
 * and what it was granted for, never the token. A token is accepted only while its row
 * says so: REVOKE TOKEN and REVOKE TOKENS set `revokedAt`. Rows past their expiry are
 * removed as new tokens are issued.
 */
export interface IssuedToken {
  id: number;
  jti: string;
  ownerKind: 'user' | 'service_account';
  ownerId: number;
  /** The API key exchanged (null: a password, a refresh token's grant, or CREATE TOKEN). */
  apiKeyId: number | null;
  /** Caps on the principal, as an API key's: null where the token does not narrow it. */
  role: BuiltinRole | null;
  databaseIds: number[] | null;
  scopes: string[] | null;
  /** CREATE TOKEN (shown once to whoever minted it) rather than a token endpoint grant. */
  minted: boolean;
  issuedAt: number;
  expiresAt: number;
  revokedAt: number | null;
  createdBy: string | null;
}

export const DEFAULT_TENANT_ID = 1;
export const DEFAULT_DATABASE = 'default';

/** The kinds of catalog object, each a table of rows. */
export interface Rows {
  users: User;
  tenants: Tenant;
  databases: Database;
  roles: Role;
  grants: Grant;
  apiKeys: ApiKey;
  serviceAccounts: ServiceAccount;
  oidcProviders: OidcProvider;
  rlsPolicies: RlsPolicy;
  signingKeys: SigningKey;
  refreshTokens: RefreshToken;
  issuedTokens: IssuedToken;
}
export type TableName = keyof Rows;
/** In dependency order: a snapshot replays tenants before their databases and users. */
export const TABLE_NAMES: readonly TableName[] = ['tenants', 'databases', 'users', 'roles', 'serviceAccounts', 'grants', 'apiKeys', 'oidcProviders', 'rlsPolicies', 'signingKeys', 'refreshTokens', 'issuedTokens'];

/** One catalog change: the unit of the log and of replay. */
export type Mutation =
  /** The catalog's own state; `nextId` (in snapshots) keeps ids of dropped objects from coming back. */
  | { op: 'init'; serverSecret: string; at: number; nextId?: number }
  | { [T in TableName]: { op: 'insert' | 'update'; table: T; row: Rows[T] } }[TableName]
  | { op: 'delete'; table: TableName; id: number }
  /**
   * The audit records of a commit, carried in its log record so that one fdatasync makes
   * both durable; the audit trail takes them from there (the catalog ignores them).
   */
  | { op: 'audit'; entries: unknown[] }
  /**
   * The first entry of a record whose changes wait for the data plane (a transaction that
   * changed both, docs/data-plane.md "The commit protocol"): they apply once a `decide`
   * record with the same `txid` commits them; without one, recovery at start asks the data
   * plane of database `databaseId`.
   */
  | { op: 'prepare'; txid: string; databaseId: number }
  /** The outcome of a `prepare` record: its changes apply (commit) or are dropped. */
  | { op: 'decide'; txid: string; commit: boolean };
