import { createHash, X509Certificate } from 'node:crypto';

/**
 * RFC 5929 tls-server-end-point: the hash of the server certificate (DER), with the hash
 * of the certificate's signature algorithm — SHA-256 when that is MD5 or SHA-1 (or not
 * recognised). SCRAM-SHA-256-PLUS binds the exchange to it, so a man in the middle with
 * another certificate cannot relay the login.
 */
export function tlsServerEndPoint(certPem: string): Buffer {
  const der = new X509Certificate(certPem).raw;
  return createHash(signatureHash(der)).update(der).digest();
}

/** OIDs (DER content bytes, hex) of signature algorithms that use SHA-384 or SHA-512. */
const BY_OID: Record<string, string> = {
  '2a864886f70d01010c': 'sha384', // sha384WithRSAEncryption
  '2a864886f70d01010d': 'sha512', // sha512WithRSAEncryption
  '2a8648ce3d040303': 'sha384', // ecdsa-with-SHA384
  '2a8648ce3d040304': 'sha512', // ecdsa-with-SHA512
};

/** Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm SEQUENCE { OID, ... }, signature } */
function signatureHash(der: Buffer): string {
  try {
    let at = 0;
    const header = (): { len: number; start: number } => {
      at++; // tag
      let len = der[at++]!;
      if (len & 0x80) {
        const n = len & 0x7f;
        len = 0;
        for (let i = 0; i < n; i++) len = len * 256 + der[at++]!;
      }
      return { len, start: at };
    };
    header(); // Certificate
    const tbs = header();
    at = tbs.start + tbs.len; // skip tbsCertificate
    header(); // signatureAlgorithm
    const oid = header();
    return BY_OID[der.subarray(oid.start, oid.start + oid.len).toString('hex')] ?? 'sha256';
  } catch {
    return 'sha256';
  }
}
