/**
 * Ids by a hash (an integer from 1 to 2^31 - 1), by open addressing over two typed arrays:
 * the store of an index whose keys are hashes, where most keys have one id (the look-alike
 * index). Filling it with a million rows at start-up took ~0.1 s of CPU where a Map took
 * ~1.2 s (a get and a set per row, each missing the cache, and rehashing as it grows);
 * and it holds no object per row.
 *
 * Linear probing; an id of 0 marks a removed entry (a tombstone: its hash keeps probes
 * going), a hash of 0 an empty slot. At most half the slots are used, tombstones included;
 * past that the table is rebuilt without them, twice the size if it needs to be.
 */
export class HashIndex {
  private hashes = new Int32Array(16);
  private ids = new Float64Array(16);
  private used = 0;
  private live = 0;

  get size(): number {
    return this.live;
  }

  /** Makes room for `n` more entries at once (a snapshot chunk): one rebuild, not several. */
  reserve(n: number): void {
    if ((this.used + n) * 2 > this.hashes.length) this.rebuild(this.live + n);
  }

  add(hash: number, id: number): void {
    this.reserve(1);
    const mask = this.hashes.length - 1;
    let i = hash & mask;
    while (this.hashes[i] !== 0) i = (i + 1) & mask;
    this.hashes[i] = hash;
    this.ids[i] = id;
    this.used++;
    this.live++;
  }

  remove(hash: number, id: number): void {
    const mask = this.hashes.length - 1;
    for (let i = hash & mask; this.hashes[i] !== 0; i = (i + 1) & mask) {
      if (this.hashes[i] === hash && this.ids[i] === id) {
        this.ids[i] = 0;
        this.live--;
        return;
      }
    }
  }

  /** The ids under `hash`, in no particular order. */
  get(hash: number): number[] {
    const out: number[] = [];
    const mask = this.hashes.length - 1;
    for (let i = hash & mask; this.hashes[i] !== 0; i = (i + 1) & mask) {
      if (this.hashes[i] === hash && this.ids[i] !== 0) out.push(this.ids[i]!);
    }
    return out;
  }

  private rebuild(entries: number): void {
    let size = 16;
    while (size < entries * 2) size *= 2;
    const hashes = this.hashes;
    const ids = this.ids;
    this.hashes = new Int32Array(size);
    this.ids = new Float64Array(size);
    const mask = size - 1;
    for (let j = 0; j < hashes.length; j++) {
      const hash = hashes[j]!;
      if (hash === 0 || ids[j] === 0) continue;
      let i = hash & mask;
      while (this.hashes[i] !== 0) i = (i + 1) & mask;
      this.hashes[i] = hash;
      this.ids[i] = ids[j]!;
    }
    this.used = this.live;
  }
}
