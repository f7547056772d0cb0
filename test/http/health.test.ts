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
    for (const route of ['/healthz', '/readyz']) {
      const r = await fetch(base + route);
      expect(r.status).toBe(200);
      expect(await r.json()).toEqual({ status: 'ok' });
    }
    const missing = await fetch(`${base}/v1/nope`);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toEqual({ error: { code: 'not_found', message: 'no such route' } });
  });
});
