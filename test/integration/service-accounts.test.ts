import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningServer } from '../../src/server.js';
import { client, loginError, startTestServer } from '../support/server.js';

let server: RunningServer;
beforeAll(async () => {
  server = await startTestServer();
  const c = await client(server.port);
  await c.query(`CREATE DATABASE analytics; CREATE DATABASE billing;
    CREATE USER ada PASSWORD 'pw' ROLE admin; CREATE USER rex PASSWORD 'pw' ROLE readwrite;
    GRANT ADMIN ON DATABASE analytics TO ada`);
  await c.end();
});
afterAll(async () => {
  await server.close();
});

describe('service accounts', () => {
  it('never log in with a password: the same 28P01 as an unknown user', async () => {
    const c = await client(server.port);
    await c.query("CREATE SERVICE ACCOUNT 'batch' FOR DATABASE analytics");
    await c.end();
    const e = await loginError(server.port, 'batch', 'anything');
    expect(e?.code).toBe('28P01');
    expect(e?.message).toBe('password authentication failed for user "batch"');
  });

  it('are managed by the administrators of their databases, with roles up to their own', async () => {
    const ada = await client(server.port, 'ada', 'pw');
    try {
      await ada.query("CREATE SERVICE ACCOUNT 'ada-etl' FOR DATABASE analytics ROLE readwrite");
      await expect(ada.query("CREATE SERVICE ACCOUNT 'ada-bill' FOR DATABASE billing")).rejects.toMatchObject({
        code: '42501',
        message: 'permission denied for CREATE SERVICE ACCOUNT on database "billing"',
      });
      await expect(ada.query("CREATE SERVICE ACCOUNT 'ada-root' FOR DATABASE analytics ROLE tenant_admin")).rejects.toMatchObject({ code: '42501' });
      const key = await ada.query("CREATE API KEY 'k' FOR 'ada-etl'");
      expect(key.rows[0].key).toMatch(/^pcu_/);
      await expect(ada.query("DROP SERVICE ACCOUNT 'ada-etl'")).rejects.toMatchObject({ code: '2BP01' });
      await ada.query("DROP SERVICE ACCOUNT 'ada-etl' CASCADE");
    } finally {
      await ada.end();
    }
    const rex = await client(server.port, 'rex', 'pw');
    try {
      await expect(rex.query("CREATE SERVICE ACCOUNT 'x' FOR DATABASE analytics")).rejects.toMatchObject({ code: '42501' });
      expect((await rex.query('SHOW SERVICE ACCOUNTS')).rows.map((r) => r.name)).toEqual(['batch']);
    } finally {
      await rex.end();
    }
  });
});
