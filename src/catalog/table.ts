import { compareNames } from './names.js';

export interface Row {
  id: number;
}

/** Read access shared by a committed table and a transaction's view of it. */
export interface TableReader<R extends Row> {
  get(id: number): R | undefined;
  /** By the table's unique key. */
  find(key: string): R | undefined;
  /** Rows in key order, produced lazily. */
  scan(): IterableIterator<R>;
  /** Rows whose secondary index `index` has `key` (in no particular order). */
  where(index: string, key: IndexKey): R[];
}

/** An index key: a number where one will do (a Map keyed by numbers is twice as fast to fill). */
export type IndexKey = string | number;

/** Secondary indexes of a table: name → the index key of a row. */
export type Indexes<R> = Record<string, (r: R) => IndexKey>;

/**
 * One kind of catalog object: rows by id, plus a unique key (a name, or tenant + name)
 * kept sorted on demand, so SHOW streams in a stable order.
 */
export class Table<R extends Row> implements TableReader<R> {
  private readonly byId = new Map<number, R>();
  private readonly byKey = new Map<string, R>();
  /** Keys in order, built on the first scan and then kept in order by binary insertion. */
  private sortedKeys: string[] | null = null;
  /** Index key → its row, or its rows by id once there are several (most keys have one). */
  private readonly secondary = new Map<string, { of: (r: R) => IndexKey; rows: Map<IndexKey, R | Map<number, R>> }>();

  constructor(
    readonly key: (r: R) => string,
    indexes: Indexes<R> = {},
  ) {
    for (const [name, of] of Object.entries(indexes)) this.secondary.set(name, { of, rows: new Map() });
  }

  get size(): number {
    return this.byId.size;
  }

  get(id: number): R | undefined {
    return this.byId.get(id);
  }

  find(key: string): R | undefined {
    return this.byKey.get(key);
  }

  where(index: string, key: IndexKey): R[] {
    const ix = this.secondary.get(index);
    if (!ix) throw new Error(`no index ${index}`);
    const rows = ix.rows.get(key);
    if (rows === undefined) return [];
    return rows instanceof Map ? [...rows.values()] : [rows];
  }

  *scan(): IterableIterator<R> {
    this.sortedKeys ??= [...this.byKey.keys()].sort(compareNames);
    for (const k of this.sortedKeys) {
      const r = this.byKey.get(k);
      if (r) yield r;
    }
  }

  put(r: R): void {
    const old = this.byId.get(r.id);
    const key = this.key(r);
    if (old) {
      const oldKey = this.key(old);
      if (oldKey !== key) {
        this.byKey.delete(oldKey);
        this.unsort(oldKey);
      }
      this.unindex(old);
    }
    if (!this.byKey.has(key)) this.sort(key);
    this.byId.set(r.id, r);
    this.byKey.set(key, r);
    for (const ix of this.secondary.values()) {
      const k = ix.of(r);
      const rows = ix.rows.get(k);
      if (rows === undefined || (!(rows instanceof Map) && rows.id === r.id)) ix.rows.set(k, r);
      else if (rows instanceof Map) rows.set(r.id, r);
      else ix.rows.set(k, new Map([[rows.id, rows], [r.id, r]]));
    }
  }

  delete(id: number): void {
    const old = this.byId.get(id);
    if (!old) return;
    this.byId.delete(id);
    this.byKey.delete(this.key(old));
    this.unsort(this.key(old));
    this.unindex(old);
  }

  private unindex(old: R): void {
    for (const ix of this.secondary.values()) {
      const k = ix.of(old);
      const rows = ix.rows.get(k);
      if (rows instanceof Map) {
        rows.delete(old.id);
        if (rows.size === 0) ix.rows.delete(k);
      } else if (rows?.id === old.id) ix.rows.delete(k);
    }
  }

  // O(log n) to find, one memmove to shift: a change never re-sorts a large table.
  private sort(key: string): void {
    if (!this.sortedKeys) return;
    this.sortedKeys.splice(lowerBound(this.sortedKeys, key), 0, key);
  }

  private unsort(key: string): void {
    if (!this.sortedKeys) return;
    const i = lowerBound(this.sortedKeys, key);
    if (this.sortedKeys[i] === key) this.sortedKeys.splice(i, 1);
  }
}

function lowerBound(keys: string[], key: string): number {
  let lo = 0;
  let hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (compareNames(keys[mid]!, key) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** A transaction's view of a table: its own changes over the committed rows. */
export class TableView<R extends Row> implements TableReader<R> {
  /** id → new row, or null when deleted in this transaction. */
  private readonly changed = new Map<number, R | null>();
  private readonly keys = new Map<string, number | null>();

  constructor(
    private readonly base: TableReader<R>,
    private readonly key: (r: R) => string,
    private readonly indexes: Indexes<R> = {},
  ) {}

  where(index: string, key: IndexKey): R[] {
    const out = this.base.where(index, key).filter((r) => !this.changed.has(r.id));
    const of = this.indexes[index]!;
    for (const r of this.changed.values()) if (r !== null && of(r) === key) out.push(r);
    return out;
  }

  get(id: number): R | undefined {
    if (this.changed.has(id)) return this.changed.get(id) ?? undefined;
    return this.base.get(id);
  }

  find(key: string): R | undefined {
    if (this.keys.has(key)) {
      const id = this.keys.get(key);
      return id === null || id === undefined ? undefined : (this.changed.get(id) ?? undefined);
    }
    const r = this.base.find(key);
    // A row renamed or deleted in this transaction is no longer found under its old key.
    return r && this.changed.has(r.id) ? undefined : r;
  }

  *scan(): IterableIterator<R> {
    if (this.changed.size === 0) {
      yield* this.base.scan();
      return;
    }
    const mine = [...this.changed.values()].filter((r): r is R => r !== null).sort((a, b) => compareNames(this.key(a), this.key(b)));
    let i = 0;
    for (const r of this.base.scan()) {
      while (i < mine.length && compareNames(this.key(mine[i]!), this.key(r)) < 0) yield mine[i++]!;
      if (!this.changed.has(r.id)) yield r;
    }
    while (i < mine.length) yield mine[i++]!;
  }

  put(r: R): void {
    const old = this.get(r.id);
    if (old && this.key(old) !== this.key(r)) this.keys.set(this.key(old), null);
    this.changed.set(r.id, r);
    this.keys.set(this.key(r), r.id);
  }

  delete(id: number): void {
    const old = this.get(id);
    if (old) this.keys.set(this.key(old), null);
    this.changed.set(id, null);
  }
}
