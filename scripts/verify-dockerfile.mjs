#!/usr/bin/env node
// Checks the Dockerfile without a container engine. It replays the recipe on this
// machine and runs the result the way the image's ENTRYPOINT and CMD would:
//
//   1. lint the Dockerfile with dockerfile-utils (installed from npm into a temp dir);
//   2. copy the build context (the files of HEAD, or of the working tree with
//      --working-tree), filtered by .dockerignore;
//   3. replay each stage's WORKDIR, ENV, COPY and RUN steps in a directory of its
//      own, where an image path such as /app maps to <stage dir>/app;
//   4. in a new network namespace, start a TCP echo backend on 127.0.0.1, then the
//      final stage's command as PID 1 of a new PID namespace, as the image's USER,
//      with RSP_BACKENDS pointing at the backend. Run the HEALTHCHECK command, check
//      /readyz and pass one connection through rsp. Then send the STOPSIGNAL and
//      expect exit status 0.
//
// Usage: node scripts/verify-dockerfile.mjs [--working-tree] [--keep]
// Needs root (namespaces and the user switch), git, util-linux unshare, iproute2
// and the npm registry. No base image is pulled: this machine's Node.js, npm and
// operating system stand in for the image's, and the script prints what that leaves
// unverified.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, posix } from 'node:path';
import { clearTimeout, setTimeout } from 'node:timers';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const scriptPath = fileURLToPath(import.meta.url);
const repoRoot = dirname(dirname(scriptPath));

/** dockerfile-utils is the linter of the Docker language server for VS Code; it runs offline once installed. */
const LINTER = 'dockerfile-utils@0.16.3';
/** The official node images create the user node with uid and gid 1000. */
const IMAGE_USERS = new Map([
  ['root', 0],
  ['node', 1000],
]);
const START_TIMEOUT_MS = 20_000;
const STOP_TIMEOUT_MS = 30_000;
const RUN_STEP_TIMEOUT_MS = 120_000;

class VerifyError extends Error {
  name = 'VerifyError';
}

function heading(text) {
  console.log(`\n==> ${text}`);
}

/** Runs a command with inherited output; throws VerifyError when it fails. */
function run(command, args, options = {}) {
  const result = spawnSync(command, args, { stdio: 'inherit', ...options });
  if (result.error !== undefined) throw new VerifyError(`${command} failed to start: ${result.error.message}`);
  if (result.status !== 0) {
    throw new VerifyError(`${command} ${args.join(' ')} exited with ${result.status ?? result.signal}`);
  }
}

// ---------------------------------------------------------------------------
// Dockerfile parsing: the instructions this project's Dockerfile uses, nothing more.

/** Splits the Dockerfile into instructions, joining `\` continuation lines and dropping comments. */
function parseInstructions(text) {
  const instructions = [];
  let pending = '';
  let startLine = 0;
  for (const [index, rawLine] of text.split('\n').entries()) {
    const line = rawLine.replace(/\r$/, '');
    if (/^\s*#/.test(line) || (pending === '' && line.trim() === '')) continue;
    if (pending === '') startLine = index + 1;
    if (line.endsWith('\\')) {
      pending += `${line.slice(0, -1)} `;
      continue;
    }
    pending += line;
    const match = /^\s*(\S+)\s*([\s\S]*)$/.exec(pending);
    instructions.push({ keyword: match[1].toUpperCase(), args: match[2].trim(), line: startLine });
    pending = '';
  }
  if (pending !== '') throw new VerifyError(`Dockerfile line ${startLine}: the last instruction ends with a continuation backslash`);
  return instructions;
}

/** Replaces ${NAME} and $NAME with the value of a global ARG. */
function substituteArgs(text, args, line) {
  return text.replace(/\$\{(\w+)\}|\$(\w+)/g, (_match, braced, bare) => {
    const name = braced ?? bare;
    if (!args.has(name)) throw new VerifyError(`Dockerfile line ${line}: ${name} is not a global ARG with a default`);
    return args.get(name);
  });
}

/** Groups the instructions into stages, each with its base image and steps. */
function parseStages(text) {
  const globalArgs = new Map();
  const stages = [];
  for (const instruction of parseInstructions(text)) {
    if (instruction.keyword === 'ARG' && stages.length === 0) {
      const [name, ...value] = instruction.args.split('=');
      globalArgs.set(name, value.join('='));
      continue;
    }
    if (instruction.keyword === 'FROM') {
      const match = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(instruction.args);
      if (match === null) throw new VerifyError(`Dockerfile line ${instruction.line}: cannot read FROM ${instruction.args}`);
      const image = substituteArgs(match[1], globalArgs, instruction.line);
      stages.push({ name: match[2] ?? String(stages.length), image, steps: [] });
      continue;
    }
    if (stages.length === 0) throw new VerifyError(`Dockerfile line ${instruction.line}: ${instruction.keyword} comes before the first FROM`);
    stages.at(-1).steps.push(instruction);
  }
  if (stages.length === 0) throw new VerifyError('The Dockerfile has no FROM instruction');
  return stages;
}

/** Reads the JSON array of an exec-form instruction, or returns undefined for the shell form. */
function execForm(args, line) {
  if (!args.startsWith('[')) return undefined;
  let value;
  try {
    value = JSON.parse(args);
  } catch (error) {
    throw new VerifyError(`Dockerfile line ${line}: invalid JSON array: ${error.message}`);
  }
  if (!Array.isArray(value) || !value.every((item) => typeof item === 'string')) {
    throw new VerifyError(`Dockerfile line ${line}: expected a JSON array of strings`);
  }
  return value;
}

/** Reads `KEY=value` pairs (values may be double-quoted) or the legacy `KEY value` form of ENV. */
function parseEnv(args, line) {
  if (!/^\w+=/.test(args)) {
    const match = /^(\w+)\s+(.*)$/.exec(args);
    if (match === null) throw new VerifyError(`Dockerfile line ${line}: cannot read ENV ${args}`);
    return [[match[1], match[2]]];
  }
  const pairs = [];
  const pattern = /(\w+)=(?:"((?:[^"\\]|\\.)*)"|(\S*))\s*/y;
  let consumed = 0;
  while (consumed < args.length) {
    pattern.lastIndex = consumed;
    const match = pattern.exec(args);
    if (match === null) throw new VerifyError(`Dockerfile line ${line}: cannot read ENV ${args}`);
    pairs.push([match[1], match[2] ?? match[3]]);
    consumed = pattern.lastIndex;
  }
  return pairs;
}

// ---------------------------------------------------------------------------
// Build context and .dockerignore

/** Converts one .dockerignore pattern (Go filepath.Match syntax plus `**`) to a RegExp. */
function ignorePatternToRegExp(pattern, line) {
  let source = '^';
  for (let index = 0; index < pattern.length; index++) {
    const char = pattern[index];
    if (pattern.startsWith('**/', index)) {
      source += '(?:.*/)?';
      index += 2;
    } else if (pattern.startsWith('**', index)) {
      source += '.*';
      index += 1;
    } else if (char === '*') {
      source += '[^/]*';
    } else if (char === '?') {
      source += '[^/]';
    } else if (char === '[') {
      throw new VerifyError(`.dockerignore line ${line}: character classes are not supported by this script`);
    } else if (char === '\\') {
      index += 1;
      source += (pattern[index] ?? '').replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    } else {
      source += char.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    }
  }
  return new RegExp(`${source}$`);
}

function parseDockerignore(text) {
  const rules = [];
  for (const [index, rawLine] of text.split('\n').entries()) {
    const line = rawLine.trim();
    if (line === '' || line.startsWith('#')) continue;
    const exception = line.startsWith('!');
    const pattern = posix.normalize(exception ? line.slice(1).trim() : line).replace(/^\/+/, '').replace(/\/+$/, '');
    if (pattern === '' || pattern === '.') continue;
    rules.push({ exception, regex: ignorePatternToRegExp(pattern, index + 1) });
  }
  return rules;
}

/**
 * Reports whether `path` (relative, `/`-separated) is left out of the context. As in Docker,
 * a rule matches a path or any of its parent directories, and the last matching
 * rule decides.
 */
function isIgnored(path, rules) {
  const parts = path.split('/');
  const candidates = parts.map((_part, index) => parts.slice(0, index + 1).join('/'));
  let ignored = false;
  for (const rule of rules) {
    if (candidates.some((candidate) => rule.regex.test(candidate))) ignored = !rule.exception;
  }
  return ignored;
}

function listFiles(directory, prefix = '') {
  const files = [];
  for (const entry of readdirSync(join(directory, prefix), { withFileTypes: true })) {
    const path = prefix === '' ? entry.name : `${prefix}/${entry.name}`;
    if (entry.isDirectory()) files.push(...listFiles(directory, path));
    else files.push(path);
  }
  return files;
}

/** Fills `sourceDir` with the files of HEAD, or of the working tree (tracked and untracked, minus .gitignore). */
function exportSource(sourceDir, workingTree) {
  mkdirSync(sourceDir, { recursive: true });
  if (!workingTree) {
    const archive = spawnSync('git', ['-C', repoRoot, 'archive', '--format=tar', 'HEAD'], { maxBuffer: 1 << 30 });
    if (archive.status !== 0) throw new VerifyError(`git archive HEAD failed: ${archive.stderr.toString()}`);
    execFileSync('tar', ['-x', '-C', sourceDir], { input: archive.stdout });
    return;
  }
  const listing = execFileSync('git', ['-C', repoRoot, 'ls-files', '-z', '--cached', '--others', '--exclude-standard']);
  for (const path of listing.toString().split('\0')) {
    if (path === '' || !existsSync(join(repoRoot, path))) continue;
    mkdirSync(dirname(join(sourceDir, path)), { recursive: true });
    copyFileSync(join(repoRoot, path), join(sourceDir, path));
  }
}

/** Copies the files of `sourceDir` that .dockerignore keeps into `contextDir`; returns their paths. */
function buildContext(sourceDir, contextDir) {
  const ignoreFile = join(sourceDir, '.dockerignore');
  const rules = existsSync(ignoreFile) ? parseDockerignore(readFileSync(ignoreFile, 'utf8')) : [];
  const contextFiles = listFiles(sourceDir).filter((path) => !isIgnored(path, rules));
  for (const path of contextFiles) {
    mkdirSync(dirname(join(contextDir, path)), { recursive: true });
    copyFileSync(join(sourceDir, path), join(contextDir, path));
  }
  return contextFiles;
}

// ---------------------------------------------------------------------------
// Stage replay

/** Maps an absolute image path to its place under the stage's directory; `..` cannot leave it. */
function hostPath(stageRoot, imagePath) {
  return join(stageRoot, posix.resolve('/', imagePath));
}

function replayCopy(state, step, context, stagesByName) {
  const tokens = execForm(step.args, step.line) ?? step.args.split(/\s+/);
  let fromStage;
  while (tokens[0]?.startsWith('--')) {
    const flag = tokens.shift();
    if (!flag.startsWith('--from=')) throw new VerifyError(`Dockerfile line ${step.line}: COPY ${flag} is not supported by this script`);
    fromStage = stagesByName.get(flag.slice('--from='.length));
    if (fromStage === undefined) throw new VerifyError(`Dockerfile line ${step.line}: no earlier stage named ${flag.slice(7)}`);
  }
  if (tokens.length < 2) throw new VerifyError(`Dockerfile line ${step.line}: COPY needs a source and a destination`);
  const destination = tokens.pop();
  const destinationPath = hostPath(state.root, posix.resolve(state.workdir, destination));
  const intoDirectory = destination.endsWith('/') || tokens.length > 1 || (existsSync(destinationPath) && statSync(destinationPath).isDirectory());

  for (const source of tokens) {
    if (/[*?[]/.test(source)) throw new VerifyError(`Dockerfile line ${step.line}: wildcards in COPY are not supported by this script`);
    const sourcePath = fromStage === undefined ? join(context, posix.normalize(source)) : hostPath(fromStage.root, source);
    if (!existsSync(sourcePath)) {
      const where = fromStage === undefined ? 'the build context (check .dockerignore)' : `stage ${fromStage.name}`;
      throw new VerifyError(`Dockerfile line ${step.line}: COPY source ${source} is not in ${where}`);
    }
    if (statSync(sourcePath).isDirectory()) {
      // Docker copies a directory's contents, not the directory itself.
      cpSync(sourcePath, destinationPath, { recursive: true });
    } else {
      const target = intoDirectory ? join(destinationPath, posix.basename(source)) : destinationPath;
      mkdirSync(dirname(target), { recursive: true });
      copyFileSync(sourcePath, target);
    }
  }
}

function replayRun(state, step, paths) {
  const argv = execForm(step.args, step.line) ?? ['sh', '-c', step.args];
  // An absolute path would act on this machine's file system, not on the stage's.
  if (argv.some((arg) => /(^|[\s=:'"])\//.test(arg))) {
    throw new VerifyError(`Dockerfile line ${step.line}: RUN with an absolute path cannot be replayed safely: ${step.args}`);
  }
  const cwd = hostPath(state.root, state.workdir);
  console.log(`    RUN ${step.args}    (in ${cwd})`);
  const env = {
    PATH: process.env.PATH,
    HOME: paths.home,
    npm_config_cache: paths.npmCache,
    npm_config_update_notifier: 'false',
    ...state.env,
  };
  run(argv[0], argv.slice(1), { cwd, env, timeout: 10 * 60_000 });
}

function parseHealthcheck(step) {
  if (step.args.toUpperCase() === 'NONE') return undefined;
  const match = /^((?:--\S+\s+)*)CMD\s+([\s\S]+)$/i.exec(step.args);
  if (match === null) throw new VerifyError(`Dockerfile line ${step.line}: cannot read HEALTHCHECK ${step.args}`);
  return { options: match[1].trim(), argv: execForm(match[2], step.line) ?? ['/bin/sh', '-c', match[2]] };
}

/** Replays one stage into its own directory and returns what the image would record about it. */
function replayStage(stage, context, stagesByName, paths) {
  const root = join(paths.stages, stage.name);
  mkdirSync(root, { recursive: true });
  const state = { name: stage.name, image: stage.image, root, workdir: '/', env: {}, user: 'root', exposed: [] };

  for (const step of stage.steps) {
    switch (step.keyword) {
      case 'WORKDIR':
        state.workdir = posix.resolve(state.workdir, step.args);
        mkdirSync(hostPath(root, state.workdir), { recursive: true });
        break;
      case 'ENV':
        for (const [name, value] of parseEnv(step.args, step.line)) state.env[name] = value;
        break;
      case 'COPY':
        console.log(`    COPY ${step.args}`);
        replayCopy(state, step, context, stagesByName);
        break;
      case 'RUN':
        replayRun(state, step, paths);
        break;
      case 'USER':
        if (!IMAGE_USERS.has(step.args)) throw new VerifyError(`Dockerfile line ${step.line}: unknown user ${step.args}`);
        state.user = step.args;
        break;
      case 'EXPOSE':
        state.exposed = step.args.split(/\s+/).map((port) => Number(port.replace(/\/tcp$/, '')));
        break;
      case 'STOPSIGNAL':
        state.stopSignal = step.args;
        break;
      case 'HEALTHCHECK':
        state.healthcheck = parseHealthcheck(step);
        break;
      case 'ENTRYPOINT':
      case 'CMD': {
        const argv = execForm(step.args, step.line);
        // The shell form runs rsp under /bin/sh -c, where rsp may not be PID 1 and SIGTERM may not reach it.
        if (argv === undefined) throw new VerifyError(`Dockerfile line ${step.line}: ${step.keyword} must use the exec (JSON) form`);
        state[step.keyword === 'CMD' ? 'cmd' : 'entrypoint'] = argv;
        break;
      }
      case 'LABEL':
        break;
      default:
        throw new VerifyError(`Dockerfile line ${step.line}: ${step.keyword} is not supported by this script`);
    }
  }
  return state;
}

// ---------------------------------------------------------------------------
// Running the image's command inside namespaces

/** Replaces `node` with this Node.js and absolute image paths with their place under the stage directory. */
function hostCommand(argv, stageRoot) {
  return argv.map((arg, index) => {
    if (index === 0 && arg === 'node') return process.execPath;
    return arg.startsWith('/') ? hostPath(stageRoot, arg) : arg;
  });
}

function planRun(final) {
  if (final.entrypoint === undefined) throw new VerifyError('The final stage has no ENTRYPOINT');
  const uid = IMAGE_USERS.get(final.user);
  return {
    command: hostCommand([...final.entrypoint, ...(final.cmd ?? [])], final.root),
    imageCommand: [...final.entrypoint, ...(final.cmd ?? [])],
    healthcheck: final.healthcheck === undefined ? undefined : hostCommand(final.healthcheck.argv, final.root),
    cwd: hostPath(final.root, final.workdir),
    env: { PATH: process.env.PATH, ...final.env },
    user: final.user,
    uid,
    gid: uid,
    exposed: final.exposed,
    stopSignal: final.stopSignal ?? 'SIGTERM',
  };
}

function httpGet(host, port, path) {
  return new Promise((resolve, reject) => {
    const req = request({ host, port, path, agent: false, timeout: 5_000 }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (text) => (body += text));
      response.on('end', () => resolve({ status: response.statusCode, body }));
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${path} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

/** Sends `message` through rsp on `port`, ends the write side, and returns what came back. */
function exchange(port, message) {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, allowHalfOpen: true });
    let reply = '';
    const timer = setTimeout(() => socket.destroy(new Error('no reply within 5 s')), 5_000);
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.end(message));
    socket.on('data', (text) => (reply += text));
    socket.on('end', () => {
      clearTimeout(timer);
      socket.destroy();
      resolve(reply);
    });
    socket.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
}

function startEchoBackend() {
  const sockets = new Set();
  const server = createServer({ allowHalfOpen: true }, (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    socket.pipe(socket);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      resolve({
        port: server.address().port,
        close: () => {
          for (const socket of sockets) socket.destroy();
          server.close();
        },
      });
    });
  });
}

/** Returns the PID, in this script's PID namespace, of the process that unshare --fork started. */
async function forkedChildPid(unsharePid) {
  for (let attempt = 0; attempt < 200; attempt++) {
    try {
      const children = readFileSync(`/proc/${unsharePid}/task/${unsharePid}/children`, 'utf8').trim();
      if (children !== '') return Number(children.split(/\s+/)[0]);
    } catch {
      // unshare has not forked yet, or has already exited.
    }
    await delay(25);
  }
  throw new VerifyError('unshare did not start the image command');
}

/**
 * Runs inside the new network namespace (this script started again by unshare --net):
 * starts the backend and the image command, checks it, stops it, and exits 0 only
 * when every check passed.
 */
async function runInsideNamespace(planFile) {
  const plan = JSON.parse(readFileSync(planFile, 'utf8'));
  let failures = 0;
  const check = (ok, description, detail = '') => {
    console.log(`${ok ? 'ok    ' : 'FAILED'}  ${description}${!ok && detail !== '' ? `: ${detail}` : ''}`);
    if (!ok) failures++;
  };

  execFileSync('ip', ['link', 'set', 'lo', 'up']);
  const backend = await startEchoBackend();
  const env = { ...plan.env, RSP_BACKENDS: `127.0.0.1:${backend.port}` };
  console.log(`    RSP_BACKENDS=${env.RSP_BACKENDS} ${plan.imageCommand.join(' ')}    (as ${plan.user}, uid ${plan.uid})`);

  const rsp = spawn(
    'unshare',
    ['--pid', '--fork', '--mount-proc', '--kill-child', '--setuid', String(plan.uid), '--setgid', String(plan.gid), '--', ...plan.command],
    { cwd: plan.cwd, env, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const exited = new Promise((resolve) => rsp.on('close', (code, signal) => resolve(code ?? signal)));
  const cleanUp = () => {
    if (rsp.exitCode === null && rsp.signalCode === null) rsp.kill('SIGKILL');
    backend.close();
  };
  process.on('SIGTERM', () => {
    cleanUp();
    process.exit(1);
  });

  let output = '';
  let partialLine = '';
  const lines = [];
  rsp.stdout.setEncoding('utf8').on('data', (text) => {
    output += text;
    const parts = (partialLine + text).split('\n');
    partialLine = parts.pop();
    for (const part of parts) {
      try {
        lines.push(JSON.parse(part));
      } catch {
        // Not a log line; `output` keeps it for the failure message.
      }
    }
  });
  rsp.stderr.setEncoding('utf8').on('data', (text) => (output += text));

  try {
    const deadline = Date.now() + START_TIMEOUT_MS;
    let started;
    while ((started = lines.find((line) => line.msg === 'rsp started')) === undefined) {
      if (rsp.exitCode !== null || Date.now() > deadline) throw new VerifyError(`rsp did not log "rsp started":\n${output}`);
      await delay(50);
    }
    const rspPid = await forkedChildPid(rsp.pid);
    const listen = started.services?.[0]?.listen ?? '';
    const listenPort = Number(listen.slice(listen.lastIndexOf(':') + 1));
    const metricsPort = Number(String(started.metrics).slice(String(started.metrics).lastIndexOf(':') + 1));

    check(started.pid === 1, 'rsp runs as PID 1 of its PID namespace', `its pid is ${started.pid}`);
    const uidLine = readFileSync(`/proc/${rspPid}/status`, 'utf8').match(/^Uid:\s+(\d+)/m)?.[1];
    check(Number(uidLine) === plan.uid, `rsp runs as uid ${plan.uid} (${plan.user})`, `uid ${uidLine}`);
    check(plan.exposed.includes(listenPort), `the listen port ${listenPort} is EXPOSEd`, `EXPOSE ${plan.exposed.join(' ')}`);
    check(plan.exposed.includes(metricsPort), `the metrics port ${metricsPort} is EXPOSEd`, `EXPOSE ${plan.exposed.join(' ')}`);

    if (plan.healthcheck === undefined) {
      check(false, 'the image has a HEALTHCHECK');
    } else {
      const health = spawnSync(plan.healthcheck[0], plan.healthcheck.slice(1), { env, uid: plan.uid, gid: plan.gid, timeout: 10_000, encoding: 'utf8' });
      check(health.status === 0, 'the HEALTHCHECK command exits 0', `status ${health.status ?? health.signal} ${health.stderr}`);
    }
    const ready = await httpGet('127.0.0.1', metricsPort, '/readyz');
    check(ready.status === 200, 'GET /readyz returns 200', `${ready.status} ${ready.body}`);
    const reply = await exchange(listenPort, 'hello through rsp\n');
    check(reply === 'hello through rsp\n', 'a connection through rsp reaches the backend and back', JSON.stringify(reply));

    process.kill(rspPid, plan.stopSignal);
    const timeout = delay(STOP_TIMEOUT_MS).then(() => 'timed out');
    const status = await Promise.race([exited, timeout]);
    check(status === 0, `rsp exits 0 after ${plan.stopSignal}`, `exit ${status}\n${output.slice(-2_000)}`);
    check(lines.some((line) => line.msg === 'rsp stopped'), 'rsp logs "rsp stopped"');
  } catch (error) {
    check(false, 'the image command runs', error instanceof Error ? error.message : String(error));
  } finally {
    cleanUp();
  }
  process.exit(failures === 0 ? 0 : 1);
}

// ---------------------------------------------------------------------------

function lintDockerfile(dockerfile, paths) {
  heading(`Lint the Dockerfile with ${LINTER}`);
  const prefix = join(paths.work, 'linter');
  const install = spawnSync('npm', ['install', '--prefix', prefix, '--no-audit', '--no-fund', '--no-save', LINTER], {
    stdio: ['ignore', 'ignore', 'inherit'],
    env: { ...process.env, npm_config_cache: paths.npmCache },
  });
  if (install.status !== 0) throw new VerifyError(`npm install ${LINTER} failed; check access to the npm registry`);
  run(join(prefix, 'node_modules', '.bin', 'dockerfile-utils'), ['lint', dockerfile]);
  console.log('    no problems found');
}

function checkPrerequisites() {
  if (process.platform !== 'linux') throw new VerifyError('This script needs Linux namespaces.');
  if (process.getuid() !== 0) {
    throw new VerifyError('Run this script as root: it creates network and PID namespaces and switches to the image user.');
  }
  for (const [command, args] of [['git', ['--version']], ['unshare', ['--version']], ['ip', ['-V']], ['npm', ['--version']]]) {
    if (spawnSync(command, args, { stdio: 'ignore' }).status !== 0) throw new VerifyError(`${command} is missing or failed to run; install it first`);
  }
}

async function main() {
  const { values } = parseArgs({
    options: {
      'working-tree': { type: 'boolean', default: false },
      keep: { type: 'boolean', default: false },
      'inside-namespace': { type: 'string' },
    },
  });
  if (values['inside-namespace'] !== undefined) {
    await runInsideNamespace(values['inside-namespace']);
    return;
  }

  checkPrerequisites();
  const work = mkdtempSync(join(tmpdir(), 'rsp-verify-dockerfile-'));
  // The image user (uid 1000) must reach the replayed runtime stage.
  chmodSync(work, 0o755);
  const paths = { work, stages: join(work, 'stages'), home: join(work, 'home'), npmCache: join(work, 'npm-cache') };
  mkdirSync(paths.home);

  try {
    const source = join(work, 'source');
    heading(`Export ${values['working-tree'] ? 'the working tree' : 'HEAD'} of ${repoRoot}`);
    exportSource(source, values['working-tree']);
    const dockerfile = join(source, 'Dockerfile');
    if (!existsSync(dockerfile)) {
      throw new VerifyError(`There is no Dockerfile in ${values['working-tree'] ? 'the working tree' : 'HEAD'}; commit it or pass --working-tree`);
    }

    lintDockerfile(dockerfile, paths);

    heading('Build the context (.dockerignore applied)');
    const context = join(work, 'context');
    const contextFiles = buildContext(source, context);
    console.log(`    ${contextFiles.length} files: ${[...new Set(contextFiles.map((path) => path.split('/')[0]))].join(', ')}`);

    const stages = parseStages(readFileSync(dockerfile, 'utf8'));
    const stagesByName = new Map();
    let final;
    for (const stage of stages) {
      heading(`Replay stage ${stage.name} (FROM ${stage.image})`);
      const imageMajor = /^node:(\d+)/.exec(stage.image)?.[1];
      const hostMajor = process.versions.node.split('.')[0];
      if (imageMajor !== hostMajor) {
        throw new VerifyError(`The stage uses ${stage.image}, but this machine runs Node.js ${process.versions.node}; the replay needs the same major version`);
      }
      final = replayStage(stage, context, stagesByName, paths);
      stagesByName.set(stage.name, final);
    }

    heading(`Run the ${final.name} stage's command in new network and PID namespaces`);
    const planFile = join(work, 'run-plan.json');
    writeFileSync(planFile, JSON.stringify(planRun(final), null, 2));
    const inside = spawnSync('unshare', ['--net', '--', process.execPath, scriptPath, '--inside-namespace', planFile], {
      stdio: 'inherit',
      timeout: RUN_STEP_TIMEOUT_MS,
    });
    if (inside.status !== 0) throw new VerifyError('The image command failed a check (see above).');

    heading('Verified');
    console.log(`    the Dockerfile lints clean; every COPY source is in the context that .dockerignore leaves;
    the RUN steps of every stage succeed (npm ${execFileSync('npm', ['--version']).toString().trim()}, Node.js ${process.versions.node});
    the runtime stage starts from ENTRYPOINT + CMD as PID 1 and as ${final.user}, with its
    ENV and the default config; HEALTHCHECK, /readyz and a proxied connection work;
    ${final.stopSignal ?? 'SIGTERM'} stops it with exit status 0.`);
    heading('Not verified');
    console.log(`    no container engine built or ran the image: ${[...new Set(stages.map((stage) => stage.image))].join(', ')} was not pulled,
    so its own Node.js, npm and Debian packages were not used; file ownership and
    permissions inside the image, its size, EXPOSE and HEALTHCHECK timing as an engine
    applies them, and a read-only root file system were not exercised.`);
  } finally {
    if (values.keep) console.log(`\nKept ${work}`);
    else rmSync(work, { recursive: true, force: true });
  }
}

try {
  await main();
} catch (error) {
  if (!(error instanceof VerifyError)) throw error;
  console.error(`\nverify-dockerfile: ${error.message}`);
  process.exit(1);
}
