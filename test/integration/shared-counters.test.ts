import { describe, expect, it } from 'vitest';
import { parseKey } from '../../src/auth/apikey.js';
import type { RunningServer } from '../../src/server.js';
import { databaseOf, useCatalogPostgres, within } from '../support/catalog-postgres.js';
import { client, loginError } from '../support/server.js';

/**
 * What instances sharing a catalog in PostgreSQL count and note together besides commits:
 * HTTP rate limits (lockouts are in two-instances.test.ts) and API keys' last use.
 */
const cat = useCatalogPostgres('shared');
const instance = (catalog: string, perMinute = 1000) => cat.instance(catalog, { httpPort: 0, rateLimit: { perMinute, perHour: 10_000 } });

const whoami = (s: RunningServer, key: string) => fetch(`http://127.0.0.1:${s.httpPort}/v1/whoami`, { headers: { 'x-api-key': key } });

/** Runs `sql` on the catalog's database directly. */
async function onCatalog<R extends Record<string, unknown>>(db: string, sql: string): Promise<R[]> {
  const pg = (await import('pg')).default;
  const c = new pg.Client({ ...cat.pg.connection(), database: db });
  await c.connect();
  try {
    return (await c.query<R>(sql)).rows;
  } finally {
    await c.end();
  }
}

describe('HTTP rate limits across instances', () => {
  it('10 requests spread over A, B and C use up a limit of 10 on all three; a restarted instance remembers', async () => {
    const url = await cat.freshCatalog();
    const db = databaseOf(url);
    const servers = [await instance(url, 10), await instance(url, 10), await instance(url, 10)];
    const admin = await client(servers[0]!.port);
    await admin.query("CREATE USER kim PASSWORD 'k'");
    const key = (await admin.query("CREATE API KEY 'k' FOR kim")).rows[0].key as string;
    await admin.end();
    const user = `pcu_${parseKey(key)!.keyId}`;
    // A pgwire login with the key (not counted by the HTTP limits) says each instance has it.
    for (const s of servers) await within(1000, 'the key logs in everywhere', async () => (await loginError(s.port, user, key)) === null);

    for (let i = 0; i < 10; i++) expect((await whoami(servers[i % 3]!, key)).status).toBe(200);
    // Told to the others within RATE_SHARE_MS: wait until PostgreSQL has all ten.
    await within(2000, 'the ten requests are in PostgreSQL', async () => {
      const [r] = await onCatalog<{ n: number }>(db, 'SELECT coalesce(sum(requests), 0)::int AS n FROM portcullis.rate_events');
      return r!.n === 10;
    });
    // Each instance let through at most 4 of them; alone each would let 6 or 7 more through.
    let extra = 0;
    for (const s of servers) {
      await within(1000, 'the instance refuses the key', async () => {
        const r = await whoami(s, key);
        if (r.status === 200) extra++;
        return r.status === 429;
      });
    }
    expect(extra).toBeLessThanOrEqual(1);
    const refused = await whoami(servers[1]!, key);
    expect(refused.status).toBe(429);
    expect(refused.headers.get('x-ratelimit-remaining')).toBe('0');
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe('53400');

    // A new instance reads the last hour's requests: the key has nothing left there either.
    const d = await instance(url, 10);
    expect((await whoami(d, key)).status).toBe(429);
  });
});

describe('API key last use across instances', () => {
  it('a key used on B shows its last use on A; uses are kept in PostgreSQL, not as commits', async () => {
    const url = await cat.freshCatalog();
    const db = databaseOf(url);
    const [a, b] = [await instance(url), await instance(url)];
    const admin = await client(a.port);
    admin.on('error', () => {}); // its server closes under it below
    await admin.query("CREATE USER lou PASSWORD 'l'");
    const key = (await admin.query("CREATE API KEY 'k' FOR lou")).rows[0].key as string;
    const lastUsed = async () => (await admin.query('SHOW API KEYS')).rows.find((r) => r.name === 'k')?.last_used_at as Date | null;
    expect(await lastUsed()).toBeNull();
    const commitsBefore = (await onCatalog<{ n: number }>(db, 'SELECT count(*)::int AS n FROM portcullis.commits'))[0]!.n;

    const before = Date.now();
    await within(1000, 'B takes the key', async () => (await whoami(b, key)).status === 200);
    const took = await within(3000, 'A shows the use on B', async () => (await lastUsed()) !== null);
    expect(took).toBeLessThan(3000);
    expect((await lastUsed())!.getTime()).toBeGreaterThanOrEqual(before - 1000);
    await admin.end();

    const rows = await onCatalog<{ key_id: string; previous: boolean }>(db, 'SELECT key_id, previous FROM portcullis.key_uses');
    expect(rows).toEqual([{ key_id: expect.any(String), previous: false }]);
    // And a server's close writes no key-use commit (it used to once a minute and at shutdown).
    await cat.stopAll();
    const commitsAfter = (await onCatalog<{ n: number }>(db, 'SELECT count(*)::int AS n FROM portcullis.commits'))[0]!.n;
    expect(commitsAfter).toBe(commitsBefore);
    // A restarted instance reads the last use back.
    const again = await instance(url);
    const c = await client(again.port);
    expect((await c.query('SHOW API KEYS')).rows.find((r) => r.name === 'k')?.last_used_at).not.toBeNull();
    await c.end();
  });
});
