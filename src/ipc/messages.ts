// Messages between the primary and its workers over the cluster IPC channel.
// Every rsp message has a `type` starting with `rsp:`; prom-client shares the
// channel, so handlers ignore anything else.
import type { Config } from '../config/types.js';
import type { BackendState } from '../health/health-monitor.js';
import type { MetricSnapshot } from '../metrics/cluster-metrics.js';
/**
 * One service's share of the cluster load, by backend address and by client
 * address; zero entries are left out.
 */
export interface ServiceLoad {
  /** Open connections per backend. */
  readonly backends: Readonly<Record<string, number>>;
  /** Open connections per client address, kept only with `max_connections_per_client`. */
  readonly clients: Readonly<Record<string, number>>;
  /** Connections sent to each backend since the worker started, for the cluster-wide round-robin. */
  readonly picks: Readonly<Record<string, number>>;
}

/** Open connections by service name: per backend address and per client address. */
export type ClusterLoad = Readonly<Record<string, ServiceLoad>>;

/** Primary → worker: the validated config to serve, sent in reply to `rsp:ready`. */
export interface ConfigMessage {
  readonly type: 'rsp:config';
  readonly config: Config;
  /** The worker's position in its pool, 0-based; balancers start their rotation there. */
  readonly slot: number;
  /** Workers in the pool, which sets each worker's share of a connection limit. */
  readonly poolSize: number;
}

/**
 * Primary → worker: a reloaded config with the same services and listen
 * addresses, applied in place so open connections are untouched.
 */
export interface UpdateMessage {
  readonly type: 'rsp:update';
  readonly config: Config;
}

/** Primary → worker: stop accepting, let open connections finish for `drainMs`, then exit. */
export interface StopMessage {
  readonly type: 'rsp:stop';
  readonly drainMs: number;
}

/**
 * Worker → primary: the worker's message handler is installed. Messages that reach
 * a child before it has a 'message' listener are dropped, so the primary waits for
 * this before it sends the config.
 */
export interface ReadyMessage {
  readonly type: 'rsp:ready';
}

/** Primary → worker: whether each backend takes new connections; sent after the config and on every change. */
export interface HealthMessage {
  readonly type: 'rsp:health';
  readonly states: readonly BackendState[];
}

/**
 * Worker → primary: the outcome of a backend connection, for passive checks. A
 * worker reports every failure, and a success only after it reported a failure.
 */
export interface TrafficReportMessage {
  readonly type: 'rsp:traffic-report';
  readonly service: string;
  readonly backend: string;
  readonly ok: boolean;
  readonly reason: string;
}

/** Worker → primary: this worker's open connections, sent shortly after they change. */
export interface LoadReportMessage {
  readonly type: 'rsp:load-report';
  readonly load: ClusterLoad;
  /** Increases with every report of this worker. */
  readonly sequence: number;
}

/** Primary → worker: the open connections of all other workers, summed. */
export interface LoadViewMessage {
  readonly type: 'rsp:load-view';
  readonly others: ClusterLoad;
  /** The sequence of the receiving worker's latest report the primary had when it built `others` (0: none). */
  readonly acknowledged: number;
}

/** Primary → worker: send a metrics snapshot tagged with `requestId` now. */
export interface MetricsRequestMessage {
  readonly type: 'rsp:metrics-request';
  readonly requestId: number;
}

/** Worker → primary: cumulative metrics; `requestId` is null for the periodic push. */
export interface MetricsMessage {
  readonly type: 'rsp:metrics';
  readonly requestId: number | null;
  readonly metrics: MetricSnapshot;
}

/** Worker → primary: a service's listen socket is open at `address`. */
export interface ListeningMessage {
  readonly type: 'rsp:listening';
  readonly service: string;
  readonly address: string;
}

/** Worker → primary: a service's listen socket could not be opened. */
export interface ListenFailedMessage {
  readonly type: 'rsp:listen-failed';
  readonly service: string;
  readonly address: string;
  readonly code: string;
  readonly message: string;
}

export type PrimaryMessage =
  | ConfigMessage
  | UpdateMessage
  | StopMessage
  | MetricsRequestMessage
  | HealthMessage
  | LoadViewMessage;
export type WorkerMessage =
  | ReadyMessage
  | ListeningMessage
  | ListenFailedMessage
  | MetricsMessage
  | TrafficReportMessage
  | LoadReportMessage;

const PRIMARY_MESSAGE_TYPES: ReadonlySet<string> = new Set<PrimaryMessage['type']>([
  'rsp:config',
  'rsp:update',
  'rsp:stop',
  'rsp:metrics-request',
  'rsp:health',
  'rsp:load-view',
]);
const WORKER_MESSAGE_TYPES: ReadonlySet<string> = new Set<WorkerMessage['type']>([
  'rsp:ready',
  'rsp:listening',
  'rsp:listen-failed',
  'rsp:metrics',
  'rsp:traffic-report',
  'rsp:load-report',
]);

function hasRspType(value: unknown): value is { type: string } {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { type?: unknown }).type === 'string' &&
    (value as { type: string }).type.startsWith('rsp:')
  );
}

/** Narrows an IPC message to a primary → worker message; foreign messages return false. */
export function isPrimaryMessage(value: unknown): value is PrimaryMessage {
  return hasRspType(value) && PRIMARY_MESSAGE_TYPES.has(value.type);
}

/** Narrows an IPC message to a worker → primary message; foreign messages return false. */
export function isWorkerMessage(value: unknown): value is WorkerMessage {
  return hasRspType(value) && WORKER_MESSAGE_TYPES.has(value.type);
}
