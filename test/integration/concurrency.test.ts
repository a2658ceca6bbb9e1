// Many simultaneous connections through two workers, each with its own payload.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startEchoBackend } from '../helpers/backends.js';
import { exchange } from '../helpers/client.js';
import { singleServiceConfig } from '../helpers/config.js';
import { patternBuffer, sha256 } from '../helpers/pattern.js';
import { isRunning, processTree } from '../helpers/process-tree.js';
import { startRsp } from '../helpers/rsp.js';

const CONNECTIONS = 200;
const PAYLOAD_BYTES = 32 * 1024;

test('200 concurrent echoes stay intact', async (t) => {
  const echo = await startEchoBackend();
  t.after(() => echo.close());
  const rsp = await startRsp({ config: singleServiceConfig({ backends: [echo.address] }), workers: 2 });
  t.after(() => rsp.stop());

  const payloads = Array.from({ length: CONNECTIONS }, (_, index) => patternBuffer(PAYLOAD_BYTES, index + 1));
  const results = await Promise.all(payloads.map((payload) => exchange(rsp.port, { send: payload, timeoutMs: 60_000 })));

  const failures = results.flatMap((result, index) => {
    const expected = sha256(payloads[index] as Buffer);
    if (result.endedBy === 'end' && result.bytes === PAYLOAD_BYTES && result.sha256 === expected) return [];
    return [`connection ${index}: ended by ${result.endedBy} after ${result.bytes} bytes, digest ${result.sha256 === expected ? 'ok' : 'wrong'}`];
  });
  assert.deepEqual(failures, []);
  assert.equal(echo.accepted, CONNECTIONS);

  // With every connection finished, SIGTERM must stop the whole tree with status 0.
  const tree = processTree(rsp.pid);
  assert.equal(tree.length, 3, `expected the primary and 2 workers, found PIDs ${tree.join(', ')}`);
  assert.equal(await rsp.stop(), 0);
  assert.deepEqual(tree.filter(isRunning), []);
});
