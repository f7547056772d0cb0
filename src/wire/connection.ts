import { PgError, asPgError, errorFields } from '../errors/pg-error.js';
import { FrontendDecoder } from './decoder.js';
import { BackendWriter, encode } from './encoder.js';
import { binaryParamToText, binaryResultSupported, textToBinary, typeSize } from './formats.js';
import type {
  AuthExchange,
  ClientCertificate,
  Column,
  Execution,
  PeerInfo,
  PreparedStatement,
  ProtocolState,
  QuerySession,
  ResultSink,
  SplitMessage,
  WireHandler,
} from './handler.js';
import { assertNever, type FieldDescription, type FrontendMessage } from './messages.js';
import { MessageReader, malformed } from './reader.js';
import { Relay } from './relay.js';
import { isLoopbackHost as isLoopbackAddress } from '../net/loopback.js';

/** What the connection needs from a socket: bytes out, close, and backpressure. */
export interface Transport {
  /** false when the kernel buffer is full; `drained` resolves when it empties. */
  write(data: Buffer): boolean;
  /** Whether TLS is configured (the answer to SSLRequest is then "S"). */
  tlsAvailable(): boolean;
  /** Switches the connection to TLS once "S" is out; resolves with the channel binding data. */
  startTls(): Promise<{ channelBinding: Buffer }>;
  /** The client's certificate after the TLS handshake (mTLS), if it sent one. */
  clientCertificate(): ClientCertificate | null;
  /** True when everything written has been handed to the kernel (the buffers are free again). */
  settled(): boolean;
  drained(): Promise<void>;
  close(): void;
}

export interface CancelTarget {
  cancel(): void;
}

/** Cancel keys live with the listener; a connection registers itself after login. */
export interface CancelRegistry {
  register(target: CancelTarget): { processId: number; secretKey: number };
  unregister(processId: number): void;
  cancel(processId: number, secretKey: number): void;
}

export interface ConnectionOptions {
  maxMessage?: number;
  /** PostgreSQL's authentication_timeout: a login not finished by then is dropped. */
  authTimeoutMs?: number;
  log?: (line: string) => void;
  /** Refuse startups outside TLS (28000); 'except-loopback' exempts connections from this machine. */
  requireTls?: 'off' | 'on' | 'except-loopback';
}

type Phase =
  | { kind: 'startup' }
  | { kind: 'sasl-initial'; exchange: AuthExchange }
  | { kind: 'sasl-continue'; exchange: AuthExchange }
  | { kind: 'password'; exchange: AuthExchange }
  | { kind: 'ready'; session: QuerySession; processId: number }
  | { kind: 'closed' };

interface Portal {
  statement: PreparedStatement;
  params: (string | null)[];
  resultFormats: number[];
  execution: Execution | null;
  rowsSent: number;
  done: boolean;
}

/** Thrown by `local()` for a message the data plane's error in its group discards. */
const SKIPPED = Symbol('discarded until Sync');

/** Flush the output buffer once it holds this much, so a long result streams. */
const FLUSH_AT = 64 * 1024;

/**
 * One client connection: the protocol state machine. Messages are handled strictly in
 * order, one at a time; the only thing it knows about queries is the QuerySession
 * interface the handler gives it after login.
 */
export class Connection {
  private readonly decoder: FrontendDecoder;
  private readonly out = new BackendWriter();
  private phase: Phase = { kind: 'startup' };
  private queue: FrontendMessage[] = [];
  private running = false;
  private discardUntilSync = false;
  private readonly statements = new Map<string, PreparedStatement>();
  private readonly portals = new Map<string, Portal>();
  private authTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly transport: Transport,
    private readonly handler: WireHandler,
    private peer: PeerInfo,
    private readonly cancels: CancelRegistry,
    private readonly opts: ConnectionOptions = {},
  ) {
    this.decoder = new FrontendDecoder(opts.maxMessage);
    const timeout = opts.authTimeoutMs ?? 60_000;
    if (timeout > 0) {
      this.authTimer = setTimeout(() => {
        if (this.phase.kind !== 'ready') this.fatal(new PgError('protocol_violation', 'canceling authentication due to timeout', { severity: 'FATAL' }));
      }, timeout);
      this.authTimer.unref();
    }
  }

  /** A method, not a narrowed field read: the phase may change across an await. */
  isClosed(): boolean {
    return this.phase.kind === 'closed';
  }

  /** Bytes from the socket. */
  receive(chunk: Buffer): void {
    if (this.phase.kind === 'closed' || this.decodeError) return;
    try {
      for (const m of this.decoder.push(chunk)) this.queue.push(m);
    } catch (err) {
      // A protocol violation: the messages before it are still handled, then 08P01 and close.
      this.decodeError = asPgError(err);
    }
    void this.pump();
  }

  private decodeError: PgError | null = null;

  /** The socket ended or failed. */
  shutdown(): void {
    this.relay?.shutdown();
    if (this.phase.kind === 'ready') {
      this.cancels.unregister(this.phase.processId);
      this.phase.session.close();
    }
    this.phase = { kind: 'closed' };
    if (this.authTimer) clearTimeout(this.authTimer);
  }

  private async pump(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      while (this.queue.length > 0 && this.phase.kind !== 'closed') {
        const m = this.queue.shift()!;
        try {
          await this.handle(m);
        } catch (err) {
          const e = asPgError(err);
          if (!(err instanceof PgError)) this.opts.log?.(`internal error: ${(err as Error)?.stack ?? String(err)}`);
          this.onError(e);
        }
      }
      if (this.decodeError && this.queue.length === 0) this.fatal(this.decodeError);
    } finally {
      this.running = false;
      this.flush();
    }
  }

  private onError(e: PgError): void {
    if (e.severity === 'FATAL' || this.phase.kind !== 'ready') {
      this.fatal(e);
      return;
    }
    this.sendError(e);
  }

  private fatal(e: PgError): void {
    if (this.phase.kind === 'closed') return;
    this.out.write({ type: 'ErrorResponse', fields: { ...errorFields(e), severity: 'FATAL' } });
    this.flush();
    this.shutdown();
    this.transport.close();
  }

  private sendError(e: PgError): void {
    this.out.write({ type: 'ErrorResponse', fields: errorFields(e) });
  }

  private flush(): void {
    if (this.out.size > 0) this.send();
  }

  private async handle(m: FrontendMessage): Promise<void> {
    switch (this.phase.kind) {
      case 'startup':
        return this.handleStartup(m);
      case 'sasl-initial':
      case 'sasl-continue':
        return this.handleSasl(m, this.phase);
      case 'password':
        return this.handlePassword(m, this.phase.exchange);
      case 'ready':
        return this.handleQuery(m, this.phase.session);
      case 'closed':
        return;
      default:
        return assertNever(this.phase);
    }
  }

  // ---- startup and authentication -------------------------------------------------

  private async handleStartup(m: FrontendMessage): Promise<void> {
    switch (m.type) {
      case 'SSLRequest': {
        // Bytes after an SSLRequest, before our answer, would be read as if they came
        // through TLS (CVE-2021-23214, "buffer stuffing"): refuse.
        if (this.decoder.pending > 0 || this.queue.length > 0 || this.decodeError) {
          throw new PgError('protocol_violation', 'received unencrypted data after SSL request', { severity: 'FATAL' });
        }
        if (this.peer.tls || !this.transport.tlsAvailable()) {
          this.out.rawByte(0x4e); // "N": the client continues in cleartext (or gives up)
          this.flush();
          return;
        }
        this.out.rawByte(0x53); // "S", then the TLS handshake
        this.flush();
        const { channelBinding } = await this.transport.startTls();
        this.peer = { ...this.peer, tls: true, channelBinding };
        return;
      }
      case 'GSSENCRequest':
        // No GSSAPI encryption: "N", and the client continues.
        this.out.rawByte(0x4e);
        this.flush();
        return;
      case 'CancelRequest':
        this.cancels.cancel(m.processId, m.secretKey);
        this.shutdown();
        this.transport.close();
        return;
      case 'StartupMessage': {
        const params = new Map(m.params);
        const user = params.get('user') ?? '';
        const database = params.get('database') ?? '';
        params.delete('user');
        params.delete('database');
        // Protocol 3.x minor versions and _pq_ options we do not know: negotiate down to 3.0.
        const unrecognized = [...params.keys()].filter((k) => k.startsWith('_pq_.'));
        for (const k of unrecognized) params.delete(k);
        if (m.minor > 0 || unrecognized.length > 0) {
          this.out.write({ type: 'NegotiateProtocolVersion', newestMinor: 0, unrecognized });
        }
        if (user === '') {
          throw new PgError('invalid_authorization_specification', 'no user name specified in startup packet', {
            severity: 'FATAL',
          });
        }
        const require = this.opts.requireTls ?? 'off';
        if (!this.peer.tls && (require === 'on' || (require === 'except-loopback' && !isLoopbackAddress(this.peer.address)))) {
          throw new PgError('invalid_authorization_specification', 'this server requires TLS: connection without TLS refused', {
            severity: 'FATAL',
            hint: 'Connect with sslmode=require (or verify-full).',
          });
        }
        if (this.peer.tls) {
          const cert = this.transport.clientCertificate();
          if (cert) this.peer = { ...this.peer, clientCert: cert };
        }
        const exchange = this.handler.startAuth({ user, database, params }, this.peer);
        if (exchange.immediate) {
          await this.authenticated(exchange);
          return;
        }
        if (exchange.mechanisms.length === 0) {
          this.out.write({ type: 'AuthenticationCleartextPassword' });
          this.flush();
          this.phase = { kind: 'password', exchange };
          return;
        }
        this.out.write({ type: 'AuthenticationSASL', mechanisms: exchange.mechanisms });
        this.flush();
        this.phase = { kind: 'sasl-initial', exchange };
        return;
      }
      default:
        throw malformed(`expected startup message, got ${m.type}`);
    }
  }

  private async handleSasl(m: FrontendMessage, phase: Phase & { exchange: AuthExchange }): Promise<void> {
    if (m.type === 'Terminate') {
      this.shutdown();
      this.transport.close();
      return;
    }
    if (m.type !== 'AuthenticationResponse') throw malformed(`expected SASL response, got ${m.type}`);
    let mechanism: string | null = null;
    let data = m.data;
    if (phase.kind === 'sasl-initial') {
      // SASLInitialResponse: String mechanism, Int32 length (-1: none), Byte[n] data.
      const r = new MessageReader(m.data);
      mechanism = r.cstring();
      const len = r.int32();
      data = len === -1 ? Buffer.alloc(0) : r.bytes(len);
      r.end_();
      if (!phase.exchange.mechanisms.includes(mechanism)) {
        throw new PgError('protocol_violation', 'client selected an invalid SASL authentication mechanism', {
          severity: 'FATAL',
        });
      }
    }
    const step = await phase.exchange.step(mechanism, data);
    if (this.isClosed()) return;
    if (!step.done) {
      this.out.write({ type: 'AuthenticationSASLContinue', data: step.data });
      this.flush();
      this.phase = { kind: 'sasl-continue', exchange: phase.exchange };
      return;
    }
    if (step.data) this.out.write({ type: 'AuthenticationSASLFinal', data: step.data });
    await this.authenticated(phase.exchange);
  }

  /** PasswordMessage: a NUL-terminated password (only ever asked for a token as the password). */
  private async handlePassword(m: FrontendMessage, exchange: AuthExchange): Promise<void> {
    if (m.type === 'Terminate') {
      this.shutdown();
      this.transport.close();
      return;
    }
    if (m.type !== 'AuthenticationResponse') throw malformed(`expected password message, got ${m.type}`);
    const r = new MessageReader(m.data);
    const password = r.cstring();
    r.end_();
    await exchange.password(password);
    if (this.isClosed()) return;
    await this.authenticated(exchange);
  }

  private async authenticated(exchange: AuthExchange): Promise<void> {
    const session = await exchange.open();
    if (this.isClosed()) {
      session.close();
      return;
    }
    if (this.authTimer) clearTimeout(this.authTimer);
    this.out.write({ type: 'AuthenticationOk' });
    for (const n of session.loginNotices()) this.out.write({ type: 'NoticeResponse', fields: n });
    for (const [name, value] of session.initialParameters()) this.out.write({ type: 'ParameterStatus', name, value });
    const key = this.cancels.register(session);
    this.out.write({ type: 'BackendKeyData', ...key });
    this.out.write({ type: 'ReadyForQuery', status: session.txStatus() });
    this.phase = { kind: 'ready', session, processId: key.processId };
    this.flush();
  }

  // ---- queries ---------------------------------------------------------------------

  private async handleQuery(m: FrontendMessage, s: QuerySession): Promise<void> {
    const relay = this.relayFor(s);
    // An error the data plane reported in this group: it discards up to Sync, and so does the connection.
    if (relay?.groupFailed && m.type !== 'Sync' && m.type !== 'Terminate' && m.type !== 'Query') this.discardUntilSync = true;
    if (this.discardUntilSync && m.type !== 'Sync' && m.type !== 'Terminate') return;
    switch (m.type) {
      case 'Query':
        return this.simpleQuery(m.sql, s, relay);
      case 'Parse':
        return this.guardAsync(async () => {
          if (m.name !== '' && (this.statements.has(m.name) || relay?.hasStatement(m.name))) {
            throw new PgError('duplicate_prepared_statement', `prepared statement "${m.name}" already exists`);
          }
          const forwarded = relay ? await s.dataPlane!.routeParse(m.sql) : null;
          if (forwarded) {
            this.statements.delete(m.name);
            return relay!.parse(m.name, forwarded, m.sql, m.paramTypes);
          }
          await this.local(relay);
          relay?.forget(m.name);
          this.statements.set(m.name, await s.prepare(m.sql, m.paramTypes));
          this.out.write({ type: 'ParseComplete' });
        }, s);
      case 'Bind':
        return this.guardAsync(async () => {
          const portalTaken = m.portal !== '' && (this.portals.has(m.portal) || relay?.hasPortal(m.portal));
          if (relay?.hasStatement(m.statement)) {
            if (portalTaken) throw new PgError('duplicate_cursor', `portal "${m.portal}" already exists`);
            this.portals.delete(m.portal);
            return relay.bind(m);
          }
          await this.local(relay);
          if (portalTaken && relay?.hasPortal(m.portal)) throw new PgError('duplicate_cursor', `portal "${m.portal}" already exists`);
          relay?.forgetPortal(m.portal);
          this.bind(m);
        }, s);
      case 'Describe':
        return this.guardAsync(async () => {
          if (relay && (m.target === 'S' ? relay.hasStatement(m.name) : relay.hasPortal(m.name))) return relay.describe(m.target, m.name);
          await this.local(relay);
          this.describe(m.target, m.name);
        }, s);
      case 'Execute':
        return this.guardAsync(async () => {
          if (relay?.hasPortal(m.portal)) return relay.execute(m.portal, m.maxRows);
          await this.local(relay);
          return this.execute(m.portal, m.maxRows, s);
        }, s);
      case 'Sync':
        this.discardUntilSync = false;
        if (relay?.holding) {
          // The data plane's ReadyForQuery answers this Sync, with its transaction status.
          this.portals.clear();
          return relay.sync();
        }
        await this.settle(relay);
        try {
          await s.sync();
        } catch (err) {
          this.sendError(asPgError(err));
        }
        if (s.txStatus() === 'I') this.portals.clear();
        return this.readyForQuery(s);
      case 'Flush':
        if (relay) relay.flush();
        else this.flush();
        return;
      case 'Close':
        return this.guardAsync(async () => {
          if (relay && (m.target === 'S' ? relay.hasStatement(m.name) : relay.hasPortal(m.name))) return relay.close(m.target, m.name);
          await this.local(relay);
          if (m.target === 'S') this.statements.delete(m.name);
          else this.portals.delete(m.name);
          this.out.write({ type: 'CloseComplete' });
        }, s);
      case 'CopyData':
      case 'CopyDone':
      case 'CopyFail':
        // COPY FROM STDIN's data, for the data plane; outside COPY it is ignored, as PostgreSQL does.
        relay?.copy(m);
        return;
      case 'Terminate':
        this.shutdown();
        this.transport.close();
        return;
      case 'Unsupported':
        if (m.code === 0x46) {
          return this.guardAsync(async () => {
            await this.local(relay);
            throw new PgError('feature_not_supported', 'the function call protocol is not supported');
          }, s);
        }
        return;
      case 'StartupMessage':
      case 'SSLRequest':
      case 'GSSENCRequest':
      case 'CancelRequest':
      case 'AuthenticationResponse':
        throw malformed(`unexpected ${m.type} after authentication`);
      default:
        return assertNever(m);
    }
  }

  /** The relay to the data plane, made on first use; null when the session has no data plane. */
  private relayFor(s: QuerySession): Relay | null {
    if (!s.dataPlane) return null;
    if (!this.relay) {
      const out = this.out;
      this.relay = new Relay(s.dataPlane, {
        raw: (f) => void out.raw(Buffer.from(f.buffer, f.byteOffset, f.byteLength)),
        get size() {
          return out.size;
        },
        send: () => (out.size > 0 ? this.send() : true),
        drained: () => this.transport.drained(),
        fatal: (e) => this.fatal(e),
      });
    }
    return this.relay;
  }

  private relay: Relay | null = null;

  /**
   * Before the connection answers a message itself: everything forwarded before it has been
   * answered (answers go out in the order of the messages).
   */
  private async local(relay: Relay | null): Promise<void> {
    await this.settle(relay);
    // The data plane failed this group meanwhile: the message is discarded, as PostgreSQL
    // discards everything up to Sync after an error.
    if (relay?.groupFailed) {
      this.discardUntilSync = true;
      throw SKIPPED;
    }
  }

  private async settle(relay: Relay | null): Promise<void> {
    if (relay?.busy) await relay.idle();
  }

  private readyForQuery(s: QuerySession): void {
    for (const [name, value] of s.takeParameterChanges()) this.out.write({ type: 'ParameterStatus', name, value });
    this.out.write({ type: 'ReadyForQuery', status: s.txStatus() });
    this.flush();
  }

  /** An error in the extended protocol: report it and skip to the next Sync. */
  private async guardAsync(fn: () => Promise<void>, s: QuerySession): Promise<void> {
    try {
      await fn();
    } catch (err) {
      if (err === SKIPPED) return;
      await this.extendedError(err, s);
    }
  }

  private async extendedError(err: unknown, s: QuerySession): Promise<void> {
    const e = asPgError(err);
    if (e.severity === 'FATAL') throw e;
    if (!(err instanceof PgError)) this.opts.log?.(`internal error: ${(err as Error)?.stack ?? String(err)}`);
    await this.settle(this.relay);
    await this.relay?.abortBlock();
    s.fail();
    this.sendError(e);
    this.discardUntilSync = true;
  }

  private async simpleQuery(sql: string, s: QuerySession, relay: Relay | null): Promise<void> {
    const sink = this.sink();
    try {
      let forwarded = null;
      try {
        forwarded = relay ? await s.dataPlane!.routeQuery(sql) : null;
      } catch (err) {
        s.fail(); // a refused message fails an open transaction block, as an error does in PostgreSQL
        throw err;
      }
      if (forwarded && 'pieces' in forwarded) return await this.splitQuery(forwarded, s, relay!);
      if (forwarded) {
        // The data plane answers, up to its ReadyForQuery.
        this.statements.delete('');
        this.portals.delete('');
        return await relay!.query(forwarded);
      }
      await this.local(relay);
      relay?.forget('');
      relay?.forgetPortal('');
      await s.simpleQuery(sql, sink);
    } catch (err) {
      if (err === SKIPPED) return;
      const e = asPgError(err);
      if (e.severity === 'FATAL') throw e;
      if (!(err instanceof PgError)) this.opts.log?.(`internal error: ${(err as Error)?.stack ?? String(err)}`);
      await this.settle(relay);
      await relay?.abortBlock();
      this.sendError(e);
    }
    // Unnamed portal and statement do not outlive a simple query (PostgreSQL drops them).
    this.statements.delete('');
    this.portals.delete('');
    this.readyForQuery(s);
  }

  /**
   * A message of both languages (SplitMessage): each piece goes where routing sends it, the
   * data plane's answers and the session's in order, one ReadyForQuery at the end. The
   * first error ends it; in a transaction of its own (`implicit`) that is a ROLLBACK of
   * both sides, as PostgreSQL rolls back a message's implicit transaction.
   */
  private async splitQuery(m: SplitMessage, s: QuerySession, relay: Relay): Promise<void> {
    const pieces = [...(m.implicit ? [{ sql: 'BEGIN', silent: true }] : []), ...m.pieces.map((sql) => ({ sql, silent: false })), ...(m.implicit ? [{ sql: 'COMMIT', silent: true }] : [])];
    let failed = false;
    for (const p of pieces) {
      try {
        await this.piece(p.sql, p.silent, s, relay);
        if (relay.takePieceError()) failed = true;
      } catch (err) {
        if (err !== SKIPPED) {
          const e = asPgError(err);
          if (e.severity === 'FATAL') throw e;
          if (!(err instanceof PgError)) this.opts.log?.(`internal error: ${(err as Error)?.stack ?? String(err)}`);
          await this.settle(relay);
          await relay.abortBlock();
          this.sendError(e);
        }
        failed = true;
      }
      if (failed) break;
    }
    if (failed && m.implicit) {
      // The session's block and the data plane's, whichever are open, end with nothing of them kept.
      await this.piece('ROLLBACK', true, s, relay).catch(() => undefined);
      relay.takePieceError();
    }
    await this.settle(relay);
    this.statements.delete('');
    this.portals.delete('');
    this.readyForQuery(s);
  }

  /** One piece of a split message: to the data plane (its ReadyForQuery kept back) or to the session. */
  private async piece(sql: string, silent: boolean, s: QuerySession, relay: Relay): Promise<void> {
    let routed;
    try {
      routed = await s.dataPlane!.routeQuery(sql);
    } catch (err) {
      s.fail();
      throw err;
    }
    if (routed && 'pieces' in routed) throw new PgError('internal_error', 'a statement of a split message split again');
    if (routed) return relay.query(routed, { silent });
    await this.local(relay);
    relay.forget('');
    relay.forgetPortal('');
    await s.simpleQuery(sql, silent ? silentSink(this.protocol) : this.sink());
  }

  /** Sends what the writer holds; its memory is reused when the socket took it all at once. */
  private send(): boolean {
    const more = this.transport.write(this.out.lend());
    if (this.transport.settled()) this.out.reclaim();
    return more;
  }

  private sink(formats: number[] = [], columns: Column[] = []): ResultSink {
    const conn = this;
    return {
      rowDescription(cols) {
        columns = cols;
        conn.out.write({ type: 'RowDescription', fields: describeFields(cols, formats) });
      },
      dataRow(values) {
        if (formats.length === 0 && Object.isFrozen(values)) conn.out.raw(encodedOnce(values, () => encode({ type: 'DataRow', values })));
        else conn.out.write({ type: 'DataRow', values: encodeRow(values, columns, formats) });
        if (conn.out.size >= FLUSH_AT) return conn.send();
        return true;
      },
      dataRows(rows) {
        if (formats.length > 0 || !Object.isFrozen(rows)) {
          let more = true;
          for (const r of rows) more = this.dataRow(r) && more;
          return more;
        }
        conn.out.raw(encodedOnce(rows, () => Buffer.concat(rows.map((values) => encode({ type: 'DataRow', values })))));
        if (conn.out.size >= FLUSH_AT) return conn.send();
        return true;
      },
      drain: () => this.transport.drained(),
      commandComplete: (tag) => void this.out.write({ type: 'CommandComplete', tag }),
      emptyQuery: () => void this.out.write({ type: 'EmptyQueryResponse' }),
      notice: (n) => void this.out.write({ type: 'NoticeResponse', fields: n }),
      protocol: this.protocol,
    };
  }

  /** What DEALLOCATE and DISCARD ALL do to this connection's prepared statements. */
  private readonly protocol: ProtocolState = {
    deallocate: (name) => {
      if (name !== '' && this.relay?.hasStatement(name)) {
        this.relay.forget(name);
        return true;
      }
      return name !== '' && this.statements.delete(name);
    },
    deallocateAll: () => {
      // "DEALLOCATE ALL": every named prepared statement; the unnamed one is the protocol's own.
      for (const name of [...this.statements.keys()]) if (name !== '') this.statements.delete(name);
      this.relay?.forgetAll();
    },
  };

  private bind(m: Extract<FrontendMessage, { type: 'Bind' }>): void {
    const stmt = this.statements.get(m.statement);
    if (!stmt) throw new PgError('invalid_sql_statement_name', `prepared statement "${m.statement}" does not exist`);
    if (m.params.length !== stmt.paramTypes.length) {
      throw new PgError(
        'protocol_violation',
        `bind message supplies ${m.params.length} parameters, but prepared statement "${m.statement}" requires ${stmt.paramTypes.length}`,
      );
    }
    if (m.paramFormats.length > 1 && m.paramFormats.length !== m.params.length) {
      throw new PgError('protocol_violation', `bind message has ${m.paramFormats.length} parameter formats but ${m.params.length} parameters`);
    }
    if (m.portal !== '' && this.portals.has(m.portal)) {
      throw new PgError('duplicate_cursor', `portal "${m.portal}" already exists`);
    }
    const params = m.params.map((p, i) => {
      if (p === null) return null;
      const format = m.paramFormats.length === 1 ? m.paramFormats[0] : m.paramFormats[i];
      return format === 1 ? binaryParamToText(stmt.paramTypes[i] ?? 0, p, i + 1) : p.toString('utf8');
    });
    checkResultFormats(m.resultFormats, stmt.columns);
    this.portals.set(m.portal, { statement: stmt, params, resultFormats: m.resultFormats, execution: null, rowsSent: 0, done: false });
    this.out.write({ type: 'BindComplete' });
  }

  private describe(target: 'S' | 'P', name: string): void {
    if (target === 'S') {
      const stmt = this.statements.get(name);
      if (!stmt) throw new PgError('invalid_sql_statement_name', `prepared statement "${name}" does not exist`);
      this.out.write({ type: 'ParameterDescription', typeOids: stmt.paramTypes });
      this.out.write(stmt.columns ? { type: 'RowDescription', fields: describeFields(stmt.columns, []) } : { type: 'NoData' });
      return;
    }
    const portal = this.portals.get(name);
    if (!portal) throw new PgError('invalid_cursor_name', `portal "${name}" does not exist`);
    const cols = portal.statement.columns;
    this.out.write(cols ? { type: 'RowDescription', fields: describeFields(cols, portal.resultFormats) } : { type: 'NoData' });
  }

  private async execute(name: string, maxRows: number, s: QuerySession): Promise<void> {
    const portal = this.portals.get(name);
    if (!portal) throw new PgError('invalid_cursor_name', `portal "${name}" does not exist`);
    if (!portal.execution) {
      portal.execution = await s.execute(portal.statement, portal.params, this.sink());
    }
    const ex = portal.execution;
    if (ex.empty) {
      this.out.write({ type: 'EmptyQueryResponse' });
      return;
    }
    if (portal.done) {
      this.out.write({ type: 'CommandComplete', tag: ex.withCount ? `${ex.tag} 0` : ex.tag });
      return;
    }
    const sink = this.sink(portal.resultFormats, ex.columns ?? []);
    let sent = 0;
    for (;;) {
      if (maxRows > 0 && sent >= maxRows) {
        // "If Execute terminates before completing the execution of a portal (due to reaching
        // a nonzero result-row count), it will send a PortalSuspended message".
        this.out.write({ type: 'PortalSuspended' });
        return;
      }
      const next = ex.rows.next();
      if (next.done) break;
      sent++;
      if (!sink.dataRow(next.value)) await sink.drain();
    }
    portal.rowsSent += sent;
    portal.done = true;
    this.out.write({ type: 'CommandComplete', tag: ex.withCount ? `${ex.tag} ${sent}` : ex.tag });
  }
}


function describeFields(cols: Column[], formats: number[]): FieldDescription[] {
  return cols.map((c, i) => ({
    name: c.name,
    tableOid: 0,
    columnAttr: 0,
    typeOid: c.typeOid,
    typeSize: typeSize(c.typeOid),
    typeModifier: -1,
    format: formatAt(formats, i),
  }));
}

const formatAt = (formats: number[], i: number): 0 | 1 =>
  (formats.length === 1 ? formats[0] : formats[i]) === 1 ? 1 : 0;

function checkResultFormats(formats: number[], cols: Column[] | null): void {
  if (!cols) return;
  cols.forEach((c, i) => {
    if (formatAt(formats, i) === 1 && !binaryResultSupported(c.typeOid)) {
      throw new PgError('feature_not_supported', `binary output for column "${c.name}" (type ${c.typeOid}) is not supported`, {
        hint: 'Request text format results.',
      });
    }
  });
}

/** DataRow messages (text format) of frozen rows and blocks of rows: see ResultSink.dataRow(s). */
const encoded = new WeakMap<object, Buffer>();

function encodedOnce(of: object, make: () => Buffer): Buffer {
  let bytes = encoded.get(of);
  if (!bytes) encoded.set(of, (bytes = make()));
  return bytes;
}

function encodeRow(values: readonly (string | null)[], cols: Column[], formats: number[]): readonly (string | Buffer | null)[] {
  if (formats.length === 0) return values;
  return values.map((v, i) => (v === null || formatAt(formats, i) === 0 ? v : textToBinary(cols[i]?.typeOid ?? 0, v)));
}

/** A sink for a piece the client does not hear of (the BEGIN and COMMIT around a split message). */
function silentSink(protocol: ProtocolState): ResultSink {
  return {
    rowDescription: () => undefined,
    dataRow: () => true,
    dataRows: () => true,
    drain: async () => undefined,
    commandComplete: () => undefined,
    emptyQuery: () => undefined,
    notice: () => undefined,
    protocol,
  };
}
