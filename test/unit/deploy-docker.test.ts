// The Dockerfile, .dockerignore and config/container.lua: the image's ports, probe,
// command line and user agree with the config it bakes in.
// scripts/verify-dockerfile.mjs replays the recipe itself; these are file checks.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ConfigError } from '../../src/errors.js';
import { loadLuaConfig, readRepoFile } from '../deploy/files.js';

interface Instruction {
  readonly keyword: string;
  readonly args: string;
}

/** Splits a Dockerfile into instructions, joining continuation lines and dropping comments. */
function parseDockerfile(text: string): Instruction[] {
  const instructions: Instruction[] = [];
  let pending = '';
  for (const line of text.split('\n')) {
    if (/^\s*#/.test(line) || (pending === '' && line.trim() === '')) continue;
    if (line.endsWith('\\')) {
      pending += `${line.slice(0, -1)} `;
      continue;
    }
    const match = /^\s*(\S+)\s*([\s\S]*)$/.exec(pending + line);
    instructions.push({ keyword: (match?.[1] ?? '').toUpperCase(), args: (match?.[2] ?? '').trim() });
    pending = '';
  }
  return instructions;
}

/** The instructions of each stage, keyed by the stage name given with `AS`. */
function stagesOf(instructions: readonly Instruction[]): Map<string, Instruction[]> {
  const stages = new Map<string, Instruction[]>();
  let current: Instruction[] | undefined;
  for (const instruction of instructions) {
    if (instruction.keyword === 'FROM') {
      current = [instruction];
      stages.set(/\sAS\s+(\S+)$/i.exec(instruction.args)?.[1] ?? String(stages.size), current);
    } else {
      current?.push(instruction);
    }
  }
  return stages;
}

const BACKENDS_ENV = { RSP_BACKENDS: 'web1:80, web2:8080' };
const containerLua = readRepoFile('config/container.lua');
const containerConfig = loadLuaConfig(containerLua, BACKENDS_ENV);
const instructions = parseDockerfile(readRepoFile('Dockerfile'));
const stages = stagesOf(instructions);
const runtime = [...stages.values()].at(-1) ?? [];

function argsOf(stage: readonly Instruction[], keyword: string): string[] {
  return stage.filter((instruction) => instruction.keyword === keyword).map((instruction) => instruction.args);
}

describe('Dockerfile', () => {
  test('builds in one stage, runs in another', () => {
    assert.deepEqual([...stages.keys()], ['build', 'runtime']);
    const build = stages.get('build') ?? [];
    assert.deepEqual(argsOf(build, 'RUN'), ['npm ci --no-audit --no-fund', 'npm run build']);
    assert.deepEqual(argsOf(runtime, 'RUN'), ['npm ci --omit=dev --no-audit --no-fund && npm cache clean --force']);
    assert.ok(argsOf(runtime, 'COPY').includes('--from=build /app/dist/src ./dist/src'));
  });

  test('both stages use the Node 20 base', () => {
    const baseArg = instructions.find((instruction) => instruction.keyword === 'ARG')?.args ?? '';
    assert.match(baseArg, /^NODE_IMAGE=node:20-[a-z]+-slim$|^NODE_IMAGE=node:20-alpine$/);
    for (const [name, stage] of stages) assert.match(stage[0]?.args ?? '', /^\$\{NODE_IMAGE\} AS /, `stage ${name}`);
  });

  test('runs as node with the baked-in config', () => {
    assert.deepEqual(argsOf(runtime, 'USER'), ['node']);
    assert.ok(argsOf(runtime, 'COPY').includes('config/container.lua /etc/rsp/site.lua'));
    assert.deepEqual(JSON.parse(argsOf(runtime, 'ENTRYPOINT')[0] ?? 'null'), ['node', '/app/dist/src/main.js']);
    assert.deepEqual(JSON.parse(argsOf(runtime, 'CMD')[0] ?? 'null'), ['/etc/rsp/site.lua']);
    assert.deepEqual(argsOf(runtime, 'STOPSIGNAL'), ['SIGTERM']);
  });

  test('has no init wrapper', () => {
    const text = readRepoFile('Dockerfile');
    assert.doesNotMatch(text, /tini|dumb-init|--init/);
  });

  test('exposes the ports of container.lua', () => {
    const ports = (argsOf(runtime, 'EXPOSE')[0] ?? '').split(/\s+/).map(Number);
    assert.deepEqual(ports, [containerConfig.services[0]?.listen.port, containerConfig.metrics?.port]);
  });

  test('health check fetches /healthz on the metrics port', () => {
    const healthcheck = argsOf(runtime, 'HEALTHCHECK')[0] ?? '';
    const command = JSON.parse(healthcheck.slice(healthcheck.indexOf('CMD ') + 4)) as string[];
    assert.equal(command[0], 'node');
    assert.ok(command[2]?.includes(`fetch('http://127.0.0.1:${containerConfig.metrics?.port}/healthz')`), command[2]);
  });
});

describe('.dockerignore', () => {
  test('lets through exactly what COPY reads', () => {
    const rules = readRepoFile('.dockerignore')
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => line !== '' && !line.startsWith('#'));
    assert.equal(rules[0], '*', 'the file should start by excluding everything');
    const allowed = rules.slice(1).map((rule) => rule.replace(/^!/, '').replace(/\/$/, ''));

    const copied = instructions
      .filter((instruction) => instruction.keyword === 'COPY' && !instruction.args.startsWith('--from'))
      .flatMap((instruction) => instruction.args.split(/\s+/).slice(0, -1))
      .map((source) => source.split('/')[0] ?? source);
    assert.deepEqual([...new Set(copied)].sort(), [...allowed].sort());
  });
});

describe('container.lua', () => {
  test('listens on 8000 and 9100, all interfaces', () => {
    const service = containerConfig.services[0];
    assert.deepEqual(service?.listen, { host: '0.0.0.0', port: 8000 });
    assert.deepEqual(containerConfig.metrics, { host: '0.0.0.0', port: 9100 });
  });

  test('reads backends from RSP_BACKENDS', () => {
    const addresses = containerConfig.services[0]?.backends.map((backend) => backend.address);
    assert.deepEqual(addresses, ['web1:80', 'web2:8080']);
    assert.equal(containerConfig.workers, null);
  });

  test('reads workers from RSP_WORKERS', () => {
    assert.equal(loadLuaConfig(containerLua, { ...BACKENDS_ENV, RSP_WORKERS: '3' }).workers, 3);
    assert.throws(() => loadLuaConfig(containerLua, { ...BACKENDS_ENV, RSP_WORKERS: 'two' }), /RSP_WORKERS must be a whole number, got "two"/);
  });

  test('rejects a missing RSP_BACKENDS', () => {
    const saved = process.env.RSP_BACKENDS;
    delete process.env.RSP_BACKENDS;
    try {
      assert.throws(
        () => loadLuaConfig(containerLua),
        (error: unknown) => error instanceof ConfigError && /RSP_BACKENDS is not set/.test(error.message),
      );
    } finally {
      if (saved !== undefined) process.env.RSP_BACKENDS = saved;
    }
  });
});
