// The interface every selection algorithm implements, and the per-backend state
// it selects from.
import type { BackendConfig } from '../config/types.js';

/**
 * A backend as the balancer sees it. `config` changes when a reload changes the
 * backend's weight or limit.
 */
export interface BalancedBackend {
  config: BackendConfig;
  /** Connections being set up or open to this backend in this worker. */
  active: number;
  /** The same count summed over the other workers, as of the primary's last update. */
  othersActive: number;
  /** False while health checks have the backend marked down; balancers skip it then. */
  up: boolean;
}

/** Open connections to `backend` across the cluster, as this worker knows it. */
export function clusterActive(backend: BalancedBackend): number {
  return backend.active + backend.othersActive;
}

/**
 * Whether `backend` is up and below its `max_connections`.
 *
 * NOTE: `othersActive` lags the other workers by a few milliseconds, so
 * connections accepted at the same moment by different workers can exceed a
 * limit by up to one per other worker until the next update.
 */
export function isSelectable(backend: BalancedBackend): boolean {
  const limit = backend.config.maxConnections;
  return backend.up && (limit === null || clusterActive(backend) < limit);
}

export interface Balancer {
  /**
   * Picks the backend for the next connection attempt, skipping backends that are
   * down or in `exclude` (already tried for this connection). Returns undefined when
   * no backend is left.
   */
  pick(exclude: ReadonlySet<BalancedBackend>): BalancedBackend | undefined;
}
