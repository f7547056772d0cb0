/**
 * HTTP requests authenticate one by one, thousands a second from one credential: recording
 * each as a login would cost a durable write per request and grow the append-only trail by
 * gigabytes an hour. So a successful HTTP login is recorded the first time a credential is
 * used from an address, then at most once per window, the record counting the requests
 * since the previous one. Failures are always recorded (they are not filtered here).
 */
export class RepeatedLogins {
  private readonly last = new Map<string, { at: number; since: number }>();

  constructor(
    private readonly windowMs: number,
    /** Pairs remembered at most; the oldest is forgotten first (its next use is recorded). */
    private readonly max = 100_000,
  ) {}

  /** null when this login is only counted; else a record is due, with the logins since the last one. */
  admit(key: string, now: number): number | null {
    const seen = this.last.get(key);
    if (seen && now - seen.at < this.windowMs) {
      seen.since++;
      return null;
    }
    this.last.delete(key); // re-inserted last: the Map's order is oldest first
    this.last.set(key, { at: now, since: 0 });
    if (this.last.size > this.max) this.last.delete(this.last.keys().next().value as string);
    return seen?.since ?? 0;
  }
}
