import type pg from 'pg';
import type { KeyUse, Ledger, LockoutEvent, RateEvent } from './store.js';

/**
 * What instances sharing a catalog in PostgreSQL count and note together, besides commits:
 * failed logins (lockouts), requests (HTTP rate limits) and API keys' last use. None of it
 * is a catalog change: it never waits for PostgreSQL on the way of a login or a request,
 * and it never makes a commit of another instance fail. Each instance keeps its own
 * counters in memory, as it would alone, tells the others what it counts (a row, and a
 * `pg_notify` carrying it), and counts what they tell it.
 */

export const SCHEMA = 'portcullis';

/**
 * Events are kept this long: an instance starting reads the last hour's, so a restart
 * forgets neither lockouts nor the hour's rate-limit window, and nothing older is needed
 * (windows of a minute and an hour, counters forgotten after ten minutes).
 */
const EVENTS_KEPT = '1 hour';
/**
 * Rows become visible when their insert commits, a moment after they were logged: each
 * check for missed notifications goes back this far before where the last one ended.
 */
const CHECK_OVERLAP = '5 seconds';
/** A key's last use is written at most this often per instance (it is a date shown to people, not a counter). */
const KEY_USE_WRITE_MS = 1000;

/** One kind of event: its table, its channel, and how an event maps to a row. */
interface EventKind<E> {
  table: string;
  channel: string;
  /** The columns after (id, logged_at, instance), as in the CREATE TABLE. */
  columns: readonly [name: string, type: string][];
  values(e: E): unknown[];
  event(row: Record<string, unknown>): E;
}

const LOGINS: EventKind<LockoutEvent> = {
  table: 'login_events',
  channel: 'portcullis_login_events',
  columns: [['kind', 'text'], ['address', 'text'], ['username', 'text'], ['at', 'bigint']],
  values: (e) => [e.kind, e.address, e.user, e.at],
  event: (r) => ({ kind: r.kind as LockoutEvent['kind'], address: String(r.address), user: String(r.username), at: Number(r.at) }),
};

const REQUESTS: EventKind<RateEvent> = {
  table: 'rate_events',
  channel: 'portcullis_rate_events',
  columns: [['principal', 'text'], ['requests', 'integer'], ['at', 'bigint']],
  values: (e) => [e.principal, e.requests, e.at],
  event: (r) => ({ principal: String(r.principal), requests: Number(r.requests), at: Number(r.at) }),
};

const KEY_USES_CHANNEL = 'portcullis_key_uses';

/** The tables of what is shared (created with the catalog's, see PostgresStore). */
export const SHARED_SCHEMA_SQL: readonly string[] = [
  ...[LOGINS, REQUESTS].flatMap((k) => [
    // Numbered for de-duplication only (bigserial numbers commit out of order), read back
    // by the time PostgreSQL logged them.
    `CREATE TABLE IF NOT EXISTS ${SCHEMA}.${k.table} (
      id bigserial PRIMARY KEY,
      logged_at timestamptz NOT NULL DEFAULT clock_timestamp(),
      instance text NOT NULL,
      ${k.columns.map(([n, t]) => `${n} ${t} NOT NULL`).join(',\n      ')}
    )`,
    `CREATE INDEX IF NOT EXISTS ${k.table}_logged_at ON ${SCHEMA}.${k.table} (logged_at)`,
  ]),
  // One row per key secret: the latest use any instance has written.
  `CREATE TABLE IF NOT EXISTS ${SCHEMA}.key_uses (
    key_id bigint NOT NULL,
    previous boolean NOT NULL,
    last_used bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (key_id, previous)
  )`,
  `CREATE INDEX IF NOT EXISTS key_uses_updated_at ON ${SCHEMA}.key_uses (updated_at)`,
];

/** The channels an instance LISTENs on besides the commits'. */
export const SHARED_CHANNELS: readonly string[] = [LOGINS.channel, REQUESTS.channel, KEY_USES_CHANNEL];

/** What the ledgers need of the store: the connection they share, and who this instance is. */
export interface SharedLink {
  connection(): Promise<pg.Client>;
  readonly instance: string;
  readonly closed: boolean;
  log?: (line: string) => void;
}

interface Row {
  id: string;
  instance: string;
  [column: string]: unknown;
}

/**
 * One kind of event, shared: written in batches (whatever queued while the last write was
 * in flight) on the shared connection, so a burst never delays a commit; heard through
 * the notification, or through the periodic check when it was lost.
 */
class EventLedger<E> implements Ledger<E> {
  private queue: E[] = [];
  private writing: Promise<void> | null = null;
  private hear: ((e: E) => void) | null = null;
  /** Events already heard (id → when), and where the next check of the table starts. */
  private readonly heard = new Map<string, number>();
  private since: Date | null = null;
  private lastPrune = 0;

  constructor(
    private readonly kind: EventKind<E>,
    private readonly link: SharedLink,
  ) {}

  publish(e: E): void {
    if (this.link.closed) return;
    this.queue.push(e);
    this.writing ??= this.write().finally(() => (this.writing = null));
  }

  async subscribe(hear: (e: E) => void): Promise<void> {
    this.hear = hear;
    await this.check(true);
  }

  get subscribed(): boolean {
    return this.hear !== null;
  }

  private async write(): Promise<void> {
    const k = this.kind;
    while (this.queue.length > 0 && !this.link.closed) {
      const batch = this.queue.splice(0);
      const values: string[] = [];
      const params: unknown[] = [];
      for (const e of batch) {
        const row = [this.link.instance, ...k.values(e)];
        values.push(`(${row.map((_, i) => `$${params.length + i + 1}`).join(', ')})`);
        params.push(...row);
      }
      const cols = ['instance', ...k.columns.map(([n]) => n)];
      try {
        const c = await this.link.connection();
        await c.query(
          `WITH ins AS (INSERT INTO ${SCHEMA}.${k.table} (${cols.join(', ')}) VALUES ${values.join(', ')} RETURNING id, ${cols.join(', ')}) ` +
            `SELECT pg_notify('${k.channel}', row_to_json(ins)::text) FROM ins`,
          params,
        );
      } catch (err) {
        // Counted here all the same; the other instances miss them (logged, not retried:
        // a login or a request must not wait for PostgreSQL).
        this.link.log?.(`catalog: could not share ${batch.length} ${k.table.replace('_', ' ')} with other instances: ${(err as Error).message}`);
      }
    }
  }

  notified(payload: string): void {
    if (this.hear) this.heardRow(JSON.parse(payload) as Row);
  }

  /**
   * Reads the events logged since the last check (or, `first`, in the last hour), hearing
   * other instances'. Only the first check's failure is thrown (it fails start-up).
   */
  async check(first = false): Promise<void> {
    const t = `${SCHEMA}.${this.kind.table}`;
    try {
      const c = await this.link.connection();
      const r = await c.query<Row & { now: Date }>(
        `SELECT *, now() AS now FROM ${t} WHERE logged_at > ${first ? `now() - interval '${EVENTS_KEPT}'` : `$1::timestamptz - interval '${CHECK_OVERLAP}'`} ORDER BY id`,
        first ? [] : [this.since ?? new Date(0)],
      );
      for (const row of r.rows) this.heardRow(row);
      const now = (r.rows[0]?.now ?? (await c.query<{ now: Date }>('SELECT now()')).rows[0]!.now).getTime();
      this.since = new Date(now);
      // Ids heard a minute ago cannot come round again (each check goes back CHECK_OVERLAP).
      for (const [id, at] of this.heard) if (at < Date.now() - 60_000) this.heard.delete(id);
      if (now - this.lastPrune > 60_000) {
        this.lastPrune = now;
        await c.query(`DELETE FROM ${t} WHERE logged_at < now() - interval '${EVENTS_KEPT}'`);
      }
    } catch (err) {
      if (first) throw err;
      this.link.log?.(`catalog: could not read ${this.kind.table.replace('_', ' ')} from PostgreSQL (will retry): ${(err as Error).message}`);
    }
  }

  private heardRow(row: Row): void {
    if (row.instance === this.link.instance || this.heard.has(String(row.id))) return;
    this.heard.set(String(row.id), Date.now());
    this.hear?.(this.kind.event(row));
  }

  async settle(): Promise<void> {
    while (this.writing) await this.writing;
  }
}

/**
 * API keys' last use: one row per key secret holding the latest use any instance wrote
 * (GREATEST, so instances writing out of order never move it back). Uses are written at
 * most once a second per instance, and read whole at start-up (a key's last use is kept
 * as long as the key, unlike events).
 */
class KeyUseLedger implements Ledger<KeyUse> {
  private readonly pending = new Map<string, KeyUse>();
  private timer: NodeJS.Timeout | null = null;
  private writing: Promise<void> | null = null;
  private hear: ((u: KeyUse) => void) | null = null;
  private since: Date | null = null;

  constructor(private readonly link: SharedLink) {}

  publish(u: KeyUse): void {
    if (this.link.closed) return;
    const id = `${u.key}:${u.previous}`;
    const had = this.pending.get(id);
    if (!had || had.at < u.at) this.pending.set(id, u);
    if (!this.timer && !this.writing) {
      this.timer = setTimeout(() => {
        this.timer = null;
        this.writing = this.write().finally(() => (this.writing = null));
      }, KEY_USE_WRITE_MS);
      this.timer.unref();
    }
  }

  async subscribe(hear: (u: KeyUse) => void): Promise<void> {
    this.hear = hear;
    await this.check(true);
  }

  get subscribed(): boolean {
    return this.hear !== null;
  }

  private async write(): Promise<void> {
    while (this.pending.size > 0) {
      const batch = [...this.pending.values()];
      this.pending.clear();
      const values: string[] = [];
      const params: unknown[] = [];
      for (const u of batch) {
        values.push(`($${params.length + 1}, $${params.length + 2}, $${params.length + 3})`);
        params.push(u.key, u.previous, u.at);
      }
      try {
        const c = await this.link.connection();
        await c.query(
          `WITH up AS (INSERT INTO ${SCHEMA}.key_uses AS k (key_id, previous, last_used) VALUES ${values.join(', ')} ` +
            `ON CONFLICT (key_id, previous) DO UPDATE SET last_used = GREATEST(k.last_used, EXCLUDED.last_used), updated_at = clock_timestamp() ` +
            `RETURNING key_id, previous, last_used) SELECT pg_notify('${KEY_USES_CHANNEL}', row_to_json(up)::text) FROM up`,
          params,
        );
      } catch (err) {
        if (this.link.closed) return;
        // Kept for the next write (a newer use of the same key replaces it).
        for (const u of batch) {
          const id = `${u.key}:${u.previous}`;
          if (!this.pending.has(id)) this.pending.set(id, u);
        }
        this.link.log?.(`catalog: could not write API key use to PostgreSQL (will retry): ${(err as Error).message}`);
        if (!this.timer) {
          this.timer = setTimeout(() => {
            this.timer = null;
            this.writing ??= this.write().finally(() => (this.writing = null));
          }, KEY_USE_WRITE_MS);
          this.timer.unref();
        }
        return;
      }
    }
  }

  notified(payload: string): void {
    const r = JSON.parse(payload) as { key_id: number; previous: boolean; last_used: number };
    this.hear?.({ key: Number(r.key_id), previous: r.previous, at: Number(r.last_used) });
  }

  async check(first = false): Promise<void> {
    try {
      const c = await this.link.connection();
      const r = await c.query<{ key_id: string; previous: boolean; last_used: string; now: Date }>(
        `SELECT key_id, previous, last_used, now() AS now FROM ${SCHEMA}.key_uses` +
          (first ? '' : ` WHERE updated_at > $1::timestamptz - interval '${CHECK_OVERLAP}'`),
        first ? [] : [this.since ?? new Date(0)],
      );
      for (const row of r.rows) this.hear?.({ key: Number(row.key_id), previous: row.previous, at: Number(row.last_used) });
      this.since = r.rows[0]?.now ?? (await c.query<{ now: Date }>('SELECT now()')).rows[0]!.now;
    } catch (err) {
      if (first) throw err;
      this.link.log?.(`catalog: could not read API key use from PostgreSQL (will retry): ${(err as Error).message}`);
    }
  }

  /** Writes what is pending now (at close: the last second's uses are not lost). */
  async settle(): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
      this.writing ??= this.write().finally(() => (this.writing = null));
    }
    while (this.writing) await this.writing;
  }
}

/** Everything shared besides commits, for one store. */
export class Shared {
  readonly logins: EventLedger<LockoutEvent>;
  readonly requests: EventLedger<RateEvent>;
  readonly keyUses: KeyUseLedger;
  private checking: Promise<void> | null = null;

  constructor(link: SharedLink) {
    this.logins = new EventLedger(LOGINS, link);
    this.requests = new EventLedger(REQUESTS, link);
    this.keyUses = new KeyUseLedger(link);
  }

  /** A notification on one of SHARED_CHANNELS. */
  notified(channel: string, payload: string | undefined): void {
    if (!payload) return;
    if (channel === LOGINS.channel) this.logins.notified(payload);
    else if (channel === REQUESTS.channel) this.requests.notified(payload);
    else if (channel === KEY_USES_CHANNEL) this.keyUses.notified(payload);
  }

  /** The periodic check for what notifications missed (one at a time). */
  check(): void {
    this.checking ??= (async () => {
      for (const l of [this.logins, this.requests, this.keyUses]) if (l.subscribed) await l.check();
    })().finally(() => (this.checking = null));
  }

  /** Writes what is queued, and waits for a check under way (before close). */
  async settle(): Promise<void> {
    await Promise.all([this.logins.settle(), this.requests.settle(), this.keyUses.settle()]);
    await this.checking;
  }
}
