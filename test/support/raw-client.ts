import net from 'node:net';
import tls from 'node:tls';
import { serialize } from 'pg-protocol';
import { Parser } from 'pg-protocol/dist/parser.js';
import type { BackendMessage } from 'pg-protocol/dist/messages.js';
import { ScramClient } from './scram-client.js';
import { ADMIN_PASSWORD } from './server.js';

/**
 * A raw protocol client: pg-protocol's serializer writes, its parser reads. For tests that
 * need exact control of the message sequence (row limits, pipelining, errors before Sync).
 */
export class RawClient {
  private readonly parser = new Parser();
  private readonly inbox: BackendMessage[] = [];
  private waiters: (() => void)[] = [];
  closed = false;

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (d) =>
      this.parser.parse(d, (m) => {
        this.inbox.push(m);
        this.wake();
      }),
    );
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    socket.on('error', () => {});
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  static async connect(port: number, localAddress?: string): Promise<RawClient> {
    const socket = net.connect({ port, host: '127.0.0.1', ...(localAddress ? { localAddress } : {}) });
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    return new RawClient(socket);
  }

  /** Connects, asks for TLS (SSLRequest), and speaks the protocol over it. */
  static async connectTls(port: number, ca: string): Promise<RawClient & { tls: tls.TLSSocket }> {
    const socket = net.connect(port, '127.0.0.1');
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    const request = Buffer.alloc(8);
    request.writeInt32BE(8, 0);
    request.writeInt32BE(80877103, 4);
    socket.write(request);
    const answer = await new Promise<Buffer>((resolve) => socket.once('data', resolve));
    if (answer.toString() !== 'S') throw new Error(`SSLRequest answered ${answer.toString()}`);
    const secure = tls.connect({ socket, ca, servername: 'localhost' });
    await new Promise<void>((resolve, reject) => secure.once('secureConnect', resolve).once('error', reject));
    return Object.assign(new RawClient(secure), { tls: secure });
  }

  /**
   * Sends a startup message and runs SCRAM up to the client-final-message; the caller
   * waits for what it expects next (SASLFinal, ReadyForQuery, an error).
   */
  static async authenticate(port: number, startup: Record<string, string>, password: string, localAddress?: string): Promise<{ c: RawClient; scram: ScramClient }> {
    const c = await RawClient.connect(port, localAddress);
    c.send(serialize.startup({ database: 'default', ...startup }));
    await c.until('authenticationSASL');
    const scram = new ScramClient(password);
    c.send(serialize.sendSASLInitialResponseMessage('SCRAM-SHA-256', scram.first()));
    const cont = (await c.until('authenticationSASLContinue')) as unknown as { data: string };
    c.send(serialize.sendSCRAMClientFinalMessage(scram.final(cont.data)));
    return { c, scram };
  }

  /** Connects and logs in with SCRAM as `user`. */
  static async login(port: number, user = 'admin', password = ADMIN_PASSWORD): Promise<RawClient> {
    const { c } = await RawClient.authenticate(port, { user }, password);
    await c.until('readyForQuery');
    c.take();
    return c;
  }

  send(...bufs: Buffer[]): void {
    this.socket.write(Buffer.concat(bufs));
  }

  /** Waits for a message named `name`; returns it (everything before stays in the inbox). */
  async until(name: string): Promise<BackendMessage> {
    for (;;) {
      const m = this.inbox.find((x) => x.name === name);
      if (m) return m;
      if (this.closed) throw new Error(`connection closed while waiting for ${name}; got ${this.inbox.map((x) => x.name).join(',')}`);
      await new Promise<void>((r) => this.waiters.push(r));
    }
  }

  /** Waits for the connection to close. */
  async untilClosed(): Promise<void> {
    while (!this.closed) await new Promise<void>((r) => this.waiters.push(r));
  }

  /** Everything received so far, and clears the inbox. */
  take(): BackendMessage[] {
    return this.inbox.splice(0);
  }

  /** Sends, waits for ReadyForQuery, returns the message names and the messages. */
  async roundTrip(...bufs: Buffer[]): Promise<BackendMessage[]> {
    this.take();
    this.send(...bufs);
    await this.until('readyForQuery');
    return this.take();
  }

  end(): void {
    this.socket.end(serialize.end());
  }
}

export const names = (ms: BackendMessage[]) => ms.map((m) => m.name);
