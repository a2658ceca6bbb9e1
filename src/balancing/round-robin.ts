// Smooth weighted round-robin: a backend of weight 2 gets two of every three
// connections, interleaved (A B A A B A ...) instead of in bursts.
import { isSelectable, type BalancedBackend, type Balancer } from './balancer.js';

export class RoundRobin implements Balancer {
  private readonly backends: readonly BalancedBackend[];
  /** Running score per backend, in the same order as `backends`. */
  private readonly current: number[];

  /** `startOffset` picks are made and discarded up front, which rotates the sequence. */
  constructor(backends: readonly BalancedBackend[], startOffset = 0) {
    this.backends = backends;
    this.current = backends.map(() => 0);
    const none = new Set<BalancedBackend>();
    for (let i = 0; i < startOffset % Math.max(1, totalWeight(backends)); i++) this.pick(none);
  }

  pick(exclude: ReadonlySet<BalancedBackend>): BalancedBackend | undefined {
    // Each pick raises every candidate's score by its weight, takes the highest and
    // lowers it by the total weight, so over one round each backend is picked
    // `weight` times and a heavy backend's turns are spread out.
    let total = 0;
    let best = -1;
    for (let i = 0; i < this.backends.length; i++) {
      const backend = this.backends[i]!;
      if (!isSelectable(backend) || exclude.has(backend)) continue;
      const weight = backend.config.weight;
      this.current[i]! += weight;
      total += weight;
      if (best === -1 || this.current[i]! > this.current[best]!) best = i;
    }
    if (best === -1) return undefined;
    this.current[best]! -= total;
    return this.backends[best];
  }
}

function totalWeight(backends: readonly BalancedBackend[]): number {
  return backends.reduce((sum, backend) => sum + backend.config.weight, 0);
}
