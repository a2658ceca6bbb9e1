// PROXY protocol headers: exact bytes of the v1 and v2 encodings, parsing of
// complete, partial and malformed input, and reading a header from a real socket.
// Expected v2 buffers are written out in hex from the layout in HAProxy's PROXY
// protocol specification, not produced by the encoder under test.
import assert from 'node:assert/strict';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { describe, test, type TestContext } from 'node:test';
import {
  encodeProxyHeader,
  normalizeAddress,
  parseProxyHeader,
  type ParseResult,
  type ProxiedAddresses,
} from '../../src/proxy-protocol/header.js';
import { readProxyHeader } from '../../src/proxy-protocol/read-header.js';

/** The 12-byte v2 signature, "\r\n\r\n\0\r\nQUIT\n". */
const SIGNATURE_HEX = '0d0a0d0a000d0a515549540a';

/** Builds a buffer from hex text, ignoring spaces so that fields can be grouped. */
function hex(text: string): Buffer {
  return Buffer.from(text.replace(/ /g, ''), 'hex');
}

const IPV4: ProxiedAddresses = {
  sourceAddress: '203.0.113.7',
  sourcePort: 40000,
  destinationAddress: '198.51.100.1',
  destinationPort: 443,
};

const IPV6: ProxiedAddresses = {
  sourceAddress: '2001:db8::1',
  sourcePort: 40000,
  destinationAddress: '2001:db8::2',
  destinationPort: 443,
};

/** The bytes of a v2 LOCAL header with no address block. */
const V2_LOCAL = hex(`${SIGNATURE_HEX} 20 00 0000`);

/** Asserts that `result` is a complete header of `length` bytes for `addresses`. */
function assertComplete(result: ParseResult, length: number, addresses: ProxiedAddresses | undefined): void {
  assert.equal(result.status, 'complete', `result ${JSON.stringify(result)}`);
  if (result.status !== 'complete') return;
  assert.equal(result.length, length);
  assert.deepEqual(result.addresses, addresses);
}

function assertInvalid(result: ParseResult, problem: string): void {
  assert.deepEqual(result, { status: 'invalid', problem });
}

describe('normalizeAddress', () => {
  test('strips the IPv4-mapped prefix', () => {
    assert.equal(normalizeAddress('::ffff:203.0.113.7'), '203.0.113.7');
    assert.equal(normalizeAddress('::FFFF:203.0.113.7'), '203.0.113.7');
  });

  test('keeps other addresses', () => {
    assert.equal(normalizeAddress('203.0.113.7'), '203.0.113.7');
    assert.equal(normalizeAddress('::1'), '::1');
    assert.equal(normalizeAddress('2001:db8::ffff:203.0.113.7'), '2001:db8::ffff:203.0.113.7');
    assert.equal(normalizeAddress(''), '');
  });
});

describe('encodeProxyHeader v1', () => {
  test('IPv4 line', () => {
    assert.deepEqual(encodeProxyHeader('v1', IPV4), Buffer.from('PROXY TCP4 203.0.113.7 198.51.100.1 40000 443\r\n', 'latin1'));
  });

  test('IPv6 line', () => {
    assert.deepEqual(encodeProxyHeader('v1', IPV6), Buffer.from('PROXY TCP6 2001:db8::1 2001:db8::2 40000 443\r\n', 'latin1'));
  });

  test('IPv4-mapped addresses become TCP4', () => {
    const mapped = { ...IPV4, sourceAddress: '::ffff:203.0.113.7', destinationAddress: '::ffff:198.51.100.1' };
    assert.deepEqual(encodeProxyHeader('v1', mapped), Buffer.from('PROXY TCP4 203.0.113.7 198.51.100.1 40000 443\r\n', 'latin1'));
  });

  test('UNKNOWN for mixed or missing', () => {
    const unknown = Buffer.from('PROXY UNKNOWN\r\n', 'latin1');
    assert.deepEqual(encodeProxyHeader('v1', { ...IPV4, destinationAddress: '2001:db8::2' }), unknown);
    // A mapped source normalizes to IPv4, so it no longer matches an IPv6 destination.
    assert.deepEqual(encodeProxyHeader('v1', { ...IPV6, sourceAddress: '::ffff:203.0.113.7' }), unknown);
    assert.deepEqual(encodeProxyHeader('v1', { ...IPV4, sourceAddress: '' }), unknown);
    assert.deepEqual(encodeProxyHeader('v1', undefined), unknown);
  });
});

describe('encodeProxyHeader v2', () => {
  test('IPv4 bytes', () => {
    const expected = hex(`${SIGNATURE_HEX} 21 11 000c  cb007107 c6336401  9c40 01bb`);
    assert.deepEqual(encodeProxyHeader('v2', IPV4), expected);
  });

  test('IPv6 bytes', () => {
    const expected = hex(
      `${SIGNATURE_HEX} 21 21 0024` +
        ' 20010db8000000000000000000000001' +
        ' 20010db8000000000000000000000002' +
        ' 9c40 01bb',
    );
    assert.deepEqual(encodeProxyHeader('v2', IPV6), expected);
  });

  test('IPv6 with leading zeros and IPv4 tail', () => {
    const addresses: ProxiedAddresses = {
      sourceAddress: '::1',
      sourcePort: 1,
      destinationAddress: '64:ff9b::192.0.2.33',
      destinationPort: 65535,
    };
    const expected = hex(
      `${SIGNATURE_HEX} 21 21 0024` +
        ' 00000000000000000000000000000001' +
        ' 0064ff9b0000000000000000c0000221' +
        ' 0001 ffff',
    );
    assert.deepEqual(encodeProxyHeader('v2', addresses), expected);
  });

  test('IPv4-mapped addresses become TCP4', () => {
    const mapped = { ...IPV4, sourceAddress: '::ffff:203.0.113.7', destinationAddress: '::ffff:198.51.100.1' };
    assert.deepEqual(encodeProxyHeader('v2', mapped), hex(`${SIGNATURE_HEX} 21 11 000c  cb007107 c6336401  9c40 01bb`));
  });

  test('LOCAL for mixed or missing', () => {
    assert.deepEqual(encodeProxyHeader('v2', { ...IPV4, destinationAddress: '2001:db8::2' }), V2_LOCAL);
    assert.deepEqual(encodeProxyHeader('v2', { ...IPV6, sourceAddress: '::ffff:203.0.113.7' }), V2_LOCAL);
    assert.deepEqual(encodeProxyHeader('v2', { ...IPV6, destinationAddress: '' }), V2_LOCAL);
    assert.deepEqual(encodeProxyHeader('v2', undefined), V2_LOCAL);
  });
});

describe('parseProxyHeader round trips', () => {
  const cases: readonly [string, 'v1' | 'v2', ProxiedAddresses | undefined][] = [
    ['v1 IPv4', 'v1', IPV4],
    ['v1 IPv6', 'v1', IPV6],
    ['v1 UNKNOWN', 'v1', undefined],
    ['v2 IPv4', 'v2', IPV4],
    ['v2 IPv6', 'v2', IPV6],
    ['v2 LOCAL', 'v2', undefined],
  ];

  for (const [name, version, addresses] of cases) {
    test(`${name} parses back`, () => {
      const header = encodeProxyHeader(version, addresses);
      assertComplete(parseProxyHeader(header), header.length, addresses);
    });

    test(`${name} leaves the payload`, () => {
      const header = encodeProxyHeader(version, addresses);
      const payload = Buffer.from('GET / HTTP/1.1\r\nHost: example\r\n\r\n', 'latin1');
      assertComplete(parseProxyHeader(Buffer.concat([header, payload])), header.length, addresses);
    });

    test(`${name} incomplete at every split`, () => {
      const header = encodeProxyHeader(version, addresses);
      for (let split = 0; split < header.length; split++) {
        assert.deepEqual(parseProxyHeader(header.subarray(0, split)), { status: 'incomplete' }, `first ${split} of ${header.length} bytes`);
      }
    });
  }

  test('port bounds survive', () => {
    const addresses = { ...IPV4, sourcePort: 0, destinationPort: 65535 };
    for (const version of ['v1', 'v2'] as const) {
      const header = encodeProxyHeader(version, addresses);
      assertComplete(parseProxyHeader(header), header.length, addresses);
    }
  });
});

describe('parseProxyHeader v1', () => {
  test('rejects a missing signature', () => {
    assertInvalid(parseProxyHeader(Buffer.from('GET / HTTP/1.1\r\n')), 'the data does not start with a PROXY protocol signature');
    assertInvalid(parseProxyHeader(Buffer.from('PROXX')), 'the data does not start with a PROXY protocol signature');
    assertInvalid(parseProxyHeader(Buffer.from('proxy TCP4')), 'the data does not start with a PROXY protocol signature');
  });

  test('waits for a signature prefix', () => {
    assert.deepEqual(parseProxyHeader(Buffer.from('PRO')), { status: 'incomplete' });
  });

  test('no CRLF within 107 bytes', () => {
    const withoutCrlf = Buffer.from(`PROXY ${'x'.repeat(101)}`, 'latin1');
    assert.equal(withoutCrlf.length, 107);
    assert.deepEqual(parseProxyHeader(withoutCrlf.subarray(0, 106)), { status: 'incomplete' });
    assertInvalid(parseProxyHeader(withoutCrlf), 'the v1 header has no CRLF within 107 bytes');
  });

  test('a 107-byte line is accepted', () => {
    const group = 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff';
    const line = Buffer.from(`PROXY UNKNOWN ${group} ${group} 65535 65535\r\n`, 'latin1');
    assert.equal(line.length, 107);
    assertComplete(parseProxyHeader(line), 107, undefined);
  });

  test('CRLF past 107 bytes is invalid', () => {
    // The specification has the receiver look for the CRLF in the first 107
    // characters only, even when a later CRLF arrived in the same packet.
    const line = Buffer.from(`PROXY UNKNOWN ${'x'.repeat(120)}\r\n`, 'latin1');
    assertInvalid(parseProxyHeader(line), 'the v1 header has no CRLF within 107 bytes');
  });

  test('UNKNOWN ignores the rest of the line', () => {
    const line = Buffer.from('PROXY UNKNOWN 203.0.113.7 198.51.100.1 40000 443\r\n', 'latin1');
    assertComplete(parseProxyHeader(line), line.length, undefined);
  });

  test('keeps the address text as sent', () => {
    const line = Buffer.from('PROXY TCP6 2001:db8:0:0::7 ::ffff:198.51.100.1 40000 443\r\n', 'latin1');
    assertComplete(parseProxyHeader(line), line.length, {
      sourceAddress: '2001:db8:0:0::7',
      sourcePort: 40000,
      destinationAddress: '::ffff:198.51.100.1',
      destinationPort: 443,
    });
  });

  const malformed: readonly [string, string][] = [
    ['port 65536', 'PROXY TCP4 203.0.113.7 198.51.100.1 65536 443'],
    ['destination port 65536', 'PROXY TCP4 203.0.113.7 198.51.100.1 40000 65536'],
    ['port with leading zero', 'PROXY TCP4 203.0.113.7 198.51.100.1 040000 443'],
    ['negative port', 'PROXY TCP4 203.0.113.7 198.51.100.1 -1 443'],
    ['octet 256', 'PROXY TCP4 203.0.113.256 198.51.100.1 40000 443'],
    ['hostname', 'PROXY TCP4 client.example 198.51.100.1 40000 443'],
    ['IPv6 under TCP4', 'PROXY TCP4 2001:db8::1 2001:db8::2 40000 443'],
    ['IPv4 under TCP6', 'PROXY TCP6 203.0.113.7 198.51.100.1 40000 443'],
    ['protocol UDP4', 'PROXY UDP4 203.0.113.7 198.51.100.1 40000 443'],
    ['lower-case protocol', 'PROXY tcp4 203.0.113.7 198.51.100.1 40000 443'],
    ['missing port', 'PROXY TCP4 203.0.113.7 198.51.100.1 40000'],
    ['extra field', 'PROXY TCP4 203.0.113.7 198.51.100.1 40000 443 x'],
    ['double space', 'PROXY TCP4  203.0.113.7 198.51.100.1 40000 443'],
    ['trailing space', 'PROXY TCP4 203.0.113.7 198.51.100.1 40000 443 '],
  ];

  for (const [name, line] of malformed) {
    test(`rejects ${name}`, () => {
      assertInvalid(parseProxyHeader(Buffer.from(`${line}\r\npayload`, 'latin1')), `malformed v1 header "${line}"`);
    });
  }
});

describe('parseProxyHeader v2', () => {
  test('skips TLVs after the addresses', () => {
    // PP2_TYPE_AUTHORITY (0x02) "example.com" and PP2_TYPE_NOOP (0x04) with 3 bytes:
    // 12 address bytes + 14 + 6 TLV bytes = 32 (0x0020).
    const header = hex(
      `${SIGNATURE_HEX} 21 11 0020  cb007107 c6336401  9c40 01bb` +
        ` 02 000b ${Buffer.from('example.com').toString('hex')}` +
        ' 04 0003 000000',
    );
    assert.equal(header.length, 16 + 32);
    const payload = Buffer.from('payload');
    assertComplete(parseProxyHeader(Buffer.concat([header, payload])), 48, IPV4);
    for (let split = 0; split < header.length; split++) {
      assert.deepEqual(parseProxyHeader(header.subarray(0, split)), { status: 'incomplete' }, `first ${split} of ${header.length} bytes`);
    }
  });

  test('LOCAL ignores its address block', () => {
    const header = hex(`${SIGNATURE_HEX} 20 11 000c  cb007107 c6336401  9c40 01bb`);
    assertComplete(parseProxyHeader(header), 28, undefined);
  });

  test('UNSPEC family has no addresses', () => {
    const header = hex(`${SIGNATURE_HEX} 21 00 0000`);
    assertComplete(parseProxyHeader(header), 16, undefined);
  });

  test('UNIX family has no addresses', () => {
    // AF_UNIX stream (0x31) carries two 108-byte paths: 216 bytes (0x00d8).
    const header = Buffer.concat([hex(`${SIGNATURE_HEX} 21 31 00d8`), Buffer.alloc(216)]);
    assertComplete(parseProxyHeader(header), 232, undefined);
  });

  test('rejects wrong version', () => {
    assertInvalid(parseProxyHeader(hex(`${SIGNATURE_HEX} 11 11 000c cb007107 c6336401 9c40 01bb`)), 'unsupported v2 version 1');
    assertInvalid(parseProxyHeader(hex(`${SIGNATURE_HEX} 31 11 000c cb007107 c6336401 9c40 01bb`)), 'unsupported v2 version 3');
  });

  test('rejects unknown command', () => {
    assertInvalid(parseProxyHeader(hex(`${SIGNATURE_HEX} 22 11 000c cb007107 c6336401 9c40 01bb`)), 'unsupported v2 command 2');
  });

  test('rejects short address blocks', () => {
    assertInvalid(parseProxyHeader(hex(`${SIGNATURE_HEX} 21 11 0008 cb007107 c6336401`)), 'v2 IPv4 address block is too short');
    assertInvalid(
      parseProxyHeader(Buffer.concat([hex(`${SIGNATURE_HEX} 21 21 0020`), Buffer.alloc(32)])),
      'v2 IPv6 address block is too short',
    );
  });

  test('rejects an address block over 4096 bytes', () => {
    assertInvalid(parseProxyHeader(hex(`${SIGNATURE_HEX} 21 11 1001`)), 'v2 address block of 4097 bytes is too long');
  });

  test('rejects a broken signature', () => {
    assertInvalid(parseProxyHeader(hex('0d0a0d0a000d0a5155495420')), 'the data does not start with a PROXY protocol signature');
    assertInvalid(parseProxyHeader(hex('0d0d')), 'the data does not start with a PROXY protocol signature');
  });

  test('compresses IPv6 output', () => {
    const cases: readonly [string, string][] = [
      ['20010db8000000000000000000000007', '2001:db8::7'],
      ['00000000000000000000000000000001', '::1'],
      ['20010db8000000000000000000000000', '2001:db8::'],
      ['00000000000000000000000000000000', '::'],
      // A single zero group stays, and the longest run of zeros wins.
      ['20010db8000000010000000000000001', '2001:db8:0:1::1'],
      ['20010000000000010000000000000001', '2001:0:0:1::1'],
      // Of two runs of equal length, the first is compressed.
      ['20010db8000000000001000000000001', '2001:db8::1:0:0:1'],
      ['20010db8000100020003000400050006', '2001:db8:1:2:3:4:5:6'],
    ];
    for (const [bytes, expected] of cases) {
      const header = hex(`${SIGNATURE_HEX} 21 21 0024 ${bytes} 00000000000000000000000000000001 9c40 01bb`);
      const result = parseProxyHeader(header);
      assert.equal(result.status === 'complete' ? result.addresses?.sourceAddress : result.status, expected, `bytes ${bytes}`);
    }
  });
});

/** A connected pair over 127.0.0.1: the server side is paused on connect, as rsp's listener is. */
interface SocketPair {
  readonly client: Socket;
  readonly accepted: Socket;
}

async function connectPair(t: TestContext): Promise<SocketPair> {
  const sockets = new Set<Socket>();
  const server: Server = createServer({ allowHalfOpen: true, pauseOnConnect: true });
  // One hook destroys the sockets before it closes the server, because close()
  // waits until every accepted connection has closed.
  t.after(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });

  const acceptedPromise = new Promise<Socket>((resolve) => server.once('connection', resolve));
  const client = connect({ host: '127.0.0.1', port: (server.address() as { port: number }).port, allowHalfOpen: true });
  sockets.add(client);
  client.on('error', () => {});
  return { client, accepted: await acceptedPromise };
}

interface ReadOutcome {
  readonly error: Error | undefined;
  readonly addresses: ProxiedAddresses | undefined;
  readonly elapsedMs: number;
}

function readHeader(socket: Socket, timeoutMs: number): Promise<ReadOutcome> {
  const startedAt = Date.now();
  let calls = 0;
  return new Promise((resolve) => {
    readProxyHeader(socket, timeoutMs, (error, addresses) => {
      calls++;
      assert.equal(calls, 1, 'readProxyHeader called back more than once');
      resolve({ error, addresses, elapsedMs: Date.now() - startedAt });
    });
  });
}

/** Resumes `socket` and collects what it reads until its read side ends. */
function readToEnd(socket: Socket, timeoutMs = 2_000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => reject(new Error(`the read side did not end within ${timeoutMs} ms (received ${Buffer.concat(chunks).length} bytes)`)), timeoutMs);
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.once('end', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks));
    });
    socket.resume();
  });
}

describe('readProxyHeader', () => {
  test('leaves the payload in the socket', async (t) => {
    const { client, accepted } = await connectPair(t);
    client.end(Buffer.concat([encodeProxyHeader('v2', IPV4), Buffer.from('payload after the header')]));

    const outcome = await readHeader(accepted, 2_000);

    assert.equal(outcome.error, undefined);
    assert.deepEqual(outcome.addresses, IPV4);
    assert.equal(accepted.isPaused(), true);
    assert.equal((await readToEnd(accepted)).toString(), 'payload after the header');
  });

  test('header alone, then FIN', async (t) => {
    const { client, accepted } = await connectPair(t);
    client.end(encodeProxyHeader('v1', IPV4));

    const outcome = await readHeader(accepted, 2_000);
    // The pump attaches its listeners only after the backend connects, by which
    // time 'end' may have been emitted; readableEnded keeps the FIN visible.
    await new Promise((resolve) => setTimeout(resolve, 50));

    assert.equal(outcome.error, undefined);
    assert.deepEqual(outcome.addresses, IPV4);
    assert.equal(accepted.readableEnded, true);
    assert.equal(accepted.readableLength, 0);
  });

  test('header across two writes', async (t) => {
    const { client, accepted } = await connectPair(t);
    const header = encodeProxyHeader('v1', IPV6);
    const outcomePromise = readHeader(accepted, 2_000);
    client.write(header.subarray(0, 20));
    await new Promise((resolve) => setTimeout(resolve, 50));
    client.end(Buffer.concat([header.subarray(20), Buffer.from('rest')]));

    const outcome = await outcomePromise;

    assert.equal(outcome.error, undefined);
    assert.deepEqual(outcome.addresses, IPV6);
    assert.equal((await readToEnd(accepted)).toString(), 'rest');
  });

  test('invalid header fails at once', async (t) => {
    const { client, accepted } = await connectPair(t);
    client.write('GET / HTTP/1.1\r\n\r\n');

    const outcome = await readHeader(accepted, 2_000);

    assert.equal(outcome.error?.message, 'invalid PROXY protocol header: the data does not start with a PROXY protocol signature');
    assert.equal((outcome.error as { code?: string } | undefined)?.code, 'RSP_ERR_PROXY_HEADER');
    assert.ok(outcome.elapsedMs < 1_000, `elapsed ${outcome.elapsedMs} ms`);
  });

  test('times out without a header', async (t) => {
    const { client, accepted } = await connectPair(t);
    client.write('PROXY TCP4 ');

    const outcome = await readHeader(accepted, 200);

    assert.equal(outcome.error?.message, 'no complete PROXY protocol header within 200 ms');
    assert.ok(outcome.elapsedMs >= 190, `elapsed ${outcome.elapsedMs} ms`);
  });

  test('close before the header', async (t) => {
    const { client, accepted } = await connectPair(t);
    client.end('PROXY TCP4 203.0.113.7');

    const outcome = await readHeader(accepted, 2_000);

    assert.equal(outcome.error?.message, 'the connection closed before a complete PROXY protocol header');
    assert.equal(outcome.addresses, undefined);
  });
});
