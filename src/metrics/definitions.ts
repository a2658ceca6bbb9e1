// Every rsp_* metric with its labels, in one place. Workers own the per-connection
// metrics; the primary owns backend state, reloads and the worker count.
import { Counter, Gauge, type Registry } from 'prom-client';

/** Buckets for whole-connection durations, in seconds: from short requests to hour-long sessions. */
const CONNECTION_DURATION_BUCKETS = [0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 1800, 3600];
/** Buckets for backend connect durations, in seconds: loopback to a slow remote network. */
const CONNECT_DURATION_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

export type ServiceBackendLabel = 'service' | 'backend';

/** Name, help, type and buckets of a metric that workers count in plain numbers (see connection-stats.ts). */
export interface StatsMetric {
  readonly name: string;
  readonly help: string;
  readonly type: 'counter' | 'gauge' | 'histogram';
  readonly buckets?: readonly number[];
}

/** The per-connection metrics, labelled `service` and `backend` except where noted. */
export const CONNECTION_STATS = {
  connectionsTotal: {
    name: 'rsp_connections_total',
    help: 'Client connections passed to a backend.',
    type: 'counter',
  },
  connectionsActive: {
    name: 'rsp_connections_active',
    help: 'Connections open between a client and a backend.',
    type: 'gauge',
  },
  /** Also labelled `direction`. */
  bytesTotal: {
    name: 'rsp_bytes_total',
    help: 'Bytes passed on; direction upstream is client to backend, downstream is backend to client.',
    type: 'counter',
  },
  /** Labelled `service` only. */
  connectionDuration: {
    name: 'rsp_connection_duration_seconds',
    help: 'Time from accepting a client connection until both sides closed.',
    type: 'histogram',
    buckets: CONNECTION_DURATION_BUCKETS,
  },
  backendConnectDuration: {
    name: 'rsp_backend_connect_duration_seconds',
    help: 'Time to open a TCP connection to a backend, for successful connects.',
    type: 'histogram',
    buckets: CONNECT_DURATION_BUCKETS,
  },
} as const satisfies Record<string, StatsMetric>;

/** Creates the one per-connection metric that a worker keeps in prom-client: failures are rare, and their reasons many. */
export function createConnectionErrors(registry: Registry): Counter<ServiceBackendLabel | 'reason'> {
  return new Counter({
    name: 'rsp_connection_errors_total',
    help: 'Connection failures by reason (refused, timeout, reset, no_backend, idle, drain, ...).',
    labelNames: ['service', 'backend', 'reason'],
    registers: [registry],
  });
}

/** Creates the gauge of read buffer bytes that queued writes pin, which reads `pinnedBytes` at each scrape. */
export function createPinnedReadBuffers(registry: Registry, pinnedBytes: () => number): Gauge {
  return new Gauge({
    name: 'rsp_pinned_read_buffer_bytes',
    help: 'Bytes of bulk read buffers kept by writes queued towards peers that read slower than the other side sends.',
    registers: [registry],
    collect() {
      this.set(pinnedBytes());
    },
  });
}

/** The metrics the primary owns. */
export interface PrimaryMetrics {
  readonly backendUp: Gauge<ServiceBackendLabel>;
  readonly configReloadsTotal: Counter<'result'>;
  readonly workers: Gauge;
}

export function createPrimaryMetrics(registry: Registry): PrimaryMetrics {
  const registers = [registry];
  return {
    backendUp: new Gauge({
      name: 'rsp_backend_up',
      help: 'Whether a backend takes new connections (1) or is marked down (0).',
      labelNames: ['service', 'backend'],
      registers,
    }),
    configReloadsTotal: new Counter({
      name: 'rsp_config_reloads_total',
      help: 'Configuration reloads by result (success or failure).',
      labelNames: ['result'],
      registers,
    }),
    workers: new Gauge({
      name: 'rsp_workers',
      help: 'Worker processes running.',
      registers,
    }),
  };
}
