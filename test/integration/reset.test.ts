// A backend reset must reach the client as a reset, not as a clean end of stream.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startResetAfterEofBackend, startResettingBackend } from '../helpers/backends.js';
import { exchange } from '../helpers/client.js';
import { singleServiceConfig } from '../helpers/config.js';
import { patternSha256 } from '../helpers/pattern.js';
import { startRsp, type RspProcess } from '../helpers/rsp.js';
import { waitFor } from '../helpers/wait.js';

const BYTES_BEFORE_RESET = 64 * 1024;
/** Connections whose backend resets right behind a short response. */
const AT_ONCE_CONNECTIONS = 20;
const AT_ONCE_BYTES = 3000;

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

// Only the handle pump reads once more to tell such a reset from a FIN.
const SOCKET_PATH = process.env.RSP_DATA_PATH === 'sockets';

test('reset right behind data', { skip: SOCKET_PATH && 'net.Socket reports this reset as an end' }, async (t) => {
  // rsp reads the response and the RST in one wake-up, where libuv reports an end
  // of stream. rsp must still see a reset, log it and pass it on.
  const backend = await startResettingBackend(AT_ONCE_BYTES, 43, 0);
  t.after(() => backend.close());
  const config = `${singleServiceConfig({ backends: [backend.address] })}access_log = true\npassive_check = false\n`;
  const rsp = await startRsp({ config });
  t.after(() => rsp.stop());

  for (let i = 0; i < AT_ONCE_CONNECTIONS; i++) {
    const result = await exchange(rsp.port, { send: 'request\n', endAfterSend: false, timeoutMs: 10_000 });
    assert.equal(result.bytes, AT_ONCE_BYTES);
  }
  assert.deepEqual(await closeReasons(rsp, AT_ONCE_CONNECTIONS), Array<string>(AT_ONCE_CONNECTIONS).fill('reset/backend'));
});

test('reset behind data after a half-close', { skip: SOCKET_PATH && 'net.Socket reports this reset as an end' }, async (t) => {
  // The client ends its side first, so rsp has sent its FIN to the backend when the
  // response and the RST arrive in one wake-up. rsp must still see a reset.
  const backend = await startResetAfterEofBackend(AT_ONCE_BYTES, 47);
  t.after(() => backend.close());
  const config = `${singleServiceConfig({ backends: [backend.address] })}access_log = true\npassive_check = false\n`;
  const rsp = await startRsp({ config });
  t.after(() => rsp.stop());

  for (let i = 0; i < AT_ONCE_CONNECTIONS; i++) {
    const result = await exchange(rsp.port, { send: 'request\n', timeoutMs: 10_000 });
    assert.equal(result.bytes, AT_ONCE_BYTES);
  }
  assert.deepEqual(await closeReasons(rsp, AT_ONCE_CONNECTIONS), Array<string>(AT_ONCE_CONNECTIONS).fill('reset/backend'));
});

/** Waits for `count` "connection closed" lines and returns their `reason/side`. */
async function closeReasons(rsp: RspProcess, count: number): Promise<string[]> {
  const closed = (): string[] =>
    rsp
      .lines()
      .filter((line) => line.msg === 'connection closed')
      .map((line) => `${String(line.reason)}/${String(line.side)}`);
  await waitFor(`${count} connections logged as closed`, () => closed().length >= count, 5_000, () => `${closed().length} logged`);
  return closed();
}
