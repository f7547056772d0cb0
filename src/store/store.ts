import type { Mutation } from '../catalog/model.js';
import type { SnapshotPart } from '../catalog/catalog.js';
import type { AuditLog } from '../audit/audit-log.js';

/** Where committed catalog changes live. One commit = one record, durable when append resolves. */
export interface Store {
  /**
   * Hands every committed change to `apply`, in commit order (called once, at start). A
   * snapshot arrives in chunks to `bulk` (rows as bytes, see Table.load), so a large catalog
   * is never held twice in memory.
   */
  load(apply: (commit: Mutation[], seq: number) => void, bulk: (part: SnapshotPart) => void): Promise<void>;
  /**
   * Durably appends one commit; resolves, with the commit's sequence number, only once it is
   * on disk. `base`: the sequence number of the last commit this one was checked against
   * (applied, or accepted before it). A store with one writer ignores it; a store shared by
   * several instances refuses (40001) a commit whose base is not the last commit there.
   */
  append(commit: Mutation[], base?: number): Promise<number>;
  /**
   * A store shared by several instances: from now on hands the commits made through other
   * instances to `apply`, in commit order, as it hears of them (called once, after load).
   */
  follow?(apply: (commit: Mutation[], seq: number) => void): void;
  /** A store shared by several instances: where they count failed logins together. */
  readonly lockoutLedger?: LockoutLedger;
  /** A store shared by several instances: where they count HTTP requests against rate limits together. */
  readonly rateLedger?: Ledger<RateEvent>;
  /** A store shared by several instances: where they keep API keys' last use. */
  readonly keyUseLedger?: Ledger<KeyUse>;
  /** A store that keeps the audit trail itself (one chain for every instance sharing it). */
  openAudit?(): AuditLog;
  close(): Promise<void>;
  readonly description: string;
  /** Bytes in the log since the last snapshot; undefined for a store that keeps no log. */
  readonly logBytes?: number;
  /** Replaces the log by a snapshot of `image` (Catalog.snapshot). */
  compact?(image: Iterable<SnapshotPart>): Promise<{ logBytesBefore: number; snapshotBytes: number }>;
}

/** One change to the counters, as instances sharing a catalog tell each other of them. */
export interface LockoutEvent {
  kind: 'failed' | 'succeeded' | 'unlocked';
  address: string;
  user: string;
  /** When it happened (milliseconds since the epoch). */
  at: number;
}

/**
 * Where instances sharing a catalog tell each other of what each counts or notes, so that
 * spreading attempts over N instances does not buy N times the tries (a shared Store
 * provides one per kind). `publish` never waits for the other instances.
 */
export interface Ledger<E> {
  publish(event: E): void;
  /** `hear` gets every other instance's events from now on, and first the recent ones. */
  subscribe(hear: (event: E) => void): Promise<void>;
}

/** Failed logins, shared (see Lockouts.share). */
export type LockoutLedger = Ledger<LockoutEvent>;

/** Requests an instance let through for one rate-limited principal since its last such event. */
export interface RateEvent {
  principal: string;
  requests: number;
  /** When the first of them came (milliseconds since the epoch). */
  at: number;
}

/** An API key's secret (its current one, or `previous`: its rotated-out one) used at `at`. */
export interface KeyUse {
  key: number;
  previous: boolean;
  at: number;
}

/** `--memory`: nothing survives the process. */
export class MemoryStore implements Store {
  readonly description = 'in memory (nothing is kept after exit)';
  async load(): Promise<void> {}
  private seq = 0;
  async append(): Promise<number> {
    return ++this.seq;
  }
  async close(): Promise<void> {}
}
