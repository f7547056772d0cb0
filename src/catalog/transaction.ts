import { PgError } from '../errors/pg-error.js';
import { CatalogReader, KEYS, viewsOver, type Catalog } from './catalog.js';
import type { Mutation, OidcProvider, Rows, TableName } from './model.js';
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
      if (m.table === 'oidcProviders') checkProviderRouting(view, m.row as OidcProvider);
    } else if (m.op === 'delete' && !view.tables[m.table].get(m.id)) {
      throw conflict(m.table, `#${m.id}`);
    }
    view.record(m);
  }
}

/**
 * Two OIDC providers a token could both match: the same issuer, and the same audience or
 * '*' on either side ('*' matches every audience). CREATE and ALTER OIDC PROVIDER refuse
 * such a pair (42710), and the commit check below keeps two concurrent transactions from
 * making one between them.
 */
export function providersClash(a: OidcProvider, b: OidcProvider): boolean {
  return a.issuer === b.issuer && (a.audience === b.audience || a.audience === '*' || b.audience === '*');
}

/**
 * A provider's (issuer, audience) is a key of its own, which a name key cannot express: a
 * provider created, or altered to another issuer or audience, must not clash with one
 * another session committed since this transaction looked (each transaction checked only
 * what it saw). An update that keeps the committed issuer and audience is not checked, as
 * the statement does not check it: a clash already in the catalog does not block the ALTER
 * that resolves it.
 */
function checkProviderRouting(view: CatalogTransaction, row: OidcProvider): void {
  const before = view.tables.oidcProviders.get(row.id);
  if (before && before.issuer === row.issuer && before.audience === row.audience) return;
  for (const other of view.tables.oidcProviders.scan()) {
    if (other.id === row.id || !providersClash(other, row)) continue;
    throw new PgError('serialization_failure', 'could not serialize access due to concurrent update', {
      detail: `OIDC provider "${row.name}" and OIDC provider "${other.name}", committed by another session after this transaction read the providers, would both match tokens of issuer "${row.issuer}".`,
      hint: 'Retry the transaction.',
    });
  }
}

const keyOf = (table: TableName, row: Rows[TableName]) => (KEYS[table] as (r: Rows[TableName]) => string)(row);

const conflict = (table: TableName, key: string) =>
  new PgError('serialization_failure', 'could not serialize access due to concurrent update', {
    detail: `${table.replace(/s$/, '')} ${key.replace(/^0+(?=\d)/, '')} was changed by another session after this transaction read it.`,
    hint: 'Retry the transaction.',
  });
