import { keywordOf } from '../../grammar/tokens.js';
import type { CatalogReader } from '../catalog/catalog.js';
import { DEFAULT_DATABASE, DEFAULT_TENANT_ID, type ApiKey, type Grant, type User } from '../catalog/model.js';
import type { Execution } from '../wire/handler.js';
import type { StatementContext } from './statement-context.js';
import { authorize } from './privileges.js';
import { col, rowsResult } from './results.js';
import { predicateSource } from './rls.js';
import { formatTimestamp } from './values.js';
import { PRODUCT_VERSION } from './settings.js';

/**
 * DUMP CATALOG: the whole catalog as a script that `portcullis apply` restores exactly, one
 * statement per row. Each object is written as the statement a DBA would type, plus an
 * IMPORT clause carrying what no ordinary statement sets (ids, creation times, who created
 * it, an API key's hashes), so dump → apply into an empty catalog → dump is byte-identical.
 * The default tenant, its database and the bootstrap superuser exist in every catalog:
 * the first two are not written, the third is written as ALTER USER.
 */
export const DUMP_COLUMNS = [col('statement')];

const BOOTSTRAP_USER_ID = 3;

export function dumpCatalog(ctx: StatementContext): Execution {
  authorize(ctx.actor, { kind: 'dumpCatalog' });
  return rowsResult(DUMP_COLUMNS, (function* () {
    for (const s of dumpStatements(ctx.view, (k, previous) => ctx.engine.lastUsed(k, previous))) yield [s];
  })(), 'DUMP CATALOG', false);
}

/**
 * `lastUsed`: an API key's last use as the engine knows it (uses not yet written to the
 * catalog, or kept beside it by instances sharing a catalog), else the row's.
 */
export function* dumpStatements(view: CatalogReader, lastUsed: (k: ApiKey, previous: boolean) => number | null = (k, p) => (p ? (k.previous?.lastUsedAt ?? null) : k.lastUsedAt)): Generator<string> {
  yield `-- portcullis ${PRODUCT_VERSION} catalog dump; restore with: portcullis apply FILE`;
  const tenantOf = (id: number) => (id === DEFAULT_TENANT_ID ? [] : [`tenant = ${id}`]);
  const dbName = (id: number) => ident(view.databaseById(id)?.name ?? '?');
  const byId = <T extends { id: number }>(rows: Iterable<T>) => [...rows].sort((a, b) => a.id - b.id);

  for (const t of byId(view.tenants())) {
    if (t.id === DEFAULT_TENANT_ID) continue;
    const db = [...view.databases()].find((d) => d.tenantId === t.id && d.name === DEFAULT_DATABASE);
    yield `CREATE TENANT ${ident(t.name)} ID ${t.id}${imports([`created_at = ${ts(t.createdAt)}`, ...(db ? [`default_database_id = ${db.id}`] : [])])};`;
  }
  for (const d of byId(view.databases())) {
    if (d.name === DEFAULT_DATABASE) continue;
    yield `CREATE DATABASE ${ident(d.name)}${imports([...tenantOf(d.tenantId), `id = ${d.id}`, `created_at = ${ts(d.createdAt)}`])};`;
  }
  for (const u of byId(view.users())) {
    const meta = [`created_at = ${ts(u.createdAt)}`, `updated_at = ${ts(u.updatedAt)}`, `created_by = ${lit(u.createdBy)}`];
    if (u.id === BOOTSTRAP_USER_ID) yield `ALTER USER ${ident(u.name)} WITH ${userOptions(u)}${imports(meta)};`;
    else yield `CREATE USER ${ident(u.name)} WITH ${userOptions(u)}${imports([...tenantOf(u.tenantId), `id = ${u.id}`, ...meta])};`;
  }
  for (const r of byId(view.roles())) {
    yield `CREATE ROLE ${ident(r.name)}${imports([...tenantOf(r.tenantId), `id = ${r.id}`, `created_at = ${ts(r.createdAt)}`, `created_by = ${lit(r.createdBy)}`])};`;
  }
  for (const sa of byId(view.serviceAccounts())) {
    const dbs = sa.databaseIds.map(dbName).join(', ');
    yield `CREATE SERVICE ACCOUNT ${ident(sa.name)} FOR DATABASES (${dbs}) ROLE ${sa.role}${imports([...tenantOf(sa.tenantId), `id = ${sa.id}`, `created_at = ${ts(sa.createdAt)}`, `created_by = ${lit(sa.createdBy)}`])};`;
  }
  for (const g of byId(view.grants())) yield grantStatement(g, view, tenantOf(g.tenantId));
  for (const k of byId(view.apiKeys())) {
    const owner = k.ownerKind === 'user' ? view.userById(k.ownerId)?.name : view.serviceAccountById(k.ownerId)?.name;
    let s = `CREATE API KEY ${ident(k.name)} FOR ${ident(owner ?? '?')}`;
    if (k.role) s += ` ROLE ${k.role}`;
    if (k.databaseIds) s += ` WITH DATABASES (${k.databaseIds.map(dbName).join(', ')})`;
    if (k.scopes.length > 0) s += ` SCOPES (${k.scopes.map(lit).join(', ')})`;
    if (k.expiresAt !== null) s += ` EXPIRES AT ${ts(k.expiresAt)}`;
    const meta = [...tenantOf(k.tenantId), `id = ${k.id}`, `key_id = ${lit(k.keyId)}`, `hash = ${lit(k.secret.hash)}`, `verifier = ${lit(k.secret.verifier)}`];
    if (k.previous) {
      meta.push(`previous_hash = ${lit(k.previous.hash)}`, `previous_verifier = ${lit(k.previous.verifier)}`, `previous_valid_until = ${ts(k.previous.validUntil)}`, `previous_last_used_at = ${ts(lastUsed(k, true))}`);
    }
    meta.push(`created_at = ${ts(k.createdAt)}`, `created_by = ${lit(k.createdBy)}`, `rotated_at = ${ts(k.rotatedAt)}`, `last_used_at = ${ts(lastUsed(k, false))}`);
    yield `${s}${imports(meta)};`;
  }
  for (const p of byId(view.oidcProviders())) {
    const opts = [
      `issuer = ${lit(p.issuer)}`,
      ...(p.jwksUrl !== null ? [`jwks_url = ${lit(p.jwksUrl)}`] : []),
      ...(p.jwks !== null ? [`jwks = ${lit(p.jwks)}`] : []),
      `audience = ${lit(p.audience)}`,
      `algorithms = ${lit(p.algorithms.join(','))}`,
      `id_claim = ${lit(p.idClaim)}`,
      `role_claim = ${lit(p.roleClaim)}`,
      `org_claim = ${lit(p.orgClaim)}`,
      ...(p.tenantClaim !== null ? [`tenant_claim = ${lit(p.tenantClaim)}`] : []),
      `scopes_claim = ${lit(p.scopesClaim)}`,
      `default_role = ${lit(p.defaultRole)}`,
      `max_role = ${lit(p.maxRole)}`,
      `enabled = ${lit(String(p.enabled))}`,
    ];
    yield `CREATE OIDC PROVIDER ${ident(p.name)} WITH (${opts.join(', ')})${imports([...tenantOf(p.tenantId), `id = ${p.id}`, `created_at = ${ts(p.createdAt)}`, `created_by = ${lit(p.createdBy)}`])};`;
  }
  for (const p of byId(view.rlsPolicies())) {
    const on = `${dbName(p.databaseId)}.${ident(p.collection)}`;
    const kind = p.kind.toUpperCase();
    yield `CREATE RLS POLICY ${ident(p.name)} ON ${on} FOR ${kind} USING (${predicateSource(p.predicate)}) ${p.restrictive ? 'RESTRICTIVE' : 'PERMISSIVE'}${imports([...tenantOf(p.tenantId), `id = ${p.id}`, `created_at = ${ts(p.createdAt)}`, `created_by = ${lit(p.createdBy)}`])};`;
  }
  yield* issuerStatements(view, tenantOf);
}

/**
 * The token issuer's state, so that the tokens a moved catalog issued keep working
 * (issuer-restore.ts): the rows of the tokens it issued (never a token), then its signing
 * keys' public halves — never the private half, which does not leave the catalog that made
 * it. A key is written as retiring: the current one when the last token issued so far
 * expires (the moved catalog signs with a key of its own). Rows of an owner dropped since
 * are left out (nothing can use them).
 */
function* issuerStatements(view: CatalogReader, tenantOf: (id: number) => string[]): Generator<string> {
  const byId = <T extends { id: number }>(rows: Iterable<T>) => [...rows].sort((a, b) => a.id - b.id);
  const ownerOf = (kind: 'user' | 'service_account', id: number) => (kind === 'user' ? view.userById(id) : view.serviceAccountById(id));
  const json = (v: unknown) => (v === null ? 'NULL' : lit(JSON.stringify(v)));
  for (const t of byId(view.issuedTokens())) {
    const o = ownerOf(t.ownerKind, t.ownerId);
    if (!o) continue;
    const meta = [...tenantOf(o.tenantId), `id = ${t.id}`, `jti = ${lit(t.jti)}`, `minted = ${lit(String(t.minted))}`, `api_key_id = ${t.apiKeyId ?? 'NULL'}`];
    meta.push(`database_ids = ${json(t.databaseIds)}`, `scopes = ${json(t.scopes)}`, `issued_at = ${ts(t.issuedAt)}`, `revoked_at = ${ts(t.revokedAt)}`, `created_by = ${lit(t.createdBy)}`);
    yield `CREATE TOKEN FOR ${ident(o.name)}${t.role ? ` ROLE ${t.role}` : ''} EXPIRES AT ${ts(t.expiresAt)}${imports(meta)};`;
  }
  const owners = [...[...view.users()].map((o) => ({ o, kind: 'user' as const })), ...[...view.serviceAccounts()].map((o) => ({ o, kind: 'service_account' as const }))];
  const refresh = byId(owners.flatMap(({ o, kind }) => view.refreshTokensOf(kind, o.id).map((t) => ({ ...t, o }))));
  for (const t of refresh) {
    const o = t.o;
    const meta = [...tenantOf(o.tenantId), `id = ${t.id}`, `refresh_hash = ${lit(t.hash)}`, `family = ${lit(t.family)}`, `api_key_id = ${t.apiKeyId ?? 'NULL'}`, `database_id = ${t.databaseId ?? 'NULL'}`];
    meta.push(`credential_stamp = ${lit(t.credentialStamp)}`, `used_at = ${ts(t.usedAt)}`, `revoked_at = ${ts(t.revokedAt)}`, `created_at = ${ts(t.createdAt)}`);
    yield `CREATE TOKEN FOR ${ident(o.name)} EXPIRES AT ${ts(t.expiresAt)}${imports(meta)};`;
  }
  let lastExpiry: number | null = null;
  for (const t of view.issuedTokens()) if (t.revokedAt === null && (lastExpiry === null || t.expiresAt > lastExpiry)) lastExpiry = t.expiresAt;
  for (const k of byId(view.signingKeys())) {
    const retires = k.retiresAt ?? Math.max(lastExpiry ?? k.createdAt, k.createdAt);
    yield `ALTER TOKEN ISSUER ROTATE KEY${imports([`id = ${k.id}`, `kid = ${lit(k.kid)}`, `public_jwk = ${lit(k.publicJwk)}`, `created_at = ${ts(k.createdAt)}`, `retires_at = ${ts(retires)}`])};`;
  }
}

function userOptions(u: User): string {
  const o: string[] = [];
  o.push(u.verifier === null ? 'PASSWORD NULL' : `PASSWORD ${lit(u.verifier)}`);
  o.push(`ROLE ${u.role}`, u.login ? 'LOGIN' : 'NOLOGIN');
  if (u.validUntil !== null) o.push(`VALID UNTIL ${ts(u.validUntil)}`);
  if (u.connectionLimit !== -1) o.push(`CONNECTION LIMIT ${u.connectionLimit}`);
  if (u.certificateSubject !== null) o.push(`CERTIFICATE SUBJECT ${lit(u.certificateSubject)}`);
  return o.join(' ');
}

function grantStatement(g: Grant, view: CatalogReader, tenant: string[]): string {
  const grantee =
    g.granteeKind === 'user'
      ? view.userById(g.granteeId)?.name
      : g.granteeKind === 'role'
        ? view.roleById(g.granteeId)?.name
        : view.serviceAccountById(g.granteeId)?.name;
  let what: string;
  if (g.scope !== undefined) what = `SCOPE ${lit(g.scope)}`;
  else if (g.builtinRole) what = g.builtinRole;
  else if (g.roleId !== null) what = `"${(view.roleById(g.roleId)?.name ?? '?').replaceAll('"', '""')}"`; // quoted: always a role
  else {
    what = g.privilege!.toUpperCase();
    const db = g.databaseId !== null ? ident(view.databaseById(g.databaseId)?.name ?? '?') : null;
    if (db !== null && g.collection !== null) what += ` ON ${db}.${ident(g.collection)}`;
    else if (db !== null) what += ` ON DATABASE ${db}`;
  }
  const until = g.expiresAt !== null ? ` VALID UNTIL ${ts(g.expiresAt)}` : '';
  return `GRANT ${what} TO ${ident(grantee ?? '?')}${until}${imports([...tenant, `id = ${g.id}`, `created_at = ${ts(g.createdAt)}`, `granted_by = ${lit(g.grantedBy)}`])};`;
}

const imports = (items: string[]) => ` IMPORT (${items.join(', ')})`;

/** A name as an identifier: bare when it reads back the same, else double-quoted. */
function ident(name: string): string {
  return /^[a-z_][a-z0-9_]*$/.test(name) && !keywordOf(name) ? name : `"${name.replaceAll('"', '""')}"`;
}

const lit = (s: string | null) => (s === null ? 'NULL' : `'${s.replaceAll("'", "''")}'`);
const ts = (ms: number | null) => (ms === null ? 'NULL' : lit(formatTimestamp(ms, 'UTC')));
