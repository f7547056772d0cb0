import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningServer } from '../../src/server.js';
import { client, startTestServer } from '../support/server.js';

let server: RunningServer;
beforeAll(async () => {
  server = await startTestServer({ httpPort: 0 });
});
afterAll(async () => {
  await server.close();
});

describe('HTTP health endpoints', () => {
  it('answers /healthz and /readyz, and 404 with a JSON error elsewhere', async () => {
    const base = `http://127.0.0.1:${server.httpPort}`;
    const health = await fetch(`${base}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: 'ok' });
    const ready = await fetch(`${base}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ready' });
    const missing = await fetch(`${base}/v1/nope`);
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as { error: unknown }).error).toMatchObject({ code: '42704', message: 'no route /v1/nope' });
    const wrongMethod = await fetch(`${base}/v1/whoami`, { method: 'DELETE' });
    expect(wrongMethod.status).toBe(405);
  });

  it('refuses bodies over 1 MiB (413) and bodies that are not JSON (400), before any credential work', async () => {
    const base = `http://127.0.0.1:${server.httpPort}`;
    const big = await fetch(`${base}/v1/authenticate`, { method: 'POST', body: JSON.stringify({ credential: 'x'.repeat(1024 * 1024 + 10) }) });
    expect(big.status).toBe(413);
    expect(((await big.json()) as { error: { code: string } }).error.code).toBe('54000');
    const junk = await fetch(`${base}/v1/authenticate`, { method: 'POST', body: 'not json' });
    expect(junk.status).toBe(400);
  });

  it('counts statements by kind in /metrics', async () => {
    const c = await client(server.port);
    await c.query('SHOW USERS');
    await c.query('DROP USER nobody_here').catch(() => undefined);
    await c.end();
    const text = await (await fetch(`http://127.0.0.1:${server.httpPort}/metrics`)).text();
    expect(text).toMatch(/portcullis_statements_total\{kind="ShowUsers",outcome="ok"\} [1-9]/);
    expect(text).toMatch(/portcullis_statements_total\{kind="DropUser",outcome="error"\} [1-9]/);
    expect(text).toMatch(/portcullis_statement_duration_seconds_bucket\{kind="ShowUsers",le="\+Inf"\} [1-9]/);
    expect(text).toMatch(/portcullis_logins_total\{method="password",outcome="success"\} [1-9]/);
  });
});
