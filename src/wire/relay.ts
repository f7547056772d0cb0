import { PgError } from '../errors/pg-error.js';
import { FrontendWriter } from './frontend-encoder.js';
import type { Forwarded, PlaneChannel, PlaneRoute } from './handler.js';
import type { FrontendMessage, TransactionStatus } from './messages.js';

/**
 * The wire side of forwarding: a client's messages for the data plane go out as frames
 * through a `PlaneChannel`, and the data plane's answers come back to the client as they
 * arrive, in order with whatever the connection answers itself.
 *
 * Extended-protocol messages (Parse, Bind, Describe, Execute, Close) are gathered and go
 * out together with the Sync, Flush or Query that follows them, or when the connection must
 * wait for their answers: one write (one wake-up of the backend) per group instead of one
 * per message, and no round trip per message either. PostgreSQL answers an extended group
 * only at its Sync or Flush, so holding the messages until then changes nothing the client
 * sees. A queue of expectations, one per forwarded message, says which backend message ends
 * each answer, so the connection can wait for the data plane to catch up before it answers
 * a message itself, and knows when a turn ends (a ReadyForQuery with nothing else on its way).
 *
 * Names: the client's prepared statements for the data plane get backend names of their
 * own (`pcu_<n>`), unique in the process, so that sessions taking turns on one connection
 * never collide, and admin statements and forwarded ones share the client's namespace. A
 * turn on a connection whose state is not this client's (`reset`) loses the backend
 * statements: each is prepared again, from its text, before its next use.
 */

/** Each forwarded message, and what ends its answer. */
type Expect =
  | {
      kind: 'reply';
      /** Backend message types (as letters) that end the answer. */
      done: string;
      /** Portcullis's own message (a re-Parse, an opening BEGIN): the answer is not the client's. */
      swallow: boolean;
      /** Errors of a swallowed message are not the client's either. */
      swallowErrors?: boolean;
      /** 'query': an error does not end it (its ReadyForQuery does); 'sync': the group's end. */
      end?: 'query' | 'sync';
      /** A piece of a split message (SplitMessage): its ReadyForQuery is not the client's, the connection sends one at the end. */
      piece?: boolean;
      /** The extended-protocol group it belongs to (the number of Syncs sent before it). */
      group: number;
      position?: (p: number) => number;
    }
  /** A message the connection answers itself, in order with the data plane's answers. */
  | { kind: 'local'; frame: Buffer }
  /** The client's Flush: what arrived so far goes out when everything before it did. */
  | { kind: 'flush' };

interface PlaneStatement {
  /** The client's name ('' for the unnamed statement). */
  name: string;
  original: string;
  sql: string;
  paramTypes: number[];
  /** Its name on the backend connection of generation `gen`. */
  backend: string;
  gen: number;
  epoch: number;
  position: (p: number) => number;
  /** DDL: executing a portal of it waits for the answer (see Forwarded.barrier). */
  ddl: boolean;
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/** What the relay needs from the connection's output. */
export interface RelayOutput {
  raw(frame: Uint8Array): void;
  readonly size: number;
  /** Sends what is buffered; false when the socket is full. */
  send(): boolean;
  drained(): Promise<void>;
  /** The data plane connection failed: the client's connection ends (as PostgreSQL's would). */
  fatal(e: PgError): void;
}

/** Flush to the client once this much is buffered, so a long result streams. */
const FLUSH_AT = 64 * 1024;

let backendNames = 0;

/** Settled already: loses a race only to a frame that was there first. */
const NOT_YET_VALUE = new Uint8Array(0);
const NOT_YET = Promise.resolve(NOT_YET_VALUE);

const CODE = (c: string) => c.charCodeAt(0);
const CLOSE_COMPLETE = Buffer.from([CODE('3'), 0, 0, 0, 4]);

export class Relay {
  private channel: PlaneChannel | null = null;
  private readonly expect: Expect[] = [];
  private reading = false;
  private settling: Promise<void> | null = null;
  private waiters: (() => void)[] = [];
  /** Bumped on each turn whose connection state is not this client's. */
  private gen = 0;
  private readonly statements = new Map<string, PlaneStatement>();
  /** The data plane's portals, and whether each runs DDL. */
  private readonly portals = new Map<string, boolean>();
  private readonly w = new FrontendWriter();
  /** Extended-protocol messages went out since the last Sync (the data plane has an implicit transaction open). */
  private unsynced = false;
  /** DDL went out in this group: wait for its answer before sending more (see Forwarded.barrier). */
  private barrierPending = false;
  private dead = false;
  /** Syncs sent: the number of the extended-protocol group the client is sending now. */
  private group = 0;
  /** The group in which the data plane reported an error (it skips the rest of that group, up to its Sync). */
  private failedGroup = -1;
  /** The data plane's transaction status, from its last ReadyForQuery. */
  status: TransactionStatus = 'I';

  constructor(
    private readonly route: PlaneRoute,
    private readonly out: RelayOutput,
  ) {}

  /**
   * An ErrorResponse in the group the client is sending now: the data plane skips to its
   * Sync. (An error of a group already ended by the client's Sync does not make the next
   * group's messages skipped, however late it arrives.)
   */
  get groupFailed(): boolean {
    return this.failedGroup === this.group;
  }

  hasStatement(name: string): boolean {
    return this.statements.has(name);
  }

  hasPortal(name: string): boolean {
    return this.portals.has(name);
  }

  /** A turn is held (the data plane is in a transaction, or answers are on their way). */
  get holding(): boolean {
    return this.channel !== null;
  }

  get busy(): boolean {
    return this.expect.length > 0 || this.reading || this.settling !== null;
  }

  /** The connection's own Parse of `name` replaced it (the unnamed statement), or a simple query dropped it. */
  forget(name: string): void {
    this.statements.delete(name);
  }

  /** DEALLOCATE ALL / DISCARD ALL answered by the session: the forwarded statements go too. */
  forgetAll(): void {
    for (const name of [...this.statements.keys()]) if (name !== '') this.statements.delete(name);
  }

  forgetPortal(name: string): void {
    this.portals.delete(name);
  }

  // ---- client messages --------------------------------------------------------------

  /** A piece (see SplitMessage) reported an error since the last call. */
  takePieceError(): boolean {
    const failed = this.pieceFailed;
    this.pieceFailed = false;
    return failed;
  }

  private pieceFailed = false;

  /** `piece`: a piece of a split message; `silent`, one the client does not hear of (its errors aside). */
  async query(f: Forwarded, piece?: { silent: boolean }): Promise<void> {
    let ch = await this.turn(true);
    if (f.before) {
      await this.idle();
      try {
        await f.before();
      } catch (err) {
        this.letGo();
        throw err;
      }
      ch = this.channel ?? (await this.turn(true));
    }
    this.opening(f);
    this.w.query(f.sql);
    // "If successfully created, a named prepared-statement object lasts till the end of the
    // current session... the unnamed statement [is destroyed by] a simple Query message".
    this.statements.delete('');
    this.portals.delete('');
    this.push({ kind: 'reply', done: 'Z', swallow: piece?.silent ?? false, end: 'query', position: f.position, ...(piece ? { piece: true } : {}) });
    this.write(ch, false);
    if (f.barrier || piece) await this.idle();
  }

  async parse(name: string, f: Forwarded, original: string, paramTypes: number[]): Promise<void> {
    const ch = await this.turn();
    if (this.skipping()) return;
    this.opening(f);
    const st: PlaneStatement = {
      name,
      original,
      sql: f.sql,
      paramTypes,
      backend: name === '' ? '' : `pcu_${++backendNames}`,
      gen: this.gen,
      epoch: this.route.epoch,
      position: f.position,
      ddl: f.barrier,
    };
    this.statements.set(name, st);
    this.w.parse(st.backend, st.sql, paramTypes);
    this.push({ kind: 'reply', done: '1', swallow: false, position: f.position });
    this.write(ch);
  }

  async bind(m: Extract<FrontendMessage, { type: 'Bind' }>): Promise<void> {
    const st = this.statements.get(m.statement)!;
    const ch = await this.turn();
    if (this.skipping()) return;
    // A statement prepared before the session's BEGIN runs inside its block.
    this.opening({ begin: this.route.joinBlock() });
    await this.prepared(st);
    if (this.skipping()) return;
    this.portals.set(m.portal, st.ddl);
    this.w.bind(m.portal, st.backend, m.paramFormats, m.params, m.resultFormats);
    this.push({ kind: 'reply', done: '2', swallow: false });
    this.write(ch);
  }

  async describe(target: 'S' | 'P', name: string): Promise<void> {
    const ch = await this.turn();
    if (target === 'S') {
      const st = this.statements.get(name)!;
      await this.prepared(st);
      if (this.skipping()) return;
      this.w.describe('S', st.backend);
    } else {
      if (this.skipping()) return;
      this.w.describe('P', name);
    }
    this.push({ kind: 'reply', done: 'Tn', swallow: false });
    this.write(ch);
  }

  async execute(portal: string, maxRows: number): Promise<void> {
    const ch = await this.turn(true);
    if (this.skipping()) return;
    if (this.portals.get(portal)) {
      this.route.ddlExecuted();
      this.barrierPending = true;
    }
    this.w.execute(portal, maxRows);
    this.push({ kind: 'reply', done: 'CIs', swallow: false });
    this.write(ch);
  }

  async close(target: 'S' | 'P', name: string): Promise<void> {
    if (this.skipping()) return;
    const ch = this.channel;
    if (target === 'P') {
      this.portals.delete(name);
      if (!ch) return this.local(CLOSE_COMPLETE);
      this.w.close('P', name);
    } else {
      const st = this.statements.get(name);
      this.statements.delete(name);
      // Not on this turn's connection: nothing to close there (a later reset drops it).
      if (!ch || !st || st.gen !== this.gen) return this.local(CLOSE_COMPLETE);
      this.w.close('S', st.backend);
    }
    this.push({ kind: 'reply', done: '3', swallow: false });
    this.write(ch);
  }

  async sync(): Promise<void> {
    const ch = this.channel!;
    this.w.sync();
    this.push({ kind: 'reply', done: 'Z', swallow: false, end: 'sync' });
    this.group++;
    this.write(ch, false);
    this.unsynced = false;
    if (this.barrierPending) {
      this.barrierPending = false;
      await this.idle();
    }
  }

  flush(): void {
    const ch = this.channel;
    if (!ch || this.expect.length === 0) {
      this.out.send();
      return;
    }
    this.w.flush();
    this.push({ kind: 'flush' });
    this.write(ch, false);
  }

  /** CopyData / CopyDone / CopyFail: to the data plane while a turn is held, else ignored (as PostgreSQL does outside COPY). */
  copy(m: Extract<FrontendMessage, { type: 'CopyData' | 'CopyDone' | 'CopyFail' }>): void {
    const ch = this.channel;
    if (!ch) return;
    if (m.type === 'CopyData') this.w.copyData(m.data);
    else if (m.type === 'CopyDone') this.w.copyDone();
    else this.w.copyFail(m.message);
    ch.write(this.w.take());
  }

  /**
   * An error the connection raised itself while the data plane has a transaction open (a
   * block, or the implicit one of this extended-protocol group): PostgreSQL rolls back or
   * fails it on any error, so the data plane's is made to fail too (a statement that cannot
   * succeed, its answer not the client's): the group's earlier statements are not
   * committed, and ROLLBACK, COMMIT and ROLLBACK TO SAVEPOINT then do what they do in
   * PostgreSQL.
   */
  async abortBlock(): Promise<void> {
    if (!this.channel || this.groupFailed || (this.status !== 'T' && !this.unsynced)) return;
    await this.idle();
    if (!this.channel || this.groupFailed || (this.status !== 'T' && !this.unsynced)) return;
    this.w.query('SELECT 1/0');
    this.push({ kind: 'reply', done: 'Z', swallow: true, swallowErrors: true, end: 'query' });
    this.write(this.channel, false);
    await this.idle();
  }

  /** Resolves once every forwarded message is answered and the session has acted on the last ReadyForQuery. */
  async idle(): Promise<void> {
    // An upstream PostgreSQL holds extended-protocol answers until Sync or Flush.
    // The gathered messages go with it.
    if (this.expect.length > 0 && this.channel && !this.dead) this.channel.write(this.w.flush().take());
    while (this.busy && !this.dead) await new Promise<void>((r) => this.waiters.push(r));
  }

  /** The client is gone: nothing more is read. */
  shutdown(): void {
    this.dead = true;
    this.expect.length = 0;
    this.channel = null;
    this.wake();
  }

  // ---- internals ----------------------------------------------------------------------

  /** `runs`: a statement is about to run (Query, Execute): on a turn already held, the route checks the session again first. */
  private async turn(runs = false): Promise<PlaneChannel> {
    while (this.settling) await this.settling;
    if (this.channel) {
      if (runs) this.route.recheck();
      return this.channel;
    }
    const t = await this.route.acquire();
    if (t.reset) this.gen++;
    this.channel = t.channel;
    return t.channel;
  }

  /** The session's BEGIN, answered already, opens the data plane's block before the first SQL in it. */
  private opening(f: Pick<Forwarded, 'begin'>): void {
    if (!f.begin) return;
    this.w.query('BEGIN');
    this.push({ kind: 'reply', done: 'Z', swallow: true, end: 'query' });
  }

  /** Prepares `st` again on this turn's connection when it is not there (or its `$auth` values changed). */
  private async prepared(st: PlaneStatement): Promise<void> {
    if (this.groupFailed) return;
    const epoch = this.route.epoch;
    if (st.gen === this.gen && st.epoch === epoch) return;
    if (st.epoch !== epoch) {
      const f = await this.route.routeParse(st.original);
      if (f) {
        st.sql = f.sql;
        st.position = f.position;
      }
      if (st.gen === this.gen && st.name !== '') {
        this.w.close('S', st.backend);
        this.push({ kind: 'reply', done: '3', swallow: true });
      }
    }
    st.backend = st.name === '' ? '' : `pcu_${++backendNames}`;
    st.gen = this.gen;
    st.epoch = epoch;
    this.w.parse(st.backend, st.sql, st.paramTypes);
    this.push({ kind: 'reply', done: '1', swallow: true, position: st.position });
  }

  private push(e: DistributiveOmit<Expect, 'group'>): void {
    this.expect.push(e.kind === 'reply' ? { ...e, group: this.group } : (e as Expect));
  }

  /**
   * After an error in this group the data plane discards everything up to Sync, answering
   * nothing: a message is not sent then (the connection discards it too).
   */
  private skipping(): boolean {
    if (!this.groupFailed) return false;
    this.w.take();
    return true;
  }

  private local(frame: Buffer): void {
    if (this.expect.length > 0) this.push({ kind: 'local', frame });
    else this.out.raw(frame);
  }

  /** `extended`: the message stays gathered until the group's Sync or Flush (or `idle`). */
  private write(ch: PlaneChannel, extended = true): void {
    if (extended) this.unsynced = true;
    else if (!this.w.empty) ch.write(this.w.take());
    this.drainHead();
    if (!this.reading && this.expect.length > 0) {
      this.reading = true;
      void this.read(ch);
    }
  }

  /** Answers the connection gives itself, and Flushes, once everything before them is out. */
  private drainHead(): void {
    for (;;) {
      const head = this.expect[0];
      if (!head || head.kind === 'reply') return;
      this.expect.shift();
      if (head.kind === 'local') this.out.raw(head.frame);
      else this.out.send();
    }
  }

  private async read(ch: PlaneChannel): Promise<void> {
    try {
      while (this.expect.length > 0 && !this.dead) {
        // Whatever is buffered goes to the client before waiting on the data plane (a
        // CopyInResponse, a notice, the rows so far); a burst already there is sent at once.
        const pending = ch.next();
        let frame = await Promise.race([pending, NOT_YET]);
        if (frame === NOT_YET_VALUE) {
          this.out.send();
          frame = await pending;
        }
        if (this.dead) break;
        await this.onFrame(frame);
        this.drainHead();
        if (this.out.size >= FLUSH_AT && !this.out.send()) await this.out.drained();
      }
    } catch (err) {
      this.reading = false;
      this.broke(err);
      return;
    }
    this.reading = false;
    this.out.send();
    this.wake();
  }

  private async onFrame(frame: Uint8Array): Promise<void> {
    const type = String.fromCharCode(frame[0]!);
    const head = this.expect[0]?.kind === 'reply' ? (this.expect[0] as Extract<Expect, { kind: 'reply' }>) : undefined;
    switch (type) {
      case 'N': // NoticeResponse
      case 'S': // ParameterStatus
      case 'A': // NotificationResponse
        if (!head?.swallow) this.out.raw(frame);
        return;
      case 'E': {
        if (!(head?.swallow && head.swallowErrors)) this.out.raw(head?.position ? withPosition(frame, head.position) : frame);
        if (head?.piece) this.pieceFailed = true;
        this.out.send();
        if (!head || head.end === 'query') return; // a simple Query's ReadyForQuery follows
        // "When an error is detected while processing any extended-query message, the backend
        // issues ErrorResponse, then reads and discards messages until a Sync is reached".
        this.failedGroup = head.group;
        while (this.expect.length > 0 && !(this.expect[0]!.kind === 'reply' && (this.expect[0] as { end?: string }).end === 'sync')) this.expect.shift();
        return;
      }
      case 'Z': {
        // Answers the data plane skipped (after an error) end here too.
        while (this.expect.length > 0 && !(this.expect[0]!.kind === 'reply' && (this.expect[0] as { done: string }).done === 'Z')) {
          const e = this.expect.shift()!;
          if (e.kind === 'local') this.out.raw(e.frame);
        }
        const z = this.expect.shift() as Extract<Expect, { kind: 'reply' }> | undefined;
        const status = String.fromCharCode(frame[5] ?? 0x49) as TransactionStatus;
        this.status = status;
        const idle = this.expect.length === 0;
        if (idle) this.unsynced = false;
        if (idle) {
          this.settling = this.settle(status);
          await this.settling;
          this.settling = null;
        } else await this.route.ready(status, false);
        if (!z?.swallow && !z?.piece) this.out.raw(frame);
        this.out.send();
        if (idle) this.wake();
        return;
      }
      default:
        if (!head?.swallow) this.out.raw(frame);
        if (head && head.done.includes(type)) this.expect.shift();
        return;
    }
  }

  /** The session ended the data plane's block and its turn itself (Forwarded.before). */
  private letGo(): void {
    this.status = 'I';
    this.channel = null;
    this.portals.clear();
  }

  /** The session acts on an idle ReadyForQuery; at 'I' it gives the turn back. */
  private async settle(status: TransactionStatus): Promise<void> {
    await this.route.ready(status, true);
    if (status === 'I') {
      this.channel = null;
      this.portals.clear();
    }
  }

  private broke(err: unknown): void {
    if (this.dead) return;
    this.dead = true;
    this.expect.length = 0;
    this.channel = null;
    this.route.broken();
    this.wake();
    this.out.fatal(
      new PgError('connection_failure', 'the data plane connection failed', {
        severity: 'FATAL',
        detail: err instanceof Error ? err.message : String(err),
      }),
    );
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }
}

/** An ErrorResponse with its position field ('P') mapped back to the client's text. */
function withPosition(frame: Uint8Array, map: (p: number) => number): Uint8Array {
  const buf = Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength);
  const fields: [number, string][] = [];
  let at = 5;
  while (at < buf.length && buf[at] !== 0) {
    const code = buf[at]!;
    const end = buf.indexOf(0, at + 1);
    if (end < 0) return frame;
    fields.push([code, buf.subarray(at + 1, end).toString('utf8')]);
    at = end + 1;
  }
  const p = fields.find(([c]) => c === CODE('P'));
  if (!p) return frame;
  const mapped = map(Number(p[1]));
  if (String(mapped) === p[1]) return frame;
  p[1] = String(mapped);
  const body = Buffer.concat([...fields.map(([c, v]) => Buffer.concat([Buffer.from([c]), Buffer.from(v + '\0', 'utf8')])), Buffer.from([0])]);
  const head = Buffer.allocUnsafe(5);
  head[0] = buf[0]!;
  head.writeInt32BE(4 + body.length, 1);
  return Buffer.concat([head, body]);
}
