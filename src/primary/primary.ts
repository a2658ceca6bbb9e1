// The primary process: loads the config, forks the workers, logs start-up, and
// owns the signals (SIGTERM and SIGINT drain and stop, a second SIGINT stops at once).
import { availableParallelism } from 'node:os';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { formatEndpoint } from '../config/endpoint.js';
import type { Config } from '../config/types.js';
import { EXIT_FAILURE, EXIT_OK, type CliOptions } from '../cli.js';
import { createLogger, type Logger } from '../log.js';
import { ClusterMetrics } from '../metrics/cluster-metrics.js';
import { createPrimaryMetrics } from '../metrics/definitions.js';
import { startMetricsServer } from '../metrics/metrics-server.js';
import { WorkerPool } from './worker-pool.js';

/** Exit status used when a second SIGINT cuts the drain short: 128 + SIGINT. */
const EXIT_INTERRUPTED = 130;

export async function runPrimary(options: CliOptions, config: Config): Promise<void> {
  const log = createLogger({ proc: 'primary' }, options.logLevel);
  const workerCount = options.workers ?? config.workers ?? availableParallelism();
  const pool = new WorkerPool(config, workerCount, log, { RSP_LOG_LEVEL: options.logLevel });
  const drainMs = Math.max(...config.services.map((service) => service.timeouts.drainMs));
  let stopping = false;

  const registry = new Registry();
  const primaryMetrics = createPrimaryMetrics(registry);
  collectDefaultMetrics({ register: registry, labels: { process: 'primary' } });
  const clusterMetrics = new ClusterMetrics(registry);
  pool.on('metrics', (workerId, snapshot, requestId) => clusterMetrics.onSnapshot(workerId, snapshot, requestId));
  pool.on('workerExit', (workerId) => {
    clusterMetrics.onWorkerExit(workerId).catch((error: unknown) => {
      log.error({ err: error, worker: workerId }, 'failed to keep the counters of an exited worker');
    });
  });
  // NOTE: without health checks every configured backend counts as up.
  for (const service of config.services) {
    for (const backend of service.backends) primaryMetrics.backendUp.set({ service: service.name, backend: backend.address }, 1);
  }

  let metricsAddress: string | null = null;
  if (config.metrics !== null) {
    try {
      const started = await startMetricsServer(config.metrics, {
        renderMetrics: async () => {
          primaryMetrics.workers.set(pool.running);
          return { contentType: clusterMetrics.contentType, body: await clusterMetrics.render(pool) };
        },
        notReadyReason: () => {
          if (stopping) return 'stopping';
          if (!pool.isReady) return 'workers are not listening yet';
          return undefined;
        },
        onRenderError: (error) => log.error({ err: error }, 'failed to render /metrics'),
      });
      metricsAddress = started.address;
      started.server.unref();
    } catch (error) {
      const address = formatEndpoint(config.metrics);
      log.error({ err: error, address }, `metrics endpoint failed to listen on ${address}: ${(error as Error).message}`);
      exit(log, EXIT_FAILURE);
      return;
    }
  }

  pool.on('ready', (addresses) => {
    log.info(
      {
        config: config.file,
        workers: pool.size,
        services: config.services.map((service) => ({
          name: service.name,
          listen: addresses.get(service.name) ?? formatEndpoint(service.listen),
          algorithm: service.algorithm,
          backends: service.backends.map((backend) => backend.address),
        })),
        metrics: metricsAddress,
      },
      'rsp started',
    );
  });

  pool.on('startFailed', () => {
    if (stopping) return;
    stopping = true;
    void pool.stop(0).then(() => exit(log, EXIT_FAILURE));
  });

  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) {
      if (signal === 'SIGINT') {
        log.warn({ signal }, 'second SIGINT; closing every connection now');
        void pool.stop(0).then(() => exit(log, EXIT_INTERRUPTED));
      }
      return;
    }
    stopping = true;
    log.info({ signal, drainMs }, 'stopping: no new connections, draining open ones');
    void pool.stop(drainMs).then(() => {
      log.info('rsp stopped');
      exit(log, EXIT_OK);
    });
  };
  // Explicit handlers also make rsp stop correctly as PID 1 in a container, where
  // a signal without a handler is ignored.
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.on('SIGHUP', () => log.warn('SIGHUP received; configuration reload is not supported yet'));

  log.info({ config: config.file, workers: workerCount }, 'starting workers');
  pool.start();
}

function exit(log: Logger, code: number): void {
  log.flush();
  process.exit(code);
}
