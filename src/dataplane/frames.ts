import { serialize } from 'pg-protocol';
import { Parser } from 'pg-protocol/dist/parser.js';
import type { BackendMessage } from 'pg-protocol/dist/messages.js';
import type { AdminSql } from './types.js';

/**
 * PostgreSQL v3 framing shared by both planes: splitting a byte stream into whole messages
 * (type byte + int32 length including itself + body), and portcullis's own SQL (`AdminSql`)
 * spoken over any connection that exchanges frames. Encoding and decoding of message
 * contents is pg-protocol's (node-postgres's own framing library).
 */

/** Whole messages from the front of `buf`, and the bytes of an unfinished one left over. */
export function splitFrames(buf: Uint8Array): { frames: Uint8Array[]; rest: Uint8Array } {
  const frames: Uint8Array[] = [];
  let at = 0;
  while (buf.length - at >= 5) {
    const len = ((buf[at + 1]! << 24) | (buf[at + 2]! << 16) | (buf[at + 3]! << 8) | buf[at + 4]!) >>> 0;
    if (len < 4) throw new Error(`data plane: malformed message (length ${len})`);
    if (buf.length - at < 1 + len) break;
    frames.push(buf.subarray(at, at + 1 + len));
    at += 1 + len;
  }
  return { frames, rest: buf.subarray(at) };
}

/** The transaction status of a ReadyForQuery frame ('I', 'T' or 'E'), or null for any other frame. */
export function readyStatus(frame: Uint8Array): 'I' | 'T' | 'E' | null {
  if (frame[0] !== 0x5a || frame.length < 6) return null;
  return String.fromCharCode(frame[5]!) as 'I' | 'T' | 'E';
}

/** Decodes backend frames with pg-protocol's parser. */
export function decodeBackend(frames: Uint8Array[]): BackendMessage[] {
  const out: BackendMessage[] = [];
  const parser = new Parser();
  for (const f of frames) parser.parse(Buffer.from(f.buffer, f.byteOffset, f.byteLength), (m) => out.push(m));
  return out;
}

/** An error PostgreSQL reported to portcullis's own SQL: SQLSTATE, message and the SQL. */
export class AdminSqlError extends Error {
  readonly code: string;
  readonly detail: string | undefined;
  constructor(code: string, message: string, detail: string | undefined, sql: string) {
    super(`${message} (SQLSTATE ${code}) in: ${sql.length > 200 ? sql.slice(0, 200) + '...' : sql}`);
    this.name = 'AdminSqlError';
    this.code = code;
    this.detail = detail;
  }
}

/**
 * One exchange on a connection: frontend frames in, backend frames out up to and including
 * ReadyForQuery (both planes answer a Query or a Sync with exactly one).
 */
export type Exchange = (frames: Uint8Array) => Promise<Uint8Array[]>;

function firstError(messages: BackendMessage[], sql: string): AdminSqlError | null {
  for (const m of messages) {
    if (m.name === 'error') {
      const e = m as unknown as { code?: string; message: string; detail?: string };
      return new AdminSqlError(e.code ?? 'XX000', e.message, e.detail, sql);
    }
  }
  return null;
}

/**
 * `AdminSql` over an exchange: `exec` as one simple-protocol Query (several statements,
 * one implicit transaction unless they say otherwise), `query` as an unnamed extended-
 * protocol statement with text parameters and text results. It uses the unnamed statement
 * and portal, so it runs between the client's messages, never inside a client's pipeline.
 */
export function adminOver(exchange: Exchange): AdminSql {
  return {
    async exec(sql: string): Promise<void> {
      const err = firstError(decodeBackend(await exchange(serialize.query(sql))), sql);
      if (err) throw err;
    },
    async query(sql: string, params: (string | null)[] = []): Promise<Record<string, string | null>[]> {
      const frames = Buffer.concat([
        serialize.parse({ text: sql, types: [] }),
        serialize.bind({ values: params }),
        serialize.describe({ type: 'P' }),
        serialize.execute({}),
        serialize.sync(),
      ]);
      const messages = decodeBackend(await exchange(frames));
      const err = firstError(messages, sql);
      if (err) throw err;
      let names: string[] = [];
      const rows: Record<string, string | null>[] = [];
      for (const m of messages) {
        if (m.name === 'rowDescription') names = (m as unknown as { fields: { name: string }[] }).fields.map((f) => f.name);
        else if (m.name === 'dataRow') {
          const fields = (m as unknown as { fields: (string | null)[] }).fields;
          const row: Record<string, string | null> = {};
          names.forEach((n, i) => (row[n] = fields[i] ?? null));
          rows.push(row);
        }
      }
      return rows;
    },
  };
}
