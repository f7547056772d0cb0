import type { IOrAlt, IToken } from 'chevrotain';
import * as T from '../tokens.js';
import type { AdminCommand, CollectionRef, CompareOp, Name, Operand, PolicyKind, Predicate } from '../ast.js';
import { OidcRules } from './oidc.js';
import { unquoteIdentifier } from '../literals.js';
import { DEFAULT_PARSE_LIMITS, inListTooLong, nestedTooDeeply, predicateTooLarge, type ParseLimits } from '../limits.js';

/**
 * CREATE / DROP RLS POLICY, EXPLAIN RLS and the predicate language, with
 * PostgreSQL's precedence: OR < AND < NOT < comparison.
 *
 * The predicate is built within `limits` (limits.ts), checked as each node is made, so a
 * predicate past one stops the parse there. Nothing here recurses on the input's length:
 * NOT NOT ... is a loop, and an AND or OR chain becomes a balanced tree (depth log2 n, not n),
 * for everything downstream walks the tree recursively (rendering, JSON, the catalog).
 */
export class RlsRules extends OidcRules {
  /** Set by parse() for each text: the server's limits. */
  limits: ParseLimits = DEFAULT_PARSE_LIMITS;
  /** Parentheses and NOTs open around the current point of the predicate. */
  private nesting = 0;
  /** Nodes of the predicate so far. */
  private predicateSize = 0;

  /** One more "(" or NOT around what follows. */
  private enter(t: IToken): void {
    if (++this.nesting > this.limits.maxNestingDepth) throw nestedTooDeeply(this.limits, this.pos(t));
  }

  /** One more node, starting at `t`. */
  private grow(t: IToken): void {
    if (++this.predicateSize > this.limits.maxPredicateSize) throw predicateTooLarge(this.limits, this.pos(t));
  }

  protected createRlsPolicy = this.RULE('createRlsPolicy', (): AdminCommand => {
    this.ACTION(() => {
      this.nesting = 0;
      this.predicateSize = 0;
    });
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
    const open = this.CONSUME(T.LParen);
    this.ACTION(() => this.enter(open));
    const predicate = this.SUBRULE(this.orPredicate);
    this.CONSUME(T.RParen);
    this.ACTION(() => this.nesting--);
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
    const terms: Predicate[] = [this.SUBRULE(this.andPredicate)];
    this.MANY(() => {
      const op = this.CONSUME(T.Or);
      this.ACTION(() => this.grow(op));
      const right = this.SUBRULE2(this.andPredicate);
      this.ACTION(() => terms.push(right));
    });
    return this.ACTION(() => balanced('or', terms, 0, terms.length)) as Predicate;
  });

  private andPredicate = this.RULE('andPredicate', (): Predicate => {
    const terms: Predicate[] = [this.SUBRULE(this.notPredicate)];
    this.MANY(() => {
      const op = this.CONSUME(T.And);
      this.ACTION(() => this.grow(op));
      const right = this.SUBRULE2(this.notPredicate);
      this.ACTION(() => terms.push(right));
    });
    return this.ACTION(() => balanced('and', terms, 0, terms.length)) as Predicate;
  });

  /** NOT ... NOT atom, as a loop: 100,000 NOTs must reach the nesting limit, not the stack's. */
  private notPredicate = this.RULE('notPredicate', (): Predicate => {
    let nots = 0;
    this.MANY(() => {
      const t = this.CONSUME(T.Not);
      this.ACTION(() => {
        this.enter(t);
        this.grow(t);
        nots++;
      });
    });
    let p = this.SUBRULE(this.atomPredicate);
    this.ACTION(() => {
      for (let i = 0; i < nots; i++) p = { kind: 'not', expr: p };
      this.nesting -= nots;
    });
    return p;
  });

  private atomPredicate = this.RULE('atomPredicate', (): Predicate =>
    this.OR([
      {
        ALT: (): Predicate => {
          const open = this.CONSUME(T.LParen);
          this.ACTION(() => this.enter(open));
          const p = this.SUBRULE(this.orPredicate);
          this.CONSUME(T.RParen);
          this.ACTION(() => this.nesting--);
          return p;
        },
      },
      {
        ALT: (): Predicate => {
          const first = this.LA(1);
          this.ACTION(() => this.grow(first));
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
                  this.OPTION2(() => {
                    const not = this.CONSUME2(T.Not);
                    this.ACTION(() => this.grow(not));
                    negated = true;
                  });
                  this.CONSUME(T.In);
                  this.CONSUME2(T.LParen);
                  const list: Operand[] = [];
                  this.AT_LEAST_ONE_SEP({
                    SEP: T.Comma,
                    DEF: () => {
                      const item = this.LA(1);
                      this.ACTION(() => {
                        if (list.length >= this.limits.maxInListLength) throw inListTooLong(this.limits, this.pos(item));
                      });
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

  /** Built once (common.ts): the operand rule runs once per IN-list item. */
  private readonly operandAlts: IOrAlt<Operand>[] = [
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
  ];

  private operand = this.RULE('operand', (): Operand => {
    const first = this.LA(1);
    this.ACTION(() => this.grow(first));
    return this.OR(this.operandAlts);
  });

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

/** terms[lo..hi) joined by `kind` as a balanced tree, leaning left as the chain was written. */
function balanced(kind: 'and' | 'or', terms: Predicate[], lo: number, hi: number): Predicate {
  if (hi - lo === 1) return terms[lo]!;
  const mid = (lo + hi + 1) >>> 1;
  return { kind, left: balanced(kind, terms, lo, mid), right: balanced(kind, terms, mid, hi) };
}
