// Least-connections sends new connections to the backend with the fewest open ones.
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { test } from 'node:test';
import { startIdentifyBackend } from '../helpers/backends.js';
import { openConnection, readLine } from '../helpers/client.js';
import { singleServiceConfig } from '../helpers/config.js';
import { startRsp } from '../helpers/rsp.js';
import { sleep, waitFor } from '../helpers/wait.js';

interface HeldConnection {
  readonly socket: Socket;
  readonly backend: string;
}

test('least connections evens out held connections', async (t) => {
  const alpha = await startIdentifyBackend({ name: 'alpha', hold: true });
  t.after(() => alpha.close());
  const beta = await startIdentifyBackend({ name: 'beta', hold: true });
  t.after(() => beta.close());
  // Hooks run in the order registered, so the held connections close before rsp stops
  // and its drain does not wait for them.
  const sockets: Socket[] = [];
  t.after(() => sockets.forEach((socket) => socket.destroy()));
  const rsp = await startRsp({
    config: singleServiceConfig({ backends: [alpha.address, beta.address], algorithm: 'least_connections' }),
    workers: 1,
  });
  t.after(() => rsp.stop());

  const held: HeldConnection[] = [];
  const openHeld = async (count: number): Promise<string[]> => {
    const names: string[] = [];
    for (let i = 0; i < count; i++) {
      const socket = await openConnection(rsp.port);
      sockets.push(socket);
      const backend = await readLine(socket, 5_000);
      held.push({ socket, backend });
      names.push(backend);
    }
    return names;
  };

  // Six held connections split 3 and 3, whichever backend wins the ties.
  const first = await openHeld(6);
  assert.equal(first.filter((name) => name === 'alpha').length, 3, `first six: ${first.join(' ')}`);

  // Close the three on beta, which leaves alpha with 3 open connections and beta with none.
  for (const connection of held.filter(({ backend }) => backend === 'beta')) connection.socket.end();
  await waitFor('beta to see its connections closed', () => beta.openConnections === 0, 5_000);
  // NOTE: rsp lowers its count once it has closed both sides, a moment after beta closes.
  // This pause covers that gap.
  await sleep(200);

  const refill = await openHeld(3);
  assert.deepEqual(refill, ['beta', 'beta', 'beta']);

  // Now 3 and 3 again: the next two connections take one backend each.
  const even = await openHeld(2);
  assert.deepEqual([...even].sort(), ['alpha', 'beta']);
  assert.equal(alpha.openConnections, 4);
  assert.equal(beta.openConnections, 4);
});
