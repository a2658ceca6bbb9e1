// The systemd unit (deploy/systemd/rsp.service): signals and timeouts match rsp's
// behaviour, and the hardening leaves rsp what it needs.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, test } from 'node:test';
import { DEFAULT_TIMEOUTS } from '../../src/config/types.js';
import { loadLuaConfig, readRepoFile, repoPath } from '../deploy/files.js';

const UNIT_FILE = 'deploy/systemd/rsp.service';

/** Reads a unit file into `Section.Key` → values, in file order (a key may repeat). */
function parseUnit(text: string): Map<string, string[]> {
  const settings = new Map<string, string[]>();
  let section = '';
  for (const rawLine of text.split('\n')) {
    const line = rawLine.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header !== null) {
      section = header[1] ?? '';
      continue;
    }
    const equals = line.indexOf('=');
    const key = `${section}.${line.slice(0, equals)}`;
    settings.set(key, [...(settings.get(key) ?? []), line.slice(equals + 1)]);
  }
  return settings;
}

const unit = parseUnit(readRepoFile(UNIT_FILE));

function setting(key: string): string | undefined {
  return unit.get(`Service.${key}`)?.at(-1);
}

function seconds(value: string | undefined): number {
  const match = /^(\d+)s?$/.exec(value ?? '');
  return match === null ? Number.NaN : Number(match[1]);
}

describe('systemd unit', () => {
  test('starts rsp with the site config', () => {
    assert.equal(setting('ExecStart'), '/usr/bin/node /opt/rsp/dist/src/main.js /etc/rsp/site.lua');
    assert.equal(setting('ExecStartPre'), '/usr/bin/node /opt/rsp/dist/src/main.js --check /etc/rsp/site.lua');
  });

  test('reloads with SIGHUP, stops with SIGTERM', () => {
    assert.equal(setting('ExecReload'), '/bin/kill -HUP $MAINPID');
    assert.equal(setting('KillSignal'), 'SIGTERM');
    // mixed: SIGTERM to the primary only, which drains its workers itself.
    assert.equal(setting('KillMode'), 'mixed');
    assert.equal(setting('Restart'), 'on-failure');
  });

  test('stop timeout exceeds the drain timeouts', () => {
    const example = loadLuaConfig(readRepoFile('config/example.lua'));
    const drains = [DEFAULT_TIMEOUTS.drainMs, ...example.services.map((service) => service.timeouts.drainMs)].map((ms) => ms / 1000);
    const timeout = seconds(setting('TimeoutStopSec'));
    assert.ok(timeout > Math.max(...drains), `TimeoutStopSec ${timeout} <= drain ${Math.max(...drains)} s`);
  });

  test('runs hardened and unprivileged', () => {
    for (const [key, value] of [
      ['DynamicUser', 'yes'],
      ['NoNewPrivileges', 'yes'],
      ['ProtectSystem', 'strict'],
      ['ProtectHome', 'yes'],
      ['PrivateTmp', 'yes'],
      ['CapabilityBoundingSet', ''],
    ]) {
      assert.equal(setting(key as string), value, key);
    }
  });

  test('keeps what node and cluster need', () => {
    assert.ok(setting('RestrictAddressFamilies')?.split(/\s+/).includes('AF_UNIX'), 'cluster IPC needs AF_UNIX');
    assert.notEqual(setting('MemoryDenyWriteExecute'), 'yes', "V8's JIT needs writable executable memory");
    assert.equal(setting('SystemCallErrorNumber'), 'EPERM', 'a filtered call must fail, not kill rsp');
  });

  const analyzer = spawnSync('systemd-analyze', ['--version']).status === 0;
  const skip = !analyzer ? 'systemd-analyze is not installed' : !existsSync('/usr/bin/node') ? 'ExecStart needs /usr/bin/node' : false;
  test('passes systemd-analyze verify', { skip }, () => {
    const result = spawnSync('systemd-analyze', ['verify', repoPath(UNIT_FILE)], { encoding: 'utf8' });
    assert.equal(result.stderr + result.stdout, '');
    assert.equal(result.status, 0);
  });
});
