import { describe, expect, it } from 'vitest';
import { serialize } from 'pg-protocol';
import { FrontendDecoder, MAX_STARTUP_PACKET } from '../../src/wire/decoder.js';
import { PgError } from '../../src/errors/pg-error.js';
import type { FrontendMessage } from '../../src/wire/messages.js';

/** A realistic frontend stream, produced by pg-protocol's serializer (an independent encoder). */
function stream(): Buffer {
  return Buffer.concat([
    serialize.startup({ user: 'alice', database: 'default', application_name: 'psql', client_encoding: 'UTF8' }),
    serialize.sendSASLInitialResponseMessage('SCRAM-SHA-256', 'n,,n=,r=abc'),
    serialize.sendSCRAMClientFinalMessage('c=biws,r=abcdef,p=xyz'),
    serialize.query('SELECT 1; SHOW USERS'),
    serialize.parse({ name: 's1', text: 'SELECT $1, $2', types: [25, 23] }),
    serialize.bind({ portal: 'p1', statement: 's1', values: ['x', null], valueMapper: undefined }),
    serialize.describe({ type: 'P', name: 'p1' }),
    serialize.execute({ portal: 'p1', rows: 5 }),
    serialize.close({ type: 'S', name: 's1' }),
    serialize.flush(),
    serialize.sync(),
    serialize.end(),
  ]);
}

function decodeAll(chunks: Buffer[]): FrontendMessage[] {
  const d = new FrontendDecoder();
  const out: FrontendMessage[] = [];
  for (const c of chunks) out.push(...d.push(c));
  expect(d.pending).toBe(0);
  return out;
}

describe('frontend decoder', () => {
  const bytes = stream();
  const whole = decodeAll([bytes]);

  it('decodes every message type of a real client stream', () => {
    expect(whole.map((m) => m.type)).toEqual([
      'StartupMessage',
      'AuthenticationResponse',
      'AuthenticationResponse',
      'Query',
      'Parse',
      'Bind',
      'Describe',
      'Execute',
      'Close',
      'Flush',
      'Sync',
      'Terminate',
    ]);
    const startup = whole[0] as Extract<FrontendMessage, { type: 'StartupMessage' }>;
    expect(Object.fromEntries(startup.params)).toEqual({ user: 'alice', database: 'default', application_name: 'psql', client_encoding: 'UTF8' });
    const parse = whole[4] as Extract<FrontendMessage, { type: 'Parse' }>;
    expect(parse).toEqual({ type: 'Parse', name: 's1', sql: 'SELECT $1, $2', paramTypes: [25, 23] });
    const bind = whole[5] as Extract<FrontendMessage, { type: 'Bind' }>;
    expect(bind.params.map((p) => p?.toString() ?? null)).toEqual(['x', null]);
    expect(whole[7]).toEqual({ type: 'Execute', portal: 'p1', maxRows: 5 });
  });

  it('gives identical messages when the stream is split in two at every offset', () => {
    for (let i = 1; i < bytes.length; i++) {
      expect(decodeAll([bytes.subarray(0, i), bytes.subarray(i)])).toEqual(whole);
    }
  });

  it('gives identical messages when fed one byte at a time', () => {
    const chunks = Array.from(bytes, (_, i) => bytes.subarray(i, i + 1));
    expect(decodeAll(chunks)).toEqual(whole);
  });

  it('decodes SSLRequest, GSSENCRequest and CancelRequest before the startup message', () => {
    const ssl = Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]);
    const gss = Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x30]);
    const cancel = Buffer.alloc(16);
    cancel.writeInt32BE(16, 0);
    cancel.writeInt32BE(80877102, 4);
    cancel.writeInt32BE(1234, 8);
    cancel.writeInt32BE(-5, 12);
    expect(decodeAll([Buffer.concat([gss, ssl, cancel])])).toEqual([
      { type: 'GSSENCRequest' },
      { type: 'SSLRequest' },
      { type: 'CancelRequest', processId: 1234, secretKey: -5 },
    ]);
  });

  const afterStartup = (body: Buffer) => {
    const d = new FrontendDecoder(1024);
    d.push(serialize.startup({ user: 'u' }));
    return () => d.push(body);
  };
  const typed = (code: string, body: Buffer, len = body.length + 4) => {
    const h = Buffer.alloc(5);
    h.write(code, 0, 'latin1');
    h.writeInt32BE(len, 1);
    return Buffer.concat([h, body]);
  };

  it.each([
    ['a query without its terminator', typed('Q', Buffer.from('SELECT 1'))],
    ['a length below 4', typed('Q', Buffer.alloc(0), 3)],
    ['an oversized message', typed('Q', Buffer.alloc(0), 4096)],
    ['an unknown message type', typed('!', Buffer.alloc(0))],
    ['trailing bytes after Sync', typed('S', Buffer.from([1]))],
    ['a Bind whose parameter count exceeds its bytes', typed('B', Buffer.from([0, 0, 0, 0, 0, 0x7f, 0xff]))],
    ['a Describe of an unknown kind', typed('D', Buffer.from('X\0'))],
    ['a Parse with a negative type count', typed('P', Buffer.from([0, 0x53, 0, 0xff, 0xff]))],
  ])('refuses %s with FATAL 08P01', (_what, body) => {
    const push = afterStartup(body);
    try {
      push();
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(PgError);
      expect((e as PgError).code).toBe('08P01');
      expect((e as PgError).severity).toBe('FATAL');
    }
  });

  it('refuses an oversized or undersized startup packet', () => {
    const big = Buffer.alloc(8);
    big.writeInt32BE(MAX_STARTUP_PACKET + 1, 0);
    expect(() => new FrontendDecoder().push(big)).toThrow(/invalid length of startup packet/);
    expect(() => new FrontendDecoder().push(Buffer.from([0, 0, 0, 4, 0, 3, 0, 0]))).toThrow(PgError);
    expect(() => new FrontendDecoder().push(Buffer.from([0, 0, 0, 9, 0, 2, 0, 0, 0]))).toThrow(/unsupported frontend protocol 2.0/);
  });
});
