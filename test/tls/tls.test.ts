import https from 'node:https';
import net from 'node:net';
import { rmSync } from 'node:fs';
import { serialize } from 'pg-protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningServer } from '../../src/server.js';
import { makeCerts, makeClientCert, makeCrl, type TestCerts } from '../support/certs.js';
import { client } from '../support/server.js';
import { psql } from '../support/psql.js';
import { RawClient } from '../support/raw-client.js';
import { startTestServer } from '../support/server.js';

/**
 * TLS on pgwire (SSLRequest) and HTTPS, SCRAM-SHA-256-PLUS with tls-server-end-point
 * channel binding, --require-tls, buffer stuffing, a channel-binding downgrade, and a
 * certificate reload that new connections see while open ones carry on.
 */
let certs: TestCerts;
let server: RunningServer;
let strict: RunningServer;

beforeAll(async () => {
  certs = makeCerts();
  server = await startTestServer({ tls: { cert: certs.cert, key: certs.key }, httpPort: 0 });
  strict = await startTestServer({ tls: { cert: certs.cert, key: certs.key }, requireTls: 'on' });
});
afterAll(async () => {
  await server.close();
  await strict.close();
  rmSync(certs.dir, { recursive: true, force: true });
});

const conninfo = (port: number, extra: string) => `host=localhost port=${port} user=admin dbname=default ${extra}`;

describe('TLS with psql', () => {
  it('connects with sslmode=require and with verify-full against the CA', async () => {
    for (const mode of ['sslmode=require', `sslmode=verify-full sslrootcert=${certs.caFile}`]) {
      const r = await psql(0, ['-At', '-c', '\\conninfo', '-c', 'SELECT $auth.method'], { conninfo: conninfo(server.port, mode) });
      expect(r.stderr).toBe('');
      expect(r.stdout).toMatch(/SSL connection \(protocol: TLSv1\.[23]/);
      expect(r.stdout).toContain('password');
    }
  });

  it('chooses SCRAM-SHA-256-PLUS: channel_binding=require succeeds', async () => {
    const r = await psql(0, ['-At', '-c', 'SELECT 1'], { conninfo: conninfo(server.port, `sslmode=verify-full sslrootcert=${certs.caFile} channel_binding=require`) });
    expect(r).toMatchObject({ code: 0, stdout: '1\n' });
    // Without TLS there is no channel to bind: libpq refuses before sending a password.
    const clear = await psql(0, ['-At', '-c', 'SELECT 1'], { conninfo: conninfo(server.port, 'sslmode=disable channel_binding=require') });
    expect(clear.code).not.toBe(0);
  });

  it('refuses a cleartext startup under --require-tls with 28000, and takes TLS', async () => {
    const clear = await psql(0, ['-At', '-c', 'SELECT 1'], { conninfo: conninfo(strict.port, 'sslmode=disable') });
    expect(clear.code).toBe(2);
    expect(clear.stderr).toContain('this server requires TLS');
    const secure = await psql(0, ['-At', '-c', 'SELECT 1'], { conninfo: conninfo(strict.port, 'sslmode=require') });
    expect(secure).toMatchObject({ code: 0, stdout: '1\n' });
  });
});

describe('attacks on the TLS setup', () => {
  it('closes the connection when bytes follow an SSLRequest before the answer (buffer stuffing)', async () => {
    const socket = net.connect(server.port, '127.0.0.1');
    await new Promise((r) => socket.once('connect', r));
    const request = Buffer.alloc(8);
    request.writeInt32BE(8, 0);
    request.writeInt32BE(80877103, 4);
    const received: Buffer[] = [];
    socket.on('data', (d) => received.push(d));
    socket.write(Buffer.concat([request, serialize.startup({ user: 'admin', database: 'default' })]));
    await new Promise((r) => socket.once('close', r));
    const all = Buffer.concat(received);
    expect(all[0]).not.toBe(0x53); // never "S": nothing injected is read as if encrypted
    expect(all.toString()).toContain('received unencrypted data after SSL request');
  });

  it('refuses a SCRAM client that claims binding support but was offered none (downgrade)', async () => {
    const c = await RawClient.connectTls(server.port, certs.ca);
    c.send(serialize.startup({ user: 'admin', database: 'default' }));
    const sasl = (await c.until('authenticationSASL')) as unknown as { mechanisms: string[] };
    expect(sasl.mechanisms[0]).toBe('SCRAM-SHA-256-PLUS');
    // "y": the client supports channel binding but believes the server does not.
    c.send(serialize.sendSASLInitialResponseMessage('SCRAM-SHA-256', 'y,,n=,r=abcdefghijklmnop'));
    const err = (await c.until('error')) as unknown as { code: string; message: string };
    expect(err.code).toBe('08P01');
    expect(err.message).toContain('downgrade');
  });
});

describe('certificate reload and HTTPS', () => {
  it('serves the JSON API over HTTPS, and a reloaded certificate to new connections only', async () => {
    const get = (ca: string) =>
      new Promise<{ status: number; fingerprint: string }>((resolve, reject) => {
        const req = https.get({ host: '127.0.0.1', port: server.httpPort!, path: '/healthz', ca, servername: 'localhost', agent: false }, (res) => {
          const fingerprint = (res.socket as unknown as { getPeerCertificate(): { fingerprint256: string } }).getPeerCertificate().fingerprint256;
          res.resume();
          res.on('end', () => resolve({ status: res.statusCode ?? 0, fingerprint }));
        });
        req.on('error', reject);
      });
    const before = await get(certs.ca);
    expect(before.status).toBe(200);
    const open = await RawClient.connectTls(server.port, certs.ca);
    const oldFingerprint = open.tls.getPeerCertificate().fingerprint256;

    const next = makeCerts('renewed');
    try {
      server.reloadTls({ cert: next.cert, key: next.key });
      const fresh = await RawClient.connectTls(server.port, next.ca);
      expect(fresh.tls.getPeerCertificate().fingerprint256).not.toBe(oldFingerprint);
      fresh.end();
      expect((await get(next.ca)).fingerprint).not.toBe(before.fingerprint);
      // The connection opened before the reload still logs in over its old certificate.
      open.send(serialize.startup({ user: 'admin', database: 'default' }));
      expect(((await open.until('authenticationSASL')) as unknown as { mechanisms: string[] }).mechanisms).toContain('SCRAM-SHA-256');
      open.end();
    } finally {
      server.reloadTls({ cert: certs.cert, key: certs.key });
      rmSync(next.dir, { recursive: true, force: true });
    }
  });
});

describe('mTLS', () => {
  let mtls: RunningServer;
  let carol: { certFile: string; keyFile: string };
  let dave: { certFile: string; keyFile: string };
  let eve: { certFile: string; keyFile: string };
  beforeAll(async () => {
    carol = makeClientCert(certs, 'carol');
    dave = makeClientCert(certs, 'dave');
    eve = makeClientCert(certs, 'expired_eve');
    const crl = makeCrl(certs, [dave.certFile, eve.certFile]);
    mtls = await startTestServer({ tls: { cert: certs.cert, key: certs.key, clientCa: certs.ca, crl }, httpPort: 0 });
    const admin = await client(mtls.port);
    await admin.query("CREATE USER carol CERTIFICATE SUBJECT 'CN=carol'; CREATE USER dave CERTIFICATE SUBJECT 'CN=dave'");
    await admin.end();
  });
  afterAll(async () => {
    await mtls.close();
  });

  const withCert = (user: string, c: { certFile: string; keyFile: string }) =>
    `host=localhost port=${mtls.port} user=${user} dbname=default sslmode=verify-full sslrootcert=${certs.caFile} sslcert=${c.certFile} sslkey=${c.keyFile}`;

  it('logs in by a verified client certificate mapped by CERTIFICATE SUBJECT, without a password', async () => {
    const r = await psql(0, ['-At', '-c', 'SELECT $auth.method, current_user'], { conninfo: withCert('carol', carol), password: '' });
    expect(r, r.stderr).toMatchObject({ code: 0, stdout: 'certificate|carol\n' });
  });

  it('refuses a revoked certificate, and a certificate that maps to someone else gets no free login', async () => {
    const revoked = await psql(0, ['-At', '-c', 'SELECT 1'], { conninfo: withCert('dave', dave), password: '' });
    expect(revoked.code).toBe(2);
    expect(revoked.stderr).toContain('password authentication failed for user "dave"');
    // carol's certificate, startup user admin: the certificate is not admin's, so a password is asked for.
    const other = await psql(0, ['-At', '-c', 'SELECT current_user, $auth.method'], { conninfo: withCert('admin', carol) });
    expect(other).toMatchObject({ code: 0, stdout: 'admin|password\n' });
  });

  it('counts a refused certificate by its verification code, not by words in its subject', async () => {
    const count = async (reason: string) => {
      const text = await new Promise<string>((resolve, reject) => {
        https.get({ host: '127.0.0.1', port: mtls.httpPort!, path: '/metrics', ca: certs.ca, servername: 'localhost', agent: false }, (res) => {
          let body = '';
          res.on('data', (d: Buffer) => (body += d.toString()));
          res.on('end', () => resolve(body));
        }).on('error', reject);
      });
      return Number(new RegExp(`^portcullis_logins_total\\{method="certificate",outcome="failure",reason="${reason}"\\} (\\d+)$`, 'm').exec(text)?.[1] ?? 0);
    };
    const other = await count('other');
    // Revoked (CERT_REVOKED): "other", although the subject says "expired".
    const r = await psql(0, ['-At', '-c', 'SELECT 1'], { conninfo: withCert('expired_eve', eve), password: '' });
    expect(r.code).toBe(2);
    expect(await count('other')).toBe(other + 1);
    expect(await count('expired')).toBe(0);
  });
});
