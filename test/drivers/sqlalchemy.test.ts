import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningServer } from '../../src/server.js';
import { okValue, requirePython, runPython, SHOW_STATEMENTS, startDriverServer, stepOf, type ProgramRun } from '../support/drivers.js';
import { ADMIN_PASSWORD } from '../support/server.js';

// SQLAlchemy 1.4 over psycopg2: its first connection asks for the current schema, the
// isolation level and standard_conforming_strings. use_native_hstore=False: otherwise every
// new connection looks the hstore type up in pg_type, which only a data plane can answer.
let server: RunningServer;
let run: ProgramRun;

beforeAll(async () => {
  requirePython({ sqlalchemy: 'python3-sqlalchemy', psycopg2: 'python3-psycopg2' });
  server = await startDriverServer();
  run = await runPython('sqlalchemy_steps.py', server.port, ADMIN_PASSWORD);
}, 60_000);
afterAll(async () => {
  await server?.close();
});

describe('SQLAlchemy (python3-sqlalchemy 1.4, psycopg2), use_native_hstore=False', () => {
  it('connects with SCRAM and runs its start-up queries', () => {
    expect(okValue(run, 'connect')).toBe('admin');
  });

  it('runs SHOW AUTH', () => {
    expect(okValue(run, 'show_auth')).toEqual(expect.arrayContaining([['$auth.username', 'admin'], ['$auth.method', 'password']]));
  });

  it('creates a user with bound int and datetime parameters', () => {
    expect(okValue(run, 'create_user')).toBe('ok');
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
    expect(okValue(run, 'drop_user')).toBe('ok');
  });

  it("checks a connection out of the engine's pool and back 100 times", () => {
    expect(okValue(run, 'pool')).toBe(100);
  });

  it('fails to log in with a wrong password', () => {
    expect(stepOf(run, 'wrong_password')).toMatchObject({ ok: false, error: expect.stringContaining('password authentication failed for user "admin"') });
  });
});
