import { readFileSync } from 'node:fs';

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
    if (!Number.isInteger(n) || n < min || n > max) throw new ConfigError(`${k} must be an integer from ${min} to ${max}, got "${v}"`);
    return n;
  };
  for (const [k, v] of Object.entries(merged) as [keyof Config, string | number | boolean][]) {
    switch (k) {
      case 'port':
        c.port = num(k, v, 0, 65535);
        break;
      case 'httpPort':
        c.httpPort = v === 'off' ? null : num(k, v, 0, 65535);
        break;
      case 'scramIterations':
        c.scramIterations = num(k, v, 1, 2 ** 31 - 1);
        break;
      case 'maxConnections':
        c.maxConnections = num(k, v, 1, 1_000_000);
        break;
      case 'compactAt':
        c.compactAt = num(k, v, 1024, 2 ** 40);
        break;
      case 'memory':
        c.memory = v === true || v === 'true' || v === '1';
        break;
      case 'host':
      case 'data':
      case 'bootstrapUser':
        c[k] = String(v);
        break;
      case 'bootstrapPassword':
        c.bootstrapPassword = String(v);
        break;
    }
  }
  return c;
}
