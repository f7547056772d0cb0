import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningServer } from '../../src/server.js';
import { ADMIN_PASSWORD, client, loginError, startTestServer } from '../support/server.js';

/** HTTP rate limits per principal: X-RateLimit-* headers, 429 with Retry-After, per-minute and per-hour windows (injected clock). */
let now = Date.UTC(2026, 5, 1, 12, 0, 0);
let server: RunningServer;
let key: string;
let other: string;

beforeAll(async () => {
  server = await startTestServer({ clock: () => now, httpPort: 0, rateLimit: { perMinute: 3, perHour: 5 }, scramIterations: 4096 });
  const c = await client(server.port);
  await c.query("CREATE USER ada PASSWORD 'pw'");
  key = (await c.query("CREATE API KEY 'a' FOR ada")).rows[0].key;
  other = (await c.query("CREATE API KEY 'b' FOR ada")).rows[0].key;
  await c.end();
});
afterAll(async () => {
  await server.close();
});

const whoami = (k: string) => fetch(`http://127.0.0.1:${server.httpPort}/v1/whoami`, { headers: { 'x-api-key': k } });

describe('HTTP rate limits', () => {
  it('count down in the headers, answer 429 with Retry-After, and reset with their window', async () => {
    const seen: string[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await whoami(key);
      expect(r.status).toBe(200);
      expect(r.headers.get('x-ratelimit-limit')).toBe('3');
      seen.push(r.headers.get('x-ratelimit-remaining')!);
      expect(Number(r.headers.get('x-ratelimit-reset'))).toBe(Math.ceil((now + 60_000) / 1000));
    }
    expect(seen).toEqual(['2', '1', '0']);
    const limited = await whoami(key);
    expect(limited.status).toBe(429);
    expect(limited.headers.get('retry-after')).toBe('60');
    expect(((await limited.json()) as { error: { code: string } }).error.code).toBe('53400');
    // Another key of the same owner has its own budget.
    expect((await whoami(other)).status).toBe(200);

    now += 30_000;
    expect((await whoami(key)).headers.get('retry-after')).toBe('30');
    now += 30_000; // a new minute: two left in the hour
    expect((await whoami(key)).status).toBe(200);
    const last = await whoami(key);
    expect(last.status).toBe(200);
    expect(last.headers.get('x-ratelimit-limit')).toBe('5'); // now the hour is the binding window
    expect(last.headers.get('x-ratelimit-remaining')).toBe('0');
    const hour = await whoami(key);
    expect(hour.status).toBe(429);
    expect(hour.headers.get('retry-after')).toBe(String(3600 - 60));
  });
});

describe('connection limits', () => {
  it('refuse a connection past the global maximum with 53300, recorded with its reason; a slot frees on close', async () => {
    const small = await startTestServer({ maxConnections: 2 });
    try {
      const a = await client(small.port);
      const b = await client(small.port);
      const third = await loginError(small.port, 'admin', ADMIN_PASSWORD);
      expect(third).toMatchObject({ code: '53300', message: 'sorry, too many clients already' });
      await b.end();
      // The slot is freed with the close: the next login gets in.
      expect(await loginError(small.port, 'admin', ADMIN_PASSWORD)).toBeNull();
      const failures = (await a.query('SHOW AUDIT LOG')).rows.filter((r) => r.kind === 'login' && r.outcome === 'failure');
      expect(failures).toEqual([expect.objectContaining({ actor: 'admin', detail: 'sorry, too many clients already' })]);
      await a.end();
    } finally {
      await small.close();
    }
  });
});
