// Passive health checks: workers report failed connects and backend resets, and the
// primary marks a backend down after `failures` of them in a row. Without active
// checks the backend comes back after the cool-down. With active checks only `rise`
// passed checks bring it back.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { findClosedPort, startResettingBackend } from '../helpers/backends.js';
import { exchange } from '../helpers/client.js';
import {
  collectReplies,
  healthConfig,
  healthLines,
  millisecondsBetween,
  startNamedBackend,
  waitForHealthLine,
} from '../helpers/health.js';
import { metricsAddress, scrapeUntil } from '../helpers/metrics.js';
import { startRsp } from '../helpers/rsp.js';
import { sleep } from '../helpers/wait.js';

/** Upper bound on client connections a test makes while waiting for a backend to be marked down. */
const MAX_CLIENTS = 12;

describe('passive health check', () => {
  test('marks refusing backend down', async (t) => {
    const good = await startNamedBackend('good');
    t.after(() => good.close());
    const refusing = `127.0.0.1:${await findClosedPort()}`;
    const rsp = await startRsp({
      config: healthConfig({ services: { web: [refusing, good.address] }, passiveCheck: { failures: 3, cooldown: 1 } }),
    });
    t.after(() => rsp.stop());
    const metrics = metricsAddress(rsp.started);

    // Round-robin sends about every other client to the refusing backend first, and
    // each such client is then served by `good`. The pause lets the down state reach
    // the worker before the next client, so the refused count stops at exactly 3.
    const replies: string[] = [];
    for (let i = 0; i < MAX_CLIENTS && healthLines(rsp, refusing, 'backend is down').length === 0; i++) {
      replies.push(...(await collectReplies(rsp.port, 1)));
      await sleep(100);
    }
    assert.deepEqual(replies, replies.map(() => 'good'));
    const down = await waitForHealthLine(rsp, refusing, 'backend is down', 2_000);
    assert.equal(down.level, 'warn');
    assert.equal(down.reason, '3 connection failures in a row: refused');
    assert.equal(down.backendsUp, 1);
    assert.equal(down.backends, 2);

    assert.deepEqual(await collectReplies(rsp.port, 4), ['good', 'good', 'good', 'good']);
    const whileDown = await scrapeUntil(
      metrics,
      (samples) => samples.sum('rsp_connections_total', { backend: good.address }) === replies.length + 4,
    );
    assert.equal(whileDown.sum('rsp_connections_total', { backend: good.address }), replies.length + 4);
    assert.equal(whileDown.sum('rsp_connection_errors_total', { backend: refusing, reason: 'refused' }), 3);
    assert.equal(whileDown.sum('rsp_backend_up', { backend: refusing }), 0);

    const up = await waitForHealthLine(rsp, refusing, 'backend is up', 5_000);
    assert.equal(up.level, 'info');
    assert.equal(up.reason, 'passive cool-down elapsed');
    assert.equal(up.backendsUp, 2);
    const cooldownMs = millisecondsBetween(down, up);
    assert.ok(cooldownMs >= 900, `marked up ${cooldownMs} ms after the down line; the cool-down is 1 s`);
    assert.ok(cooldownMs <= 4_000, `marked up ${cooldownMs} ms after the down line; the cool-down is 1 s`);

    // Back in the rotation, the backend is tried (and refuses) again.
    assert.deepEqual(await collectReplies(rsp.port, 3), ['good', 'good', 'good']);
    const afterUp = await scrapeUntil(
      metrics,
      (samples) => samples.sum('rsp_connection_errors_total', { backend: refusing, reason: 'refused' }) > 3,
    );
    assert.ok(afterUp.sum('rsp_connection_errors_total', { backend: refusing, reason: 'refused' }) > 3);
  });

  test('counts successes of other workers', async (t) => {
    let flaky = await startNamedBackend('flaky');
    const port = flaky.port;
    t.after(() => flaky.close());
    const rsp = await startRsp({
      config: healthConfig({ services: { web: [flaky.address] }, passiveCheck: { failures: 3, cooldown: 30 } }),
      workers: 2,
      accept: 'primary',
    });
    t.after(() => rsp.stop());

    // The primary hands sequential connections to the two workers in turn, so the
    // clients below alternate between worker A and worker B.
    assert.deepEqual(await collectReplies(rsp.port, 1), ['flaky']); // A: success, not reported
    await flaky.close();
    await collectReplies(rsp.port, 1); // B: failure 1
    await sleep(300);
    flaky = await startNamedBackend('flaky', port);
    // A never failed itself, but the primary sent it the pending failures, so
    // it reports this success and the run of failures starts again.
    assert.deepEqual(await collectReplies(rsp.port, 1), ['flaky']);
    await sleep(300);
    await flaky.close();
    await collectReplies(rsp.port, 2); // B, then A: failures 1 and 2 of a new run
    await sleep(500);

    assert.deepEqual(healthLines(rsp, flaky.address, 'backend is down'), []);
  });

  test('marks resetting backend down', async (t) => {
    const good = await startNamedBackend('good');
    t.after(() => good.close());
    // Accepts, sends 10 bytes after the client's first byte and resets 50 ms later.
    const resetting = await startResettingBackend(10, 1, 50);
    t.after(() => resetting.close());
    const rsp = await startRsp({
      config: healthConfig({ services: { web: [resetting.address, good.address] }, passiveCheck: { failures: 3, cooldown: 10 } }),
    });
    t.after(() => rsp.stop());
    const metrics = metricsAddress(rsp.started);

    const outcomes: string[] = [];
    for (let i = 0; i < MAX_CLIENTS && healthLines(rsp, resetting.address, 'backend is down').length === 0; i++) {
      const result = await exchange(rsp.port, { send: 'x', endAfterSend: false, keepData: true, timeoutMs: 5_000 });
      outcomes.push(`${result.endedBy}:${result.bytes}`);
      await sleep(100);
    }
    const samples = await scrapeUntil(
      metrics,
      (scraped) => scraped.sum('rsp_connection_errors_total', { backend: resetting.address, reason: 'reset' }) >= 3,
    );
    const resets = samples.sum('rsp_connection_errors_total', { backend: resetting.address, reason: 'reset' });
    assert.ok(resets >= 3, `${resets} backend resets counted; client outcomes: ${outcomes.join(', ')}`);

    const down = await waitForHealthLine(rsp, resetting.address, 'backend is down', 2_000);
    assert.equal(down.reason, '3 connection failures in a row: reset');
  });

  test('leaves recovery to active checks', async (t) => {
    const a = await startNamedBackend('a');
    t.after(() => a.close());
    const b = await startNamedBackend('b');
    t.after(() => b.close());
    const rsp = await startRsp({
      config: healthConfig({
        services: { web: [a.address, b.address] },
        healthCheck: { interval: 0.5, timeout: 0.5, rise: 2, fall: 3 },
        passiveCheck: { failures: 3, cooldown: 0.2 },
      }),
    });
    t.after(() => rsp.stop());

    // Clients without pauses reach 3 refused connects well before 3 failed checks, 1 s or more apart.
    await a.close();
    for (let i = 0; i < MAX_CLIENTS && healthLines(rsp, a.address, 'backend is down').length === 0; i++) {
      await collectReplies(rsp.port, 1);
    }
    const down = await waitForHealthLine(rsp, a.address, 'backend is down', 2_000);
    assert.equal(down.reason, '3 connection failures in a row: refused');

    // Five cool-downs pass, and the failing checks keep the backend down.
    await sleep(1_000);
    assert.deepEqual(healthLines(rsp, a.address, 'backend is up'), []);

    const restarted = await startNamedBackend('a', a.port);
    t.after(() => restarted.close());
    const up = await waitForHealthLine(rsp, a.address, 'backend is up', 10_000);
    assert.equal(up.reason, '2 checks passed in a row');
    assert.equal(healthLines(rsp, a.address, 'backend is down').length, 1);
  });
});
