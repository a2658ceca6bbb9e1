// Suggestions for misspelled config keys.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { editDistance, findNearestKey } from '../../src/config/nearest-key.js';

const TOP_LEVEL = ['workers', 'listen', 'algorithm', 'backends', 'timeouts', 'metrics', 'access_log', 'services'];

describe('findNearestKey', () => {
  test('suggests keys one edit away', () => {
    assert.equal(findNearestKey('backend', TOP_LEVEL), 'backends');
    assert.equal(findNearestKey('listn', TOP_LEVEL), 'listen');
    assert.equal(findNearestKey('timeout', TOP_LEVEL), 'timeouts');
  });

  test('ignores case', () => {
    assert.equal(findNearestKey('Listen', TOP_LEVEL), 'listen');
    assert.equal(findNearestKey('accessLog', TOP_LEVEL), 'access_log');
  });

  test('counts a swap as one edit', () => {
    assert.equal(findNearestKey('wokrers', TOP_LEVEL), 'workers');
  });

  test('allows more edits for longer keys', () => {
    assert.equal(findNearestKey('algoritm', TOP_LEVEL), 'algorithm');
    assert.equal(findNearestKey('acess_lg', TOP_LEVEL), 'access_log');
  });

  test('suggests nothing for unrelated keys', () => {
    assert.equal(findNearestKey('hosts', TOP_LEVEL), undefined);
    assert.equal(findNearestKey('x', TOP_LEVEL), undefined);
  });
});

describe('editDistance', () => {
  test('counts edits', () => {
    assert.equal(editDistance('', ''), 0);
    assert.equal(editDistance('abc', ''), 3);
    assert.equal(editDistance('kitten', 'sitting'), 3);
    assert.equal(editDistance('ab', 'ba'), 1);
  });
});
