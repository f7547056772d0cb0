import { serialize } from 'pg-protocol';
import { Parser } from 'pg-protocol/dist/parser.js';
import type { BackendMessage } from 'pg-protocol/dist/messages.js';
import type { Lease } from '../../src/dataplane/types.js';

/** Test helpers for the data planes: frames in with pg-protocol's serializer, out with its parser. */
export { serialize };

export interface Msg {
  name: string;
  raw: BackendMessage;
}

export function decode(frame: Uint8Array): BackendMessage {
  let out: BackendMessage | undefined;
  new Parser().parse(Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength), (m) => (out = m));
  if (!out) throw new Error('no message in frame');
  return out;
}

/** Reads backend messages until ReadyForQuery (inclusive). */
export async function untilReady(lease: Lease): Promise<BackendMessage[]> {
  const out: BackendMessage[] = [];
  for (;;) {
    const m = decode(await lease.next());
    out.push(m);
    if (m.name === 'readyForQuery') return out;
  }
}

/** Reads backend messages until one named `name` (inclusive). */
export async function until(lease: Lease, name: string): Promise<BackendMessage[]> {
  const out: BackendMessage[] = [];
  for (;;) {
    const m = decode(await lease.next());
    out.push(m);
    if (m.name === name) return out;
  }
}

/** A compact transcript: message names, with data rows, errors' SQLSTATE and the transaction status. */
export function summary(ms: BackendMessage[]): string[] {
  return ms.map((m) => {
    const a = m as unknown as Record<string, unknown>;
    if (m.name === 'dataRow') return `row ${JSON.stringify(a.fields)}`;
    if (m.name === 'error') return `error ${a.code as string}`;
    if (m.name === 'readyForQuery') return `ready ${a.status as string}`;
    if (m.name === 'commandComplete') return `complete ${a.text as string}`;
    if (m.name === 'copyData') return `copyData ${Buffer.from(a.chunk as Buffer).toString()}`;
    return m.name;
  });
}

/** Runs one simple-protocol Query through a lease. */
export async function simple(lease: Lease, sql: string): Promise<string[]> {
  lease.write(serialize.query(sql));
  return summary(await untilReady(lease));
}

/** Parse/Bind/Describe/Execute/Sync of one statement with text parameters. */
export function extended(sql: string, values: (string | null)[] = []): Buffer {
  return Buffer.concat([
    serialize.parse({ text: sql, types: [] }),
    serialize.bind({ values }),
    serialize.describe({ type: 'P' }),
    serialize.execute({}),
  ]);
}
