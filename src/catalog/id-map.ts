/** Ids per page: a page is a plain array of this many slots (4 KiB of pointers). */
const PAGE_BITS = 10;
const PAGE = 1 << PAGE_BITS;
const MASK = PAGE - 1;
/** Ids past this (only IMPORT or TENANT ... ID can give such) go to a Map. */
const MAX_PAGED = 2 ** 30;

/**
 * Values by catalog id. Ids come from the catalog's one counter, so they are dense: pages
 * of plain arrays hold them with no hashing, which makes filling a million-row table at
 * start-up several times cheaper than a Map. Iterates in id order.
 */
export class IdMap<V> {
  private readonly pages: (V | undefined)[][] = [];
  private readonly far = new Map<number, V>();
  private count = 0;

  get size(): number {
    return this.count + this.far.size;
  }

  get(id: number): V | undefined {
    if (!paged(id)) return this.far.get(id);
    return this.pages[id >>> PAGE_BITS]?.[id & MASK];
  }

  set(id: number, v: V): void {
    if (!paged(id)) {
      this.far.set(id, v);
      return;
    }
    const p = id >>> PAGE_BITS;
    const page = (this.pages[p] ??= new Array<V | undefined>(PAGE).fill(undefined));
    if (page[id & MASK] === undefined) this.count++;
    page[id & MASK] = v;
  }

  delete(id: number): void {
    if (!paged(id)) {
      this.far.delete(id);
      return;
    }
    const page = this.pages[id >>> PAGE_BITS];
    if (page?.[id & MASK] === undefined) return;
    page[id & MASK] = undefined;
    this.count--;
  }

  *entries(): IterableIterator<[number, V]> {
    for (let p = 0; p < this.pages.length; p++) {
      const page = this.pages[p];
      if (!page) continue;
      for (let i = 0; i < PAGE; i++) {
        const v = page[i];
        if (v !== undefined) yield [p * PAGE + i, v];
      }
    }
    yield* [...this.far.entries()].sort((a, b) => a[0] - b[0]);
  }
}

function paged(id: number): boolean {
  return id >= 0 && id < MAX_PAGED && Number.isInteger(id);
}

/**
 * Values by index key: integer keys (ids, and the negated ids of index keys that tell two
 * kinds apart) in IdMaps, others in a Map.
 */
export class KeyMap<V> {
  private readonly positive = new IdMap<V>();
  private readonly negative = new IdMap<V>();
  private readonly other = new Map<string | number, V>();

  get(k: string | number): V | undefined {
    if (typeof k !== 'number') return this.other.get(k);
    return k >= 0 ? this.positive.get(k) : this.negative.get(-k);
  }

  set(k: string | number, v: V): void {
    if (typeof k !== 'number') this.other.set(k, v);
    else if (k >= 0) this.positive.set(k, v);
    else this.negative.set(-k, v);
  }

  delete(k: string | number): void {
    if (typeof k !== 'number') this.other.delete(k);
    else if (k >= 0) this.positive.delete(k);
    else this.negative.delete(-k);
  }
}
