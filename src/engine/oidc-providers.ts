import { isLoopbackHost } from '../net/loopback.js';
import type { ProviderOption } from '../../grammar/index.js';
import { isBuiltinRole, roleRank, type BuiltinRole, type OidcProvider } from '../catalog/model.js';
import { ISSUER_PROVIDER } from './issuer.js';
import { PgError } from '../errors/pg-error.js';
import { providersClash } from '../catalog/transaction.js';
import type { Execution } from '../wire/handler.js';
import { checkNewName, checkObjectName } from './names.js';
import { type StatementContext, writeTx, type Cmd } from './statement-context.js';
import { authorize, canSeeTenant } from './privileges.js';
import { bool, col, commandDone, rowsResult } from './results.js';
import { resolveTenant } from './tenants.js';
import { formatTextArray, formatTimestamp, valueText } from './values.js';

/** Asymmetric algorithms only: never `none`, never HS* (an HMAC "signed" with a public key). */
export const ALLOWED_ALGORITHMS = ['ES256', 'ES384', 'ES512', 'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'EdDSA'];
const DEFAULT_ALGORITHMS = ['ES256', 'ES384', 'RS256'];

const KEYS = [
  'issuer',
  'jwks_url',
  'jwks_uri',
  'jwks',
  'audience',
  'algorithms',
  'id_claim',
  'role_claim',
  'org_claim',
  'tenant_claim',
  'scopes_claim',
  'default_role',
  'max_role',
  'tenant',
  'enabled',
] as const;

const bad = (message: string, position?: number, hint?: string) =>
  new PgError('invalid_parameter_value', message, { ...(position === undefined ? {} : { position }), ...(hint === undefined ? {} : { hint }) });

/** A JWKS URL: https only (http for loopback), no credentials or fragment in the URL. */
export function checkProviderUrl(key: string, text: string, position: number): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw bad(`${key} is not a valid URL: "${text}"`, position);
  }
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && isLoopbackHost(url.hostname))) {
    throw bad(`${key} must use https`, position, 'Plain http is allowed for loopback hosts (localhost, 127.0.0.1, ::1) only.');
  }
  if (url.username || url.password) throw bad(`${key} must not carry credentials`, position);
  if (url.hash) throw bad(`${key} must not have a fragment`, position);
  return text;
}

function role(key: string, text: string, position: number): BuiltinRole {
  if (!isBuiltinRole(text)) throw bad(`${key} must be a built-in role, got "${text}"`, position, 'readonly, readwrite, admin, tenant_admin or superuser.');
  return text;
}

/** Applies WITH / SET options to a provider, validating each (22023 naming the key). */
function applyOptions(p: OidcProvider, options: ProviderOption[], ctx: StatementContext): OidcProvider {
  const next = { ...p };
  const seen = new Set<string>();
  for (const { key, value } of options) {
    const k = key.value.toLowerCase();
    if (!(KEYS as readonly string[]).includes(k)) {
      throw bad(`unknown OIDC provider option "${key.value}"`, key.position, `Known options: ${KEYS.join(', ')}.`);
    }
    const canonical = k === 'jwks_uri' ? 'jwks_url' : k;
    if (seen.has(canonical)) throw new PgError('syntax_error', 'conflicting or redundant options', { position: key.position });
    seen.add(canonical);
    const text = valueText(value, ctx.params);
    const pos = value.position;
    switch (canonical) {
      case 'issuer':
        if (text === null) throw bad('issuer must not be NULL', pos);
        next.issuer = checkProviderUrl('issuer', text, pos);
        break;
      case 'jwks_url':
        next.jwksUrl = text === null ? null : checkProviderUrl('jwks_url', text, pos);
        break;
      case 'jwks': {
        if (text === null) {
          next.jwks = null;
          break;
        }
        let parsed: unknown;
        try {
          parsed = JSON.parse(text);
        } catch {
          throw bad('jwks is not valid JSON', pos);
        }
        const keys = (parsed as { keys?: unknown }).keys;
        if (!Array.isArray(keys) || keys.length === 0) throw bad('jwks must be a JSON Web Key Set: {"keys": [...]}', pos);
        if (keys.some((jwk) => typeof jwk !== 'object' || jwk === null || (jwk as { d?: unknown }).d !== undefined)) {
          throw bad('jwks must hold public keys only', pos, 'A key with a private part ("d") was given.');
        }
        next.jwks = JSON.stringify(parsed);
        break;
      }
      case 'audience':
        if (text === null || text === '') throw bad('audience must not be empty', pos, "Use audience = '*' to accept any audience explicitly.");
        next.audience = text;
        break;
      case 'algorithms': {
        const algs = (text ?? '').split(/[\s,]+/).filter(Boolean);
        if (algs.length === 0) throw bad('algorithms must name at least one algorithm', pos);
        for (const a of algs) {
          const known = ALLOWED_ALGORITHMS.find((x) => x.toLowerCase() === a.toLowerCase());
          if (!known) throw bad(`algorithm "${a}" is not allowed`, pos, `Allowed: ${ALLOWED_ALGORITHMS.join(', ')} (never none, never HS*).`);
        }
        next.algorithms = algs.map((a) => ALLOWED_ALGORITHMS.find((x) => x.toLowerCase() === a.toLowerCase())!);
        break;
      }
      case 'id_claim':
      case 'role_claim':
      case 'org_claim':
      case 'scopes_claim': {
        if (!text || !/^[A-Za-z_][A-Za-z0-9_.:/-]*$/.test(text)) throw bad(`${canonical} must be a claim name, got "${text ?? ''}"`, pos);
        const field = { id_claim: 'idClaim', role_claim: 'roleClaim', org_claim: 'orgClaim', scopes_claim: 'scopesClaim' }[canonical] as
          | 'idClaim'
          | 'roleClaim'
          | 'orgClaim'
          | 'scopesClaim';
        next[field] = text;
        break;
      }
      case 'tenant_claim':
        if (text !== null && !/^[A-Za-z_][A-Za-z0-9_.:/-]*$/.test(text)) throw bad(`tenant_claim must be a claim name, got "${text}"`, pos);
        next.tenantClaim = text;
        break;
      case 'default_role':
        next.defaultRole = role('default_role', text ?? '', pos);
        break;
      case 'max_role':
        next.maxRole = role('max_role', text ?? '', pos);
        break;
      case 'tenant': {
        if (text === null) throw bad('tenant must not be NULL', pos);
        const t = /^\d+$/.test(text) ? { id: text, position: pos } : { value: text, position: pos };
        next.tenantId = resolveTenant(t, ctx).id;
        break;
      }
      case 'enabled': {
        const t = (text ?? '').toLowerCase();
        if (!['true', 'false', 'on', 'off', 't', 'f', '1', '0'].includes(t)) throw bad(`enabled must be a boolean, got "${text}"`, pos);
        next.enabled = ['true', 'on', 't', '1'].includes(t);
        break;
      }
    }
  }
  // Whole-provider rules, checked after every option is applied.
  if (!next.issuer) throw bad('an OIDC provider needs an issuer', undefined, "WITH (issuer = 'https://...', ...)");
  if (!next.jwksUrl && !next.jwks) throw bad('an OIDC provider needs jwks_url or an inline jwks');
  if (!next.audience) {
    throw bad('an OIDC provider needs an audience', undefined, "A token minted for another service must never get in; audience = '*' opts out explicitly.");
  }
  // A token never yields superuser.
  if (next.maxRole === 'superuser') throw bad('max_role must be below superuser: a token never yields superuser');
  if (roleRank(next.defaultRole) > roleRank(next.maxRole)) {
    throw bad(`default_role ${next.defaultRole} is above max_role ${next.maxRole}`);
  }
  return next;
}

/**
 * A token is routed to the provider whose issuer and audience both match (jwt.ts), so two
 * providers a token could both match would leave its tenant and role to name order: the
 * same issuer with the same audience, or with audience '*' on either side ('*' matches
 * every audience), is refused naming the other provider. Disabled providers count too, so
 * enabling one never makes routing ambiguous. The error points at the audience (or
 * issuer) the statement gave.
 */
function checkRouting(next: OidcProvider, options: ProviderOption[], ctx: StatementContext): void {
  for (const other of writeTx(ctx).oidcProviders()) {
    if (other.id === next.id || !providersClash(other, next)) continue;
    const given = (k: string) => options.find((o) => o.key.value.toLowerCase() === k)?.value.position;
    const position = given('audience') ?? given('issuer');
    const aud = (a: string) => (a === '*' ? "audience '*'" : `audience "${a}"`);
    const example = other.audience !== '*' ? other.audience : next.audience !== '*' ? next.audience : null;
    const star = other.audience === '*' || next.audience === '*' ? " (audience '*' matches every audience)" : '';
    throw new PgError('duplicate_object', `OIDC provider "${other.name}" already has issuer "${other.issuer}" and ${aud(other.audience)}`, {
      ...(position === undefined ? {} : { position }),
      detail: `A token of that issuer ${example === null ? 'for any audience' : `for audience "${example}"`} would match both "${other.name}" and "${next.name}"${star}.`,
      hint: "Providers with the same issuer need distinct audiences, and neither of them '*'.",
    });
  }
}

export async function createOidcProvider(cmd: Cmd<'CreateOidcProvider'>, ctx: StatementContext): Promise<Execution> {
  const tx = writeTx(ctx);
  authorize(ctx.actor, { kind: 'manageOidcProvider', statement: 'CREATE OIDC PROVIDER' });
  checkObjectName('OIDC provider', cmd.name);
  // jwt:portcullis names the built-in issuer (issuer.ts): a provider of that name could never be reached.
  if (cmd.name.value === ISSUER_PROVIDER) {
    throw new PgError('duplicate_object', `OIDC provider "${ISSUER_PROVIDER}" already exists`, { position: cmd.name.position, detail: 'It is the built-in token issuer.' });
  }
  if (tx.oidcProviderByName(cmd.name.value)) {
    if (cmd.ifNotExists) {
      ctx.notice({ severity: 'NOTICE', code: '42710', message: `OIDC provider "${cmd.name.value}" already exists, skipping` });
      return commandDone('CREATE OIDC PROVIDER');
    }
    throw new PgError('duplicate_object', `OIDC provider "${cmd.name.value}" already exists`, { position: cmd.name.position });
  }
  checkNewName(cmd.name, { kind: 'OIDC provider' }, ctx);
  const blank: OidcProvider = {
    id: tx.allocateId(),
    name: cmd.name.value,
    tenantId: cmd.tenant ? resolveTenant(cmd.tenant, ctx).id : ctx.actor.tenantId,
    issuer: '',
    jwksUrl: null,
    jwks: null,
    audience: '',
    algorithms: DEFAULT_ALGORITHMS,
    idClaim: 'sub',
    roleClaim: 'role',
    orgClaim: 'org_id',
    tenantClaim: null,
    scopesClaim: 'scope',
    defaultRole: 'readonly',
    maxRole: 'readwrite',
    enabled: true,
    createdAt: ctx.now,
    createdBy: ctx.actor.name,
  };
  const next = applyOptions(blank, cmd.options, ctx);
  checkRouting(next, cmd.options, ctx);
  tx.insert('oidcProviders', next);
  return commandDone('CREATE OIDC PROVIDER');
}

export async function alterOidcProvider(cmd: Cmd<'AlterOidcProvider'>, ctx: StatementContext): Promise<Execution> {
  const tx = writeTx(ctx);
  authorize(ctx.actor, { kind: 'manageOidcProvider', statement: 'ALTER OIDC PROVIDER' });
  const p = tx.oidcProviderByName(cmd.name.value);
  if (!p) throw new PgError('undefined_object', `OIDC provider "${cmd.name.value}" does not exist`, { position: cmd.name.position });
  const next = applyOptions(p, cmd.options, ctx);
  // Only a change of issuer or audience is checked: a clash from before the rule does not
  // block the ALTER that resolves it (another audience, enabled = false, max_role, ...).
  if (next.issuer !== p.issuer || next.audience !== p.audience) checkRouting(next, cmd.options, ctx);
  tx.update('oidcProviders', next);
  return commandDone('ALTER OIDC PROVIDER');
}

export async function dropOidcProvider(cmd: Cmd<'DropOidcProvider'>, ctx: StatementContext): Promise<Execution> {
  const tx = writeTx(ctx);
  authorize(ctx.actor, { kind: 'manageOidcProvider', statement: 'DROP OIDC PROVIDER' });
  const p = tx.oidcProviderByName(cmd.name.value);
  if (!p) {
    if (cmd.ifExists) {
      ctx.notice({ severity: 'NOTICE', code: '00000', message: `OIDC provider "${cmd.name.value}" does not exist, skipping` });
      return commandDone('DROP OIDC PROVIDER');
    }
    throw new PgError('undefined_object', `OIDC provider "${cmd.name.value}" does not exist`, { position: cmd.name.position });
  }
  tx.delete('oidcProviders', p.id);
  return commandDone('DROP OIDC PROVIDER');
}

export const OIDC_COLUMNS = [
  col('name'),
  col('tenant'),
  col('issuer'),
  col('jwks_url'),
  col('inline_jwks', 'bool'),
  col('audience'),
  col('algorithms', 'textArray'),
  col('id_claim'),
  col('role_claim'),
  col('org_claim'),
  col('tenant_claim'),
  col('scopes_claim'),
  col('default_role'),
  col('max_role'),
  col('enabled', 'bool'),
  col('created_at', 'timestamptz'),
];

/** SHOW OIDC PROVIDERS: the providers of the session's tenant (a superuser: all). */
export function showOidcProviders(ctx: StatementContext): Execution {
  const { view, actor } = ctx;
  const tz = ctx.session.settings.get('timezone');
  function* rows(): Generator<(string | null)[]> {
    for (const p of view.oidcProviders()) {
      const t = view.tenantById(p.tenantId);
      if (!t || !canSeeTenant(actor, t)) continue;
      yield [
        p.name,
        t.name,
        p.issuer,
        p.jwksUrl,
        bool(p.jwks !== null),
        p.audience,
        formatTextArray(p.algorithms),
        p.idClaim,
        p.roleClaim,
        p.orgClaim,
        p.tenantClaim,
        p.scopesClaim,
        p.defaultRole,
        p.maxRole,
        bool(p.enabled),
        formatTimestamp(p.createdAt, tz),
      ];
    }
  }
  return rowsResult(OIDC_COLUMNS, rows(), 'SHOW', false);
}
