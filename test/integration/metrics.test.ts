// /metrics, /healthz and /readyz served by the primary: exact cluster-wide counts,
// counters that survive killed workers and reloads, and scrapes that never hang.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { findClosedPort, startEchoBackend, startReplyAfterEofBackend, type Backend } from '../helpers/backends.js';
import { exchange, openConnection, readLine } from '../helpers/client.js';
import { httpGet, metricsAddress, Samples, scrape, scrapeUntil } from '../helpers/metrics.js';
import { patternBuffer } from '../helpers/pattern.js';
import { childPids } from '../helpers/process-tree.js';
import { operationsConfig, reloadRsp } from '../helpers/reload.js';
import { portOf, startRsp, type RspProcess } from '../helpers/rsp.js';
import { listeningPorts } from '../helpers/sockets.js';
import { waitFor } from '../helpers/wait.js';

const REPLY_BYTES = [3_000, 5_000];
const BATCH = 8;

interface TrafficTotals {
  connections: number;
  upstream: number;
  downstream: number;
  failures: string[];
}

/** Starts two backends that read the whole request, then reply 3000 and 5000 bytes. */
async function startReplyBackends(t: { after(fn: () => Promise<void>): void }): Promise<Backend[]> {
  const backends: Backend[] = [];
  for (const [index, bytes] of REPLY_BYTES.entries()) {
    const backend = await startReplyAfterEofBackend(bytes, index + 1);
    t.after(() => backend.close());
    backends.push(backend);
  }
  return backends;
}

/**
 * Makes `count` connections, `BATCH` at a time. Connection i sends a request of a
 * size no other connection uses, and the totals hold the bytes sent and received.
 */
async function sendRequests(port: number, count: number, firstIndex: number): Promise<TrafficTotals> {
  const totals: TrafficTotals = { connections: 0, upstream: 0, downstream: 0, failures: [] };
  for (let start = 0; start < count; start += BATCH) {
    const batch = Array.from({ length: Math.min(BATCH, count - start) }, async (_, offset) => {
      const index = firstIndex + start + offset;
      const request = patternBuffer(1_000 + 37 * index, index);
      const result = await exchange(port, { send: request, timeoutMs: 10_000 });
      if (result.endedBy !== 'end' || !REPLY_BYTES.includes(result.bytes)) {
        totals.failures.push(`request ${index}: ${result.endedBy} after ${result.bytes} bytes`);
      }
      totals.connections++;
      totals.upstream += request.length;
      totals.downstream += result.bytes;
    });
    await Promise.all(batch);
  }
  return totals;
}

function addTotals(a: TrafficTotals, b: TrafficTotals): TrafficTotals {
  return {
    connections: a.connections + b.connections,
    upstream: a.upstream + b.upstream,
    downstream: a.downstream + b.downstream,
    failures: [...a.failures, ...b.failures],
  };
}

function matchesTraffic(samples: Samples, totals: TrafficTotals): boolean {
  return (
    samples.sum('rsp_connections_total') === totals.connections &&
    samples.sum('rsp_bytes_total', { direction: 'upstream' }) === totals.upstream &&
    samples.sum('rsp_bytes_total', { direction: 'downstream' }) === totals.downstream &&
    samples.sum('rsp_connection_duration_seconds_count') === totals.connections
  );
}

/** Waits until the scrape shows `totals`, then asserts each count on its own. */
async function assertCounts(address: string, totals: TrafficTotals): Promise<Samples> {
  const samples = await scrapeUntil(address, (candidate) => matchesTraffic(candidate, totals));
  assert.equal(samples.sum('rsp_connections_total'), totals.connections);
  assert.equal(samples.sum('rsp_bytes_total', { direction: 'upstream' }), totals.upstream);
  assert.equal(samples.sum('rsp_bytes_total', { direction: 'downstream' }), totals.downstream);
  assert.equal(samples.sum('rsp_connection_duration_seconds_count'), totals.connections);
  return samples;
}

/** Cumulative series of rsp: every `_total` counter and every histogram's `_count`, `_sum` and `_bucket`. */
function cumulativeSeries(samples: Samples): Map<string, number> {
  const series = new Map<string, number>();
  for (const name of new Set(samples.samples.map((sample) => sample.name))) {
    if (!name.startsWith('rsp_') || !/_(total|count|sum|bucket)$/.test(name)) continue;
    for (const [key, value] of samples.series(name)) series.set(key, value);
  }
  return series;
}

/** Returns every cumulative series that is missing from `later` or smaller there than in `earlier`. */
function seriesThatWentBack(earlier: Samples, later: Samples): string[] {
  const laterSeries = cumulativeSeries(later);
  const decreased: string[] = [];
  for (const [key, value] of cumulativeSeries(earlier)) {
    const now = laterSeries.get(key);
    if (now === undefined || now < value) decreased.push(`${key}: ${value} -> ${String(now)}`);
  }
  return decreased;
}

async function startTwoWorkers(t: { after(fn: () => Promise<unknown>): void }, backends: readonly Backend[]): Promise<RspProcess> {
  const rsp = await startRsp({ config: operationsConfig({ backends: backends.map((backend) => backend.address) }), workers: 2 });
  t.after(() => rsp.stop());
  return rsp;
}

describe('metrics', () => {
  test('counts match the traffic exactly', async (t) => {
    const backends = await startReplyBackends(t);
    const rsp = await startTwoWorkers(t, backends);
    const address = metricsAddress(rsp.started);

    const totals = await sendRequests(rsp.port, 40, 0);
    assert.deepEqual(totals.failures, []);
    const samples = await assertCounts(address, totals);

    for (const backend of backends) {
      assert.equal(samples.sum('rsp_connections_total', { service: 'default', backend: backend.address }), backend.accepted);
    }
    assert.equal(samples.sum('rsp_connections_active'), 0);
    assert.equal(samples.sum('rsp_backend_connect_duration_seconds_count'), 40);
    assert.equal(samples.sum('rsp_connection_errors_total'), 0);
    assert.equal(samples.sum('rsp_workers'), 2);
  });

  test('counters survive a killed worker', async (t) => {
    const backends = await startReplyBackends(t);
    const rsp = await startTwoWorkers(t, backends);
    const address = metricsAddress(rsp.started);

    const first = await sendRequests(rsp.port, 20, 0);
    const beforeKill = await assertCounts(address, first);

    const victim = childPids(rsp.pid)[0] as number;
    process.kill(victim, 'SIGKILL');
    await rsp.waitForLine((line) => line.msg === 'worker exited unexpectedly; starting a replacement' && line.workerPid === victim);
    await waitFor('a replacement worker', () => childPids(rsp.pid).length === 2 && !childPids(rsp.pid).includes(victim));

    const second = await sendRequests(rsp.port, 20, 20);
    const afterKill = await assertCounts(address, addTotals(first, second));
    assert.deepEqual(seriesThatWentBack(beforeKill, afterKill), []);
    assert.deepEqual([...first.failures, ...second.failures], []);
    assert.equal(afterKill.sum('rsp_workers'), 2);
  });

  test('counters survive a reload', async (t) => {
    const backends = await startReplyBackends(t);
    const rsp = await startTwoWorkers(t, backends);
    const address = metricsAddress(rsp.started);
    const oldWorkers = childPids(rsp.pid);

    const first = await sendRequests(rsp.port, 20, 0);
    const beforeReload = await assertCounts(address, first);

    // A new listen port makes rsp start a new generation of workers and retire the old one.
    const newPort = await findClosedPort();
    const verdict = await reloadRsp(
      rsp,
      operationsConfig({ backends: backends.map((backend) => backend.address), listen: `127.0.0.1:${newPort}` }),
    );
    assert.equal(verdict.mode, 'new_generation', JSON.stringify(verdict));
    await waitFor('the old workers to exit', () => !childPids(rsp.pid).some((pid) => oldWorkers.includes(pid)), 10_000, () =>
      childPids(rsp.pid).join(', '),
    );

    const second = await sendRequests(newPort, 20, 20);
    const afterReload = await assertCounts(address, addTotals(first, second));
    assert.deepEqual(seriesThatWentBack(beforeReload, afterReload), []);
    assert.deepEqual([...first.failures, ...second.failures], []);
    assert.equal(afterReload.sum('rsp_config_reloads_total', { result: 'success' }), 1);
    assert.equal(afterReload.sum('rsp_config_reloads_total', { result: 'failure' }), 0);
  });

  test('drain cut is counted', async (t) => {
    const echo = await startEchoBackend();
    t.after(() => echo.close());
    const config = (listen: string): string => operationsConfig({ backends: [echo.address], listen, timeouts: { drain: 1 } });
    const rsp = await startRsp({ config: config('127.0.0.1:0'), workers: 2 });
    t.after(() => rsp.stop());
    const oldWorkers = childPids(rsp.pid);
    const heldSocket = await openConnection(rsp.port);
    t.after(() => heldSocket.destroy());
    heldSocket.write('held\n');
    assert.equal(await readLine(heldSocket), 'held');

    // The retiring generation drains for the 1 s of the running config, then cuts the held connection.
    const verdict = await reloadRsp(rsp, config(`127.0.0.1:${await findClosedPort()}`));
    assert.equal(verdict.mode, 'new_generation', JSON.stringify(verdict));
    await waitFor('the old workers to exit', () => !childPids(rsp.pid).some((pid) => oldWorkers.includes(pid)), 10_000);
    const samples = await scrape(metricsAddress(rsp.started));

    assert.equal(samples.sum('rsp_connection_errors_total', { reason: 'drain' }), 1);
    assert.equal(samples.sum('rsp_connection_duration_seconds_count'), 1);
    assert.equal(samples.sum('rsp_connections_total'), 1);
    assert.equal(samples.sum('rsp_connections_active'), 0);
  });

  test('scrape answers while workers die', async (t) => {
    const backends = await startReplyBackends(t);
    const rsp = await startTwoWorkers(t, backends);
    const address = metricsAddress(rsp.started);
    const traffic = await sendRequests(rsp.port, 10, 0);
    await assertCounts(address, traffic);

    const problems: string[] = [];
    let previousConnections = 0;
    for (let i = 0; i < 20; i++) {
      if (i === 5 || i === 12) {
        const victim = childPids(rsp.pid)[0];
        if (victim !== undefined) process.kill(victim, 'SIGKILL');
      }
      const result = await httpGet(address, '/metrics', 3_000).catch((error: Error) => ({ status: 0, body: error.message, elapsedMs: 3_000 }));
      if (result.status !== 200) {
        problems.push(`scrape ${i}: status ${result.status}: ${result.body}`);
        continue;
      }
      if (result.elapsedMs >= 3_000) problems.push(`scrape ${i}: took ${result.elapsedMs} ms`);
      const samples = new Samples(result.body);
      const total = samples.sum('rsp_connections_total');
      if (total < previousConnections) problems.push(`scrape ${i}: rsp_connections_total went from ${previousConnections} to ${total}`);
      previousConnections = total;
    }

    assert.deepEqual(problems, []);
    assert.equal(previousConnections, 10);
    const replaced = rsp.lines().filter((line) => line.msg === 'worker exited unexpectedly; starting a replacement');
    assert.equal(replaced.length, 2);
  });

  test('scrape answers with a stopped worker', async (t) => {
    const backends = await startReplyBackends(t);
    const rsp = await startTwoWorkers(t, backends);
    const address = metricsAddress(rsp.started);
    const traffic = await sendRequests(rsp.port, 10, 0);
    await assertCounts(address, traffic);

    // A stopped worker never replies to the snapshot request, so the scrape must give
    // up on it and use its last snapshot.
    const frozen = childPids(rsp.pid)[0] as number;
    process.kill(frozen, 'SIGSTOP');
    let result;
    try {
      result = await httpGet(address, '/metrics', 3_000);
    } finally {
      // Resumed here and not in t.after, where rsp.stop() runs first and would wait
      // for a worker that cannot drain.
      process.kill(frozen, 'SIGCONT');
    }
    assert.equal(result.status, 200);
    assert.ok(result.elapsedMs < 3_000, `the scrape took ${result.elapsedMs} ms`);
    const samples = new Samples(result.body);
    assert.equal(samples.sum('rsp_connections_total'), 10);
  });
});

describe('probes', () => {
  test('healthz, readyz and unknown paths', async (t) => {
    const backends = await startReplyBackends(t);
    const rsp = await startTwoWorkers(t, backends);
    const address = metricsAddress(rsp.started);

    const healthz = await httpGet(address, '/healthz');
    assert.equal(healthz.status, 200);
    assert.equal(healthz.body, 'ok\n');
    const readyz = await httpGet(address, '/readyz');
    assert.equal(readyz.status, 200);
    assert.equal(readyz.body, 'ready\n');
    const unknown = await httpGet(address, '/metricz');
    assert.equal(unknown.status, 404);
  });

  test('backend_up is 1 per backend', async (t) => {
    const backends = await startReplyBackends(t);
    const rsp = await startTwoWorkers(t, backends);

    const samples = await scrape(metricsAddress(rsp.started));
    const up = samples
      .select('rsp_backend_up')
      .map((sample) => ({ service: sample.labels.service, backend: sample.labels.backend ?? '', value: sample.value }));
    const expected = backends.map((backend) => ({ service: 'default', backend: backend.address, value: 1 }));
    assert.deepEqual(
      up.sort((a, b) => a.backend.localeCompare(b.backend)),
      expected.sort((a, b) => a.backend.localeCompare(b.backend)),
    );
  });

  test('metrics listener follows the config', async (t) => {
    const backends = await startReplyBackends(t);
    const withMetrics = await startTwoWorkers(t, backends);
    const withoutMetrics = await startRsp({
      config: operationsConfig({ backends: backends.map((backend) => backend.address), metrics: false }),
      workers: 1,
    });
    t.after(() => withoutMetrics.stop());

    assert.deepEqual(listeningPorts(withMetrics.pid), [withMetrics.port, portOf(metricsAddress(withMetrics.started))].sort((a, b) => a - b));
    assert.equal(withoutMetrics.started.metrics, null);
    assert.deepEqual(listeningPorts(withoutMetrics.pid), [withoutMetrics.port]);
  });
});
