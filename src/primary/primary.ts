// The primary process: forks the workers, serves metrics and probes, and owns the
// signals: SIGHUP reloads, SIGTERM and SIGINT drain and stop, and a second SIGINT
// stops at once.
import cluster from 'node:cluster';
import { availableParallelism } from 'node:os';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { EXIT_FAILURE, EXIT_OK, type CliOptions } from '../cli.js';
import { formatEndpoint } from '../config/endpoint.js';
import { loadConfig } from '../config/load.js';
import type { Config } from '../config/types.js';
import { ConfigError, listenError, RspError } from '../errors.js';
import { createLogger, type Logger } from '../log.js';
import { DnsDiscovery, type ResolutionEvent } from '../discovery/dns-discovery.js';
import { HealthMonitor, type HealthChange } from '../health/health-monitor.js';
import type { HealthMessage } from '../ipc/messages.js';
import { ClusterMetrics } from '../metrics/cluster-metrics.js';
import { createPrimaryMetrics, type PrimaryMetrics } from '../metrics/definitions.js';
import { startMetricsServer } from '../metrics/metrics-server.js';
import { Throttle } from '../throttle.js';
import { dataPathOf } from '../worker/handle-client.js';
import { workerExecArgv } from '../worker/node-options.js';
import { LoadTable } from './load-table.js';
import { WorkerPool } from './worker-pool.js';

/**
 * The shortest time between two load broadcasts. A report after a quiet spell is
 * passed on at the end of the event loop turn. Reports that follow within this
 * interval are batched into one broadcast at its end.
 */
const LOAD_BROADCAST_INTERVAL_MS = 5;

/** Exit status used when a second SIGINT cuts the drain short: 128 + SIGINT. */
const EXIT_INTERRUPTED = 130;

export async function runPrimary(options: CliOptions, config: Config): Promise<void> {
  const primary = new Primary(options, config);
  await primary.start();
}

class Primary {
  private readonly options: CliOptions;
  private readonly log: Logger;
  private readonly registry = new Registry();
  private readonly metrics: PrimaryMetrics;
  private readonly clusterMetrics: ClusterMetrics;
  private readonly health = new HealthMonitor();
  private readonly loadTable = new LoadTable();
  private readonly loadBroadcasts = new Throttle(() => this.broadcastLoad());

  /** The config as loaded from the file. */
  private config: Config;
  /** `config` with each resolved hostname replaced by its addresses: what workers and health checks use. */
  private effective: Config;
  private readonly discovery = new DnsDiscovery();
  /** A reload is evaluating the file or resolving names. */
  private reloading = false;
  /** The pool that takes new connections. */
  private pool: WorkerPool;
  /** Pools of earlier generations that are draining after a reload. */
  private readonly retiring = new Set<WorkerPool>();
  /** A new generation starting after a reload; it replaces `pool` once ready. */
  private starting: WorkerPool | undefined;
  private reloadPending = false;
  private stopping = false;
  /** A second SIGINT arrived during the drain. */
  private interrupted = false;
  private metricsAddress: string | null = null;

  constructor(options: CliOptions, config: Config) {
    this.options = options;
    this.config = config;
    this.effective = config;
    this.log = createLogger({ proc: 'primary' }, options.logLevel);
    this.metrics = createPrimaryMetrics(this.registry);
    collectDefaultMetrics({ register: this.registry, labels: { process: 'primary' } });
    this.clusterMetrics = new ClusterMetrics(this.registry);
    this.pool = this.createPool(config);
    this.health.on('change', (change) => this.onHealthChange(change));
    this.health.on('failingChange', () => this.publishHealth());
    this.discovery.on('resolution', (event) => this.onResolution(event));
    this.discovery.on('change', (effective) => this.onDiscoveryChange(effective));
  }

  async start(): Promise<void> {
    // Explicit handlers also make rsp stop correctly as PID 1 in a container, where
    // a signal without a handler is ignored. They are installed first, so that a
    // signal during start-up is handled too.
    process.on('SIGTERM', (signal) => this.stop(signal));
    process.on('SIGINT', (signal) => this.stop(signal));
    process.on('SIGHUP', () => this.reload());

    if (this.config.metrics !== null && !(await this.startMetrics(this.config))) {
      this.exit(EXIT_FAILURE);
      return;
    }

    // The first resolution finishes before workers start, so they begin with the resolved addresses.
    await this.discovery.apply(this.config);
    if (this.stopping) return;
    this.effective = this.discovery.effective();
    this.pool.update(this.effective);
    this.applyHealthConfig(this.effective);

    this.pool.once('ready', (addresses) => {
      this.logStarted(addresses);
      this.runPendingReload();
    });
    this.pool.once('startFailed', (error) => {
      if (this.stopping) return;
      console.error(`rsp: ${error.message}`);
      this.stopping = true;
      void this.pool.stop(0).then(() => this.exit(EXIT_FAILURE));
    });

    // node:cluster reads the policy at the first fork and keeps it for the life of the process.
    cluster.schedulingPolicy = this.config.accept === 'workers' ? cluster.SCHED_NONE : cluster.SCHED_RR;
    cluster.setupPrimary({ execArgv: workerExecArgv(process.execArgv, process.env.NODE_OPTIONS) });
    this.log.info({ config: this.config.file, workers: this.pool.size, accept: this.config.accept }, 'starting workers');
    this.pool.start();
  }

  private workerCount(config: Config): number {
    return this.options.workers ?? config.workers ?? availableParallelism();
  }

  private createPool(config: Config): WorkerPool {
    const pool = new WorkerPool(config, this.workerCount(config), this.log, { RSP_LOG_LEVEL: this.options.logLevel }, (workerId) => [
      this.healthMessage(),
      {
        type: 'rsp:load-view',
        others: this.loadTable.viewsFor([workerId]).get(workerId) ?? {},
        acknowledged: this.loadTable.sequenceOf(workerId),
      },
    ]);
    pool.on('trafficReport', (service, backend, ok, reason) => this.health.recordTraffic(service, backend, ok, reason));
    pool.on('metrics', (workerId, snapshot, requestId) => this.clusterMetrics.onSnapshot(workerId, snapshot, requestId));
    pool.on('loadReport', (workerId, load, sequence) => {
      this.loadTable.report(workerId, load, sequence);
      this.scheduleLoadBroadcast();
    });
    pool.on('workerExit', (workerId) => {
      this.loadTable.remove(workerId);
      this.scheduleLoadBroadcast();
      this.clusterMetrics.onWorkerExit(workerId).catch((error: unknown) => {
        this.log.error({ err: error, worker: workerId }, 'failed to keep the counters of an exited worker');
      });
    });
    return pool;
  }

  private async startMetrics(config: Config): Promise<boolean> {
    const endpoint = config.metrics;
    if (endpoint === null) return true;
    try {
      const started = await startMetricsServer(endpoint, {
        renderMetrics: async () => {
          this.metrics.workers.set(this.runningWorkers());
          const body = await this.clusterMetrics.render({
            requestSnapshots: (requestId) => this.allPools().reduce((sum, pool) => sum + pool.requestSnapshots(requestId), 0),
          });
          return { contentType: this.clusterMetrics.contentType, body };
        },
        notReadyReason: () => {
          if (this.stopping) return 'stopping';
          if (!this.pool.isReady) return 'workers are not listening yet';
          if (!this.health.anyUp()) return 'no backend is up';
          return undefined;
        },
        onRenderError: (error) => this.log.error({ err: error }, 'failed to render /metrics'),
      });
      this.metricsAddress = started.address;
      started.server.unref();
      return true;
    } catch (cause) {
      const errno = (cause as NodeJS.ErrnoException).code;
      const error = listenError('metrics endpoint', formatEndpoint(endpoint), errno, (cause as Error).message);
      this.log.error({ address: formatEndpoint(endpoint), code: error.code, errno }, error.message);
      console.error(`rsp: ${error.message}; set metrics to another address or false`);
      return false;
    }
  }

  private logStarted(addresses: ReadonlyMap<string, string>): void {
    this.log.info(
      {
        config: this.config.file,
        workers: this.pool.size,
        services: this.effective.services.map((service) => ({
          name: service.name,
          listen: addresses.get(service.name) ?? formatEndpoint(service.listen),
          algorithm: service.algorithm,
          backends: service.backends.map((backend) => backend.address),
          dataPath: dataPathOf(service),
        })),
        metrics: this.metricsAddress,
      },
      'rsp started',
    );
  }

  /**
   * SIGHUP: evaluates the config file again. An invalid file changes nothing. When
   * the services, listen addresses and worker count are unchanged, the running
   * workers apply the new config in place and no connection is touched. Otherwise a
   * new generation of workers starts, and the old one drains once the new one listens.
   */
  private reload(): void {
    if (this.stopping) return;
    if (!this.pool.isReady || this.starting !== undefined || this.reloading) {
      this.reloadPending = true;
      this.log.info('SIGHUP received during start-up or a reload; reloading once it is done');
      return;
    }

    const file = this.config.file;
    let next: Config;
    try {
      next = loadConfig(file);
    } catch (error) {
      if (!(error instanceof RspError)) throw error;
      this.metrics.configReloadsTotal.inc({ result: 'failure' });
      const issues = error instanceof ConfigError ? error.issues.map((issue) => issue.message) : [error.message];
      this.log.error({ config: file, code: error.code, issues }, 'reload failed: the config is invalid; keeping the running config');
      return;
    }

    if (next.accept !== this.config.accept) {
      this.log.warn({ running: this.config.accept, requested: next.accept }, 'reload does not change accept; restart rsp to change it');
    }
    if (!sameEndpoint(next.metrics, this.config.metrics)) {
      this.log.warn(
        { running: this.metricsAddress, requested: next.metrics === null ? null : formatEndpoint(next.metrics) },
        'reload does not move the metrics endpoint; restart rsp to change it',
      );
    }

    this.reloading = true;
    this.discovery
      .apply(next)
      .then(() => {
        this.reloading = false;
        if (this.stopping) return;
        const effective = this.discovery.effective();
        if (!this.canUpdateInPlace(next)) {
          this.startGeneration(next, effective);
          return;
        }
        this.config = next;
        this.effective = effective;
        this.pool.update(effective);
        this.applyHealthConfig(effective);
        this.metrics.configReloadsTotal.inc({ result: 'success' });
        this.log.info({ config: file, mode: 'in_place', services: summarizeServices(effective) }, 'reload complete');
        this.runPendingReload();
      })
      .catch((error: unknown) => {
        this.reloading = false;
        this.metrics.configReloadsTotal.inc({ result: 'failure' });
        this.log.error({ err: error, config: file }, 'reload failed while resolving backend names; keeping the running config');
        this.runPendingReload();
      });
  }

  private onResolution(event: ResolutionEvent): void {
    const fields = { service: event.service, backend: event.backend, addresses: event.addresses };
    if (event.error !== undefined) {
      this.log.warn({ ...fields, err: event.error }, 'DNS resolution failed; keeping the last known addresses');
    } else {
      this.log.info(fields, 'backend addresses resolved');
    }
  }

  /** Applies new addresses of a resolved name in place to the pool that takes new connections. */
  private onDiscoveryChange(effective: Config): void {
    if (this.stopping) return;
    this.effective = effective;
    (this.starting ?? this.pool).update(effective);
    this.applyHealthConfig(effective);
  }

  private canUpdateInPlace(next: Config): boolean {
    if (this.workerCount(next) !== this.pool.size) return false;
    if (next.services.length !== this.config.services.length) return false;
    return next.services.every((service) => {
      const running = this.config.services.find((candidate) => candidate.name === service.name);
      return running !== undefined && sameEndpoint(running.listen, service.listen);
    });
  }

  private startGeneration(next: Config, effective: Config): void {
    const pool = this.createPool(effective);
    this.starting = pool;
    this.log.info({ config: next.file, workers: pool.size }, 'reload: starting a new generation of workers');

    pool.once('ready', () => {
      this.starting = undefined;
      if (this.stopping) return;
      const previous = this.pool;
      const previousDrainMs = maxDrainMs(this.config);
      this.pool = pool;
      this.config = next;
      // Names may have resolved again while the new workers started.
      this.effective = this.discovery.effective();
      this.applyHealthConfig(this.effective);
      this.retiring.add(previous);
      void previous.stop(previousDrainMs).then(() => this.retiring.delete(previous));
      this.metrics.configReloadsTotal.inc({ result: 'success' });
      this.log.info(
        { config: next.file, mode: 'new_generation', workers: pool.size, services: summarizeServices(this.effective) },
        'reload complete; previous workers are draining',
      );
      this.runPendingReload();
    });
    pool.once('startFailed', (error) => {
      this.starting = undefined;
      this.metrics.configReloadsTotal.inc({ result: 'failure' });
      this.log.error({ err: error, code: error.code }, 'reload failed: new workers could not listen; keeping the running workers');
      void pool.stop(0);
      void this.discovery.apply(this.config);
      this.runPendingReload();
    });
    pool.start();
  }

  private runPendingReload(): void {
    if (!this.reloadPending) return;
    this.reloadPending = false;
    this.reload();
  }

  private stop(signal: NodeJS.Signals): void {
    if (this.stopping) {
      if (signal === 'SIGINT' && !this.interrupted) {
        this.interrupted = true;
        this.log.warn({ signal }, 'second SIGINT; closing every connection now');
        for (const pool of this.allPools()) void pool.stop(0);
      }
      return;
    }
    this.stopping = true;
    this.health.stop();
    this.discovery.stop();
    const drainMs = maxDrainMs(this.config);
    this.log.info({ signal, drainMs }, 'stopping: no new connections, draining open ones');
    void Promise.all(this.allPools().map((pool) => pool.stop(drainMs))).then(() => {
      this.log.info({ interrupted: this.interrupted }, 'rsp stopped');
      this.exit(this.interrupted ? EXIT_INTERRUPTED : EXIT_OK);
    });
  }

  private allPools(): WorkerPool[] {
    const pools = [this.pool, ...this.retiring];
    if (this.starting !== undefined) pools.push(this.starting);
    return pools;
  }

  private runningWorkers(): number {
    return this.allPools().reduce((sum, pool) => sum + pool.running, 0);
  }

  /** Sends every worker the summed load of all other workers, batched. */
  private scheduleLoadBroadcast(): void {
    this.loadBroadcasts.request(LOAD_BROADCAST_INTERVAL_MS);
  }

  private broadcastLoad(): void {
    for (const pool of this.allPools()) {
      for (const [workerId, others] of this.loadTable.viewsFor(pool.connectedWorkerIds())) {
        pool.sendToWorker(workerId, { type: 'rsp:load-view', others, acknowledged: this.loadTable.sequenceOf(workerId) });
      }
    }
  }

  /** Starts health checks for `config` and publishes the resulting states. */
  private applyHealthConfig(config: Config): void {
    this.health.apply(config);
    this.publishHealth();
  }

  private onHealthChange(change: HealthChange): void {
    const fields = {
      service: change.service,
      backend: change.backend,
      reason: change.reason,
      backendsUp: change.upCount,
      backends: change.total,
    };
    if (change.up) this.log.info(fields, 'backend is up');
    else this.log.warn(fields, 'backend is down');
    this.publishHealth();
  }

  /** Sends the health states to every worker and mirrors them in rsp_backend_up. */
  private publishHealth(): void {
    const message = this.healthMessage();
    this.metrics.backendUp.reset();
    for (const state of message.states) {
      this.metrics.backendUp.set({ service: state.service, backend: state.backend }, state.up ? 1 : 0);
    }
    for (const pool of this.allPools()) pool.broadcast(message);
  }

  private healthMessage(): HealthMessage {
    return { type: 'rsp:health', states: this.health.states() };
  }

  private exit(code: number): void {
    this.log.flush();
    process.exit(code);
  }
}

function sameEndpoint(a: { host: string; port: number } | null, b: { host: string; port: number } | null): boolean {
  if (a === null || b === null) return a === b;
  return a.host === b.host && a.port === b.port;
}

function maxDrainMs(config: Config): number {
  return Math.max(...config.services.map((service) => service.timeouts.drainMs));
}

function summarizeServices(config: Config): { name: string; listen: string; backends: string[] }[] {
  return config.services.map((service) => ({
    name: service.name,
    listen: formatEndpoint(service.listen),
    backends: service.backends.map((backend) => backend.address),
  }));
}
