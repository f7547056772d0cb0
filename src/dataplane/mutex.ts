/**
 * A first-in, first-out mutex: `acquire()` resolves in call order, each with the function
 * that lets the next waiter in. Turns on a single connection are taken with it.
 */
export class FifoMutex {
  private held = false;
  private readonly waiters: (() => void)[] = [];

  acquire(): Promise<() => void> {
    return new Promise((resolve) => {
      const grant = () => {
        this.held = true;
        let done = false;
        resolve(() => {
          if (done) return;
          done = true;
          const next = this.waiters.shift();
          if (next) next();
          else this.held = false;
        });
      };
      if (this.held) this.waiters.push(grant);
      else grant();
    });
  }

  /** True while someone holds it or waits for it. */
  get busy(): boolean {
    return this.held;
  }
}
