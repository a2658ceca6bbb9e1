// Smooth weighted round-robin: a backend of weight 2 gets two of every three
// connections, interleaved (A B A A B A ...) instead of in bursts.
//
// Across workers: each worker keeps two sets of scores, one over its own picks and
// one over the picks of the whole cluster (its own plus the other workers', which
// the primary passes on a few milliseconds late). A pick follows the worker's own
// scores, so each worker's picks stay evenly spread whatever the delay, and ties
// go to the backend the cluster served least. With equal weights every worker
// meets such a tie at the start of each of its rounds, so the workers' rounds
// interleave into one rotation. Following the cluster scores alone would overshoot:
// every worker would make up for the same late picks at once.
import { isSelectable, type BalancedBackend, type Balancer } from './balancer.js';

export class RoundRobin implements Balancer {
  private readonly backends: readonly BalancedBackend[];
  /** Score per backend over this worker's picks, in the same order as `backends`. */
  private readonly own: number[];
  /** Score per backend over the picks of the whole cluster. */
  private readonly cluster: number[];

  /**
   * `startOffset` picks are counted into the cluster scores up front, so workers
   * that pick at the same moment, before they learn of each other's picks, break
   * their first ties towards different backends.
   */
  constructor(backends: readonly BalancedBackend[], startOffset = 0) {
    this.backends = backends;
    this.own = backends.map(() => 0);
    this.cluster = backends.map(() => 0);
    const none = new Set<BalancedBackend>();
    for (let i = 0; i < startOffset % Math.max(1, totalWeight(backends)); i++) {
      const backend = this.pickBy(this.cluster, this.cluster, none);
      if (backend !== undefined) this.notePicks(backend, 1);
    }
  }

  pick(exclude: ReadonlySet<BalancedBackend>): BalancedBackend | undefined {
    const backend = this.pickBy(this.own, this.cluster, exclude);
    if (backend !== undefined) this.notePicks(backend, 1);
    return backend;
  }

  notePicks(backend: BalancedBackend, count: number): void {
    this.addPicks(this.cluster, backend, count);
  }

  /**
   * Returns the candidate with the highest `primary` score after one more round
   * of weight, ties going to the highest `tieBreak` score, and counts the pick
   * into `primary` when it is not `tieBreak`.
   */
  private pickBy(primary: number[], tieBreak: number[], exclude: ReadonlySet<BalancedBackend>): BalancedBackend | undefined {
    // A score is the backend's fair share of the picks minus the picks it got,
    // both times the total weight. Each pick raises every candidate's score by
    // its weight and lowers the picked one's by the total. So over one round each
    // backend is picked `weight` times, and a heavy backend's turns are spread out.
    let best = -1;
    for (let i = 0; i < this.backends.length; i++) {
      const backend = this.backends[i]!;
      if (!isSelectable(backend) || exclude.has(backend)) continue;
      if (best === -1) {
        best = i;
        continue;
      }
      const weight = backend.config.weight;
      const bestWeight = this.backends[best]!.config.weight;
      const lead = primary[i]! + weight - (primary[best]! + bestWeight);
      if (lead > 0 || (lead === 0 && tieBreak[i]! + weight > tieBreak[best]! + bestWeight)) best = i;
    }
    if (best === -1) return undefined;
    const picked = this.backends[best]!;
    if (primary !== tieBreak) this.addPicks(primary, picked, 1);
    return picked;
  }

  /** Counts `count` picks of `backend` into `scores`: every candidate gains its weight per pick and `backend` gives up the total. */
  private addPicks(scores: number[], backend: BalancedBackend, count: number): void {
    const index = this.backends.indexOf(backend);
    if (index === -1 || count <= 0) return;
    let total = 0;
    for (let i = 0; i < this.backends.length; i++) {
      const candidate = this.backends[i]!;
      if (i !== index && !isSelectable(candidate)) continue;
      scores[i]! += candidate.config.weight * count;
      total += candidate.config.weight;
    }
    scores[index]! -= total * count;
  }
}

function totalWeight(backends: readonly BalancedBackend[]): number {
  return backends.reduce((sum, backend) => sum + backend.config.weight, 0);
}
