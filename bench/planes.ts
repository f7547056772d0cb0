import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { serialize } from 'pg-protocol';
import { EmbeddedPlane } from '../src/dataplane/embedded.js';
import type { Lease, PlaneDatabase } from '../src/dataplane/types.js';
import { readyStatus } from '../src/dataplane/frames.js';

/**
 * Figures for the embedded data plane (docs/data-plane.md, "The two planes"): `node dist/bench/planes.js`.
 * PLANES_MEMORY=1 measures the in-memory mode; PLANES_SECONDS sets the length of each rate.
 */
const memory = process.env.PLANES_MEMORY === '1';
const seconds = Number(process.env.PLANES_SECONDS ?? 3);
const rss = () => Math.round(process.memoryUsage().rss / 1e6);
const dir = mkdtempSync(path.join(os.tmpdir(), 'planes-bench-'));
const cacheDir = mkdtempSync(path.join(os.tmpdir(), 'planes-bench-cache-'));
const plane = new EmbeddedPlane({ dataDir: dir, memory, cacheDir });
const dbs: PlaneDatabase[] = [1, 2, 3].map((id) => ({ tenantId: 1, databaseId: id, tenantName: 't', databaseName: `d${id}` }));

async function drain(lease: Lease): Promise<void> {
  for (;;) if (readyStatus(await lease.next())) return;
}

console.log(`mode: ${memory ? 'memory' : 'disk'}; rss at start ${rss()} MB`);
for (const [i, db] of dbs.entries()) {
  const t = performance.now();
  await plane.ensureDatabase(db);
  console.log(`instance ${i + 1}: opened in ${(performance.now() - t).toFixed(0)} ms${i === 0 ? ' (template made first)' : ''}; rss ${rss()} MB`);
}
await plane.withAdmin(dbs[0]!, (sql) => sql.exec('CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 10000) g'));

const lease = await plane.lease(dbs[0]!, {});
let n = 0;
let end = performance.now() + seconds * 1000;
while (performance.now() < end) {
  lease.write(serialize.query(`SELECT v FROM t WHERE id = ${(n % 10000) + 1}`));
  await drain(lease);
  n++;
}
console.log(`primary-key selects, simple protocol, one at a time: ${Math.round(n / seconds).toLocaleString('en-US')}/s`);
lease.write(Buffer.concat([serialize.parse({ name: 'pk', text: 'SELECT v FROM t WHERE id = $1', types: [] }), serialize.sync()]));
await drain(lease);
n = 0;
end = performance.now() + seconds * 1000;
while (performance.now() < end) {
  lease.write(Buffer.concat([serialize.bind({ statement: 'pk', values: [String((n % 10000) + 1)] }), serialize.execute({}), serialize.sync()]));
  await drain(lease);
  n++;
}
console.log(`primary-key selects, extended protocol (prepared, Bind/Execute/Sync), one at a time: ${Math.round(n / seconds).toLocaleString('en-US')}/s`);
lease.release();

n = 0;
end = performance.now() + seconds * 1000;
const sessions = [{}, {}];
while (performance.now() < end) {
  const l = await plane.lease(dbs[0]!, sessions[n % 2]!);
  l.write(serialize.query(`SELECT v FROM t WHERE id = ${(n % 10000) + 1}`));
  await drain(l);
  l.release();
  n++;
}
console.log(`turns alternating between two sessions (lease + one select + release): ${Math.round(n / seconds).toLocaleString('en-US')}/s`);

for (const db of dbs.slice(1)) await plane.dropDatabase(db);
global.gc?.();
console.log(`after closing instances 2 and 3: rss ${rss()} MB`);
await plane.close();
global.gc?.();
console.log(`after closing all: rss ${rss()} MB`);
rmSync(dir, { recursive: true, force: true });
rmSync(cacheDir, { recursive: true, force: true });
