// A FIN from either side travels through rsp while the other direction keeps working.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { startEndFirstBackend, startReplyAfterEofBackend } from '../helpers/backends.js';
import { exchange, openConnection, receiveAll } from '../helpers/client.js';
import { singleServiceConfig } from '../helpers/config.js';
import { MiB, patternBuffer, patternSha256, sha256 } from '../helpers/pattern.js';
import { startRsp } from '../helpers/rsp.js';
import { waitFor, withTimeout } from '../helpers/wait.js';

describe('half-close', () => {
  test('reply after client EOF arrives whole', async (t) => {
    const backend = await startReplyAfterEofBackend(MiB, 51);
    t.after(() => backend.close());
    const rsp = await startRsp({ config: singleServiceConfig({ backends: [backend.address] }) });
    t.after(() => rsp.stop());
    const request = patternBuffer(64 * 1024, 52);

    // exchange() ends the client's write side right after the request.
    const reply = await exchange(rsp.port, { send: request, timeoutMs: 10_000 });

    assert.equal(reply.endedBy, 'end');
    assert.equal(reply.bytes, MiB);
    assert.equal(reply.sha256, patternSha256(MiB, 51));
    assert.deepEqual(backend.received, [{ bytes: request.length, sha256: sha256(request) }]);
  });

  test('client sends after backend EOF', async (t) => {
    const backend = await startEndFirstBackend('bye\n');
    t.after(() => backend.close());
    const rsp = await startRsp({ config: singleServiceConfig({ backends: [backend.address] }) });
    t.after(() => rsp.stop());

    const client = await openConnection(rsp.port);
    t.after(() => client.destroy());
    const fromBackend = await receiveAll(client, { keepData: true, timeoutMs: 10_000 });
    assert.equal(fromBackend.endedBy, 'end');
    assert.equal(fromBackend.data?.toString('utf8'), 'bye\n');

    // The backend has ended its write side, but the client's direction must stay open.
    const late = patternBuffer(256 * 1024, 53);
    const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
    client.end(late);
    const received = await waitFor('the backend to read until EOF', () => backend.received[0], 10_000);

    assert.deepEqual(received, { bytes: late.length, sha256: sha256(late) });
    await withTimeout(closed, 5_000, 'rsp to close the client once both directions are done');
  });
});
