import { describe, expect, it } from 'vitest';
import pg from 'pg';
import { ADMIN_PASSWORD, startTestServer } from '../support/server.js';
import { describeForwarding } from './forward-suite.js';

/** Forwarding on the embedded data plane (PGlite, in memory). */
describeForwarding('embedded', { dataPlane: async () => 'embedded', oneConnection: true });

describe('--data-plane off', () => {
  it('keeps 0A000 for SQL, with a detail that names the flag', async () => {
    const off = await startTestServer();
    try {
      const c = new pg.Client({ host: '127.0.0.1', port: off.port, user: 'admin', password: ADMIN_PASSWORD, database: 'default' });
      await c.connect();
      const err = (await c.query('SELECT * FROM items').catch((e: unknown) => e)) as { code?: string; detail?: string };
      await c.end();
      expect(err.code).toBe('0A000');
      expect(err.detail).toContain('--data-plane off');
    } finally {
      await off.close();
    }
  });
});
