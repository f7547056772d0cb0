import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type JWK, type JWTPayload } from 'jose';

type KeyPair = Awaited<ReturnType<typeof generateKeyPair>>;

export interface SigningKey {
  kid: string;
  alg: string;
  pair: KeyPair;
  publicJwk: JWK;
}

export async function signingKey(kid: string, alg: 'ES256' | 'ES384' | 'RS256'): Promise<SigningKey> {
  const pair = await generateKeyPair(alg, { extractable: true });
  const publicJwk = { ...(await exportJWK(pair.publicKey)), kid, alg, use: 'sig' };
  return { kid, alg, pair, publicJwk };
}

/**
 * An OIDC provider's JWKS endpoint on loopback, for tests: serves the keys it holds,
 * can go down (503) and come back, rotate its keys, and counts the fetches.
 */
export class JwksServer {
  keys: SigningKey[] = [];
  down = false;
  fetches = 0;
  private held: { arrived: () => void; released: Promise<void> } | null = null;
  private constructor(
    private readonly server: http.Server,
    readonly port: number,
  ) {}

  static async start(keys: SigningKey[]): Promise<JwksServer> {
    let self: JwksServer | null = null;
    const server = http.createServer(async (req, res) => {
      self!.fetches++;
      const held = self!.held;
      if (held) {
        held.arrived();
        await held.released;
      }
      if (self!.down || req.url !== '/jwks.json') {
        res.writeHead(self!.down ? 503 : 404).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: self!.keys.map((k) => k.publicJwk) }));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    self = new JwksServer(server, (server.address() as AddressInfo).port);
    self.keys = keys;
    return self;
  }

  /**
   * Holds the next responses until `release()`: `arrived` resolves when a fetch is waiting,
   * so a test can change the catalog while a login is fetching keys (no sleeps).
   */
  hold(): { arrived: Promise<void>; release: () => void } {
    let arrived!: () => void;
    let release!: () => void;
    const arrivedP = new Promise<void>((r) => (arrived = r));
    const released = new Promise<void>((r) => (release = r));
    this.held = { arrived, released };
    return {
      arrived: arrivedP,
      release: () => {
        this.held = null;
        release();
      },
    };
  }

  get issuer(): string {
    return `http://127.0.0.1:${this.port}/`;
  }

  get jwksUrl(): string {
    return `http://127.0.0.1:${this.port}/jwks.json`;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((r) => this.server.close(() => r()));
  }
}

/** A signed token; `nowMs` is the server's (injected) clock. */
export async function mint(
  key: SigningKey,
  claims: JWTPayload,
  opts: { nowMs: number; issuer?: string; audience?: string | null; expiresInS?: number; header?: Record<string, unknown> },
): Promise<string> {
  const iat = Math.floor(opts.nowMs / 1000);
  let jwt = new SignJWT(claims).setProtectedHeader({ alg: key.alg, kid: key.kid, ...opts.header }).setIssuedAt(iat).setExpirationTime(iat + (opts.expiresInS ?? 600));
  if (opts.issuer) jwt = jwt.setIssuer(opts.issuer);
  if (opts.audience) jwt = jwt.setAudience(opts.audience);
  return jwt.sign(key.pair.privateKey);
}

export const b64url = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');
