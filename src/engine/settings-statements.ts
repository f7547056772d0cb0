import type { AdminCommand } from '../../grammar/index.js';
import type { Column, Execution } from '../wire/handler.js';
import type { StatementContext } from './statement-context.js';
import { col, commandDone, rowsResult } from './results.js';

type SettingCommand = Extract<AdminCommand, { type: 'SetVariable' | 'ResetVariable' | 'ShowVariable' | 'SetTransactionMode' }>;

export function settingColumns(cmd: Extract<AdminCommand, { type: 'ShowVariable' }>): Column[] {
  return cmd.name === 'all' ? [col('name'), col('setting')] : [col(cmd.name)];
}

/** SET / RESET / SHOW of client session settings (none of them touches the catalog). */
export function runSetting(cmd: SettingCommand, ctx: StatementContext): Execution {
  const s = ctx.session.settings;
  switch (cmd.type) {
    case 'SetVariable':
      if (cmd.local && !ctx.inBlock) {
        ctx.notice({ severity: 'WARNING', code: '25P01', message: 'SET LOCAL can only be used in transaction blocks' });
        return commandDone('SET');
      }
      s.set(cmd.name, cmd.value, cmd.local);
      return commandDone('SET');
    case 'ResetVariable':
      s.reset(cmd.name);
      return commandDone('RESET');
    case 'SetTransactionMode':
      return commandDone('SET');
    case 'ShowVariable': {
      if (cmd.name === 'all') return rowsResult(settingColumns(cmd), s.all()[Symbol.iterator](), 'SHOW', false);
      return rowsResult(settingColumns(cmd), [[s.get(cmd.name)]][Symbol.iterator](), 'SHOW', false);
    }
  }
}
