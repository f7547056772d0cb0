import { describe, expect, it } from 'vitest';
import { HashIndex } from '../../src/catalog/hash-index.js';
import { rng } from '../support/rng.js';

describe('HashIndex', () => {
  it('keeps several ids under one hash, and ids of hashes that share a slot apart', () => {
    const ix = new HashIndex();
    // 16 slots at first: these land on the same one.
    ix.add(16, 1);
    ix.add(32, 2);
    ix.add(16, 3);
    expect(ix.get(16).sort()).toEqual([1, 3]);
    expect(ix.get(32)).toEqual([2]);
    expect(ix.get(48)).toEqual([]);
    ix.remove(16, 1);
    // The removed entry still leads the probe on to those after it.
    expect(ix.get(32)).toEqual([2]);
    expect(ix.get(16)).toEqual([3]);
    ix.remove(16, 99); // not there: nothing happens
    expect(ix.size).toBe(2);
  });

  it('agrees with a Map of sets through random adds and removes, growth and rebuilds', () => {
    const next = rng(42);
    const ix = new HashIndex();
    const model = new Map<number, Set<number>>();
    const live: [number, number][] = [];
    for (let step = 0; step < 20000; step++) {
      if (live.length > 0 && next() < 0.4) {
        const [h, id] = live.splice(Math.floor(next() * live.length), 1)[0]!;
        ix.remove(h, id);
        model.get(h)!.delete(id);
      } else {
        // Few distinct hashes, large ids: collisions and ids past 2^31.
        const h = 1 + Math.floor(next() * 300) * 1024;
        const id = step + 2 ** 33;
        if (next() < 0.05) ix.get(h); // places the additions waiting so far
        ix.add(h, id);
        live.push([h, id]);
        if (!model.has(h)) model.set(h, new Set());
        model.get(h)!.add(id);
      }
    }
    expect(ix.size).toBe(live.length);
    for (const [h, ids] of model) expect(ix.get(h).sort()).toEqual([...ids].sort());
  });
});
