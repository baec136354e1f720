import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { BYZANTINE_CATALOGUE, type ByzantineBehaviour } from '../../src/sim/byzantine.js';
import { runSimulation, type SeedReport, type SimulationOptions } from '../../src/sim/simulator.js';

function passed(report: SeedReport): boolean {
  return report.violations.length === 0 && report.livenessFailure === null;
}

function explain(report: SeedReport): string {
  return `seed ${report.seed}: ${[...report.violations, report.livenessFailure ?? ''].join(' | ')}`;
}

function comparable(report: SeedReport): string {
  const { trace: _trace, ...rest } = report;
  return JSON.stringify(rest);
}

/** The first seed in [first, first + count) whose run a checker rejects, or null. */
function firstFailingSeed(
  options: Omit<SimulationOptions, 'seed'>,
  first: number,
  count: number,
): SeedReport | null {
  for (let seed = first; seed < first + count; seed++) {
    const report = runSimulation({ ...options, seed });
    if (!passed(report)) return report;
  }
  return null;
}

describe('simulator', () => {
  it('replays a seed exactly: the same seed gives the same run', () => {
    const first = runSimulation({ seed: 7, n: 4, f: 1 });
    const second = runSimulation({ seed: 7, n: 4, f: 1 });
    assert.equal(comparable(first), comparable(second));
    assert.ok(first.requestsCompleted > 0);
  });

  it('different seeds give different runs', () => {
    const first = runSimulation({ seed: 1, n: 4, f: 1 });
    const second = runSimulation({ seed: 2, n: 4, f: 1 });
    assert.notEqual(comparable(first), comparable(second));
  });

  it('a seed of a batch replays alone: `--seed S --trace` in a new process prints the same trace', () => {
    // Seeds 5 and 6 first, in this process: nothing a seed leaves behind (cached keys, the
    // simulated signatures' key table) may change the next one.
    const options = { n: 4, f: 1, byzantine: 'all', keyTheft: true, trace: true } as const;
    for (const seed of [5, 6]) runSimulation({ ...options, seed });
    const inBatch = runSimulation({ ...options, seed: 7 });
    const printed = execFileSync(
      process.execPath,
      ['--import', 'tsx', 'src/sim/main.ts', '--seed', '7', '--key-theft', '--trace', '--quiet'],
      { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 },
    );
    const alone = printed.split('\n').filter((line) => /^ *\d+ms /.test(line));
    assert.ok(inBatch.trace.length > 100);
    assert.deepEqual(alone, inBatch.trace);
  });

  it('`--clients C` runs C correct clients, as SimulationOptions.clients does; out of range it is refused', () => {
    const printed = execFileSync(
      process.execPath,
      [
        '--import',
        'tsx',
        'src/sim/main.ts',
        '--seed',
        '3',
        '--byzantine',
        'small-batches',
        '--clients',
        '12',
      ],
      { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 },
    );
    const summary = JSON.parse(printed.trim().split('\n').at(-1)!) as { requestsCompleted: number };
    const report = runSimulation({ seed: 3, n: 4, f: 1, byzantine: ['small-batches'], clients: 12 });
    assert.equal(summary.requestsCompleted, report.requestsCompleted);
    assert.throws(
      () =>
        execFileSync(
          process.execPath,
          ['--import', 'tsx', 'src/sim/main.ts', '--seed', '3', '--clients', '0'],
          {
            encoding: 'utf8',
            stdio: 'pipe',
          },
        ),
      (error: unknown) =>
        /--clients must be between 1 and 64, got 0/.test(String((error as { stderr?: string }).stderr)),
    );
  });

  it('simulated signatures and Ed25519 give the same run (nothing depends on a signature’s bytes)', () => {
    const options = { seed: 2, n: 4, f: 1, keyTheft: true, faultPhaseMs: 1500, trace: true } as const;
    const simulated = runSimulation({ ...options, crypto: 'simulated' });
    const real = runSimulation({ ...options, crypto: 'real' });
    assert.ok(simulated.signaturesJudged > 0 && simulated.stolenSignaturesAccepted > 0);
    assert.equal(comparable(simulated), comparable(real));
    assert.deepEqual(simulated.trace, real.trace);
  });

  it('records a trace when asked, and none otherwise', () => {
    const traced = runSimulation({ seed: 3, n: 4, f: 1, trace: true, faultPhaseMs: 1500 });
    const quiet = runSimulation({ seed: 3, n: 4, f: 1, faultPhaseMs: 1500 });
    assert.ok(traced.trace.length > 100);
    assert.equal(quiet.trace.length, 0);
    assert.equal(comparable(traced), comparable(quiet));
  });
});

describe('safety and liveness under every Byzantine behaviour (n = 4, f = 1)', () => {
  const totals = { viewChanges: 0, stateTransfers: 0, evidence: 0, rejected: 0 };
  for (const behaviour of BYZANTINE_CATALOGUE) {
    it(`${behaviour}: every checker passes on two seeds`, () => {
      for (const seed of [11, 12]) {
        const report = runSimulation({ seed, n: 4, f: 1, byzantine: [behaviour as ByzantineBehaviour] });
        assert.ok(passed(report), explain(report));
        assert.ok(report.requestsCompleted > 50, `only ${report.requestsCompleted} requests completed`);
        totals.viewChanges += report.viewChanges;
        totals.stateTransfers += report.stateTransfers;
        totals.evidence += report.evidence;
        totals.rejected += report.rejectedInputs;
      }
    });
  }
  it('the faults really happened: view changes, state transfers, evidence and rejected input', () => {
    assert.ok(totals.viewChanges > 0, 'no view change');
    assert.ok(totals.stateTransfers > 0, 'no state transfer');
    assert.ok(totals.evidence > 0, 'no evidence');
    assert.ok(totals.rejected > 0, 'no rejected input');
  });
});

/**
 * Seeds with keys rotating on a recovery schedule (a rotation restarts its replica from disk, as a
 * rejuvenation that keeps the disk) and a thief replaying stolen keys, every Byzantine behaviour
 * drawn. PHALANX_SIM_SEEDS sets how many (default 100, about a minute on one core); `npm run sim --
 * --seeds 1000 --key-theft --jobs 2` runs more.
 */
describe('many seeds with key rotations (n = 4, f = 1, all behaviours, key theft)', () => {
  const count = Number(process.env.PHALANX_SIM_SEEDS ?? 100);
  it(`${count} seeds: every checker passes on every one`, () => {
    assert.ok(Number.isSafeInteger(count) && count >= 1, `PHALANX_SIM_SEEDS must be a positive integer`);
    const failures: string[] = [];
    let rotations = 0;
    for (let seed = 1; seed <= count; seed++) {
      const report = runSimulation({ seed, n: 4, f: 1, byzantine: 'all', keyTheft: true });
      if (!passed(report)) failures.push(explain(report));
      rotations += report.keyRotations;
    }
    assert.deepEqual(failures, []);
    assert.ok(rotations >= 10 * count, `only ${rotations} key rotations in ${count} seeds`);
  });
});

describe('other configurations', () => {
  it('crash faults only, including restarts with empty disks (n = 4, f = 1)', () => {
    for (const seed of [21, 22, 23]) {
      const report = runSimulation({ seed, n: 4, f: 1, byzantine: 'none' });
      assert.ok(passed(report), explain(report));
    }
  });

  it('two Byzantine replicas of seven (n = 7, f = 2)', () => {
    for (const seed of [31, 32]) {
      const report = runSimulation({ seed, n: 7, f: 2, byzantine: 'all' });
      assert.ok(passed(report), explain(report));
      assert.ok(report.byzantine.length >= 1);
    }
  });

  it('with room for a recovering replica (n = 6, f = 1, k = 1)', () => {
    for (const seed of [41, 42]) {
      const report = runSimulation({ seed, n: 6, f: 1, k: 1, byzantine: 'all' });
      assert.ok(passed(report), explain(report));
    }
  });

  it('regular leader rotation at every stable checkpoint, under every Byzantine behaviour', () => {
    for (const seed of [51, 52, 53]) {
      const rotating = runSimulation({ seed, n: 4, f: 1, byzantine: 'all', leaderRotationCheckpoints: 1 });
      assert.ok(passed(rotating), explain(rotating));
      const steady = runSimulation({ seed, n: 4, f: 1, byzantine: 'all' });
      assert.ok(
        rotating.viewChanges > steady.viewChanges,
        `${rotating.viewChanges} view changes, ${steady.viewChanges} without rotation`,
      );
    }
  });
});

describe('inflated STATUS against a rejuvenated replica', () => {
  it('the simulator rejuvenates a correct replica next to the liar, and it votes again (seeds 3, 5, 6 stalled for good under the first-Q−1 floor rule)', () => {
    for (const seed of [3, 5, 6]) {
      const report = runSimulation({ seed, n: 4, f: 1, byzantine: ['inflated-status'] });
      assert.equal(report.rejuvenations, 1, `seed ${seed}: no rejuvenation to attack`);
      assert.ok(passed(report), explain(report));
    }
  });
});

describe('the checkers catch bugs', () => {
  it('a broken quorum rule (prepared and committed after f + 1 votes) yields a safety violation', () => {
    const failing = firstFailingSeed(
      { n: 4, f: 1, byzantine: ['lie-in-view-change'], brokenQuorum: true },
      1,
      40,
    );
    assert.ok(failing !== null, 'no seed of 40 found the broken quorum rule');
    assert.ok(failing.violations.length > 0, `expected a safety violation, got ${explain(failing)}`);
    // The failure replays exactly.
    const again = runSimulation({
      seed: failing.seed,
      n: 4,
      f: 1,
      byzantine: ['lie-in-view-change'],
      brokenQuorum: true,
    });
    assert.deepEqual(again.violations, failing.violations);
  });

  it('a broken view-change rule (the new leader ignores prepared batches) yields a safety violation', () => {
    const failing = firstFailingSeed({ n: 4, f: 1, brokenViewChange: true }, 1, 10);
    assert.ok(failing !== null, 'no seed of 10 found the broken view-change rule');
    assert.ok(
      failing.violations.some((violation) => /agreement|safety alarm|linearizability/.test(violation)),
      explain(failing),
    );
  });
});
