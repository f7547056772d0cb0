import type { JwksCache } from '../auth/jwks.js';
import { Metrics } from '../metrics/metrics.js';

/**
 * The server's metrics: the counters and histograms the engine, sessions and HTTP add to,
 * and gauges computed when /metrics is scraped (open sessions, the JWKS cache's state).
 */
export function engineMetrics(totalSessions: () => number, jwks: JwksCache): Metrics {
  return new Metrics(() => {
    const out = ['# HELP portcullis_sessions Open sessions.', '# TYPE portcullis_sessions gauge', `portcullis_sessions ${totalSessions()}`];
    out.push('# HELP portcullis_jwks_fetches_total JWKS fetches by outcome.', '# TYPE portcullis_jwks_fetches_total counter');
    for (const [outcome, n] of jwks.stats.fetches) out.push(`portcullis_jwks_fetches_total{outcome="${outcome}"} ${n}`);
    out.push('# HELP portcullis_jwks_cache_age_seconds Age of each provider\'s cached JWKS, labelled with its state.', '# TYPE portcullis_jwks_cache_age_seconds gauge');
    for (const d of jwks.describe()) {
      out.push(`portcullis_jwks_cache_age_seconds{provider="${d.provider.replace(/["\\\n]/g, '_')}",state="${d.state}",breaker="${d.breakerOpen ? 'open' : 'closed'}"} ${d.ageSeconds ?? -1}`);
    }
    return out;
  });
}
