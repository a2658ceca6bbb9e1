// Weighted least-connections: the backend with the fewest open connections across
// the cluster per unit of weight gets the next connection. Ties go to the backends
// in turn.
import { clusterActive, isSelectable, type BalancedBackend, type Balancer } from './balancer.js';

export class LeastConnections implements Balancer {
  private readonly backends: readonly BalancedBackend[];
  /** Index where the next tie-break scan starts, so equal backends take turns. */
  private nextStart = 0;

  /** `startOffset` sets the backend that wins the first tie. */
  constructor(backends: readonly BalancedBackend[], startOffset = 0) {
    this.backends = backends;
    this.nextStart = backends.length === 0 ? 0 : startOffset % backends.length;
  }

  pick(exclude: ReadonlySet<BalancedBackend>): BalancedBackend | undefined {
    const count = this.backends.length;
    let best: BalancedBackend | undefined;
    let bestIndex = -1;
    for (let step = 0; step < count; step++) {
      const index = (this.nextStart + step) % count;
      const backend = this.backends[index]!;
      if (!isSelectable(backend) || exclude.has(backend)) continue;
      // Compare active/weight without division: a/wa < b/wb  <=>  a*wb < b*wa.
      if (best === undefined || clusterActive(backend) * best.config.weight < clusterActive(best) * backend.config.weight) {
        best = backend;
        bestIndex = index;
      }
    }
    if (best !== undefined) this.nextStart = (bestIndex + 1) % count;
    return best;
  }

  /** Other workers' connections reach this balancer through `othersActive` instead. */
  notePicks(): void {}
}
