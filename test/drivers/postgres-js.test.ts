import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import postgres from 'postgres';
import type { RunningServer } from '../../src/server.js';
import { SHOW_STATEMENTS, startDriverServer } from '../support/drivers.js';
import { ADMIN_PASSWORD } from '../support/server.js';

// postgres.js prepares every query (named statements, Describe first, then Bind with the
// types the server described). fetch_types: false, because by default its first query
// looks array types up in pg_catalog.pg_type, which only a data plane can answer (0A000).
let server: RunningServer;
let sql: postgres.Sql;

const options = (port: number, password = ADMIN_PASSWORD) => ({ host: '127.0.0.1', port, user: 'admin', pass: password, database: 'default', fetch_types: false, onnotice: () => {} });

beforeAll(async () => {
  server = await startDriverServer();
  sql = postgres(options(server.port));
});
afterAll(async () => {
  await sql?.end();
  await server?.close();
});

describe('postgres.js (postgres 3.4), fetch_types: false', () => {
  it('connects with SCRAM and runs SHOW AUTH', async () => {
    const rows = await sql`SHOW AUTH`;
    expect([...rows]).toEqual(expect.arrayContaining([{ variable: '$auth.username', value: 'admin' }, { variable: '$auth.method', value: 'password' }]));
  });

  it('creates a user with a number CONNECTION LIMIT and a Date VALID UNTIL', async () => {
    await sql`CREATE USER drv_postgresjs WITH PASSWORD ${'drv pw'} CONNECTION LIMIT ${7} VALID UNTIL ${new Date('2099-01-02T03:04:05.678Z')}`;
    const users = await sql`SHOW USERS`;
    expect(users.find((u) => u.name === 'drv_postgresjs')).toMatchObject({ connection_limit: 7, valid_until: new Date('2099-01-02T03:04:05.678Z'), login: true });
  });

  it.each(SHOW_STATEMENTS)('runs %s as a prepared statement ten times', async (text) => {
    const counts: number[] = [];
    for (let i = 0; i < 10; i++) counts.push((await sql.unsafe(text, [], { prepare: true })).length);
    expect(new Set(counts).size).toBe(1);
  });

  it('reserves and releases a connection 100 times', async () => {
    for (let i = 0; i < 100; i++) {
      const r = await sql.reserve();
      await r`SELECT current_user`;
      r.release();
    }
  });

  it('drops the user it created', async () => {
    const r = await sql`DROP USER drv_postgresjs`;
    expect(r.command).toBe('DROP USER');
  });

  it('gets 28P01 for a wrong password', async () => {
    const bad = postgres({ ...options(server.port, 'not the password'), max: 1 });
    try {
      await expect(bad`SELECT 1`).rejects.toMatchObject({ code: '28P01' });
    } finally {
      await bad.end();
    }
  });
});
