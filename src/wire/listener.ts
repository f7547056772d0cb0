import net from 'node:net';
import { randomInt, timingSafeEqual } from 'node:crypto';
import { Connection, type CancelRegistry, type CancelTarget, type ConnectionOptions } from './connection.js';
import type { WireHandler } from './handler.js';

/** Process ids and cancel keys for BackendKeyData; the key is compared in constant time. */
export class Cancels implements CancelRegistry {
  private readonly targets = new Map<number, { key: number; target: CancelTarget }>();

  register(target: CancelTarget): { processId: number; secretKey: number } {
    let processId: number;
    do processId = randomInt(1, 2 ** 31 - 1);
    while (this.targets.has(processId));
    const secretKey = randomInt(-(2 ** 31), 2 ** 31 - 1);
    this.targets.set(processId, { key: secretKey, target });
    return { processId, secretKey };
  }

  unregister(processId: number): void {
    this.targets.delete(processId);
  }

  cancel(processId: number, secretKey: number): void {
    const t = this.targets.get(processId);
    if (!t) return;
    const a = Buffer.alloc(4);
    const b = Buffer.alloc(4);
    a.writeInt32BE(t.key | 0);
    b.writeInt32BE(secretKey | 0);
    if (timingSafeEqual(a, b)) t.target.cancel();
  }
}

export interface Listener {
  readonly port: number;
  readonly host: string;
  close(): Promise<void>;
}

/** node:net glue: one Connection per socket. */
export async function listen(
  handler: WireHandler,
  host: string,
  port: number,
  opts: ConnectionOptions = {},
): Promise<Listener> {
  const cancels = new Cancels();
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.setNoDelay(true);
    let conn: Connection | null = null;
    const transport = {
      write: (b: Buffer) => (socket.destroyed ? true : socket.write(b)),
      settled: () => !socket.destroyed && socket.writableLength === 0,
      drained: () =>
        new Promise<void>((resolve) => {
          if (socket.destroyed || !socket.writableNeedDrain) return resolve();
          const done = () => {
            socket.off('drain', done);
            socket.off('close', done);
            resolve();
          };
          socket.on('drain', done);
          socket.on('close', done);
        }),
      close: () => socket.end(),
    };
    conn = new Connection(
      transport,
      handler,
      { address: socket.remoteAddress ?? '', port: socket.remotePort ?? 0, tls: false },
      cancels,
      opts,
    );
    socket.on('data', (chunk) => conn!.receive(chunk));
    socket.on('error', () => socket.destroy());
    socket.on('close', () => {
      sockets.delete(socket);
      conn!.shutdown();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address() as net.AddressInfo;
  return {
    port: addr.port,
    host,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
