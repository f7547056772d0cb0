import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import pg from 'pg';
import { median, PASSWORD, ROOT } from './servers.js';

/**
 * GET /v1/whoami with an API key and with an ES256 JWT (JWKS cached after the first
 * request), at 1 and 50 keep-alive connections, against the floor: a bare node:http server
 * answering a fixed JSON body, measured in the same run by the same load generator (its
 * own process). Targets (issue 6): API key ≥ 70% of the floor, JWT ≥ 40%.
 */
export interface HttpFigure {
  credential: string;
  connections: number;
  rps: number;
  floor: number;
  ratio: number;
  target: number;
}

const DIST = path.join(ROOT, 'dist', 'bench');

function spawnLine(args: string[], env: NodeJS.ProcessEnv, pattern: RegExp, stream: 'stdout' | 'stderr'): Promise<{ child: ChildProcess; match: RegExpExecArray }> {
  const child = spawn(process.execPath, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let text = '';
  return new Promise((resolve, reject) => {
    child[stream]!.on('data', (d: Buffer) => {
      text += d.toString();
      const m = pattern.exec(text);
      if (m) resolve({ child, match: m });
    });
    child.once('exit', (code) => reject(new Error(`${args.join(' ')} exited with ${code}: ${text}`)));
  });
}

function load(url: string, connections: number, seconds: number, headers: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(DIST, 'http-load.js'), url, String(connections), String(seconds), ...headers], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.once('exit', () => {
      try {
        const r = JSON.parse(out) as { rps: number; errors: number };
        if (r.errors > 0) return reject(new Error(`${url}: ${r.errors} failed requests`));
        resolve(r.rps);
      } catch (err) {
        reject(err);
      }
    });
  });
}

export async function benchHttp(runs: number, seconds: number, log: (s: string) => void): Promise<HttpFigure[]> {
  // The provider's JWKS, served from here.
  const { publicKey, privateKey } = await generateKeyPair('ES256');
  const jwk = { ...(await exportJWK(publicKey)), kid: 'bench', alg: 'ES256', use: 'sig' };
  const jwks = http.createServer((_q, r) => r.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [jwk] })));
  await new Promise<void>((r) => jwks.listen(0, '127.0.0.1', () => r()));
  const jwksPort = (jwks.address() as { port: number }).port;

  const dir = mkdtempSync(path.join(os.tmpdir(), 'bench-http-'));
  const floor = await spawnLine([path.join(DIST, 'http-floor.js')], {}, /^(\d+)\n/, 'stdout');
  const pcu = await spawnLine(
    [path.join(ROOT, 'bin/portcullis.js'), 'serve', '--data', path.join(dir, 'data'), '--port', '0', '--http-port', '0'],
    // Rate limits raised out of the way: the bench measures the request path (which still counts them).
    { PORTCULLIS_BOOTSTRAP_USER: 'bench', PORTCULLIS_BOOTSTRAP_PASSWORD: PASSWORD, PORTCULLIS_RATE_LIMIT_PER_MINUTE: '100000000', PORTCULLIS_RATE_LIMIT_PER_HOUR: '1000000000' },
    /listening on [^:]+:(\d+) \(pgwire\) and [^:]+:(\d+) \(http\)/,
    'stderr',
  );
  const out: HttpFigure[] = [];
  try {
    const c = new pg.Client({ host: '127.0.0.1', port: Number(pcu.match[1]), user: 'bench', password: PASSWORD, database: 'default' });
    await c.connect();
    await c.query("CREATE USER reader PASSWORD 'reader-pw' ROLE readonly");
    const key = (await c.query("CREATE API KEY 'bench' FOR reader")).rows[0].key as string;
    const issuer = `http://127.0.0.1:${jwksPort}/`;
    await c.query(`CREATE OIDC PROVIDER bench WITH (issuer = '${issuer}', jwks_url = '${issuer}jwks.json', audience = 'bench')`);
    await c.end();
    const token = await new SignJWT({ sub: 'u1', preferred_username: 'reader', role: 'readonly' })
      .setProtectedHeader({ alg: 'ES256', kid: 'bench' })
      .setIssuer(issuer)
      .setAudience('bench')
      .setIssuedAt()
      .setExpirationTime('2h')
      .sign(privateKey);

    const floorUrl = `http://127.0.0.1:${floor.match[1]}/v1/whoami`;
    const url = `http://127.0.0.1:${pcu.match[2]}/v1/whoami`;
    await load(url, 1, 0.5, [`authorization: Bearer ${token}`]); // warm: the JWKS is fetched once, then cached
    for (const connections of [1, 50]) {
      const samples = { floor: [] as number[], key: [] as number[], jwt: [] as number[] };
      for (let r = 0; r < runs; r++) {
        // Interleaved, so all three see the same machine weather.
        samples.floor.push(await load(floorUrl, connections, seconds, []));
        samples.key.push(await load(url, connections, seconds, [`x-api-key: ${key}`]));
        samples.jwt.push(await load(url, connections, seconds, [`authorization: Bearer ${token}`]));
      }
      const f = median(samples.floor);
      for (const [credential, target, xs] of [
        ['API key', 0.7, samples.key],
        ['ES256 JWT', 0.4, samples.jwt],
      ] as const) {
        const rps = median(xs);
        const fig = { credential, connections, rps, floor: f, ratio: rps / f, target };
        out.push(fig);
        log(
          `  GET /v1/whoami, ${credential}, ${connections} connection${connections > 1 ? 's' : ''}: ${Math.round(rps).toLocaleString('en-US')} req/s, ` +
            `floor ${Math.round(f).toLocaleString('en-US')} req/s → ${(fig.ratio * 100).toFixed(0)}% (target ≥ ${target * 100}%: ${fig.ratio >= target ? 'met' : 'NOT met'})`,
        );
      }
    }
  } finally {
    floor.child.kill();
    const exited = new Promise((r) => pcu.child.once('exit', r));
    pcu.child.kill('SIGTERM');
    await exited;
    jwks.close();
    rmSync(dir, { recursive: true, force: true });
  }
  return out;
}
