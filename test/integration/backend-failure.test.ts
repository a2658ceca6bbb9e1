// Backends that refuse connections: rsp tries the next one, or closes the client
// when none is left, and keeps running either way.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { findClosedPort, startIdentifyBackend, type Backend } from '../helpers/backends.js';
import { exchange } from '../helpers/client.js';
import { multiServiceConfig } from '../helpers/config.js';
import { startRsp, type RspProcess } from '../helpers/rsp.js';

describe('backend failure', () => {
  let good: Backend;
  let rsp: RspProcess;

  before(async () => {
    good = await startIdentifyBackend({ name: 'good' });
    const refusing = `127.0.0.1:${await findClosedPort()}`;
    let alsoRefusing = refusing;
    while (alsoRefusing === refusing) alsoRefusing = `127.0.0.1:${await findClosedPort()}`;
    rsp = await startRsp({
      config: multiServiceConfig({
        mixed: { backends: [refusing, good.address] },
        dead: { backends: [refusing, alsoRefusing] },
      }),
    });
  });
  after(async () => {
    await rsp?.stop();
    await good?.close();
  });

  test('skips a refusing backend', async () => {
    const replies: string[] = [];
    for (let i = 0; i < 20; i++) {
      const result = await exchange(rsp.ports.mixed as number, { keepData: true, timeoutMs: 5_000 });
      replies.push(`${result.endedBy}:${result.data?.toString('utf8') ?? ''}`);
    }

    assert.deepEqual(replies, Array.from({ length: 20 }, () => 'end:good\n'));
    assert.equal(good.accepted, 20);
  });

  test('closes client when no backend is up', async () => {
    // The client keeps its write side open, so only rsp can end the connection.
    for (let i = 0; i < 3; i++) {
      const result = await exchange(rsp.ports.dead as number, { endAfterSend: false, timeoutMs: 5_000 });
      assert.ok(['end', 'ECONNRESET'].includes(result.endedBy), `attempt ${i} ended by ${result.endedBy}`);
      assert.equal(result.bytes, 0);
    }
    assert.equal(rsp.process.exitCode, null);
  });
});
