// 64 MiB each way through rsp, checked by SHA-256.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { startSinkBackend, startSourceBackend } from '../helpers/backends.js';
import { exchange } from '../helpers/client.js';
import { singleServiceConfig } from '../helpers/config.js';
import { MiB, patternSha256, patternStream } from '../helpers/pattern.js';
import { startRsp } from '../helpers/rsp.js';
import { waitFor } from '../helpers/wait.js';

const SIZE = 64 * MiB;

describe('large transfer', () => {
  test('64 MiB response arrives intact', async (t) => {
    const source = await startSourceBackend(SIZE, 11);
    t.after(() => source.close());
    const rsp = await startRsp({ config: singleServiceConfig({ backends: [source.address] }) });
    t.after(() => rsp.stop());

    const result = await exchange(rsp.port, { timeoutMs: 60_000 });

    assert.equal(result.endedBy, 'end');
    assert.equal(result.bytes, SIZE);
    assert.equal(result.sha256, patternSha256(SIZE, 11));
  });

  test('64 MiB upload arrives intact', async (t) => {
    const sink = await startSinkBackend();
    t.after(() => sink.close());
    const rsp = await startRsp({ config: singleServiceConfig({ backends: [sink.address] }) });
    t.after(() => rsp.stop());

    // The sink ends its side only after the client's EOF, so 'end' means the upload got through.
    const result = await exchange(rsp.port, { send: patternStream(SIZE, 12), timeoutMs: 60_000 });
    const received = await waitFor('the sink to record the upload', () => sink.received[0]);

    assert.equal(result.endedBy, 'end');
    assert.equal(received.bytes, SIZE);
    assert.equal(received.sha256, patternSha256(SIZE, 12));
    assert.equal(sink.received.length, 1);
  });
});
