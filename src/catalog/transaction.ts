import { PgError } from '../errors/pg-error.js';
import { CatalogReader, KEYS, viewsOver, type Catalog } from './catalog.js';
import type { Mutation, Rows, TableName } from './model.js';
import type { TableView } from './table.js';

/**
 * A transaction's view: the committed catalog plus this transaction's own changes,
 * which no other session sees until commit. Mutations are kept in order for the log.
 */
export class CatalogTransaction extends CatalogReader {
  readonly mutations: Mutation[] = [];
  readonly tables: { [T in TableName]: TableView<Rows[T]> };

  constructor(private readonly base: Catalog) {
    super();
    this.tables = viewsOver(base.tables);
  }

  get serverSecret(): string {
    return this.base.serverSecret;
  }

  get dirty(): boolean {
    return this.mutations.length > 0;
  }

  /** Rewrites rows as statements write them (IMPORT, for the statement that carries it). */
  rowHook: (<T extends TableName>(table: T, row: Rows[T]) => Rows[T]) | null = null;

  allocateId(): number {
    return this.base.allocateId();
  }

  reserveId(id: number): void {
    this.base.reserveId(id);
  }

  insert<T extends TableName>(table: T, row: Rows[T]): void {
    this.record({ op: 'insert', table, row: this.rowHook ? this.rowHook(table, row) : row } as Mutation);
  }

  update<T extends TableName>(table: T, row: Rows[T]): void {
    this.record({ op: 'update', table, row: this.rowHook ? this.rowHook(table, row) : row } as Mutation);
  }

  delete(table: TableName, id: number): void {
    this.record({ op: 'delete', table, id });
  }

  record(m: Mutation): void {
    this.mutations.push(m);
    if (m.op === 'insert' || m.op === 'update') (this.tables[m.table] as TableView<Rows[TableName]>).put(m.row);
    else if (m.op === 'delete') this.tables[m.table].delete(m.id);
  }
}

/**
 * Checks that a commit still applies to the committed state: another session may have
 * committed a conflicting change since this transaction read it. Each mutation is checked
 * against the committed state plus the ones before it in the same commit.
 */
export function checkCommit(base: Catalog, ms: Mutation[], accepted: Mutation[][] = []): void {
  const view = new CatalogTransaction(base);
  // Commits accepted but not yet durable come first in the log: check against them too.
  for (const earlier of accepted) for (const m of earlier) view.record(m);
  for (const m of ms) {
    if (m.op === 'insert' || m.op === 'update') {
      const t = view.tables[m.table] as TableView<Rows[TableName]>;
      const key = keyOf(m.table, m.row);
      const holder = t.find(key);
      if (m.op === 'insert' && (holder || t.get(m.row.id))) throw conflict(m.table, key);
      if (m.op === 'update' && !t.get(m.row.id)) throw conflict(m.table, key);
      if (holder && holder.id !== m.row.id) throw conflict(m.table, key);
    } else if (m.op === 'delete' && !view.tables[m.table].get(m.id)) {
      throw conflict(m.table, `#${m.id}`);
    }
    view.record(m);
  }
}

const keyOf = (table: TableName, row: Rows[TableName]) => (KEYS[table] as (r: Rows[TableName]) => string)(row);

const conflict = (table: TableName, key: string) =>
  new PgError('serialization_failure', 'could not serialize access due to concurrent update', {
    detail: `${table.replace(/s$/, '')} ${key.replace(/^0+(?=\d)/, '')} was changed by another session after this transaction read it.`,
    hint: 'Retry the transaction.',
  });
