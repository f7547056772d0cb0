import pg from 'pg';
import { describe, expect, it } from 'vitest';
import type { RunningServer } from '../../src/server.js';
import { useCatalogPostgres, within } from '../support/catalog-postgres.js';
import { cli } from '../support/cli.js';
import { client, loginError } from '../support/server.js';

/**
 * The audit trail of a catalog in PostgreSQL: one hash chain for every instance, in commit
 * order, checked by `portcullis audit verify --catalog URL`.
 */
const cat = useCatalogPostgres('audit');

async function onCatalog<R extends pg.QueryResultRow>(url: string, sql: string, params: unknown[] = []): Promise<R[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query<R>(sql, params)).rows;
  } finally {
    await c.end();
  }
}

/** Changes on A and B (racing), logins on B and C, a denial on C: every record in one chain. */
async function busyCatalog(catalog: string): Promise<RunningServer[]> {
  const [a, b, c] = [await cat.instance(catalog), await cat.instance(catalog), await cat.instance(catalog)];
  const admin = await client(a.port);
  await admin.query("CREATE USER mia PASSWORD 'm'");
  await admin.query("CREATE USER ned PASSWORD 'n'");
  await admin.end();
  await within(1000, 'C knows mia', async () => (await loginError(c.port, 'mia', 'm')) === null);
  expect((await loginError(b.port, 'mia', 'wrong'))?.code).toBe('28P01');
  const mia = await client(c.port, 'mia', 'm');
  await expect(mia.query("CREATE USER oz PASSWORD 'o'")).rejects.toMatchObject({ code: '42501' });
  await mia.end();
  // Commits through A and B at once: some refused (40001), each acknowledged one audited once.
  const writers = await Promise.all([a, b, a, b].map((s) => client(s.port)));
  await Promise.all(
    writers.map(async (w, i) => {
      for (let n = 0; n < 5; n++) {
        for (;;) {
          try {
            await w.query(`CREATE ROLE r${i}_${n}`);
            break;
          } catch (err) {
            if ((err as { code?: string }).code !== '40001') throw err;
          }
        }
      }
    }),
  );
  for (const w of writers) await w.end();
  return [a, b, c];
}

describe('one audit chain across instances', () => {
  it('holds every instance\'s records, changes in commit order, each change once; SHOW AUDIT LOG on any instance shows it; audit verify --catalog says intact', async () => {
    const catalog = await cat.freshCatalog();
    const servers = await busyCatalog(catalog);
    const rows = await onCatalog<{ seq: string; commit: string | null; instance: string; record: string }>(catalog, 'SELECT seq, commit, instance, record FROM portcullis.audit ORDER BY seq');
    const records = rows.map((r) => JSON.parse(r.record) as { seq: number; kind: string; statement?: string; ok?: boolean; principal?: string; object?: string; commit?: number });
    expect(records.map((r) => r.seq)).toEqual(records.map((_, i) => i + 1));
    expect(new Set(rows.map((r) => r.instance)).size).toBe(3);
    // Changes: 2 users + 20 roles, each once, in the order of their commits.
    const changes = records.filter((r) => r.kind === 'change');
    expect(changes.filter((r) => r.statement === 'CreateRole').map((r) => r.object).sort()).toEqual([0, 1, 2, 3].flatMap((i) => [0, 1, 2, 3, 4].map((n) => `r${i}_${n}`)).sort());
    expect(changes).toHaveLength(22);
    const commits = changes.map((r) => r.commit!);
    expect(commits).toEqual([...commits].sort((x, y) => x - y));
    expect(new Set(commits).size).toBe(22);
    // Logins (each instance's), the failed one and the denial are in it too.
    expect(records.some((r) => r.kind === 'login' && r.principal === 'mia' && r.ok === false)).toBe(true);
    expect(records.some((r) => r.kind === 'denial' && r.statement === 'CreateUser')).toBe(true);
    // The commits' rows no longer carry the records: the chain does.
    expect(await onCatalog(catalog, `SELECT 1 FROM portcullis.commits, json_array_elements(mutations) m WHERE m->>'op' = 'audit'`)).toEqual([]);

    for (const s of servers) {
      const c = await client(s.port);
      const shown = (await c.query('SHOW AUDIT LOG')).rows;
      await c.end();
      // Its own SHOW's login may have joined since the rows above were read.
      expect(shown.slice(0, records.length).map((r) => Number(r.seq))).toEqual(records.map((r) => r.seq));
      expect(shown.slice(0, records.length).map((r) => r.hash)).toEqual(rows.map((r) => JSON.parse(r.record).hash));
    }
    const limited = await client(servers[1]!.port);
    const last2 = (await limited.query('SHOW AUDIT LOG LIMIT 2')).rows;
    await limited.end();
    expect(last2).toHaveLength(2);
    expect(Number(last2[1].seq)).toBe(Number(last2[0].seq) + 1);

    const v = await cli(['audit', 'verify', '--catalog', catalog]);
    expect(v.stderr).toBe('');
    expect(v.code).toBe(0);
    const total = (await onCatalog<{ n: number }>(catalog, 'SELECT count(*)::int AS n FROM portcullis.audit'))[0]!.n;
    expect(v.stdout).toMatch(new RegExp(`\\(portcullis\\.audit\\): ${total} records, hash chain intact; head [0-9a-f]{64}\\n$`));
    expect(v.stdout).not.toContain(cat.pg.password);
  });

  it('audit verify --catalog names the first record edited, removed or re-hashed, and exits 1', async () => {
    const catalog = await cat.freshCatalog();
    await busyCatalog(catalog);
    await cat.stopAll();
    const verify = () => cli(['audit', 'verify', '--catalog', catalog]);
    expect((await verify()).code).toBe(0);

    // An edit of a record's text: its own hash no longer matches.
    await onCatalog(catalog, `UPDATE portcullis.audit SET record = replace(record, '"mia"', '"eve"') WHERE seq = (SELECT min(seq) FROM portcullis.audit WHERE record LIKE '%"mia"%')`);
    const [edited] = await onCatalog<{ seq: string }>(catalog, `SELECT seq FROM portcullis.audit WHERE record LIKE '%"eve"%'`);
    let v = await verify();
    expect(v.code).toBe(1);
    expect(v.stderr).toContain(`audit record ${edited!.seq} fails verification: the record does not match its hash (edited)`);

    // The edit with its hash made again: the next record no longer names it.
    await onCatalog(
      catalog,
      `UPDATE portcullis.audit SET record = regexp_replace(record, ',"hash":"[0-9a-f]{64}"}$', ',"hash":"' || encode(sha256(convert_to(regexp_replace(record, ',"hash":"[0-9a-f]{64}"}$', '}'), 'UTF8')), 'hex') || '"}') WHERE seq = $1`,
      [edited!.seq],
    );
    v = await verify();
    expect(v.code).toBe(1);
    expect(v.stderr).toContain(`audit record ${Number(edited!.seq) + 1} fails verification: the record does not name the hash of the one before it`);

    // A record removed (the edited one's place taken by nothing): the numbering breaks there.
    await onCatalog(catalog, 'DELETE FROM portcullis.audit WHERE seq = $1', [edited!.seq]);
    v = await verify();
    expect(v.code).toBe(1);
    expect(v.stderr).toContain(`audit record ${edited!.seq} fails verification: the record is numbered ${Number(edited!.seq) + 1} where ${edited!.seq} belongs`);
  });

  it('a commit refused with 40001 leaves no record; an instance started on a catalog with none yet reports it plainly', async () => {
    const catalog = await cat.freshCatalog();
    const [a, b] = [await cat.instance(catalog), await cat.instance(catalog)];
    const [ca, cb] = [await client(a.port), await client(b.port)];
    for (const c of [ca, cb]) await c.query("BEGIN; CREATE USER pat PASSWORD 'p'");
    const results = await Promise.allSettled([ca.query('COMMIT'), cb.query('COMMIT')]);
    expect(results.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected']);
    await ca.end();
    await cb.end();
    const pats = await onCatalog(catalog, `SELECT seq FROM portcullis.audit WHERE record LIKE '%"kind":"change"%' AND record LIKE '%"object":"pat"%'`);
    expect(pats).toHaveLength(1);

    const empty = await cat.freshCatalog();
    const r = await cli(['audit', 'verify', '--catalog', empty]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('no audit trail there (no table portcullis.audit)');
  });
});
