import { parse, redactStatement, type AdminCommand, type Statement } from '../../grammar/index.js';
import type { CatalogReader } from '../catalog/catalog.js';
import { DEFAULT_DATABASE, type ApiKey, type User } from '../catalog/model.js';
import { CatalogTransaction } from '../catalog/transaction.js';
import { PgError } from '../errors/pg-error.js';
import type {
  Column,
  Execution,
  NoticeSink,
  PeerInfo,
  PreparedStatement,
  QuerySession,
  ResultSink,
  StartupInfo,
} from '../wire/handler.js';
import type { NoticeFields, TransactionStatus } from '../wire/messages.js';
import type { Engine } from './engine.js';
import { describeColumns, dispatch, importRulesOf, isWrite, objectOf, paramTypesOf, statementDatabases } from './dispatch.js';
import type { EnginePort, SessionPort, StatementContext } from './statement-context.js';
import { commandDone, emptyStatement } from './results.js';
import { limitSettings, Settings, type SessionValue } from './settings.js';
import { ImportPlan } from './imports.js';
import { accessibleDatabases } from './privileges.js';
import { effectiveOf } from './effective.js';
import { passwordAuthValues, type AuthValues } from './auth-vars.js';
import type { JwtPrincipal } from './jwt-principal.js';
import { TokenRejected } from '../auth/jwt.js';
import { CredentialRefused, expiryNotice, keyPrincipal, type LoginMethod, type Principal } from './credentials.js';
import type { AuditEntry } from '../audit/audit-record.js';
import { refusal } from './data-plane-sql.js';
import type { PlaneSession } from '../dataplane/forwarder.js';
import { SessionPlaneRoute } from './plane-route.js';
import { answerSql } from './psql-catalog.js';
import type { Lease } from '../dataplane/types.js';
import { failpoint } from './failpoint.js';

/** The data plane's part of a mixed block's commit (the gate's, wired in server.ts). */
export interface BlockCommitHooks {
  /** Step 1: inside the block on `lease`, the policies `view` implies, and the outcome row `txid`. */
  prepareBlock(lease: Lease, view: CatalogReader, txid: string): Promise<void>;
  /** Whether the block that wrote outcome row `txid` committed. */
  outcome(lease: Lease, txid: string): Promise<boolean>;
}

/** A credential used outside its databases: 42501 DATABASE_NOT_AUTHORIZED. */
export function databaseNotAuthorized(db: string, severity: 'ERROR' | 'FATAL' = 'ERROR', position?: number): PgError {
  return new PgError('insufficient_privilege', `DATABASE_NOT_AUTHORIZED: this credential does not reach database "${db}"`, {
    severity,
    detail: 'The API key was created for other databases.',
    hint: 'Use a key created WITH DATABASES including it, or change the key with ALTER API KEY ... SET DATABASES.',
    ...(position === undefined ? {} : { position }),
  });
}

function checkStatementDatabases(cmd: AdminCommand, actor: User, view: CatalogReader, now: number): void {
  const names = statementDatabases(cmd);
  if (names.length === 0) return;
  const reach = accessibleDatabases(actor, view, now);
  for (const n of names) if (!reach.includes(n.value)) throw databaseNotAuthorized(n.value, 'ERROR', n.position);
}

/**
 * Whom a session's statements act as: its login's own principal, a user SET SESSION
 * AUTHORIZATION chose, the principal SET SESSION AUTHORIZATION JWT's claims yield, or an
 * API key SET SESSION AUTHORIZATION API KEY chose (by id: looked up again at every
 * statement and every data-plane turn, as a key login's is).
 */
export type Acting =
  | { kind: 'login' }
  | { kind: 'user'; userId: number }
  | { kind: 'token'; principal: JwtPrincipal }
  | { kind: 'apiKey'; keyId: number; name: string };

/** Transaction state, as PostgreSQL's: none, the implicit one of a statement or message, a block, a failed block. */
type Mode = 'none' | 'implicit' | 'block' | 'failed';

class EnginePrepared implements PreparedStatement {
  constructor(
    readonly statement: Statement | null,
    /** The statement's text (for the audit trail, redacted there). */
    readonly text: string,
    readonly paramTypes: number[],
    readonly columns: Column[] | null,
  ) {}
}

/**
 * One logged-in session: who it is, its settings, its transaction. It serves the wire
 * layer through QuerySession; HTTP and the CLI will drive the same methods.
 */
export class EngineSession implements QuerySession {
  readonly settings: Settings;
  private tx: CatalogTransaction | null = null;
  private mode: Mode = 'none';
  private busy = false;
  private cancelRequested = false;
  private closed = false;
  /** Audit records of this transaction's changes, written when it commits. */
  private auditPending: AuditEntry[] = [];

  private constructor(
    readonly engine: Engine,
    /** Who logged in, and with what (re-derived at each statement for API keys). */
    readonly login: Principal,
    readonly database: string,
    readonly peer: PeerInfo,
  ) {
    this.settings = new Settings({ scram_iterations: String(engine.scramIterations), ...limitSettings(engine.parseLimits) });
    // Session state, not settings: transactional as SET is, and reset by DISCARD ALL.
    this.actingAs = this.settings.sessionValue<Acting>({ kind: 'login' });
    this.nameTenant = this.settings.sessionValue<number | null>(null);
    this.sessionPort = sessionPort(this);
    this.enginePort = enginePort(engine);
  }

  /** Whom statements act as: changed by actAs and actAsToken only (they keep session_authorization in step). */
  private readonly actingAs: SessionValue<Acting>;
  /** SET TENANT: the tenant a superuser's names resolve in (null: its own). */
  private readonly nameTenant: SessionValue<number | null>;

  /** What statements see of this session and of the engine (made once, shared by every statement). */
  private readonly sessionPort: SessionPort;
  private readonly enginePort: EnginePort;

  get sessionUserId(): number {
    return this.login.user.id;
  }

  get sessionUserName(): string {
    return this.login.user.name;
  }

  get method(): LoginMethod {
    return this.login.method;
  }

  /** After authentication: the startup database, connection limits and startup settings. */
  static open(engine: Engine, login: Principal, startup: StartupInfo, peer: PeerInfo): EngineSession {
    const user = login.user;
    // psql and libpq send the user name as the database when none is given (as PostgreSQL's
    // default): that, or no database, means the tenant's `default` database.
    const requested = startup.database === '' || startup.database === startup.user || startup.database === user.name ? DEFAULT_DATABASE : startup.database;
    if (!engine.catalog.databaseByName(user.tenantId, requested)) {
      throw new PgError('invalid_catalog_name', `database "${requested}" does not exist`, { severity: 'FATAL' });
    }
    if (user.limits?.databaseIds && !accessibleDatabases(user, engine.catalog, engine.clock()).includes(requested)) {
      throw databaseNotAuthorized(requested, 'FATAL');
    }
    if (!accessibleDatabases(user, engine.catalog, engine.clock()).includes(requested)) {
      throw new PgError('insufficient_privilege', `permission denied for database "${requested}"`, {
        severity: 'FATAL',
        detail: `${user.name} has role ${user.role} and no privilege on database "${requested}".`,
      });
    }
    if (engine.totalSessions() >= engine.maxConnections) {
      throw new PgError('too_many_connections', 'sorry, too many clients already', { severity: 'FATAL' });
    }
    if (user.connectionLimit >= 0 && engine.sessionCount(user.id) >= user.connectionLimit) {
      throw new PgError('too_many_connections', `too many connections for user "${user.name}"`, {
        severity: 'FATAL',
        detail: `The user's CONNECTION LIMIT is ${user.connectionLimit}.`,
      });
    }
    const s = new EngineSession(engine, login, requested, peer);
    for (const [name, value] of startupSettings(startup.params)) {
      try {
        s.settings.set(name, value);
      } catch (err) {
        const e = err as PgError;
        throw new PgError(e.state, e.message, { severity: 'FATAL', detail: e.detail, hint: e.hint });
      }
    }
    s.settings.setInternal('is_superuser', user.role === 'superuser' ? 'on' : 'off');
    s.settings.setInternal('session_authorization', user.name);
    s.settings.takeChanges();
    s.settings.markStartup();
    engine.sessionOpened(user.id);
    return s;
  }

  /**
   * The session's user as of now (this transaction's view), with its effective built-in
   * role (a live time-bound role grant raises it), or a FATAL if it was dropped.
   */
  actor(view: CatalogReader = this.view(), now = this.engine.clock()): User {
    const token = this.tokenPrincipal();
    if (token) return token.user;
    const a = this.acting;
    // Keys and tokens act through their credential; passwords and certificates as the user.
    const acting = a.kind === 'login' && (this.method === 'api_key' || this.method === 'jwt');
    const u = a.kind === 'apiKey' ? actingKeyActor(a, view, now) : acting ? this.credentialActor(view, now) : view.userById(this.currentUserId);
    if (!u) {
      throw new PgError('invalid_authorization_specification', `user "${this.sessionUserName}" no longer exists`, {
        severity: 'FATAL',
      });
    }
    // A login user set NOLOGIN ends its open sessions at their next statement, as dropping
    // it does (PostgreSQL only refuses new logins); a key's or token's owner is checked by
    // credentialActor.
    if (this.method === 'password' || this.method === 'certificate') {
      const login = this.currentUserId === this.sessionUserId ? u : view.userById(this.sessionUserId);
      if (login && !login.login) {
        throw new PgError('invalid_authorization_specification', `user "${login.name}" may no longer log in`, {
          severity: 'FATAL',
          detail: 'The user was set NOLOGIN while this session was open.',
        });
      }
    }
    const role = effectiveOf(u, view, now).role;
    return role === u.role ? u : { ...u, role };
  }

  /**
   * The principal of an API-key or token login as of now: a key is looked up again, so
   * dropping it (or its owner, or disabling the owner) ends the session's access; a token
   * is checked again against its provider and the clock (TokenLogin), so its expiry, and
   * a provider dropped, disabled or altered so that the token would be refused, end it too.
   */
  private credentialActor(view: CatalogReader, now: number): User {
    if (this.login.token) return this.currentToken(view, now).user;
    if (this.login.apiKeyId === null) return this.login.user;
    const key = view.apiKeyById(this.login.apiKeyId);
    try {
      if (!key) throw new CredentialRefused('no_longer_exists', 'the API key was dropped');
      return keyPrincipal(key, view, now).user;
    } catch (err) {
      if (!(err instanceof CredentialRefused)) throw err;
      throw new PgError('invalid_authorization_specification', 'the API key of this session no longer grants access', { severity: 'FATAL' });
    }
  }

  /**
   * A token login's principal as of now, or a FATAL (28000, as for a dropped key) once a
   * login with the token would be refused. Only its expiry is explained: the holder can
   * read that from the token, while the other reasons (the provider's configuration) are
   * no more the client's business than a login failure's.
   */
  private currentToken(view: CatalogReader, now: number): JwtPrincipal {
    const t = this.login.token!;
    try {
      return t.current(view, this.engine.jwks, now, this.engine.tokenPolicy);
    } catch (err) {
      if (!(err instanceof TokenRejected)) throw err;
      const expired = now >= t.until;
      throw new PgError('invalid_authorization_specification', 'the token of this session no longer grants access', {
        severity: 'FATAL',
        ...(expired ? { detail: `The token expired at ${new Date(t.expiry).toISOString()}.`, hint: 'Log in again with a new token.' } : {}),
      });
    }
  }

  /** Whom statements act as (SET SESSION AUTHORIZATION [JWT]; a ROLLBACK undoes it, DISCARD ALL resets it). */
  get acting(): Acting {
    return this.actingAs.get();
  }

  /** The user statements run as: the login's, or the one SET SESSION AUTHORIZATION chose. */
  get currentUserId(): number {
    const a = this.acting;
    return a.kind === 'user' ? a.userId : this.sessionUserId;
  }

  private tokenPrincipal(): JwtPrincipal | undefined {
    const a = this.acting;
    return a.kind === 'token' ? a.principal : undefined;
  }

  /** SET SESSION AUTHORIZATION JWT ...: act as the principal a token with these claims yields. */
  actAsToken(p: JwtPrincipal): void {
    this.actingAs.set({ kind: 'token', principal: p });
    this.settings.setInternal('session_authorization', p.user.name);
    this.settings.setInternal('is_superuser', 'off');
  }

  /** This session's $auth.* variables: from the token principal, or from the user. */
  authValues(view: CatalogReader, now: number): AuthValues {
    const token = this.tokenPrincipal();
    if (token) return token.auth;
    // As a login with the key: its narrowed principal, method api_key, the key's scopes.
    if (this.acting.kind === 'apiKey') return passwordAuthValues(this.actor(view, now), view, 'api_key', now);
    if (this.currentUserId !== this.sessionUserId || this.method === 'password') return passwordAuthValues(this.actor(view, now), view, 'password', now);
    if (this.method === 'jwt') return this.login.token ? this.currentToken(view, now).auth : this.login.auth;
    // An API key's scopes come from the key as of now (its actor is re-derived each statement).
    return passwordAuthValues(this.actor(view, now), view, this.method, now);
  }

  /**
   * SET SESSION AUTHORIZATION API KEY: act as a login with the key would. `owner` is the
   * key's principal as of now with its effective role (its owner narrowed by the key), for
   * the settings psql shows.
   */
  actAsKey(key: ApiKey, owner: User): void {
    this.actingAs.set({ kind: 'apiKey', keyId: key.id, name: key.name });
    this.settings.setInternal('session_authorization', owner.name);
    this.settings.setInternal('is_superuser', owner.role === 'superuser' ? 'on' : 'off');
  }

  /** SET SESSION AUTHORIZATION: transactional, like every setting (a ROLLBACK undoes it). */
  actAs(user: User | null): void {
    const target = user ?? this.engine.catalog.userById(this.sessionUserId);
    this.actingAs.set(user ? { kind: 'user', userId: user.id } : { kind: 'login' });
    if (target) {
      this.settings.setInternal('session_authorization', target.name);
      this.settings.setInternal('is_superuser', target.role === 'superuser' ? 'on' : 'off');
    }
  }

  view(): CatalogReader {
    return this.tx ?? this.engine.catalog;
  }

  /** SET TENANT: the tenant a superuser's names resolve in (null: its own). */
  get nameTenantId(): number | null {
    return this.nameTenant.get();
  }

  resolveNamesIn(tenantId: number | null): void {
    this.nameTenant.set(tenantId);
  }

  // ---- QuerySession ----------------------------------------------------------------

  loginNotices(): NoticeFields[] {
    const text = expiryNotice(this.login, this.engine.clock());
    return text ? [{ severity: 'NOTICE', code: '00000', message: text }] : [];
  }

  initialParameters(): [string, string][] {
    return this.settings.reported();
  }

  takeParameterChanges(): [string, string][] {
    return this.settings.takeChanges();
  }

  txStatus(): TransactionStatus {
    if (this.mode === 'none' && this.dataPlane) return this.dataPlane.status;
    return this.mode === 'block' ? 'T' : this.mode === 'failed' ? 'E' : 'I';
  }

  // ---- the data plane ----------------------------------------------------------------

  /** Where SQL that is not the admin language goes (plane-route.ts); absent with --data-plane off. */
  dataPlane?: SessionPlaneRoute;

  /**
   * The session's transaction block and the data plane's are one transaction: admin
   * statements and SQL both ran in it, and its COMMIT is the commit protocol of
   * docs/data-plane.md (plane-route.ts drives it; the catalog's side is here).
   */
  private mixed = false;

  /** Gives the session its data plane (server.ts, right after login); `commit`: the gate's part of the commit protocol. */
  attachDataPlane(plane: PlaneSession, commit?: BlockCommitHooks): void {
    const session = this;
    this.dataPlane = new SessionPlaneRoute(
      {
        parseLimits: this.engine.parseLimits,
        adminTransaction: () => (this.mode === 'failed' ? 'failed' : this.mode !== 'block' ? 'none' : (this.tx?.mutations.length ?? 0) > 0 ? 'changed' : 'block'),
        handOverBlock: () => {
          if (this.mode === 'block') this.endTx(true);
        },
        mixed: () => this.mixed,
        joinMixed: () => {
          if (this.mode === 'block' || this.mode === 'failed') this.mixed = true;
        },
        openOverPlaneBlock: () => {
          if (this.mode !== 'none') return;
          this.beginTx('block');
          this.mixed = true;
        },
        blockChanged: () => this.tx?.dirty ?? false,
        prepareMixed: async (lease, txid) => {
          const tx = this.tx!;
          if (!commit) throw new PgError('feature_not_supported', 'this data plane does not take part in the catalog\'s commits');
          await commit.prepareBlock(lease, tx, txid);
          failpoint('mixed.plane-prepared');
          await this.engine.prepareCommit(tx, txid, plane.database.databaseId);
          failpoint('mixed.catalog-prepared');
        },
        outcome: (lease, txid) => commit!.outcome(lease, txid),
        decideMixed: async (txid, committed) => {
          const tx = this.tx;
          const audit = this.auditPending;
          this.endTx(committed);
          await this.engine.decideCommit(txid, committed, tx ?? undefined, audit);
          failpoint('mixed.decided');
        },
        endMixed: (committed) => this.endTx(committed),
        auth: () => session.authValues(session.view(), session.engine.clock()),
        identityKey: () => actingKey(session.acting),
        knowsSetting: (name) => session.settings.has(name),
        answerCatalog: (q) => {
          const view = session.view();
          const now = session.engine.clock();
          return answerSql(q, session.actor(view, now), view, now);
        },
      },
      plane,
    );
  }

  async simpleQuery(sql: string, out: ResultSink): Promise<void> {
    let statements: readonly Statement[];
    try {
      statements = parse(sql, this.engine.parseLimits);
    } catch (err) {
      // A syntax error anywhere in the message runs none of it and, as in PostgreSQL, aborts an
      // open transaction block: psql -1 -f sends each statement alone, and a typo must not let
      // COMMIT commit the rest. SQL that is not the admin language is refused the same way.
      this.abortStatement();
      throw await notAdmin(sql, err);
    }
    if (statements.length === 0) {
      out.emptyQuery();
      return;
    }
    // Several statements in one Query message run in one implicit transaction (as PostgreSQL).
    const multi = statements.length > 1;
    this.busy = true;
    try {
      for (const st of statements) {
        try {
          const ex = await this.run(st, [], multi, out, sql.slice(st.start, st.end));
          await streamInto(ex, out);
        } catch (err) {
          this.abortStatement();
          throw err;
        }
      }
      if (this.mode === 'implicit') await this.finishImplicit();
    } finally {
      this.busy = false;
      this.cancelRequested = false;
    }
  }

  async prepare(sql: string, clientTypes: number[]): Promise<PreparedStatement> {
    let statements: readonly Statement[];
    try {
      statements = parse(sql, this.engine.parseLimits);
    } catch (err) {
      throw await notAdmin(sql, err);
    }
    if (statements.length > 1) {
      throw new PgError('syntax_error', 'cannot insert multiple commands into a prepared statement');
    }
    const st = statements[0];
    if (!st) return new EnginePrepared(null, '', clientTypes, null);
    const inferred = paramTypesOf(st);
    const types = inferred.map((t, i) => (clientTypes[i] ? clientTypes[i]! : t));
    for (let i = inferred.length; i < clientTypes.length; i++) types.push(clientTypes[i]!);
    return new EnginePrepared(st, sql.slice(st.start, st.end), types, describeColumns(st.command));
  }

  async execute(stmt: PreparedStatement, params: (string | null)[], out: NoticeSink): Promise<Execution> {
    const p = stmt as EnginePrepared;
    if (!p.statement) return emptyStatement();
    this.dataPlane?.checkAdmin(p.statement.command);
    this.busy = true;
    try {
      return await this.run(p.statement, params, false, out, p.text);
    } catch (err) {
      this.abortStatement();
      throw err;
    } finally {
      this.busy = false;
      this.cancelRequested = false;
    }
  }

  fail(): void {
    this.abortStatement();
  }

  async sync(): Promise<void> {
    if (this.mode === 'implicit') await this.finishImplicit();
  }

  cancel(): void {
    // A cancel that arrives while idle must not hit the next statement (PostgreSQL ignores it).
    if (this.busy) this.cancelRequested = true;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.dataPlane?.plane.end();
    this.tx = null;
    this.mode = 'none';
    this.engine.sessionClosed(this.sessionUserId);
  }

  // ---- statements and transactions -------------------------------------------------

  private async run(st: Statement, params: (string | null)[], multi: boolean, notices: NoticeSink, text: string): Promise<Execution> {
    this.checkCancel();
    this.engine.advanceClock();
    const cmd = st.command;
    if (cmd.type === 'Transaction') return this.transactionControl(cmd, notices);
    if (this.mode === 'failed') {
      throw new PgError('in_failed_sql_transaction', 'current transaction is aborted, commands ignored until end of transaction block', {
        hint: 'ROLLBACK ends the transaction.',
      });
    }
    if (this.mode === 'none' && (multi || isWrite(cmd))) this.beginTx('implicit');
    const now = this.engine.clock();
    const view = this.view();
    let actor = this.statementActor(cmd, view, now);
    // SET TENANT: a superuser's names resolve in the tenant it chose. Only a superuser's: acting
    // as someone else (SET SESSION AUTHORIZATION) is acting from that user's own tenant.
    const nameTenant = this.nameTenantId;
    if (nameTenant !== null && actor.role === 'superuser' && cmd.type !== 'SetTenant') {
      if (!view.tenantById(nameTenant)) {
        throw new PgError('undefined_object', 'the tenant chosen by SET TENANT no longer exists', { hint: 'RESET TENANT goes back to your own tenant.' });
      }
      actor = { ...actor, tenantId: nameTenant };
    }
    if (actor.limits?.databaseIds) checkStatementDatabases(cmd, actor, view, now);
    const imports = st.imports ? new ImportPlan(cmd, importRulesOf(cmd), st.imports, actor, view, params) : null;
    // IMPORT (tenant = N): the superuser acts from tenant N, so names resolve there.
    if (imports?.tenantId != null) actor = { ...actor, tenantId: imports.tenantId };
    const ctx: StatementContext = {
      engine: this.enginePort,
      session: this.sessionPort,
      view,
      tx: this.tx,
      actor,
      params,
      now,
      notice: (n) => notices.notice(n),
      inBlock: this.mode === 'block',
      multiStatement: multi,
      protocol: notices.protocol ?? null,
      imports,
    };
    const tx = this.tx;
    if (imports && tx) tx.rowHook = (table, row) => imports.patch(table, row, tx);
    let ex: Execution;
    const started = process.hrtime.bigint();
    let outcome = 'error';
    const changesBefore = tx?.mutations.length ?? 0;
    try {
      ex = await dispatch(cmd, ctx);
      outcome = 'ok';
      if (tx && tx.mutations.length > changesBefore) this.auditPending.push(this.auditEntry('change', cmd, actor, now, redactStatement(text)));
    } catch (err) {
      if (err instanceof PgError && err.state === 'insufficient_privilege') void this.engine.record(this.auditEntry('denial', cmd, actor, now, err.message));
      throw err;
    } finally {
      if (tx) tx.rowHook = null;
      const m = this.engine.metrics;
      m.statements.inc({ kind: cmd.type, outcome });
      m.statementSeconds.observe(Number(process.hrtime.bigint() - started) / 1e9, { kind: cmd.type });
    }
    this.checkCancel();
    if (this.mode === 'implicit' && !multi) await this.finishImplicit();
    return ex;
  }

  /**
   * Who runs a statement: the actor, except that SET / RESET SESSION AUTHORIZATION still run
   * (as the login) when the principal acted as refuses every statement (its key was
   * dropped): they are the way back.
   */
  private statementActor(cmd: AdminCommand, view: CatalogReader, now: number): User {
    try {
      return this.actor(view, now);
    } catch (err) {
      const leaving = cmd.type === 'SetSessionAuthorization' || cmd.type === 'SetSessionAuthorizationJwt' || cmd.type === 'SetSessionAuthorizationApiKey';
      const login = view.userById(this.sessionUserId);
      if (this.acting.kind === 'login' || !leaving || !login) throw err;
      const role = effectiveOf(login, view, now).role;
      return role === login.role ? login : { ...login, role };
    }
  }

  private auditEntry(kind: 'change' | 'denial', cmd: AdminCommand, actor: User, at: number, textOrReason: string): AuditEntry {
    const common = { at, tenant: actor.tenantId, actor: actor.name, address: this.peer.address, statement: cmd.type, object: objectOf(cmd) };
    return kind === 'change' ? { kind, ...common, text: textOrReason } : { kind, ...common, reason: textOrReason };
  }

  private async transactionControl(cmd: Extract<AdminCommand, { type: 'Transaction' }>, notices: NoticeSink): Promise<Execution> {
    switch (cmd.action) {
      case 'begin':
        if (this.mode === 'block' || this.mode === 'failed') {
          notices.notice({ severity: 'WARNING', code: '25001', message: 'there is already a transaction in progress' });
        } else if (this.mode === 'implicit') {
          this.mode = 'block'; // BEGIN inside a multi-statement message turns its implicit transaction into a block
        } else this.beginTx('block');
        return commandDone('BEGIN');
      case 'commit': {
        if (this.mode === 'none') {
          notices.notice({ severity: 'WARNING', code: '25P01', message: 'there is no transaction in progress' });
          return commandDone('COMMIT');
        }
        if (this.mode === 'failed') {
          this.endTx(false);
          return commandDone('ROLLBACK');
        }
        await this.finishImplicit();
        return commandDone('COMMIT');
      }
      case 'rollback':
        if (this.mode === 'none') {
          notices.notice({ severity: 'WARNING', code: '25P01', message: 'there is no transaction in progress' });
        } else this.endTx(false);
        return commandDone('ROLLBACK');
    }
  }

  private beginTx(mode: 'implicit' | 'block'): void {
    this.tx = new CatalogTransaction(this.engine.catalog);
    this.mode = mode;
    this.settings.begin();
  }

  /** Commits the open transaction; when the commit fails, the transaction is gone. */
  private async finishImplicit(): Promise<void> {
    const tx = this.tx;
    if (!tx) return;
    try {
      await this.engine.commit(tx, this.auditPending);
    } catch (err) {
      this.endTx(false);
      throw err;
    }
    this.endTx(true);
  }

  private endTx(committed: boolean): void {
    this.mixed = false;
    this.tx = null;
    this.auditPending = [];
    this.mode = 'none';
    this.settings.end(committed);
  }

  /** An error in a statement: a block fails (25P02 until ROLLBACK); an implicit transaction rolls back. */
  private abortStatement(): void {
    if (this.mode === 'block') this.mode = 'failed';
    else if (this.mode === 'implicit') this.endTx(false);
  }

  private checkCancel(): void {
    if (this.cancelRequested) {
      this.cancelRequested = false;
      throw new PgError('query_canceled', 'canceling statement due to user request');
    }
  }
}

/** A statement's view of its session: what SessionPort lists, read through to the session. */
function sessionPort(s: EngineSession): SessionPort {
  return {
    get settings() {
      return s.settings;
    },
    get sessionUserId() {
      return s.sessionUserId;
    },
    get sessionUserName() {
      return s.sessionUserName;
    },
    get database() {
      return s.database;
    },
    get nameTenantId() {
      return s.nameTenantId;
    },
    authValues: (view, now) => s.authValues(view, now),
    actAs: (user) => s.actAs(user),
    actAsToken: (p) => s.actAsToken(p),
    actAsKey: (key, owner) => s.actAsKey(key, owner),
    resolveNamesIn: (tenantId) => s.resolveNamesIn(tenantId),
  };
}

/** A statement's view of the engine: its random source, key-use times, lockouts and audit trail. */
function enginePort(e: Engine): EnginePort {
  return {
    random: (bytes) => e.random(bytes),
    lastUsed: (k, previous) => e.lastUsed(k, previous),
    get lockouts() {
      return e.lockouts;
    },
    get audit() {
      return e.audit;
    },
    get issuerUrl() {
      return e.issuer.url;
    },
    get accessTokenSeconds() {
      return e.issuer.policy.accessTokenSeconds;
    },
    get maxMintedTokenSeconds() {
      return e.issuer.policy.maxMintedTokenSeconds;
    },
    mintToken: (tx, grant, seconds, now, createdBy) => e.issuer.mint(tx, grant, seconds, now, createdBy),
    installedPolicy: async (policy) => (e.policySql ? e.policySql(policy) : undefined),
    poolStats: () => e.poolStats?.() ?? [],
  };
}

/** The error for a message the admin grammar refused: SQL for a data plane (0A000) or a syntax error. */
async function notAdmin(sql: string, err: unknown): Promise<unknown> {
  return err instanceof PgError ? refusal(sql, err) : err;
}

async function streamInto(ex: Execution, out: ResultSink): Promise<void> {
  if (ex.columns) out.rowDescription(ex.columns);
  let n = 0;
  if (ex.block && out.dataRows) {
    n = ex.block.length;
    if (!out.dataRows(ex.block)) await out.drain();
  } else {
    for (;;) {
      const r = ex.rows.next();
      if (r.done) break;
      n++;
      if (!out.dataRow(r.value)) await out.drain();
    }
  }
  out.commandComplete(ex.withCount ? `${ex.tag} ${n}` : ex.tag);
}

/** Startup parameters that are settings, plus `options` (-c name=value / --name=value). */
function startupSettings(params: Map<string, string>): [string, string][] {
  const out: [string, string][] = [];
  for (const [k, v] of params) {
    if (k === 'options') {
      const parts = v.trim().split(/\s+/);
      for (let i = 0; i < parts.length; i++) {
        const p = parts[i]!;
        const kv = p === '-c' ? parts[++i] : p.startsWith('--') ? p.slice(2) : p.startsWith('-c') ? p.slice(2) : undefined;
        const eq = kv?.indexOf('=') ?? -1;
        if (kv && eq > 0) out.push([kv.slice(0, eq).replaceAll('-', '_'), kv.slice(eq + 1)]);
      }
    } else if (k !== 'replication') out.push([k, v]);
  }
  return out;
}

/**
 * The principal of the API key SET SESSION AUTHORIZATION API KEY chose, as a login with it
 * would have it now: a key dropped, expired or whose owner was dropped, disabled or expired
 * refuses every statement but SET / RESET SESSION AUTHORIZATION (session.run) with 28000.
 * An ERROR, not the FATAL a key login gets: the session's own login (the superuser's) still
 * stands, and ending it would end the test that acts as the key.
 */
function actingKeyActor(a: Extract<Acting, { kind: 'apiKey' }>, view: CatalogReader, now: number): User {
  const key = view.apiKeyById(a.keyId);
  try {
    if (!key) throw new CredentialRefused('no_longer_exists', `API key "${a.name}" was dropped`);
    return keyPrincipal(key, view, now).user;
  } catch (err) {
    if (!(err instanceof CredentialRefused)) throw err;
    throw new PgError('invalid_authorization_specification', `the API key "${a.name}" this session acts as no longer grants access`, {
      detail: `${err.reason[0]!.toUpperCase()}${err.reason.slice(1)}.`,
      hint: 'RESET SESSION AUTHORIZATION goes back to your own user.',
    });
  }
}

/** A string that changes whenever the acting principal does (each token principal is its own). */
const tokenKeys = new WeakMap<JwtPrincipal, number>();
let tokenKeyCount = 0;
function actingKey(a: Acting): string {
  if (a.kind === 'login') return '';
  if (a.kind === 'user') return `user:${a.userId}`;
  if (a.kind === 'apiKey') return `key:${a.keyId}`;
  let n = tokenKeys.get(a.principal);
  if (n === undefined) tokenKeys.set(a.principal, (n = ++tokenKeyCount));
  return `token:${n}`;
}
