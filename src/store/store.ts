import type { Mutation } from '../catalog/model.js';
import type { SnapshotPart } from '../catalog/catalog.js';

/** Where committed catalog changes live. One commit = one record, durable when append resolves. */
export interface Store {
  /**
   * Hands every committed change to `apply`, in commit order (called once, at start). A
   * snapshot arrives in chunks to `bulk` (rows as bytes, see Table.load), so a large catalog
   * is never held twice in memory.
   */
  load(apply: (commit: Mutation[], seq: number) => void, bulk: (part: SnapshotPart) => void): Promise<void>;
  /**
   * Durably appends one commit; resolves, with the commit's sequence number, only once it is
   * on disk. `base`: the sequence number of the last commit this one was checked against
   * (applied, or accepted before it). A store with one writer ignores it; a store shared by
   * several instances refuses (40001) a commit whose base is not the last commit there.
   */
  append(commit: Mutation[], base?: number): Promise<number>;
  /**
   * A store shared by several instances: from now on hands the commits made through other
   * instances to `apply`, in commit order, as it hears of them (called once, after load).
   */
  follow?(apply: (commit: Mutation[], seq: number) => void): void;
  close(): Promise<void>;
  readonly description: string;
  /** Bytes in the log since the last snapshot; undefined for a store that keeps no log. */
  readonly logBytes?: number;
  /** Replaces the log by a snapshot of `image` (Catalog.snapshot). */
  compact?(image: Iterable<SnapshotPart>): Promise<{ logBytesBefore: number; snapshotBytes: number }>;
}

/** `--memory`: nothing survives the process. */
export class MemoryStore implements Store {
  readonly description = 'in memory (nothing is kept after exit)';
  async load(): Promise<void> {}
  private seq = 0;
  async append(): Promise<number> {
    return ++this.seq;
  }
  async close(): Promise<void> {}
}
