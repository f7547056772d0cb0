import { randomBytes } from 'node:crypto';
import { Catalog } from '../catalog/catalog.js';
import { DEFAULT_DATABASE, DEFAULT_TENANT_ID, type ApiKey, type Mutation, type User } from '../catalog/model.js';
import { checkCommit, type CatalogTransaction } from '../catalog/transaction.js';
import { DEFAULT_ITERATIONS, formatVerifier, makeVerifier, SALT_LEN } from '../auth/verifier.js';
import { asPgError } from '../errors/pg-error.js';
import type { Store } from '../store/store.js';
import { JwksCache, type JwksPolicy } from '../auth/jwks.js';
import { DEFAULT_TOKEN_POLICY, type TokenPolicy } from '../auth/jwt.js';
import { Metrics } from '../metrics/metrics.js';
import { DEFAULT_LOCKOUT_POLICY, Lockouts, type LockoutPolicy } from './lockouts.js';
import type { LoginMethod } from './credentials.js';
import { AuditTrail } from '../audit/audit-trail.js';
import { RepeatedLogins } from './repeated-logins.js';
import type { AuditEntry } from '../audit/audit-record.js';
import type { Cipher } from '../store/cipher.js';
import { DEFAULT_PARSE_LIMITS, type ParseLimits } from '../../grammar/index.js';

/** A failure reason as a metric label: its first words, without names or ids. */
function reasonClass(reason: string): string {
  const r = reason.toLowerCase();
  for (const k of ['expired', 'not yet valid', 'issued in the future', 'signature', 'algorithm', 'audience', 'issuer', 'unknown kid', 'larger than', 'malformed', 'jwks', 'no oidc provider', 'no enabled oidc provider', 'disabled', 'no longer exists', 'grace', 'locked out', 'wrong secret', 'unknown api key', 'not a well-formed', 'wrong password', 'unknown user', 'nologin']) {
    if (r.includes(k)) return k.replace(/ /g, '_');
  }
  return 'other';
}

/** Ids 1 and 2 are the default tenant and its database; 3 is the first superuser. */
const BOOTSTRAP_USER_ID = 3;

export interface EngineOptions {
  store: Store;
  /** PBKDF2 iterations for passwords hashed server-side (PostgreSQL's scram_iterations). */
  scramIterations?: number;
  bootstrapUser?: string;
  /** When absent on first start, a random password is generated and printed once. */
  bootstrapPassword?: string;
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
  openAudit?: () => AuditTrail;
  /** How large and complex one statement may be (max_statement_bytes, ...; 54000 / 54001 past them). */
  parseLimits?: Partial<ParseLimits>;
}

/** One login attempt, as recorded (metrics and the server log; the audit trail later). */
export interface LoginRecord {
  method: LoginMethod;
  ok: boolean;
  /** The real reason of a failure (the client only ever hears "authentication failed"). */
  reason?: string;
  /** The name the attempt was made under (startup user, key id): lockouts count by it. */
  principal: string;
  /** The principal's tenant, when known (else the user of that name's, if any). */
  tenant?: number | null;
  /** A failure after the credential was verified (connection limit, database): not brute force. */
  credentialOk?: boolean;
  address: string;
  via: 'pgwire' | 'http';
}

const DEFAULT_COMPACT_AT = 64 * 1024 * 1024;
/** A credential's successful HTTP requests from one address: one login record per minute at most. */
const HTTP_LOGIN_AUDIT_WINDOW_MS = 60_000;
/**
 * The one executor's shared state: the committed catalog, the store behind it, and the
 * commit path. Sessions (pgwire today; HTTP and the CLI later) all go through one Engine.
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
  /** Open sessions per user id, for CONNECTION LIMIT. */
  private readonly sessionsByUser = new Map<number, number>();
  /** Commits accepted (checked, queued for the log) but not yet durable, in log order. */
  private readonly pending: Mutation[][] = [];
  private readonly inFlight = new Set<Promise<void>>();
  private compacting: Promise<void> | null = null;
  private auditTrail: AuditTrail | null = null;
  /** Successful HTTP logins already recorded in the last minute (see RepeatedLogins). */
  private readonly httpLogins = new RepeatedLogins(HTTP_LOGIN_AUDIT_WINDOW_MS);

  constructor(private readonly opts: EngineOptions) {
    this.scramIterations = opts.scramIterations ?? DEFAULT_ITERATIONS;
    this.clock = opts.clock ?? Date.now;
    this.random = opts.random ?? randomBytes;
    this.advanceClock = opts.advanceClock ?? (() => {});
    this.maxConnections = opts.maxConnections ?? 1000;
    this.jwks = new JwksCache(opts.jwksDir ?? null, this.clock, opts.jwksPolicy, opts.jwksCipher ?? null);
    this.tokenPolicy = opts.tokenPolicy ?? DEFAULT_TOKEN_POLICY;
    this.metrics = new Metrics(() => this.gauges());
    this.lockouts = new Lockouts(opts.lockoutPolicy ?? DEFAULT_LOCKOUT_POLICY, this.clock);
    this.parseLimits = opts.parseLimits ? Object.freeze({ ...DEFAULT_PARSE_LIMITS, ...opts.parseLimits }) : DEFAULT_PARSE_LIMITS;
  }

  /**
   * Counts a login, logs a failure with its real reason (never a secret: none reaches here)
   * and puts it in the audit trail; resolves once the record is durable.
   */
  recordLogin(r: LoginRecord): Promise<void> {
    if (r.ok) this.lockouts.succeeded(r.principal);
    else if (!r.credentialOk) this.lockouts.failed(r.address, r.principal);
    this.metrics.logins.inc({ method: r.method, outcome: r.ok ? 'success' : 'failure', ...(r.ok ? {} : { reason: reasonClass(r.reason ?? '') }) });
    if (!r.ok) this.opts.log?.(`login failed: method=${r.method} via=${r.via} principal=${JSON.stringify(r.principal)} from=${r.address} reason=${JSON.stringify(r.reason ?? '')}`);
    let repeats: number | null = 0;
    if (r.ok && r.via === 'http') {
      repeats = this.httpLogins.admit(`${r.method}\0${r.principal}\0${r.address}`, this.clock());
      if (repeats === null) return Promise.resolve();
    }
    const tenant = r.tenant !== undefined ? r.tenant : (this.catalog.userByName(r.principal)?.tenantId ?? null);
    return this.record({
      kind: 'login',
      at: this.clock(),
      tenant,
      method: r.method,
      via: r.via,
      principal: r.principal,
      address: r.address,
      ok: r.ok,
      ...(r.ok ? {} : { reason: r.reason ?? '' }),
      ...(repeats > 0 ? { repeats } : {}),
    });
  }

  /** The audit trail (opened with the catalog). */
  get audit(): AuditTrail {
    if (!this.auditTrail) throw new Error('the engine is not open');
    return this.auditTrail;
  }

  /**
   * Appends to the audit trail. A trail that cannot be written (disk full) does not stop
   * logins and reads (issue 5: they go on while the disk is full); it is logged and counted.
   */
  record(entry: AuditEntry): Promise<void> {
    return this.audit.append(entry).catch((err: Error) => {
      this.metrics.auditFailures.inc({});
      this.opts.log?.(`audit trail: could not record a ${entry.kind} record: ${err.message}`);
    });
  }

  private gauges(): string[] {
    const out = ['# HELP portcullis_sessions Open sessions.', '# TYPE portcullis_sessions gauge', `portcullis_sessions ${this.totalSessions()}`];
    out.push('# HELP portcullis_jwks_fetches_total JWKS fetches by outcome.', '# TYPE portcullis_jwks_fetches_total counter');
    for (const [outcome, n] of this.jwks.stats.fetches) out.push(`portcullis_jwks_fetches_total{outcome="${outcome}"} ${n}`);
    out.push('# HELP portcullis_jwks_cache_age_seconds Age of each provider\'s cached JWKS, labelled with its state.', '# TYPE portcullis_jwks_cache_age_seconds gauge');
    for (const d of this.jwks.describe()) {
      out.push(`portcullis_jwks_cache_age_seconds{provider="${d.provider.replace(/["\\\n]/g, '_')}",state="${d.state}",breaker="${d.breakerOpen ? 'open' : 'closed'}"} ${d.ageSeconds ?? -1}`);
    }
    return out;
  }

  /** The superuser offline tools act as: the bootstrap one, or else any superuser. */
  bootstrapUserName(): string {
    const u = this.catalog.userById(BOOTSTRAP_USER_ID) ?? [...this.catalog.users()].find((x) => x.role === 'superuser');
    return u?.name ?? (this.opts.bootstrapUser || 'admin');
  }

  /** Commits and writes of a durable store (the bench and tests read them). */
  get storeStats(): { writes: number; commits: number } | undefined {
    return (this.opts.store as { stats?: { writes: number; commits: number } }).stats;
  }

  get storeDescription(): string {
    return this.opts.store.description;
  }

  /** Replays the store; on an empty catalog, creates tenant 1, its database and the superuser. */
  async open(): Promise<void> {
    const carried: { commit: number; entries: AuditEntry[] }[] = [];
    await this.opts.store.load((commit, seq) => {
      for (const m of commit) {
        if (m.op === 'audit') carried.push({ commit: seq, entries: m.entries as AuditEntry[] });
        else this.catalog.apply(m);
      }
    }, (part) => this.catalog.load(part));
    try {
      this.auditTrail = this.opts.openAudit ? this.opts.openAudit() : AuditTrail.inMemory();
      const recovered = await this.auditTrail.recover(carried);
      if (recovered > 0) this.opts.log?.(`audit trail: ${recovered} records of committed changes recovered from the catalog log`);
    } catch (err) {
      await this.auditTrail?.close();
      await this.opts.store.close();
      throw err;
    }
    if (this.catalog.empty) await this.bootstrap();
  }

  async close(): Promise<void> {
    while (this.compacting) await this.compacting;
    await Promise.allSettled([...this.inFlight]);
    await this.auditTrail?.close();
    await this.opts.store.close();
  }

  private async bootstrap(): Promise<void> {
    const now = this.clock();
    const name = this.opts.bootstrapUser || 'admin';
    let password = this.opts.bootstrapPassword;
    if (!password) {
      password = randomBytes(18).toString('base64url');
      // SPEC §1.1: printed once, on stderr, at the first start; never again, never logged.
      (this.opts.announce ?? ((l) => process.stderr.write(`${l}\n`)))(
        `portcullis: created superuser "${name}" with password: ${password}\n` +
          'portcullis: store it now: it will not be shown again (set PORTCULLIS_BOOTSTRAP_PASSWORD to choose it).',
      );
    }
    const verifier = formatVerifier(await makeVerifier(password, this.scramIterations, this.random(SALT_LEN)));
    const admin: User = {
      id: BOOTSTRAP_USER_ID,
      name,
      tenantId: DEFAULT_TENANT_ID,
      role: 'superuser',
      verifier,
      login: true,
      validUntil: null,
      connectionLimit: -1,
      certificateSubject: null,
      createdAt: now,
      updatedAt: now,
      createdBy: null,
    };
    await this.commitMutations([
      { op: 'init', serverSecret: this.random(32).toString('hex'), at: now },
      { op: 'insert', table: 'tenants', row: { id: DEFAULT_TENANT_ID, name: 'default', createdAt: now } },
      { op: 'insert', table: 'databases', row: { id: 2, tenantId: DEFAULT_TENANT_ID, name: DEFAULT_DATABASE, createdAt: now } },
      { op: 'insert', table: 'users', row: admin },
    ]);
  }

  /**
   * Commits a transaction: checked against the committed state, on disk, then visible. Its
   * audit records (one per statement that changed something) are written alongside, and the
   * commit is acknowledged only once both are durable.
   */
  commit(tx: CatalogTransaction, audit: AuditEntry[] = []): Promise<void> {
    return tx.dirty ? this.commitMutations(tx.mutations, audit) : Promise.resolve();
  }

  /**
   * The commit pipeline. A commit is checked against the committed state plus the commits
   * accepted before it (synchronously, so acceptance order is log order), handed to the
   * store — which writes whatever has queued up with one fdatasync (group commit) — and
   * applied to memory only once durable, in order. So a commit is never visible before it
   * is on disk, concurrent commits share fsyncs, and a failed write leaves no trace.
   */
  private async commitMutations(what: Mutation[] | (() => Mutation[]), audit: AuditEntry[] = []): Promise<void> {
    while (this.compacting) await this.compacting;
    // A builder runs here, synchronously with the check: it sees exactly what it commits over.
    const ms = typeof what === 'function' ? what() : what;
    if (ms.length === 0) return;
    checkCommit(this.catalog, ms, this.pending);
    this.pending.push(ms);
    // The audit records ride in the same log record: one fdatasync makes both durable.
    const durable = this.opts.store.append(audit.length === 0 ? ms : [...ms, { op: 'audit', entries: audit }]);
    const done = durable.then(
      (seq) => {
        this.pending.splice(this.pending.indexOf(ms), 1);
        for (const m of ms) this.catalog.apply(m);
        if (audit.length > 0) {
          this.audit.appendCommitted(audit, seq).catch((err: Error) => {
            // Still in the catalog log: the next start-up writes them (recover).
            this.metrics.auditFailures.inc({});
            this.opts.log?.(`audit trail: could not write the records of commit ${seq} (kept in the catalog log): ${err.message}`);
          });
        }
        this.maybeCompact();
      },
      (err: unknown) => {
        this.pending.splice(this.pending.indexOf(ms), 1);
        throw asPgError(err);
      },
    );
    this.inFlight.add(done);
    try {
      await done;
    } finally {
      this.inFlight.delete(done);
    }
  }

  // ---- API key last use (SPEC §2), kept without an fsync per use -----------------------

  /** Key row id → when its current secret (and its rotated-out one) was last used, since the last flush. */
  private readonly keyUses = new Map<number, number>();
  private readonly previousUses = new Map<number, number>();

  noteKeyUse(keyRowId: number, previous = false): void {
    (previous ? this.previousUses : this.keyUses).set(keyRowId, this.clock());
  }

  /** The last use of a key's current secret (or, `previous`, of its rotated-out one). */
  lastUsed(k: ApiKey, previous = false): number | null {
    const stored = previous ? (k.previous?.lastUsedAt ?? null) : k.lastUsedAt;
    const m = (previous ? this.previousUses : this.keyUses).get(k.id);
    // A use remembered from before a rotation belongs to the old secret, not this one.
    const counts = m !== undefined && (previous || k.rotatedAt === null || m >= k.rotatedAt);
    return counts && (stored === null || m! > stored) ? m! : stored;
  }

  /**
   * Writes the remembered uses as one commit (the server does this once a minute and at
   * shutdown). Keys with a change of their own in flight wait for the next round, so a
   * rotation is never overwritten by a stale copy.
   */
  async flushKeyUses(): Promise<void> {
    if (this.keyUses.size === 0 && this.previousUses.size === 0) return;
    const written = new Map<number, number>();
    const writtenPrevious = new Map<number, number>();
    await this.commitMutations(() => {
      const busy = new Set(this.pending.flat().flatMap((m) => (m.op === 'delete' ? (m.table === 'apiKeys' ? [m.id] : []) : (m.op === 'insert' || m.op === 'update') && m.table === 'apiKeys' ? [m.row.id] : [])));
      const ms: Mutation[] = [];
      for (const id of new Set([...this.keyUses.keys(), ...this.previousUses.keys()])) {
        const k = this.catalog.apiKeyById(id);
        if (k && busy.has(id)) continue;
        const current = k ? this.lastUsed(k) : null;
        const previous = k?.previous ? this.lastUsed(k, true) : null;
        if (!k || (current === k.lastUsedAt && previous === (k.previous?.lastUsedAt ?? null))) {
          // Dropped, or nothing newer than what is stored: nothing to remember any more.
          this.keyUses.delete(id);
          this.previousUses.delete(id);
          continue;
        }
        ms.push({ op: 'update', table: 'apiKeys', row: { ...k, lastUsedAt: current, previous: k.previous ? { ...k.previous, lastUsedAt: previous } : null } });
        if (this.keyUses.has(id)) written.set(id, this.keyUses.get(id)!);
        if (this.previousUses.has(id)) writtenPrevious.set(id, this.previousUses.get(id)!);
      }
      return ms;
    });
    for (const [id, at] of written) if (this.keyUses.get(id) === at) this.keyUses.delete(id);
    for (const [id, at] of writtenPrevious) if (this.previousUses.get(id) === at) this.previousUses.delete(id);
  }

  // ---- snapshots and compaction ----------------------------------------------------------

  private maybeCompact(): void {
    const store = this.opts.store;
    if (this.compacting || store.logBytes === undefined || store.logBytes < (this.opts.compactAt ?? DEFAULT_COMPACT_AT)) return;
    this.compact().catch((err) => this.opts.log?.(`compaction failed (the log keeps growing; will retry): ${(err as Error).message}`));
  }

  /**
   * Writes the catalog as a snapshot and starts the log again behind it. Commits wait while
   * it runs (they queue, and go on in order once it is done).
   */
  async compact(): Promise<{ logBytesBefore: number; snapshotBytes: number } | null> {
    const store = this.opts.store;
    if (!store.compact) return null;
    while (this.compacting) await this.compacting; // one at a time
    let release!: () => void;
    this.compacting = new Promise((r) => (release = r));
    try {
      // Commits already accepted finish first: the snapshot is exactly the durable state.
      await Promise.allSettled([...this.inFlight]);
      // The log records about to go carry audit records: they must be on disk in the trail.
      await this.audit.sync();
      return await store.compact(this.catalog.snapshot());
    } finally {
      this.compacting = null;
      release();
    }
  }


  // ---- connection accounting (CONNECTION LIMIT, max connections) ---------------------

  sessionCount(userId: number): number {
    return this.sessionsByUser.get(userId) ?? 0;
  }

  totalSessions(): number {
    let n = 0;
    for (const c of this.sessionsByUser.values()) n += c;
    return n;
  }

  sessionOpened(userId: number): void {
    this.sessionsByUser.set(userId, this.sessionCount(userId) + 1);
  }

  sessionClosed(userId: number): void {
    const n = this.sessionCount(userId) - 1;
    if (n <= 0) this.sessionsByUser.delete(userId);
    else this.sessionsByUser.set(userId, n);
  }
}
