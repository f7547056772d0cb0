import { randomBytes, timingSafeEqual } from 'node:crypto';
import { PgError } from '../errors/pg-error.js';
import { hmac, sha256, type ScramVerifier } from './verifier.js';

/**
 * Server side of SCRAM-SHA-256 (RFC 5802, RFC 7677) as a typestate:
 * AwaitingClientFirst → AwaitingClientFinal → Done. Each method is valid only in its
 * state; a message out of order or malformed is a protocol violation (08P01).
 */

export type ScramState =
  | { kind: 'AwaitingClientFirst' }
  | {
      kind: 'AwaitingClientFinal';
      gs2Header: string;
      clientFirstBare: string;
      serverFirst: string;
      nonce: string;
    }
  | { kind: 'Done'; ok: boolean };

export interface ScramOptions {
  /** Server nonce generator (tests pass the RFC 7677 example's). */
  serverNonce?: () => string;
  /**
   * A mock exchange: the credentials are made up (unknown user, no password), the
   * exchange runs the same path and always fails at the end, so the client cannot tell.
   */
  doomed?: boolean;
  /**
   * Further verifiers with the same salt and iterations (a rotated API key's old secret,
   * during its grace period): the proof may match any of them.
   */
  alternates?: ScramVerifier[];
  /**
   * TLS channel binding (RFC 5929 tls-server-end-point: the hash of the server's
   * certificate). Present when the connection is TLS and the -PLUS mechanism was offered.
   */
  channelBinding?: Buffer;
  /** The client chose SCRAM-SHA-256-PLUS: it must bind the channel. */
  plus?: boolean;
}

const malformed = (detail: string) =>
  new PgError('protocol_violation', 'malformed SCRAM message', { detail, severity: 'FATAL' });

export class ScramServer {
  private state: ScramState = { kind: 'AwaitingClientFirst' };

  constructor(
    private readonly verifier: ScramVerifier,
    private readonly opts: ScramOptions = {},
  ) {}

  get current(): ScramState['kind'] {
    return this.state.kind;
  }

  /**
   * client-first-message = gs2-header client-first-message-bare
   * gs2-header = gs2-cbind-flag "," [ authzid ] ","
   * gs2-cbind-flag = ("p=" cb-name) / "n" / "y"
   * client-first-message-bare = [reserved-mext ","] username "," nonce ["," extensions]
   */
  clientFirst(message: string): string {
    if (this.state.kind !== 'AwaitingClientFirst') throw malformed('unexpected client-first-message');
    const c1 = message.indexOf(',');
    const c2 = c1 < 0 ? -1 : message.indexOf(',', c1 + 1);
    if (c2 < 0) throw malformed('missing GS2 header');
    const cbind = message.slice(0, c1);
    const authzid = message.slice(c1 + 1, c2);
    const binding = this.opts.channelBinding;
    if (cbind.startsWith('p=')) {
      if (!binding || !this.opts.plus) {
        throw new PgError('protocol_violation', 'channel binding requested but the SCRAM-SHA-256-PLUS mechanism was not selected', { severity: 'FATAL' });
      }
      if (cbind !== 'p=tls-server-end-point') throw malformed(`unsupported channel binding type "${cbind.slice(2)}"`);
    } else if (this.opts.plus) {
      throw malformed('SCRAM-SHA-256-PLUS selected without channel binding');
    } else if (cbind === 'y' && binding) {
      // RFC 5802: "y" says the client could bind but believes the server cannot. This server
      // offered -PLUS, so someone removed it on the way: a downgrade, refused.
      throw new PgError('protocol_violation', 'SCRAM channel binding downgrade: the server offered SCRAM-SHA-256-PLUS', { severity: 'FATAL' });
    } else if (cbind !== 'n' && cbind !== 'y') throw malformed(`unexpected channel-binding flag "${cbind}"`);
    if (authzid !== '') {
      throw new PgError('feature_not_supported', 'client uses authorization identity, but it is not supported', {
        severity: 'FATAL',
      });
    }
    const bare = message.slice(c2 + 1);
    const attrs = bare.split(',');
    if (attrs[0]?.startsWith('m=')) throw malformed('client requires an unsupported SCRAM extension');
    // username = "n=" saslname: PostgreSQL ignores it and uses the startup user.
    if (!attrs[0]?.startsWith('n=')) throw malformed('expected attribute "n"');
    const nonceAttr = attrs[1];
    if (!nonceAttr?.startsWith('r=')) throw malformed('expected attribute "r"');
    const clientNonce = nonceAttr.slice(2);
    // nonce: printable = %x21-2B / %x2D-7E (any printable ASCII except ",")
    if (clientNonce.length === 0 || !/^[\x21-\x2b\x2d-\x7e]+$/.test(clientNonce)) throw malformed('invalid nonce');
    const nonce = clientNonce + (this.opts.serverNonce?.() ?? randomBytes(18).toString('base64'));
    const serverFirst = `r=${nonce},s=${this.verifier.salt.toString('base64')},i=${this.verifier.iterations}`;
    this.state = { kind: 'AwaitingClientFinal', gs2Header: message.slice(0, c2 + 1), clientFirstBare: bare, serverFirst, nonce };
    return serverFirst;
  }

  /**
   * client-final-message-without-proof = channel-binding "," nonce ["," extensions]
   * client-final-message = client-final-message-without-proof "," proof
   * Returns the server-final-message ("v=" ServerSignature) when the proof verifies.
   */
  clientFinal(message: string): { ok: boolean; serverFinal: string; matched: number } {
    const st = this.state;
    if (st.kind !== 'AwaitingClientFinal') throw malformed('unexpected client-final-message');
    this.state = { kind: 'Done', ok: false };
    const proofAt = message.lastIndexOf(',p=');
    if (proofAt < 0) throw malformed('missing proof');
    const withoutProof = message.slice(0, proofAt);
    const attrs = withoutProof.split(',');
    if (!attrs[0]?.startsWith('c=')) throw malformed('expected attribute "c"');
    if (!attrs[1]?.startsWith('r=')) throw malformed('expected attribute "r"');
    // "c=": base64 of the GS2 header, followed by the channel-binding data when bound.
    const cbindInput = st.gs2Header.startsWith('p=') ? Buffer.concat([Buffer.from(st.gs2Header), this.opts.channelBinding!]) : Buffer.from(st.gs2Header);
    if (attrs[0].slice(2) !== cbindInput.toString('base64')) {
      throw malformed('unexpected SCRAM channel-binding attribute in client-final-message');
    }
    if (attrs[1].slice(2) !== st.nonce) throw malformed('nonce does not match');
    const proofB64 = message.slice(proofAt + 3);
    const proof = Buffer.from(proofB64, 'base64');
    if (proof.length !== 32 || proof.toString('base64') !== proofB64) throw malformed('malformed proof');

    const authMessage = `${st.clientFirstBare},${st.serverFirst},${withoutProof}`;
    const same = (v: ScramVerifier) => v.iterations === this.verifier.iterations && v.salt.equals(this.verifier.salt);
    const candidates = [this.verifier, ...(this.opts.alternates ?? []).filter(same)];
    // Every candidate is checked (no early exit), each in constant time: a timing
    // difference would leak StoredKey bytes, or which secret matched.
    let matched = -1;
    candidates.forEach((v, n) => {
      const clientSignature = hmac(v.storedKey, authMessage);
      const clientKey = Buffer.alloc(32);
      for (let i = 0; i < 32; i++) clientKey[i] = proof[i]! ^ clientSignature[i]!;
      if (timingSafeEqual(sha256(clientKey), v.storedKey) && matched < 0) matched = n;
    });
    const ok = matched >= 0 && !this.opts.doomed;
    this.state = { kind: 'Done', ok };
    const serverSignature = hmac(candidates[Math.max(matched, 0)]!.serverKey, authMessage);
    return { ok, serverFinal: `v=${serverSignature.toString('base64')}`, matched };
  }
}
