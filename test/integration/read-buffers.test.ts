// rsp reuses its read buffers for backend sockets (src/pump/read-buffers.ts).
// A buffer reused while a queued write still points into it would mix the bytes
// of one connection into another. So several downloads run at once through one
// worker, each from its own backend with its own bytes. Some clients stall, so
// that rsp queues writes to them.
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { test } from 'node:test';
import { startSourceBackend, type Backend } from '../helpers/backends.js';
import { openConnection, receiveAll } from '../helpers/client.js';
import { singleServiceConfig } from '../helpers/config.js';
import { MiB, patternSha256 } from '../helpers/pattern.js';
import { startRsp } from '../helpers/rsp.js';

const SIZE = 16 * MiB;
const CONNECTIONS = 6;
/** A stalling client pauses this long after every STALL_EVERY bytes. */
const STALL_MS = 15;
const STALL_EVERY = 512 * 1024;

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

test('stalling downloads keep their bytes', async (t) => {
  const backends: Backend[] = [];
  t.after(() => Promise.all(backends.map((backend) => backend.close())));
  for (let seed = 1; seed <= CONNECTIONS; seed++) backends.push(await startSourceBackend(SIZE, 40 + seed));
  const rsp = await startRsp({
    config: singleServiceConfig({ backends: backends.map((backend) => backend.address) }),
    workers: 1,
  });
  t.after(() => rsp.stop());

  const sockets = await Promise.all(Array.from({ length: CONNECTIONS }, () => openConnection(rsp.port)));
  t.after(() => {
    for (const socket of sockets) socket.destroy();
  });
  // Every other client stalls; the fast ones keep the worker reading at full speed meanwhile.
  sockets.forEach((socket, index) => {
    if (index % 2 === 1) stallPeriodically(socket);
  });
  const results = await Promise.all(sockets.map((socket) => receiveAll(socket, { timeoutMs: 60_000 })));

  // Round-robin sends one connection to each backend, so every pattern arrives once.
  for (const result of results) {
    assert.equal(result.endedBy, 'end');
    assert.equal(result.bytes, SIZE);
  }
  const expected = Array.from({ length: CONNECTIONS }, (_, index) => patternSha256(SIZE, 41 + index)).sort();
  assert.deepEqual(results.map((result) => result.sha256).sort(), expected);
});
