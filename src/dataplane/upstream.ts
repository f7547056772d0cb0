import { PgError } from '../errors/pg-error.js';
import type { AdminSql, DataPlane, Lease, PlaneDatabase } from './types.js';
import { namespaceLike, planeDatabaseName } from './names.js';
import { quoteIdent } from './provision/quote.js';
import { FifoMutex } from './mutex.js';
import { PgRawConnection, parsePgUrl, type PgTarget } from './pg-raw.js';
import { DatabasePool, DEFAULT_POOL, type PoolSettings, type PoolStats, type Pooled } from './pool.js';

/**
 * The upstream data plane: an operator's PostgreSQL 14 or newer, reached by URL
 * (`--upstream postgres://user:password@host:port/db?sslmode=...`). portcullis logs in as
 * the URL's role for everything; that role needs CREATEDB (each portcullis database is a
 * PostgreSQL database, named by planeDatabaseName) and CREATEROLE (the provisioner creates
 * per-database and privilege-profile roles), not superuser. The URL's database is only
 * used to create and drop the others.
 *
 * Connections: with `pool_mode = transaction` (the default), a pool per database (pool.ts)
 * that sessions hold a connection of only for a transaction; with `pool_mode = session`,
 * one dedicated connection per client session per database, opened on the session's first
 * lease and kept until `endSession`. Besides: one
 * connection per database for `withAdmin`, serialised; one maintenance connection for
 * CREATE/DROP DATABASE. A connection that broke (the server restarted, the backend was
 * terminated) rejects `next()`, and the next lease opens a new one (`fresh` again).
 */

interface SessionSlot {
  readonly mutex: FifoMutex;
  conn: PgRawConnection | null;
}

interface AdminSlot {
  readonly mutex: FifoMutex;
  conn: PgRawConnection | null;
}

export class UpstreamPlane implements DataPlane {
  readonly kind = 'upstream' as const;
  readonly target: PgTarget;
  private readonly sessions = new Map<object, Map<string, SessionSlot>>();
  private readonly admins = new Map<string, AdminSlot>();
  private readonly maintenance: AdminSlot = { mutex: new FifoMutex(), conn: null };
  /** Transaction pooling: a pool per data-plane database name. */
  private readonly pools = new Map<string, DatabasePool>();
  /** The pools each session leased from (to end it there). */
  private readonly pooledSessions = new WeakMap<object, Set<DatabasePool>>();
  private closed = false;
  readonly namespace?: string;
  readonly pool: PoolSettings;

  constructor(url: string | PgTarget, opts: { namespace?: string; pool?: Partial<PoolSettings> } = {}) {
    this.target = typeof url === 'string' ? parsePgUrl(url) : url;
    if (opts.namespace !== undefined) this.namespace = opts.namespace;
    this.pool = { ...DEFAULT_POOL, ...opts.pool };
  }

  get pooled(): boolean {
    return this.pool.mode === 'transaction';
  }

  /** SHOW POOLS and /metrics: each database's pool. */
  poolStats(): PoolStats[] {
    const now = Date.now();
    return [...this.pools.values()].map((p) => p.stats(now));
  }

  /**
   * The session needs a connection of its own in `db` (session state, see pool.ts); 0A000
   * when the pool cannot spare one. Nothing to do without transaction pooling.
   */
  dedicate(db: PlaneDatabase, session: object, what: string): void {
    if (!this.pooled) return;
    const pool = this.poolOf(db);
    if (pool.dedicate(session)) return;
    throw new PgError('feature_not_supported', `${what} need a connection of their own, and the pool for database "${db.databaseName}" has none to spare`, {
      detail: `With pool_mode = transaction, a session that uses ${what} keeps one upstream connection until it ends; at most ${pool.dedicatedLimit} of the pool's ${this.pool.size} connections are kept so.`,
      hint: 'End other such sessions, raise pool_size, or run portcullis with pool_mode = session.',
    });
  }

  private poolOf(db: PlaneDatabase): DatabasePool {
    const name = planeDatabaseName(db);
    let pool = this.pools.get(name);
    if (!pool) {
      pool = new DatabasePool(db, this.pool, () => this.connect(name));
      this.pools.set(name, pool);
    }
    return pool;
  }

  /** Opens a connection to a data-plane database (or, with no db, the URL's own database). */
  connect(database?: string): Promise<PgRawConnection> {
    return PgRawConnection.connect(this.target, database, { application_name: 'portcullis' });
  }

  async ensureDatabase(db: PlaneDatabase): Promise<void> {
    const name = planeDatabaseName(db);
    await this.onMaintenance(async (sql) => {
      const found = await sql.query('SELECT 1 AS x FROM pg_catalog.pg_database WHERE datname = $1', [name]);
      if (found.length > 0) return;
      try {
        // The creator (portcullis's role) owns it; no other login of the cluster may
        // connect to it (PUBLIC loses CONNECT): its data is reached through portcullis.
        await sql.exec(`CREATE DATABASE ${name}`);
        await sql.exec(`REVOKE CONNECT ON DATABASE ${name} FROM PUBLIC`);
      } catch (err) {
        // Another portcullis process created it first.
        if ((err as { code?: string }).code !== '42P04') throw err;
      }
    });
  }

  async dropDatabase(db: PlaneDatabase): Promise<void> {
    const name = planeDatabaseName(db);
    // portcullis's own connections to it first: sessions' and the admin connection.
    this.pools.get(name)?.close();
    this.pools.delete(name);
    for (const slots of this.sessions.values()) {
      const slot = slots.get(name);
      if (slot) {
        slot.conn?.close();
        slot.conn = null;
        slots.delete(name);
      }
    }
    const admin = this.admins.get(name);
    if (admin) {
      const release = await admin.mutex.acquire();
      admin.conn?.close();
      admin.conn = null;
      this.admins.delete(name);
      release();
    }
    // WITH (FORCE) ends connections that are left (another portcullis process's, which log in
    // as the same role); anyone else's it has no right to end, and then the drop fails.
    await this.onMaintenance((sql) => sql.exec(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
  }

  async withAdmin<T>(db: PlaneDatabase, fn: (sql: AdminSql) => Promise<T>): Promise<T> {
    const name = planeDatabaseName(db);
    let slot = this.admins.get(name);
    if (!slot) {
      // Provisioning can come before any session's first turn there (a policy created, EXPLAIN
      // RLS): the database is made first, as the embedded plane opens its instance.
      await this.ensureDatabase(db);
      slot = this.admins.get(name);
      if (!slot) {
        slot = { mutex: new FifoMutex(), conn: null };
        this.admins.set(name, slot);
      }
    }
    return this.onSlot(slot, name, fn);
  }

  async lease(db: PlaneDatabase, session: object): Promise<Lease> {
    if (this.closed) throw new Error('upstream data plane is closed');
    if (this.pooled) {
      const pool = this.poolOf(db);
      let mine = this.pooledSessions.get(session);
      if (!mine) this.pooledSessions.set(session, (mine = new Set()));
      mine.add(pool);
      const { pc, fresh } = await pool.acquire(session);
      return new PooledLease(pool, pc, session, fresh);
    }
    const name = planeDatabaseName(db);
    let slots = this.sessions.get(session);
    if (!slots) {
      slots = new Map();
      this.sessions.set(session, slots);
    }
    let slot = slots.get(name);
    if (!slot) {
      slot = { mutex: new FifoMutex(), conn: null };
      slots.set(name, slot);
    }
    const release = await slot.mutex.acquire();
    let fresh = false;
    try {
      if (!slot.conn || slot.conn.broken) {
        slot.conn?.close();
        slot.conn = null;
        slot.conn = await this.connect(name);
        fresh = true;
      }
    } catch (err) {
      release();
      throw err;
    }
    return new UpstreamLease(slot, slot.conn, fresh, release);
  }

  /**
   * Drops every database and role of this plane's namespace (the golden runner, after a
   * file): first this plane's own connections, then the databases (WITH (FORCE)), then the
   * roles, which own nothing left once their databases are gone.
   */
  async dropNamespace(): Promise<{ databases: string[]; roles: string[] }> {
    if (this.namespace === undefined) throw new Error('upstream data plane: no namespace to drop');
    for (const session of [...this.sessions.keys()]) this.endSession(session);
    for (const pool of this.pools.values()) pool.close();
    this.pools.clear();
    for (const [name, slot] of [...this.admins]) {
      const release = await slot.mutex.acquire();
      slot.conn?.close();
      slot.conn = null;
      this.admins.delete(name);
      release();
    }
    const like = namespaceLike(this.namespace);
    return this.onMaintenance(async (sql) => {
      const databases = (await sql.query('SELECT datname::text AS name FROM pg_catalog.pg_database WHERE datname LIKE $1 ORDER BY 1', [like])).map((r) => r.name!);
      for (const d of databases) await sql.exec(`DROP DATABASE IF EXISTS ${quoteIdent(d)} WITH (FORCE)`);
      const roles = (await sql.query('SELECT rolname::text AS name FROM pg_catalog.pg_roles WHERE rolname LIKE $1 ORDER BY 1', [like])).map((r) => r.name!);
      for (const r of roles) await sql.exec(`DROP ROLE IF EXISTS ${quoteIdent(r)}`);
      return { databases, roles };
    });
  }

  endSession(session: object): void {
    const mine = this.pooledSessions.get(session);
    if (mine) {
      this.pooledSessions.delete(session);
      for (const pool of mine) pool.endSession(session);
    }
    const slots = this.sessions.get(session);
    if (!slots) return;
    this.sessions.delete(session);
    for (const slot of slots.values()) {
      slot.conn?.close();
      slot.conn = null;
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const session of [...this.sessions.keys()]) this.endSession(session);
    for (const pool of this.pools.values()) pool.close();
    this.pools.clear();
    for (const slot of [...this.admins.values(), this.maintenance]) {
      const release = await slot.mutex.acquire();
      slot.conn?.close();
      slot.conn = null;
      release();
    }
    this.admins.clear();
  }

  private onMaintenance<T>(fn: (sql: AdminSql) => Promise<T>): Promise<T> {
    return this.onSlot(this.maintenance, undefined, fn);
  }

  /** Runs fn on a slot's connection, opening it (again) when needed; one at a time. */
  private async onSlot<T>(slot: AdminSlot, database: string | undefined, fn: (sql: AdminSql) => Promise<T>): Promise<T> {
    if (this.closed) throw new Error('upstream data plane is closed');
    const release = await slot.mutex.acquire();
    try {
      if (!slot.conn || slot.conn.broken) {
        slot.conn?.close();
        slot.conn = null;
        slot.conn = await this.connect(database);
      }
      const conn = slot.conn;
      try {
        return await fn(conn.admin());
      } finally {
        // A failed statement inside an explicit transaction the caller opened must not leak
        // into the next caller's statements.
        if (!conn.broken && conn.transactionStatus !== 'I') await conn.admin().exec('ROLLBACK').catch(() => conn.close());
      }
    } finally {
      release();
    }
  }
}

/** A session's turn on its dedicated connection. */
class UpstreamLease implements Lease {
  readonly admin: AdminSql;
  private released = false;

  constructor(
    private readonly slot: SessionSlot,
    private readonly conn: PgRawConnection,
    readonly fresh: boolean,
    private readonly unlock: () => void,
  ) {
    this.admin = conn.admin();
  }

  write(frames: Uint8Array): void {
    if (this.released) throw new Error('data plane lease already released');
    this.conn.write(frames);
  }

  next(): Promise<Uint8Array> {
    return this.conn.next();
  }

  cancel(): Promise<void> {
    return this.conn.cancel();
  }

  release(broken = false): void {
    if (this.released) return;
    this.released = true;
    if (broken || this.conn.broken) {
      this.conn.close();
      if (this.slot.conn === this.conn) this.slot.conn = null;
    }
    this.unlock();
  }
}

/** A session's transaction on a pooled connection (pool.ts). */
class PooledLease implements Lease {
  readonly admin: AdminSql;
  private released = false;

  constructor(
    private readonly pool: DatabasePool,
    private readonly pc: Pooled,
    private readonly session: object,
    readonly fresh: boolean,
  ) {
    this.admin = pc.conn.admin();
  }

  get identity(): string | null {
    return this.pc.identity;
  }

  set identity(v: string | null) {
    this.pc.identity = v;
  }

  write(frames: Uint8Array): void {
    if (this.released) throw new Error('data plane lease already released');
    this.pc.conn.write(frames);
  }

  next(): Promise<Uint8Array> {
    return this.pc.conn.next();
  }

  cancel(): Promise<void> {
    return this.pc.conn.cancel();
  }

  release(broken = false): void {
    if (this.released) return;
    this.released = true;
    // A connection given back inside a transaction (the session ended mid-block) cannot serve another.
    this.pool.release(this.pc, this.session, broken || this.pc.conn.transactionStatus !== 'I');
  }
}
