// Listen and backend addresses beyond IPv4 literals: IPv6 and hostnames.
import assert from 'node:assert/strict';
import { lookup } from 'node:dns/promises';
import { createServer } from 'node:net';
import { describe, test } from 'node:test';
import { startEchoBackend } from '../helpers/backends.js';
import { exchange } from '../helpers/client.js';
import { singleServiceConfig } from '../helpers/config.js';
import { startRsp } from '../helpers/rsp.js';

/** Returns whether a server can listen on ::1, which containers with IPv6 turned off do not allow. */
async function canListenOnIpv6Loopback(): Promise<boolean> {
  const server = createServer();
  const listening = await new Promise<boolean>((resolve) => {
    server.once('error', () => resolve(false));
    server.listen(0, '::1', () => resolve(true));
  });
  if (listening) await new Promise<void>((resolve) => server.close(() => resolve()));
  return listening;
}

describe('addresses', () => {
  test('proxies over IPv6 loopback', async (t) => {
    if (!(await canListenOnIpv6Loopback())) {
      t.skip('::1 is not available on this machine');
      return;
    }
    const echo = await startEchoBackend({ host: '::1' });
    t.after(() => echo.close());
    const rsp = await startRsp({ config: singleServiceConfig({ listen: '[::1]:0', backends: [echo.address] }) });
    t.after(() => rsp.stop());

    const result = await exchange(rsp.port, { host: '::1', send: 'over ipv6', keepData: true, timeoutMs: 5_000 });

    assert.equal(result.endedBy, 'end');
    assert.equal(result.data?.toString('utf8'), 'over ipv6');
    assert.match(String((rsp.started.services as { listen: string }[])[0]?.listen), /^\[::1\]:\d+$/);
  });

  test('resolves a backend hostname', async (t) => {
    // Listen where "localhost" resolves first on this machine, which is where rsp connects first.
    const { address } = await lookup('localhost');
    const echo = await startEchoBackend({ host: address });
    t.after(() => echo.close());
    const rsp = await startRsp({ config: singleServiceConfig({ backends: [`localhost:${echo.port}`] }) });
    t.after(() => rsp.stop());

    const result = await exchange(rsp.port, { send: 'by name', keepData: true, timeoutMs: 5_000 });

    assert.equal(result.endedBy, 'end');
    assert.equal(result.data?.toString('utf8'), 'by name');
    assert.equal(echo.accepted, 1);
  });
});
