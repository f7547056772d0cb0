import type { Catalog } from '../catalog/catalog.js';
import type { Mutation } from '../catalog/model.js';
import { checkCommit } from '../catalog/transaction.js';
import type { AuditEntry } from '../audit/audit-record.js';
import { asPgError } from '../errors/pg-error.js';
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
 */
export class CommitPipeline {
  /** Commits accepted (checked, queued for the log) but not yet durable, in log order. */
  private readonly pending: Mutation[][] = [];
  private readonly inFlight = new Set<Promise<void>>();
  private compacting: Promise<void> | null = null;

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
      for (const m of commit) {
        if (m.op === 'audit') carried.push({ commit: seq, entries: m.entries as AuditEntry[] });
        else this.catalog.apply(m);
      }
    }, (part) => this.catalog.load(part));
    return carried;
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
    checkCommit(this.catalog, ms, this.pending);
    this.pending.push(ms);
    // The audit records ride in the same log record: one fdatasync makes both durable.
    const durable = this.store.append(audit.length === 0 ? ms : [...ms, { op: 'audit', entries: audit }]);
    const done = durable.then(
      (seq) => {
        this.pending.splice(this.pending.indexOf(ms), 1);
        for (const m of ms) this.catalog.apply(m);
        if (audit.length > 0) this.audit.recordCommitted(audit, seq);
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

  private maybeCompact(): void {
    const store = this.store;
    if (this.compacting || store.logBytes === undefined || store.logBytes < (this.opts.compactAt ?? DEFAULT_COMPACT_AT)) return;
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
