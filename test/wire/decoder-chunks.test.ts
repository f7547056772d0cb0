import { afterEach, describe, expect, it, vi } from 'vitest';
import { serialize } from 'pg-protocol';
import { FrontendDecoder } from '../../src/wire/decoder.js';

/**
 * A large message arriving in many socket chunks (a 7 MB Query comes in 64 KiB reads) is
 * joined once, when it is whole: joining each chunk to what came before copied it once
 * per chunk — gigabytes for one statement, seconds of CPU before any limit could apply.
 */
describe('frontend decoder, large messages', () => {
  afterEach(() => vi.restoreAllMocks());

  it('copies a message arriving in 64 KiB chunks about once, and decodes it whole', () => {
    const sql = `SELECT '${'x'.repeat(7_000_000)}'`;
    const bytes = Buffer.concat([serialize.startup({ user: 'u', database: 'd' }), serialize.query(sql), serialize.sync()]);
    const d = new FrontendDecoder();
    let copied = 0;
    const concat = Buffer.concat;
    vi.spyOn(Buffer, 'concat').mockImplementation((list: readonly Uint8Array[], total?: number) => {
      copied += list.reduce((n, b) => n + b.length, 0);
      return concat(list, total);
    });
    const out = [];
    for (let at = 0; at < bytes.length; at += 65_536) out.push(...d.push(bytes.subarray(at, at + 65_536)));
    expect(out.map((m) => m.type)).toEqual(['StartupMessage', 'Query', 'Sync']);
    expect(out[1]).toEqual({ type: 'Query', sql });
    expect(d.pending).toBe(0);
    expect(copied).toBeLessThan(2 * bytes.length);
  });
});
