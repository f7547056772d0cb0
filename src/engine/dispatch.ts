import type { AdminCommand, Name, Statement } from '../../grammar/index.js';
import type { Column, Execution } from '../wire/handler.js';
import { TypeOid } from '../wire/messages.js';
import type { ImportRules } from './imports.js';
import type { StatementContext } from './statement-context.js';
import { statementSpec } from './statements.js';

/**
 * The dispatcher: each question the session asks about a statement, answered from the
 * statement's row of the statement table (statements.ts). Statement modules import nothing
 * from here; they see only their StatementContext.
 */

/** Runs a statement (transaction control is the session's, never dispatched). */
export async function dispatch(cmd: AdminCommand, ctx: StatementContext): Promise<Execution> {
  return statementSpec(cmd.type).execute(cmd, ctx);
}

/** The statement writes the catalog (so it runs in a transaction). */
export function isWrite(cmd: AdminCommand): boolean {
  return statementSpec(cmd.type).write;
}

/** The result columns of a statement, known before it runs (Describe). */
export function describeColumns(cmd: AdminCommand): Column[] | null {
  return statementSpec(cmd.type).columns(cmd);
}

/** Parameter types inferred from where each `$n` stands; text where nothing says otherwise. */
export function paramTypesOf(st: Statement): number[] {
  const types: number[] = Array.from({ length: st.paramCount }, () => TypeOid.text);
  const cmd = st.command;
  for (const [index, oid] of statementSpec(cmd.type).params(cmd)) if (index >= 1 && index <= types.length) types[index - 1] = oid;
  return types;
}

/** The databases a statement names: what an API key's DATABASE_NOT_AUTHORIZED check reads (SPEC §6). */
export function statementDatabases(cmd: AdminCommand): Name[] {
  return statementSpec(cmd.type).databases(cmd);
}

/** What the audit record of a statement names as its object. */
export function objectOf(cmd: AdminCommand): string {
  return statementSpec(cmd.type).object(cmd);
}

/** The IMPORT keys a statement takes (null: none). */
export function importRulesOf(cmd: AdminCommand): ImportRules | null {
  return statementSpec(cmd.type).imports;
}
