import type { Catalog } from '../catalog/catalog.js';
import type { Mutation } from '../catalog/model.js';
import { checkCommit } from '../catalog/transaction.js';
import type { AuditEntry } from '../audit/audit-record.js';
import { asPgError, PgError } from '../errors/pg-error.js';
import type { Store } from '../store/store.js';
import type { AuditPipeline, CarriedAudit } from './audit-pipeline.js';

const DEFAULT_COMPACT_AT = 64 * 1024 * 1024;

/**
 * The commit pipeline. A commit is checked against the committed state plus the commits
 * accepted before it (synchronously, so acceptance order is log order), handed to the
 * store — which writes whatever has queued up with one fdatasync (group commit) — and
 * applied to memory only once durable, in order. So a commit is never visible before it
 * is on disk, concurrent commits share fsyncs, and a failed write leaves no trace. Once the
 * log is large enough, the catalog is written as a snapshot and the log starts again.
 * With a store shared by several instances, each commit goes to the store with the commit
 * it was checked against (refused with 40001 if another instance committed since), and the
 * other instances' commits are applied as they are heard of, the way this one's are.
 */
export class CommitPipeline {
  /** Commits accepted (checked, queued for the log) but not yet durable, in log order. */
  private readonly pending: Mutation[][] = [];
  private readonly inFlight = new Set<Promise<void>>();
  private compacting: Promise<void> | null = null;
  /** The last commit applied to the catalog (its sequence number in the store). */
  private version = 0;
  /** Ids another instance's commits inserted after this instance may have handed them out. */
  private readonly doubled = new Set<number>();
  /**
   * Prepared records (see `prepare`) not yet decided, by txid: their changes are not in the
   * catalog, but later commits are checked against them as if they were (a conflict with a
   * change that may still commit refuses the later one).
   */
  private readonly prepared = new Map<string, { databaseId: number; mutations: Mutation[] }>();
  /** Resolves when no prepared record is waiting (compaction would drop one). */
  private undecidedSettled: Promise<void> = Promise.resolve();
  private settleUndecided: () => void = () => undefined;

  constructor(
    private readonly catalog: Catalog,
    private readonly store: Store,
    private readonly audit: AuditPipeline,
    private readonly opts: { compactAt?: number; log?: (line: string) => void },
  ) {}

  /** Replays the store into the catalog; returns the audit records its commits carried. */
  async load(): Promise<CarriedAudit[]> {
    const carried: CarriedAudit[] = [];
    await this.store.load((commit, seq) => {
      const r = this.replay(commit);
      if (r) {
        for (const m of r.mutations) this.catalog.apply(m);
        if (r.audit.length > 0) carried.push({ commit: seq, entries: r.audit });
      }
      this.version = seq;
    }, (part) => this.catalog.load(part));
    return carried;
  }

  /**
   * One log record as it applies: a commit's changes and audit records; a `prepare` record
   * is held (null) until its `decide` record, which applies it (or drops it).
   */
  private replay(commit: Mutation[]): { mutations: Mutation[]; audit: AuditEntry[] } | null {
    const head = commit[0];
    if (head?.op === 'prepare') {
      this.holdPrepared(head.txid, head.databaseId, commit.slice(1));
      return null;
    }
    let audit: AuditEntry[] = [];
    let mutations: Mutation[] = [];
    for (const m of commit) {
      if (m.op === 'audit') audit = m.entries as AuditEntry[];
      else if (m.op === 'decide') {
        const p = this.prepared.get(m.txid);
        this.dropPrepared(m.txid);
        if (p && m.commit) mutations = p.mutations;
      } else mutations.push(m);
    }
    return { mutations, audit };
  }

  private holdPrepared(txid: string, databaseId: number, mutations: Mutation[]): void {
    if (this.prepared.size === 0) this.undecidedSettled = new Promise((r) => (this.settleUndecided = r));
    this.prepared.set(txid, { databaseId, mutations });
  }

  private dropPrepared(txid: string): void {
    if (!this.prepared.delete(txid)) return;
    if (this.prepared.size === 0) this.settleUndecided();
  }

  preparedMutations(txid: string): readonly Mutation[] {
    return this.prepared.get(txid)?.mutations ?? [];
  }

  /** Prepared records without a decision (after a crash: recovery asks the data plane of each). */
  undecided(): { txid: string; databaseId: number }[] {
    return [...this.prepared].map(([txid, p]) => ({ txid, databaseId: p.databaseId }));
  }

  /**
   * First half of a commit that waits for the data plane: checks `ms` as `commit` does and
   * makes a `prepare` record of them durable, without applying them. Until `decide`, later
   * commits are checked against them too.
   */
  async prepare(txid: string, databaseId: number, ms: Mutation[]): Promise<void> {
    while (this.compacting) await this.compacting;
    checkCommit(this.catalog, ms, [...this.pending, ...[...this.prepared.values()].map((p) => p.mutations)]);
    if (this.doubled.size > 0) checkIds(ms, this.doubled);
    this.holdPrepared(txid, databaseId, ms);
    try {
      await this.appendRecord([{ op: 'prepare', txid, databaseId }, ...ms]);
    } catch (err) {
      this.dropPrepared(txid);
      throw err;
    }
  }

  /**
   * Second half: the data plane's outcome. Commit: the prepared changes apply (with their
   * audit records, carried in this record) once this record is durable; abort: they are
   * dropped. If this record does not reach the disk, recovery decides again from the data plane.
   */
  async decide(txid: string, commit: boolean, audit: AuditEntry[] = []): Promise<void> {
    const p = this.prepared.get(txid);
    if (!p) return;
    const record: Mutation[] = [{ op: 'decide', txid, commit }];
    if (commit && audit.length > 0) record.push({ op: 'audit', entries: audit });
    // Not durable (it throws): the prepared changes stay out of the catalog, and the record
    // stays undecided for recovery (the data plane's outcome decides it at the next start).
    await this.appendRecord(record, () => {
      this.dropPrepared(txid);
      return commit ? { ms: p.mutations, audit } : null;
    });
  }

  /** One log record that is not a plain commit; `apply` runs once it is durable. */
  private appendRecord(record: Mutation[], apply?: () => { ms: Mutation[]; audit: AuditEntry[] } | null): Promise<void> {
    return this.append(record, [], (seq) => {
      const r = apply?.();
      if (r) this.applyDurable(r.ms, r.audit, seq);
      else this.version = seq;
    });
  }

  /**
   * Appends `record` to the store, checked against the catalog as of `version` and the
   * commits accepted before it (`marker` stands for it among them until it is durable or
   * refused); `durable` runs once it is on disk.
   */
  private async append(record: Mutation[], marker: Mutation[], durable: (seq: number) => void): Promise<void> {
    // A shared store refuses it if another instance committed since `base`.
    const base = this.version + this.pending.length;
    this.pending.push(marker);
    const done = this.store.append(record, base).then(
      (seq) => {
        this.pending.splice(this.pending.indexOf(marker), 1);
        durable(seq);
        this.maybeCompact();
      },
      (err: unknown) => {
        this.pending.splice(this.pending.indexOf(marker), 1);
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

  /**
   * A store shared with other instances: their commits, as they are heard of, are applied
   * the way this instance's own are once durable (sessions see them at their next
   * statement). Called once the audit trail is open, before anything is committed here.
   */
  follow(): void {
    this.store.follow?.((commit, seq) => {
      // An id below this instance's next one may have been handed out here too, to a
      // transaction not yet committed: that transaction must not commit a second row with it.
      const next = this.catalog.peekNextId();
      const r = this.replay(commit);
      if (!r) {
        this.version = seq;
        return;
      }
      for (const m of r.mutations) if (m.op === 'insert' && m.row.id < next) this.doubled.add(m.row.id);
      this.applyDurable(r.mutations, r.audit, seq);
    });
  }

  /** Changes accepted but not yet durable (a builder passed to `commit` may look at them). */
  get accepted(): readonly Mutation[][] {
    return this.pending;
  }

  /**
   * Commits `what` (or what the builder returns, built synchronously with the check, so it
   * sees exactly what it commits over) with its audit records; resolves once both are durable.
   */
  async commit(what: Mutation[] | (() => Mutation[]), audit: AuditEntry[] = []): Promise<void> {
    while (this.compacting) await this.compacting;
    const ms = typeof what === 'function' ? what() : what;
    if (ms.length === 0) return;
    checkCommit(this.catalog, ms, this.prepared.size === 0 ? this.pending : [...this.pending, ...[...this.prepared.values()].map((p) => p.mutations)]);
    if (this.doubled.size > 0) checkIds(ms, this.doubled);
    // The audit records ride in the same log record: one fdatasync makes both durable.
    await this.append(audit.length === 0 ? ms : [...ms, { op: 'audit', entries: audit }], ms, (seq) => this.applyDurable(ms, audit, seq));
  }

  /** A durable commit (this instance's or another's) into the catalog and the audit trail. */
  private applyDurable(ms: Mutation[], audit: AuditEntry[], seq: number): void {
    for (const m of ms) this.catalog.apply(m);
    this.version = seq;
    if (audit.length > 0) this.audit.recordCommitted(audit, seq);
  }

  private maybeCompact(): void {
    const store = this.store;
    if (this.compacting || this.prepared.size > 0 || store.logBytes === undefined || store.logBytes < (this.opts.compactAt ?? DEFAULT_COMPACT_AT)) return;
    this.compact().catch((err) => this.opts.log?.(`compaction failed (the log keeps growing; will retry): ${(err as Error).message}`));
  }

  /**
   * Writes the catalog as a snapshot and starts the log again behind it. Commits wait while
   * it runs (they queue, and go on in order once it is done).
   */
  async compact(): Promise<{ logBytesBefore: number; snapshotBytes: number } | null> {
    const store = this.store;
    if (!store.compact) return null;
    while (this.compacting) await this.compacting; // one at a time
    let release!: () => void;
    this.compacting = new Promise((r) => (release = r));
    try {
      // Commits already accepted finish first: the snapshot is exactly the durable state.
      await Promise.allSettled([...this.inFlight]);
      // A snapshot holds no prepared record: one waiting for its decision is waited for.
      while (this.prepared.size > 0) await this.undecidedSettled;
      // The log records about to go carry audit records: they must be on disk in the trail.
      await this.audit.audit.sync();
      return await store.compact(this.catalog.snapshot());
    } finally {
      this.compacting = null;
      release();
    }
  }

  /** Waits for a running compaction and for every accepted commit to settle. */
  async drain(): Promise<void> {
    while (this.compacting) await this.compacting;
    await Promise.allSettled([...this.inFlight]);
  }
}

/** Refuses a commit that inserts a row under an id another instance has used meanwhile. */
function checkIds(ms: Mutation[], doubled: Set<number>): void {
  for (const m of ms) {
    if (m.op === 'insert' && doubled.has(m.row.id)) {
      throw new PgError('serialization_failure', 'could not serialize access due to concurrent update', {
        detail: `Another portcullis instance committed a change using id ${m.row.id} after this transaction allocated it.`,
        hint: 'Retry the transaction.',
      });
    }
  }
}
