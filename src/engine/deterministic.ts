import { createHash } from 'node:crypto';

/**
 * Deterministic mode (--deterministic), for golden files: time starts at a fixed instant and moves
 * one second per statement; ids, key secrets and salts come from a seeded generator. The
 * same script then prints the same bytes on every run, through psql or `portcullis golden`.
 */
export const DETERMINISTIC_EPOCH = Date.UTC(2026, 0, 1);

/**
 * The superuser's password when PORTCULLIS_BOOTSTRAP_PASSWORD is not set: its verifier shows
 * in DUMP CATALOG, so the golden runner and `serve --deterministic` must agree on it.
 */
export const DETERMINISTIC_BOOTSTRAP_PASSWORD = 'portcullis';

export interface Determinism {
  clock: () => number;
  /** Called as each statement starts: the clock's one-second step. */
  advanceClock: () => void;
  random: (bytes: number) => Buffer;
}

export function deterministic(seed = 'portcullis'): Determinism {
  let now = DETERMINISTIC_EPOCH;
  let counter = 0;
  return {
    clock: () => now,
    advanceClock: () => {
      now += 1000;
    },
    random: (n) => {
      const out = Buffer.alloc(n);
      for (let i = 0; i < n; i += 32) createHash('sha256').update(`${seed}:${counter++}`).digest().copy(out, i);
      return out;
    },
  };
}
