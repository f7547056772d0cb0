import { createHmac } from 'node:crypto';
import { ScramServer } from '../auth/scram.js';
import { parseVerifier, type ScramVerifier } from '../auth/verifier.js';
import { PgError } from '../errors/pg-error.js';
import type { User } from '../catalog/model.js';
import type { AuthExchange, PeerInfo, QuerySession, SaslStep, StartupInfo } from '../wire/handler.js';
import type { Engine } from './engine.js';
import { EngineSession } from './session.js';

const MECHANISM = 'SCRAM-SHA-256';

/** "password authentication failed": the one answer to every credential failure (SPEC §6). */
export const loginFailed = (user: string) =>
  new PgError('invalid_password', `password authentication failed for user "${user}"`, { severity: 'FATAL' });

/**
 * A mock verifier for a user that cannot log in by password (unknown, or no password):
 * the salt is derived from the server secret and the name, so the same name always gets
 * the same salt, as a real user would, and a client cannot tell the two apart.
 */
function mockVerifier(engine: Engine, name: string): ScramVerifier {
  const mac = createHmac('sha256', engine.catalog.serverSecret).update(`mock-salt:${name}`).digest();
  return { iterations: engine.scramIterations, salt: mac.subarray(0, 16), storedKey: mac, serverKey: mac };
}

/** One password login over SCRAM-SHA-256, from the startup message to an open session. */
export class PasswordLogin implements AuthExchange {
  readonly mechanisms = [MECHANISM];
  private readonly scram: ScramServer;
  private readonly user: User | undefined;
  private authenticated = false;

  constructor(
    private readonly engine: Engine,
    private readonly startup: StartupInfo,
    private readonly peer: PeerInfo,
  ) {
    const user = engine.catalog.userByName(startup.user);
    const real = user?.verifier ? parseVerifier(user.verifier) : null;
    this.user = real ? user : undefined;
    this.scram = new ScramServer(real ?? mockVerifier(engine, startup.user), { doomed: !real });
  }

  async step(mechanism: string | null, data: Buffer): Promise<SaslStep> {
    if (mechanism !== null) return { done: false, data: Buffer.from(this.scram.clientFirst(data.toString('utf8'))) };
    const { ok, serverFinal } = this.scram.clientFinal(data.toString('utf8'));
    // An expired password fails exactly like a wrong one (PostgreSQL's VALID UNTIL).
    const expired = this.user?.validUntil != null && this.user.validUntil <= this.engine.clock();
    if (!ok || !this.user || expired) throw loginFailed(this.startup.user);
    this.authenticated = true;
    return { done: true, data: Buffer.from(serverFinal) };
  }

  async open(): Promise<QuerySession> {
    if (!this.authenticated || !this.user) throw loginFailed(this.startup.user);
    // Re-read: the user may have been dropped or changed during the exchange.
    const user = this.engine.catalog.userById(this.user.id);
    if (!user || user.verifier !== this.user.verifier) throw loginFailed(this.startup.user);
    if (!user.login) {
      throw new PgError('invalid_authorization_specification', `user "${user.name}" is not permitted to log in`, {
        severity: 'FATAL',
        hint: 'The user has NOLOGIN; ALTER USER ... LOGIN allows it.',
      });
    }
    return EngineSession.open(this.engine, user, this.startup, this.peer, 'password');
  }
}
