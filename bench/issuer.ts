import { startServer } from '../src/server.js';

/**
 * The token issuer in-process (no sockets): access tokens issued per second for an API key
 * grant (sign + one catalog commit, in memory: no disk wait), and verified per second —
 * each token the first time (an ECDSA verification) and again (the verified-token cache),
 * as a service presenting the same token on every request does.
 */
export async function benchIssuer(tokens: number): Promise<{ issuedPerSecond: number; firstVerifyPerSecond: number; repeatVerifyPerSecond: number }> {
  const server = await startServer({ host: '127.0.0.1', port: 0, httpPort: null, dataDir: null, bootstrapPassword: 'bench-secret', announce: () => {}, log: () => {} });
  try {
    const { engine } = server;
    const { LocalConnection } = await import('../src/client/local-connection.js');
    const { EngineSession } = await import('../src/engine/session.js');
    const { passwordPrincipal } = await import('../src/engine/credentials.js');
    const admin = engine.catalog.userByName('admin')!;
    const session = EngineSession.open(engine, passwordPrincipal(admin, engine.catalog, engine.clock()), { user: 'admin', database: 'default', params: new Map() }, { address: '127.0.0.1', port: 0, tls: false });
    const conn = LocalConnection.over(session);
    const out = await conn.query(`CREATE API KEY 'bench' FOR admin`);
    await conn.close();
    const key = out.results[0]!.rows![0]![2] as string;
    const issued: string[] = [];
    let t0 = performance.now();
    for (let i = 0; i < tokens; i++) {
      const { grant } = engine.issuer.apiKeyGrant(key, null);
      issued.push((await engine.issuer.issue(grant, null)).access_token);
    }
    const issuedPerSecond = tokens / ((performance.now() - t0) / 1000);
    t0 = performance.now();
    for (const t of issued) await engine.issuer.principalOf(t);
    const firstVerifyPerSecond = tokens / ((performance.now() - t0) / 1000);
    t0 = performance.now();
    for (const t of issued) await engine.issuer.principalOf(t);
    const repeatVerifyPerSecond = tokens / ((performance.now() - t0) / 1000);
    return { issuedPerSecond, firstVerifyPerSecond, repeatVerifyPerSecond };
  } finally {
    await server.close();
  }
}
