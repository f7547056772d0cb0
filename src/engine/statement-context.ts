import type { AdminCommand } from '../../grammar/index.js';
import type { AuditLog } from '../audit/audit-log.js';
import type { CatalogReader } from '../catalog/catalog.js';
import type { ApiKey, IssuedToken, User, RlsPolicy } from '../catalog/model.js';
import type { TokenGrant } from './issuer.js';
import type { CatalogTransaction } from '../catalog/transaction.js';
import type { ProtocolState } from '../wire/handler.js';
import type { NoticeFields } from '../wire/messages.js';
import type { AuthValues } from './auth-vars.js';
import type { ImportPlan } from './imports.js';
import type { JwtPrincipal } from './jwt-principal.js';
import type { Lockouts } from './lockouts.js';
import type { Settings } from './settings.js';
import type { PoolStats } from '../dataplane/pool.js';

/** The AST node of one statement kind. */
export type Cmd<T extends AdminCommand['type']> = Extract<AdminCommand, { type: T }>;

/**
 * What a statement may see and change of its session: its settings, who logged in and
 * where, and the two pieces of session state statements set (whom it acts as, where names
 * resolve). Not the session itself: a statement cannot begin or end transactions, open
 * connections, or reach the wire.
 */
export interface SessionPort {
  /** SET / RESET / SHOW, the time zone timestamps are written in, scram_iterations. */
  readonly settings: Settings;
  /** The user who logged in (not the one SET SESSION AUTHORIZATION chose). */
  readonly sessionUserId: number;
  readonly sessionUserName: string;
  /** The database the session is connected to. */
  readonly database: string;
  /** SET TENANT: the tenant a superuser's names resolve in (null: its own). */
  readonly nameTenantId: number | null;
  /** The session's $auth.* variables (SPEC §5) as of `view` and `now`. */
  authValues(view: CatalogReader, now: number): AuthValues;
  /** SET SESSION AUTHORIZATION: act as `user` (null: the login's own user again). Transactional. */
  actAs(user: User | null): void;
  /** SET SESSION AUTHORIZATION JWT: act as the principal a token with these claims yields. */
  actAsToken(p: JwtPrincipal): void;
  /** SET SESSION AUTHORIZATION API KEY: act as that key (its principal now, with its effective role). */
  actAsKey(key: ApiKey, principal: User): void;
  /** SET TENANT / RESET TENANT. Transactional. */
  resolveNamesIn(tenantId: number | null): void;
}

/** The engine's services a statement uses; not the engine (no commits, no sessions, no logins). */
export interface EnginePort {
  /** Random bytes: key ids, secrets and salts. */
  random(bytes: number): Buffer;
  /** When an API key (or its previous secret) was last used, including uses not yet written. */
  lastUsed(k: ApiKey, previous?: boolean): number | null;
  readonly lockouts: Lockouts;
  readonly audit: AuditLog;
  /** The built-in token issuer's URL (its tokens' `iss`) and access token lifetime. */
  readonly issuerUrl: string;
  readonly accessTokenSeconds: number;
  /** The longest CREATE TOKEN may make a token live. */
  readonly maxMintedTokenSeconds: number;
  /** Signs a token for `grant` and records it in `tx` (CREATE TOKEN). */
  mintToken(tx: CatalogTransaction, grant: TokenGrant, seconds: number, now: number, createdBy: string): Promise<{ token: string; row: IssuedToken }>;
  /**
   * The SQL a data plane holds for a policy (EXPLAIN RLS): `undefined` without a data plane,
   * null while the policy waits for its table.
   */
  installedPolicy(policy: RlsPolicy): Promise<string | null | undefined>;
  /** The upstream data plane's pools (SHOW POOLS); empty without transaction pooling. */
  poolStats(): PoolStats[];
}

/** What a statement sees while it runs. */
export interface StatementContext {
  engine: EnginePort;
  session: SessionPort;
  /** The catalog as this statement sees it (its transaction's view, or the committed one). */
  view: CatalogReader;
  /** Present for statements that write. */
  tx: CatalogTransaction | null;
  /** The session's user, as of this statement. */
  actor: User;
  params: (string | null)[];
  /** The statement's one reading of the clock: every timestamp it writes or compares. */
  now: number;
  notice: (n: NoticeFields) => void;
  inBlock: boolean;
  /** One of several statements of one Query message (in their implicit transaction block). */
  multiStatement: boolean;
  /** The connection's prepared statements (DEALLOCATE, DISCARD ALL); null without a connection. */
  protocol: ProtocolState | null;
  /** The statement's IMPORT clause (restoring a dump), if any. */
  imports: ImportPlan | null;
}

/** The transaction of a writing statement (the session opens one for every write). */
export function writeTx(ctx: StatementContext): CatalogTransaction {
  if (!ctx.tx) throw new Error('a writing statement runs inside a transaction');
  return ctx.tx;
}
