// The floor of the benchmark: the simplest Node TCP proxy that is still correct.
// Round-robin over the backends, stream.pipe() both ways, which gives backpressure
// and passes a FIN on as a FIN. Any error closes both sockets. With --workers N
// above 1, N node:cluster workers accept from the shared socket themselves, as
// rsp's workers do by default, and each rotates over the backends on its own.
//   node bench/pipe-proxy.mjs --port 9000 --backends 127.0.0.1:8081,127.0.0.1:8082 [--workers 2]
import { createConnection, createServer } from 'node:net';
import { runFloorProxy } from './lib/floor-proxy.mjs';

runFloorProxy('bench/pipe-proxy.mjs', 'pipe proxy', serve);

function serve({ port, backends, onListening }) {
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

  server.listen(port, '127.0.0.1', () => onListening(server.address().port));
}
