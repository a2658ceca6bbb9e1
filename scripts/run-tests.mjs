// Runs every compiled *.test.js file under dist/test with node:test, then the
// pump's test files once more on the net.Socket data path. Arguments keep only
// the files whose path contains one of them, and skip the second pass.
// Helpers under dist/test/helpers are not test files, which is why the runner
// gets an explicit file list instead of a directory.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

function findTestFiles(directory) {
  const files = [];
  for (const entry of readdirSync(directory, { withFileTypes: true })) {
    const path = join(directory, entry.name);
    if (entry.isDirectory()) files.push(...findTestFiles(path));
    else if (entry.name.endsWith('.test.js')) files.push(path);
  }
  return files.sort();
}

/**
 * Test files of the pump. rsp moves bytes on Node.js's TCP handles by default,
 * and its net.Socket path serves services that read PROXY protocol headers and
 * Node.js versions without the handles. A full run repeats these files on that
 * path.
 */
const SOCKET_PATH_FILES = [
  'backend-failure', 'client-abort', 'half-close', 'large-transfer', 'read-buffers',
  'reset', 'server-first', 'slow-reader', 'timeouts',
];

const filter = process.argv.slice(2);
let files = findTestFiles('dist/test');
if (filter.length > 0) files = files.filter((file) => filter.some((part) => file.includes(part)));
if (files.length === 0) {
  console.error('No test files found under dist/test. Run "npm run build" first.');
  process.exit(1);
}

function run(testFiles, env) {
  const result = spawnSync(process.execPath, ['--test', '--test-concurrency=2', ...testFiles], { stdio: 'inherit', env });
  return result.status ?? 1;
}

let status = run(files, process.env);
if (filter.length === 0) {
  const socketFiles = files.filter((file) => SOCKET_PATH_FILES.some((name) => file.endsWith(`/${name}.test.js`)));
  console.log(`# the same ${socketFiles.length} pump test files on the net.Socket data path (RSP_DATA_PATH=sockets)`);
  status = run(socketFiles, { ...process.env, RSP_DATA_PATH: 'sockets' }) || status;
}
process.exit(status);
