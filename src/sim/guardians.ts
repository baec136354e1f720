/**
 * The guardians of the simulator's --recovery mode: one real GuardianCore (src/recovery/core/)
 * per replica, driven on simulated time by the simulator's event queue, in the place of the
 * process shell (src/recovery/guardian.ts). What the shell does with processes, files and keys,
 * the driver does to the simulated replicas through a GuardianHost:
 * - a tick every GUARDIAN_TICK_MS, with the replica's status and progress (caught-up, voting)
 *   read from its core the way the replica process reports them (src/runtime/replica-node.ts);
 * - control messages between guardians are delivered directly, after a delay drawn from the
 *   guardians' own PRNG (CONTROL_DELAY_*), not through the simulated network: the control channel
 *   is modelled as reliable and never partitioned (its loss is not simulated yet);
 * - stop-replica takes the replica down; issue-keys issues a new key epoch in the registry the
 *   simulated replicas share (as the key-theft mode rotates epochs); start-replica restarts it
 *   amnesiac ('rejuvenated': its log dropped) or from its disk, on the new epoch;
 * - evidence a replica reports is verified against the shared registry (verify-evidence), its
 *   suspicions are handed to its guardian, and nudges become the replicas' 'change-view' events;
 * - the rest (archive-logs, check-code, priorities, standby, saving state) is acknowledged at once
 *   with the result event the core expects (code always matches, nothing is written).
 * The recovery checkers (checkers/recovery.ts) watch the actions as they are carried out.
 */
import type { ScheduleParameters } from '../core/schedule.js';
import { encodeEvidence } from '../messages/codec.js';
import { assert, keyEpoch, type KeyEpoch, type ReplicaId, replicaId, signature } from '../messages/ids.js';
import type { Evidence, KeyCertificate } from '../messages/types.js';
import { CLOCK_SKEW_ALLOWANCE_MS } from '../crypto/key-certificates.js';
import {
  type CoreControlMessage,
  DECISION_LEAD_MAX_MS,
  evidenceVerdict,
  type GuardianAction,
  GuardianCore,
  type GuardianEvent,
} from '../recovery/core/guardian-core.js';
import { RECOVERING_NICE_SHARE_OF_T_D } from '../recovery/priority.js';
import type { Prng } from './prng.js';
import { RecoveryChecker, type RecoveryStatistics } from './checkers/recovery.js';

/** How often each guardian's core gets a tick (and its replica's status). */
export const GUARDIAN_TICK_MS = 20;
/** A control message between guardians takes between these (simulated ms). */
const CONTROL_DELAY_MIN_MS = 1;
const CONTROL_DELAY_SPREAD_MS = 10;
/** How long stopping a replica process takes. */
const STOP_DELAY_MS = 5;
/** How long starting a replica process takes. */
const START_DELAY_MS = 20;
/** Events fed to the cores in one drain at most (a loop between cores would otherwise hang). */
const MAX_EVENTS_PER_DRAIN = 100_000;

/** What a replica shows its guardian. */
export interface SimulatedReplicaView {
  readonly view: number;
  /** Replica.rejoinAboveView: the view a rejoin view change must go above. */
  readonly rejoinAboveView: number;
  readonly lastExecuted: number;
  readonly voting: boolean;
  /** Its voting floor known, no state transfer, no restored state pending, as far as its peers. */
  readonly caughtUp: boolean;
}

/** What the driver does to the simulated cluster (the simulator implements it). */
export interface GuardianHost {
  now(): number;
  after(delayMs: number, run: () => void): void;
  /** The replica's state, or null when it is down (or dead). */
  replica(id: ReplicaId): SimulatedReplicaView | null;
  /** Takes the replica down (nothing when it is down). */
  stopReplica(id: ReplicaId): void;
  /** Starts it (stopping it first when it runs): false when it cannot run (dead). */
  startReplica(id: ReplicaId, amnesiac: boolean): boolean;
  /** Issues the replica's next key epoch in the shared registry; its issue time is now. */
  issueEpoch(id: ReplicaId): number;
  /** The replica's current epoch, as the registry holds it, and when it was issued. */
  currentEpoch(id: ReplicaId): { readonly epoch: number; readonly issuedAtMs: number };
  changeView(id: ReplicaId, avoidLeaders: readonly number[], aboveView: number | null): void;
  /** Tells replica `id` that `culprit` is proven faulty under its epoch `keyEpoch` by `proof` (the 'cut-off' event). */
  cutOff(id: ReplicaId, culprit: ReplicaId, keyEpoch: KeyEpoch, reason: string, proof: Evidence): void;
  /** The guardians' verdict on evidence (they share the registry here). */
  verifyEvidence(evidence: Evidence): { readonly valid: boolean; readonly detail: string };
  isCorrect(id: number): boolean;
  note(line: string): void;
}

export interface SimulatedGuardiansOptions {
  readonly schedule: ScheduleParameters;
  readonly host: GuardianHost;
  readonly prng: Prng;
  /** Test only: every reactive slot takes k + 1 replicas (GuardianCoreOptions.brokenReactiveSlot). */
  readonly brokenReactiveSlot?: boolean;
  /** Test only: f suspicions suffice to accuse (GuardianCoreOptions.brokenSuspicionThreshold). */
  readonly brokenSuspicionThreshold?: boolean;
}

export interface GuardiansReport extends RecoveryStatistics {
  readonly alarms: number;
  /** Intruders a full rejuvenation of their replica evicted mid-attack (set by the simulator). */
  readonly intrusionsEvicted: number;
  /** Of those, intruders that broke in again afterwards. */
  readonly intrusionsResumed: number;
}

export class SimulatedGuardians {
  readonly #schedule: ScheduleParameters;
  readonly #host: GuardianHost;
  readonly #prng: Prng;
  readonly #cores: GuardianCore[];
  readonly checker: RecoveryChecker;
  readonly #pending: { readonly id: number; readonly event: GuardianEvent }[] = [];
  #draining = false;
  /** The recovery in progress of each replica is its guardian's first start (no restart needed). */
  readonly #firstStart = new Set<number>();
  /** The last progress stage each replica reported since it started (reported once each). */
  readonly #lastProgress = new Map<number, string>();
  /** Replicas down because their guardian stopped them. */
  readonly #stoppedByGuardian = new Set<number>();
  #alarms = 0;

  constructor(options: SimulatedGuardiansOptions) {
    this.#schedule = options.schedule;
    this.#host = options.host;
    this.#prng = options.prng;
    const n = options.schedule.n;
    const certificates = Array.from({ length: n }, (_, index) => this.#certificateOf(replicaId(index)));
    this.#cores = Array.from(
      { length: n },
      (_, index) =>
        new GuardianCore({
          id: replicaId(index),
          schedule: options.schedule,
          persisted: { keyEpoch: 0, lastRejuvenationAtMs: null, lastSlot: null },
          certificates,
          clockSkewAllowanceMs: CLOCK_SKEW_ALLOWANCE_MS,
          recoveringNiceShareOfTd: RECOVERING_NICE_SHARE_OF_T_D,
          ...(options.brokenReactiveSlot === true ? { brokenReactiveSlot: true } : {}),
          ...(options.brokenSuspicionThreshold === true ? { brokenSuspicionThreshold: true } : {}),
        }),
    );
    this.checker = new RecoveryChecker(options.schedule, options.host.isCorrect, this.#decisionLeadMs());
  }

  #decisionLeadMs(): number {
    return Math.min(DECISION_LEAD_MAX_MS, this.#schedule.recoveryBoundMs / 4);
  }

  /** Every guardian starts (the replicas already run, started fresh), then ticks for ever. */
  start(): void {
    for (let id = 0; id < this.#schedule.n; id++) this.#feed(id, { type: 'started', now: this.#host.now() });
    const tick = (): void => {
      this.#tick();
      this.#host.after(GUARDIAN_TICK_MS, tick);
    };
    this.#host.after(GUARDIAN_TICK_MS, tick);
  }

  /** The replica's process died (a crash the simulator injected, or an exception). */
  replicaCrashed(id: number): void {
    if (this.#stoppedByGuardian.has(id)) return;
    this.#feed(id, { type: 'replica-exited', now: this.#host.now(), expected: false, code: 1, signal: null });
  }

  /** The simulator restarted a crashed replica itself (with the disk it chose). */
  replicaRestarted(id: number): void {
    this.#stoppedByGuardian.delete(id);
    this.#lastProgress.delete(id);
    this.#feed(id, { type: 'replica-started', now: this.#host.now(), loweredPriority: false });
  }

  replicaEvidence(id: number, evidence: Evidence): void {
    this.#feed(id, { type: 'replica-evidence', now: this.#host.now(), evidence: encodeEvidence(evidence) });
  }

  replicaSuspicion(id: number, accused: number, reason: string): void {
    this.checker.onSuspicion(id, accused, this.#host.now());
    this.#feed(id, { type: 'replica-suspicion', now: this.#host.now(), accused, reason });
  }

  /** The replicas being rejuvenated now (not a guardian's first start). */
  recoveringReplicas(): ReplicaId[] {
    const out: ReplicaId[] = [];
    for (let id = 0; id < this.#schedule.n; id++)
      if (this.#cores[id]!.recovering && !this.#firstStart.has(id)) out.push(replicaId(id));
    return out;
  }

  report(intrusions: { readonly evicted: number; readonly brokenInAgain: number }): GuardiansReport {
    return {
      ...this.checker.statistics(),
      alarms: this.#alarms,
      intrusionsEvicted: intrusions.evicted,
      intrusionsResumed: intrusions.brokenInAgain,
    };
  }

  #tick(): void {
    const now = this.#host.now();
    const everyone = Array.from({ length: this.#schedule.n }, (_, id) => id);
    for (let id = 0; id < this.#schedule.n; id++) {
      const replica = this.#host.replica(replicaId(id));
      if (replica !== null) {
        this.#feed(id, {
          type: 'replica-status',
          now,
          view: replica.view,
          rejoinAboveView: replica.rejoinAboveView,
          lastExecuted: replica.lastExecuted,
          voting: replica.voting,
        });
        const stage = replica.voting && replica.caughtUp ? 'voting' : replica.caughtUp ? 'caught-up' : null;
        if (stage !== null && this.#lastProgress.get(id) !== stage) {
          this.#lastProgress.set(id, stage);
          this.#host.note(
            `guardian ${id}: replica ${stage} (executed ${replica.lastExecuted}, view ${replica.view})`,
          );
          this.#feed(id, { type: 'replica-progress', now, stage });
        }
      }
      this.#feed(id, { type: 'tick', now, connectedGuardians: everyone.filter((other) => other !== id) });
    }
    this.checker.onTick(now, (id) => this.#host.replica(replicaId(id)) !== null);
  }

  #feed(id: number, event: GuardianEvent): void {
    this.#pending.push({ id, event });
    if (this.#draining) return;
    this.#draining = true;
    try {
      let fed = 0;
      while (this.#pending.length > 0) {
        if (++fed > MAX_EVENTS_PER_DRAIN) throw new Error('the guardians keep feeding each other events');
        const next = this.#pending.shift()!;
        const core = this.#cores[next.id]!;
        const actions = core.step(next.event);
        for (const action of actions) this.#carryOut(next.id, action);
        this.#watchAccusations(next.id, core);
      }
    } finally {
      this.#draining = false;
    }
  }

  #watchAccusations(id: number, core: GuardianCore): void {
    const pending = core.pendingReactive();
    for (const accused of pending) {
      const accusation = core.accusationOf(accused)!;
      this.checker.onAccusation(
        id,
        accused,
        accusation.accusedAtMs,
        accusation.cause,
        accusation.reason,
        pending.length,
      );
    }
  }

  #certificateOf(id: ReplicaId): KeyCertificate {
    const current = this.#host.currentEpoch(id);
    return {
      replica: id,
      keyEpoch: keyEpoch(current.epoch),
      // The replicas take their keys from the shared registry: the certificate's keys and
      // signature are placeholders nothing reads (the guardians here trust each other's).
      signingKey: new Uint8Array(32),
      agreementKey: new Uint8Array(32),
      issuedAtMs: current.issuedAtMs,
      signature: signature(new Uint8Array(64)),
    };
  }

  #carryOut(id: number, action: GuardianAction): void {
    const host = this.#host;
    const now = host.now();
    const replica = replicaId(id);
    switch (action.type) {
      case 'log':
        if (action.level === 'warn')
          host.note(`guardian ${id}: ${action.message} ${JSON.stringify(action.fields)}`);
        return;
      case 'alarm':
        this.#alarms++;
        host.note(`guardian ${id} ALARM ${action.message}`);
        return;
      case 'broadcast':
        this.#broadcast(id, action.message);
        return;
      case 'nudge-replica':
        host.changeView(replica, action.avoidLeaders, action.aboveView);
        return;
      case 'cut-off-replica':
        host.cutOff(replica, replicaId(action.replica), action.keyEpoch, action.reason, action.evidence);
        return;
      case 'verify-evidence':
        this.#feed(id, evidenceVerdict(action, now, host.verifyEvidence(action.evidence)));
        return;
      case 'recovery-begun': {
        if (action.first) this.#firstStart.add(id);
        else this.#firstStart.delete(id);
        const state = this.#cores[id]!.rejuvenation;
        const reason = state.name === 'idle' || state.name === 'standby-prepared' ? '' : state.run.reason;
        host.note(
          `guardian ${id}: ${action.first ? 'first start' : `${action.kind} rejuvenation (${reason})`}`,
        );
        this.checker.onBegun(id, action.kind, action.first, action.afterCrash, now);
        return;
      }
      case 'stop-replica':
        // A first start finds its replica already running, started fresh by the simulator.
        if (this.#firstStart.has(id)) {
          this.#feed(id, { type: 'replica-stopped', now });
          return;
        }
        host.after(STOP_DELAY_MS, () => {
          this.#stoppedByGuardian.add(id);
          host.stopReplica(replica);
          const at = host.now();
          this.#feed(id, { type: 'replica-exited', now: at, expected: true, code: 0, signal: null });
          this.#feed(id, { type: 'replica-stopped', now: at });
        });
        return;
      case 'check-code':
        this.#feed(id, { type: 'code-checked', now, ok: true, problems: [] });
        return;
      case 'issue-keys': {
        if (!action.keepSavedEpoch) {
          const issued = host.issueEpoch(replica);
          assert(
            issued === action.nextEpoch,
            `guardian ${id} asked for epoch ${action.nextEpoch}, the registry issued ${issued}`,
          );
          this.checker.onEpochRetired(id, now);
        }
        this.#feed(id, {
          type: 'keys-issued',
          now,
          certificate: this.#certificateOf(replica),
          fresh: !action.keepSavedEpoch,
        });
        return;
      }
      case 'start-replica':
        if (this.#firstStart.has(id)) {
          this.#feed(id, { type: 'replica-started', now, loweredPriority: false });
          return;
        }
        host.after(START_DELAY_MS, () => {
          this.#stoppedByGuardian.delete(id);
          this.#lastProgress.delete(id);
          const at = host.now();
          if (!host.startReplica(replica, action.amnesiac)) {
            this.#feed(id, {
              type: 'recovery-failed',
              now: at,
              message: 'the replica cannot run (it threw)',
            });
            return;
          }
          this.checker.onStarted(id, action.amnesiac, at);
          this.#feed(id, { type: 'replica-started', now: at, loweredPriority: action.lowerPriority });
        });
        return;
      case 'recovery-over': {
        const last = this.#cores[id]!.status(now).recentRecoveries[0];
        const exceeded =
          last !== undefined && last.startedAtMs + last.durationMs === now && last.exceededBound;
        this.checker.onOver(id, now, exceeded);
        this.#firstStart.delete(id);
        return;
      }
      case 'forward-certificate':
      case 'install-certificate':
      case 'save-state':
      case 'prepare-standby':
      case 'discard-standby':
      case 'archive-logs':
      case 'restore-priority':
        // The shared registry already holds every epoch; nothing is written, no process waits.
        return;
    }
  }

  #broadcast(from: number, message: CoreControlMessage): void {
    for (let to = 0; to < this.#schedule.n; to++) {
      if (to === from) continue;
      const delayMs = CONTROL_DELAY_MIN_MS + this.#prng.int(CONTROL_DELAY_SPREAD_MS);
      this.#host.after(delayMs, () => {
        this.#feed(to, peerEvent(message, from, this.#host.now()));
      });
    }
  }
}

/** A control message as the receiving guardian's core gets it (after the shell's checks). */
function peerEvent(message: CoreControlMessage, from: number, now: number): GuardianEvent {
  switch (message.type) {
    case 'certificate':
      return { type: 'certificate-verified', now, certificate: message.certificate };
    case 'evidence':
      return {
        type: 'peer-evidence',
        now,
        evidence: message.evidence,
        reporter: message.reporter,
        atMs: message.atMs,
      };
    case 'suspicion':
      return {
        type: 'peer-suspicion',
        now,
        from,
        accused: message.accused,
        reason: message.reason,
        atMs: message.atMs,
      };
    case 'recovering':
      return { type: 'peer-recovering', now, from, atMs: message.atMs };
    case 'recovered':
      return { type: 'peer-recovered', now, from, atMs: message.atMs };
    case 'replica-state':
      return { type: 'peer-replica-state', now, from, voting: message.voting };
    case 'rejuvenation-owed':
      return { type: 'peer-rejuvenation-owed', now, from, reason: message.reason, atMs: message.atMs };
    case 'nudge':
      return { type: 'peer-nudge', now, aboveView: message.aboveView };
  }
}
