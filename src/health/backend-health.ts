// The health state of one backend: consecutive active check results with rise
// and fall thresholds, and consecutive failures seen on real traffic.
import type { HealthCheckConfig, PassiveCheckConfig } from '../config/types.js';

/** A change of state, returned only when the backend flips. */
export interface HealthFlip {
  readonly up: boolean;
  readonly reason: string;
}

export class BackendHealth {
  /** A backend starts up, so a fresh rsp serves at once; checks take it out if they fail. */
  up = true;
  private checkSuccesses = 0;
  private checkFailures = 0;
  private passiveFailures = 0;

  /** Whether connection failures were reported since the last success, so a success would matter. */
  get failingOnTraffic(): boolean {
    return this.passiveFailures > 0;
  }

  /** Records an active check result; returns the flip when it crossed `rise` or `fall`. */
  recordCheck(ok: boolean, reason: string, check: HealthCheckConfig): HealthFlip | undefined {
    if (ok) {
      this.checkFailures = 0;
      this.checkSuccesses++;
      if (!this.up && this.checkSuccesses >= check.rise) return this.flip(true, `${this.checkSuccesses} checks passed in a row`);
      return undefined;
    }
    this.checkSuccesses = 0;
    this.checkFailures++;
    if (this.up && this.checkFailures >= check.fall) return this.flip(false, `${this.checkFailures} checks failed in a row: ${reason}`);
    return undefined;
  }

  /** Records a connection outcome seen by a worker; returns the flip when failures reached the threshold. */
  recordTraffic(ok: boolean, reason: string, passive: PassiveCheckConfig): HealthFlip | undefined {
    if (ok) {
      this.passiveFailures = 0;
      return undefined;
    }
    this.passiveFailures++;
    if (this.up && this.passiveFailures >= passive.failures) {
      return this.flip(false, `${this.passiveFailures} connection failures in a row: ${reason}`);
    }
    return undefined;
  }

  /** Marks the backend up after a passive cool-down (used only when active checks are off). */
  endCooldown(): HealthFlip | undefined {
    if (this.up) return undefined;
    return this.flip(true, 'passive cool-down elapsed');
  }

  private flip(up: boolean, reason: string): HealthFlip {
    this.up = up;
    this.checkSuccesses = 0;
    this.checkFailures = 0;
    this.passiveFailures = 0;
    return { up, reason };
  }
}
