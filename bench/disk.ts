import { closeSync, fdatasyncSync, fsyncSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { median } from './servers.js';

/**
 * The disk's own answer time: small appends to a preallocated file, each followed by
 * fdatasync, as the catalog log does. Every durable commit, portcullis's or PostgreSQL's,
 * waits at least this long, so a commit rate per client cannot pass 1 / this.
 */
export function fdatasyncMicros(n = 500, dir = os.tmpdir()): { p10: number; p50: number; p90: number } {
  const d = mkdtempSync(path.join(dir, 'bench-disk-'));
  const fd = openSync(path.join(d, 'log'), 'w+');
  try {
    const zeros = Buffer.alloc(4 << 20);
    writeSync(fd, zeros, 0, zeros.length, 0);
    fsyncSync(fd);
    const rec = Buffer.alloc(300, 1); // about one GRANT's log record
    const us: number[] = [];
    for (let i = 0, at = 0; i < n; i++, at += rec.length) {
      writeSync(fd, rec, 0, rec.length, at);
      const t = process.hrtime.bigint();
      fdatasyncSync(fd);
      us.push(Number(process.hrtime.bigint() - t) / 1000);
    }
    us.sort((a, b) => a - b);
    return { p10: us[Math.floor(n * 0.1)]!, p50: median(us), p90: us[Math.floor(n * 0.9)]! };
  } finally {
    closeSync(fd);
    rmSync(d, { recursive: true, force: true });
  }
}
