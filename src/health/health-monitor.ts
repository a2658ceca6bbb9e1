// The primary's health view of every backend: runs the active checks on unref'd
// timers, takes the passive reports of workers, and emits a change event on each
// flip. State is keyed by service and backend address, so it survives reloads.
import { EventEmitter } from 'node:events';
import type { BackendConfig, Config, HealthCheckConfig, ServiceConfig } from '../config/types.js';
import { BackendHealth, type HealthFlip } from './backend-health.js';
import { runTcpCheck } from './tcp-check.js';

export interface BackendState {
  readonly service: string;
  readonly backend: string;
  readonly up: boolean;
  /**
   * Connection failures were reported since the last success. Workers then report
   * their next clean connection to this backend, so successes seen by any worker
   * break the run of failures.
   */
  readonly failing: boolean;
}

export interface HealthChange extends BackendState {
  readonly reason: string;
  /** Backends of the service that are up after this change. */
  readonly upCount: number;
  readonly total: number;
}

interface Entry {
  service: ServiceConfig;
  backend: BackendConfig;
  readonly health: BackendHealth;
  checkTimer: NodeJS.Timeout | undefined;
  cooldownTimer: NodeJS.Timeout | undefined;
  /** Bumped whenever the entry's schedule restarts, so a check started under an old schedule is ignored. */
  generation: number;
}

export class HealthMonitor extends EventEmitter<{ change: [change: HealthChange]; failingChange: [] }> {
  private readonly entries = new Map<string, Entry>();
  private stopped = false;

  /** Starts checks for a new config: kept backends keep their state, removed ones are forgotten. */
  apply(config: Config): void {
    const wanted = new Set<string>();
    for (const service of config.services) {
      for (const backend of service.backends) {
        const key = entryKey(service.name, backend.address);
        wanted.add(key);
        let entry = this.entries.get(key);
        // A kept backend whose check settings did not change keeps its check loop,
        // so frequent reloads or DNS changes do not keep resetting the schedule.
        const restart = entry === undefined || !sameHealthCheck(entry.service.healthCheck, service.healthCheck);
        if (entry === undefined) {
          entry = { service, backend, health: new BackendHealth(), checkTimer: undefined, cooldownTimer: undefined, generation: 0 };
          this.entries.set(key, entry);
        }
        entry.service = service;
        entry.backend = backend;
        if (restart) this.schedule(entry, true);
      }
    }
    for (const [key, entry] of this.entries) {
      if (wanted.has(key)) continue;
      this.cancel(entry);
      this.entries.delete(key);
    }
    for (const entry of this.entries.values()) this.releaseWithoutChecks(entry);
  }

  /**
   * Brings back a backend that is down while its service has no active checks (a
   * reload turned them off): through the passive cool-down, or at once when passive
   * checks are off too.
   */
  private releaseWithoutChecks(entry: Entry): void {
    if (entry.health.up || entry.service.healthCheck !== null || entry.cooldownTimer !== undefined) return;
    const passive = entry.service.passiveCheck;
    if (passive === null) {
      const flip = entry.health.endCooldown();
      if (flip !== undefined) this.emitChange(entry, { up: true, reason: 'health checks turned off' });
      return;
    }
    this.startCooldown(entry, passive.cooldownMs);
  }

  private startCooldown(entry: Entry, cooldownMs: number): void {
    clearTimeout(entry.cooldownTimer);
    entry.cooldownTimer = setTimeout(() => {
      entry.cooldownTimer = undefined;
      const recovered = entry.health.endCooldown();
      if (recovered !== undefined) this.emitChange(entry, recovered);
    }, cooldownMs);
    entry.cooldownTimer.unref();
  }

  /** Records a connection outcome a worker saw; `reason` is a close reason such as `refused`. */
  recordTraffic(service: string, backend: string, ok: boolean, reason: string): void {
    const entry = this.entries.get(entryKey(service, backend));
    const passive = entry?.service.passiveCheck;
    if (entry === undefined || passive === null || passive === undefined) return;
    const wasFailing = entry.health.failingOnTraffic;
    const flip = entry.health.recordTraffic(ok, reason, passive);
    if (flip === undefined) {
      if (entry.health.failingOnTraffic !== wasFailing) this.emit('failingChange');
      return;
    }
    this.emitChange(entry, flip);
    if (!flip.up && entry.service.healthCheck === null) this.startCooldown(entry, passive.cooldownMs);
  }

  states(): BackendState[] {
    return [...this.entries.values()].map((entry) => ({
      service: entry.service.name,
      backend: entry.backend.address,
      up: entry.health.up,
      failing: entry.health.failingOnTraffic,
    }));
  }

  /** Returns whether at least one backend of any service is up. */
  anyUp(): boolean {
    for (const entry of this.entries.values()) if (entry.health.up) return true;
    return false;
  }

  stop(): void {
    this.stopped = true;
    for (const entry of this.entries.values()) this.cancel(entry);
  }

  /** (Re)starts the check loop of an entry; the first check is spread over one interval. */
  private schedule(entry: Entry, restart: boolean): void {
    const check = entry.service.healthCheck;
    if (restart) {
      clearTimeout(entry.checkTimer);
      entry.checkTimer = undefined;
      entry.generation++;
    }
    if (check === null || this.stopped) return;
    const generation = entry.generation;
    const delayMs = restart ? Math.floor(Math.random() * check.intervalMs) : check.intervalMs;
    entry.checkTimer = setTimeout(() => {
      entry.checkTimer = undefined;
      void runTcpCheck(entry.backend, check).then((result) => {
        if (entry.generation !== generation || this.stopped) return;
        const flip = entry.health.recordCheck(result.ok, result.reason, check);
        if (flip !== undefined) this.emitChange(entry, flip);
        this.schedule(entry, false);
      });
    }, delayMs);
    entry.checkTimer.unref();
  }

  private cancel(entry: Entry): void {
    clearTimeout(entry.checkTimer);
    clearTimeout(entry.cooldownTimer);
    entry.checkTimer = undefined;
    entry.cooldownTimer = undefined;
  }

  private emitChange(entry: Entry, flip: HealthFlip): void {
    const siblings = [...this.entries.values()].filter((other) => other.service.name === entry.service.name);
    this.emit('change', {
      service: entry.service.name,
      backend: entry.backend.address,
      up: flip.up,
      failing: entry.health.failingOnTraffic,
      reason: flip.reason,
      upCount: siblings.filter((other) => other.health.up).length,
      total: siblings.length,
    });
  }
}

function sameHealthCheck(a: HealthCheckConfig | null, b: HealthCheckConfig | null): boolean {
  if (a === null || b === null) return a === b;
  return (
    a.intervalMs === b.intervalMs &&
    a.timeoutMs === b.timeoutMs &&
    a.rise === b.rise &&
    a.fall === b.fall &&
    a.send === b.send &&
    a.expect === b.expect
  );
}

function entryKey(service: string, backend: string): string {
  return `${service}\u0000${backend}`;
}
