#!/usr/bin/env node
// Runs every *.test.ts under test/ with node's test runner through tsx.
// Node 20 expands no globs, so the file list is built here.
import { spawn, spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = new URL('..', import.meta.url).pathname;

function findTests(directory) {
  const found = [];
  for (const name of readdirSync(directory)) {
    const path = join(directory, name);
    if (statSync(path).isDirectory()) found.push(...findTests(path));
    else if (name.endsWith('.test.ts')) found.push(path);
  }
  return found;
}

const filters = process.argv.slice(2);
const files = findTests(join(root, 'test'))
  .map((file) => relative(root, file))
  .filter((file) => filters.length === 0 || filters.some((filter) => file.includes(filter)))
  .sort();
if (files.length === 0) {
  console.error('no test files matched');
  process.exit(1);
}
// Guardian clusters (test/integration/guardians/) run one file at a time, after the rest: each
// is six guardians and six replicas rejuvenating on a schedule of a few seconds, and two of them
// at once on a two-core machine make recoveries overrun T_D, which those tests measure.
// So do the tests that compare a client's latency under attack with its fault-free latency: a
// cluster beside them makes the ratio noise.
// The `npm start` run checks that acknowledged keys read back after a restart, not a time bound,
// so it runs beside other tests (that keeps the whole suite under 15 minutes). The demo test
// stays serial: beside other tests its recoveries overran T_D and the demo's workload failed.
const boundFree = ['integration/guardians/npm-start.test.ts'];
const serial = files.filter(
  (file) =>
    (file.includes('integration/guardians/') && !boundFree.some((name) => file.endsWith(name))) ||
    file.includes('integration/hostile-clients'),
);
// Longest first (the `npm start` run, then the other real clusters, then the simulator's seeds),
// so that the group does not end waiting on one long file started last: with two at a time, the
// `npm start` run (about 3.5 minutes) started in the middle of the list kept the group a minute
// or two past the point where everything else had finished.
const costRank = (file) =>
  boundFree.some((name) => file.endsWith(name))
    ? 0
    : file.includes('integration/')
      ? 1
      : file.startsWith('test/sim/')
        ? 2
        : 3;
const parallel = files
  .filter((file) => !serial.includes(file))
  .sort((a, b) => costRank(a) - costRank(b) || a.localeCompare(b));
const concurrency = process.env.TEST_CONCURRENCY ?? '2';
/** The parallel group takes about 4 minutes on two cores, the serial one about 8; far beyond that something hangs. */
const GROUP_TIMEOUT_MS = 11 * 60 * 1000;
/**
 * Runs one group in a process group of its own: on a timeout the whole group is killed, test
 * files and the clusters they started included (a SIGTERM to the runner alone left guardians
 * and replicas running, loading whatever ran next on the machine).
 */
function runGroup(group, groupConcurrency) {
  return new Promise((resolve) => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', '--test', `--test-concurrency=${groupConcurrency}`, ...group],
      { cwd: root, stdio: 'inherit', detached: true },
    );
    // Its own process group no longer gets the terminal's Ctrl-C: pass it on.
    const forward = (signal) => {
      try {
        process.kill(-child.pid, signal);
      } catch {
        // Already gone.
      }
    };
    process.on('SIGINT', forward);
    process.on('SIGTERM', forward);
    const timer = setTimeout(() => {
      console.error(`test group stopped: still running after ${GROUP_TIMEOUT_MS / 60_000} minutes`);
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }, GROUP_TIMEOUT_MS);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      process.off('SIGINT', forward);
      process.off('SIGTERM', forward);
      resolve(code ?? (signal === null ? 1 : 128));
    });
  });
}

// Integration tests start the compiled CLI (test/integration/built-code.ts): build it first. The
// build leaves files whose content did not change untouched, so it is cheap to repeat and safe
// beside processes already running from dist/ (the `npm start` test builds again meanwhile).
const build = spawnSync(process.execPath, [join(root, 'scripts', 'build.mjs')], {
  cwd: root,
  stdio: 'inherit',
});
if (build.status !== 0) {
  console.error('the build failed: no tests run');
  process.exit(build.status ?? 1);
}

let status = 0;
for (const [group, groupConcurrency] of [
  [parallel, concurrency],
  [serial, '1'],
]) {
  if (group.length === 0) continue;
  const code = await runGroup(group, groupConcurrency);
  if (code !== 0) status = code;
}
process.exit(status);
