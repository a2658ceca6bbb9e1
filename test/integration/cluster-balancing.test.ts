// Balancing across workers: least-connections compares cluster-wide counts, and
// round-robin breaks each worker's ties by the picks of the whole cluster, so
// that connections go to the backends in turn whichever worker accepts them.
import assert from 'node:assert/strict';
import { describe, test, type TestContext } from 'node:test';
import { startIdentifyBackend, type Backend } from '../helpers/backends.js';
import { exchange } from '../helpers/client.js';
import { ClientSet, countNames, limitsConfig, workerHolding, type LimitedService, type WatchedClient } from '../helpers/limits.js';
import { childPids } from '../helpers/process-tree.js';
import { reloadRsp } from '../helpers/reload.js';
import { startRsp } from '../helpers/rsp.js';
import { sleep, waitFor } from '../helpers/wait.js';

/**
 * Time for a changed count to reach the other workers. rsp batches the worker's
 * report and the primary's broadcast for about 5 ms each, plus two IPC hops, so
 * 300 ms leaves a wide margin on a loaded machine.
 */
const PROPAGATION_MS = 300;

/** Starts identify backends named `names` that keep each connection open until the client's EOF. */
async function startHoldingBackends(t: TestContext, names: readonly string[]): Promise<Backend[]> {
  const backends: Backend[] = [];
  for (const name of names) {
    const backend = await startIdentifyBackend({ name, hold: true });
    t.after(() => backend.close());
    backends.push(backend);
  }
  return backends;
}

/** Opens `count` held connections one after another, each once its backend has replied, and returns them in order. */
async function openServedInTurn(clients: ClientSet, port: number, count: number): Promise<WatchedClient[]> {
  const opened: WatchedClient[] = [];
  for (let i = 0; i < count; i++) opened.push(await clients.connectServed(port));
  return opened;
}

function servedCounts(opened: readonly WatchedClient[]): string {
  return JSON.stringify(Object.fromEntries(countNames(opened.map((client) => client.line ?? '?'))));
}

/** Ends each of `clients` and waits until `backends` have `expectedOpen` connections open in total. */
async function closeHeld(clients: readonly WatchedClient[], backends: readonly Backend[], expectedOpen: number): Promise<void> {
  for (const client of clients) client.socket.end();
  const open = (): number => backends.reduce((sum, backend) => sum + backend.openConnections, 0);
  await waitFor(`${expectedOpen} open backend connections`, () => open() === expectedOpen, 5_000, () => `open: ${open()}`);
}

/** A held connection with the worker PID that carries it and the backend that serves it. */
interface HeldEntry {
  readonly client: WatchedClient;
  readonly worker: number;
  readonly backend: string;
}

/** Returns the worker of `workers` and the backend of `backends` that share the most of `held`. */
function busiestPair(held: readonly HeldEntry[], workers: readonly number[], backends: readonly string[]): { worker: number; backend: string } {
  let busiest = { worker: 0, backend: '', count: -1 };
  for (const worker of workers) {
    for (const backend of backends) {
      const count = held.filter((entry) => entry.worker === worker && entry.backend === backend).length;
      if (count > busiest.count) busiest = { worker, backend, count };
    }
  }
  return busiest;
}

describe('cluster-wide least connections', () => {
  test('splits held connections by weight', async (t) => {
    const [alpha, beta, heavy, light] = (await startHoldingBackends(t, ['alpha', 'beta', 'heavy', 'light'])) as [Backend, Backend, Backend, Backend];
    const clients = new ClientSet();
    t.after(() => clients.destroyAll());
    const even: LimitedService = { algorithm: 'least_connections', backends: [{ address: alpha.address }, { address: beta.address }] };
    const weighted: LimitedService = {
      algorithm: 'least_connections',
      backends: [
        { address: heavy.address, weight: 3 },
        { address: light.address, weight: 1 },
      ],
    };
    const rsp = await startRsp({ config: limitsConfig({ even, weighted }), workers: 4 });
    t.after(() => rsp.stop());

    const evenOpened = await openServedInTurn(clients, rsp.ports.even as number, 40);
    const weightedOpened = await openServedInTurn(clients, rsp.ports.weighted as number, 40);

    // Sequential connections may all reach one worker, whose own counts alone would
    // give this split too. The next test covers the cluster-wide part.
    assert.ok(Math.abs(alpha.openConnections - 20) <= 2, `weights 1:1 served ${servedCounts(evenOpened)}`);
    assert.equal(alpha.openConnections + beta.openConnections, 40);
    assert.ok(Math.abs(heavy.openConnections - 30) <= 2, `weights 3:1 served ${servedCounts(weightedOpened)}`);
    assert.equal(heavy.openConnections + light.openConnections, 40);
  });

  test('counts connections of other workers', async (t) => {
    const backends = await startHoldingBackends(t, ['alpha', 'beta']);
    const [alpha, beta] = backends as [Backend, Backend];
    const clients = new ClientSet();
    t.after(() => clients.destroyAll());
    const service: LimitedService = { algorithm: 'least_connections', backends: [{ address: alpha.address }, { address: beta.address }] };
    // The primary hands connections to the workers in turn, which the last step needs.
    const rsp = await startRsp({ config: limitsConfig({ web: service }), workers: 2, accept: 'primary' });
    t.after(() => rsp.stop());
    const port = rsp.ports.web as number;
    const workers = childPids(rsp.pid);
    assert.equal(workers.length, 2, `worker PIDs: ${workers.join(', ')}`);

    const opened = await openServedInTurn(clients, port, 12);
    const held: HeldEntry[] = [];
    for (const client of opened) held.push({ client, worker: await workerHolding(client, port, workers), backend: client.line as string });
    const layout = held.map((entry) => `${entry.backend}@${entry.worker}`).join(' ');

    // Keep the connections of the busiest worker on its busiest (heavy) backend, and
    // one connection of the other worker on the other (light) backend. The other
    // worker then has more connections of its own on the light backend than on the
    // heavy one, while the cluster has fewer there. Only cluster-wide counts send
    // that worker's next connection to the light backend.
    const heavy = busiestPair(held, workers, ['alpha', 'beta']);
    const lightName = heavy.backend === 'alpha' ? 'beta' : 'alpha';
    const lightWorker = workers.find((worker) => worker !== heavy.worker) as number;
    const onHeavy = held.filter((entry) => entry.worker === heavy.worker && entry.backend === heavy.backend);
    const onLight = held.filter((entry) => entry.worker === lightWorker && entry.backend === lightName);
    assert.ok(onHeavy.length >= 3, `worker ${heavy.worker} holds fewer than 3 on one backend: ${layout}`);
    assert.ok(onLight.length >= 1, `worker ${lightWorker} holds none on ${lightName}: ${layout}`);
    const kept = [...onHeavy, ...onLight.slice(0, 1)];

    const closing = held.filter((entry) => !kept.includes(entry)).map((entry) => entry.client);
    await closeHeld(closing, backends, kept.length);
    await sleep(PROPAGATION_MS);

    // The cluster's round-robin handoff gives the next two connections to different
    // workers, so one of them goes to the worker that has more of its own on the
    // light backend.
    const next = await openServedInTurn(clients, port, 2);
    assert.deepEqual(
      next.map((client) => client.line),
      [lightName, lightName],
      `kept ${onHeavy.length} on ${heavy.backend} in worker ${heavy.worker} and 1 on ${lightName} in worker ${lightWorker}`,
    );
  });

  test('keeps counts across an in-place reload', async (t) => {
    const [alpha, beta] = (await startHoldingBackends(t, ['alpha', 'beta'])) as [Backend, Backend];
    const clients = new ClientSet();
    t.after(() => clients.destroyAll());
    const serviceWith = (betaWeight: number): LimitedService => ({
      algorithm: 'least_connections',
      backends: [
        { address: alpha.address, weight: 1 },
        { address: beta.address, weight: betaWeight },
      ],
    });
    const rsp = await startRsp({ config: limitsConfig({ web: serviceWith(1) }), workers: 2 });
    t.after(() => rsp.stop());
    const port = rsp.ports.web as number;

    const opened = await openServedInTurn(clients, port, 6);
    assert.equal(alpha.openConnections, 3, `served ${servedCounts(opened)}`);
    await closeHeld(
      opened.filter((client) => client.line === 'beta'),
      [alpha, beta],
      3,
    );
    await sleep(PROPAGATION_MS);

    const verdict = await reloadRsp(rsp, limitsConfig({ web: serviceWith(2) }));
    assert.equal(verdict.msg, 'reload complete');
    assert.equal(verdict.mode, 'in_place');

    // alpha keeps 3 connections at weight 1, so beta at weight 2 takes the next four.
    // Had the reload reset the counts, both backends would start from 0 and alpha
    // would take one of the four.
    const next = await openServedInTurn(clients, port, 4);
    assert.deepEqual(
      next.map((client) => client.line),
      ['beta', 'beta', 'beta', 'beta'],
    );
    assert.equal(alpha.openConnections, 3);
  });
});

describe('cluster-wide round robin', () => {
  for (const accept of ['workers', 'primary'] as const) {
    test(`spreads connections over backends in turn with accept = "${accept}"`, (t) => spreadsInTurn(t, accept));
  }
});

async function spreadsInTurn(t: TestContext, accept: 'workers' | 'primary'): Promise<void> {
  const backends: Backend[] = [];
  for (const name of ['b0', 'b1', 'b2', 'b3']) {
    const backend = await startIdentifyBackend({ name });
    t.after(() => backend.close());
    backends.push(backend);
  }
  const service: LimitedService = { backends: backends.map((backend) => ({ address: backend.address })) };
  const rsp = await startRsp({ config: limitsConfig({ web: service }), workers: 4, accept });
  t.after(() => rsp.stop());
  const port = rsp.ports.web as number;

  const serve = async (count: number, pauseMs = 0): Promise<string[]> => {
    const names: string[] = [];
    for (let i = 0; i < count; i++) {
      if (i > 0) await sleep(pauseMs);
      const result = await exchange(port, { keepData: true, timeoutMs: 5_000 });
      names.push(result.data?.toString('utf8').trim() || `no reply (${result.endedBy})`);
    }
    return names;
  };

  // Whichever workers accept them, each worker has learnt of the earlier picks
  // by the time the next connection arrives. On a busy machine the news can take
  // longer than one exchange, hence the pause.
  const first = await serve(4, PROPAGATION_MS);
  assert.equal(new Set(first).size, 4, `first four: ${first.join(' ')}`);

  const rest = await serve(100);
  const counts = countNames(rest);
  for (const backend of backends) {
    const served = counts.get(backend.name) ?? 0;
    assert.ok(Math.abs(served - 25) <= 2, `${backend.name} served ${served} of 100: ${JSON.stringify(Object.fromEntries(counts))}`);
  }
}
