import { PgError } from '../errors/pg-error.js';
import type { TransactionStatus } from '../wire/messages.js';
import { classify, originalPosition, substituteAuth, type AuthSource, type StatementInfo } from './classify.js';
import { postgresParser, type ParseResult } from './pg-parser.js';
import type { DataPlane, Lease, PlaneDatabase } from './types.js';
import { EMBEDDED_FORBIDDEN_SETTINGS } from './embedded.js';

/**
 * One client session's part of the data plane: its turns (leases), the identity each turn
 * carries, what happens after DDL, and the data plane's transaction status as its
 * ReadyForQuery reported it. The wire layer drives it through the session (PlaneRoute);
 * it never sees the catalog: the session gives it `$auth` values and says when the
 * identity changed.
 */

/** What a turn is told when it starts. */
export interface TurnContext {
  lease: Lease;
  /**
   * The connection's session state is not this session's: the lease is fresh (another
   * session, or portcullis, used it last, or it was just opened) or was reset (DISCARD ALL).
   */
  reset: boolean;
  /** The session's identity changed since its last turn (SET SESSION AUTHORIZATION, RESET). */
  changed: boolean;
}

/**
 * Applies the session's identity on the lease before the client's first message of a turn
 * (the provisioner's `applyIdentity`: reset session state, store `$auth`, SET ROLE). Called
 * at every turn; it may skip work when neither `reset` nor `changed` (a profile that
 * changed because a grant expired is for it to notice).
 */
export type TurnIdentity = (turn: TurnContext) => Promise<void>;

/**
 * After forwarded DDL succeeded (its ReadyForQuery was not 'E'), before anything else of
 * the client's is sent: the provisioner adopts what the session's role now owns. It runs
 * on the lease, inside the client's transaction block when there is one.
 */
export type AfterDdl = (lease: Lease) => Promise<void>;

export interface PlaneSessionOptions {
  plane: DataPlane;
  database: PlaneDatabase;
  identity?: TurnIdentity;
  afterDdl?: AfterDdl;
  /** The session ended (its identity no longer needs keeping). */
  ended?: () => void;
  /** Before a statement inside the data plane's transaction block: throws when the identity the block runs with no longer holds (see recheck). */
  recheck?: () => void;
}

/** A statement text ready for the data plane. */
export interface PreparedSql {
  sql: string;
  statements: StatementInfo[];
  /** Maps an error position in `sql` back to the client's text. */
  position(p: number): number;
}

/** Databases already ensured, per plane: `ensureDatabase` is paid once per database. */
const ensured = new WeakMap<DataPlane, Map<string, Promise<void>>>();

export class PlaneSession {
  /** The data plane's transaction status from its last ReadyForQuery. */
  status: TransactionStatus = 'I';
  /** Changes when values substituted into SQL would differ: prepared statements are prepared again. */
  epoch = 0;
  private lease: Lease | null = null;
  private changed = false;
  private resetPending = false;
  private ddlPending = false;
  private ended = false;

  constructor(private readonly opts: PlaneSessionOptions) {}

  /** The lease of the turn held now (a transaction block is open, or answers are on their way). */
  get held(): Lease | null {
    return this.lease;
  }

  get database(): PlaneDatabase {
    return this.opts.database;
  }

  /**
   * `sql` as it goes to the data plane: `$auth.*` substituted (42704 for an unknown
   * variable), then classified by PostgreSQL's parser (42501 for a refused statement, at its
   * position in the client's text). Null when PostgreSQL's parser refuses the text, with
   * its syntax error in `syntaxError`.
   */
  async prepare(sql: string, auth: AuthSource, parsed?: ParseResult): Promise<PreparedSql | { syntaxError: PgError }> {
    const pg = await postgresParser();
    const sub = substituteAuth(pg, sql, auth);
    // The caller's parse of the text stands when nothing was substituted into it.
    if (sub.edits.length > 0) parsed = undefined;
    const position = (p: number) => originalPosition(sql, sub.sql, sub.edits, p);
    let classified;
    try {
      const embedded = this.opts.plane.kind === 'embedded';
      const pooled = this.opts.plane.pooled === true;
      classified = classify(pg, sub.sql, { sharedConnection: embedded, pooled, forbiddenSettings: embedded ? EMBEDDED_FORBIDDEN_SETTINGS : [] }, parsed);
      // Session state on a pooled plane: the session keeps its connection from now on (or 0A000).
      const state = pooled ? classified?.statements.find((s) => s.sessionState !== undefined) : undefined;
      if (state) this.opts.plane.dedicate?.(this.opts.database, this, state.sessionState!);
    } catch (err) {
      if (err instanceof PgError && err.position !== undefined) {
        throw new PgError(err.state, err.message, { detail: err.detail, hint: err.hint, position: position(err.position) });
      }
      throw err;
    }
    if (!classified) return { syntaxError: syntaxErrorOf(pg, sub.sql, position) };
    return { sql: sub.sql, statements: classified.statements, position };
  }

  /** The session acts as someone else now: the next turn applies its identity again. */
  identityChanged(): void {
    this.changed = true;
    this.epoch++;
  }

  /** DISCARD ALL answered by the session: the data plane's session state is reset at the next turn. */
  resetConnection(): void {
    this.resetPending = true;
  }

  /** DDL is on its way: the DDL hook runs at its ReadyForQuery. */
  noteDdl(): void {
    this.ddlPending = true;
  }

  /** A turn: the database made on first use, the lease, the identity applied. */
  async acquire(): Promise<{ lease: Lease; reset: boolean }> {
    if (this.ended) throw new PgError('connection_failure', 'the session has ended');
    if (this.lease) return { lease: this.lease, reset: false };
    await this.ensure();
    let lease: Lease;
    try {
      lease = await this.opts.plane.lease(this.opts.database, this);
    } catch (err) {
      if (err instanceof PgError) throw err;
      // The upstream is down or refused the login (it restarts): this statement fails, the
      // session stays, and its next statement tries again.
      throw new PgError('connection_failure', 'could not connect to the data plane', { detail: err instanceof Error ? err.message : String(err) });
    }
    let reset = lease.fresh;
    try {
      if (this.resetPending) {
        // DISCARD ALL as portcullis itself: it also ends SET ROLE, which the identity restores.
        if (lease.identity !== undefined) lease.identity = null;
        await lease.admin.exec('DISCARD ALL');
        this.resetPending = false;
        reset = true;
      }
      const changed = this.changed;
      this.changed = false;
      await this.opts.identity?.({ lease, reset, changed });
    } catch (err) {
      // The identity's own refusal (no privilege on the database now, a dropped principal)
      // comes before it touches the connection: the lease goes back as it was.
      if (err instanceof PgError) {
        lease.release();
        throw err;
      }
      lease.release(true);
      throw new PgError('connection_failure', 'could not start a turn on the data plane', {
        detail: err instanceof Error ? err.message : String(err),
      });
    }
    if (this.ended) {
      lease.release();
      throw new PgError('connection_failure', 'the session has ended');
    }
    this.lease = lease;
    return { lease, reset };
  }

  /**
   * Before a statement on the lease the session holds: inside a transaction block (status
   * 'T') the identity applied at the block's first turn cannot be applied again (a ROLLBACK
   * would undo a SET ROLE), only checked, so a revocation is seen at the block's next
   * statement. A failed block ('E') runs nothing but ROLLBACK, COMMIT (a rollback then) and
   * ROLLBACK TO SAVEPOINT, after which the block is 'T' and checked again.
   */
  recheck(): void {
    if (this.lease && this.status === 'T') this.opts.recheck?.();
  }

  /** The data plane's ReadyForQuery; `idle`: nothing else is on its way on the lease. */
  async ready(status: TransactionStatus, idle: boolean): Promise<void> {
    this.status = status;
    if (!idle || !this.lease) return;
    if (this.ddlPending && status !== 'E') {
      this.ddlPending = false;
      await this.opts.afterDdl?.(this.lease);
    }
    if (status === 'I') {
      this.ddlPending = false;
      const lease = this.lease;
      this.lease = null;
      lease.release();
    }
  }

  broken(): void {
    const lease = this.lease;
    this.lease = null;
    this.status = 'I';
    lease?.release(true);
  }

  /** The client session ended: its turn (and, upstream, its connection) ends. */
  end(): void {
    if (this.ended) return;
    this.ended = true;
    const lease = this.lease;
    this.lease = null;
    // Upstream, answers to the turn may still be on their way: the connection cannot serve anyone else.
    lease?.release(this.opts.plane.kind === 'upstream');
    this.opts.plane.endSession(this);
    this.opts.ended?.();
  }

  private ensure(): Promise<void> {
    let byDb = ensured.get(this.opts.plane);
    if (!byDb) ensured.set(this.opts.plane, (byDb = new Map()));
    const key = `${this.opts.database.tenantId}/${this.opts.database.databaseId}`;
    let p = byDb.get(key);
    if (!p) {
      p = this.opts.plane.ensureDatabase(this.opts.database);
      byDb.set(key, p);
      p.catch(() => byDb!.delete(key));
    }
    return p;
  }
}

/** PostgreSQL's syntax error for `sql`, its position mapped to the client's text. */
function syntaxErrorOf(pg: Awaited<ReturnType<typeof postgresParser>>, sql: string, position: (p: number) => number): PgError {
  try {
    pg.parseSync(sql);
  } catch (err) {
    const e = err as Error & { sqlDetails?: { cursorPosition?: number } };
    const at = e.sqlDetails?.cursorPosition;
    // cursorPosition counts bytes from 0; PostgreSQL's error position counts characters from 1.
    const p = at === undefined ? undefined : Array.from(Buffer.from(sql, 'utf8').subarray(0, at).toString('utf8')).length + 1;
    return new PgError('syntax_error', e.message, p === undefined ? {} : { position: position(p) });
  }
  return new PgError('syntax_error', 'syntax error');
}
