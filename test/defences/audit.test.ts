import { mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningServer } from '../../src/server.js';
import { newKey } from '../../src/auth/apikey.js';
import { cli } from '../support/cli.js';
import { client, loginError, startTestServer } from '../support/server.js';

/**
 * The audit trail (issue 7): every login (success and failure, method, principal, address,
 * real reason), every change (actor, statement kind, object, redacted text), every denial;
 * SHOW AUDIT LOG for the superuser and, for its own tenant, a tenant_admin; durable across
 * a restart and untouched by compaction; `portcullis audit verify` names the first record
 * that was edited, removed or moved.
 */
let dir: string;
let server: RunningServer;
const logs: string[] = [];

const start = () => startTestServer({ dataDir: dir, httpPort: 0, log: (l) => logs.push(l) });

beforeAll(async () => {
  dir = path.join(await mkdtemp(path.join(os.tmpdir(), 'pcu-audit-')), 'data');
  server = await start();
});
afterAll(async () => {
  await server.close();
  await rm(path.dirname(dir), { recursive: true, force: true });
});

type Row = Record<string, string | null>;

async function auditLog(user = 'admin', password?: string, limit?: number): Promise<Row[]> {
  const c = await client(server.port, user, password);
  try {
    return (await c.query(`SHOW AUDIT LOG${limit === undefined ? '' : ` LIMIT ${limit}`}`)).rows as Row[];
  } finally {
    await c.end();
  }
}

async function run(sql: string, user = 'admin', password?: string): Promise<{ code?: string } | null> {
  const c = await client(server.port, user, password);
  try {
    await c.query(sql);
    return null;
  } catch (err) {
    return err as { code?: string };
  } finally {
    await c.end();
  }
}

describe('audit records', () => {
  it('records logins with method, principal, address and the real reason of a failure', async () => {
    await run("CREATE USER ada PASSWORD 'ada-Secret-4471' ROLE readwrite");
    expect((await loginError(server.port, 'ada', 'not-her-password'))?.code).toBe('28P01');
    expect((await loginError(server.port, 'ghost', 'whatever'))?.code).toBe('28P01');
    expect(await loginError(server.port, 'ada', 'ada-Secret-4471')).toBeNull();
    const rows = (await auditLog()).filter((r) => r.kind === 'login' && (r.actor === 'ada' || r.actor === 'ghost'));
    expect(rows).toEqual([
      expect.objectContaining({ actor: 'ada', action: 'login password via pgwire', outcome: 'failure', address: '127.0.0.1', detail: 'wrong password', tenant_id: '1' }),
      expect.objectContaining({ actor: 'ghost', action: 'login password via pgwire', outcome: 'failure', detail: expect.stringMatching(/unknown user/), tenant_id: null }),
      expect.objectContaining({ actor: 'ada', action: 'login password via pgwire', outcome: 'success', detail: null }),
    ]);
  });

  it('records API key logins over HTTP, and failures with the key id only', async () => {
    const c = await client(server.port);
    const key = (await c.query('CREATE API KEY ci FOR ada WITH DATABASES ("default")')).rows[0] as Record<string, string>;
    await c.end();
    const full = Object.values(key).find((v) => typeof v === 'string' && v.startsWith('pcu_'))!;
    const keyId = /^pcu_[a-z0-9]{16}/.exec(full)![0];
    const ok = await fetch(`http://127.0.0.1:${server.httpPort}/v1/whoami`, { headers: { 'x-api-key': full } });
    expect(ok.status).toBe(200);
    const bad = await fetch(`http://127.0.0.1:${server.httpPort}/v1/whoami`, { headers: { 'x-api-key': newKey(keyId.slice(4)).key } });
    expect(bad.status).toBe(401);
    const rows = (await auditLog()).filter((r) => r.action === 'login api_key via http');
    expect(rows).toEqual([
      expect.objectContaining({ actor: keyId, outcome: 'success', tenant_id: '1' }),
      expect.objectContaining({ actor: keyId, outcome: 'failure', detail: `wrong secret for API key ${keyId.slice(4)}` }),
    ]);
    // A database the key does not reach: 403, and a denial record.
    const denied = await fetch(`http://127.0.0.1:${server.httpPort}/v1/authenticate`, { method: 'POST', body: JSON.stringify({ credential: full, database: 'elsewhere' }) });
    expect(denied.status).toBe(403);
    expect((await auditLog()).filter((r) => r.kind === 'denial')).toEqual([
      expect.objectContaining({ actor: 'ada', action: 'Authenticate', object: 'elsewhere', outcome: 'denied', detail: expect.stringMatching(/^DATABASE_NOT_AUTHORIZED/) }),
    ]);
    // The key itself is in no record.
    expect(JSON.stringify(await auditLog())).not.toContain(full.slice(keyId.length));
  });

  it('records a credential\'s successful HTTP requests once a minute per address, counting the rest; every failure', async () => {
    let now = Date.UTC(2026, 11, 1);
    const s = await startTestServer({ httpPort: 0, clock: () => now });
    try {
      const c = await client(s.port);
      const key = (await c.query('CREATE API KEY burst')).rows[0] as Record<string, string>;
      const full = Object.values(key).find((v) => typeof v === 'string' && v.startsWith('pcu_'))!;
      const get = (k: string) => fetch(`http://127.0.0.1:${s.httpPort}/v1/whoami`, { headers: { 'x-api-key': k } });
      for (let i = 0; i < 3; i++) expect((await get(full)).status).toBe(200);
      expect((await get(`${full}x`)).status).toBe(401);
      now += 61_000;
      expect((await get(full)).status).toBe(200);
      const rows = (await c.query('SHOW AUDIT LOG')).rows.filter((r: Row) => r.action === 'login api_key via http');
      await c.end();
      expect(rows.map((r: Row) => [r.outcome, r.detail === null ? null : String(r.detail).replace(/ .*/, '')])).toEqual([
        ['success', null],
        ['failure', expect.any(String)],
        ['success', '2'], // "2 more requests since the previous record"
      ]);
    } finally {
      await s.close();
    }
  });

  it('records every change with actor, statement kind, object and the text with its secrets redacted', async () => {
    await run("CREATE USER bea WITH PASSWORD 'bea-Secret-9921' ROLE admin; CREATE ROLE auditors");
    await run('GRANT auditors TO bea');
    await run("ALTER USER bea PASSWORD 'bea-Secret-0001'");
    await run('DROP USER IF EXISTS nobody_here'); // changes nothing: no record
    const rows = (await auditLog()).filter((r) => r.kind === 'change' && r.object !== 'ada' && r.action !== 'CreateApiKey');
    expect(rows).toEqual([
      expect.objectContaining({ actor: 'admin', action: 'CreateUser', object: 'bea', outcome: 'committed', detail: "CREATE USER bea WITH PASSWORD '[redacted]' ROLE admin", tenant_id: '1' }),
      expect.objectContaining({ actor: 'admin', action: 'CreateRole', object: 'auditors', detail: 'CREATE ROLE auditors' }),
      expect.objectContaining({ actor: 'admin', action: 'Grant', object: 'auditors TO bea', detail: 'GRANT auditors TO bea' }),
      expect.objectContaining({ actor: 'admin', action: 'AlterUser', object: 'bea', detail: "ALTER USER bea PASSWORD '[redacted]'" }),
    ]);
    expect(JSON.stringify(await auditLog())).not.toMatch(/bea-Secret/);
  });

  it('records a rolled-back change nowhere, and a denial with the actor and what was refused', async () => {
    await run("BEGIN; CREATE USER never_committed PASSWORD 'x-Secret-1234'; ROLLBACK");
    expect((await run('CREATE USER mallory', 'ada', 'ada-Secret-4471'))?.code).toBe('42501');
    const rows = await auditLog();
    expect(rows.some((r) => r.object === 'never_committed')).toBe(false);
    expect(rows.filter((r) => r.kind === 'denial' && r.action === 'CreateUser')).toEqual([
      expect.objectContaining({ actor: 'ada', action: 'CreateUser', object: 'mallory', outcome: 'denied', detail: 'permission denied for CREATE USER', address: '127.0.0.1' }),
    ]);
  });

  it('SHOW AUDIT LOG: LIMIT n gives the last n; a tenant_admin sees only its tenant; others are refused', async () => {
    const all = await auditLog();
    const last3 = await auditLog('admin', undefined, 3);
    // The second call's own login is one record more.
    expect(last3.map((r) => r.seq)).toEqual([String(all.length - 1), String(all.length), String(all.length + 1)]);
    expect(all.map((r) => Number(r.seq))).toEqual(all.map((_, i) => i + 1));

    await run("CREATE TENANT acme; CREATE USER acme_boss PASSWORD 'boss-Secret-77' ROLE tenant_admin TENANT acme");
    expect(await run('CREATE USER acme_dev', 'acme_boss', 'boss-Secret-77')).toBeNull();
    const seen = await auditLog('acme_boss', 'boss-Secret-77');
    const acme = seen[0]!.tenant_id;
    expect(acme).not.toBe('1');
    expect(seen.every((r) => r.tenant_id === acme)).toBe(true);
    expect(seen).toEqual([
      expect.objectContaining({ kind: 'login', actor: 'acme_boss', outcome: 'success' }),
      expect.objectContaining({ kind: 'change', actor: 'acme_boss', action: 'CreateUser', object: 'acme_dev' }),
      expect.objectContaining({ kind: 'login', actor: 'acme_boss', outcome: 'success' }),
    ]);
    expect((await run('SHOW AUDIT LOG', 'ada', 'ada-Secret-4471'))?.code).toBe('42501');
  });
});

describe('records of changes, written in batches', () => {
  it('shows a change to the same session at once, though its record waits for company', async () => {
    const c = await client(server.port);
    try {
      await c.query('CREATE ROLE seen_at_once');
      const rows = (await c.query('SHOW AUDIT LOG LIMIT 1')).rows as Row[];
      expect(rows).toEqual([expect.objectContaining({ kind: 'change', action: 'CreateRole', object: 'seen_at_once' })]);
    } finally {
      await c.end();
    }
  });
});

describe('durability and verification', () => {
  it('survives a restart and a compaction, the chain going on; audit verify passes', async () => {
    const before = await auditLog();
    await server.engine.compact();
    await run('CREATE ROLE written_at_shutdown');
    await server.close();
    logs.length = 0;
    server = await start();
    // A clean shutdown writes every record: nothing to take back from the catalog log.
    expect(logs.filter((l) => /recovered from the catalog log/.test(l))).toEqual([]);
    const after = await auditLog();
    expect(after.slice(0, before.length)).toEqual(before);
    // Then: the login and the change of `run`, and the login of this SHOW.
    expect(after.slice(before.length)).toEqual([
      expect.objectContaining({ seq: String(before.length + 1), kind: 'login', actor: 'admin' }),
      expect.objectContaining({ seq: String(before.length + 2), kind: 'change', object: 'written_at_shutdown' }),
      expect.objectContaining({ seq: String(before.length + 3), kind: 'login', actor: 'admin' }),
    ]);
    const v = await cli(['audit', 'verify', '--data', dir]);
    expect(v.stdout).toMatch(new RegExp(`${after.length} records, hash chain intact; head ${after.at(-1)!.hash}`));
    expect(v.code).toBe(0);
  });
});

describe('a crash between the commit and its audit record', () => {
  it('is repaired at start-up from the catalog log, which carried the record', async () => {
    await run('CREATE ROLE carried_by_the_log');
    await server.close();
    // As if the process died after the commit's fdatasync, before its records reached the trail.
    const file = path.join(dir, 'audit.log');
    const buf = await readFile(file);
    const fs = frames(buf);
    const at = fs.findIndex((f) => f.body.toString().includes('"object":"carried_by_the_log"'));
    expect(at).toBeGreaterThan(0);
    await writeFile(file, buf.subarray(0, fs[at]!.at));
    logs.length = 0;
    server = await start();
    expect(logs).toContainEqual(expect.stringMatching(/audit trail: 1 records of committed changes recovered from the catalog log/));
    const rows = await auditLog();
    expect(rows.filter((r) => r.object === 'carried_by_the_log')).toEqual([expect.objectContaining({ kind: 'change', action: 'CreateRole', seq: String(at + 1) })]);
    expect((await cli(['audit', 'verify', '--data', dir])).code).toBe(0);
  });
});

describe('a record damaged while the server runs', () => {
  it('fails SHOW AUDIT LOG with XX001 naming the record, rather than showing a shorter trail', async () => {
    await server.engine.audit.settle();
    const file = path.join(dir, 'audit.log');
    const all = frames(await readFile(file));
    const victim = all.length - 2;
    const at = all[victim]!.at + 8 + 3; // a byte of its body
    const fh = await open(file, 'r+');
    const was = Buffer.alloc(1);
    await fh.read(was, 0, 1, at);
    try {
      await fh.write(Buffer.from([was[0]! ^ 0x01]), 0, 1, at);
      const err = (await run('SHOW AUDIT LOG')) as { code?: string; message?: string; hint?: string } | null;
      expect(err).toMatchObject({ code: 'XX001', message: `audit record ${victim + 1} (byte offset ${all[victim]!.at}) is damaged: checksum mismatch (edited or damaged)` });
      expect(err!.hint).toMatch(/portcullis audit verify/);
    } finally {
      await fh.write(was, 0, 1, at); // the later tests read this trail
      await fh.close();
    }
    expect(await run('SHOW AUDIT LOG')).toBeNull();
  });
});

/** The trail's records as [offset, length] of each whole frame (an independent reading of the format). */
function frames(buf: Buffer): { at: number; end: number; body: Buffer }[] {
  const out = [];
  for (let at = 24; at < buf.length; ) {
    const len = buf.readUInt32BE(at);
    out.push({ at, end: at + 8 + len, body: buf.subarray(at + 8, at + 8 + len) });
    at += 8 + len;
  }
  return out;
}

function frame(body: Buffer): Buffer {
  const h = Buffer.alloc(8);
  h.writeUInt32BE(body.length, 0);
  h.writeUInt32BE(crc32(body), 4);
  return Buffer.concat([h, body]);
}

describe('audit verify detects tampering', () => {
  let pristine: Buffer;
  let copy: string;
  beforeAll(async () => {
    await server.engine.audit.settle();
    pristine = await readFile(path.join(dir, 'audit.log'));
    copy = path.join(path.dirname(dir), 'copy');
    await rm(copy, { recursive: true, force: true });
    await import('node:fs/promises').then((fs) => fs.mkdir(copy));
  });

  async function verifyTampered(buf: Buffer) {
    await writeFile(path.join(copy, 'audit.log'), buf);
    return cli(['audit', 'verify', '--data', copy]);
  }

  it('passes on the untouched copy', async () => {
    const r = await verifyTampered(pristine);
    expect(r.code).toBe(0);
  });

  it('one flipped byte in a record: names that record', async () => {
    const f = frames(pristine)[4]!;
    const buf = Buffer.from(pristine);
    buf.writeUInt8(buf.readUInt8(f.at + 28) ^ 0x01, f.at + 28);
    const r = await verifyTampered(buf);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`audit record 5 \\(byte offset ${f.at}\\) fails verification: checksum mismatch`));
  });

  it('an edit with its checksum fixed: the record no longer matches its hash', async () => {
    const fs = frames(pristine);
    const f = fs[2]!;
    const edited = Buffer.from(f.body.toString('utf8').replace('"address":"127.0.0.1"', '"address":"10.9.9.9"'), 'utf8');
    expect(edited.equals(f.body)).toBe(false);
    const r = await verifyTampered(Buffer.concat([pristine.subarray(0, f.at), frame(edited), pristine.subarray(f.end)]));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/audit record 3 .*does not match its hash \(edited\)/);
  });

  it('an edit with its own hash recomputed: the next record names the old hash', async () => {
    const fs = frames(pristine);
    const f = fs[2]!;
    const text = f.body.toString('utf8').replace('"address":"127.0.0.1"', '"address":"10.9.9.9"');
    const body = text.replace(/,"hash":"[0-9a-f]{64}"\}$/, '}');
    const rehashed = `${body.slice(0, -1)},"hash":"${createHash('sha256').update(body).digest('hex')}"}`;
    const r = await verifyTampered(Buffer.concat([pristine.subarray(0, f.at), frame(Buffer.from(rehashed)), pristine.subarray(f.end)]));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/audit record 4 .*does not name the hash of the one before it/);
  });

  it('a removed record and two swapped records are named', async () => {
    const fs = frames(pristine);
    const removed = Buffer.concat([pristine.subarray(0, fs[5]!.at), pristine.subarray(fs[5]!.end)]);
    let r = await verifyTampered(removed);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/audit record 6 .*numbered 7 where 6 belongs/);
    const swapped = Buffer.concat([pristine.subarray(0, fs[5]!.at), pristine.subarray(fs[6]!.at, fs[6]!.end), pristine.subarray(fs[5]!.at, fs[5]!.end), pristine.subarray(fs[6]!.end)]);
    r = await verifyTampered(swapped);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/audit record 6 .*numbered 7 where 6 belongs/);
  });
});
