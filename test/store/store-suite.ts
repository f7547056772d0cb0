import { describe, expect, it } from 'vitest';
import type { Mutation } from '../../src/catalog/model.js';
import type { Store } from '../../src/store/store.js';

/**
 * What every Store promises the commit pipeline, run against each implementation
 * (test/store/catalog-postgres.test.ts): numbering, order, content and reopening.
 * `fresh()` makes an empty place to keep a catalog in and returns how to open a store on
 * it (each call a new handle on the same place, as a restart is). A store that keeps the
 * audit trail itself (`openAudit`) takes a commit's audit records to it and hands the
 * commit back without them.
 */
export function storeSuite(name: string, fresh: () => Promise<() => Store>): void {
  const tenant = (id: number, name: string): Mutation => ({ op: 'insert', table: 'tenants', row: { id, name, createdAt: 1_700_000_000_000 + id } } as Mutation);
  const loadAll = async (store: Store) => {
    const got: { seq: number; commit: Mutation[] }[] = [];
    await store.load((commit, seq) => got.push({ seq, commit }), () => {
      throw new Error('no snapshot expected');
    });
    return got;
  };

  describe(`the Store contract: ${name}`, () => {
    it('starts empty, numbers commits from 1 in the order they are appended, concurrent ones too', async () => {
      const store = (await fresh())();
      try {
        expect(await loadAll(store)).toEqual([]);
        expect(await store.append([tenant(10, 'a')], 0)).toBe(1);
        expect(await store.append([tenant(11, 'b')], 1)).toBe(2);
        const seqs = await Promise.all([3, 4, 5].map((n, i) => store.append([tenant(10 + n, `c${i}`)], 2 + i)));
        expect(seqs).toEqual([3, 4, 5]);
      } finally {
        await store.close();
      }
    });

    it('hands every commit back after a reopen, in order, with its number and exact content; numbering goes on', async () => {
      const open = await fresh();
      const commits: Mutation[][] = [
        [tenant(20, 'plain')],
        [tenant(21, 'ünïcødé ✓ "quoted" \\ back\nslash'), { op: 'delete', table: 'tenants', id: 20 }],
        [tenant(22, 'with audit'), { op: 'audit', entries: [{ kind: 'change', at: 5, user: 'admin', statement: 'CREATE TENANT x', nested: { a: [1, 2.5, null, true] } }] }],
      ];
      let store = open();
      try {
        await loadAll(store);
        for (const [i, c] of commits.entries()) expect(await store.append(c, i)).toBe(i + 1);
      } finally {
        await store.close();
      }
      store = open();
      try {
        const back = store.openAudit ? commits.map((c) => c.filter((m) => m.op !== 'audit')) : commits;
        expect(await loadAll(store)).toEqual(back.map((commit, i) => ({ seq: i + 1, commit })));
        expect(await store.append([tenant(23, 'after')], 3)).toBe(4);
      } finally {
        await store.close();
      }
      store = open();
      try {
        expect((await loadAll(store)).map((c) => c.seq)).toEqual([1, 2, 3, 4]);
      } finally {
        await store.close();
      }
    });
  });
}
