/**
 * The data plane: the PostgreSQL that holds the rows portcullis guards. One interface, two
 * implementations (embedded PGlite, an operator's upstream PostgreSQL); the rest of
 * portcullis sees only what is declared here.
 *
 * Layers, each knowing only the one below:
 * - the wire connection forwards a client's non-admin messages as raw protocol bytes
 *   through a `Lease` (it never sees the catalog);
 * - the session decides what is admin language and which identity a lease must carry;
 * - the provisioner keeps the data plane's roles, grants and policies in line with the
 *   catalog, through `AdminSql`;
 * - a `DataPlane` holds the databases and hands out leases.
 */

/** Where a portcullis database lives in the data plane: ids are stable, names are not. */
export interface PlaneDatabase {
  tenantId: number;
  databaseId: number;
  /** For messages and docs only; the mapping to a PostgreSQL name uses the ids. */
  tenantName: string;
  databaseName: string;
  /**
   * The data plane's namespace (DataPlane.namespace), when it has one: part of every name
   * the database has there.
   */
  namespace?: string;
}

/**
 * SQL run as portcullis's own identity in one database (provisioning, not client SQL).
 * PostgreSQL's errors reject with an error whose `code` is the SQLSTATE (AdminSqlError).
 */
export interface AdminSql {
  /** One or more statements, simple protocol, no results wanted. */
  exec(sql: string): Promise<void>;
  /** One statement with $n parameters (text values); rows as objects of text values. */
  query(sql: string, params?: (string | null)[]): Promise<Record<string, string | null>[]>;
}

/**
 * A connection to one data-plane database that carries a client's messages. Bytes in
 * PostgreSQL's v3 framing (type byte + length), after startup: the holder writes frontend
 * messages and reads backend messages. The lease holds the connection exclusively until
 * released; on the embedded plane that is one turn of the single connection.
 */
export interface Lease {
  /** Frontend messages, framed, one or more; the connection answers as PostgreSQL does. */
  write(frames: Uint8Array): void;
  /** The next backend message, framed (type byte, length, body); rejects when the connection broke. */
  next(): Promise<Uint8Array>;
  /**
   * True when this connection last served another session (or was just opened): whatever
   * session state the holder relies on (identity, settings, prepared statements) must be
   * applied again before the client's messages.
   */
  readonly fresh: boolean;
  /**
   * The identity portcullis last applied on this connection (the gate's key of role and
   * `$auth` values), when the plane remembers it across sessions (the upstream pool); null
   * or absent: unknown, so a fresh lease gets the identity applied in full. Whoever changes
   * what the connection carries sets it (null when unsure).
   */
  identity?: string | null;
  /** Runs portcullis's own SQL on this same connection, between the client's messages. */
  readonly admin: AdminSql;
  /**
   * Asks the data plane to cancel the statement running on this connection (a client's
   * CancelRequest). Upstream: PostgreSQL's CancelRequest, the statement ends with 57014.
   * Embedded: nothing happens (a statement in PGlite cannot be interrupted).
   */
  cancel(): Promise<void>;
  /** Gives the connection back; `broken` closes it instead (after a protocol failure). */
  release(broken?: boolean): void;
}

export interface DataPlane {
  readonly kind: 'embedded' | 'upstream';
  /**
   * A prefix of every database and role name this plane makes (lower-case letters and
   * digits), so that several catalogs can share one upstream PostgreSQL without their ids
   * meeting: each golden file runs in a namespace of its own. Absent: the plain names.
   */
  readonly namespace?: string;
  /** Creates the database if it does not exist (idempotent), with portcullis's schema in it. */
  ensureDatabase(db: PlaneDatabase): Promise<void>;
  /** Drops the database and everything in it (DROP DATABASE in the catalog). */
  dropDatabase(db: PlaneDatabase): Promise<void>;
  /** Provisioning SQL in a database, serialised with client turns. */
  withAdmin<T>(db: PlaneDatabase, fn: (sql: AdminSql) => Promise<T>): Promise<T>;
  /**
   * A connection for `session` (an opaque key, stable for a client session) in `db`; waits
   * while another session's transaction holds the only connection.
   */
  lease(db: PlaneDatabase, session: object): Promise<Lease>;
  /** Forgets a session (its dedicated connection, if any, is closed). */
  endSession(session: object): void;
  /**
   * Transaction pooling: sessions share connections between transactions, so statements
   * that leave session state need `dedicate` first. Absent or false: each session's state
   * stays its own (a connection per session, or the embedded plane's own rules).
   */
  readonly pooled?: boolean;
  /** The session keeps a connection of its own in `db` from now on; 0A000 when the plane cannot spare one. */
  dedicate?(db: PlaneDatabase, session: object, what: string): void;
  close(): Promise<void>;
}
