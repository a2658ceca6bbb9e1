// The floor of the benchmark: the simplest Node TCP proxy that is still correct.
// Round-robin over the backends, stream.pipe() both ways, which gives backpressure
// and passes a FIN on as a FIN. Any error closes both sockets. With --workers N
// above 1, N node:cluster workers accept from the shared socket themselves, as
// rsp's workers do by default, and each rotates over the backends on its own.
//   node bench/pipe-proxy.mjs --port 9000 --backends 127.0.0.1:8081,127.0.0.1:8082 [--workers 2]
import cluster from 'node:cluster';
import { createConnection, createServer } from 'node:net';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { port: { type: 'string' }, backends: { type: 'string' }, workers: { type: 'string', default: '1' } } });
const workers = Number(values.workers);
if (values.port === undefined || values.backends === undefined || !Number.isInteger(workers) || workers < 1) {
  console.error('usage: node bench/pipe-proxy.mjs --port <port> --backends host:port[,host:port...] [--workers <n>]');
  process.exit(2);
}

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => process.exit(0));
}

if (workers > 1 && cluster.isPrimary) {
  // Workers exit on their own when the primary's IPC channel closes.
  cluster.schedulingPolicy = cluster.SCHED_NONE;
  let listening = 0;
  for (let i = 0; i < workers; i++) {
    cluster.fork().on('listening', () => {
      if (++listening === workers) console.log(JSON.stringify({ msg: 'pipe proxy listening', port: Number(values.port), workers }));
    });
  }
  cluster.on('exit', () => process.exit(1));
} else {
  serve();
}

function serve() {
  const backends = values.backends.split(',').map((address) => {
    const colon = address.lastIndexOf(':');
    return { host: address.slice(0, colon), port: Number(address.slice(colon + 1)) };
  });
  let next = 0;

  const server = createServer({ allowHalfOpen: true }, (client) => {
    const backend = backends[next];
    next = (next + 1) % backends.length;

    // No client byte is read before the backend connection is open.
    client.pause();
    const upstream = createConnection({ ...backend, allowHalfOpen: true });
    const closeBoth = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', closeBoth);
    upstream.on('error', closeBoth);
    upstream.once('connect', () => {
      client.pipe(upstream);
      upstream.pipe(client);
    });
  });

  server.listen(Number(values.port), '127.0.0.1', () => {
    if (cluster.isPrimary) console.log(JSON.stringify({ msg: 'pipe proxy listening', port: server.address().port }));
  });
}
