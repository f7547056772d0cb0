import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningServer } from '../../src/server.js';
import { okValue, requirePython, runPython, SHOW_STATEMENTS, startDriverServer, stepOf, type ProgramRun } from '../support/drivers.js';
import { ADMIN_PASSWORD } from '../support/server.js';

// asyncpg asks for binary results and binds every parameter in binary; its pool runs
// `SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL;` on every release.
let server: RunningServer;
let run: ProgramRun;

beforeAll(async () => {
  requirePython({ asyncpg: 'python3-asyncpg' });
  server = await startDriverServer();
  run = await runPython('asyncpg_steps.py', server.port, ADMIN_PASSWORD);
}, 60_000);
afterAll(async () => {
  await server?.close();
});

describe('asyncpg (python3-asyncpg 0.27), default settings', () => {
  it("connects with SCRAM, sending client_encoding as 'utf-8'", () => {
    expect(okValue(run, 'connect')).toBe('admin');
  });

  it('runs SHOW AUTH', () => {
    expect(okValue(run, 'show_auth')).toEqual(expect.arrayContaining([['$auth.username', 'admin'], ['$auth.method', 'password']]));
  });

  it('creates a user with an int CONNECTION LIMIT and a datetime VALID UNTIL bound in binary', () => {
    expect(okValue(run, 'create_user')).toBe('CREATE USER');
    expect(okValue(run, 'user_row')).toEqual({
      id: ['int', expect.any(Number)],
      login: ['bool', true],
      valid_until: ['datetime', '2099-01-02 03:04:05.678000+00:00'],
      connection_limit: ['int', 7],
      created_at: ['datetime', expect.stringMatching(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)?\+00:00$/)],
    });
    expect(okValue(run, 'login_created_user')).toBe('drv_asyncpg');
  });

  it('round-trips int4, int8, bool and text parameters and results in binary', () => {
    expect(okValue(run, 'select_params')).toEqual({ i4: ['int', 42], i8: ['int', 2 ** 40], b: ['bool', true], t: ['str', 'h\u00e9llo'] });
  });

  it.each(SHOW_STATEMENTS)('runs %s as a prepared statement ten times', (sql) => {
    const counts = okValue(run, `show:${sql}`) as number[];
    expect(counts).toHaveLength(10);
    expect(new Set(counts).size).toBe(1);
  });

  it("acquires and releases a pool connection 100 times (the pool's reset query succeeds)", () => {
    expect(okValue(run, 'pool')).toBe(100);
  });

  it('drops the user it created', () => {
    expect(okValue(run, 'drop_user')).toBe('DROP USER');
  });

  it('gets 28P01 for a wrong password', () => {
    expect(stepOf(run, 'wrong_password')).toMatchObject({ ok: false, sqlstate: '28P01' });
  });
});
