// Address parsing shared by config validation and the runtime.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseAddress, parseHost, parsePort, type AddressRules } from '../../src/config/address.js';

const LISTEN: AddressRules = { defaultHost: '0.0.0.0', allowPortZero: true, requireIp: true };
const BACKEND: AddressRules = {};

describe('parseAddress', () => {
  const accepted: [string | number, AddressRules, string, number, string][] = [
    ['127.0.0.1:8000', BACKEND, '127.0.0.1', 8000, '127.0.0.1:8000'],
    ['[::1]:8000', BACKEND, '::1', 8000, '[::1]:8000'],
    ['[2001:DB8::1]:443', BACKEND, '2001:db8::1', 443, '[2001:db8::1]:443'],
    ['Web-1.Example.com:80', BACKEND, 'web-1.example.com', 80, 'web-1.example.com:80'],
    ['redis_primary:6379', BACKEND, 'redis_primary', 6379, 'redis_primary:6379'],
    ['localhost:65535', BACKEND, 'localhost', 65535, 'localhost:65535'],
    [8000, LISTEN, '0.0.0.0', 8000, '0.0.0.0:8000'],
    ['8000', LISTEN, '0.0.0.0', 8000, '0.0.0.0:8000'],
    [':8000', LISTEN, '0.0.0.0', 8000, '0.0.0.0:8000'],
    ['127.0.0.1:0', LISTEN, '127.0.0.1', 0, '127.0.0.1:0'],
    ['[::]:8000', LISTEN, '::', 8000, '[::]:8000'],
  ];
  for (const [input, rules, host, port, address] of accepted) {
    test(`accepts ${JSON.stringify(input)}`, () => {
      assert.deepEqual(parseAddress(input, rules), { ok: true, endpoint: { host, port }, address });
    });
  }

  const rejected: [string | number, AddressRules, string][] = [
    ['10.0.0.1', BACKEND, 'must be "host:port", but the port is missing'],
    ['10.0.0.1:', BACKEND, 'must be "host:port" with a port after the colon'],
    ['10.0.0.1:0', BACKEND, 'must have a port from 1 to 65535'],
    ['10.0.0.1:65536', BACKEND, 'must have a port from 1 to 65535'],
    ['10.0.0.1:-1', BACKEND, 'must have a port from 1 to 65535'],
    ['10.0.0.1:80x', BACKEND, 'must have a port from 1 to 65535'],
    ['0.0.0.0:70000', LISTEN, 'must have a port from 0 to 65535 (0 picks a free port)'],
    ['::1:80', BACKEND, 'must put an IPv6 address in brackets, such as "[::1]:8000"'],
    ['[::1]80', BACKEND, 'must be "[ipv6]:port", with the port after the closing bracket'],
    ['[::1', BACKEND, 'must be "[ipv6]:port", with the port after the closing bracket'],
    ['[10.0.0.1]:80', BACKEND, 'must have an IPv6 address inside the brackets'],
    [':80', BACKEND, 'must be "host:port" with a host before the port'],
    [8080, BACKEND, 'must be "host:port" with a host before the port'],
    ['8080', BACKEND, 'must be "host:port" with a host before the port'],
    ['bad host:80', BACKEND, 'must have a valid hostname or IP address before the port'],
    ['http://web:80', BACKEND, 'must be "host:port" without a URL scheme'],
    ['10.0.0.256:80', BACKEND, 'must have a valid hostname or IP address before the port'],
    ['-web:80', BACKEND, 'must have a valid hostname or IP address before the port'],
    ['localhost:8000', LISTEN, 'must have an IP address as host, such as "0.0.0.0:8000" or "[::]:8000", because a listening socket binds to an address'],
    [80.5, LISTEN, 'must have a port from 0 to 65535 (0 picks a free port)'],
  ];
  for (const [input, rules, problem] of rejected) {
    test(`rejects ${JSON.stringify(input)}`, () => {
      assert.deepEqual(parseAddress(input, rules), { ok: false, problem });
    });
  }
});

describe('parsePort', () => {
  test('accepts numbers and digit strings', () => {
    assert.equal(parsePort(80, false), 80);
    assert.equal(parsePort('080', false), 80);
    assert.equal(parsePort('0', true), 0);
  });

  test('rejects out-of-range and non-digit ports', () => {
    assert.equal(parsePort(0, false), null);
    assert.equal(parsePort(65536, true), null);
    assert.equal(parsePort(' 80', false), null);
    assert.equal(parsePort('+80', false), null);
    assert.equal(parsePort('8e1', false), null);
  });
});

describe('parseHost', () => {
  test('accepts IP addresses and hostnames', () => {
    assert.equal(parseHost('10.0.0.1'), '10.0.0.1');
    assert.equal(parseHost('::1'), '::1');
    assert.equal(parseHost('[::1]'), '::1');
    assert.equal(parseHost('DB.internal.'), 'db.internal.');
  });

  test('rejects malformed hosts', () => {
    assert.equal(parseHost(''), null);
    assert.equal(parseHost('[10.0.0.1]'), null);
    assert.equal(parseHost('a..b'), null);
    assert.equal(parseHost(`${'a'.repeat(64)}.com`), null);
    assert.equal(parseHost('host:80'), null);
  });
});
