import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli } from '../support/cli.js';
import { ADMIN_PASSWORD, client, spawnServer } from '../support/server.js';

/** `portcullis apply`: offline on a data directory and online to a server, each file atomic. */
const ENV = { PORTCULLIS_BOOTSTRAP_PASSWORD: ADMIN_PASSWORD };

function files(contents: Record<string, string>): { dir: string; file: (name: string) => string } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'apply-'));
  for (const [name, text] of Object.entries(contents)) writeFileSync(path.join(dir, name), text);
  return { dir, file: (name) => path.join(dir, name) };
}

const MIGRATION = `-- an idempotent migration
CREATE TENANT IF NOT EXISTS acme;
CREATE USER IF NOT EXISTS alice WITH PASSWORD 'wonderland' ROLE readwrite;
CREATE DATABASE IF NOT EXISTS prod;
GRANT READ ON DATABASE prod TO alice;
`;
// Fails at its 5th statement: the four before it must not stay.
const FAILS_AT_5 = `CREATE USER bob;
CREATE USER carol;
CREATE DATABASE staging;
GRANT READ ON DATABASE staging TO bob;
CREATE USER dave ROLE nosuchrole;
CREATE USER erin;
`;

/** The users of a data directory, read through a server started on it. */
async function usersIn(data: string): Promise<string[]> {
  const server = await spawnServer(['--data', data]);
  try {
    const c = await client(server.port);
    const r = await c.query('SHOW USERS');
    await c.end();
    return r.rows.map((row) => row.name as string);
  } finally {
    await server.stop();
  }
}

describe('portcullis apply --data (offline)', () => {
  it('applies files in order, and re-applying an idempotent file succeeds', async () => {
    const f = files({ '1.sql': MIGRATION, '2.sql': 'CREATE USER IF NOT EXISTS bob;\nGRANT WRITE ON DATABASE prod TO bob;\n' });
    const data = path.join(f.dir, 'data');
    const first = await cli(['apply', '--data', data, f.file('1.sql'), f.file('2.sql')], '', { env: ENV });
    expect(first.code).toBe(0);
    expect(first.stderr).toBe('');
    expect(first.stdout).toMatch(/^applied 2 files, 6 statements in \d+\.\d\d s\n$/);
    const again = await cli(['apply', '--data', data, f.file('1.sql'), f.file('2.sql')], '', { env: ENV });
    expect(again.code).toBe(0);
    expect(again.stderr).toContain(`1.sql:3: NOTICE:  user "alice" already exists, skipping`);
    expect(await usersIn(data)).toEqual(['admin', 'alice', 'bob']);
  });

  it('a file failing at its 5th statement leaves nothing, names file:5 and stops before the next file', async () => {
    const f = files({ 'bad.sql': FAILS_AT_5, 'later.sql': 'CREATE USER frank;\n' });
    const data = path.join(f.dir, 'data');
    const r = await cli(['apply', '--data', data, f.file('bad.sql'), f.file('later.sql')], '', { env: ENV });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      `${f.file('bad.sql')}:5:23: 42704 role "nosuchrole" does not exist\n` +
        'HINT:  A user takes a built-in role: readonly, readwrite, admin, tenant_admin or superuser.\n',
    );
    expect(r.stdout).toBe('');
    expect(await usersIn(data)).toEqual(['admin']);
  });

  it('--dry-run checks statements and privileges but commits nothing', async () => {
    const f = files({ 'm.sql': MIGRATION, 'priv.sql': 'CREATE USER mallory ROLE superuser;\n' });
    const data = path.join(f.dir, 'data');
    const dry = await cli(['apply', '--dry-run', '--data', data, f.file('m.sql')], '', { env: ENV });
    expect(dry.code).toBe(0);
    expect(dry.stdout).toMatch(/^dry run: checked 1 file, 4 statements in .* s; nothing committed\n$/);
    expect(await usersIn(data)).toEqual(['admin']);
    // Privileges are checked as the acting user would meet them.
    expect((await cli(['apply', '--data', data, f.file('m.sql')], '', { env: ENV })).code).toBe(0);
    const denied = await cli(['apply', '--dry-run', '--data', data, '--user', 'alice', f.file('priv.sql')], '', { env: ENV });
    expect(denied.code).toBe(1);
    expect(denied.stderr).toMatch(/priv\.sql:1:\d+: 42501 /);
  });

  it('refuses transaction control, meta-commands and syntax errors before sending anything', async () => {
    const f = files({
      'tx.sql': 'CREATE USER x;\nBEGIN;\nCREATE USER y;\nCOMMIT;\n',
      'meta.sql': 'CREATE USER x;\n\\set ON_ERROR_STOP on\n',
      'syntax.sql': 'CREATE USER x;\nCREATE USR y;\n',
    });
    const data = path.join(f.dir, 'data');
    const tx = await cli(['apply', '--data', data, f.file('tx.sql')], '', { env: ENV });
    expect(tx.code).toBe(1);
    expect(tx.stderr).toContain('tx.sql:2:1: 0A000 transaction control is not allowed');
    const meta = await cli(['apply', '--data', data, f.file('meta.sql')], '', { env: ENV });
    expect(meta.code).toBe(1);
    expect(meta.stderr).toContain('meta.sql:2:1: 0A000 psql meta-command \\set is not supported by apply');
    const syntax = await cli(['apply', '--data', data, f.file('syntax.sql')], '', { env: ENV });
    expect(syntax.code).toBe(1);
    expect(syntax.stderr).toContain('syntax.sql:2:8: 42601 syntax error at or near "USR"\nHINT:  Expected USER,');
    expect(await usersIn(data)).toEqual(['admin']);
  });

  it('prints what statements return (a new key, once) and takes the data directory lock', async () => {
    const f = files({ 'key.sql': "CREATE API KEY 'ci';\n" });
    const data = path.join(f.dir, 'data');
    const r = await cli(['apply', '--data', data, f.file('key.sql')], '', { env: ENV });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^ name \|\s+key_id\s+\|\s+key\s+\| expires_at $/m);
    expect(r.stdout).toMatch(/ ci {3}\| [a-z0-9]{16} \| pcu_[a-z0-9]{16}_[A-Za-z0-9]{49} \| \n/);
    expect(r.stderr).toContain('NOTICE:  store this key now');
    const server = await spawnServer(['--data', data]);
    try {
      const locked = await cli(['apply', '--data', data, f.file('key.sql')], '', { env: ENV });
      expect(locked.code).not.toBe(0);
      expect(locked.stderr).toContain(`in use by another portcullis process (PID ${server.child.pid})`);
    } finally {
      await server.stop();
    }
  });
});

describe('portcullis apply --url (online)', () => {
  it('applies to a running server, atomically per file', async () => {
    const server = await spawnServer(['--memory']);
    try {
      const f = files({ 'm.sql': MIGRATION, 'bad.sql': FAILS_AT_5 });
      const url = `postgres://admin:${ADMIN_PASSWORD}@127.0.0.1:${server.port}/default`;
      const ok = await cli(['apply', '--url', url, f.file('m.sql')]);
      expect(ok.code).toBe(0);
      expect(ok.stderr).toBe('');
      const bad = await cli(['apply', '--url', url, f.file('bad.sql')]);
      expect(bad.code).toBe(1);
      expect(bad.stderr).toContain('bad.sql:5:23: 42704 role "nosuchrole" does not exist');
      // PG* variables, as psql: no --url at all.
      const env = { PGHOST: '127.0.0.1', PGPORT: String(server.port), PGUSER: 'admin', PGPASSWORD: ADMIN_PASSWORD, PGDATABASE: 'default' };
      const viaEnv = await cli(['apply', '--dry-run', f.file('m.sql')], '', { env });
      expect(viaEnv.code).toBe(0);
      // And the password from a .pgpass file (PGPASSFILE), as libpq finds it.
      const pgpass = f.file('pgpass');
      writeFileSync(pgpass, `127.0.0.1:${server.port}:default:admin:${ADMIN_PASSWORD}\n`, { mode: 0o600 });
      const viaPgpass = await cli(['apply', '--dry-run', f.file('m.sql')], '', { env: { PGHOST: env.PGHOST, PGPORT: env.PGPORT, PGUSER: 'admin', PGDATABASE: 'default', PGPASSFILE: pgpass } });
      expect(viaPgpass.code).toBe(0);
      expect(viaPgpass.stderr).not.toMatch(/warning|password/i);
      expect(viaPgpass.stdout).toContain('dry run: checked 1 file');
      const c = await client(server.port);
      const users = (await c.query('SHOW USERS')).rows.map((r) => r.name);
      await c.end();
      expect(users).toEqual(['admin', 'alice']);
    } finally {
      await server.stop();
    }
  });
});
