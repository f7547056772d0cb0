import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serialize } from 'pg-protocol';
import type { RunningServer } from '../../src/server.js';
import { RawClient } from '../support/raw-client.js';
import { client, startTestServer } from '../support/server.js';

let server: RunningServer;
beforeAll(async () => {
  server = await startTestServer();
  const c = await client(server.port);
  await c.query("CREATE USER known PASSWORD 'pw'; CREATE USER nopass");
  await c.end();
});
afterAll(async () => {
  await server.close();
});

/** The server-first-message a login attempt for `user` receives. */
async function serverFirst(user: string): Promise<{ salt: string; iterations: string; nonceLength: number }> {
  const c = await RawClient.connect(server.port);
  c.send(serialize.startup({ user, database: 'default' }));
  const sasl = (await c.until('authenticationSASL')) as unknown as { mechanisms: string[] };
  expect(sasl.mechanisms).toEqual(['SCRAM-SHA-256']);
  c.send(serialize.sendSASLInitialResponseMessage('SCRAM-SHA-256', 'n,,n=,r=clientnonce'));
  const cont = (await c.until('authenticationSASLContinue')) as unknown as { data: string };
  c.socket.destroy();
  const attrs = Object.fromEntries(cont.data.split(',').map((kv) => [kv[0], kv.slice(2)]));
  return { salt: attrs.s!, iterations: attrs.i!, nonceLength: attrs.r!.length };
}

describe('login answers do not reveal who exists', () => {
  it('gives unknown users and users without a password a stable salt of the same shape', async () => {
    const known = await serverFirst('known');
    const unknown1 = await serverFirst('ghost');
    const unknown2 = await serverFirst('ghost');
    const nopass = await serverFirst('nopass');
    expect(unknown1.salt).toBe(unknown2.salt); // a real user's salt does not change either
    expect(unknown1.salt).not.toBe(known.salt);
    for (const x of [unknown1, nopass]) {
      expect(x.iterations).toBe(known.iterations);
      expect(Buffer.from(x.salt, 'base64')).toHaveLength(Buffer.from(known.salt, 'base64').length);
      expect(x.nonceLength).toBe(known.nonceLength);
    }
  });

  it('refuses a session whose SCRAM messages are malformed with 08P01, the same for known and unknown users', async () => {
    for (const user of ['known', 'ghost']) {
      const c = await RawClient.connect(server.port);
      c.send(serialize.startup({ user, database: 'default' }));
      await c.until('authenticationSASL');
      c.send(serialize.sendSASLInitialResponseMessage('SCRAM-SHA-256', 'garbage'));
      await c.untilClosed();
      const err = c.take().find((m) => m.name === 'error') as unknown as { code: string; message: string };
      expect(err).toMatchObject({ code: '08P01', message: 'malformed SCRAM message' });
    }
  });

  it('refuses a mechanism it did not offer, and a query before login', async () => {
    const c = await RawClient.connect(server.port);
    c.send(serialize.startup({ user: 'known', database: 'default' }));
    await c.until('authenticationSASL');
    c.send(serialize.sendSASLInitialResponseMessage('SCRAM-SHA-1', 'n,,n=,r=x'));
    await c.untilClosed();
    expect(c.take().find((m) => m.name === 'error')).toMatchObject({ code: '08P01' });

    const q = await RawClient.connect(server.port);
    q.send(serialize.startup({ user: 'known', database: 'default' }), serialize.query('SHOW USERS'));
    await q.untilClosed();
    expect(q.take().find((m) => m.name === 'error')).toMatchObject({ code: '08P01', severity: 'FATAL' });
  });

  it('reports the session parameters drivers read after login', async () => {
    const { c, scram } = await RawClient.authenticate(
      server.port,
      { user: 'known', database: 'known', application_name: 'probe', options: '-c TimeZone=Europe/Paris' },
      'pw',
    );
    const final = (await c.until('authenticationSASLFinal')) as unknown as { data: string };
    expect(scram.verifyServer(final.data)).toBe(true); // the server proves it knows the verifier
    await c.until('readyForQuery');
    const params = Object.fromEntries(
      c.take().filter((m) => m.name === 'parameterStatus').map((m) => {
        const p = m as unknown as { parameterName: string; parameterValue: string };
        return [p.parameterName, p.parameterValue];
      }),
    );
    expect(params).toMatchObject({
      server_version: '16.0 (portcullis 0.1.0)',
      server_encoding: 'UTF8',
      client_encoding: 'UTF8',
      DateStyle: 'ISO, MDY',
      TimeZone: 'Europe/Paris',
      integer_datetimes: 'on',
      standard_conforming_strings: 'on',
      application_name: 'probe',
      is_superuser: 'off',
      session_authorization: 'known',
    });
    c.end();
  });

  it('refuses a bad startup setting with FATAL, as PostgreSQL', async () => {
    const { c } = await RawClient.authenticate(server.port, { user: 'known', DateStyle: 'German' }, 'pw');
    await c.untilClosed();
    expect(c.take().find((m) => m.name === 'error')).toMatchObject({ code: '22023', severity: 'FATAL' });
  });
});

describe('concurrent sessions', () => {
  it('fails the second of two conflicting blocks with 40001 and keeps the first', async () => {
    const a = await client(server.port);
    const b = await client(server.port);
    await a.query('BEGIN');
    await b.query('BEGIN');
    await a.query('CREATE USER racer');
    await b.query("CREATE USER racer PASSWORD 'other'");
    await a.query('COMMIT');
    await expect(b.query('COMMIT')).rejects.toMatchObject({ code: '40001' });
    expect((await b.query('SELECT 1 AS ok')).rows).toEqual([{ ok: 1 }]);
    const users = (await a.query('SHOW USERS')).rows.filter((r) => r.name === 'racer');
    expect(users).toEqual([expect.objectContaining({ has_password: false })]);
    await a.end();
    await b.end();
  });
});
