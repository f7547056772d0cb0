import { AuditTrail } from '../audit/audit-trail.js';
import type { AuditLog } from '../audit/audit-log.js';
import type { AuditEntry } from '../audit/audit-record.js';
import type { Metrics } from '../metrics/metrics.js';

/** A commit's audit records as found in the catalog log at start-up (see AuditTrail.recover). */
export interface CarriedAudit {
  commit: number;
  entries: AuditEntry[];
}

/**
 * Where audit records go: logins and denials are appended on their own; a commit's records
 * ride in its catalog log record and are appended once it is durable. A trail that cannot
 * be written (disk full, I/O error) stops neither logins nor reads: the failure is logged
 * and counted (portcullis_audit_write_failures_total), and a commit's records, still in the
 * catalog log, are written at the next start-up.
 */
export class AuditPipeline {
  private trail: AuditLog | null = null;

  constructor(
    private readonly metrics: Metrics,
    private readonly log: ((line: string) => void) | undefined,
  ) {}

  /** Opens the trail and writes the records of commits it lacks (those in `carried`). */
  async open(openTrail: (() => AuditLog) | undefined, carried: CarriedAudit[]): Promise<void> {
    this.trail = openTrail ? openTrail() : AuditTrail.inMemory();
    const recovered = await this.trail.recover(carried);
    if (recovered > 0) this.log?.(`audit trail: ${recovered} records of committed changes recovered from the catalog log`);
  }

  /** The audit trail (opened with the catalog). */
  get audit(): AuditLog {
    if (!this.trail) throw new Error('the engine is not open');
    return this.trail;
  }

  /** Appends one record; resolves once it is durable, or once its failure is logged. */
  record(entry: AuditEntry): Promise<void> {
    return this.audit.append(entry).catch((err: Error) => {
      this.metrics.auditFailures.inc({});
      this.log?.(`audit trail: could not record a ${entry.kind} record: ${err.message}`);
    });
  }

  /** The records of commit `seq`, now durable in the catalog log, written to the trail. */
  recordCommitted(entries: AuditEntry[], seq: number): void {
    this.audit.appendCommitted(entries, seq).catch((err: Error) => {
      // Still in the catalog log: the next start-up writes them (recover).
      this.metrics.auditFailures.inc({});
      this.log?.(`audit trail: could not write the records of commit ${seq} (kept in the catalog log): ${err.message}`);
    });
  }

  async close(): Promise<void> {
    await this.trail?.close();
  }
}
