// The Kubernetes manifests under deploy/kubernetes: they parse, refer to each other
// by the right names and labels, and agree with the rsp config in the ConfigMap.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { posix } from 'node:path';
import { describe, test } from 'node:test';
import type { Config } from '../../src/config/types.js';
import { loadLuaConfig, readYamlDocuments, repoPath } from '../deploy/files.js';

const DIRECTORY = 'deploy/kubernetes';

interface ObjectMeta {
  readonly name: string;
  readonly labels?: Readonly<Record<string, string>>;
  readonly annotations?: Readonly<Record<string, string>>;
}

interface Manifest {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: ObjectMeta;
}

interface LabelSelector {
  readonly matchLabels: Readonly<Record<string, string>>;
}

interface Probe {
  readonly httpGet?: { readonly path: string; readonly port: number | string };
}

interface Container {
  readonly name: string;
  readonly image: string;
  readonly args?: readonly string[];
  readonly ports?: readonly { readonly name?: string; readonly containerPort: number }[];
  readonly livenessProbe?: Probe;
  readonly readinessProbe?: Probe;
  readonly lifecycle?: { readonly preStop?: { readonly exec?: { readonly command: readonly string[] } } };
  readonly resources?: {
    readonly requests?: Readonly<Record<string, string>>;
    readonly limits?: Readonly<Record<string, string>>;
  };
  readonly securityContext?: {
    readonly allowPrivilegeEscalation?: boolean;
    readonly readOnlyRootFilesystem?: boolean;
    readonly capabilities?: { readonly drop?: readonly string[] };
  };
  readonly volumeMounts?: readonly { readonly name: string; readonly mountPath: string }[];
}

interface Deployment extends Manifest {
  readonly spec: {
    readonly replicas?: number;
    readonly selector: LabelSelector;
    readonly template: {
      readonly metadata: ObjectMeta;
      readonly spec: {
        readonly terminationGracePeriodSeconds?: number;
        readonly securityContext?: { readonly runAsNonRoot?: boolean; readonly runAsUser?: number };
        readonly containers: readonly Container[];
        readonly volumes?: readonly { readonly name: string; readonly configMap?: { readonly name: string } }[];
      };
    };
  };
}

interface Service extends Manifest {
  readonly spec: {
    readonly selector: Readonly<Record<string, string>>;
    readonly ports: readonly { readonly name: string; readonly port: number; readonly targetPort: number | string }[];
  };
}

interface ConfigMap extends Manifest {
  readonly data: Readonly<Record<string, string>>;
}

/** Reads every document of every YAML file in the directory, with its file name. */
function readManifests(): { file: string; manifest: Manifest }[] {
  const files = readdirSync(repoPath(DIRECTORY)).filter((name) => name.endsWith('.yaml') && name !== 'kustomization.yaml');
  return files.flatMap((file) =>
    readYamlDocuments(posix.join(DIRECTORY, file)).map((manifest) => ({ file, manifest: manifest as Manifest })),
  );
}

const manifests = readManifests();

function findManifest<T extends Manifest>(kind: string, name: string): T {
  const found = manifests.find(({ manifest }) => manifest.kind === kind && manifest.metadata.name === name);
  assert.ok(found !== undefined, `${DIRECTORY} has no ${kind} named ${name}`);
  return found.manifest as T;
}

const deployment = findManifest<Deployment>('Deployment', 'rsp');
const podSpec = deployment.spec.template.spec;
const container = podSpec.containers.find((candidate) => candidate.name === 'rsp') as Container;
const configMap = findManifest<ConfigMap>('ConfigMap', 'rsp-config');
const siteLua = configMap.data['site.lua'] ?? '';
const config: Config = loadLuaConfig(siteLua);

/** Resolves a probe or Service port, given as a number or a container port name, to a number. */
function containerPort(port: number | string | undefined): number | undefined {
  if (typeof port === 'number') return port;
  return container.ports?.find((candidate) => candidate.name === port)?.containerPort;
}

function includesLabels(labels: Readonly<Record<string, string>> | undefined, required: Readonly<Record<string, string>>): boolean {
  return Object.entries(required).every(([key, value]) => labels?.[key] === value);
}

describe('kubernetes manifests', () => {
  test('every document has apiVersion, kind and name', () => {
    assert.ok(manifests.length >= 7, `expected at least 7 manifests, found ${manifests.length}`);
    for (const { file, manifest } of manifests) {
      assert.equal(typeof manifest.apiVersion, 'string', `${file}: apiVersion`);
      assert.equal(typeof manifest.kind, 'string', `${file}: kind`);
      assert.equal(typeof manifest.metadata?.name, 'string', `${file}: metadata.name`);
    }
  });

  test('kustomization lists every manifest file', () => {
    const [kustomization] = readYamlDocuments(`${DIRECTORY}/kustomization.yaml`) as [{ resources: string[] }];
    const files = [...new Set(manifests.map(({ file }) => file))].sort();
    assert.deepEqual([...kustomization.resources].sort(), files);
  });

  test('the ConfigMap holds a valid rsp config', () => {
    assert.equal(config.services.length, 1);
    assert.ok(config.metrics !== null, 'site.lua turns metrics off, but the probes need them');
  });
});

describe('kubernetes deployment', () => {
  test('runs two replicas of the rsp container', () => {
    assert.equal(deployment.spec.replicas, 2);
    assert.ok(container !== undefined, 'no container named rsp');
    assert.ok(includesLabels(deployment.spec.template.metadata.labels, deployment.spec.selector.matchLabels));
  });

  test('container ports match the config', () => {
    const service = config.services[0];
    assert.ok(service !== undefined);
    assert.equal(containerPort('proxy'), service.listen.port);
    assert.equal(containerPort('metrics'), config.metrics?.port);
  });

  test('listens on every pod interface', () => {
    // The kubelet probes and the Services reach the pod on its own IP, not on loopback.
    assert.ok(['0.0.0.0', '::'].includes(config.services[0]?.listen.host ?? ''), `listen host ${config.services[0]?.listen.host}`);
    assert.ok(['0.0.0.0', '::'].includes(config.metrics?.host ?? ''), `metrics host ${config.metrics?.host}`);
  });

  test('probes use the metrics port', () => {
    assert.equal(container.livenessProbe?.httpGet?.path, '/healthz');
    assert.equal(containerPort(container.livenessProbe?.httpGet?.port), config.metrics?.port);
    assert.equal(container.readinessProbe?.httpGet?.path, '/readyz');
    assert.equal(containerPort(container.readinessProbe?.httpGet?.port), config.metrics?.port);
  });

  test('grace period covers preStop and drain', () => {
    const preStop = container.lifecycle?.preStop?.exec?.command ?? [];
    const preStopSeconds = preStop[0] === 'sleep' ? Number(preStop[1]) : 0;
    const drainSeconds = Math.max(...config.services.map((service) => service.timeouts.drainMs / 1000));
    const grace = podSpec.terminationGracePeriodSeconds ?? 30;
    assert.ok(grace > preStopSeconds + drainSeconds, `terminationGracePeriodSeconds ${grace} <= preStop ${preStopSeconds} s + drain ${drainSeconds} s`);
  });

  test('checksum annotation matches site.lua', () => {
    const expected = createHash('sha256').update(siteLua).digest('hex');
    assert.equal(
      deployment.spec.template.metadata.annotations?.['checksum/config'],
      expected,
      `set the checksum/config annotation in deployment.yaml to ${expected}`,
    );
  });

  test('mounts the ConfigMap where args point', () => {
    const volume = podSpec.volumes?.find((candidate) => candidate.configMap?.name === configMap.metadata.name);
    assert.ok(volume !== undefined, 'no volume from the rsp-config ConfigMap');
    const mount = container.volumeMounts?.find((candidate) => candidate.name === volume.name);
    assert.equal(mount?.mountPath, '/etc/rsp');
    assert.deepEqual(container.args, ['/etc/rsp/site.lua']);
  });

  test('workers match the CPU limit', () => {
    assert.equal(config.workers, Number(container.resources?.limits?.cpu));
  });

  test('sets resource requests and limits', () => {
    for (const kind of ['requests', 'limits'] as const) {
      for (const resource of ['cpu', 'memory']) {
        assert.ok(container.resources?.[kind]?.[resource] !== undefined, `resources.${kind}.${resource} is missing`);
      }
    }
  });

  test('runs as non-root with a read-only root', () => {
    assert.equal(podSpec.securityContext?.runAsNonRoot, true);
    assert.equal(podSpec.securityContext?.runAsUser, 1000);
    assert.equal(container.securityContext?.readOnlyRootFilesystem, true);
    assert.equal(container.securityContext?.allowPrivilegeEscalation, false);
    assert.deepEqual(container.securityContext?.capabilities?.drop, ['ALL']);
  });
});

describe('kubernetes services and policies', () => {
  const podLabels = deployment.spec.template.metadata.labels;

  test('services select the pods and name container ports', () => {
    for (const name of ['rsp', 'rsp-metrics']) {
      const service = findManifest<Service>('Service', name);
      assert.ok(includesLabels(podLabels, service.spec.selector), `Service ${name} does not select the rsp pods`);
      for (const port of service.spec.ports) {
        assert.ok(containerPort(port.targetPort) !== undefined, `Service ${name} port ${port.name} targets ${port.targetPort}, which the container lacks`);
      }
    }
  });

  test('ServiceMonitor scrapes rsp-metrics', () => {
    const monitor = findManifest<Manifest & { spec: { selector: LabelSelector; endpoints: { port: string; path: string }[] } }>('ServiceMonitor', 'rsp');
    const metricsService = findManifest<Service>('Service', 'rsp-metrics');
    assert.equal(monitor.apiVersion, 'monitoring.coreos.com/v1');
    assert.ok(includesLabels(metricsService.metadata.labels, monitor.spec.selector.matchLabels));
    assert.ok(!includesLabels(findManifest<Service>('Service', 'rsp').metadata.labels, monitor.spec.selector.matchLabels), 'the ServiceMonitor also selects the traffic Service');
    assert.deepEqual(monitor.spec.endpoints.map((endpoint) => [endpoint.port, endpoint.path]), [['metrics', '/metrics']]);
  });

  test('PodDisruptionBudget selects the pods', () => {
    const budget = findManifest<Manifest & { spec: { selector: LabelSelector; maxUnavailable?: number } }>('PodDisruptionBudget', 'rsp');
    assert.ok(includesLabels(podLabels, budget.spec.selector.matchLabels));
    assert.equal(budget.spec.maxUnavailable, 1);
  });

  test('HPA scales the deployment on CPU', () => {
    type Autoscaler = Manifest & {
      spec: { scaleTargetRef: { kind: string; name: string }; minReplicas: number; metrics: { resource?: { name: string } }[] };
    };
    const autoscaler = findManifest<Autoscaler>('HorizontalPodAutoscaler', 'rsp');
    assert.equal(autoscaler.apiVersion, 'autoscaling/v2');
    assert.equal(autoscaler.spec.scaleTargetRef.kind, 'Deployment');
    assert.equal(autoscaler.spec.scaleTargetRef.name, deployment.metadata.name);
    assert.ok(autoscaler.spec.minReplicas >= 2, `minReplicas ${autoscaler.spec.minReplicas}`);
    assert.deepEqual(autoscaler.spec.metrics.map((metric) => metric.resource?.name), ['cpu']);
    assert.ok(container.resources?.requests?.cpu !== undefined, 'a CPU utilization target needs a CPU request');
  });
});
