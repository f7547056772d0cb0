import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Catalog, LOOKALIKE_KEYS, lookalikeHash, type SnapshotPart } from '../../src/catalog/catalog.js';
import type { Role, User } from '../../src/catalog/model.js';
import { nameSkeleton, SKELETON_TABLES } from '../../src/catalog/names.js';
import { CatalogTransaction } from '../../src/catalog/transaction.js';
import { ROOT } from '../support/server.js';

describe('nameSkeleton: the TR39 skeleton of the case-folded name', () => {
  it.each([
    ['admin', '\u0430dmin'], // Cyrillic а
    ['admin', 'ADMIN'],
    ['admin', '\u0391DMIN'], // Greek capital alpha
    ['admin', 'adrnin'], // r n reads as m
    ['paypal', 'p\u0430yp\u0430l'],
    ['caf\u00e9', 'CAF\u00c9'],
    ['strasse', 'STRA\u1e9eE'], // capital sharp s folds to ss (full case folding, not toLowerCase)
    ['\u15de', '\uab70'], // Cherokee small ꭰ folds to capital Ꭰ (not the other way), which reads as D, like Canadian ᗞ
    ['alice', 'al\u0456ce'], // Cyrillic і
  ])('%s and %s look alike', (a, b) => {
    expect(nameSkeleton(b)).toBe(nameSkeleton(a));
  });

  it.each([
    ['alice', 'alicia'],
    ['admin', 'admins'],
    ['admin', 'admin '], // white space is refused in names, but is not nothing
    ['bob', 'b0b'], // 0 reads as O, not as o
  ])('%s and %s do not', (a, b) => {
    expect(nameSkeleton(b)).not.toBe(nameSkeleton(a));
  });
});

describe('the tables behind the skeleton', () => {
  it('are the ones SKELETON_TABLES names, which names the look-alike indexes (a change re-indexes at load)', () => {
    const version = (pkg: string) => (JSON.parse(readFileSync(path.join(ROOT, 'node_modules', pkg, 'package.json'), 'utf8')) as { version: string }).version;
    // unhomoglyph 1.0.6 carries confusables.txt 13.0.0; unicode-case-folding 1.1.1 CaseFolding.txt 17.0.
    // Upgrading either changes skeletons: change SKELETON_TABLES with it.
    expect({ unhomoglyph: version('unhomoglyph'), 'unicode-case-folding': version('unicode-case-folding') }).toEqual({ unhomoglyph: '1.0.6', 'unicode-case-folding': '1.1.1' });
    expect(SKELETON_TABLES).toBe('confusables-13.0.0/casefolding-17.0');
  });
});

const NOW = Date.UTC(2026, 0, 1);
const user = (id: number, name: string): User => ({
  id, name, tenantId: 1, role: 'readonly', verifier: null, login: true, validUntil: null, connectionLimit: -1,
  certificateSubject: null, createdAt: NOW, updatedAt: NOW, createdBy: null,
});
const role = (id: number, tenantId: number, name: string): Role => ({ id, tenantId, name, createdAt: NOW, createdBy: null });

describe('the look-alike index', () => {
  function catalog(): Catalog {
    const c = new Catalog();
    c.apply({ op: 'init', serverSecret: 's', at: NOW });
    c.apply({ op: 'insert', table: 'users', row: user(3, 'admin') });
    c.apply({ op: 'insert', table: 'users', row: user(4, '\u0430dmin') }); // from before names were checked
    c.apply({ op: 'insert', table: 'roles', row: role(5, 1, 'analyst') });
    return c;
  }
  const ids = (rows: { id: number }[]) => rows.map((r) => r.id).sort();

  it('finds every name that looks alike, in its name space only', () => {
    const c = catalog();
    expect(ids(c.lookalikes('users', { name: 'ADMIN' }))).toEqual([3, 4]);
    expect(c.lookalikes('users', { name: 'alice' })).toEqual([]);
    expect(ids(c.lookalikes('roles', { tenantId: 1, name: 'Analyst' }))).toEqual([5]);
    expect(c.lookalikes('roles', { tenantId: 2, name: 'Analyst' })).toEqual([]);
  });

  it('follows renames and drops, and a transaction sees its own changes', () => {
    const c = catalog();
    c.apply({ op: 'update', table: 'users', row: user(4, 'mallory') });
    expect(ids(c.lookalikes('users', { name: 'ADMIN' }))).toEqual([3]);
    const tx = new CatalogTransaction(c);
    tx.insert('users', user(6, 'ADMIN'));
    tx.delete('users', 3);
    expect(ids(tx.lookalikes('users', { name: 'admin' }))).toEqual([6]);
    expect(ids(c.lookalikes('users', { name: 'admin' }))).toEqual([3]);
  });

  it('in a transaction, keeps the rows it changed indexed as they change after a lookup', () => {
    const c = catalog();
    const tx = new CatalogTransaction(c);
    tx.insert('users', user(6, 'bob'));
    expect(ids(tx.lookalikes('users', { name: 'BOB' }))).toEqual([6]);
    tx.update('users', user(6, 'carol'));
    expect(tx.lookalikes('users', { name: 'BOB' })).toEqual([]);
    tx.insert('users', user(7, 'Carol'));
    expect(ids(tx.lookalikes('users', { name: 'CAROL' }))).toEqual([6, 7]);
    tx.delete('users', 6);
    expect(ids(tx.lookalikes('users', { name: 'carol' }))).toEqual([7]);
    tx.update('users', user(4, 'dave')); // a committed row, renamed here
    expect(ids(tx.lookalikes('users', { name: 'ADMIN' }))).toEqual([3]);
    expect(ids(tx.lookalikes('users', { name: 'DAVE' }))).toEqual([4]);
  });

  it('is carried by snapshots, so that start-up indexes without decoding a row', () => {
    const parts: SnapshotPart[] = [...catalog().snapshot()];
    const users = parts.find((p) => 'table' in p && p.table === 'users') as Extract<SnapshotPart, { table: string }>;
    expect(users.indexes).toEqual([`lookalike fnv1a ${SKELETON_TABLES}`]);
    expect(users.keys.slice(0, 4)).toEqual([3, expect.any(Number), 'admin', lookalikeHash(nameSkeleton('admin'))]);
    const loaded = new Catalog();
    for (const p of parts) loaded.load(p);
    expect(ids(loaded.lookalikes('users', { name: 'ADMIN' }))).toEqual([3, 4]);
  });

  it('tells apart names whose keys only share a hash', () => {
    // 30-bit hashes: among some 40,000 names two share one (the birthday bound).
    const seen = new Map<number, string>();
    let pair: [string, string] | null = null;
    for (let i = 0; pair === null; i++) {
      const name = `u${i}`;
      const h = lookalikeHash(LOOKALIKE_KEYS.users({ name }));
      const other = seen.get(h);
      if (other !== undefined) pair = [other, name];
      seen.set(h, name);
    }
    const c = new Catalog();
    c.apply({ op: 'insert', table: 'users', row: user(3, pair[0]) });
    expect(c.lookalikes('users', { name: pair[1] })).toEqual([]);
    expect(ids(c.lookalikes('users', { name: pair[0] }))).toEqual([3]);
  });
});
