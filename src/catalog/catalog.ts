import type { Database, Mutation, Tenant, User } from './model.js';

/** Read access to a catalog state: the committed catalog, or a transaction's view of it. */
export interface CatalogReader {
  userById(id: number): User | undefined;
  userByName(name: string): User | undefined;
  /** Users in name order, produced lazily. */
  users(): IterableIterator<User>;
  tenantById(id: number): Tenant | undefined;
  databaseByName(tenantId: number, name: string): Database | undefined;
  readonly serverSecret: string;
}

/**
 * The committed catalog: in-memory indexes rebuilt from the log at start and advanced by
 * `apply`, the one function that turns a Mutation into state (replay and commit alike).
 */
export class Catalog implements CatalogReader {
  private readonly usersById = new Map<number, User>();
  private readonly usersByName = new Map<string, User>();
  private sortedNames: string[] | null = null;
  private readonly tenants = new Map<number, Tenant>();
  private readonly databases = new Map<string, Database>();
  private nextId = 1;
  serverSecret = '';

  get empty(): boolean {
    return this.serverSecret === '';
  }

  allocateId(): number {
    return this.nextId++;
  }

  userById(id: number): User | undefined {
    return this.usersById.get(id);
  }

  userByName(name: string): User | undefined {
    return this.usersByName.get(name);
  }

  *users(): IterableIterator<User> {
    if (!this.sortedNames) this.sortedNames = [...this.usersByName.keys()].sort(compareNames);
    const names = this.sortedNames;
    for (const n of names) {
      const u = this.usersByName.get(n);
      if (u) yield u;
    }
  }

  tenantById(id: number): Tenant | undefined {
    return this.tenants.get(id);
  }

  databaseByName(tenantId: number, name: string): Database | undefined {
    return this.databases.get(`${tenantId}/${name}`);
  }

  apply(m: Mutation): void {
    switch (m.op) {
      case 'init':
        this.serverSecret = m.serverSecret;
        return;
      case 'tenant.create':
        this.tenants.set(m.tenant.id, m.tenant);
        this.bump(m.tenant.id);
        return;
      case 'database.create':
        this.databases.set(`${m.database.tenantId}/${m.database.name}`, m.database);
        this.bump(m.database.id);
        return;
      case 'user.create':
        this.usersById.set(m.user.id, m.user);
        this.usersByName.set(m.user.name, m.user);
        this.sortedNames = null;
        this.bump(m.user.id);
        return;
      case 'user.update': {
        const old = this.usersById.get(m.user.id);
        if (old && old.name !== m.user.name) {
          this.usersByName.delete(old.name);
          this.sortedNames = null;
        }
        this.usersById.set(m.user.id, m.user);
        this.usersByName.set(m.user.name, m.user);
        return;
      }
      case 'user.delete': {
        const old = this.usersById.get(m.id);
        if (!old) return;
        this.usersById.delete(m.id);
        this.usersByName.delete(old.name);
        this.sortedNames = null;
        return;
      }
    }
  }

  private bump(id: number): void {
    if (id >= this.nextId) this.nextId = id + 1;
  }
}

/** Names sort by code point, like PostgreSQL's "C" collation: stable across machines. */
export const compareNames = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

