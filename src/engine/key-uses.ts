import type { Catalog } from '../catalog/catalog.js';
import type { ApiKey, Mutation } from '../catalog/model.js';
import type { CommitPipeline } from './commit-pipeline.js';
import type { KeyUse, Ledger } from '../store/store.js';

/**
 * When each API key was last used, kept without an fsync per use: uses are remembered in
 * memory and written as one commit (the server does this once a minute and at shutdown).
 * Reads (SHOW API KEYS, the catalog views) see the remembered use when it is newer than the
 * stored one. Instances sharing a catalog in PostgreSQL keep uses there instead (`share`):
 * no commit at all (a commit a minute per instance would make other instances' commits
 * fail with 40001 and grow the catalog's history), and every instance hears every use.
 */
export class KeyUses {
  /** Key row id → when its current secret (and its rotated-out one) was last used, since the last flush. */
  private readonly current = new Map<number, number>();
  private readonly previous = new Map<number, number>();

  private ledger: Ledger<KeyUse> | null = null;

  constructor(
    private readonly catalog: Catalog,
    private readonly commits: CommitPipeline,
    private readonly clock: () => number,
  ) {}

  /** Keeps uses in the shared store (read whole now, then as other instances write them). */
  async share(ledger: Ledger<KeyUse>): Promise<void> {
    await ledger.subscribe((u) => {
      const map = u.previous ? this.previous : this.current;
      if ((map.get(u.key) ?? -Infinity) < u.at) map.set(u.key, u.at);
    });
    this.ledger = ledger;
  }

  note(keyRowId: number, previous = false): void {
    const at = this.clock();
    (previous ? this.previous : this.current).set(keyRowId, at);
    this.ledger?.publish({ key: keyRowId, previous, at });
  }

  /** The last use of a key's current secret (or, `previous`, of its rotated-out one). */
  lastUsed(k: ApiKey, previous = false): number | null {
    const stored = previous ? (k.previous?.lastUsedAt ?? null) : k.lastUsedAt;
    const m = (previous ? this.previous : this.current).get(k.id);
    // A use remembered from before a rotation belongs to the old secret, not this one.
    const counts = m !== undefined && (previous || k.rotatedAt === null || m >= k.rotatedAt);
    return counts && (stored === null || m! > stored) ? m! : stored;
  }

  /**
   * Writes the remembered uses as one commit. Keys with a change of their own in flight
   * wait for the next round, so a rotation is never overwritten by a stale copy.
   */
  async flush(): Promise<void> {
    // Shared: the store writes uses as they come (and at close).
    if (this.ledger || (this.current.size === 0 && this.previous.size === 0)) return;
    const written = new Map<number, number>();
    const writtenPrevious = new Map<number, number>();
    await this.commits.commit(() => {
      const busy = new Set(this.commits.accepted.flat().flatMap((m) => (m.op === 'delete' ? (m.table === 'apiKeys' ? [m.id] : []) : (m.op === 'insert' || m.op === 'update') && m.table === 'apiKeys' ? [m.row.id] : [])));
      const ms: Mutation[] = [];
      for (const id of new Set([...this.current.keys(), ...this.previous.keys()])) {
        const k = this.catalog.apiKeyById(id);
        if (k && busy.has(id)) continue;
        const current = k ? this.lastUsed(k) : null;
        const previous = k?.previous ? this.lastUsed(k, true) : null;
        if (!k || (current === k.lastUsedAt && previous === (k.previous?.lastUsedAt ?? null))) {
          // Dropped, or nothing newer than what is stored: nothing to remember any more.
          this.current.delete(id);
          this.previous.delete(id);
          continue;
        }
        ms.push({ op: 'update', table: 'apiKeys', row: { ...k, lastUsedAt: current, previous: k.previous ? { ...k.previous, lastUsedAt: previous } : null } });
        if (this.current.has(id)) written.set(id, this.current.get(id)!);
        if (this.previous.has(id)) writtenPrevious.set(id, this.previous.get(id)!);
      }
      return ms;
    });
    for (const [id, at] of written) if (this.current.get(id) === at) this.current.delete(id);
    for (const [id, at] of writtenPrevious) if (this.previous.get(id) === at) this.previous.delete(id);
  }
}
