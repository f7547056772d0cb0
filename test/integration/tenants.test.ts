import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningServer } from '../../src/server.js';
import { client, loginError, startTestServerWith } from '../support/server.js';

let server: RunningServer;
beforeAll(async () => {
  server = await startTestServerWith([
    'CREATE TENANT acme;',
    'CREATE TENANT globex;',
    'CREATE DATABASE analytics TENANT acme;',
    'CREATE DATABASE ledger TENANT globex;',
    "CREATE USER acme_admin PASSWORD 'pw' ROLE tenant_admin TENANT acme;",
    "CREATE USER acme_ops PASSWORD 'pw' ROLE admin TENANT acme;",
    "CREATE USER acme_reader PASSWORD 'pw' ROLE readonly TENANT acme;",
    "CREATE USER globex_admin PASSWORD 'pw' ROLE tenant_admin TENANT globex;",
  ]);
});
afterAll(async () => {
  await server.close();
});

const run = async (user: string, sql: string) => {
  const c = await client(server.port, user, 'pw');
  try {
    return await c.query(sql);
  } finally {
    await c.end();
  }
};

describe('tenants and databases', () => {
  it('lets a tenant_admin create and drop databases in its own tenant only', async () => {
    await run('acme_admin', 'CREATE DATABASE scratch');
    expect((await run('acme_admin', 'SHOW DATABASES')).rows.map((r) => `${r.tenant}/${r.name}`)).toEqual([
      'acme/analytics',
      'acme/default',
      'acme/scratch',
    ]);
    await expect(run('acme_admin', 'CREATE DATABASE x TENANT globex')).rejects.toMatchObject({ code: '42501' });
    await expect(run('acme_admin', 'DROP DATABASE ledger')).rejects.toMatchObject({ code: '42704' });
    await run('acme_admin', 'DROP DATABASE scratch');
    await expect(run('acme_ops', 'CREATE DATABASE y')).rejects.toMatchObject({
      code: '42501',
      detail: 'acme_ops has role admin; CREATE DATABASE needs tenant_admin or higher.',
    });
  });

  it('hides other tenants (42704, as if they did not exist) and their users', async () => {
    expect((await run('acme_admin', 'SHOW TENANTS')).rows.map((r) => r.name)).toEqual(['acme']);
    const users = (await run('acme_admin', 'SHOW USERS')).rows.map((r) => r.name);
    expect(users).toEqual(['acme_admin', 'acme_ops', 'acme_reader']);
    await expect(run('acme_admin', 'DROP USER globex_admin')).rejects.toMatchObject({ code: '42704', message: 'user "globex_admin" does not exist' });
    await expect(run('acme_admin', 'DROP USER no_such_user')).rejects.toMatchObject({ code: '42704', message: 'user "no_such_user" does not exist' });
    await expect(run('acme_admin', "CREATE USER x TENANT globex")).rejects.toMatchObject({ code: '42501' });
  });

  it('logs tenant users into their own default database, and databases they may reach', async () => {
    const c = await client(server.port, 'acme_reader', 'pw');
    const r = await c.query('SELECT current_database(), $auth.tenant_id, $auth.databases');
    expect(r.rows[0].current_database).toBe('default');
    expect(r.rows[0].databases).toEqual(['default']);
    await c.end();
    expect((await loginError(server.port, 'acme_reader', 'pw', 'analytics'))?.code).toBe('42501');
    expect(await loginError(server.port, 'acme_admin', 'pw', 'analytics')).toBeNull();
    expect((await loginError(server.port, 'acme_admin', 'pw', 'ledger'))?.code).toBe('3D000');
  });

  it('refuses to drop a tenant with dependents unless CASCADE, which drops them', async () => {
    const admin = await client(server.port);
    try {
      await expect(admin.query('DROP TENANT globex')).rejects.toMatchObject({
        code: '2BP01',
        detail: '1 user, 0 service accounts, 0 roles and 1 database besides "default" belong to it.',
      });
      await admin.query('DROP TENANT globex CASCADE');
      expect((await admin.query('SHOW TENANTS')).rows.map((r) => r.name)).toEqual(['default', 'acme']);
    } finally {
      await admin.end();
    }
    expect((await loginError(server.port, 'globex_admin', 'pw'))?.code).toBe('28P01');
  });
});
