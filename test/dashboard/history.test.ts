import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import {
  type ClientLatency,
  CATCHING_UP_LAG,
  DashboardHistory,
  HISTORY_LIMITS,
  historyBytes,
} from '../../src/dashboard/history.js';
import type { GuardianReport } from '../../src/runtime/guardian-report.js';
import { clusterHealth } from '../../src/runtime/health.js';
import type { ReplicaReport } from '../../src/runtime/status.js';
import { SAMPLE_RECOVERY, sampleGuardianStatus, sampleReplicaStatus } from './fake-replicas.js';

const CLUSTER = { n: 4, f: 1, k: 0 } as const;
const REQUEST_TIMEOUT_MS = 1000;
const START_MS = 1_767_225_600_000;

function history(sampleIntervalMs = 500, windowMs = 60 * 60 * 1000): DashboardHistory {
  return new DashboardHistory({ cluster: CLUSTER, sampleIntervalMs, windowMs });
}

/** One round at `nowMs`: every replica up with the sample status and `changes` (per replica). */
function round(
  target: DashboardHistory,
  nowMs: number,
  changes: (replica: number) => Partial<ReturnType<typeof sampleReplicaStatus>> = () => ({}),
  guardians?: GuardianReport[],
  latency: ClientLatency | null = null,
) {
  const replicas: ReplicaReport[] = [0, 1, 2, 3].map((replica) => ({
    up: true,
    ...sampleReplicaStatus(replica, changes(replica)),
  }));
  const health = clusterHealth(replicas, guardians, {
    ...CLUSTER,
    requestTimeoutMs: REQUEST_TIMEOUT_MS,
    nowMs,
  });
  return target.observe(nowMs, replicas, guardians, health, SAMPLE_RECOVERY, latency);
}

describe('dashboard history', () => {
  it('keeps the client latency a client beside the dashboard reported, and no figure where it reported none', () => {
    const kept = history(1000, 10_000);
    round(kept, START_MS, undefined, undefined, { p50Ms: 3.5, p99Ms: 21 });
    round(kept, START_MS + 1000);
    round(kept, START_MS + 2000, undefined, undefined, { p50Ms: 4, p99Ms: 30 });
    const series = kept.toJSON().series;
    assert.deepEqual(series.latencyP50Ms, [3.5, null, 4]);
    assert.deepEqual(series.latencyP99Ms, [21, null, 30]);
  });

  it('keeps at most an hour of samples in a ring whose size is fixed up front', () => {
    const kept = history(1000, 10_000);
    for (let second = 0; second < 25; second++) round(kept, START_MS + 1000 * second);
    const series = kept.toJSON().series;
    assert.equal(series.capacity, 10);
    assert.equal(series.atMs.length, 10);
    assert.deepEqual(
      series.atMs,
      Array.from({ length: 10 }, (_, index) => START_MS + 1000 * (15 + index)),
    );
    // One hour at 500 ms for n = 6: 7,200 samples of 24 numbers.
    assert.equal(historyBytes(6), 7200 * 26 * 8);
    assert.equal(history(100).toJSON().series.capacity, HISTORY_LIMITS.maxSamples, 'capped');
    // Rounds closer together than the sample interval are not sampled.
    const sparse = history(500);
    round(sparse, START_MS);
    assert.equal(round(sparse, START_MS + 100).sample, null);
    assert.notEqual(round(sparse, START_MS + 500).sample, null);
  });

  it("measures the committed rate as the quorum's, whatever a catching-up replica executes", () => {
    const kept = history(1000);
    let executed = [0, 0, 0, 0];
    const perSecond = [20, 20, 20, 478];
    let last;
    for (let second = 0; second < 4; second++) {
      last = round(kept, START_MS + 1000 * second, (replica) => ({
        requestsExecuted: executed[replica]!,
        lastExecuted: replica === 3 ? 100 + second : 1000 + second,
      }));
      executed = executed.map((count, replica) => count + perSecond[replica]!);
    }
    assert.equal(last!.health.progress.committedPerSecond, 20);
    assert.equal(last!.health.progress.executed, 1003);
    assert.deepEqual(last!.health.progress.catchingUp, [3]);
    assert.ok(1003 - 103 >= CATCHING_UP_LAG);
    assert.deepEqual(
      last!.sample?.replicas.map((replica) => replica.ratePerSecond),
      [20, 20, 20, 478],
    );
  });

  it('calls the cluster stalled when the executed sequence number stops while requests wait', () => {
    const kept = history(100);
    // Every replica says it executed lately (a figure it reports itself), but the sequence
    // number f + 1 of them reached does not move while old requests wait.
    const stuck = (replica: number) => ({
      lastExecuted: 1000 + replica,
      pendingRequests: 40,
      oldestPendingMs: 5_000,
      msSinceLastExecution: 10,
    });
    assert.equal(round(kept, START_MS, stuck).health.verdict, 'healthy');
    const later = round(kept, START_MS + 2 * REQUEST_TIMEOUT_MS, stuck).health;
    assert.equal(later.verdict, 'stalled');
    assert.match(later.reasons[0]!, /^no progress for 2 s: sequence number 1,002 while 40 requests wait$/);
    const moving = round(kept, START_MS + 2 * REQUEST_TIMEOUT_MS + 100, (replica) => ({
      ...stuck(replica),
      lastExecuted: 2000,
    })).health;
    assert.equal(moving.verdict, 'healthy');
    // An idle cluster is not stalled, however long nothing executes.
    assert.equal(round(kept, START_MS + 60_000, () => ({ lastExecuted: 2000 })).health.verdict, 'healthy');
  });

  it('calls the cluster unsafe when more than f replicas ran longer than T', () => {
    const kept = history();
    const guardians = (over: number[]): GuardianReport[] =>
      [0, 1, 2, 3].map((replica) => ({
        up: true,
        ...sampleGuardianStatus(replica, START_MS, over.includes(replica) ? { exposureMs: 70_000 } : {}),
      }));
    assert.equal(round(kept, START_MS, undefined, guardians([3])).health.verdict, 'healthy');
    const unsafe = round(kept, START_MS + 500, undefined, guardians([1, 3])).health;
    assert.equal(unsafe.verdict, 'unsafe');
    assert.match(unsafe.reasons[0]!, /^replicas 1 and 3 ran longer than T without a rejuvenation/);
  });

  it('groups evidence into one incident per accused and kind, each record counted once', () => {
    const kept = history();
    const record = (reporter: number, atMs: number) => ({
      atMs,
      kind: 'equivocation',
      accused: 2,
      reporter: `replica ${reporter}`,
      valid: true,
      detail: `proof seen by ${reporter}`,
    });
    const records = [record(0, START_MS), record(1, START_MS + 5), record(3, START_MS + 9)];
    const other = { ...record(0, START_MS + 20), kind: 'bad-signature', valid: false };
    const guardians: GuardianReport[] = [0, 1, 2, 3].map((replica) => ({
      up: true,
      ...sampleGuardianStatus(replica, START_MS, { evidence: replica === 0 ? [...records, other] : records }),
    }));
    round(kept, START_MS, undefined, guardians);
    const version = kept.logVersion;
    round(kept, START_MS + 500, undefined, guardians);
    assert.equal(kept.logVersion, version, 'nothing new, no new version');
    const incidents = kept.incidentList();
    assert.equal(incidents.length, 2);
    const equivocation = incidents.find((incident) => incident.kind === 'equivocation')!;
    assert.deepEqual(equivocation, {
      accused: 2,
      kind: 'equivocation',
      count: 3,
      firstSeenMs: START_MS,
      lastSeenMs: START_MS + 9,
      valid: 3,
      invalid: 0,
      reporters: ['replica 0', 'replica 1', 'replica 3'],
      proofs: ['proof seen by 0', 'proof seen by 1', 'proof seen by 3'],
    });
    assert.equal(incidents.find((incident) => incident.kind === 'bad-signature')!.invalid, 1);
    assert.equal(kept.toJSON().evidenceAtMs.length, 4);
  });
});
