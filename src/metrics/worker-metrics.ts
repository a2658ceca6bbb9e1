// A worker's metrics: the per-connection counts in plain numbers (see
// connection-stats.ts), and failures and process metrics in a prom-client registry.
import { collectDefaultMetrics, Registry, type Counter } from 'prom-client';
import type { CloseReason } from '../pump/close-reason.js';
import { readBuffers } from '../pump/pump-base.js';
import type { MetricSnapshot } from './cluster-metrics.js';
import { ConnectionStats, type BackendStats, type HistogramCounts } from './connection-stats.js';
import { createConnectionErrors, createPinnedReadBuffers, type ServiceBackendLabel } from './definitions.js';

/** The metrics of one service and backend pair. */
export interface BackendMetrics {
  readonly stats: BackendStats;
  countError(reason: CloseReason): void;
}

export class WorkerMetrics {
  private readonly registry = new Registry();
  private readonly stats = new ConnectionStats();
  private readonly errors: Counter<ServiceBackendLabel | 'reason'>;

  constructor(processLabel: string) {
    this.errors = createConnectionErrors(this.registry);
    createPinnedReadBuffers(this.registry, () => readBuffers.pinnedBytes);
    collectDefaultMetrics({ register: this.registry, labels: { process: processLabel } });
  }

  forBackend(service: string, backend: string): BackendMetrics {
    const errors = this.errors;
    return {
      stats: this.stats.backend(service, backend),
      countError: (reason) => errors.inc({ service, backend, reason }),
    };
  }

  /** Counts a failure that has no backend, such as `no_backend`. */
  countServiceError(service: string, reason: CloseReason): void {
    this.errors.inc({ service, backend: '', reason });
  }

  /** Returns the histogram of whole-connection durations of `service`. */
  connectionDuration(service: string): HistogramCounts {
    return this.stats.connectionDuration(service);
  }

  async snapshot(): Promise<MetricSnapshot> {
    return [...this.stats.snapshot(), ...(await this.registry.getMetricsAsJSON())];
  }
}
