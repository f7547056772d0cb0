import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningServer } from '../../src/server.js';
import { okValue, requirePython, runPython, SHOW_STATEMENTS, startDriverServer, stepOf, type ProgramRun } from '../support/drivers.js';
import { ADMIN_PASSWORD } from '../support/server.js';

// psycopg 3 binds small ints as binary int2, floats as float8 and aware datetimes as
// timestamptz; after a DROP, once it has prepared anything, it sends DEALLOCATE ALL.
let server: RunningServer;
let run: ProgramRun;

beforeAll(async () => {
  requirePython({ psycopg: 'python3-psycopg', psycopg_pool: 'python3-psycopg-pool' });
  server = await startDriverServer();
  run = await runPython('psycopg_steps.py', server.port, ADMIN_PASSWORD);
}, 60_000);
afterAll(async () => {
  await server?.close();
});

const USER_ROW = {
  id: ['int', expect.any(Number)],
  login: ['bool', true],
  valid_until: ['datetime', '2099-01-02 03:04:05.678000+00:00'],
  connection_limit: ['int', 7],
};

describe('psycopg 3 (python3-psycopg 3.1), default settings', () => {
  it('connects with SCRAM', () => {
    expect(okValue(run, 'connect')).toBe('admin');
  });

  it('runs SHOW AUTH', () => {
    expect(okValue(run, 'show_auth')).toEqual(expect.arrayContaining([['$auth.username', 'admin'], ['$auth.method', 'password']]));
  });

  it('creates a user with an int (bound as binary int2) and an aware datetime (timestamptz)', () => {
    expect(okValue(run, 'create_user')).toBe('CREATE USER');
    expect(okValue(run, 'user_row')).toEqual(USER_ROW);
  });

  it('reads the same row through a binary cursor', () => {
    expect(okValue(run, 'user_row_binary')).toEqual(USER_ROW);
  });

  it('binds int2, int8, float8, bool and timestamptz parameters in binary', () => {
    expect(okValue(run, 'binary_params')).toEqual({ small: '7', big: String(2 ** 40), f: '1.5', ok: 'true', at: '2099-01-02 03:04:05+00' });
  });

  it.each(SHOW_STATEMENTS)('runs %s as a prepared statement ten times', (sql) => {
    const counts = okValue(run, `show:${sql}`) as number[];
    expect(counts).toHaveLength(10);
    expect(new Set(counts).size).toBe(1);
  });

  it('runs a DROP after prepared statements (psycopg then sends DEALLOCATE ALL) without an error', () => {
    expect(okValue(run, 'ddl_after_prepared')).toEqual(['DROP USER', 'admin']);
  });

  it('acquires and releases a psycopg_pool connection 100 times', () => {
    expect(okValue(run, 'pool')).toBe(100);
  });

  it('fails to log in with a wrong password (libpq reports no SQLSTATE for it)', () => {
    expect(stepOf(run, 'wrong_password')).toMatchObject({ ok: false, error: expect.stringContaining('password authentication failed for user "admin"') });
  });
});
