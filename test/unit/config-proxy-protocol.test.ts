// The proxy_protocol and accept_proxy_protocol settings as loadConfig resolves
// them: defaults, top-level, service and backend overrides, network
// normalization, and the exact messages for invalid values.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ServiceConfig } from '../../src/config/types.js';
import { useConfigFiles, serviceNamed } from '../helpers/config-files.js';

const { assertIssues, load } = useConfigFiles('rsp-config-proxy-protocol-');

/** `proxyProtocol` of each backend, keyed by backend address. */
function proxyProtocols(serviceConfig: ServiceConfig): Record<string, string | null> {
  return Object.fromEntries(serviceConfig.backends.map((backend) => [backend.address, backend.proxyProtocol]));
}

const SERVICE = 'listen = 8000\nbackends = { "10.0.0.1:80" }\nmetrics = false\n';

describe('proxy_protocol resolution', () => {
  test('off by default', () => {
    const config = load('listen = 8000\nbackends = { "10.0.0.1:80", { address = "10.0.0.2:80", weight = 2 } }\nmetrics = false\n');
    assert.deepEqual(proxyProtocols(serviceNamed(config, 'default')), { '10.0.0.1:80': null, '10.0.0.2:80': null });
  });

  test('top level applies to every backend', () => {
    const config = load('listen = 8000\nbackends = { "10.0.0.1:80", { address = "10.0.0.2:80", weight = 2 } }\nproxy_protocol = "v1"\nmetrics = false\n');
    assert.deepEqual(proxyProtocols(serviceNamed(config, 'default')), { '10.0.0.1:80': 'v1', '10.0.0.2:80': 'v1' });
  });

  test('legacy form takes the top level', () => {
    const config = load('listenPort = "8000"\nbackendAddress = "10.0.0.1"\nbackendPort = "80"\nproxy_protocol = "v2"\nmetrics = false\n');
    assert.deepEqual(proxyProtocols(serviceNamed(config, 'default')), { '10.0.0.1:80': 'v2' });
  });

  test('service and backend overrides', () => {
    const config = load(`
      metrics = false
      proxy_protocol = "v1"
      services = {
        inherits = { listen = 8001, backends = { "10.0.0.1:80" } },
        service_v2 = {
          listen = 8002,
          proxy_protocol = "v2",
          backends = {
            "10.0.0.2:80",
            { address = "10.0.0.3:80", proxy_protocol = "v1" },
            { address = "10.0.0.4:80", proxy_protocol = false },
            { address = "10.0.0.5:80", weight = 3 },
          },
        },
        service_off = {
          listen = 8003,
          proxy_protocol = false,
          backends = { "10.0.0.6:80", { address = "10.0.0.7:80", proxy_protocol = "v2" } },
        },
      }
    `);

    assert.deepEqual(proxyProtocols(serviceNamed(config, 'inherits')), { '10.0.0.1:80': 'v1' });
    assert.deepEqual(proxyProtocols(serviceNamed(config, 'service_v2')), {
      '10.0.0.2:80': 'v2',
      '10.0.0.3:80': 'v1',
      '10.0.0.4:80': null,
      '10.0.0.5:80': 'v2',
    });
    assert.deepEqual(proxyProtocols(serviceNamed(config, 'service_off')), { '10.0.0.6:80': null, '10.0.0.7:80': 'v2' });
  });

  test('backend false beats service v2', () => {
    const config = load(`
      metrics = false
      services = {
        web = { listen = 8000, proxy_protocol = "v2", backends = { { address = "10.0.0.1:80", proxy_protocol = false } } },
      }
    `);
    const backend = serviceNamed(config, 'web').backends[0];
    assert.equal(backend?.proxyProtocol, null);
    assert.equal(backend?.weight, 1);
    assert.equal(backend?.backup, false);
  });
});

describe('accept_proxy_protocol resolution', () => {
  test('off by default', () => {
    assert.equal(serviceNamed(load(SERVICE), 'default').acceptProxyFrom, null);
  });

  test('normalizes addresses to networks', () => {
    const config = load(`${SERVICE}accept_proxy_protocol = { "127.0.0.1", "::1", "10.0.0.0/8", "2001:db8::/32", "192.0.2.1/32", "0.0.0.0/0" }\n`);
    assert.deepEqual(serviceNamed(config, 'default').acceptProxyFrom, [
      '127.0.0.1/32',
      '::1/128',
      '10.0.0.0/8',
      '2001:db8::/32',
      '192.0.2.1/32',
      '0.0.0.0/0',
    ]);
  });

  test('false turns it off', () => {
    assert.equal(serviceNamed(load(`${SERVICE}accept_proxy_protocol = false\n`), 'default').acceptProxyFrom, null);
  });

  test('service overrides the top level', () => {
    const config = load(`
      metrics = false
      accept_proxy_protocol = { "10.0.0.0/8" }
      services = {
        inherits = { listen = 8001, backends = { "10.1.0.1:80" } },
        own = { listen = 8002, backends = { "10.1.0.2:80" }, accept_proxy_protocol = { "127.0.0.1" } },
        off = { listen = 8003, backends = { "10.1.0.3:80" }, accept_proxy_protocol = false },
      }
    `);

    assert.deepEqual(serviceNamed(config, 'inherits').acceptProxyFrom, ['10.0.0.0/8']);
    assert.deepEqual(serviceNamed(config, 'own').acceptProxyFrom, ['127.0.0.1/32']);
    assert.equal(serviceNamed(config, 'off').acceptProxyFrom, null);
  });
});

describe('proxy protocol messages', () => {
  test('bad proxy_protocol values', () => {
    assertIssues(`${SERVICE}proxy_protocol = "v3"\n`, ['proxy_protocol must be "v1", "v2" or false, got "v3"']);
    assertIssues(`${SERVICE}proxy_protocol = true\n`, ['proxy_protocol must be "v1", "v2" or false, got true']);
    assertIssues(`${SERVICE}proxy_protocol = 2\n`, ['proxy_protocol must be "v1", "v2" or false, got 2']);
    assertIssues(`${SERVICE}proxy_protocol = "V1"\n`, ['proxy_protocol must be "v1", "v2" or false, got "V1"']);
  });

  test('bad proxy_protocol in a service', () => {
    assertIssues('metrics = false\nservices = { web = { listen = 8000, backends = { "10.0.0.1:80" }, proxy_protocol = "1" } }\n', [
      'services.web.proxy_protocol must be "v1", "v2" or false, got "1"',
    ]);
  });

  test('bad proxy_protocol in a backend', () => {
    assertIssues('listen = 8000\nmetrics = false\nbackends = { "10.0.0.1:80", { address = "10.0.0.2:80", proxy_protocol = "v3" } }\n', [
      'backends[2].proxy_protocol must be "v1", "v2" or false, got "v3"',
    ]);
  });

  test('bad accept_proxy_protocol entries', () => {
    assertIssues(
      `${SERVICE}accept_proxy_protocol = { "10.0.0.0/33", "localhost", 5, "10.0.0.0/8/1", "::1/129", "10.0.0.0/", "10.0.0.0/x", "10.0.0.0/8" }\n`,
      [
        'accept_proxy_protocol[1] must be an IP address or network such as "10.0.0.0/8", got "10.0.0.0/33"',
        'accept_proxy_protocol[2] must be an IP address or network such as "10.0.0.0/8", got "localhost"',
        'accept_proxy_protocol[3] must be an IP address or network such as "10.0.0.0/8", got 5',
        'accept_proxy_protocol[4] must be an IP address or network such as "10.0.0.0/8", got "10.0.0.0/8/1"',
        'accept_proxy_protocol[5] must be an IP address or network such as "10.0.0.0/8", got "::1/129"',
        'accept_proxy_protocol[6] must be an IP address or network such as "10.0.0.0/8", got "10.0.0.0/"',
        'accept_proxy_protocol[7] must be an IP address or network such as "10.0.0.0/8", got "10.0.0.0/x"',
      ],
    );
  });

  test('accept_proxy_protocol of the wrong type', () => {
    const expectation = 'must be a list of trusted networks such as { "10.0.0.0/8", "127.0.0.1" }, or false';
    assertIssues(`${SERVICE}accept_proxy_protocol = "127.0.0.1"\n`, [`accept_proxy_protocol ${expectation}, got "127.0.0.1"`]);
    assertIssues(`${SERVICE}accept_proxy_protocol = true\n`, [`accept_proxy_protocol ${expectation}, got true`]);
    assertIssues(`${SERVICE}accept_proxy_protocol = {}\n`, [`accept_proxy_protocol ${expectation}, got {}`]);
  });

  test('bad entry in a service', () => {
    assertIssues('metrics = false\nservices = { web = { listen = 8000, backends = { "10.0.0.1:80" }, accept_proxy_protocol = { "127.0.0.1", "lb.example" } } }\n', [
      'services.web.accept_proxy_protocol[2] must be an IP address or network such as "10.0.0.0/8", got "lb.example"',
    ]);
  });

  test('all problems at once', () => {
    assertIssues(
      'listen = 8000\nmetrics = false\nproxy_protocol = "v3"\naccept_proxy_protocol = { "300.0.0.1" }\nbackends = { { address = "10.0.0.2:80", proxy_protocol = 1 } }\n',
      [
        'proxy_protocol must be "v1", "v2" or false, got "v3"',
        'accept_proxy_protocol[1] must be an IP address or network such as "10.0.0.0/8", got "300.0.0.1"',
        'backends[1].proxy_protocol must be "v1", "v2" or false, got 1',
      ],
    );
  });
});
