import net from 'node:net';
import tls from 'node:tls';
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

/** The TLS a listener offers now (read at each SSLRequest, so a reload applies to new connections). */
export interface TlsOffer {
  context: tls.SecureContext;
  /** Ask clients for a certificate (a client CA is configured); verified ones may log in with it. */
  requestCert: boolean;
  /** RFC 5929 tls-server-end-point data of the certificate (for SCRAM-SHA-256-PLUS). */
  channelBinding: Buffer;
}

/** node:net glue: one Connection per socket; TLS when asked for and configured. */
export async function listen(
  handler: WireHandler,
  host: string,
  port: number,
  opts: ConnectionOptions & { tls?: () => TlsOffer | null } = {},
): Promise<Listener> {
  const cancels = new Cancels();
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.setNoDelay(true);
    let conn: Connection | null = null;
    // Where bytes go: the socket, or the TLS socket over it after an SSLRequest.
    let out: net.Socket | tls.TLSSocket = socket;
    const transport = {
      write: (b: Buffer) => (out.destroyed ? true : out.write(b)),
      settled: () => !out.destroyed && out.writableLength === 0,
      drained: () =>
        new Promise<void>((resolve) => {
          if (out.destroyed || !out.writableNeedDrain) return resolve();
          const done = () => {
            out.off('drain', done);
            out.off('close', done);
            resolve();
          };
          out.on('drain', done);
          out.on('close', done);
        }),
      close: () => out.end(),
      tlsAvailable: () => !!opts.tls?.(),
      clientCertificate: () => {
        if (!(out instanceof tls.TLSSocket)) return null;
        const x509 = out.getPeerX509Certificate();
        if (!x509) return null;
        const parts = x509.subject.split('\n').filter(Boolean);
        const cn = parts.find((p) => p.startsWith('CN='))?.slice(3) ?? null;
        // A TLSSocket made outside a tls.Server (the upgrade after SSLRequest) does not set
        // `authorized` itself: ask the handle for the chain and CRL verdict, as tls.Server does.
        const handle = (out as unknown as { _handle?: { verifyError?: () => (Error & { code?: string }) | null } })._handle;
        const verdict = handle?.verifyError ? handle.verifyError() : new Error('verification unavailable');
        const error = verdict ? String((verdict as { code?: string }).code ?? verdict.message) : null;
        return { subject: parts.join(','), commonName: cn, verified: verdict === null, error };
      },
      startTls: async () => {
        const offer = opts.tls?.();
        if (!offer) throw new Error('TLS is not configured');
        if (socket.writableLength > 0) await new Promise((r) => socket.once('drain', r)); // "S" goes out in cleartext first
        socket.removeAllListeners('data');
        // A certificate is asked for, never required: a client without one logs in otherwise,
        // and one that fails verification (revoked, unknown CA) is refused at startup.
        const secure = new tls.TLSSocket(socket, { isServer: true, secureContext: offer.context, requestCert: offer.requestCert, rejectUnauthorized: false });
        secure.on('data', (chunk: Buffer) => conn!.receive(chunk));
        secure.on('error', () => socket.destroy());
        out = secure;
        return { channelBinding: offer.channelBinding };
      },
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
