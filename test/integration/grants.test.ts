import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningServer } from '../../src/server.js';
import { client, loginError, startTestServer } from '../support/server.js';

let server: RunningServer;
/** The server's clock, moved by the tests (time-bound grants). */
let now = Date.UTC(2026, 5, 1);

beforeAll(async () => {
  server = await startTestServer({ clock: () => now });
  const admin = await client(server.port);
  await admin.query(`
    CREATE DATABASE analytics; CREATE DATABASE billing; CREATE DATABASE secret;
    CREATE USER tina PASSWORD 'pw' ROLE tenant_admin;
    CREATE USER adam PASSWORD 'pw' ROLE admin;
    CREATE USER rita PASSWORD 'pw' ROLE readonly;
    CREATE USER walt PASSWORD 'pw' ROLE readwrite;
    CREATE ROLE analyst;
    GRANT READ ON DATABASE analytics TO analyst;
    GRANT ALL ON DATABASE billing TO adam;
  `);
  await admin.end();
});
afterAll(async () => {
  await server.close();
});

async function as<T>(user: string, fn: (c: Awaited<ReturnType<typeof client>>) => Promise<T>): Promise<T> {
  const c = await client(server.port, user, user === 'admin' ? undefined : 'pw');
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}
const q = (user: string, sql: string) => as(user, (c) => c.query(sql));

describe('grants and the privilege model', () => {
  it('makes a granted database accessible: login, $auth.databases, SHOW PERMISSIONS with sources', async () => {
    expect((await loginError(server.port, 'rita', 'pw', 'analytics'))?.code).toBe('42501');
    await q('tina', 'GRANT analyst TO rita');
    expect(await loginError(server.port, 'rita', 'pw', 'analytics')).toBeNull();
    const r = await q('rita', 'SELECT $auth.databases, $auth.roles');
    expect(r.rows[0]).toEqual({ databases: ['analytics', 'default'], roles: ['readonly', 'analyst'] });
    const perms = (await q('rita', 'SHOW PERMISSIONS')).rows.map((p) => `${p.database} ${p.privilege} ${p.source}`);
    expect(perms).toEqual(['analytics READ role readonly', 'analytics READ role analyst', 'default READ role readonly']);
  });

  it('refuses to grant what the granter does not hold', async () => {
    // adam (admin) holds billing, not secret.
    await q('adam', 'GRANT READ ON DATABASE billing TO walt');
    await expect(q('adam', 'GRANT READ ON DATABASE secret TO walt')).rejects.toMatchObject({
      code: '42501',
      message: 'permission denied to grant READ on database "secret"',
    });
    await expect(q('adam', 'GRANT analyst TO walt')).rejects.toMatchObject({ code: '42501', message: 'permission denied to grant role "analyst"' });
    await expect(q('adam', 'GRANT tenant_admin TO walt')).rejects.toMatchObject({ code: '42501' });
    await expect(q('adam', 'GRANT admin TO adam')).rejects.toMatchObject({ code: '42501' });
    await expect(q('walt', 'GRANT READ ON DATABASE billing TO rita')).rejects.toMatchObject({
      code: '42501',
      detail: 'walt has role readwrite; GRANT needs admin or higher.',
    });
    await expect(q('tina', 'CREATE ROLE auditors')).resolves.toBeDefined();
    await expect(q('adam', 'CREATE ROLE auditors2')).rejects.toMatchObject({ code: '42501' });
  });

  it('lets time-bound grants stop counting when they expire', async () => {
    await q('admin', "GRANT admin TO walt FOR INTERVAL '2 hours'");
    await q('admin', "GRANT READ ON DATABASE secret TO walt VALID UNTIL '2026-06-01 01:00:00+00'");
    expect((await q('walt', 'SELECT $auth.role')).rows[0].role).toBe('admin');
    expect(await loginError(server.port, 'walt', 'pw', 'secret')).toBeNull();
    now += 90 * 60_000; // 1.5 hours later: the READ grant is gone, the role grant not yet
    expect((await loginError(server.port, 'walt', 'pw', 'secret'))?.code).toBe('42501');
    expect((await q('walt', 'SELECT $auth.role')).rows[0].role).toBe('admin');
    now += 60 * 60_000;
    expect((await q('walt', 'SELECT $auth.role')).rows[0].role).toBe('readwrite');
    const grants = (await q('admin', 'SHOW GRANTS FOR walt')).rows.map((g) => g.privilege ?? g.role);
    expect(grants).toEqual(['READ']); // the READ on billing from adam; expired grants are not shown
  });

  it('refuses role cycles with 0LP01 and needs CASCADE to drop a granted role', async () => {
    await q('tina', 'CREATE ROLE lead; GRANT analyst TO lead');
    await expect(q('tina', 'GRANT lead TO analyst')).rejects.toMatchObject({ code: '0LP01' });
    await expect(q('tina', 'DROP ROLE analyst')).rejects.toMatchObject({ code: '2BP01' });
    await q('tina', 'DROP ROLE analyst CASCADE');
    expect((await loginError(server.port, 'rita', 'pw', 'analytics'))?.code).toBe('42501');
  });

  it('lets only a superuser act as another user, and reports it as ParameterStatus', async () => {
    await expect(q('tina', 'SET SESSION AUTHORIZATION rita')).rejects.toMatchObject({
      code: '42501',
      detail: 'tina has role tenant_admin; SET SESSION AUTHORIZATION needs superuser.',
    });
    // Acting as a key is acting as someone else too, whoever owns the key.
    await expect(q('tina', "SET SESSION AUTHORIZATION API KEY 'any' FOR tina")).rejects.toMatchObject({
      code: '42501',
      detail: 'tina has role tenant_admin; SET SESSION AUTHORIZATION needs superuser.',
    });
    await as('admin', async (c) => {
      await c.query('SET SESSION AUTHORIZATION rita');
      const conn = c as unknown as { connection: { on(e: string, f: (m: { parameterName: string; parameterValue: string }) => void): void } };
      const seen: Record<string, string> = {};
      conn.connection.on('parameterStatus', (m) => (seen[m.parameterName] = m.parameterValue));
      await c.query('SELECT 1');
      expect((await c.query('SELECT current_user, session_user')).rows[0]).toEqual({ current_user: 'rita', session_user: 'admin' });
      await expect(c.query('CREATE ROLE x')).rejects.toMatchObject({ code: '42501' });
      await c.query('RESET SESSION AUTHORIZATION');
      expect(seen).toMatchObject({ session_authorization: 'admin', is_superuser: 'on' });
    });
  });

  it('keeps grants atomic with their transaction', async () => {
    await as('tina', async (c) => {
      await c.query('BEGIN');
      await c.query('GRANT READ ON DATABASE secret TO rita');
      await c.query('ROLLBACK');
    });
    expect((await q('admin', 'SHOW GRANTS FOR rita')).rows).toEqual([]);
  });
});
