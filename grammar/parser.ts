import { EmbeddedActionsParser, type IToken, type TokenType } from 'chevrotain';
import * as T from './tokens.js';
import type { AdminCommand, Expr, Name, SelectItem, Statement, UserOption, UserRef, Value } from './ast.js';
import { unquoteIdentifier, unquoteString } from './literals.js';

/**
 * The one parser of the admin language. Embedded actions build the AST directly while
 * parsing (no CST pass): the grammar is small and the AST is the only consumer.
 * Built once at module load; `parse` resets its input for every call.
 */
export class AdminParser extends EmbeddedActionsParser {
  /** Maps a 0-based code-unit offset to PostgreSQL's 1-based character position. */
  positionOf: (offset: number) => number = (o) => o + 1;
  private maxParam = 0;

  constructor() {
    super(T.allTokens, { maxLookahead: 4 });
    this.performSelfAnalysis();
  }

  // ---- script: statements separated by semicolons --------------------------------

  script = this.RULE('script', (): Statement[] => {
    const out: Statement[] = [];
    const one = (again: boolean) => {
      this.maxParam = 0;
      const first = this.LA(1);
      const command = again ? this.SUBRULE2(this.statement) : this.SUBRULE(this.statement);
      // The statement ends where the next token (";" or the end of input, offset NaN) begins.
      const next = this.LA(1).startOffset;
      this.ACTION(() => out.push({ command, start: first.startOffset, end: Number.isNaN(next) ? -1 : next, paramCount: this.maxParam }));
    };
    this.OPTION(() => one(false));
    this.MANY(() => {
      this.CONSUME(T.Semicolon);
      this.OPTION2(() => one(true));
    });
    return out;
  });

  private statement = this.RULE('statement', (): AdminCommand =>
    this.OR([
      { ALT: () => this.SUBRULE(this.createStmt) },
      { ALT: () => this.SUBRULE(this.alterStmt) },
      { ALT: () => this.SUBRULE(this.dropStmt) },
      { ALT: () => this.SUBRULE(this.showStmt) },
      { ALT: () => this.SUBRULE(this.selectStmt) },
      { ALT: () => this.SUBRULE(this.transactionStmt) },
      { ALT: () => this.SUBRULE(this.setStmt) },
      { ALT: () => this.SUBRULE(this.resetStmt) },
    ]),
  );

  // ---- users ------------------------------------------------------------------------

  private createStmt = this.RULE('createStmt', (): AdminCommand => {
    this.CONSUME(T.Create);
    return this.OR([{ ALT: () => this.SUBRULE(this.createUser) }]);
  });

  private createUser = this.RULE('createUser', (): AdminCommand => {
    this.CONSUME(T.User);
    const ifNotExists = this.SUBRULE(this.ifNotExists);
    const name = this.SUBRULE(this.name);
    this.OPTION(() => this.CONSUME(T.With));
    const options: UserOption[] = [];
    this.MANY(() => {
      const o = this.SUBRULE(this.userOption);
      this.ACTION(() => options.push(o));
    });
    return { type: 'CreateUser', name, ifNotExists, options };
  });

  private alterStmt = this.RULE('alterStmt', (): AdminCommand => {
    this.CONSUME(T.Alter);
    return this.OR([{ ALT: () => this.SUBRULE(this.alterUser) }]);
  });

  private alterUser = this.RULE('alterUser', (): AdminCommand => {
    this.CONSUME(T.User);
    const user = this.SUBRULE(this.userRef);
    return this.OR([
      {
        ALT: (): AdminCommand => {
          this.CONSUME(T.Rename);
          this.CONSUME(T.To);
          return { type: 'RenameUser', user, newName: this.SUBRULE(this.name) };
        },
      },
      {
        ALT: (): AdminCommand => {
          this.CONSUME(T.Unlock);
          return { type: 'UnlockUser', user };
        },
      },
      {
        ALT: (): AdminCommand => {
          this.OPTION(() => this.CONSUME(T.With));
          const options: UserOption[] = [];
          this.AT_LEAST_ONE(() => {
            const o = this.SUBRULE(this.userOption);
            this.ACTION(() => options.push(o));
          });
          return { type: 'AlterUser', user, options };
        },
      },
    ]);
  });

  private userRef = this.RULE('userRef', (): UserRef =>
    this.OR([
      { ALT: (): UserRef => ({ kind: 'currentUser', position: this.pos(this.CONSUME(T.CurrentUser)) }) },
      { ALT: (): UserRef => ({ kind: 'name', name: this.SUBRULE(this.name) }) },
    ]),
  );

  private userOption = this.RULE('userOption', (): UserOption =>
    this.OR([
      {
        ALT: (): UserOption => {
          this.CONSUME(T.Password);
          const value = this.OR2([
            { ALT: () => this.SUBRULE(this.stringValue) },
            { ALT: (): Value => ({ kind: 'null', position: this.pos(this.CONSUME(T.Null)) }) },
          ]);
          return { kind: 'password', value };
        },
      },
      {
        ALT: (): UserOption => {
          this.CONSUME(T.Role);
          return { kind: 'role', role: this.SUBRULE2(this.name) };
        },
      },
      {
        ALT: (): UserOption => {
          this.CONSUME(T.Tenant);
          const tenant = this.OR3([
            {
              ALT: () => {
                const t = this.CONSUME(T.Number_);
                return { id: t.image, position: this.pos(t) };
              },
            },
            { ALT: () => this.SUBRULE3(this.name) },
          ]);
          return { kind: 'tenant', tenant };
        },
      },
      {
        ALT: (): UserOption => {
          this.CONSUME(T.Valid);
          this.CONSUME(T.Until);
          return { kind: 'validUntil', value: this.SUBRULE2(this.stringValue) };
        },
      },
      {
        ALT: (): UserOption => {
          this.CONSUME(T.Connection);
          this.CONSUME(T.Limit);
          return { kind: 'connectionLimit', value: this.SUBRULE(this.integerValue) };
        },
      },
      { ALT: (): UserOption => ({ kind: 'login', value: true, position: this.pos(this.CONSUME(T.Login)) }) },
      { ALT: (): UserOption => ({ kind: 'login', value: false, position: this.pos(this.CONSUME(T.NoLogin)) }) },
      {
        ALT: (): UserOption => {
          this.CONSUME(T.Certificate);
          this.CONSUME(T.Subject);
          return { kind: 'certificateSubject', value: this.SUBRULE3(this.stringValue) };
        },
      },
    ]),
  );

  private dropStmt = this.RULE('dropStmt', (): AdminCommand => {
    this.CONSUME(T.Drop);
    return this.OR([{ ALT: () => this.SUBRULE(this.dropUser) }]);
  });

  private dropUser = this.RULE('dropUser', (): AdminCommand => {
    this.CONSUME(T.User);
    const ifExists = this.SUBRULE(this.ifExists);
    const names = this.SUBRULE(this.nameList);
    const cascade = this.SUBRULE(this.dropBehavior);
    return { type: 'DropUser', names, ifExists, cascade };
  });

  // ---- SHOW, SELECT -----------------------------------------------------------------

  private showStmt = this.RULE('showStmt', (): AdminCommand => {
    const show = this.CONSUME(T.Show);
    const position = this.pos(show);
    return this.OR([
      {
        ALT: (): AdminCommand => {
          this.CONSUME(T.Transaction);
          this.CONSUME(T.Isolation);
          this.CONSUME(T.Level);
          return { type: 'ShowVariable', name: 'transaction_isolation', position };
        },
      },
      {
        ALT: (): AdminCommand => {
          this.CONSUME(T.Time);
          this.CONSUME(T.Zone);
          return { type: 'ShowVariable', name: 'timezone', position };
        },
      },
      {
        ALT: (): AdminCommand => {
          this.CONSUME(T.Session);
          this.CONSUME(T.Authorization);
          return { type: 'ShowVariable', name: 'session_authorization', position };
        },
      },
      {
        ALT: (): AdminCommand => {
          this.CONSUME(T.All);
          return { type: 'ShowVariable', name: 'all', position };
        },
      },
      {
        ALT: (): AdminCommand => {
          // SHOW USERS and SHOW AUTH are keywords, but also valid setting names: one rule, decided here.
          const t = this.LA(1);
          const name = this.SUBRULE(this.dottedName);
          return this.ACTION((): AdminCommand => {
            const quoted = t.tokenType === T.QuotedIdentifier;
            if (!quoted && name === 'users') return { type: 'ShowUsers' };
            if (!quoted && name === 'auth') return { type: 'ShowAuth' };
            return { type: 'ShowVariable', name, position };
          }) as AdminCommand;
        },
      },
    ]);
  });

  private selectStmt = this.RULE('selectStmt', (): AdminCommand => {
    this.CONSUME(T.Select);
    const items: SelectItem[] = [];
    this.AT_LEAST_ONE_SEP({
      SEP: T.Comma,
      DEF: () => {
        const item = this.SUBRULE(this.selectItem);
        this.ACTION(() => items.push(item));
      },
    });
    let from: Name | null = null;
    this.OPTION(() => {
      this.CONSUME(T.From);
      const t = this.LA(1);
      const n = this.SUBRULE(this.dottedName);
      from = { value: n, position: this.pos(t) };
    });
    return { type: 'Select', items, from };
  });

  private selectItem = this.RULE('selectItem', (): SelectItem => {
    const expr = this.SUBRULE(this.expr);
    let alias: string | null = null;
    this.OPTION(() => {
      alias = this.OR([
        {
          ALT: () => {
            this.CONSUME(T.As);
            return this.SUBRULE(this.name).value;
          },
        },
        { ALT: () => identifierValue(this.CONSUME(T.Identifier)) },
        { ALT: () => unquoteIdentifier(this.CONSUME(T.QuotedIdentifier).image) },
      ]);
    });
    return { expr, alias };
  });

  private expr = this.RULE('expr', (): Expr => {
    let e = this.SUBRULE(this.primary);
    this.MANY(() => {
      const c = this.CONSUME(T.DoubleColon);
      const type = this.SUBRULE(this.name).value;
      e = { kind: 'cast', expr: e, type, position: this.pos(c) };
    });
    return e;
  });

  private primary = this.RULE('primary', (): Expr =>
    this.OR([
      { ALT: (): Expr => ({ kind: 'value', value: this.SUBRULE(this.literal) }) },
      {
        ALT: (): Expr => {
          const t = this.CONSUME(T.AuthRef);
          return { kind: 'auth', path: t.image.split('.').slice(1).map((s) => s.toLowerCase()), position: this.pos(t) };
        },
      },
      { ALT: (): Expr => ({ kind: 'function', name: 'current_user', call: false, position: this.pos(this.CONSUME(T.CurrentUser)) }) },
      { ALT: (): Expr => ({ kind: 'function', name: 'session_user', call: false, position: this.pos(this.CONSUME(T.SessionUser)) }) },
      {
        ALT: (): Expr => {
          const t = this.CONSUME(T.Identifier);
          this.CONSUME(T.LParen);
          this.CONSUME(T.RParen);
          return { kind: 'function', name: identifierValue(t), call: true, position: this.pos(t) };
        },
      },
      {
        ALT: (): Expr => {
          this.CONSUME2(T.LParen);
          const e = this.SUBRULE(this.expr);
          this.CONSUME2(T.RParen);
          return e;
        },
      },
    ]),
  );

  // ---- transactions -----------------------------------------------------------------

  private transactionStmt = this.RULE('transactionStmt', (): AdminCommand =>
    this.OR([
      {
        ALT: (): AdminCommand => {
          this.CONSUME(T.Begin);
          this.OPTION(() => this.SUBRULE(this.workOrTransaction));
          this.OPTION2(() => this.SUBRULE(this.transactionModes));
          return { type: 'Transaction', action: 'begin', keyword: 'BEGIN' };
        },
      },
      {
        ALT: (): AdminCommand => {
          this.CONSUME(T.Start);
          this.CONSUME(T.Transaction);
          this.OPTION3(() => this.SUBRULE2(this.transactionModes));
          return { type: 'Transaction', action: 'begin', keyword: 'START TRANSACTION' };
        },
      },
      {
        ALT: (): AdminCommand => {
          this.OR2([{ ALT: () => this.CONSUME(T.Commit) }, { ALT: () => this.CONSUME(T.End) }]);
          this.OPTION4(() => this.SUBRULE2(this.workOrTransaction));
          return { type: 'Transaction', action: 'commit', keyword: 'COMMIT' };
        },
      },
      {
        ALT: (): AdminCommand => {
          this.OR3([{ ALT: () => this.CONSUME(T.Rollback) }, { ALT: () => this.CONSUME(T.Abort) }]);
          this.OPTION5(() => this.SUBRULE3(this.workOrTransaction));
          return { type: 'Transaction', action: 'rollback', keyword: 'ROLLBACK' };
        },
      },
    ]),
  );

  private workOrTransaction = this.RULE('workOrTransaction', () => {
    this.OR([{ ALT: () => this.CONSUME(T.Work) }, { ALT: () => this.CONSUME(T.Transaction) }]);
  });

  /** Accepted for compatibility: the catalog's transactions are always serializable. */
  private transactionModes = this.RULE('transactionModes', () => {
    this.SUBRULE(this.transactionMode);
    this.MANY(() => {
      this.OPTION(() => this.CONSUME(T.Comma));
      this.SUBRULE2(this.transactionMode);
    });
  });

  private transactionMode = this.RULE('transactionMode', () => {
    this.OR([
      {
        ALT: () => {
          this.CONSUME(T.Isolation);
          this.CONSUME(T.Level);
          this.OR2([
            { ALT: () => this.CONSUME(T.Serializable) },
            {
              ALT: () => {
                this.CONSUME(T.Repeatable);
                this.CONSUME(T.Read);
              },
            },
            {
              ALT: () => {
                this.CONSUME2(T.Read);
                this.OR3([{ ALT: () => this.CONSUME(T.Committed) }, { ALT: () => this.CONSUME(T.Uncommitted) }]);
              },
            },
          ]);
        },
      },
      {
        ALT: () => {
          this.CONSUME3(T.Read);
          this.OR4([{ ALT: () => this.CONSUME(T.Write) }, { ALT: () => this.CONSUME(T.Only) }]);
        },
      },
      {
        ALT: () => {
          this.OPTION(() => this.CONSUME(T.Not));
          this.CONSUME(T.Deferrable);
        },
      },
    ]);
  });

  // ---- SET / RESET of session settings ----------------------------------------------

  private setStmt = this.RULE('setStmt', (): AdminCommand => {
    const set = this.CONSUME(T.Set);
    const position = this.pos(set);
    return this.OR([
      {
        ALT: (): AdminCommand => {
          this.CONSUME(T.Local);
          return this.SUBRULE(this.setBody, { ARGS: [true, position] });
        },
      },
      {
        ALT: (): AdminCommand => {
          this.CONSUME(T.Session);
          this.CONSUME(T.Characteristics);
          this.CONSUME(T.As);
          this.CONSUME(T.Transaction);
          this.SUBRULE(this.transactionModes);
          return { type: 'SetTransactionMode' };
        },
      },
      {
        ALT: (): AdminCommand => {
          this.CONSUME2(T.Session);
          return this.SUBRULE2(this.setBody, { ARGS: [false, position] });
        },
      },
      {
        ALT: (): AdminCommand => {
          this.CONSUME2(T.Transaction);
          this.SUBRULE2(this.transactionModes);
          return { type: 'SetTransactionMode' };
        },
      },
      { ALT: (): AdminCommand => this.SUBRULE3(this.setBody, { ARGS: [false, position] }) },
    ]);
  });

  private setBody = this.RULE('setBody', (local: boolean, position: number): AdminCommand =>
    this.OR([
      {
        ALT: (): AdminCommand => {
          this.CONSUME(T.Time);
          this.CONSUME(T.Zone);
          const value = this.OR2([
            // LOCAL lexes as a name here: SET TIME ZONE LOCAL is the default zone.
            { ALT: () => nullIfLocal(this.SUBRULE(this.settingValue)) },
            {
              ALT: () => {
                this.CONSUME(T.Default);
                return null;
              },
            },
          ]);
          return { type: 'SetVariable', name: 'timezone', value, local, position };
        },
      },
      {
        ALT: (): AdminCommand => {
          this.CONSUME(T.Names);
          const value = this.SUBRULE2(this.settingValue);
          return { type: 'SetVariable', name: 'client_encoding', value, local, position };
        },
      },
      {
        ALT: (): AdminCommand => {
          const name = this.SUBRULE(this.dottedName);
          this.OR3([{ ALT: () => this.CONSUME(T.To) }, { ALT: () => this.CONSUME(T.Equals) }]);
          const value = this.OR4([
            {
              ALT: () => {
                this.CONSUME2(T.Default);
                return null;
              },
            },
            {
              ALT: () => {
                const values: string[] = [];
                this.AT_LEAST_ONE_SEP({
                  SEP: T.Comma,
                  DEF: () => {
                    const v = this.SUBRULE3(this.settingValue);
                    this.ACTION(() => values.push(v));
                  },
                });
                return values.join(', ');
              },
            },
          ]);
          return { type: 'SetVariable', name, value, local, position };
        },
      },
    ]),
  );

  private settingValue = this.RULE('settingValue', (): string =>
    this.OR([
      { ALT: () => this.SUBRULE(this.string) },
      {
        ALT: () => {
          let sign = '';
          this.OPTION(() => {
            sign = this.OR2([
              { ALT: () => (this.CONSUME(T.Minus), '-') },
              { ALT: () => (this.CONSUME(T.Plus), '') },
            ]);
          });
          return sign + this.CONSUME(T.Number_).image;
        },
      },
      { ALT: () => (this.CONSUME(T.True), 'true') },
      { ALT: () => (this.CONSUME(T.False), 'false') },
      { ALT: () => identifierValue(this.CONSUME(T.Identifier)) },
      { ALT: () => identifierValue(this.CONSUME(T.NonReserved)) },
      { ALT: () => unquoteIdentifier(this.CONSUME(T.QuotedIdentifier).image) },
    ]),
  );

  private resetStmt = this.RULE('resetStmt', (): AdminCommand => {
    const position = this.pos(this.CONSUME(T.Reset));
    return this.OR([
      { ALT: (): AdminCommand => (this.CONSUME(T.All), { type: 'ResetVariable', name: null, position }) },
      {
        ALT: (): AdminCommand => {
          this.CONSUME(T.Time);
          this.CONSUME(T.Zone);
          return { type: 'ResetVariable', name: 'timezone', position };
        },
      },
      {
        ALT: (): AdminCommand => {
          this.CONSUME(T.Transaction);
          this.CONSUME(T.Isolation);
          this.CONSUME(T.Level);
          return { type: 'ResetVariable', name: 'transaction_isolation', position };
        },
      },
      { ALT: (): AdminCommand => ({ type: 'ResetVariable', name: this.SUBRULE(this.dottedName), position }) },
    ]);
  });

  // ---- shared pieces ----------------------------------------------------------------

  private ifNotExists = this.RULE('ifNotExists', (): boolean => {
    let present = false;
    this.OPTION(() => {
      this.CONSUME(T.If);
      this.CONSUME(T.Not);
      this.CONSUME(T.Exists);
      present = true;
    });
    return present;
  });

  private ifExists = this.RULE('ifExists', (): boolean => {
    let present = false;
    this.OPTION(() => {
      this.CONSUME(T.If);
      this.CONSUME(T.Exists);
      present = true;
    });
    return present;
  });

  private dropBehavior = this.RULE('dropBehavior', (): boolean => {
    let cascade = false;
    this.OPTION(() => {
      this.OR([
        { ALT: () => (this.CONSUME(T.Cascade), (cascade = true)) },
        { ALT: () => this.CONSUME(T.Restrict) },
      ]);
    });
    return cascade;
  });

  /** A list of names, with or without parentheses (SPEC §3). */
  private nameList = this.RULE('nameList', (): Name[] =>
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

  private bareNameList = this.RULE('bareNameList', (): Name[] => {
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
  private name = this.RULE('name', (): Name => {
    const t = this.OR([
      { ALT: () => this.CONSUME(T.Identifier) },
      { ALT: () => this.CONSUME(T.QuotedIdentifier) },
      { ALT: () => this.CONSUME(T.StringLiteral) },
      { ALT: () => this.CONSUME(T.EscapeString) },
      { ALT: () => this.CONSUME(T.DollarString) },
      { ALT: () => this.CONSUME(T.NonReserved) },
    ]);
    return { value: this.ACTION(() => tokenName(t)) as string, position: this.pos(t) };
  });

  private dottedName = this.RULE('dottedName', (): string => {
    const parts: string[] = [this.SUBRULE(this.name).value];
    this.MANY(() => {
      this.CONSUME(T.Dot);
      const p = this.SUBRULE2(this.name).value;
      this.ACTION(() => parts.push(p));
    });
    return parts.join('.');
  });

  private string = this.RULE('string', (): string => {
    const t = this.OR([
      { ALT: () => this.CONSUME(T.StringLiteral) },
      { ALT: () => this.CONSUME(T.EscapeString) },
      { ALT: () => this.CONSUME(T.DollarString) },
    ]);
    return this.ACTION(() => unquoteString(t.image)) as string;
  });

  /** A string value position: a literal or a bound parameter. */
  private stringValue = this.RULE('stringValue', (): Value =>
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

  private integerValue = this.RULE('integerValue', (): Value =>
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

  private literal = this.RULE('literal', (): Value =>
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

  private param = this.RULE('param', (): Value => {
    const t = this.CONSUME(T.Param);
    const index = Number(t.image.slice(1));
    this.ACTION(() => {
      if (index > this.maxParam) this.maxParam = index;
    });
    return { kind: 'param', index, position: this.pos(t) };
  });

  private pos(t: IToken): number {
    return this.positionOf(t.startOffset);
  }
}

function nullIfLocal(v: string): string | null {
  return v === 'local' ? null : v;
}

function identifierValue(t: IToken): string {
  return t.image.toLowerCase();
}

/** Folds a name token the PostgreSQL way. */
function tokenName(t: IToken): string {
  const type: TokenType = t.tokenType;
  if (type === T.QuotedIdentifier) return unquoteIdentifier(t.image);
  if (type === T.StringLiteral || type === T.EscapeString || type === T.DollarString) return unquoteString(t.image);
  return t.image.toLowerCase();
}

export const parser = new AdminParser();
