import { readFileSync } from 'node:fs';
import { DEFAULT_PARSE_LIMITS, WIDEST_PARSE_LIMITS } from '../../grammar/limits.js';

/**
 * Configuration, by precedence: flags > environment (PORTCULLIS_*) > portcullis.toml
 * (--config) > defaults (SPEC §1.1).
 */
export interface Config {
  host: string;
  port: number;
  httpPort: number | null;
  data: string;
  memory: boolean;
  scramIterations: number;
  bootstrapUser: string;
  bootstrapPassword: string | undefined;
  maxConnections: number;
  /** Compact the log into a snapshot once it holds this many bytes. */
  compactAt: number;
  /** Token and JWKS figures of SPEC §2, in seconds and bytes. */
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
}

export const DEFAULTS: Config = {
  host: '127.0.0.1',
  port: 6432,
  httpPort: 6480,
  data: './portcullis-data',
  memory: false,
  scramIterations: 4096,
  bootstrapUser: 'admin',
  bootstrapPassword: undefined,
  maxConnections: 1000,
  compactAt: 64 * 1024 * 1024,
  jwtClockSkew: 60,
  jwtMaxBytes: 8 * 1024,
  jwksCacheSeconds: 3600,
  jwksRefetchSeconds: 60,
  jwksMaxStaleSeconds: 24 * 3600,
  jwksBreakerFailures: 5,
  jwksBreakerOpenSeconds: 30,
  jwksTimeoutSeconds: 10,
  jwksMaxBytes: 1024 * 1024,
  lockoutIpFailures: 20,
  lockoutIpWindowSeconds: 60,
  lockoutIpSeconds: 60,
  lockoutUserFailures: 10,
  lockoutUserSeconds: 60,
  rateLimitPerMinute: 1000,
  rateLimitPerHour: 10_000,
  tlsCert: undefined,
  tlsKey: undefined,
  tlsClientCa: undefined,
  tlsCrl: undefined,
  tlsCertLogin: 'subject',
  requireTls: 'off',
  encryptionKeyFile: undefined,
  ...DEFAULT_PARSE_LIMITS,
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
};

type Raw = Partial<Record<keyof Config, string | number | boolean>>;

const KEYS: Record<string, keyof Config> = {
  host: 'host',
  port: 'port',
  http_port: 'httpPort',
  data: 'data',
  memory: 'memory',
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
};

export class ConfigError extends Error {}

/** A flat TOML subset: `key = "string" | 123 | true`, comments, blank lines. */
export function parseToml(text: string, file: string): Raw {
  const out: Raw = {};
  text.split(/\r?\n/).forEach((line, i) => {
    const l = line.replace(/^\s+|\s+$/g, '');
    if (l === '' || l.startsWith('#')) return;
    const m = /^([A-Za-z_][A-Za-z0-9_-]*)\s*=\s*(.+?)\s*(#.*)?$/.exec(l);
    if (!m) throw new ConfigError(`${file}:${i + 1}: expected key = value`);
    const key = KEYS[m[1]!.replaceAll('-', '_')];
    if (!key) throw new ConfigError(`${file}:${i + 1}: unknown setting "${m[1]}" (known: ${Object.keys(KEYS).join(', ')})`);
    const v = m[2]!;
    if (/^".*"$/.test(v) || /^'.*'$/.test(v)) out[key] = v.slice(1, -1);
    else if (v === 'true' || v === 'false') out[key] = v === 'true';
    else if (/^-?\d+$/.test(v)) out[key] = Number(v);
    else throw new ConfigError(`${file}:${i + 1}: cannot read value ${v}`);
  });
  return out;
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
    else if (k === 'tlsCert' || k === 'tlsKey' || k === 'tlsClientCa' || k === 'tlsCrl' || k === 'encryptionKeyFile') c[k] = String(v);
    else if (k === 'tlsCertLogin') {
      if (v !== 'subject' && v !== 'cn') throw new ConfigError(`tls_cert_login must be subject or cn, got "${v}"`);
      c.tlsCertLogin = v;
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
