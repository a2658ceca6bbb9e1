// A backend reset must reach the client as a reset, not as a clean end of stream.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startResettingBackend } from '../helpers/backends.js';
import { exchange } from '../helpers/client.js';
import { singleServiceConfig } from '../helpers/config.js';
import { patternSha256 } from '../helpers/pattern.js';
import { startRsp } from '../helpers/rsp.js';

const BYTES_BEFORE_RESET = 64 * 1024;

test('backend reset reaches the client', async (t) => {
  const backend = await startResettingBackend(BYTES_BEFORE_RESET, 41);
  t.after(() => backend.close());
  const rsp = await startRsp({ config: singleServiceConfig({ backends: [backend.address] }) });
  t.after(() => rsp.stop());

  const result = await exchange(rsp.port, { send: 'request\n', endAfterSend: false, timeoutMs: 10_000 });

  assert.equal(result.endedBy, 'ECONNRESET');
  // The backend waits before the reset, so everything it sent has reached the client by then.
  assert.equal(result.bytes, BYTES_BEFORE_RESET);
  assert.equal(result.sha256, patternSha256(BYTES_BEFORE_RESET, 41));
  assert.equal(backend.accepted, 1);
  assert.equal(rsp.process.exitCode, null);
});
