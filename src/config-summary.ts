// The summary `rsp --check` prints for a valid config.
import { availableParallelism } from 'node:os';
import type { CliOptions } from './cli.js';
import { formatEndpoint } from './config/endpoint.js';
import type { BackendConfig, Config, ServiceConfig } from './config/types.js';

export function formatConfigSummary(config: Config, options: Pick<CliOptions, 'workers'>): string {
  const workers =
    options.workers !== undefined
      ? `${options.workers} (from --workers)`
      : config.workers !== null
        ? `${config.workers} (from the config)`
        : `${availableParallelism()} (available CPUs)`;
  const lines = [
    `${config.file}: configuration is valid`,
    `workers: ${workers}`,
    `accept: ${config.accept}`,
    `metrics: ${config.metrics === null ? 'off' : formatEndpoint(config.metrics)}`,
    `resolvers: ${config.resolvers === null ? 'system' : config.resolvers.join(', ')}`,
  ];
  for (const service of config.services) {
    const timeouts = service.timeouts;
    lines.push(
      `service ${service.name}`,
      `  listen: ${formatEndpoint(service.listen)}`,
      `  algorithm: ${service.algorithm}`,
      `  backends: ${service.backends.map(describeBackend).join(', ')}`,
      `  timeouts: connect ${timeouts.connectMs / 1000} s, idle ${timeouts.idleMs / 1000} s, drain ${timeouts.drainMs / 1000} s, queue ${timeouts.queueMs / 1000} s`,
      `  access log: ${service.accessLog ? 'on' : 'off'}`,
      `  health check: ${describeHealthCheck(service)}`,
      `  passive check: ${service.passiveCheck === null ? 'off' : `${service.passiveCheck.failures} failures in a row, cool-down ${service.passiveCheck.cooldownMs / 1000} s`}`,
      `  limits: ${describeLimits(service)}`,
      `  accept PROXY protocol from: ${service.acceptProxyFrom === null ? 'nobody' : service.acceptProxyFrom.join(', ')}`,
    );
  }
  return lines.join('\n');
}

function describeBackend(backend: BackendConfig): string {
  const details = [`weight ${backend.weight}`];
  if (backend.backup) details.push('backup');
  if (backend.maxConnections !== null) details.push(`max ${backend.maxConnections} connections`);
  if (backend.proxyProtocol !== null) details.push(`PROXY ${backend.proxyProtocol}`);
  if (backend.resolve) details.push('resolved by DNS');
  return `${backend.address} (${details.join(', ')})`;
}

function describeHealthCheck(service: ServiceConfig): string {
  const check = service.healthCheck;
  if (check === null) return 'off';
  const parts = [`every ${check.intervalMs / 1000} s`, `timeout ${check.timeoutMs / 1000} s`, `rise ${check.rise}`, `fall ${check.fall}`];
  if (check.send !== null) parts.push(`send ${JSON.stringify(check.send)}`);
  if (check.expect !== null) parts.push(`expect ${JSON.stringify(check.expect)}`);
  return parts.join(', ');
}

function describeLimits(service: ServiceConfig): string {
  const parts: string[] = [];
  if (service.maxConnections !== null) parts.push(`${service.maxConnections} connections`);
  if (service.maxConnectionsPerClient !== null) parts.push(`${service.maxConnectionsPerClient} per client`);
  parts.push(`${service.maxQueued} queued per worker`);
  return parts.join(', ');
}
