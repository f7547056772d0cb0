import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Mutation } from '../../src/catalog/model.js';
import { LogStore } from '../../src/store/log-store.js';
import { PostgresStore } from '../../src/store/postgres-store.js';
import { startPostgres, type PostgresServer } from '../support/postgres.js';
import { storeSuite } from './store-suite.js';

let pgsrv: PostgresServer;
const dirs: string[] = [];
let databases = 0;

beforeAll(async () => {
  pgsrv = await startPostgres();
}, 120_000);
afterAll(async () => {
  await pgsrv?.stop();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

/** A new, empty database on the test server: its URL. */
async function freshDatabase(): Promise<string> {
  const db = `catalog_${++databases}`;
  await pgsrv.query(`CREATE DATABASE ${db}`);
  return pgsrv.url.replace(/\/postgres$/, `/${db}`);
}

storeSuite('the embedded log', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'portcullis-store-'));
  dirs.push(dir);
  return () => new LogStore(dir, () => {});
});
storeSuite('PostgreSQL', async () => {
  const url = await freshDatabase();
  return () => new PostgresStore(url);
});

const tenant = (id: number): Mutation[] => [{ op: 'insert', table: 'tenants', row: { id, name: `t${id}`, createdAt: 0 } } as Mutation];

/** Resolves once `cond` holds, polling; fails after `ms`. */
async function until(cond: () => boolean, ms: number, what: string, started = Date.now()): Promise<number> {
  while (!cond()) {
    if (Date.now() - started > ms) throw new Error(`not within ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
  return Date.now() - started;
}

/** A store on `url`, loaded and following: what it has applied, in order. */
async function follower(url: string, opts: ConstructorParameters<typeof PostgresStore>[1] = {}) {
  const store = new PostgresStore(url, opts);
  const seen: { seq: number; commit: Mutation[] }[] = [];
  const apply = (commit: Mutation[], seq: number) => seen.push({ seq, commit });
  await store.load(apply);
  store.follow(apply);
  return { store, seen };
}

describe('the catalog in PostgreSQL, shared by several instances', () => {
  it('keeps its commits in the portcullis schema, one row each, numbered without gaps; their audit records in the chain, naming them', async () => {
    const url = await freshDatabase();
    const { store } = await follower(url);
    try {
      await store.append(tenant(1), 0);
      const entry = { kind: 'change', at: 5, tenant: 1, text: 'CREATE TENANT t2' };
      await store.append([...tenant(2), { op: 'audit', entries: [entry] }], 1);
      const c = (await import('pg')).default;
      const client = new c.Client({ connectionString: url });
      await client.connect();
      const rows = (await client.query('SELECT seq, mutations FROM portcullis.commits ORDER BY seq')).rows;
      const audit = (await client.query('SELECT seq, commit, tenant, record FROM portcullis.audit ORDER BY seq')).rows;
      await client.end();
      expect(rows).toEqual([
        { seq: '1', mutations: tenant(1) },
        { seq: '2', mutations: tenant(2) },
      ]);
      // The record as the embedded trail seals it (audit-record.ts), built by PostgreSQL.
      const { sealRecord, GENESIS } = await import('../../src/audit/audit-record.js');
      expect(audit).toEqual([{ seq: '1', commit: '2', tenant: '1', record: sealRecord(entry as never, 1, GENESIS, 2).text }]);
    } finally {
      await store.close();
    }
  });

  it('appends only on the commit a change was checked against: the later instance gets 40001, having applied the earlier one', async () => {
    const url = await freshDatabase();
    const a = await follower(url);
    const b = await follower(url);
    try {
      expect(await a.store.append(tenant(1), 0)).toBe(1);
      // B has not heard of commit 1 yet (or has: either way its commit was checked against 0).
      const refused = b.store.append(tenant(2), 0);
      await expect(refused).rejects.toMatchObject({ code: '40001', hint: 'Retry the transaction.' });
      expect(b.seen.map((s) => s.seq)).toEqual([1]); // applied before the refusal reached the client
      // Checked again against commit 1, it goes through; and A hears of it.
      expect(await b.store.append(tenant(2), 1)).toBe(2);
      await until(() => a.seen.length === 1, 2000, 'A applies B\'s commit');
      expect(a.seen).toEqual([{ seq: 2, commit: tenant(2) }]);
    } finally {
      await a.store.close();
      await b.store.close();
    }
  });

  it('fails the commits queued behind a refused one (they were checked against it)', async () => {
    const url = await freshDatabase();
    const a = await follower(url);
    const b = await follower(url);
    try {
      await a.store.append(tenant(1), 0);
      const results = await Promise.allSettled([b.store.append(tenant(2), 0), b.store.append(tenant(3), 1)]);
      expect(results.map((r) => (r.status === 'rejected' ? (r.reason as { code: string }).code : 'ok'))).toEqual(['40001', '40001']);
      const again = new PostgresStore(url);
      const seqs: number[] = [];
      await again.load((_, seq) => seqs.push(seq));
      await again.close();
      expect(seqs).toEqual([1]);
      expect(await b.store.append(tenant(2), 1)).toBe(2); // numbering starts again after commit 1
    } finally {
      await a.store.close();
      await b.store.close();
    }
  });

  it('hears a commit through LISTEN/NOTIFY at once, and through the version check within a second when no notification comes', async () => {
    const url = await freshDatabase();
    const writer = await follower(url);
    const notified = await follower(url, { pollMs: 60_000 });
    const polled = await follower(url, { listen: false, pollMs: 500 });
    try {
      await writer.store.append(tenant(1), 0);
      const t0 = Date.now();
      const heard = await until(() => notified.seen.length === 1, 1000, 'the notified instance applies commit 1', t0);
      const checked = await until(() => polled.seen.length === 1, 1000, 'the polling instance applies commit 1', t0);
      expect(notified.seen).toEqual([{ seq: 1, commit: tenant(1) }]);
      expect(polled.seen).toEqual([{ seq: 1, commit: tenant(1) }]);
      expect(heard).toBeLessThan(500);
      expect(checked).toBeLessThan(1000);
    } finally {
      for (const f of [writer, notified, polled]) await f.store.close();
    }
  });

  it('goes on after its connections to PostgreSQL are cut: the next commit reconnects, the version check covers the lost LISTEN', async () => {
    const url = await freshDatabase();
    const a = await follower(url);
    const b = await follower(url, { pollMs: 200 });
    try {
      await a.store.append(tenant(1), 0);
      await until(() => b.seen.length === 1, 1000, 'B applies commit 1');
      const db = url.split('/').at(-1);
      const connected = async () => (await pgsrv.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND application_name LIKE 'portcullis catalog%'`, [db]))[0]!.n;
      // Each store's connection and its LISTEN connection (which connects in the background).
      for (const started = Date.now(); (await connected()) < 4; ) {
        if (Date.now() - started > 5000) throw new Error('the LISTEN connections did not come up');
        await new Promise((r) => setTimeout(r, 10));
      }
      const cut = await pgsrv.query<{ n: number }>(
        `SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity WHERE datname = $1 AND application_name LIKE 'portcullis catalog%'`,
        [db],
      );
      expect(cut).toEqual([{ n: 4 }]);
      // The cut may reach the client only as its next statement fails: at most one refusal.
      let seq: number | null = null;
      for (let attempt = 0; attempt < 2 && seq === null; attempt++) {
        seq = await a.store.append(tenant(2), 1).catch((err: { code?: string }) => {
          expect(err.code).toBe('58030');
          return null;
        });
      }
      expect(seq).toBe(2);
      await until(() => b.seen.length === 2, 1000, 'B applies commit 2');
      expect(b.seen.map((s) => s.seq)).toEqual([1, 2]);
    } finally {
      await a.store.close();
      await b.store.close();
    }
  });

  it('a catalog whose commits still carry their audit records (written before the chain had its table): two instances opening it at once add them to the chain once, in commit order', async () => {
    const url = await freshDatabase();
    const first = new PostgresStore(url);
    await first.load(() => {});
    await first.close();
    const pg = (await import('pg')).default;
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    const change = (n: number) => ({ kind: 'change', at: n, tenant: 1, text: `CREATE TENANT t${n}` });
    for (const n of [1, 2, 3]) {
      await client.query('INSERT INTO portcullis.commits (seq, instance, mutations) VALUES ($1, $2, $3)', [n, 'old', JSON.stringify([...tenant(n), { op: 'audit', entries: [change(n)] }])]);
    }
    const open = async () => {
      const store = new PostgresStore(url);
      const carried: { commit: number; entries: never[] }[] = [];
      await store.load((commit, seq) => {
        for (const m of commit) if (m.op === 'audit') carried.push({ commit: seq, entries: m.entries as never[] });
      });
      return { store, carried };
    };
    const [a, b] = [await open(), await open()];
    expect(a.carried.map((c) => c.commit)).toEqual([1, 2, 3]);
    const added = await Promise.all([a.store.openAudit().recover(a.carried), b.store.openAudit().recover(b.carried)]);
    expect(added.reduce((x, y) => x + y)).toBe(3);
    const rows = (await client.query('SELECT seq, commit FROM portcullis.audit ORDER BY seq')).rows;
    await client.end();
    expect(rows).toEqual([{ seq: '1', commit: '1' }, { seq: '2', commit: '2' }, { seq: '3', commit: '3' }]);
    await a.store.close();
    await b.store.close();
  });

  it('PostgreSQL lost a commit an instance applied (a failover to an asynchronous standby): the instance commits nothing over the hole, applies nothing after it, and says so', async () => {
    const url = await freshDatabase();
    const a = await follower(url);
    const logs: string[] = [];
    const b = await follower(url, { log: (l) => logs.push(l) });
    const pg = (await import('pg')).default;
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      await a.store.append(tenant(1), 0);
      await a.store.append(tenant(2), 1);
      await until(() => b.seen.length === 2, 2000, 'B applies both');
      await client.query('DELETE FROM portcullis.commits WHERE seq = 2'); // lost with the old primary
      const refused = { code: 'XX001', message: 'the catalog in PostgreSQL lacks commit 2, which this instance applied', hint: expect.stringContaining('Restart this portcullis instance') };
      await expect(a.store.append(tenant(3), 2)).rejects.toMatchObject(refused);
      await expect(a.store.append(tenant(3), 2)).rejects.toMatchObject(refused); // and from then on
      expect((await client.query('SELECT seq FROM portcullis.commits ORDER BY seq')).rows).toEqual([{ seq: '1' }]);
      // An instance that never saw commit 2 goes on from what PostgreSQL holds; B, which
      // did, notices at its next read that commit 2 there is another one, and applies nothing after it.
      const c = new PostgresStore(url);
      await c.load(() => {});
      expect(await c.append(tenant(9), 1)).toBe(2);
      expect(await c.append(tenant(10), 2)).toBe(3);
      await c.close();
      // B hears of commit 3 (NOTIFY), reads from commit 2, and finds another one there.
      await until(() => logs.some((l) => l.includes('holds another commit as commit 2')), 2000, 'B notices');
      expect(b.seen.map((x) => x.seq)).toEqual([1, 2]);
      await expect(b.store.append(tenant(4), 2)).rejects.toMatchObject({ code: 'XX001', message: 'the catalog in PostgreSQL holds another commit as commit 2, which this instance applied' });
    } finally {
      await client.end();
      await a.store.close();
      await b.store.close();
    }
  });

  it('refuses to load a catalog with a commit missing, naming it', async () => {
    const url = await freshDatabase();
    const { store } = await follower(url);
    await store.append(tenant(1), 0);
    await store.append(tenant(2), 1);
    await store.append(tenant(3), 2);
    await store.close();
    const pg = (await import('pg')).default;
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    await client.query('DELETE FROM portcullis.commits WHERE seq = 2');
    await client.end();
    await expect(new PostgresStore(url).load(() => {})).rejects.toThrow(/lacks commit 2 \(the next one there is 3\)/);
  });
});
