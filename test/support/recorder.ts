import net from 'node:net';
import { Readable } from 'node:stream';
import { parse } from 'pg-protocol';
import type { BackendMessage } from 'pg-protocol/dist/messages.js';

/**
 * A loopback proxy that records every byte the server sends, so that pg-protocol's
 * parser (an independent decoder) can check them afterwards. The one-byte answers to
 * SSLRequest / GSSENCRequest are not protocol messages: they are set aside as `answers`.
 */
export interface Recording {
  answers: number[];
  bytes: Buffer[];
}

export class Recorder {
  readonly recordings: Recording[] = [];
  private server!: net.Server;
  port = 0;

  constructor(private readonly target: number) {}

  async start(): Promise<void> {
    this.server = net.createServer((client) => {
      const rec: Recording = { answers: [], bytes: [] };
      this.recordings.push(rec);
      const upstream = net.connect(this.target, '127.0.0.1');
      let clientBuf = Buffer.alloc(0);
      let startupDone = false;
      let pendingAnswers = 0;
      client.on('data', (d: Buffer) => {
        if (!startupDone) {
          clientBuf = Buffer.concat([clientBuf, d]);
          while (clientBuf.length >= 8) {
            const len = clientBuf.readInt32BE(0);
            const code = clientBuf.readInt32BE(4);
            if (len === 8 && (code === 80877103 || code === 80877104)) {
              pendingAnswers++;
              clientBuf = clientBuf.subarray(8);
            } else {
              startupDone = true;
              break;
            }
          }
        }
        upstream.write(d);
      });
      upstream.on('data', (d: Buffer) => {
        let chunk = d;
        while (pendingAnswers > 0 && chunk.length > 0) {
          rec.answers.push(chunk[0]!);
          chunk = chunk.subarray(1);
          pendingAnswers--;
        }
        if (chunk.length > 0) rec.bytes.push(Buffer.from(chunk));
        client.write(d);
      });
      client.on('end', () => upstream.end());
      upstream.on('end', () => client.end());
      client.on('error', () => upstream.destroy());
      upstream.on('error', () => client.destroy());
    });
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', () => r()));
    this.port = (this.server.address() as net.AddressInfo).port;
  }

  async stop(): Promise<void> {
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

/** Decodes a recording with pg-protocol; throws if a byte is not part of a valid message. */
export async function decodeWithPgProtocol(rec: Recording): Promise<BackendMessage[]> {
  const messages: BackendMessage[] = [];
  const total = rec.bytes.reduce((n, b) => n + b.length, 0);
  let consumed = 0;
  await parse(Readable.from(rec.bytes.map((b) => Buffer.from(b))), (m) => {
    messages.push(m);
    consumed += m.length + 1;
    if (m.name === 'error' && /received invalid response/.test((m as unknown as Error).message)) {
      throw new Error(`pg-protocol could not decode a message: ${(m as unknown as Error).message}`);
    }
  });
  if (consumed !== total) throw new Error(`pg-protocol decoded ${consumed} of ${total} bytes`);
  return messages;
}
