import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningServer } from '../../src/server.js';
import { client, startTestServer } from '../support/server.js';

/** SPEC §2: an API key's expiry is in the future; one already past is refused (22023). */
const now = Date.UTC(2026, 5, 1, 12);
let server: RunningServer;
let admin: pg.Client;

beforeAll(async () => {
  server = await startTestServer({ clock: () => now, scramIterations: 16 });
  admin = await client(server.port);
  await admin.query("CREATE USER kim ROLE readwrite; CREATE API KEY 'k' FOR kim EXPIRES IN '1 day'");
});
afterAll(async () => {
  await admin.end();
  await server.close();
});

describe('API key expiry', () => {
  it('refuses a key born expired: EXPIRES AT in the past or now, EXPIRES IN negative or zero', async () => {
    for (const expiry of ["EXPIRES AT '2026-06-01 11:59:59+00'", "EXPIRES AT '2026-06-01 12:00:00+00'", "EXPIRES AT '1999-12-31'", "EXPIRES IN '-1 day'", "EXPIRES IN '0 seconds'"]) {
      await expect(admin.query(`CREATE API KEY 'dead' FOR kim ${expiry}`), expiry).rejects.toMatchObject({ code: '22023' });
    }
    expect((await admin.query('SHOW API KEYS FOR kim')).rows.map((r) => r.name)).toEqual(['k']);
  });

  it('refuses ALTER API KEY ... SET EXPIRES to the past, and keeps the old expiry', async () => {
    await expect(admin.query("ALTER API KEY 'k' FOR kim SET EXPIRES AT '2026-06-01 11:00:00+00'")).rejects.toMatchObject({
      code: '22023',
      message: 'EXPIRES AT must be in the future, got "2026-06-01 11:00:00+00"',
    });
    await expect(admin.query("ALTER API KEY 'k' FOR kim SET EXPIRES IN '-5 minutes'")).rejects.toMatchObject({ code: '22023' });
    const [row] = (await admin.query('SHOW API KEYS FOR kim')).rows;
    expect(row.expires_at.toISOString()).toBe('2026-06-02T12:00:00.000Z');
  });

  it('accepts a future expiry, and no expiry', async () => {
    await admin.query("ALTER API KEY 'k' FOR kim SET EXPIRES AT '2026-06-01 12:00:01+00'");
    await admin.query("CREATE API KEY 'later' FOR kim EXPIRES AT '2027-01-01'");
    await admin.query("ALTER API KEY 'later' FOR kim SET EXPIRES NULL");
    const rows = (await admin.query('SHOW API KEYS FOR kim')).rows.map((r) => [r.name, r.expires_at?.toISOString() ?? null]);
    expect(rows).toEqual([['k', '2026-06-01T12:00:01.000Z'], ['later', null]]);
  });
});
