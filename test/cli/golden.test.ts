import { closeSync, copyFileSync, mkdtempSync, openSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { cli } from '../support/cli.js';
import { startPostgres } from '../support/postgres.js';
import { ADMIN_PASSWORD, ROOT, spawnServer } from '../support/server.js';
import { DETERMINISTIC_BOOTSTRAP_PASSWORD } from '../../src/engine/deterministic.js';
import { superuserLockdownSql } from '../../src/dataplane/provision/index.js';

/**
 * Golden files, pg_regress style. `portcullis golden` runs every fixture on its own
 * deterministic engine and compares with the expected .out files; and the same .sql files
 * through real psql against `portcullis serve --memory --deterministic` must print exactly
 * the same bytes, so expected files can be made either way.
 */
const FIXTURES = path.join(ROOT, 'fixtures');
const files = readdirSync(FIXTURES).filter((f) => f.endsWith('.sql')).sort();

async function realPsql(port: number, sqlFile: string): Promise<string> {
  const outFile = path.join(mkdtempSync(path.join(os.tmpdir(), 'golden-')), 'out');
  const out = openSync(outFile, 'w');
  const input = openSync(sqlFile, 'r');
  try {
    const child = spawn('psql', ['-X', '-a', '-q', '-h', '127.0.0.1', '-p', String(port), '-U', 'admin', '-d', 'default'], {
      // As the runner: in the file's directory, where \i finds what it includes.
      cwd: path.dirname(sqlFile),
      env: { ...process.env, PGPASSWORD: DETERMINISTIC_BOOTSTRAP_PASSWORD, LANG: 'C.UTF-8', PGCLIENTENCODING: 'UTF8', PGTZ: 'UTC' },
      stdio: [input, out, out], // one file for both streams keeps their order, as pg_regress's 2>&1
    });
    await new Promise((resolve) => child.on('close', resolve));
  } finally {
    closeSync(out);
    closeSync(input);
  }
  return readFileSync(outFile, 'utf8');
}

describe('portcullis golden', () => {
  it('passes every fixture', async () => {
    // Deterministic mode's own superuser password (its verifier shows in DUMP CATALOG).
    const r = await cli(['golden', '--jobs', '2', FIXTURES], '', { env: { PORTCULLIS_BOOTSTRAP_PASSWORD: '' } });
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain(`${files.length} files, ${files.length} passed, 0 failed`);
    expect(r.code).toBe(0);
  }, 120_000);

  it('prints a unified diff and exits 1 on a difference; --update rewrites the expected file', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'golden-cli-'));
    copyFileSync(path.join(FIXTURES, 'users.sql'), path.join(dir, 'users.sql'));
    const expected = readFileSync(path.join(FIXTURES, 'users.out'), 'utf8');
    writeFileSync(path.join(dir, 'users.out'), expected.replace(' alice ', ' alicia '));
    const r = await cli(['golden', dir]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^FAILED .*users\.sql$/m);
    expect(r.stdout).toMatch(/^@@ -\d+,\d+ \+\d+,\d+ @@$/m);
    const changed = expected.split('\n').find((l) => l.includes(' alice '))!;
    expect(r.stdout).toContain(`\n-${changed.replace(' alice ', ' alicia ')}\n+${changed}\n`);
    expect(r.stdout).toContain('1 files, 0 passed, 1 failed');
    const u = await cli(['golden', '--update', dir]);
    expect(u.code).toBe(0);
    expect(u.stdout).toMatch(/^updated .*users\.sql$/m);
    expect(readFileSync(path.join(dir, 'users.out'), 'utf8')).toBe(expected);
    expect((await cli(['golden', path.join(dir, 'users.sql')])).code).toBe(0);
  }, 120_000);

  it('a wrong policy in a copy of a fixture fails it: exit 1, and the diff shows the rows it leaks', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'golden-leak-'));
    for (const f of ['shop.sql', 'shop.out']) copyFileSync(path.join(FIXTURES, f), path.join(dir, f));
    const right = 'CREATE RLS POLICY own ON shop.orders FOR ALL USING (owner = $auth.username);';
    // A plausible slip: "and the new ones" meant for the support team, written into everyone's policy.
    const wrong = "CREATE RLS POLICY own ON shop.orders FOR ALL USING (owner = $auth.username OR status = 'new');";
    const sql = readFileSync(path.join(dir, 'shop.sql'), 'utf8');
    expect(sql).toContain(right);
    writeFileSync(path.join(dir, 'shop.sql'), sql.replace(right, wrong));
    const r = await cli(['golden', dir]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^FAILED .*shop\.sql$/m);
    // As alice: bob's new order 3 and dave's 6, which the right policy hides from her.
    expect(r.stdout).toContain('\n+  3 | sku-10 | caddy  |   4 | new\n');
    expect(r.stdout).toContain('\n+  6 | sku-09 | timer  |   3 | new\n');
    expect(r.stdout).toContain('\n-(7 rows)\n+(16 rows)\n');
    // As bob: eight orders of others where the right policy shows none.
    expect(r.stdout).toContain('\n-          0\n+          8\n');
    expect(r.stdout).toContain('1 files, 0 passed, 1 failed');
  }, 120_000);

  it('--upstream: every fixture passes on PostgreSQL, reached as a role with CREATEDB and CREATEROLE only, and leaves no database or role behind', async () => {
    const pgsrv = await startPostgres();
    try {
      // What an operator does once as a superuser (docs/data-plane.md).
      await pgsrv.query("CREATE ROLE gateway LOGIN CREATEDB CREATEROLE PASSWORD 'gateway-secret'");
      const t1 = new pg.Client(pgsrv.connection(undefined, undefined, 'template1'));
      await t1.connect();
      await t1.query(superuserLockdownSql('gateway'));
      await t1.end();
      const before = await pgsrv.query<{ n: string }>("SELECT (SELECT count(*) FROM pg_database) + (SELECT count(*) FROM pg_roles) AS n");
      const url = `postgres://gateway:gateway-secret@${pgsrv.host}:${pgsrv.port}/postgres`;
      // The fixtures, and the example of docs/testing-access-rules.md.
      const r = await cli(['golden', '--jobs', '2', '--upstream', url, FIXTURES, path.join(ROOT, 'docs', 'examples', 'access', 'tests')], '', { env: { PORTCULLIS_BOOTSTRAP_PASSWORD: '' } });
      expect(r.stderr).toBe('');
      expect(r.stdout).toContain(`${files.length + 1} files, ${files.length + 1} passed, 0 failed`);
      expect(r.code).toBe(0);
      const left = await pgsrv.query<{ name: string }>("SELECT datname AS name FROM pg_database WHERE datname LIKE 'pcu%' UNION ALL SELECT rolname FROM pg_roles WHERE rolname LIKE 'pcu%'");
      expect(left).toEqual([]);
      expect(await pgsrv.query("SELECT (SELECT count(*) FROM pg_database) + (SELECT count(*) FROM pg_roles) AS n")).toEqual(before);
    } finally {
      await pgsrv.stop();
    }
  }, 180_000);

  it("docs/testing-access-rules.md's example: its rules apply with portcullis apply, its test passes, through real psql too (\\ir)", async () => {
    const example = path.join(ROOT, 'docs', 'examples', 'access');
    const rules = readdirSync(path.join(example, 'rules')).sort().map((f) => path.join(example, 'rules', f));
    const data = mkdtempSync(path.join(os.tmpdir(), 'golden-example-'));
    const applied = await cli(['apply', '--data', data, ...rules], '', { env: { PORTCULLIS_BOOTSTRAP_PASSWORD: 'x' } });
    expect(applied.stderr).toBe('');
    expect(applied.code).toBe(0);
    const r = await cli(['golden', path.join(example, 'tests')], '', { env: { PORTCULLIS_BOOTSTRAP_PASSWORD: '' } });
    expect(r.stdout).toContain('1 files, 1 passed, 0 failed');
    const server = await spawnServer(['--memory', '--deterministic'], { PORTCULLIS_BOOTSTRAP_PASSWORD: '' });
    try {
      const test = path.join(example, 'tests', 'orders.sql');
      expect(await realPsql(server.port, test)).toBe(readFileSync(test.replace(/\.sql$/, '.out'), 'utf8'));
    } finally {
      await server.stop();
    }
  }, 120_000);

  it('--server runs the files against a live server', async () => {
    const server = await spawnServer(['--deterministic']);
    try {
      const url = `postgres://admin:${ADMIN_PASSWORD}@127.0.0.1:${server.port}/default`;
      const r = await cli(['golden', '--server', url, path.join(FIXTURES, 'psql_format.sql')]);
      expect(r.stdout).toContain('1 files, 1 passed, 0 failed');
      expect(r.code).toBe(0);
    } finally {
      await server.stop();
    }
  }, 60_000);

  it('the fixtures raise every SPEC §6 error a statement can raise, shown with its SQLSTATE', () => {
    // Login (28P01, 28000, 3D000, 53300), protocol (08P01) and cancel (57014) errors are not
    // raised by statements; test/integration covers them.
    const out = readFileSync(path.join(FIXTURES, 'errors.out'), 'utf8');
    for (const code of ['42601', '42501', '42704', '42710', '2BP01', '0LP01', '22023', '22007', '22008', '25P02', '0A000']) {
      expect(out).toContain(`ERROR:  ${code}: `);
    }
  });

  it('refuses --deterministic with --data', async () => {
    const r = await cli(['serve', '--deterministic', '--data', os.tmpdir()]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--deterministic cannot be used with --data');
  });
});

describe('real psql against serve --memory --deterministic prints the expected files', () => {
  it.each(files)('%s', async (file) => {
    const server = await spawnServer(['--memory', '--deterministic'], { PORTCULLIS_BOOTSTRAP_PASSWORD: '' });
    try {
      const actual = await realPsql(server.port, path.join(FIXTURES, file));
      expect(actual).toBe(readFileSync(path.join(FIXTURES, file.replace(/\.sql$/, '.out')), 'utf8'));
    } finally {
      await server.stop();
    }
  });
});
