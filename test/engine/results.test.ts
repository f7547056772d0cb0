import { describe, expect, it } from 'vitest';
import { MEMO_RESULT_ROWS, memoResult, type Row } from '../../src/engine/results.js';

const result = { columns: [], tag: 'SHOW', withCount: false };
const drain = (it: Iterator<Row>) => {
  const out: Row[] = [];
  for (let r = it.next(); !r.done; r = it.next()) out.push(r.value);
  return out;
};

describe('memoResult: a small result kept whole', () => {
  const rowsOf = (n: number) => () => Array.from({ length: n }, (_, i) => Object.freeze([String(i)]))[Symbol.iterator]();

  it('returns the same frozen block while the stamp holds, and computes again after it moves', () => {
    const cache = new WeakMap();
    const who = {};
    let stamp = 's1';
    let made = 0;
    const make = () => (made++, rowsOf(3)());
    const first = memoResult(cache, who, () => stamp, result, make);
    expect(first.block).toBeUndefined();
    expect(drain(first.rows)).toHaveLength(3);
    const second = memoResult(cache, who, () => stamp, result, make);
    expect(Object.isFrozen(second.block)).toBe(true);
    expect(drain(second.rows)).toEqual(second.block);
    expect(memoResult(cache, who, () => stamp, result, make).block).toBe(second.block);
    expect(memoResult(cache, {}, () => stamp, result, make).block).toBeUndefined(); // someone else
    stamp = 's2';
    expect(memoResult(cache, who, () => stamp, result, make).block).toBeUndefined();
    expect(made).toBe(3);
  });

  it('keeps nothing when the stamp moved while streaming, is unknown, or the result is long', () => {
    const cache = new WeakMap();
    const who = {};
    let stamp: string | null = 'a';
    const moving = memoResult(cache, who, () => stamp, result, rowsOf(2));
    moving.rows.next();
    stamp = 'b';
    drain(moving.rows);
    stamp = 'a';
    expect(memoResult(cache, who, () => stamp, result, rowsOf(2)).block).toBeUndefined();
    stamp = null;
    drain(memoResult(cache, who, () => stamp, result, rowsOf(2)).rows);
    expect(memoResult(cache, who, () => stamp, result, rowsOf(2)).block).toBeUndefined();
    stamp = 'c';
    expect(drain(memoResult(cache, who, () => stamp, result, rowsOf(MEMO_RESULT_ROWS + 1)).rows)).toHaveLength(MEMO_RESULT_ROWS + 1);
    expect(memoResult(cache, who, () => stamp, result, rowsOf(MEMO_RESULT_ROWS + 1)).block).toBeUndefined();
  });
});
