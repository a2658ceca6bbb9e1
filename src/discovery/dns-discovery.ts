// DNS service discovery, run in the primary: each backend with `resolve` is
// resolved periodically (A and AAAA records), and every address becomes a backend
// of its own in the effective config that workers and health checks use.
import { Resolver } from 'node:dns/promises';
import { EventEmitter } from 'node:events';
import { formatEndpoint } from '../config/endpoint.js';
import type { BackendConfig, Config, ServiceConfig } from '../config/types.js';

/** How long one resolution may take before it counts as failed. */
const RESOLVE_TIMEOUT_MS = 2_000;

export interface ResolutionEvent {
  readonly service: string;
  /** The backend as configured, `hostname:port`. */
  readonly backend: string;
  /** The addresses now in use, `ip:port`. */
  readonly addresses: readonly string[];
  /** Set when the resolution failed; the last known addresses stay in use. */
  readonly error: Error | undefined;
}

interface Target {
  readonly service: ServiceConfig;
  readonly backend: BackendConfig;
  /** Last resolved IP addresses; undefined until the first success. */
  addresses: string[] | undefined;
  /** Last A and AAAA results, kept apart so a failure of one lookup keeps that family's addresses. */
  ipv4: string[];
  ipv6: string[];
  /** Text of the last failure, so a repeated failure is reported once. */
  lastError: string | undefined;
  timer: NodeJS.Timeout | undefined;
}

export interface DiscoveryEvents {
  /** The effective config changed because a name resolved to other addresses. */
  change: [effective: Config];
  /** A resolution result that differs from the previous one (new addresses, a new error, or a recovery). */
  resolution: [event: ResolutionEvent];
}

export class DnsDiscovery extends EventEmitter<DiscoveryEvents> {
  private config: Config | undefined;
  private resolver = new Resolver({ timeout: RESOLVE_TIMEOUT_MS, tries: 1 });
  private targets = new Map<string, Target>();
  private stopped = false;

  /**
   * Switches to `config`: names resolved before keep their addresses, and every
   * name is resolved again at once. Resolves when those first resolutions finished.
   */
  async apply(config: Config): Promise<void> {
    this.config = config;
    this.resolver = new Resolver({ timeout: RESOLVE_TIMEOUT_MS, tries: 1 });
    if (config.resolvers !== null) this.resolver.setServers([...config.resolvers]);

    const previous = this.targets;
    this.targets = new Map();
    for (const service of config.services) {
      for (const backend of service.backends) {
        if (!backend.resolve) continue;
        const key = targetKey(service.name, backend.address);
        const old = previous.get(key);
        this.targets.set(key, {
          service,
          backend,
          addresses: old?.addresses,
          ipv4: old?.ipv4 ?? [],
          ipv6: old?.ipv6 ?? [],
          lastError: old?.lastError,
          timer: undefined,
        });
      }
    }
    for (const target of previous.values()) clearTimeout(target.timer);
    await Promise.all([...this.targets.values()].map((target) => this.resolveTarget(target, false)));
  }

  /** Returns the config with each resolved backend replaced by one backend per address. */
  effective(): Config {
    const config = this.config;
    if (config === undefined) throw new Error('DnsDiscovery.effective() called before apply()');
    if (this.targets.size === 0) return config;
    return {
      ...config,
      services: config.services.map((service) => ({
        ...service,
        backends: dropRepeatedAddresses(service.backends.flatMap((backend) => this.expand(service, backend))),
      })),
    };
  }

  stop(): void {
    this.stopped = true;
    for (const target of this.targets.values()) clearTimeout(target.timer);
  }

  private expand(service: ServiceConfig, backend: BackendConfig): BackendConfig[] {
    if (!backend.resolve) return [backend];
    const addresses = this.targets.get(targetKey(service.name, backend.address))?.addresses;
    // Until the first success the hostname itself stays a backend, which the OS resolver handles at connect time.
    if (addresses === undefined) return [backend];
    return addresses.map((ip) => ({
      ...backend,
      host: ip,
      address: formatEndpoint({ host: ip, port: backend.port }),
      resolve: false,
    }));
  }

  private async resolveTarget(target: Target, emitChange: boolean): Promise<void> {
    if (this.stopped || this.targets.get(targetKey(target.service.name, target.backend.address)) !== target) return;
    const host = target.backend.host;
    const [v4, v6] = await Promise.allSettled([this.resolver.resolve4(host), this.resolver.resolve6(host)]);
    if (this.stopped || this.targets.get(targetKey(target.service.name, target.backend.address)) !== target) return;

    // A lookup that failed (timeout, server failure) keeps its family's last
    // addresses. A lookup that returned "no such records" clears them.
    const ipv4 = lookupResult(v4);
    const ipv6 = lookupResult(v6);
    if (ipv4 !== undefined) target.ipv4 = ipv4;
    if (ipv6 !== undefined) target.ipv6 = ipv6;
    const failure = [v4, v6].find((result) => result.status === 'rejected' && !isEmptyAnswer(result.reason));
    const found = [...target.ipv4, ...target.ipv6].sort();
    if (found.length > 0 && failure === undefined) {
      const changed = target.addresses === undefined || target.addresses.join(',') !== found.join(',');
      const recovered = target.lastError !== undefined;
      target.addresses = found;
      target.lastError = undefined;
      if (changed || recovered) this.report(target, undefined);
      if (changed && emitChange) this.emit('change', this.effective());
    } else {
      // Either a lookup failed, or neither family has records: the last known addresses stay.
      let reason: unknown;
      if (failure?.status === 'rejected') reason = failure.reason;
      else if (v4.status === 'rejected') reason = v4.reason;
      const error = reason instanceof Error ? reason : new Error(`no A or AAAA records for ${host}`);
      const text = `${(error as NodeJS.ErrnoException).code ?? ''} ${error.message}`;
      if (text !== target.lastError) {
        target.lastError = text;
        this.report(target, error);
      }
    }

    target.timer = setTimeout(() => void this.resolveTarget(target, true), target.service.resolveIntervalMs);
    target.timer.unref();
  }

  private report(target: Target, error: Error | undefined): void {
    this.emit('resolution', {
      service: target.service.name,
      backend: target.backend.address,
      addresses: (target.addresses ?? []).map((ip) => formatEndpoint({ host: ip, port: target.backend.port })),
      error,
    });
  }
}

/** DNS answers that mean "the name has no such records", as opposed to a failed lookup. */
const EMPTY_ANSWER_CODES = new Set(['ENODATA', 'ENOTFOUND']);

function isEmptyAnswer(reason: unknown): boolean {
  return EMPTY_ANSWER_CODES.has(String((reason as NodeJS.ErrnoException | undefined)?.code));
}

/** Returns the addresses of one lookup, [] for a result with no records, or undefined when the lookup failed. */
function lookupResult(result: PromiseSettledResult<string[]>): string[] | undefined {
  if (result.status === 'fulfilled') return result.value;
  return isEmptyAnswer(result.reason) ? [] : undefined;
}

/** Keeps the first backend of each address: two names (or a name and an IP backend) can yield the same address. */
function dropRepeatedAddresses(backends: BackendConfig[]): BackendConfig[] {
  const seen = new Set<string>();
  return backends.filter((backend) => {
    if (seen.has(backend.address)) return false;
    seen.add(backend.address);
    return true;
  });
}

function targetKey(service: string, backend: string): string {
  return `${service}\u0000${backend}`;
}
