import type { IOrAlt, IToken } from 'chevrotain';
import * as T from './tokens.js';
import type { AdminCommand, ImportItem, Statement } from './ast.js';
import { SessionRules } from './rules/session.js';

/**
 * The one parser of the admin language. Embedded actions build the AST while parsing (no
 * CST pass): the AST is the only consumer. Statement families live in rules/, one class
 * per family, chained by inheritance; this class adds the statement and the top-level
 * dispatch by first keyword. Built once at module load (self-analysis throws on any
 * ambiguity); `parse` in index.ts resets its input for every call.
 */
export class AdminParser extends SessionRules {
  constructor() {
    super();
    this.performSelfAnalysis();
  }

  /** The next token not yet consumed: where a parse cut short (a stack overflow) had got to. */
  nextToken(): IToken {
    return this.LA(1);
  }

  // ---- one statement and its semicolon (index.ts feeds the script a statement at a time)

  oneStatement = this.RULE('oneStatement', (): Statement | null => {
    let out: Statement | null = null;
    this.maxParam = 0;
    this.OPTION(() => {
      const first = this.LA(1);
      const command = this.SUBRULE(this.statement);
      let imports: ImportItem[] | null = null;
      this.OPTION3(() => {
        imports = this.SUBRULE(this.importClause);
      });
      // The statement ends where the next token (";" or the end of input, offset NaN) begins.
      const next = this.LA(1).startOffset;
      this.ACTION(() => {
        out = { command, imports, start: first.startOffset, end: Number.isNaN(next) ? -1 : next, paramCount: this.maxParam };
      });
    });
    this.OPTION2(() => this.CONSUME(T.Semicolon));
    return out;
  });

  /** `IMPORT (key = value, ...)`: values are literals (strings, numbers, NULL). */
  private importClause = this.RULE('importClause', (): ImportItem[] => {
    this.CONSUME(T.Import);
    return this.SUBRULE(this.keyValueList);
  });

  private readonly statementAlts: IOrAlt<AdminCommand>[] = [
      { ALT: () => this.SUBRULE(this.createStmt) },
      { ALT: () => this.SUBRULE(this.alterStmt) },
      { ALT: () => this.SUBRULE(this.dropStmt) },
      { ALT: () => this.SUBRULE(this.showStmt) },
      { ALT: () => this.SUBRULE(this.selectStmt) },
      { ALT: () => this.SUBRULE(this.transactionStmt) },
      { ALT: () => this.SUBRULE(this.setStmt) },
      { ALT: () => this.SUBRULE(this.resetStmt) },
      { ALT: () => this.SUBRULE(this.grantStmt) },
      { ALT: () => this.SUBRULE(this.revokeStmt) },
      { ALT: () => this.SUBRULE(this.explainStmt) },
      { ALT: () => this.SUBRULE(this.dumpStmt) },
      { ALT: () => this.SUBRULE(this.housekeepingStmt) },
    ];

  private statement = this.RULE('statement', (): AdminCommand =>
    this.OR(this.statementAlts),
  );

  private dumpStmt = this.RULE('dumpStmt', (): AdminCommand => {
    this.CONSUME(T.Dump);
    this.CONSUME(T.Catalog);
    return { type: 'DumpCatalog' };
  });

  private readonly createStmtAlts: IOrAlt<AdminCommand>[] = [
      { ALT: () => this.SUBRULE(this.createUser) },
      { ALT: () => this.SUBRULE(this.createTenant) },
      { ALT: () => this.SUBRULE(this.createDatabase) },
      { ALT: () => this.SUBRULE(this.createRole) },
      { ALT: () => this.SUBRULE(this.createApiKey) },
      { ALT: () => this.SUBRULE(this.createServiceAccount) },
      { ALT: () => this.SUBRULE(this.createOidcProvider) },
      { ALT: () => this.SUBRULE(this.createRlsPolicy) },
      { ALT: () => this.SUBRULE(this.createToken) },
    ];

  private createStmt = this.RULE('createStmt', (): AdminCommand => {
    this.CONSUME(T.Create);
    return this.OR(this.createStmtAlts);
  });

  private readonly alterStmtAlts: IOrAlt<AdminCommand>[] = [
      { ALT: () => this.SUBRULE(this.alterUser) },
      { ALT: () => this.SUBRULE(this.alterApiKey) },
      { ALT: () => this.SUBRULE(this.alterServiceAccount) },
      { ALT: () => this.SUBRULE(this.alterOidcProvider) },
      { ALT: () => this.SUBRULE(this.alterTokenIssuer) },
    ];

  private alterStmt = this.RULE('alterStmt', (): AdminCommand => {
    this.CONSUME(T.Alter);
    return this.OR(this.alterStmtAlts);
  });

  private readonly dropStmtAlts: IOrAlt<AdminCommand>[] = [
      { ALT: () => this.SUBRULE(this.dropUser) },
      { ALT: () => this.SUBRULE(this.dropTenant) },
      { ALT: () => this.SUBRULE(this.dropDatabase) },
      { ALT: () => this.SUBRULE(this.dropRole) },
      { ALT: () => this.SUBRULE(this.dropApiKey) },
      { ALT: () => this.SUBRULE(this.dropServiceAccount) },
      { ALT: () => this.SUBRULE(this.dropOidcProvider) },
      { ALT: () => this.SUBRULE(this.dropRlsPolicy) },
    ];

  private dropStmt = this.RULE('dropStmt', (): AdminCommand => {
    this.CONSUME(T.Drop);
    return this.OR(this.dropStmtAlts);
  });
}

export const parser = new AdminParser();
