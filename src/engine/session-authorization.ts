import type { AdminCommand } from '../../grammar/index.js';
import { PgError } from '../errors/pg-error.js';
import type { Execution } from '../wire/handler.js';
import type { StatementContext } from './statement-context.js';
import { effectiveOf } from './effective.js';
import { authorize } from './privileges.js';
import { commandDone } from './results.js';
import { principalFromClaims } from './jwt-principal.js';
import { valueText } from './values.js';
import { CredentialRefused, keyPrincipal } from './credentials.js';

/**
 * SET SESSION AUTHORIZATION name | DEFAULT, RESET SESSION AUTHORIZATION: a
 * superuser acts as another user, with that user's privileges and $auth.* variables.
 * As in PostgreSQL, what counts is the *session* user's privilege, so a superuser acting
 * as alice can still switch back or to someone else.
 */
export function setSessionAuthorization(cmd: Extract<AdminCommand, { type: 'SetSessionAuthorization' }>, ctx: StatementContext): Execution {
  const login = ctx.view.userById(ctx.session.sessionUserId);
  if (!login) throw new PgError('invalid_authorization_specification', 'the session user no longer exists', { severity: 'FATAL' });
  const sessionUser = { ...login, role: effectiveOf(login, ctx.view, ctx.now).role };
  authorize(sessionUser, { kind: 'setSessionAuthorization' });
  if (cmd.user === null) {
    ctx.session.actAs(null);
    return commandDone('SET');
  }
  const target = ctx.view.userByName(cmd.user.value);
  if (!target) throw new PgError('undefined_object', `user "${cmd.user.value}" does not exist`, { position: cmd.user.position });
  ctx.session.actAs(target.id === login.id ? null : target);
  return commandDone('SET');
}

/** SET SESSION AUTHORIZATION JWT PROVIDER p CLAIMS '{...}': act exactly as such a token would. */
export function setSessionAuthorizationJwt(cmd: Extract<AdminCommand, { type: 'SetSessionAuthorizationJwt' }>, ctx: StatementContext): Execution {
  const login = ctx.view.userById(ctx.session.sessionUserId);
  if (!login) throw new PgError('invalid_authorization_specification', 'the session user no longer exists', { severity: 'FATAL' });
  authorize({ ...login, role: effectiveOf(login, ctx.view, ctx.now).role }, { kind: 'setSessionAuthorization' });
  const provider = ctx.view.oidcProviderByName(cmd.provider.value);
  if (!provider) throw new PgError('undefined_object', `OIDC provider "${cmd.provider.value}" does not exist`, { position: cmd.provider.position });
  const text = valueText(cmd.claims, ctx.params);
  let claims: unknown;
  try {
    claims = JSON.parse(text ?? '');
  } catch {
    throw new PgError('invalid_parameter_value', 'CLAIMS must be a JSON object', { position: cmd.claims.position });
  }
  if (typeof claims !== 'object' || claims === null || Array.isArray(claims)) {
    throw new PgError('invalid_parameter_value', 'CLAIMS must be a JSON object', { position: cmd.claims.position });
  }
  ctx.session.actAsToken(principalFromClaims(provider, claims as Record<string, unknown>, ctx.view));
  return commandDone('SET');
}

/**
 * SET SESSION AUTHORIZATION API KEY 'name' [FOR owner]: act exactly as a login with that key
 * would — its owner (a user or a service account) narrowed by the key's role, databases and
 * scopes, `$auth.method` api_key — in the admin language and on the data plane alike. The
 * key is named as ALTER / DROP API KEY name it (without FOR: the session user's own key),
 * and looked up again at every statement, so dropping it or its expiry ends the acting.
 * A key that would refuse a login now (expired, owner dropped, disabled or expired) is
 * refused here too (28000), with its reason: the superuser may know it.
 */
export function setSessionAuthorizationApiKey(cmd: Extract<AdminCommand, { type: 'SetSessionAuthorizationApiKey' }>, ctx: StatementContext): Execution {
  const login = ctx.view.userById(ctx.session.sessionUserId);
  if (!login) throw new PgError('invalid_authorization_specification', 'the session user no longer exists', { severity: 'FATAL' });
  authorize({ ...login, role: effectiveOf(login, ctx.view, ctx.now).role }, { kind: 'setSessionAuthorization' });
  const ownerName = cmd.owner?.value ?? login.name;
  const user = ctx.view.userByName(ownerName);
  const sa = user ? undefined : ctx.view.serviceAccountByName(ownerName);
  if (!user && !sa) throw new PgError('undefined_object', `user or service account "${ownerName}" does not exist`, { position: cmd.owner?.position });
  const key = user ? ctx.view.apiKeyByName('user', user.id, cmd.name.value) : ctx.view.apiKeyByName('service_account', sa!.id, cmd.name.value);
  if (!key) {
    throw new PgError('undefined_object', `API key "${cmd.name.value}" does not exist for ${user ? 'user' : 'service account'} "${ownerName}"`, { position: cmd.name.position });
  }
  let principal;
  try {
    principal = keyPrincipal(key, ctx.view, ctx.now).user;
  } catch (err) {
    if (!(err instanceof CredentialRefused)) throw err;
    throw new PgError('invalid_authorization_specification', `API key "${key.name}" does not grant access now`, {
      detail: `${err.reason[0]!.toUpperCase()}${err.reason.slice(1)}.`,
      position: cmd.name.position,
    });
  }
  ctx.session.actAsKey(key, { ...principal, role: effectiveOf(principal, ctx.view, ctx.now).role });
  return commandDone('SET');
}
