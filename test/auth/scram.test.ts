import { describe, expect, it } from 'vitest';
import { ScramServer } from '../../src/auth/scram.js';
import { formatVerifier, keysFromSaltedPassword, makeVerifier, parseVerifier } from '../../src/auth/verifier.js';
import { saslprep } from '../../src/auth/saslprep.js';
import { PgError } from '../../src/errors/pg-error.js';
import { ScramClient } from '../support/scram-client.js';
import { pbkdf2Sync } from 'node:crypto';

// RFC 7677 §3: the SCRAM-SHA-256 example exchange (user "user", password "pencil").
const RFC = {
  clientFirst: 'n,,n=user,r=rOprNGfwEbeRWgbNEkqO',
  serverNonce: '%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0',
  serverFirst: 'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096',
  clientFinal:
    'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=',
  serverFinal: 'v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=',
};

// Made by PostgreSQL 15 (`SET password_encryption = 'scram-sha-256'; CREATE ROLE ... PASSWORD 'pencil'`).
const POSTGRES_VERIFIER =
  'SCRAM-SHA-256$4096:ZyJwym8YR/B7ytXG/mxunA==$OabMVnuNim13j47nPpjQM6pakIv+ZeJVNXXavFbbK6Q=:IcWXQNLn741thLidUaIGg/tvGcngvFGh9zAJnPFkVwA=';

function rfcVerifier() {
  const salt = Buffer.from('W22ZaJ0SNY7soEsUEjb6gQ==', 'base64');
  return { iterations: 4096, salt, ...keysFromSaltedPassword(pbkdf2Sync('pencil', salt, 4096, 32, 'sha256')) };
}

describe('SCRAM-SHA-256 server', () => {
  it('reproduces the RFC 7677 example exchange byte for byte', () => {
    const s = new ScramServer(rfcVerifier(), { serverNonce: () => RFC.serverNonce });
    expect(s.clientFirst(RFC.clientFirst)).toBe(RFC.serverFirst);
    const { ok, serverFinal } = s.clientFinal(RFC.clientFinal);
    expect(ok).toBe(true);
    expect(serverFinal).toBe(RFC.serverFinal);
    expect(s.current).toBe('Done');
  });

  it('rejects a wrong proof', () => {
    const s = new ScramServer(rfcVerifier(), { serverNonce: () => RFC.serverNonce });
    s.clientFirst(RFC.clientFirst);
    const bad = RFC.clientFinal.replace('p=dHzb', 'p=dHzc');
    expect(s.clientFinal(bad).ok).toBe(false);
  });

  it('logs in with a verifier made by PostgreSQL for "pencil"', () => {
    const v = parseVerifier(POSTGRES_VERIFIER)!;
    expect(v).not.toBeNull();
    const c = new ScramClient('pencil');
    const s = new ScramServer(v);
    const sf = s.clientFirst(c.first());
    const { ok, serverFinal } = s.clientFinal(c.final(sf));
    expect(ok).toBe(true);
    expect(c.verifyServer(serverFinal)).toBe(true);

    const wrong = new ScramClient('pencil2');
    const s2 = new ScramServer(v);
    const sf2 = s2.clientFirst(wrong.first());
    expect(s2.clientFinal(wrong.final(sf2)).ok).toBe(false);
  });

  it('a doomed (mock) exchange runs the whole path and fails even with the right proof', () => {
    const s = new ScramServer(rfcVerifier(), { serverNonce: () => RFC.serverNonce, doomed: true });
    expect(s.clientFirst(RFC.clientFirst)).toBe(RFC.serverFirst);
    expect(s.clientFinal(RFC.clientFinal).ok).toBe(false);
  });

  it.each([
    ['no GS2 header', 'n=user,r=abc'],
    ['channel binding without TLS', 'p=tls-server-end-point,,n=,r=abc'],
    ['bad flag', 'x,,n=,r=abc'],
    ['authzid', 'n,a=bob,n=,r=abc'],
    ['missing nonce', 'n,,n=user'],
    ['comma in nonce', 'n,,n=,r='],
    ['mandatory extension', 'n,,m=ext,n=,r=abc'],
  ])('refuses a malformed client-first-message (%s) with 08P01 or 0A000', (_what, msg) => {
    const s = new ScramServer(rfcVerifier());
    try {
      s.clientFirst(msg);
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(PgError);
      expect(['08P01', '0A000']).toContain((e as PgError).code);
    }
  });

  it.each([
    ['nonce mismatch', (f: string) => f.replace('r=rOpr', 'r=xOpr')],
    ['channel binding mismatch', (f: string) => f.replace('c=biws', 'c=eSws')],
    ['short proof', (f: string) => f.replace(/p=.*$/, 'p=AAAA')],
    ['no proof', (f: string) => f.replace(/,p=.*$/, '')],
  ])('refuses a malformed client-final-message (%s)', (_what, mutate) => {
    const s = new ScramServer(rfcVerifier(), { serverNonce: () => RFC.serverNonce });
    s.clientFirst(RFC.clientFirst);
    expect(() => s.clientFinal(mutate(RFC.clientFinal))).toThrow(PgError);
  });

  it('refuses messages out of order', () => {
    const s = new ScramServer(rfcVerifier());
    expect(() => s.clientFinal(RFC.clientFinal)).toThrow(/malformed SCRAM message/);
  });
});

describe('verifiers', () => {
  it('round-trips PostgreSQL text form and rejects malformed ones', () => {
    expect(formatVerifier(parseVerifier(POSTGRES_VERIFIER)!)).toBe(POSTGRES_VERIFIER);
    expect(parseVerifier('SCRAM-SHA-256$4096:c2FsdA==$AAAA:BBBB')).toBeNull();
    expect(parseVerifier('md5abcdef')).toBeNull();
    expect(parseVerifier('SCRAM-SHA-256$0:ZyJwym8YR/B7ytXG/mxunA==$OabMVnuNim13j47nPpjQM6pakIv+ZeJVNXXavFbbK6Q=:IcWXQNLn741thLidUaIGg/tvGcngvFGh9zAJnPFkVwA=')).toBeNull();
  });

  it('makes verifiers that PostgreSQL-style clients can log in with', async () => {
    const v = await makeVerifier('correct horse', 1024);
    expect(v.iterations).toBe(1024);
    const c = new ScramClient('correct horse');
    const s = new ScramServer(v);
    expect(s.clientFinal(c.final(s.clientFirst(c.first()))).ok).toBe(true);
  });
});

describe('SASLprep', () => {
  it('leaves ASCII alone, maps spaces and soft hyphens, normalizes NFKC', () => {
    expect(saslprep('pencil')).toBe('pencil');
    expect(saslprep('I\u00ADX')).toBe('IX'); // RFC 4013 example: soft hyphen mapped to nothing
    expect(saslprep('\u00AA')).toBe('a'); // NFKC
    expect(saslprep('a\u00A0b')).toBe('a b'); // non-ASCII space
    expect(saslprep('\u2168')).toBe('IX'); // ROMAN NUMERAL NINE
  });

  it('uses a prohibited password unprepared, as PostgreSQL does', () => {
    expect(saslprep('a\u0007é')).toBe('a\u0007é');
  });
});
