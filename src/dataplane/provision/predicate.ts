/**
 * A catalog RLS predicate (grammar/ast.ts) as a PostgreSQL expression, typed against the
 * table's real columns. `$auth.<var>` becomes a scalar subquery over portcullis.auth —
 * `(SELECT portcullis.auth('username'))` — so PostgreSQL evaluates it once per statement
 * (an InitPlan), not once per row; compared with a column of another type it is
 * `(SELECT portcullis.auth_as('id', 'integer'))::integer`, NULL when the value does not
 * read as that type. Every value the predicate reads is required (SPEC §5: a predicate
 * that references a variable the session does not have matches nothing): the expression
 * is `<each value> IS NOT NULL AND (<predicate>)`.
 */
import type { Operand, Predicate, Value } from '../../../grammar/ast.js';
import { LIST_VARIABLES } from '../../engine/auth-vars.js';
import type { Columns } from './objects.js';
import { portcullisObject } from './schema.js';
import { quoteIdent, quoteLiteral } from './quote.js';

/** A predicate that cannot be typed against the table (a column it does not have, a parameter). */
export class PolicyTypingError extends Error {}

/** Types that compare with text as they are: no cast, no auth_as. */
const TEXTUAL = new Set(['text', 'character varying', 'bpchar', 'name']);

export function predicateSql(p: Predicate, columns: Columns): string {
  const required = new Map<string, true>();
  const body = new Renderer(columns, required).predicate(p, 0);
  return required.size === 0 ? body : `${[...required.keys()].map((e) => `${e} IS NOT NULL`).join(' AND ')} AND (${body})`;
}

class Renderer {
  constructor(
    private readonly columns: Columns,
    private readonly required: Map<string, true>,
  ) {}

  predicate(p: Predicate, parent: number): string {
    // Precedence: OR 1 < AND 2 < NOT 3 < atoms; parenthesise a lower one inside a higher.
    const wrap = (s: string, level: number) => (level < parent ? `(${s})` : s);
    switch (p.kind) {
      case 'or':
        return wrap(`${this.predicate(p.left, 1)} OR ${this.predicate(p.right, 1)}`, 1);
      case 'and':
        return wrap(`${this.predicate(p.left, 2)} AND ${this.predicate(p.right, 2)}`, 2);
      case 'not':
        return wrap(`NOT ${this.predicate(p.expr, 3)}`, 3);
      case 'compare': {
        const t = this.typeOf([p.left, p.right]);
        return `${this.operand(p.left, t)} ${p.op} ${this.operand(p.right, t)}`;
      }
      case 'in': {
        const t = this.typeOf([p.operand, ...p.list]);
        const left = this.operand(p.operand, t);
        const scalars = p.list.filter((o) => !isList(o)).map((o) => this.operand(o, t));
        const parts = scalars.length > 0 ? [`${left} IN (${scalars.join(', ')})`] : [];
        for (const o of p.list.filter(isList)) parts.push(`${left} = ANY (${this.operand(o, `${t}[]`)})`);
        return parts.length === 1 ? parts[0]! : `(${parts.join(' OR ')})`;
      }
      case 'contains': {
        // `list CONTAINS item`: the list is a list variable or an array column.
        if (p.left.kind === 'column') {
          const col = this.column(p.left);
          if (col.element === null) throw new PolicyTypingError(`column "${p.left.path.join('.')}" is not an array (CONTAINS needs a list)`);
          return `${this.operand(p.right, col.element)} = ANY (${quoteIdent(p.left.path.at(-1)!)})`;
        }
        const t = this.typeOf([p.right]);
        return `${this.operand(p.right, t)} = ANY (${this.operand(p.left, `${t}[]`)})`;
      }
      case 'isNull':
        return `${this.operand(p.operand, this.typeOf([p.operand]))} IS ${p.negated ? 'NOT ' : ''}NULL`;
      case 'operand':
        return this.operand(p.operand, 'boolean');
    }
  }

  private column(o: Extract<Operand, { kind: 'column' }>) {
    const name = o.path.at(-1)!;
    const c = Object.hasOwn(this.columns, name) ? this.columns[name] : undefined;
    if (!c) throw new PolicyTypingError(`column "${o.path.join('.')}" does not exist`);
    return c;
  }

  /** The type the operands of one comparison are read as: a column's, else a literal's, else text. */
  private typeOf(ops: Operand[]): string {
    for (const o of ops) if (o.kind === 'column') return this.column(o).type;
    for (const o of ops) {
      if (o.kind !== 'literal') continue;
      if (o.value.kind === 'number') return 'numeric';
      if (o.value.kind === 'boolean') return 'boolean';
    }
    return 'text';
  }

  private operand(o: Operand, type: string): string {
    switch (o.kind) {
      case 'column':
        this.column(o);
        // The table's own column: only the last part of a written path names it.
        return quoteIdent(o.path.at(-1)!);
      case 'literal':
        return literal(o.value);
      case 'auth': {
        const name = o.path.join('.');
        const listVar = isList(o);
        const e =
          TEXTUAL.has(type) && !listVar
            ? `(SELECT ${portcullisObject('auth')}(${quoteLiteral(name)}))`
            : `(SELECT ${portcullisObject('auth_as')}(${quoteLiteral(name)}, ${quoteLiteral(listVar && !type.endsWith('[]') ? 'text[]' : type)}))::${listVar && !type.endsWith('[]') ? 'text[]' : type}`;
        this.required.set(e, true);
        return e;
      }
    }
  }
}

const isList = (o: Operand) => o.kind === 'auth' && o.path.length === 1 && LIST_VARIABLES.has(o.path[0]!);

function literal(v: Value): string {
  switch (v.kind) {
    case 'string':
      return quoteLiteral(v.value);
    case 'number':
      // The grammar's number token: digits, a point, an exponent; nothing else reaches here.
      if (!/^-?[0-9]+(\.[0-9]*)?([eE][+-]?[0-9]+)?$|^-?\.[0-9]+([eE][+-]?[0-9]+)?$/.test(v.value)) throw new PolicyTypingError(`not a number: ${v.value}`);
      return v.value;
    case 'boolean':
      return v.value ? 'TRUE' : 'FALSE';
    case 'null':
      return 'NULL';
    case 'param':
      throw new PolicyTypingError(`parameter $${v.index} in a stored policy`);
  }
}
