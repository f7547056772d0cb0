import * as T from '../tokens.js';
import type { AdminCommand, UserOption, UserRef, Value } from '../ast.js';
import { CommonRules } from './common.js';

/** CREATE / ALTER / DROP USER. */
export class UserRules extends CommonRules {
  protected createUser = this.RULE('createUser', (): AdminCommand => {
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


  protected alterUser = this.RULE('alterUser', (): AdminCommand => {
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

  protected userRef = this.RULE('userRef', (): UserRef =>
    this.OR([
      { ALT: (): UserRef => ({ kind: 'currentUser', position: this.pos(this.CONSUME(T.CurrentUser)) }) },
      { ALT: (): UserRef => ({ kind: 'name', name: this.SUBRULE(this.name) }) },
    ]),
  );

  protected userOption = this.RULE('userOption', (): UserOption =>
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
          return { kind: 'tenant', tenant: this.SUBRULE(this.tenantRef) };
        },
      },
      {
        ALT: (): UserOption => {
          this.CONSUME(T.Valid);
          this.CONSUME(T.Until);
          return { kind: 'validUntil', value: this.SUBRULE(this.timestampValue) };
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


  protected dropUser = this.RULE('dropUser', (): AdminCommand => {
    this.CONSUME(T.User);
    const ifExists = this.SUBRULE(this.ifExists);
    const names = this.SUBRULE(this.nameList);
    const cascade = this.SUBRULE(this.dropBehavior);
    return { type: 'DropUser', names, ifExists, cascade };
  });

}
