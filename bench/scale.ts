import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { formatVerifier, makeVerifier } from '../src/auth/verifier.js';
import type { ApiKey, Grant, User } from '../src/catalog/model.js';
import { snapshotChunks, type SnapshotPart } from '../src/catalog/catalog.js';
import { LogStore } from '../src/store/log-store.js';
import { listening, median, PASSWORD, ROOT } from './servers.js';

/**
 * The catalog at scale: a data directory with `users` users, as many API keys and `grants`
 * grants is written as a snapshot (as compaction would write it), then the server starts on
 * it. Measured: start-up (spawn to "listening"), resident memory, login latency and the
 * latency of a single-object statement (ALTER USER, a durable commit) — each compared with
 * the same at 1,000 users.
 */
export interface ScaleFigures {
  users: number;
  startupMs: number;
  rssMb: number;
  peakRssMb: number;
  loginMs: number;
  alterMs: number;
}

export async function buildDataDir(dir: string, users: number, grants: number): Promise<void> {
  const verifier = formatVerifier(await makeVerifier(PASSWORD, 4096));
  const store = new LogStore(dir, () => {});
  await store.load(() => {}, () => {}); // a new, empty directory
  const now = Date.UTC(2026, 0, 1);
  const admin: User = { id: 3, name: 'bench', tenantId: 1, role: 'superuser', verifier, login: true, validUntil: null, connectionLimit: -1, certificateSubject: null, createdAt: now, updatedAt: now, createdBy: null };
  function* image(): Generator<SnapshotPart> {
    yield { init: { op: 'init', serverSecret: 'ab'.repeat(32), at: now, nextId: 10 + 3 * users } };
    yield* snapshotChunks('tenants', [{ id: 1, name: 'default', createdAt: now }]);
    yield* snapshotChunks('databases', [{ id: 2, tenantId: 1, name: 'default', createdAt: now }]);
    yield* snapshotChunks('users', (function* () {
      yield admin;
      for (let i = 0; i < users; i++) yield { ...admin, id: 10 + i, name: `user_${i}`, role: 'readwrite', createdBy: 'bench' } as User;
    })());
    yield* snapshotChunks('apiKeys', (function* () {
      for (let i = 0; i < users; i++) {
        const keyId = i.toString(36).padStart(16, '0');
        yield { id: 10 + users + i, tenantId: 1, ownerKind: 'user', ownerId: 10 + i, name: 'key', keyId, secret: { hash: keyId.repeat(4), verifier }, previous: null, role: null, databaseIds: null, scopes: [], expiresAt: null, createdAt: now, createdBy: 'bench', rotatedAt: null, lastUsedAt: null } as ApiKey;
      }
    })());
    yield* snapshotChunks('grants', (function* () {
      for (let i = 0; i < grants; i++) {
        yield { id: 10 + 2 * users + i, tenantId: 1, granteeKind: 'user', granteeId: 10 + i, privilege: 'write', databaseId: 2, collection: null, builtinRole: null, roleId: null, expiresAt: null, grantedBy: 'bench', createdAt: now } as Grant;
      }
    })());
  }
  await store.compact(image());
  await store.close();
}

function rss(pid: number): { rssMb: number; peakRssMb: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1] ?? 0);
  return { rssMb: kb('VmRSS') / 1024, peakRssMb: kb('VmHWM') / 1024 };
}

/** Start-ups measured per size (BENCH_STARTS). */
const STARTS = Number(process.env.BENCH_STARTS ?? 3);

export async function measureScale(users: number, grants: number, samples: number): Promise<ScaleFigures> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bench-scale-'));
  try {
    await buildDataDir(path.join(dir, 'data'), users, grants);
    // Start-up is the median of STARTS starts; the last server stays up for the latencies.
    const starts: number[] = [];
    let child: ChildProcess;
    let port: number;
    for (;;) {
      const t0 = performance.now();
      child = spawn(process.execPath, [path.join(ROOT, 'bin/portcullis.js'), 'serve', '--data', path.join(dir, 'data'), '--port', '0', '--http-port', 'off'], {
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      port = await listening(child);
      starts.push(performance.now() - t0);
      if (starts.length === STARTS) break;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
    }
    const startupMs = median(starts);
    try {
      const config = (user: string) => ({ host: '127.0.0.1', port, user, password: PASSWORD, database: 'default' });
      const loginTimes: number[] = [];
      for (let i = 0; i < samples; i++) {
        const c = new pg.Client(config(`user_${Math.floor((i * 7919) % users)}`));
        const s = performance.now();
        await c.connect();
        loginTimes.push(performance.now() - s);
        await c.end();
      }
      const admin = new pg.Client(config('bench'));
      await admin.connect();
      const alterTimes: number[] = [];
      for (let i = 0; i < samples; i++) {
        const s = performance.now();
        await admin.query(`ALTER USER user_${(i * 104729) % users} CONNECTION LIMIT ${i % 50}`);
        alterTimes.push(performance.now() - s);
      }
      await admin.end();
      return { users, startupMs, ...rss(child.pid!), loginMs: median(loginTimes), alterMs: median(alterTimes) };
    } finally {
      child.kill('SIGKILL');
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
