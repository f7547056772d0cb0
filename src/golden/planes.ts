import { DETERMINISTIC_PLANE_SETTINGS, EmbeddedPlane } from '../dataplane/embedded.js';
import { InstancePool, type PoolFigures } from '../dataplane/instance-pool.js';
import type { DataPlane } from '../dataplane/types.js';

/**
 * The data planes golden files run on: a fresh one for each file, made and cleaned up here.
 * Embedded: an in-memory plane whose instances come from a pool shared by every file of the
 * run (reset between files, instance-pool.ts).
 */
export class GoldenPlanes {
  private readonly pool: InstancePool;

  constructor(private readonly upstream?: string) {
    this.pool = new InstancePool({ settings: DETERMINISTIC_PLANE_SETTINGS });
  }

  get figures(): PoolFigures {
    return this.pool.figures;
  }

  async open(): Promise<DataPlane> {
    if (this.upstream) throw new Error('not yet');
    return new EmbeddedPlane({ memory: true, instances: this.pool, settings: DETERMINISTIC_PLANE_SETTINGS });
  }

  async close(plane: DataPlane): Promise<void> {
    await plane.close();
  }

  async shutdown(): Promise<void> {
    await this.pool.close();
  }
}
