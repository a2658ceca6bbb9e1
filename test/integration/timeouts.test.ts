// Connect and idle timeouts: a backend connect that never completes is abandoned
// for the next backend, and a connection with no bytes either way is closed.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { startEchoBackend, startTickingBackend } from '../helpers/backends.js';
import { exchange, openConnection, receiveAll } from '../helpers/client.js';
import { healthConfig, startNamedBackend, startUnacceptedListener } from '../helpers/health.js';
import { metricsAddress, scrapeUntil } from '../helpers/metrics.js';
import { startRsp } from '../helpers/rsp.js';
import { sleep } from '../helpers/wait.js';

describe('timeouts', () => {
  test('connect timeout tries next backend', async (t) => {
    const hanging = await startUnacceptedListener();
    t.after(() => hanging.close());
    const good = await startNamedBackend('good');
    t.after(() => good.close());
    const rsp = await startRsp({ config: healthConfig({ services: { web: [hanging.address, good.address] }, timeouts: { connect: 0.5 } }) });
    t.after(() => rsp.stop());

    // Round-robin offers the hanging backend first to every other client: 2 of 4,
    // fewer than the 3 failures that would mark it down.
    const elapsed: number[] = [];
    for (let i = 0; i < 4; i++) {
      const startedAt = Date.now();
      const result = await exchange(rsp.port, { keepData: true, timeoutMs: 10_000 });
      elapsed.push(Date.now() - startedAt);
      assert.equal(`${result.endedBy}:${result.data?.toString('utf8') ?? ''}`, 'end:good\n', `client ${i}`);
      assert.ok(elapsed[i]! < 3_000, `client ${i} was served after ${elapsed[i]} ms`);
    }
    const waited = elapsed.filter((milliseconds) => milliseconds >= 450).length;
    assert.equal(waited, 2, `client durations in ms: ${elapsed.join(', ')}`);

    const samples = await scrapeUntil(metricsAddress(rsp.started), (scraped) => scraped.sum('rsp_connections_total') === 4);
    assert.equal(samples.sum('rsp_connection_errors_total', { service: 'web', backend: hanging.address, reason: 'timeout' }), 2);
    assert.equal(samples.sum('rsp_connections_total', { backend: good.address }), 4);
    const failure = rsp.lines().find((line) => line.msg === 'backend connect failed');
    assert.equal(failure?.backend, hanging.address);
    assert.equal(failure?.reason, 'timeout');
  });

  test('idle timeout closes quiet connection', async (t) => {
    const echo = await startEchoBackend();
    t.after(() => echo.close());
    const rsp = await startRsp({ config: healthConfig({ services: { web: [echo.address] }, timeouts: { idle: 1 } }) });
    t.after(() => rsp.stop());

    const quiet = await openConnection(rsp.port);
    t.after(() => quiet.destroy());
    const quietResult = receiveAll(quiet, { timeoutMs: 5_000 });

    // One byte every 300 ms for 3 s keeps the other connection busy, and the echo backend returns each byte.
    const busy = await openConnection(rsp.port);
    t.after(() => busy.destroy());
    let busyEndedBy: string | undefined;
    let echoed = 0;
    busy.on('data', (chunk: Buffer) => (echoed += chunk.length));
    busy.once('end', () => (busyEndedBy ??= 'end'));
    busy.once('error', (error: NodeJS.ErrnoException) => (busyEndedBy ??= error.code ?? error.message));
    busy.once('close', () => (busyEndedBy ??= 'close'));
    for (let i = 0; i < 10; i++) {
      busy.write('x');
      await sleep(300);
    }

    const quietEnd = await quietResult;
    assert.ok(['end', 'ECONNRESET'].includes(quietEnd.endedBy), `the quiet connection ended by ${quietEnd.endedBy}`);
    assert.ok(quietEnd.elapsedMs >= 900, `the quiet connection was closed after ${quietEnd.elapsedMs} ms; the idle timeout is 1 s`);
    assert.ok(quietEnd.elapsedMs < 5_000, `the quiet connection was closed after ${quietEnd.elapsedMs} ms`);
    assert.equal(busyEndedBy, undefined);
    assert.equal(echoed, 10);

    busy.removeAllListeners('data');
    const busyEnd = receiveAll(busy, { timeoutMs: 5_000 });
    busy.end();
    assert.equal((await busyEnd).endedBy, 'end');

    const samples = await scrapeUntil(metricsAddress(rsp.started), (scraped) => scraped.sum('rsp_connections_active') === 0);
    assert.equal(samples.sum('rsp_connection_errors_total', { service: 'web', backend: echo.address, reason: 'idle' }), 1);
  });

  test('backend bytes keep connection active', async (t) => {
    // The client sends nothing. The backend sends a byte every 300 ms for 3 s, three times the idle timeout.
    const ticking = await startTickingBackend(300, 10);
    t.after(() => ticking.close());
    const rsp = await startRsp({ config: healthConfig({ services: { web: [ticking.address] }, timeouts: { idle: 1 } }) });
    t.after(() => rsp.stop());

    const client = await openConnection(rsp.port);
    t.after(() => client.destroy());
    const result = await receiveAll(client, { timeoutMs: 10_000 });
    assert.equal(result.endedBy, 'end');
    assert.equal(result.bytes, 10);
    assert.ok(result.elapsedMs >= 2_700, `the connection ended after ${result.elapsedMs} ms`);
    client.end();

    const samples = await scrapeUntil(metricsAddress(rsp.started), (scraped) => scraped.sum('rsp_connections_active') === 0);
    assert.equal(samples.sum('rsp_connection_errors_total', { reason: 'idle' }), 0);
  });
});
