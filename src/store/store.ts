import type { Mutation } from '../catalog/model.js';

/** Where committed catalog changes live. One commit = one record, durable when append resolves. */
export interface Store {
  /** Every committed change, in commit order (called once, at start). */
  load(): Promise<Mutation[][]>;
  /** Durably appends one commit; resolves only after it is on disk. */
  append(commit: Mutation[]): Promise<void>;
  close(): Promise<void>;
  readonly description: string;
}

/** `--memory`: nothing survives the process. */
export class MemoryStore implements Store {
  readonly description = 'in memory (nothing is kept after exit)';
  async load(): Promise<Mutation[][]> {
    return [];
  }
  async append(): Promise<void> {}
  async close(): Promise<void> {}
}
