import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serialize } from 'pg-protocol';
import type { RunningServer } from '../../src/server.js';
import { RawClient, names } from '../support/raw-client.js';
import { ADMIN_PASSWORD, startTestServer } from '../support/server.js';

let server: RunningServer;
beforeAll(async () => {
  server = await startTestServer();
  const c = await RawClient.login(server.port);
  await c.roundTrip(serialize.query(Array.from({ length: 5 }, (_, i) => `CREATE USER row_${i}`).join('; ')));
  c.end();
});
afterAll(async () => {
  await server.close();
});

const field = (m: unknown, k: string) => (m as Record<string, unknown>)[k];

describe('extended query protocol', () => {
  it('honours row limits on Execute with PortalSuspended, named statements and portals', async () => {
    const c = await RawClient.login(server.port);
    const ms = await c.roundTrip(
      serialize.parse({ name: 'users', text: 'SHOW USERS', types: [] }),
      serialize.describe({ type: 'S', name: 'users' }),
      serialize.bind({ portal: 'cur', statement: 'users', values: [] }),
      serialize.execute({ portal: 'cur', rows: 2 }),
      serialize.execute({ portal: 'cur', rows: 2 }),
      serialize.execute({ portal: 'cur', rows: 0 }),
      serialize.sync(),
    );
    expect(names(ms)).toEqual([
      'parseComplete',
      'parameterDescription',
      'rowDescription',
      'bindComplete',
      'dataRow',
      'dataRow',
      'portalSuspended',
      'dataRow',
      'dataRow',
      'portalSuspended',
      'dataRow',
      'dataRow',
      'commandComplete',
      'readyForQuery',
    ]);
    const rows = ms.filter((m) => m.name === 'dataRow').map((m) => (field(m, 'fields') as string[])[0]);
    expect(rows).toEqual(['admin', 'row_0', 'row_1', 'row_2', 'row_3', 'row_4']);
    // The named statement outlives the Sync; re-bind the unnamed portal and run it whole.
    const again = await c.roundTrip(serialize.bind({ statement: 'users' }), serialize.execute({}), serialize.sync());
    expect(names(again).filter((n) => n === 'dataRow')).toHaveLength(6);
    c.end();
  });

  it('describes parameters and discards everything until Sync after an error', async () => {
    const c = await RawClient.login(server.port);
    const ms = await c.roundTrip(
      serialize.parse({ text: 'SELECT $1::int AS n, $2 AS s', types: [] }),
      serialize.describe({ type: 'S', name: '' }),
      serialize.bind({ values: ['7', 'x'] }),
      serialize.execute({}),
      serialize.parse({ text: 'SELEC 1' }),
      serialize.bind({ values: [] }),
      serialize.execute({}),
      serialize.sync(),
    );
    expect(names(ms)).toEqual(['parseComplete', 'parameterDescription', 'rowDescription', 'bindComplete', 'dataRow', 'commandComplete', 'error', 'readyForQuery']);
    expect(field(ms[1], 'dataTypeIDs')).toEqual([23, 25]);
    expect(field(ms[4], 'fields')).toEqual(['7', 'x']);
    expect(field(ms[6], 'code')).toBe('42601');
    expect(field(ms[6], 'position')).toBe('1');
    expect(field(ms[7], 'status')).toBe('I');
    // The connection is usable afterwards.
    expect(names(await c.roundTrip(serialize.query('SELECT 1')))).toEqual(['rowDescription', 'dataRow', 'commandComplete', 'readyForQuery']);
    c.end();
  });

  it('answers Flush without Sync, Close with CloseComplete, unknown names with 26000 / 34000', async () => {
    const c = await RawClient.login(server.port);
    c.take();
    c.send(serialize.parse({ name: 'a', text: 'SELECT 1' }), serialize.flush());
    await c.until('parseComplete');
    const ms = await c.roundTrip(
      serialize.close({ type: 'S', name: 'a' }),
      serialize.bind({ statement: 'a' }),
      serialize.sync(),
    );
    expect(names(ms)).toEqual(['closeComplete', 'error', 'readyForQuery']);
    expect(field(ms[1], 'code')).toBe('26000');
    const ms2 = await c.roundTrip(serialize.execute({ portal: 'nope' }), serialize.sync());
    expect(field(ms2[0], 'code')).toBe('34000');
    const dup = await c.roundTrip(serialize.parse({ name: 'b', text: 'SELECT 1' }), serialize.parse({ name: 'b', text: 'SELECT 2' }), serialize.sync());
    expect(field(dup[1], 'code')).toBe('42P05');
    const multi = await c.roundTrip(serialize.parse({ text: 'SELECT 1; SELECT 2' }), serialize.sync());
    expect(field(multi[0], 'message')).toBe('cannot insert multiple commands into a prepared statement');
    const count = await c.roundTrip(serialize.parse({ text: 'SELECT $1' }), serialize.bind({ values: [] }), serialize.sync());
    expect(field(count[1], 'code')).toBe('08P01');
    expect(c.closed).toBe(false);
    c.end();
  });

  it('answers the empty query in both protocols', async () => {
    const c = await RawClient.login(server.port);
    expect(names(await c.roundTrip(serialize.query('  -- just a comment\n')))).toEqual(['emptyQuery', 'readyForQuery']);
    expect(names(await c.roundTrip(serialize.parse({ text: '' }), serialize.bind({}), serialize.execute({}), serialize.sync()))).toEqual([
      'parseComplete',
      'bindComplete',
      'emptyQuery',
      'readyForQuery',
    ]);
    c.end();
  });

  it('returns binary results when asked, for the types that have them', async () => {
    const c = await RawClient.login(server.port);
    const ms = await c.roundTrip(
      serialize.parse({ text: 'SELECT 5 AS n, true AS b' }),
      serialize.bind({ binary: true }),
      serialize.execute({}),
      serialize.sync(),
    );
    const row = ms.find((m) => m.name === 'dataRow');
    expect(field(row, 'fields')).toEqual(['\u0000\u0000\u0000\u0005', '\u0001']);
    c.end();
  });
});

describe('simple query protocol and transactions', () => {
  it('runs several statements in one message as one implicit transaction', async () => {
    const c = await RawClient.login(server.port);
    const ms = await c.roundTrip(serialize.query("CREATE USER tx_a; CREATE USER tx_b; CREATE USER tx_a; CREATE USER tx_c"));
    expect(names(ms)).toEqual(['commandComplete', 'commandComplete', 'error', 'readyForQuery']);
    expect(field(ms[2], 'code')).toBe('42710');
    const after = await c.roundTrip(serialize.query('SHOW USERS'));
    const users = after.filter((m) => m.name === 'dataRow').map((m) => (field(m, 'fields') as string[])[0]);
    expect(users).not.toContain('tx_a');
    expect(users).not.toContain('tx_b');
    c.end();
  });

  it('shows SHOW USERS rows as they are now: after a change and in the session time zone', async () => {
    const c = await RawClient.login(server.port);
    const row0 = async () => {
      const rows = (await c.roundTrip(serialize.query('SHOW USERS'))).filter((m) => m.name === 'dataRow');
      return rows.map((m) => field(m, 'fields') as string[]).find((f) => f[0] === 'row_0')!;
    };
    const utc = await row0();
    expect(utc[6]).toBe('-1');
    expect(utc[9]).toMatch(/\+00$/);
    await c.roundTrip(serialize.query("SET TimeZone = 'Asia/Tokyo'"));
    const tokyo = await row0();
    expect(tokyo[9]).toMatch(/\+09$/);
    expect(tokyo[9]).not.toBe(utc[9]);
    await c.roundTrip(serialize.query('ALTER USER row_0 CONNECTION LIMIT 7'));
    expect((await row0())[6]).toBe('7');
    c.end();
  });

  it('fails a block with 25P02 until ROLLBACK, and reports T / E / I in ReadyForQuery', async () => {
    const c = await RawClient.login(server.port);
    const status = (ms: unknown[]) => field(ms[ms.length - 1], 'status');
    expect(status(await c.roundTrip(serialize.query('BEGIN')))).toBe('T');
    expect(status(await c.roundTrip(serialize.query('CREATE USER blk_a')))).toBe('T');
    const bad = await c.roundTrip(serialize.query('DROP USER no_such_user'));
    expect(field(bad[0], 'code')).toBe('42704');
    expect(status(bad)).toBe('E');
    const ignored = await c.roundTrip(serialize.query('SELECT 1'));
    expect(field(ignored[0], 'code')).toBe('25P02');
    expect(status(ignored)).toBe('E');
    const rb = await c.roundTrip(serialize.query('COMMIT'));
    expect(field(rb[0], 'text')).toBe('ROLLBACK'); // COMMIT of a failed block rolls back, as PostgreSQL
    expect(status(rb)).toBe('I');
    const users = (await c.roundTrip(serialize.query('SHOW USERS'))).filter((m) => m.name === 'dataRow');
    expect(users.map((m) => (field(m, 'fields') as string[])[0])).not.toContain('blk_a');
    c.end();
  });

  it('commits a block atomically and keeps its changes invisible to others until then', async () => {
    const a = await RawClient.login(server.port);
    const b = await RawClient.login(server.port);
    await a.roundTrip(serialize.query("BEGIN; CREATE USER blk_b PASSWORD 'pw'"));
    const seen = async () =>
      (await b.roundTrip(serialize.query('SHOW USERS'))).filter((m) => m.name === 'dataRow').map((m) => (field(m, 'fields') as string[])[0]);
    expect(await seen()).not.toContain('blk_b');
    const inside = (await a.roundTrip(serialize.query('SHOW USERS'))).filter((m) => m.name === 'dataRow');
    expect(inside.map((m) => (field(m, 'fields') as string[])[0])).toContain('blk_b');
    await a.roundTrip(serialize.query('COMMIT'));
    expect(await seen()).toContain('blk_b');
    a.end();
    b.end();
  });

  it('rolls back SET with the transaction, and reports changed parameters', async () => {
    const c = await RawClient.login(server.port);
    const set = await c.roundTrip(serialize.query("SET application_name = 'tool'"));
    expect(set.find((m) => m.name === 'parameterStatus')).toMatchObject({ parameterName: 'application_name', parameterValue: 'tool' });
    await c.roundTrip(serialize.query("BEGIN; SET application_name = 'other'; ROLLBACK"));
    const show = await c.roundTrip(serialize.query('SHOW application_name'));
    expect(field(show.find((m) => m.name === 'dataRow'), 'fields')).toEqual(['tool']);
    const ro = await c.roundTrip(serialize.query("SET server_version = '1'; SET auth.role = 'superuser'"));
    expect(field(ro[0], 'code')).toBe('55P02');
    const authSet = await c.roundTrip(serialize.query("SET auth.role = 'superuser'"));
    expect(field(authSet[0], 'code')).toBe('55P02');
    c.end();
  });

  it('cancels a running statement by BackendKeyData and ignores a wrong key', async () => {
    const { c } = await RawClient.authenticate(server.port, { user: 'admin' }, ADMIN_PASSWORD);
    const key = (await c.until('backendKeyData')) as unknown as { processID: number; secretKey: number };
    await c.until('readyForQuery');
    const cancel = async (secret: number) => {
      const k = await RawClient.connect(server.port);
      k.send(serialize.cancel(key.processID, secret));
      await k.untilClosed();
    };
    // A statement that hashes a password with many iterations takes long enough to cancel.
    c.take();
    c.send(serialize.query("SET scram_iterations = 3000000; CREATE USER slow_user PASSWORD 'x'"));
    await cancel(key.secretKey ^ 1); // wrong key: no effect
    await cancel(key.secretKey);
    await c.until('readyForQuery');
    const ms = c.take();
    const err = ms.find((m) => m.name === 'error');
    expect(field(err, 'code')).toBe('57014');
    const users = (await c.roundTrip(serialize.query('SHOW USERS'))).filter((m) => m.name === 'dataRow');
    expect(users.map((m) => (field(m, 'fields') as string[])[0])).not.toContain('slow_user');
    c.end();
  });
});
