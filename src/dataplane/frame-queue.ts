/**
 * Backend frames waiting for a lease holder's `next()`: frames are delivered in order; once
 * the connection breaks, the frames already received are still delivered and every later
 * `next()` rejects with the failure.
 */
export class FrameQueue {
  private readonly frames: Uint8Array[] = [];
  private readonly waiters: { resolve: (f: Uint8Array) => void; reject: (e: Error) => void }[] = [];
  private failure: Error | null = null;

  push(frame: Uint8Array): void {
    const w = this.waiters.shift();
    if (w) w.resolve(frame);
    else this.frames.push(frame);
  }

  fail(err: Error): void {
    if (this.failure) return;
    this.failure = err;
    for (const w of this.waiters.splice(0)) w.reject(err);
  }

  get failed(): Error | null {
    return this.failure;
  }

  /** Frames received but not yet taken. */
  get length(): number {
    return this.frames.length;
  }

  next(): Promise<Uint8Array> {
    const f = this.frames.shift();
    if (f) return Promise.resolve(f);
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }
}
