// The DNS discovery settings as loadConfig reads them: `resolve` per backend,
// service and top level, `resolve_interval`, `resolvers`, and the exact messages
// for invalid values.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ServiceConfig } from '../../src/config/types.js';
import { useConfigFiles, serviceNamed } from '../helpers/config-files.js';

const { assertIssues, load } = useConfigFiles('rsp-config-resolve-');

/** `resolve` of each backend, keyed by backend address. */
function resolveFlags(serviceConfig: ServiceConfig): Record<string, boolean> {
  return Object.fromEntries(serviceConfig.backends.map((backend) => [backend.address, backend.resolve]));
}

const HEAD = 'listen = 8000\nmetrics = false\n';

describe('backend resolve', () => {
  test('off by default', () => {
    const config = load(`${HEAD}backends = { "app.test:80", { address = "db.test:5432", weight = 2 }, "10.0.0.1:80" }\n`);
    assert.deepEqual(resolveFlags(serviceNamed(config, 'default')), { 'app.test:80': false, 'db.test:5432': false, '10.0.0.1:80': false });
  });

  test('backend table turns it on', () => {
    const config = load(`${HEAD}backends = { { address = "app.test:80", resolve = true }, "db.test:5432" }\n`);
    assert.deepEqual(resolveFlags(serviceNamed(config, 'default')), { 'app.test:80': true, 'db.test:5432': false });
  });

  test('keeps weight and other options', () => {
    const config = load(`${HEAD}backends = { "10.0.0.1:80", { address = "App.Test:80", resolve = true, weight = 3, backup = true } }\n`);
    const backend = serviceNamed(config, 'default').backends[1];
    assert.ok(backend);
    assert.equal(backend.address, 'app.test:80');
    assert.equal(backend.host, 'app.test');
    assert.equal(backend.port, 80);
    assert.equal(backend.weight, 3);
    assert.equal(backend.backup, true);
    assert.equal(backend.resolve, true);
  });

  test('IP address is rejected', () => {
    assertIssues(`${HEAD}backends = { { address = "127.0.0.1:80", resolve = true } }\n`, [
      'backends[1].resolve applies only to a hostname, but the address is an IP address, got "127.0.0.1:80"',
    ]);
  });

  test('IPv6 address is rejected', () => {
    assertIssues(`${HEAD}backends = { "app.test:80", { address = "[::1]:80", resolve = true } }\n`, [
      'backends[2].resolve applies only to a hostname, but the address is an IP address, got "[::1]:80"',
    ]);
  });

  test('IP address is rejected in a service', () => {
    assertIssues('metrics = false\nservices = { web = { listen = 8001, backends = { { address = "10.0.0.1:80", resolve = true } } } }\n', [
      'services.web.backends[1].resolve applies only to a hostname, but the address is an IP address, got "10.0.0.1:80"',
    ]);
  });

  test('non-boolean is rejected', () => {
    assertIssues(`${HEAD}backends = { { address = "app.test:80", resolve = 1 }, { address = "db.test:80", resolve = "yes" } }\n`, [
      'backends[1].resolve must be true or false, got 1',
      'backends[2].resolve must be true or false, got "yes"',
    ]);
  });
});

describe('service-wide resolve', () => {
  test('top level applies to hostnames only', () => {
    const config = load(`${HEAD}resolve = true\nbackends = { "app.test:80", "10.0.0.1:80", "[::1]:80", { address = "db.test:5432", weight = 2 } }\n`);
    assert.deepEqual(resolveFlags(serviceNamed(config, 'default')), {
      'app.test:80': true,
      '10.0.0.1:80': false,
      '[::1]:80': false,
      'db.test:5432': true,
    });
  });

  test('backend false beats service true', () => {
    const config = load(`${HEAD}resolve = true\nbackends = { "app.test:80", { address = "db.test:5432", resolve = false } }\n`);
    assert.deepEqual(resolveFlags(serviceNamed(config, 'default')), { 'app.test:80': true, 'db.test:5432': false });
  });

  test('service setting overrides the top level', () => {
    const config = load(`
      metrics = false
      resolve = true
      services = {
        inherits = { listen = 8001, backends = { "app.test:80", "10.0.0.1:80" } },
        off = { listen = 8002, resolve = false, backends = { "app.test:80", { address = "db.test:80", resolve = true } } },
        on = { listen = 8003, resolve = true, backends = { "app.test:80", "10.0.0.2:80" } },
      }
    `);
    assert.deepEqual(resolveFlags(serviceNamed(config, 'inherits')), { 'app.test:80': true, '10.0.0.1:80': false });
    assert.deepEqual(resolveFlags(serviceNamed(config, 'off')), { 'app.test:80': false, 'db.test:80': true });
    assert.deepEqual(resolveFlags(serviceNamed(config, 'on')), { 'app.test:80': true, '10.0.0.2:80': false });
  });

  test('legacy form takes the top level', () => {
    const config = load('metrics = false\nresolve = true\nlistenPort = "8000"\nbackendAddress = "app.test"\nbackendPort = "80"\n');
    assert.deepEqual(resolveFlags(serviceNamed(config, 'default')), { 'app.test:80': true });
  });

  test('non-boolean service setting is rejected', () => {
    assertIssues('metrics = false\nservices = { web = { listen = 8001, resolve = "yes", backends = { "app.test:80" } } }\n', [
      'services.web.resolve must be true or false, got "yes"',
    ]);
  });
});

describe('resolve_interval', () => {
  test('defaults to 5 seconds', () => {
    const config = load(`${HEAD}backends = { { address = "app.test:80", resolve = true } }\n`);
    assert.equal(serviceNamed(config, 'default').resolveIntervalMs, 5_000);
  });

  test('seconds become milliseconds', () => {
    const config = load(`${HEAD}resolve_interval = 2.5\nbackends = { "app.test:80" }\n`);
    assert.equal(serviceNamed(config, 'default').resolveIntervalMs, 2_500);
  });

  test('accepts the 1 second minimum', () => {
    const config = load(`${HEAD}resolve_interval = 1\nbackends = { "app.test:80" }\n`);
    assert.equal(serviceNamed(config, 'default').resolveIntervalMs, 1_000);
  });

  test('service overrides the top level', () => {
    const config = load(`
      metrics = false
      resolve_interval = 30
      services = {
        inherits = { listen = 8001, backends = { "app.test:80" } },
        fast = { listen = 8002, resolve_interval = 2, backends = { "app.test:80" } },
      }
    `);
    assert.equal(serviceNamed(config, 'inherits').resolveIntervalMs, 30_000);
    assert.equal(serviceNamed(config, 'fast').resolveIntervalMs, 2_000);
  });

  test('below 1 second is rejected', () => {
    assertIssues(`${HEAD}resolve_interval = 0.5\nbackends = { "app.test:80" }\n`, ['resolve_interval must be at least 1 second, got 0.5']);
  });

  test('below 1 second in a service', () => {
    assertIssues('metrics = false\nservices = { web = { listen = 8001, resolve_interval = 0.9, backends = { "app.test:80" } } }\n', [
      'services.web.resolve_interval must be at least 1 second, got 0.9',
    ]);
  });

  test('zero and strings are rejected', () => {
    assertIssues('metrics = false\nservices = { a = { listen = 8001, resolve_interval = 0, backends = { "app.test:80" } }, b = { listen = 8002, resolve_interval = "2", backends = { "app.test:80" } } }\n', [
      'services.a.resolve_interval must be a positive number of seconds, got 0',
      'services.b.resolve_interval must be a positive number of seconds, got "2"',
    ]);
  });
});

describe('resolvers', () => {
  test('system resolvers by default', () => {
    const config = load(`${HEAD}backends = { { address = "app.test:80", resolve = true } }\n`);
    assert.equal(config.resolvers, null);
  });

  test('accepts ip and ip:port', () => {
    const config = load(`${HEAD}resolvers = { "127.0.0.1", "127.0.0.1:5353", "[::1]:53", "::1" }\nbackends = { "app.test:80" }\n`);
    assert.deepEqual(config.resolvers, ['127.0.0.1', '127.0.0.1:5353', '[::1]:53', '::1']);
  });

  test('hostname is rejected', () => {
    assertIssues(`${HEAD}resolvers = { "dns.example" }\nbackends = { "app.test:80" }\n`, [
      'resolvers[1] must be an IP address, optionally with a port, such as "127.0.0.1" or "127.0.0.1:5353", got "dns.example"',
    ]);
  });

  test('hostname with a port is rejected', () => {
    assertIssues(`${HEAD}resolvers = { "127.0.0.1", "dns.example:53" }\nbackends = { "app.test:80" }\n`, [
      'resolvers[2] must be an IP address, optionally with a port, such as "127.0.0.1" or "127.0.0.1:5353", got "dns.example:53"',
    ]);
  });

  test('bad ports and entries are rejected', () => {
    assertIssues(`${HEAD}resolvers = { "127.0.0.1:0", "[::1]", 53 }\nbackends = { "app.test:80" }\n`, [
      'resolvers[1] must have a port from 1 to 65535, got "127.0.0.1:0"',
      'resolvers[2] must be "[ipv6]:port", with the port after the closing bracket, got "[::1]"',
      'resolvers[3] must be a DNS server address such as "127.0.0.1" or "127.0.0.1:5353", got 53',
    ]);
  });

  test('must be a non-empty list', () => {
    assertIssues(`${HEAD}resolvers = "127.0.0.1"\nbackends = { "app.test:80" }\n`, [
      'resolvers must be a list of DNS servers such as { "127.0.0.1:53" }, got "127.0.0.1"',
    ]);
    assertIssues(`${HEAD}resolvers = {}\nbackends = { "app.test:80" }\n`, ['resolvers must be a list of DNS servers such as { "127.0.0.1:53" }, got {}']);
  });

  test('not a service setting', () => {
    assertIssues('metrics = false\nservices = { web = { listen = 8001, resolvers = { "127.0.0.1" }, backends = { "app.test:80" } } }\n', [
      'services.web.resolvers is not a known setting; did you mean "resolve"?',
    ]);
  });
});
