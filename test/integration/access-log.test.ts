// With access_log = true, every finished connection logs one "connection closed"
// line with the client, service, backend, bytes each way, duration and close reason.
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import {
  startEchoBackend,
  startEndFirstBackend,
  startReplyAfterEofBackend,
  startResettingBackend,
  type Backend,
} from '../helpers/backends.js';
import { exchange, openConnection, readLine, receiveAll } from '../helpers/client.js';
import { luaString } from '../helpers/config.js';
import { patternBuffer } from '../helpers/pattern.js';
import { operationsConfig } from '../helpers/reload.js';
import { startRsp, type LogLine, type RspProcess } from '../helpers/rsp.js';
import { sleep } from '../helpers/wait.js';

function clientAddress(socket: Socket): string {
  return `${socket.localAddress ?? ''}:${socket.localPort ?? 0}`;
}

function serviceEntry(name: string, backend: Backend, idleSeconds = 60): string {
  return `  ${name} = { listen = "127.0.0.1:0", backends = { ${luaString(backend.address)} }, timeouts = { connect = 2, idle = ${idleSeconds}, drain = 5 } },`;
}

describe('access log', () => {
  const backends: Backend[] = [];
  let reply: Backend;
  let endFirst: Backend;
  let resetting: Backend;
  let echo: Backend;
  let rsp: RspProcess;

  before(async () => {
    reply = await startReplyAfterEofBackend(5_678, 51);
    endFirst = await startEndFirstBackend('bye\n');
    resetting = await startResettingBackend(1_000, 52);
    echo = await startEchoBackend();
    backends.push(reply, endFirst, resetting, echo);
    rsp = await startRsp({
      config: [
        'access_log = true',
        'metrics = false',
        'services = {',
        serviceEntry('reply', reply),
        serviceEntry('endfirst', endFirst),
        serviceEntry('resetting', resetting),
        serviceEntry('echo', echo),
        serviceEntry('idle', echo, 1),
        '}',
        '',
      ].join('\n'),
    });
  });
  after(async () => {
    await rsp?.stop();
    await Promise.all(backends.map((backend) => backend.close()));
  });

  /**
   * Waits for the access line of the connection whose client side is `socket`.
   * Lines logged before the call are skipped: an earlier test's connection may
   * have had the same client port.
   */
  function accessLine(socket: Socket): Promise<LogLine> {
    const client = clientAddress(socket);
    const earlier = new Set(rsp.lines());
    return rsp.waitForLine((line) => line.msg === 'connection closed' && line.client === client && !earlier.has(line), 5_000);
  }

  test('client end has exact fields', async () => {
    const openedAt = Date.now();
    const socket = await openConnection(rsp.ports.reply as number);
    const line = accessLine(socket);
    socket.end(patternBuffer(1_234, 53));
    const result = await receiveAll(socket);
    socket.destroy();
    const logged = await line;
    const elapsedMs = Date.now() - openedAt;

    assert.equal(result.bytes, 5_678);
    assert.equal(logged.level, 'info');
    assert.equal(logged.proc, 'worker');
    assert.equal(logged.service, 'reply');
    assert.equal(logged.backend, reply.address);
    assert.equal(logged.bytesUpstream, 1_234);
    assert.equal(logged.bytesDownstream, 5_678);
    assert.equal(logged.reason, 'client_end');
    assert.equal(logged.side, 'client');
    assert.equal(logged.err, undefined);
    assert.equal(typeof logged.durationMs, 'number');
    assert.ok((logged.durationMs as number) >= 0, `durationMs ${String(logged.durationMs)}`);
    assert.ok((logged.durationMs as number) <= elapsedMs, `durationMs ${String(logged.durationMs)}, test elapsed ${elapsedMs} ms`);
  });

  test('backend end first', async () => {
    const socket = await openConnection(rsp.ports.endfirst as number);
    const line = accessLine(socket);
    assert.equal(await readLine(socket), 'bye');
    socket.end('thanks');
    await receiveAll(socket);
    socket.destroy();
    const logged = await line;

    assert.equal(logged.service, 'endfirst');
    assert.equal(logged.backend, endFirst.address);
    assert.equal(logged.bytesUpstream, 6);
    assert.equal(logged.bytesDownstream, 4);
    assert.equal(logged.reason, 'backend_end');
    assert.equal(logged.side, 'backend');
  });

  test('backend reset', async () => {
    const socket = await openConnection(rsp.ports.resetting as number);
    const line = accessLine(socket);
    socket.write('go');
    const result = await receiveAll(socket);
    socket.destroy();
    const logged = await line;

    assert.equal(result.endedBy, 'ECONNRESET');
    assert.equal(logged.service, 'resetting');
    assert.equal(logged.bytesUpstream, 2);
    assert.equal(logged.bytesDownstream, 1_000);
    assert.equal(logged.reason, 'reset');
    assert.equal(logged.side, 'backend');
    assert.equal((logged.err as { code?: string } | undefined)?.code, 'ECONNRESET');
  });

  test('client reset', async () => {
    const socket = await openConnection(rsp.ports.echo as number);
    const line = accessLine(socket);
    socket.write('ten bytes\n');
    assert.equal(await readLine(socket), 'ten bytes');
    socket.resetAndDestroy();
    const logged = await line;

    assert.equal(logged.service, 'echo');
    assert.equal(logged.backend, echo.address);
    assert.equal(logged.bytesUpstream, 10);
    assert.equal(logged.bytesDownstream, 10);
    assert.equal(logged.reason, 'reset');
    assert.equal(logged.side, 'client');
  });

  test('idle timeout', async () => {
    const socket = await openConnection(rsp.ports.idle as number);
    const line = accessLine(socket);
    socket.write('once\n');
    assert.equal(await readLine(socket), 'once');
    await receiveAll(socket, { timeoutMs: 5_000 });
    socket.destroy();
    const logged = await line;

    assert.equal(logged.service, 'idle');
    assert.equal(logged.reason, 'idle');
    assert.equal(logged.side, 'internal');
    assert.equal(logged.bytesUpstream, 5);
    assert.equal(logged.bytesDownstream, 5);
    assert.ok((logged.durationMs as number) >= 1_000, `durationMs ${String(logged.durationMs)}`);
  });

  test('echo exchange logs once', async () => {
    const result = await exchange(rsp.ports.echo as number, { send: 'one line\n' });
    await sleep(200);
    const lines = rsp.lines().filter((line) => line.msg === 'connection closed' && line.service === 'echo' && line.bytesUpstream === 9);

    assert.equal(result.endedBy, 'end');
    assert.equal(lines.length, 1);
  });
});

describe('access log off', () => {
  test('logs no connection lines', async (t) => {
    const echo = await startEchoBackend();
    t.after(() => echo.close());
    const rsp = await startRsp({ config: operationsConfig({ backends: [echo.address], metrics: false }) });
    t.after(() => rsp.stop());

    const result = await exchange(rsp.port, { send: 'quiet' });
    await sleep(200);

    assert.equal(result.endedBy, 'end');
    assert.deepEqual(rsp.lines().filter((line) => line.msg === 'connection closed'), []);
  });
});

describe('access log at stop', () => {
  test('drain cut is logged', async (t) => {
    const echo = await startEchoBackend();
    t.after(() => echo.close());
    const rsp = await startRsp({ config: operationsConfig({ backends: [echo.address], metrics: false, accessLog: true, timeouts: { drain: 1 } }) });
    t.after(() => rsp.stop());
    const socket = await openConnection(rsp.port);
    t.after(() => socket.destroy());
    socket.write('held\n');
    assert.equal(await readLine(socket), 'held');

    const code = await rsp.stop();
    const closed = rsp.lines().filter((line) => line.msg === 'connection closed');

    assert.equal(code, 0);
    assert.equal(closed.length, 1, 'access lines after the drain deadline');
    assert.equal(closed[0]?.reason, 'drain');
    assert.equal(closed[0]?.side, 'internal');
    assert.equal(closed[0]?.bytesUpstream, 5);
  });
});
