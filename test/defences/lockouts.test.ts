import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningServer } from '../../src/server.js';
import { RawClient } from '../support/raw-client.js';
import { client, startTestServer } from '../support/server.js';

/**
 * Brute force: failures counted per source address and per user name, across pgwire and
 * HTTP; 20 in 60 s lock an address for 60 s, 10 in a row lock a name for 60 s (injected
 * clock); a locked attempt fails exactly like a wrong password; SHOW LOCKOUTS and
 * ALTER USER ... UNLOCK.
 */
let now = Date.UTC(2026, 5, 1, 12);
let server: RunningServer;
const logs: string[] = [];

beforeAll(async () => {
  server = await startTestServer({ clock: () => now, httpPort: 0, log: (l) => logs.push(l), scramIterations: 4096 });
  const c = await client(server.port);
  await c.query("CREATE USER ada PASSWORD 'right' ROLE admin; CREATE USER bob PASSWORD 'right'");
  await c.end();
});
afterAll(async () => {
  await server.close();
});

/** One login over pgwire from `from`; the error (code, message) or null on success. */
async function login(user: string, password: string, from: string): Promise<{ code: string; message: string } | null> {
  const { c } = await RawClient.authenticate(server.port, { user }, password, from);
  try {
    const m = await Promise.race([c.until('authenticationOk').then(() => null), c.until('error')]);
    return m ? { code: (m as unknown as { code: string }).code, message: (m as unknown as { message: string }).message } : null;
  } catch {
    return (await c.until('error')) as unknown as { code: string; message: string };
  } finally {
    c.end();
  }
}

const lastFailure = () => logs.filter((l) => l.startsWith('login failed')).at(-1) ?? '';

async function showLockouts(): Promise<Record<string, unknown>[]> {
  const c = await client(server.port);
  try {
    return (await c.query('SHOW LOCKOUTS')).rows;
  } finally {
    await c.end();
  }
}

describe('address lockout', () => {
  it('21 failed logins lock an address out while another address still logs in; it lifts after 60 s', async () => {
    for (let i = 0; i < 21; i++) expect(await login(`nobody${i}`, 'wrong', '127.0.0.2')).toMatchObject({ code: '28P01' });
    const wrongPassword = await login('ada', 'wrong', '127.0.0.3');
    const locked = await login('ada', 'right', '127.0.0.2');
    // Reads exactly like a wrong password; the log has the real reason.
    expect(locked).toEqual(wrongPassword);
    expect(lastFailure()).toMatch(/address 127\.0\.0\.2 locked out/);
    expect(await login('ada', 'right', '127.0.0.3')).toBeNull();
    expect(await showLockouts()).toEqual([expect.objectContaining({ kind: 'address', subject: '127.0.0.2' })]);

    // HTTP from the same address is locked out too (one counter for both protocols).
    const status = await new Promise<number>((resolve) => {
      http.get({ host: '127.0.0.1', port: server.httpPort!, path: '/v1/whoami', localAddress: '127.0.0.2', headers: { 'x-api-key': 'pcu_aaaaaaaaaaaaaaaa_x' } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
    });
    expect(status).toBe(401);

    now += 61_000;
    expect(await login('ada', 'right', '127.0.0.2')).toBeNull();
  });
});

describe('user lockout', () => {
  it('10 consecutive failures lock a user from every address, until UNLOCK or 60 s', async () => {
    for (let i = 0; i < 10; i++) expect(await login('bob', 'wrong', `127.0.1.${i + 1}`)).toMatchObject({ code: '28P01' });
    expect(await login('bob', 'right', '127.0.2.1')).toMatchObject({ code: '28P01' });
    expect(lastFailure()).toMatch(/user \\"bob\\" locked out/);
    expect(await showLockouts()).toEqual([expect.objectContaining({ kind: 'user', subject: 'bob', locked_until: expect.any(Date) })]);
    const admin = await client(server.port);
    await admin.query('ALTER USER bob UNLOCK');
    await admin.end();
    expect(await login('bob', 'right', '127.0.2.1')).toBeNull();

    for (let i = 0; i < 10; i++) await login('bob', 'wrong', '127.0.3.1');
    expect(await login('bob', 'right', '127.0.3.2')).toMatchObject({ code: '28P01' });
    now += 61_000;
    expect(await login('bob', 'right', '127.0.3.2')).toBeNull();
  });

  it('a success ends a run of failures', async () => {
    for (let i = 0; i < 9; i++) await login('ada', 'wrong', '127.0.4.1');
    expect(await login('ada', 'right', '127.0.4.1')).toBeNull();
    expect(await login('ada', 'wrong', '127.0.4.1')).toMatchObject({ code: '28P01' });
    expect(await login('ada', 'right', '127.0.4.1')).toBeNull();
  });
});
