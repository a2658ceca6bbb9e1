// The primary starts its workers with the Node.js options that the pump's memory
// figures rely on: gc() for the periodic minor collection, and a small young
// generation.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { startEchoBackend } from '../helpers/backends.js';
import { singleServiceConfig } from '../helpers/config.js';
import { childPids } from '../helpers/process-tree.js';
import { startRsp } from '../helpers/rsp.js';

function commandLine(pid: number): string[] {
  return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter((part) => part !== '');
}

test('workers get gc and heap options', async (t) => {
  const echo = await startEchoBackend();
  t.after(() => echo.close());
  const rsp = await startRsp({ config: singleServiceConfig({ backends: [echo.address] }), workers: 2 });
  t.after(() => rsp.stop());

  const workers = childPids(rsp.pid);
  assert.equal(workers.length, 2);
  for (const pid of workers) {
    const args = commandLine(pid);
    assert.ok(args.includes('--expose-gc'), `worker ${pid}: ${args.join(' ')}`);
    assert.ok(args.includes('--max-semi-space-size=2'), `worker ${pid}: ${args.join(' ')}`);
    assert.ok(args.includes('--no-allocation-site-pretenuring'), `worker ${pid}: ${args.join(' ')}`);
  }
  assert.ok(!commandLine(rsp.pid).includes('--max-semi-space-size=2'), 'the primary keeps its own heap settings');
});
