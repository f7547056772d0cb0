import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it, onTestFinished } from 'vitest';
import { ConfigError, resolveConfig } from '../../src/config/config.js';
import { makeCerts } from '../support/certs.js';
import { psql } from '../support/psql.js';
import { ADMIN_PASSWORD, client, loginError, spawnServer, type ServerProcess } from '../support/server.js';

/** portcullis.toml is TOML: read by a TOML parser, then checked setting by setting. */
const dir = mkdtempSync(path.join(os.tmpdir(), 'pcu-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
function configFile(text: string): string {
  const file = path.join(dir, `c${n++}.toml`);
  writeFileSync(file, text);
  return file;
}

describe('portcullis serve --config', () => {
  let server: ServerProcess | undefined;
  afterAll(async () => {
    await server?.stop();
  });

  it('reads a # inside a quoted string as part of the string, and a # after it as a comment', async () => {
    const certs = makeCerts();
    onTestFinished(() => rmSync(certs.dir, { recursive: true, force: true }));
    const tlsDir = path.join(dir, 'p#1');
    mkdirSync(tlsDir);
    copyFileSync(certs.certFile, path.join(tlsDir, 'cert.pem'));
    copyFileSync(certs.keyFile, path.join(tlsDir, 'key.pem'));
    const file = configFile(
      [
        '# TLS files in a directory whose name has a #',
        `tls_cert = "${tlsDir}/cert.pem"   # the certificate`,
        `tls_key = '${tlsDir}/key.pem'     # a literal string`,
        'bootstrap_password = "s3cret#not-a-comment" # the superuser password',
        'require_tls = "on"',
      ].join('\n'),
    );
    // No PORTCULLIS_BOOTSTRAP_PASSWORD: the file's password is the one that counts.
    server = await spawnServer(['--memory', '--config', file], { PORTCULLIS_BOOTSTRAP_PASSWORD: '' });
    const r = await psql(server.port, ['-At', '-c', 'SELECT current_user'], {
      conninfo: `host=127.0.0.1 port=${server.port} user=admin dbname=default sslmode=verify-full sslrootcert=${certs.caFile}`,
      password: 's3cret#not-a-comment',
    });
    expect(r, r.stderr).toMatchObject({ code: 0, stdout: 'admin\n' });
  });
});

describe('the config file loader', () => {
  it('reads strings (escapes included), integers and booleans; a - in a key stands for _', () => {
    const c = resolveConfig({}, {}, configFile('http-port = 7001\nhost = "127.0.0.1"\ndata = "/var/lib/p\\u00e9#x"\nmemory = true\nport = 0x1F90\n'));
    expect(c).toMatchObject({ httpPort: 7001, host: '127.0.0.1', data: '/var/lib/pé#x', memory: true, port: 8080 });
  });

  it('names the file, line and setting of each mistake', () => {
    const cases: [text: string, message: (f: string) => string][] = [
      ['port = 1\nprot = 2\n', (f) => `${f}:2: unknown setting "prot" (known: `],
      ['port = 6432.0\n', (f) => `${f}:1: port must be a string, an integer or a boolean, not a float`],
      ['\nport = [6432]\n', (f) => `${f}:2: port must be a string, an integer or a boolean, not an array`],
      ['host = "x"\n[server]\nport = 1\n', (f) => `${f}:2: unknown setting "server"`],
      ['port.number = 1\n', (f) => `${f}:1: port must be a string, an integer or a boolean, not a table`],
      ['data = 1979-05-27\n', (f) => `${f}:1: data must be a string, an integer or a boolean, not a date`],
      ['host = "127.0.0.1\n', (f) => `${f}:1:18: invalid TOML: `],
      ['port = 1\nport = 2\n', (f) => `${f}:2:1: invalid TOML: trying to redefine an already defined table or value`],
      ['data = "C:\\path"\n', (f) => `${f}:1:`], // \p is no TOML escape: a Windows path wants 'C:\path'
    ];
    for (const [text, message] of cases) {
      const f = configFile(text);
      let err: unknown;
      try {
        resolveConfig({}, {}, f);
      } catch (e) {
        err = e;
      }
      expect(err, text).toBeInstanceOf(ConfigError);
      expect((err as Error).message, text).toContain(message(f));
    }
  });

  it('checks values as before: bounds of integers (beyond 2^53 too), enumerations, pairs', () => {
    expect(() => resolveConfig({}, {}, configFile('port = 99999999999999999999\n'))).toThrow('port must be an integer from 0 to 65535, got "99999999999999999999"');
    expect(() => resolveConfig({}, {}, configFile('lockout_ip_failures = 0\n'))).toThrow('lockout_ip_failures must be an integer from 1 to 1000000, got "0"');
    expect(() => resolveConfig({}, {}, configFile('require_tls = "maybe"\n'))).toThrow('require_tls must be on, off or except-loopback, got "maybe"');
    expect(() => resolveConfig({}, {}, configFile('tls_cert = "a.pem"\n'))).toThrow('tls_cert and tls_key go together');
    expect(resolveConfig({}, {}, configFile('require_tls = true\nhttp_port = "off"\n'))).toMatchObject({ requireTls: 'on', httpPort: null });
  });
});

describe('the token issuer settings', () => {
  it('are read from the file and from PORTCULLIS_* (which wins), and checked', () => {
    const file = configFile(
      [
        'issuer_url = "https://auth.example.test/"',
        'access_token_seconds = 300',
        'refresh_token_seconds = 86400',
        'create_token_max_seconds = 604800',
        'bootstrap_disable_after_setup = true',
      ].join('\n'),
    );
    expect(resolveConfig({}, {}, file)).toMatchObject({
      issuerUrl: 'https://auth.example.test',
      accessTokenSeconds: 300,
      refreshTokenSeconds: 86400,
      createTokenMaxSeconds: 604800,
      bootstrapDisableAfterSetup: true,
    });
    const env = { PORTCULLIS_ISSUER_URL: 'https://other.example.test', PORTCULLIS_ACCESS_TOKEN_SECONDS: '600', PORTCULLIS_BOOTSTRAP_DISABLE_AFTER_SETUP: 'false' };
    expect(resolveConfig({}, env, file)).toMatchObject({ issuerUrl: 'https://other.example.test', accessTokenSeconds: 600, bootstrapDisableAfterSetup: false, createTokenMaxSeconds: 604800 });
    expect(resolveConfig({}, {})).toMatchObject({ issuerUrl: undefined, accessTokenSeconds: 900, refreshTokenSeconds: 30 * 24 * 3600, createTokenMaxSeconds: 365 * 24 * 3600, bootstrapDisableAfterSetup: false });

    expect(() => resolveConfig({}, {}, configFile('access_token_seconds = 10\n'))).toThrow('access_token_seconds must be an integer from 60 to 86400, got "10"');
    expect(() => resolveConfig({}, {}, configFile('create_token_max_seconds = 0\n'))).toThrow('create_token_max_seconds must be an integer from 60 to');
    expect(() => resolveConfig({}, {}, configFile('issuer_url = "auth.example.test"\n'))).toThrow('issuer_url must be an http:// or https:// URL');
    expect(() => resolveConfig({}, { PORTCULLIS_BOOTSTRAP_DISABLE_AFTER_SETUP: 'yes' })).toThrow('bootstrap_disable_after_setup must be true or false, got "yes"');
  });
});

describe('portcullis serve with the token issuer settings in its --config file', () => {
  let server: ServerProcess | undefined;
  afterAll(async () => {
    await server?.stop();
  });

  it('issues tokens with that iss and lifetime, caps CREATE TOKEN, and retires the bootstrap superuser', async () => {
    const file = configFile(
      [
        'http_port = 0',
        'issuer_url = "https://auth.example.test"',
        'access_token_seconds = 120',
        'create_token_max_seconds = 86400',
        'bootstrap_disable_after_setup = true',
      ].join('\n'),
    );
    const blank = Object.fromEntries(Object.keys(process.env).filter((k) => k.startsWith('PORTCULLIS_')).map((k) => [k, '']));
    server = await spawnServer(['--memory', '--config', file, '--http-port', '0'], { ...blank, PORTCULLIS_BOOTSTRAP_PASSWORD: ADMIN_PASSWORD });
    const httpPort = Number(/and [^ ]+:(\d+) \(http\)/.exec(server.stderr())?.[1]);
    const admin = await client(server.port);
    await admin.query(`CREATE USER tess WITH PASSWORD 'tess-secret-1'`);
    const r = await fetch(`http://127.0.0.1:${httpPort}/v1/token`, { method: 'POST', body: new URLSearchParams({ grant_type: 'password', username: 'tess', password: 'tess-secret-1' }) });
    const body = (await r.json()) as { access_token: string; expires_in: number };
    expect(body.expires_in).toBe(120);
    const claims = JSON.parse(Buffer.from(body.access_token.split('.')[1]!, 'base64url').toString()) as { iss: string; iat: number; exp: number };
    expect(claims).toMatchObject({ iss: 'https://auth.example.test' });
    expect(claims.exp - claims.iat).toBe(120);
    const discovery = (await (await fetch(`http://127.0.0.1:${httpPort}/.well-known/openid-configuration`)).json()) as Record<string, string>;
    expect(discovery).toMatchObject({ issuer: 'https://auth.example.test', jwks_uri: 'https://auth.example.test/.well-known/jwks.json' });

    await expect(admin.query(`CREATE TOKEN FOR tess EXPIRES IN '2 days'`)).rejects.toMatchObject({ code: '22023', message: 'a token may live at most 86400 seconds' });
    expect((await admin.query(`CREATE TOKEN FOR tess EXPIRES IN '1 day'`)).rows).toHaveLength(1);

    await admin.query(`CREATE USER root2 WITH PASSWORD 'root2-secret-1' ROLE superuser`);
    await admin.end();
    expect(await loginError(server.port, 'admin', ADMIN_PASSWORD)).toMatchObject({ code: '28000' });
  });
});
