import net from 'node:net';
import tls from 'node:tls';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { serialize } from 'pg-protocol';
import type { BackendMessage } from 'pg-protocol/dist/messages.js';
import { FrameQueue } from './frame-queue.js';
import { adminOver, decodeBackend, readyStatus, splitFrames } from './frames.js';
import type { AdminSql } from './types.js';

/**
 * A raw PostgreSQL v3 client for the upstream data plane: it does the startup (TLS as the
 * URL's sslmode says, then trust / cleartext / md5 / SCRAM-SHA-256 authentication), and then
 * carries frames both ways untouched, so the forwarder can pass a client's messages through
 * as they are. Framing is pg-protocol's; SCRAM and md5 are node-postgres's own
 * implementations (`pg/lib/crypto`), not re-written here.
 */

interface Sasl {
  startSession(mechanisms: string[], stream?: tls.TLSSocket): SaslSession;
  continueSession(session: SaslSession, password: string, serverData: string, stream?: tls.TLSSocket): Promise<void>;
  finalizeSession(session: SaslSession, serverData: string): void;
}
interface SaslSession {
  mechanism: string;
  response: string;
}

const require = createRequire(import.meta.url);
const sasl = require('pg/lib/crypto/sasl.js') as Sasl;
const pgCrypto = require('pg/lib/crypto/utils.js') as { postgresMd5PasswordHash(user: string, password: string, salt: Buffer): Promise<string> };

export type SslMode = 'disable' | 'allow' | 'prefer' | 'require' | 'verify-ca' | 'verify-full';

/** Where and how to connect, from a `postgres://` URL. */
export interface PgTarget {
  host: string;
  port: number;
  user: string;
  password: string | null;
  database: string;
  sslmode: SslMode;
  /** PEM of the CA to verify the server with (the URL's `sslrootcert`), or null for the system's. */
  sslrootcert: string | null;
  /** Milliseconds to wait for a connection and its startup. */
  connectTimeoutMs: number;
}

const SSL_MODES: SslMode[] = ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full'];

/**
 * Parses `postgres://user:password@host:port/database?sslmode=...&sslrootcert=...`
 * (`postgresql://` too). Defaults as libpq's: port 5432, database = user, sslmode prefer.
 * `sslrootcert` is a file path (read now) or `system` for the system's CAs; with it,
 * `require` verifies the chain as `verify-ca` does, as libpq does.
 */
export function parsePgUrl(url: string): PgTarget {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new Error('upstream: not a URL (expected postgres://user:password@host:port/database)');
  }
  if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') throw new Error(`upstream: unsupported URL scheme ${u.protocol} (expected postgres://)`);
  const user = decodeURIComponent(u.username);
  if (!user) throw new Error('upstream: the URL names no user');
  const modeParam = u.searchParams.get('sslmode') ?? 'prefer';
  if (!SSL_MODES.includes(modeParam as SslMode)) throw new Error(`upstream: unknown sslmode ${modeParam}`);
  const rootParam = u.searchParams.get('sslrootcert');
  const host = u.hostname.replace(/^\[(.*)\]$/, '$1') || 'localhost';
  const db = decodeURIComponent(u.pathname.replace(/^\//, ''));
  const timeout = Number(u.searchParams.get('connect_timeout') ?? '10');
  return {
    host,
    port: u.port ? Number(u.port) : 5432,
    user,
    password: u.password ? decodeURIComponent(u.password) : null,
    database: db || user,
    sslmode: modeParam as SslMode,
    sslrootcert: rootParam === null || rootParam === 'system' ? null : readFileSync(rootParam, 'utf8'),
    connectTimeoutMs: Number.isFinite(timeout) && timeout > 0 ? timeout * 1000 : 10_000,
  };
}

/** An upstream refused the connection or the login: PostgreSQL's SQLSTATE and message when it sent one. */
export class UpstreamError extends Error {
  constructor(
    message: string,
    readonly code: string | null = null,
  ) {
    super(message);
    this.name = 'UpstreamError';
  }
}

type Socket = net.Socket | tls.TLSSocket;

/** Reads whole frames from a socket during startup (before raw mode takes over). */
class StartupReader {
  private buf: Buffer = Buffer.alloc(0);
  private wake: (() => void) | null = null;
  private failure: Error | null = null;
  private readonly onData = (d: Buffer) => {
    this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d;
    this.wake?.();
  };
  private readonly onEnd = (err?: Error) => {
    this.failure ??= err ?? new UpstreamError('upstream closed the connection during startup');
    this.wake?.();
  };
  private readonly onClose = () => this.onEnd();

  constructor(private readonly socket: Socket) {
    socket.on('data', this.onData);
    socket.on('error', this.onEnd);
    socket.on('close', this.onClose);
  }

  /** Detaches, returning bytes read past the last whole frame taken. */
  detach(): Buffer {
    this.socket.off('data', this.onData);
    this.socket.off('error', this.onEnd);
    this.socket.off('close', this.onClose);
    return this.buf;
  }

  async byte(): Promise<number> {
    while (this.buf.length < 1) await this.wait();
    const b = this.buf[0]!;
    this.buf = this.buf.subarray(1);
    return b;
  }

  async frame(): Promise<{ frame: Uint8Array; message: BackendMessage }> {
    for (;;) {
      const { frames } = splitFrames(this.buf);
      if (frames.length > 0) {
        const f = frames[0]!;
        this.buf = this.buf.subarray(f.length);
        return { frame: f, message: decodeBackend([f])[0]! };
      }
      await this.wait();
    }
  }

  private wait(): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.wake = () => {
        this.wake = null;
        if (this.failure && this.buf.length === 0) reject(this.failure);
        else resolve();
      };
    });
  }
}

function connectTcp(t: PgTarget): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: t.host, port: t.port });
    s.setNoDelay(true);
    const fail = (e: Error) => {
      s.destroy();
      reject(new UpstreamError(`upstream ${t.host}:${t.port}: ${e.message}`));
    };
    s.once('error', fail);
    s.once('connect', () => {
      s.off('error', fail);
      resolve(s);
    });
  });
}

function startTls(t: PgTarget, socket: net.Socket): Promise<tls.TLSSocket> {
  const verify = t.sslmode === 'verify-ca' || t.sslmode === 'verify-full' || (t.sslmode === 'require' && t.sslrootcert !== null);
  const options: tls.ConnectionOptions = {
    socket,
    rejectUnauthorized: verify,
    ...(t.sslrootcert ? { ca: t.sslrootcert } : {}),
    ...(net.isIP(t.host) ? {} : { servername: t.host }),
    // verify-full checks the name; verify-ca (and require with a root certificate) the chain only.
    ...(t.sslmode === 'verify-full' ? {} : { checkServerIdentity: () => undefined }),
  };
  return new Promise((resolve, reject) => {
    const s = tls.connect(options);
    const fail = (e: Error) => {
      s.destroy();
      reject(new UpstreamError(`upstream ${t.host}:${t.port}: TLS (sslmode=${t.sslmode}): ${e.message}`));
    };
    s.once('error', fail);
    s.once('secureConnect', () => {
      s.off('error', fail);
      resolve(s);
    });
  });
}

function errorText(m: BackendMessage): { code: string | null; text: string } {
  const e = m as unknown as { code?: string; message?: string };
  return { code: e.code ?? null, text: e.message ?? 'error' };
}

/** A started connection: TLS and authentication done, ReadyForQuery received. */
export class PgRawConnection {
  /** The backend's process id (pg_backend_pid()) and cancel key, from BackendKeyData. */
  readonly processId: number;
  readonly secretKey: number;
  /** ParameterStatus values from the startup (server_version, ...). */
  readonly parameters: ReadonlyMap<string, string>;
  readonly tls: boolean;
  private readonly queue = new FrameQueue();
  private pending: Buffer;
  private status: 'I' | 'T' | 'E' = 'I';
  private ended = false;

  private constructor(
    private readonly socket: Socket,
    rest: Buffer,
    info: { processId: number; secretKey: number; parameters: Map<string, string>; tls: boolean },
  ) {
    this.processId = info.processId;
    this.secretKey = info.secretKey;
    this.parameters = info.parameters;
    this.tls = info.tls;
    this.pending = Buffer.alloc(0);
    socket.on('data', (d: Buffer) => this.receive(d));
    socket.on('error', (e) => this.fail(new UpstreamError(`upstream connection failed: ${e.message}`)));
    socket.on('close', () => this.fail(new UpstreamError('upstream connection closed')));
    if (rest.length) this.receive(rest);
  }

  /**
   * Connects to `database` (default: the target's) as the target's user, and waits for the
   * first ReadyForQuery. `options` are extra startup parameters (application_name, ...).
   */
  static async connect(target: PgTarget, database = target.database, options: Record<string, string> = {}): Promise<PgRawConnection> {
    let socket: Socket = await connectTcp(target);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new UpstreamError(`upstream ${target.host}:${target.port}: no answer within ${target.connectTimeoutMs} ms`)), target.connectTimeoutMs);
    });
    try {
      return await Promise.race([PgRawConnection.start(target, socket, database, options, (s) => (socket = s)), timeout]);
    } catch (err) {
      socket.destroy();
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  private static async start(t: PgTarget, plain: net.Socket, database: string, options: Record<string, string>, swap: (s: Socket) => void): Promise<PgRawConnection> {
    let socket: Socket = plain;
    let usesTls = false;
    if (t.sslmode !== 'disable' && t.sslmode !== 'allow') {
      const reader = new StartupReader(plain);
      plain.write(serialize.requestSsl());
      const answer = await reader.byte();
      const rest = reader.detach();
      if (rest.length) throw new UpstreamError('upstream sent data after its SSL answer (possible man-in-the-middle)');
      if (answer === 0x53 /* S */) {
        socket = await startTls(t, plain);
        swap(socket);
        usesTls = true;
      } else if (answer === 0x4e /* N */) {
        if (t.sslmode !== 'prefer') throw new UpstreamError(`upstream ${t.host}:${t.port} does not accept TLS (sslmode=${t.sslmode})`);
      } else {
        throw new UpstreamError(`upstream ${t.host}:${t.port} answered the SSL request with ${answer}: not PostgreSQL?`);
      }
    }
    const reader = new StartupReader(socket);
    socket.write(serialize.startup({ user: t.user, database, client_encoding: 'UTF8', ...options }));
    const needPassword = () => {
      if (t.password === null) throw new UpstreamError(`upstream asks a password for ${t.user} and the URL has none`, '28P01');
      return t.password;
    };
    let session: SaslSession | null = null;
    const parameters = new Map<string, string>();
    let processId = 0;
    let secretKey = 0;
    for (;;) {
      const { message: m } = await reader.frame();
      switch (m.name) {
        case 'authenticationOk':
          break;
        case 'authenticationCleartextPassword':
          socket.write(serialize.password(needPassword()));
          break;
        case 'authenticationMD5Password':
          socket.write(serialize.password(await pgCrypto.postgresMd5PasswordHash(t.user, needPassword(), (m as unknown as { salt: Buffer }).salt)));
          break;
        case 'authenticationSASL': {
          const mechanisms = (m as unknown as { mechanisms: string[] }).mechanisms;
          session = sasl.startSession(mechanisms, usesTls ? (socket as tls.TLSSocket) : undefined);
          socket.write(serialize.sendSASLInitialResponseMessage(session.mechanism, session.response));
          break;
        }
        case 'authenticationSASLContinue':
          if (!session) throw new UpstreamError('upstream sent SASLContinue without SASL');
          await sasl.continueSession(session, needPassword(), (m as unknown as { data: string }).data, usesTls ? (socket as tls.TLSSocket) : undefined);
          socket.write(serialize.sendSCRAMClientFinalMessage(session.response));
          break;
        case 'authenticationSASLFinal':
          if (!session) throw new UpstreamError('upstream sent SASLFinal without SASL');
          // Verifies the server's signature: the server knew the password too.
          sasl.finalizeSession(session, (m as unknown as { data: string }).data);
          break;
        case 'parameterStatus': {
          const p = m as unknown as { parameterName: string; parameterValue: string };
          parameters.set(p.parameterName, p.parameterValue);
          break;
        }
        case 'backendKeyData': {
          const k = m as unknown as { processID: number; secretKey: number };
          processId = k.processID;
          secretKey = k.secretKey;
          break;
        }
        case 'notice':
          break;
        case 'error': {
          const e = errorText(m);
          throw new UpstreamError(`upstream ${t.host}:${t.port}: ${e.text}`, e.code);
        }
        case 'readyForQuery': {
          const rest = reader.detach();
          return new PgRawConnection(socket, rest, { processId, secretKey, parameters, tls: usesTls });
        }
        default:
          throw new UpstreamError(`upstream sent ${m.name} during startup`);
      }
    }
  }

  /** True once the connection broke or was closed. */
  get broken(): boolean {
    return this.queue.failed !== null || this.ended;
  }

  /** The transaction status from the last ReadyForQuery read. */
  get transactionStatus(): 'I' | 'T' | 'E' {
    return this.status;
  }

  write(frames: Uint8Array): void {
    if (this.broken) return;
    this.socket.write(frames);
  }

  next(): Promise<Uint8Array> {
    return this.queue.next();
  }

  /** Frames out, backend frames in until ReadyForQuery: for portcullis's own SQL between client messages. */
  async exchange(frames: Uint8Array): Promise<Uint8Array[]> {
    this.write(frames);
    const out: Uint8Array[] = [];
    for (;;) {
      const f = await this.next();
      out.push(f);
      if (readyStatus(f)) return out;
    }
  }

  /** AdminSql on this connection (between client messages only). */
  admin(): AdminSql {
    return adminOver((frames) => this.exchange(frames));
  }

  /** Terminate and close. */
  close(): void {
    if (this.ended) return;
    this.ended = true;
    try {
      if (!this.socket.destroyed) this.socket.end(serialize.end());
    } catch {
      // Already gone.
    }
    this.socket.destroy();
    this.queue.fail(new UpstreamError('upstream connection closed'));
  }

  private receive(d: Buffer): void {
    this.pending = this.pending.length ? Buffer.concat([this.pending, d]) : d;
    let split: ReturnType<typeof splitFrames>;
    try {
      split = splitFrames(this.pending);
    } catch (e) {
      this.fail(e as Error);
      this.socket.destroy();
      return;
    }
    for (const f of split.frames) {
      const s = readyStatus(f);
      if (s) this.status = s;
      // Node gives each read its own buffer: the frame can be a view of it.
      this.queue.push(f);
    }
    this.pending = Buffer.from(split.rest);
  }

  private fail(err: Error): void {
    this.queue.fail(err);
    if (!this.socket.destroyed) this.socket.destroy();
  }
}
