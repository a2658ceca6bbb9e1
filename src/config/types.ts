// The validated configuration: plain, readonly data that the primary builds from
// the Lua file and sends to workers over IPC. Every duration is in milliseconds
// here; the Lua file gives seconds and validation converts them once.

export type Algorithm = 'round_robin' | 'least_connections';
export type ProxyProtocolVersion = 'v1' | 'v2';

/**
 * The process that accepts connections from the shared listen socket. With
 * `primary`, the primary accepts each one and hands it to the workers in turn
 * (node:cluster SCHED_RR). With `workers`, the workers accept directly and the
 * kernel picks which one wakes (SCHED_NONE).
 */
export type AcceptMode = 'primary' | 'workers';

/** A host and port. `host` is an IPv4 address, an IPv6 address without brackets, or a hostname. */
export interface Endpoint {
  readonly host: string;
  readonly port: number;
}

export interface BackendConfig {
  /** Canonical `host:port` (IPv6 in brackets), used in logs and metric labels. */
  readonly address: string;
  /** IP address or hostname; hostnames are resolved at connect time. */
  readonly host: string;
  readonly port: number;
  /** Relative share of new connections, a positive integer. Default 1. */
  readonly weight: number;
  /** A backup backend takes connections only while no other backend of the service is up. Default false. */
  readonly backup: boolean;
  /** PROXY protocol header sent to this backend before any client byte, or null for none. Default: the service's setting. */
  readonly proxyProtocol: ProxyProtocolVersion | null;
  /** Open connections this backend may have across all workers, or null for no limit. */
  readonly maxConnections: number | null;
  /**
   * Resolve the hostname periodically in the primary and balance over every
   * address it returns, each as a backend of its own. Only hostnames; default false.
   */
  readonly resolve: boolean;
}

/** Active health checks, run by the primary against every backend of a service. */
export interface HealthCheckConfig {
  /** Time between two checks of one backend. Default 2 s. */
  readonly intervalMs: number;
  /** Time a check may take to connect and, with `expect`, to read the reply. Default 1 s. */
  readonly timeoutMs: number;
  /** Successful checks in a row that mark a down backend up. Default 2. */
  readonly rise: number;
  /** Failed checks in a row that mark an up backend down. Default 3. */
  readonly fall: number;
  /** Bytes sent after connecting, such as "PING\r\n"; null sends nothing. */
  readonly send: string | null;
  /** Prefix the reply must start with, such as "+PONG"; null accepts any connect. */
  readonly expect: string | null;
}

/** Passive checks: failures that workers see on real traffic. */
export interface PassiveCheckConfig {
  /** Connect failures or backend resets in a row that mark a backend down. Default 3. */
  readonly failures: number;
  /** Without active checks, a backend marked down by passive checks is tried again after this long. Default 10 s. */
  readonly cooldownMs: number;
}

export interface Timeouts {
  /** Time allowed for a backend TCP connect before the next backend is tried. Default 5 s. */
  readonly connectMs: number;
  /** A connection with no bytes in either direction for this long is closed. Default 300 s. */
  readonly idleMs: number;
  /** On stop or reload, open connections get this long to finish before they are closed. Default 30 s. */
  readonly drainMs: number;
  /** How long a connection may wait for a free slot when every backend is full. Default 10 s. */
  readonly queueMs: number;
}

export interface ServiceConfig {
  /** Key in the `services` table, or `default` for the top-level form. */
  readonly name: string;
  /** Listen address; port 0 picks a free port, which rsp logs at start-up. */
  readonly listen: Endpoint;
  /** Backend selection. Default `round_robin`. */
  readonly algorithm: Algorithm;
  /** At least one backend. */
  readonly backends: readonly BackendConfig[];
  readonly timeouts: Timeouts;
  /** Log one line per finished connection at info level. Default false. */
  readonly accessLog: boolean;
  /** Active checks, or null when `health_check` is unset or false. */
  readonly healthCheck: HealthCheckConfig | null;
  /** Passive checks, or null when `passive_check = false`. On by default. */
  readonly passiveCheck: PassiveCheckConfig | null;
  /**
   * Networks (`address/prefix`) whose connections must start with a PROXY protocol
   * header, whose client address then replaces the socket's; null accepts no header.
   */
  readonly acceptProxyFrom: readonly string[] | null;
  /** Open connections the service may have across all workers, or null for no limit. */
  readonly maxConnections: number | null;
  /** Open connections one client address may have across all workers, or null for no limit. */
  readonly maxConnectionsPerClient: number | null;
  /** Connections that may wait for a slot in one worker; more are closed at once. Default 1000. */
  readonly maxQueued: number;
  /** Time between two DNS resolutions of a backend with `resolve`. Default 5 s, at least 1 s. */
  readonly resolveIntervalMs: number;
}

export interface Config {
  /** The config file path as given on the command line. */
  readonly file: string;
  /** Worker processes from the file, or null when unset (the CLI and the CPU count decide). */
  readonly workers: number | null;
  /** Accept mode; fixed at start because node:cluster fixes it at the first fork. Default `workers`. */
  readonly accept: AcceptMode;
  /** Address of /metrics, /healthz and /readyz, or null when `metrics = false`. Default 127.0.0.1:9100. */
  readonly metrics: Endpoint | null;
  /** Services in the order of their names, at least one. */
  readonly services: readonly ServiceConfig[];
  /** DNS servers (`ip` or `ip:port`) for backends with `resolve`, or null for the system's. */
  readonly resolvers: readonly string[] | null;
}

export const DEFAULT_TIMEOUTS: Timeouts = { connectMs: 5_000, idleMs: 300_000, drainMs: 30_000, queueMs: 10_000 };
export const DEFAULT_RESOLVE_INTERVAL_MS = 5_000;
export const MIN_RESOLVE_INTERVAL_MS = 1_000;
/** Default bound of the wait queue of one service in one worker. */
export const DEFAULT_MAX_QUEUED = 1_000;
export const DEFAULT_METRICS: Endpoint = { host: '127.0.0.1', port: 9100 };
export const DEFAULT_HEALTH_CHECK: HealthCheckConfig = {
  intervalMs: 2_000,
  timeoutMs: 1_000,
  rise: 2,
  fall: 3,
  send: null,
  expect: null,
};
export const DEFAULT_PASSIVE_CHECK: PassiveCheckConfig = { failures: 3, cooldownMs: 10_000 };
