import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { STATUS_EXIT_CODES, statusExitCode, statusReport } from '../../src/cli/status.js';
import type { GuardianReport, GuardianStatus } from '../../src/runtime/guardian-report.js';
import { describeTimedRejuvenation, guaranteeFindings } from '../../src/runtime/exposure.js';
import { clusterHealth } from '../../src/runtime/health.js';
import type { ReplicaReport } from '../../src/runtime/status.js';
import { sampleGuardianStatus, sampleReplicaStatus } from '../dashboard/fake-replicas.js';

const NOW_MS = 1_767_225_600_000;
const SIX = { n: 6, f: 1, k: 1, requestTimeoutMs: 2000, nowMs: NOW_MS };

function guardians(overrides: (replica: number) => Partial<GuardianStatus> = () => ({})): GuardianReport[] {
  return Array.from({ length: 6 }, (_, replica) => ({
    up: true,
    ...sampleGuardianStatus(replica, NOW_MS, overrides(replica)),
  }));
}

function replicas(): ReplicaReport[] {
  return Array.from({ length: 6 }, (_, replica) => ({ up: true, ...sampleReplicaStatus(replica) }));
}

function verdictOf(reports: ReplicaReport[], guardianReports: GuardianReport[] | undefined) {
  return statusReport(reports, guardianReports, clusterHealth(reports, guardianReports, SIX), SIX);
}

describe('the guarantee in the guardians reports', () => {
  it('a cluster within its bounds is healthy and exits 0, with every exposure against T', () => {
    const status = verdictOf(replicas(), guardians());
    assert.equal(status.verdict, 'healthy');
    assert.equal(statusExitCode(status), STATUS_EXIT_CODES.healthy);
    assert.deepEqual(
      status.guarantee?.exposures.map((exposure) => [
        exposure.replica,
        exposure.exposureMs,
        exposure.guaranteeMs,
      ]),
      [0, 1, 2, 3, 4, 5].map((replica) => [replica, 41_000 + 4_000 * replica, 64_000]),
    );
  });

  it('a rejuvenation is timed against T_D, and one past it makes the cluster degraded', () => {
    const startedAtMs = NOW_MS - 9_500;
    const reports = guardians((replica) =>
      replica === 2
        ? {
            keyEpoch: 5,
            recovery: {
              inProgress: true,
              kind: 'proactive',
              reason: 'scheduled',
              step: 'transferring-state',
              startedAtMs,
              stepStartedAtMs: NOW_MS - 3_000,
            },
          }
        : {},
    );
    const findings = guaranteeFindings(reports, SIX);
    const rejuvenation = findings.exposures[2]!.rejuvenation!;
    assert.equal(rejuvenation.elapsedMs, 9_500);
    assert.equal(
      describeTimedRejuvenation(rejuvenation),
      'step transferring-state (3 s), key epoch 5, 9.5 s of T_D = 8 s',
    );
    assert.deepEqual(findings.overdue, [
      'the rejuvenation of replica 2 has run 9.5 s, over T_D = 8 s (at step transferring-state)',
    ]);
    const status = verdictOf(replicas(), reports);
    assert.equal(status.verdict, 'degraded');
    assert.equal(statusExitCode(status), STATUS_EXIT_CODES.unhealthy);
  });

  it('a replica in safe mode (a fork beyond f) makes the cluster unsafe, naming the culprits', () => {
    const reports = replicas().map((report) =>
      report.up && report.replica === 2 ? { ...report, safeMode: true, safeModeCulprits: [0, 4] } : report,
    );
    const status = verdictOf(reports, guardians());
    assert.equal(status.verdict, 'unsafe');
    assert.equal(statusExitCode(status), STATUS_EXIT_CODES.unhealthy);
    assert.match(status.reasons[0]!, /^replica 2 is in safe mode: .*culprits 0, 4/);
  });

  it('a replica exposed longer than T makes the cluster unsafe, saying which and why', () => {
    const status = verdictOf(
      replicas(),
      guardians((replica) => (replica === 4 ? { exposureMs: 70_000 } : {})),
    );
    assert.equal(status.verdict, 'unsafe');
    assert.equal(statusExitCode(status), STATUS_EXIT_CODES.unhealthy);
    assert.match(status.reasons[0]!, /^replica 4 has been exposed for 70 s, over T = 64 s: /);
  });

  it('more than f replicas proven faulty and not rejuvenated since is unsafe; f of them is not', () => {
    const evidence = (accused: number, atMs: number) => ({
      atMs,
      kind: 'lying-reply',
      accused,
      reporter: 'client admin',
      valid: true,
      detail: 'lying reply',
    });
    // Replica 1 was rejuvenated after its evidence; replica 3 was not.
    const one = guardians(() => ({ evidence: [evidence(1, NOW_MS - 100_000), evidence(3, NOW_MS - 1_000)] }));
    assert.deepEqual(guaranteeFindings(one, SIX).unsafe, []);
    const two = guardians(() => ({
      evidence: [
        evidence(3, NOW_MS - 1_000),
        evidence(5, NOW_MS - 2_000),
        { ...evidence(0, NOW_MS), valid: false },
      ],
    }));
    assert.deepEqual(guaranteeFindings(two, SIX).unsafe, [
      'replicas 3 and 5 stand proven faulty (valid evidence, not rejuvenated since): more than f = 1 at once, beyond what the protocol tolerates',
    ]);
  });

  it('nothing answering is unreachable, exit 2; a report counts only for the replica it names', () => {
    const unanswered = Array.from({ length: 6 }, (_, replica) => ({
      up: false as const,
      replica,
      error: 'connect ECONNREFUSED',
    }));
    const downReplicas: ReplicaReport[] = unanswered;
    const downGuardians: GuardianReport[] = unanswered;
    const status = verdictOf(downReplicas, downGuardians);
    assert.equal(status.verdict, 'unreachable');
    assert.equal(statusExitCode(status), STATUS_EXIT_CODES.unreachable);
    assert.deepEqual(status.reasons, [
      'no replica or guardian answered its admin port (replica 0: connect ECONNREFUSED)',
    ]);
    const misplaced = guardians((replica) => (replica === 1 ? { replica: 2, exposureMs: 1e9 } : {}));
    assert.deepEqual(guaranteeFindings(misplaced, SIX).unsafe, []);
  });
});
