/**
 * Beyond f in the simulator (src/sim/colluders.ts): f + 1 replicas collude to show two groups of
 * correct replicas two histories, each certified by a quorum. Phalanx cannot prevent that; it must
 * not let it pass silently. Every seed must end with the correct replicas consistent, or with
 * every correct replica whose history diverged in safe mode, holding a forensic proof that the
 * simulator verifies and that names at least f + 1 replicas, all of them colluders. A replica
 * whose fork detection is switched off (brokenForkDetection) must be caught.
 */
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { runSimulation, type SeedReport } from '../../src/sim/simulator.js';

const explain = (report: SeedReport): string =>
  JSON.stringify({ seed: report.seed, violations: report.violations, colluding: report.colluding });

describe('f + 1 colluding replicas in the simulator', () => {
  const seeds = Array.from({ length: 40 }, (_, index) => index + 1);
  const reports = seeds.map((seed) => runSimulation({ seed, n: 4, f: 1, colluding: 2 }));

  it('every seed ends consistent or in safe mode with a verified proof naming only colluders', () => {
    for (const report of reports) assert.deepEqual(report.violations, [], explain(report));
  });

  it('the colluders fork the correct replicas in some seeds, and every seed ends in safe mode', () => {
    // Most runs stop before a fork executes: two colluding leaders in a row equivocate (views 0
    // and 1), or the colluders' own votes meet the certificate they made for the misled. The
    // rest fork, and are caught at the next checkpoint.
    const forked = reports.filter((report) => report.colluding!.forkedSequences > 0);
    assert.ok(forked.length >= 4, `only ${forked.length} of ${seeds.length} seeds forked`);
    for (const report of reports) assert.ok(report.colluding!.safeMode.length > 0, explain(report));
    for (const report of reports) {
      const { safeMode, misled } = report.colluding!;
      assert.ok(safeMode.length > 0, explain(report));
      for (const entry of safeMode) {
        assert.ok(entry.culprits.length >= 2, explain(report));
        assert.ok(
          entry.culprits.every((culprit) => culprit === 0 || culprit === 1),
          explain(report),
        );
      }
      assert.ok(misled.length > 0);
    }
  });

  it('catches a replica that does not look for forks', () => {
    const forkedSeed = reports.find((report) => report.colluding!.forkedSequences > 0)!.seed;
    const broken = runSimulation({ seed: forkedSeed, n: 4, f: 1, colluding: 2, brokenForkDetection: true });
    assert.ok(
      broken.violations.some((violation) => /^fork undetected: /.test(violation)),
      explain(broken),
    );
  });

  it('n = 7, f = 2 with three colluders', () => {
    for (const seed of [1, 2, 3]) {
      const report = runSimulation({ seed, n: 7, f: 2, colluding: 3 });
      assert.deepEqual(report.violations, [], explain(report));
    }
  });

  it('npm run sim refuses --colluding outside f + 1..n − 2 and beside the Byzantine draw, with exit 2', () => {
    const refusal = (...args: string[]): { status: number | null; stderr: string } => {
      const run = spawnSync(
        process.execPath,
        ['--import', 'tsx', 'src/sim/main.ts', '--seeds', '1', ...args],
        {
          encoding: 'utf8',
        },
      );
      return { status: run.status, stderr: run.stderr };
    };
    for (const [args, reason] of [
      [['--colluding', '1'], /--colluding must be between f \+ 1 = 2 and n - 2 = 2, got 1/],
      [['--colluding', '3'], /--colluding must be between f \+ 1 = 2 and n - 2 = 2, got 3/],
      [['--colluding', 'two'], /colluding/],
      [['--colluding', 'f+1', '--byzantine', 'all'], /--colluding replaces the Byzantine draw/],
      [['--broken-fork-detection'], /--broken-fork-detection needs --colluding/],
    ] as const) {
      const { status, stderr } = refusal(...args);
      assert.equal(status, 2, `${args.join(' ')}: ${stderr}`);
      assert.match(stderr, reason);
    }
  });
});
