import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseKey } from '../../src/auth/apikey.js';
import type { RunningServer } from '../../src/server.js';
import { psql } from '../support/psql.js';
import { client, startTestServer } from '../support/server.js';

let server: RunningServer;
beforeAll(async () => {
  server = await startTestServer();
  const c = await client(server.port);
  await c.query("CREATE USER rita PASSWORD 'pw' ROLE readonly; CREATE USER otto PASSWORD 'pw' ROLE readwrite; GRANT SCOPE 'ci' TO otto");
  await c.end();
});
afterAll(async () => {
  await server.close();
});

describe('API keys', () => {
  it('returns the full key once, with a NOTICE, and never again anywhere', async () => {
    const r = await psql(server.port, ['-At', '-c', "CREATE API KEY 'deploy' FOR otto SCOPES ('ci')", '-c', 'SHOW API KEYS', '-c', "ALTER API KEY 'deploy' FOR otto SET EXPIRES IN '1 day'", '-c', 'SHOW API KEYS FOR otto']);
    expect(r.stderr).toBe('NOTICE:  store this key now: it cannot be shown again\n');
    const lines = r.stdout.trim().split('\n');
    const key = lines[0]!.split('|')[2]!;
    expect(parseKey(key)).not.toBeNull();
    expect(r.stdout.split(key).length - 1).toBe(1); // only in the CREATE result
    const secret = key.slice(21);
    expect(r.stdout.split(secret).length - 1).toBe(1);
  });

  it('lets every user manage their own keys, and nobody else’s unless they manage that user', async () => {
    const rita = await client(server.port, 'rita', 'pw');
    try {
      const created = await rita.query("CREATE API KEY 'mine' EXPIRES IN '30 days'");
      expect(created.rows[0].name).toBe('mine');
      expect((await rita.query('SHOW API KEYS')).rows.map((k) => k.name)).toEqual(['mine']);
      await expect(rita.query("CREATE API KEY 'x' FOR otto")).rejects.toMatchObject({ code: '42704' });
      await expect(rita.query("CREATE API KEY 'x' ROLE readwrite")).rejects.toMatchObject({ code: '42501' });
      await rita.query("ALTER API KEY 'mine' ROTATE");
      await rita.query("DROP API KEY 'mine'");
    } finally {
      await rita.end();
    }
  });

  it('refuses DROP USER of a key owner without CASCADE (2BP01)', async () => {
    const c = await client(server.port);
    try {
      await expect(c.query('DROP USER otto')).rejects.toMatchObject({ code: '2BP01' });
      await c.query('DROP USER otto CASCADE');
      expect((await c.query('SHOW API KEYS')).rows).toEqual([]);
    } finally {
      await c.end();
    }
  });
});
