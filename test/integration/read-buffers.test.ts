// rsp reuses its read buffers for backend sockets (src/pump/read-buffers.ts).
// A buffer reused while a queued write still points into it would mix the bytes
// of one connection into another. So several downloads run at once through one
// worker, each from its own backend with its own bytes. Some clients stall, so
// that rsp queues writes to them. Backends that send full buffers exercise the
// buffers of bulk reads, and backends that send small pieces the shared buffer
// of short reads and its copies.
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { test, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { startSourceBackend, startTricklingBackend, type Backend } from '../helpers/backends.js';
import { openConnection, receiveAll, receiveAtLeast, type ReceiveResult } from '../helpers/client.js';
import { luaString, singleServiceConfig } from '../helpers/config.js';
import { metricsAddress, scrape, scrapeUntil } from '../helpers/metrics.js';
import { MiB, patternSha256 } from '../helpers/pattern.js';
import { processTree, rssBytes } from '../helpers/process-tree.js';
import { startRsp } from '../helpers/rsp.js';
import { waitFor } from '../helpers/wait.js';

const SIZE = 16 * MiB;
const CONNECTIONS = 6;
/** A stalling client pauses this long after every STALL_EVERY bytes. */
const STALL_MS = 15;
const STALL_EVERY = 512 * 1024;
/** Bytes per trickling backend, sent in pieces that rsp reads in short reads. */
const TRICKLE_SIZE = 8 * MiB;
const TRICKLE_PIECE_BYTES = 1500;
/** A backend whose byte count stays the same this long is blocked by full buffers. */
const STILL_MS = 200;
/** Clients that stop reading, each in front of a backend that sends STALLED_SIZE. */
const STALLED_CLIENTS = 64;
const STALLED_SIZE = 64 * MiB;
const STALL_AFTER_BYTES = 2 * MiB;
/**
 * Read buffer bytes that those clients may pin: the limit of 16 buffers of 256
 * KiB per worker, and a few more for transfers that were reading into their own
 * buffer when the limit was reached. Without the limit nearly every client pins one.
 */
const MAX_PINNED_BYTES = 24 * 256 * 1024;
const PINNED_METRIC = 'rsp_pinned_read_buffer_bytes';
/**
 * What those clients may add to the worker's RSS. With the limit this test saw
 * 4.2 to 12.0 MiB, and 14.8 to 18.0 MiB without it.
 */
const MAX_STALLED_GROWTH = 16 * MiB;

/** Pauses `socket` for STALL_MS each time another STALL_EVERY bytes arrived. */
function stallPeriodically(socket: Socket): void {
  let sinceStall = 0;
  socket.on('data', (chunk: Buffer) => {
    sinceStall += chunk.length;
    if (sinceStall < STALL_EVERY) return;
    sinceStall = 0;
    socket.pause();
    setTimeout(() => socket.resume(), STALL_MS);
  });
}

/** Starts rsp with one worker in front of `backends` and opens one client connection per backend. */
async function openDownloads(t: TestContext, backends: readonly Backend[]): Promise<Socket[]> {
  const rsp = await startRsp({
    config: singleServiceConfig({ backends: backends.map((backend) => backend.address) }),
    workers: 1,
  });
  t.after(() => rsp.stop());
  const sockets = await Promise.all(backends.map(() => openConnection(rsp.port)));
  t.after(() => {
    for (const socket of sockets) socket.destroy();
  });
  return sockets;
}

/** Checks that every download ended cleanly and that each backend's pattern arrived once. */
function assertPatterns(results: readonly ReceiveResult[], size: number, firstSeed: number): void {
  // Round-robin sends one connection to each backend, so every pattern arrives once.
  for (const result of results) {
    assert.equal(result.endedBy, 'end');
    assert.equal(result.bytes, size);
  }
  const expected = results.map((_, index) => patternSha256(size, firstSeed + index)).sort();
  assert.deepEqual(results.map((result) => result.sha256).sort(), expected);
}

/** Resolves once no backend has written a byte for STILL_MS. */
async function waitUntilBlocked(backends: readonly Backend[]): Promise<void> {
  let last = -1;
  for (;;) {
    const written = backends.reduce((sum, backend) => sum + backend.bytesWritten, 0);
    if (written === last) return;
    last = written;
    await sleep(STILL_MS);
  }
}

test('stalling downloads keep their bytes', async (t) => {
  const backends: Backend[] = [];
  t.after(() => Promise.all(backends.map((backend) => backend.close())));
  for (let seed = 1; seed <= CONNECTIONS; seed++) backends.push(await startSourceBackend(SIZE, 40 + seed));
  const sockets = await openDownloads(t, backends);

  // Every other client stalls; the fast ones keep the worker reading at full speed meanwhile.
  sockets.forEach((socket, index) => {
    if (index % 2 === 1) stallPeriodically(socket);
  });
  const results = await Promise.all(sockets.map((socket) => receiveAll(socket, { timeoutMs: 60_000 })));
  assertPatterns(results, SIZE, 41);
});

test('stalled trickled downloads keep bytes', async (t) => {
  const backends: Backend[] = [];
  t.after(() => Promise.all(backends.map((backend) => backend.close())));
  for (let seed = 1; seed <= CONNECTIONS; seed++) backends.push(await startTricklingBackend(TRICKLE_SIZE, 60 + seed, TRICKLE_PIECE_BYTES));
  const sockets = await openDownloads(t, backends);

  // Twice, the clients read nothing until every backend is blocked. The kernel's
  // buffers towards the clients are then full, so rsp queued the short reads it got last.
  const receiving = sockets.map((socket) => receiveAll(socket, { timeoutMs: 60_000 }));
  for (let round = 0; round < 2; round++) {
    for (const socket of sockets) socket.pause();
    await waitUntilBlocked(backends);
    for (const socket of sockets) socket.resume();
    await sleep(STILL_MS);
  }
  assertPatterns(await Promise.all(receiving), TRICKLE_SIZE, 61);
});

test('stalled clients keep memory bounded', async (t) => {
  const source = await startSourceBackend(STALLED_SIZE, 80);
  t.after(() => source.close());
  const config = [`metrics = ${luaString('127.0.0.1:0')}`, `listen = ${luaString('127.0.0.1:0')}`, `backends = { ${luaString(source.address)} }`, ''];
  const rsp = await startRsp({ config: config.join('\n'), workers: 1 });
  t.after(() => rsp.stop());
  const metrics = metricsAddress(rsp.started);
  const download = async (): Promise<void> => {
    const socket = await openConnection(rsp.port);
    t.after(() => socket.destroy());
    const result = await receiveAll(socket, { timeoutMs: 60_000 });
    socket.end();
    assert.equal(result.endedBy, 'end');
    assert.equal(result.sha256, patternSha256(STALLED_SIZE, 80));
  };

  // A full download first, so that the baseline includes what any bulk transfer costs.
  await download();
  await waitFor('the warm-up backend connection to close', () => source.openConnections === 0, 5_000);
  // The workers only: the primary's memory moves with the metrics it receives.
  const workersRss = (): number => processTree(rsp.pid).slice(1).reduce((sum, pid) => sum + rssBytes(pid), 0);
  const baselineRss = workersRss();

  // Clients that stop reading after their first bytes, as at a full speed
  // transfer: the kernel's buffers towards them fill, then rsp queues what it
  // read last for each, and backpressure stops the backend.
  const stalled = await Promise.all(Array.from({ length: STALLED_CLIENTS }, () => openConnection(rsp.port)));
  t.after(() => {
    for (const socket of stalled) socket.destroy();
  });
  await Promise.all(stalled.map((socket) => receiveAtLeast(socket, STALL_AFTER_BYTES).then(() => socket.pause())));
  await waitUntilBlocked([source]);
  const growth = workersRss() - baselineRss;
  t.diagnostic(`${STALLED_CLIENTS} stalled clients: RSS growth ${(growth / MiB).toFixed(1)} MiB`);
  assert.ok(growth < MAX_STALLED_GROWTH, `rsp RSS grew by ${(growth / MiB).toFixed(1)} MiB with ${STALLED_CLIENTS} stalled clients`);
  const pinned = (await scrape(metrics)).sum(PINNED_METRIC);
  t.diagnostic(`${PINNED_METRIC} ${pinned}`);
  assert.ok(pinned > 0, `${PINNED_METRIC} is ${pinned} with ${STALLED_CLIENTS} stalled clients`);
  assert.ok(pinned <= MAX_PINNED_BYTES, `${PINNED_METRIC} is ${pinned} with ${STALLED_CLIENTS} stalled clients`);

  // Once they are gone, their buffers count as free again, and whole downloads
  // still arrive intact.
  for (const socket of stalled) socket.destroy();
  await waitFor('rsp to close the stalled backend connections', () => source.openConnections === 0, 10_000);
  const after = await scrapeUntil(metrics, (samples) => samples.sum(PINNED_METRIC) === 0);
  assert.equal(after.sum(PINNED_METRIC), 0);
  await download();
});
