import http from 'node:http';
import https from 'node:https';
import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { replaceFile } from '../store/files.js';
import path from 'node:path';
import { isLoopbackHost } from '../net/loopback.js';
import { decodeOneRecordFile, encodeOneRecordFile, oneRecordFileKeyId } from '../store/log-format.js';
import type { Cipher } from '../store/cipher.js';

/** The on-disk JWKS cache file: one record (sealed when the data directory is encrypted). */
export const JWKS_MAGIC = Buffer.from('PCUJWKS\0', 'latin1');

/**
 * JSON Web Key Sets of OIDC providers: fetched over https (plain http only from
 * loopback), cached for a TTL, re-fetched at most once a minute when a token names a `kid`
 * the cache lacks, kept on disk as the fallback when the provider is down, served stale for
 * a bounded time and then refused (fail closed), and behind a circuit breaker that stops
 * calling a provider that keeps failing.
 */
export interface Jwk {
  kid?: string;
  kty: string;
  alg?: string;
  use?: string;
  [k: string]: unknown;
}

export interface JwksPolicy {
  ttlMs: number;
  /** At most one fetch per provider this often when a token names an unknown kid. */
  refetchMs: number;
  /** How long after the last successful fetch a cached set may still be used. */
  maxStaleMs: number;
  breakerFailures: number;
  breakerOpenMs: number;
  timeoutMs: number;
  maxBytes: number;
}

export const DEFAULT_JWKS_POLICY: JwksPolicy = {
  ttlMs: 60 * 60 * 1000,
  refetchMs: 60 * 1000,
  maxStaleMs: 24 * 60 * 60 * 1000,
  breakerFailures: 5,
  breakerOpenMs: 30 * 1000,
  timeoutMs: 10 * 1000,
  maxBytes: 1024 * 1024,
};

/** Why a key could not be had; the login fails with this as its recorded reason. */
export class JwksError extends Error {}

interface Entry {
  url: string;
  keys: Jwk[];
  fetchedAt: number;
  source: 'network' | 'disk';
}

interface ProviderState {
  entry: Entry | null;
  lastAttempt: number;
  failures: number;
  openUntil: number;
  inFlight: Promise<Entry> | null;
}

/** Counters for /metrics. */
export interface JwksStats {
  fetches: Map<string, number>; // outcome → count
}

export class JwksCache {
  private readonly state = new Map<string, ProviderState>();
  readonly stats: JwksStats = { fetches: new Map() };

  constructor(
    /** Where the last good set of each provider is kept; null in memory mode. */
    private readonly dir: string | null,
    private readonly clock: () => number,
    readonly policy: JwksPolicy = DEFAULT_JWKS_POLICY,
    /** Seals the on-disk copies (encryption at rest); null: plaintext. */
    private readonly cipher: Cipher | null = null,
  ) {}

  /** The provider's cache state, for /metrics: fresh, stale, expired, none; breaker open. */
  describe(): { provider: string; state: string; ageSeconds: number | null; breakerOpen: boolean }[] {
    const now = this.clock();
    return [...this.state].map(([provider, s]) => {
      const age = s.entry ? now - s.entry.fetchedAt : null;
      const state = age === null ? 'none' : age <= this.policy.ttlMs ? 'fresh' : age <= this.policy.maxStaleMs ? 'stale' : 'expired';
      return { provider, state, ageSeconds: age === null ? null : Math.round(age / 1000), breakerOpen: s.openUntil > now };
    });
  }

  /**
   * The keys to verify a token of `provider` with, given the token's `kid`: from the cache
   * while fresh; fetched when stale or when the kid is unknown (throttled); the cached or
   * on-disk set while the provider is down, up to maxStaleMs; else a JwksError.
   */
  async keysFor(provider: string, url: string, kid: string | undefined): Promise<Jwk[]> {
    const s = this.stateOf(provider);
    const now = this.clock();
    if (!s.entry || s.entry.url !== url) s.entry = await this.fromDisk(provider, url);
    const has = (e: Entry | null) => !!e && (kid === undefined || e.keys.some((k) => k.kid === kid));
    const fresh = s.entry && now - s.entry.fetchedAt <= this.policy.ttlMs;
    const throttled = now - s.lastAttempt < this.policy.refetchMs;
    if (!fresh || (!has(s.entry) && !throttled)) {
      try {
        s.entry = await this.refresh(provider, url, s);
      } catch (err) {
        // The provider is down: a cached set serves until it is too old (then fail closed).
        if (!s.entry) throw new JwksError(`JWKS of provider "${provider}" unavailable: ${(err as Error).message}`);
        if (now - s.entry.fetchedAt > this.policy.maxStaleMs) {
          throw new JwksError(`JWKS of provider "${provider}" unavailable and the cached set is older than the staleness bound`);
        }
      }
    }
    if (!s.entry) throw new JwksError(`JWKS of provider "${provider}" unavailable`);
    if (now - s.entry.fetchedAt > this.policy.maxStaleMs) {
      throw new JwksError(`JWKS of provider "${provider}" is older than the staleness bound`);
    }
    return s.entry.keys;
  }

  /** The keys cached for a provider right now, if still usable (no fetch): for the verified-token cache. */
  cachedKeys(provider: string, url: string, now: number): Jwk[] | null {
    const e = this.state.get(provider)?.entry;
    if (!e || e.url !== url || now - e.fetchedAt > this.policy.ttlMs) return null;
    return e.keys;
  }

  /**
   * The last set had from `url` for a provider, however old (no fetch, no staleness bound):
   * what an open session checks its token's key against at each statement. A set fetched
   * again without that key ends the sessions its tokens opened; null when no set from this
   * URL is held (the provider's jwks_url changed since).
   */
  knownKeys(provider: string, url: string): Jwk[] | null {
    const e = this.state.get(provider)?.entry;
    return e && e.url === url ? e.keys : null;
  }

  /** Forgets a provider (dropped, or its URL changed). */
  forget(provider: string): void {
    this.state.delete(provider);
  }

  private stateOf(provider: string): ProviderState {
    let s = this.state.get(provider);
    if (!s) this.state.set(provider, (s = { entry: null, lastAttempt: -Infinity, failures: 0, openUntil: -Infinity, inFlight: null }));
    return s;
  }

  private count(outcome: string): void {
    this.stats.fetches.set(outcome, (this.stats.fetches.get(outcome) ?? 0) + 1);
  }

  /** One fetch per provider at a time; the breaker opens after repeated failures. */
  private refresh(provider: string, url: string, s: ProviderState): Promise<Entry> {
    if (s.inFlight) return s.inFlight;
    const now = this.clock();
    if (s.openUntil > now) {
      this.count('breaker_open');
      return Promise.reject(new Error('circuit breaker open after repeated failures'));
    }
    s.lastAttempt = now;
    s.inFlight = fetchJwks(url, this.policy)
      .then(async (keys) => {
        s.failures = 0;
        this.count('ok');
        const entry: Entry = { url, keys, fetchedAt: this.clock(), source: 'network' };
        await this.toDisk(provider, entry).catch(() => undefined); // the fallback is best effort
        return entry;
      })
      .catch((err: Error) => {
        s.failures++;
        this.count('error');
        if (s.failures >= this.policy.breakerFailures) s.openUntil = this.clock() + this.policy.breakerOpenMs;
        throw err;
      })
      .finally(() => {
        s.inFlight = null;
      });
    return s.inFlight;
  }

  private file(provider: string): string | null {
    return this.dir === null ? null : path.join(this.dir, `${encodeURIComponent(provider)}.jwks`);
  }

  private async fromDisk(provider: string, url: string): Promise<Entry | null> {
    const f = this.file(provider);
    if (!f) return null;
    try {
      const buf = await readFile(f);
      // A copy under another key (or none) is no copy: the provider is asked again.
      if (oneRecordFileKeyId(buf, JWKS_MAGIC) !== (this.cipher?.keyId ?? 0)) return null;
      const e = decodeOneRecordFile(buf, JWKS_MAGIC, this.cipher) as Entry | string;
      if (typeof e === 'string') return null;
      return e.url === url && Array.isArray(e.keys) && typeof e.fetchedAt === 'number' ? { ...e, source: 'disk' } : null;
    } catch {
      return null;
    }
  }

  private async toDisk(provider: string, e: Entry): Promise<void> {
    const f = this.file(provider);
    if (!f) return;
    await mkdir(path.dirname(f), { recursive: true, mode: 0o700 });
    await replaceFile(f, encodeOneRecordFile(JWKS_MAGIC, { url: e.url, fetchedAt: e.fetchedAt, keys: e.keys }, this.cipher));
  }
}

/** Public keys only: a set that carries private parts, or symmetric keys, is refused. */
export function publicKeys(body: unknown): Jwk[] {
  const keys = (body as { keys?: unknown } | null)?.keys;
  if (!Array.isArray(keys)) throw new Error('not a JSON Web Key Set (no "keys" array)');
  return keys.filter((k): k is Jwk => typeof k === 'object' && k !== null && typeof (k as Jwk).kty === 'string' && (k as Jwk).kty !== 'oct' && (k as Jwk).d === undefined);
}

const MAX_REDIRECTS = 3;

/**
 * GET a JWKS with SSRF guards: https only (http for loopback hosts), a
 * redirect only to the same host (and scheme rules again), a size cap, a timeout.
 */
export function fetchJwks(url: string, policy: JwksPolicy, redirects = 0): Promise<Jwk[]> {
  return new Promise((resolve, reject) => {
    let u: URL;
    try {
      u = new URL(url);
    } catch {
      return reject(new Error(`bad JWKS URL "${url}"`));
    }
    if (u.protocol !== 'https:' && !(u.protocol === 'http:' && isLoopbackHost(u.hostname))) {
      return reject(new Error('JWKS URL must use https (plain http only for loopback hosts)'));
    }
    const get = u.protocol === 'https:' ? https.get : http.get;
    const req = get(u, { timeout: policy.timeoutMs, headers: { accept: 'application/json' } }, (res) => {
      const status = res.statusCode ?? 0;
      if (status >= 300 && status < 400 && res.headers.location) {
        res.resume();
        const next = new URL(res.headers.location, u);
        if (next.host !== u.host) return reject(new Error(`JWKS redirect to another host (${next.host}) refused`));
        if (redirects >= MAX_REDIRECTS) return reject(new Error('too many JWKS redirects'));
        return fetchJwks(next.href, policy, redirects + 1).then(resolve, reject);
      }
      if (status !== 200) {
        res.resume();
        return reject(new Error(`JWKS fetch answered HTTP ${status}`));
      }
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > policy.maxBytes) {
          req.destroy(new Error(`JWKS larger than ${policy.maxBytes} bytes`));
          return;
        }
        chunks.push(c);
      });
      res.on('end', () => {
        try {
          resolve(publicKeys(JSON.parse(Buffer.concat(chunks).toString('utf8'))));
        } catch (err) {
          reject(new Error(`JWKS is not valid: ${(err as Error).message}`));
        }
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`JWKS fetch timed out after ${policy.timeoutMs} ms`)));
    req.on('error', reject);
  });
}

/**
 * `portcullis rekey`: every cached JWKS file rewritten under `next` (read with whichever of
 * `read` it was sealed with; one that none opens is dropped: the provider is asked again).
 */
export async function rekeyJwksCache(dir: string, read: (Cipher | null)[], next: Cipher): Promise<void> {
  let names: string[];
  try {
    names = (await readdir(dir)).filter((n) => n.endsWith('.jwks'));
  } catch {
    return;
  }
  for (const n of names) {
    const f = path.join(dir, n);
    const buf = await readFile(f);
    const id = oneRecordFileKeyId(buf, JWKS_MAGIC);
    const key = read.find((k) => (k?.keyId ?? 0) === id);
    const payload = key === undefined ? 'no key' : decodeOneRecordFile(buf, JWKS_MAGIC, key);
    if (typeof payload === 'string') {
      await rm(f, { force: true });
      continue;
    }
    await replaceFile(f, encodeOneRecordFile(JWKS_MAGIC, payload, next));
  }
}
