import { describe, expect, it } from 'vitest';
import { Table, TableView } from '../../src/catalog/table.js';
import { IdMap, KeyMap } from '../../src/catalog/id-map.js';

interface R {
  id: number;
  name: string;
  group: string;
}

const key = (r: R) => r.name;
const indexes = { group: (r: R) => r.group };

describe('tables: unique key, order and secondary indexes', () => {
  it('keeps scan order and index entries right through inserts, renames, moves and deletes', () => {
    const t = new Table<R>(key, indexes);
    t.put({ id: 1, name: 'b', group: 'x' });
    t.put({ id: 2, name: 'a', group: 'x' });
    expect([...t.scan()].map((r) => r.name)).toEqual(['a', 'b']); // builds the order
    t.put({ id: 3, name: 'c', group: 'y' });
    t.put({ id: 1, name: 'd', group: 'y' }); // renamed and moved to another group
    expect([...t.scan()].map((r) => r.name)).toEqual(['a', 'c', 'd']);
    expect(t.find('b')).toBeUndefined();
    expect(t.where('group', 'x').map((r) => r.id)).toEqual([2]);
    expect(t.where('group', 'y').map((r) => r.id).sort()).toEqual([1, 3]);
    t.delete(3);
    expect(t.where('group', 'y').map((r) => r.id)).toEqual([1]);
    t.delete(1);
    expect(t.where('group', 'y')).toEqual([]);
    expect([...t.scan()].map((r) => r.name)).toEqual(['a']);
  });

  it('a transaction view answers index queries with its own changes on top', () => {
    const t = new Table<R>(key, indexes);
    t.put({ id: 1, name: 'a', group: 'x' });
    t.put({ id: 2, name: 'b', group: 'x' });
    const v = new TableView<R>(t, key, indexes);
    v.delete(1);
    v.put({ id: 2, name: 'b', group: 'z' });
    v.put({ id: 5, name: 'e', group: 'x' });
    expect(v.where('group', 'x').map((r) => r.id)).toEqual([5]);
    expect(v.where('group', 'z').map((r) => r.id)).toEqual([2]);
    expect(t.where('group', 'x').map((r) => r.id).sort()).toEqual([1, 2]); // the table itself is untouched
  });
});

describe('tables loaded from snapshot chunks', () => {
  const source = () => {
    const t = new Table<R>(key, indexes);
    t.put({ id: 7, name: 'b', group: 'x' });
    t.put({ id: 3, name: 'a', group: 'x' });
    t.put({ id: 2 ** 31, name: 'far', group: 'y' }); // an id past the paged range
    t.put({ id: 9, name: 'ünï', group: 'y' }); // a row that is not ASCII
    return t;
  };

  it('answers every query from rows it has not decoded, and decodes each once', () => {
    const chunks = [...source().chunks(2)];
    expect(chunks).toHaveLength(2);
    const t = new Table<R>(key, indexes);
    for (const c of chunks) t.load(c);
    expect(t.size).toBe(4);
    expect(t.find('ünï')).toEqual({ id: 9, name: 'ünï', group: 'y' });
    expect(t.get(3)).toBe(t.find('a')); // the same object once decoded
    expect(t.where('group', 'x').map((r) => r.id).sort()).toEqual([3, 7]);
    expect(t.where('group', 'y').map((r) => r.name).sort()).toEqual(['far', 'ünï']);
    expect([...t.scan()].map((r) => r.name)).toEqual(['a', 'b', 'far', 'ünï']);
  });

  it('changes rows still asleep: a rename moves its key and index entries, a delete removes them', () => {
    const t = new Table<R>(key, indexes);
    for (const c of source().chunks(10)) t.load(c);
    t.put({ id: 7, name: 'c', group: 'y' });
    t.delete(3);
    expect(t.find('b')).toBeUndefined();
    expect(t.find('a')).toBeUndefined();
    expect(t.where('group', 'x')).toEqual([]);
    expect(t.where('group', 'y').map((r) => r.id).sort((a, b) => a - b)).toEqual([7, 9, 2 ** 31]);
    // A snapshot of the changed table loads into the same rows again.
    const again = new Table<R>(key, indexes);
    for (const c of t.chunks(10)) again.load(c);
    expect([...again.scan()]).toEqual([...t.scan()]);
  });

  it('copies rows never read into the next snapshot byte for byte', () => {
    // Spaced as JSON.stringify would not: a decoded and re-encoded row would lose them.
    const json = Buffer.from('{"id": 3, "name": "a", "group": "x"}');
    const chunk = { indexes: ['group'], keys: [3, json.length, 'a', 'x'], rows: json };
    const t = new Table<R>(key, indexes);
    t.load(chunk);
    const copy = [...t.chunks(10)][0]!;
    expect(copy.rows.equals(chunk.rows)).toBe(true);
    expect(copy.keys).toEqual(chunk.keys);
  });

  it('decodes and indexes row by row a chunk written under other indexes', () => {
    const t = new Table<R>(key, { group: indexes.group, initial: (r: R) => r.name[0]! });
    for (const c of source().chunks(10)) t.load(c);
    expect(t.where('initial', 'f').map((r) => r.id)).toEqual([2 ** 31]);
    expect(t.where('group', 'x')).toHaveLength(2);
  });
});

describe('index keys by number', () => {
  it('keeps ids, negated ids and strings apart', () => {
    const m = new KeyMap<string>();
    m.set(5, 'user 5');
    m.set(-5, 'role 5');
    m.set('5', 'name 5');
    m.set(1.5, 'a fraction');
    expect([m.get(5), m.get(-5), m.get('5'), m.get(1.5)]).toEqual(['user 5', 'role 5', 'name 5', 'a fraction']);
    m.delete(-5);
    expect([m.get(5), m.get(-5)]).toEqual(['user 5', undefined]);
    const ids = new IdMap<string>();
    ids.set(2 ** 40, 'far');
    ids.set(1025, 'b');
    ids.set(1, 'a');
    expect([...ids.entries()]).toEqual([[1, 'a'], [1025, 'b'], [2 ** 40, 'far']]);
    ids.delete(1025);
    expect(ids.size).toBe(2);
  });
});

describe('table versions', () => {
  it('move on every change and only then; a view has none once it changes the table', () => {
    const t = new Table<R>(key, indexes);
    const other = new Table<R>(key, indexes);
    expect(t.version).not.toBe(other.version);
    const v0 = t.version;
    t.put({ id: 1, name: 'a', group: 'x' });
    const v1 = t.version;
    expect(v1).not.toBe(v0);
    t.get(1);
    t.find('a');
    [...t.scan()];
    t.delete(99); // nothing to delete
    expect(t.version).toBe(v1);
    const view = new TableView<R>(t, key, indexes);
    expect(view.version).toBe(v1);
    view.put({ id: 2, name: 'b', group: 'x' });
    expect(view.version).toBeNull();
    expect(t.version).toBe(v1);
    t.delete(1);
    expect(t.version).not.toBe(v1);
  });
});
