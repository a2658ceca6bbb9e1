// The primary keeps each backend's health state by service and address, so a
// reload that keeps a down backend, or a worker that replaces a dead one, goes on
// skipping it without a new check cycle or a logged flip.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { findClosedPort } from '../helpers/backends.js';
import {
  collectReplies,
  healthConfig,
  healthLines,
  startNamedBackend,
  waitForHealthLine,
  type HealthCheckSeconds,
} from '../helpers/health.js';
import { metricsAddress, scrapeUntil } from '../helpers/metrics.js';
import { childPids } from '../helpers/process-tree.js';
import { reloadRsp } from '../helpers/reload.js';
import { startRsp } from '../helpers/rsp.js';
import { sleep, waitFor } from '../helpers/wait.js';

/** A fresh state would start up and need 2 failed checks, 0.4 s, to be marked down again. */
const CHECK: HealthCheckSeconds = { interval: 0.2, timeout: 0.2, rise: 2, fall: 2 };

describe('health state', () => {
  test('survives in-place and new-worker reloads', async (t) => {
    const good = await startNamedBackend('good');
    t.after(() => good.close());
    const dead = `127.0.0.1:${await findClosedPort()}`;
    const services = { web: [good.address, dead] };
    const rsp = await startRsp({ config: healthConfig({ services, healthCheck: CHECK }) });
    t.after(() => rsp.stop());
    const metrics = metricsAddress(rsp.started);
    await waitForHealthLine(rsp, dead, 'backend is down', 10_000);

    const inPlace = await reloadRsp(rsp, healthConfig({ services, healthCheck: CHECK, timeouts: { idle: 61 } }));
    assert.equal(inPlace.msg, 'reload complete');
    assert.equal(inPlace.mode, 'in_place');
    assert.deepEqual(await collectReplies(rsp.port, 6), Array.from({ length: 6 }, () => 'good'));

    // A second service changes the set of services, so new workers take over. It gets
    // a fixed port because the new workers hand out the shared port-0 socket by listen
    // order, and a second port-0 service could take the one `web` listens on now.
    const otherListen = `127.0.0.1:${await findClosedPort()}`;
    const newWorkers = await reloadRsp(
      rsp,
      healthConfig({ services: { ...services, other: [good.address] }, listen: { other: otherListen }, healthCheck: CHECK }),
    );
    assert.equal(newWorkers.mode, 'new_generation');
    assert.deepEqual(await collectReplies(rsp.port, 6), Array.from({ length: 6 }, () => 'good'));

    await sleep(1_000);
    assert.deepEqual(healthLines(rsp, dead, 'backend is up'), []);
    assert.equal(healthLines(rsp, dead, 'backend is down').length, 1);
    // A worker that believed the backend up would try it first for about half of the clients.
    const samples = await scrapeUntil(metrics, (scraped) => scraped.sum('rsp_connections_total', { backend: good.address }) === 12);
    assert.equal(samples.sum('rsp_connections_total', { service: 'web', backend: good.address }), 12);
    assert.equal(samples.sum('rsp_connection_errors_total', { backend: dead }), 0);
    assert.equal(samples.sum('rsp_backend_up', { service: 'web', backend: dead }), 0);
  });

  test('reaches replacement worker', async (t) => {
    const good = await startNamedBackend('good');
    t.after(() => good.close());
    const dead = `127.0.0.1:${await findClosedPort()}`;
    // Two workers, so the survivor keeps the shared listen socket, and with it the
    // port, open while the replacement starts. At debug level the primary logs
    // "worker listening" and each worker logs every connection with its PID.
    const rsp = await startRsp({
      config: healthConfig({ services: { web: [good.address, dead] }, healthCheck: CHECK }),
      workers: 2,
      accept: 'primary',
      args: ['--log-level', 'debug'],
    });
    t.after(() => rsp.stop());
    await waitForHealthLine(rsp, dead, 'backend is down', 10_000);

    const [victim, survivor] = childPids(rsp.pid);
    assert.ok(victim !== undefined, 'rsp has no worker process');
    assert.ok(survivor !== undefined, `rsp has one worker process, ${victim}`);
    const listeningBefore = rsp.lines().filter((line) => line.msg === 'worker listening').length;
    process.kill(victim, 'SIGKILL');
    const replacement = await waitFor(
      'a replacement worker',
      () => childPids(rsp.pid).find((pid) => pid !== victim && pid !== survivor),
      10_000,
      () => `children: ${childPids(rsp.pid).join(', ')}`,
    );
    await waitFor(
      'the replacement worker to listen',
      () => rsp.lines().filter((line) => line.msg === 'worker listening').length > listeningBefore,
      10_000,
    );

    // The primary spreads connections over both workers, so up to 30 clients give
    // the replacement 3 of them.
    const servedByReplacement = (): number =>
      rsp.lines().filter((line) => line.pid === replacement && line.msg === 'connection closed').length;
    const replies: string[] = [];
    for (let i = 0; i < 30 && servedByReplacement() < 3; i++) {
      replies.push(...(await collectReplies(rsp.port, 1)));
      await sleep(20);
    }
    assert.ok(servedByReplacement() >= 3, `the replacement served ${servedByReplacement()} of ${replies.length} connections`);
    assert.deepEqual(replies, replies.map(() => 'good'));
    const samples = await scrapeUntil(
      metricsAddress(rsp.started),
      (scraped) => scraped.sum('rsp_connections_total') === replies.length,
    );
    assert.equal(samples.sum('rsp_connections_total', { backend: good.address }), replies.length);
    assert.equal(samples.sum('rsp_connection_errors_total', { backend: dead }), 0);
    assert.deepEqual(healthLines(rsp, dead, 'backend is up'), []);
    assert.equal(healthLines(rsp, dead, 'backend is down').length, 1);
  });
});
