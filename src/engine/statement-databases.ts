import type { AdminCommand, CollectionRef, GrantTarget, Name } from '../../grammar/index.js';

/**
 * The databases a statement names (GRANT ... ON DATABASE, db.collection, WITH DATABASES,
 * FOR DATABASE ...), for credentials that reach only some databases: a statement that
 * names one outside an API key's set is refused before it runs (42501,
 * DATABASE_NOT_AUTHORIZED). A collection without a database means the session's own,
 * which was checked at login.
 */
export function statementDatabases(cmd: AdminCommand): Name[] {
  const ref = (r: CollectionRef | null): Name[] => (r?.database ? [r.database] : []);
  const target = (t: GrantTarget): Name[] => (t === null ? [] : t.kind === 'databases' ? t.names : [t.database]);
  switch (cmd.type) {
    case 'Grant':
    case 'Revoke':
      return target(cmd.target);
    case 'CreateDatabase':
    case 'DropDatabase':
      return [cmd.name];
    case 'CreateApiKey':
      return cmd.options.flatMap((o) => (o.kind === 'databases' ? o.names : []));
    case 'AlterApiKey':
      return cmd.change.kind === 'databases' ? cmd.change.names : [];
    case 'CreateServiceAccount':
      return cmd.databases;
    case 'AlterServiceAccount':
      return cmd.change.kind === 'databases' ? cmd.change.names : [];
    case 'CreateRlsPolicy':
    case 'DropRlsPolicy':
    case 'ExplainRls':
      return ref(cmd.on);
    case 'ShowRlsPolicies':
      return ref(cmd.on);
    default:
      return [];
  }
}
