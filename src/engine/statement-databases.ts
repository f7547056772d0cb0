import type { CollectionRef, GrantTarget, Name } from '../../grammar/index.js';
import type { Cmd } from './statement-context.js';

/**
 * The databases a statement names (GRANT ... ON DATABASE, db.collection, WITH DATABASES,
 * FOR DATABASE ...), for credentials that reach only some databases: a statement that
 * names one outside an API key's set is refused before it runs (42501,
 * DATABASE_NOT_AUTHORIZED). A collection without a database means the session's own,
 * which was checked at login. Each statement's entry in the statement table (statements.ts)
 * says which of these readers applies, or `noDatabases`.
 */

/** The statement names no database (it may still act on the session's own, checked at login). */
export const noDatabases = (): Name[] => [];

/** CREATE / DROP DATABASE name. */
export const theDatabase = (cmd: { name: Name }): Name[] => [cmd.name];

/** GRANT / REVOKE ... ON DATABASE a, b or ON db.collection (no ON clause: none named). */
export const grantTargetDatabases = (cmd: { target: GrantTarget }): Name[] => {
  const t = cmd.target;
  return t === null ? [] : t.kind === 'databases' ? t.names : [t.database];
};

/** ON [db.]collection: the database when one is written. */
export const collectionDatabases = (cmd: { on: CollectionRef | null }): Name[] => (cmd.on?.database ? [cmd.on.database] : []);

/** CREATE API KEY ... WITH DATABASES a, b. */
export const keyOptionDatabases = (cmd: Cmd<'CreateApiKey' | 'CreateToken'>): Name[] => cmd.options.flatMap((o) => (o.kind === 'databases' ? o.names : []));

/** ALTER API KEY / SERVICE ACCOUNT ... SET DATABASES a, b. */
export const changedDatabases = (cmd: Cmd<'AlterApiKey' | 'AlterServiceAccount'>): Name[] => (cmd.change.kind === 'databases' ? cmd.change.names : []);

/** CREATE SERVICE ACCOUNT ... FOR DATABASES a, b. */
export const listedDatabases = (cmd: { databases: Name[] }): Name[] => cmd.databases;
