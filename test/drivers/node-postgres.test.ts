import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import type { RunningServer } from '../../src/server.js';
import { SHOW_STATEMENTS, startDriverServer } from '../support/drivers.js';
import { ADMIN_PASSWORD, connectionConfig } from '../support/server.js';

// node-postgres (the `pg` package): text formats; named queries are prepared statements.
let server: RunningServer;
let c: pg.Client;

beforeAll(async () => {
  server = await startDriverServer();
  c = new pg.Client(connectionConfig(server.port));
  await c.connect();
});
afterAll(async () => {
  await c?.end();
  await server?.close();
});

describe('node-postgres (pg 8.23), default settings', () => {
  it('connects with SCRAM and runs SHOW AUTH', async () => {
    const r = await c.query('SHOW AUTH');
    expect(r.rows).toEqual(expect.arrayContaining([{ variable: '$auth.username', value: 'admin' }, { variable: '$auth.method', value: 'password' }]));
  });

  it('creates a user with a number CONNECTION LIMIT and a Date VALID UNTIL', async () => {
    const r = await c.query('CREATE USER drv_pg WITH PASSWORD $1 CONNECTION LIMIT $2 VALID UNTIL $3', ['drv pw', 7, new Date('2099-01-02T03:04:05.678Z')]);
    expect(r.command).toBe('CREATE');
    const users = await c.query('SHOW USERS');
    expect(users.rows.find((u) => u.name === 'drv_pg')).toMatchObject({ connection_limit: 7, valid_until: new Date('2099-01-02T03:04:05.678Z'), login: true });
  });

  it.each(SHOW_STATEMENTS)('runs %s as a named prepared statement ten times', async (sql) => {
    const counts: number[] = [];
    for (let i = 0; i < 10; i++) counts.push((await c.query({ name: `show ${sql}`, text: sql })).rows.length);
    expect(new Set(counts).size).toBe(1);
  });

  it('acquires and releases a pg.Pool connection 100 times', async () => {
    const pool = new pg.Pool({ ...connectionConfig(server.port), max: 2 });
    try {
      for (let i = 0; i < 100; i++) {
        const con = await pool.connect();
        await con.query('SELECT current_user');
        con.release();
      }
    } finally {
      await pool.end();
    }
  });

  it('drops the user it created', async () => {
    expect((await c.query('DROP USER drv_pg')).command).toBe('DROP');
  });

  it('gets 28P01 for a wrong password', async () => {
    const bad = new pg.Client({ ...connectionConfig(server.port), password: `${ADMIN_PASSWORD}x` });
    await expect(bad.connect()).rejects.toMatchObject({ code: '28P01' });
  });
});
