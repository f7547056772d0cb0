import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningServer } from '../../src/server.js';
import { cli } from '../support/cli.js';
import { psql } from '../support/psql.js';
import { ADMIN_PASSWORD, client, startTestServer } from '../support/server.js';

// SET TENANT / RESET TENANT: a superuser sets a tenant up end to end in one migration file,
// the same through `portcullis apply` (online and offline) and `psql -1 -f`.
// fixtures/tenant_scope.sql covers SHOW AUTH, ROLLBACK and the errors, golden and psql alike.

const TENANT_FILE = (t: string) => `CREATE TENANT ${t};
CREATE DATABASE analytics TENANT ${t};
CREATE ROLE analyst TENANT ${t};
SET TENANT ${t};
GRANT READ ON DATABASE analytics TO analyst;
CREATE USER ${t}_ann PASSWORD 'pw' ROLE readonly;
GRANT analyst TO ${t}_ann;
RESET TENANT;
`;

let server: RunningServer;
const dir = mkdtempSync(path.join(os.tmpdir(), 'pcu-tenant-scope-'));
const file = (name: string, text: string) => {
  const f = path.join(dir, name);
  writeFileSync(f, text);
  return f;
};

beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server.close();
});

/** What `user` can reach: the proof that the grant went to the role in the right tenant. */
async function databasesOf(user: string): Promise<string> {
  const c = await client(server.port, user, 'pw');
  try {
    return (await c.query('SELECT $auth.databases AS d, $auth.tenant_id AS t')).rows.map((r) => `${r.t}:${r.d}`).join();
  } finally {
    await c.end();
  }
}

describe('SET TENANT in a migration file', () => {
  it('portcullis apply --url sets a tenant up end to end', async () => {
    const url = `postgres://admin:${ADMIN_PASSWORD}@127.0.0.1:${server.port}/default`;
    const r = await cli(['apply', '--url', url, file('acme.sql', TENANT_FILE('acme'))]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(await databasesOf('acme_ann')).toMatch(/^\d+:(analytics,default|default,analytics)$/);
  });

  it('psql -1 -f does the same', async () => {
    const r = await psql(server.port, ['-v', 'ON_ERROR_STOP=1', '-1', '-q', '-f', file('globex.sql', TENANT_FILE('globex'))]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(await databasesOf('globex_ann')).toContain('analytics');
  });

  it('offline apply --data too', async () => {
    const data = mkdtempSync(path.join(os.tmpdir(), 'pcu-tenant-scope-data-'));
    const r = await cli(['apply', '--data', data, file('initech.sql', TENANT_FILE('initech'))], '', { env: { PORTCULLIS_BOOTSTRAP_PASSWORD: ADMIN_PASSWORD } });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const dump = await cli(['dump', '--data', data]);
    expect(dump.code).toBe(0);
    expect(dump.stdout).toMatch(/GRANT READ ON DATABASE analytics TO analyst/);
  });

  it('names resolve in the chosen tenant only for a superuser, and only until RESET or ROLLBACK', async () => {
    const c = await client(server.port);
    try {
      await c.query('CREATE TENANT hooli; CREATE ROLE only_in_hooli TENANT hooli');
      await expect(c.query('GRANT READ TO only_in_hooli')).rejects.toMatchObject({ code: '42704' });
      await c.query('BEGIN; SET TENANT hooli');
      await c.query('GRANT READ TO only_in_hooli');
      await c.query('ROLLBACK');
      // The ROLLBACK took both the grant and the SET TENANT back.
      await expect(c.query('GRANT READ TO only_in_hooli')).rejects.toMatchObject({ code: '42704' });
      await c.query('SET TENANT hooli');
      const auth = await c.query('SHOW AUTH');
      expect(auth.rows.find((r) => r.variable === 'SET TENANT')?.value).toBe('hooli');
      expect(auth.rows.find((r) => r.variable === '$auth.tenant_id')?.value).toBe('1');
      await c.query("CREATE USER hooli_bob PASSWORD 'pw'");
      await c.query('SET SESSION AUTHORIZATION hooli_bob');
      await expect(c.query('SET TENANT default')).rejects.toMatchObject({ code: '42501' });
      await c.query('RESET SESSION AUTHORIZATION');
      await c.query('RESET TENANT');
      await expect(c.query('GRANT READ TO only_in_hooli')).rejects.toMatchObject({ code: '42704' });
    } finally {
      await c.end();
    }
    const bob = await client(server.port, 'hooli_bob', 'pw');
    try {
      const t = (await bob.query('SELECT $auth.tenant_id AS t')).rows[0].t;
      expect(t).not.toBe('1');
      await expect(bob.query('SET TENANT default')).rejects.toMatchObject({ code: '42501' });
    } finally {
      await bob.end();
    }
  });
});
