import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningServer } from '../../src/server.js';
import { startTestServer } from '../support/server.js';

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
});
