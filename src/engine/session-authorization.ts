import type { AdminCommand } from '../../grammar/index.js';
import { PgError } from '../errors/pg-error.js';
import type { Execution } from '../wire/handler.js';
import type { StatementContext } from './statement-context.js';
import { effectiveOf } from './effective.js';
import { authorize } from './privileges.js';
import { commandDone } from './results.js';
import { principalFromClaims } from './jwt-principal.js';
import { valueText } from './values.js';

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
