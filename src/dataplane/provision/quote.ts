/**
 * Quoting for SQL that portcullis writes into the data plane. Every name and value that
 * reaches provisioning SQL goes through these two functions, never through concatenation.
 */

/**
 * An identifier, always double-quoted (PostgreSQL's rule: a quoted identifier is taken
 * exactly, embedded `"` doubled). Quoting every name, not only those quote_ident would,
 * keeps keywords and mixed case right without a keyword list. NUL cannot be in a name.
 */
export function quoteIdent(name: string): string {
  if (name.length === 0) throw new Error('empty SQL identifier');
  if (name.includes('\0')) throw new Error('SQL identifier contains NUL');
  return `"${name.replaceAll('"', '""')}"`;
}

/** A schema-qualified name. */
export const qualified = (schema: string, name: string): string => `${quoteIdent(schema)}.${quoteIdent(name)}`;

/**
 * A string literal, as PostgreSQL's quote_literal writes it: `'` doubled, and a value with
 * a backslash written as an E'' literal with `\` doubled, so it reads the same whatever
 * standard_conforming_strings says. NUL cannot be in a PostgreSQL text value.
 */
export function quoteLiteral(value: string): string {
  if (value.includes('\0')) throw new Error('SQL literal contains NUL');
  const body = value.replaceAll("'", "''");
  return value.includes('\\') ? `E'${body.replaceAll('\\', '\\\\')}'` : `'${body}'`;
}

/** PostgreSQL's NAMEDATALEN - 1: longer names are truncated (with a NOTICE), so never write one. */
export const MAX_NAME_BYTES = 63;

export const nameBytes = (s: string): number => Buffer.byteLength(s, 'utf8');
