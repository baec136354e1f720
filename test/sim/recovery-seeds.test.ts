/**
 * The simulator's run with the guardians: seeds of n = 6, f = 1, k = 1 with recovery on and every
 * Byzantine behaviour (those aimed at recovery included), on two worker threads at the lowest CPU
 * priority, exactly as `npm run sim -- --seeds S --n 6 --f 1 --k 1 --recovery --byzantine all
 * --jobs 2` runs them. Every checker must pass on every seed, and the summary must count what the
 * recovery checkers judged. A failing seed is named with the command that replays it.
 *
 * `npm test` runs the first 150 seeds (300 until 2026-12-03, when the suite neared its 15 minutes
 * and the background group, the simulator's files and these seeds, became its longest);
 * `npm run test:seeds` runs the first 1,000 (issue 12's
 * acceptance run, about 465 s alone on two cores). The 1,000 no longer fit the suite's 15 minutes
 * (2026-12-02: about 960 CPU seconds of a suite that took 22 minutes): a seed costs about a CPU
 * second, and the simulator has no hotspot left to take that down by half.
 */
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';

/** Seeds 1 to this; PHALANX_RECOVERY_SEEDS sets it (`npm run test:seeds`: 1,000). */
const SEEDS = seedCount(process.env.PHALANX_RECOVERY_SEEDS);

function seedCount(setting: string | undefined): number {
  if (setting === undefined || setting === '') return 150;
  const count = Number(setting);
  if (!Number.isSafeInteger(count) || count < 1 || count > 100_000)
    throw new Error(`PHALANX_RECOVERY_SEEDS must be a whole number from 1 to 100000, not ${setting}`);
  return count;
}
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
