// `rsp --check` on the configs that the deployment files ship: the Lua text of the
// Kubernetes ConfigMap and the container image's config/container.lua.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { readYamlDocuments, repoPath, repoRoot } from '../deploy/files.js';

const MAIN_SCRIPT = repoPath('dist/src/main.js');
const CHECK_TIMEOUT_MS = 15_000;

interface CheckResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs `node dist/src/main.js --check <file>` with the test's environment minus
 * RSP_* variables, plus `env`. Kills it after 15 s.
 */
function runCheck(file: string, env: Readonly<Record<string, string>> = {}): Promise<CheckResult> {
  const childEnv: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (!name.startsWith('RSP_') && name !== 'NODE_TEST_CONTEXT') childEnv[name] = value;
  }
  const child = spawn(process.execPath, [MAIN_SCRIPT, '--check', file], { cwd: repoRoot, env: { ...childEnv, ...env } });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (text: string) => (stdout += text));
  child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
  const timer = setTimeout(() => child.kill('SIGKILL'), CHECK_TIMEOUT_MS);
  return new Promise((resolve) => {
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

let directory: string;
before(() => {
  directory = mkdtempSync(join(tmpdir(), 'rsp-deploy-check-'));
});
after(() => rmSync(directory, { recursive: true, force: true }));

describe('deployment configs pass --check', () => {
  test('kubernetes ConfigMap site.lua', async () => {
    const documents = readYamlDocuments('deploy/kubernetes/configmap.yaml') as { kind: string; data: Record<string, string> }[];
    const siteLua = documents.find((document) => document.kind === 'ConfigMap')?.data['site.lua'];
    assert.ok(siteLua !== undefined, 'configmap.yaml has no site.lua');
    const file = join(directory, 'site.lua');
    writeFileSync(file, siteLua);

    const result = await runCheck(file);
    assert.equal(result.stderr, '');
    assert.equal(result.code, 0);
    assert.match(result.stdout, /configuration is valid/);
    assert.match(result.stdout, /listen: 0\.0\.0\.0:8000/);
    assert.match(result.stdout, /metrics: 0\.0\.0\.0:9100/);
  });

  test('container.lua with RSP_BACKENDS', async () => {
    const result = await runCheck(repoPath('config/container.lua'), { RSP_BACKENDS: 'whoami-1:80,whoami-2:80', RSP_WORKERS: '2' });
    assert.equal(result.stderr, '');
    assert.equal(result.code, 0);
    assert.match(result.stdout, /workers: 2 \(from the config\)/);
    assert.match(result.stdout, /backends: whoami-1:80 \(weight 1\), whoami-2:80 \(weight 1\)/);
  });

  test('container.lua without RSP_BACKENDS', async () => {
    const result = await runCheck(repoPath('config/container.lua'));
    assert.equal(result.code, 1);
    assert.match(result.stderr, /container\.lua: RSP_BACKENDS is not set; set it to a comma-separated list of backends/);
  });
});
