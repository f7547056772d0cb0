import * as T from '../tokens.js';
import type { AdminCommand, TenantRef } from '../ast.js';
import { UserRules } from './users.js';

/** CREATE / DROP TENANT and CREATE / DROP DATABASE. SHOW is in session.ts. */
export class TenantRules extends UserRules {
  protected createTenant = this.RULE('createTenant', (): AdminCommand => {
    this.CONSUME(T.Tenant);
    const ifNotExists = this.SUBRULE(this.ifNotExists);
    const name = this.SUBRULE(this.name);
    let id: { value: string; position: number } | null = null;
    this.OPTION(() => {
      this.CONSUME(T.Id);
      const t = this.CONSUME(T.Number_);
      id = { value: t.image, position: this.pos(t) };
    });
    return { type: 'CreateTenant', name, ifNotExists, id };
  });

  protected dropTenant = this.RULE('dropTenant', (): AdminCommand => {
    this.CONSUME(T.Tenant);
    const ifExists = this.SUBRULE(this.ifExists);
    const name = this.SUBRULE(this.name);
    const cascade = this.SUBRULE(this.dropBehavior);
    return { type: 'DropTenant', name, ifExists, cascade };
  });

  protected createDatabase = this.RULE('createDatabase', (): AdminCommand => {
    this.CONSUME(T.Database);
    const ifNotExists = this.SUBRULE(this.ifNotExists);
    const name = this.SUBRULE(this.databaseName);
    const tenant = this.SUBRULE(this.inTenant);
    return { type: 'CreateDatabase', name, ifNotExists, tenant };
  });

  protected dropDatabase = this.RULE('dropDatabase', (): AdminCommand => {
    this.CONSUME(T.Database);
    const ifExists = this.SUBRULE(this.ifExists);
    const name = this.SUBRULE(this.databaseName);
    const tenant = this.SUBRULE(this.inTenant);
    const cascade = this.SUBRULE(this.dropBehavior);
    return { type: 'DropDatabase', name, ifExists, tenant, cascade };
  });

  /** `[TENANT t]`: superusers name another tenant's database. */
  protected inTenant = this.RULE('inTenant', (): TenantRef | null => {
    let tenant: TenantRef | null = null;
    this.OPTION(() => {
      this.CONSUME(T.Tenant);
      tenant = this.SUBRULE(this.tenantRef);
    });
    return tenant;
  });
}
