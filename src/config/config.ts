import { readFileSync } from 'node:fs';
import { parse as parseTomlDocument, TomlError } from 'smol-toml';
import { DEFAULT_PARSE_LIMITS, WIDEST_PARSE_LIMITS } from '../../grammar/limits.js';
import { DEFAULT_JWKS_POLICY } from '../auth/jwks.js';
import { DEFAULT_TOKEN_POLICY } from '../auth/jwt.js';
import { DEFAULT_ITERATIONS } from '../auth/verifier.js';
import { DEFAULT_POOL } from '../dataplane/pool.js';
import { DEFAULT_ISSUER_POLICY } from '../engine/issuer.js';
import { DEFAULT_LOCKOUT_POLICY } from '../engine/lockouts.js';
import { DEFAULT_RATE_LIMIT } from '../http/rate-limit.js';

/**
 * Configuration, by precedence: flags > environment (PORTCULLIS_*) > portcullis.toml
 * (--config) > defaults.
 */
export interface Config {
  host: string;
  port: number;
  httpPort: number | null;
  data: string;
  memory: boolean;
  /** A PostgreSQL URL: the catalog lives there, shared by every instance given it. */
  catalog: string | undefined;
  scramIterations: number;
  bootstrapUser: string;
  bootstrapPassword: string | undefined;
  maxConnections: number;
  /** Compact the log into a snapshot once it holds this many bytes. */
  compactAt: number;
  /** Token verification and JWKS cache limits (jwt.ts, jwks.ts), in seconds and bytes. */
  jwtClockSkew: number;
  jwtMaxBytes: number;
  jwksCacheSeconds: number;
  jwksRefetchSeconds: number;
  jwksMaxStaleSeconds: number;
  jwksBreakerFailures: number;
  jwksBreakerOpenSeconds: number;
  jwksTimeoutSeconds: number;
  jwksMaxBytes: number;
  /** Brute-force lockouts (failures, windows and lock times in seconds). */
  lockoutIpFailures: number;
  lockoutIpWindowSeconds: number;
  lockoutIpSeconds: number;
  lockoutUserFailures: number;
  lockoutUserSeconds: number;
  /** HTTP requests per principal and window. */
  rateLimitPerMinute: number;
  rateLimitPerHour: number;
  /** PEM files for TLS (pgwire and HTTPS); both or neither. */
  tlsCert: string | undefined;
  tlsKey: string | undefined;
  /** mTLS: PEM CA for client certificates, its CRL, and how a certificate names its user. */
  tlsClientCa: string | undefined;
  tlsCrl: string | undefined;
  tlsCertLogin: 'subject' | 'cn';
  requireTls: 'off' | 'on' | 'except-loopback';
  /** Encryption at rest: a file holding the data directory's 256-bit key. */
  encryptionKeyFile: string | undefined;
  /** Statement limits (grammar/limits.ts): past them a statement is refused with 54000 / 54001. */
  maxStatementBytes: number;
  maxStatementTokens: number;
  maxNestingDepth: number;
  maxPredicateSize: number;
  maxInListLength: number;
  /**
   * Where SQL that is not the admin language runs (SPEC §10): the embedded PGlite, or
   * nowhere ('off': 0A000). undefined: the built-in default (serve: off, until each
   * session's identity is applied on the data plane).
   */
  dataPlane: 'embedded' | 'off' | undefined;
  /** An operator's PostgreSQL 14+ as the data plane (postgres://...); implies it. */
  upstream: string | undefined;
  /**
   * Upstream connections (SPEC §10 "Pooling"): 'transaction' shares at most `poolSize`
   * connections per database between sessions, a transaction at a time; 'session' gives
   * each session its own. A session waits at most `poolTimeout` seconds for a connection.
   */
  poolMode: 'transaction' | 'session';
  poolSize: number;
  poolTimeout: number;
  /** The token issuer: the `iss` of its tokens (undefined: the HTTP API's own address). */
  issuerUrl: string | undefined;
  /** Lifetimes of the access and refresh tokens POST /v1/token gives, in seconds. */
  accessTokenSeconds: number;
  refreshTokenSeconds: number;
  /** The longest EXPIRES IN that CREATE TOKEN accepts, in seconds. */
  createTokenMaxSeconds: number;
  /** The bootstrap superuser is set NOLOGIN (audited) once another superuser exists. */
  bootstrapDisableAfterSetup: boolean;
}

const seconds = (ms: number) => ms / 1000;

/**
 * The defaults of `portcullis serve`. The figures the engine, the HTTP API and the token
 * checks also default to are read from their policies here, not copied: one number per
 * setting, so the server started from the command line and one started in-process (as
 * most tests do) cannot drift apart. test/config/defaults.test.ts checks the spawned
 * server applies them and that they are the ones README.md documents.
 */
export const DEFAULTS: Config = {
  host: '127.0.0.1',
  port: 6432,
  httpPort: 6480,
  data: './portcullis-data',
  memory: false,
  catalog: undefined,
  scramIterations: DEFAULT_ITERATIONS,
  bootstrapUser: 'admin',
  bootstrapPassword: undefined,
  maxConnections: 1000,
  compactAt: 64 * 1024 * 1024,
  jwtClockSkew: DEFAULT_TOKEN_POLICY.clockSkewSeconds,
  jwtMaxBytes: DEFAULT_TOKEN_POLICY.maxTokenBytes,
  jwksCacheSeconds: seconds(DEFAULT_JWKS_POLICY.ttlMs),
  jwksRefetchSeconds: seconds(DEFAULT_JWKS_POLICY.refetchMs),
  jwksMaxStaleSeconds: seconds(DEFAULT_JWKS_POLICY.maxStaleMs),
  jwksBreakerFailures: DEFAULT_JWKS_POLICY.breakerFailures,
  jwksBreakerOpenSeconds: seconds(DEFAULT_JWKS_POLICY.breakerOpenMs),
  jwksTimeoutSeconds: seconds(DEFAULT_JWKS_POLICY.timeoutMs),
  jwksMaxBytes: DEFAULT_JWKS_POLICY.maxBytes,
  lockoutIpFailures: DEFAULT_LOCKOUT_POLICY.ipFailures,
  lockoutIpWindowSeconds: seconds(DEFAULT_LOCKOUT_POLICY.ipWindowMs),
  lockoutIpSeconds: seconds(DEFAULT_LOCKOUT_POLICY.ipLockMs),
  lockoutUserFailures: DEFAULT_LOCKOUT_POLICY.userFailures,
  lockoutUserSeconds: seconds(DEFAULT_LOCKOUT_POLICY.userLockMs),
  rateLimitPerMinute: DEFAULT_RATE_LIMIT.perMinute,
  rateLimitPerHour: DEFAULT_RATE_LIMIT.perHour,
  tlsCert: undefined,
  tlsKey: undefined,
  tlsClientCa: undefined,
  tlsCrl: undefined,
  tlsCertLogin: 'subject',
  requireTls: 'off',
  encryptionKeyFile: undefined,
  ...DEFAULT_PARSE_LIMITS,
  dataPlane: undefined,
  upstream: undefined,
  poolMode: DEFAULT_POOL.mode,
  poolSize: DEFAULT_POOL.size,
  poolTimeout: DEFAULT_POOL.timeoutMs / 1000,
  issuerUrl: undefined,
  accessTokenSeconds: DEFAULT_ISSUER_POLICY.accessTokenSeconds,
  refreshTokenSeconds: DEFAULT_ISSUER_POLICY.refreshTokenSeconds,
  createTokenMaxSeconds: DEFAULT_ISSUER_POLICY.maxMintedTokenSeconds,
  bootstrapDisableAfterSetup: false,
};

/** The numeric settings with their bounds (key → [min, max]). */
const BOUNDS: Partial<Record<keyof Config, [number, number]>> = {
  port: [0, 65535],
  scramIterations: [1, 2 ** 31 - 1],
  maxConnections: [1, 1_000_000],
  compactAt: [1024, 2 ** 40],
  jwtClockSkew: [0, 3600],
  jwtMaxBytes: [512, 1024 * 1024],
  jwksCacheSeconds: [1, 7 * 24 * 3600],
  jwksRefetchSeconds: [1, 24 * 3600],
  jwksMaxStaleSeconds: [0, 30 * 24 * 3600],
  jwksBreakerFailures: [1, 1000],
  jwksBreakerOpenSeconds: [1, 3600],
  jwksTimeoutSeconds: [1, 120],
  jwksMaxBytes: [1024, 64 * 1024 * 1024],
  lockoutIpFailures: [1, 1_000_000],
  lockoutIpWindowSeconds: [1, 24 * 3600],
  lockoutIpSeconds: [0, 24 * 3600],
  lockoutUserFailures: [1, 1_000_000],
  lockoutUserSeconds: [0, 24 * 3600],
  rateLimitPerMinute: [1, 100_000_000],
  rateLimitPerHour: [1, 1_000_000_000],
  maxStatementBytes: [1024, WIDEST_PARSE_LIMITS.maxStatementBytes],
  maxStatementTokens: [100, WIDEST_PARSE_LIMITS.maxStatementTokens],
  maxNestingDepth: [1, WIDEST_PARSE_LIMITS.maxNestingDepth],
  maxPredicateSize: [1, WIDEST_PARSE_LIMITS.maxPredicateSize],
  maxInListLength: [1, WIDEST_PARSE_LIMITS.maxInListLength],
  accessTokenSeconds: [60, 24 * 3600],
  refreshTokenSeconds: [60, 365 * 24 * 3600],
  createTokenMaxSeconds: [60, 10 * 365 * 24 * 3600],
  poolSize: [1, 10_000],
  poolTimeout: [1, 24 * 3600],
};

type Raw = Partial<Record<keyof Config, string | number | boolean>>;

const KEYS: Record<string, keyof Config> = {
  host: 'host',
  port: 'port',
  http_port: 'httpPort',
  data: 'data',
  memory: 'memory',
  catalog: 'catalog',
  scram_iterations: 'scramIterations',
  bootstrap_user: 'bootstrapUser',
  bootstrap_password: 'bootstrapPassword',
  max_connections: 'maxConnections',
  compact_at: 'compactAt',
  jwt_clock_skew: 'jwtClockSkew',
  jwt_max_bytes: 'jwtMaxBytes',
  jwks_cache_seconds: 'jwksCacheSeconds',
  jwks_refetch_seconds: 'jwksRefetchSeconds',
  jwks_max_stale_seconds: 'jwksMaxStaleSeconds',
  jwks_breaker_failures: 'jwksBreakerFailures',
  jwks_breaker_open_seconds: 'jwksBreakerOpenSeconds',
  jwks_timeout_seconds: 'jwksTimeoutSeconds',
  jwks_max_bytes: 'jwksMaxBytes',
  lockout_ip_failures: 'lockoutIpFailures',
  lockout_ip_window_seconds: 'lockoutIpWindowSeconds',
  lockout_ip_seconds: 'lockoutIpSeconds',
  lockout_user_failures: 'lockoutUserFailures',
  lockout_user_seconds: 'lockoutUserSeconds',
  rate_limit_per_minute: 'rateLimitPerMinute',
  rate_limit_per_hour: 'rateLimitPerHour',
  tls_cert: 'tlsCert',
  tls_key: 'tlsKey',
  tls_client_ca: 'tlsClientCa',
  tls_crl: 'tlsCrl',
  tls_cert_login: 'tlsCertLogin',
  require_tls: 'requireTls',
  encryption_key_file: 'encryptionKeyFile',
  max_statement_bytes: 'maxStatementBytes',
  max_statement_tokens: 'maxStatementTokens',
  max_nesting_depth: 'maxNestingDepth',
  max_predicate_size: 'maxPredicateSize',
  max_in_list_length: 'maxInListLength',
  data_plane: 'dataPlane',
  upstream: 'upstream',
  pool_mode: 'poolMode',
  pool_size: 'poolSize',
  pool_timeout: 'poolTimeout',
  issuer_url: 'issuerUrl',
  access_token_seconds: 'accessTokenSeconds',
  refresh_token_seconds: 'refreshTokenSeconds',
  create_token_max_seconds: 'createTokenMaxSeconds',
  bootstrap_disable_after_setup: 'bootstrapDisableAfterSetup',
};

export class ConfigError extends Error {}

/**
 * portcullis.toml: a TOML document (smol-toml, TOML 1.1) whose top-level keys are settings
 * (`-` may stand for `_`), each a string, an integer or a boolean. Anything else (an
 * unknown key, a table, an array, a float, a date) is refused naming the file, the line
 * and the setting.
 */
export function parseToml(text: string, file: string): Raw {
  let doc: Record<string, unknown>;
  try {
    // BigInt integers: a float such as 6432.0 stays a number and is refused below.
    doc = parseTomlDocument(text, { integersAsBigInt: true, unsafeKeyBehaviour: 'throw' });
  } catch (err) {
    if (!(err instanceof TomlError)) throw err;
    const why = err.message.split('\n')[0]!.replace(/^Invalid TOML document: /, '');
    throw new ConfigError(`${file}:${err.line}:${err.column}: invalid TOML: ${why}`);
  }
  const out: Raw = {};
  for (const [name, value] of Object.entries(doc)) {
    const line = lineOf(text, name);
    const at = line ? `${file}:${line}` : file;
    const key = KEYS[name.replaceAll('-', '_')];
    if (!key) throw new ConfigError(`${at}: unknown setting "${name}" (known: ${Object.keys(KEYS).join(', ')})`);
    if (typeof value === 'string' || typeof value === 'boolean') out[key] = value;
    // Beyond 2^53 an integer stays text, so the bounds check quotes it exactly.
    else if (typeof value === 'bigint') out[key] = Number.isSafeInteger(Number(value)) ? Number(value) : value.toString();
    else throw new ConfigError(`${at}: ${name} must be a string, an integer or a boolean, not ${kindOf(value)}`);
  }
  return out;
}

/** The line (1-based) where top-level key `name` is set, for error messages; 0 if not found. */
function lineOf(text: string, name: string): number {
  const esc = name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  // `name =`, `name.x =` (a dotted key) or `[name]` (a table), the name bare or quoted.
  const re = new RegExp(`^\\s*(?:\\[\\[?\\s*)?(?:${esc}|"${esc}"|'${esc}')\\s*[=.\\]]`);
  const i = text.split(/\r?\n/).findIndex((l) => re.test(l));
  return i + 1;
}

function kindOf(v: unknown): string {
  if (typeof v === 'number') return 'a float';
  if (Array.isArray(v)) return 'an array';
  if (v instanceof Date) return 'a date';
  return 'a table';
}

export function fromEnv(env: NodeJS.ProcessEnv): Raw {
  const out: Raw = {};
  for (const [k, key] of Object.entries(KEYS)) {
    const v = env[`PORTCULLIS_${k.toUpperCase()}`];
    if (v !== undefined && v !== '') out[key] = v;
  }
  return out;
}

export function resolveConfig(flags: Raw, env: NodeJS.ProcessEnv, configFile?: string): Config {
  const file = configFile ? parseToml(readFileSync(configFile, 'utf8'), configFile) : {};
  const merged: Raw = { ...file, ...fromEnv(env), ...flags };
  const c: Config = { ...DEFAULTS };
  const num = (k: keyof Config, v: string | number | boolean, min: number, max: number) => {
    const n = Number(v);
    const name = Object.keys(KEYS).find((x) => KEYS[x] === k) ?? k;
    if (!Number.isInteger(n) || n < min || n > max) throw new ConfigError(`${name} must be an integer from ${min} to ${max}, got "${v}"`);
    return n;
  };
  for (const [k, v] of Object.entries(merged) as [keyof Config, string | number | boolean][]) {
    const bounds = BOUNDS[k];
    if (k === 'httpPort') c.httpPort = v === 'off' ? null : num(k, v, 0, 65535);
    else if (bounds) (c as unknown as Record<string, number>)[k] = num(k, v, bounds[0], bounds[1]);
    else if (k === 'memory') c.memory = v === true || v === 'true' || v === '1';
    else if (k === 'host' || k === 'data' || k === 'bootstrapUser') c[k] = String(v);
    else if (k === 'bootstrapPassword') c.bootstrapPassword = String(v);
    else if (k === 'catalog') c.catalog = String(v);
    else if (k === 'tlsCert' || k === 'tlsKey' || k === 'tlsClientCa' || k === 'tlsCrl' || k === 'encryptionKeyFile') c[k] = String(v);
    else if (k === 'tlsCertLogin') {
      if (v !== 'subject' && v !== 'cn') throw new ConfigError(`tls_cert_login must be subject or cn, got "${v}"`);
      c.tlsCertLogin = v;
    }
    else if (k === 'dataPlane') {
      if (v !== 'embedded' && v !== 'off') throw new ConfigError(`data_plane must be embedded or off, got "${v}"`);
      c.dataPlane = v;
    } else if (k === 'upstream') {
      const url = String(v);
      if (!/^postgres(ql)?:\/\//.test(url)) throw new ConfigError(`upstream must be a postgres:// URL, got "${url.replace(/:[^:@/]*@/, ':***@')}"`);
      c.upstream = url;
    }
    else if (k === 'poolMode') {
      if (v !== 'transaction' && v !== 'session') throw new ConfigError(`pool_mode must be transaction or session, got "${v}"`);
      c.poolMode = v;
    } else if (k === 'issuerUrl') {
      // The `iss` of every token and the base of the discovery document's URLs.
      const url = String(v).replace(/\/+$/, '');
      if (!/^https?:\/\/[^/?#\s]+(\/[^?#\s]*)?$/.test(url)) throw new ConfigError(`issuer_url must be an http:// or https:// URL without query or fragment, got "${v}"`);
      c.issuerUrl = url;
    } else if (k === 'bootstrapDisableAfterSetup') {
      // A security switch: a value that is neither true nor false is a mistake, not "off".
      if (v === true || v === 'true' || v === '1') c.bootstrapDisableAfterSetup = true;
      else if (v === false || v === 'false' || v === '0') c.bootstrapDisableAfterSetup = false;
      else throw new ConfigError(`bootstrap_disable_after_setup must be true or false, got "${v}"`);
    }
    else if (k === 'requireTls') {
      const r = v === true ? 'on' : v === false ? 'off' : String(v);
      if (r !== 'on' && r !== 'off' && r !== 'except-loopback') throw new ConfigError(`require_tls must be on, off or except-loopback, got "${v}"`);
      c.requireTls = r;
    }
  }
  if ((c.tlsCert === undefined) !== (c.tlsKey === undefined)) throw new ConfigError('tls_cert and tls_key go together: give both or neither');
  return c;
}
