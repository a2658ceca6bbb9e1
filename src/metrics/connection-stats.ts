// A worker's per-connection metrics as plain numbers, rendered in the JSON form of
// prom-client's getMetricsAsJSON() only when the worker sends a snapshot.
// prom-client builds a string from the label values on every inc() and observe(),
// and the seven calls per connection cost a tenth of the CPU time of a new
// connection (docs/benchmarks.md has the figures).
import type { MetricSnapshot } from './cluster-metrics.js';
import { CONNECTION_STATS, type StatsMetric } from './definitions.js';

type Labels = Readonly<Record<string, string>>;

/** A sample. `metricName` is set for a histogram's `_bucket`, `_sum` and `_count` series. */
interface Sample {
  readonly value: number;
  readonly labels: Readonly<Record<string, string | number>>;
  readonly metricName?: string;
}

/** A histogram of one label set. */
export class HistogramCounts {
  private readonly bounds: readonly number[];
  /** Observation counts per bucket, not cumulative. The last entry counts values above every bound. */
  private readonly counts: number[];
  private sum = 0;
  private count = 0;

  /** Creates an empty histogram whose buckets have the upper bounds `bounds`, in ascending order. */
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

  /** Returns cumulative `_bucket` samples with an `le` label, then `_sum` and `_count`. */
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
  /** Count of connections passed to the backend. */
  connections = 0;
  /** Count of connections open now. */
  open = 0;
  bytesUpstream = 0;
  bytesDownstream = 0;
  readonly connectDuration = new HistogramCounts(CONNECTION_STATS.backendConnectDuration.buckets);
}

/**
 * The counts of every service and backend in a worker, cumulative for the
 * worker's life. A backend removed by a reload keeps its series, and gets the
 * same object back if a later reload adds it again.
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
  // prom-client's types declare `type` as a numeric enum and require `collect`, but
  // the JSON that prom-client itself produces has the type's name and no function.
  return { name, help, type, values, aggregator: 'sum' } as unknown as MetricSnapshot[number];
}
