import type { AdminCommand, ImportItem } from '../../grammar/index.js';
import { parseVerifier } from '../auth/verifier.js';
import type { CatalogTransaction } from '../catalog/transaction.js';
import type { CatalogReader } from '../catalog/catalog.js';
import type { Rows, TableName, User } from '../catalog/model.js';
import { PgError } from '../errors/pg-error.js';
import { parseTimestamp, valueText } from './values.js';

/**
 * `IMPORT (key = value, ...)`: how `portcullis dump` makes a restore exact. A statement
 * runs as usual, then the rows it writes take the imported values — ids, creation times,
 * who created them, an API key's hash and verifier — so that dump → apply → dump gives the
 * same bytes. `tenant = N` makes the statement run as if the superuser belonged to tenant N,
 * so every name resolves there. Superuser only: it writes what no other statement may.
 */

/**
 * How an imported value is read: `ref` a nullable id of another row (never claimed), `json`
 * a value written as JSON text (a list that may be empty, or NULL).
 */
type FieldType = 'id' | 'ref' | 'timestamp' | 'text' | 'bool' | 'json' | 'secret' | 'verifier';
/** Import key → the row field it sets (a dotted path for a nested field) and how its text is read. */
export type ImportFields = Record<string, [path: string, type: FieldType]>;
/**
 * One statement's IMPORT rules: per table it writes, the keys it takes. The statement table
 * (statements.ts) gives each statement's, or null for a statement that takes no IMPORT.
 */
export type ImportRules = Partial<Record<TableName, ImportFields>>;

/** The row's id. */
export const IMPORT_ID: ImportFields = { id: ['id', 'id'] };
/** When and by whom the object was created. */
export const IMPORT_CREATED: ImportFields = { created_at: ['createdAt', 'timestamp'], created_by: ['createdBy', 'text'] };

/** Keys that come in groups: all or none. */
const TOGETHER = [
  ['key_id', 'hash', 'verifier'],
  ['previous_hash', 'previous_verifier', 'previous_valid_until'],
];

export class ImportPlan {
  private readonly values = new Map<string, unknown>();
  private readonly done = new Set<TableName>();
  /** `tenant = N`: the tenant the statement runs in. */
  tenantId: number | null = null;
  private readonly rules: ImportRules;

  constructor(
    private readonly command: AdminCommand,
    /** The statement's IMPORT rules (null: it takes none). */
    rules: ImportRules | null,
    items: ImportItem[],
    actor: User,
    view: CatalogReader,
    params: (string | null)[],
  ) {
    const what = statementName(command);
    if (actor.role !== 'superuser') {
      throw new PgError('insufficient_privilege', 'permission denied to use IMPORT', {
        detail: `${actor.name} has role ${actor.role}; IMPORT, which restores dumps, needs superuser.`,
      });
    }
    if (!rules) throw new PgError('feature_not_supported', `${what} does not take IMPORT`, { position: items[0]!.key.position });
    this.rules = rules;
    const known = new Map<string, FieldType>();
    for (const fields of Object.values(rules)) for (const [k, [, type]] of Object.entries(fields!)) known.set(k, type);
    for (const { key, value } of items) {
      const k = key.value.toLowerCase();
      if (this.values.has(k) || (k === 'tenant' && this.tenantId !== null)) {
        throw new PgError('syntax_error', 'conflicting or redundant options', { position: key.position });
      }
      const text = valueText(value, params);
      if (k === 'tenant') {
        const t = text !== null && /^\d+$/.test(text) ? view.tenantById(Number(text)) : undefined;
        if (!t) throw new PgError('undefined_object', `tenant ${text ?? 'NULL'} does not exist`, { position: value.position });
        this.tenantId = t.id;
        continue;
      }
      const type = known.get(k);
      if (!type) {
        throw new PgError('invalid_parameter_value', `unknown IMPORT key "${key.value}" for ${what}`, {
          position: key.position,
          hint: `${what} takes: tenant, ${[...known.keys()].join(', ')}.`,
        });
      }
      this.values.set(k, convert(k, type, text, value.position));
    }
    if (this.values.has('previous_last_used_at') && !this.values.has('previous_hash')) {
      throw new PgError('invalid_parameter_value', 'IMPORT of previous_last_used_at needs previous_hash, previous_verifier and previous_valid_until', { position: items[0]!.key.position });
    }
    for (const group of TOGETHER) {
      const given = group.filter((k) => this.values.has(k));
      if (given.length > 0 && given.length < group.length && known.has(group[0]!)) {
        throw new PgError('invalid_parameter_value', `IMPORT of ${group.join(', ')} needs all of them`, { position: items[0]!.key.position });
      }
    }
  }

  has(key: string): boolean {
    return this.values.has(key);
  }

  /** An imported value as read (undefined: not given). */
  get(key: string): unknown {
    return this.values.get(key);
  }

  /** The row a statement writes, with the imported values; once per table and statement. */
  patch<T extends TableName>(table: T, row: Rows[T], tx: CatalogTransaction): Rows[T] {
    const fields = this.rules[table];
    if (!fields) return row;
    if (this.done.has(table)) {
      throw new PgError('feature_not_supported', `IMPORT applies to one object, and ${statementName(this.command)} wrote several`, {
        hint: 'Write one statement per object, as portcullis dump does.',
      });
    }
    this.done.add(table);
    const out = structuredClone(row) as unknown as Record<string, unknown>;
    for (const [k, [path, type]] of Object.entries(fields)) {
      if (!this.values.has(k)) continue;
      const v = this.values.get(k);
      const [head, leaf] = path.split('.') as [string, string | undefined];
      if (leaf === undefined) out[head] = v;
      else out[head] = { ...((out[head] as object | null) ?? {}), [leaf]: v };
      if (type === 'id' && v !== (row as { id: number }).id) claimId(v as number, tx);
    }
    if (table === 'apiKeys' && this.values.has('key_id')) {
      if (tx.apiKeyByKeyId(String(out.keyId))) throw new PgError('duplicate_object', `an API key with key id ${String(out.keyId)} already exists`);
    }
    return out as unknown as Rows[T];
  }
}

function claimId(id: number, tx: CatalogTransaction): void {
  for (const t of Object.values(tx.tables)) {
    if (t.get(id)) throw new PgError('duplicate_object', `an object with id ${id} already exists`, { hint: 'IMPORT restores into a catalog that does not hold these objects yet.' });
  }
  tx.reserveId(id);
}

function convert(key: string, type: FieldType, text: string | null, position: number): unknown {
  switch (type) {
    case 'id':
      if (text === null || !/^\d{1,15}$/.test(text) || Number(text) < 1) {
        throw new PgError('invalid_parameter_value', `${key} must be a positive integer`, { position });
      }
      return Number(text);
    case 'ref':
      if (text === null) return null;
      if (!/^\d{1,15}$/.test(text) || Number(text) < 1) throw new PgError('invalid_parameter_value', `${key} must be a positive integer or NULL`, { position });
      return Number(text);
    case 'json':
      if (text === null) return null;
      try {
        return JSON.parse(text) as unknown;
      } catch {
        throw new PgError('invalid_parameter_value', `${key} must be JSON`, { position });
      }
    case 'bool':
      if (text !== 'true' && text !== 'false') throw new PgError('invalid_parameter_value', `${key} must be 'true' or 'false'`, { position });
      return text === 'true';
    case 'timestamp':
      return text === null ? null : parseTimestamp(text, 'UTC');
    case 'text':
      return text;
    case 'secret':
      if (!text) throw new PgError('invalid_parameter_value', `${key} must not be empty`, { position });
      return text;
    case 'verifier':
      if (!text || !parseVerifier(text)) throw new PgError('invalid_parameter_value', `${key} must be a SCRAM-SHA-256 verifier`, { position });
      return text;
  }
}

/** "CREATE USER" from "CreateUser". */
function statementName(cmd: AdminCommand): string {
  return cmd.type.replace(/([a-z])([A-Z])/g, '$1 $2').toUpperCase();
}
