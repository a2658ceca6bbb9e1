// A worker's metrics registry, with per-backend label children bound once so the
// per-connection path does no label lookups.
import { collectDefaultMetrics, Registry, type Counter, type Gauge, type Histogram } from 'prom-client';
import type { CloseReason } from '../pump/close-reason.js';
import type { MetricSnapshot } from './cluster-metrics.js';
import { createConnectionMetrics, type ConnectionMetrics } from './definitions.js';

/** The metric children of one service and backend pair. */
export interface BackendMetrics {
  readonly connections: Counter.Internal;
  readonly active: Gauge.Internal<string>;
  readonly bytesUpstream: Counter.Internal;
  readonly bytesDownstream: Counter.Internal;
  readonly connectDuration: Histogram.Internal<string>;
  countError(reason: CloseReason): void;
}

export class WorkerMetrics {
  private readonly registry = new Registry();
  private readonly metrics: ConnectionMetrics;

  constructor(processLabel: string) {
    this.metrics = createConnectionMetrics(this.registry);
    collectDefaultMetrics({ register: this.registry, labels: { process: processLabel } });
  }

  forBackend(service: string, backend: string): BackendMetrics {
    const m = this.metrics;
    const labels = { service, backend };
    return {
      connections: m.connectionsTotal.labels(labels),
      active: m.connectionsActive.labels(labels),
      bytesUpstream: m.bytesTotal.labels({ ...labels, direction: 'upstream' }),
      bytesDownstream: m.bytesTotal.labels({ ...labels, direction: 'downstream' }),
      connectDuration: m.backendConnectDuration.labels(labels),
      countError: (reason) => m.connectionErrorsTotal.labels({ ...labels, reason }).inc(),
    };
  }

  /** Counts a failure that has no backend, such as `no_backend`. */
  countServiceError(service: string, reason: CloseReason): void {
    this.metrics.connectionErrorsTotal.labels({ service, backend: '', reason }).inc();
  }

  observeConnectionDuration(service: string, seconds: number): void {
    this.metrics.connectionDuration.labels({ service }).observe(seconds);
  }

  snapshot(): Promise<MetricSnapshot> {
    return this.registry.getMetricsAsJSON();
  }
}
