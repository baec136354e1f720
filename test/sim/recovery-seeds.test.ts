/**
 * The simulator's acceptance run with the guardians: 1,000 seeds of n = 6, f = 1, k = 1 with
 * recovery on and every Byzantine behaviour (those aimed at recovery included), on two worker
 * threads at the lowest CPU priority, exactly as `npm run sim -- --seeds 1000 --n 6 --f 1 --k 1 --recovery --byzantine all
 * --jobs 2` runs them. Every checker must pass on every seed, and the summary must count what the
 * recovery checkers judged. A failing seed is named with the command that replays it.
 */
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';

const SEEDS = 1000;
const root = new URL('../..', import.meta.url).pathname;

describe(`${SEEDS} simulator seeds with recovery`, { timeout: 30 * 60_000 }, () => {
  it('pass every checker, with the recovery figures in the summary', () => {
    // At the lowest priority (every thread of the process, its workers included, inherits it):
    // scripts/run-tests.mjs runs this file beside the whole suite, and the tests that measure time
    // must get the CPU first. `nice` is coreutils, on every Debian.
    const run = spawnSync(
      'nice',
      [
        '-n',
        '19',
        process.execPath,
        '--import',
        'tsx',
        'src/sim/main.ts',
        '--seeds',
        String(SEEDS),
        '--n',
        '6',
        '--f',
        '1',
        '--k',
        '1',
        '--recovery',
        '--byzantine',
        'all',
        '--jobs',
        '2',
      ],
      { cwd: root, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 },
    );
    const lines = run.stdout.trim().split('\n');
    const failures = lines.filter((line) => /FAILED|violation:|liveness:/.test(line));
    assert.equal(run.status, 0, `exit ${run.status}: ${failures.slice(0, 20).join('\n')}\n${run.stderr}`);
    const summary = JSON.parse(lines.at(-1)!) as Record<string, number | boolean>;
    assert.equal(summary.seeds, SEEDS);
    assert.equal(summary.violations, 0);
    assert.equal(summary.livenessFailures, 0);
    assert.equal(summary.recovery, true);
    for (const figure of [
      'rejuvenations',
      'reactiveRejuvenations',
      'retiredEpochs',
      'maxExposureMs',
      'exposureBoundMs',
      'intrusionsEvicted',
      'byzantineSuspicions',
    ])
      assert.ok(typeof summary[figure] === 'number' && summary[figure] > 0, `${figure}: ${summary[figure]}`);
    assert.ok((summary.maxExposureMs as number) <= (summary.exposureBoundMs as number));
    process.stdout.write(`# ${lines.at(-2)}\n`);
  });
});
