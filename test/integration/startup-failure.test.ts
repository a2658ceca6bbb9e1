// A config or listen address that cannot be used stops rsp at start-up with exit status 1.
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { describe, test } from 'node:test';
import { findClosedPort } from '../helpers/backends.js';
import { singleServiceConfig } from '../helpers/config.js';
import { runRsp } from '../helpers/rsp.js';

describe('start-up failure', () => {
  test('port in use exits 1', async (t) => {
    const occupier = createServer();
    await new Promise<void>((resolve) => occupier.listen(0, '127.0.0.1', () => resolve()));
    t.after(() => occupier.close());
    const listen = `127.0.0.1:${(occupier.address() as { port: number }).port}`;
    const backend = `127.0.0.1:${await findClosedPort()}`;

    const result = await runRsp(['--workers', '1'], { config: singleServiceConfig({ listen, backends: [backend] }) });

    assert.equal(result.code, 1, `stdout: ${result.stdout}\nstderr: ${result.stderr}`);
    // The error may be a JSON log line at level error on stdout or a plain line on stderr.
    const errorLogLines = result.stdout.split('\n').filter((line) => line.includes('"level":"error"') && line.includes(listen));
    const stderrLines = result.stderr.split('\n').filter((line) => line.includes(listen));
    assert.ok(errorLogLines.length + stderrLines.length > 0, `no error line names ${listen}`);
    assert.ok(!result.stdout.includes('"rsp started"'), 'rsp reported a successful start');
  });

  test('invalid config exits 1', async () => {
    const backend = `127.0.0.1:${await findClosedPort()}`;
    const config = singleServiceConfig({ backends: [backend] }).replace('"round_robin"', '"fastest"');

    const result = await runRsp(['--workers', '1'], { config });

    assert.equal(result.code, 1, `stdout: ${result.stdout}\nstderr: ${result.stderr}`);
    assert.match(result.stderr, /rsp\.lua/);
    assert.match(result.stderr, /algorithm/);
    assert.match(result.stderr, /fastest/);
  });
});
