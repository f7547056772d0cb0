import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface TestCerts {
  dir: string;
  caFile: string;
  certFile: string;
  keyFile: string;
  ca: string;
  cert: string;
  key: string;
}

const openssl = (args: string[], cwd: string) => execFileSync('openssl', args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });

/** A CA and a server certificate it signed, for localhost and 127.0.0.1 (EC P-256, SHA-256), made with openssl. */
export function makeCerts(name = 'server'): TestCerts {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pcu-certs-'));
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=portcullis test CA', '-sha256'], dir);
  openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', '/CN=localhost', '-sha256'], dir);
  writeFileSync(path.join(dir, 'ext.cnf'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n');
  openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.pem`, '-days', '2', '-sha256', '-extfile', 'ext.cnf'], dir);
  const f = (n: string) => path.join(dir, n);
  return { dir, caFile: f('ca.pem'), certFile: f(`${name}.pem`), keyFile: f(`${name}.key`), ca: readFileSync(f('ca.pem'), 'utf8'), cert: readFileSync(f(`${name}.pem`), 'utf8'), key: readFileSync(f(`${name}.key`), 'utf8') };
}

/** A client certificate for `cn`, signed by the test CA (its key file 0600, as libpq requires). */
export function makeClientCert(certs: TestCerts, cn: string): { certFile: string; keyFile: string } {
  const dir = certs.dir;
  openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${cn}.key`, '-out', `${cn}.csr`, '-subj', `/CN=${cn}`, '-sha256'], dir);
  writeFileSync(path.join(dir, 'client.cnf'), 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=clientAuth\n');
  openssl(['x509', '-req', '-in', `${cn}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${cn}.pem`, '-days', '2', '-sha256', '-extfile', 'client.cnf'], dir);
  chmodSync(path.join(dir, `${cn}.key`), 0o600);
  return { certFile: path.join(dir, `${cn}.pem`), keyFile: path.join(dir, `${cn}.key`) };
}

/** A CRL of the test CA revoking the given certificate files (openssl ca). */
export function makeCrl(certs: TestCerts, revoked: string[]): string {
  const dir = certs.dir;
  writeFileSync(path.join(dir, 'index.txt'), '');
  writeFileSync(path.join(dir, 'crlnumber'), '01\n');
  writeFileSync(path.join(dir, 'ca.cnf'), '[ ca ]\ndefault_ca = test\n[ test ]\ndatabase = index.txt\ncrlnumber = crlnumber\ndefault_md = sha256\ndefault_crl_days = 2\n');
  for (const f of revoked) openssl(['ca', '-config', 'ca.cnf', '-keyfile', 'ca.key', '-cert', 'ca.pem', '-revoke', f], dir);
  openssl(['ca', '-config', 'ca.cnf', '-keyfile', 'ca.key', '-cert', 'ca.pem', '-gencrl', '-out', 'crl.pem'], dir);
  return readFileSync(path.join(dir, 'crl.pem'), 'utf8');
}
