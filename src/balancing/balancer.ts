// The interface every selection algorithm implements, and the per-backend state
// it selects from.
import type { BackendConfig } from '../config/types.js';

/**
 * A backend as the balancer sees it. `active` counts connections being set up or
 * open in this worker. `config` changes when a reload changes the backend's weight.
 */
export interface BalancedBackend {
  config: BackendConfig;
  active: number;
  /** False while health checks have the backend marked down; balancers skip it then. */
  up: boolean;
}

export interface Balancer {
  /**
   * Picks the backend for the next connection attempt, skipping backends that are
   * down or in `exclude` (already tried for this connection). Returns undefined when
   * no backend is left.
   */
  pick(exclude: ReadonlySet<BalancedBackend>): BalancedBackend | undefined;
}
