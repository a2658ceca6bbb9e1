// A client that goes away in the middle of a download must not disturb rsp.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startSourceBackend } from '../helpers/backends.js';
import { exchange, openConnection, receiveAtLeast } from '../helpers/client.js';
import { singleServiceConfig } from '../helpers/config.js';
import { MiB, patternSha256 } from '../helpers/pattern.js';
import { startRsp } from '../helpers/rsp.js';
import { waitFor } from '../helpers/wait.js';

const SIZE = 32 * MiB;

test('client abort mid-transfer leaves rsp serving', async (t) => {
  const source = await startSourceBackend(SIZE, 31);
  t.after(() => source.close());
  const rsp = await startRsp({ config: singleServiceConfig({ backends: [source.address] }) });
  t.after(() => rsp.stop());

  // The backend keeps sending, so the destroyed client usually has unread data and its
  // kernel sends RST, as for a crashed client.
  const aborted = await openConnection(rsp.port);
  t.after(() => aborted.destroy());
  await receiveAtLeast(aborted, 4 * MiB);
  aborted.destroy();
  await waitFor('rsp to close the backend connection', () => source.openConnections === 0, 5_000);

  const result = await exchange(rsp.port, { timeoutMs: 60_000 });

  assert.equal(result.endedBy, 'end');
  assert.equal(result.bytes, SIZE);
  assert.equal(result.sha256, patternSha256(SIZE, 31));
  assert.equal(source.accepted, 2);
  assert.equal(rsp.process.exitCode, null);
});
