import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningServer } from '../../src/server.js';
import { okValue, requireJava, runJava, SHOW_STATEMENTS, startDriverServer, stepOf, type ProgramRun } from '../support/drivers.js';
import { ADMIN_PASSWORD } from '../support/server.js';

// pgJDBC switches a prepared statement to binary results after its fifth execution
// (prepareThreshold = 5), so every SHOW run ten times is read in text and then in binary.
let server: RunningServer;
let run: ProgramRun;

beforeAll(async () => {
  requireJava();
  server = await startDriverServer();
  run = await runJava('PgJdbcSteps.java', server.port, ADMIN_PASSWORD);
}, 90_000);
afterAll(async () => {
  await server?.close();
});

describe('pgJDBC (libpostgresql-jdbc-java 42.5), default settings', () => {
  it('connects with SCRAM', () => {
    expect(okValue(run, 'connect')).toBe('admin');
  });

  it('runs SHOW AUTH', () => {
    expect(okValue(run, 'show_auth')).toEqual(expect.arrayContaining([['$auth.username', 'admin'], ['$auth.method', 'password']]));
  });

  it('creates a user with setInt and an OffsetDateTime, and reads it back the same in text and in binary', () => {
    expect(okValue(run, 'create_user')).toBe('ok');
    expect(okValue(run, 'user_row')).toEqual({ id: expect.any(Number), login: true, valid_until: '2099-01-02T03:04:05.678Z', connection_limit: 7 });
  });

  it('round-trips int4, int8, bool and text parameters and results past the switch to binary', () => {
    expect(okValue(run, 'select_params')).toEqual([42, 2 ** 40, true, 'h\u00e9llo']);
  });

  it.each(SHOW_STATEMENTS)('runs %s as a prepared statement ten times', (sql) => {
    const counts = okValue(run, `show:${sql}`) as number[];
    expect(counts).toHaveLength(10);
    expect(new Set(counts).size).toBe(1);
  });

  it("answers DatabaseMetaData's catalog query with 0A000, and the connection goes on", () => {
    expect(stepOf(run, 'metadata')).toMatchObject({ ok: false, sqlstate: '0A000' });
    expect(okValue(run, 'after_metadata')).toBe('admin');
  });

  it('drops the user it created', () => {
    expect(okValue(run, 'drop_user')).toBe('ok');
  });

  it('gets 28P01 for a wrong password', () => {
    expect(stepOf(run, 'wrong_password')).toMatchObject({ ok: false, sqlstate: '28P01' });
  });
});
