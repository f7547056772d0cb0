/**
 * Prometheus metrics, in the text exposition format (version 0.0.4): counters and
 * histograms with labels, rendered on GET /metrics. Small on purpose: what portcullis
 * counts is a handful of series, and a client library would bring more than it gives.
 */
type Labels = Record<string, string>;

/** Series key: label values in the order given (each metric's callers use one order). */
const key = (labels: Labels) => Object.keys(labels).join('\u0001') + '\u0002' + Object.values(labels).join('\u0001');
const escape = (v: string) => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
const render = (labels: Labels, extra: Labels = {}) => {
  const all = { ...labels, ...extra };
  const parts = Object.entries(all).map(([k, v]) => `${k}="${escape(v)}"`);
  return parts.length ? `{${parts.join(',')}}` : '';
};

export class Counter {
  private readonly values = new Map<string, { labels: Labels; value: number }>();
  constructor(
    readonly name: string,
    readonly help: string,
  ) {}

  inc(labels: Labels = {}, by = 1): void {
    const k = key(labels);
    const v = this.values.get(k);
    if (v) v.value += by;
    else this.values.set(k, { labels, value: by });
  }

  get(labels: Labels = {}): number {
    return this.values.get(key(labels))?.value ?? 0;
  }

  text(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`];
    for (const { labels, value } of this.values.values()) lines.push(`${this.name}${render(labels)} ${value}`);
    return lines.join('\n');
  }
}

/** Latency buckets in seconds: 100 µs to 10 s. */
const BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export class Histogram {
  private readonly series = new Map<string, { labels: Labels; counts: number[]; sum: number; count: number }>();
  constructor(
    readonly name: string,
    readonly help: string,
  ) {}

  observe(seconds: number, labels: Labels = {}): void {
    const k = key(labels);
    let s = this.series.get(k);
    if (!s) this.series.set(k, (s = { labels, counts: BUCKETS.map(() => 0), sum: 0, count: 0 }));
    for (let i = 0; i < BUCKETS.length; i++) if (seconds <= BUCKETS[i]!) s.counts[i]!++;
    s.sum += seconds;
    s.count++;
  }

  text(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`];
    for (const s of this.series.values()) {
      BUCKETS.forEach((b, i) => lines.push(`${this.name}_bucket${render(s.labels, { le: String(b) })} ${s.counts[i]}`));
      lines.push(`${this.name}_bucket${render(s.labels, { le: '+Inf' })} ${s.count}`);
      lines.push(`${this.name}_sum${render(s.labels)} ${s.sum}`);
      lines.push(`${this.name}_count${render(s.labels)} ${s.count}`);
    }
    return lines.join('\n');
  }
}

/** What the server counts, as GET /metrics shows it. */
export class Metrics {
  readonly logins = new Counter('portcullis_logins_total', 'Login attempts by method, outcome and (for failures) reason.');
  readonly statements = new Counter('portcullis_statements_total', 'Statements run, by kind and outcome.');
  readonly statementSeconds = new Histogram('portcullis_statement_duration_seconds', 'Statement latency, by kind.');
  readonly httpRequests = new Counter('portcullis_http_requests_total', 'HTTP requests by route and status.');
  readonly httpSeconds = new Histogram('portcullis_http_request_duration_seconds', 'HTTP request latency, by route.');
  readonly loginSeconds = new Histogram('portcullis_login_duration_seconds', 'Credential verification latency, by method.');
  readonly auditFailures = new Counter('portcullis_audit_write_failures_total', 'Audit records that could not be written (disk full, I/O error).');

  /** Gauges computed when scraped (JWKS cache state, sessions). */
  constructor(private readonly gauges: () => string[] = () => []) {}

  text(): string {
    const parts = [this.logins, this.statements, this.statementSeconds, this.loginSeconds, this.httpRequests, this.httpSeconds, this.auditFailures].map((m) => m.text());
    return `${[...parts, ...this.gauges()].join('\n')}\n`;
  }
}
