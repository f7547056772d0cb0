import type { AdminCommand, Name } from '../../grammar/index.js';

/**
 * What a statement is about, in a few words, for the audit trail: the object's name (and
 * its database or collection where that is part of it). Never a value: values may be secrets.
 */
export function objectOf(cmd: AdminCommand): string {
  const names = (ns: Name[]) => ns.map((n) => n.value).join(', ');
  switch (cmd.type) {
    case 'AlterUser':
    case 'RenameUser':
    case 'UnlockUser':
      return cmd.user.kind === 'name' ? cmd.user.name.value : 'CURRENT_USER';
    case 'DropUser':
      return names(cmd.names);
    case 'Grant':
    case 'Revoke': {
      const items = cmd.items.map((i) => i.word).join(', ');
      const on = cmd.target === null ? '' : cmd.target.kind === 'databases' ? ` ON ${names(cmd.target.names)}` : ` ON ${cmd.target.database.value}.${cmd.target.collection.value}`;
      return `${items}${on} ${cmd.type === 'Grant' ? 'TO' : 'FROM'} ${names(cmd.grantees)}`;
    }
    case 'GrantScope':
    case 'RevokeScope':
      // Scopes are names of permissions, not secrets.
      return `SCOPE ${cmd.scopes.map((v) => (v.kind === 'string' ? v.value : v.kind === 'param' ? `$${v.index}` : '?')).join(', ')} ${cmd.type === 'GrantScope' ? 'TO' : 'FROM'} ${names(cmd.grantees)}`;
    case 'CreateRlsPolicy':
    case 'DropRlsPolicy':
      return `${cmd.name.value} ON ${cmd.on.database ? `${cmd.on.database.value}.` : ''}${cmd.on.collection.value}`;
    case 'CreateApiKey':
    case 'AlterApiKey':
    case 'DropApiKey':
      return cmd.owner ? `${cmd.name.value} FOR ${cmd.owner.value}` : cmd.name.value;
    case 'SetSessionAuthorization':
      return cmd.user?.value ?? 'DEFAULT';
    case 'ShowGrants':
      return cmd.grantee?.value ?? '';
    default:
      return 'name' in cmd && typeof cmd.name === 'object' && cmd.name !== null && 'value' in cmd.name ? cmd.name.value : '';
  }
}
