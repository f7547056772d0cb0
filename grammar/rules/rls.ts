import * as T from '../tokens.js';
import type { AdminCommand, CollectionRef, CompareOp, Name, Operand, PolicyKind, Predicate } from '../ast.js';
import { OidcRules } from './oidc.js';
import { unquoteIdentifier } from '../literals.js';

/**
 * CREATE / DROP RLS POLICY, EXPLAIN RLS and the predicate language (SPEC §3), with
 * PostgreSQL's precedence: OR < AND < NOT < comparison.
 */
export class RlsRules extends OidcRules {
  protected createRlsPolicy = this.RULE('createRlsPolicy', (): AdminCommand => {
    this.CONSUME(T.Rls);
    this.CONSUME(T.Policy);
    const ifNotExists = this.SUBRULE(this.ifNotExists);
    const name = this.SUBRULE(this.name);
    this.CONSUME(T.On);
    const on = this.SUBRULE(this.collectionRef);
    this.CONSUME(T.For);
    const kind = this.OR([
      { ALT: (): PolicyKind => (this.CONSUME(T.Read), 'read') },
      { ALT: (): PolicyKind => (this.CONSUME(T.Write), 'write') },
      { ALT: (): PolicyKind => (this.CONSUME(T.All), 'all') },
    ]);
    this.CONSUME(T.Using);
    this.CONSUME(T.LParen);
    const predicate = this.SUBRULE(this.orPredicate);
    this.CONSUME(T.RParen);
    let restrictive = false;
    this.OPTION(() => {
      this.OR2([
        { ALT: () => this.CONSUME(T.Permissive) },
        { ALT: () => (this.CONSUME(T.Restrictive), (restrictive = true)) },
      ]);
    });
    return { type: 'CreateRlsPolicy', name, ifNotExists, on, kind, predicate, restrictive };
  });

  protected dropRlsPolicy = this.RULE('dropRlsPolicy', (): AdminCommand => {
    this.CONSUME(T.Rls);
    this.CONSUME(T.Policy);
    const ifExists = this.SUBRULE(this.ifExists);
    const name = this.SUBRULE(this.name);
    this.CONSUME(T.On);
    return { type: 'DropRlsPolicy', name, ifExists, on: this.SUBRULE(this.collectionRef) };
  });

  protected explainStmt = this.RULE('explainStmt', (): AdminCommand => {
    this.CONSUME(T.Explain);
    this.CONSUME(T.Rls);
    this.CONSUME(T.On);
    const on = this.SUBRULE(this.collectionRef);
    let kind: 'read' | 'write' = 'read';
    this.OPTION(() => {
      this.CONSUME(T.For);
      kind = this.OR([
        { ALT: (): 'read' => (this.CONSUME(T.Read), 'read') },
        { ALT: (): 'write' => (this.CONSUME(T.Write), 'write') },
      ]);
    });
    return { type: 'ExplainRls', on, kind };
  });

  protected collectionRef = this.RULE('collectionRef', (): CollectionRef => {
    const first: Name = this.SUBRULE(this.databaseName);
    let second: Name | null = null;
    this.OPTION(() => {
      this.CONSUME(T.Dot);
      second = this.SUBRULE2(this.name);
    });
    return second ? { database: first, collection: second } : { database: null, collection: first };
  });

  private orPredicate = this.RULE('orPredicate', (): Predicate => {
    let p = this.SUBRULE(this.andPredicate);
    this.MANY(() => {
      this.CONSUME(T.Or);
      const right = this.SUBRULE2(this.andPredicate);
      p = { kind: 'or', left: p, right };
    });
    return p;
  });

  private andPredicate = this.RULE('andPredicate', (): Predicate => {
    let p = this.SUBRULE(this.notPredicate);
    this.MANY(() => {
      this.CONSUME(T.And);
      const right = this.SUBRULE2(this.notPredicate);
      p = { kind: 'and', left: p, right };
    });
    return p;
  });

  private notPredicate = this.RULE('notPredicate', (): Predicate =>
    this.OR([
      {
        ALT: (): Predicate => {
          this.CONSUME(T.Not);
          return { kind: 'not', expr: this.SUBRULE(this.notPredicate) };
        },
      },
      { ALT: (): Predicate => this.SUBRULE(this.atomPredicate) },
    ]),
  );

  private atomPredicate = this.RULE('atomPredicate', (): Predicate =>
    this.OR([
      {
        ALT: (): Predicate => {
          this.CONSUME(T.LParen);
          const p = this.SUBRULE(this.orPredicate);
          this.CONSUME(T.RParen);
          return p;
        },
      },
      {
        ALT: (): Predicate => {
          const left = this.SUBRULE(this.operand);
          let p: Predicate = { kind: 'operand', operand: left };
          this.OPTION(() => {
            p = this.OR2([
              {
                ALT: (): Predicate => {
                  const op = this.SUBRULE(this.compareOp);
                  return { kind: 'compare', op, left, right: this.SUBRULE2(this.operand) };
                },
              },
              {
                ALT: (): Predicate => {
                  let negated = false;
                  this.OPTION2(() => (this.CONSUME2(T.Not), (negated = true)));
                  this.CONSUME(T.In);
                  this.CONSUME2(T.LParen);
                  const list: Operand[] = [];
                  this.AT_LEAST_ONE_SEP({
                    SEP: T.Comma,
                    DEF: () => {
                      const o = this.SUBRULE3(this.operand);
                      this.ACTION(() => list.push(o));
                    },
                  });
                  this.CONSUME2(T.RParen);
                  const inP: Predicate = { kind: 'in', operand: left, list };
                  return negated ? { kind: 'not', expr: inP } : inP;
                },
              },
              {
                ALT: (): Predicate => {
                  this.CONSUME(T.Contains);
                  return { kind: 'contains', left, right: this.SUBRULE4(this.operand) };
                },
              },
              {
                ALT: (): Predicate => {
                  this.CONSUME(T.Is);
                  let negated = false;
                  this.OPTION3(() => (this.CONSUME3(T.Not), (negated = true)));
                  this.CONSUME(T.Null);
                  return { kind: 'isNull', operand: left, negated };
                },
              },
            ]);
          });
          return p;
        },
      },
    ]),
  );

  private compareOp = this.RULE('compareOp', (): CompareOp =>
    this.OR([
      { ALT: (): CompareOp => (this.CONSUME(T.Equals), '=') },
      { ALT: (): CompareOp => (this.CONSUME(T.NotEquals), '<>') },
      { ALT: (): CompareOp => (this.CONSUME(T.Less), '<') },
      { ALT: (): CompareOp => (this.CONSUME(T.LessEq), '<=') },
      { ALT: (): CompareOp => (this.CONSUME(T.Greater), '>') },
      { ALT: (): CompareOp => (this.CONSUME(T.GreaterEq), '>=') },
    ]),
  );

  private operand = this.RULE('operand', (): Operand =>
    this.OR([
      {
        ALT: (): Operand => {
          const t = this.CONSUME(T.AuthRef);
          return { kind: 'auth', path: t.image.split('.').slice(1).map((s) => s.toLowerCase()), position: this.pos(t) };
        },
      },
      { ALT: (): Operand => ({ kind: 'literal', value: this.SUBRULE(this.literal) }) },
      {
        ALT: (): Operand => {
          const first = this.SUBRULE(this.columnName);
          const path = [first.value];
          this.MANY(() => {
            this.CONSUME(T.Dot);
            const p = this.SUBRULE2(this.columnName);
            this.ACTION(() => path.push(p.value));
          });
          return { kind: 'column', path, position: first.position };
        },
      },
    ]),
  );

  /** A column: an identifier (folded), a "quoted identifier", or a non-reserved keyword; never a string. */
  private columnName = this.RULE('columnName', (): Name => {
    const t = this.OR([
      { ALT: () => this.CONSUME(T.Identifier) },
      { ALT: () => this.CONSUME(T.QuotedIdentifier) },
      { ALT: () => this.CONSUME(T.NonReserved) },
    ]);
    const value = this.ACTION(() => (t.tokenType === T.QuotedIdentifier ? unquoteIdentifier(t.image) : t.image.toLowerCase())) as string;
    return { value, position: this.pos(t) };
  });
}
