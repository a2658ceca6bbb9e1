// Validation of the globals a config chunk set into a typed Config. It accepts
// three forms (top-level service, named services, legacy single backend) and
// collects every issue before it fails.
import { isIP } from 'node:net';
import { ConfigError, ErrorCodes } from '../errors.js';
import { formatEndpoint } from './endpoint.js';
import { IssueList } from './issue-list.js';
import type { ChunkResult } from './lua.js';
import type { LuaRecord } from './lua-value.js';
import { fieldPath, readFields, readRecord, type FieldValues, type Reader } from './read-fields.js';
import {
  readAcceptMode,
  readAlgorithm,
  readBackends,
  readBoolean,
  readHealthCheck,
  readPassiveCheck,
  readProxyProtocol,
  readResolveInterval,
  readResolvers,
  readTrustedNetworks,
  type ReadBackend,
  readLegacyBackendHost,
  readLegacyBackendPort,
  readLegacyListenPort,
  readListenAddress,
  readMetricsAddress,
  readPositiveInteger,
  readTimeouts,
  toBackend,
} from './setting-readers.js';
import {
  DEFAULT_MAX_QUEUED,
  DEFAULT_METRICS,
  DEFAULT_PASSIVE_CHECK,
  DEFAULT_RESOLVE_INTERVAL_MS,
  DEFAULT_TIMEOUTS,
  type Algorithm,
  type BackendConfig,
  type Config,
  type Endpoint,
  type HealthCheckConfig,
  type PassiveCheckConfig,
  type ProxyProtocolVersion,
  type ServiceConfig,
  type Timeouts,
} from './types.js';

/** Settings of one service, in `services.<name>` or (all but the name) at top level. */
const SERVICE_SETTINGS = {
  listen: readListenAddress,
  backends: readBackends,
  algorithm: readAlgorithm,
  timeouts: readTimeouts,
  access_log: readBoolean,
  health_check: readHealthCheck,
  passive_check: readPassiveCheck,
  proxy_protocol: readProxyProtocol,
  accept_proxy_protocol: readTrustedNetworks,
  max_connections: readPositiveInteger,
  max_connections_per_client: readPositiveInteger,
  max_queued: readPositiveInteger,
  resolve: readBoolean,
  resolve_interval: readResolveInterval,
};

/** A service found in `services`, with the settings that were set and valid. */
interface NamedServiceSettings {
  readonly name: string;
  readonly path: string;
  readonly record: LuaRecord;
  readonly settings: FieldValues<typeof SERVICE_SETTINGS>;
}

/** Letters, digits, `_`, `.` and `-`: safe in log fields and metric labels. */
const SERVICE_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;

const SERVICES_EXPECTATION = 'a table keyed by service name, such as { web = { listen = 8000, backends = { ... } } }';

const readServices: Reader<NamedServiceSettings[]> = (value, path, issues) => {
  const record = readRecord(value, path, issues, SERVICES_EXPECTATION);
  if (record === undefined) return undefined;
  if (record.fields.size === 0 && record.otherKeys.length === 0) {
    issues.invalid(path, 'must define at least one service', value);
    return undefined;
  }

  const services: NamedServiceSettings[] = [];
  for (const key of record.otherKeys) {
    issues.add(`${path}${key}`, 'is not a service name; key each service by its name, such as web = { ... }');
  }
  for (const [name, serviceValue] of record.fields) {
    const servicePath = fieldPath(path, name);
    if (!SERVICE_NAME.test(name)) {
      issues.invalid(path, 'must use service names made of letters, digits, "_", "." and "-"', name);
      continue;
    }
    const serviceRecord = readRecord(serviceValue, servicePath, issues, 'a table such as { listen = 8000, backends = { ... } }');
    if (serviceRecord === undefined) continue;
    const settings = readFields(serviceRecord, SERVICE_SETTINGS, servicePath, issues);
    services.push({ name, path: servicePath, record: serviceRecord, settings });
  }
  return services;
};

/**
 * Known top-level globals. The legacy `listenPort`, `backendAddress` and
 * `backendPort` are the form that predates `listen` and `backends`.
 */
const TOP_LEVEL_SETTINGS = {
  workers: readPositiveInteger,
  accept: readAcceptMode,
  listen: readListenAddress,
  algorithm: readAlgorithm,
  backends: readBackends,
  timeouts: readTimeouts,
  metrics: readMetricsAddress,
  access_log: readBoolean,
  health_check: readHealthCheck,
  passive_check: readPassiveCheck,
  proxy_protocol: readProxyProtocol,
  accept_proxy_protocol: readTrustedNetworks,
  max_connections: readPositiveInteger,
  max_connections_per_client: readPositiveInteger,
  max_queued: readPositiveInteger,
  resolve: readBoolean,
  resolve_interval: readResolveInterval,
  resolvers: readResolvers,
  services: readServices,
  listenPort: readLegacyListenPort,
  backendAddress: readLegacyBackendHost,
  backendPort: readLegacyBackendPort,
};

type TopLevelSettings = FieldValues<typeof TOP_LEVEL_SETTINGS>;

const TOP_LEVEL_SERVICE_KEYS = ['listen', 'backends'] as const;
const LEGACY_KEYS = ['listenPort', 'backendAddress', 'backendPort'] as const;

/** Values every service starts from: the built-in defaults, overridden by the top-level settings. */
interface ServiceDefaults {
  readonly algorithm: Algorithm;
  readonly timeouts: Timeouts;
  readonly accessLog: boolean;
  readonly healthCheck: HealthCheckConfig | null;
  readonly passiveCheck: PassiveCheckConfig | null;
  readonly proxyProtocol: ProxyProtocolVersion | null;
  readonly acceptProxyFrom: readonly string[] | null;
  readonly maxConnections: number | null;
  readonly maxConnectionsPerClient: number | null;
  readonly maxQueued: number;
  readonly resolve: boolean;
  readonly resolveIntervalMs: number;
}

/** A validated service and the path of its listen setting, for messages about listen conflicts. */
interface ServiceWithPath {
  readonly service: ServiceConfig;
  readonly listenPath: string;
}

/**
 * Validates the globals of a config chunk into a Config (not yet frozen).
 *
 * @param file The config path as the operator gave it; every message starts with it.
 * @throws ConfigError `RSP_ERR_CONFIG_INVALID` with one issue per problem found.
 */
export function validateConfig(file: string, chunk: ChunkResult): Config {
  const issues = new IssueList(file);
  const globals = chunk.globals;
  const top = readFields(globals, TOP_LEVEL_SETTINGS, '', issues, {
    unknownKeyAdvice: (path) => `declare helper variables with local, as in "local ${path} = ..."`,
  });

  const defaults: ServiceDefaults = {
    algorithm: top.algorithm ?? 'round_robin',
    timeouts: { ...DEFAULT_TIMEOUTS, ...top.timeouts },
    accessLog: top.access_log ?? false,
    healthCheck: top.health_check ?? null,
    passiveCheck: top.passive_check === undefined ? DEFAULT_PASSIVE_CHECK : top.passive_check,
    proxyProtocol: top.proxy_protocol ?? null,
    acceptProxyFrom: top.accept_proxy_protocol ?? null,
    maxConnections: top.max_connections ?? null,
    maxConnectionsPerClient: top.max_connections_per_client ?? null,
    maxQueued: top.max_queued ?? DEFAULT_MAX_QUEUED,
    resolve: top.resolve ?? false,
    resolveIntervalMs: top.resolve_interval ?? DEFAULT_RESOLVE_INTERVAL_MS,
  };
  const services = buildServices(globals, top, defaults, issues, chunk.returnCount);
  const metrics = globals.fields.has('metrics') ? top.metrics : DEFAULT_METRICS;

  checkListenConflicts(services, issues);
  if (metrics !== undefined && metrics !== null) checkMetricsConflict(metrics, globals.fields.has('metrics'), services, issues);

  if (issues.issues.length > 0 || metrics === undefined) throw new ConfigError(ErrorCodes.CONFIG_INVALID, issues.issues);
  return {
    file,
    workers: top.workers ?? null,
    accept: top.accept ?? 'workers',
    resolvers: top.resolvers ?? null,
    metrics,
    services: services.map((entry) => entry.service).sort(compareNames),
  };
}

/**
 * Picks the form the config uses and builds its services. When forms are mixed,
 * each conflicting key is reported and the first form of services, top level,
 * legacy is built.
 */
function buildServices(
  globals: LuaRecord,
  top: TopLevelSettings,
  defaults: ServiceDefaults,
  issues: IssueList,
  returnCount: number,
): ServiceWithPath[] {
  const topLevelKeys = TOP_LEVEL_SERVICE_KEYS.filter((key) => globals.fields.has(key));
  const legacyKeys = LEGACY_KEYS.filter((key) => globals.fields.has(key));
  const hasServices = globals.fields.has('services');

  if (hasServices) {
    for (const key of topLevelKeys) {
      issues.add(key, 'cannot be combined with services; set listen and backends inside each service instead');
    }
  }
  const newFormKey = hasServices ? 'services' : topLevelKeys[0];
  if (newFormKey !== undefined) {
    for (const key of legacyKeys) {
      issues.add(
        key,
        `cannot be combined with ${newFormKey}; listenPort, backendAddress and backendPort are the legacy form of listen and backends, so use one form`,
      );
    }
  }

  if (hasServices) return (top.services ?? []).flatMap((entry) => buildNamedService(entry, defaults, issues));
  if (topLevelKeys.length > 0) return buildTopLevelService(globals, top, defaults, issues);
  if (legacyKeys.length > 0) return buildLegacyService(globals, top, defaults, issues);

  const returnAdvice =
    returnCount > 0 ? ' (the chunk returned a value, but rsp reads globals only: write listen = ..., not return { listen = ... })' : '';
  issues.add('', `no service is defined; set listen and backends, or services${returnAdvice}`);
  return [];
}

function buildNamedService(entry: NamedServiceSettings, defaults: ServiceDefaults, issues: IssueList): ServiceWithPath[] {
  const { settings } = entry;
  const listenPath = fieldPath(entry.path, 'listen');
  if (!entry.record.fields.has('listen')) issues.missing(listenPath);
  if (!entry.record.fields.has('backends')) issues.missing(fieldPath(entry.path, 'backends'));
  if (settings.listen === undefined || settings.backends === undefined) return [];

  const service: ServiceConfig = {
    name: entry.name,
    listen: settings.listen,
    algorithm: settings.algorithm ?? defaults.algorithm,
    backends: resolveBackends(
      settings.backends,
      settings.proxy_protocol === undefined ? defaults.proxyProtocol : settings.proxy_protocol,
      settings.resolve ?? defaults.resolve,
    ),
    timeouts: { ...defaults.timeouts, ...settings.timeouts },
    accessLog: settings.access_log ?? defaults.accessLog,
    healthCheck: settings.health_check === undefined ? defaults.healthCheck : settings.health_check,
    passiveCheck: settings.passive_check === undefined ? defaults.passiveCheck : settings.passive_check,
    acceptProxyFrom: settings.accept_proxy_protocol === undefined ? defaults.acceptProxyFrom : settings.accept_proxy_protocol,
    maxConnections: settings.max_connections ?? defaults.maxConnections,
    maxConnectionsPerClient: settings.max_connections_per_client ?? defaults.maxConnectionsPerClient,
    maxQueued: settings.max_queued ?? defaults.maxQueued,
    resolveIntervalMs: settings.resolve_interval ?? defaults.resolveIntervalMs,
  };
  checkBackups(service, fieldPath(entry.path, 'backends'), issues);
  return [{ service, listenPath }];
}

function buildTopLevelService(globals: LuaRecord, top: TopLevelSettings, defaults: ServiceDefaults, issues: IssueList): ServiceWithPath[] {
  for (const key of TOP_LEVEL_SERVICE_KEYS) {
    if (!globals.fields.has(key)) issues.missing(key);
  }
  if (top.listen === undefined || top.backends === undefined) return [];
  const service = defaultService(top.listen, top.backends, defaults);
  checkBackups(service, 'backends', issues);
  return [{ service, listenPath: 'listen' }];
}

function buildLegacyService(globals: LuaRecord, top: TopLevelSettings, defaults: ServiceDefaults, issues: IssueList): ServiceWithPath[] {
  for (const key of LEGACY_KEYS) {
    if (!globals.fields.has(key)) issues.missing(key);
  }
  if (top.listenPort === undefined || top.backendAddress === undefined || top.backendPort === undefined) return [];
  const backend: ReadBackend = {
    ...toBackend({ host: top.backendAddress, port: top.backendPort }, 1, false),
    proxyProtocol: undefined,
    resolve: undefined,
  };
  return [{ service: defaultService(top.listenPort, [backend], defaults), listenPath: 'listenPort' }];
}

function defaultService(listen: Endpoint, backends: readonly ReadBackend[], defaults: ServiceDefaults): ServiceConfig {
  return {
    name: 'default',
    listen,
    algorithm: defaults.algorithm,
    backends: resolveBackends(backends, defaults.proxyProtocol, defaults.resolve),
    timeouts: defaults.timeouts,
    accessLog: defaults.accessLog,
    healthCheck: defaults.healthCheck,
    passiveCheck: defaults.passiveCheck,
    acceptProxyFrom: defaults.acceptProxyFrom,
    maxConnections: defaults.maxConnections,
    maxConnectionsPerClient: defaults.maxConnectionsPerClient,
    maxQueued: defaults.maxQueued,
    resolveIntervalMs: defaults.resolveIntervalMs,
  };
}

/**
 * Gives each backend that does not set `proxy_protocol` or `resolve` the service's
 * setting. A service-wide `resolve` applies to hostnames only.
 */
function resolveBackends(
  backends: readonly ReadBackend[],
  serviceProxyProtocol: ProxyProtocolVersion | null,
  serviceResolve: boolean,
): BackendConfig[] {
  return backends.map((backend) => ({
    ...backend,
    proxyProtocol: backend.proxyProtocol === undefined ? serviceProxyProtocol : backend.proxyProtocol,
    resolve: backend.resolve ?? (serviceResolve && isIP(backend.host) === 0),
  }));
}

/** Reports a service whose backends are all backups, because then none takes connections while they are up. */
function checkBackups(service: ServiceConfig, path: string, issues: IssueList): void {
  if (service.backends.every((backend) => backend.backup)) {
    issues.add(path, 'must contain at least one backend that is not a backup');
  }
}

/** Reports each service whose listen address overlaps that of a service before it. */
function checkListenConflicts(services: readonly ServiceWithPath[], issues: IssueList): void {
  services.forEach((entry, index) => {
    const earlier = services.slice(0, index).find((other) => endpointsOverlap(other.service.listen, entry.service.listen));
    if (earlier === undefined) return;
    issues.invalid(
      entry.listenPath,
      `must not overlap ${earlier.listenPath} (${formatEndpoint(earlier.service.listen)})`,
      formatEndpoint(entry.service.listen),
    );
  });
}

function checkMetricsConflict(metrics: Endpoint, isSet: boolean, services: readonly ServiceWithPath[], issues: IssueList): void {
  const service = services.find((entry) => endpointsOverlap(entry.service.listen, metrics));
  if (service === undefined) return;
  if (!isSet) {
    issues.add(
      'metrics',
      `is not set, so it defaults to ${formatEndpoint(metrics)}, which overlaps ${service.listenPath}; set metrics to another address or false`,
    );
    return;
  }
  issues.invalid(
    'metrics',
    `must not overlap ${service.listenPath} (${formatEndpoint(service.service.listen)})`,
    formatEndpoint(metrics),
  );
}

/** Orders services by name in UTF-16 code unit order, which does not depend on the locale. */
function compareNames(a: ServiceConfig, b: ServiceConfig): number {
  if (a.name === b.name) return 0;
  return a.name < b.name ? -1 : 1;
}

/**
 * True when two sockets on these addresses cannot both listen: the same port
 * (other than 0) and the same host, or a wildcard host that covers the other.
 * `::` covers IPv4 too, because Node.js opens it dual-stack.
 */
function endpointsOverlap(a: Endpoint, b: Endpoint): boolean {
  if (a.port !== b.port || a.port === 0) return false;
  return a.host === b.host || coversHost(a.host, b.host) || coversHost(b.host, a.host);
}

function coversHost(wildcard: string, host: string): boolean {
  return wildcard === '::' || (wildcard === '0.0.0.0' && !host.includes(':'));
}
