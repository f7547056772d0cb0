import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serialize } from 'pg-protocol';
import type { BackendMessage } from 'pg-protocol/dist/messages.js';
import type { RunningServer } from '../../src/server.js';
import { RawClient, names } from '../support/raw-client.js';
import { client, startTestServer } from '../support/server.js';

// What drivers and poolers send to reset a session, answered with PostgreSQL's command tags.
let server: RunningServer;

beforeAll(async () => {
  server = await startTestServer();
  const c = await client(server.port);
  await c.query("CREATE USER alice WITH PASSWORD 'alice pw' ROLE readwrite");
  await c.query('CREATE TENANT acme');
  await c.end();
});
afterAll(async () => {
  await server.close();
});

const field = (m: unknown, k: string) => (m as Record<string, unknown>)[k];
const tags = (ms: BackendMessage[]) => ms.filter((m) => m.name === 'commandComplete').map((m) => field(m, 'text'));
const errorOf = (ms: BackendMessage[]) => ms.find((m) => m.name === 'error') as unknown as { code: string; message: string; position?: string } | undefined;
const status = (ms: BackendMessage[], name: string) =>
  (ms.filter((m) => m.name === 'parameterStatus' && field(m, 'parameterName') === name).at(-1) as unknown as { parameterValue: string } | undefined)?.parameterValue;
const rowsOf = (ms: BackendMessage[]) => ms.filter((m) => m.name === 'dataRow').map((m) => field(m, 'fields'));

describe('session housekeeping statements', () => {
  it("runs asyncpg's pool reset query with PostgreSQL's tags", async () => {
    const c = await RawClient.login(server.port);
    const ms = await c.roundTrip(serialize.query('SELECT pg_advisory_unlock_all();\nCLOSE ALL;\nUNLISTEN *;\nRESET ALL;'));
    expect(errorOf(ms)).toBeUndefined();
    expect(tags(ms)).toEqual(['SELECT 1', 'CLOSE CURSOR ALL', 'UNLISTEN', 'RESET']);
    expect(rowsOf(ms)).toEqual([['']]); // void
    c.end();
  });

  it('answers every DISCARD, DEALLOCATE ALL and UNLISTEN form with its tag', async () => {
    const c = await RawClient.login(server.port);
    const cases: [string, string][] = [
      ['DISCARD ALL', 'DISCARD ALL'],
      ['discard plans', 'DISCARD PLANS'],
      ['DISCARD SEQUENCES', 'DISCARD SEQUENCES'],
      ['DISCARD TEMP', 'DISCARD TEMP'],
      ['DISCARD TEMPORARY', 'DISCARD TEMP'],
      ['DEALLOCATE ALL', 'DEALLOCATE ALL'],
      ['DEALLOCATE PREPARE ALL', 'DEALLOCATE ALL'],
      ['UNLISTEN some_channel', 'UNLISTEN'],
      ['CLOSE ALL', 'CLOSE CURSOR ALL'],
    ];
    for (const [sql, tag] of cases) expect(tags(await c.roundTrip(serialize.query(sql))), sql).toEqual([tag]);
    c.end();
  });

  it('refuses LISTEN with 0A000, CLOSE of a cursor with 34000, and the connection goes on', async () => {
    const c = await RawClient.login(server.port);
    expect(errorOf(await c.roundTrip(serialize.query('LISTEN jobs')))).toMatchObject({ code: '0A000', message: 'LISTEN is not supported: portcullis sends no notifications', position: '1' });
    expect(errorOf(await c.roundTrip(serialize.query('CLOSE my_cursor')))).toMatchObject({ code: '34000', message: 'cursor "my_cursor" does not exist', position: '7' });
    expect(tags(await c.roundTrip(serialize.query('SELECT 1')))).toEqual(['SELECT 1']);
    c.end();
  });

  it('DEALLOCATE name drops that prepared statement (26000 for one that does not exist)', async () => {
    const c = await RawClient.login(server.port);
    await c.roundTrip(serialize.parse({ name: 'users', text: 'SHOW USERS' }), serialize.parse({ name: 'auth', text: 'SHOW AUTH' }), serialize.sync());
    expect(tags(await c.roundTrip(serialize.query('DEALLOCATE users')))).toEqual(['DEALLOCATE']);
    const bind = await c.roundTrip(serialize.bind({ statement: 'users' }), serialize.execute({}), serialize.sync());
    expect(errorOf(bind)).toMatchObject({ code: '26000', message: 'prepared statement "users" does not exist' });
    // The other one is still there; the name is free again.
    expect(names(await c.roundTrip(serialize.bind({ statement: 'auth' }), serialize.execute({}), serialize.sync()))).toContain('commandComplete');
    expect(names(await c.roundTrip(serialize.parse({ name: 'users', text: 'SHOW USERS' }), serialize.sync()))).toEqual(['parseComplete', 'readyForQuery']);
    expect(errorOf(await c.roundTrip(serialize.query('DEALLOCATE PREPARE nothing_here')))).toMatchObject({
      code: '26000',
      message: 'prepared statement "nothing_here" does not exist',
      position: '20',
    });
    c.end();
  });

  it('DEALLOCATE ALL and DISCARD ALL drop every prepared statement', async () => {
    const c = await RawClient.login(server.port);
    for (const reset of ['DEALLOCATE ALL', 'DISCARD ALL']) {
      await c.roundTrip(serialize.parse({ name: 's1', text: 'SHOW USERS' }), serialize.parse({ name: 's2', text: 'SHOW AUTH' }), serialize.sync());
      expect(tags(await c.roundTrip(serialize.query(reset)))).toEqual([reset]);
      for (const s of ['s1', 's2']) {
        expect(errorOf(await c.roundTrip(serialize.describe({ type: 'S', name: s }), serialize.sync())), `${reset} ${s}`).toMatchObject({ code: '26000' });
      }
    }
    c.end();
  });

  it('DEALLOCATE in a transaction block is not undone by ROLLBACK (prepared statements are not transactional)', async () => {
    const c = await RawClient.login(server.port);
    await c.roundTrip(serialize.parse({ name: 'kept', text: 'SHOW USERS' }), serialize.sync());
    expect(tags(await c.roundTrip(serialize.query('BEGIN; DEALLOCATE kept; ROLLBACK')))).toEqual(['BEGIN', 'DEALLOCATE', 'ROLLBACK']);
    expect(errorOf(await c.roundTrip(serialize.describe({ type: 'S', name: 'kept' }), serialize.sync()))).toMatchObject({ code: '26000' });
    c.end();
  });

  it('DISCARD ALL cannot run inside a transaction block (25001), nor with other statements in one message', async () => {
    const c = await RawClient.login(server.port);
    const inBlock = await c.roundTrip(serialize.query('BEGIN'), serialize.query('DISCARD ALL'));
    expect(errorOf(inBlock)).toMatchObject({ code: '25001', message: 'DISCARD ALL cannot run inside a transaction block' });
    expect(field(inBlock.at(-1), 'status')).toBe('E');
    await c.roundTrip(serialize.query('ROLLBACK'));
    expect(errorOf(await c.roundTrip(serialize.query('SET application_name = x; DISCARD ALL')))).toMatchObject({ code: '25001' });
    // The failed message ran none of itself.
    expect(rowsOf(await c.roundTrip(serialize.query('SHOW application_name')))).toEqual([['']]);
    c.end();
  });

  it('RESET ALL and DISCARD ALL go back to the startup settings, as PostgreSQL', async () => {
    const { c } = await RawClient.authenticate(server.port, { user: 'admin', application_name: 'probe', options: '-c TimeZone=Europe/Paris' }, 'bootstrap-secret');
    await c.until('readyForQuery');
    for (const reset of ['RESET ALL', 'DISCARD ALL']) {
      await c.roundTrip(serialize.query("SET application_name = 'changed'"), serialize.query("SET TIME ZONE 'Asia/Tokyo'"), serialize.query('SET extra_float_digits = 3'));
      const ms = await c.roundTrip(serialize.query(reset));
      expect(status(ms, 'application_name'), reset).toBe('probe');
      expect(status(ms, 'TimeZone'), reset).toBe('Europe/Paris');
      expect(rowsOf(await c.roundTrip(serialize.query('SHOW extra_float_digits'))), reset).toEqual([['1']]);
    }
    c.end();
  });

  it('DISCARD ALL returns a superuser acting as alice to itself, and resets SET TENANT', async () => {
    const c = await RawClient.login(server.port);
    const acting = await c.roundTrip(serialize.query('SET SESSION AUTHORIZATION alice'), serialize.query('SELECT current_user, session_user'));
    expect(rowsOf(acting)).toEqual([['alice', 'admin']]);
    expect(status(acting, 'is_superuser')).toBe('off');
    const ms = await c.roundTrip(serialize.query('DISCARD ALL'));
    expect(status(ms, 'session_authorization')).toBe('admin');
    expect(status(ms, 'is_superuser')).toBe('on');
    expect(rowsOf(await c.roundTrip(serialize.query('SELECT current_user, session_user')))).toEqual([['admin', 'admin']]);

    await c.roundTrip(serialize.query('SET TENANT acme'));
    expect(rowsOf(await c.roundTrip(serialize.query('SHOW AUTH')))).toContainEqual(['SET TENANT', 'acme']);
    await c.roundTrip(serialize.query('DISCARD ALL'));
    expect(rowsOf(await c.roundTrip(serialize.query('SHOW AUTH')))).not.toContainEqual(['SET TENANT', 'acme']);
    c.end();
  });

  it('DISCARD ALL leaves a user who logged in as itself: nothing to escalate to', async () => {
    const c = await RawClient.login(server.port, 'alice', 'alice pw');
    const ms = await c.roundTrip(serialize.query('DISCARD ALL'), serialize.query('SELECT current_user, session_user, $auth.role'));
    expect(errorOf(ms)).toBeUndefined();
    expect(rowsOf(ms)).toEqual([['alice', 'alice', 'readwrite']]);
    expect(status(ms, 'is_superuser')).toBeUndefined(); // unchanged: still off
    c.end();
  });
});
