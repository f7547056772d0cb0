import type { Catalog, CatalogReader } from './catalog.js';
import { compareNames } from './catalog.js';
import { PgError } from '../errors/pg-error.js';
import type { Database, Mutation, Tenant, User } from './model.js';

/**
 * A transaction's view: the committed catalog plus this transaction's own changes,
 * which no other session sees until commit. Mutations are kept in order for the log.
 */
export class CatalogTransaction implements CatalogReader {
  readonly mutations: Mutation[] = [];
  /** Users changed by this transaction: id → new row, or null when dropped. */
  private readonly changed = new Map<number, User | null>();
  private readonly byName = new Map<string, number | null>();

  constructor(private readonly base: Catalog) {}

  get serverSecret(): string {
    return this.base.serverSecret;
  }

  get dirty(): boolean {
    return this.mutations.length > 0;
  }

  allocateId(): number {
    return this.base.allocateId();
  }

  userById(id: number): User | undefined {
    if (this.changed.has(id)) return this.changed.get(id) ?? undefined;
    return this.base.userById(id);
  }

  userByName(name: string): User | undefined {
    if (this.byName.has(name)) {
      const id = this.byName.get(name);
      return id === null || id === undefined ? undefined : (this.changed.get(id) ?? undefined);
    }
    const u = this.base.userByName(name);
    // A user renamed or dropped in this transaction is no longer found under its old name.
    if (u && this.changed.has(u.id)) return undefined;
    return u;
  }

  *users(): IterableIterator<User> {
    if (this.changed.size === 0) {
      yield* this.base.users();
      return;
    }
    const mine = [...this.changed.values()].filter((u): u is User => u !== null).sort((a, b) => compareNames(a.name, b.name));
    let i = 0;
    for (const u of this.base.users()) {
      while (i < mine.length && compareNames(mine[i]!.name, u.name) < 0) yield mine[i++]!;
      if (!this.changed.has(u.id)) yield u;
    }
    while (i < mine.length) yield mine[i++]!;
  }

  tenantById(id: number): Tenant | undefined {
    return this.base.tenantById(id);
  }

  databaseByName(tenantId: number, name: string): Database | undefined {
    return this.base.databaseByName(tenantId, name);
  }

  record(m: Mutation): void {
    this.mutations.push(m);
    switch (m.op) {
      case 'user.create':
      case 'user.update': {
        const old = this.userById(m.user.id);
        if (old && old.name !== m.user.name) this.byName.set(old.name, null);
        this.changed.set(m.user.id, m.user);
        this.byName.set(m.user.name, m.user.id);
        return;
      }
      case 'user.delete': {
        const old = this.userById(m.id);
        if (old) this.byName.set(old.name, null);
        this.changed.set(m.id, null);
        return;
      }
      default:
        return;
    }
  }
}

/**
 * Checks that a commit still applies to the committed state: another session may have
 * committed a conflicting change since this transaction read it. Each mutation is checked
 * against the committed state plus the ones before it in the same commit.
 */
export function checkCommit(base: Catalog, ms: Mutation[]): void {
  const view = new CatalogTransaction(base);
  for (const m of ms) {
    switch (m.op) {
      case 'user.create':
        if (view.userByName(m.user.name) || view.userById(m.user.id)) throw conflict(`user "${m.user.name}"`);
        break;
      case 'user.update': {
        if (!view.userById(m.user.id)) throw conflict(`user "${m.user.name}"`);
        const other = view.userByName(m.user.name);
        if (other && other.id !== m.user.id) throw conflict(`user "${m.user.name}"`);
        break;
      }
      case 'user.delete':
        if (!view.userById(m.id)) throw conflict('a user');
        break;
      default:
        break;
    }
    view.record(m);
  }
}

const conflict = (what: string) =>
  new PgError('serialization_failure', 'could not serialize access due to concurrent update', {
    detail: `${what} was changed by another session after this transaction read it.`,
    hint: 'Retry the transaction.',
  });
