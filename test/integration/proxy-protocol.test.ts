// PROXY protocol end to end: rsp sends v1 or v2 headers to backends, and reads
// the header of clients from trusted networks. Every backend is an echo server,
// so the client gets back exactly what the backend read, header included, and
// parses it. The 203.0.113.x and 198.51.100.x addresses (documentation ranges)
// appear only inside header bytes; every connection goes to 127.0.0.1 or ::1.
import assert from 'node:assert/strict';
import { createServer, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { encodeProxyHeader, parseProxyHeader, type ProxiedAddresses } from '../../src/proxy-protocol/header.js';
import { startEchoBackend, type Backend } from '../helpers/backends.js';
import { openConnection, receiveAll, type ReceiveResult } from '../helpers/client.js';
import { luaString } from '../helpers/config.js';
import { metricsAddress, scrape, scrapeUntil } from '../helpers/metrics.js';
import { startRsp, type LogLine, type RspProcess } from '../helpers/rsp.js';
import { sleep } from '../helpers/wait.js';

const REJECTED_MESSAGE = 'closing a client from a trusted network without a valid PROXY protocol header';
const PAYLOAD = Buffer.from('GET / HTTP/1.1\r\nHost: example\r\n\r\n', 'latin1');

/** Bytes an echo backend read on one connection, split into the PROXY header rsp sent and the rest. */
interface Forwarded {
  readonly header: Buffer;
  readonly addresses: ProxiedAddresses | undefined;
  readonly rest: Buffer;
}

/** Splits echoed bytes into the PROXY header at their start and the rest, failing when there is no complete header. */
function parseForwarded(result: ReceiveResult): Forwarded {
  const data = result.data ?? Buffer.alloc(0);
  const parsed = parseProxyHeader(data);
  if (parsed.status !== 'complete') {
    assert.fail(`expected a PROXY header, got ${JSON.stringify(parsed)} for ${JSON.stringify(data.toString('latin1'))}`);
  }
  return { header: data.subarray(0, parsed.length), addresses: parsed.addresses, rest: data.subarray(parsed.length) };
}

/** Returns the addresses that a header for `socket` should carry, with the client's side as the source. */
function socketAddresses(socket: Socket): ProxiedAddresses {
  return {
    sourceAddress: socket.localAddress ?? '',
    sourcePort: socket.localPort ?? 0,
    destinationAddress: socket.remoteAddress ?? '',
    destinationPort: socket.remotePort ?? 0,
  };
}

interface Exchanged {
  readonly result: ReceiveResult;
  readonly addresses: ProxiedAddresses;
}

/**
 * Connects to `port`, sends each chunk of `chunks` with `gapMs` between them,
 * ends the write side, and returns what came back with the socket's addresses.
 */
async function exchangeChunks(port: number, chunks: readonly Buffer[], options: { host?: string; gapMs?: number; timeoutMs?: number } = {}): Promise<Exchanged> {
  const socket = await openConnection(port, options.host);
  try {
    const addresses = socketAddresses(socket);
    const received = receiveAll(socket, { keepData: true, timeoutMs: options.timeoutMs ?? 5_000 });
    for (const [index, chunk] of chunks.entries()) {
      if (index > 0 && options.gapMs !== undefined) await sleep(options.gapMs);
      socket.write(chunk);
    }
    socket.end();
    return { result: await received, addresses };
  } finally {
    socket.destroy();
  }
}

async function canListenOnIpv6Loopback(): Promise<boolean> {
  const server = createServer();
  const listening = await new Promise<boolean>((resolve) => {
    server.once('error', () => resolve(false));
    server.listen(0, '::1', () => resolve(true));
  });
  if (listening) await new Promise<void>((resolve) => server.close(() => resolve()));
  return listening;
}

function serviceEntry(name: string, fields: readonly string[]): string {
  return `  ${name} = { listen = "127.0.0.1:0", ${fields.join(', ')} },`;
}

describe('proxy protocol', () => {
  let echo: Backend;
  let echo2: Backend;
  let rsp: RspProcess;
  let metrics: string;
  let ipv6 = false;

  before(async () => {
    echo = await startEchoBackend({ name: 'echo' });
    echo2 = await startEchoBackend({ name: 'echo2' });
    ipv6 = await canListenOnIpv6Loopback();
    const backend = `backends = { ${luaString(echo.address)} }`;
    rsp = await startRsp({
      config: [
        'metrics = "127.0.0.1:0"',
        'access_log = true',
        'timeouts = { connect = 2, idle = 10, drain = 2 }',
        'services = {',
        serviceEntry('send_v1', [backend, 'proxy_protocol = "v1"']),
        serviceEntry('send_v2', [backend, 'proxy_protocol = "v2"']),
        serviceEntry('per_backend', [
          'proxy_protocol = "v2"',
          `backends = { { address = ${luaString(echo.address)}, proxy_protocol = "v1" }, { address = ${luaString(echo2.address)}, proxy_protocol = false } }`,
        ]),
        // timeouts.connect also bounds the wait for the client's header.
        serviceEntry('trusted', [backend, 'proxy_protocol = "v2"', 'accept_proxy_protocol = { "127.0.0.1" }', 'timeouts = { connect = 1, idle = 10, drain = 2 }']),
        serviceEntry('untrusted', [backend, 'proxy_protocol = "v1"', 'accept_proxy_protocol = { "10.0.0.0/8" }']),
        ...(ipv6 ? [`  send_v1_ipv6 = { listen = "[::1]:0", ${backend}, proxy_protocol = "v1" },`] : []),
        '}',
        '',
      ].join('\n'),
    });
    metrics = metricsAddress(rsp.started);
  });
  after(async () => {
    await rsp?.stop();
    await echo?.close();
    await echo2?.close();
  });

  function port(service: string): number {
    const value = rsp.ports[service];
    assert.ok(value !== undefined, `no port for service ${service} in ${JSON.stringify(rsp.ports)}`);
    return value;
  }

  function accessLine(service: string, client: string): Promise<LogLine> {
    return rsp.waitForLine((line) => line.msg === 'connection closed' && line.service === service && line.client === client, 5_000);
  }

  async function proxyProtocolErrors(): Promise<number> {
    return (await scrape(metrics)).sum('rsp_connection_errors_total', { service: 'trusted', backend: '', reason: 'proxy_protocol' });
  }

  /** Waits until the trusted service has counted `expected` rejected headers, and returns the count then. */
  async function proxyProtocolErrorsReach(expected: number): Promise<number> {
    const samples = await scrapeUntil(
      metrics,
      (candidate) => candidate.sum('rsp_connection_errors_total', { service: 'trusted', backend: '', reason: 'proxy_protocol' }) >= expected,
    );
    return samples.sum('rsp_connection_errors_total', { service: 'trusted', backend: '', reason: 'proxy_protocol' });
  }

  describe('sending', () => {
    test('v1 carries the client address', async () => {
      const { result, addresses } = await exchangeChunks(port('send_v1'), [PAYLOAD]);
      const forwarded = parseForwarded(result);

      assert.equal(result.endedBy, 'end');
      assert.equal(addresses.sourceAddress, '127.0.0.1');
      assert.equal(
        forwarded.header.toString('latin1'),
        `PROXY TCP4 127.0.0.1 127.0.0.1 ${addresses.sourcePort} ${port('send_v1')}\r\n`,
      );
      assert.deepEqual(forwarded.rest, PAYLOAD);
    });

    test('v2 carries the client address', async () => {
      const { result, addresses } = await exchangeChunks(port('send_v2'), [PAYLOAD]);
      const forwarded = parseForwarded(result);

      assert.equal(result.endedBy, 'end');
      assert.equal(forwarded.header[12], 0x21, 'version 2, command PROXY');
      assert.equal(forwarded.header[13], 0x11, 'TCP over IPv4');
      assert.deepEqual(forwarded.addresses, {
        sourceAddress: '127.0.0.1',
        sourcePort: addresses.sourcePort,
        destinationAddress: '127.0.0.1',
        destinationPort: port('send_v2'),
      });
      assert.deepEqual(forwarded.rest, PAYLOAD);
    });

    test('header without client bytes', async () => {
      const { result, addresses } = await exchangeChunks(port('send_v1'), []);

      assert.equal(result.endedBy, 'end');
      assert.equal(result.data?.toString('latin1'), `PROXY TCP4 127.0.0.1 127.0.0.1 ${addresses.sourcePort} ${port('send_v1')}\r\n`);
    });

    test('backend setting overrides the service', async () => {
      // Round-robin over the two backends: one sends v1, the other no header.
      const echoBefore = echo.accepted;
      const echo2Before = echo2.accepted;
      const first = await exchangeChunks(port('per_backend'), [PAYLOAD]);
      const second = await exchangeChunks(port('per_backend'), [PAYLOAD]);
      const [withHeader, plain] = first.result.data?.subarray(0, 6).toString('latin1') === 'PROXY ' ? [first, second] : [second, first];

      assert.equal(echo.accepted - echoBefore, 1, 'connections to the v1 backend');
      assert.equal(echo2.accepted - echo2Before, 1, 'connections to the backend without a header');
      assert.equal(
        parseForwarded(withHeader.result).header.toString('latin1'),
        `PROXY TCP4 127.0.0.1 127.0.0.1 ${withHeader.addresses.sourcePort} ${port('per_backend')}\r\n`,
      );
      assert.deepEqual(parseForwarded(withHeader.result).rest, PAYLOAD);
      assert.deepEqual(plain.result.data, PAYLOAD);
    });

    test('v1 over IPv6 loopback', async (t) => {
      if (!ipv6) {
        t.skip('::1 is not available on this machine');
        return;
      }
      const { result, addresses } = await exchangeChunks(port('send_v1_ipv6'), [PAYLOAD], { host: '::1' });
      const forwarded = parseForwarded(result);

      assert.equal(forwarded.header.toString('latin1'), `PROXY TCP6 ::1 ::1 ${addresses.sourcePort} ${port('send_v1_ipv6')}\r\n`);
      assert.deepEqual(forwarded.rest, PAYLOAD);
    });
  });

  describe('accepting from a trusted network', () => {
    const CLIENT = { sourceAddress: '203.0.113.7', destinationAddress: '198.51.100.1', destinationPort: 443 };

    test('v1 header replaces the client', async () => {
      const header = Buffer.from('PROXY TCP4 203.0.113.7 198.51.100.1 40000 443\r\n', 'latin1');
      const [{ result }, line] = await Promise.all([
        exchangeChunks(port('trusted'), [Buffer.concat([header, PAYLOAD])]),
        accessLine('trusted', '203.0.113.7:40000'),
      ]);
      const forwarded = parseForwarded(result);

      assert.equal(result.endedBy, 'end');
      assert.equal(forwarded.header[12], 0x21, 'rsp forwards v2 with command PROXY');
      assert.deepEqual(forwarded.addresses, { ...CLIENT, sourcePort: 40000 });
      assert.deepEqual(forwarded.rest, PAYLOAD);
      assert.equal(line.backend, echo.address);
      assert.equal(line.bytesUpstream, PAYLOAD.length);
    });

    test('v2 header replaces the client', async () => {
      const header = encodeProxyHeader('v2', { ...CLIENT, sourcePort: 40001 });
      const [{ result }, line] = await Promise.all([
        exchangeChunks(port('trusted'), [Buffer.concat([header, PAYLOAD])]),
        accessLine('trusted', '203.0.113.7:40001'),
      ]);
      const forwarded = parseForwarded(result);

      assert.deepEqual(forwarded.addresses, { ...CLIENT, sourcePort: 40001 });
      assert.deepEqual(forwarded.rest, PAYLOAD);
      assert.equal(line.backend, echo.address);
    });

    test('v2 TLVs are not forwarded', async () => {
      // PP2_TYPE_AUTHORITY (0x02) with "example.com" after the 12 address bytes.
      const tlv = Buffer.concat([Buffer.from([0x02, 0x00, 0x0b]), Buffer.from('example.com', 'latin1')]);
      const header = Buffer.concat([encodeProxyHeader('v2', { ...CLIENT, sourcePort: 40006 }), tlv]);
      header.writeUInt16BE(12 + tlv.length, 14);
      const { result } = await exchangeChunks(port('trusted'), [Buffer.concat([header, PAYLOAD])]);
      const forwarded = parseForwarded(result);

      assert.deepEqual(forwarded.addresses, { ...CLIENT, sourcePort: 40006 });
      assert.equal(forwarded.header.length, 28, 'forwarded header without TLVs');
      assert.deepEqual(forwarded.rest, PAYLOAD);
    });

    test('header split across writes', async () => {
      const header = Buffer.from('PROXY TCP4 203.0.113.7 198.51.100.1 40002 443\r\n', 'latin1');
      const { result } = await exchangeChunks(port('trusted'), [header.subarray(0, 20), Buffer.concat([header.subarray(20), PAYLOAD])], {
        gapMs: 50,
      });
      const forwarded = parseForwarded(result);

      assert.deepEqual(forwarded.addresses, { ...CLIENT, sourcePort: 40002 });
      assert.deepEqual(forwarded.rest, PAYLOAD);
    });

    test('IPv6 header replaces the client', async () => {
      const header = Buffer.from('PROXY TCP6 2001:db8:0:0::7 2001:db8::1 40003 443\r\n', 'latin1');
      const [{ result }, line] = await Promise.all([
        exchangeChunks(port('trusted'), [Buffer.concat([header, PAYLOAD])]),
        accessLine('trusted', '[2001:db8:0:0::7]:40003'),
      ]);
      const forwarded = parseForwarded(result);

      assert.equal(forwarded.header[13], 0x21, 'TCP over IPv6');
      // The v2 header carries bytes, so the address comes back in its shortest form.
      assert.deepEqual(forwarded.addresses, {
        sourceAddress: '2001:db8::7',
        sourcePort: 40003,
        destinationAddress: '2001:db8::1',
        destinationPort: 443,
      });
      assert.deepEqual(forwarded.rest, PAYLOAD);
      assert.equal(line.backend, echo.address);
    });

    test('UNKNOWN keeps the socket address', async () => {
      const { result, addresses } = await exchangeChunks(port('trusted'), [Buffer.concat([Buffer.from('PROXY UNKNOWN\r\n'), PAYLOAD])]);
      const forwarded = parseForwarded(result);

      assert.deepEqual(forwarded.addresses, addresses);
      assert.deepEqual(forwarded.rest, PAYLOAD);
    });

    test('header alone, then FIN', async () => {
      const header = Buffer.from('PROXY TCP4 203.0.113.7 198.51.100.1 40004 443\r\n', 'latin1');
      // The FIN can reach rsp after the header is parsed but before the backend
      // connects, and rsp must still pass it on. The echo backend then ends as
      // well, long before timeouts.idle would close the connection.
      const { result } = await exchangeChunks(port('trusted'), [header], { timeoutMs: 3_000 });
      const forwarded = parseForwarded(result);

      assert.equal(result.endedBy, 'end');
      assert.deepEqual(forwarded.addresses, { ...CLIENT, sourcePort: 40004 });
      assert.equal(forwarded.rest.length, 0);
    });
  });

  describe('rejecting from a trusted network', () => {
    /** Waits for the warning about the client whose side of the connection is `client`. */
    function rejectedLine(client: ProxiedAddresses): Promise<LogLine> {
      const address = `${client.sourceAddress}:${client.sourcePort}`;
      return rsp.waitForLine((line) => line.msg === REJECTED_MESSAGE && line.client === address, 5_000);
    }

    const invalidCases: readonly [string, string, string][] = [
      ['plain bytes', 'hello\r\n', 'invalid PROXY protocol header: the data does not start with a PROXY protocol signature'],
      [
        'port 65536',
        'PROXY TCP4 203.0.113.7 198.51.100.1 65536 443\r\n',
        'invalid PROXY protocol header: malformed v1 header "PROXY TCP4 203.0.113.7 198.51.100.1 65536 443"',
      ],
    ];

    for (const [name, sent, problem] of invalidCases) {
      test(`closes on ${name}`, async () => {
        const errorsBefore = await proxyProtocolErrors();
        const acceptedBefore = echo.accepted;

        const { result, addresses } = await exchangeChunks(port('trusted'), [Buffer.from(sent, 'latin1')]);
        const line = await rejectedLine(addresses);
        const errors = await proxyProtocolErrorsReach(errorsBefore + 1);

        assert.equal(result.bytes, 0);
        assert.equal(result.endedBy, 'end');
        assert.equal(echo.accepted, acceptedBefore, 'the backend got no connection');
        assert.equal(errors, errorsBefore + 1);
        assert.equal(line.level, 'warn');
        assert.equal(line.service, 'trusted');
        assert.equal(line.reason, 'proxy_protocol');
        assert.equal((line.err as { message?: string } | undefined)?.message, problem);
      });
    }

    test('closes a silent client', async () => {
      const errorsBefore = await proxyProtocolErrors();
      const acceptedBefore = echo.accepted;
      const socket = await openConnection(port('trusted'));
      let result: ReceiveResult;
      let line: LogLine;
      try {
        // The client sends nothing and keeps its write side open.
        [result, line] = await Promise.all([receiveAll(socket, { timeoutMs: 5_000 }), rejectedLine(socketAddresses(socket))]);
      } finally {
        socket.destroy();
      }

      assert.equal(result.bytes, 0);
      assert.equal(result.endedBy, 'end');
      assert.ok(result.elapsedMs >= 900, `closed after ${result.elapsedMs} ms, before timeouts.connect (1 s)`);
      assert.ok(result.elapsedMs < 3_000, `closed after ${result.elapsedMs} ms`);
      assert.equal((line.err as { message?: string } | undefined)?.message, 'no complete PROXY protocol header within 1000 ms');
      assert.equal(await proxyProtocolErrorsReach(errorsBefore + 1), errorsBefore + 1);
      assert.equal(echo.accepted, acceptedBefore, 'the backend got no connection');
    });
  });

  describe('untrusted sources', () => {
    test('plain connection passes through', async () => {
      const { result, addresses } = await exchangeChunks(port('untrusted'), [PAYLOAD]);
      const forwarded = parseForwarded(result);

      assert.equal(result.endedBy, 'end');
      assert.equal(forwarded.header.toString('latin1'), `PROXY TCP4 127.0.0.1 127.0.0.1 ${addresses.sourcePort} ${port('untrusted')}\r\n`);
      assert.deepEqual(forwarded.rest, PAYLOAD);
    });

    test('client header is not parsed', async () => {
      const spoofed = Buffer.from('PROXY TCP4 203.0.113.7 198.51.100.1 40005 443\r\n', 'latin1');
      const { result, addresses } = await exchangeChunks(port('untrusted'), [Buffer.concat([spoofed, PAYLOAD])]);
      const forwarded = parseForwarded(result);

      assert.deepEqual(forwarded.addresses, addresses);
      assert.deepEqual(forwarded.rest, Buffer.concat([spoofed, PAYLOAD]));
      await accessLine('untrusted', `127.0.0.1:${addresses.sourcePort}`);
    });

    test('counts no header errors', async () => {
      const samples = await scrape(metrics);
      assert.equal(samples.sum('rsp_connection_errors_total', { service: 'untrusted' }), 0);
      assert.equal(samples.sum('rsp_connection_errors_total', { service: 'send_v1' }), 0);
    });
  });
});
