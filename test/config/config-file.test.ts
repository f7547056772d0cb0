import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it, onTestFinished } from 'vitest';
import { ConfigError, resolveConfig } from '../../src/config/config.js';
import { makeCerts } from '../support/certs.js';
import { psql } from '../support/psql.js';
import { spawnServer, type ServerProcess } from '../support/server.js';

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
