// Smooth weighted round-robin: a backend of weight 2 gets two of every three
// connections, interleaved (A B A A B A ...) instead of in bursts. The picks of
// other workers are replayed into the scores, so the whole cluster follows one
// rotation however the connections are spread over the workers.
import { isSelectable, type BalancedBackend, type Balancer } from './balancer.js';

export class RoundRobin implements Balancer {
  private readonly backends: readonly BalancedBackend[];
  /** Running score per backend, in the same order as `backends`. */
  private readonly current: number[];

  /**
   * `startOffset` picks are made and discarded up front, which rotates the
   * sequence: workers that pick at the same time, before they learn of each
   * other's picks, then start on different backends.
   */
  constructor(backends: readonly BalancedBackend[], startOffset = 0) {
    this.backends = backends;
    this.current = backends.map(() => 0);
    const none = new Set<BalancedBackend>();
    for (let i = 0; i < startOffset % Math.max(1, totalWeight(backends)); i++) this.pick(none);
  }

  pick(exclude: ReadonlySet<BalancedBackend>): BalancedBackend | undefined {
    // Each pick raises every candidate's score by its weight, takes the highest and
    // lowers it by the total weight, so over one round each backend is picked
    // `weight` times and a heavy backend's turns are spread out. A score is thus
    // the backend's fair share of the picks minus the picks it got, scaled by
    // the total weight.
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

  notePicks(backend: BalancedBackend, count: number): void {
    // The same score changes as `count` picks of `backend`, in one step: every
    // candidate gains its weight per pick and `backend` gives up the total.
    const index = this.backends.indexOf(backend);
    if (index === -1 || count <= 0) return;
    let total = 0;
    for (let i = 0; i < this.backends.length; i++) {
      const candidate = this.backends[i]!;
      if (i !== index && !isSelectable(candidate)) continue;
      this.current[i]! += candidate.config.weight * count;
      total += candidate.config.weight;
    }
    this.current[index]! -= total * count;
  }
}

function totalWeight(backends: readonly BalancedBackend[]): number {
  return backends.reduce((sum, backend) => sum + backend.config.weight, 0);
}
