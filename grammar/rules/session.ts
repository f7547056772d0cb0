import * as T from '../tokens.js';
import type { AdminCommand, CollectionRef, Expr, Name, SelectItem, Value } from '../ast.js';
import { unquoteIdentifier } from '../literals.js';
import { identifierValue } from './common.js';
import { IssuerRules } from './issuer.js';

/** The session's own statements: SHOW, SELECT, transactions, SET / RESET of settings. */
export class SessionRules extends IssuerRules {
  protected showStmt = this.RULE('showStmt', (): AdminCommand => {
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
          this.CONSUME(T.Grants);
          this.CONSUME(T.For);
          return { type: 'ShowGrants', grantee: this.SUBRULE(this.name) };
        },
      },
      {
        ALT: (): AdminCommand => {
          this.CONSUME(T.Audit);
          this.CONSUME(T.Log);
          let limit: Value | null = null;
          this.OPTION2(() => {
            this.CONSUME(T.Limit);
            limit = this.SUBRULE(this.integerValue);
          });
          return { type: 'ShowAuditLog', limit, position };
        },
      },
      {
        ALT: (): AdminCommand => {
          this.CONSUME(T.Rls);
          this.CONSUME(T.Policies);
          let on: CollectionRef | null = null;
          this.OPTION(() => {
            this.CONSUME(T.On);
            on = this.SUBRULE(this.collectionRef);
          });
          return { type: 'ShowRlsPolicies', on };
        },
      },
      {
        ALT: (): AdminCommand => {
          this.CONSUME(T.Oidc);
          this.CONSUME(T.Providers);
          return { type: 'ShowOidcProviders' };
        },
      },
      {
        ALT: (): AdminCommand => {
          this.CONSUME(T.Service);
          this.CONSUME(T.Accounts);
          return { type: 'ShowServiceAccounts' };
        },
      },
      {
        ALT: (): AdminCommand => {
          this.CONSUME(T.Token);
          this.CONSUME(T.Issuer);
          return { type: 'ShowTokenIssuer' };
        },
      },
      {
        ALT: (): AdminCommand => {
          // SHOW TOKENS alone is decided with the setting names below.
          this.CONSUME(T.Tokens);
          this.CONSUME2(T.For);
          return { type: 'ShowTokens', owner: this.SUBRULE2(this.name) };
        },
      },
      {
        ALT: (): AdminCommand => {
          this.CONSUME(T.Api);
          this.CONSUME(T.Keys);
          return { type: 'ShowApiKeys', owner: this.SUBRULE(this.keyOwner) };
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
            if (!quoted && name === 'tenants') return { type: 'ShowTenants' };
            if (!quoted && name === 'databases') return { type: 'ShowDatabases' };
            if (!quoted && name === 'roles') return { type: 'ShowRoles' };
            if (!quoted && name === 'grants') return { type: 'ShowGrants', grantee: null };
            if (!quoted && name === 'permissions') return { type: 'ShowPermissions' };
            if (!quoted && name === 'lockouts') return { type: 'ShowLockouts' };
            if (!quoted && name === 'pools') return { type: 'ShowPools' };
            if (!quoted && name === 'tokens') return { type: 'ShowTokens', owner: null };
            return { type: 'ShowVariable', name, position };
          }) as AdminCommand;
        },
      },
    ]);
  });

  protected selectStmt = this.RULE('selectStmt', (): AdminCommand => {
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

  protected selectItem = this.RULE('selectItem', (): SelectItem => {
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

  protected expr = this.RULE('expr', (): Expr => {
    let e = this.SUBRULE(this.primary);
    this.MANY(() => {
      const c = this.CONSUME(T.DoubleColon);
      const type = this.SUBRULE(this.name).value;
      e = { kind: 'cast', expr: e, type, position: this.pos(c) };
    });
    return e;
  });

  protected primary = this.RULE('primary', (): Expr =>
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
          let name = identifierValue(t);
          // pg_catalog.version(), as SQLAlchemy asks: built-in functions live in pg_catalog.
          this.OPTION(() => {
            this.CONSUME(T.Dot);
            const f = identifierValue(this.CONSUME2(T.Identifier));
            name = name === 'pg_catalog' ? f : `${name}.${f}`;
          });
          this.CONSUME(T.LParen);
          this.CONSUME(T.RParen);
          return { kind: 'function', name, call: true, position: this.pos(t) };
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

  protected transactionStmt = this.RULE('transactionStmt', (): AdminCommand =>
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

  protected workOrTransaction = this.RULE('workOrTransaction', () => {
    this.OR([{ ALT: () => this.CONSUME(T.Work) }, { ALT: () => this.CONSUME(T.Transaction) }]);
  });

  /** Accepted for compatibility: the catalog's transactions are always serializable. */
  protected transactionModes = this.RULE('transactionModes', () => {
    this.SUBRULE(this.transactionMode);
    this.MANY(() => {
      this.OPTION(() => this.CONSUME(T.Comma));
      this.SUBRULE2(this.transactionMode);
    });
  });

  protected transactionMode = this.RULE('transactionMode', () => {
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

  protected setStmt = this.RULE('setStmt', (): AdminCommand => {
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
          this.CONSUME3(T.Session);
          this.CONSUME(T.Authorization);
          return this.OR2([
            { ALT: (): AdminCommand => (this.CONSUME(T.Default), { type: 'SetSessionAuthorization', user: null }) },
            {
              ALT: (): AdminCommand => {
                this.CONSUME(T.Jwt);
                this.CONSUME(T.Provider);
                const provider = this.SUBRULE(this.name);
                this.CONSUME(T.Claims);
                return { type: 'SetSessionAuthorizationJwt', provider, claims: this.SUBRULE(this.stringValue) };
              },
            },
            {
              ALT: (): AdminCommand => {
                this.CONSUME(T.Api);
                this.CONSUME(T.Key);
                const name = this.SUBRULE3(this.name);
                return { type: 'SetSessionAuthorizationApiKey', name, owner: this.SUBRULE(this.keyOwner) };
              },
            },
            { ALT: (): AdminCommand => ({ type: 'SetSessionAuthorization', user: this.SUBRULE2(this.name) }) },
          ]);
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
      {
        // SET TENANT acme: no TO or `=`, which tells it from a setting of that name.
        ALT: (): AdminCommand => {
          this.CONSUME(T.Tenant);
          return { type: 'SetTenant', tenant: this.SUBRULE(this.tenantRef) };
        },
      },
      { ALT: (): AdminCommand => this.SUBRULE3(this.setBody, { ARGS: [false, position] }) },
    ]);
  });

  protected setBody = this.RULE('setBody', (local: boolean, position: number): AdminCommand =>
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

  protected settingValue = this.RULE('settingValue', (): string =>
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
      // ON is reserved (GRANT ... ON), but `SET x = on` is everyday PostgreSQL.
      { ALT: () => (this.CONSUME(T.On), 'on') },
      { ALT: () => identifierValue(this.CONSUME(T.Identifier)) },
      { ALT: () => identifierValue(this.CONSUME(T.NonReserved)) },
      { ALT: () => unquoteIdentifier(this.CONSUME(T.QuotedIdentifier).image) },
    ]),
  );

  protected resetStmt = this.RULE('resetStmt', (): AdminCommand => {
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
      {
        ALT: (): AdminCommand => {
          this.CONSUME(T.Session);
          this.CONSUME(T.Authorization);
          return { type: 'SetSessionAuthorization', user: null };
        },
      },
      {
        ALT: (): AdminCommand => {
          const name = this.SUBRULE(this.dottedName);
          // RESET TENANT: no setting has that (undotted) name, so the word means the tenant.
          return name === 'tenant' ? { type: 'SetTenant', tenant: null } : { type: 'ResetVariable', name, position };
        },
      },
    ]);
  });


  // ---- session housekeeping (asyncpg's pool reset, psycopg 3's DEALLOCATE ALL, PgBouncer's DISCARD ALL)

  protected housekeepingStmt = this.RULE('housekeepingStmt', (): AdminCommand =>
    this.OR([
      {
        ALT: (): AdminCommand => {
          const position = this.pos(this.CONSUME(T.Discard));
          const what = this.OR2([
            { ALT: () => (this.CONSUME(T.All), 'ALL' as const) },
            { ALT: () => (this.CONSUME(T.Plans), 'PLANS' as const) },
            { ALT: () => (this.CONSUME(T.Sequences), 'SEQUENCES' as const) },
            { ALT: () => (this.CONSUME(T.Temp), 'TEMP' as const) },
            { ALT: () => (this.CONSUME(T.Temporary), 'TEMP' as const) },
          ]);
          return { type: 'Discard', what, position };
        },
      },
      {
        ALT: (): AdminCommand => {
          this.CONSUME(T.Deallocate);
          this.OPTION(() => this.CONSUME(T.Prepare));
          return { type: 'Deallocate', name: this.SUBRULE(this.nameOrAll) };
        },
      },
      {
        ALT: (): AdminCommand => {
          this.CONSUME(T.Close);
          return { type: 'Close', name: this.SUBRULE2(this.nameOrAll) };
        },
      },
      {
        ALT: (): AdminCommand => {
          this.CONSUME(T.Unlisten);
          const channel = this.OR3([{ ALT: () => (this.CONSUME(T.Star), null) }, { ALT: () => this.SUBRULE(this.name) }]);
          return { type: 'Unlisten', channel };
        },
      },
      {
        ALT: (): AdminCommand => {
          const position = this.pos(this.CONSUME(T.Listen));
          return { type: 'Listen', channel: this.SUBRULE2(this.name), position };
        },
      },
    ]),
  );

  /** A name, or ALL (null). */
  private nameOrAll = this.RULE('nameOrAll', (): Name | null =>
    this.OR([{ ALT: () => (this.CONSUME(T.All), null) }, { ALT: () => this.SUBRULE(this.name) }]),
  );
}

function nullIfLocal(v: string): string | null {
  return v === 'local' ? null : v;
}
