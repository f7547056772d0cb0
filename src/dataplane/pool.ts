import { PgError } from '../errors/pg-error.js';
import type { PgRawConnection } from './pg-raw.js';
import type { PlaneDatabase } from './types.js';

/**
 * Transaction pooling for one upstream database (SPEC §10 "Pooling"): client sessions hold
 * one of at most `size` connections only while a transaction (a turn) runs, and give it
 * back at the ReadyForQuery 'I' that ends it; sessions that find every connection busy
 * wait first-come first-served, for at most `timeoutMs`, then get 53300.
 *
 * What a pool must not weaken (shared/DATA-PLANE-NOTES.md): a connection that last served
 * another session is handed out `fresh`, so the session's identity is applied again before
 * its first message (forwarder.ts, gate.ts). The one shortcut: the connection remembers
 * the identity portcullis last applied on it (`identity`), and the gate skips applying the
 * same one again — the same role and the same `$auth` values, so nothing the previous
 * holder could leave (session state needs a dedicated connection, see below) is readable by
 * anyone it was not readable by already. Every HANDOFFS_PER_RESET handoffs the remembered
 * identity is dropped, so the full reset (DEALLOCATE ALL among it) bounds what piles up.
 *
 * Session-only state (LISTEN, session advisory locks, WITH HOLD cursors, temporary tables,
 * SQL PREPARE, session-level SET): classify.ts reports it, and the session asks for a
 * dedicated connection (`dedicate`), which stays the session's until it ends and is then
 * closed (its state goes with it). At most half the pool is dedicated; past that, 0A000.
 */

export interface PoolSettings {
  mode: 'transaction' | 'session';
  /** Upstream connections per database, dedicated ones included. */
  size: number;
  /** How long a session waits for a connection before 53300, in milliseconds. */
  timeoutMs: number;
}

export const DEFAULT_POOL: PoolSettings = { mode: 'transaction', size: 20, timeoutMs: 30_000 };

/** Handoffs between sessions after which the remembered identity is dropped (a full reset follows). */
const HANDOFFS_PER_RESET = 64;

/** One upstream connection of a pool. */
export interface Pooled {
  conn: PgRawConnection;
  /** The session it last served (its state is that session's). */
  last: object | null;
  /** The identity portcullis last applied on it (gate.ts); null: unknown, apply in full. */
  identity: string | null;
  handoffs: number;
  /** The session it is dedicated to. */
  owner: object | null;
  busy: boolean;
}

interface Waiter {
  session: object;
  since: number;
  resolve(p: { pc: Pooled; fresh: boolean }): void;
  reject(e: unknown): void;
  timer: NodeJS.Timeout;
}

/** SHOW POOLS' row for one database (PgBouncer's column names). */
export interface PoolStats {
  db: PlaneDatabase;
  clActive: number;
  clWaiting: number;
  svActive: number;
  svIdle: number;
  /** Seconds the oldest waiting session has waited. */
  maxwait: number;
  size: number;
  dedicated: number;
}

export class DatabasePool {
  private readonly all = new Set<Pooled>();
  /** Idle connections, most recently used last. */
  private readonly idle: Pooled[] = [];
  private readonly waiters: Waiter[] = [];
  private readonly dedicatedTo = new Map<object, Pooled>();
  /** Sessions that asked for a dedicated connection while not holding one yet. */
  private readonly pinning = new Set<object>();
  /** Sessions that leased here and have not ended. */
  private readonly clients = new Set<object>();
  private opening = 0;
  private closed = false;

  constructor(
    readonly db: PlaneDatabase,
    private readonly settings: PoolSettings,
    private readonly connect: () => Promise<PgRawConnection>,
  ) {}

  /** A connection for `session`: its own dedicated one, an idle one (the one it used last if idle), a new one, or after a wait. */
  async acquire(session: object): Promise<{ pc: Pooled; fresh: boolean }> {
    if (this.closed) throw new Error('upstream data plane is closed');
    this.clients.add(session);
    const own = this.dedicatedTo.get(session);
    if (own) {
      if (own.conn.broken) {
        // Its session state (settings, locks, cursors) is gone with it: carrying on without
        // it would change what the session's statements mean, so the session ends, as it
        // would on PostgreSQL.
        own.conn.close();
        this.dedicatedTo.delete(session);
        this.drop(own);
        this.serveWaiters();
        throw new PgError('connection_failure', 'the data plane connection this session kept for its session state was lost', {
          severity: 'FATAL',
          detail: 'The upstream PostgreSQL ended the connection (a restart, pg_terminate_backend); its settings, locks and cursors went with it.',
          hint: 'Connect again.',
        });
      }
      own.busy = true;
      const fresh = own.last !== session;
      own.last = session;
      return { pc: own, fresh };
    }
    const got = this.takeIdle(session);
    if (got) return got;
    if (this.all.size + this.opening < this.settings.size) return this.open(session);
    return new Promise((resolve, reject) => {
      const w: Waiter = {
        session,
        since: Date.now(),
        resolve,
        reject,
        timer: setTimeout(() => {
          const i = this.waiters.indexOf(w);
          if (i >= 0) this.waiters.splice(i, 1);
          reject(this.exhausted());
        }, this.settings.timeoutMs),
      };
      w.timer.unref?.();
      this.waiters.push(w);
    });
  }

  /** The connection comes back at the end of a turn; `broken`: closed instead. */
  release(pc: Pooled, session: object, broken: boolean): void {
    pc.busy = false;
    if (broken || pc.conn.broken || this.closed) {
      pc.conn.close();
      if (pc.owner) {
        // A dedicated connection that broke stays the session's slot; the next acquire reopens it.
        if (this.closed) this.drop(pc);
        return;
      }
      this.drop(pc);
      this.serveWaiters();
      return;
    }
    if (this.pinning.delete(session) && !pc.owner) {
      pc.owner = session;
      this.dedicatedTo.set(session, pc);
    }
    if (pc.owner) return;
    this.idle.push(pc);
    this.serveWaiters();
  }

  /**
   * The session needs a connection of its own from now on (it is about to leave session
   * state on the one it holds, or will hold). False when the pool cannot spare one.
   */
  dedicate(session: object): boolean {
    if (this.dedicatedTo.has(session) || this.pinning.has(session)) return true;
    if (this.dedicatedTo.size + this.pinning.size + 1 > Math.floor(this.settings.size / 2)) return false;
    this.pinning.add(session);
    return true;
  }

  get dedicatedLimit(): number {
    return Math.floor(this.settings.size / 2);
  }

  /** The session ended: its dedicated connection (with its session state) is closed. */
  endSession(session: object): void {
    this.clients.delete(session);
    this.pinning.delete(session);
    const own = this.dedicatedTo.get(session);
    if (own) {
      this.dedicatedTo.delete(session);
      own.conn.close();
      this.drop(own);
      this.serveWaiters();
    }
    for (const w of this.waiters.filter((x) => x.session === session)) {
      this.waiters.splice(this.waiters.indexOf(w), 1);
      clearTimeout(w.timer);
      w.reject(new PgError('connection_failure', 'the session has ended'));
    }
  }

  stats(now = Date.now()): PoolStats {
    let active = 0;
    for (const pc of this.all) if (pc.busy) active++;
    const oldest = this.waiters[0]?.since;
    return {
      db: this.db,
      clActive: this.clients.size - this.waiters.length,
      clWaiting: this.waiters.length,
      svActive: active,
      svIdle: this.all.size - active,
      maxwait: oldest === undefined ? 0 : Math.floor((now - oldest) / 1000),
      size: this.settings.size,
      dedicated: this.dedicatedTo.size,
    };
  }

  close(): void {
    this.closed = true;
    for (const w of this.waiters.splice(0)) {
      clearTimeout(w.timer);
      w.reject(new PgError('connection_failure', 'the data plane is closing'));
    }
    for (const pc of this.all) pc.conn.close();
    this.all.clear();
    this.idle.length = 0;
    this.dedicatedTo.clear();
  }

  private exhausted(): PgError {
    const secs = this.settings.timeoutMs / 1000;
    return new PgError('too_many_connections', `the pool for database "${this.db.databaseName}" is exhausted: ${this.settings.size} connections busy for ${secs} s`, {
      detail: `Every upstream connection of "${this.db.databaseName}" (pool_size ${this.settings.size}) stayed in a transaction while this session waited (pool_timeout ${secs} s).`,
      hint: 'Keep transactions short, or raise pool_size (within the upstream max_connections).',
    });
  }

  private takeIdle(session: object): { pc: Pooled; fresh: boolean } | null {
    // Broken idle connections (the server restarted, the backend was terminated) are dropped here.
    for (let i = this.idle.length - 1; i >= 0; i--) {
      const pc = this.idle[i]!;
      if (pc.conn.broken) {
        this.idle.splice(i, 1);
        pc.conn.close();
        this.drop(pc);
      }
    }
    if (this.idle.length === 0) return null;
    // The one it used last keeps its prepared statements valid (no re-Parse), and needs no identity.
    let i = this.idle.findIndex((pc) => pc.last === session);
    if (i < 0) i = this.idle.length - 1;
    const pc = this.idle.splice(i, 1)[0]!;
    return { pc, fresh: this.handTo(pc, session) };
  }

  /** Marks `pc` busy for `session`; true when it last served another session. */
  private handTo(pc: Pooled, session: object): boolean {
    pc.busy = true;
    const fresh = pc.last !== session;
    if (fresh && ++pc.handoffs >= HANDOFFS_PER_RESET) {
      pc.handoffs = 0;
      pc.identity = null;
    }
    pc.last = session;
    return fresh;
  }

  private async open(session: object): Promise<{ pc: Pooled; fresh: boolean }> {
    this.opening++;
    let conn: PgRawConnection;
    try {
      conn = await this.connect();
    } finally {
      this.opening--;
    }
    const pc: Pooled = { conn, last: session, identity: null, handoffs: 0, owner: null, busy: true };
    this.all.add(pc);
    if (this.closed) {
      this.release(pc, session, true);
      throw new Error('upstream data plane is closed');
    }
    return { pc, fresh: true };
  }

  private drop(pc: Pooled): void {
    this.all.delete(pc);
    const i = this.idle.indexOf(pc);
    if (i >= 0) this.idle.splice(i, 1);
    if (pc.owner && this.dedicatedTo.get(pc.owner) === pc) this.dedicatedTo.delete(pc.owner);
  }

  /** Idle connections (or room for new ones) go to waiting sessions, first come first served. */
  private serveWaiters(): void {
    while (this.waiters.length > 0) {
      const got = this.takeIdle(this.waiters[0]!.session);
      if (got) {
        const w = this.waiters.shift()!;
        clearTimeout(w.timer);
        w.resolve(got);
        continue;
      }
      if (this.all.size + this.opening < this.settings.size) {
        const w = this.waiters.shift()!;
        clearTimeout(w.timer);
        // A failed connect reaches the waiting session as its error.
        this.open(w.session).then(w.resolve, w.reject);
        continue;
      }
      return;
    }
  }

}
