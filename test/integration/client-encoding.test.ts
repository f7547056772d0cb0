import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serialize } from 'pg-protocol';
import type { RunningServer } from '../../src/server.js';
import { RawClient } from '../support/raw-client.js';
import { ScramClient } from '../support/scram-client.js';
import { ADMIN_PASSWORD, client, startTestServer } from '../support/server.js';

let server: RunningServer;

beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server.close();
});

// PostgreSQL ignores case and every non-alphanumeric character in an encoding's name.
const SPELLINGS = ["'utf-8'", 'utf-8', 'UTF-8', 'utf8', 'Utf_8', 'unicode', '"UTF8"'];

/**
 * A StartupMessage with exactly these parameters (pg-protocol's serializer appends its own
 * client_encoding, and node-postgres sends none at all).
 */
function startupMessage(params: Record<string, string>): Buffer {
  const body = Buffer.concat([
    ...Object.entries(params).flatMap(([k, v]) => [Buffer.from(`${k}\0`), Buffer.from(`${v}\0`)]),
    Buffer.from([0]),
  ]);
  const head = Buffer.alloc(8);
  head.writeInt32BE(body.length + 8, 0);
  head.writeInt32BE(196608, 4); // protocol 3.0
  return Buffer.concat([head, body]);
}

/** Logs in with SCRAM sending `client_encoding`; the messages up to ReadyForQuery or the close. */
async function loginWith(clientEncoding: string) {
  const c = await RawClient.connect(server.port);
  c.send(startupMessage({ user: 'admin', database: 'default', client_encoding: clientEncoding }));
  await c.until('authenticationSASL');
  const scram = new ScramClient(ADMIN_PASSWORD);
  c.send(serialize.sendSASLInitialResponseMessage('SCRAM-SHA-256', scram.first()));
  const cont = (await c.until('authenticationSASLContinue')) as unknown as { data: string };
  c.send(serialize.sendSCRAMClientFinalMessage(scram.final(cont.data)));
  await c.until('readyForQuery').catch(() => {}); // or the connection closed (a FATAL)
  const messages = c.take() as unknown as { name: string; parameterName?: string; parameterValue?: string; code?: string; severity?: string }[];
  c.socket.destroy();
  return messages;
}

describe('client_encoding, spelled every way PostgreSQL accepts', () => {
  it.each(SPELLINGS)('accepts %s at startup and reports UTF8', async (spelling) => {
    const messages = await loginWith(spelling);
    expect(messages.find((m) => m.name === 'error')).toBeUndefined();
    expect(messages.find((m) => m.parameterName === 'client_encoding')?.parameterValue).toBe('UTF8');
    expect(messages.at(-1)?.name).toBe('readyForQuery');
  });

  it('accepts the same spellings in SET, and SQL_ASCII as sql-ascii', async () => {
    const c = await client(server.port);
    try {
      for (const spelling of SPELLINGS) {
        await c.query(`SET client_encoding TO '${spelling.replaceAll("'", "''")}'`);
        expect((await c.query('SHOW client_encoding')).rows[0].client_encoding).toBe('UTF8');
      }
      await c.query("SET NAMES 'sql-ascii'");
      expect((await c.query('SHOW client_encoding')).rows[0].client_encoding).toBe('SQL_ASCII');
    } finally {
      await c.end();
    }
  });

  it('refuses an encoding it cannot speak with 22023, at startup as a FATAL', async () => {
    const c = await client(server.port);
    try {
      await expect(c.query("SET client_encoding = 'LATIN1'")).rejects.toMatchObject({ code: '22023', message: 'invalid value for parameter "client_encoding": "LATIN1"' });
    } finally {
      await c.end();
    }
    expect((await loginWith('utf-16')).find((m) => m.name === 'error')).toMatchObject({ code: '22023', severity: 'FATAL' });
  });
});
