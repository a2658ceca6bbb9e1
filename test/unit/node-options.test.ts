import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { workerExecArgv } from '../../src/worker/node-options.js';

describe('worker node options', () => {
  test('adds gc and heap options', () => {
    assert.deepEqual(workerExecArgv(['--enable-source-maps'], undefined), [
      '--enable-source-maps',
      '--expose-gc',
      '--max-semi-space-size=2',
      '--no-allocation-site-pretenuring',
    ]);
  });

  test('keeps the semi-space size of the command line', () => {
    assert.deepEqual(workerExecArgv(['--max-semi-space-size=8'], ''), [
      '--max-semi-space-size=8',
      '--expose-gc',
      '--no-allocation-site-pretenuring',
    ]);
  });

  test('keeps the semi-space size of NODE_OPTIONS', () => {
    assert.deepEqual(workerExecArgv([], '--max-old-space-size=512 --max-semi-space-size=16'), [
      '--expose-gc',
      '--no-allocation-site-pretenuring',
    ]);
  });

  test('keeps the pretenuring setting', () => {
    assert.deepEqual(workerExecArgv(['--allocation_site_pretenuring'], undefined), [
      '--allocation_site_pretenuring',
      '--expose-gc',
      '--max-semi-space-size=2',
    ]);
    assert.deepEqual(workerExecArgv([], '--allocation-site-pretenuring'), ['--expose-gc', '--max-semi-space-size=2']);
  });
});
