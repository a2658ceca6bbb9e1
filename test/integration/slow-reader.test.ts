// A client that reads far slower than the backend sends must not make rsp buffer
// the difference: backpressure has to reach the backend.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startEchoBackend, startSourceBackend } from '../helpers/backends.js';
import { exchange, openConnection, receiveAtLeast } from '../helpers/client.js';
import { multiServiceConfig } from '../helpers/config.js';
import { MiB, patternBuffer, sha256 } from '../helpers/pattern.js';
import { treeRssBytes } from '../helpers/process-tree.js';
import { startRsp } from '../helpers/rsp.js';
import { sleep, waitFor } from '../helpers/wait.js';

const GiB = 1024 * MiB;
const READ_DURATION_MS = 6_000;
const TICK_MS = 100;
// 100 KiB every 100 ms is about 1 MiB/s.
const BYTES_PER_TICK = 100 * 1024;
const MAX_RSS_GROWTH = 32 * MiB;
// Loopback socket buffers on both hops (up to tcp_rmem/tcp_wmem max each) may hold
// tens of MiB. A proxy that ignores backpressure reads most of the 1 GiB instead.
const MAX_BYTES_IN_FLIGHT = 128 * MiB;

test('slow reader keeps rsp memory bounded', async (t) => {
  const source = await startSourceBackend(GiB, 21);
  t.after(() => source.close());
  const echo = await startEchoBackend();
  t.after(() => echo.close());
  const rsp = await startRsp({
    config: multiServiceConfig({ bulk: { backends: [source.address] }, echo: { backends: [echo.address] } }),
  });
  t.after(() => rsp.stop());
  const bulkPort = rsp.ports.bulk as number;
  const echoPort = rsp.ports.echo as number;

  // Warm up both paths at full speed before taking the baseline.
  const payload = patternBuffer(8 * MiB, 22);
  const echoed = await exchange(echoPort, { send: payload });
  assert.equal(echoed.sha256, sha256(payload));
  const warmUp = await openConnection(bulkPort);
  t.after(() => warmUp.destroy());
  await receiveAtLeast(warmUp, 16 * MiB);
  warmUp.destroy();
  await waitFor('the warm-up backend connection to close', () => source.openConnections === 0, 5_000);
  const baselineRss = treeRssBytes(rsp.pid);
  const bytesWrittenBefore = source.bytesWritten;

  // Read at about 1 MiB/s: each tick allows BYTES_PER_TICK more, and the socket pauses once it has them.
  const client = await openConnection(bulkPort);
  t.after(() => client.destroy());
  let received = 0;
  let allowance = 0;
  client.on('data', (chunk: Buffer) => {
    received += chunk.length;
    if (received >= allowance) client.pause();
  });
  let peakRss = baselineRss;
  const startedAt = Date.now();
  while (Date.now() - startedAt < READ_DURATION_MS) {
    allowance += BYTES_PER_TICK;
    if (received < allowance) client.resume();
    await sleep(TICK_MS);
    peakRss = Math.max(peakRss, treeRssBytes(rsp.pid));
  }
  const bytesInFlight = source.bytesWritten - bytesWrittenBefore - received;
  const growthMiB = (peakRss - baselineRss) / MiB;
  t.diagnostic(`RSS growth ${growthMiB.toFixed(1)} MiB, ${(bytesInFlight / MiB).toFixed(1)} MiB in flight, ${received} bytes read`);

  assert.ok(received >= 3 * MiB, `the slow client received only ${received} bytes in ${READ_DURATION_MS} ms`);
  assert.ok(
    peakRss - baselineRss < MAX_RSS_GROWTH,
    `rsp RSS grew by ${growthMiB.toFixed(1)} MiB (baseline ${(baselineRss / MiB).toFixed(1)} MiB)`,
  );
  assert.ok(
    bytesInFlight < MAX_BYTES_IN_FLIGHT,
    `the backend wrote ${(bytesInFlight / MiB).toFixed(1)} MiB more than the client read`,
  );

  // Once the client goes away, rsp must close the backend side and keep serving.
  client.destroy();
  await waitFor('rsp to close the backend connection', () => source.openConnections === 0, 5_000);
  const after = await exchange(echoPort, { send: 'still serving' });
  assert.equal(after.endedBy, 'end');
  assert.equal(after.sha256, sha256('still serving'));
});
