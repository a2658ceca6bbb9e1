import type { Algorithm } from '../config/types.js';
import type { BalancedBackend, Balancer } from './balancer.js';
import { LeastConnections } from './least-connections.js';
import { RoundRobin } from './round-robin.js';

/** Builds the balancer that implements `algorithm` over `backends`. */
export function createBalancer(algorithm: Algorithm, backends: readonly BalancedBackend[]): Balancer {
  switch (algorithm) {
    case 'round_robin':
      return new RoundRobin(backends);
    case 'least_connections':
      return new LeastConnections(backends);
  }
}
