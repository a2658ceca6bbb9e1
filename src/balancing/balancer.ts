// The interface every selection algorithm implements, and the per-backend state
// it selects from.
import type { BackendConfig } from '../config/types.js';

/**
 * A backend with the state a balancer selects on. `config` changes when a reload
 * changes the backend's weight or limit.
 */
export interface BalancedBackend {
  config: BackendConfig;
  /** Connections being set up or open to this backend in this worker. */
  active: number;
  /** The same count summed over the other workers, as of the primary's last update. */
  othersActive: number;
  /** False while health checks have the backend marked down; balancers skip it then. */
  up: boolean;
  /** How far this worker may trust `othersActive`; shared by the backends of a worker. */
  readonly limitView: LimitView;
}

/**
 * The freshness of a worker's view of the other workers' counts, for limits. Right
 * after this worker admits a connection, the others may be admitting connections it
 * cannot see yet. Until the primary acknowledges the new count (`current` again),
 * the worker may use only its share of a limit, so a burst spread over all workers
 * stays within it.
 */
export interface LimitView {
  current: boolean;
  /** Workers in the pool. */
  workers: number;
}

/**
 * Returns whether one more connection stays within `limit`, given this worker's
 * exact count and the others' last reported count.
 */
export function allowsOneMore(own: number, others: number, limit: number, view: LimitView): boolean {
  if (own + others >= limit) return false;
  return view.current || own < Math.ceil(limit / view.workers);
}

/** Returns the open connections to `backend` across the cluster, from this worker's view. */
export function clusterActive(backend: BalancedBackend): number {
  return backend.active + backend.othersActive;
}

/**
 * Returns whether `backend` is up and below its `max_connections`.
 *
 * NOTE: `othersActive` lags the other workers by a few milliseconds. A worker
 * whose view is current may admit one connection beyond its share, so a limit
 * can be exceeded by up to one connection per other worker until the next update.
 */
export function isSelectable(backend: BalancedBackend): boolean {
  const limit = backend.config.maxConnections;
  return backend.up && (limit === null || allowsOneMore(backend.active, backend.othersActive, limit, backend.limitView));
}

export interface Balancer {
  /**
   * Picks the backend for the next connection attempt, skipping backends that are
   * down or in `exclude` (already tried for this connection). Returns undefined when
   * no backend is left.
   */
  pick(exclude: ReadonlySet<BalancedBackend>): BalancedBackend | undefined;

  /**
   * Takes into account `count` connections that other workers sent to `backend`,
   * so that selection stays even across the cluster, not only inside this worker.
   */
  notePicks(backend: BalancedBackend, count: number): void;
}
