import { randomBytes } from 'node:crypto';
import { Catalog } from '../catalog/catalog.js';
import type { ApiKey, Mutation, RlsPolicy } from '../catalog/model.js';
import type { CatalogTransaction } from '../catalog/transaction.js';
import { DEFAULT_ITERATIONS } from '../auth/verifier.js';
import type { Ledger, RateEvent, Store } from '../store/store.js';
import { JwksCache, type JwksPolicy } from '../auth/jwks.js';
import { DEFAULT_TOKEN_POLICY, type TokenPolicy } from '../auth/jwt.js';
import type { Metrics } from '../metrics/metrics.js';
import { DEFAULT_LOCKOUT_POLICY, Lockouts, type LockoutPolicy } from './lockouts.js';
import type { AuditLog } from '../audit/audit-log.js';
import type { AuditEntry } from '../audit/audit-record.js';
import type { Cipher } from '../store/cipher.js';
import { DEFAULT_PARSE_LIMITS, type ParseLimits } from '../../grammar/index.js';
import { AuditPipeline } from './audit-pipeline.js';
import { bootstrapCommit, bootstrapUserName, disableBootstrapOnceReplaced } from './bootstrap.js';
import { CommitPipeline } from './commit-pipeline.js';
import { PgError } from '../errors/pg-error.js';
import { ConnectionCounts } from './connection-counts.js';
import { engineMetrics } from './engine-metrics.js';
import { KeyUses } from './key-uses.js';
import { TokenIssuer, tokenEndings, type IssuerPolicy } from './issuer.js';
import { LoginRecorder, type LoginRecord } from './login-recording.js';
import type { PoolStats } from '../dataplane/pool.js';

export type { LoginRecord } from './login-recording.js';

export interface EngineOptions {
  store: Store;
  /** PBKDF2 iterations for passwords hashed server-side (PostgreSQL's scram_iterations). */
  scramIterations?: number;
  bootstrapUser?: string;
  /** When absent on first start, a random password is generated and printed once. */
  bootstrapPassword?: string;
  /**
   * PORTCULLIS_BOOTSTRAP_DISABLE_AFTER_SETUP: the bootstrap superuser is set NOLOGIN by the
   * commit that gives another user superuser (audited in that commit).
   */
  bootstrapDisableAfterSetup?: boolean;
  /** Where the one-time bootstrap password goes (stderr by default). */
  announce?: (line: string) => void;
  clock?: () => number;
  /** Called as each statement starts (the deterministic clock steps there). */
  advanceClock?: () => void;
  /** Random bytes for key ids and secrets; golden tests pass a seeded generator. */
  random?: (bytes: number) => Buffer;
  maxConnections?: number;
  /** Compact (snapshot + empty log) once the log holds this many bytes. */
  compactAt?: number;
  log?: (line: string) => void;
  /** Where the last good JWKS of each OIDC provider is kept (the data directory's jwks/); null in memory. */
  jwksDir?: string | null;
  /** Seals the JWKS cache's files (encryption at rest). */
  jwksCipher?: Cipher | null;
  jwksPolicy?: JwksPolicy;
  tokenPolicy?: TokenPolicy;
  lockoutPolicy?: LockoutPolicy;
  /** Opens the audit trail once the store holds the data directory (default: in memory). */
  openAudit?: () => AuditLog;
  /** How large and complex one statement may be (max_statement_bytes, ...; 54000 / 54001 past them). */
  parseLimits?: Partial<ParseLimits>;
  /** portcullis as a token issuer: its URL and token lifetimes (DEFAULT_ISSUER_POLICY where absent). */
  issuer?: Partial<IssuerPolicy>;
}

/**
 * The one executor's shared state: the committed catalog and the parts that keep it — the
 * commit pipeline (commit-pipeline.ts), the audit pipeline (audit-pipeline.ts), login
 * recording (login-recording.ts), API key last use (key-uses.ts), metrics
 * (engine-metrics.ts) and open sessions (connection-counts.ts). Every session — pgwire,
 * HTTP, the CLI's offline mode and the golden runner — goes through one Engine.
 */
export class Engine {
  readonly catalog = new Catalog();
  readonly scramIterations: number;
  readonly clock: () => number;
  readonly random: (bytes: number) => Buffer;
  readonly advanceClock: () => void;
  readonly maxConnections: number;
  readonly jwks: JwksCache;
  readonly tokenPolicy: TokenPolicy;
  readonly metrics: Metrics;
  readonly lockouts: Lockouts;
  /** One frozen object for the engine's life: parse() keeps parses per limits object. */
  readonly parseLimits: ParseLimits;
  /** The built-in token issuer (SPEC §12). */
  readonly issuer: TokenIssuer;
  /** The server log (stderr under `serve`). */
  readonly log: (line: string) => void;
  private readonly connections = new ConnectionCounts();
  private readonly auditPipeline: AuditPipeline;
  private readonly commits: CommitPipeline;
  private readonly logins: LoginRecorder;
  private readonly keyUses: KeyUses;

  constructor(private readonly opts: EngineOptions) {
    this.scramIterations = opts.scramIterations ?? DEFAULT_ITERATIONS;
    this.log = opts.log ?? (() => {});
    this.clock = opts.clock ?? Date.now;
    this.random = opts.random ?? randomBytes;
    this.advanceClock = opts.advanceClock ?? (() => {});
    this.maxConnections = opts.maxConnections ?? 1000;
    this.jwks = new JwksCache(opts.jwksDir ?? null, this.clock, opts.jwksPolicy, opts.jwksCipher ?? null);
    this.tokenPolicy = opts.tokenPolicy ?? DEFAULT_TOKEN_POLICY;
    this.metrics = engineMetrics(() => this.connections.total(), this.jwks, () => this.poolStats?.() ?? []);
    this.lockouts = new Lockouts(opts.lockoutPolicy ?? DEFAULT_LOCKOUT_POLICY, this.clock);
    this.parseLimits = opts.parseLimits ? Object.freeze({ ...DEFAULT_PARSE_LIMITS, ...opts.parseLimits }) : DEFAULT_PARSE_LIMITS;
    this.auditPipeline = new AuditPipeline(this.metrics, opts.log);
    this.commits = new CommitPipeline(this.catalog, opts.store, this.auditPipeline, { compactAt: opts.compactAt, log: opts.log });
    this.logins = new LoginRecorder({ catalog: this.catalog, lockouts: this.lockouts, metrics: this.metrics, audit: this.auditPipeline, clock: this.clock, log: opts.log });
    this.keyUses = new KeyUses(this.catalog, this.commits, this.clock);
    this.issuer = new TokenIssuer(this, opts.issuer);
  }

  /** Whether open() found the catalog empty and created it (its bootstrap commit is this engine's). */
  bootstrapped = false;

  /** Replays the store; on an empty catalog, creates tenant 1, its database and the superuser. */
  async open(): Promise<void> {
    const carried = await this.commits.load();
    try {
      const store = this.opts.store;
      await this.auditPipeline.open(this.opts.openAudit ?? (store.openAudit ? () => store.openAudit!() : undefined), carried);
    } catch (err) {
      await this.auditPipeline.close();
      await this.opts.store.close();
      throw err;
    }
    this.commits.follow();
    if (this.catalog.empty) {
      this.bootstrapped = true;
      const o = this.opts;
      const now = this.clock();
      try {
        await this.commits.commit(await bootstrapCommit({ user: o.bootstrapUser, password: o.bootstrapPassword, announce: o.announce, scramIterations: this.scramIterations, random: this.random, now }));
      } catch (err) {
        // Instances starting at once on an empty shared catalog: one bootstraps it, the
        // others fail their bootstrap commit (40001) having applied that one.
        if (!(err instanceof PgError && err.state === 'serialization_failure' && !this.catalog.empty)) throw err;
        this.bootstrapped = false;
        o.log?.('another instance created the catalog first: its bootstrap superuser is the one in use');
      }
    }
    // Failed logins counted with the other instances sharing the store (and the last hour's read).
    if (this.opts.store.lockoutLedger) await this.lockouts.share(this.opts.store.lockoutLedger);
    // API keys' last use kept with them (and every instance's read).
    if (this.opts.store.keyUseLedger) await this.keyUses.share(this.opts.store.keyUseLedger);
  }

  /** Where instances sharing the store count HTTP requests together (null: alone). */
  get rateLedger(): Ledger<RateEvent> | null {
    return this.opts.store.rateLedger ?? null;
  }

  async close(): Promise<void> {
    await this.commits.drain();
    await this.auditPipeline.close();
    await this.opts.store.close();
  }

  /** Counts, logs and audits a login attempt (login-recording.ts); resolves once its record is durable. */
  recordLogin(r: LoginRecord): Promise<void> {
    return this.logins.record(r);
  }

  /** The audit trail (opened with the catalog). */
  get audit(): AuditLog {
    return this.auditPipeline.audit;
  }

  /** Appends to the audit trail; a failure to write is logged and counted, not thrown. */
  record(entry: AuditEntry): Promise<void> {
    return this.auditPipeline.record(entry);
  }

  /**
   * Commits a transaction: checked against the committed state, on disk, then visible. Its
   * audit records (one per statement that changed something) are written alongside, and the
   * commit is acknowledged only once both are durable.
   */
  async commit(tx: CatalogTransaction, audit: AuditEntry[] = []): Promise<void> {
    if (!tx.dirty) return;
    if (this.opts.bootstrapDisableAfterSetup) disableBootstrapOnceReplaced(tx, audit, this.clock());
    const ended = tokenEndings(tx.mutations, this.catalog, tx);
    await this.commits.commit(tx.mutations, audit);
    // Tokens of a principal dropped or disabled by this commit go in one of their own.
    if (ended) await this.issuer.endTokens(ended);
    for (const follow of this.followers) await follow(tx.mutations);
  }

  /**
   * First half of a commit that waits for the data plane (a block that changed both the
   * catalog and a database, docs/data-plane.md "The commit protocol"): checked as `commit`
   * checks, durable as a `prepare` record, not yet applied. `decideCommit` ends it.
   */
  async prepareCommit(tx: CatalogTransaction, txid: string, databaseId: number): Promise<void> {
    if (this.opts.bootstrapDisableAfterSetup) disableBootstrapOnceReplaced(tx, [], this.clock());
    await this.commits.prepare(txid, databaseId, tx.mutations);
  }

  /**
   * The data plane's outcome for a prepared commit: committed there, the catalog's changes
   * apply now (and what follows a commit follows); rolled back there, they are dropped.
   */
  async decideCommit(txid: string, commit: boolean, tx?: CatalogTransaction, audit: AuditEntry[] = []): Promise<void> {
    const ended = commit && tx ? tokenEndings(tx.mutations, this.catalog, tx) : null;
    const mutations = this.commits.preparedMutations(txid);
    await this.commits.decide(txid, commit, audit);
    if (!commit) return;
    if (ended) await this.issuer.endTokens(ended);
    for (const follow of this.followers) await follow(mutations);
  }

  /** Prepared commits a crash left without a decision: recovery asks the data plane (server.ts). */
  undecidedCommits(): { txid: string; databaseId: number }[] {
    return this.commits.undecided();
  }

  /**
   * What must follow a session's commit before it is acknowledged (the data plane brought
   * in line with the catalog). A follower's failure is its own to handle: the commit stands.
   */
  private readonly followers: ((mutations: readonly Mutation[]) => Promise<void>)[] = [];

  /** The SQL the data plane holds for a policy (EXPLAIN RLS); null without a data plane. */
  policySql: ((policy: RlsPolicy) => Promise<string | null>) | null = null;

  /** The upstream data plane's pools (SHOW POOLS, /metrics); null without one. */
  poolStats: (() => PoolStats[]) | null = null;

  followCommits(follow: (mutations: readonly Mutation[]) => Promise<void>): void {
    this.followers.push(follow);
  }

  /** Writes the catalog as a snapshot and starts the log again behind it. */
  compact(): Promise<{ logBytesBefore: number; snapshotBytes: number } | null> {
    return this.commits.compact();
  }

  /** The superuser offline tools act as: the bootstrap one, or else any superuser. */
  bootstrapUserName(): string {
    return bootstrapUserName(this.catalog, this.opts.bootstrapUser);
  }

  /** Commits and writes of a durable store (the bench and tests read them). */
  get storeStats(): { writes: number; commits: number } | undefined {
    return (this.opts.store as { stats?: { writes: number; commits: number } }).stats;
  }

  get storeDescription(): string {
    return this.opts.store.description;
  }

  // ---- API key last use (key-uses.ts) ------------------------------------------------

  noteKeyUse(keyRowId: number, previous = false): void {
    this.keyUses.note(keyRowId, previous);
  }

  /** The last use of a key's current secret (or, `previous`, of its rotated-out one). */
  lastUsed(k: ApiKey, previous = false): number | null {
    return this.keyUses.lastUsed(k, previous);
  }

  /** Writes the remembered uses as one commit (the server does this once a minute and at shutdown). */
  flushKeyUses(): Promise<void> {
    return this.keyUses.flush();
  }

  // ---- connection accounting (CONNECTION LIMIT, max connections) ---------------------

  sessionCount(userId: number): number {
    return this.connections.of(userId);
  }

  totalSessions(): number {
    return this.connections.total();
  }

  sessionOpened(userId: number): void {
    this.connections.opened(userId);
  }

  sessionClosed(userId: number): void {
    this.connections.closed(userId);
  }
}
