// Round-robin spreads sequential connections in proportion to the backend weights.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startIdentifyBackend, type Backend } from '../helpers/backends.js';
import { exchange } from '../helpers/client.js';
import { multiServiceConfig, singleServiceConfig } from '../helpers/config.js';
import { startRsp, type RspProcess } from '../helpers/rsp.js';

/** Opens `count` connections one after another and returns the serving backend's name for each. */
async function collectServedBy(port: number, count: number): Promise<string[]> {
  const names: string[] = [];
  for (let i = 0; i < count; i++) {
    const result = await exchange(port, { keepData: true, timeoutMs: 5_000 });
    const name = result.data?.toString('utf8').trim() ?? '';
    names.push(name === '' ? `no reply (${result.endedBy})` : name);
  }
  return names;
}

function countOf(names: readonly string[], name: string): number {
  return names.filter((served) => served === name).length;
}

describe('round robin', () => {
  let alpha: Backend;
  let beta: Backend;
  let oneWorker: RspProcess;

  before(async () => {
    alpha = await startIdentifyBackend({ name: 'alpha' });
    beta = await startIdentifyBackend({ name: 'beta' });
    oneWorker = await startRsp({
      config: multiServiceConfig({
        even: { backends: [alpha.address, beta.address] },
        weighted: { backends: [{ address: alpha.address, weight: 2 }, { address: beta.address, weight: 1 }] },
      }),
      workers: 1,
    });
  });
  after(async () => {
    await oneWorker?.stop();
    await alpha?.close();
    await beta?.close();
  });

  test('alternates evenly on one worker', async () => {
    const names = await collectServedBy(oneWorker.ports.even as number, 100);

    assert.equal(countOf(names, 'alpha'), 50);
    assert.equal(countOf(names, 'beta'), 50);
    const repeats = names.filter((name, index) => index > 0 && name === names[index - 1]).length;
    assert.equal(repeats, 0, `order: ${names.join(' ')}`);
  });

  test('follows weights 2 and 1', async () => {
    const names = await collectServedBy(oneWorker.ports.weighted as number, 100);

    // Over 99 connections a 2:1 rotation gives exactly 66 and 33, and the 100th may go to either.
    const alphaCount = countOf(names, 'alpha');
    assert.ok(Math.abs(alphaCount - 67) <= 1, `alpha served ${alphaCount} of 100: ${names.join(' ')}`);
    assert.equal(countOf(names, 'beta'), 100 - alphaCount);
  });

  test('stays even across two workers', async (t) => {
    const twoWorkers = await startRsp({ config: singleServiceConfig({ backends: [alpha.address, beta.address] }), workers: 2 });
    t.after(() => twoWorkers.stop());

    const names = await collectServedBy(twoWorkers.port, 100);

    // Each worker rotates on its own, so the total may be off by one per worker.
    const alphaCount = countOf(names, 'alpha');
    assert.ok(Math.abs(alphaCount - 50) <= 2, `alpha served ${alphaCount} of 100`);
    assert.equal(countOf(names, 'beta'), 100 - alphaCount);
  });
});
