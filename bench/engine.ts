import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LocalConnection } from '../src/client/local-connection.js';
import { dataDirOptions } from '../src/engine/data-dir.js';
import { Engine } from '../src/engine/engine.js';
import { median, PASSWORD } from './servers.js';

/**
 * What one write statement costs the event loop, without sockets or a disk to wait for:
 * GRANT + REVOKE in a loop through the executor (as `apply` and the CLI drive it), on a
 * real data directory on tmpfs, so the log, its flushes and the audit trail all run. The
 * steadier figure to optimise against: the pgbench comparison swings with the host.
 */
export async function benchEngine(pairs: number, runs: number): Promise<{ medianUs: number; runsUs: number[] }> {
  const base = existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir();
  const dir = mkdtempSync(path.join(base, 'bench-engine-'));
  const engine = new Engine({ ...dataDirOptions(path.join(dir, 'data')), bootstrapUser: 'bench', bootstrapPassword: PASSWORD });
  await engine.open();
  const conn = LocalConnection.open(engine, 'bench');
  try {
    for (const sql of ['CREATE ROLE crew', 'CREATE USER g1']) await run(conn, sql);
    const runsUs: number[] = [];
    for (let r = 0; r <= runs; r++) {
      const started = process.hrtime.bigint();
      for (let i = 0; i < pairs; i++) {
        await run(conn, 'GRANT crew TO g1');
        await run(conn, 'REVOKE crew FROM g1');
      }
      // The first run warms the JIT up and is not counted.
      if (r > 0) runsUs.push(Number(process.hrtime.bigint() - started) / 1000 / pairs);
    }
    return { medianUs: median(runsUs), runsUs };
  } finally {
    await conn.close();
    await engine.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function run(conn: LocalConnection, sql: string): Promise<void> {
  const out = await conn.query(sql);
  if (out.error) throw new Error(`${sql}: ${out.error.message}`);
}
