// Readers of single settings: each checks one Lua value, adds an issue when it
// is invalid, and converts it to its typed form (seconds to milliseconds here).
import { isIP } from 'node:net';
import { parseAddress, parseHost, parsePort, type AddressRules } from './address.js';
import { formatEndpoint } from './endpoint.js';
import type { IssueList } from './issue-list.js';
import { isLuaList, LuaFloat, type LuaValue } from './lua-value.js';
import { fieldPath, itemPath, readFields, readRecord, type Reader } from './read-fields.js';
import {
  MIN_RESOLVE_INTERVAL_MS,
  DEFAULT_HEALTH_CHECK,
  DEFAULT_PASSIVE_CHECK,
  type AcceptMode,
  type Algorithm,
  type BackendConfig,
  type Endpoint,
  type HealthCheckConfig,
  type PassiveCheckConfig,
  type ProxyProtocolVersion,
  type Timeouts,
} from './types.js';

/** A backend as read from the file; `proxyProtocol` is undefined when the backend does not set it, so the service's setting applies. */
export type ReadBackend = Omit<BackendConfig, 'proxyProtocol' | 'resolve'> & {
  readonly proxyProtocol: ProxyProtocolVersion | null | undefined;
  /** Undefined when the backend does not set `resolve`, so the service's setting applies. */
  readonly resolve: boolean | undefined;
};

export const ALGORITHMS: readonly Algorithm[] = ['round_robin', 'least_connections'];

/** Maximum duration in seconds, because Node.js timers accept at most 2^31 - 1 ms and fire after 1 ms for a longer delay. */
export const MAX_DURATION_SECONDS = 2_147_483;

const LISTEN_RULES: AddressRules = { defaultHost: '0.0.0.0', allowPortZero: true, requireIp: true };
/** A bare metrics port binds to loopback only, like the default `127.0.0.1:9100`. */
const METRICS_RULES: AddressRules = { defaultHost: '127.0.0.1', allowPortZero: true, requireIp: true };
const BACKEND_RULES: AddressRules = {};

const LISTEN_EXPECTATION = '"host:port", "[ipv6]:port" or a port number';
const BACKEND_EXPECTATION = '"host:port" or a table such as { address = "host:port", weight = 2 }';
const TIMEOUTS_EXPECTATION = 'a table such as { connect = 5, idle = 300, drain = 30 }';

/** Reads a positive integer. A float with an integer value (`2.0`) counts, as it does for Lua's own integer arguments. */
export const readPositiveInteger: Reader<number> = (value, path, issues) => {
  const integer = toInteger(value);
  if (integer === undefined || integer <= 0) {
    issues.expected(path, 'a positive integer', value);
    return undefined;
  }
  return integer;
};

/** Reads `true` or `false`. */
export const readBoolean: Reader<boolean> = (value, path, issues) => {
  if (typeof value === 'boolean') return value;
  issues.expected(path, 'true or false', value);
  return undefined;
};

/** Reads one of `ALGORITHMS`. */
export const readAlgorithm: Reader<Algorithm> = (value, path, issues) => {
  const algorithm = ALGORITHMS.find((name) => name === value);
  if (algorithm === undefined) issues.expected(path, ALGORITHMS.map((name) => `"${name}"`).join(' or '), value);
  return algorithm;
};

/** Reads a listen address. A bare port listens on all IPv4 addresses (`0.0.0.0`). */
export const readListenAddress: Reader<Endpoint> = (value, path, issues) =>
  readAddress(value, path, issues, LISTEN_RULES, LISTEN_EXPECTATION);

/** Reads the metrics address, and returns null for `false` (metrics off). */
export const readMetricsAddress: Reader<Endpoint | null> = (value, path, issues) => {
  if (value === false) return null;
  return readAddress(value, path, issues, METRICS_RULES, '"host:port", a port number or false');
};

/** Reads a non-empty list of backends with distinct addresses, each a `"host:port"` string or an `{ address, weight }` table. */
export const readBackends: Reader<ReadBackend[]> = (value, path, issues) => {
  if (!isLuaList(value)) {
    issues.expected(path, 'a list of backends, such as { "10.0.0.1:80", { address = "10.0.0.2:80", weight = 2 } }', value);
    return undefined;
  }
  if (value.length === 0) {
    issues.invalid(path, 'must list at least one backend', value);
    return undefined;
  }

  const backends: ReadBackend[] = [];
  const firstPathOfAddress = new Map<string, string>();
  let allValid = true;
  value.forEach((entry, index) => {
    const entryPath = itemPath(path, index);
    const backend = readBackend(entry, entryPath, issues);
    if (backend === undefined) {
      allValid = false;
      return;
    }
    const firstPath = firstPathOfAddress.get(backend.address);
    if (firstPath !== undefined) {
      issues.invalid(entryPath, `must not repeat the address of ${firstPath}`, backend.address);
      allValid = false;
      return;
    }
    firstPathOfAddress.set(backend.address, entryPath);
    backends.push(backend);
  });
  return allValid ? backends : undefined;
};

/** Reads the `address` of a backend table: a `"host:port"` string, because a bare port has no host to connect to. */
const readBackendAddress: Reader<Endpoint> = (value, path, issues) => {
  if (typeof value !== 'string') {
    issues.expected(path, '"host:port"', value);
    return undefined;
  }
  return readAddress(value, path, issues, BACKEND_RULES, '"host:port"');
};

/** Reads `accept`: "primary" or "workers". */
export const readAcceptMode: Reader<AcceptMode> = (value, path, issues) => {
  if (value === 'primary' || value === 'workers') return value;
  issues.expected(path, '"primary" or "workers"', value);
  return undefined;
};

/** Reads `proxy_protocol`: "v1", "v2" or false (null: no header). */
export const readProxyProtocol: Reader<ProxyProtocolVersion | null> = (value, path, issues) => {
  if (value === false) return null;
  if (value === 'v1' || value === 'v2') return value;
  issues.expected(path, '"v1", "v2" or false', value);
  return undefined;
};

const BACKEND_SETTINGS = {
  address: readBackendAddress,
  weight: readPositiveInteger,
  backup: readBoolean,
  proxy_protocol: readProxyProtocol,
  max_connections: readPositiveInteger,
  resolve: readBoolean,
};

function readBackend(entry: LuaValue, path: string, issues: IssueList): ReadBackend | undefined {
  // A number goes through the address parser too, which explains that a bare port has no host.
  if (typeof entry === 'string' || typeof entry === 'number' || entry instanceof LuaFloat) {
    const endpoint = readAddress(entry, path, issues, BACKEND_RULES, BACKEND_EXPECTATION);
    return endpoint === undefined ? undefined : { ...toBackend(endpoint, 1, false), proxyProtocol: undefined, resolve: undefined };
  }

  const record = readRecord(entry, path, issues, BACKEND_EXPECTATION);
  if (record === undefined) return undefined;
  const settings = readFields(record, BACKEND_SETTINGS, path, issues);
  if (!record.fields.has('address')) issues.missing(fieldPath(path, 'address'));
  const weightValid = settings.weight !== undefined || !record.fields.has('weight');
  const backupValid = settings.backup !== undefined || !record.fields.has('backup');
  const proxyValid = settings.proxy_protocol !== undefined || !record.fields.has('proxy_protocol');
  const limitValid = settings.max_connections !== undefined || !record.fields.has('max_connections');
  const resolveValid = settings.resolve !== undefined || !record.fields.has('resolve');
  if (settings.address === undefined || !weightValid || !backupValid || !proxyValid || !limitValid || !resolveValid) {
    return undefined;
  }
  if (settings.resolve === true && isIP(settings.address.host) !== 0) {
    issues.invalid(fieldPath(path, 'resolve'), 'applies only to a hostname, but the address is an IP address', formatEndpoint(settings.address));
    return undefined;
  }
  return {
    ...toBackend(settings.address, settings.weight ?? 1, settings.backup ?? false),
    proxyProtocol: settings.proxy_protocol,
    maxConnections: settings.max_connections ?? null,
    resolve: settings.resolve,
  };
}

/** Reads a duration in seconds (fractions allowed) and converts it to whole milliseconds, at least 1. */
export const readDurationSeconds: Reader<number> = (value, path, issues) => {
  const seconds = toNumber(value);
  if (seconds === undefined || !(seconds > 0)) {
    issues.expected(path, 'a positive number of seconds', value);
    return undefined;
  }
  if (seconds > MAX_DURATION_SECONDS) {
    issues.invalid(path, `must be at most ${MAX_DURATION_SECONDS} seconds (24.8 days, the longest Node.js timer)`, value);
    return undefined;
  }
  // Rounding (not truncating) keeps 0.3 s at 300 ms; 1 ms is the floor so that a tiny value never means "no timeout".
  return Math.max(1, Math.round(seconds * 1000));
};

const TIMEOUT_SETTINGS = {
  connect: readDurationSeconds,
  idle: readDurationSeconds,
  drain: readDurationSeconds,
  queue: readDurationSeconds,
};

/** Reads timeout overrides in milliseconds. Only the keys that are set appear in the result. */
export const readTimeouts: Reader<Partial<Timeouts>> = (value, path, issues) => {
  const record = readRecord(value, path, issues, TIMEOUTS_EXPECTATION);
  if (record === undefined) return undefined;
  const settings = readFields(record, TIMEOUT_SETTINGS, path, issues);

  const timeouts: { -readonly [K in keyof Timeouts]?: number } = {};
  if (settings.connect !== undefined) timeouts.connectMs = settings.connect;
  if (settings.idle !== undefined) timeouts.idleMs = settings.idle;
  if (settings.drain !== undefined) timeouts.drainMs = settings.drain;
  if (settings.queue !== undefined) timeouts.queueMs = settings.queue;
  return timeouts;
};

/** Reads the legacy `listenPort`, a port as a string or number. rsp listens on all IPv4 addresses. */
export const readLegacyListenPort: Reader<Endpoint> = (value, path, issues) => {
  const port = readPort(value, path, issues, true);
  return port === undefined ? undefined : { host: LISTEN_RULES.defaultHost ?? '0.0.0.0', port };
};

/** Reads the legacy `backendAddress`, a hostname or IP address without a port. */
export const readLegacyBackendHost: Reader<string> = (value, path, issues) => {
  const host = typeof value === 'string' ? parseHost(value) : null;
  if (host === null) {
    issues.expected(path, 'a hostname or IP address', value);
    return undefined;
  }
  return host;
};

/** Reads the legacy `backendPort`, a port from 1 to 65535 as a string or number. */
export const readLegacyBackendPort: Reader<number> = (value, path, issues) => readPort(value, path, issues, false);

/** Builds a backend at `endpoint` (IPv6 hosts get brackets in `address`). */
export function toBackend(endpoint: Endpoint, weight: number, backup: boolean): BackendConfig {
  return {
    address: formatEndpoint(endpoint),
    host: endpoint.host,
    port: endpoint.port,
    weight,
    backup,
    proxyProtocol: null,
    maxConnections: null,
    resolve: false,
  };
}

/** Reads `resolve_interval` in seconds, at least MIN_RESOLVE_INTERVAL_MS. */
export const readResolveInterval: Reader<number> = (value, path, issues) => {
  const intervalMs = readDurationSeconds(value, path, issues);
  if (intervalMs === undefined) return undefined;
  if (intervalMs < MIN_RESOLVE_INTERVAL_MS) {
    issues.invalid(path, `must be at least ${MIN_RESOLVE_INTERVAL_MS / 1000} second`, value);
    return undefined;
  }
  return intervalMs;
};

const DNS_SERVER_PROBLEM = 'must be an IP address, optionally with a port, such as "127.0.0.1" or "127.0.0.1:5353"';

/** Reads `resolvers`: a list of DNS servers as "ip" or "ip:port" ("[ipv6]:port"). */
export const readResolvers: Reader<string[]> = (value, path, issues) => {
  if (!isLuaList(value) || value.length === 0) {
    issues.expected(path, 'a list of DNS servers such as { "127.0.0.1:53" }', value);
    return undefined;
  }
  const servers: string[] = [];
  value.forEach((entry, index) => {
    const entryPath = itemPath(path, index);
    if (typeof entry !== 'string') {
      issues.expected(entryPath, 'a DNS server address such as "127.0.0.1" or "127.0.0.1:5353"', entry);
      return;
    }
    if (isIP(entry) !== 0) {
      servers.push(entry);
      return;
    }
    const result = parseAddress(entry, {});
    const hostPart = entry.startsWith('[') ? '' : entry.replace(/:[^:]*$/, '');
    if (result.ok && isIP(result.endpoint.host) !== 0) servers.push(result.address);
    else if (result.ok || (hostPart !== '' && isIP(hostPart) === 0)) issues.invalid(entryPath, DNS_SERVER_PROBLEM, entry);
    else issues.invalid(entryPath, result.problem, entry);
  });
  return servers.length === value.length ? servers : undefined;
};

/** Reads `accept_proxy_protocol`: a list of trusted networks ("10.0.0.0/8", "127.0.0.1", "::1/128"), or false. */
export const readTrustedNetworks: Reader<string[] | null> = (value, path, issues) => {
  if (value === false) return null;
  if (!isLuaList(value) || value.length === 0) {
    issues.expected(path, 'a list of trusted networks such as { "10.0.0.0/8", "127.0.0.1" }, or false', value);
    return undefined;
  }
  const networks: string[] = [];
  value.forEach((entry, index) => {
    const network = typeof entry === 'string' ? parseNetwork(entry) : undefined;
    if (network === undefined) issues.expected(itemPath(path, index), 'an IP address or network such as "10.0.0.0/8"', entry);
    else networks.push(network);
  });
  return networks.length === value.length ? networks : undefined;
};

/** Parses "address" or "address/prefix" into "address/prefix", or returns undefined. */
function parseNetwork(text: string): string | undefined {
  const [address = '', prefixText, extra] = text.split('/');
  const family = isIP(address);
  if (family === 0 || extra !== undefined) return undefined;
  const maxPrefix = family === 4 ? 32 : 128;
  if (prefixText === undefined) return `${address}/${maxPrefix}`;
  if (!/^[0-9]{1,3}$/.test(prefixText) || Number(prefixText) > maxPrefix) return undefined;
  return `${address}/${Number(prefixText)}`;
}

/** Reads a string of at most 1 KiB, such as a health check's `send` or `expect`. */
const readCheckString: Reader<string> = (value, path, issues) => {
  if (typeof value !== 'string' || value.length === 0) {
    issues.expected(path, 'a non-empty string', value);
    return undefined;
  }
  if (value.length > 1024) {
    issues.invalid(path, 'must be at most 1024 characters', value);
    return undefined;
  }
  return value;
};

const HEALTH_CHECK_SETTINGS = {
  interval: readDurationSeconds,
  timeout: readDurationSeconds,
  rise: readPositiveInteger,
  fall: readPositiveInteger,
  send: readCheckString,
  expect: readCheckString,
};

const HEALTH_CHECK_EXPECTATION = 'true, false or a table such as { interval = 2, timeout = 1, rise = 2, fall = 3 }';

/** Reads `health_check`: true (defaults), false (off) or a table of overrides. */
export const readHealthCheck: Reader<HealthCheckConfig | null> = (value, path, issues) => {
  if (value === false) return null;
  if (value === true) return DEFAULT_HEALTH_CHECK;
  const record = readRecord(value, path, issues, HEALTH_CHECK_EXPECTATION);
  if (record === undefined) return undefined;
  const settings = readFields(record, HEALTH_CHECK_SETTINGS, path, issues);
  const check: HealthCheckConfig = {
    intervalMs: settings.interval ?? DEFAULT_HEALTH_CHECK.intervalMs,
    timeoutMs: settings.timeout ?? DEFAULT_HEALTH_CHECK.timeoutMs,
    rise: settings.rise ?? DEFAULT_HEALTH_CHECK.rise,
    fall: settings.fall ?? DEFAULT_HEALTH_CHECK.fall,
    send: settings.send ?? null,
    expect: settings.expect ?? null,
  };
  if (check.timeoutMs > check.intervalMs) {
    issues.invalid(fieldPath(path, 'timeout'), `must not exceed interval (${check.intervalMs / 1000} s)`, check.timeoutMs / 1000);
    return undefined;
  }
  return check;
};

const PASSIVE_CHECK_SETTINGS = {
  failures: readPositiveInteger,
  cooldown: readDurationSeconds,
};

/** Reads `passive_check`: true (defaults), false (off) or a table such as { failures = 3, cooldown = 10 }. */
export const readPassiveCheck: Reader<PassiveCheckConfig | null> = (value, path, issues) => {
  if (value === false) return null;
  if (value === true) return DEFAULT_PASSIVE_CHECK;
  const record = readRecord(value, path, issues, 'true, false or a table such as { failures = 3, cooldown = 10 }');
  if (record === undefined) return undefined;
  const settings = readFields(record, PASSIVE_CHECK_SETTINGS, path, issues);
  return {
    failures: settings.failures ?? DEFAULT_PASSIVE_CHECK.failures,
    cooldownMs: settings.cooldown ?? DEFAULT_PASSIVE_CHECK.cooldownMs,
  };
};

function readPort(value: LuaValue, path: string, issues: IssueList, allowZero: boolean): number | undefined {
  const input = typeof value === 'string' ? value : toNumber(value);
  const port = input === undefined ? null : parsePort(input, allowZero);
  if (port === null) {
    const range = allowZero ? 'from 0 to 65535' : 'from 1 to 65535';
    issues.expected(path, `a port number ${range}, as a number or a string`, value);
    return undefined;
  }
  return port;
}

function readAddress(value: LuaValue, path: string, issues: IssueList, rules: AddressRules, expectation: string): Endpoint | undefined {
  const input = typeof value === 'string' ? value : toNumber(value);
  if (input === undefined) {
    issues.expected(path, expectation, value);
    return undefined;
  }
  const result = parseAddress(input, rules);
  if (!result.ok) {
    issues.invalid(path, result.problem, value);
    return undefined;
  }
  return result.endpoint;
}

function toNumber(value: LuaValue): number | undefined {
  if (typeof value === 'number') return value;
  if (value instanceof LuaFloat) return value.value;
  return undefined;
}

function toInteger(value: LuaValue): number | undefined {
  const number = toNumber(value);
  return number !== undefined && Number.isSafeInteger(number) ? number : undefined;
}
