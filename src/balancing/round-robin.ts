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
    for (let i = 0; i < startOffset % Math.max(1, totalWeight(backends)); i++) this.pickBy(this.cluster, this.cluster, NO_BACKENDS, [this.cluster]);
  }

  pick(exclude: ReadonlySet<BalancedBackend>): BalancedBackend | undefined {
    return this.pickBy(this.own, this.cluster, exclude, [this.own, this.cluster]);
  }

  notePicks(backend: BalancedBackend, count: number): void {
    const index = this.backends.indexOf(backend);
    if (index === -1 || count <= 0) return;
    this.countPicks(this.cluster, index, count, NO_BACKENDS);
  }

  /**
   * Picks the candidate with the highest `primary` score after one more round of
   * weight, ties going to the highest `tieBreak` score, and counts the pick into
   * each of `update`.
   */
  private pickBy(
    primary: readonly number[],
    tieBreak: readonly number[],
    exclude: ReadonlySet<BalancedBackend>,
    update: readonly number[][],
  ): BalancedBackend | undefined {
    // A score is the backend's fair share of the picks minus the picks it got,
    // both times the total weight. Each pick raises every candidate's score by
    // its weight and lowers the picked one's by the candidates' total. So over one
    // round each backend is picked `weight` times, and a heavy backend's turns are
    // spread out. Backends left out of a pick (down, full or already tried for
    // this connection) gain nothing from it, so a retry does not cost the next
    // connection its turn.
    let best = -1;
    for (let i = 0; i < this.backends.length; i++) {
      const backend = this.backends[i]!;
      if (!isSelectable(backend) || exclude.has(backend)) continue;
      const weight = backend.config.weight;
      if (best === -1) {
        best = i;
        continue;
      }
      const bestWeight = this.backends[best]!.config.weight;
      const lead = primary[i]! + weight - (primary[best]! + bestWeight);
      if (lead > 0 || (lead === 0 && tieBreak[i]! + weight > tieBreak[best]! + bestWeight)) best = i;
    }
    if (best === -1) return undefined;
    for (const scores of update) this.countPicks(scores, best, 1, exclude);
    return this.backends[best];
  }

  /**
   * Counts `count` picks of the backend at `picked` into `scores` in one step:
   * every selectable backend outside `exclude` gains its weight per pick, and
   * `picked` gives up their total.
   */
  private countPicks(scores: number[], picked: number, count: number, exclude: ReadonlySet<BalancedBackend>): void {
    let total = 0;
    for (let i = 0; i < this.backends.length; i++) {
      const backend = this.backends[i]!;
      if (i !== picked && (!isSelectable(backend) || exclude.has(backend))) continue;
      scores[i]! += backend.config.weight * count;
      total += backend.config.weight;
    }
    scores[picked]! -= total * count;
  }
}

const NO_BACKENDS: ReadonlySet<BalancedBackend> = new Set();

function totalWeight(backends: readonly BalancedBackend[]): number {
  return backends.reduce((sum, backend) => sum + backend.config.weight, 0);
}
