// The per-connection metrics of a worker, kept as plain numbers. prom-client
// builds a string from the label values on every inc() and observe(), even on a
// child bound with labels(). rsp made seven such calls per connection, and
// dropping them cut the CPU time per new connection by a tenth (see
// docs/benchmarks.md). Here the connection path only adds to fields of objects
// bound once per backend. The samples are built when the worker sends a
// snapshot, in the JSON form of prom-client's getMetricsAsJSON(), so the primary
// aggregates them with prom-client like any other metric.
import type { MetricSnapshot } from './cluster-metrics.js';
import { CONNECTION_STATS, type StatsMetric } from './definitions.js';

type Labels = Readonly<Record<string, string>>;

/** One sample; `metricName` names a histogram's `_bucket`, `_sum` or `_count` series. */
interface Sample {
  readonly value: number;
  readonly labels: Readonly<Record<string, string | number>>;
  readonly metricName?: string;
}

/** A histogram of one label set. */
export class HistogramCounts {
  private readonly bounds: readonly number[];
  /** Observations per bucket, not cumulative; the last entry counts those above every bound. */
  private readonly counts: number[];
  private sum = 0;
  private count = 0;

  /** `bounds` are the buckets' upper bounds, ascending. */
  constructor(bounds: readonly number[]) {
    this.bounds = bounds;
    this.counts = new Array<number>(bounds.length + 1).fill(0);
  }

  get observations(): number {
    return this.count;
  }

  observe(value: number): void {
    let bucket = 0;
    while (bucket < this.bounds.length && value > this.bounds[bucket]!) bucket++;
    this.counts[bucket]!++;
    this.sum += value;
    this.count++;
  }

  /** Cumulative `_bucket` samples with an `le` label, then `_sum` and `_count`. */
  samples(name: string, labels: Labels): Sample[] {
    const samples: Sample[] = [];
    let cumulative = 0;
    for (let bucket = 0; bucket <= this.bounds.length; bucket++) {
      cumulative += this.counts[bucket]!;
      const le = bucket < this.bounds.length ? this.bounds[bucket]! : '+Inf';
      samples.push({ value: cumulative, labels: { le, ...labels }, metricName: `${name}_bucket` });
    }
    samples.push({ value: this.sum, labels, metricName: `${name}_sum` });
    samples.push({ value: this.count, labels, metricName: `${name}_count` });
    return samples;
  }
}

/** The counts of one service and backend pair. */
export class BackendStats {
  /** Connections passed to the backend. */
  connections = 0;
  /** Connections open now. */
  open = 0;
  bytesUpstream = 0;
  bytesDownstream = 0;
  readonly connectDuration = new HistogramCounts(CONNECTION_STATS.backendConnectDuration.buckets);
}

/**
 * Every service's and backend's counts in a worker. Counts are cumulative for the
 * worker's life: a backend removed by a reload keeps its series, and gets the same
 * object back if a later reload adds it again.
 */
export class ConnectionStats {
  private readonly backends = new Map<string, { readonly labels: Labels; readonly stats: BackendStats }>();
  private readonly durations = new Map<string, HistogramCounts>();

  /** Returns the counts of `backend` in `service`. */
  backend(service: string, backend: string): BackendStats {
    const key = `${service}\n${backend}`;
    let entry = this.backends.get(key);
    if (entry === undefined) {
      entry = { labels: { service, backend }, stats: new BackendStats() };
      this.backends.set(key, entry);
    }
    return entry.stats;
  }

  /** Returns the histogram of whole-connection durations of `service`. */
  connectionDuration(service: string): HistogramCounts {
    let histogram = this.durations.get(service);
    if (histogram === undefined) {
      histogram = new HistogramCounts(CONNECTION_STATS.connectionDuration.buckets);
      this.durations.set(service, histogram);
    }
    return histogram;
  }

  /** Returns the metrics in prom-client's JSON form. A backend has series once it has had a connection. */
  snapshot(): MetricSnapshot {
    const used = [...this.backends.values()].filter((entry) => entry.stats.connections > 0);
    const { connectionsTotal, connectionsActive, bytesTotal, connectionDuration, backendConnectDuration } = CONNECTION_STATS;
    return [
      metric(connectionsTotal, used.map(({ labels, stats }) => ({ value: stats.connections, labels }))),
      metric(connectionsActive, used.map(({ labels, stats }) => ({ value: stats.open, labels }))),
      metric(
        bytesTotal,
        used.flatMap(({ labels, stats }) => [
          { value: stats.bytesUpstream, labels: { ...labels, direction: 'upstream' } },
          { value: stats.bytesDownstream, labels: { ...labels, direction: 'downstream' } },
        ]),
      ),
      metric(
        connectionDuration,
        [...this.durations].flatMap(([service, histogram]) =>
          histogram.observations > 0 ? histogram.samples(connectionDuration.name, { service }) : [],
        ),
      ),
      metric(
        backendConnectDuration,
        used.flatMap(({ labels, stats }) => stats.connectDuration.samples(backendConnectDuration.name, labels)),
      ),
    ];
  }
}

function metric(definition: StatsMetric, values: Sample[]): MetricSnapshot[number] {
  const { name, help, type } = definition;
  // prom-client's types describe `type` as a numeric enum and require `collect`,
  // while the JSON it produces itself has the type's name and no function.
  return { name, help, type, values, aggregator: 'sum' } as unknown as MetricSnapshot[number];
}
