import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseVerifier } from '../../src/auth/verifier.js';
import { ScramServer } from '../../src/auth/scram.js';
import { ConfigError, resolveConfig } from '../../src/config/config.js';
import { ScramClient } from '../support/scram-client.js';
import { cli } from '../support/cli.js';

describe('portcullis CLI', () => {
  it('hash-password prints a verifier that logs in with that password, and never the password', async () => {
    const r = await cli(['hash-password', '--iterations', '1000'], 'tr0ub4dor&3\n');
    expect(r.code).toBe(0);
    expect(r.stdout).not.toContain('tr0ub4dor');
    const v = parseVerifier(r.stdout.trim());
    expect(v?.iterations).toBe(1000);
    const c = new ScramClient('tr0ub4dor&3');
    const s = new ScramServer(v!);
    expect(s.clientFinal(c.final(s.clientFirst(c.first()))).ok).toBe(true);
  });

  it('explains itself and refuses what it does not know', async () => {
    const help = await cli(['serve', '--help']);
    expect(help.code).toBe(0);
    for (const flag of ['--host', '--port', '--http-port', '--data', '--memory', '--config']) expect(help.stdout).toContain(flag);
    const bad = await cli(['serve', '--prot', '1']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/Unknown option '--prot'/);
    const both = await cli(['serve', '--memory', '--data', '/tmp/x']);
    expect(both.code).toBe(2);
    expect(both.stderr).toContain('--memory and --data cannot be used together');
    expect((await cli(['frobnicate'])).code).toBe(2);
  });
});

describe('configuration precedence: flags > PORTCULLIS_* > portcullis.toml > defaults', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'portcullis-config-'));
  const file = path.join(dir, 'portcullis.toml');
  writeFileSync(file, '# a comment\nport = 7000\nhttp_port = 7001\nhost = "0.0.0.0"\nscram_iterations = 8192\n');

  it('takes each setting from the highest source that has it', () => {
    const c = resolveConfig({ port: '9000' }, { PORTCULLIS_HTTP_PORT: '9001' }, file);
    expect(c).toMatchObject({ port: 9000, httpPort: 9001, host: '0.0.0.0', scramIterations: 8192, data: './portcullis-data' });
    expect(resolveConfig({}, {}, undefined)).toMatchObject({ port: 6432, httpPort: 6480, host: '127.0.0.1' });
    expect(resolveConfig({ httpPort: 'off' }, {}, undefined).httpPort).toBeNull();
  });

  it('reads the token and JWKS figures of SPEC §2, with their defaults and bounds', () => {
    expect(resolveConfig({}, {}, undefined)).toMatchObject({ jwtClockSkew: 60, jwksCacheSeconds: 3600, jwksMaxStaleSeconds: 86400, jwksBreakerFailures: 5, jwksMaxBytes: 1048576 });
    expect(resolveConfig({}, { PORTCULLIS_JWKS_CACHE_SECONDS: '300', PORTCULLIS_JWT_CLOCK_SKEW: '5' }, undefined)).toMatchObject({ jwksCacheSeconds: 300, jwtClockSkew: 5 });
    expect(() => resolveConfig({}, { PORTCULLIS_JWKS_TIMEOUT_SECONDS: '0' }, undefined)).toThrow(/jwks_timeout_seconds must be an integer from 1 to 120/);
  });

  it('names the file, line and setting of a mistake', () => {
    const badFile = path.join(dir, 'bad.toml');
    writeFileSync(badFile, 'port = 1\nprot = 2\n');
    expect(() => resolveConfig({}, {}, badFile)).toThrow(new ConfigError(`${badFile}:2: unknown setting "prot" (known: host, port, http_port, data, memory, catalog, scram_iterations, bootstrap_user, bootstrap_password, max_connections, compact_at, jwt_clock_skew, jwt_max_bytes, jwks_cache_seconds, jwks_refetch_seconds, jwks_max_stale_seconds, jwks_breaker_failures, jwks_breaker_open_seconds, jwks_timeout_seconds, jwks_max_bytes, lockout_ip_failures, lockout_ip_window_seconds, lockout_ip_seconds, lockout_user_failures, lockout_user_seconds, rate_limit_per_minute, rate_limit_per_hour, tls_cert, tls_key, tls_client_ca, tls_crl, tls_cert_login, require_tls, encryption_key_file, max_statement_bytes, max_statement_tokens, max_nesting_depth, max_predicate_size, max_in_list_length, data_plane, upstream, pool_mode, pool_size, pool_timeout, issuer_url, access_token_seconds, refresh_token_seconds, create_token_max_seconds, bootstrap_disable_after_setup)`));
    expect(() => resolveConfig({ port: '70000' }, {}, undefined)).toThrow(/port must be an integer from 0 to 65535/);
  });
});
