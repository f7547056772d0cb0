import * as T from './tokens.js';
import type { AdminCommand, Statement } from './ast.js';
import { SessionRules } from './rules/session.js';

/**
 * The one parser of the admin language. Embedded actions build the AST while parsing (no
 * CST pass): the AST is the only consumer. Statement families live in rules/, one class
 * per family, chained by inheritance; this class adds the script and the top-level
 * dispatch by first keyword. Built once at module load (self-analysis throws on any
 * ambiguity); `parse` in index.ts resets its input for every call.
 */
export class AdminParser extends SessionRules {
  constructor() {
    super();
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
      { ALT: () => this.SUBRULE(this.grantStmt) },
      { ALT: () => this.SUBRULE(this.revokeStmt) },
      { ALT: () => this.SUBRULE(this.explainStmt) },
    ]),
  );

  private createStmt = this.RULE('createStmt', (): AdminCommand => {
    this.CONSUME(T.Create);
    return this.OR([
      { ALT: () => this.SUBRULE(this.createUser) },
      { ALT: () => this.SUBRULE(this.createTenant) },
      { ALT: () => this.SUBRULE(this.createDatabase) },
      { ALT: () => this.SUBRULE(this.createRole) },
      { ALT: () => this.SUBRULE(this.createApiKey) },
      { ALT: () => this.SUBRULE(this.createServiceAccount) },
      { ALT: () => this.SUBRULE(this.createOidcProvider) },
      { ALT: () => this.SUBRULE(this.createRlsPolicy) },
    ]);
  });

  private alterStmt = this.RULE('alterStmt', (): AdminCommand => {
    this.CONSUME(T.Alter);
    return this.OR([
      { ALT: () => this.SUBRULE(this.alterUser) },
      { ALT: () => this.SUBRULE(this.alterApiKey) },
      { ALT: () => this.SUBRULE(this.alterServiceAccount) },
      { ALT: () => this.SUBRULE(this.alterOidcProvider) },
    ]);
  });

  private dropStmt = this.RULE('dropStmt', (): AdminCommand => {
    this.CONSUME(T.Drop);
    return this.OR([
      { ALT: () => this.SUBRULE(this.dropUser) },
      { ALT: () => this.SUBRULE(this.dropTenant) },
      { ALT: () => this.SUBRULE(this.dropDatabase) },
      { ALT: () => this.SUBRULE(this.dropRole) },
      { ALT: () => this.SUBRULE(this.dropApiKey) },
      { ALT: () => this.SUBRULE(this.dropServiceAccount) },
      { ALT: () => this.SUBRULE(this.dropOidcProvider) },
      { ALT: () => this.SUBRULE(this.dropRlsPolicy) },
    ]);
  });
}

export const parser = new AdminParser();
