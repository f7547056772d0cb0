import type { Catalog } from '../catalog/catalog.js';
import type { Refusal } from '../auth/refusal.js';
import type { Metrics } from '../metrics/metrics.js';
import type { AuditPipeline } from './audit-pipeline.js';
import type { LoginMethod } from './credentials.js';
import type { Lockouts } from './lockouts.js';
import { RepeatedLogins } from './repeated-logins.js';

/**
 * One login attempt, as recorded: lockout counters, metrics, the server log, the audit
 * trail. A failure carries its code (the metric label) and its real reason (the log and
 * the audit trail; the client only ever hears "authentication failed").
 */
export type LoginRecord = LoginAttempt & ({ ok: true } | ({ ok: false } & Refusal));

interface LoginAttempt {
  method: LoginMethod;
  /** The name the attempt was made under (startup user, key id): lockouts count by it. */
  principal: string;
  /** The principal's tenant, when known (else the user of that name's, if any). */
  tenant?: number | null;
  /** A failure after the credential was verified (connection limit, database): not brute force. */
  credentialOk?: boolean;
  address: string;
  via: 'pgwire' | 'http';
}

/** A credential's successful HTTP requests from one address: one login record per minute at most. */
const HTTP_LOGIN_AUDIT_WINDOW_MS = 60_000;

/** Records login attempts, from pgwire and HTTP alike. */
export class LoginRecorder {
  /** Successful HTTP logins already recorded in the last minute (see RepeatedLogins). */
  private readonly httpLogins = new RepeatedLogins(HTTP_LOGIN_AUDIT_WINDOW_MS);

  constructor(
    private readonly deps: {
      catalog: Catalog;
      lockouts: Lockouts;
      metrics: Metrics;
      audit: AuditPipeline;
      clock: () => number;
      log: ((line: string) => void) | undefined;
    },
  ) {}

  /**
   * Counts a login, logs a failure with its real reason (never a secret: none reaches here)
   * and puts it in the audit trail; resolves once the record is durable.
   */
  record(r: LoginRecord): Promise<void> {
    const { lockouts, metrics, clock, log } = this.deps;
    if (r.ok) lockouts.succeeded(r.principal);
    else if (!r.credentialOk) lockouts.failed(r.address, r.principal);
    metrics.logins.inc({ method: r.method, outcome: r.ok ? 'success' : 'failure', ...(r.ok ? {} : { reason: r.code }) });
    if (!r.ok) log?.(`login failed: method=${r.method} via=${r.via} principal=${JSON.stringify(r.principal)} from=${r.address} reason=${JSON.stringify(r.reason)}`);
    let repeats: number | null = 0;
    if (r.ok && r.via === 'http') {
      repeats = this.httpLogins.admit(`${r.method}\0${r.principal}\0${r.address}`, clock());
      if (repeats === null) return Promise.resolve();
    }
    const tenant = r.tenant !== undefined ? r.tenant : (this.deps.catalog.userByName(r.principal)?.tenantId ?? null);
    return this.deps.audit.record({
      kind: 'login',
      at: clock(),
      tenant,
      method: r.method,
      via: r.via,
      principal: r.principal,
      address: r.address,
      ok: r.ok,
      ...(r.ok ? {} : { reason: r.reason }),
      ...(repeats > 0 ? { repeats } : {}),
    });
  }
}
