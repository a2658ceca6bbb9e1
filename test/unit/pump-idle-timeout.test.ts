// The idle timeout of a pump on real sockets. A pump's place in its timeout list
// lasts exactly as long as the pump, and a quiet pump closes as idle.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { describe, test, type TestContext } from 'node:test';
import { Pump } from '../../src/pump/pump.js';
import type { PumpResult } from '../../src/pump/pump-base.js';
import { timeoutListFor } from '../../src/timeout-list.js';

/** Opens a connection to `server` and returns both of its ends. */
async function socketPair(server: Server): Promise<{ local: Socket; remote: Socket }> {
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('the server has no TCP address');
  const accepted = once(server, 'connection') as Promise<[Socket]>;
  const local = connect({ host: '127.0.0.1', port: address.port, allowHalfOpen: true });
  await once(local, 'connect');
  const [remote] = await accepted;
  return { local, remote };
}

/**
 * Starts a server on 127.0.0.1 and a pump between two fresh connections to it.
 * `client` and `backend` are the far ends, and the test closes everything.
 */
async function startPump(t: TestContext, idleMs: number): Promise<{ client: Socket; backend: Socket; closed: Promise<PumpResult> }> {
  const server = createServer({ allowHalfOpen: true });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => server.close());
  const clientPair = await socketPair(server);
  const backendPair = await socketPair(server);
  const closed = new Promise<PumpResult>((resolve) => {
    new Pump(clientPair.remote, backendPair.local, { idleMs }, resolve);
  });
  t.after(() => {
    for (const socket of [clientPair.local, clientPair.remote, backendPair.local, backendPair.remote]) socket.destroy();
  });
  return { client: clientPair.local, backend: backendPair.remote, closed };
}

describe('pump idle timeout', () => {
  test('closed pump leaves its timeout list', async (t) => {
    // A duration no other test uses, so the list contains this pump alone.
    const idleMs = 61_234;
    const { client, backend, closed } = await startPump(t, idleMs);
    assert.equal(timeoutListFor(idleMs).empty, false, 'the open pump has no idle timeout');

    // The client's FIN goes first, so the pump ends as the client's end.
    backend.resume();
    const backendEnded = once(backend, 'end');
    client.end();
    await backendEnded;
    backend.end();
    const result = await closed;
    assert.equal(result.reason, 'client_end');
    assert.equal(timeoutListFor(idleMs).empty, true, 'the closed pump stayed in its timeout list');
  });

  test('quiet pump closes as idle', async (t) => {
    const idleMs = 300;
    const startedAt = performance.now();
    const { closed } = await startPump(t, idleMs);

    const result = await closed;
    const elapsedMs = performance.now() - startedAt;
    assert.equal(result.reason, 'idle');
    assert.ok(elapsedMs >= idleMs - 2, `the pump closed after ${elapsedMs.toFixed(0)} ms; the idle timeout is ${idleMs} ms`);
    assert.equal(timeoutListFor(idleMs).empty, true, 'the idle pump stayed in its timeout list');
  });
});
