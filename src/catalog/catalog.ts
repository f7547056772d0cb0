import type { ApiKey, IssuedToken, OidcProvider, RefreshToken, RlsPolicy, SigningKey, ServiceAccount, Database, Grant, Mutation, Role, Rows, TableName, Tenant, User } from './model.js';
import { nameSkeleton, SKELETON_TABLES, tenantScoped } from './names.js';
import { hashedIndex, Table, TableView, type Indexes, type RowChunk, type TableReader } from './table.js';
import { TABLE_NAMES } from './model.js';

export { compareNames } from './names.js';
export type { RowChunk } from './table.js';

/** What a snapshot holds: the catalog's own state, then each table's rows in chunks. */
export type SnapshotPart = { init: Extract<Mutation, { op: 'init' }> } | ({ table: TableName } & RowChunk);

/** Rows per snapshot chunk: big enough to amortise, small enough to stream. */
export const SNAPSHOT_CHUNK = 5000;

/** What a grant is, without when and by whom: the part its unique key is made of. */
export type GrantShape = Omit<Grant, 'id' | 'expiresAt' | 'grantedBy' | 'createdAt'>;

/** The unique key of each table. */
export const KEYS: { [T in TableName]: (r: Rows[T]) => string } = {
  users: (u) => u.name,
  tenants: (t) => t.name,
  databases: (d) => tenantScoped(d.tenantId, d.name),
  roles: (r) => tenantScoped(r.tenantId, r.name),
  grants: (g) => grantKey(g),
  apiKeys: (k) => `${k.ownerKind}:${String(k.ownerId).padStart(10, '0')}/${k.name}`,
  serviceAccounts: (a) => a.name,
  oidcProviders: (p) => p.name,
  rlsPolicies: (p) => `${String(p.databaseId).padStart(10, '0')}/${p.collection}/${p.name}`,
  signingKeys: (k) => k.kid,
  refreshTokens: (r) => r.hash,
  issuedTokens: (t) => t.jti,
};

/** One grant per grantee and thing granted: granting it again only moves the expiry. */
export function grantKey(g: GrantShape): string {
  const what =
    g.scope !== undefined
      ? `s:${g.scope}`
      : g.privilege !== null
        ? `p:${g.privilege}:${g.databaseId ?? '*'}:${g.collection ?? ''}`
        : `r:${g.builtinRole ?? ''}:${g.roleId ?? ''}`;
  return `${tenantScoped(g.tenantId, '')}${g.granteeKind}:${String(g.granteeId).padStart(10, '0')}/${what}`;
}

type Tables = { [T in TableName]: TableReader<Rows[T]> };

/**
 * Where two names must not look alike, the key each name has there: its skeleton
 * (nameSkeleton), scoped as the name space is. Login names (users and service accounts),
 * tenants and OIDC providers are global; roles and databases per tenant; RLS policies per
 * collection. API keys are few per owner: they are compared through the owner index
 * instead (not a million-entry index for names like "ci").
 */
export const LOOKALIKE_KEYS = {
  users: (u: Pick<User, 'name'>) => nameSkeleton(u.name),
  serviceAccounts: (a: Pick<ServiceAccount, 'name'>) => nameSkeleton(a.name),
  tenants: (t: Pick<Tenant, 'name'>) => nameSkeleton(t.name),
  oidcProviders: (p: Pick<OidcProvider, 'name'>) => nameSkeleton(p.name),
  roles: (r: Pick<Role, 'tenantId' | 'name'>) => tenantScoped(r.tenantId, nameSkeleton(r.name)),
  databases: (d: Pick<Database, 'tenantId' | 'name'>) => tenantScoped(d.tenantId, nameSkeleton(d.name)),
  rlsPolicies: (p: Pick<RlsPolicy, 'databaseId' | 'collection' | 'name'>) => `${String(p.databaseId).padStart(10, '0')}/${p.collection}/${nameSkeleton(p.name)}`,
};
export type LookalikeTable = keyof typeof LOOKALIKE_KEYS;

/**
 * The look-alike index: rows by a 30-bit FNV-1a hash of their look-alike key (from 2^30 up:
 * never 0), kept in a HashIndex. Start-up reads the hashes from the snapshot and computes
 * no skeleton. At a million users (bench/scale.ts's data directory, loaded in-process, CPU
 * time): with the keys as strings in a Map, loading took ~1.3 s more than without the
 * index; as hashes in a Map ~1.2 s, nearly all of it the Map's get and set per row; as
 * hashes in a HashIndex, see docs/decisions.md. Rows that only share the hash are told
 * apart by `lookalikes`. The index's name carries the hash and the skeleton's tables: a
 * snapshot indexed under others is re-indexed at load.
 */
const LOOKALIKE = `lookalike fnv1a ${SKELETON_TABLES}`;

export function lookalikeHash(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
  return 2 ** 30 + (h >>> 2);
}

const byLook = <R>(key: (r: R) => string) => hashedIndex((r: R) => lookalikeHash(key(r)));

/** Secondary indexes, so that privilege checks and lookups never scan a table. */
export const INDEXES: { [T in TableName]?: Indexes<Rows[T]> } = {
  grants: { grantee: (g) => kindId(g.granteeKind === 'user', g.granteeId) },
  databases: { tenant: (d) => d.tenantId, [LOOKALIKE]: byLook(LOOKALIKE_KEYS.databases) },
  apiKeys: { keyId: (k) => k.keyId, owner: (k) => kindId(k.ownerKind === 'user', k.ownerId) },
  users: { [LOOKALIKE]: byLook(LOOKALIKE_KEYS.users) },
  serviceAccounts: { [LOOKALIKE]: byLook(LOOKALIKE_KEYS.serviceAccounts) },
  tenants: { [LOOKALIKE]: byLook(LOOKALIKE_KEYS.tenants) },
  oidcProviders: { [LOOKALIKE]: byLook(LOOKALIKE_KEYS.oidcProviders) },
  roles: { [LOOKALIKE]: byLook(LOOKALIKE_KEYS.roles) },
  rlsPolicies: { [LOOKALIKE]: byLook(LOOKALIKE_KEYS.rlsPolicies) },
  refreshTokens: { family: (r) => r.family, owner: (r) => kindId(r.ownerKind === 'user', r.ownerId) },
  issuedTokens: { owner: (t) => kindId(t.ownerKind === 'user', t.ownerId) },
};

/**
 * One number for a (kind, id) pair of an index key: users positive, the other kind (roles,
 * service accounts) negative — numbers, not "kind:id" strings, since a million-row index
 * fills twice as fast. Ids are positive (the catalog's one counter).
 */
function kindId(isUser: boolean, id: number): number {
  return isUser ? id : -id;
}

/**
 * Read access to a catalog state: the committed catalog, or a transaction's view of it.
 * Every query is answered from the tables' indexes.
 */
export abstract class CatalogReader {
  abstract readonly tables: Tables;
  abstract readonly serverSecret: string;

  userById(id: number): User | undefined {
    return this.tables.users.get(id);
  }
  userByName(name: string): User | undefined {
    return this.tables.users.find(name);
  }
  /** Users in name order, produced lazily. */
  users(): IterableIterator<User> {
    return this.tables.users.scan();
  }
  tenantById(id: number): Tenant | undefined {
    return this.tables.tenants.get(id);
  }
  tenantByName(name: string): Tenant | undefined {
    return this.tables.tenants.find(name);
  }
  tenants(): IterableIterator<Tenant> {
    return this.tables.tenants.scan();
  }
  databaseByName(tenantId: number, name: string): Database | undefined {
    return this.tables.databases.find(tenantScoped(tenantId, name));
  }
  /** Databases in tenant, then name order. */
  databases(): IterableIterator<Database> {
    return this.tables.databases.scan();
  }
  databaseById(id: number): Database | undefined {
    return this.tables.databases.get(id);
  }
  roleByName(tenantId: number, name: string): Role | undefined {
    return this.tables.roles.find(tenantScoped(tenantId, name));
  }
  roleById(id: number): Role | undefined {
    return this.tables.roles.get(id);
  }
  roles(): IterableIterator<Role> {
    return this.tables.roles.scan();
  }
  grantByKey(key: string): Grant | undefined {
    return this.tables.grants.find(key);
  }
  apiKeyByName(ownerKind: ApiKey['ownerKind'], ownerId: number, name: string): ApiKey | undefined {
    return this.tables.apiKeys.find(KEYS.apiKeys({ ownerKind, ownerId, name } as ApiKey));
  }
  /** Every API key, by owner then name. */
  apiKeys(): IterableIterator<ApiKey> {
    return this.tables.apiKeys.scan();
  }
  serviceAccountByName(name: string): ServiceAccount | undefined {
    return this.tables.serviceAccounts.find(name);
  }
  serviceAccountById(id: number): ServiceAccount | undefined {
    return this.tables.serviceAccounts.get(id);
  }
  serviceAccounts(): IterableIterator<ServiceAccount> {
    return this.tables.serviceAccounts.scan();
  }
  oidcProviderByName(name: string): OidcProvider | undefined {
    return this.tables.oidcProviders.find(name);
  }
  oidcProviders(): IterableIterator<OidcProvider> {
    return this.tables.oidcProviders.scan();
  }
  rlsPolicy(databaseId: number, collection: string, name: string): RlsPolicy | undefined {
    return this.tables.rlsPolicies.find(KEYS.rlsPolicies({ databaseId, collection, name } as RlsPolicy));
  }
  /** Policies by database, collection, name. */
  rlsPolicies(): IterableIterator<RlsPolicy> {
    return this.tables.rlsPolicies.scan();
  }
  /** The token issuer's signing keys, by kid (the current one has no retiresAt). */
  signingKeys(): IterableIterator<SigningKey> {
    return this.tables.signingKeys.scan();
  }
  refreshTokenByHash(hash: string): RefreshToken | undefined {
    return this.tables.refreshTokens.find(hash);
  }
  /** The refresh tokens rotated from one grant. */
  refreshTokenFamily(family: string): RefreshToken[] {
    return this.tables.refreshTokens.where('family', family);
  }
  /** The refresh tokens of one user or service account. */
  refreshTokensOf(ownerKind: 'user' | 'service_account', ownerId: number): RefreshToken[] {
    return this.tables.refreshTokens.where('owner', kindId(ownerKind === 'user', ownerId));
  }
  issuedTokenByJti(jti: string): IssuedToken | undefined {
    return this.tables.issuedTokens.find(jti);
  }
  /** Access tokens issued, by jti. */
  issuedTokens(): IterableIterator<IssuedToken> {
    return this.tables.issuedTokens.scan();
  }
  issuedTokensOf(ownerKind: 'user' | 'service_account', ownerId: number): IssuedToken[] {
    return this.tables.issuedTokens.where('owner', kindId(ownerKind === 'user', ownerId));
  }
  /** Every grant, in grantee order. */
  grants(): IterableIterator<Grant> {
    return this.tables.grants.scan();
  }
  /** The grants made to one user, custom role or service account (expired ones included). */
  grantsTo(kind: Grant['granteeKind'], id: number): Grant[] {
    const found = this.tables.grants.where('grantee', kindId(kind === 'user', id));
    // Roles and service accounts share the index's negative numbers (ids never collide,
    // being drawn from one counter); the kind keeps the answer exact regardless.
    return kind === 'user' ? found : found.filter((g) => g.granteeKind === kind);
  }
  /** A tenant's databases (in no particular order). */
  databasesOf(tenantId: number): Database[] {
    return this.tables.databases.where('tenant', tenantId);
  }
  /** The API keys of one user or service account (in no particular order). */
  apiKeysOf(ownerKind: 'user' | 'service_account', ownerId: number): ApiKey[] {
    return this.tables.apiKeys.where('owner', kindId(ownerKind === 'user', ownerId));
  }
  /** An API key by its public key id (what a login presents). */
  apiKeyById(id: number): ApiKey | undefined {
    return this.tables.apiKeys.get(id);
  }
  apiKeyByKeyId(keyId: string): ApiKey | undefined {
    return this.tables.apiKeys.where('keyId', keyId)[0];
  }
  /**
   * The rows of `table` whose names look like `row`'s (LOOKALIKE_KEYS: the same skeleton in
   * the same name space), from the index. Usually none or one; a catalog from before names
   * were checked may hold more.
   */
  lookalikes<T extends LookalikeTable>(table: T, row: Parameters<(typeof LOOKALIKE_KEYS)[T]>[0]): Rows[T][] {
    const keyOf = LOOKALIKE_KEYS[table] as (r: typeof row | Rows[T]) => string;
    const key = keyOf(row);
    return (this.tables[table] as TableReader<Rows[T]>).where(LOOKALIKE, lookalikeHash(key)).filter((r) => keyOf(r) === key);
  }
}

/**
 * The committed catalog: in-memory indexes rebuilt from the log at start and advanced by
 * `apply`, the one function that turns a Mutation into state (replay and commit alike).
 */
export class Catalog extends CatalogReader {
  readonly tables = {
    users: new Table<User>(KEYS.users, INDEXES.users),
    tenants: new Table<Tenant>(KEYS.tenants, INDEXES.tenants),
    databases: new Table<Database>(KEYS.databases, INDEXES.databases),
    roles: new Table<Role>(KEYS.roles, INDEXES.roles),
    grants: new Table<Grant>(KEYS.grants, INDEXES.grants),
    apiKeys: new Table<ApiKey>(KEYS.apiKeys, INDEXES.apiKeys),
    serviceAccounts: new Table<ServiceAccount>(KEYS.serviceAccounts, INDEXES.serviceAccounts),
    oidcProviders: new Table<OidcProvider>(KEYS.oidcProviders, INDEXES.oidcProviders),
    rlsPolicies: new Table<RlsPolicy>(KEYS.rlsPolicies, INDEXES.rlsPolicies),
    signingKeys: new Table<SigningKey>(KEYS.signingKeys, INDEXES.signingKeys),
    refreshTokens: new Table<RefreshToken>(KEYS.refreshTokens, INDEXES.refreshTokens),
    issuedTokens: new Table<IssuedToken>(KEYS.issuedTokens, INDEXES.issuedTokens),
  };
  private nextId = 1;
  serverSecret = '';

  get empty(): boolean {
    return this.serverSecret === '';
  }

  allocateId(): number {
    return this.nextId++;
  }

  peekNextId(): number {
    return this.nextId;
  }

  /** An id given from outside (IMPORT): never allocated again. */
  reserveId(id: number): void {
    if (id >= this.nextId) this.nextId = id + 1;
  }

  apply(m: Mutation): void {
    switch (m.op) {
      case 'init':
        this.serverSecret = m.serverSecret;
        if (m.nextId !== undefined && m.nextId > this.nextId) this.nextId = m.nextId;
        return;
      case 'insert':
      case 'update':
        (this.tables[m.table] as Table<Rows[TableName]>).put(m.row);
        if (m.row.id >= this.nextId) this.nextId = m.row.id + 1;
        return;
      case 'delete':
        this.tables[m.table].delete(m.id);
        return;
      case 'audit':
      case 'prepare':
      case 'decide':
        return;
    }
  }

  /** A snapshot chunk, indexed but not decoded (see Table.load). */
  load(part: SnapshotPart): void {
    if ('init' in part) return this.apply(part.init);
    if (!TABLE_NAMES.includes(part.table)) throw new Error(`a chunk of unknown table ${JSON.stringify(part.table)}`);
    const maxId = (this.tables[part.table] as Table<Rows[TableName]>).load(part);
    if (maxId >= this.nextId) this.nextId = maxId + 1;
  }

  /** The catalog as a snapshot holds it (rows never read since start-up are copied as bytes). */
  *snapshot(): Generator<SnapshotPart> {
    yield { init: { op: 'init', serverSecret: this.serverSecret, at: 0, nextId: this.nextId } };
    for (const table of TABLE_NAMES) {
      for (const chunk of this.tables[table].chunks(SNAPSHOT_CHUNK)) yield { table, ...chunk };
    }
  }
}

/** Snapshot chunks of `rows` of one table (for tools that write a data directory directly). */
export function* snapshotChunks<T extends TableName>(table: T, rows: Iterable<Rows[T]>): Generator<SnapshotPart> {
  let batch: Rows[T][] = [];
  const flush = function* (): Generator<SnapshotPart> {
    const t = new Table<Rows[T]>(KEYS[table] as (r: Rows[T]) => string, INDEXES[table] as Indexes<Rows[T]>);
    for (const r of batch) t.put(r);
    for (const c of t.chunks(SNAPSHOT_CHUNK)) yield { table, ...c };
    batch = [];
  };
  for (const r of rows) {
    batch.push(r);
    if (batch.length === SNAPSHOT_CHUNK) yield* flush();
  }
  if (batch.length > 0) yield* flush();
}

/** A view over `base` with uncommitted changes on top. */
export function viewsOver(base: Tables): { [T in TableName]: TableView<Rows[T]> } {
  return {
    users: new TableView(base.users, KEYS.users, INDEXES.users),
    tenants: new TableView(base.tenants, KEYS.tenants, INDEXES.tenants),
    databases: new TableView(base.databases, KEYS.databases, INDEXES.databases),
    roles: new TableView(base.roles, KEYS.roles, INDEXES.roles),
    grants: new TableView(base.grants, KEYS.grants, INDEXES.grants),
    apiKeys: new TableView(base.apiKeys, KEYS.apiKeys, INDEXES.apiKeys),
    serviceAccounts: new TableView(base.serviceAccounts, KEYS.serviceAccounts, INDEXES.serviceAccounts),
    oidcProviders: new TableView(base.oidcProviders, KEYS.oidcProviders, INDEXES.oidcProviders),
    rlsPolicies: new TableView(base.rlsPolicies, KEYS.rlsPolicies, INDEXES.rlsPolicies),
    signingKeys: new TableView(base.signingKeys, KEYS.signingKeys, INDEXES.signingKeys),
    refreshTokens: new TableView(base.refreshTokens, KEYS.refreshTokens, INDEXES.refreshTokens),
    issuedTokens: new TableView(base.issuedTokens, KEYS.issuedTokens, INDEXES.issuedTokens),
  };
}
