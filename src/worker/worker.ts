// A worker process: waits for the config from the primary, opens one listener
// per service on the shared cluster socket, and drains when told to stop.
import cluster from 'node:cluster';
import { formatEndpoint } from '../config/endpoint.js';
import type { Config } from '../config/types.js';
import { isPrimaryMessage, type WorkerMessage } from '../ipc/messages.js';
import { createLogger, type Logger, type LogLevel } from '../log.js';
import { ServiceListener } from './service-listener.js';

export function runWorker(): void {
  const workerId = cluster.worker?.id ?? 0;
  const log = createLogger({ proc: 'worker', worker: workerId }, (process.env.RSP_LOG_LEVEL as LogLevel | undefined) ?? 'info');
  const state = new WorkerState(log);

  process.on('message', (message: unknown) => {
    if (!isPrimaryMessage(message)) return;
    switch (message.type) {
      case 'rsp:config':
        void state.start(message.config);
        break;
      case 'rsp:stop':
        void state.stop(message.drainMs);
        break;
    }
  });

  send({ type: 'rsp:ready' });

  // The primary owns the signals. A terminal's Ctrl-C or hang-up reaches the whole
  // process group, so workers ignore SIGINT and SIGHUP and wait for the primary's
  // stop message. A SIGTERM sent to one worker drains just that worker.
  process.on('SIGINT', () => {});
  process.on('SIGHUP', () => {});
  process.on('SIGTERM', () => void state.stop(state.drainMs()));

  // Without its primary a worker must not keep a listen socket open.
  process.on('disconnect', () => {
    log.error('lost the IPC channel to the primary; exiting');
    process.exit(1);
  });
}

class WorkerState {
  private readonly log: Logger;
  private listeners: ServiceListener[] = [];
  private config: Config | undefined;
  private stopping = false;

  constructor(log: Logger) {
    this.log = log;
  }

  drainMs(): number {
    return Math.max(0, ...(this.config?.services.map((service) => service.timeouts.drainMs) ?? [0]));
  }

  async start(config: Config): Promise<void> {
    if (this.config !== undefined) return;
    this.config = config;
    this.listeners = config.services.map((service) => new ServiceListener(service, this.log));
    await Promise.all(this.listeners.map((listener) => this.listen(listener)));
  }

  async stop(drainMs: number): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    const results = await Promise.all(this.listeners.map((listener) => listener.drain(drainMs)));
    const finished = results.reduce((sum, result) => sum + result.finished, 0);
    const cut = results.reduce((sum, result) => sum + result.cut, 0);
    this.log.info({ finished, cut }, 'worker drained; exiting');
    process.exit(0);
  }

  private async listen(listener: ServiceListener): Promise<void> {
    const configured = formatEndpoint(listener.config.listen);
    try {
      const address = await listener.listen();
      send({ type: 'rsp:listening', service: listener.config.name, address });
    } catch (error) {
      const errno = error as NodeJS.ErrnoException;
      send({
        type: 'rsp:listen-failed',
        service: listener.config.name,
        address: configured,
        code: errno.code ?? 'UNKNOWN',
        message: errno.message,
      });
    }
  }
}

function send(message: WorkerMessage): void {
  process.send?.(message);
}
