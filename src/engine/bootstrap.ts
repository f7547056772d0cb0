import { randomBytes } from 'node:crypto';
import type { CatalogReader } from '../catalog/catalog.js';
import { DEFAULT_DATABASE, DEFAULT_TENANT_ID, type Mutation, type User } from '../catalog/model.js';
import type { CatalogTransaction } from '../catalog/transaction.js';
import type { AuditEntry } from '../audit/audit-record.js';
import { formatVerifier, makeVerifier, SALT_LEN } from '../auth/verifier.js';

/** Ids 1 and 2 are the default tenant and its database; 3 is the first superuser. */
const BOOTSTRAP_USER_ID = 3;

/** The superuser offline tools act as: the bootstrap one, or else any superuser. */
export function bootstrapUserName(catalog: CatalogReader, configured: string | undefined): string {
  const u = catalog.userById(BOOTSTRAP_USER_ID) ?? [...catalog.users()].find((x) => x.role === 'superuser');
  return u?.name ?? (configured || 'admin');
}

export interface BootstrapOptions {
  user?: string;
  /** When absent, a random password is generated and announced once. */
  password?: string;
  /** Where the one-time password goes (stderr by default). */
  announce?: (line: string) => void;
  scramIterations: number;
  random: (bytes: number) => Buffer;
  now: number;
}

/** The first commit of an empty catalog: tenant 1, its default database and the superuser. */
export async function bootstrapCommit(o: BootstrapOptions): Promise<Mutation[]> {
  const name = o.user || 'admin';
  let password = o.password;
  if (!password) {
    password = randomBytes(18).toString('base64url');
    // Printed once, on stderr, at the first start; never again, never logged.
    (o.announce ?? ((l) => process.stderr.write(`${l}\n`)))(
      `portcullis: created superuser "${name}" with password: ${password}\n` +
        'portcullis: store it now: it will not be shown again (set PORTCULLIS_BOOTSTRAP_PASSWORD to choose it).',
    );
  }
  const verifier = formatVerifier(await makeVerifier(password, o.scramIterations, o.random(SALT_LEN)));
  const now = o.now;
  const admin: User = {
    id: BOOTSTRAP_USER_ID,
    name,
    tenantId: DEFAULT_TENANT_ID,
    role: 'superuser',
    verifier,
    login: true,
    validUntil: null,
    connectionLimit: -1,
    certificateSubject: null,
    createdAt: now,
    updatedAt: now,
    createdBy: null,
  };
  return [
    { op: 'init', serverSecret: o.random(32).toString('hex'), at: now },
    { op: 'insert', table: 'tenants', row: { id: DEFAULT_TENANT_ID, name: 'default', createdAt: now } },
    { op: 'insert', table: 'databases', row: { id: 2, tenantId: DEFAULT_TENANT_ID, name: DEFAULT_DATABASE, createdAt: now } },
    { op: 'insert', table: 'users', row: admin },
  ];
}

/**
 * PORTCULLIS_BOOTSTRAP_DISABLE_AFTER_SETUP: once another user can log in as a superuser —
 * created or altered to superuser with LOGIN, or granted the superuser role — the same
 * commit sets the bootstrap superuser NOLOGIN, with its own audit record (actor
 * "portcullis"), so the well-known first account stops being a way in the moment it is no
 * longer the only way to administer. Only this transaction's own changes are looked at.
 */
export function disableBootstrapOnceReplaced(tx: CatalogTransaction, audit: AuditEntry[], now: number): void {
  const boot = tx.userById(BOOTSTRAP_USER_ID);
  if (!boot || !boot.login || boot.role !== 'superuser') return;
  const another = tx.mutations.some((m) => {
    if (m.op !== 'insert' && m.op !== 'update') return false;
    if (m.table === 'users') return m.row.id !== BOOTSTRAP_USER_ID && m.row.role === 'superuser' && m.row.login && tx.userById(m.row.id)?.role === 'superuser';
    if (m.table === 'grants') return m.row.builtinRole === 'superuser' && m.row.granteeKind === 'user' && m.row.granteeId !== BOOTSTRAP_USER_ID && tx.userById(m.row.granteeId)?.login === true;
    return false;
  });
  if (!another) return;
  tx.update('users', { ...boot, login: false, updatedAt: now });
  audit.push({
    kind: 'change',
    at: now,
    tenant: boot.tenantId,
    actor: 'portcullis',
    address: '',
    statement: 'AlterUser',
    object: boot.name,
    text: `ALTER USER ${JSON.stringify(boot.name)} NOLOGIN; -- PORTCULLIS_BOOTSTRAP_DISABLE_AFTER_SETUP: another superuser exists`,
  });
}
