// Backup backends take connections only while every other backend of the service
// is down, and a service with no backend left closes clients at once.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { exchange } from '../helpers/client.js';
import { collectReplies, healthConfig, startNamedBackend, waitForHealthLine } from '../helpers/health.js';
import { httpGet, metricsAddress, scrapeUntil } from '../helpers/metrics.js';
import { startRsp } from '../helpers/rsp.js';

test('backup serves when others are down', async (t) => {
  const first = await startNamedBackend('first');
  t.after(() => first.close());
  const second = await startNamedBackend('second');
  t.after(() => second.close());
  const backup = await startNamedBackend('backup');
  t.after(() => backup.close());
  const rsp = await startRsp({
    config: healthConfig({
      services: { web: [first.address, { address: backup.address, backup: true }, second.address] },
      healthCheck: { interval: 0.25, timeout: 0.25, rise: 2, fall: 2 },
    }),
  });
  t.after(() => rsp.stop());
  const metrics = metricsAddress(rsp.started);

  // Health checks connect to the backup too, so the replies, not its accept count, show who served.
  const normalReplies = await collectReplies(rsp.port, 12);
  assert.deepEqual(normalReplies.filter((reply) => reply !== 'first' && reply !== 'second'), []);
  assert.equal(normalReplies.filter((reply) => reply === 'first').length, 6);

  await first.close();
  await second.close();
  await waitForHealthLine(rsp, first.address, 'backend is down', 10_000);
  await waitForHealthLine(rsp, second.address, 'backend is down', 10_000);
  assert.deepEqual(await collectReplies(rsp.port, 6), Array.from({ length: 6 }, () => 'backup'));
  const beforeNoBackend = await scrapeUntil(metrics, (samples) => samples.sum('rsp_connections_total', { backend: backup.address }) === 6);
  assert.equal(beforeNoBackend.sum('rsp_connections_total', { backend: backup.address }), 6);
  assert.equal(beforeNoBackend.sum('rsp_connection_errors_total', { reason: 'refused' }), 0);

  await backup.close();
  const lastDown = await waitForHealthLine(rsp, backup.address, 'backend is down', 10_000);
  assert.equal(lastDown.backendsUp, 0);
  assert.equal(lastDown.backends, 3);

  // The clients keep their write side open, so only rsp can end these connections.
  for (let i = 0; i < 3; i++) {
    const result = await exchange(rsp.port, { endAfterSend: false, timeoutMs: 5_000 });
    assert.ok(['end', 'ECONNRESET'].includes(result.endedBy), `client ${i} ended by ${result.endedBy}`);
    assert.equal(result.bytes, 0);
    assert.ok(result.elapsedMs < 2_000, `client ${i} was closed after ${result.elapsedMs} ms`);
  }
  const noBackend = await scrapeUntil(metrics, (samples) => samples.sum('rsp_connection_errors_total', { reason: 'no_backend' }) >= 3);
  assert.equal(noBackend.sum('rsp_connection_errors_total', { service: 'web', backend: '', reason: 'no_backend' }), 3);

  const readiness = await httpGet(metrics, '/readyz');
  assert.equal(readiness.status, 503);
  assert.equal(readiness.body, 'not ready: no backend is up\n');
});
