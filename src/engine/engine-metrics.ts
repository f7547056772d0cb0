import type { JwksCache } from '../auth/jwks.js';
import { Metrics } from '../metrics/metrics.js';
import type { PoolStats } from '../dataplane/pool.js';

const POOL_GAUGES: [string, string, (p: PoolStats) => number][] = [
  ['portcullis_pool_clients_active', 'Client sessions of a database not waiting for an upstream connection (SHOW POOLS cl_active).', (p) => p.clActive],
  ['portcullis_pool_clients_waiting', 'Client sessions waiting for an upstream connection (cl_waiting).', (p) => p.clWaiting],
  ['portcullis_pool_server_active', 'Upstream connections serving a transaction (sv_active).', (p) => p.svActive],
  ['portcullis_pool_server_idle', 'Upstream connections idle in the pool (sv_idle).', (p) => p.svIdle],
  ['portcullis_pool_server_dedicated', 'Upstream connections kept by one session for its session state.', (p) => p.dedicated],
  ['portcullis_pool_maxwait_seconds', 'How long the oldest waiting session has waited (maxwait).', (p) => p.maxwait],
  ['portcullis_pool_size', 'The most upstream connections a database may have (pool_size).', (p) => p.size],
];

/** The upstream pools' figures, one series per database (labelled by ids: names change and may be anything). */
function poolGauges(pools: PoolStats[]): string[] {
  if (pools.length === 0) return [];
  const out: string[] = [];
  for (const [name, help, value] of POOL_GAUGES) {
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} gauge`);
    for (const p of pools) out.push(`${name}{tenant_id="${p.db.tenantId}",database_id="${p.db.databaseId}"} ${value(p)}`);
  }
  return out;
}

/**
 * The server's metrics: the counters and histograms the engine, sessions and HTTP add to,
 * and gauges computed when /metrics is scraped (open sessions, the JWKS cache's state).
 */
export function engineMetrics(totalSessions: () => number, jwks: JwksCache, pools: () => PoolStats[] = () => []): Metrics {
  return new Metrics(() => {
    const out = ['# HELP portcullis_sessions Open sessions.', '# TYPE portcullis_sessions gauge', `portcullis_sessions ${totalSessions()}`];
    out.push('# HELP portcullis_jwks_fetches_total JWKS fetches by outcome.', '# TYPE portcullis_jwks_fetches_total counter');
    for (const [outcome, n] of jwks.stats.fetches) out.push(`portcullis_jwks_fetches_total{outcome="${outcome}"} ${n}`);
    out.push('# HELP portcullis_jwks_cache_age_seconds Age of each provider\'s cached JWKS, labelled with its state.', '# TYPE portcullis_jwks_cache_age_seconds gauge');
    for (const d of jwks.describe()) {
      out.push(`portcullis_jwks_cache_age_seconds{provider="${d.provider.replace(/["\\\n]/g, '_')}",state="${d.state}",breaker="${d.breakerOpen ? 'open' : 'closed'}"} ${d.ageSeconds ?? -1}`);
    }
    out.push(...poolGauges(pools()));
    return out;
  });
}
