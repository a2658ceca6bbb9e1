// Connection limits: `max_connections` on backends and services, the wait queue
// with its timeout and bound, and `max_connections_per_client`, each across the
// workers of a cluster where it matters.
import assert from 'node:assert/strict';
import { describe, test, type TestContext } from 'node:test';
import { startIdentifyBackend, type Backend } from '../helpers/backends.js';
import { ClientSet, limitsConfig, workerHolding, type LimitedService, type WatchedClient } from '../helpers/limits.js';
import { metricsAddress, scrapeUntil } from '../helpers/metrics.js';
import { childPids } from '../helpers/process-tree.js';
import { startRsp, type RspProcess } from '../helpers/rsp.js';
import { sleep, waitFor } from '../helpers/wait.js';

/**
 * Pause between connections opened one after another, so that each worker sees the
 * counts of the previous ones. rsp batches the worker's report and the primary's
 * broadcast for about 5 ms each, plus two IPC hops.
 */
const OPEN_PAUSE_MS = 50;
/** How long a connection that should wait is watched for a reply it must not get. */
const WAITING_CHECK_MS = 300;
/** Bound for a waiting connection to reach a backend once a slot is free. */
const SERVE_AFTER_FREE_MS = 2_000;
/** Bound for a connection turned away at once to see its end. */
const REJECT_WITHIN_MS = 1_000;

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

/** Opens `count` connections that a backend serves, one after another and `OPEN_PAUSE_MS` apart. */
async function openServedApart(clients: ClientSet, port: number, count: number): Promise<WatchedClient[]> {
  const opened: WatchedClient[] = [];
  for (let i = 0; i < count; i++) {
    opened.push(await clients.connectServed(port));
    await sleep(OPEN_PAUSE_MS);
  }
  return opened;
}

/** Opens `count` connections `OPEN_PAUSE_MS` apart without waiting for a reply. */
async function openApart(clients: ClientSet, port: number, count: number): Promise<WatchedClient[]> {
  const opened: WatchedClient[] = [];
  for (let i = 0; i < count; i++) {
    opened.push(await clients.connect(port));
    await sleep(OPEN_PAUSE_MS);
  }
  return opened;
}

function acceptedBy(backends: readonly Backend[]): number {
  return backends.reduce((sum, backend) => sum + backend.accepted, 0);
}

function openAt(backends: readonly Backend[]): number {
  return backends.reduce((sum, backend) => sum + backend.openConnections, 0);
}

/** Scrapes until `rsp_connection_errors_total{reason, backend=""}` reaches `expected`, and returns the last value. */
async function serviceErrors(rsp: RspProcess, reason: string, expected: number): Promise<number> {
  const labels = { reason, backend: '' };
  const samples = await scrapeUntil(metricsAddress(rsp.started), (scraped) => scraped.sum('rsp_connection_errors_total', labels) >= expected);
  return samples.sum('rsp_connection_errors_total', labels);
}

/** Returns the first of `held` that a worker other than `waiterWorker` carries, with `workers` listing the worker of each. */
function heldInOtherWorker(held: readonly WatchedClient[], workers: readonly number[], waiterWorker: number): WatchedClient {
  const index = workers.findIndex((worker) => worker !== waiterWorker);
  assert.ok(index !== -1, `worker ${waiterWorker} holds the waiter and every held connection`);
  return held[index] as WatchedClient;
}

/** Returns the PID of the worker that carries each of `opened`, in the same order. */
async function locateWorkers(rsp: RspProcess, opened: readonly WatchedClient[]): Promise<number[]> {
  const workerPids = childPids(rsp.pid);
  const workers: number[] = [];
  for (const client of opened) workers.push(await workerHolding(client, rsp.ports.web as number, workerPids));
  return workers;
}

describe('backend max_connections', () => {
  test('queues when every backend is full', async (t) => {
    const backends = await startHoldingBackends(t, ['alpha', 'beta']);
    const clients = new ClientSet();
    t.after(() => clients.destroyAll());
    const service: LimitedService = { backends: backends.map((backend) => ({ address: backend.address, maxConnections: 3 })) };
    const rsp = await startRsp({ config: limitsConfig({ web: service }, { queue: 1 }), workers: 2, accept: 'primary' });
    t.after(() => rsp.stop());
    const port = rsp.ports.web as number;

    const held = await openServedApart(clients, port, 6);
    for (const backend of backends) assert.equal(backend.openConnections, 3, `${backend.name} open connections`);

    // Find the workers before the waiter's 1 s queue timeout starts.
    const heldWorkers = await locateWorkers(rsp, held);

    const waiter = await clients.connect(port);
    const [waiterWorker] = await locateWorkers(rsp, [waiter]);
    await sleep(WAITING_CHECK_MS);
    assert.equal(acceptedBy(backends), 6, 'a backend accepted the seventh connection while both were full');
    assert.equal(waiter.received, '');

    // Free a slot in the worker that does not hold the waiter, so the waiter's worker
    // learns of it only from the primary's update.
    const freed = heldInOtherWorker(held, heldWorkers, waiterWorker as number);
    freed.socket.end();
    const servedBy = await waiter.waitForLine(SERVE_AFTER_FREE_MS);
    assert.equal(servedBy, freed.line);
    assert.equal(acceptedBy(backends), 7);

    // The other worker learns of the waiter's new connection a moment later, and a
    // connection that reached it before then could take the slot a second time.
    await sleep(WAITING_CHECK_MS);
    const late = await clients.connect(port);
    await late.waitForEnd(5_000);
    const waitedMs = (late.endedAt as number) - late.connectedAt;
    assert.ok(waitedMs >= 800, `closed after ${waitedMs} ms with timeouts.queue = 1`);
    assert.ok(waitedMs <= 4_000, `closed after ${waitedMs} ms with timeouts.queue = 1`);
    assert.equal(late.received, '');
    assert.equal(acceptedBy(backends), 7);
    assert.equal(await serviceErrors(rsp, 'queue_timeout', 1), 1);
  });
});

describe('wait queue', () => {
  test('serves waiters in arrival order', async (t) => {
    const backends = await startHoldingBackends(t, ['only']);
    const only = backends[0] as Backend;
    const clients = new ClientSet();
    t.after(() => clients.destroyAll());
    const service: LimitedService = { backends: [{ address: only.address, maxConnections: 1 }] };
    const rsp = await startRsp({ config: limitsConfig({ web: service }), workers: 1 });
    t.after(() => rsp.stop());
    const port = rsp.ports.web as number;

    const holder = await clients.connectServed(port);
    const [first, second, third] = (await openApart(clients, port, 3)) as [WatchedClient, WatchedClient, WatchedClient];
    await sleep(WAITING_CHECK_MS);
    assert.equal(only.accepted, 1, 'the backend accepted a waiter while its only slot was taken');

    holder.socket.end();
    await first.waitForLine(SERVE_AFTER_FREE_MS);
    assert.equal(second.line, undefined, 'the second waiter was served with the first');
    assert.equal(third.line, undefined, 'the third waiter was served with the first');

    first.socket.end();
    await second.waitForLine(SERVE_AFTER_FREE_MS);
    assert.equal(third.line, undefined, 'the third waiter was served with the second');

    second.socket.end();
    await third.waitForLine(SERVE_AFTER_FREE_MS);
    assert.equal(only.accepted, 4);
  });

  test('turns away waiters beyond max_queued', async (t) => {
    const backends = await startHoldingBackends(t, ['only']);
    const only = backends[0] as Backend;
    const clients = new ClientSet();
    t.after(() => clients.destroyAll());
    const service: LimitedService = { backends: [{ address: only.address, maxConnections: 1 }], maxQueued: 2 };
    const rsp = await startRsp({ config: limitsConfig({ web: service }), workers: 1 });
    t.after(() => rsp.stop());
    const port = rsp.ports.web as number;

    await clients.connectServed(port);
    const queued = await openApart(clients, port, 2);
    const extra = await clients.connect(port);

    const endedBy = await extra.waitForEnd(REJECT_WITHIN_MS);
    assert.ok(['end', 'ECONNRESET'].includes(endedBy), `the third waiter ended by ${endedBy}`);
    assert.equal(extra.received, '');
    for (const waiter of queued) assert.equal(waiter.endedBy, undefined, `a queued connection ended: ${waiter.describe()}`);
    assert.equal(only.accepted, 1);
    assert.equal(await serviceErrors(rsp, 'queue_full', 1), 1);
  });
});

/** Outcome of a burst of connections at a service limit. */
interface BurstResult {
  /** Maximum of the connections that the backends had open at once while the burst settled. */
  readonly maxOpen: number;
}

/**
 * Starts rsp with 2 workers and a service `max_connections = 4` over two backends,
 * opens `count` connections at once, and samples the backends' open connections
 * every 5 ms for 1 s. With `accept = "primary"`, connections arriving together
 * reach both workers within the lag of the counts; with "workers", the kernel
 * spreads them as it likes.
 */
async function openBurst(t: TestContext, count: number, accept: 'primary' | 'workers' = 'primary'): Promise<BurstResult> {
  const backends = await startHoldingBackends(t, ['alpha', 'beta']);
  const clients = new ClientSet();
  t.after(() => clients.destroyAll());
  const service: LimitedService = { backends: backends.map((backend) => ({ address: backend.address })), maxConnections: 4 };
  const rsp = await startRsp({ config: limitsConfig({ web: service }), workers: 2, accept });
  t.after(() => rsp.stop());

  await Promise.all(Array.from({ length: count }, () => clients.connect(rsp.ports.web as number)));
  let maxOpen = 0;
  const deadline = Date.now() + 1_000;
  while (Date.now() < deadline) {
    maxOpen = Math.max(maxOpen, openAt(backends));
    await sleep(5);
  }
  return { maxOpen };
}

describe('service max_connections', () => {
  test('caps open connections at four', async (t) => {
    const backends = await startHoldingBackends(t, ['alpha', 'beta']);
    const clients = new ClientSet();
    t.after(() => clients.destroyAll());
    const service: LimitedService = { backends: backends.map((backend) => ({ address: backend.address })), maxConnections: 4 };
    const rsp = await startRsp({ config: limitsConfig({ web: service }), workers: 2, accept: 'primary' });
    t.after(() => rsp.stop());
    const port = rsp.ports.web as number;

    const held = await openServedApart(clients, port, 4);
    assert.equal(openAt(backends), 4);
    const heldWorkers = await locateWorkers(rsp, held);

    const waiter = await clients.connect(port);
    const [waiterWorker] = await locateWorkers(rsp, [waiter]);
    await sleep(WAITING_CHECK_MS);
    assert.equal(acceptedBy(backends), 4, 'a backend accepted the fifth connection at the service limit');
    assert.equal(waiter.received, '');

    heldInOtherWorker(held, heldWorkers, waiterWorker as number).socket.end();
    await waiter.waitForLine(SERVE_AFTER_FREE_MS);
    assert.equal(openAt(backends), 4);
  });

  test('caps each worker in a burst', async (t) => {
    const burst = await openBurst(t, 12);

    // Each worker counts its own connections exactly, so however late the counts of
    // the other worker arrive, neither worker opens more than 4.
    assert.ok(burst.maxOpen <= 8, `${burst.maxOpen} connections were open at the backends at once`);
    assert.ok(burst.maxOpen >= 4, `only ${burst.maxOpen} of 12 connections reached a backend`);
  });

  // A worker that has just admitted a connection may only fill its share of the
  // limit until the primary acknowledges its count, so a burst spread over both
  // workers overshoots by at most one connection per other worker.
  for (const accept of ['primary', 'workers'] as const) {
    test(`overshoots by one per other worker with accept = "${accept}"`, async (t) => {
      const burst = await openBurst(t, 12, accept);

      assert.ok(burst.maxOpen <= 5, `${burst.maxOpen} connections were open at the backends at once`);
    });
  }
});

describe('max_connections_per_client', () => {
  test('turns away a fourth connection', async (t) => {
    const backends = await startHoldingBackends(t, ['alpha', 'beta']);
    const clients = new ClientSet();
    t.after(() => clients.destroyAll());
    const service: LimitedService = { backends: backends.map((backend) => ({ address: backend.address })), maxConnectionsPerClient: 3 };
    const rsp = await startRsp({ config: limitsConfig({ web: service }), workers: 2, accept: 'primary' });
    t.after(() => rsp.stop());
    const port = rsp.ports.web as number;

    const held = await openServedApart(clients, port, 3);
    assert.equal(openAt(backends), 3);

    const fourth = await clients.connect(port);
    const endedBy = await fourth.waitForEnd(REJECT_WITHIN_MS);
    assert.ok(['end', 'ECONNRESET'].includes(endedBy), `the fourth connection ended by ${endedBy}`);
    assert.equal(fourth.received, '');
    assert.equal(acceptedBy(backends), 3);
    assert.equal(await serviceErrors(rsp, 'client_limit', 1), 1);

    const closed = held[0] as WatchedClient;
    closed.socket.end();
    await waitFor('the closed connection to finish', () => closed.endedBy !== undefined && openAt(backends) === 2, 5_000, () => closed.describe());
    await sleep(WAITING_CHECK_MS);
    const again = await clients.connectServed(port);
    assert.ok(again.line === 'alpha' || again.line === 'beta', again.describe());
    assert.equal(openAt(backends), 3);
  });
});
