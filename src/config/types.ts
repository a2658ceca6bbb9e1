// The validated configuration: plain, readonly data that the primary builds from
// the Lua file and sends to workers over IPC. Every duration is in milliseconds
// here; the Lua file gives seconds and validation converts them once.

export type Algorithm = 'round_robin' | 'least_connections';

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
}

export interface Timeouts {
  /** Time allowed for a backend TCP connect before the next backend is tried. Default 5 s. */
  readonly connectMs: number;
  /** A connection with no bytes in either direction for this long is closed. Default 300 s. */
  readonly idleMs: number;
  /** On stop or reload, open connections get this long to finish before they are closed. Default 30 s. */
  readonly drainMs: number;
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
}

export interface Config {
  /** The config file path as given on the command line. */
  readonly file: string;
  /** Worker processes from the file, or null when unset (the CLI and the CPU count decide). */
  readonly workers: number | null;
  /** Address of /metrics, /healthz and /readyz, or null when `metrics = false`. Default 127.0.0.1:9100. */
  readonly metrics: Endpoint | null;
  /** Services in the order of their names, at least one. */
  readonly services: readonly ServiceConfig[];
}

export const DEFAULT_TIMEOUTS: Timeouts = { connectMs: 5_000, idleMs: 300_000, drainMs: 30_000 };
export const DEFAULT_METRICS: Endpoint = { host: '127.0.0.1', port: 9100 };
