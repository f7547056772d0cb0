import { randomBytes } from 'node:crypto';
import os from 'node:os';
import type pg from 'pg';
import { connectCatalog, LazyConnection, parseConnectionString, type ConnectPlan } from './pg-connect.js';
import type { Mutation } from '../catalog/model.js';
import { PgError } from '../errors/pg-error.js';
import type { KeyUse, Ledger, LockoutLedger, RateEvent, Store } from './store.js';
import { SCHEMA, Shared, SHARED_CHANNELS, SHARED_SCHEMA_SQL } from './pg-shared.js';
import type { AuditEntry } from '../audit/audit-record.js';
import { AUDIT_SCHEMA_SQL, appendParams, appendSql, PgAuditTrail } from '../audit/pg-audit-trail.js';
import { PLAINTEXT, type Keys } from './cipher.js';
import { openCommit, sealCommit } from './sealed-commits.js';

/** The schema the catalog lives in, in the database the URL names. */
export const CATALOG_SCHEMA = SCHEMA;
/** Every commit is announced on this channel (payload: its sequence number). */
export const COMMIT_CHANNEL = 'portcullis_commits';
/**
 * How often an instance looks for commits it was not told of (a notification lost with a
 * dropped connection): a commit through another instance holds here within this, at worst.
 */
export const POLL_MS = 500;
/** Commits read per query when loading or catching up (a large catalog is read in steps). */
const READ_BATCH = 5000;
/** Serializes schema creation between instances starting at once (pg_advisory_xact_lock). */
const SCHEMA_LOCK = 0x70637573; // "pcus"

const SCHEMA_SQL = [
  `CREATE SCHEMA IF NOT EXISTS ${CATALOG_SCHEMA}`,
  // One row per commit, numbered without gaps: a commit goes in as seq = the last one + 1,
  // and the primary key refuses a second commit with the same number (see append).
  `CREATE TABLE IF NOT EXISTS ${CATALOG_SCHEMA}.commits (
    seq bigint PRIMARY KEY CHECK (seq > 0),
    committed_at timestamptz NOT NULL DEFAULT now(),
    instance text NOT NULL,
    mutations json NOT NULL
  )`,
  ...SHARED_SCHEMA_SQL,
  ...AUDIT_SCHEMA_SQL,
];

export interface PostgresStoreOptions {
  log?: (line: string) => void;
  /** The version check's interval (POLL_MS by default); tests shorten or lengthen it. */
  pollMs?: number;
  /** Tests: no LISTEN, so only the version check hears of other instances' commits. */
  listen?: boolean;
  /** Names this instance in the rows it writes (diagnostics only). */
  instance?: string;
  /** Encryption at rest (--encryption-key-file): each commit's row sealed (src/store/sealed-commits.ts). */
  keys?: Keys;
}

interface Pending {
  seq: number;
  /** The commit's mutations without its audit records, which go to the chain (portcullis.audit). */
  json: string;
  audit: AuditEntry[];
  resolve: (seq: number) => void;
  reject: (err: unknown) => void;
}

/**
 * The catalog in a PostgreSQL database (`--catalog URL`), shared by any number of
 * instances. Each keeps the whole catalog in memory as with the embedded log; PostgreSQL
 * holds the commits, one row each, and orders them.
 *
 * Compare-and-append: a commit was checked against this instance's catalog as of commit
 * `base`, so it may only become commit base + 1. It is inserted with that number, and the
 * primary key refuses it when another instance took the number first; the instance then
 * reads what it missed, applies it, and the commit fails with 40001 (the client retries,
 * and its retry is checked against the catalog with the other instance's change in it).
 * Commits queued behind a refused one were checked against it and fail with it.
 *
 * Following: a LISTEN connection hears each commit's number as it commits, and a version
 * check every POLL_MS reads anything missed; new commits are handed to `follow`'s `apply`
 * in order. Reads and writes go through one connection, one statement at a time, so the
 * commits this instance writes and those it reads arrive in sequence order.
 */
export class PostgresStore implements Store {
  private readonly plan: ConnectPlan;
  /** Commits: written and read one statement at a time. */
  private readonly main: LazyConnection;
  /** What is shared besides commits (apart, so that a burst of failed logins never delays a commit). */
  private readonly events: LazyConnection;
  /** The audit chain's (a login waits for its record: never behind a commit or an event). */
  private readonly audit: LazyConnection;
  private listener: pg.Client | null = null;
  private listening: Promise<void> | null = null;
  /** The last commit handed out: loaded, followed, or this instance's, acknowledged. */
  private applied = 0;
  /** The last sequence number given to a commit of this instance (queued, in the air or acknowledged). */
  private tip = 0;
  private queue: Pending[] = [];
  /** The worker: writes the queue, else reads what other instances committed. */
  private working: Promise<void> | null = null;
  private catchUp = false;
  /** The mutations of commit `applied` as PostgreSQL holds them (what a read checks it still holds). */
  private lastApplied = '';
  /** Set once PostgreSQL turns out not to hold what this instance applied (see diverge). */
  private diverged: PgError | null = null;
  private follower: ((commit: Mutation[], seq: number) => void) | null = null;
  private timer: NodeJS.Timeout | null = null;
  private closed = false;
  private readonly instance: string;
  private readonly shared: Shared;
  private readonly keys: Keys;

  constructor(
    url: string,
    private readonly opts: PostgresStoreOptions = {},
  ) {
    this.plan = parseConnectionString(url);
    this.keys = opts.keys ?? PLAINTEXT;
    this.main = new LazyConnection(this.plan, 'portcullis catalog');
    this.events = new LazyConnection(this.plan, 'portcullis catalog events');
    this.audit = new LazyConnection(this.plan, 'portcullis catalog audit');
    // Unique across machines and restarts: an instance ignores only its own login events.
    this.instance = opts.instance ?? `${os.hostname()} pid ${process.pid} ${randomBytes(4).toString('hex')}`;
    const store = this;
    this.shared = new Shared({
      connection: () => this.events.get(),
      instance: this.instance,
      get closed() {
        return store.closed;
      },
      log: opts.log,
    });
  }

  get description(): string {
    return `PostgreSQL ${this.plan.safe} (schema ${CATALOG_SCHEMA})`;
  }

  async load(apply: (commit: Mutation[], seq: number) => void): Promise<void> {
    try {
      await this.open(apply);
    } catch (err) {
      await this.close();
      throw err;
    }
  }

  private async open(apply: (commit: Mutation[], seq: number) => void): Promise<void> {
    const c = await this.connection();
    // Audit records are hashed over their UTF-8 bytes, in PostgreSQL and in verify alike.
    const enc = (await c.query<{ server_encoding: string }>('SHOW server_encoding')).rows[0]!.server_encoding;
    if (enc !== 'UTF8') throw new Error(`the catalog's database must be encoded in UTF8 (it is ${enc}): CREATE DATABASE ... ENCODING 'UTF8'`);
    await c.query('BEGIN');
    try {
      // CREATE ... IF NOT EXISTS is not safe against a concurrent CREATE: instances starting
      // at once take turns.
      await c.query('SELECT pg_advisory_xact_lock($1)', [SCHEMA_LOCK]);
      for (const sql of SCHEMA_SQL) await c.query(sql);
      await c.query('COMMIT');
    } catch (err) {
      await c.query('ROLLBACK').catch(() => undefined);
      throw err;
    }
    await this.read(apply);
    this.tip = this.applied;
  }

  follow(apply: (commit: Mutation[], seq: number) => void): void {
    this.follower = apply;
    this.listening = this.opts.listen === false ? null : this.listen();
    this.timer = setInterval(() => {
      this.kick(true);
      this.shared.check();
    }, this.opts.pollMs ?? POLL_MS);
    this.timer.unref();
    this.kick(true); // whatever was committed between load and now
  }

  /**
   * `base`: the commit this one was checked against (the last one applied, or accepted
   * before it here). Anything else than this instance's last one means the commit was
   * checked against a history that did not happen (a commit before it failed): 40001.
   */
  append(commit: Mutation[], base?: number): Promise<number> {
    if (this.closed) return Promise.reject(new PgError('admin_shutdown', 'the catalog is closed'));
    if (this.diverged) return Promise.reject(this.diverged);
    if (base !== undefined && base !== this.tip) return Promise.reject(superseded(base + 1));
    return new Promise((resolve, reject) => {
      const audit = commit.flatMap((m) => (m.op === 'audit' ? (m.entries as AuditEntry[]) : []));
      const seq = ++this.tip;
      const json = sealCommit(JSON.stringify(audit.length === 0 ? commit : commit.filter((m) => m.op !== 'audit')), seq, this.keys);
      this.queue.push({ seq, json, audit, resolve, reject });
      this.kick(false);
    });
  }

  private kick(catchUp: boolean): void {
    if (catchUp) this.catchUp = true;
    if (!this.working && !this.closed) this.working = this.work().finally(() => (this.working = null));
  }

  private async work(): Promise<void> {
    while (this.queue.length > 0 || (this.catchUp && this.follower && !this.closed)) {
      if (this.queue.length > 0) await this.write();
      else {
        this.catchUp = false;
        if (this.diverged) return;
        try {
          await this.read(this.follower!);
          this.failQueued();
        } catch (err) {
          this.opts.log?.(`catalog: could not read new commits from PostgreSQL (will retry): ${(err as Error).message}`);
          // The version check comes round again; no busy loop while PostgreSQL is away.
          if (this.queue.length === 0) return;
        }
      }
    }
  }

  /** Writes the queue as one statement: all of its commits or none. */
  private async write(): Promise<void> {
    const batch = this.queue;
    this.queue = [];
    if (this.diverged) {
      this.fail(batch, this.diverged);
      return;
    }
    const values: string[] = [];
    const params: unknown[] = [];
    for (const p of batch) {
      values.push(`($${params.length + 1}::bigint, $${params.length + 2}::text, $${params.length + 3}::json)`);
      params.push(p.seq, this.instance, p.json);
    }
    // Only after the commit before it: PostgreSQL may have lost commits this instance applied
    // (a failover to an asynchronous standby, a restore), and a commit over the hole would
    // make it a history no instance saw.
    const first = params.length + 1;
    params.push(batch[0]!.seq);
    // The commits' audit records join the chain in the same statement: durable with them,
    // in commit order (an instance inserts commit N + 1 only once N is committed).
    const audit = batch.flatMap((p) => p.audit.map((entry) => ({ entry, commit: p.seq })));
    const chain = audit.length === 0 ? '' : `, ${appendSql(params.length + 1)}`;
    if (audit.length > 0) params.push(...appendParams(this.instance, audit));
    const sql =
      `WITH ins AS (INSERT INTO ${CATALOG_SCHEMA}.commits (seq, instance, mutations) SELECT * FROM (VALUES ${values.join(', ')}) AS v ` +
      `WHERE $${first}::bigint = 1 OR EXISTS (SELECT 1 FROM ${CATALOG_SCHEMA}.commits WHERE seq = $${first}::bigint - 1) RETURNING seq) ` +
      `SELECT pg_notify('${COMMIT_CHANNEL}', max(seq)::text)${chain} FROM ins HAVING count(*) > 0`;
    try {
      const c = await this.connection();
      const r = await c.query(sql, params);
      if (r.rowCount === 0) {
        this.fail(batch, this.diverge(batch[0]!.seq - 1, 'lacks'));
        return;
      }
    } catch (err) {
      this.tip = this.applied;
      if ((err as { code?: string }).code === '23505') {
        // Another instance took the number first. Apply what it committed before failing
        // the commit, so that the client's retry is checked against it.
        try {
          // (Before follow, there is no one to apply to: the read waits for follow's.)
          if (this.follower) await this.read(this.follower);
        } catch (readErr) {
          this.catchUp = true;
          this.opts.log?.(`catalog: could not read new commits from PostgreSQL (will retry): ${(readErr as Error).message}`);
        }
        this.fail(batch, superseded(batch[0]!.seq));
      } else {
        // The commit may have landed before the connection broke: the next read finds out,
        // and applies it if it did.
        this.catchUp = true;
        this.fail(batch, new PgError('io_error', `could not write to the catalog in PostgreSQL: ${(err as Error).message}`));
      }
      return;
    }
    this.applied = batch.at(-1)!.seq;
    this.lastApplied = batch.at(-1)!.json;
    for (const p of batch) p.resolve(p.seq);
  }

  /**
   * PostgreSQL's catalog is not the one this instance applied: commit `seq` is missing there
   * or is another commit. From now on the instance commits nothing and applies nothing (it
   * would build on a history that did not happen); it goes on serving what it holds, and says so.
   */
  private diverge(seq: number, how: 'lacks' | 'holds another'): PgError {
    if (this.diverged) return this.diverged;
    this.diverged = new PgError('data_corrupted', `the catalog in PostgreSQL ${how === 'lacks' ? 'lacks' : 'holds another commit as'} commit ${seq}, which this instance applied`, {
      detail: 'PostgreSQL lost commits it had acknowledged (a failover to an asynchronous standby, or a restore), or they were removed.',
      hint: 'Restart this portcullis instance: it loads the catalog as PostgreSQL holds it. Changes acknowledged after that commit are lost.',
    });
    this.opts.log?.(`catalog: ${this.diverged.message}; this instance commits nothing more until it is restarted (${this.diverged.hint})`);
    return this.diverged;
  }

  /** A commit that cannot be opened while following: like diverge, the instance stops committing and says why. */
  private refuse(err: Error): PgError {
    if (this.diverged) return this.diverged;
    this.diverged = new PgError('data_corrupted', err.message, { hint: 'Start every instance of this catalog with the same --encryption-key-file, then restart this one.' });
    this.opts.log?.(`catalog: ${err.message}; this instance commits nothing more until it is restarted`);
    return this.diverged;
  }

  /** Fails `batch` and everything queued behind it (checked against it) and resets the numbering. */
  private fail(batch: Pending[], err: unknown): void {
    const behind = this.queue;
    this.queue = [];
    this.tip = this.applied;
    for (const p of batch) p.reject(err);
    for (const p of behind) p.reject(superseded(p.seq));
  }

  /** After a read applied other instances' commits: what is queued was numbered over them. */
  private failQueued(): void {
    if (this.queue.length === 0 || this.queue[0]!.seq > this.applied) return;
    const queued = this.queue;
    this.queue = [];
    this.tip = this.applied;
    for (const p of queued) p.reject(superseded(p.seq));
  }

  /** Hands every commit after `applied` to `apply`, in order. */
  private async read(apply: (commit: Mutation[], seq: number) => void): Promise<void> {
    if (this.diverged) throw this.diverged;
    const c = await this.connection();
    for (;;) {
      // From the last commit applied: it must still be there, as this instance applied it.
      const r = await c.query<{ seq: string; mutations: string }>(
        `SELECT seq, mutations::text AS mutations FROM ${CATALOG_SCHEMA}.commits WHERE seq >= $1 ORDER BY seq LIMIT ${READ_BATCH + 1}`,
        [this.applied],
      );
      let rows = r.rows;
      if (this.applied > 0) {
        const last = rows[0];
        if (!last || Number(last.seq) !== this.applied || last.mutations !== this.lastApplied) throw this.diverge(this.applied, !last || Number(last.seq) !== this.applied ? 'lacks' : 'holds another');
        rows = rows.slice(1);
      }
      for (const row of rows) {
        const seq = Number(row.seq);
        if (seq !== this.applied + 1) {
          throw new Error(`the catalog in PostgreSQL lacks commit ${this.applied + 1} (the next one there is ${seq}): rows were removed from ${CATALOG_SCHEMA}.commits`);
        }
        let mutations: Mutation[];
        try {
          mutations = JSON.parse(openCommit(row.mutations, seq, this.keys)) as Mutation[];
        } catch (err) {
          // A commit this instance cannot open (no key, another key, altered): it applies
          // nothing more, as when PostgreSQL lost commits (the catalog would be another's).
          if (this.follower) throw this.refuse(err as Error);
          throw err;
        }
        apply(mutations, seq);
        this.applied = seq;
        this.lastApplied = row.mutations;
        if (this.tip < seq) this.tip = seq;
      }
      if (rows.length < READ_BATCH) return;
    }
  }

  private connection(): Promise<pg.Client> {
    return this.main.get();
  }

  /** The audit trail of this catalog: one hash chain in portcullis.audit, shared by every instance. */
  openAudit(): PgAuditTrail {
    return new PgAuditTrail({ connection: () => this.audit.get(), instance: this.instance });
  }

  /** Lockout counters shared through the catalog's database (see Lockouts.share). */
  get lockoutLedger(): LockoutLedger {
    return this.shared.logins;
  }

  /** HTTP rate-limit counters shared through the catalog's database (see RateLimiter.share). */
  get rateLedger(): Ledger<RateEvent> {
    return this.shared.requests;
  }

  /** API keys' last use, kept in the catalog's database (see KeyUses.share). */
  get keyUseLedger(): Ledger<KeyUse> {
    return this.shared.keyUses;
  }

  private async listen(): Promise<void> {
    let c: pg.Client;
    try {
      c = await connectCatalog(this.plan, 'portcullis catalog listener');
    } catch (err) {
      if (this.closed) return;
      this.opts.log?.(`catalog: could not LISTEN on PostgreSQL (will retry; the version check goes on meanwhile): ${(err as Error).message}`);
      setTimeout(() => void (this.listening = this.listen()), this.opts.pollMs ?? POLL_MS).unref();
      return;
    }
    c.on('notification', (n) => {
      if (n.channel === COMMIT_CHANNEL) {
        // Up to `tip` the numbers are this instance's own commits in flight (its own NOTIFY
        // comes back, often before the INSERT's answer): were one another's, that INSERT
        // fails and reads it. Reading on every own commit cost a query each.
        if (Number(n.payload) > this.tip) this.kick(true);
      } else this.shared.notified(n.channel, n.payload);
    });
    const lost = (err?: Error) => {
      if (this.listener !== c) return;
      this.listener = null;
      if (this.closed) return;
      this.opts.log?.(`catalog: lost the notification connection to PostgreSQL (reconnecting; the version check goes on meanwhile)${err ? `: ${err.message}` : ''}`);
      setTimeout(() => void (this.listening = this.listen()), this.opts.pollMs ?? POLL_MS).unref();
    };
    c.on('error', lost);
    c.on('end', () => lost());
    try {
      await c.query([COMMIT_CHANNEL, ...SHARED_CHANNELS].map((ch) => `LISTEN ${ch}`).join('; '));
      if (this.closed) {
        await c.end();
        return;
      }
      this.listener = c;
      this.kick(true); // anything committed while no one listened
    } catch (err) {
      await c.end().catch(() => undefined);
      if (this.closed) return;
      this.opts.log?.(`catalog: could not LISTEN on PostgreSQL (will retry; the version check goes on meanwhile): ${(err as Error).message}`);
      setTimeout(() => void (this.listening = this.listen()), this.opts.pollMs ?? POLL_MS).unref();
    }
  }

  async close(): Promise<void> {
    // Commits already queued are written first (as the embedded log does at close).
    while (this.working) await this.working;
    // And what is shared: the last failed logins, requests and key uses.
    await this.shared.settle();
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.listening?.catch(() => undefined);
    await this.shared.settle();
    const listener = this.listener;
    this.listener = null;
    await Promise.all([this.main.end(), this.events.end(), this.audit.end(), listener?.end().catch(() => undefined)]);
  }
}

function superseded(seq: number): PgError {
  return new PgError('serialization_failure', 'could not serialize access due to concurrent update', {
    detail: `Another portcullis instance committed a change to the catalog (commit ${seq}) after this transaction read it.`,
    hint: 'Retry the transaction.',
  });
}
