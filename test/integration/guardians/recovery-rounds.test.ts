/**
 * Proactive recovery on real processes, as a smoke test: six guardians (f = 1, k = 1) rejuvenate
 * the replicas in their slots while a client keeps working; never more than k recover at once.
 *
 * Meanwhile an intruder steals the session keys of four replicas one after another, each shortly
 * before that replica's proactive slot (never holding more than one replica at a time), and once
 * the last of those slots has ended it uses them, as the attacker of the key-epoch issue did: a
 * handshake under a retired epoch is refused; equivocation evidence framing a rejuvenated replica
 * with its retired key is refused by the guardians; a checkpoint proof over a made-up state,
 * "signed" by a quorum of retired epochs and sent from a replica the intruder holds now, is
 * refused by every replica; and the client workload never sees a forged value.
 *
 * Reduced to what only real processes show (issue 12): the test no longer waits for two
 * rejuvenations of every replica, only for the four whose keys were stolen. What that wait
 * showed over many periods is stated elsewhere: every replica rejuvenated in every period, at
 * most k at once and exposure within T by the simulator's recovery checker
 * (src/sim/checkers/recovery.ts, test/sim/recovery.test.ts) and claims 1, 2 and 18 of
 * test/recovery/guardian-core.test.ts; retired epochs refused after their grace by the
 * key-epoch checker (test/sim/key-theft.test.ts) and claim 13.
 */
import * as assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  digest,
  keyEpoch,
  replicaId,
  sequenceNumber,
  signature,
  viewNumber,
} from '../../../src/messages/ids.js';
import { keyFromBase64, signingKeyPairFromSeed } from '../../../src/crypto/keys.js';
import { signBytes } from '../../../src/crypto/signatures.js';
import { encodeEvidence, encodeMessage } from '../../../src/messages/codec.js';
import { proposalPayload } from '../../../src/messages/signing.js';
import type { Evidence } from '../../../src/messages/types.js';
import { toBase64 } from '../../../src/runtime/ipc.js';
import { scheduleOf } from '../../../src/config/cluster-config.js';
import { mostAtOnce, nextProactiveSlotOf, type ScheduleParameters } from '../../../src/core/schedule.js';
import { OWED_PREFIX } from '../../../src/recovery/core/guardian-core.js';
import type { GuardianStatus, RecoveryRecord } from '../../../src/runtime/guardian-report.js';
import { RATE_LIMITED_LOG_LIMITS } from '../../../src/transport/rate-limited-log.js';
import { TcpTransport } from '../../../src/transport/tcp.js';
import type { NodeId } from '../../../src/transport/transport.js';
import { logLines, type TestCluster, startTestCluster, waitFor } from '../helpers.js';
import {
  forgeCheckpointCertificate,
  impostorTransport,
  type StolenKeys,
  stealKeys,
  up,
  Workload,
} from './shared.js';

const RECOVERY_BOUND_MS = 6000;
/**
 * A rejuvenation starting this long after the cluster was ready had a standby: the guardian
 * prepares it 3 s before the slot (claim 12), once its replica runs.
 */
const STANDBY_SETTLE_MS = 8000;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));

function recoveriesOf(reports: readonly GuardianStatus[]): { replica: number; record: RecoveryRecord }[] {
  return reports.flatMap((report) =>
    report.recentRecoveries.map((record) => ({ replica: report.replica, record })),
  );
}

/** Pairs of recoveries of different replicas that overlap, in words (for a failure message). */
function overlapsOf(entries: readonly { replica: number; record: RecoveryRecord }[]): string[] {
  const span = ({ replica, record }: { replica: number; record: RecoveryRecord }): string =>
    `replica ${replica} ${record.kind} from ${record.startedAtMs} for ${record.durationMs} ms (${record.steps.map((step) => step.step).join(', ')})`;
  const found: string[] = [];
  for (const [index, a] of entries.entries())
    for (const b of entries.slice(index + 1))
      if (a.record.startedAtMs < endOf(b.record) && b.record.startedAtMs < endOf(a.record))
        found.push(`${span(a)} and ${span(b)}`);
  return found;
}

/**
 * How late a recovery's end may be recorded past the start of the next slot and still count as
 * back to back: a recovery that runs to the end of its slot is ended by a timer, which fires (and
 * the guardian records the end) a few ms late on a loaded machine, while the next guardian starts
 * on time. By then the replica runs and catches up; a recovery started outside its own slot, or
 * not stopped at its slot's end, would overlap by seconds.
 */
const TIMER_LATENESS_ALLOWANCE_MS = 250;

/** The end of a recovery as the schedule counts it (see TIMER_LATENESS_ALLOWANCE_MS). */
function endOf(record: RecoveryRecord): number {
  return record.startedAtMs + record.durationMs - TIMER_LATENESS_ALLOWANCE_MS;
}

/** The most recoveries that overlap at any instant. */
function maximumOverlap(records: readonly RecoveryRecord[]): number {
  return mostAtOnce(records.map((record) => ({ fromMs: record.startedAtMs, toMs: endOf(record) })));
}

describe('proactive recovery on real processes', { timeout: 300_000 }, () => {
  let test: TestCluster;
  let schedule: ScheduleParameters;
  /** When every replica of the cluster was ready. */
  let readyAtMs = 0;
  /** Keys of four replicas, each stolen shortly before its slot, and when that slot ended. */
  const stolen: (StolenKeys & { slotEndMs: number })[] = [];

  before(async () => {
    test = await startTestCluster({
      f: 1,
      k: 1,
      recovery: { recoveryBoundMs: RECOVERY_BOUND_MS },
      allowFaultInjection: true,
    });
    schedule = scheduleOf(test.config);
    readyAtMs = Date.now();
  });

  after(async () => {
    await test?.stop();
  });

  async function steal(replica: number): Promise<StolenKeys> {
    const loot = await stealKeys(test.config, replica);
    assert.ok(loot !== null, `replica ${replica} gave no keys`);
    return loot;
  }

  /** Connects to `target` pretending to be `loot.replica` with the stolen key; true if admitted. */
  async function impersonate(loot: StolenKeys, target: number): Promise<boolean> {
    const transport = await impostorTransport(test.config, loot, undefined, [target]);
    try {
      const deadline = Date.now() + 3000;
      while (Date.now() < deadline) {
        if (transport.connectedPeers().length > 0) return true;
        await sleep(50);
      }
      return false;
    } finally {
      await transport.close();
    }
  }

  /**
   * A replica not in `excluded` that is not recovering and whose own slot is not due within
   * `clearMs`, waiting for one if need be (with four replicas excluded, both others may be busy).
   */
  async function quietReplica(excluded: readonly number[], clearMs: number): Promise<number> {
    return waitFor(
      `a replica outside ${excluded.join(', ')} clear of its slot for ${clearMs} ms`,
      async () => {
        const now = Date.now();
        for (let id = 0; id < test.config.n; id++) {
          if (excluded.includes(id)) continue;
          const next = nextProactiveSlotOf(schedule, replicaId(id), now);
          const running = nextProactiveSlotOf(schedule, replicaId(id), now - schedule.recoveryBoundMs - 2000);
          if (next.startMs - now > clearMs && running.startMs === next.startMs) return id;
        }
        return null;
      },
      schedule.periodMs,
    );
  }

  /** The intruder's round: the keys of four replicas, each taken 1.5-3 s before its slot. */
  async function stealBeforeFourRejuvenations(): Promise<void> {
    while (stolen.length < 4) {
      const excluded = stolen.map((loot) => loot.replica);
      const { replica, slotStartMs } = await waitFor(
        'a replica due in 1.5..3 s',
        async () => {
          const now = Date.now();
          for (let id = 0; id < test.config.n; id++) {
            if (excluded.includes(id)) continue;
            const slot = nextProactiveSlotOf(schedule, replicaId(id), now);
            if (slot.startMs - now >= 1500 && slot.startMs - now <= 3000)
              return { replica: id, slotStartMs: slot.startMs };
          }
          return null;
        },
        schedule.periodMs + 10_000,
      );
      stolen.push({ ...(await steal(replica)), slotEndMs: slotStartMs + schedule.recoveryBoundMs });
    }
  }

  it('rejuvenates the replicas whose keys were stolen, at most k at once, with no client errors', async () => {
    const workload = new Workload(await test.kv(), 'rounds');
    let reports: GuardianStatus[];
    try {
      await stealBeforeFourRejuvenations();
      reports = await waitFor(
        'the rejuvenations of the four replicas whose keys were stolen',
        async () => {
          const current = up(await test.guardians());
          const done = stolen.every((loot) =>
            current.some(
              (report) =>
                report.replica === loot.replica &&
                report.keyEpoch > loot.keyEpoch &&
                !report.recovery.inProgress &&
                report.recentRecoveries.length > 0,
            ),
          );
          // Every rejuvenation archived the stopped process's accountability log, and its audit
          // passed (logged just after the rejuvenation ends).
          const audited = current.every(
            (report) =>
              report.recentRecoveries.length === 0 ||
              /accountability log audited/.test(test.log(replicaId(report.replica))),
          );
          return done && audited ? current : null;
        },
        // A hang guard: after the last slot, its rejuvenation's audit of the accountability log,
        // paced to a fifth of a core (BACKGROUND_PACING); 30 s was short twice in loaded suite
        // runs (2026-12-02), each time passing alone.
        Math.max(...stolen.map((loot) => loot.slotEndMs)) - Date.now() + 75_000,
      );
      const all = recoveriesOf(reports);
      // The reasons go into the message: a loaded suite run once saw a reactive recovery here
      // (2026-12-02) with nothing to tell a crash ("the replica process crashed", also after a
      // failed rejuvenation) from an accusation.
      // A rejuvenation owed is no accusation of misbehaviour: a proactive slot kept its replica's
      // disk because other replicas looked out (not voting, or their guardians' reports older than
      // REPLICA_STATE_STALE_MS, which a loaded suite run made happen once, 2026-12-03), and the
      // next reactive slot does the full rejuvenation. Only accusations are unexpected here.
      const reactive = all
        .filter(({ record }) => record.kind !== 'proactive' && !record.reason.startsWith(OWED_PREFIX))
        .map(({ replica, record }) => `replica ${replica} ${record.kind}: ${record.reason}`);
      assert.deepEqual(reactive, [], 'no replica misbehaved, so none is recovered reactively');
      assert.ok(
        maximumOverlap(all.map(({ record }) => record)) <= test.config.k,
        `never more than k recovering at once: ${overlapsOf(all).join('; ')}`,
      );
      for (const report of reports) {
        // Key epochs only move forward, one per rejuvenation.
        const epochs = report.recentRecoveries.map((record) => record.keyEpoch);
        assert.deepEqual(
          epochs,
          [...epochs].sort((a, b) => b - a),
        );
        assert.ok(report.exposureMs <= report.guaranteeMs, `replica ${report.replica} exposed longer than T`);
      }
      const durations = all.map(({ record }) => record.durationMs);
      process.stdout.write(
        `# recoveries: ${durations.length}, longest ${Math.max(...durations)} ms, T_D = ${RECOVERY_BOUND_MS} ms; ` +
          `${workload.completed} client operations\n`,
      );
      for (const { replica, record } of all) {
        process.stdout.write(
          `# r${replica} ${record.durationMs} ms: ${record.steps.map((step) => `${step.step} ${step.durationMs}`).join(', ')}\n`,
        );
      }
    } finally {
      await workload.stop();
    }
    assert.deepEqual(workload.errors, []);
    assert.ok(workload.completed > 100, `only ${workload.completed} operations completed`);
    // A proactive slot well after the start had a standby, which said when it had booted (the
    // guardian decides on it whether the recovering process starts at a low priority). Not a
    // slot right after the start: a guardian still starting its replica prepares no standby.
    const withStandby = reports.filter((report) =>
      report.recentRecoveries.some((record) => record.startedAtMs >= readyAtMs + STANDBY_SETTLE_MS),
    );
    assert.ok(withStandby.length > 0, 'no rejuvenation late enough to have a standby');
    for (const report of withStandby)
      assert.match(
        test.log(replicaId(report.replica)),
        /"standby":true,"bootMs":\d+,"msg":"replica process booted"/,
        `guardian ${report.replica}`,
      );
    // Every stolen epoch was replaced by its replica's rejuvenation (checked above), and that
    // slot is over: no grace is left for any of them.
    await sleep(Math.max(...stolen.map((loot) => loot.slotEndMs)) + 500 - Date.now());
  });

  it("refuses a replica's session key stolen before its rejuvenation, and accepts the new one", async () => {
    // Between replicas the lower id dials and the higher one only accepts (docs/transport.md):
    // the impostor reaches only targets above the replica it pretends to be, so the target must be
    // one of those (else nothing is ever dialed and there is no refusal to log).
    const old = stolen.find((loot) => loot.replica < test.config.n - 1)!;
    // Both attempts (3 s each at most) happen while the target is clear of its slot: a target
    // being rejuvenated refuses everybody. The current key goes first: the wait for the logged
    // refusal below (up to two log intervals) once outlasted the clear window and the second
    // attempt met the target in its rejuvenation.
    const target = await quietReplica(
      Array.from({ length: old.replica + 1 }, (_, id) => id),
      8000,
    );
    const current = await waitFor(`replica ${old.replica} serving its new keys`, async () => {
      const loot = await steal(old.replica).catch(() => null);
      return loot !== null && loot.keyEpoch > old.keyEpoch ? loot : null;
    });
    // The same procedure with the current key succeeds: the refusal below is about the epoch.
    assert.equal(await impersonate(current, target), true, 'the current key is accepted');
    const triedAtMs = Date.now();
    assert.equal(await impersonate(old, target), false, 'the key of the retired epoch is refused');
    // Logged once per source and kind per interval: the line itself, or the count of those
    // suppressed since an earlier one (other refusals of retired epochs happen during rounds).
    // That count is written once the interval after the earlier line is over, by a timer that
    // may itself be an interval late: up to two intervals after the attempt.
    await waitFor(
      'a logged refusal of the old epoch',
      async () =>
        logLines(test.replicaLog(replicaId(target))).some(
          (line) =>
            line.timeMs >= triedAtMs &&
            ((line.msg === 'rejected' &&
              new RegExp(`replica ${old.replica} key epoch \\d+ is not accepted`).test(
                String(line.reason),
              )) ||
              (line.msg === 'rejections suppressed by the log rate limit' &&
                /key epoch N is not accepted/.test(String(line.key)))),
        ),
      2 * RATE_LIMITED_LOG_LIMITS.defaultIntervalMilliseconds + 5000,
    );
  });

  it('a guardian refuses equivocation evidence made with a rejuvenated replica’s retired key', async () => {
    const framed = stolen[0]!;
    const key = signingKeyPairFromSeed(keyFromBase64(framed.signingSeed));
    const proposal = (batch: number) => {
      const batchDigest = digest(new Uint8Array(32).fill(batch));
      return {
        view: viewNumber(3),
        sequence: sequenceNumber(500),
        batchDigest,
        keyEpoch: keyEpoch(framed.keyEpoch),
        signature: signature(
          signBytes(key, proposalPayload(viewNumber(3), sequenceNumber(500), batchDigest)),
        ),
      };
    };
    const forged: Evidence = {
      kind: 'equivocation',
      accused: replicaId(framed.replica),
      first: proposal(1),
      second: proposal(2),
    };
    // Handed to a guardian as its own replica would hand it (the intruder holds that replica now).
    const reporter = await quietReplica([framed.replica], 4000);
    const entry = test.config.replicas[reporter]!;
    const sentAtMs = Date.now();
    const response = await fetch(
      `http://${entry.adminHost}:${entry.guardianAdminPort}/debug/replica-message`,
      {
        method: 'POST',
        body: JSON.stringify({ type: 'evidence', evidence: toBase64(encodeEvidence(forged)) }),
      },
    );
    assert.equal(response.status, 200);
    const rejected = await waitFor(`guardian ${reporter} to reject the evidence`, async () => {
      const [report] = up(await test.guardians()).filter((candidate) => candidate.replica === reporter);
      return report?.evidence.find(
        (record) => !record.valid && record.accused === framed.replica && record.atMs >= sentAtMs,
      );
    });
    assert.match(rejected.detail, /evidence counts only against the epoch a replica speaks with now/);
    for (const report of up(await test.guardians()))
      assert.ok(
        !report.evidence.some(
          (record) => record.valid && record.accused === framed.replica && record.atMs >= sentAtMs,
        ),
        `guardian ${report.replica} took the retired key's evidence as proof`,
      );
  });

  it('every replica refuses a checkpoint proof over a made-up state signed by a quorum of retired epochs', async () => {
    const workload = new Workload(await test.kv(), 'forged');
    const statuses = await Promise.all(
      test.config.replicas.map(async (entry) => {
        try {
          const response = await fetch(`http://${entry.adminHost}:${entry.adminPort}/status`);
          return ((await response.json()) as { stableCheckpoint: number }).stableCheckpoint;
        } catch {
          return 0;
        }
      }),
    );
    // A checkpoint ahead of everybody, over a state nobody computed, "certified" by four retired
    // epochs. Far ahead: at 4 intervals the workload carried the cluster past it during the test,
    // and a replica drops a proof for a sequence it has made stable without a word.
    const interval = test.config.protocol.checkpointInterval;
    const sequence = sequenceNumber((Math.floor(Math.max(...statuses) / interval) + 1000) * interval);
    const stateRoot = digest(new Uint8Array(32).fill(0xee));
    const certificate = forgeCheckpointCertificate(stolen, sequence, stateRoot);
    // Sent from a replica the intruder holds now, with that replica's current keys. Not the
    // highest id: between replicas the lower id dials (docs/transport.md), so an impostor of the
    // highest one dials nobody (a run timed out waiting for it to connect).
    const sender = await quietReplica([...stolen.map((loot) => loot.replica), test.config.n - 1], 8000);
    const current = await steal(sender);
    const frame = encodeMessage({ kind: 'checkpoint-proof', certificate });
    // The real replica holds the same identity: each side's newer connection replaces the older
    // one, so the impostor's may last only moments. The proof goes out the moment one is up.
    const everConnected = new Map<number, Extract<NodeId, { kind: 'replica' }>>();
    let impostor: TcpTransport | null = null;
    const transport = await impostorTransport(test.config, current, {
      onFrame: () => undefined,
      onPeerStateChange: (peer, connected) => {
        if (!connected || peer.kind !== 'replica') return;
        everConnected.set(peer.id, peer);
        impostor?.send(peer, frame);
      },
    });
    impostor = transport;
    const sentAtMs = Date.now();
    try {
      // Between replicas one side dials (docs/transport.md), so the impostor reaches those it
      // may dial; each of them must refuse the proof.
      const reached = await waitFor('the impostor to connect', async () => {
        for (const peer of transport.connectedPeers())
          if (peer.kind === 'replica') everConnected.set(peer.id, peer);
        return everConnected.size > 0 ? [...everConnected.values()] : null;
      });
      let lastSentMs = 0;
      await waitFor(`replicas ${reached.map((peer) => peer.id).join(', ')} to refuse the proof`, async () => {
        if (Date.now() - lastSentMs > 1000) {
          for (const peer of reached) transport.send(peer, frame);
          lastSentMs = Date.now();
        }
        return reached.every((peer) =>
          logLines(test.replicaLog(replicaId(peer.id))).some(
            (line) =>
              line.timeMs >= sentAtMs &&
              line.msg === 'rejected-input' &&
              line.what === 'checkpoint-proof' &&
              line.reason === 'certificate does not verify',
          ),
        );
      });
      // Nobody adopted it, and the client read only what it wrote.
      await sleep(2000);
    } finally {
      await transport.close();
      await workload.stop();
    }
    for (const entry of test.config.replicas) {
      const adopted = logLines(test.replicaLog(replicaId(entry.id))).filter(
        (line) =>
          line.msg === 'checkpoint-stable' &&
          (line.sequence === sequence || String(line.root).startsWith('eeeeeeee')),
      );
      assert.deepEqual(adopted, [], `replica ${entry.id} adopted the forged checkpoint`);
    }
    assert.deepEqual(workload.errors, []);
  });
});
