import { beforeAll, describe, expect, it } from 'vitest';
import { classify, originalPosition, sqlLiteral, substituteAuth, type AuthSource } from '../../src/dataplane/classify.js';
import { postgresParser, type LibPgQuery } from '../../src/dataplane/pg-parser.js';
import { PgError } from '../../src/errors/pg-error.js';

let pg: LibPgQuery;
beforeAll(async () => {
  pg = await postgresParser();
});

const auth: AuthSource = {
  variable: (n) => ({ id: '42', username: "o'brien", email: null, roles: ['readwrite', 'a"b'], role: 'readwrite', method: 'password' })[n],
  claim: (n) => ({ org: 'o1', Mixed: 'M' })[n],
};

const sub = (sql: string) => substituteAuth(pg, sql, auth).sql;

describe('$auth substitution (PostgreSQL scanner)', () => {
  it('replaces variables outside strings, comments and dollar bodies', () => {
    expect(sub('SELECT $auth.username')).toBe("SELECT 'o''brien'");
    expect(sub("SELECT '$auth.id', $$ $auth.id $$, $t$ $auth.id $t$ -- $auth.id\n, /* $auth.id */ $auth.id")).toBe(
      "SELECT '$auth.id', $$ $auth.id $$, $t$ $auth.id $t$ -- $auth.id\n, /* $auth.id */ '42'",
    );
    expect(sub('SELECT * FROM t WHERE a=$auth.id::int AND $1 = b')).toBe("SELECT * FROM t WHERE a='42'::int AND $1 = b");
    expect(sub('SELECT $AUTH.ID')).toBe("SELECT '42'");
  });
  it('lists become array literals, missing values NULL, claims by name', () => {
    expect(sub("SELECT $auth.roles")).toBe(`SELECT E'{readwrite,"a\\\\"b"}'`);
    expect(sub('SELECT $auth.email, $auth.claims.org, $auth.claims."Mixed", $auth.claims.nope')).toBe("SELECT NULL, 'o1', 'M', NULL");
    expect(sub('SELECT $auth.role')).toBe("SELECT 'readwrite'");
  });
  it('an unknown variable is 42704 at its position; loose tokens are left for PostgreSQL', () => {
    let err: unknown;
    try {
      sub('SELECT 1, $auth.nope');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(PgError);
    expect((err as PgError).code).toBe('42704');
    expect((err as PgError).position).toBe(11);
    expect(sub('SELECT $auth. id, $auth')).toBe('SELECT $auth. id, $auth');
    expect(sub("SELECT 'unterminated $auth.id")).toBe("SELECT 'unterminated $auth.id");
  });
  it('literals read the same with or without standard strings', () => {
    expect(sqlLiteral('a\\b\'c')).toBe("E'a\\\\b\\'c'");
    expect(sqlLiteral(['x', 'a b', ''])).toBe(`'{x,"a b",""}'`);
    expect(sqlLiteral(null)).toBe('NULL');
  });
  it('maps positions back to the client text', () => {
    const original = 'SELECT $auth.id, nope';
    const { sql, edits } = substituteAuth(pg, original, auth);
    expect(sql).toBe("SELECT '42', nope");
    expect(originalPosition(original, sql, edits, sql.indexOf('nope') + 1)).toBe(original.indexOf('nope') + 1);
    expect(originalPosition(original, sql, edits, 8)).toBe(8);
    expect(originalPosition(original, sql, edits, 3)).toBe(3);
  });
});

describe('classification', () => {
  const refusal = (sql: string): string | null => {
    try {
      classify(pg, sql);
      return null;
    } catch (e) {
      expect((e as PgError).code).toBe('42501');
      return (e as PgError).message;
    }
  };
  it('refuses identity changes and what only the admin language may change', () => {
    for (const sql of [
      'SET ROLE postgres',
      'SET LOCAL ROLE postgres',
      'RESET ROLE',
      "SET role = 'x'",
      'SET SESSION AUTHORIZATION postgres',
      'RESET SESSION AUTHORIZATION',
      "SET auth.username = 'bob'",
      'RESET portcullis.x',
      'SET standard_conforming_strings = off',
      "SELECT set_config('auth.username', 'bob', false)",
      "SELECT 1 FROM t WHERE pg_catalog.set_config('role', 'x', true) IS NOT NULL",
      "SELECT set_config(current_user, 'x', false)",
      "ALTER SYSTEM SET work_mem = '1MB'",
      "LOAD 'x'",
      'CREATE EXTENSION pgcrypto',
      'GRANT SELECT ON t TO PUBLIC',
      'REVOKE SELECT ON t FROM PUBLIC',
      'CREATE ROLE x',
      'CREATE POLICY p ON t USING (true)',
      'DROP POLICY p ON t',
      'ALTER TABLE t DISABLE ROW LEVEL SECURITY',
      'ALTER TABLE t OWNER TO x',
      'REASSIGN OWNED BY a TO b',
      'CREATE RULE r AS ON INSERT TO t DO ALSO NOTHING',
      'SELECT 1; SET ROLE postgres',
    ]) {
      expect(refusal(sql), sql).not.toBeNull();
    }
    expect(refusal('SELECT 1; SET ROLE postgres')).toBe('SET ROLE is not allowed through portcullis');
  });
  it('forwards the rest and says what is DDL and what resets identity', () => {
    expect(refusal("SELECT set_config('search_path', 'x', false)")).toBeNull();
    expect(refusal('RESET ALL')).toBeNull();
    expect(refusal("SET search_path = 'a'")).toBeNull();
    const c = classify(pg, 'CREATE TABLE t (a int); INSERT INTO t VALUES (1); SELECT 1 INTO u; DISCARD ALL; create view v as select 1')!;
    expect(c.statements.map((s) => [s.kind, s.ddl, s.resetsIdentity])).toEqual([
      ['CreateStmt', true, false],
      ['InsertStmt', false, false],
      ['SelectStmt', true, false],
      ['DiscardStmt', false, true],
      ['ViewStmt', true, false],
    ]);
    expect(classify(pg, 'SELEC 1')).toBeNull();
  });
  it('on a shared connection: session state and the settings the plane cannot survive are 0A000', () => {
    const opts = { sharedConnection: true, forbiddenSettings: ['idle_session_timeout', 'transaction_timeout'] };
    for (const sql of ["SET transaction_timeout = '1s'", 'SET LOCAL idle_session_timeout = 1', "SELECT set_config('transaction_timeout', '1', false)", 'CREATE TEMP TABLE x (a int)', 'PREPARE p AS SELECT 1', 'DECLARE c CURSOR WITH HOLD FOR SELECT 1', 'SELECT pg_try_advisory_lock(1)', 'LISTEN ch']) {
      let code: string | undefined;
      try {
        classify(pg, sql, opts);
      } catch (e) {
        code = (e as PgError).code;
      }
      expect(code, sql).toBe('0A000');
      expect(classify(pg, sql), sql).not.toBeNull();
    }
    expect(classify(pg, 'DECLARE c CURSOR FOR SELECT 1; SELECT pg_advisory_xact_lock(1); SET statement_timeout = 5', opts)).not.toBeNull();
  });
});
