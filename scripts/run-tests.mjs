// Runs every compiled *.test.js file under dist/test with node:test.
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

const filter = process.argv.slice(2);
let files = findTestFiles('dist/test');
if (filter.length > 0) files = files.filter((file) => filter.some((part) => file.includes(part)));
if (files.length === 0) {
  console.error('No test files found under dist/test. Run "npm run build" first.');
  process.exit(1);
}

const result = spawnSync(process.execPath, ['--test', '--test-concurrency=2', ...files], { stdio: 'inherit' });
process.exit(result.status ?? 1);
