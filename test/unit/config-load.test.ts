// loadConfig end to end: the three config forms, the Lua sandbox, and the read,
// Lua and budget errors. Config files are written to a temporary directory.
import assert from 'node:assert/strict';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import { ConfigError, ErrorCodes } from '../../src/errors.js';
import { DEFAULT_INSTRUCTION_BUDGET } from '../../src/config/lua.js';
import { loadConfig } from '../../src/config/load.js';
import { DEFAULT_METRICS, DEFAULT_PASSIVE_CHECK, DEFAULT_TIMEOUTS, type Config } from '../../src/config/types.js';
import { useConfigFiles } from '../helpers/config-files.js';

const { writeConfig } = useConfigFiles('rsp-config-load-');

/** Runs loadConfig and returns the ConfigError it throws. */
function loadError(file: string, budget?: number): ConfigError {
  try {
    loadConfig(file, budget === undefined ? {} : { instructionBudget: budget });
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${String(error)}`);
    return error;
  }
  assert.fail(`expected loadConfig(${file}) to throw`);
}

function fixture(name: string): string {
  return fileURLToPath(new URL(`../../../test/fixtures/${name}`, import.meta.url));
}

describe('top-level form', () => {
  test('builds the default service', () => {
    const file = writeConfig(`
      workers = 4
      listen = "0.0.0.0:8000"
      algorithm = "least_connections"
      backends = {
        "127.0.0.1:8081",
        { address = "127.0.0.1:8082", weight = 2 },
      }
      timeouts = { connect = 5, idle = 300, drain = 30 }
      metrics = "127.0.0.1:9100"
      access_log = true
    `);
    const expected: Config = {
      file,
      workers: 4,
      accept: 'workers',
      resolvers: null,
      metrics: { host: '127.0.0.1', port: 9100 },
      services: [
        {
          name: 'default',
          listen: { host: '0.0.0.0', port: 8000 },
          algorithm: 'least_connections',
          backends: [
            { address: '127.0.0.1:8081', host: '127.0.0.1', port: 8081, weight: 1, backup: false, proxyProtocol: null, maxConnections: null, resolve: false },
            { address: '127.0.0.1:8082', host: '127.0.0.1', port: 8082, weight: 2, backup: false, proxyProtocol: null, maxConnections: null, resolve: false },
          ],
          timeouts: { connectMs: 5_000, idleMs: 300_000, drainMs: 30_000, queueMs: 10_000 },
          accessLog: true,
          healthCheck: null,
          passiveCheck: { failures: 3, cooldownMs: 10_000 },
          acceptProxyFrom: null,
          maxConnections: null,
          maxConnectionsPerClient: null,
          maxQueued: 1000,
          resolveIntervalMs: 5000,
        },
      ],
    };
    assert.deepEqual(loadConfig(file), expected);
  });

  test('fills in the defaults', () => {
    const config = loadConfig(writeConfig('listen = 8000\nbackends = { "10.0.0.1:80" }\n'));
    assert.equal(config.workers, null);
    assert.deepEqual(config.metrics, DEFAULT_METRICS);
    const [service] = config.services;
    assert.ok(service);
    assert.deepEqual(service.listen, { host: '0.0.0.0', port: 8000 });
    assert.equal(service.algorithm, 'round_robin');
    assert.deepEqual(service.timeouts, DEFAULT_TIMEOUTS);
    assert.equal(service.accessLog, false);
  });

  test('returns a deep-frozen config', () => {
    const config = loadConfig(writeConfig('listen = 8000\nbackends = { "10.0.0.1:80" }\n'));
    assert.ok(Object.isFrozen(config));
    assert.ok(Object.isFrozen(config.services));
    assert.ok(Object.isFrozen(config.services[0]?.backends[0]));
    assert.ok(Object.isFrozen(config.services[0]?.timeouts));
    assert.ok(Object.isFrozen(config.metrics));
  });

  test('converts fractional seconds to milliseconds', () => {
    const config = loadConfig(writeConfig('listen = 8000\nbackends = { "a:1" }\ntimeouts = { connect = 0.3, idle = 1.5 }\n'));
    assert.deepEqual(config.services[0]?.timeouts, { connectMs: 300, idleMs: 1_500, drainMs: 30_000, queueMs: 10_000 });
  });

  test('turns metrics off with false', () => {
    const config = loadConfig(writeConfig('listen = 8000\nbackends = { "a:1" }\nmetrics = false\n'));
    assert.equal(config.metrics, null);
  });

  test('binds a bare metrics port to loopback', () => {
    const config = loadConfig(writeConfig('listen = 8000\nbackends = { "a:1" }\nmetrics = 9200\n'));
    assert.deepEqual(config.metrics, { host: '127.0.0.1', port: 9200 });
  });
});

describe('services form', () => {
  test('orders services by name and applies defaults', () => {
    const file = writeConfig(`
      algorithm = "least_connections"
      timeouts = { idle = 60 }
      access_log = true
      services = {
        web = { listen = 8000, backends = { "10.0.0.1:80", "10.0.0.2:80" } },
        redis = {
          listen = "127.0.0.1:6379",
          backends = { "10.0.0.5:6379" },
          algorithm = "round_robin",
          timeouts = { connect = 1 },
          access_log = false,
        },
      }
    `);
    const config = loadConfig(file);
    assert.deepEqual(
      config.services.map((service) => service.name),
      ['redis', 'web'],
    );

    const [redis, web] = config.services;
    assert.ok(redis);
    assert.ok(web);
    assert.equal(redis.algorithm, 'round_robin');
    assert.deepEqual(redis.timeouts, { connectMs: 1_000, idleMs: 60_000, drainMs: 30_000, queueMs: 10_000 });
    assert.equal(redis.accessLog, false);
    assert.deepEqual(redis.listen, { host: '127.0.0.1', port: 6379 });

    assert.equal(web.algorithm, 'least_connections');
    assert.deepEqual(web.timeouts, { connectMs: 5_000, idleMs: 60_000, drainMs: 30_000, queueMs: 10_000 });
    assert.equal(web.accessLog, true);
    assert.deepEqual(
      web.backends.map((backend) => backend.address),
      ['10.0.0.1:80', '10.0.0.2:80'],
    );
  });

  test('allows several services on port 0', () => {
    const file = writeConfig(`
      services = {
        a = { listen = "127.0.0.1:0", backends = { "127.0.0.1:9001" } },
        b = { listen = "127.0.0.1:0", backends = { "127.0.0.1:9002" } },
      }
    `);
    assert.equal(loadConfig(file).services.length, 2);
  });
});

describe('legacy form', () => {
  test('builds one service from strings', () => {
    const config = loadConfig(writeConfig('listenPort = "8000"; backendAddress = "127.0.0.1"; backendPort = "80"\n'));
    assert.deepEqual(config.services, [
      {
        name: 'default',
        listen: { host: '0.0.0.0', port: 8000 },
        algorithm: 'round_robin',
        backends: [{ address: '127.0.0.1:80', host: '127.0.0.1', port: 80, weight: 1, backup: false, proxyProtocol: null, maxConnections: null, resolve: false }],
        timeouts: DEFAULT_TIMEOUTS,
        accessLog: false,
        healthCheck: null,
        passiveCheck: DEFAULT_PASSIVE_CHECK,
        acceptProxyFrom: null,
        maxConnections: null,
        maxConnectionsPerClient: null,
        maxQueued: 1000,
        resolveIntervalMs: 5000,
      },
    ]);
  });

  test('accepts numbers and an IPv6 backend', () => {
    const config = loadConfig(writeConfig('listenPort = 8000; backendAddress = "::1"; backendPort = 80\n'));
    assert.deepEqual(config.services[0]?.backends, [{ address: '[::1]:80', host: '::1', port: 80, weight: 1, backup: false, proxyProtocol: null, maxConnections: null, resolve: false }]);
  });
});

describe('addresses', () => {
  test('accepts IPv6 listen and backends', () => {
    const file = writeConfig(`
      listen = "[::]:8000"
      backends = { "[::1]:8081", { address = "[FE80::1]:8082", weight = 3 } }
    `);
    const [service] = loadConfig(file).services;
    assert.deepEqual(service?.listen, { host: '::', port: 8000 });
    assert.deepEqual(service?.backends, [
      { address: '[::1]:8081', host: '::1', port: 8081, weight: 1, backup: false, proxyProtocol: null, maxConnections: null, resolve: false },
      { address: '[fe80::1]:8082', host: 'fe80::1', port: 8082, weight: 3, backup: false, proxyProtocol: null, maxConnections: null, resolve: false },
    ]);
  });

  test('keeps backend hostnames for the runtime', () => {
    const file = writeConfig('listen = "8000"\nbackends = { "web-1.internal:8080", "redis_primary:6379" }\n');
    const [service] = loadConfig(file).services;
    assert.deepEqual(service?.listen, { host: '0.0.0.0', port: 8000 });
    assert.deepEqual(
      service?.backends.map((backend) => [backend.host, backend.port]),
      [
        ['web-1.internal', 8080],
        ['redis_primary', 6379],
      ],
    );
  });
});

describe('Lua evaluation', () => {
  test('reads backends from os.getenv', (t) => {
    process.env['RSP_TEST_BACKENDS'] = '10.0.0.1:80, 10.0.0.2:80';
    t.after(() => delete process.env['RSP_TEST_BACKENDS']);
    const file = writeConfig(`
      listen = 8000
      backends = {}
      for address in string.gmatch(os.getenv("RSP_TEST_BACKENDS") or "", "[^,%s]+") do
        backends[#backends + 1] = address
      end
      workers = tonumber(os.getenv("RSP_TEST_UNSET_VARIABLE") or "3")
    `);
    const config = loadConfig(file);
    assert.deepEqual(
      config.services[0]?.backends.map((backend) => backend.address),
      ['10.0.0.1:80', '10.0.0.2:80'],
    );
    assert.equal(config.workers, 3);
  });

  test('builds thousands of backends in a loop', () => {
    const file = writeConfig(`
      listen = 8000
      backends = {}
      for i = 1, 5000 do
        backends[#backends + 1] = {
          address = string.format("10.%d.%d.%d:80", i // 65536, i // 256 % 256, i % 256),
          weight = 1 + i % 3,
        }
      end
    `);
    const backends = loadConfig(file).services[0]?.backends ?? [];
    assert.equal(backends.length, 5000);
    assert.deepEqual(backends[4999], { address: '10.0.19.136:80', host: '10.0.19.136', port: 80, weight: 3, backup: false, proxyProtocol: null, maxConnections: null, resolve: false });
  });

  test('ignores helpers declared local', () => {
    const file = writeConfig(`
      local base = 8080
      local function backend(n) return "127.0.0.1:" .. (base + n) end
      listen = 8000
      backends = { backend(1), backend(2) }
    `);
    assert.equal(loadConfig(file).services[0]?.backends.length, 2);
  });

  test('offers only the sandboxed libraries', () => {
    const file = writeConfig(`
      assert(io == nil, "io")
      assert(require == nil and package == nil, "require")
      assert(dofile == nil and loadfile == nil, "dofile")
      assert(print == nil, "print")
      assert(debug == nil and coroutine == nil, "debug")
      assert(os.execute == nil and os.exit == nil and os.remove == nil, "os")
      assert(type(os.time()) == "number" and type(os.clock()) == "number", "os.time")
      assert(type(os.date("%Y")) == "string", "os.date")
      assert(math.max(1, 2) == 2 and table.concat({ "a", "b" }) == "ab", "math, table")
      assert(utf8.char(72) == "H", "utf8")
      listen = 8000
      backends = { "a:1" }
    `);
    assert.equal(loadConfig(file).services.length, 1);
  });

  test('load runs text but not binary chunks', () => {
    const file = writeConfig(`
      assert(load("return 8000")() == 8000, "text chunk")
      local chunk, message = load(string.dump(function() end))
      assert(chunk == nil and message:find("binary"), "binary chunk")
      listen = 8000
      backends = { "a:1" }
    `);
    assert.equal(loadConfig(file).services.length, 1);
  });

  test('caps string.rep', () => {
    const file = writeConfig('local big = string.rep("ab", 1000000)\n');
    const error = loadError(file);
    assert.equal(error.code, ErrorCodes.CONFIG_LUA);
    assert.equal(error.message, `${file}:1: string.rep result of 2000000 bytes is over the limit of 1048576 bytes for config files`);
  });
});

describe('loadConfig errors', () => {
  test('missing file', () => {
    const file = join(dirname(writeConfig('')), 'missing.lua');
    const error = loadError(file);
    assert.equal(error.code, ErrorCodes.CONFIG_READ);
    assert.equal(error.message, `failed to read config file ${file}: ENOENT: no such file or directory`);
    assert.deepEqual(error.issues, [{ file, path: '', message: error.message }]);
  });

  test('syntax error names the line', () => {
    const file = writeConfig('listen = "0.0.0.0:8000"\nbackends = = { }\n');
    const error = loadError(file);
    assert.equal(error.code, ErrorCodes.CONFIG_LUA);
    assert.equal(error.message, `${file}:2: unexpected symbol near '='`);
  });

  test('runtime error names the line', () => {
    const file = writeConfig('workers = 2\nlisten = settings.listen\n');
    const error = loadError(file);
    assert.equal(error.code, ErrorCodes.CONFIG_LUA);
    assert.equal(error.message, `${file}:2: attempt to index a nil value (global 'settings')`);
  });

  test('error with a table value', () => {
    const file = writeConfig('error({ code = 1 })\n');
    const error = loadError(file);
    assert.equal(error.code, ErrorCodes.CONFIG_LUA);
    assert.equal(error.message, `${file}: the chunk raised an error with a table value instead of a message`);
  });

  test('endless loop exceeds the budget', () => {
    const file = writeConfig('listen = 8000\nwhile true do end\n');
    const started = Date.now();
    const error = loadError(file);
    const elapsedMs = Date.now() - started;
    assert.equal(error.code, ErrorCodes.CONFIG_BUDGET);
    assert.equal(
      error.message,
      `${file}:2: the config did not finish within its budget of ${DEFAULT_INSTRUCTION_BUDGET} Lua instructions; ` +
        'look for a loop that never ends around this line',
    );
    assert.ok(elapsedMs < 10_000, `took ${elapsedMs} ms`);
  });

  test('budget survives pcall in the chunk', () => {
    const file = writeConfig('while true do\n  pcall(function() while true do end end)\nend\n');
    const error = loadError(file, 100_000);
    assert.equal(error.code, ErrorCodes.CONFIG_BUDGET);
  });

  test('smaller budget stops a long loop', () => {
    const file = writeConfig('local n = 0\nfor i = 1, 1000000 do n = n + i end\n');
    const error = loadError(file, 50_000);
    assert.equal(error.code, ErrorCodes.CONFIG_BUDGET);
    assert.match(error.message, /within its budget of 50000 Lua instructions/);
  });

  test('rejects an invalid budget option', () => {
    const file = writeConfig('listen = 8000\nbackends = { "a:1" }\n');
    assert.throws(() => loadConfig(file, { instructionBudget: 0 }), {
      name: 'RangeError',
      message: 'instructionBudget must be a positive integer, got 0',
    });
  });
});

describe('example configs', () => {
  for (const name of ['single-service.lua', 'services.lua', 'legacy.lua']) {
    test(`loads ${name}`, () => {
      const config = loadConfig(fixture(name));
      assert.ok(config.services.length > 0);
    });
  }
});
