// Command-line handling: help, version, --check, and exit status 2 for bad usage.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { findClosedPort } from '../helpers/backends.js';
import { singleServiceConfig } from '../helpers/config.js';
import { repoRoot, runRsp } from '../helpers/rsp.js';

const packageVersion = (JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string }).version;

describe('command line', () => {
  test('help exits 0', async () => {
    const result = await runRsp(['--help']);

    assert.equal(result.code, 0, `stdout: ${result.stdout}\nstderr: ${result.stderr}`);
    assert.match(result.stdout, /--workers/);
    assert.equal(result.stderr, '');
  });

  test('version exits 0', async () => {
    const result = await runRsp(['--version']);

    assert.equal(result.code, 0, `stdout: ${result.stdout}\nstderr: ${result.stderr}`);
    assert.equal(result.stdout.trim(), packageVersion);
  });

  test('check accepts a valid config', async () => {
    const backend = `127.0.0.1:${await findClosedPort()}`;

    const result = await runRsp(['--check'], { config: singleServiceConfig({ backends: [backend] }) });

    assert.equal(result.code, 0, `stdout: ${result.stdout}\nstderr: ${result.stderr}`);
    assert.match(result.stdout, new RegExp(backend.replaceAll('.', '\\.')));
    assert.ok(!result.stdout.includes('"rsp started"'), '--check started the proxy');
  });

  test('unknown option exits 2', async () => {
    const backend = `127.0.0.1:${await findClosedPort()}`;

    const result = await runRsp(['--bogus-option'], { config: singleServiceConfig({ backends: [backend] }) });

    assert.equal(result.code, 2, `stdout: ${result.stdout}\nstderr: ${result.stderr}`);
    assert.match(result.stderr, /bogus-option/);
  });

  test('invalid worker count exits 2', async () => {
    const backend = `127.0.0.1:${await findClosedPort()}`;

    for (const value of ['abc', '0', '2.5']) {
      const result = await runRsp(['--workers', value], { config: singleServiceConfig({ backends: [backend] }) });

      assert.equal(result.code, 2, `--workers ${value}: stdout: ${result.stdout}\nstderr: ${result.stderr}`);
      assert.match(result.stderr, new RegExp(`--workers must be a positive integer, got "${value.replace('.', '\\.')}"`));
    }
  });

  test('missing config argument exits 2', async () => {
    const result = await runRsp([]);

    assert.equal(result.code, 2, `stdout: ${result.stdout}\nstderr: ${result.stderr}`);
    assert.match(result.stderr, /config/i);
  });
});
