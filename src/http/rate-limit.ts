import type { Ledger, RateEvent } from '../store/store.js';

/**
 * HTTP rate limits per principal: fixed windows of a minute and an hour (defaults
 * 1,000 and 10,000 requests), reported in X-RateLimit-Limit / -Remaining / -Reset (the
 * reset as Unix seconds, as GitHub's API does) and answered with 429 + Retry-After when a
 * window is used up. Instances sharing a catalog count each other's requests (`share`).
 */
export interface RateLimitPolicy {
  perMinute: number;
  perHour: number;
}

export const DEFAULT_RATE_LIMIT: RateLimitPolicy = { perMinute: 1000, perHour: 10_000 };

interface Windows {
  minuteStart: number;
  minute: number;
  hourStart: number;
  hour: number;
}

export interface RateDecision {
  allowed: boolean;
  headers: Record<string, string>;
}

const MINUTE = 60_000;
const HOUR = 3_600_000;
/**
 * Requests let through are told to the other instances at most this often, summed per
 * principal (a row per request would cost PostgreSQL more than the request): spreading a
 * burst over N instances gains at most what N instances let through in this time.
 */
export const RATE_SHARE_MS = 100;

export class RateLimiter {
  private readonly windows = new Map<string, Windows>();
  private ledger: Ledger<RateEvent> | null = null;
  /** Requests let through since they were last told to the other instances, per principal. */
  private readonly untold = new Map<string, RateEvent>();
  private telling: NodeJS.Timeout | null = null;

  constructor(
    readonly policy: RateLimitPolicy,
    private readonly clock: () => number,
  ) {}

  /** Counts other instances' requests too (the last hour's first), and tells them of this one's. */
  async share(ledger: Ledger<RateEvent>): Promise<void> {
    await ledger.subscribe((e) => this.heard(e));
    this.ledger = ledger;
  }

  /**
   * Another instance's requests, counted in this principal's windows. A window starts at
   * the principal's first request on any instance: requests heard from before the start of
   * a window still open move its start back to them.
   */
  private heard(e: RateEvent): void {
    const now = this.clock();
    const at = Math.min(e.at, now);
    if (now - at >= HOUR) return;
    let w = this.windows.get(e.principal);
    if (!w) this.windows.set(e.principal, (w = { minuteStart: at, minute: 0, hourStart: at, hour: 0 }));
    if (now - at < MINUTE) {
      if (at >= w.minuteStart + MINUTE) Object.assign(w, { minuteStart: at, minute: 0 });
      else if (at < w.minuteStart) w.minuteStart = at;
      w.minute += e.requests;
    }
    if (at >= w.hourStart + HOUR) Object.assign(w, { hourStart: at, hour: 0 });
    else if (at < w.hourStart) w.hourStart = at;
    w.hour += e.requests;
  }

  /** Remembers a request let through, to tell the other instances within RATE_SHARE_MS. */
  private tell(principal: string, now: number): void {
    const u = this.untold.get(principal);
    if (u) u.requests++;
    else this.untold.set(principal, { principal, requests: 1, at: now });
    this.telling ??= setTimeout(() => {
      this.telling = null;
      for (const e of this.untold.values()) this.ledger?.publish(e);
      this.untold.clear();
    }, RATE_SHARE_MS).unref();
  }

  /** Counts a request of `principal` (when allowed) and says what to answer. */
  take(principal: string): RateDecision {
    const now = this.clock();
    if (this.windows.size > 100_000) this.forget(now);
    let w = this.windows.get(principal);
    if (!w) this.windows.set(principal, (w = { minuteStart: now, minute: 0, hourStart: now, hour: 0 }));
    if (now - w.minuteStart >= MINUTE) Object.assign(w, { minuteStart: now, minute: 0 });
    if (now - w.hourStart >= HOUR) Object.assign(w, { hourStart: now, hour: 0 });
    const minuteLeft = this.policy.perMinute - w.minute;
    const hourLeft = this.policy.perHour - w.hour;
    const allowed = minuteLeft > 0 && hourLeft > 0;
    if (allowed) {
      w.minute++;
      w.hour++;
      if (this.ledger) this.tell(principal, now);
    }
    // The binding window: the one with fewer requests left.
    const byHour = hourLeft < minuteLeft;
    const limit = byHour ? this.policy.perHour : this.policy.perMinute;
    const resetAt = byHour ? w.hourStart + HOUR : w.minuteStart + MINUTE;
    const remaining = Math.max(0, Math.min(minuteLeft, hourLeft) - (allowed ? 1 : 0));
    const headers: Record<string, string> = {
      'x-ratelimit-limit': String(limit),
      'x-ratelimit-remaining': String(remaining),
      'x-ratelimit-reset': String(Math.ceil(resetAt / 1000)),
    };
    if (!allowed) headers['retry-after'] = String(Math.max(1, Math.ceil((resetAt - now) / 1000)));
    return { allowed, headers };
  }

  private forget(now: number): void {
    for (const [k, w] of this.windows) if (now - w.hourStart >= HOUR) this.windows.delete(k);
  }
}
