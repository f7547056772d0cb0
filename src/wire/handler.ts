import type { NoticeFields, TransactionStatus } from './messages.js';

/**
 * The contract between the wire layer (bytes) and whatever answers queries (the engine).
 * The wire layer calls these; it never sees a catalog, a principal or a statement AST.
 */

export interface PeerInfo {
  address: string;
  port: number;
  tls: boolean;
  /** TLS channel binding data (tls-server-end-point) for SCRAM-SHA-256-PLUS. */
  channelBinding?: Buffer;
  /** The client's TLS certificate, when it sent one (mTLS). */
  clientCert?: ClientCertificate;
}

export interface ClientCertificate {
  /** Distinguished name, RFC 4514 order as written in the certificate: "CN=carol,O=acme". */
  subject: string;
  commonName: string | null;
  /** Chains to the configured client CA and is not revoked by its CRL. */
  verified: boolean;
  /** Why not, when not (CERT_REVOKED, UNABLE_TO_VERIFY_LEAF_SIGNATURE, ...). */
  error: string | null;
}

export interface StartupInfo {
  user: string;
  database: string;
  /** Every startup parameter except user and database (application_name, options, GUCs). */
  params: Map<string, string>;
}

/** A SASL step's answer; a final step without data (OAUTHBEARER) sends no SASLFinal. */
export type SaslStep = { done: false; data: Buffer } | { done: true; data: Buffer | null };

/** One login attempt. Failures are thrown as PgError (28P01 for every credential failure). */
export interface AuthExchange {
  /** SASL mechanisms to offer; empty: ask for a cleartext password (see `password`). */
  readonly mechanisms: string[];
  /** Already authenticated (a verified client certificate): no request, straight to open(). */
  readonly immediate?: boolean;
  /** `mechanism` is set on the first (SASLInitialResponse) step and null afterwards. */
  step(mechanism: string | null, data: Buffer): Promise<SaslStep>;
  /** The PasswordMessage, when no mechanism was offered (a token sent as the password). */
  password(text: string): Promise<void>;
  /** After the final step: open the session; may still refuse (28000 NOLOGIN, 53300, 3D000). */
  open(): Promise<QuerySession>;
}

export interface Column {
  name: string;
  typeOid: number;
}

export interface PreparedStatement {
  readonly paramTypes: number[];
  /** null: the statement returns no rows (Describe answers NoData). */
  readonly columns: Column[] | null;
}

export interface Execution {
  readonly columns: Column[] | null;
  /** Rows as text values, produced lazily so large results stream. */
  readonly rows: Iterator<readonly (string | null)[]>;
  /**
   * The same rows all at once, for a small result kept whole: frozen, and the same array
   * for as long as the result is unchanged (see ResultSink.dataRows).
   */
  readonly block?: readonly (readonly (string | null)[])[];
  /** The command tag; `withCount` tags get the number of rows appended ("SELECT 3"). */
  readonly tag: string;
  readonly withCount: boolean;
  /** The statement was empty: answer EmptyQueryResponse instead of CommandComplete. */
  readonly empty?: boolean;
}

/**
 * The wire layer's own state that SQL acts on: prepared statements are made by Parse and
 * live in the connection, but `DEALLOCATE` and `DISCARD ALL` are statements the engine runs.
 * The engine asks through this; the wire layer never learns what a statement meant.
 */
export interface ProtocolState {
  /** Drops the named prepared statement; false when there is none of that name. */
  deallocate(name: string): boolean;
  /** Drops every prepared statement (DEALLOCATE ALL, DISCARD ALL). */
  deallocateAll(): void;
}

export interface ResultSink extends NoticeSink {
  rowDescription(columns: Column[]): void;
  /**
   * false: the socket is full, await drain() before sending more. A frozen `values` array
   * is a promise that it never changes: the wire layer may keep its encoding, keyed by the
   * array itself, and send those bytes again when the same array comes back.
   */
  dataRow(values: readonly (string | null)[]): boolean;
  /**
   * Every row of a result at once (Execution.block), instead of dataRow for each: a sink
   * may keep the encoding of the whole block, by the array, as for a frozen row.
   */
  dataRows?(rows: readonly (readonly (string | null)[])[]): boolean;
  drain(): Promise<void>;
  commandComplete(tag: string): void;
  emptyQuery(): void;
}

export interface NoticeSink {
  notice(n: NoticeFields): void;
  /** The connection's prepared statements; absent where there are none (HTTP, the CLI). */
  readonly protocol?: ProtocolState;
}

export interface QuerySession {
  /** The ParameterStatus values reported after login (server_version, TimeZone, ...). */
  initialParameters(): [string, string][];
  /** Notices to send right after AuthenticationOk (an expiry warning). */
  loginNotices(): NoticeFields[];
  /** Reportable settings changed since the last call (SET application_name ...). */
  takeParameterChanges(): [string, string][];
  txStatus(): TransactionStatus;
  /** Simple query protocol: every statement in `sql`, with the implicit transaction. */
  simpleQuery(sql: string, out: ResultSink): Promise<void>;
  /** Extended protocol Parse: exactly one statement. */
  prepare(sql: string, paramTypes: number[]): Promise<PreparedStatement>;
  execute(stmt: PreparedStatement, params: (string | null)[], out: NoticeSink): Promise<Execution>;
  /** Rows of an execution were abandoned or failed mid-way. */
  fail(): void;
  /** Sync: ends the implicit transaction of the extended protocol. */
  sync(): Promise<void>;
  cancel(): void;
  close(): void;
  /** Where SQL that is not the admin language goes; absent without a data plane. */
  readonly dataPlane?: PlaneRoute;
}

/**
 * A connection to the data plane as the wire layer sees it: frontend frames in, backend
 * frames out (a data plane's `Lease` is one). The wire layer forwards a client's messages
 * through it and never learns what they mean.
 */
export interface PlaneChannel {
  write(frames: Uint8Array): void;
  next(): Promise<Uint8Array>;
}

/** A turn on the data plane: the channel, identity applied. */
export interface PlaneTurn {
  channel: PlaneChannel;
  /**
   * The connection's session state is not what this client left there (another session
   * used it, or it was reset): prepared statements made on it before are gone.
   */
  reset: boolean;
}

/** A message's text as it goes to the data plane. */
export interface Forwarded {
  /** The text to send: the client's, with `$auth.*` replaced by the session's values. */
  sql: string;
  /** Open a transaction block on the data plane first (the client's BEGIN was answered already). */
  begin: boolean;
  /**
   * DDL: the session must act on the data plane's answer before anything else is sent
   * (for a Parse, when a portal of the statement is executed).
   */
  barrier: boolean;
  /** Maps an error position PostgreSQL reports in `sql` back to the client's text. */
  position(p: number): number;
  /**
   * The session's own work on the turn's connection before `sql` goes out, once every
   * earlier answer is in (a COMMIT's first steps). When it throws, the session ended the
   * data plane's block itself (and its turn): the relay lets the turn go and reports the error.
   */
  before?: () => Promise<void>;
}

/**
 * A simple Query of both languages: its statements as texts, each routed on its own (each
 * piece's answers go to the client, one ReadyForQuery at the end), stopping at the first
 * error. `implicit`: the pieces run in a transaction of their own, as PostgreSQL runs a
 * message of several statements: a BEGIN before them and a COMMIT after them (a ROLLBACK
 * after an error), neither of which the client hears of.
 */
export interface SplitMessage {
  pieces: string[];
  implicit: boolean;
}

/**
 * The session's side of forwarding. The wire layer asks it, for each Query and Parse,
 * whether the text is the admin language (null) or SQL for the data plane; refusals are
 * thrown as PgError. It hands out turns, and is told each ReadyForQuery of the data plane.
 */
export interface PlaneRoute {
  routeQuery(sql: string): Promise<Forwarded | SplitMessage | null>;
  routeParse(sql: string): Promise<Forwarded | null>;
  /** Changes whenever values substituted into SQL would differ (a prepared statement is prepared again). */
  readonly epoch: number;
  acquire(): Promise<PlaneTurn>;
  /**
   * A statement prepared earlier is bound (a Bind): true when the session's BEGIN, answered
   * already, must open the data plane's block first (as `Forwarded.begin`); throws as routing
   * does when the session's own block failed.
   */
  joinBlock(): boolean;
  /** A portal of a statement Parse said was DDL is executed. */
  ddlExecuted(): void;
  /** A statement is about to run on the turn already held: throws when the session may no longer run it there (a revocation inside a transaction block). */
  recheck(): void;
  /**
   * The data plane's ReadyForQuery. `idle`: nothing else is on its way, so the session may
   * use the connection itself (after DDL) and gives it back when the status is 'I'.
   */
  ready(status: TransactionStatus, idle: boolean): Promise<void>;
  /** The channel broke: the turn ends (the connection is closed, not reused). */
  broken(): void;
}

export interface WireHandler {
  startAuth(startup: StartupInfo, peer: PeerInfo): AuthExchange;
}
