import * as T from '../tokens.js';
import type { AdminCommand, Expiry, GrantItem, GrantTarget, Name } from '../ast.js';
import { TenantRules } from './tenants.js';

/** CREATE / DROP ROLE, GRANT and REVOKE in every form of SPEC §3. */
export class GrantRules extends TenantRules {
  protected createRole = this.RULE('createRole', (): AdminCommand => {
    this.CONSUME(T.Role);
    const ifNotExists = this.SUBRULE(this.ifNotExists);
    const name = this.SUBRULE(this.name);
    const tenant = this.SUBRULE(this.inTenant);
    return { type: 'CreateRole', name, ifNotExists, tenant };
  });

  protected dropRole = this.RULE('dropRole', (): AdminCommand => {
    this.CONSUME(T.Role);
    const ifExists = this.SUBRULE(this.ifExists);
    const name = this.SUBRULE(this.name);
    const tenant = this.SUBRULE(this.inTenant);
    const cascade = this.SUBRULE(this.dropBehavior);
    return { type: 'DropRole', name, ifExists, tenant, cascade };
  });

  protected grantStmt = this.RULE('grantStmt', (): AdminCommand => {
    this.CONSUME(T.Grant);
    const items = this.SUBRULE(this.grantItems);
    const target = this.SUBRULE(this.grantTarget);
    this.CONSUME(T.To);
    const grantees = this.SUBRULE(this.nameList);
    let expiry: Expiry = null;
    this.OPTION(() => {
      expiry = this.OR([
        {
          ALT: (): Expiry => {
            this.CONSUME(T.Valid);
            this.CONSUME(T.Until);
            return { kind: 'until', value: this.SUBRULE(this.stringValue) };
          },
        },
        {
          ALT: (): Expiry => {
            this.CONSUME(T.For);
            this.CONSUME(T.Interval);
            return { kind: 'interval', value: this.SUBRULE2(this.stringValue) };
          },
        },
      ]);
    });
    return { type: 'Grant', items, target, grantees, expiry };
  });

  protected revokeStmt = this.RULE('revokeStmt', (): AdminCommand => {
    this.CONSUME(T.Revoke);
    const items = this.SUBRULE(this.grantItems);
    const target = this.SUBRULE(this.grantTarget);
    this.CONSUME(T.From);
    const grantees = this.SUBRULE(this.nameList);
    return { type: 'Revoke', items, target, grantees };
  });

  private grantItems = this.RULE('grantItems', (): GrantItem[] => {
    const items: GrantItem[] = [];
    this.AT_LEAST_ONE_SEP({
      SEP: T.Comma,
      DEF: () => {
        const it = this.SUBRULE(this.grantItem);
        this.ACTION(() => items.push(it));
      },
    });
    return items;
  });

  /** ALL [PRIVILEGES], SELECT and CREATE (reserved words), or any name. */
  private grantItem = this.RULE('grantItem', (): GrantItem =>
    this.OR([
      {
        ALT: (): GrantItem => {
          const t = this.CONSUME(T.All);
          this.OPTION(() => this.CONSUME(T.Privileges));
          return { word: 'all', quoted: false, position: this.pos(t) };
        },
      },
      { ALT: (): GrantItem => ({ word: 'select', quoted: false, position: this.pos(this.CONSUME(T.Select)) }) },
      { ALT: (): GrantItem => ({ word: 'create', quoted: false, position: this.pos(this.CONSUME(T.Create)) }) },
      {
        ALT: (): GrantItem => {
          const t = this.LA(1);
          const n = this.SUBRULE(this.name);
          return { word: n.value, quoted: t.tokenType === T.QuotedIdentifier || t.image.startsWith("'") || t.image.startsWith('$'), position: n.position };
        },
      },
    ]),
  );

  private grantTarget = this.RULE('grantTarget', (): GrantTarget => {
    let target: GrantTarget = null;
    this.OPTION(() => {
      this.CONSUME(T.On);
      target = this.OR([
        {
          ALT: (): GrantTarget => {
            this.CONSUME(T.Database);
            return { kind: 'databases', names: this.SUBRULE(this.databaseNameList) };
          },
        },
        {
          ALT: (): GrantTarget => {
            this.OPTION2(() => this.CONSUME(T.Collection));
            const database: Name = this.SUBRULE(this.databaseName);
            this.CONSUME(T.Dot);
            const collection: Name = this.SUBRULE2(this.name);
            return { kind: 'collection', database, collection };
          },
        },
      ]);
    });
    return target;
  });
}
