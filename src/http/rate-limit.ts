/**
 * HTTP rate limits per principal: fixed windows of a minute and an hour (defaults
 * 1,000 and 10,000 requests), reported in X-RateLimit-Limit / -Remaining / -Reset (the
 * reset as Unix seconds, as GitHub's API does) and answered with 429 + Retry-After when a
 * window is used up.
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

export class RateLimiter {
  private readonly windows = new Map<string, Windows>();

  constructor(
    readonly policy: RateLimitPolicy,
    private readonly clock: () => number,
  ) {}

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
