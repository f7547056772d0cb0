import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { psql } from '../support/psql.js';
import { ADMIN_PASSWORD, ROOT, startTestServer } from '../support/server.js';

/**
 * SPEC §6 and issue 7: no secret of any fixture statement reaches the data directory, the
 * server's log or the audit trail. Every fixture runs through psql against a server on its
 * own data directory; each password literal is made unique (so a search for it cannot
 * match by chance), and every API key the server hands out is collected from psql's
 * output. Then the bytes of every file, and every log line, are searched.
 */
let root: string;
afterAll(async () => {
  if (root) await rm(root, { recursive: true, force: true });
});

async function filesOf(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    out.push(...(e.isDirectory() ? await filesOf(p) : [p]));
  }
  return out;
}

describe('no secret at rest', () => {
  it('runs every fixture and finds none of its secrets in any data file, log line or audit record', async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'pcu-secrets-'));
    const fixtures = (await readdir(path.join(ROOT, 'fixtures'))).filter((f) => f.endsWith('.sql')).sort();
    expect(fixtures.length).toBeGreaterThan(5);
    const secrets = new Set<string>([ADMIN_PASSWORD]);
    const logs: string[] = [];
    let keysSeen = 0;
    let auditRecords = 0;
    for (const f of fixtures) {
      const sql = (await readFile(path.join(ROOT, 'fixtures', f), 'utf8')).replace(/PASSWORD\s+'([^'$]*)'/gi, (m, pw: string) => {
        if (/^md5[0-9a-f]{32}$/.test(pw)) return m; // refused as a format, never stored
        const unique = `${pw}-${randomBytes(8).toString('hex')}`;
        secrets.add(unique);
        return m.replace(`'${pw}'`, `'${unique}'`);
      });
      const server = await startTestServer({ dataDir: path.join(root, f), httpPort: null, log: (l) => logs.push(l) });
      try {
        const r = await psql(server.port, ['-q', '-v', 'ON_ERROR_STOP=0'], { input: sql });
        for (const k of `${r.stdout}${r.stderr}`.match(/pcu_[a-z0-9]{16}_[A-Za-z0-9]{40,}/g) ?? []) {
          secrets.add(k);
          secrets.add(k.slice(22)); // the secret part alone
          keysSeen++;
        }
        await server.engine.audit.settle(); // records of changes are written in batches
        auditRecords += [...(await server.engine.audit.read(null, null))].length;
        await server.engine.compact(); // the snapshot too
      } finally {
        await server.close();
      }
    }
    // The search is only as good as what it looks for.
    expect(keysSeen).toBeGreaterThan(3);
    expect(secrets.size).toBeGreaterThan(8);
    expect(auditRecords).toBeGreaterThan(100);

    const hits: string[] = [];
    for (const file of await filesOf(root)) {
      const bytes = await readFile(file);
      for (const s of secrets) if (bytes.includes(Buffer.from(s, 'utf8'))) hits.push(`${path.relative(root, file)} holds ${s}`);
    }
    for (const line of logs) for (const s of secrets) if (line.includes(s)) hits.push(`log line holds ${s}: ${line}`);
    expect(hits).toEqual([]);
  });
});
