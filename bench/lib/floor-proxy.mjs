// The command line and process model that the floor proxies share
// (bench/pipe-proxy.mjs and bench/handle-proxy.mjs): --port, --backends and
// --workers, exit on SIGINT and SIGTERM, and with --workers N above 1, N
// node:cluster workers that accept from the shared socket themselves, as rsp's
// workers do by default.
import cluster from 'node:cluster';
import { parseArgs } from 'node:util';

/**
 * Parses the command line of the proxy at `script` (the path for the usage line)
 * and runs `serve` in every process that accepts connections. `serve` receives
 * the port, the backends as `{ host, port }` and `onListening(port)`, which it
 * calls once its server listens. `name` names the proxy in its log line.
 */
export function runFloorProxy(script, name, serve) {
  const { values } = parseArgs({ options: { port: { type: 'string' }, backends: { type: 'string' }, workers: { type: 'string', default: '1' } } });
  const workers = Number(values.workers);
  if (values.port === undefined || values.backends === undefined || !Number.isInteger(workers) || workers < 1) {
    console.error(`usage: node ${script} --port <port> --backends host:port[,host:port...] [--workers <n>]`);
    process.exit(2);
  }

  for (const signal of ['SIGINT', 'SIGTERM']) {
    process.on(signal, () => process.exit(0));
  }

  const port = Number(values.port);
  if (workers > 1 && cluster.isPrimary) {
    // Workers exit on their own when the primary's IPC channel closes.
    cluster.schedulingPolicy = cluster.SCHED_NONE;
    let listening = 0;
    for (let i = 0; i < workers; i++) {
      cluster.fork().on('listening', () => {
        if (++listening === workers) console.log(JSON.stringify({ msg: `${name} listening`, port, workers }));
      });
    }
    cluster.on('exit', () => process.exit(1));
    return;
  }

  const backends = values.backends.split(',').map((address) => {
    const colon = address.lastIndexOf(':');
    return { host: address.slice(0, colon), port: Number(address.slice(colon + 1)) };
  });
  const onListening = (listenPort) => {
    if (cluster.isPrimary) console.log(JSON.stringify({ msg: `${name} listening`, port: listenPort }));
  };
  serve({ port, backends, onListening });
}
