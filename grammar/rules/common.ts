import { EmbeddedActionsParser } from '../chevrotain.js';
import type { IOrAlt, IToken, TokenType } from 'chevrotain';
import * as T from '../tokens.js';
import type { Name, TenantRef, Value } from '../ast.js';
import { unquoteIdentifier, unquoteString } from '../literals.js';
import { PgError } from '../../src/errors/pg-error.js';

/**
 * Pieces every statement family uses: names, lists, literals, parameters, IF [NOT] EXISTS.
 * The grammar is split by inheritance (Chevrotain's "grammar inheritance"): each family of
 * statements is a subclass in its own file, and parser.ts, the last one, ties them together.
 * Hot OR rules take their alternatives from a field built once (`xxxAlts`) instead of a new
 * array of closures per call: that halved parse time (bench/README.md). It works only for
 * alternatives that capture nothing but `this`.
 */
export class CommonRules extends EmbeddedActionsParser {
  /** Maps a 0-based code-unit offset to PostgreSQL's 1-based character position. */
  positionOf: (offset: number) => number = (o) => o + 1;
  /** The highest `$n` seen in the current statement. */
  protected maxParam = 0;

  constructor() {
    super(T.vocabulary, { maxLookahead: 4 });
  }

  protected ifNotExists = this.RULE('ifNotExists', (): boolean => {
    let present = false;
    this.OPTION(() => {
      this.CONSUME(T.If);
      this.CONSUME(T.Not);
      this.CONSUME(T.Exists);
      present = true;
    });
    return present;
  });

  protected ifExists = this.RULE('ifExists', (): boolean => {
    let present = false;
    this.OPTION(() => {
      this.CONSUME(T.If);
      this.CONSUME(T.Exists);
      present = true;
    });
    return present;
  });

  protected dropBehavior = this.RULE('dropBehavior', (): boolean => {
    let cascade = false;
    this.OPTION(() => {
      this.OR([
        { ALT: () => (this.CONSUME(T.Cascade), (cascade = true)) },
        { ALT: () => this.CONSUME(T.Restrict) },
      ]);
    });
    return cascade;
  });

  /** A list of names, with or without parentheses. */
  protected nameList = this.RULE('nameList', (): Name[] =>
    this.OR([
      {
        ALT: () => {
          this.CONSUME(T.LParen);
          const names = this.SUBRULE(this.bareNameList);
          this.CONSUME(T.RParen);
          return names;
        },
      },
      { ALT: () => this.SUBRULE2(this.bareNameList) },
    ]),
  );

  protected bareNameList = this.RULE('bareNameList', (): Name[] => {
    const names: Name[] = [];
    this.AT_LEAST_ONE_SEP({
      SEP: T.Comma,
      DEF: () => {
        const n = this.SUBRULE(this.name);
        this.ACTION(() => names.push(n));
      },
    });
    return names;
  });

  /** A name: identifier (folded to lower case), "quoted identifier" or 'string literal' (exact). */
  private readonly nameAlts: IOrAlt<IToken>[] = [
    { ALT: () => this.CONSUME(T.Identifier) },
    { ALT: () => this.CONSUME(T.QuotedIdentifier) },
    { ALT: () => this.CONSUME(T.StringLiteral) },
    { ALT: () => this.CONSUME(T.EscapeString) },
    { ALT: () => this.CONSUME(T.DollarString) },
    { ALT: () => this.CONSUME(T.NonReserved) },
  ];

  protected name = this.RULE('name', (): Name => {
    const t = this.OR(this.nameAlts);
    return { value: this.ACTION(() => tokenName(t)) as string, position: this.pos(t) };
  });

  /**
   * A database name: any name, or `default` unquoted. DEFAULT is a reserved word (SET SESSION
   * AUTHORIZATION DEFAULT), but every tenant's own database is called `default`.
   */
  protected databaseName = this.RULE('databaseName', (): Name =>
    this.OR([
      { ALT: () => this.SUBRULE(this.name) },
      {
        ALT: (): Name => {
          const t = this.CONSUME(T.Default);
          return { value: 'default', position: this.pos(t) };
        },
      },
    ]),
  );

  /** A list of database names, with or without parentheses. */
  protected databaseNameList = this.RULE('databaseNameList', (): Name[] =>
    this.OR([
      {
        ALT: () => {
          this.CONSUME(T.LParen);
          const names = this.SUBRULE(this.bareDatabaseNameList);
          this.CONSUME(T.RParen);
          return names;
        },
      },
      { ALT: () => this.SUBRULE2(this.bareDatabaseNameList) },
    ]),
  );

  private bareDatabaseNameList = this.RULE('bareDatabaseNameList', (): Name[] => {
    const names: Name[] = [];
    this.AT_LEAST_ONE_SEP({
      SEP: T.Comma,
      DEF: () => {
        const n = this.SUBRULE(this.databaseName);
        this.ACTION(() => names.push(n));
      },
    });
    return names;
  });

  protected dottedName = this.RULE('dottedName', (): string => {
    const parts: string[] = [this.SUBRULE(this.name).value];
    this.MANY(() => {
      this.CONSUME(T.Dot);
      const p = this.SUBRULE2(this.name).value;
      this.ACTION(() => parts.push(p));
    });
    return parts.join('.');
  });

  private readonly stringAlts: IOrAlt<IToken>[] = [
    { ALT: () => this.CONSUME(T.StringLiteral) },
    { ALT: () => this.CONSUME(T.EscapeString) },
    { ALT: () => this.CONSUME(T.DollarString) },
  ];

  protected string = this.RULE('string', (): string => {
    const t = this.OR(this.stringAlts);
    return this.ACTION(() => unquoteString(t.image)) as string;
  });

  /** A string value position: a literal or a bound parameter. */
  protected stringValue = this.RULE('stringValue', (): Value =>
    this.OR([
      {
        ALT: (): Value => {
          const t = this.LA(1);
          return { kind: 'string', value: this.SUBRULE(this.string), position: this.pos(t) };
        },
      },
      { ALT: (): Value => this.SUBRULE(this.param) },
    ]),
  );

  /**
   * A timestamp value position: a string or `$n`, optionally cast to a date/time type, which
   * is how psycopg2 (and SQLAlchemy over it) writes a bound datetime: '2099-01-02T03:04:05+00:00'::timestamptz.
   * The cast changes nothing: the position reads the text as a timestamptz either way.
   */
  protected timestampValue = this.RULE('timestampValue', (): Value => {
    const value = this.SUBRULE(this.stringValue);
    this.OPTION(() => {
      this.CONSUME(T.DoubleColon);
      const type = this.SUBRULE(this.name);
      this.ACTION(() => {
        if (!TIMESTAMP_TYPES.has(type.value)) {
          throw new PgError('syntax_error', `syntax error at or near "${type.value}"`, {
            position: type.position,
            hint: 'A timestamp may be cast to timestamptz, timestamp, date or text here.',
          });
        }
      });
    });
    return value;
  });

  protected integerValue = this.RULE('integerValue', (): Value =>
    this.OR([
      {
        ALT: (): Value => {
          const first = this.LA(1);
          let sign = '';
          this.OPTION(() => (this.CONSUME(T.Minus), (sign = '-')));
          const n = this.CONSUME(T.Number_);
          return { kind: 'number', value: sign + n.image, position: this.pos(first) };
        },
      },
      { ALT: (): Value => this.SUBRULE(this.param) },
    ]),
  );

  protected literal = this.RULE('literal', (): Value =>
    this.OR([
      { ALT: (): Value => this.SUBRULE(this.stringValue) },
      {
        ALT: (): Value => {
          const first = this.LA(1);
          let sign = '';
          this.OPTION(() => (this.CONSUME(T.Minus), (sign = '-')));
          return { kind: 'number', value: sign + this.CONSUME(T.Number_).image, position: this.pos(first) };
        },
      },
      { ALT: (): Value => ({ kind: 'boolean', value: true, position: this.pos(this.CONSUME(T.True)) }) },
      { ALT: (): Value => ({ kind: 'boolean', value: false, position: this.pos(this.CONSUME(T.False)) }) },
      { ALT: (): Value => ({ kind: 'null', position: this.pos(this.CONSUME(T.Null)) }) },
    ]),
  );

  protected param = this.RULE('param', (): Value => {
    const t = this.CONSUME(T.Param);
    const index = Number(t.image.slice(1));
    this.ACTION(() => {
      if (index > this.maxParam) this.maxParam = index;
    });
    return { kind: 'param', index, position: this.pos(t) };
  });


  /** A tenant by id or by name (`default`, tenant 1's name, unquoted too). */
  protected tenantRef = this.RULE('tenantRef', (): TenantRef =>
    this.OR([
      {
        ALT: () => {
          const t = this.CONSUME(T.Number_);
          return { id: t.image, position: this.pos(t) };
        },
      },
      { ALT: () => this.SUBRULE(this.databaseName) },
    ]),
  );

  /** `( key = value [, ...] )`: OIDC provider options and IMPORT clauses. */
  protected keyValueList = this.RULE('keyValueList', (): { key: Name; value: Value }[] => {
    const out: { key: Name; value: Value }[] = [];
    this.CONSUME(T.LParen);
    this.AT_LEAST_ONE_SEP({
      SEP: T.Comma,
      DEF: () => {
        const key = this.SUBRULE(this.name);
        this.CONSUME(T.Equals);
        const value = this.SUBRULE(this.literal);
        this.ACTION(() => out.push({ key, value }));
      },
    });
    this.CONSUME(T.RParen);
    return out;
  });

  protected pos(t: IToken): number {
    return this.positionOf(t.startOffset);
  }
}

/** The types a timestamp value may be cast to (psycopg2 writes these for datetime and date). */
const TIMESTAMP_TYPES = new Set(['timestamptz', 'timestamp', 'date', 'text']);

export function identifierValue(t: IToken): string {
  return t.image.toLowerCase();
}

/** Folds a name token the PostgreSQL way. */
function tokenName(t: IToken): string {
  const type: TokenType = t.tokenType;
  if (type === T.QuotedIdentifier) return unquoteIdentifier(t.image);
  if (type === T.StringLiteral || type === T.EscapeString || type === T.DollarString) return unquoteString(t.image);
  return t.image.toLowerCase();
}
