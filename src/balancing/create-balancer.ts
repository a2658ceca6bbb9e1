import type { Algorithm } from '../config/types.js';
import type { BalancedBackend, Balancer } from './balancer.js';
import { LeastConnections } from './least-connections.js';
import { RoundRobin } from './round-robin.js';

/**
 * Builds the balancer that implements `algorithm` over `backends`. `startOffset`
 * (the worker's slot) shifts where the rotation starts, so workers that take
 * connections in turn also send them to backends in turn.
 */
export function createBalancer(algorithm: Algorithm, backends: readonly BalancedBackend[], startOffset = 0): Balancer {
  switch (algorithm) {
    case 'round_robin':
      return new RoundRobin(backends, startOffset);
    case 'least_connections':
      return new LeastConnections(backends, startOffset);
  }
}
