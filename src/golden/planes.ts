import { randomBytes } from 'node:crypto';
import { DETERMINISTIC_PLANE_SETTINGS, EmbeddedPlane } from '../dataplane/embedded.js';
import { InstancePool, type PoolFigures } from '../dataplane/instance-pool.js';
import type { DataPlane } from '../dataplane/types.js';
import { UpstreamPlane } from '../dataplane/upstream.js';

/**
 * The data planes golden files run on: a fresh one for each file, made and cleaned up here.
 * - Embedded: an in-memory plane whose instances come from a pool shared by every file of
 *   the run, each reset between files (instance-pool.ts): as fresh as a new instance, at a
 *   fraction of the cost.
 * - Upstream: the operator's PostgreSQL, each file in a namespace of its own (`pcu_g<8 hex>_`
 *   before every database and role name it makes there), so files running at once, and
 *   other portcullis servers on the same PostgreSQL, never meet; its databases and roles
 *   are dropped after it.
 */
export class GoldenPlanes {
  private readonly pool: InstancePool | null;

  constructor(private readonly upstream?: string) {
    this.pool = upstream === undefined ? new InstancePool({ settings: DETERMINISTIC_PLANE_SETTINGS }) : null;
  }

  /** The pool's figures (embedded), for `npm run bench`. */
  get figures(): PoolFigures | null {
    return this.pool?.figures ?? null;
  }

  async open(): Promise<DataPlane> {
    if (this.upstream !== undefined) return new UpstreamPlane(this.upstream, { namespace: `g${randomBytes(4).toString('hex')}` });
    return new EmbeddedPlane({ memory: true, instances: this.pool!, settings: DETERMINISTIC_PLANE_SETTINGS });
  }

  async close(plane: DataPlane): Promise<void> {
    try {
      if (plane instanceof UpstreamPlane) await plane.dropNamespace();
    } finally {
      await plane.close();
    }
  }

  async shutdown(): Promise<void> {
    await this.pool?.close();
  }
}
