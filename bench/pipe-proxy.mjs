// The floor of the benchmark: the simplest Node TCP proxy that is still correct.
// One process, round-robin over the backends, stream.pipe() both ways, which gives
// backpressure and passes a FIN on as a FIN. Any error closes both sockets.
//   node bench/pipe-proxy.mjs --port 9000 --backends 127.0.0.1:8081,127.0.0.1:8082
import { createConnection, createServer } from 'node:net';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { port: { type: 'string' }, backends: { type: 'string' } } });
if (values.port === undefined || values.backends === undefined) {
  console.error('usage: node bench/pipe-proxy.mjs --port <port> --backends host:port[,host:port...]');
  process.exit(2);
}

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
  console.log(JSON.stringify({ msg: 'pipe proxy listening', port: server.address().port }));
});

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => process.exit(0));
}
