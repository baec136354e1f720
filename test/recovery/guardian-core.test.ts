/**
 * The recovery claims of docs/intrusion-tolerance.md ("Recovery claims"), one test per claim,
 * on the pure GuardianCore (src/recovery/core/guardian-core.ts): no process, socket or clock.
 * A small harness plays the shells of a whole cluster: it delivers the broadcasts of each
 * guardian to the others, answers the rejuvenation's work at once (stopping, code checks, keys,
 * starts) and plays each replica process (it catches up after a delay the test chooses). The
 * last claims are fast-check properties over random runs.
 */
import * as assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { epochLifetimeOfSchedule } from '../../src/crypto/key-certificates.js';
import {
  exposureBoundMs,
  mostAtOnce,
  nextProactiveSlotOf,
  type ScheduleParameters,
  slotAt,
  slotsOfPeriod,
} from '../../src/core/schedule.js';
import { encodeEvidence } from '../../src/messages/codec.js';
import {
  digest,
  keyEpoch,
  replicaId,
  sequenceNumber,
  signature,
  viewNumber,
} from '../../src/messages/ids.js';
import type { Evidence } from '../../src/messages/types.js';
import {
  CertificateTable,
  DECISION_LEAD_MAX_MS,
  evidenceVerdict,
  type GuardianAction,
  GuardianCore,
  type GuardianEvent,
  LEADER_HANDOFF_LEAD_MS,
  LEADER_HANDOFF_MAX_MS,
  MAX_OWN_EVIDENCE_PER_SECOND,
  SLOT_LATENESS_MAX_MS,
  STANDBY_LEAD_MS,
  SUSPICION_RELAY_INTERVAL_MS,
} from '../../src/recovery/core/guardian-core.js';
import { certificate, SCHEDULE, TICK_MS } from './one-guardian.js';

const SKEW_MS = 1000;

function newCore(id: number, schedule = SCHEDULE): GuardianCore {
  return new GuardianCore({
    id: replicaId(id),
    schedule,
    persisted: { keyEpoch: 0, lastRejuvenationAtMs: null, lastSlot: null },
    certificates: [],
    clockSkewAllowanceMs: SKEW_MS,
    recoveringNiceShareOfTd: 0.25,
  });
}

/** Evidence of `kind` equivocation against `accused` (signatures are the harness's to judge). */
function equivocation(accused: number, salt = 0): Evidence {
  const proposal = (byte: number) => ({
    view: viewNumber(accused),
    sequence: sequenceNumber(1 + salt),
    batchDigest: digest(new Uint8Array(32).fill(byte)),
    keyEpoch: keyEpoch(1),
    signature: signature(new Uint8Array(64).fill(byte)),
  });
  return { kind: 'equivocation', accused: replicaId(accused), first: proposal(1), second: proposal(2) };
}

interface Recovery {
  readonly replica: number;
  readonly kind: string;
  readonly first: boolean;
  readonly beganAtMs: number;
  endedAtMs: number | null;
}

interface ClusterOptions {
  readonly schedule?: ScheduleParameters;
  /** How long replica `id`'s new process takes to catch up (Infinity: never). */
  readonly catchUpMs?: (id: number, nowMs: number) => number;
  /** Whether the shell finds evidence valid. */
  readonly evidenceValid?: (evidence: Evidence) => boolean;
  /** Whether the code check passes. */
  readonly codeOk?: (id: number) => boolean;
  readonly startAtMs?: number;
  /** How long the shell takes to answer each piece of a rejuvenation's work (0: at once). */
  readonly answerDelayMs?: (kind: GuardianAction['type']) => number;
}

/** The shells of a cluster of guardians, with replicas that catch up when the test says. */
class Cluster {
  readonly schedule: ScheduleParameters;
  readonly cores: GuardianCore[];
  nowMs: number;
  /** The cluster's view (its leader is view mod n), moved by the guardians' nudges. */
  view = 0;
  readonly recoveries: Recovery[] = [];
  readonly actions: { readonly replica: number; readonly atMs: number; readonly action: GuardianAction }[] =
    [];
  readonly #options: ClusterOptions;
  readonly #processes: {
    running: boolean;
    /** Started amnesiac by a rejuvenation (not from its disk, not a first start). */
    amnesiac: boolean;
    /** Started by a first start: back from its disk, it votes as soon as it has caught up. */
    first: boolean;
    caughtUpAtMs: number;
    sentCaughtUp: boolean;
    sentVoting: boolean;
  }[];
  readonly #queue: { replica: number; event: GuardianEvent }[] = [];
  /** Answers the shell gives later (its work takes time). */
  #delayed: { atMs: number; replica: number; event: GuardianEvent }[] = [];
  /** Replicas whose guardian is cut off (its events and messages are dropped). */
  readonly down = new Set<number>();

  constructor(options: ClusterOptions = {}) {
    this.#options = options;
    this.schedule = options.schedule ?? SCHEDULE;
    this.nowMs = options.startAtMs ?? 0;
    this.cores = Array.from({ length: this.schedule.n }, (_, id) => newCore(id, this.schedule));
    this.#processes = this.cores.map(() => ({
      running: false,
      amnesiac: false,
      first: false,
      caughtUpAtMs: Number.POSITIVE_INFINITY,
      sentCaughtUp: false,
      sentVoting: false,
    }));
    for (let id = 0; id < this.schedule.n; id++) this.feed(id, { type: 'started', now: this.nowMs });
  }

  /** Feeds an event and everything it causes, in order, until the cluster is quiet. */
  feed(replica: number, event: GuardianEvent): void {
    this.#queue.push({ replica, event });
    while (this.#queue.length > 0) {
      const next = this.#queue.shift()!;
      if (this.down.has(next.replica)) continue;
      for (const action of this.cores[next.replica]!.step(next.event)) this.#carryOut(next.replica, action);
    }
  }

  /** Runs the clock to `untilMs` in ticks of TICK_MS. */
  runUntil(untilMs: number, between?: (nowMs: number) => void): void {
    while (this.nowMs + TICK_MS <= untilMs) {
      this.nowMs += TICK_MS;
      between?.(this.nowMs);
      const due = this.#delayed.filter((entry) => entry.atMs <= this.nowMs);
      this.#delayed = this.#delayed.filter((entry) => entry.atMs > this.nowMs);
      for (const entry of due) this.feed(entry.replica, { ...entry.event, now: this.nowMs });
      for (let id = 0; id < this.schedule.n; id++) this.#tickReplica(id);
    }
  }

  of(replica: number, type: GuardianAction['type']): GuardianAction[] {
    return this.actions
      .filter((entry) => entry.replica === replica && entry.action.type === type)
      .map((entry) => entry.action);
  }

  rejuvenations(): Recovery[] {
    return this.recoveries.filter((recovery) => !recovery.first);
  }

  /** Replicas a rejuvenation started amnesiac that do not vote yet (they cannot vouch for anything). */
  amnesiacNotVoting(): number[] {
    return this.#processes.flatMap((process, id) =>
      process.running && process.amnesiac && !process.sentVoting ? [id] : [],
    );
  }

  #tickReplica(id: number): void {
    const process = this.#processes[id]!;
    const now = this.nowMs;
    if (process.running && !process.sentCaughtUp && now >= process.caughtUpAtMs) {
      process.sentCaughtUp = true;
      // As the real replica reports it: 'voting' at once when it votes (a first start's), else
      // 'caught-up' until the rejoin's view change.
      process.sentVoting = process.first;
      this.feed(id, { type: 'replica-progress', now, stage: process.first ? 'voting' : 'caught-up' });
    }
    // It votes once caught up and in a view it may vote in (the rejoin's view change is instant here).
    if (process.running && process.sentCaughtUp && !process.sentVoting && !this.cores[id]!.recovering) {
      process.sentVoting = true;
    }
    if (process.running && process.sentCaughtUp && !process.sentVoting && this.cores[id]!.recovering) {
      process.sentVoting = true;
      this.feed(id, { type: 'replica-progress', now, stage: 'voting' });
    }
    if (process.running)
      this.feed(id, {
        type: 'replica-status',
        now,
        view: this.view,
        rejoinAboveView: this.view,
        lastExecuted: Math.floor(now / 100),
        voting: process.sentVoting,
      });
    const connectedGuardians = this.cores
      .map((_, peer) => peer)
      .filter((peer) => peer !== id && !this.down.has(peer));
    this.feed(id, { type: 'tick', now, connectedGuardians });
  }

  #carryOut(replica: number, action: GuardianAction): void {
    const now = this.nowMs;
    this.actions.push({ replica, atMs: now, action });
    const delayMs = this.#options.answerDelayMs?.(action.type) ?? 0;
    const answer = (event: GuardianEvent) =>
      delayMs === 0
        ? this.#queue.push({ replica, event })
        : this.#delayed.push({ atMs: now + delayMs, replica, event });
    switch (action.type) {
      case 'broadcast':
        for (let peer = 0; peer < this.schedule.n; peer++) {
          if (peer === replica) continue;
          const message = action.message;
          switch (message.type) {
            case 'certificate':
              this.#queue.push({
                replica: peer,
                event: { type: 'certificate-verified', now, certificate: message.certificate },
              });
              break;
            case 'evidence':
              this.#queue.push({
                replica: peer,
                event: {
                  type: 'peer-evidence',
                  now,
                  evidence: message.evidence,
                  reporter: message.reporter,
                  atMs: message.atMs,
                },
              });
              break;
            case 'suspicion':
              this.#queue.push({
                replica: peer,
                event: {
                  type: 'peer-suspicion',
                  now,
                  from: replica,
                  accused: message.accused,
                  reason: message.reason,
                  atMs: message.atMs,
                },
              });
              break;
            case 'recovering':
              this.#queue.push({
                replica: peer,
                event: { type: 'peer-recovering', now, from: replica, atMs: message.atMs },
              });
              break;
            case 'recovered':
              this.#queue.push({
                replica: peer,
                event: { type: 'peer-recovered', now, from: replica, atMs: message.atMs },
              });
              break;
            case 'replica-state':
              this.#queue.push({
                replica: peer,
                event: { type: 'peer-replica-state', now, from: replica, voting: message.voting },
              });
              break;
            case 'rejuvenation-owed':
              this.#queue.push({
                replica: peer,
                event: {
                  type: 'peer-rejuvenation-owed',
                  now,
                  from: replica,
                  reason: message.reason,
                  atMs: message.atMs,
                },
              });
              break;
            case 'nudge':
              break;
          }
        }
        return;
      case 'nudge-replica': {
        // The whole cluster moves to the first later view led by none of those to avoid.
        let view = this.view + 1;
        while (action.avoidLeaders.includes(view % this.schedule.n)) view++;
        if (action.aboveView === null || this.view <= action.aboveView) this.view = view;
        return;
      }
      case 'recovery-begun':
        this.recoveries.push({
          replica,
          kind: action.kind,
          first: action.first,
          beganAtMs: now,
          endedAtMs: null,
        });
        return;
      case 'recovery-over': {
        const open = this.recoveries.findLast(
          (recovery) => recovery.replica === replica && recovery.endedAtMs === null,
        );
        assert.ok(open !== undefined, `recovery-over without a recovery (replica ${replica})`);
        open.endedAtMs = now;
        return;
      }
      case 'stop-replica': {
        const process = this.#processes[replica]!;
        if (process.running) answer({ type: 'replica-exited', now, expected: true, code: 0, signal: null });
        process.running = false;
        answer({ type: 'replica-stopped', now });
        return;
      }
      case 'check-code':
        answer({
          type: 'code-checked',
          now,
          ok: this.#options.codeOk?.(replica) ?? true,
          problems: ['main.js: changed'],
        });
        return;
      case 'issue-keys':
        answer({
          type: 'keys-issued',
          now,
          certificate: certificate(replica, action.nextEpoch, now),
          fresh: true,
        });
        return;
      case 'start-replica':
        // A replica restarted from its disk has its log and votes again after a moment; an
        // amnesiac one catches up first, for as long as the test says.
        this.#processes[replica] = {
          running: true,
          amnesiac:
            action.amnesiac &&
            this.recoveries.findLast((recovery) => recovery.replica === replica)?.first === false,
          first: this.recoveries.findLast((recovery) => recovery.replica === replica)?.first === true,
          caughtUpAtMs: now + (action.amnesiac ? (this.#options.catchUpMs?.(replica, now) ?? 500) : TICK_MS),
          sentCaughtUp: false,
          sentVoting: false,
        };
        answer({ type: 'replica-started', now, loweredPriority: action.lowerPriority });
        return;
      case 'verify-evidence': {
        const valid = this.#options.evidenceValid?.(action.evidence) ?? true;
        answer({
          type: 'evidence-verdict',
          now,
          evidence: action.evidence,
          encoded: action.encoded,
          reporter: action.reporter,
          valid,
          detail: valid ? 'proves equivocation' : 'signature does not verify',
        });
        return;
      }
      default:
        return;
    }
  }

  /** Kills replica `id`'s process (a crash). */
  crash(id: number): void {
    this.#processes[id]!.running = false;
    this.feed(id, { type: 'replica-exited', now: this.nowMs, expected: false, code: 1, signal: null });
  }
}

/** Whether `core` raised the alarm of a rejuvenation (not a first start) that missed its deadline. */
function deadlineMissed(core: GuardianCore, nowMs: number): boolean {
  return core
    .status(nowMs)
    .alarms.some((alarm) => /recovery of replica \d+ did not finish by its deadline/.test(alarm.message));
}

/** The most rejuvenations under way at one instant (an end at t and a start at t do not overlap). */
function maximumOverlap(recoveries: readonly Recovery[], untilMs: number): number {
  return mostAtOnce(
    recoveries.map((recovery) => ({ fromMs: recovery.beganAtMs, toMs: recovery.endedAtMs })),
    untilMs,
  );
}

const T_P = SCHEDULE.periodMs;
const T_D = SCHEDULE.recoveryBoundMs;
/** Start of reactive slot 6 of period `period` in the worked example. */
const reactiveSlotStart = (period: number) => period * T_P + 6 * T_D;

describe('GuardianCore: the recovery claims of docs/intrusion-tolerance.md', () => {
  test('1. at most k replicas are rejuvenated at once, proactive and reactive slots together', () => {
    const cluster = new Cluster({ startAtMs: 100 });
    // An accusation of replica 0 after its proactive slot: it gets the reactive slot as well.
    cluster.runUntil(T_D + 1000);
    cluster.feed(1, {
      type: 'replica-evidence',
      now: cluster.nowMs,
      evidence: encodeEvidence(equivocation(0)),
    });
    cluster.runUntil(2 * T_P + 100);
    const rejuvenations = cluster.rejuvenations();
    assert.ok(rejuvenations.length >= 2 * SCHEDULE.n + 1, `${rejuvenations.length} rejuvenations`);
    assert.ok(rejuvenations.some((recovery) => recovery.kind === 'reactive' && recovery.replica === 0));
    assert.ok(maximumOverlap(rejuvenations, cluster.nowMs) <= SCHEDULE.k);
  });

  test('2. every replica is rejuvenated within every window of T = T_P + T_D (its exposure never exceeds T)', () => {
    const cluster = new Cluster({ startAtMs: 0, catchUpMs: (id) => (id === 3 ? 7000 : 800) });
    const bound = exposureBoundMs(SCHEDULE);
    let worst = 0;
    cluster.runUntil(3 * T_P, (now) => {
      for (const core of cluster.cores) worst = Math.max(worst, core.status(now).exposureMs);
    });
    assert.ok(worst <= bound, `worst exposure ${worst} ms over T = ${bound} ms`);
    for (let id = 0; id < SCHEDULE.n; id++)
      assert.ok(
        cluster.rejuvenations().filter((recovery) => recovery.replica === id).length >= 2,
        `replica ${id}`,
      );
  });

  test('3. each slot is acted on once: a slot running when the guardian starts is not, and a restarted guardian does not repeat one', () => {
    // Started inside replica 0's slot: replica 0 is not rejuvenated in it, replica 1 is, in the next.
    const cluster = new Cluster({ startAtMs: 2000 });
    cluster.runUntil(T_D + 3000);
    assert.deepEqual(
      cluster.rejuvenations().map((recovery) => recovery.replica),
      [1],
    );
    // Replica 1's guardian restarts inside the slot it already acted on, with its saved state.
    const saved = cluster.cores[1]!.persistentState();
    assert.equal(saved.lastSlot, `0:1`);
    const restarted = new GuardianCore({
      id: replicaId(1),
      schedule: SCHEDULE,
      persisted: saved,
      certificates: cluster.cores[1]!.certificates.list(),
      clockSkewAllowanceMs: SKEW_MS,
      recoveringNiceShareOfTd: 0.25,
    });
    const began = [
      ...restarted.step({ type: 'tick', now: T_D + 3100, connectedGuardians: [0, 2, 3, 4, 5] }),
    ].filter((action) => action.type === 'recovery-begun');
    assert.deepEqual(began, []);
  });

  test('4. a slot noticed more than 1 s late is skipped with an alarm, and the rejuvenation is owed to the next reactive slot', () => {
    const cluster = new Cluster({ startAtMs: 100 });
    cluster.runUntil(T_D - 200);
    // Guardian 1 is stalled over the start of its slot (a frozen host) and wakes up late.
    cluster.down.add(1);
    cluster.runUntil(T_D + SLOT_LATENESS_MAX_MS + 500);
    cluster.down.delete(1);
    cluster.runUntil(reactiveSlotStart(0) + 200);
    const alarms = cluster.cores[1]!.status(cluster.nowMs).alarms.map((alarm) => alarm.message);
    assert.ok(
      alarms.some((message) => /missed its proactive slot/.test(message)),
      alarms.join('\n'),
    );
    const ofOne = cluster.rejuvenations().filter((recovery) => recovery.replica === 1);
    assert.equal(ofOne.length, 1, 'one rejuvenation of replica 1: the reactive one');
    assert.equal(ofOne[0]!.kind, 'reactive');
    assert.ok(ofOne[0]!.beganAtMs >= reactiveSlotStart(0));
    // Every other guardian was told and accused it too.
    for (const core of cluster.cores)
      assert.ok(core.status(reactiveSlotStart(0) - 1).pendingReactive.length <= 1);
  });

  test('5. valid evidence of misbehaviour gets the accused, and only the accused, rejuvenated in the next reactive slot', () => {
    const cluster = new Cluster({ startAtMs: 100 });
    cluster.runUntil(T_D + 1000);
    cluster.feed(0, {
      type: 'replica-evidence',
      now: cluster.nowMs,
      evidence: encodeEvidence(equivocation(0)),
    });
    for (const core of cluster.cores) assert.deepEqual(core.pendingReactive(), [0], `guardian ${core.id}`);
    cluster.runUntil(T_P + 100);
    const reactive = cluster.rejuvenations().filter((recovery) => recovery.kind === 'reactive');
    assert.deepEqual(
      reactive.map((recovery) => recovery.replica),
      [0],
    );
    assert.ok(
      reactive[0]!.beganAtMs >= reactiveSlotStart(0) && reactive[0]!.beganAtMs < reactiveSlotStart(0) + T_D,
    );
    // Served: nobody holds the accusation any more.
    for (const core of cluster.cores) assert.deepEqual(core.pendingReactive(), []);
  });

  test('6. evidence that does not verify accuses nobody and is recorded as invalid', () => {
    const cluster = new Cluster({ startAtMs: 100, evidenceValid: () => false });
    cluster.runUntil(1000);
    cluster.feed(0, {
      type: 'replica-evidence',
      now: cluster.nowMs,
      evidence: encodeEvidence(equivocation(4)),
    });
    cluster.feed(0, { type: 'replica-evidence', now: cluster.nowMs, evidence: new Uint8Array([1, 2, 3]) });
    for (const core of cluster.cores) assert.deepEqual(core.pendingReactive(), []);
    const records = cluster.cores[0]!.status(cluster.nowMs).evidence;
    assert.deepEqual(
      records.map((record) => [record.kind, record.valid]),
      [
        ['undecodable', false],
        ['equivocation', false],
      ],
    );
    // Not relayed either: the other guardians never see it.
    assert.equal(
      cluster
        .of(0, 'broadcast')
        .filter((action) => action.type === 'broadcast' && action.message.type === 'evidence').length,
      0,
    );
  });

  test('7. f + 1 distinct suspecting replicas accuse; f do not, nor one replica repeating itself, nor a replica suspecting itself', () => {
    const core = newCore(0);
    const at = 20 * T_P;
    const suspect = (from: number, accused: number) =>
      core.step({ type: 'peer-suspicion', now: at, from, accused, reason: 'slow leader' });
    suspect(1, 3);
    suspect(1, 3);
    suspect(3, 3);
    assert.deepEqual(core.pendingReactive(), [], 'f = 1 distinct reporter, a repeat and a self-suspicion');
    suspect(2, 3);
    assert.deepEqual(core.pendingReactive(), [3], 'f + 1 = 2 distinct reporters');
  });

  test('8. suspicions of a replica within 2·T_D of its recovery announcement are ignored', () => {
    const core = newCore(0);
    const at = 20 * T_P;
    core.step({ type: 'peer-recovering', now: at, from: 3 });
    for (const from of [1, 2, 4, 5])
      core.step({ type: 'peer-suspicion', now: at + 2 * T_D - 1, from, accused: 3, reason: 'silent' });
    assert.deepEqual(core.pendingReactive(), []);
    for (const from of [1, 2])
      core.step({ type: 'peer-suspicion', now: at + 2 * T_D, from, accused: 3, reason: 'silent' });
    assert.deepEqual(core.pendingReactive(), [3]);
  });

  test('9. rate limits hold under a flood: own evidence checked ≤ 20 per second, each proven kind once, suspicions relayed once per 500 ms', () => {
    const core = newCore(0);
    const start = 20 * T_P + 100;
    let verifications = 0;
    let relays = 0;
    for (let index = 0; index < 1000; index++) {
      const now = start + index; // 1000 per second
      // Distinct evidence each time (different sequence), all against replica 5, never valid.
      for (const action of core.step({
        type: 'replica-evidence',
        now,
        evidence: encodeEvidence(equivocation(5, index)),
      })) {
        if (action.type === 'verify-evidence') {
          verifications++;
          core.step({
            type: 'evidence-verdict',
            now,
            evidence: action.evidence,
            encoded: action.encoded,
            reporter: action.reporter,
            valid: false,
            detail: 'forged',
          });
        }
      }
      for (const action of core.step({ type: 'replica-suspicion', now, accused: 4, reason: 'loop' }))
        if (action.type === 'broadcast' && action.message.type === 'suspicion') relays++;
    }
    assert.equal(verifications, MAX_OWN_EVIDENCE_PER_SECOND);
    assert.equal(relays, Math.ceil(1000 / SUSPICION_RELAY_INTERVAL_MS));
    // A valid proof of a kind is checked once until the replica is rejuvenated.
    const peer = newCore(1);
    let checked = 0;
    for (let index = 0; index < 50; index++) {
      for (const action of peer.step({
        type: 'peer-evidence',
        now: start,
        evidence: encodeEvidence(equivocation(5, index)),
        reporter: 'replica 2',
      })) {
        if (action.type !== 'verify-evidence') continue;
        checked++;
        peer.step({
          type: 'evidence-verdict',
          now: start,
          evidence: action.evidence,
          encoded: action.encoded,
          reporter: 'replica 2',
          valid: true,
          detail: 'ok',
        });
      }
    }
    assert.equal(checked, 1);
    assert.deepEqual(peer.pendingReactive(), [5]);
  });

  test('9b. a verified proof cuts the culprit off at the own replica and counts against f: an alarm at f, BEYOND f above it', () => {
    const core = newCore(0);
    const now = 20 * T_P + 100;
    const prove = (accused: number): GuardianAction[] => {
      const actions: GuardianAction[] = [];
      for (const action of core.step({
        type: 'peer-evidence',
        now,
        evidence: encodeEvidence(equivocation(accused)),
        reporter: 'replica 2',
      })) {
        actions.push(action);
        if (action.type === 'verify-evidence')
          actions.push(...core.step(evidenceVerdict(action, now, { valid: true, detail: 'ok' })));
      }
      return actions;
    };
    assert.deepEqual(core.faultyReplicas(), { f: 1, counted: [], proven: [] });
    const first = prove(5);
    const cutOff = first.filter((action) => action.type === 'cut-off-replica');
    // The proof goes with it: the replica counts it toward more than f proven (safe mode).
    assert.deepEqual(cutOff, [
      {
        type: 'cut-off-replica',
        replica: 5,
        keyEpoch: 1,
        reason: 'proof: equivocation',
        evidence: equivocation(5),
      },
    ]);
    assert.deepEqual(core.faultyReplicas(), { f: 1, counted: [5], proven: [5] });
    const alarms = (actions: readonly GuardianAction[]): string[] =>
      actions.flatMap((action) => (action.type === 'alarm' ? [action.message] : []));
    assert.ok(
      alarms(first).some((message) => /1 of f = 1 replicas counted faulty/.test(message)),
      alarms(first).join('; '),
    );
    // The same proof again: no second cut-off, no second alarm.
    const again = prove(5);
    assert.equal(again.filter((action) => action.type === 'cut-off-replica').length, 0);
    assert.equal(alarms(again).length, 0);
    const second = prove(4);
    assert.deepEqual(core.faultyReplicas().proven, [4, 5]);
    assert.ok(
      alarms(second).some((message) => /^BEYOND f: 2 replicas proven faulty \(4, 5\)/.test(message)),
      alarms(second).join('; '),
    );
    assert.deepEqual(core.status(now).faultyReplicas, { f: 1, counted: [4, 5], proven: [4, 5] });
    // A new replica process is told of every proof again.
    const restarted = core.step({ type: 'replica-started', now, loweredPriority: false });
    assert.deepEqual(
      restarted
        .filter((action) => action.type === 'cut-off-replica')
        .map((action) => action.type === 'cut-off-replica' && [action.replica, action.evidence.accused]),
      [
        [5, 5],
        [4, 4],
      ],
    );
  });

  test('10. a rejuvenation over T_D raises an alarm, is recorded as over the bound, and the schedule moves on', () => {
    const cluster = new Cluster({
      startAtMs: 100,
      catchUpMs: (id, now) => (id === 1 && now > T_D / 2 ? Number.POSITIVE_INFINITY : 500),
    });
    cluster.runUntil(3 * T_D + 100);
    const status = cluster.cores[1]!.status(cluster.nowMs);
    assert.ok(
      status.alarms.some((alarm) =>
        /did not finish by its deadline \(T_D = 8000 ms\) \(stuck at validating-state\)/.test(alarm.message),
      ),
    );
    assert.equal(status.recentRecoveries[0]?.exceededBound, true);
    assert.ok(status.recentRecoveries[0]!.durationMs <= T_D);
    // Replica 2's slot came and went as scheduled.
    assert.ok(
      cluster.rejuvenations().some((recovery) => recovery.replica === 2 && recovery.endedAtMs !== null),
    );
  });

  test('11. the leader hands off before its slot (LEADER_HANDOFF_LEAD_MS ahead, once), so the rejuvenation does not wait for it', () => {
    const cluster = new Cluster({ startAtMs: 100 });
    cluster.view = 1; // replica 1 leads; its slot is [T_D, 2·T_D)
    cluster.runUntil(T_D - LEADER_HANDOFF_LEAD_MS - TICK_MS);
    assert.equal(cluster.view % SCHEDULE.n, 1);
    cluster.runUntil(T_D - 1);
    const handOffs = cluster.actions.filter(
      (entry) =>
        entry.replica === 1 &&
        entry.action.type === 'log' &&
        entry.action.message === 'handing leadership on before the slot',
    );
    assert.equal(handOffs.length, 1);
    assert.ok(handOffs[0]!.atMs >= T_D - LEADER_HANDOFF_LEAD_MS);
    assert.notEqual(
      cluster.view % SCHEDULE.n,
      1,
      'the new view is not led by the replica about to be rejuvenated',
    );
    // A leader still leading at its slot waits for the handoff, at most LEADER_HANDOFF_MAX_MS.
    const core = newCore(2);
    const slotStart = 2 * T_D + 20 * T_P;
    core.step({ type: 'replica-started', now: slotStart - 5000, loweredPriority: false });
    core.step({
      type: 'replica-status',
      now: slotStart - 10,
      view: 2,
      rejoinAboveView: 2,
      lastExecuted: 5,
      voting: true,
    });
    const atSlot = core.step({ type: 'tick', now: slotStart, connectedGuardians: [0, 1, 3, 4, 5] });
    assert.ok(atSlot.some((action) => action.type === 'nudge-replica'));
    assert.ok(!atSlot.some((action) => action.type === 'stop-replica'), 'waits for the handoff first');
    const later = core.step({
      type: 'tick',
      now: slotStart + LEADER_HANDOFF_MAX_MS,
      connectedGuardians: [0, 1, 3, 4, 5],
    });
    assert.ok(later.some((action) => action.type === 'stop-replica'));
  });

  test("12. a standby is prepared STANDBY_LEAD_MS before the replica's own proactive slot, once", () => {
    const cluster = new Cluster({ startAtMs: 100 });
    cluster.runUntil(T_D * 3 + 100);
    const prepared = cluster.actions.filter(
      (entry) => entry.replica === 2 && entry.action.type === 'prepare-standby',
    );
    assert.equal(prepared.length, 1);
    assert.ok(prepared[0]!.atMs >= 2 * T_D - STANDBY_LEAD_MS && prepared[0]!.atMs < 2 * T_D);
  });

  test('13. a retired epoch is accepted only to its grace end, the current one to the end of its replacing slot; as the key registry computes it', () => {
    const table = new CertificateTable(SCHEDULE, SKEW_MS);
    const lifetime = epochLifetimeOfSchedule(SCHEDULE);
    const issuedFirst = 3 * T_P + 5 * T_D + 10; // inside replica 5's own slot
    table.install(certificate(2, 4, issuedFirst));
    const validUntil = nextProactiveSlotOf(SCHEDULE, replicaId(2), issuedFirst + T_D).endMs + SKEW_MS;
    assert.equal(table.acceptedUntilMs(2, 4), validUntil);
    assert.equal(table.acceptedUntilMs(2, 4), lifetime.validUntilMs(replicaId(2), issuedFirst));
    const issuedNext = 4 * T_P + 2 * T_D + 100; // replica 2's slot of the next period
    table.install(certificate(2, 5, issuedNext));
    const graceEnd = slotAt(SCHEDULE, issuedNext).endMs;
    assert.equal(table.acceptedUntilMs(2, 4), Math.min(validUntil, graceEnd));
    assert.equal(graceEnd, lifetime.retiredUntilMs(replicaId(2), issuedNext));
    assert.ok(table.accepts(2, 4, graceEnd));
    assert.ok(!table.accepts(2, 4, graceEnd + 1), 'retired epoch refused after its grace');
    assert.ok(table.accepts(2, 5, graceEnd + 1));
    // Older or equal epochs change nothing; two epochs back is not accepted at all.
    assert.equal(table.install(certificate(2, 5, issuedNext + 5)), false);
    assert.equal(table.install(certificate(2, 3, issuedNext)), false);
    table.install(certificate(2, 6, issuedNext + T_P));
    assert.equal(table.acceptedUntilMs(2, 4), undefined);
  });

  test('14. a newer certificate from a peer is installed, saved before use and handed to the replica; an older one is ignored', () => {
    const core = newCore(0);
    const installed = core.step({
      type: 'certificate-verified',
      now: 1000,
      certificate: certificate(3, 2, 900),
    });
    assert.deepEqual(
      installed.map((action) => action.type),
      ['install-certificate', 'save-state', 'forward-certificate'],
    );
    assert.deepEqual(
      core.step({ type: 'certificate-verified', now: 1001, certificate: certificate(3, 1, 800) }),
      [],
    );
  });

  test('15. a rejuvenation keeps the disk when the others that take part are fewer than a quorum, and owes the full one to a reactive slot', () => {
    const cluster = new Cluster({ startAtMs: 100 });
    cluster.runUntil(T_D - 2000);
    // Replicas 3 and 4 go quiet (their guardians unreachable): replica 1 has 3 others, Q = 4.
    cluster.down.add(3);
    cluster.down.add(4);
    cluster.runUntil(T_D + 2000);
    const alarms = cluster.cores[1]!.status(cluster.nowMs).alarms.map((alarm) => alarm.message);
    assert.ok(
      alarms.some((message) => /kept its disk: replicas 3, 4 were out too/.test(message)),
      alarms.join('\n'),
    );
    assert.equal(cluster.of(1, 'archive-logs').length, 0, 'the disk and its logs stay');
    const started = cluster.of(1, 'start-replica').at(-1);
    assert.ok(started?.type === 'start-replica' && !started.amnesiac);
    assert.deepEqual(cluster.cores[0]!.pendingReactive(), [1]);
  });

  test('16. a crashed replica is rejuvenated after a short wait, at most once per T_D, within k', () => {
    const cluster = new Cluster({ startAtMs: 20 * T_P + 3 * T_D + 100 });
    cluster.runUntil(cluster.nowMs + 2000);
    const before = cluster.rejuvenations().length;
    cluster.crash(0);
    cluster.runUntil(cluster.nowMs + 1000);
    const after = cluster.rejuvenations().slice(before);
    assert.deepEqual(
      after.map((recovery) => [recovery.replica, recovery.kind]),
      [[0, 'reactive']],
    );
    // It crashes again at once: the next restart waits for T_D after the first.
    const firstAt = after[0]!.beganAtMs;
    cluster.runUntil(cluster.nowMs + 1000);
    cluster.crash(0);
    cluster.runUntil(firstAt + T_D + 2 * TICK_MS);
    const again = cluster
      .rejuvenations()
      .slice(before)
      .filter((recovery) => recovery.replica === 0);
    assert.equal(again.length, 2);
    assert.ok(again[1]!.beganAtMs >= firstAt + T_D);
  });

  test('17. code that does not match its manifest is refused: no new epoch, no process, an alarm', () => {
    const cluster = new Cluster({ startAtMs: 100, codeOk: (id) => id !== 1 });
    cluster.runUntil(2 * T_D + 100);
    const status = cluster.cores[1]!.status(cluster.nowMs);
    assert.equal(status.keyEpoch, 0);
    assert.equal(cluster.of(1, 'start-replica').length, 0);
    assert.ok(
      status.alarms.some((alarm) => /its code does not match the signed manifest/.test(alarm.message)),
    );
    assert.equal(status.recovery.inProgress, false);
  });

  test('18. each rejuvenation issues the next key epoch once, durably, before the new process starts', () => {
    const cluster = new Cluster({ startAtMs: 100 });
    cluster.runUntil(T_P + 2 * T_D);
    const ofTwo = cluster.actions.filter((entry) => entry.replica === 2).map((entry) => entry.action);
    const issued = ofTwo.flatMap((action) => (action.type === 'issue-keys' ? [action.nextEpoch] : []));
    assert.deepEqual(issued, [1, 2, 3]); // the first start, then one per period
    const starts = ofTwo.flatMap((action, index) => (action.type === 'start-replica' ? [index] : []));
    for (const index of starts) {
      const saved = ofTwo.slice(0, index).findLastIndex((action) => action.type === 'save-state');
      const keys = ofTwo.slice(0, index).findLastIndex((action) => action.type === 'issue-keys');
      assert.ok(saved > keys, 'the state (with the epoch) is saved between issuing and starting');
    }
    assert.equal(cluster.cores[2]!.persistentState().keyEpoch, 3);
  });

  test("19. a peer's recovery settles every accusation and suspicion of its previous incarnation", () => {
    const core = newCore(0);
    const at = 20 * T_P;
    core.step({ type: 'peer-suspicion', now: at, from: 1, accused: 4, reason: 'slow' });
    core.step({ type: 'peer-suspicion', now: at, from: 2, accused: 4, reason: 'slow' });
    assert.deepEqual(core.pendingReactive(), [4]);
    core.step({ type: 'peer-recovered', now: at + 10, from: 4 });
    assert.deepEqual(core.pendingReactive(), []);
    assert.deepEqual(core.status(at + 10).suspicions, []);
  });

  test('20. an accusation counts for a reactive slot only if made the decision lead before it', () => {
    const cluster = new Cluster({ startAtMs: 100 });
    const lead = Math.min(DECISION_LEAD_MAX_MS, T_D / 4);
    cluster.runUntil(reactiveSlotStart(0) - lead + TICK_MS);
    cluster.feed(0, {
      type: 'replica-evidence',
      now: cluster.nowMs,
      evidence: encodeEvidence(equivocation(5)),
    });
    cluster.runUntil(reactiveSlotStart(0) + T_D);
    assert.ok(
      !cluster.rejuvenations().some((recovery) => recovery.kind === 'reactive'),
      'too late for this slot',
    );
    // Replica 5's next proactive slot discharges it before the next reactive slot.
    cluster.runUntil(reactiveSlotStart(1) + T_D);
    assert.ok(!cluster.rejuvenations().some((recovery) => recovery.kind === 'reactive'));
    assert.deepEqual(cluster.cores[0]!.pendingReactive(), []);
  });

  test('21. every guardian picks the same replicas for a reactive slot, whatever order the accusations reached it in', () => {
    const slot = slotAt(SCHEDULE, reactiveSlotStart(0));
    // Owed rejuvenations of replicas 1 and 3, stamped 29,990 and 30,000 ms by their guardians,
    // reach guardian 0 in one order and guardian 4 in the other.
    const early = newCore(0);
    early.step({
      type: 'peer-rejuvenation-owed',
      now: 30_005,
      from: 1,
      reason: 'kept its disk',
      atMs: 30_000,
    });
    early.step({
      type: 'peer-rejuvenation-owed',
      now: 30_010,
      from: 3,
      reason: 'kept its disk',
      atMs: 29_990,
    });
    const late = newCore(4);
    late.step({
      type: 'peer-rejuvenation-owed',
      now: 29_995,
      from: 3,
      reason: 'kept its disk',
      atMs: 29_990,
    });
    late.step({
      type: 'peer-rejuvenation-owed',
      now: 30_012,
      from: 1,
      reason: 'kept its disk',
      atMs: 30_000,
    });
    assert.deepEqual(early.reactiveChoice(slot), [3]);
    assert.deepEqual(late.reactiveChoice(slot), [3]);
    // Suspicions: the (f+1)-th earliest report's stamp, whichever pair of reports came first.
    const first = newCore(0);
    const second = newCore(4);
    const reports = [
      { from: 1, atMs: 10_000 },
      { from: 2, atMs: 10_050 },
      { from: 5, atMs: 10_020 },
    ];
    for (const [core, order] of [
      [first, reports],
      [second, [...reports].reverse()],
    ] as const)
      for (const report of order)
        core.step({
          type: 'peer-suspicion',
          now: 10_100,
          from: report.from,
          accused: 2,
          reason: 'slow',
          atMs: report.atMs,
        });
    assert.equal(first.accusationOf(2)?.accusedAtMs, 10_020);
    assert.equal(second.accusationOf(2)?.accusedAtMs, 10_020);
  });

  test('22. a rejuvenation owed after a kept disk replaces an older accusation, which its slot would otherwise count as served', () => {
    const slot = slotAt(SCHEDULE, reactiveSlotStart(0));
    // Guardian 0 accused replica 3 on suspicions before replica 3's proactive slot [24, 32) s,
    // which kept its disk; guardian 4 heard only of the owed rejuvenation.
    const suspecting = newCore(0);
    for (const from of [1, 2])
      suspecting.step({
        type: 'peer-suspicion',
        now: 10_000,
        from,
        accused: 3,
        reason: 'slow',
        atMs: 10_000,
      });
    assert.equal(suspecting.accusationOf(3)?.accusedAtMs, 10_000);
    const unaware = newCore(4);
    for (const core of [suspecting, unaware]) {
      core.step({
        type: 'peer-rejuvenation-owed',
        now: 25_010,
        from: 3,
        reason: 'kept its disk',
        atMs: 25_000,
      });
      core.step({
        type: 'peer-rejuvenation-owed',
        now: 30_010,
        from: 1,
        reason: 'kept its disk',
        atMs: 30_000,
      });
    }
    assert.equal(suspecting.accusationOf(3)?.accusedAtMs, 25_000);
    assert.deepEqual(suspecting.reactiveChoice(slot), [3]);
    assert.deepEqual(unaware.reactiveChoice(slot), [3]);
  });
});

describe('GuardianCore: reactive slots decided once', () => {
  test('23. a guardian decides a reactive slot once, at its start: an accusation that changes during it does not make it choose again', () => {
    const cluster = new Cluster({ startAtMs: 100 });
    cluster.runUntil(33_000);
    const slotStart = reactiveSlotStart(0);
    // Guardian 1 holds suspicions of replica 0 (33 s) and of its own replica (34 s), both long
    // enough after their last recoveries to count.
    for (const [accused, atMs] of [
      [0, 33_000],
      [1, 34_000],
    ] as const)
      for (const from of [2, 4])
        cluster.feed(1, { type: 'peer-suspicion', now: atMs, from, accused, reason: 'slow', atMs });
    cluster.runUntil(slotStart + TICK_MS);
    assert.deepEqual(cluster.cores[1]!.reactiveChoice(slotAt(SCHEDULE, slotStart)), [0]);
    // Replica 0's rejuvenation in this slot kept its disk: it is owed, dated now, past the decision.
    cluster.feed(1, {
      type: 'peer-rejuvenation-owed',
      now: cluster.nowMs,
      from: 0,
      reason: 'kept its disk',
      atMs: cluster.nowMs,
    });
    assert.deepEqual(cluster.cores[1]!.reactiveChoice(slotAt(SCHEDULE, slotStart)), [1]);
    cluster.runUntil(slotStart + T_D);
    assert.ok(
      !cluster.rejuvenations().some((recovery) => recovery.replica === 1 && recovery.beganAtMs >= slotStart),
      'replica 1 was not this slot’s choice at its start',
    );
  });
});

describe('GuardianCore: the grace after a recovery', () => {
  test('24. suspicions near the end of the 2·T_D grace are judged alike by every guardian, by their stamps, whenever the announcement reached it', () => {
    const recoveredAtMs = 20 * T_P;
    const graceEndMs = recoveredAtMs + 2 * T_D;
    // Guardian 0 hears replica 4's 'recovered' at once, guardian 1 150 ms later.
    const prompt = newCore(0);
    const late = newCore(1);
    prompt.step({ type: 'peer-recovered', now: recoveredAtMs, from: 4, atMs: recoveredAtMs });
    late.step({ type: 'peer-recovered', now: recoveredAtMs + 150, from: 4, atMs: recoveredAtMs });
    const suspect = (core: GuardianCore, stampMs: number, arrivalMs: number): void => {
      for (const from of [2, 3])
        core.step({
          type: 'peer-suspicion',
          now: arrivalMs,
          from,
          accused: 4,
          reason: 'silent',
          atMs: stampMs,
        });
    };
    // Stamped inside the grace, arriving after its end at both: ignored by both (judged on
    // arrival, guardian 0 counted them and guardian 1 did not).
    suspect(prompt, graceEndMs - 20, graceEndMs + 100);
    suspect(late, graceEndMs - 20, graceEndMs + 100);
    assert.deepEqual(prompt.pendingReactive(), []);
    assert.deepEqual(late.pendingReactive(), []);
    // Stamped after it: an accusation at both, dated alike.
    suspect(prompt, graceEndMs + 20, graceEndMs + 120);
    suspect(late, graceEndMs + 20, graceEndMs + 120);
    assert.deepEqual(prompt.pendingReactive(), [4]);
    assert.deepEqual(late.pendingReactive(), [4]);
  });
});

describe('GuardianCore: properties over random runs', () => {
  const runArbitrary = fc.record({
    startAtMs: fc.integer({ min: 0, max: 10 * T_P }).map((ms) => ms - (ms % TICK_MS)),
    /** Per replica, how long each new process takes to catch up (sometimes past T_D). */
    catchUp: fc.array(fc.integer({ min: 100, max: 9000 }), { minLength: 6, maxLength: 6 }),
    /** Evidence (accused, when in ms after the start, valid?) and suspicions (reporter, accused, when). */
    evidence: fc.array(
      fc.record({
        accused: fc.integer({ min: 0, max: 5 }),
        atMs: fc.integer({ min: 0, max: 2 * T_P }),
        valid: fc.boolean(),
      }),
      { maxLength: 6 },
    ),
    suspicions: fc.array(
      fc.record({
        reporter: fc.integer({ min: 0, max: 5 }),
        accused: fc.integer({ min: 0, max: 5 }),
        atMs: fc.integer({ min: 0, max: 2 * T_P }),
      }),
      { maxLength: 30 },
    ),
  });

  test('with a shell that takes its time (stopping, hashing, starting), every slot still ends and the next one runs', () => {
    fc.assert(
      fc.property(
        fc.record({
          startAtMs: fc.integer({ min: 0, max: 10 * T_P }).map((ms) => ms - (ms % TICK_MS)),
          stopMs: fc.integer({ min: 0, max: 1500 }),
          codeMs: fc.integer({ min: 0, max: 1500 }),
          startMs: fc.integer({ min: 0, max: 300 }),
          catchUpMs: fc.integer({ min: 100, max: 9000 }),
        }),
        (run) => {
          const delays: Partial<Record<GuardianAction['type'], number>> = {
            'stop-replica': run.stopMs,
            'check-code': run.codeMs,
            'start-replica': run.startMs,
          };
          const cluster = new Cluster({
            startAtMs: run.startAtMs,
            catchUpMs: () => run.catchUpMs,
            answerDelayMs: (kind) => delays[kind] ?? 0,
          });
          const endMs = run.startAtMs + 3 * T_P;
          cluster.runUntil(endMs);
          assert.ok(maximumOverlap(cluster.rejuvenations(), endMs) <= SCHEDULE.k);
          const period = Math.floor(run.startAtMs / T_P) + 2;
          for (const slot of slotsOfPeriod(SCHEDULE, period).filter((each) => each.kind === 'proactive'))
            for (const replica of slot.replicas) {
              // Served: a rejuvenation began in the slot and ended by its end, or the replica was
              // fresh, rejuvenated by one that ended within the slot (e.g. an owed reactive one
              // cut off at the end of the reactive slot just before, which is this slot's start).
              const served = cluster
                .rejuvenations()
                .find(
                  (recovery) =>
                    recovery.replica === replica &&
                    recovery.beganAtMs >= slot.startMs &&
                    recovery.beganAtMs < slot.endMs,
                );
              const freshFromBefore = cluster
                .rejuvenations()
                .some(
                  (recovery) =>
                    recovery.replica === replica &&
                    recovery.beganAtMs < slot.startMs &&
                    recovery.endedAtMs !== null &&
                    recovery.endedAtMs >= slot.startMs &&
                    recovery.endedAtMs < slot.endMs,
                );
              assert.ok(served !== undefined || freshFromBefore, `replica ${replica} in period ${period}`);
              if (served !== undefined)
                assert.ok(
                  served.endedAtMs !== null && served.endedAtMs <= slot.endMs,
                  `replica ${replica} ended in its slot`,
                );
            }
        },
      ),
      {
        numRuns: 25,
        // Every rejuvenation overruns T_D: the next slot keeps its disk and owes a reactive one.
        examples: [[{ startAtMs: 0, stopMs: 0, codeMs: 1, startMs: 0, catchUpMs: 8401 }]],
      },
    );
  });

  test('never more than k rejuvenating at once, nor k amnesiac replicas out of the votes, and every exposure within T = T_P + T_D while rejuvenations keep to T_D', () => {
    fc.assert(
      fc.property(runArbitrary, (run) => {
        const valid = new Set(run.evidence.filter((entry) => entry.valid).map((entry) => entry.accused));
        const cluster = new Cluster({
          startAtMs: run.startAtMs,
          catchUpMs: (id) => run.catchUp[id]!,
          evidenceValid: (evidence) => valid.has(evidence.accused),
        });
        const bound = exposureBoundMs(SCHEDULE);
        const endMs = run.startAtMs + 3 * T_P;
        let premiseBroken = false;
        cluster.runUntil(endMs, (now) => {
          const elapsed = now - run.startAtMs;
          for (const entry of run.evidence)
            if (entry.atMs >= elapsed - TICK_MS && entry.atMs < elapsed)
              cluster.feed((entry.accused + 1) % 6, {
                type: 'replica-evidence',
                now,
                evidence: encodeEvidence(equivocation(entry.accused)),
              });
          for (const entry of run.suspicions)
            if (entry.atMs >= elapsed - TICK_MS && entry.atMs < elapsed)
              cluster.feed(entry.reporter, {
                type: 'replica-suspicion',
                now,
                accused: entry.accused,
                reason: 'random',
              });
          // Never more than k replicas amnesiac and not yet voting: with f of the rest silent, the
          // others would be fewer than a quorum, and nothing could bring the amnesiac ones back.
          const amnesiac = cluster.amnesiacNotVoting();
          assert.ok(
            amnesiac.length <= SCHEDULE.k,
            `amnesiac and not voting at ${now}: ${amnesiac.join(', ')}`,
          );
          // Exposure: within T as long as every rejuvenation kept to its deadline (catch-up times
          // beyond T_D break the bound's premise: the next slot then keeps its disk, and the
          // exposure grows until a full rejuvenation is possible again).
          if (premiseBroken || cluster.cores.some((core) => deadlineMissed(core, now))) {
            premiseBroken = true;
            return;
          }
          for (const core of cluster.cores) {
            const exposure = core.status(now).exposureMs;
            assert.ok(
              exposure <= bound,
              `replica ${core.id}: exposure ${exposure} ms at ${now} over T = ${bound}`,
            );
          }
        });
        assert.ok(maximumOverlap(cluster.rejuvenations(), endMs) <= SCHEDULE.k);
        // Every slot of a whole period served its replica, or found it fresh: rejuvenated by a
        // recovery that ended within the slot (the documented rule; e.g. a reactive rejuvenation
        // cut off at the end of the reactive slot just before, which is the proactive slot's start).
        // (From the second period: a replica whose first start ends inside its slot is fresh too.)
        const period = Math.floor(run.startAtMs / T_P) + 2;
        for (const slot of slotsOfPeriod(SCHEDULE, period).filter((each) => each.kind === 'proactive'))
          for (const replica of slot.replicas)
            assert.ok(
              cluster
                .rejuvenations()
                .some(
                  (recovery) =>
                    recovery.replica === replica &&
                    ((recovery.beganAtMs >= slot.startMs && recovery.beganAtMs < slot.endMs) ||
                      (recovery.endedAtMs !== null &&
                        recovery.endedAtMs >= slot.startMs &&
                        recovery.endedAtMs < slot.endMs)),
                ),
              `replica ${replica} in period ${period}`,
            );
      }),
      {
        numRuns: 25,
        // Found by a suite run: replica 0's reactive rejuvenation ended at 560,000 ms, the start of
        // its proactive slot, which then (rightly) skipped it as fresh.
        examples: [
          // Two replicas that catch up past T_D (a suite run of the property before the premise
          // was stated failed on it: an overrun made the next slot keep its disk).
          [
            {
              startAtMs: 416_900,
              catchUp: [8101, 8101, 100, 100, 100, 100],
              evidence: [
                { accused: 4, atMs: 0, valid: true },
                { accused: 0, atMs: 8150, valid: true },
              ],
              suspicions: [],
            },
          ],
          [
            {
              startAtMs: 481_850,
              catchUp: [7751, 100, 101, 100, 100, 100],
              evidence: [
                { accused: 2, atMs: 38_300, valid: true },
                { accused: 0, atMs: 38_350, valid: false },
                { accused: 0, atMs: 0, valid: true },
              ],
              suspicions: [],
            },
          ],
        ],
      },
    );
  });

  test('25. in safe mode a rejuvenation keeps the disk by design: nothing owed, nobody accused, recorded as a rejuvenation', () => {
    const cluster = new Cluster({ startAtMs: 100 });
    cluster.runUntil(T_D - 2000);
    // As in test 15, replicas 3 and 4 go quiet; but guardian 1 keeps a fork proof.
    cluster.down.add(3);
    cluster.down.add(4);
    cluster.feed(1, { type: 'safe-mode-kept', now: cluster.nowMs });
    cluster.runUntil(T_D + 2000);
    const status = cluster.cores[1]!.status(cluster.nowMs);
    assert.ok(!status.alarms.some((alarm) => /kept its disk/.test(alarm.message)));
    assert.equal(cluster.of(1, 'archive-logs').length, 0, 'the disk and its logs stay');
    const started = cluster.of(1, 'start-replica').at(-1);
    assert.ok(started?.type === 'start-replica' && !started.amnesiac);
    assert.deepEqual(cluster.cores[0]!.pendingReactive(), []);
    assert.equal(status.recentRecoveries.length, 1);
    assert.equal(status.recentRecoveries[0]!.kind, 'proactive');
  });
});
