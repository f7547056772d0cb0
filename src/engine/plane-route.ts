import { parse, type AdminCommand, type Expr, type ParseLimits } from '../../grammar/index.js';
import { PgError } from '../errors/pg-error.js';
import type { AuthSource } from '../dataplane/classify.js';
import type { PlaneSession, PreparedSql } from '../dataplane/forwarder.js';
import type { Forwarded, PlaneRoute, PlaneTurn, SplitMessage } from '../wire/handler.js';
import { splitStatements } from './statement-split.js';
import type { TransactionStatus } from '../wire/messages.js';
import { parseSql, postgresParser, statementsOf, type ParsedStatement } from '../dataplane/pg-parser.js';
import { isAuthVariable, type AuthValues } from './auth-vars.js';
import { recognise, type CatalogQuery } from './psql-catalog.js';
import type { Lease } from '../dataplane/types.js';
import { randomUUID } from 'node:crypto';
import { failpoint } from './failpoint.js';

/**
 * Routing between the admin language and the data plane (SPEC §10 "Routing"): a text the
 * admin grammar parses is the admin language, answered by portcullis; everything else is
 * SQL for the session's database in the data plane.
 *
 * Statements both sides understand (SET, SHOW, simple SELECTs, BEGIN / COMMIT / ROLLBACK,
 * DISCARD, DEALLOCATE) are the admin language's while the data plane is idle, and the data
 * plane's while a data-plane transaction block is open or when they share a message with
 * SQL. SET / RESET / SHOW of a setting the session does not have are the data plane's. A SELECT the admin grammar parses but only PostgreSQL can answer (FROM a table,
 * `now()`) is SQL. Catalog statements (CREATE USER, GRANT, SHOW USERS, ...) and SQL may
 * share one transaction block and one message: a BEGIN the session answered opens the data
 * plane's block at its first SQL (handed over while the session's block changed nothing, one
 * transaction of both languages once it did); an admin statement inside the data plane's
 * block runs in a catalog block the session opens over it; a message of both languages is
 * split into its statements (SplitMessage), in a transaction of their own. Such a block's
 * COMMIT is the commit protocol of docs/data-plane.md (commitMixed, ready).
 */

/** What the session offers the router. */
export interface RoutedSession {
  readonly parseLimits: ParseLimits;
  /** The admin side's transaction: none, a block (with or without catalog changes), failed. */
  adminTransaction(): 'none' | 'block' | 'changed' | 'failed';
  /** Ends an admin block without catalog changes: the data plane's block takes over from here. */
  handOverBlock(): void;
  /** This session's `$auth` values as of now. */
  auth(): AuthValues;
  /** Who the session acts as (changes with SET SESSION AUTHORIZATION). */
  identityKey(): string;
  /** A setting the session itself has (SET / SHOW of others are the data plane's). */
  knowsSetting(name: string): boolean;
  /** The SELECT that answers psql's \du or \l from the catalog, as this session may see it (psql-catalog.ts). */
  answerCatalog(q: CatalogQuery): string;
  /** The session's block and the data plane's are one transaction (both languages ran in it). */
  mixed(): boolean;
  /** SQL joins the session's block that changed the catalog: from here the two are one transaction. */
  joinMixed(): void;
  /** An admin statement inside the data plane's block: the session opens its block over it, one transaction with it. */
  openOverPlaneBlock(): void;
  /** The session's block has catalog changes. */
  blockChanged(): boolean;
  /** COMMIT of a mixed block, steps 1 and 2: the block's policies and outcome row on `lease`, then the catalog's prepare record. */
  prepareMixed(lease: Lease, txid: string): Promise<void>;
  /** Whether the block that wrote outcome row `txid` committed (on the lease, after its COMMIT). */
  outcome(lease: Lease, txid: string): Promise<boolean>;
  /** Step 4: the catalog's decision, as the data plane's COMMIT came out; the session's block ends. */
  decideMixed(txid: string, committed: boolean): Promise<void>;
  /** A mixed block ends without the protocol (ROLLBACK, a failed block, nothing in the catalog changed). */
  endMixed(committed: boolean): void;
}

type Kind = 'catalog' | 'session' | 'plane';

/** Admin statements that change who the session is (refused inside a data-plane block). */
const IDENTITY_CHANGES = new Set<AdminCommand['type']>(['SetSessionAuthorization', 'SetSessionAuthorizationJwt', 'SetSessionAuthorizationApiKey', 'SetTenant']);

const SESSION_STATEMENTS = new Set<AdminCommand['type']>([
  'Transaction',
  'SetVariable',
  'ResetVariable',
  'ShowVariable',
  'SetTransactionMode',
  'Discard',
  'Deallocate',
  'Close',
  'Unlisten',
  'Listen',
]);

/**
 * Functions the admin language's SELECT answers itself (src/engine/select.ts). Not
 * current_schema(): the admin language answers NULL (it has no schemas), but with a data
 * plane the session's tables live in PostgreSQL's `public`, and a driver that asks
 * (SQLAlchemy, at connect) reflects and lists tables of the schema it was told.
 */
const ADMIN_FUNCTIONS = new Set(['current_user', 'session_user', 'current_database', 'version', 'pg_advisory_unlock_all']);

function answersItself(e: Expr): boolean {
  switch (e.kind) {
    case 'value':
    case 'auth':
      return true;
    case 'function':
      return ADMIN_FUNCTIONS.has(e.name);
    case 'cast':
      return answersItself(e.expr);
  }
}

function kindOf(cmd: AdminCommand, knowsSetting: (name: string) => boolean): Kind {
  if (cmd.type === 'Select') return cmd.from === null && cmd.items.every((i) => answersItself(i.expr)) ? 'session' : 'plane';
  // Settings the session has are its own; any other (enable_seqscan, role, auth.x, myapp.x)
  // is the data plane's, where the forwarder refuses the reserved ones (42501).
  if ((cmd.type === 'SetVariable' || cmd.type === 'ResetVariable' || cmd.type === 'ShowVariable') && cmd.name !== null && cmd.name !== 'all' && !knowsSetting(cmd.name)) return 'plane';
  return SESSION_STATEMENTS.has(cmd.type) ? 'session' : 'catalog';
}

/**
 * PostgreSQL statements the admin language has nothing like (none of its statements starts
 * with INSERT, UPDATE, DELETE, MERGE, COPY, or CREATE / ALTER of a table, index or view), and
 * SELECTs with a FROM clause, which are the data plane's whichever way the admin grammar
 * takes them (kindOf). A text made only of these goes to the data plane without the admin
 * grammar: its failure (by exception) cost more than PostgreSQL's whole parse, and this is
 * the SQL an application sends most.
 */
const SQL_ONLY = new Set(['InsertStmt', 'UpdateStmt', 'DeleteStmt', 'MergeStmt', 'CopyStmt', 'CreateStmt', 'CreateTableAsStmt', 'IndexStmt', 'ViewStmt', 'AlterTableStmt']);

function sqlOnly(s: ParsedStatement): boolean {
  return SQL_ONLY.has(s.kind) || (s.kind === 'SelectStmt' && s.node.fromClause !== undefined);
}

/** PostgreSQL statements that are also admin statements: a typo in the admin form is reported as the admin grammar's syntax error. */
const ADMIN_LOOKALIKES = new Set(['CreateRoleStmt', 'AlterRoleStmt', 'DropRoleStmt', 'GrantStmt', 'GrantRoleStmt', 'CreatePolicyStmt', 'DropStmt', 'CreatedbStmt', 'DropdbStmt']);

export class SessionPlaneRoute implements PlaneRoute {
  private identity: string;
  private readonly knows = (name: string) => this.session.knowsSetting(name);

  constructor(
    private readonly session: RoutedSession,
    readonly plane: PlaneSession,
  ) {
    this.identity = session.identityKey();
  }

  get epoch(): number {
    this.noticeIdentity();
    return this.plane.epoch;
  }

  get status(): TransactionStatus {
    return this.plane.status;
  }

  routeQuery(sql: string): Promise<Forwarded | SplitMessage | null> {
    return this.route(sql, false);
  }

  routeParse(sql: string): Promise<Forwarded | null> {
    return this.route(sql, true) as Promise<Forwarded | null>;
  }

  async acquire(): Promise<PlaneTurn> {
    this.noticeIdentity();
    const { lease, reset } = await this.plane.acquire();
    return { channel: lease, reset };
  }

  /** An admin statement prepared earlier runs now: inside a data-plane transaction block, it joins it. */
  checkAdmin(cmd: AdminCommand): void {
    if (this.plane.status !== 'I' && kindOf(cmd, this.knows) === 'catalog') this.adminInPlaneBlock([cmd]);
  }

  joinBlock(): boolean {
    const join = this.blockToJoin();
    if (join === 'hand-over') this.session.handOverBlock();
    else if (join === 'mixed') this.session.joinMixed();
    return join !== 'none';
  }

  /**
   * How SQL now joins a block the session opened (its BEGIN answered already): the block
   * is handed over to the data plane while it changed nothing in the catalog, and becomes
   * one transaction of both languages once it did. Throws when the block failed.
   */
  private blockToJoin(): 'none' | 'hand-over' | 'mixed' {
    if (this.session.mixed()) return 'none';
    const admin = this.session.adminTransaction();
    if (admin === 'failed') throw failedBlock();
    if (admin === 'changed') return 'mixed';
    return admin === 'block' ? 'hand-over' : 'none';
  }

  /** An admin statement while the data plane's block is open: the session's block opens over it (the two commit together). */
  private adminInPlaneBlock(commands: AdminCommand[]): void {
    if (this.plane.status === 'E' || this.session.adminTransaction() === 'failed') throw failedBlock();
    // The block runs as the identity its first turn applied (the gate re-checks, never
    // re-applies, inside it): who the session is cannot change until it ends.
    if (commands.some((c) => IDENTITY_CHANGES.has(c.type))) {
      throw new PgError('feature_not_supported', 'SET SESSION AUTHORIZATION and SET TENANT cannot run inside a data-plane transaction block', {
        hint: 'COMMIT or ROLLBACK first, then change who the session is.',
      });
    }
    if (!this.session.mixed()) this.session.openOverPlaneBlock();
  }

  /**
   * COMMIT of a block of both languages (docs/data-plane.md "The commit protocol"): before
   * the data plane's COMMIT goes out, the block's policies and its outcome row go on inside
   * it and the catalog's prepare record is durable (`before`); at the COMMIT's
   * ReadyForQuery (`ready`), the outcome row says how the data plane's COMMIT came out,
   * and the catalog decides the same way before the client hears of it.
   */
  private commitMixed(sql: string): Forwarded {
    const f: Forwarded = { sql, begin: false, barrier: true, position: (p) => p };
    if (this.plane.status !== 'T' || this.session.adminTransaction() === 'failed' || !this.session.blockChanged()) {
      // PostgreSQL's COMMIT of a failed block is a ROLLBACK; an unchanged catalog has nothing to commit.
      const committed = this.plane.status === 'T' && this.session.adminTransaction() !== 'failed';
      this.session.endMixed(committed);
      return f;
    }
    f.before = async () => {
      const lease = this.plane.held;
      if (!lease) throw new PgError('connection_failure', 'the data plane connection of this transaction block is gone');
      const txid = randomUUID();
      try {
        await this.session.prepareMixed(lease, txid);
      } catch (err) {
        // Nothing committed anywhere: the data plane's block is rolled back, and the turn ends.
        this.session.endMixed(false);
        const rolledBack = await lease.admin.exec('ROLLBACK').then(
          () => true,
          () => false,
        );
        // A connection that could not even roll back is not given back to be used again.
        if (rolledBack) await this.plane.ready('I', true);
        else this.plane.broken();
        throw err;
      }
      this.pendingCommit = txid;
    };
    return f;
  }

  /** A mixed block's COMMIT is on its way (its txid). */
  private pendingCommit: string | null = null;

  ddlExecuted(): void {
    this.plane.noteDdl();
  }

  recheck(): void {
    this.plane.recheck();
  }

  async ready(status: TransactionStatus, idle: boolean): Promise<void> {
    const txid = this.pendingCommit;
    if (txid === null || !idle) {
      // The data plane's block ended some other way than the block's COMMIT or ROLLBACK:
      // the catalog's half of it goes too (nothing of it was committed).
      if (status === 'I' && this.session.mixed()) this.session.endMixed(false);
      return this.plane.ready(status, idle);
    }
    this.pendingCommit = null;
    // Step 4: the outcome row, read on the same connection, is the data plane's answer
    // whatever the COMMIT reported; the catalog follows it.
    const lease = this.plane.held;
    const committed = status === 'I' && lease !== null && (await this.session.outcome(lease, txid));
    failpoint('mixed.plane-committed');
    await this.plane.ready(status, idle);
    await this.session.decideMixed(txid, committed);
  }

  broken(): void {
    // A commit on its way: its outcome is the data plane's to say, at the next start (recovery).
    this.pendingCommit = null;
    this.plane.broken();
  }

  /** SET SESSION AUTHORIZATION (and its RESET) changes what the data plane must run as. */
  private noticeIdentity(): void {
    const now = this.session.identityKey();
    if (now !== this.identity) {
      this.identity = now;
      this.plane.identityChanged();
    }
  }

  private async route(sql: string, parseMessage: boolean): Promise<Forwarded | SplitMessage | null> {
    this.noticeIdentity();
    // PostgreSQL's parse of the text as written (a `$auth` reference or the admin language
    // fails it): when it shows SQL only, the admin grammar is not asked. A text past
    // max_statement_bytes goes to the grammar, which refuses it (54000) before any parse.
    const parsed = Buffer.byteLength(sql) <= this.session.parseLimits.maxStatementBytes ? parseSql(await postgresParser(), sql) : null;
    const plain = parsed !== null && parsed.stmts !== undefined && parsed.stmts.length > 0 && statementsOf(parsed).every(sqlOnly);
    let adminError: PgError | null = null;
    let commands: AdminCommand[] | null = null;
    if (!plain) {
      try {
        commands = parse(sql, this.session.parseLimits).map((s) => s.command);
      } catch (err) {
        // Statement limits (54000, 54001) stand for SQL too; a syntax error means "not admin".
        if (!(err instanceof PgError) || err.state !== 'syntax_error') throw err;
        adminError = err;
      }
    }
    const planeIdle = this.plane.status === 'I';
    const kinds = commands?.map((c) => kindOf(c, this.knows)) ?? [];
    // Inside the data plane's block, admin statements with a COMMIT or ROLLBACK in one
    // message are split too: the block's end must be routed on its own (commitMixed).
    const endsBlock = !planeIdle && commands !== null && kinds.includes('catalog') && commands.some((c) => c.type === 'Transaction');
    if (!parseMessage && (adminError !== null || endsBlock || (kinds.includes('catalog') && kinds.includes('plane')))) {
      const split = await this.split(sql, endsBlock);
      if (split) return split;
    }
    if (commands) {
      if (commands.length === 0) return null;
      if (planeIdle && !kinds.includes('plane')) {
        // The data plane's own session state goes with DISCARD ALL too (at the next turn).
        if (commands.some((c) => c.type === 'Discard' && c.what === 'ALL')) this.plane.resetConnection();
        return null;
      }
      if (this.session.mixed() && parseMessage && commands.some((c) => c.type === 'Transaction') && this.session.blockChanged()) {
        // Its commit protocol runs around a simple Query's COMMIT (commitMixed).
        throw new PgError('feature_not_supported', 'a transaction block of both languages ends with a simple Query (COMMIT or ROLLBACK), not a prepared statement', {
          hint: 'Send COMMIT without parameters (node-postgres: client.query("COMMIT")).',
        });
      }
      if (this.session.mixed() && !parseMessage && commands.length === 1 && commands[0]!.type === 'Transaction') {
        const action = commands[0]!.action;
        if (action === 'commit') return this.commitMixed(sql);
        if (action === 'rollback') this.session.endMixed(false);
      }
      if (kinds.includes('catalog')) {
        if (planeIdle) throw mixed();
        if (kinds.includes('plane')) throw mixed();
        // Admin statements inside the data plane's block: the session runs them in its
        // block over it, and the two commit together.
        if (parseMessage) return null;
        this.adminInPlaneBlock(commands);
        return null;
      }
    }
    if (this.session.mixed() && this.session.blockChanged() && parsed && statementsOf(parsed).some(rollsBackToSavepoint)) {
      // The catalog's changes have no savepoints: rolling back to one would undo the data
      // plane's part of the block and keep the catalog's.
      throw new PgError('feature_not_supported', 'ROLLBACK TO SAVEPOINT cannot undo admin statements: this block changed the catalog', {
        hint: 'ROLLBACK the whole transaction.',
      });
    }
    const join = this.blockToJoin();
    const begin = join !== 'none';
    // psql's \du and \l would list the data plane's own roles and databases: the catalog
    // answers them (the text test only spares other SQL a second parse).
    let reuse = plain ? parsed : undefined;
    if ((plain || adminError) && (sql.includes('pg_roles') || sql.includes('pg_database'))) {
      const q = recognise(await postgresParser(), sql);
      if (q) {
        sql = this.session.answerCatalog(q);
        reuse = undefined;
      }
    }
    const p = await this.plane.prepare(sql, this.auth(), reuse);
    if ('syntaxError' in p) throw adminError ?? p.syntaxError;
    if (!plain) this.checkStatements(p, adminError, parseMessage);
    if (join === 'hand-over') this.session.handOverBlock();
    else if (join === 'mixed') this.session.joinMixed();
    const barrier = p.statements.some((s) => s.ddl);
    // A prepared statement is DDL when a portal of it runs (ddlExecuted).
    if (barrier && !parseMessage) this.plane.noteDdl();
    return { sql: p.sql, begin, barrier, position: p.position };
  }

  /**
   * A message of both languages (admin statements and SQL): its statements, to be routed one
   * by one (SplitMessage); null when it is one language. Outside any transaction block the
   * pieces run in a transaction of their own, as a message of several statements does in
   * PostgreSQL; a message with its own BEGIN, COMMIT or ROLLBACK runs as written.
   */
  private async split(sql: string, always = false): Promise<SplitMessage | null> {
    // Without a `;` there is one statement (the cheap test spares single statements the lexer).
    if (!sql.includes(';') || Buffer.byteLength(sql) > this.session.parseLimits.maxStatementBytes) return null;
    const pieces = splitStatements(await postgresParser(), sql);
    if (pieces.length < 2) return null;
    let admin = false;
    let other = false;
    let control = false;
    for (const p of pieces) {
      let commands: AdminCommand[] | null = null;
      try {
        commands = parse(p.text, this.session.parseLimits).map((st) => st.command);
      } catch (err) {
        if (!(err instanceof PgError) || err.state !== 'syntax_error') throw err;
      }
      const kinds = commands?.map((c) => kindOf(c, this.knows)) ?? null;
      if (kinds === null || kinds.includes('plane')) other = true;
      if (kinds?.includes('catalog')) admin = true;
      if (commands?.some((c) => c.type === 'Transaction')) control = true;
    }
    if (!always && (!admin || !other)) return null;
    const implicit = !control && this.plane.status === 'I' && this.session.adminTransaction() === 'none' && !this.session.mixed();
    return { pieces: pieces.map((p) => p.text), implicit };
  }

  private checkStatements(p: PreparedSql, adminError: PgError | null, parseMessage: boolean): void {
    if (adminError) {
      const lookalike = p.statements.find((s) => ADMIN_LOOKALIKES.has(s.kind));
      // `CREATE USER bob PASSWORD 'x'` (no WITH) is PostgreSQL's CREATE ROLE too: the admin
      // grammar's error says what the admin statement needs.
      if (lookalike && p.statements.length === 1) throw adminError;
    }
    if (p.statements.some((s) => s.resetsIdentity)) {
      // PostgreSQL refuses it in any transaction block, implicit ones (several statements in
      // one message, a pipeline) included; alone and outside a block, the session answers it.
      throw new PgError('active_sql_transaction', 'DISCARD ALL cannot run inside a transaction block');
    }
    if (p.statements.length > 1 && !parseMessage) {
      // An admin statement in a message of SQL: the pieces, as PostgreSQL's parser cut them.
      const bytes = Buffer.from(p.sql, 'utf8');
      for (const s of p.statements) {
        const piece = bytes.subarray(s.start, s.end).toString('utf8');
        let kinds: Kind[];
        try {
          kinds = parse(piece, this.session.parseLimits).map((st) => kindOf(st.command, this.knows));
        } catch {
          continue;
        }
        if (kinds.includes('catalog')) throw mixed();
      }
    }
  }

  private auth(): AuthSource {
    const values = this.session.auth();
    return {
      variable: (name) => (isAuthVariable(name) ? values[name] : undefined),
      claim: (name) => values.claims[name],
    };
  }
}

function mixed(): PgError {
  // Only where a message cannot be split into its statements: a Parse (one statement by
  // definition), or a text PostgreSQL's lexer refuses or too long to split.
  return new PgError('feature_not_supported', 'admin statements and SQL for the data plane cannot share one prepared statement', {
    detail: 'A simple Query of both languages runs statement by statement, in one transaction; a Parse takes one statement of one language.',
    hint: 'Send the statements as a simple Query, or one at a time.',
  });
}

function rollsBackToSavepoint(s: ParsedStatement): boolean {
  return s.kind === 'TransactionStmt' && s.node.kind === 'TRANS_STMT_ROLLBACK_TO';
}

function failedBlock(): PgError {
  return new PgError('in_failed_sql_transaction', 'current transaction is aborted, commands ignored until end of transaction block', {
    hint: 'ROLLBACK ends the transaction.',
  });
}
