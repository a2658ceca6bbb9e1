// The Compose demo (deploy/compose): its ports agree with config/container.lua, the
// backends and scrape target name real services, and Grafana finds Prometheus and
// the dashboard at the paths the volumes provide.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { posix } from 'node:path';
import { describe, test } from 'node:test';
import { loadLuaConfig, readRepoFile, readYamlDocuments, repoPath } from '../deploy/files.js';

const COMPOSE_DIRECTORY = 'deploy/compose';

interface ComposeService {
  readonly image?: string;
  readonly build?: { readonly context: string; readonly dockerfile: string };
  readonly environment?: Readonly<Record<string, string>>;
  readonly ports?: readonly string[];
  readonly volumes?: readonly string[];
  readonly stop_grace_period?: string;
}

interface ComposeFile {
  readonly services: Readonly<Record<string, ComposeService>>;
}

const [compose] = readYamlDocuments(`${COMPOSE_DIRECTORY}/compose.yaml`) as [ComposeFile];
const rsp = compose.services.rsp as ComposeService;
const containerConfig = loadLuaConfig(readRepoFile('config/container.lua'), { RSP_BACKENDS: rsp.environment?.RSP_BACKENDS ?? '' });

/** Splits a short port mapping `[host_ip:]host_port:container_port`. */
function parsePortMapping(mapping: string): { hostIp: string; hostPort: number; containerPort: number } {
  const parts = mapping.split(':');
  const containerPort = Number(parts.pop());
  const hostPort = Number(parts.pop());
  return { hostIp: parts.join(':'), hostPort, containerPort };
}

/** Splits a volume `source:target[:mode]` and resolves a relative source against the Compose directory. */
function parseVolume(volume: string): { source: string; target: string } {
  const [source = '', target = ''] = volume.split(':');
  return { source: posix.normalize(posix.join(COMPOSE_DIRECTORY, source)), target };
}

function seconds(duration: string | undefined): number {
  const match = /^(\d+)s$/.exec(duration ?? '');
  return match === null ? Number.NaN : Number(match[1]);
}

describe('compose file', () => {
  test('publishes the ports of container.lua', () => {
    const mappings = (rsp.ports ?? []).map(parsePortMapping);
    assert.deepEqual(
      mappings.map((mapping) => mapping.containerPort),
      [containerConfig.services[0]?.listen.port, containerConfig.metrics?.port],
    );
  });

  test('publishes every port on loopback only', () => {
    for (const [name, service] of Object.entries(compose.services)) {
      for (const mapping of (service.ports ?? []).map(parsePortMapping)) {
        assert.equal(mapping.hostIp, '127.0.0.1', `${name} publishes port ${mapping.hostPort} on ${mapping.hostIp || 'every interface'}`);
      }
    }
  });

  test('builds rsp from the Dockerfile', () => {
    const context = posix.join(COMPOSE_DIRECTORY, rsp.build?.context ?? '');
    assert.ok(existsSync(repoPath(posix.join(context, rsp.build?.dockerfile ?? ''))), `no Dockerfile in ${context}`);
  });

  test('backends are compose services', () => {
    const backends = containerConfig.services[0]?.backends ?? [];
    assert.ok(backends.length >= 2, `RSP_BACKENDS lists ${backends.length} backends`);
    for (const backend of backends) {
      assert.ok(compose.services[backend.host] !== undefined, `backend ${backend.address} is not a service of compose.yaml`);
    }
  });

  test('stop grace period exceeds drain', () => {
    const drainSeconds = (containerConfig.services[0]?.timeouts.drainMs ?? Number.NaN) / 1000;
    assert.ok(seconds(rsp.stop_grace_period) > drainSeconds, `stop_grace_period ${rsp.stop_grace_period} <= drain ${drainSeconds} s`);
  });

  test('mounted files exist', () => {
    for (const [name, service] of Object.entries(compose.services)) {
      for (const volume of (service.volumes ?? []).map(parseVolume)) {
        assert.ok(existsSync(repoPath(volume.source)), `${name} mounts ${volume.source}, which does not exist`);
      }
    }
  });
});

describe('compose monitoring', () => {
  test('Prometheus scrapes the rsp metrics port', () => {
    const [prometheus] = readYamlDocuments(`${COMPOSE_DIRECTORY}/prometheus.yml`) as [
      { scrape_configs: { job_name: string; metrics_path?: string; static_configs: { targets: string[] }[] }[] },
    ];
    const job = prometheus.scrape_configs.find((candidate) => candidate.job_name === 'rsp');
    assert.ok(job !== undefined, 'no scrape job named rsp');
    assert.equal(job.metrics_path ?? '/metrics', '/metrics');
    assert.deepEqual(job.static_configs.flatMap((config) => config.targets), [`rsp:${containerConfig.metrics?.port}`]);
  });

  test('Grafana data source is the Prometheus service', () => {
    const [provisioning] = readYamlDocuments(`${COMPOSE_DIRECTORY}/grafana/provisioning/datasources/prometheus.yaml`) as [
      { datasources: { type: string; url: string }[] },
    ];
    const prometheusPort = parsePortMapping(compose.services.prometheus?.ports?.[0] ?? '').containerPort;
    assert.deepEqual(provisioning.datasources.map((source) => [source.type, source.url]), [['prometheus', `http://prometheus:${prometheusPort}`]]);
  });

  test('Grafana loads the rsp dashboard', () => {
    const [provisioning] = readYamlDocuments(`${COMPOSE_DIRECTORY}/grafana/provisioning/dashboards/rsp.yaml`) as [
      { providers: { type: string; options: { path: string } }[] },
    ];
    const provider = provisioning.providers[0];
    assert.equal(provider?.type, 'file');
    const mount = (compose.services.grafana?.volumes ?? []).map(parseVolume).find((volume) => volume.target === provider?.options.path);
    assert.ok(mount !== undefined, `no Grafana volume is mounted at ${provider?.options.path}`);
    assert.ok(existsSync(repoPath(posix.join(mount.source, 'rsp.json'))), `${mount.source} has no rsp.json`);
  });
});
