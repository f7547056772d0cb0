import { GENESIS, readRecord, type AuditEntry, type AuditRecord } from './audit-record.js';

/**
 * Where audit records go: a file in the data directory (AuditTrail), memory, or a table
 * of the PostgreSQL a catalog shared by several instances lives in (PgAuditTrail). One
 * hash chain in every case.
 */
export interface AuditLog {
  /** Records the entry; resolves once it is durable. */
  append(entry: AuditEntry): Promise<void>;
  /** The records of catalog commit `commit`, already durable with it: written now if they were not. */
  appendCommitted(entries: AuditEntry[], commit: number): Promise<void>;
  /** Start-up: the records of commits the trail lacks, from the commits that carried them. */
  recover(carried: { commit: number; entries: AuditEntry[] }[]): Promise<number>;
  /** Waits until everything appended so far is written (or has failed). */
  settle(): Promise<void>;
  /** Everything appended so far, written and flushed. */
  sync(): Promise<void>;
  /**
   * The last `limit` records (all when null) of `tenant` (every tenant's when null), oldest
   * first. What was appended is there once `settle()` has resolved.
   */
  read(limit: number | null, tenant: number | null): Promise<Iterable<AuditRecord>>;
  close(): Promise<void>;
}

/**
 * Checks a chain one record at a time, in order: each whole, its hash right, numbered one
 * after the other, naming the previous one's hash. `add` returns what is wrong, or null.
 */
export class ChainCheck {
  private prev = GENESIS;
  private count = 0;

  add(text: string): string | null {
    const rec = readRecord(text);
    if (typeof rec === 'string') return rec;
    const expected = this.count + 1;
    if (rec.seq !== expected) return `the record is numbered ${rec.seq} where ${expected} belongs (a record was removed or moved)`;
    if (rec.prev !== this.prev) return 'the record does not name the hash of the one before it (a record was removed, moved or edited)';
    this.prev = rec.hash;
    this.count = expected;
    return null;
  }

  get records(): number {
    return this.count;
  }

  get head(): string {
    return this.prev;
  }
}
