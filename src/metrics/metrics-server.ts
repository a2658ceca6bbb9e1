// The primary's HTTP endpoint: /metrics (Prometheus text format, the whole
// cluster), /healthz (the primary is alive) and /readyz (workers listen and at
// least one backend is up).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Endpoint } from '../config/types.js';
import { formatEndpoint } from '../config/endpoint.js';

export interface MetricsServerHandlers {
  /** Renders /metrics; the returned promise must not wait on a worker for long. */
  renderMetrics(): Promise<{ contentType: string; body: string }>;
  /** Returns why rsp is not ready, or undefined when it is. */
  notReadyReason(): string | undefined;
  /** Called for a failed render; the response is a 500. */
  onRenderError(error: unknown): void;
}

/** Starts the server and resolves with its bound address; rejects when it cannot listen. */
export function startMetricsServer(endpoint: Endpoint, handlers: MetricsServerHandlers): Promise<{ server: Server; address: string }> {
  const server = createServer((request, response) => {
    void handleRequest(request, response, handlers);
  });
  // Scrapers keep connections alive; a short timeout keeps stale ones from piling up.
  server.keepAliveTimeout = 30_000;
  server.headersTimeout = 10_000;
  server.requestTimeout = 10_000;

  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: endpoint.host, port: endpoint.port }, () => {
      server.off('error', reject);
      const bound = server.address();
      const address =
        bound === null || typeof bound === 'string' ? formatEndpoint(endpoint) : formatEndpoint({ host: bound.address, port: bound.port });
      resolve({ server, address });
    });
  });
}

async function handleRequest(request: IncomingMessage, response: ServerResponse, handlers: MetricsServerHandlers): Promise<void> {
  const path = (request.url ?? '/').split('?')[0];
  if (request.method !== 'GET' && request.method !== 'HEAD') {
    reply(response, 405, 'method not allowed; use GET\n', { allow: 'GET, HEAD' });
    return;
  }
  switch (path) {
    case '/metrics':
      try {
        const { contentType, body } = await handlers.renderMetrics();
        reply(response, 200, body, { 'content-type': contentType });
      } catch (error) {
        handlers.onRenderError(error);
        reply(response, 500, 'failed to render metrics; see the rsp log\n');
      }
      return;
    case '/healthz':
      reply(response, 200, 'ok\n');
      return;
    case '/readyz': {
      const reason = handlers.notReadyReason();
      if (reason === undefined) reply(response, 200, 'ready\n');
      else reply(response, 503, `not ready: ${reason}\n`);
      return;
    }
    default:
      reply(response, 404, 'not found; try /metrics, /healthz or /readyz\n');
  }
}

function reply(response: ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void {
  response.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', ...headers });
  response.end(response.req.method === 'HEAD' ? undefined : body);
}
