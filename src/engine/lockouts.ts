import type { Refusal } from '../auth/refusal.js';
import type { LockoutEvent, LockoutLedger } from '../store/store.js';

export type { LockoutEvent, LockoutLedger } from '../store/store.js';

/**
 * Brute-force protection: failed logins counted per source address and per user
 * name, across pgwire and HTTP. Too many failures from one address in a window lock that
 * address out; too many consecutive failures for one name lock that name. A locked attempt
 * runs the whole exchange and fails like any other (the client cannot tell); the recorded
 * reason says "locked out".
 */
export interface LockoutPolicy {
  /** Failures from one address within `ipWindowMs` that lock it out. */
  ipFailures: number;
  ipWindowMs: number;
  ipLockMs: number;
  /** Consecutive failures for one user name that lock it. */
  userFailures: number;
  userLockMs: number;
}

export const DEFAULT_LOCKOUT_POLICY: LockoutPolicy = { ipFailures: 20, ipWindowMs: 60_000, ipLockMs: 60_000, userFailures: 10, userLockMs: 60_000 };

interface Counter {
  /** Failure times (addresses: within the window; names: consecutive). */
  failures: number[];
  lockedUntil: number;
}

export interface Lockout {
  kind: 'address' | 'user';
  subject: string;
  failures: number;
  lockedUntil: number;
}

/** Counters kept at most this long without a failure (bounded memory under a spray attack). */
const FORGET_AFTER_MS = 10 * 60_000;

export class Lockouts {
  private readonly byAddress = new Map<string, Counter>();
  private readonly byUser = new Map<string, Counter>();

  private ledger: LockoutLedger | null = null;

  constructor(
    readonly policy: LockoutPolicy,
    private readonly clock: () => number,
  ) {}

  /** Counts other instances' failures too, and tells them of this one's. */
  async share(ledger: LockoutLedger): Promise<void> {
    await ledger.subscribe((e) => this.heard(e));
    this.ledger = ledger;
  }

  /** Another instance's event, counted as if it had happened here (at its time, never in the future). */
  private heard(e: LockoutEvent): void {
    const at = Math.min(e.at, this.clock());
    if (e.kind === 'failed') this.count(e.address, e.user, at);
    else if (e.kind === 'succeeded') this.clearRun(e.user, at);
    else this.byUser.delete(e.user);
  }

  /** Why an attempt from `address` as `user` is refused before its credential counts, or null. */
  locked(address: string, user: string): Refusal | null {
    const now = this.clock();
    const a = this.byAddress.get(address);
    if (a && a.lockedUntil > now) return { code: 'locked_out', reason: `address ${address} locked out until ${new Date(a.lockedUntil).toISOString()}` };
    const u = this.byUser.get(user);
    if (u && u.lockedUntil > now) return { code: 'locked_out', reason: `user "${user}" locked out until ${new Date(u.lockedUntil).toISOString()}` };
    return null;
  }

  failed(address: string, user: string): void {
    const now = this.clock();
    this.count(address, user, now);
    this.ledger?.publish({ kind: 'failed', address, user, at: now });
  }

  private count(address: string, user: string, now: number): void {
    this.prune(now);
    const p = this.policy;
    const a = this.counter(this.byAddress, address);
    a.failures = a.failures.filter((t) => t > now - p.ipWindowMs);
    a.failures.push(now);
    if (a.failures.length >= p.ipFailures && a.lockedUntil <= now) a.lockedUntil = now + p.ipLockMs;
    const u = this.counter(this.byUser, user);
    u.failures.push(now);
    if (u.failures.length >= p.userFailures && u.lockedUntil <= now) {
      u.lockedUntil = now + p.userLockMs;
      u.failures = [];
    }
  }

  /** A success ends a user's run of consecutive failures (an address's window stays). */
  succeeded(user: string): void {
    const now = this.clock();
    // Only a run of failures is news to the other instances (not every good login).
    if (this.clearRun(user, now)) this.ledger?.publish({ kind: 'succeeded', address: '', user, at: now });
  }

  private clearRun(user: string, now: number): boolean {
    const u = this.byUser.get(user);
    return !!u && u.lockedUntil <= now && this.byUser.delete(user);
  }

  /** ALTER USER ... UNLOCK: true when there was something to clear. */
  unlockUser(user: string): boolean {
    this.ledger?.publish({ kind: 'unlocked', address: '', user, at: this.clock() });
    return this.byUser.delete(user);
  }

  /** Current lockouts, and counters with failures (SHOW LOCKOUTS). */
  list(): Lockout[] {
    const now = this.clock();
    const rows: Lockout[] = [];
    for (const [kind, map] of [['address', this.byAddress], ['user', this.byUser]] as const) {
      for (const [subject, c] of map) {
        if (c.lockedUntil > now) rows.push({ kind, subject, failures: c.failures.length, lockedUntil: c.lockedUntil });
      }
    }
    return rows.sort((x, y) => (x.kind + x.subject < y.kind + y.subject ? -1 : 1));
  }

  private counter(map: Map<string, Counter>, key: string): Counter {
    let c = map.get(key);
    if (!c) map.set(key, (c = { failures: [], lockedUntil: 0 }));
    return c;
  }

  private prune(now: number): void {
    if (this.byAddress.size + this.byUser.size < 10_000) return;
    for (const map of [this.byAddress, this.byUser]) {
      for (const [k, c] of map) if (c.lockedUntil <= now && (c.failures.at(-1) ?? 0) < now - FORGET_AFTER_MS) map.delete(k);
    }
  }
}
