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
}

/**
 * One kind of catalog object: rows by id, plus a unique key (a name, or tenant + name)
 * kept sorted on demand, so SHOW streams in a stable order.
 */
export class Table<R extends Row> implements TableReader<R> {
  private readonly byId = new Map<number, R>();
  private readonly byKey = new Map<string, R>();
  private sortedKeys: string[] | null = null;

  constructor(readonly key: (r: R) => string) {}

  get size(): number {
    return this.byId.size;
  }

  get(id: number): R | undefined {
    return this.byId.get(id);
  }

  find(key: string): R | undefined {
    return this.byKey.get(key);
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
    if (old) {
      const oldKey = this.key(old);
      if (oldKey !== this.key(r)) {
        this.byKey.delete(oldKey);
        this.sortedKeys = null;
      }
    } else this.sortedKeys = null;
    if (!this.byKey.has(this.key(r))) this.sortedKeys = null;
    this.byId.set(r.id, r);
    this.byKey.set(this.key(r), r);
  }

  delete(id: number): void {
    const old = this.byId.get(id);
    if (!old) return;
    this.byId.delete(id);
    this.byKey.delete(this.key(old));
    this.sortedKeys = null;
  }
}

/** A transaction's view of a table: its own changes over the committed rows. */
export class TableView<R extends Row> implements TableReader<R> {
  /** id → new row, or null when deleted in this transaction. */
  private readonly changed = new Map<number, R | null>();
  private readonly keys = new Map<string, number | null>();

  constructor(private readonly base: TableReader<R>, private readonly key: (r: R) => string) {}

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
