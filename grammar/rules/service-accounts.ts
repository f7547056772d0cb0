import * as T from '../tokens.js';
import type { AdminCommand, Name, TenantRef } from '../ast.js';
import { KeyRules } from './keys.js';

/** CREATE / ALTER / DROP SERVICE ACCOUNT. SHOW is in session.ts. */
export class ServiceAccountRules extends KeyRules {
  protected createServiceAccount = this.RULE('createServiceAccount', (): AdminCommand => {
    this.CONSUME(T.Service);
    this.CONSUME(T.Account);
    const ifNotExists = this.SUBRULE(this.ifNotExists);
    const name = this.SUBRULE(this.name);
    this.CONSUME(T.For);
    const databases = this.OR([
      {
        ALT: (): Name[] => {
          this.CONSUME(T.Database);
          return [this.SUBRULE(this.databaseName)];
        },
      },
      {
        ALT: (): Name[] => {
          this.CONSUME(T.Databases);
          return this.SUBRULE(this.databaseNameList);
        },
      },
    ]);
    let role: Name | null = null;
    let tenant: TenantRef | null = null;
    this.MANY(() => {
      this.OR2([
        {
          ALT: () => {
            this.CONSUME(T.Role);
            role = this.SUBRULE3(this.name);
          },
        },
        {
          ALT: () => {
            this.CONSUME(T.Tenant);
            tenant = this.SUBRULE(this.tenantRef);
          },
        },
      ]);
    });
    return { type: 'CreateServiceAccount', name, ifNotExists, databases, role, tenant };
  });

  protected alterServiceAccount = this.RULE('alterServiceAccount', (): AdminCommand => {
    this.CONSUME(T.Service);
    this.CONSUME(T.Account);
    const name = this.SUBRULE(this.name);
    return this.OR([
      {
        ALT: (): AdminCommand => {
          this.CONSUME(T.Set);
          return this.OR2([
            {
              ALT: (): AdminCommand => {
                this.CONSUME(T.Databases);
                return { type: 'AlterServiceAccount', name, change: { kind: 'databases', names: this.SUBRULE(this.databaseNameList) } };
              },
            },
            {
              ALT: (): AdminCommand => {
                this.CONSUME(T.Role);
                return { type: 'AlterServiceAccount', name, change: { kind: 'role', role: this.SUBRULE2(this.name) } };
              },
            },
          ]);
        },
      },
      {
        ALT: (): AdminCommand => {
          this.CONSUME(T.Rename);
          this.CONSUME(T.To);
          return { type: 'AlterServiceAccount', name, change: { kind: 'rename', name: this.SUBRULE3(this.name) } };
        },
      },
    ]);
  });

  protected dropServiceAccount = this.RULE('dropServiceAccount', (): AdminCommand => {
    this.CONSUME(T.Service);
    this.CONSUME(T.Account);
    const ifExists = this.SUBRULE(this.ifExists);
    const name = this.SUBRULE(this.name);
    const cascade = this.SUBRULE(this.dropBehavior);
    return { type: 'DropServiceAccount', name, ifExists, cascade };
  });
}
