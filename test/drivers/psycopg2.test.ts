import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningServer } from '../../src/server.js';
import { okValue, requirePython, runPython, SHOW_STATEMENTS, startDriverServer, stepOf, type ProgramRun } from '../support/drivers.js';
import { ADMIN_PASSWORD } from '../support/server.js';

// psycopg2 interpolates parameters on the client: a datetime arrives as '...'::timestamptz.
let server: RunningServer;
let run: ProgramRun;

beforeAll(async () => {
  requirePython({ psycopg2: 'python3-psycopg2' });
  server = await startDriverServer();
  run = await runPython('psycopg2_steps.py', server.port, ADMIN_PASSWORD);
}, 60_000);
afterAll(async () => {
  await server?.close();
});

describe('psycopg2 (python3-psycopg2 2.9), default settings', () => {
  it('connects with SCRAM', () => {
    expect(okValue(run, 'connect')).toBe('admin');
  });

  it('runs SHOW AUTH', () => {
    expect(okValue(run, 'show_auth')).toEqual(expect.arrayContaining([['$auth.username', 'admin'], ['$auth.method', 'password']]));
  });

  it('creates a user with an int CONNECTION LIMIT and a datetime VALID UNTIL', () => {
    expect(okValue(run, 'create_user')).toBe('CREATE USER');
    expect(okValue(run, 'user_row')).toEqual({
      id: ['int', expect.any(Number)],
      login: ['bool', true],
      valid_until: ['datetime', '2099-01-02 03:04:05.678000+00:00'],
      connection_limit: ['int', 7],
    });
  });

  it.each(SHOW_STATEMENTS)('runs %s ten times', (sql) => {
    const counts = okValue(run, `show:${sql}`) as number[];
    expect(counts).toHaveLength(10);
    expect(new Set(counts).size).toBe(1);
  });

  it('drops the user it created', () => {
    expect(okValue(run, 'drop_user')).toBe('DROP USER');
  });

  it('gets and puts back a pooled connection 100 times', () => {
    expect(okValue(run, 'pool')).toBe(100);
  });

  it('fails to log in with a wrong password (libpq reports no SQLSTATE for it)', () => {
    expect(stepOf(run, 'wrong_password')).toMatchObject({ ok: false, error: expect.stringContaining('password authentication failed for user "admin"') });
  });
});
