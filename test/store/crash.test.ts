import { mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { client, spawnServer, type ServerProcess } from '../support/server.js';
import { SNAPSHOT_FILE } from '../../src/store/log-store.js';

/**
 * SPEC §7 under fire: writers commit concurrently — single statements and two-user
 * transactions — and the server is killed with SIGKILL at a random moment (after a random
 * number of acknowledged commits, while others are in flight), 20 times over one data
 * directory, with compaction (snapshot + new log) triggered every few kilobytes. After every
 * restart, each acknowledged commit is present, and no transaction is half there.
 */
const ROUNDS = 20;
const WRITERS = 4;

let seed = Number(process.env.CRASH_SEED ?? 20261124);
const random = () => {
  seed = (seed * 1103515245 + 12345) % 2 ** 31;
  return seed / 2 ** 31;
};

let dir: string;
let proc: ServerProcess | null = null;
afterAll(async () => {
  await proc?.stop('SIGKILL');
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('SIGKILL during concurrent writes', () => {
  it(`loses no acknowledged commit and shows no partial transaction (${ROUNDS} kills)`, async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'portcullis-crash-'));
    const acknowledged = new Set<string>();
    const pairs: [string, string][] = [];
    for (let round = 0; round < ROUNDS; round++) {
      // A small compaction threshold: snapshots and log rewrites happen under fire too.
      proc = await spawnServer(['--data', dir, '--compact-at', '4096']);
      const server = proc;
      const killAfter = 5 + Math.floor(random() * 60);
      let acked = 0;
      let killed = false;
      const writer = async (w: number) => {
        let c: pg.Client;
        try {
          c = await client(server.port);
        } catch {
          return; // the kill came first
        }
        c.on('error', () => {});
        for (let i = 0; !killed; i++) {
          const single = `s_${round}_${w}_${i}`;
          const [a, b] = [`p_${round}_${w}_${i}_a`, `p_${round}_${w}_${i}_b`];
          const pair = i % 2 === 1;
          if (pair) pairs.push([a, b]);
          try {
            await c.query(pair ? `BEGIN; CREATE USER ${a}; CREATE USER ${b}; COMMIT` : `CREATE USER ${single}`);
          } catch {
            break; // the connection died with the server
          }
          if (pair) {
            acknowledged.add(a);
            acknowledged.add(b);
          } else acknowledged.add(single);
          if (++acked === killAfter && !killed) {
            killed = true;
            server.child.kill('SIGKILL');
          }
        }
        await c.end().catch(() => {});
      };
      await Promise.all(Array.from({ length: WRITERS }, (_, w) => writer(w)));
      await server.stop('SIGKILL');

      proc = await spawnServer(['--data', dir]);
      const c = await client(proc.port);
      const present = new Set((await c.query('SHOW USERS')).rows.map((r) => r.name as string));
      await c.end();
      await proc.stop('SIGKILL');
      proc = null;
      const lost = [...acknowledged].filter((n) => !present.has(n));
      expect(lost, `round ${round}: acknowledged but lost`).toEqual([]);
      const torn = pairs.filter(([a, b]) => present.has(a) !== present.has(b));
      expect(torn, `round ${round}: half a transaction`).toEqual([]);
    }
    expect(acknowledged.size).toBeGreaterThan(ROUNDS * 5);
    expect((await stat(path.join(dir, SNAPSHOT_FILE))).size, 'compaction ran during the test').toBeGreaterThan(0);
  }, 180_000);
});
