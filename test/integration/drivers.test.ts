import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import postgres from 'postgres';
import type { RunningServer } from '../../src/server.js';
import { psql } from '../support/psql.js';
import { Recorder, decodeWithPgProtocol } from '../support/recorder.js';
import { ADMIN_PASSWORD, startTestServer } from '../support/server.js';

let server: RunningServer;
let recorder: Recorder;

beforeAll(async () => {
  server = await startTestServer();
  recorder = new Recorder(server.port);
  await recorder.start();
});
afterAll(async () => {
  await recorder.stop();
  await server.close();
});

const STATEMENTS = {
  create: 'CREATE USER IF NOT EXISTS driver_user WITH PASSWORD $1 ROLE readwrite CONNECTION LIMIT $2',
  select: 'SELECT $1::text AS echo, current_user, $auth.role',
  alter: 'ALTER USER driver_user VALID UNTIL $1',
  show: 'SHOW USERS',
};

describe('drivers through a recording proxy', () => {
  it('node-postgres runs statements with bound parameters through the extended protocol', async () => {
    const c = new pg.Client({ host: '127.0.0.1', port: recorder.port, user: 'admin', password: ADMIN_PASSWORD, database: 'default' });
    await c.connect();
    try {
      const created = await c.query(STATEMENTS.create, ['s3cret pass', 3]);
      expect(created.command).toBe('CREATE');
      const r = await c.query(STATEMENTS.select, ['hello']);
      expect(r.rows).toEqual([{ echo: 'hello', current_user: 'admin', role: 'superuser' }]);
      expect(r.fields.map((f) => f.dataTypeID)).toEqual([25, 25, 25]);
      await c.query(STATEMENTS.alter, ['2099-01-01 00:00:00+00']);
      const users = await c.query(STATEMENTS.show);
      const row = users.rows.find((u) => u.name === 'driver_user');
      expect(row).toMatchObject({ role: 'readwrite', connection_limit: 3, login: true, has_password: true });
      expect(row.valid_until).toEqual(new Date('2099-01-01T00:00:00Z'));
      // Errors in the extended protocol: reported, then the connection goes on after Sync.
      await expect(c.query('SELECT $auth.nope')).rejects.toMatchObject({ code: '42704' });
      await expect(c.query('CREATE USER driver_user PASSWORD $1', ['x'])).rejects.toMatchObject({ code: '42710' });
      expect((await c.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    } finally {
      await c.end();
    }
    // The new user logs in with the password that was bound as a parameter.
    const u = new pg.Client({ host: '127.0.0.1', port: recorder.port, user: 'driver_user', password: 's3cret pass', database: 'default' });
    await u.connect();
    expect((await u.query('SELECT current_user')).rows[0].current_user).toBe('driver_user');
    await u.end();
  });

  it('postgres.js, which prepares every query, runs the same statements', async () => {
    // fetch_types off: postgres.js would otherwise read pg_catalog.pg_type, a table portcullis does not have.
    const sql = postgres({ host: '127.0.0.1', port: recorder.port, user: 'admin', password: ADMIN_PASSWORD, database: 'default', fetch_types: false, max: 1, onnotice: () => {} });
    try {
      await sql.unsafe(STATEMENTS.create, ['other pass', 5], { prepare: true });
      const r = await sql.unsafe(STATEMENTS.select, ['from postgres.js'], { prepare: true });
      expect([...r]).toEqual([{ echo: 'from postgres.js', current_user: 'admin', role: 'superuser' }]);
      await sql.unsafe(STATEMENTS.alter, ['2098-06-01T00:00:00Z'], { prepare: true });
      const users = await sql.unsafe(STATEMENTS.show, [], { prepare: true });
      expect(users.find((u) => u.name === 'driver_user')).toMatchObject({ role: 'readwrite', connection_limit: 3 });
      const again = await sql.unsafe(STATEMENTS.select, ['twice'], { prepare: true });
      expect(again[0]!.echo).toBe('twice');
      await expect(sql.unsafe('DROP USER nobody_at_all', [], { prepare: true })).rejects.toMatchObject({ code: '42704' });
      const tagged = await sql`SELECT ${'tagged'}::text AS t`;
      expect(tagged[0]!.t).toBe('tagged');
    } finally {
      await sql.end();
    }
  });

  it('psql sessions too', async () => {
    const r = await psql(recorder.port, ['-At', '-c', 'SHOW USERS', '-c', 'CREATE USR x', '-c', 'SET application_name = foo']);
    expect(r.stdout).toContain('driver_user');
  });

  it("pg-protocol's parser decodes every byte the server sent in those sessions", async () => {
    expect(recorder.recordings.length).toBeGreaterThanOrEqual(4);
    const seen = new Set<string>();
    for (const rec of recorder.recordings) {
      expect(rec.answers.every((b) => b === 0x4e)).toBe(true); // 'N' to SSLRequest / GSSENCRequest
      for (const m of await decodeWithPgProtocol(rec)) seen.add(m.name);
    }
    for (const name of [
      'authenticationSASL',
      'authenticationSASLContinue',
      'authenticationSASLFinal',
      'authenticationOk',
      'parameterStatus',
      'backendKeyData',
      'readyForQuery',
      'parseComplete',
      'bindComplete',
      'parameterDescription',
      'rowDescription',
      'noData',
      'dataRow',
      'commandComplete',
      'error',
    ]) {
      expect(seen, name).toContain(name);
    }
  });
});
