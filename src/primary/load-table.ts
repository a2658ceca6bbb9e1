// The cluster-wide table of open connections per backend and per client address,
// and of round-robin picks per backend, built from the workers' reports. Each
// worker gets the sum over the others, and adds its own exact counts, so its view
// is stale only by the other workers' part.
import type { ClusterLoad, ServiceLoad } from '../ipc/messages.js';

export class LoadTable {
  private readonly reports = new Map<number, ClusterLoad>();
  private readonly sequences = new Map<number, number>();

  report(workerId: number, load: ClusterLoad, sequence: number): void {
    this.reports.set(workerId, load);
    this.sequences.set(workerId, sequence);
  }

  /** Returns the sequence of the latest report of `workerId`, or 0 before its first. */
  sequenceOf(workerId: number): number {
    return this.sequences.get(workerId) ?? 0;
  }

  remove(workerId: number): void {
    this.reports.delete(workerId);
    this.sequences.delete(workerId);
  }

  /** Returns, for each of `workerIds`, the summed load of every other reporting worker. */
  viewsFor(workerIds: readonly number[]): Map<number, ClusterLoad> {
    const total = sumLoads([...this.reports.values()]);
    const views = new Map<number, ClusterLoad>();
    for (const workerId of workerIds) {
      const own = this.reports.get(workerId);
      views.set(workerId, own === undefined ? total : subtractLoad(total, own));
    }
    return views;
  }
}

function sumLoads(loads: readonly ClusterLoad[]): ClusterLoad {
  const sum: Record<string, { backends: Record<string, number>; clients: Record<string, number>; picks: Record<string, number> }> = {};
  for (const load of loads) {
    for (const [service, serviceLoad] of Object.entries(load)) {
      const target = (sum[service] ??= { backends: {}, clients: {}, picks: {} });
      addCounts(target.backends, serviceLoad.backends, 1);
      addCounts(target.clients, serviceLoad.clients, 1);
      addCounts(target.picks, serviceLoad.picks, 1);
    }
  }
  return sum;
}

function subtractLoad(total: ClusterLoad, own: ClusterLoad): ClusterLoad {
  const result: Record<string, ServiceLoad> = {};
  for (const [service, serviceLoad] of Object.entries(total)) {
    const backends = { ...serviceLoad.backends };
    const clients = { ...serviceLoad.clients };
    const picks = { ...serviceLoad.picks };
    const mine = own[service];
    if (mine !== undefined) {
      addCounts(backends, mine.backends, -1);
      addCounts(clients, mine.clients, -1);
      addCounts(picks, mine.picks, -1);
    }
    result[service] = { backends, clients, picks };
  }
  return result;
}

/** Adds `sign` times each count of `source` to `target`, dropping entries that reach zero. */
function addCounts(target: Record<string, number>, source: Readonly<Record<string, number>>, sign: 1 | -1): void {
  for (const [key, count] of Object.entries(source)) {
    const next = (target[key] ?? 0) + sign * count;
    if (next > 0) target[key] = next;
    else delete target[key];
  }
}
