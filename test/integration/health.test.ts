// Active health checks: the primary marks a backend down after `fall` failed checks
// and up after `rise` passed ones. It logs each flip once, mirrors it in
// rsp_backend_up and sends it to the workers, which then skip a down backend.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { startEchoBackend } from '../helpers/backends.js';
import {
  collectReplies,
  healthConfig,
  healthLines,
  startNamedBackend,
  startPingBackend,
  waitForHealthLine,
  type HealthCheckSeconds,
} from '../helpers/health.js';
import { metricsAddress, scrapeUntil } from '../helpers/metrics.js';
import { startRsp } from '../helpers/rsp.js';
import { sleep, waitFor } from '../helpers/wait.js';

const CHECK: HealthCheckSeconds = { interval: 0.25, timeout: 0.25, rise: 2, fall: 3 };

describe('active health check', () => {
  test('marks stopped backend down and up', async (t) => {
    const a = await startNamedBackend('a');
    t.after(() => a.close());
    const b = await startNamedBackend('b');
    t.after(() => b.close());
    const rsp = await startRsp({ config: healthConfig({ services: { web: [a.address, b.address] }, healthCheck: CHECK }) });
    t.after(() => rsp.stop());
    const metrics = metricsAddress(rsp.started);

    const closedAt = Date.now();
    await a.close();
    const down = await waitForHealthLine(rsp, a.address, 'backend is down', 10_000);
    const elapsedMs = Date.now() - closedAt;
    // `fall` checks one interval apart: at least two intervals after the close, and
    // at most one interval more for the first check plus 2.75 s of slack for a loaded machine.
    assert.ok(elapsedMs >= 400, `marked down ${elapsedMs} ms after the close, before 3 checks could fail`);
    assert.ok(elapsedMs <= 4_000, `marked down ${elapsedMs} ms after the close`);
    assert.equal(down.level, 'warn');
    assert.equal(down.service, 'web');
    assert.equal(down.reason, '3 checks failed in a row: refused');
    assert.equal(down.backendsUp, 1);
    assert.equal(down.backends, 2);

    const whileDown = await scrapeUntil(metrics, (samples) => samples.sum('rsp_backend_up', { backend: a.address }) === 0);
    assert.equal(whileDown.sum('rsp_backend_up', { service: 'web', backend: a.address }), 0);
    assert.equal(whileDown.sum('rsp_backend_up', { service: 'web', backend: b.address }), 1);

    assert.deepEqual(await collectReplies(rsp.port, 10), Array.from({ length: 10 }, () => 'b'));
    // A failover after a refused connect would also reply `b`, so the absence of refused connects shows that workers skip `a`.
    const afterClients = await scrapeUntil(metrics, (samples) => samples.sum('rsp_connections_total', { backend: b.address }) === 10);
    assert.equal(afterClients.sum('rsp_connections_total', { backend: b.address }), 10);
    assert.equal(afterClients.sum('rsp_connection_errors_total', { backend: a.address }), 0);

    // Four more intervals of failed checks log nothing new.
    await sleep(1_000);
    assert.equal(healthLines(rsp, a.address, 'backend is down').length, 1);
    assert.equal(healthLines(rsp, b.address, 'backend is down').length, 0);

    const restarted = await startNamedBackend('a', a.port);
    t.after(() => restarted.close());
    const up = await waitForHealthLine(rsp, a.address, 'backend is up', 10_000);
    assert.equal(up.level, 'info');
    assert.equal(up.reason, '2 checks passed in a row');
    assert.equal(up.backendsUp, 2);
    assert.equal(up.backends, 2);
    const afterUp = await scrapeUntil(metrics, (samples) => samples.sum('rsp_backend_up', { backend: a.address }) === 1);
    assert.equal(afterUp.sum('rsp_backend_up', { service: 'web', backend: a.address }), 1);

    const replies = await collectReplies(rsp.port, 10);
    const servedByA = replies.filter((reply) => reply === 'a').length;
    const servedByB = replies.filter((reply) => reply === 'b').length;
    assert.equal(servedByA + servedByB, 10, `replies: ${replies.join(', ')}`);
    assert.ok(servedByA >= 3, `a served ${servedByA} of 10 after it came back: ${replies.join(', ')}`);
    assert.equal(healthLines(rsp, a.address, 'backend is up').length, 1);
  });

  test('matches reply with send and expect', async (t) => {
    const pong = await startPingBackend('+PONG\r\n');
    t.after(() => pong.close());
    const error = await startPingBackend('-ERR\r\n');
    t.after(() => error.close());
    const check: HealthCheckSeconds = { interval: 0.25, timeout: 0.25, rise: 2, fall: 2, send: 'PING\r\n', expect: '+PONG' };
    const rsp = await startRsp({ config: healthConfig({ services: { redis: [pong.address, error.address] }, healthCheck: check }) });
    t.after(() => rsp.stop());

    const down = await waitForHealthLine(rsp, error.address, 'backend is down', 10_000);
    assert.equal(down.reason, '2 checks failed in a row: unexpected_reply');
    assert.equal(down.backendsUp, 1);

    await waitFor('4 checks of the PONG backend', () => pong.requests.length >= 4, 10_000);
    assert.deepEqual(new Set(pong.requests), new Set(['PING\r\n']));
    assert.deepEqual(healthLines(rsp, pong.address, 'backend is down'), []);
    const samples = await scrapeUntil(metricsAddress(rsp.started), (scraped) => scraped.select('rsp_backend_up').length === 2);
    assert.equal(samples.sum('rsp_backend_up', { service: 'redis', backend: pong.address }), 1);
    assert.equal(samples.sum('rsp_backend_up', { service: 'redis', backend: error.address }), 0);
  });

  test('runs checks once in the primary', async (t) => {
    const echo = await startEchoBackend();
    t.after(() => echo.close());
    const check: HealthCheckSeconds = { interval: 0.2, timeout: 0.2, rise: 2, fall: 3 };
    const rsp = await startRsp({ config: healthConfig({ services: { web: [echo.address] }, healthCheck: check }), workers: 2 });
    t.after(() => rsp.stop());

    // No client connects, so every connection the backend accepts is a check. One
    // checker makes about 10 in 2 s; a checker in each of the two workers would make 20.
    const before = echo.accepted;
    await sleep(2_000);
    const checks = echo.accepted - before;
    assert.ok(checks <= 14, `${checks} check connections in 2 s`);
    assert.ok(checks >= 4, `only ${checks} check connections in 2 s`);
  });
});
