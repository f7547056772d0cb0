import { describe, expect, it } from 'vitest';
import { Table, TableView } from '../../src/catalog/table.js';

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
