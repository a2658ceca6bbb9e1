import type { Endpoint } from './types.js';

/** Formats an endpoint as `host:port`, with an IPv6 host in brackets (`[::1]:8000`). */
export function formatEndpoint(endpoint: Endpoint): string {
  return endpoint.host.includes(':') ? `[${endpoint.host}]:${endpoint.port}` : `${endpoint.host}:${endpoint.port}`;
}
