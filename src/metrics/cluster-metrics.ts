// The primary's view of every process's metrics. Workers send cumulative
// snapshots on request and every few seconds. A scrape sums the latest snapshot
// of each live worker, the counters of workers that have exited, and the
// primary's own registry. This replaces prom-client's clusterMetrics(), which
// drops a dead worker's counters (so totals would go backwards) and fails the
// whole scrape after 5 s when one worker does not reply.
import { AggregatorRegistry, type MetricObjectWithValues, type MetricValue, type Registry } from 'prom-client';

export type MetricSnapshot = MetricObjectWithValues<MetricValue<string>>[];

/** How long a scrape waits for fresh worker snapshots before it uses the last ones received. */
const SNAPSHOT_WAIT_MS = 1_000;

export interface SnapshotSource {
  /** Asks every live worker for a snapshot tagged with `requestId`; returns how many were asked. */
  requestSnapshots(requestId: number): number;
}

export class ClusterMetrics {
  private readonly primaryRegistry: Registry;
  private readonly latest = new Map<number, MetricSnapshot>();
  /** Counters and histograms of exited workers, summed, so cluster totals never decrease. */
  private retired: MetricSnapshot = [];
  private nextRequestId = 1;
  private readonly waiting = new Map<number, { remaining: number; done: () => void }>();

  constructor(primaryRegistry: Registry) {
    this.primaryRegistry = primaryRegistry;
  }

  /** Stores a worker's snapshot; `requestId` is set when the snapshot replies to a scrape. */
  onSnapshot(workerId: number, snapshot: MetricSnapshot, requestId: number | null): void {
    this.latest.set(workerId, snapshot);
    if (requestId === null) return;
    const request = this.waiting.get(requestId);
    if (request === undefined) return;
    request.remaining--;
    if (request.remaining <= 0) request.done();
  }

  /** Folds an exited worker's last counters into the retired totals. */
  async onWorkerExit(workerId: number): Promise<void> {
    const snapshot = this.latest.get(workerId);
    this.latest.delete(workerId);
    if (snapshot === undefined) return;
    const kept = snapshot.filter((metric) => {
      // prom-client 15 types `type` as a numeric enum, but the JSON contains its name.
      const type = String(metric.type);
      return metric.name.startsWith('rsp_') && (type === 'counter' || type === 'histogram');
    });
    this.retired = await AggregatorRegistry.aggregate([this.retired, kept]).getMetricsAsJSON();
  }

  /** Renders the cluster-wide metrics in the Prometheus text format. Never rejects because of a worker. */
  async render(source: SnapshotSource): Promise<string> {
    await this.collectFreshSnapshots(source);
    const snapshots: MetricSnapshot[] = [this.retired, ...this.latest.values(), await this.primaryRegistry.getMetricsAsJSON()];
    // Process metrics carry a `process` label per process, so summing series with
    // equal labels leaves them apart. prom-client's own aggregators for them
    // (omit, first) would drop or merge them instead.
    const prepared = snapshots.map((snapshot) =>
      snapshot.map((metric) => (metric.name.startsWith('rsp_') ? metric : { ...metric, aggregator: 'sum' as const })),
    );
    return AggregatorRegistry.aggregate(prepared).metrics();
  }

  get contentType(): string {
    return this.primaryRegistry.contentType;
  }

  private collectFreshSnapshots(source: SnapshotSource): Promise<void> {
    const requestId = this.nextRequestId++;
    return new Promise((resolve) => {
      const timer = setTimeout(finish, SNAPSHOT_WAIT_MS);
      const waiting = this.waiting;
      function finish(): void {
        clearTimeout(timer);
        waiting.delete(requestId);
        resolve();
      }
      this.waiting.set(requestId, { remaining: Number.POSITIVE_INFINITY, done: finish });
      const asked = source.requestSnapshots(requestId);
      const request = this.waiting.get(requestId);
      if (request === undefined) return;
      if (asked === 0) finish();
      else request.remaining = asked;
    });
  }
}
