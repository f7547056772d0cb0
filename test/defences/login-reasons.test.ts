import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningServer } from '../../src/server.js';
import { client, loginError, startTestServer } from '../support/server.js';

/**
 * A failed login's metric label is the failure's code, never a word found in its message:
 * messages quote names the client chooses (a user name, the provider of `jwt:<provider>`),
 * so a name like "expired" must not turn a lockout into an "expired" failure.
 */
let server: RunningServer;
const logs: string[] = [];

beforeAll(async () => {
  server = await startTestServer({ httpPort: 0, log: (l) => logs.push(l), scramIterations: 4096, lockoutPolicy: { userFailures: 2 } });
  const c = await client(server.port);
  await c.query("CREATE USER expired_ann PASSWORD 'right'");
  await c.end();
});
afterAll(async () => {
  await server.close();
});

/** portcullis_logins_total for one method and failure reason (0 when the series is absent). */
async function failures(method: string, reason: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${server.httpPort}/metrics`)).text();
  const m = new RegExp(`^portcullis_logins_total\\{method="${method}",outcome="failure",reason="${reason}"\\} (\\d+)$`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
}

const lastFailure = () => logs.filter((l) => l.startsWith('login failed')).at(-1) ?? '';

/** A well-formed JWT (ES256 header, no valid signature): refused before any key is looked at. */
const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
const unsignedToken = `${b64({ alg: 'ES256', typ: 'JWT' })}.${b64({ iss: 'https://issuer.test', exp: 4102444800 })}.AAAA`;

describe('login failure labels come from codes', () => {
  it('a locked-out user whose name says "expired" is counted as locked_out', async () => {
    for (let i = 0; i < 2; i++) expect((await loginError(server.port, 'expired_ann', 'wrong'))?.code).toBe('28P01');
    const [locked, expired] = [await failures('password', 'locked_out'), await failures('password', 'expired')];
    expect((await loginError(server.port, 'expired_ann', 'right'))?.code).toBe('28P01');
    // The log keeps the real reason, name and all.
    expect(lastFailure()).toMatch(/reason="user \\"expired_ann\\" locked out until/);
    expect(await failures('password', 'locked_out')).toBe(locked + 1);
    expect(await failures('password', 'expired')).toBe(expired);
  });

  it('a token for an unknown provider named "expired" is counted as no_enabled_oidc_provider', async () => {
    const before = await failures('jwt', 'no_enabled_oidc_provider');
    expect((await loginError(server.port, 'jwt:expired', unsignedToken))?.code).toBe('28P01');
    expect(lastFailure()).toMatch(/reason="no enabled OIDC provider \\"expired\\""/);
    expect(await failures('jwt', 'no_enabled_oidc_provider')).toBe(before + 1);
    expect(await failures('jwt', 'expired')).toBe(0);
  });
});
