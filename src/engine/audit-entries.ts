import type { CollectionRef, Name, UserRef, Value } from '../../grammar/index.js';
import type { Cmd } from './statement-context.js';

/**
 * What a statement is about, in a few words, for the audit trail: the object's name (and
 * its database or collection where that is part of it). Never a value: values may be
 * secrets. Each statement's entry in the statement table (statements.ts) says which of
 * these it uses, or `noObject`.
 */

const names = (ns: Name[]) => ns.map((n) => n.value).join(', ');

/** The statement is about no one object (SHOW ..., SET ..., SELECT ...). */
export const noObject = (): string => '';

/** CREATE / ALTER / DROP thing name. */
export const objectName = (cmd: { name: Name }): string => cmd.name.value;

/** DEALLOCATE name, CLOSE name ('' for ALL). */
export const optionalName = (cmd: { name: Name | null }): string => cmd.name?.value ?? '';

/** ALTER / RENAME / UNLOCK USER name | CURRENT_USER. */
export const userRefObject = (cmd: { user: UserRef }): string => (cmd.user.kind === 'name' ? cmd.user.name.value : 'CURRENT_USER');

/** DROP USER a, b. */
export const namesObject = (cmd: { names: Name[] }): string => names(cmd.names);

/** GRANT / REVOKE items [ON ...] TO / FROM grantees. */
export const grantObject = (cmd: Cmd<'Grant' | 'Revoke'>): string => {
  const items = cmd.items.map((i) => i.word).join(', ');
  const on = cmd.target === null ? '' : cmd.target.kind === 'databases' ? ` ON ${names(cmd.target.names)}` : ` ON ${cmd.target.database.value}.${cmd.target.collection.value}`;
  return `${items}${on} ${cmd.type === 'Grant' ? 'TO' : 'FROM'} ${names(cmd.grantees)}`;
};

/** GRANT / REVOKE SCOPE ... TO / FROM grantees. Scopes are names of permissions, not secrets. */
export const scopeObject = (cmd: Cmd<'GrantScope' | 'RevokeScope'>): string =>
  `SCOPE ${cmd.scopes.map((v: Value) => (v.kind === 'string' ? v.value : v.kind === 'param' ? `$${v.index}` : '?')).join(', ')} ${cmd.type === 'GrantScope' ? 'TO' : 'FROM'} ${names(cmd.grantees)}`;

/** CREATE / DROP RLS POLICY name ON [db.]collection. */
export const policyObject = (cmd: { name: Name; on: CollectionRef }): string => `${cmd.name.value} ON ${cmd.on.database ? `${cmd.on.database.value}.` : ''}${cmd.on.collection.value}`;

/** CREATE / ALTER / DROP API KEY name [FOR owner]. */
export const keyObject = (cmd: { name: Name; owner: Name | null }): string => (cmd.owner ? `${cmd.name.value} FOR ${cmd.owner.value}` : cmd.name.value);

/** SET SESSION AUTHORIZATION name | DEFAULT. */
export const sessionAuthorizationObject = (cmd: { user: Name | null }): string => cmd.user?.value ?? 'DEFAULT';

/** SHOW GRANTS [FOR grantee]. */
export const granteeObject = (cmd: { grantee: Name | null }): string => cmd.grantee?.value ?? '';
