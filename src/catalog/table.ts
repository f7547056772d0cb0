import { isAscii } from 'node:buffer';
import { compareNames } from './names.js';
import { HashIndex } from './hash-index.js';
import { IdMap, KeyMap } from './id-map.js';

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
  /**
   * Changes whenever a row is added, replaced or removed, and differs between tables; null
   * for a transaction's view with changes of its own. What was computed from a table under
   * one version holds while the version stays the same.
   */
  readonly version: number | null;
}

/** Table versions come from one counter, so no two tables (or two catalogs) share one. */
let lastVersion = 0;

/** An index key: a number where one will do (a Map keyed by numbers is twice as fast to fill). */
export type IndexKey = string | number;

/** Secondary indexes of a table: name → the index key of a row. */
export type Indexes<R> = Record<string, ((r: R) => IndexKey) & { hashed?: true }>;

/**
 * An index whose keys are hashes (integers from 1 to 2^31 - 1) that rarely collide: kept in
 * a HashIndex, not a Map. Rows that share a hash are all returned; the caller tells them apart.
 */
export function hashedIndex<R>(of: (r: R) => number): ((r: R) => number) & { hashed: true } {
  return Object.assign((r: R) => of(r), { hashed: true as const });
}

/**
 * Rows of a table as a snapshot holds them: their JSON back to back, with what the indexes
 * need per row, so a table is indexed at start-up without decoding a single row.
 */
export interface RowChunk {
  /** The secondary indexes whose keys each row carries, by name, in the table's order. */
  indexes: string[];
  /** Per row: id, byte length of its JSON, unique key, then its key in each index. */
  keys: IndexKey[];
  /** The rows' JSON (UTF-8), back to back. */
  rows: Buffer;
}

/** Rows of a loaded chunk not yet decoded: each is parsed on first access (see `wake`). */
interface Dormant {
  bytes: Buffer | null;
  /** Row i is bytes[offsets[i], offsets[i + 1]). */
  offsets: Uint32Array;
  /** Rows still asleep; the bytes are let go when none is left. */
  left: number;
}

/**
 * A row's JSON as a string: ASCII (nearly every row) decodes faster as latin1. Checked per
 * row when it wakes, not per chunk at start-up, where it was a pass over every byte.
 */
const text = (bytes: Buffer): string => bytes.toString(isAscii(bytes) ? 'latin1' : 'utf8');

/** A dormant row's slot: chunk number × ROWS_PER_CHUNK + row, a small integer (no object per row). */
const ROWS_PER_CHUNK = 65536;
const MAX_CHUNKS = 32768;

/** Where a secondary index keeps the ids of the rows under each of its keys. */
interface IndexStore {
  add(key: IndexKey, id: number): void;
  remove(key: IndexKey, id: number): void;
  get(key: IndexKey): number | Iterable<number> | undefined;
}

/** Index key → the id of its row, or its ids once there are several (most keys have one). */
class KeyIndex implements IndexStore {
  private readonly rows = new KeyMap<number | Set<number>>();

  add(key: IndexKey, id: number): void {
    const ids = this.rows.get(key);
    if (ids === undefined || ids === id) this.rows.set(key, id);
    else if (typeof ids === 'number') this.rows.set(key, new Set([ids, id]));
    else ids.add(id);
  }

  remove(key: IndexKey, id: number): void {
    const ids = this.rows.get(key);
    if (ids === id) this.rows.delete(key);
    else if (typeof ids === 'object') {
      ids.delete(id);
      if (ids.size === 0) this.rows.delete(key);
    }
  }

  get(key: IndexKey): number | Set<number> | undefined {
    return this.rows.get(key);
  }
}

/** A HashIndex as an IndexStore (its keys are always numbers). */
class HashedKeyIndex extends HashIndex implements IndexStore {
  override add(key: IndexKey, id: number): void {
    super.add(key as number, id);
  }
  override remove(key: IndexKey, id: number): void {
    super.remove(key as number, id);
  }
  override get(key: IndexKey): number[] {
    return typeof key === 'number' ? super.get(key) : [];
  }
}

/**
 * One kind of catalog object: rows by id, plus a unique key (a name, or tenant + name)
 * kept sorted on demand, so SHOW streams in a stable order. Keys and indexes map to ids;
 * `byId` holds the row, or — for a row loaded from a snapshot and not yet read — the
 * place of its JSON: a million-row table is indexed at start-up without a million objects.
 */
export class Table<R extends Row> implements TableReader<R> {
  private readonly byId = new IdMap<R | number>();
  private readonly byKey = new Map<string, number>();
  /** Keys in order, built on the first scan and then kept in order by binary insertion. */
  private sortedKeys: string[] | null = null;
  private readonly secondary = new Map<string, { of: (r: R) => IndexKey; rows: IndexStore }>();
  private readonly dormant: Dormant[] = [];

  constructor(
    readonly key: (r: R) => string,
    indexes: Indexes<R> = {},
  ) {
    for (const [name, of] of Object.entries(indexes)) this.secondary.set(name, { of, rows: of.hashed ? new HashedKeyIndex() : new KeyIndex() });
  }

  get size(): number {
    return this.byId.size;
  }

  get(id: number): R | undefined {
    const slot = this.byId.get(id);
    return typeof slot === 'number' ? this.wake(id, slot) : slot;
  }

  find(key: string): R | undefined {
    const id = this.byKey.get(key);
    return id === undefined ? undefined : this.get(id);
  }

  where(index: string, key: IndexKey): R[] {
    const ix = this.secondary.get(index);
    if (!ix) throw new Error(`no index ${index}`);
    const ids = ix.rows.get(key);
    if (ids === undefined) return [];
    return typeof ids === 'number' ? [this.get(ids)!] : [...ids].map((id) => this.get(id)!);
  }

  *scan(): IterableIterator<R> {
    this.sortedKeys ??= [...this.byKey.keys()].sort(compareNames);
    for (const k of this.sortedKeys) {
      const id = this.byKey.get(k);
      if (id !== undefined) yield this.get(id)!;
    }
  }

  get version(): number {
    return this.changedAt;
  }

  private changedAt = ++lastVersion;

  put(r: R): void {
    this.changedAt = ++lastVersion;
    const old = this.get(r.id);
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
    this.byKey.set(key, r.id);
    for (const ix of this.secondary.values()) ix.rows.add(ix.of(r), r.id);
  }

  delete(id: number): void {
    const old = this.get(id);
    if (!old) return;
    this.changedAt = ++lastVersion;
    this.byId.delete(id);
    this.byKey.delete(this.key(old));
    this.unsort(this.key(old));
    this.unindex(old);
  }

  /**
   * Adds a snapshot chunk's rows without decoding them (returns the highest id): ids, keys and index keys go into the
   * maps, the JSON stays as bytes until a row is first read. A chunk written under other
   * indexes than this build's (an upgrade that added one) is decoded and put row by row.
   */
  load(chunk: RowChunk): number {
    this.changedAt = ++lastVersion;
    const stride = 3 + chunk.indexes.length;
    const n = chunk.keys.length / stride;
    let maxId = 0;
    if ([...this.secondary.keys()].join() !== chunk.indexes.join() || n >= ROWS_PER_CHUNK || this.dormant.length >= MAX_CHUNKS) {
      for (const r of decodeRows<R>(chunk)) {
        this.put(r);
        maxId = Math.max(maxId, r.id);
      }
      return maxId;
    }
    const base = this.dormant.length * ROWS_PER_CHUNK;
    const offsets = rowOffsets(chunk);
    this.dormant.push({ bytes: chunk.rows, offsets, left: n });
    this.sortedKeys = null;
    const ixs = [...this.secondary.values()].map((ix) => ix.rows);
    const keys = chunk.keys;
    for (let i = 0, j = 0; i < n; i++, j += stride) {
      const id = keys[j] as number;
      if (id > maxId) maxId = id;
      this.byId.set(id, base + i);
      this.byKey.set(keys[j + 2] as string, id);
      for (let x = 0; x < ixs.length; x++) ixs[x]!.add(keys[j + 3 + x]!, id);
    }
    return maxId;
  }

  /** The rows as snapshot chunks of at most `size` rows (dormant rows keep their bytes). */
  *chunks(size: number): Generator<RowChunk> {
    const indexes = [...this.secondary.keys()];
    const ofs = [...this.secondary.values()].map((ix) => ix.of);
    let keys: IndexKey[] = [];
    let rows: Buffer[] = [];
    for (const [id, slot] of this.byId.entries()) {
      const json = typeof slot === 'number' ? this.bytesOf(slot) : Buffer.from(JSON.stringify(slot), 'utf8');
      // A dormant row is decoded for its keys but not kept: compaction does not wake the table.
      const row = typeof slot === 'number' ? (JSON.parse(json.toString('utf8')) as R) : slot;
      keys.push(id, json.length, this.key(row));
      for (const of of ofs) keys.push(of(row));
      rows.push(json);
      if (rows.length === size) {
        yield { indexes, keys, rows: Buffer.concat(rows) };
        keys = [];
        rows = [];
      }
    }
    if (rows.length > 0) yield { indexes, keys, rows: Buffer.concat(rows) };
  }

  private bytesOf(slot: number): Buffer {
    const d = this.dormant[Math.floor(slot / ROWS_PER_CHUNK)]!;
    const i = slot % ROWS_PER_CHUNK;
    return d.bytes!.subarray(d.offsets[i], d.offsets[i + 1]);
  }

  /** Decodes a dormant row on its first read; from then on the table holds the object. */
  private wake(id: number, slot: number): R {
    const d = this.dormant[Math.floor(slot / ROWS_PER_CHUNK)]!;
    const i = slot % ROWS_PER_CHUNK;
    const row = JSON.parse(text(d.bytes!.subarray(d.offsets[i], d.offsets[i + 1]))) as R;
    this.byId.set(id, row);
    if (--d.left === 0) d.bytes = null;
    return row;
  }

  private unindex(old: R): void {
    for (const ix of this.secondary.values()) ix.rows.remove(ix.of(old), old.id);
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

/** Where each row of a chunk starts and ends: row i is rows[offsets[i], offsets[i + 1]). */
function rowOffsets(chunk: RowChunk): Uint32Array {
  const stride = 3 + chunk.indexes.length;
  const n = chunk.keys.length / stride;
  const offsets = new Uint32Array(n + 1);
  for (let i = 0; i < n; i++) offsets[i + 1] = offsets[i]! + (chunk.keys[i * stride + 1] as number);
  return offsets;
}

/** A chunk's rows, decoded (for a table whose indexes changed since the snapshot). */
function* decodeRows<R>(chunk: RowChunk): Generator<R> {
  const offsets = rowOffsets(chunk);
  for (let i = 0; i + 1 < offsets.length; i++) yield JSON.parse(text(chunk.rows.subarray(offsets[i], offsets[i + 1]))) as R;
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
  /**
   * id → new row, or null when deleted in this transaction; unique key → id (null: no
   * longer there). Both start as the shared empty map: a statement opens a view over every
   * table and changes one or two.
   */
  private changed: Map<number, R | null> = NO_CHANGES;
  private keys: Map<string, number | null> = NO_CHANGES;
  /**
   * Per secondary index, this transaction's own rows by their key in it: built on the
   * index's first lookup, then kept as rows change. A lookup does not go through every
   * change: in a file of 100,000 CREATE USER applied as one transaction, each statement's
   * look-alike lookup would otherwise compute the skeleton of every user before it.
   */
  private mine: Map<string, ChangedIndex> | null = null;

  constructor(
    private readonly base: TableReader<R>,
    private readonly key: (r: R) => string,
    private readonly indexes: Indexes<R> = {},
  ) {}

  /** The committed table's, until this transaction changes the table. */
  get version(): number | null {
    return this.changed.size === 0 ? this.base.version : null;
  }

  where(index: string, key: IndexKey): R[] {
    const out = this.base.where(index, key).filter((r) => !this.changed.has(r.id));
    if (this.changed.size === 0) return out;
    for (const id of this.changedIndex(index).byKey.get(key) ?? []) out.push(this.changed.get(id)!);
    return out;
  }

  private changedIndex(index: string): ChangedIndex {
    this.mine ??= new Map();
    let ix = this.mine.get(index);
    if (!ix) {
      const of = this.indexes[index]!;
      ix = { byKey: new Map(), keyOf: new Map() };
      for (const [id, r] of this.changed) if (r !== null) addChanged(ix, of(r), id);
      this.mine.set(index, ix);
    }
    return ix;
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
    this.own();
    const old = this.get(r.id);
    if (old && this.key(old) !== this.key(r)) this.keys.set(this.key(old), null);
    this.changed.set(r.id, r);
    this.keys.set(this.key(r), r.id);
    if (this.mine) {
      for (const [name, ix] of this.mine) {
        removeChanged(ix, r.id);
        addChanged(ix, this.indexes[name]!(r), r.id);
      }
    }
  }

  delete(id: number): void {
    this.own();
    const old = this.get(id);
    if (old) this.keys.set(this.key(old), null);
    this.changed.set(id, null);
    if (this.mine) for (const ix of this.mine.values()) removeChanged(ix, id);
  }

  private own(): void {
    if (this.changed !== (NO_CHANGES as Map<number, R | null>)) return;
    this.changed = new Map();
    this.keys = new Map();
  }
}

/** A transaction's own rows by their key in one index (TableView.mine). */
interface ChangedIndex {
  byKey: Map<IndexKey, Set<number>>;
  keyOf: Map<number, IndexKey>;
}

function addChanged(ix: ChangedIndex, key: IndexKey, id: number): void {
  ix.keyOf.set(id, key);
  const ids = ix.byKey.get(key);
  if (ids) ids.add(id);
  else ix.byKey.set(key, new Set([id]));
}

function removeChanged(ix: ChangedIndex, id: number): void {
  const key = ix.keyOf.get(id);
  if (key === undefined) return;
  ix.keyOf.delete(id);
  const ids = ix.byKey.get(key)!;
  ids.delete(id);
  if (ids.size === 0) ix.byKey.delete(key);
}

/** The changes of a view that has none (never written: `own` replaces it first). */
const NO_CHANGES = new Map<never, never>();
