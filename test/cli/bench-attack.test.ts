/**
 * `phalanx bench attack`'s pure parts: the --attacks list, which attacks a cluster can run, the
 * ratios to the fault-free point, the table, and the culprit's detection read from replica logs.
 */
import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InvalidArgumentError } from 'commander';
import {
  ATTACK_NAMES,
  type AttackResult,
  attackTable,
  faultFreeReference,
  firstDetectionInLogs,
  firstRejuvenationSince,
  parseAttacks,
  parseLogRecords,
  type PointMeasurement,
  whyNotRunnable,
  withRatios,
} from '../../src/cli/bench-attack.js';
import type { RecoveryRecord } from '../../src/runtime/guardian-report.js';

const SHAPE = { n: 4, f: 1, k: 0, guardians: false };

function point(overrides: Partial<PointMeasurement>): PointMeasurement {
  return {
    attack: 'none',
    culprit: null,
    clients: 10,
    requests: 2000,
    completed: true,
    errors: 0,
    duration_s: 4,
    throughput_ops_s: 500,
    latency_ms_p50: 15,
    latency_ms_p99: 50,
    whole_duration_s: 4.5,
    whole_throughput_ops_s: 480,
    whole_latency_ms_p99: 60,
    cpu_us_per_op: 3000,
    cpu_us_per_op_clients: 600,
    view_changes: 0,
    detected_after_s: null,
    detected_by: null,
    rejuvenated_after_s: null,
    rejuvenated_by: null,
    rejuvenation_in_window: null,
    crashed: [],
    attacker_operations: null,
    ...overrides,
  };
}

describe('parseAttacks', () => {
  it('takes known names in the order given, each once', () => {
    assert.deepEqual(parseAttacks('flood, silent-leader,flood'), ['flood', 'silent-leader']);
  });

  it('refuses unknown names and an empty list, naming the known ones', () => {
    assert.throws(
      () => parseAttacks('flood,nope'),
      (error: unknown) => {
        assert.ok(error instanceof InvalidArgumentError);
        assert.match(error.message, /unknown attack "nope"/);
        for (const name of ATTACK_NAMES) assert.ok(error.message.includes(name), name);
        return true;
      },
    );
    assert.throws(() => parseAttacks(' , '), InvalidArgumentError);
  });
});

describe('whyNotRunnable', () => {
  it('runs the runtime fault modes and the client attacks on any cluster', () => {
    for (const attack of ['stalling-leader', 'slow-leader', 'silent-leader', 'equivocate', 'flood'] as const)
      assert.equal(whyNotRunnable(attack, false), null, attack);
    assert.equal(whyNotRunnable('client-flood', false), null);
    assert.equal(whyNotRunnable('connection-churn', true), null);
  });

  it('runs the attacks on a rejuvenation with guardians only', () => {
    for (const attack of [
      'rejuvenation',
      'lying-source',
      'stalling-source',
      'silent-during-rejuvenation',
    ] as const) {
      assert.match(whyNotRunnable(attack, false)!, /--guardians/, attack);
      assert.equal(whyNotRunnable(attack, true), null, attack);
    }
  });
});

describe('withRatios', () => {
  const faultFree = point({});

  it('divides by the fault-free point of the same run, and judges the target', () => {
    const under = withRatios(
      point({ attack: 'flood', throughput_ops_s: 450, latency_ms_p99: 100, whole_throughput_ops_s: 240 }),
      faultFree,
      SHAPE,
    );
    assert.equal(under.throughput_ratio, 0.9);
    assert.equal(under.p99_ratio, 2);
    assert.equal(under.whole_throughput_ratio, 0.5);
    assert.equal(under.whole_p99_ratio, 1);
    assert.equal(under.meets_target, true);
    assert.equal(under.n, 4);
    const slow = withRatios(point({ attack: 'flood', latency_ms_p99: 151 }), faultFree, SHAPE);
    assert.equal(slow.meets_target, false);
    const starved = withRatios(point({ attack: 'flood', throughput_ops_s: 390 }), faultFree, SHAPE);
    assert.equal(starved.meets_target, false);
  });

  it('gives the fault-free point ratios of one and no verdict', () => {
    const itself = withRatios(faultFree, faultFree, SHAPE);
    assert.equal(itself.throughput_ratio, 1);
    assert.equal(itself.p99_ratio, 1);
    assert.equal(itself.meets_target, null);
  });

  it('has no ratio where either point measured nothing, and misses the target then', () => {
    const failed = withRatios(point({ attack: 'flood', requests: 0, error: 'no cluster' }), faultFree, SHAPE);
    assert.equal(failed.throughput_ratio, null);
    assert.equal(failed.meets_target, false);
    const noBaseline = withRatios(point({ attack: 'flood' }), point({ requests: 0 }), SHAPE);
    assert.equal(noBaseline.p99_ratio, null);
  });
});

describe('faultFreeReference', () => {
  it('is the mean of the fault-free points that measured something', () => {
    const reference = faultFreeReference([
      point({ throughput_ops_s: 400, latency_ms_p99: 40 }),
      point({ requests: 0, error: 'no cluster' }),
      point({ throughput_ops_s: 600, latency_ms_p99: 80 }),
    ])!;
    assert.equal(reference.throughput_ops_s, 500);
    assert.equal(reference.latency_ms_p99, 60);
    const ratios = withRatios(point({ throughput_ops_s: 400 }), reference, SHAPE);
    assert.equal(ratios.throughput_ratio, 0.8);
    assert.equal(faultFreeReference([point({ requests: 0 })]), null);
  });
});

describe('attackTable', () => {
  const faultFree = point({});
  const rows: AttackResult[] = [
    withRatios(faultFree, faultFree, SHAPE),
    withRatios(
      point({
        attack: 'stalling-leader',
        culprit: 'replica 0',
        completed: false,
        throughput_ops_s: 6,
        latency_ms_p99: 1838,
        whole_duration_s: 30,
      }),
      faultFree,
      SHAPE,
    ),
    withRatios(
      point({ attack: 'silent-leader', culprit: 'replica 0', detected_after_s: 2, detected_by: 'suspicion' }),
      faultFree,
      SHAPE,
    ),
    withRatios(point({ attack: 'flood', requests: 0, error: 'replicas not ready' }), faultFree, SHAPE),
  ];
  const table = attackTable(rows);

  it('prints a header, a rule and one row per point, every row as wide as the header', () => {
    assert.equal(table.length, 2 + rows.length);
    assert.match(table[0]!, /^\| attack +\| culprit +\| +ops\/s \| +ratio \|/);
    assert.match(table[0]!, /detected after .*\| +window \| +target \|$/);
    assert.ok(!table[0]!.includes('rejuvenated'), 'no rejuvenation column without guardians');
    for (const line of table) assert.equal(line.length, table[0]!.length, line);
  });

  it('says which points were cut, detected, and met or missed the target', () => {
    assert.match(table[2]!, /^\| none +\| - +\| +500 \| +1\.00 \|.*\| +done 4\.5 s \| +- \|$/);
    assert.match(
      table[3]!,
      /^\| stalling-leader \| replica 0 +\| +6 \| +0\.01 \|.* never \|.* cut 30\.0 s \| +missed \|$/,
    );
    assert.match(table[4]!, /\| 2\.0 s \(suspicion\) \|.*\| +met \|$/);
    assert.match(table[5]!, /\| failed: replicas not ready \|$/);
  });

  it('gives a point without a culprit (the rejuvenation alone) no detection and no rejuvenation of its own', () => {
    const alone = attackTable([
      { ...rows[0]!, guardians: true },
      {
        ...rows[0]!,
        attack: 'rejuvenation',
        guardians: true,
        rejuvenation_in_window: {
          replica: 0,
          kind: 'proactive',
          duration_s: 3.5,
          exceeded_bound: false,
          state_transfer_s: 0,
        },
      },
    ]);
    assert.match(alone[3]!, /^\| rejuvenation +\| - +\|.*\| +- \| +- \| +replica 0, 3\.5 s \|/);
  });

  it('adds the rejuvenation columns with guardians', () => {
    const guarded = attackTable([
      { ...rows[0]!, guardians: true },
      { ...rows[2]!, guardians: true, rejuvenated_after_s: 7.25, rejuvenated_by: 'reactive' },
      {
        ...rows[2]!,
        attack: 'lying-source',
        guardians: true,
        rejuvenation_in_window: {
          replica: 0,
          kind: 'proactive',
          duration_s: 4.2,
          exceeded_bound: false,
          state_transfer_s: 0.8,
        },
      },
      {
        ...rows[2]!,
        attack: 'stalling-source',
        guardians: true,
        rejuvenation_in_window: {
          replica: 1,
          kind: 'proactive',
          duration_s: 12,
          exceeded_bound: true,
          state_transfer_s: 0,
        },
      },
    ]);
    assert.match(guarded[0]!, /\| rejuvenated after \| +rejuvenation in window \|/);
    assert.match(guarded[3]!, /\| +7\.3 s \(reactive\) \| +- \|/);
    assert.match(guarded[4]!, /\| replica 0, 4\.2 s \(transfer 0\.8 s\) \|/);
    assert.match(guarded[5]!, /\| +replica 1, 12\.0 s, over T_D \|/);
    for (const line of guarded) assert.equal(line.length, guarded[0]!.length, line);
  });
});

describe('detection in replica logs', () => {
  const at = (ms: number): string => new Date(ms).toISOString();
  const log = [
    JSON.stringify({ level: 40, time: at(900), suspect: 0, msg: 'suspicion' }),
    'not json',
    JSON.stringify({ level: 30, time: at(1500), msg: 'view-installed', view: 1 }),
    JSON.stringify({ level: 40, time: at(2000), from: { kind: 'replica', id: 3 }, msg: 'rejected frame' }),
    JSON.stringify({ level: 40, time: at(2500), suspect: 0, reason: 'view change', msg: 'suspicion' }),
    JSON.stringify({
      level: 50,
      time: at(3000),
      evidence: 'equivocation',
      accused: 0,
      msg: 'misbehaviour proven',
    }),
    JSON.stringify({ level: 40, time: at(3500), from: 'client attacker-flood', msg: 'budget-exceeded' }),
    JSON.stringify({
      level: 40,
      time: at(3600),
      from: { kind: 'client', id: 'bench-10' },
      msg: 'rejected frame',
    }),
    JSON.stringify({
      level: 40,
      time: at(3700),
      source: 5,
      reason: 'chunk 2 does not match the certified state',
      msg: 'state-transfer-source-dropped',
    }),
  ].join('\n');
  const records = parseLogRecords(log);

  it('reads the JSON lines with their ISO times, skipping anything else', () => {
    assert.equal(records.length, 8);
    assert.equal(records[0]!.timeMs, 900);
    assert.equal(records[0]!.msg, 'suspicion');
  });

  it('finds the first suspicion, proof or refused input naming the culprit after the attack began', () => {
    assert.deepEqual(firstDetectionInLogs(records, { kind: 'replica', id: 0 }, 1000), {
      atMs: 2500,
      by: 'suspicion',
    });
    assert.deepEqual(firstDetectionInLogs(records, { kind: 'replica', id: 3 }, 1000), {
      atMs: 2000,
      by: 'input refused',
    });
    assert.deepEqual(firstDetectionInLogs(records, { kind: 'clients', names: ['attacker-flood'] }, 0), {
      atMs: 3500,
      by: 'input refused',
    });
    assert.deepEqual(firstDetectionInLogs(records, { kind: 'replica', id: 5 }, 0), {
      atMs: 3700,
      by: 'source dropped',
    });
    const proofOnly = records.filter((record) => record.msg !== 'suspicion');
    assert.deepEqual(firstDetectionInLogs(proofOnly, { kind: 'replica', id: 0 }, 0), {
      atMs: 3000,
      by: 'proof',
    });
  });

  it('does not take a client for another whose name it begins', () => {
    assert.equal(firstDetectionInLogs(records, { kind: 'clients', names: ['bench-1'] }, 0), null);
    assert.equal(firstDetectionInLogs(records, { kind: 'replica', id: 2 }, 0), null);
  });
});

describe('firstRejuvenationSince', () => {
  const recovery = (startedAtMs: number, overrides: Partial<RecoveryRecord> = {}): RecoveryRecord => ({
    kind: 'proactive',
    reason: 'schedule',
    startedAtMs,
    durationMs: 4240,
    steps: [
      { step: 'stopping', durationMs: 300 },
      { step: 'transferring-state', durationMs: 550 },
      { step: 'transferring-state', durationMs: 260 },
    ],
    exceededBound: false,
    keyEpoch: 2,
    ...overrides,
  });

  it('takes the earliest rejuvenation begun since the attack, of a replica other than the culprit', () => {
    const found = firstRejuvenationSince(
      [
        { up: true, replica: 0, recentRecoveries: [recovery(900), recovery(5000)] },
        { up: false, replica: 1 },
        {
          up: true,
          replica: 2,
          recentRecoveries: [recovery(3000, { exceededBound: true, kind: 'reactive' })],
        },
        { up: true, replica: 5, recentRecoveries: [recovery(1500)] },
      ],
      5,
      1000,
    );
    assert.deepEqual(found, {
      replica: 2,
      kind: 'reactive',
      duration_s: 4.2,
      exceeded_bound: true,
      state_transfer_s: 0.8,
    });
  });

  it("finds none when every rejuvenation began before the attack or was the culprit's", () => {
    assert.equal(
      firstRejuvenationSince(
        [
          { up: true, replica: 0, recentRecoveries: [recovery(900)] },
          { up: true, replica: 5, recentRecoveries: [recovery(1500)] },
        ],
        5,
        1000,
      ),
      null,
    );
  });
});
