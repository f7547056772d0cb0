import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serialize } from 'pg-protocol';
import type { RunningServer } from '../../src/server.js';
import { RawClient } from '../support/raw-client.js';
import { loginError, startTestServer, ADMIN_PASSWORD } from '../support/server.js';
import { rng } from '../support/rng.js';

const SEED = Number(process.env.FUZZ_SEED ?? 20261123);
// 100,000 messages in the suite; `npm run fuzz` sends FUZZ_INPUTS (a million by default).
const INPUTS = Number(process.env.FUZZ_INPUTS ?? 100_000);
const MESSAGES_PER_CONNECTION = 40;
const CONNECTIONS = Math.ceil(INPUTS / MESSAGES_PER_CONNECTION);

/** Valid frontend messages to start from. */
const corpus: Buffer[] = [
  serialize.query('SELECT 1'),
  serialize.query("CREATE USER fuzz_x PASSWORD 'p'; DROP USER fuzz_x"),
  serialize.query('SHOW USERS'),
  serialize.query('BEGIN'),
  serialize.query('ROLLBACK'),
  serialize.parse({ name: 's', text: 'SELECT $1', types: [25] }),
  serialize.bind({ portal: 'p', statement: 's', values: ['x'] }),
  serialize.bind({ values: [null, 'a', Buffer.from([1, 2, 3])], binary: true }),
  serialize.describe({ type: 'S', name: 's' }),
  serialize.describe({ type: 'P', name: 'p' }),
  serialize.execute({ portal: 'p', rows: 1 }),
  serialize.close({ type: 'P', name: 'p' }),
  serialize.sync(),
  serialize.flush(),
  serialize.sendSASLInitialResponseMessage('SCRAM-SHA-256', 'n,,n=,r=abcdef'),
  serialize.sendSCRAMClientFinalMessage('c=biws,r=abcdef,p=AAAA'),
  serialize.sendSASLInitialResponseMessage('SCRAM-SHA-256-PLUS', 'p=tls-server-end-point,,n=,r=abcdef'),
  serialize.sendSASLInitialResponseMessage('SCRAM-SHA-256', 'y,,n=,r=abcdef'),
  serialize.sendSASLInitialResponseMessage('OAUTHBEARER', 'n,,\x01auth=Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.\x01\x01'),
  serialize.sendSCRAMClientFinalMessage('\x01'),
  serialize.password('eyJhbGciOiJFUzI1NiJ9.e30.sig'),
  serialize.copyData(Buffer.from('x')),
  serialize.copyDone(),
  serialize.copyFail('no'),
];
const startupCorpus: Buffer[] = [
  serialize.startup({ user: 'admin', database: 'default' }),
  serialize.startup({ user: 'nobody' }),
  serialize.startup({ user: 'pcu_aaaaaaaaaaaaaaaa', database: 'default' }),
  serialize.startup({ user: 'jwt:acme', database: 'default' }),
  Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]), // SSLRequest
  Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x30]), // GSSENCRequest
  serialize.cancel(1, 2),
];

function mutate(msg: Buffer, r: () => number): Buffer {
  const b = Buffer.from(msg);
  const pick = r();
  const at = () => Math.floor(r() * b.length);
  if (pick < 0.25) {
    for (let i = 0, n = 1 + Math.floor(r() * 4); i < n; i++) {
      const k = at();
      b[k] = b[k]! ^ (1 << Math.floor(r() * 8));
    }
    return b;
  }
  if (pick < 0.4) return b.subarray(0, at()); // truncated
  if (pick < 0.55 && b.length >= 5) {
    b.writeInt32BE(Math.floor(r() * 2 ** 31) * (r() < 0.5 ? -1 : 1), 1); // hostile length
    return b;
  }
  if (pick < 0.65) {
    b[0] = Math.floor(r() * 256); // random type byte
    return b;
  }
  if (pick < 0.8) {
    const noise = Buffer.alloc(Math.floor(r() * 64));
    for (let i = 0; i < noise.length; i++) noise[i] = Math.floor(r() * 256);
    return noise;
  }
  return b; // unchanged: valid messages in odd orders
}

let server: RunningServer;
beforeAll(async () => {
  server = await startTestServer({ scramIterations: 16, authTimeoutMs: 2000 });
});
afterAll(async () => {
  await server.close();
});

/** Sends bytes, half-closes, and waits for the server to close: a hang fails the test. */
function fire(socket: net.Socket, bytes: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('server did not close the connection within 5 s')), 5000);
    socket.on('error', () => {});
    socket.on('data', () => {});
    socket.on('close', () => {
      clearTimeout(timer);
      resolve();
    });
    socket.end(bytes);
  });
}

describe('wire fuzzing', () => {
  it(`survives ${CONNECTIONS * MESSAGES_PER_CONNECTION} random and mutated frontend messages (seed ${SEED})`, async () => {
    const r = rng(SEED);
    let sent = 0;
    const one = async (i: number) => {
      const parts: Buffer[] = [];
      const loggedIn = i % 2 === 1;
      for (let k = 0; k < MESSAGES_PER_CONNECTION; k++) {
        const base = !loggedIn && k === 0 ? startupCorpus[Math.floor(r() * startupCorpus.length)]! : corpus[Math.floor(r() * corpus.length)]!;
        parts.push(mutate(base, r));
      }
      sent += parts.length;
      if (loggedIn) {
        const c = await RawClient.login(server.port, 'admin', ADMIN_PASSWORD);
        await fire(c.socket, Buffer.concat(parts));
      } else {
        const socket = net.connect(server.port, '127.0.0.1');
        await new Promise<void>((res, rej) => socket.once('connect', res).once('error', rej));
        await fire(socket, Buffer.concat(parts));
      }
    };
    const started = performance.now();
    for (let i = 0; i < CONNECTIONS; i += 25) {
      await Promise.all(Array.from({ length: Math.min(25, CONNECTIONS - i) }, (_, j) => one(i + j)));
    }
    const seconds = (performance.now() - started) / 1000;
    console.log(`wire fuzzer: ${sent} inputs over ${CONNECTIONS} connections in ${seconds.toFixed(1)} s → ${Math.round(sent / seconds)} inputs/s (seed ${SEED})`);
    expect(sent).toBeGreaterThanOrEqual(INPUTS);
    // The server still answers a fresh login and a query.
    expect(await loginError(server.port, 'admin', ADMIN_PASSWORD)).toBeNull();
    const c = await RawClient.login(server.port);
    const ms = await c.roundTrip(serialize.query('SELECT 1'));
    expect(ms.map((m) => m.name)).toEqual(['rowDescription', 'dataRow', 'commandComplete', 'readyForQuery']);
    c.end();
  }, 600_000);

  it('closes a malformed connection with FATAL 08P01 and keeps the others', async () => {
    const good = await RawClient.login(server.port);
    const bad = await RawClient.login(server.port);
    bad.send(Buffer.from([0x51, 0, 0, 0, 8, 0x41, 0x42, 0x43, 0x44])); // Query without its NUL
    await bad.untilClosed();
    const err = bad.take().find((m) => m.name === 'error') as unknown as { code: string; severity: string };
    expect(err.code).toBe('08P01');
    expect(err.severity).toBe('FATAL');
    const ms = await good.roundTrip(serialize.query('SELECT 2'));
    expect(ms.map((m) => m.name)).toContain('dataRow');
    good.end();
  });
});
