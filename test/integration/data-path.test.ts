// How rsp moves bytes: on Node.js's TCP handles by default, on net.Socket for a
// service that reads PROXY protocol headers, and everywhere when RSP_DATA_PATH
// is "sockets". Each path must carry bytes intact both ways.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { startEchoBackend, type Backend } from '../helpers/backends.js';
import { exchange } from '../helpers/client.js';
import { luaString } from '../helpers/config.js';
import { startRsp, type RspProcess, type StartedService } from '../helpers/rsp.js';

const PAYLOAD = randomBytes(256 * 1024);

function config(backend: Backend): string {
  const backends = `backends = { ${luaString(backend.address)} }`;
  return [
    'metrics = false',
    'services = {',
    `  plain = { listen = "127.0.0.1:0", ${backends} },`,
    // The trusted network contains no address of this machine, so the test client
    // needs no header and its bytes pass as they are.
    `  proxied = { listen = "127.0.0.1:0", ${backends}, accept_proxy_protocol = { "192.0.2.0/24" } },`,
    '}',
    '',
  ].join('\n');
}

function dataPaths(rsp: RspProcess): Record<string, string> {
  const services = rsp.started.services as StartedService[];
  return Object.fromEntries(services.map((service) => [service.name, service.dataPath]));
}

async function assertEchoes(port: number): Promise<void> {
  const result = await exchange(port, { send: PAYLOAD, keepData: true });
  assert.equal(result.endedBy, 'end');
  assert.ok(result.data?.equals(PAYLOAD), `echoed ${result.bytes} of ${PAYLOAD.length} bytes, or other bytes`);
}

describe('data path', () => {
  let backend: Backend;

  before(async () => {
    backend = await startEchoBackend();
  });

  after(async () => {
    await backend.close();
  });

  const cases: readonly { name: string; env: Record<string, string>; expected: Record<string, string> }[] = [
    { name: 'handles unless headers are read', env: {}, expected: { plain: 'handles', proxied: 'sockets' } },
    { name: 'environment selects sockets everywhere', env: { RSP_DATA_PATH: 'sockets' }, expected: { plain: 'sockets', proxied: 'sockets' } },
  ];

  for (const { name, env, expected } of cases) {
    test(name, async () => {
      const rsp = await startRsp({ config: config(backend), env });
      try {
        assert.deepEqual(dataPaths(rsp), expected);
        await assertEchoes(rsp.ports.plain!);
        await assertEchoes(rsp.ports.proxied!);
      } finally {
        await rsp.stop();
      }
    });
  }
});
