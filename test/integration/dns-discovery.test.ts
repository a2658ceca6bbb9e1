// DNS service discovery end to end: rsp resolves backend hostnames through a test
// DNS server on 127.0.0.1 every second and balances over the addresses it gets.
// The backends listen on 127.0.0.1, 127.0.0.2 and 127.0.0.3 on one port and reply
// with their own address, so each reply shows which address rsp picked.
//
// Every name resolves before rsp starts. A name that fails its first resolution
// stays a backend that the OS resolves at connect time, which would send a query
// to the system's DNS servers, and these tests send no traffic off this machine.
import assert from 'node:assert/strict';
import { Resolver } from 'node:dns/promises';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { describe, test } from 'node:test';
import { exchange, openConnection, readLine, receiveAll } from '../helpers/client.js';
import { luaString } from '../helpers/config.js';
import { startDnsServer, TYPE_A, type DnsServer } from '../helpers/dns-server.js';
import { startLoopbackBackends } from '../helpers/loopback-backends.js';
import { metricsAddress, scrapeUntil } from '../helpers/metrics.js';
import { patternBuffer, sha256 } from '../helpers/pattern.js';
import { startRsp, type LogLine, type RspProcess, type StartedService } from '../helpers/rsp.js';
import { sleep, waitFor } from '../helpers/wait.js';

const NAME = 'app.rsp.test';
const RESOLVED = 'backend addresses resolved';
const FAILED = 'DNS resolution failed; keeping the last known addresses';

/** rsp resolves every second, so a change shows within this time with room to spare. */
const CHANGE_TIMEOUT_MS = 3_000;

/**
 * Returns a config with metrics on `127.0.0.1:0`, `resolvers` set to `dns` only and
 * `resolve_interval = 1`, followed by `lines` (the service or services).
 */
function discoveryConfig(dns: DnsServer, lines: readonly string[]): string {
  return [
    'metrics = "127.0.0.1:0"',
    `resolvers = { ${luaString(dns.address)} }`,
    'resolve_interval = 1',
    'timeouts = { connect = 2, idle = 60, drain = 2 }',
    ...lines,
    '',
  ].join('\n');
}

/** Returns the config of one top-level service whose only backend is `name:port` with `resolve = true`. */
function singleNameConfig(dns: DnsServer, port: number, name = NAME): string {
  return discoveryConfig(dns, ['listen = "127.0.0.1:0"', `backends = { { address = ${luaString(`${name}:${port}`)}, resolve = true } }`]);
}

/** Opens one connection through rsp, ends it at once, and returns the address of the backend that replied. */
async function servingAddress(port: number): Promise<string> {
  const result = await exchange(port, { keepData: true, timeoutMs: 5_000 });
  assert.equal(result.endedBy, 'end', `the connection ended by ${result.endedBy}`);
  return (result.data ?? Buffer.alloc(0)).toString('utf8').trim();
}

/** Opens `count` connections one after the other and returns the serving address of each. */
async function servingAddresses(port: number, count: number): Promise<string[]> {
  const addresses: string[] = [];
  for (let i = 0; i < count; i++) addresses.push(await servingAddress(port));
  return addresses;
}

/** Counts how often each address occurs. */
function countByAddress(addresses: readonly string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const address of addresses) counts[address] = (counts[address] ?? 0) + 1;
  return counts;
}

/** Waits until `count` connections in a row reach `address`, which shows that the worker applied a change. */
async function waitForOnly(port: number, address: string, count = 2): Promise<void> {
  let last: string[] = [];
  await waitFor(
    `${count} connections in a row served by ${address}`,
    async () => {
      last = await servingAddresses(port, count);
      return last.every((served) => served === address);
    },
    CHANGE_TIMEOUT_MS,
    () => `last served by ${last.join(', ')}`,
  );
}

function linesWithMessage(rsp: RspProcess, message: string): LogLine[] {
  return rsp.lines().filter((line) => line.msg === message);
}

function isResolvedTo(line: LogLine, addresses: readonly string[]): boolean {
  return line.msg === RESOLVED && JSON.stringify(line.addresses) === JSON.stringify(addresses);
}

function startedBackends(rsp: RspProcess): readonly string[] {
  const services = rsp.started.services as StartedService[];
  return services.flatMap((service) => service.backends);
}

/** Returns the error code that pino logged with a failure line, such as ENOTFOUND. */
function errorCode(line: LogLine): unknown {
  return (line.err as { code?: unknown } | undefined)?.code;
}

async function canListenOnIpv6Loopback(): Promise<boolean> {
  const server = createServer();
  return new Promise((resolve) => {
    server.once('error', () => resolve(false));
    server.listen(0, '::1', () => server.close(() => resolve(true)));
  });
}

/**
 * Returns whether /etc/hosts maps `localhost` to 127.0.0.1, so that the OS resolves
 * it without sending a DNS query.
 */
function hostsFileHasLocalhost(): boolean {
  try {
    return readFileSync('/etc/hosts', 'utf8')
      .split('\n')
      .some((line) => /^127\.0\.0\.1\s+(?:\S+\s+)*localhost(?:\s|$)/.test(line));
  } catch {
    return false;
  }
}

describe('DNS test server', () => {
  test('answers A, AAAA and errors', async (t) => {
    const dns = await startDnsServer();
    t.after(() => dns.close());
    const resolver = new Resolver({ timeout: 300, tries: 1 });
    resolver.setServers([dns.address]);
    dns.setRecords(NAME, { a: ['127.0.0.1', '127.0.0.2'], aaaa: ['::1', '2001:db8::5', '::ffff:192.0.2.1'] });
    dns.setRecords('only-a.rsp.test', { a: ['127.0.0.3'] });

    assert.deepEqual((await resolver.resolve4(NAME)).sort(), ['127.0.0.1', '127.0.0.2']);
    assert.deepEqual(await resolver.resolve4('APP.Rsp.Test'), ['127.0.0.1', '127.0.0.2']);
    assert.deepEqual((await resolver.resolve6(NAME)).sort(), ['2001:db8::5', '::1', '::ffff:192.0.2.1']);
    assert.deepEqual(await resolver.resolve4(NAME, { ttl: true }), [
      { address: '127.0.0.1', ttl: 0 },
      { address: '127.0.0.2', ttl: 0 },
    ]);
    await assert.rejects(resolver.resolve6('only-a.rsp.test'), { code: 'ENODATA' });
    await assert.rejects(resolver.resolve4('unknown.rsp.test'), { code: 'ENOTFOUND' });

    dns.setDropping(true);
    const before = dns.queryCount(NAME);
    await assert.rejects(resolver.resolve4(NAME), { code: 'ETIMEOUT' });
    assert.equal(dns.queryCount(NAME), before + 1);
    dns.setDropping(false);

    dns.deleteRecords(NAME);
    await assert.rejects(resolver.resolve4(NAME), { code: 'ENOTFOUND' });
  });
});

describe('DNS discovery', () => {
  test('follows added and removed records', async (t) => {
    const dns = await startDnsServer();
    t.after(() => dns.close());
    const backends = await startLoopbackBackends(['127.0.0.1', '127.0.0.2', '127.0.0.3']);
    t.after(() => backends.close());
    const port = backends.port;
    dns.setRecords(NAME, { a: ['127.0.0.1'] });
    const rsp = await startRsp({ config: singleNameConfig(dns, port) });
    t.after(() => rsp.stop());

    // The first resolution finishes before the workers start.
    assert.deepEqual(startedBackends(rsp), [`127.0.0.1:${port}`]);
    const first = await rsp.waitForLine((line) => line.msg === RESOLVED);
    assert.equal(first.service, 'default');
    assert.equal(first.backend, `${NAME}:${port}`);
    assert.deepEqual(first.addresses, [`127.0.0.1:${port}`]);
    assert.deepEqual(await servingAddresses(rsp.port, 4), ['127.0.0.1', '127.0.0.1', '127.0.0.1', '127.0.0.1']);

    // Held open across both changes, then used and finished after them.
    const heldConnection = await openConnection(rsp.port);
    t.after(() => heldConnection.destroy());
    assert.equal(await readLine(heldConnection), '127.0.0.1');

    // A second record: both addresses take connections, in turn.
    dns.setRecords(NAME, { a: ['127.0.0.1', '127.0.0.2'] });
    await rsp.waitForLine((line) => isResolvedTo(line, [`127.0.0.1:${port}`, `127.0.0.2:${port}`]), CHANGE_TIMEOUT_MS);
    await waitFor('a connection served by 127.0.0.2', async () => (await servingAddress(rsp.port)) === '127.0.0.2', CHANGE_TIMEOUT_MS);
    assert.deepEqual(countByAddress(await servingAddresses(rsp.port, 10)), { '127.0.0.1': 5, '127.0.0.2': 5 });

    // The first record removed: new connections reach only the second address.
    dns.setRecords(NAME, { a: ['127.0.0.2'] });
    await rsp.waitForLine((line) => isResolvedTo(line, [`127.0.0.2:${port}`]), CHANGE_TIMEOUT_MS);
    await waitForOnly(rsp.port, '127.0.0.2');
    const acceptedByFirst = backends.backend('127.0.0.1').accepted;
    assert.deepEqual(await servingAddresses(rsp.port, 6), Array.from({ length: 6 }, () => '127.0.0.2'));
    assert.equal(backends.backend('127.0.0.1').accepted, acceptedByFirst);

    // The held connection to the removed address still carries data both ways and ends cleanly.
    assert.equal(backends.backend('127.0.0.1').openConnections, 1);
    const payload = patternBuffer(256 * 1024, 7);
    const echoed = receiveAll(heldConnection, { timeoutMs: 5_000 });
    heldConnection.end(payload);
    const result = await echoed;
    assert.equal(result.endedBy, 'end');
    assert.equal(result.bytes, payload.length);
    assert.equal(result.sha256, sha256(payload));

    // Metrics label each address as a backend of its own, never the hostname.
    const second = backends.backend('127.0.0.2');
    const samples = await scrapeUntil(
      metricsAddress(rsp.started),
      (scraped) => scraped.sum('rsp_connections_total', { backend: second.address }) === second.accepted,
    );
    assert.equal(samples.sum('rsp_connections_total', { service: 'default', backend: second.address }), second.accepted);
    assert.equal(samples.sum('rsp_backend_up', { service: 'default', backend: second.address }), 1);
    const hostnameSeries = samples.samples.filter((sample) => sample.labels.backend === `${NAME}:${port}`);
    assert.deepEqual(hostnameSeries, []);
    assert.deepEqual(linesWithMessage(rsp, FAILED), []);
  });

  test('keeps addresses while DNS fails', async (t) => {
    const dns = await startDnsServer();
    t.after(() => dns.close());
    const backends = await startLoopbackBackends(['127.0.0.1', '127.0.0.2']);
    t.after(() => backends.close());
    const port = backends.port;
    dns.setRecords(NAME, { a: ['127.0.0.1'] });
    const rsp = await startRsp({ config: singleNameConfig(dns, port) });
    t.after(() => rsp.stop());
    await rsp.waitForLine((line) => line.msg === RESOLVED);

    // NXDOMAIN: one failure line, however many resolutions fail after it.
    dns.deleteRecords(NAME);
    const queriesBefore = dns.queryCount(NAME);
    const failure = await rsp.waitForLine((line) => line.msg === FAILED, CHANGE_TIMEOUT_MS);
    assert.equal(failure.level, 'warn');
    assert.equal(failure.backend, `${NAME}:${port}`);
    assert.deepEqual(failure.addresses, [`127.0.0.1:${port}`]);
    assert.equal(errorCode(failure), 'ENOTFOUND');
    await sleep(3_200);
    assert.equal(linesWithMessage(rsp, FAILED).length, 1);
    // Each resolution sends an A and an AAAA query, and at least three ran in that time.
    assert.ok(dns.queryCount(NAME) - queriesBefore >= 6, `only ${dns.queryCount(NAME) - queriesBefore} queries since the records were deleted`);
    assert.deepEqual(await servingAddresses(rsp.port, 4), ['127.0.0.1', '127.0.0.1', '127.0.0.1', '127.0.0.1']);

    // The same address again: the recovery is logged although the addresses did not change.
    dns.setRecords(NAME, { a: ['127.0.0.1'] });
    await waitFor('a second resolved line', () => linesWithMessage(rsp, RESOLVED).length === 2, CHANGE_TIMEOUT_MS);
    const recovered = linesWithMessage(rsp, RESOLVED)[1] as LogLine;
    assert.equal(recovered.level, 'info');
    assert.deepEqual(recovered.addresses, [`127.0.0.1:${port}`]);
    assert.equal(linesWithMessage(rsp, FAILED).length, 1);
  });

  test('logs each distinct failure once', async (t) => {
    const dns = await startDnsServer();
    t.after(() => dns.close());
    const backends = await startLoopbackBackends(['127.0.0.1', '127.0.0.2']);
    t.after(() => backends.close());
    const port = backends.port;
    dns.setRecords(NAME, { a: ['127.0.0.1'] });
    const rsp = await startRsp({ config: singleNameConfig(dns, port) });
    t.after(() => rsp.stop());
    await rsp.waitForLine((line) => line.msg === RESOLVED);

    // No response: rsp gives up on each query after its 2 s timeout.
    dns.setDropping(true);
    const timeout = await rsp.waitForLine((line) => line.msg === FAILED, CHANGE_TIMEOUT_MS + 2_000);
    assert.equal(errorCode(timeout), 'ETIMEOUT');
    assert.deepEqual(await servingAddresses(rsp.port, 3), ['127.0.0.1', '127.0.0.1', '127.0.0.1']);

    // A response without records is another error, so it gets a line of its own.
    dns.setRecords(NAME, {});
    dns.setDropping(false);
    await waitFor('a second failure line', () => linesWithMessage(rsp, FAILED).length >= 2, CHANGE_TIMEOUT_MS + 2_000);
    const noData = linesWithMessage(rsp, FAILED)[1] as LogLine;
    assert.equal(errorCode(noData), 'ENODATA');
    assert.deepEqual(noData.addresses, [`127.0.0.1:${port}`]);
    await sleep(1_500);
    assert.equal(linesWithMessage(rsp, FAILED).length, 2);
    assert.deepEqual(await servingAddresses(rsp.port, 3), ['127.0.0.1', '127.0.0.1', '127.0.0.1']);

    // Recovery to another address.
    dns.setRecords(NAME, { a: ['127.0.0.2'] });
    await rsp.waitForLine((line) => isResolvedTo(line, [`127.0.0.2:${port}`]), CHANGE_TIMEOUT_MS);
    await waitForOnly(rsp.port, '127.0.0.2');
    assert.equal(linesWithMessage(rsp, FAILED).length, 2);
  });

  test('service-wide resolve', async (t) => {
    const dns = await startDnsServer();
    t.after(() => dns.close());
    const backends = await startLoopbackBackends(['127.0.0.1', '127.0.0.2', '127.0.0.3']);
    t.after(() => backends.close());
    const port = backends.port;
    dns.setRecords('one.rsp.test', { a: ['127.0.0.1'] });
    dns.setRecords('two.rsp.test', { a: ['127.0.0.2'] });
    // The IP address backend is left as it is, and the hostnames are resolved.
    const backendList = [`one.rsp.test:${port}`, `two.rsp.test:${port}`, `127.0.0.3:${port}`].map(luaString).join(', ');
    const rsp = await startRsp({
      config: discoveryConfig(dns, [`services = { web = { listen = "127.0.0.1:0", resolve = true, backends = { ${backendList} } } }`]),
    });
    t.after(() => rsp.stop());

    assert.deepEqual(startedBackends(rsp), [`127.0.0.1:${port}`, `127.0.0.2:${port}`, `127.0.0.3:${port}`]);
    await waitFor('two resolved lines', () => linesWithMessage(rsp, RESOLVED).length === 2);
    const resolved = Object.fromEntries(linesWithMessage(rsp, RESOLVED).map((line) => [line.backend, line.addresses]));
    assert.deepEqual(resolved, { [`one.rsp.test:${port}`]: [`127.0.0.1:${port}`], [`two.rsp.test:${port}`]: [`127.0.0.2:${port}`] });
    assert.equal(dns.queryCount('127.0.0.3'), 0);

    const webPort = rsp.ports.web as number;
    assert.deepEqual(countByAddress(await servingAddresses(webPort, 6)), { '127.0.0.1': 2, '127.0.0.2': 2, '127.0.0.3': 2 });
    const samples = await scrapeUntil(metricsAddress(rsp.started), (scraped) => scraped.sum('rsp_connections_total', { service: 'web' }) === 6);
    for (const host of ['127.0.0.1', '127.0.0.2', '127.0.0.3']) {
      assert.equal(samples.sum('rsp_connections_total', { service: 'web', backend: `${host}:${port}` }), 2, host);
    }
  });

  test('AAAA records become IPv6 backends', async (t) => {
    if (!(await canListenOnIpv6Loopback())) {
      t.skip('::1 is not available on this machine');
      return;
    }
    const dns = await startDnsServer();
    t.after(() => dns.close());
    const backends = await startLoopbackBackends(['127.0.0.1', '::1']);
    t.after(() => backends.close());
    const port = backends.port;
    dns.setRecords(NAME, { a: ['127.0.0.1'], aaaa: ['::1'] });
    const rsp = await startRsp({ config: singleNameConfig(dns, port) });
    t.after(() => rsp.stop());

    assert.deepEqual(startedBackends(rsp), [`127.0.0.1:${port}`, `[::1]:${port}`]);
    assert.deepEqual(countByAddress(await servingAddresses(rsp.port, 4)), { '127.0.0.1': 2, '::1': 2 });
  });

  test('hostname stays until first success', async (t) => {
    // Until its first resolution succeeds, the backend stays `localhost:<port>` and the
    // worker resolves it through the OS at connect time. Only /etc/hosts keeps that lookup
    // on this machine, which is why this test uses the name localhost.
    if (!hostsFileHasLocalhost()) {
      t.skip('/etc/hosts does not map localhost to 127.0.0.1');
      return;
    }
    const dns = await startDnsServer();
    t.after(() => dns.close());
    const backends = await startLoopbackBackends(['127.0.0.1', '127.0.0.2']);
    t.after(() => backends.close());
    const port = backends.port;
    const rsp = await startRsp({ config: singleNameConfig(dns, port, 'localhost') });
    t.after(() => rsp.stop());

    assert.deepEqual(startedBackends(rsp), [`localhost:${port}`]);
    const failure = await rsp.waitForLine((line) => line.msg === FAILED);
    assert.equal(failure.backend, `localhost:${port}`);
    assert.deepEqual(failure.addresses, []);
    assert.equal(errorCode(failure), 'ENOTFOUND');
    assert.equal(await servingAddress(rsp.port), '127.0.0.1');

    dns.setRecords('localhost', { a: ['127.0.0.2'] });
    await rsp.waitForLine((line) => isResolvedTo(line, [`127.0.0.2:${port}`]), CHANGE_TIMEOUT_MS);
    await waitForOnly(rsp.port, '127.0.0.2');
    // The primary logs the new addresses before the worker applies them, so a
    // connection right after the log line can still go to the name.
    const samples = await scrapeUntil(metricsAddress(rsp.started), (scraped) => scraped.sum('rsp_connections_total', { backend: `localhost:${port}` }) >= 1);
    assert.ok(samples.sum('rsp_connections_total', { service: 'default', backend: `localhost:${port}` }) >= 1);
  });

  test('one family timing out keeps addresses', async (t) => {
    if (!(await canListenOnIpv6Loopback())) {
      t.skip('::1 is not available on this machine');
      return;
    }
    const dns = await startDnsServer();
    t.after(() => dns.close());
    const backends = await startLoopbackBackends(['127.0.0.1', '::1']);
    t.after(() => backends.close());
    const port = backends.port;
    dns.setRecords(NAME, { a: ['127.0.0.1'], aaaa: ['::1'] });
    const rsp = await startRsp({ config: singleNameConfig(dns, port) });
    t.after(() => rsp.stop());
    await rsp.waitForLine((line) => line.msg === RESOLVED);

    // A timed-out A query gives no information about the IPv4 addresses, unlike a response without A records.
    dns.setDropping(true, TYPE_A);
    const queriesBefore = dns.queryCount(NAME);
    await waitFor('a resolution that timed out', () => dns.queryCount(NAME) >= queriesBefore + 2, CHANGE_TIMEOUT_MS);
    // The query times out after 2 s.
    await rsp.waitForLine((line) => line.msg === FAILED, 2_000 + CHANGE_TIMEOUT_MS);
    const resolvedLines = linesWithMessage(rsp, RESOLVED).map((line) => line.addresses);
    assert.deepEqual(resolvedLines, [[`127.0.0.1:${port}`, `[::1]:${port}`]]);
    assert.deepEqual(countByAddress(await servingAddresses(rsp.port, 4)), { '127.0.0.1': 2, '::1': 2 });
    const failures = linesWithMessage(rsp, FAILED);
    assert.equal(failures.length, 1);
    assert.equal(errorCode(failures[0] as LogLine), 'ETIMEOUT');
  });
});
