// Validation messages of loadConfig: each test asserts the exact text an
// operator reads, and that every problem of a file is reported at once.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ConfigError } from '../../src/errors.js';
import { loadConfig } from '../../src/config/load.js';
import { useConfigFiles } from '../helpers/config-files.js';

const { writeConfig, assertIssues } = useConfigFiles('rsp-config-validate-');

const SERVICE = 'listen = 8000\nbackends = { "10.0.0.1:80" }\n';

describe('setting values', () => {
  test('bad weight', () => {
    assertIssues('listen = 8000\nbackends = { "10.0.0.1:80", { address = "10.0.0.2:80", weight = -1 } }\n', [
      'backends[2].weight must be a positive integer, got -1',
    ]);
  });

  test('issue carries file and path', () => {
    const file = writeConfig('listen = 8000\nbackends = { { address = "10.0.0.2:80", weight = 0 } }\n');
    assert.throws(
      () => loadConfig(file),
      (error: unknown) => {
        assert.ok(error instanceof ConfigError);
        assert.deepEqual(error.issues, [
          { file, path: 'backends[1].weight', message: `${file}: backends[1].weight must be a positive integer, got 0` },
        ]);
        return true;
      },
    );
  });

  test('bad listen port', () => {
    assertIssues('listen = "0.0.0.0:70000"\nbackends = { "10.0.0.1:80" }\n', [
      'listen must have a port from 0 to 65535 (0 picks a free port), got "0.0.0.0:70000"',
    ]);
  });

  test('bad backend port', () => {
    assertIssues('listen = 8000\nbackends = { "10.0.0.1:0", "10.0.0.2:http" }\n', [
      'backends[1] must have a port from 1 to 65535, got "10.0.0.1:0"',
      'backends[2] must have a port from 1 to 65535, got "10.0.0.2:http"',
    ]);
  });

  test('bad algorithm names the choices', () => {
    assertIssues(`${SERVICE}algorithm = "random"\n`, ['algorithm must be "round_robin" or "least_connections", got "random"']);
  });

  test('listen needs an IP address', () => {
    assertIssues('listen = "localhost:8000"\nbackends = { "10.0.0.1:80" }\n', [
      'listen must have an IP address as host, such as "0.0.0.0:8000" or "[::]:8000", because a listening socket binds to an address, got "localhost:8000"',
    ]);
  });

  test('backend address forms', () => {
    assertIssues('listen = 8000\nbackends = { "10.0.0.3", "::1:80", 8080, "bad host:80", "10.0.0.256:80" }\n', [
      'backends[1] must be "host:port", but the port is missing, got "10.0.0.3"',
      'backends[2] must put an IPv6 address in brackets, such as "[::1]:8000", got "::1:80"',
      'backends[3] must be "host:port" with a host before the port, got 8080',
      'backends[4] must have a valid hostname or IP address before the port, got "bad host:80"',
      'backends[5] must have a valid hostname or IP address before the port, got "10.0.0.256:80"',
    ]);
  });

  test('backend entries of the wrong type', () => {
    assertIssues('listen = 8000\nbackends = { true, { weight = 2 }, { address = 80 } }\n', [
      'backends[1] must be "host:port" or a table such as { address = "host:port", weight = 2 }, got true',
      'backends[2].address is missing',
      'backends[3].address must be "host:port", got 80',
    ]);
  });

  test('hole in the backend list', () => {
    assertIssues('listen = 8000\nbackends = { os.getenv("RSP_TEST_UNSET_VARIABLE"), "10.0.0.1:80" }\n', [
      'backends[1] must be "host:port" or a table such as { address = "host:port", weight = 2 }, got nil',
    ]);
  });

  test('duplicate backend', () => {
    assertIssues('listen = 8000\nbackends = { "10.0.0.1:80", "10.0.0.2:80", { address = "10.0.0.1:80", weight = 2 } }\n', [
      'backends[3] must not repeat the address of backends[1], got "10.0.0.1:80"',
    ]);
  });

  test('empty and non-list backends', () => {
    assertIssues('listen = 8000\nbackends = {}\n', ['backends must list at least one backend, got {}']);
    assertIssues('listen = 8000\nbackends = "10.0.0.1:80"\n', [
      'backends must be a list of backends, such as { "10.0.0.1:80", { address = "10.0.0.2:80", weight = 2 } }, got "10.0.0.1:80"',
    ]);
  });

  test('timeouts', () => {
    assertIssues(`${SERVICE}timeouts = { connect = 0, idle = "300", drain = 1e10 }\n`, [
      'timeouts.connect must be a positive number of seconds, got 0',
      'timeouts.idle must be a positive number of seconds, got "300"',
      'timeouts.drain must be at most 2147483 seconds (24.8 days, the longest Node.js timer), got 10000000000.0',
    ]);
    assertIssues(`${SERVICE}timeouts = 5\n`, ['timeouts must be a table such as { connect = 5, idle = 300, drain = 30 }, got 5']);
  });

  test('workers, metrics and access_log', () => {
    assertIssues(`${SERVICE}workers = 2.5\nmetrics = true\naccess_log = "yes"\n`, [
      'workers must be a positive integer, got 2.5',
      'metrics must be "host:port", a port number or false, got true',
      'access_log must be true or false, got "yes"',
    ]);
  });

  test('accepts a float with an integer value', () => {
    const config = loadConfig(writeConfig(`${SERVICE}workers = 4 / 2\n`));
    assert.equal(config.workers, 2);
  });

  test('functions show their type', () => {
    assertIssues(`${SERVICE}workers = function() return 2 end\n`, ['workers must be a positive integer, got function']);
  });

  test('long strings are cut', () => {
    assertIssues(`${SERVICE}algorithm = string.rep("x", 100)\n`, [
      `algorithm must be "round_robin" or "least_connections", got "${'x'.repeat(80)}..." (100 characters)`,
    ]);
  });
});

describe('unknown keys', () => {
  test('suggests the nearest key', () => {
    assertIssues('listen = 8000\nbackend = { "10.0.0.1:80" }\n', [
      'backend is not a known setting; did you mean "backends"?',
      'backends is missing',
    ]);
  });

  test('nested unknown keys', () => {
    assertIssues(`${SERVICE}timeouts = { conect = 5, retries = 3 }\n`, [
      'timeouts.conect is not a known setting; did you mean "connect"?',
      'timeouts.retries is not a known setting; the known settings here are connect, idle, drain, queue',
    ]);
  });

  test('global helper needs local', () => {
    assertIssues(`${SERVICE}hosts = { "a", "b" }\n`, [
      'hosts is not a known setting; declare helper variables with local, as in "local hosts = ..."',
    ]);
  });

  test('global helper function needs local', () => {
    assertIssues(`function helper() return 1 end\n${SERVICE}`, [
      'helper is not a known setting; declare helper variables with local, as in "local helper = ..."',
    ]);
  });

  test('positional entries in a table of settings', () => {
    assertIssues('services = { web = { listen = 8000, backends = { "a:1" }, "b:2" } }\n', [
      'services.web[1] is not a known setting; the known settings here are listen, backends, algorithm, timeouts, access_log, health_check, passive_check, proxy_protocol, accept_proxy_protocol, max_connections, max_connections_per_client, max_queued, resolve, resolve_interval',
    ]);
  });
});

describe('config forms', () => {
  test('services with top-level listen', () => {
    assertIssues('listen = 8000\nservices = { web = { listen = 8001, backends = { "a:1" } } }\n', [
      'listen cannot be combined with services; set listen and backends inside each service instead',
    ]);
  });

  test('legacy keys with listen', () => {
    assertIssues(`${SERVICE}listenPort = "8000"\n`, [
      'listenPort cannot be combined with listen; listenPort, backendAddress and backendPort are the legacy form of listen and backends, so use one form',
    ]);
  });

  test('incomplete legacy form', () => {
    assertIssues('listenPort = "8000"\nbackendPort = "http"\n', [
      'backendPort must be a port number from 1 to 65535, as a number or a string, got "http"',
      'backendAddress is missing',
    ]);
  });

  test('service without listen', () => {
    assertIssues('services = { web = { backends = { "a:1" } }, ["bad name"] = {}, api = 5 }\n', [
      'services must use service names made of letters, digits, "_", "." and "-", got "bad name"',
      'services.api must be a table such as { listen = 8000, backends = { ... } }, got 5',
      'services.web.listen is missing',
    ]);
  });

  test('services as a list', () => {
    assertIssues('services = { { listen = 8000, backends = { "a:1" } } }\n', [
      'services must be a table keyed by service name, such as { web = { listen = 8000, backends = { ... } } }, got table',
    ]);
  });

  test('two services on one address', () => {
    assertIssues(
      'services = {\n  web = { listen = 8000, backends = { "a:1" } },\n  api = { listen = "[::]:8000", backends = { "b:2" } },\n}\n',
      ['services.api.listen must not overlap services.web.listen (0.0.0.0:8000), got "[::]:8000"'],
    );
  });

  test('metrics on a listen address', () => {
    assertIssues('listen = 9100\nbackends = { "a:1" }\nmetrics = "127.0.0.1:9100"\n', [
      'metrics must not overlap listen (0.0.0.0:9100), got "127.0.0.1:9100"',
    ]);
  });

  test('default metrics on a listen address', () => {
    assertIssues('listen = "127.0.0.1:9100"\nbackends = { "a:1" }\n', [
      'metrics is not set, so it defaults to 127.0.0.1:9100, which overlaps listen; set metrics to another address or false',
    ]);
  });

  test('empty file', () => {
    assertIssues('', ['no service is defined; set listen and backends, or services']);
  });

  test('returned table', () => {
    assertIssues('return { listen = 8000, backends = { "a:1" } }\n', [
      'no service is defined; set listen and backends, or services (the chunk returned a value, but rsp reads globals only: write listen = ..., not return { listen = ... })',
    ]);
  });
});

describe('issue collection', () => {
  test('reports every problem at once', () => {
    assertIssues(
      `
      workers = 0
      listen = "0.0.0.0:99999"
      algorithm = "fastest"
      backends = { "10.0.0.1:80", { address = "10.0.0.2:80", weight = -1 }, "10.0.0.1:80" }
      timeouts = { idle = -5 }
      acess_log = true
    `,
      [
        'workers must be a positive integer, got 0',
        'listen must have a port from 0 to 65535 (0 picks a free port), got "0.0.0.0:99999"',
        'algorithm must be "round_robin" or "least_connections", got "fastest"',
        'backends[2].weight must be a positive integer, got -1',
        'backends[3] must not repeat the address of backends[1], got "10.0.0.1:80"',
        'timeouts.idle must be a positive number of seconds, got -5',
        'acess_log is not a known setting; did you mean "access_log"?',
      ],
    );
  });
});
