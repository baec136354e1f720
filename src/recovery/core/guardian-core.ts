/**
 * The guardian's decisions as a pure state machine: `GuardianCore.step(event) → actions`, in the
 * manner of the replica's core (src/core/replica.ts). It reads no clock, sets no timer, does no
 * I/O, draws no randomness and never awaits: time enters as the `now` of every event, and
 * everything that touches the world (processes, files, sockets, signatures, hashing) is an action
 * the shell (src/recovery/guardian.ts) carries out, whose result comes back as an event. The same
 * core can therefore run inside the deterministic simulator.
 *
 * What it decides:
 * - the slot bookkeeping of the schedule (src/core/schedule.ts): which slot to act on, once, and
 *   what to do when it is noticed late;
 * - accusations from verified evidence and from f + 1 distinct suspicions, with the rate limits
 *   that keep a flooding replica from keeping its guardian busy;
 * - the reactive slot choice, the standby preparation and the leader handoff before a slot;
 * - the rejuvenation as explicit states with deadlines (RejuvenationState), the alarm when one
 *   passes T_D, the restart after a crash and the choice between a full rejuvenation and a restart
 *   from the disk;
 * - the certificate table: which key epoch of which replica is accepted until when.
 */
import { quorumSize } from '../../core/quorum.js';
import {
  epochValidUntilMs,
  retiredEpochAcceptedUntilMs,
  type Accusation,
  type ScheduleParameters,
  type Slot,
  exposureBoundMs,
  nextProactiveSlotOf,
  reactiveAssignment,
  slotAt,
} from '../../core/schedule.js';
import { provenKeyEpoch } from '../../core/forensics.js';
import { SuspicionTracker } from '../../core/suspicions.js';
import { decodeEvidence } from '../../messages/codec.js';
import { assert, type KeyEpoch, type ReplicaId, replicaId } from '../../messages/ids.js';
import type { Evidence, KeyCertificate } from '../../messages/types.js';

// ───────────────────────────── timing constants ─────────────────────────────

/** A standby process is prepared this long before the replica's proactive slot. */
export const STANDBY_LEAD_MS = 3000;
/** An accusation must reach every guardian this long before the reactive slot that acts on it. */
export const DECISION_LEAD_MAX_MS = 1000;
/** A suspicion of the same replica is relayed to the other guardians at most this often. */
export const SUSPICION_RELAY_INTERVAL_MS = 500;
/** Evidence from the guardian's own replica checked per second at most. */
export const MAX_OWN_EVIDENCE_PER_SECOND = 20;
/** Longest a leader's rejuvenation waits for the others to move to a view it does not lead. */
export const LEADER_HANDOFF_MAX_MS = 1000;
/** A leader asks for a view it does not lead this long before its own proactive slot. */
export const LEADER_HANDOFF_LEAD_MS = 1000;
/** How long a former leader keeps running once the new view executes, for clients to follow. */
export const LEADER_HANDOFF_LINGER_MS = 250;
/** A first start waits this long for its replica to catch up before reporting it. */
export const FIRST_START_TIMEOUT_MS = 60_000;
/**
 * A guardian that notices its slot this late (or T_D / 4 if shorter) skips it (and raises an
 * alarm) rather than overrun it.
 */
export const SLOT_LATENESS_MAX_MS = 1000;
/**
 * A guardian whose replica crashed waits this long (or T_D / 8 if shorter) to hear of other
 * crashes before it chooses between rejuvenating now and restarting from the disk.
 */
export const CRASH_SETTLE_MAX_MS = 500;
/** How often a guardian tells the others whether its replica votes. */
export const REPLICA_STATE_INTERVAL_MS = 250;
/** A guardian not heard from for this long counts its replica as out. */
export const REPLICA_STATE_STALE_MS = 1500;
/** A rejuvenation waits at most this long (or T_D / 8) for replicas that are out to come back. */
export const REJUVENATION_DECISION_WAIT_MAX_MS = 1000;
/**
 * A replica that has caught up but does not vote is asked for its rejoin view change again this
 * often (or T_D / 4 if shorter), at most MAX_REJOIN_ASKS times per process: a request can be lost
 * (its replicas were in the middle of another view change, which ends in a view the replica sits
 * out; or it named a view from a status older than the replica's voting floor), and on an idle
 * cluster nothing else moves the view. Bounded, so that a compromised replica that says it never
 * votes cannot keep the cluster changing views.
 */
export const REJOIN_RETRY_MS = 2000;
export const MAX_REJOIN_ASKS = 3;
/** Records (recoveries, alarms, evidence) kept for the status page. */
export const MAX_RECORDS = 20;

// ───────────────────────────── vocabulary ─────────────────────────────

/** The same values as RECOVERY_STEPS of src/runtime/guardian-report.ts (the shell checks it). */
export type CoreRecoveryStep =
  | 'stopping'
  | 'verifying-code'
  | 'issuing-keys'
  | 'starting'
  | 'validating-state'
  | 'transferring-state'
  | 'replaying-log'
  | 'rejoining';
export type CoreRecoveryKind = 'proactive' | 'reactive';
/** What the replica process reports of its recovery (RecoveryProgress of src/runtime/ipc.ts). */
export type CoreProgress =
  'validating-state' | 'transferring-state' | 'replaying-log' | 'caught-up' | 'voting' | 'safe-mode';
const PROGRESS_ORDER: readonly CoreProgress[] = [
  'validating-state',
  'transferring-state',
  'replaying-log',
  'caught-up',
  'voting',
];

export interface CoreRecoveryRecord {
  readonly kind: CoreRecoveryKind;
  readonly reason: string;
  readonly startedAtMs: number;
  readonly durationMs: number;
  readonly steps: readonly { readonly step: CoreRecoveryStep; readonly durationMs: number }[];
  readonly exceededBound: boolean;
  readonly keyEpoch: number;
}

export interface CoreAlarm {
  readonly atMs: number;
  readonly message: string;
}

export interface CoreEvidenceRecord {
  readonly atMs: number;
  readonly kind: string;
  readonly accused: number;
  readonly reporter: string;
  readonly valid: boolean;
  readonly detail: string;
}

/** What the guardian keeps in its state file (with the certificates of the table). */
export interface GuardianPersistentState {
  readonly keyEpoch: number;
  readonly lastRejuvenationAtMs: number | null;
  /** (period, index) of the last slot this guardian acted on, so a restart does not repeat it. */
  readonly lastSlot: string | null;
}

/** What the guardians tell each other (ControlMessage of src/recovery/control.ts, before encoding). */
export type CoreControlMessage =
  | { readonly type: 'certificate'; readonly certificate: KeyCertificate }
  /**
   * `atMs`: when the originating guardian accused on it (evidence, owed) or its replica complained
   * (suspicion), on its clock. Every guardian orders accusations by these stamps, not by when the
   * messages reached it, so that all agree on which replicas a reactive slot serves.
   */
  | {
      readonly type: 'evidence';
      readonly evidence: Uint8Array;
      readonly reporter: string;
      readonly atMs: number;
    }
  | { readonly type: 'suspicion'; readonly accused: number; readonly reason: string; readonly atMs: number }
  /**
   * `atMs` (recovering, recovered): when the sender began or ended the rejuvenation, on its clock.
   * Suspicions are judged against it by their own stamps, so that every guardian ignores the same
   * ones whatever order the messages reach it in (see #onSuspicion).
   */
  | {
      readonly type: 'recovering';
      readonly kind: CoreRecoveryKind;
      readonly reason: string;
      readonly atMs: number;
    }
  | { readonly type: 'recovered'; readonly keyEpoch: number; readonly atMs: number }
  | { readonly type: 'replica-state'; readonly voting: boolean }
  | { readonly type: 'rejuvenation-owed'; readonly reason: string; readonly atMs: number }
  | { readonly type: 'nudge'; readonly aboveView: number | null };

export type GuardianEvent =
  /** The guardian is up (control channel and admin server): the replica's first start begins. */
  | { readonly type: 'started'; readonly now: number }
  /** The shell's timer; `connectedGuardians` are the peers whose control connection is up now. */
  | { readonly type: 'tick'; readonly now: number; readonly connectedGuardians: readonly number[] }
  // The replica process, over its guardian link.
  | {
      readonly type: 'replica-status';
      readonly now: number;
      readonly view: number;
      /** The view a rejoin view change must go above: `view`, or an amnesiac's voting floor above it. */
      readonly rejoinAboveView: number;
      readonly lastExecuted: number;
      readonly voting: boolean;
    }
  | { readonly type: 'replica-progress'; readonly now: number; readonly stage: CoreProgress }
  /**
   * The shell verified a fork proof and keeps it: more than f replicas misbehaved, and every start
   * of the replica is in safe mode from now on. Rejuvenations keep the replica's disk by design.
   */
  | { readonly type: 'safe-mode-kept'; readonly now: number }
  | {
      readonly type: 'replica-evidence';
      readonly now: number;
      readonly evidence: Uint8Array;
      /** The client that handed the proof in, as the replica says (absent: the replica found it). */
      readonly origin?: string;
    }
  | {
      readonly type: 'replica-suspicion';
      readonly now: number;
      readonly accused: number;
      readonly reason: string;
    }
  | {
      readonly type: 'replica-exited';
      readonly now: number;
      /** The guardian stopped it (no crash). */
      readonly expected: boolean;
      readonly code: number | null;
      readonly signal: string | null;
    }
  // The other guardians, over the authenticated control channel, after decoding.
  | {
      readonly type: 'peer-evidence';
      readonly now: number;
      readonly evidence: Uint8Array;
      readonly reporter: string;
      /** The originating guardian's stamp (CoreControlMessage); absent: `now`. */
      readonly atMs?: number;
    }
  | {
      readonly type: 'peer-suspicion';
      readonly now: number;
      readonly from: number;
      readonly accused: number;
      readonly reason: string;
      readonly atMs?: number;
    }
  | { readonly type: 'peer-recovering'; readonly now: number; readonly from: number; readonly atMs?: number }
  | { readonly type: 'peer-recovered'; readonly now: number; readonly from: number; readonly atMs?: number }
  | {
      readonly type: 'peer-replica-state';
      readonly now: number;
      readonly from: number;
      readonly voting: boolean;
    }
  | {
      readonly type: 'peer-rejuvenation-owed';
      readonly now: number;
      readonly from: number;
      readonly reason: string;
      readonly atMs?: number;
    }
  | { readonly type: 'peer-nudge'; readonly now: number; readonly aboveView: number | null }
  /** A certificate whose signature the shell checked against the replica's identity key. */
  | { readonly type: 'certificate-verified'; readonly now: number; readonly certificate: KeyCertificate }
  // Results of the shell's work.
  | {
      readonly type: 'evidence-verdict';
      readonly now: number;
      readonly evidence: Evidence;
      readonly encoded: Uint8Array;
      readonly reporter: string;
      /** The stamp of the verify-evidence action (absent: `now`). */
      readonly atMs?: number;
      readonly valid: boolean;
      /** The verifier's reason (invalid) or a description of what it proves (valid). */
      readonly detail: string;
    }
  | { readonly type: 'replica-stopped'; readonly now: number }
  | {
      readonly type: 'code-checked';
      readonly now: number;
      readonly ok: boolean;
      readonly problems: readonly string[];
    }
  /** `fresh`: a new epoch was issued (else the saved epoch of a first start goes on). */
  | {
      readonly type: 'keys-issued';
      readonly now: number;
      readonly certificate: KeyCertificate;
      readonly fresh: boolean;
    }
  /** The new process runs (`loweredPriority`: the shell put it at the recovering priority). */
  | { readonly type: 'replica-started'; readonly now: number; readonly loweredPriority: boolean }
  | { readonly type: 'recovery-failed'; readonly now: number; readonly message: string }
  /** An alarm raised by the shell's own work (a refused certificate or frame, a failed audit). */
  | { readonly type: 'alarm'; readonly now: number; readonly message: string };

export type LogLevel = 'info' | 'warn';

/** The shell's answer to a `verify-evidence` action: the verdict event the core waits for. */
export function evidenceVerdict(
  action: Extract<GuardianAction, { type: 'verify-evidence' }>,
  now: number,
  verdict: { readonly valid: boolean; readonly detail: string },
): Extract<GuardianEvent, { type: 'evidence-verdict' }> {
  return {
    type: 'evidence-verdict',
    now,
    evidence: action.evidence,
    encoded: action.encoded,
    reporter: action.reporter,
    atMs: action.atMs,
    valid: verdict.valid,
    detail: verdict.detail,
  };
}

export type GuardianAction =
  | {
      readonly type: 'log';
      readonly level: LogLevel;
      readonly fields: Readonly<Record<string, unknown>>;
      readonly message: string;
    }
  /** Already recorded in the core's alarm list; the shell logs it. */
  | { readonly type: 'alarm'; readonly message: string }
  | { readonly type: 'broadcast'; readonly message: CoreControlMessage }
  /** Ask the own replica for a view change (nudge-view-change on its guardian link). */
  | {
      readonly type: 'nudge-replica';
      readonly avoidLeaders: readonly number[];
      readonly aboveView: number | null;
    }
  /**
   * Tell the own replica that `replica` is proven faulty under its key epoch `keyEpoch` (a proof
   * verified here): it stops counting the culprit's messages until the culprit's epoch rises.
   */
  | {
      readonly type: 'cut-off-replica';
      readonly replica: number;
      readonly keyEpoch: KeyEpoch;
      readonly reason: string;
      /** The verified proof (the replica counts it toward more than f proven: safe mode). */
      readonly evidence: Evidence;
    }
  /** Hand the own replica a certificate a peer announced. */
  | { readonly type: 'forward-certificate'; readonly certificate: KeyCertificate }
  /** Install into the key registry the shell verifies signatures with. */
  | { readonly type: 'install-certificate'; readonly certificate: KeyCertificate }
  /** Write the state file durably: `persistentState()` and `certificateList()`. */
  | { readonly type: 'save-state' }
  | {
      readonly type: 'verify-evidence';
      readonly evidence: Evidence;
      readonly encoded: Uint8Array;
      readonly reporter: string;
      /** The origin's stamp, handed back in the verdict. */
      readonly atMs: number;
    }
  | { readonly type: 'prepare-standby'; readonly slotStartMs: number }
  | { readonly type: 'discard-standby' }
  // The rejuvenation's work, in order; each answers with the event named.
  /** A rejuvenation (or the first start) began: the shell tracks it until 'recovery-over'. */
  | {
      readonly type: 'recovery-begun';
      readonly kind: CoreRecoveryKind;
      readonly first: boolean;
      /** A restart after the replica crashed or its recovery failed: outside the schedule. */
      readonly afterCrash: boolean;
    }
  /** → 'replica-stopped' */
  | { readonly type: 'stop-replica' }
  /** Move the stopped process's accountability log aside (audited at 'recovery-over'). */
  | { readonly type: 'archive-logs' }
  /** → 'code-checked' */
  | { readonly type: 'check-code' }
  /** → 'keys-issued'; `keepSavedEpoch`: a first start goes on with the saved epoch if it can. */
  | { readonly type: 'issue-keys'; readonly nextEpoch: number; readonly keepSavedEpoch: boolean }
  /** → 'replica-started' */
  | {
      readonly type: 'start-replica';
      readonly certificate: KeyCertificate;
      readonly certificates: readonly KeyCertificate[];
      readonly amnesiac: boolean;
      readonly lowerPriority: boolean;
    }
  | { readonly type: 'restore-priority'; readonly reason: 'share-of-T_D-passed' | 'recovery-over' }
  /** The rejuvenation is over (finished, timed out, refused or failed). */
  | { readonly type: 'recovery-over'; readonly auditArchivedLogs: boolean };

export interface GuardianCoreOptions {
  readonly id: ReplicaId;
  readonly schedule: ScheduleParameters;
  /** State read back from the state file (a fresh guardian: epoch 0, nothing else). */
  readonly persisted: GuardianPersistentState;
  /** Certificates read back from the state file, their signatures already checked. */
  readonly certificates: readonly KeyCertificate[];
  /** How far apart the guardians' clocks may be (CLOCK_SKEW_ALLOWANCE_MS of src/crypto). */
  readonly clockSkewAllowanceMs: number;
  /** Share of T_D a recovering process runs at low priority (src/recovery/priority.ts). */
  readonly recoveringNiceShareOfTd: number;
  /**
   * Test only (the simulator's --broken-guardian): every reactive slot also takes the lowest-id
   * replicas it was not assigned, k + 1 in all, so that the recovery checkers must object.
   */
  readonly brokenReactiveSlot?: boolean;
  /**
   * Test only (the simulator's --broken-suspicions): f reporters suffice to accuse instead of
   * f + 1, so that f Byzantine replicas can frame a correct one and the checkers must object.
   */
  readonly brokenSuspicionThreshold?: boolean;
  /** A fork proof is kept (the guardian restarted in safe mode): see the 'safe-mode-kept' event. */
  readonly safeModeKept?: boolean;
}

// ───────────────────────────── the certificate table ─────────────────────────────

export interface AcceptedEpoch {
  readonly certificate: KeyCertificate;
  readonly acceptedUntilMs: number;
}

/**
 * Each replica's latest certificate and the one before, with until when each is accepted, by the
 * rule KeyRegistry applies too (epochValidUntilMs and retiredEpochAcceptedUntilMs in
 * src/core/schedule.ts). A certificate issued at I is valid until the end of its
 * replica's first proactive slot starting T_D or more after I (plus the clock skew allowance);
 * once a successor issued at I' retires it, it is accepted only to the end of the slot holding I'.
 */
export class CertificateTable {
  readonly #schedule: ScheduleParameters;
  readonly #skewMs: number;
  readonly #byReplica = new Map<number, { current: AcceptedEpoch; previous: AcceptedEpoch | null }>();

  constructor(schedule: ScheduleParameters, clockSkewAllowanceMs: number) {
    this.#schedule = schedule;
    this.#skewMs = clockSkewAllowanceMs;
  }

  /** Until when an epoch issued at `issuedAtMs` is valid (−∞ for a time the schedule cannot place). */
  validUntilMs(replica: ReplicaId, issuedAtMs: number): number {
    return epochValidUntilMs(this.#schedule, replica, issuedAtMs, this.#skewMs);
  }

  /** Until when an epoch retired by a successor issued at `successorIssuedAtMs` stays accepted. */
  retiredUntilMs(successorIssuedAtMs: number): number {
    return retiredEpochAcceptedUntilMs(this.#schedule, successorIssuedAtMs);
  }

  /** Makes `certificate` its replica's current epoch; false (nothing changes) unless it is newer. */
  install(certificate: KeyCertificate): boolean {
    const known = this.#byReplica.get(certificate.replica);
    if (known !== undefined && known.current.certificate.keyEpoch >= certificate.keyEpoch) return false;
    const current = {
      certificate,
      acceptedUntilMs: this.validUntilMs(certificate.replica, certificate.issuedAtMs),
    };
    const previous =
      known !== undefined && known.current.certificate.keyEpoch === certificate.keyEpoch - 1
        ? {
            certificate: known.current.certificate,
            acceptedUntilMs: Math.min(
              known.current.acceptedUntilMs,
              this.retiredUntilMs(certificate.issuedAtMs),
            ),
          }
        : null;
    // The certificate before stays listed (persisted and handed to the replica) even when its
    // epoch is not the one just before: signatures under it may still sit in durable state.
    this.#byReplica.set(certificate.replica, {
      current,
      previous:
        previous ??
        (known === undefined ? null : { ...known.current, acceptedUntilMs: Number.NEGATIVE_INFINITY }),
    });
    return true;
  }

  current(replica: number): KeyCertificate | undefined {
    return this.#byReplica.get(replica)?.current.certificate;
  }

  /** Until when `epoch` of `replica` is accepted, or undefined when the table does not hold it. */
  acceptedUntilMs(replica: number, epoch: KeyEpoch | number): number | undefined {
    const entry = this.#byReplica.get(replica);
    if (entry === undefined) return undefined;
    if (entry.current.certificate.keyEpoch === epoch) return entry.current.acceptedUntilMs;
    if (entry.previous?.certificate.keyEpoch === epoch) return entry.previous.acceptedUntilMs;
    return undefined;
  }

  /** Whether a signature of `replica` under `epoch` counts at `nowMs`. */
  accepts(replica: number, epoch: number, nowMs: number): boolean {
    const until = this.acceptedUntilMs(replica, epoch);
    return until !== undefined && nowMs <= until;
  }

  /** Every previous certificate, then every current one (the state file's order). */
  list(): KeyCertificate[] {
    const entries = [...this.#byReplica.values()];
    return [
      ...entries.flatMap((entry) => (entry.previous === null ? [] : [entry.previous.certificate])),
      ...entries.map((entry) => entry.current.certificate),
    ];
  }

  currents(): KeyCertificate[] {
    return [...this.#byReplica.values()].map((entry) => entry.current.certificate);
  }
}

// ───────────────────────────── the rejuvenation states ─────────────────────────────

/** One rejuvenation (or the first start) in progress. */
interface RecoveryRun {
  readonly kind: CoreRecoveryKind;
  readonly reason: string;
  /** The guardian's first start of its replica: from its disk, not a rejuvenation. */
  readonly first: boolean;
  /** A restart after a crash, outside the schedule: at most k may be out. */
  readonly afterCrash: boolean;
  readonly startedAtMs: number;
  /** T_D after the start or the end of its slot, whichever is first (∞ for a first start). */
  readonly deadlineMs: number;
  stepStartedAtMs: number;
  readonly steps: { step: CoreRecoveryStep; durationMs: number }[];
  keyEpoch: number;
  /**
   * The disk is kept: more replicas were out than the rejuvenation may add to (its full
   * rejuvenation is owed), or the guardian keeps a fork proof (by design: `diskKeptInSafeMode`).
   */
  fromDisk: boolean;
  diskKeptInSafeMode: boolean;
  readonly reached: Set<CoreProgress>;
}

interface LeaderHandoff {
  readonly deadlineMs: number;
  executedInNewView: number | null;
  lingerUntilMs: number | null;
}

/**
 * Where the rejuvenation is. Every state but `idle` carries the run and the deadline that ends
 * its wait: the handoff's, the disk decision's, or the catch-up's (T_D or the slot's end).
 */
export type RejuvenationState =
  | { readonly name: 'idle' }
  /** A standby process was asked for ahead of the own proactive slot starting at slotStartMs. */
  | { readonly name: 'standby-prepared'; readonly slotStartMs: number }
  | {
      readonly name: 'stopping';
      readonly run: RecoveryRun;
      /** A leader waits (to deadlineMs) for the others to move to a view it does not lead. */
      handoff: LeaderHandoff | null;
      /** Set once the process stopped: the disk decision waits until then for peers to come back. */
      decideDiskByMs: number | null;
      readonly deadlineMs: number;
    }
  | {
      readonly name: 'verifying-code' | 'issuing-keys' | 'starting';
      readonly run: RecoveryRun;
      readonly deadlineMs: number;
    }
  | {
      readonly name: 'validating-state' | 'transferring-state' | 'replaying-log' | 'rejoining';
      readonly run: RecoveryRun;
      /** The recovery's deadline (FIRST_START_TIMEOUT_MS after the start for a first start). */
      readonly deadlineMs: number;
    };

type Recovering = Exclude<RejuvenationState, { name: 'idle' } | { name: 'standby-prepared' }>;

const CATCHING_UP: readonly string[] = ['validating-state', 'transferring-state', 'replaying-log'];
/** The steps that wait for the new process (started by the recovery) to report. */
const WAITING_FOR_PROCESS: readonly string[] = [...CATCHING_UP, 'rejoining'];

/** How the reason of an accusation for a rejuvenation that kept its disk begins. */
export const OWED_PREFIX = 'rejuvenation owed: ';

/** What an accusation rests on: verified evidence, f + 1 suspicions, or a rejuvenation owed. */
export type AccusationCause = 'proof' | 'suspicions' | 'owed';

/** An accusation as a guardian holds it. */
export type HeldAccusation = Accusation & { readonly cause: AccusationCause; readonly reason: string };

// ───────────────────────────── the core ─────────────────────────────

export class GuardianCore {
  readonly id: ReplicaId;
  readonly #schedule: ScheduleParameters;
  readonly #options: GuardianCoreOptions;
  readonly #table: CertificateTable;
  readonly #suspicions: SuspicionTracker;
  #persisted: GuardianPersistentState;
  #state: RejuvenationState = { name: 'idle' };
  #actions: GuardianAction[] = [];
  #now = Number.NEGATIVE_INFINITY;

  /** Replicas proven (or f + 1 times suspected) to misbehave and not yet rejuvenated since. */
  readonly #accusations = new Map<number, HeldAccusation>();
  /** Evidence kinds already verified against each replica since its last rejuvenation. */
  readonly #provenKinds = new Map<number, Set<string>>();
  /** The key epoch the newest verified proof against each replica was made under, since its last rejuvenation. */
  readonly #provenEpochs = new Map<
    number,
    { readonly keyEpoch: KeyEpoch; readonly reason: string; readonly evidence: Evidence }
  >();
  /** Whether the alarm "f replicas counted faulty" was raised and the count has not fallen since. */
  #faultBudgetAlarmed = false;
  /** Whether the alarm "more than f replicas proven" was raised and the count has not fallen since. */
  #beyondFAlarmed = false;
  /** Replicas other guardians reported as recovering or recovered, with when. */
  readonly #recoveringPeers = new Map<number, number>();
  /** What each other guardian last said of its replica, and when. */
  readonly #peerStates = new Map<number, { readonly voting: boolean; readonly atMs: number }>();
  #connectedGuardians = new Set<number>();
  readonly #suspicionRelayedAt = new Map<number, number>();
  #evidenceWindowStartMs = Number.NEGATIVE_INFINITY;
  #evidenceInWindow = 0;

  /** The replica's last status report (null: none since its process started). */
  #replicaStatus: { view: number; rejoinAboveView: number; lastExecuted: number; voting: boolean } | null =
    null;
  #replicaRunning = false;
  #reportedVoting: boolean | null = null;
  #lastPeriodicReportAtMs = Number.NEGATIVE_INFINITY;
  #ownRecoveryActivityAtMs: number | undefined;
  /** A rejuvenation ran out of time before its replica caught up: it still owes the rejoin. */
  /** A fork proof is kept: rejuvenations keep the disk by design (#decideDisk). */
  #safeModeKept: boolean;
  #rejoinOwed = false;
  /** The replica process's last progress report (null: none since it started). */
  #lastProgress: CoreProgress | null = null;
  /** Rejoin view changes asked for since the process started, and when the last one was. */
  #rejoinAsks = 0;
  #lastRejoinAskAtMs = Number.NEGATIVE_INFINITY;
  #crashedDuringRecovery = false;
  #crashRestartAtMs: number | null = null;
  #crashRestartReason = 'the replica process crashed';
  #lastCrashRejuvenationAtMs = Number.NEGATIVE_INFINITY;
  #handedOffForSlotMs: number | null = null;
  /** When the recovering process gets its normal priority back (null: not lowered). */
  #priorityRestoreAtMs: number | null = null;

  readonly #recoveries: CoreRecoveryRecord[] = [];
  readonly #alarms: CoreAlarm[] = [];
  readonly #evidence: CoreEvidenceRecord[] = [];

  constructor(options: GuardianCoreOptions) {
    assert(options.schedule.k >= 1, 'a guardian needs a schedule with k ≥ 1');
    this.id = options.id;
    this.#options = options;
    this.#schedule = options.schedule;
    this.#persisted = options.persisted;
    this.#safeModeKept = options.safeModeKept === true;
    this.#table = new CertificateTable(options.schedule, options.clockSkewAllowanceMs);
    const sorted = [...options.certificates].sort((a, b) => a.replica - b.replica || a.keyEpoch - b.keyEpoch);
    for (const certificate of sorted) this.#table.install(certificate);
    this.#suspicions = new SuspicionTracker({
      n: options.schedule.n,
      f: options.brokenSuspicionThreshold === true ? options.schedule.f - 1 : options.schedule.f,
      windowMs: 2 * options.schedule.recoveryBoundMs,
    });
  }

  step(event: GuardianEvent): GuardianAction[] {
    assert(Number.isFinite(event.now), `event ${event.type} has no finite time`);
    // Time never goes back inside the core, whatever the shell's clock does.
    this.#now = Math.max(this.#now, event.now);
    this.#actions = [];
    this.#handle(event);
    const actions = this.#actions;
    this.#actions = [];
    return actions;
  }

  // ───────────────────────────── queries (pure, for status and the shell) ─────────────────────────────

  get rejuvenation(): RejuvenationState {
    return this.#state;
  }

  get recovering(): boolean {
    return this.#recoveringState() !== null;
  }

  get certificates(): CertificateTable {
    return this.#table;
  }

  persistentState(): GuardianPersistentState {
    return this.#persisted;
  }

  /** Replicas accused and not yet rejuvenated, ascending. */
  pendingReactive(): number[] {
    return [...this.#accusations.keys()].sort((a, b) => a - b);
  }

  accusationOf(replica: number): HeldAccusation | undefined {
    return this.#accusations.get(replica);
  }

  replicaReported(): boolean {
    return this.#replicaStatus !== null;
  }

  /** Until when the replica's current key epoch is accepted (null: none issued yet). */
  ownEpochAcceptedUntilMs(): number | null {
    const until = this.#table.acceptedUntilMs(this.id, this.#persisted.keyEpoch);
    return until === undefined || !Number.isFinite(until) ? null : until;
  }

  status(nowMs: number) {
    const recovering = this.#recoveringState();
    const run = recovering?.run ?? null;
    const last = this.#persisted.lastRejuvenationAtMs;
    return {
      keyEpoch: this.#persisted.keyEpoch,
      recovery: {
        inProgress: run !== null,
        kind: run?.kind ?? null,
        reason: run?.reason ?? null,
        step: recovering?.name ?? null,
        startedAtMs: run?.startedAtMs ?? null,
        stepStartedAtMs: run?.stepStartedAtMs ?? null,
      },
      lastRejuvenationAtMs: last,
      exposureMs: last === null ? 0 : nowMs - last,
      guaranteeMs: exposureBoundMs(this.#schedule),
      recoveryBoundMs: this.#schedule.recoveryBoundMs,
      periodMs: this.#schedule.periodMs,
      nextProactiveAtMs: nextProactiveSlotOf(this.#schedule, this.id, nowMs).startMs,
      recentRecoveries: this.#recoveries.slice(),
      alarms: this.#alarms.slice(),
      evidence: this.#evidence.slice(),
      suspicions: this.#suspicions
        .snapshot(nowMs)
        .map((entry) => ({ accused: entry.accused, reporters: [...entry.reporters] })),
      pendingReactive: this.pendingReactive(),
      keyEpochAcceptedUntilMs: this.ownEpochAcceptedUntilMs(),
      faultyReplicas: this.faultyReplicas(),
    };
  }

  /** Other replicas not taking part now: guardian unreachable or silent, or replica not voting. */
  unavailableOthers(nowMs: number): number[] {
    const unavailable: number[] = [];
    for (let replica = 0; replica < this.#schedule.n; replica++) {
      if (replica === this.id) continue;
      const state = this.#peerStates.get(replica);
      const fresh = state !== undefined && nowMs - state.atMs <= REPLICA_STATE_STALE_MS;
      if (!this.#connectedGuardians.has(replica) || !fresh || !state.voting) unavailable.push(replica);
    }
    return unavailable;
  }

  // ───────────────────────────── dispatch ─────────────────────────────

  #handle(event: GuardianEvent): void {
    switch (event.type) {
      case 'started': {
        // A slot already running when the guardian starts is not acted on: the replica starts fresh now.
        const current = slotAt(this.#schedule, event.now);
        this.#persisted = { ...this.#persisted, lastSlot: slotName(current) };
        // The first start is not a rejuvenation: the disk is as trustworthy as the host.
        this.#begin('proactive', 'guardian started', { first: true });
        return;
      }
      case 'tick':
        this.#connectedGuardians = new Set(event.connectedGuardians);
        this.#onTick();
        return;
      case 'replica-status':
        this.#replicaStatus = {
          view: event.view,
          rejoinAboveView: Math.max(event.view, event.rejoinAboveView),
          lastExecuted: event.lastExecuted,
          voting: event.voting,
        };
        this.#reportReplicaState(false);
        return;
      case 'replica-progress':
        this.#onProgress(event.stage);
        return;
      case 'safe-mode-kept':
        this.#safeModeKept = true;
        return;
      case 'replica-evidence':
        this.#onOwnEvidence(event.evidence, event.origin);
        return;
      case 'replica-suspicion':
        this.#onOwnSuspicion(event.accused, event.reason);
        return;
      case 'replica-exited':
        this.#onExit(event.expected, event.code, event.signal);
        return;
      case 'peer-evidence':
        this.#onEvidence(event.evidence, event.reporter, this.#stamp(event.atMs));
        return;
      case 'peer-suspicion':
        this.#onSuspicion(event.accused, event.from, event.reason, this.#stamp(event.atMs));
        return;
      case 'peer-recovering':
        this.#noteRecoveryActivity(event.from, this.#stamp(event.atMs));
        this.#peerStates.set(event.from, { voting: false, atMs: this.#now });
        return;
      case 'peer-recovered':
        this.#noteRecoveryActivity(event.from, this.#stamp(event.atMs));
        this.#settleAccusations(event.from);
        return;
      case 'peer-replica-state':
        this.#peerStates.set(event.from, { voting: event.voting, atMs: this.#now });
        return;
      case 'peer-rejuvenation-owed':
        this.#accuse(event.from, 'owed', `${OWED_PREFIX}${event.reason}`, this.#stamp(event.atMs));
        return;
      case 'peer-nudge':
        this.#emit({
          type: 'nudge-replica',
          avoidLeaders: this.#recoveringNext(),
          aboveView: event.aboveView,
        });
        return;
      case 'certificate-verified':
        if (!this.#table.install(event.certificate)) return;
        this.#emit({ type: 'install-certificate', certificate: event.certificate });
        // Before the replica can receive votes signed under it: a restart must still know this epoch.
        this.#emit({ type: 'save-state' });
        this.#emit({ type: 'forward-certificate', certificate: event.certificate });
        return;
      case 'evidence-verdict':
        this.#onVerdict(event);
        return;
      case 'replica-stopped':
        this.#onStopped();
        return;
      case 'code-checked':
        this.#onCodeChecked(event.ok, event.problems);
        return;
      case 'keys-issued':
        this.#onKeysIssued(event.certificate, event.fresh);
        return;
      case 'replica-started':
        this.#onStarted(event.loweredPriority);
        return;
      case 'recovery-failed':
        if (this.#recoveringState() === null) return;
        this.#alarm(`recovery of replica ${this.id} failed: ${event.message}`);
        // A failure of the shell's work (a spawn, a file) may pass: the replica is started again
        // as after a crash, not left down until a slot that may be T_P away.
        this.#end(false, 'its recovery failed');
        return;
      case 'alarm':
        this.#alarm(event.message);
        return;
    }
  }

  // ───────────────────────────── helpers ─────────────────────────────

  #emit(action: GuardianAction): void {
    this.#actions.push(action);
  }

  #log(level: LogLevel, fields: Record<string, unknown>, message: string): void {
    this.#emit({ type: 'log', level, fields, message });
  }

  #alarm(message: string): void {
    this.#alarms.unshift({ atMs: this.#now, message });
    this.#alarms.length = Math.min(this.#alarms.length, MAX_RECORDS);
    this.#emit({ type: 'alarm', message });
  }

  #recoveringState(): Recovering | null {
    const state = this.#state;
    return state.name === 'idle' || state.name === 'standby-prepared' ? null : state;
  }

  #replicaLeads(): boolean {
    const status = this.#replicaStatus;
    return status !== null && status.view % this.#schedule.n === this.id;
  }

  // ───────────────────────────── schedule ─────────────────────────────

  #onTick(): void {
    const now = this.#now;
    if (now - this.#lastPeriodicReportAtMs >= REPLICA_STATE_INTERVAL_MS) {
      this.#lastPeriodicReportAtMs = now;
      this.#reportReplicaState(true);
    }
    if (this.#priorityRestoreAtMs !== null && now >= this.#priorityRestoreAtMs) {
      this.#priorityRestoreAtMs = null;
      this.#log(
        'info',
        {},
        'recovery past its low-priority share of T_D: its process gets the normal priority back',
      );
      this.#emit({ type: 'restore-priority', reason: 'share-of-T_D-passed' });
    }
    if (this.#crashRestartAtMs !== null && now >= this.#crashRestartAtMs) {
      this.#crashRestartAtMs = null;
      if (this.#recoveringState() === null && !this.#replicaRunning) {
        this.#lastCrashRejuvenationAtMs = now;
        this.#begin('reactive', this.#crashRestartReason, { afterCrash: true });
        return;
      }
    }
    const recovering = this.#recoveringState();
    if (recovering !== null) {
      this.#advanceWaits(recovering);
      return;
    }
    this.#retryRejoinIfStuck();
    this.#followSchedule();
  }

  #followSchedule(): void {
    const now = this.#now;
    const ownSlot = nextProactiveSlotOf(this.#schedule, this.id, now);
    const untilOwnSlot = ownSlot.startMs - now;
    if (untilOwnSlot <= STANDBY_LEAD_MS && untilOwnSlot > 0) {
      const state = this.#state;
      if (state.name !== 'standby-prepared' || state.slotStartMs !== ownSlot.startMs) {
        this.#state = { name: 'standby-prepared', slotStartMs: ownSlot.startMs };
        this.#emit({ type: 'prepare-standby', slotStartMs: ownSlot.startMs });
      }
    }
    if (untilOwnSlot <= LEADER_HANDOFF_LEAD_MS && untilOwnSlot > 0) this.#handOffBeforeSlot(ownSlot.startMs);
    const slot = slotAt(this.#schedule, now);
    const name = slotName(slot);
    if (this.#persisted.lastSlot === name) return;
    // A replica (re)started during this very slot is already fresh, unless its key epoch ends
    // with this slot: then only this slot's rejuvenation replaces it.
    const last = this.#persisted.lastRejuvenationAtMs;
    const freshInSlot = last !== null && last >= slot.startMs && !this.#ownEpochEndsWith(slot);
    if (freshInSlot && slot.kind === 'proactive') {
      this.#persisted = { ...this.#persisted, lastSlot: name };
      if (slot.replicas.includes(this.id)) this.#discardStandby();
      return;
    }
    // A quarter of T_D at most: with a short T_D (the simulator's 400 ms) a slot noticed a second
    // late could begin its rejuvenation in the slot's last milliseconds and overrun into the next
    // slot, k + 1 replicas down at once (found by `npm run sim -- --recovery`, seed 4).
    const late = now - slot.startMs > Math.min(SLOT_LATENESS_MAX_MS, this.#schedule.recoveryBoundMs / 4);
    if (slot.kind === 'proactive' && slot.replicas.includes(this.id)) {
      this.#persisted = { ...this.#persisted, lastSlot: name };
      if (late) {
        this.#discardStandby();
        // Starting now could overrun into the next slot and take more than k replicas down at once.
        // Its key epoch ends with this slot, so the rejuvenation is owed to the next reactive slot.
        const reason = `it missed its proactive slot (the guardian noticed it ${now - slot.startMs} ms late)`;
        this.#alarm(`replica ${this.id} ${reason}; a rejuvenation is owed to the next reactive slot`);
        this.#emit({ type: 'broadcast', message: { type: 'rejuvenation-owed', reason, atMs: this.#now } });
        this.#accuse(this.id, 'owed', `${OWED_PREFIX}${reason}`, this.#now);
        return;
      }
      this.#begin('proactive', `period ${slot.period}`, { slotEndMs: slot.endMs });
      return;
    }
    if (slot.kind !== 'reactive') return;
    // Decided once per slot, chosen or not: accusations change during the slot (one served by it
    // that keeps its disk is owed again, dated now; a peer's recovery settles another), and a
    // guardian that chose again would pick the next replica while the slot's one still recovers
    // (the simulator saw two at once). Everything the choice counts was known by the slot's start.
    this.#persisted = { ...this.#persisted, lastSlot: name };
    if (this.reactiveChoice(slot).includes(this.id)) {
      if (late) {
        this.#alarm(`replica ${this.id} missed its reactive slot; it stays accused for the next one`);
        return;
      }
      const reason = this.#accusations.get(this.id)?.reason ?? 'accused';
      this.#begin('reactive', reason, { slotEndMs: slot.endMs });
    }
  }

  /** The replicas reactive `slot` serves, from the accusations this guardian knows. */
  reactiveChoice(slot: Slot): number[] {
    const lead = Math.min(DECISION_LEAD_MAX_MS, this.#schedule.recoveryBoundMs / 4);
    const accusations = [...this.#accusations.values()].map((held) => ({
      replica: held.replica,
      accusedAtMs: held.accusedAtMs,
      owed: held.cause === 'owed',
    }));
    const chosen = reactiveAssignment(this.#schedule, slot, accusations, lead);
    if (this.#options.brokenReactiveSlot !== true) return chosen;
    const broken: number[] = [...chosen];
    for (let replica = 0; replica < this.#schedule.n && broken.length <= this.#schedule.k; replica++)
      if (!broken.includes(replica)) broken.push(replica);
    return broken;
  }

  #ownEpochEndsWith(slot: Slot): boolean {
    const acceptedUntilMs = this.ownEpochAcceptedUntilMs();
    return acceptedUntilMs === null || acceptedUntilMs <= slot.endMs + this.#options.clockSkewAllowanceMs;
  }

  #discardStandby(): void {
    if (this.#state.name === 'standby-prepared') this.#state = { name: 'idle' };
    this.#emit({ type: 'discard-standby' });
  }

  /**
   * A leader whose proactive slot is about to start asks, once, for a view it does not lead, so
   * the view change is over before the slot rather than inside the recovery.
   */
  #handOffBeforeSlot(slotStartMs: number): void {
    if (this.#handedOffForSlotMs === slotStartMs || !this.#replicaLeads()) return;
    this.#handedOffForSlotMs = slotStartMs;
    this.#log(
      'info',
      { view: this.#replicaStatus?.view, slotInMs: slotStartMs - this.#now },
      'handing leadership on before the slot',
    );
    this.#askForViewChange(this.id);
  }

  /** Who the current and next slot rejuvenate: a new view should not be led by one of them. */
  #recoveringNext(): number[] {
    const current = slotAt(this.#schedule, this.#now);
    const next = slotAt(this.#schedule, current.endMs);
    const avoid = new Set<number>();
    for (const slot of [current, next]) {
      if (slot.kind === 'proactive') for (const replica of slot.replicas) avoid.add(replica);
      if (slot.kind === 'reactive') for (const replica of this.#accusations.keys()) avoid.add(replica);
    }
    if (this.#recoveringState() !== null) avoid.add(this.id);
    return [...avoid];
  }

  /** Every replica (this one directly, the others through their guardians) moves to a later view. */
  #askForViewChange(
    alsoAvoid: number | null = null,
    aboveView: number | null = this.#replicaStatus?.view ?? null,
  ): void {
    this.#emit({ type: 'broadcast', message: { type: 'nudge', aboveView } });
    const avoid = new Set(this.#recoveringNext());
    if (alsoAvoid !== null) avoid.add(alsoAvoid);
    this.#emit({ type: 'nudge-replica', avoidLeaders: [...avoid], aboveView });
  }

  #reportReplicaState(periodic: boolean): void {
    const voting =
      this.#recoveringState() === null && this.#replicaRunning && this.#replicaStatus?.voting === true;
    if (!periodic && voting === this.#reportedVoting) return;
    this.#reportedVoting = voting;
    this.#emit({ type: 'broadcast', message: { type: 'replica-state', voting } });
  }

  // ───────────────────────────── evidence, suspicions, accusations ─────────────────────────────

  #onOwnEvidence(encoded: Uint8Array, origin: string | undefined): void {
    // Checking evidence costs signature verifications: a compromised replica sending a stream of
    // it must not keep its guardian busy (valid proofs of a kind count once anyway).
    if (this.#now - this.#evidenceWindowStartMs >= 1000) {
      this.#evidenceWindowStartMs = this.#now;
      this.#evidenceInWindow = 0;
    }
    if (++this.#evidenceInWindow > MAX_OWN_EVIDENCE_PER_SECOND) {
      if (this.#evidenceInWindow === MAX_OWN_EVIDENCE_PER_SECOND + 1)
        this.#log(
          'warn',
          {},
          'replica sends evidence faster than the guardian checks it; dropping the excess',
        );
      return;
    }
    // Who found it: the client that handed it in (as the replica says), or the replica itself.
    this.#onEvidence(
      encoded,
      origin === undefined ? `replica ${this.id}` : `client ${origin} via replica ${this.id}`,
      this.#now,
    );
  }

  /** A peer's stamp as this core uses it: never later than its own now (a clock ahead). */
  #stamp(atMs: number | undefined): number {
    return atMs === undefined || !Number.isFinite(atMs) ? this.#now : Math.min(atMs, this.#now);
  }

  #onEvidence(encoded: Uint8Array, reporter: string, atMs: number): void {
    const decoded = decodeEvidence(encoded);
    if (!decoded.ok) {
      this.#recordEvidence({
        kind: 'undecodable',
        accused: -1,
        reporter,
        valid: false,
        detail: decoded.reason,
      });
      return;
    }
    // One proof of each kind is checked until the replica is rejuvenated: one is enough to accuse
    // it, and checking each of a flood of copies would let a liar keep every guardian busy.
    if (this.#provenKinds.get(decoded.value.accused)?.has(decoded.value.kind) === true) {
      // Already proven (a guardian relays only evidence it verified): an earlier stamp still
      // moves the accusation earlier, so every guardian orders it by its first report.
      this.#advanceAccusation(decoded.value.accused, atMs);
      return;
    }
    this.#emit({ type: 'verify-evidence', evidence: decoded.value, encoded, reporter, atMs });
  }

  #onVerdict(verdict: Extract<GuardianEvent, { type: 'evidence-verdict' }>): void {
    const { evidence, reporter } = verdict;
    if (!verdict.valid) {
      this.#recordEvidence({
        kind: evidence.kind,
        accused: evidence.accused,
        reporter,
        valid: false,
        detail: verdict.detail,
      });
      this.#log(
        'warn',
        { reporter, kind: evidence.kind, reason: verdict.detail },
        'forged or invalid evidence rejected',
      );
      return;
    }
    const atMs = this.#stamp(verdict.atMs);
    const proven = this.#provenKinds.get(evidence.accused);
    if (proven?.has(evidence.kind) === true) {
      this.#advanceAccusation(evidence.accused, atMs);
      return;
    }
    this.#recordEvidence({
      kind: evidence.kind,
      accused: evidence.accused,
      reporter,
      valid: true,
      detail: verdict.detail,
    });
    if (proven === undefined) this.#provenKinds.set(evidence.accused, new Set([evidence.kind]));
    else proven.add(evidence.kind);
    this.#cutOff(evidence, `proof: ${evidence.kind}`);
    // Relayed once by every guardian that accepts it: all of them learn it even if some links are down.
    this.#emit({
      type: 'broadcast',
      message: { type: 'evidence', evidence: verdict.encoded, reporter, atMs },
    });
    if (!this.#accusations.has(evidence.accused))
      this.#accuse(evidence.accused, 'proof', `proof: ${evidence.kind}`, atMs);
    else this.#advanceAccusation(evidence.accused, atMs);
  }

  /**
   * A proof against its accused was verified: the own replica cuts it off (again only for a newer
   * epoch) and counts the proof, and the count of faulty replicas may have reached f.
   */
  #cutOff(evidence: Evidence, reason: string): void {
    const replica = evidence.accused;
    const keyEpoch = provenKeyEpoch(evidence);
    const known = this.#provenEpochs.get(replica);
    if (known === undefined || known.keyEpoch < keyEpoch) {
      this.#provenEpochs.set(replica, { keyEpoch, reason, evidence });
      if (replica !== this.id) this.#emit({ type: 'cut-off-replica', replica, keyEpoch, reason, evidence });
    }
    this.#checkFaultBudget();
  }

  /**
   * f at run time: the replicas proven faulty or accused (f + 1 suspicions, or a proof) and not
   * rejuvenated since. Its own replica counts too when others accuse it.
   */
  faultyReplicas(): {
    readonly f: number;
    readonly counted: readonly number[];
    readonly proven: readonly number[];
  } {
    const counted = new Set<number>(this.#provenEpochs.keys());
    for (const [replica, accusation] of this.#accusations)
      if (accusation.cause !== 'owed') counted.add(replica);
    return {
      f: this.#schedule.f,
      counted: [...counted].sort((a, b) => a - b),
      proven: [...this.#provenEpochs.keys()].sort((a, b) => a - b),
    };
  }

  /**
   * Raises the alarm once when the count reaches f (one more intrusion before those replicas are
   * rejuvenated is more than the configuration tolerates) and once when more than f are proven
   * (the guarantee is gone: docs/intrusion-tolerance.md, Beyond f); each again after it fell back.
   */
  #checkFaultBudget(): void {
    const { f, counted, proven } = this.faultyReplicas();
    if (counted.length >= f && f > 0 && !this.#faultBudgetAlarmed) {
      this.#faultBudgetAlarmed = true;
      this.#alarm(
        `${counted.length} of f = ${f} replicas counted faulty and not yet rejuvenated (${counted.join(', ')}): ` +
          'one more intrusion before their rejuvenation is more than the cluster tolerates',
      );
    } else if (counted.length < f) this.#faultBudgetAlarmed = false;
    if (proven.length > f && !this.#beyondFAlarmed) {
      this.#beyondFAlarmed = true;
      this.#alarm(
        `BEYOND f: ${proven.length} replicas proven faulty (${proven.join(', ')}), more than f = ${f}: ` +
          'safety is no longer guaranteed; the replicas enter safe mode on these proofs',
      );
    } else if (proven.length <= f) this.#beyondFAlarmed = false;
  }

  #recordEvidence(record: Omit<CoreEvidenceRecord, 'atMs'>): void {
    this.#evidence.unshift({ ...record, atMs: this.#now });
    this.#evidence.length = Math.min(this.#evidence.length, MAX_RECORDS);
  }

  #onOwnSuspicion(accused: number, reason: string): void {
    if (!Number.isSafeInteger(accused) || accused < 0 || accused >= this.#schedule.n || accused === this.id)
      return;
    // A compromised replica may report suspicions in a loop: relay each accused at most once per
    // interval (a vote stays counted for the tracker's whole window anyway).
    const last = this.#suspicionRelayedAt.get(accused);
    if (last !== undefined && this.#now - last < SUSPICION_RELAY_INTERVAL_MS) return;
    this.#suspicionRelayedAt.set(accused, this.#now);
    this.#emit({ type: 'broadcast', message: { type: 'suspicion', accused, reason, atMs: this.#now } });
    this.#onSuspicion(accused, this.id, reason, this.#now);
  }

  #onSuspicion(accused: number, reporter: number, reason: string, atMs: number): void {
    if (accused >= this.#schedule.n || accused === reporter) return;
    // A replica being rejuvenated is down on purpose: suspicions of it are expected, not evidence.
    // Every guardian applies the same rule (its own replica included), so all reach the same
    // accusations: a replica is not suspected within 2·T_D of announcing a recovery.
    // Judged by the stamps (the suspicion's and the recovery's, as their originating guardians
    // set them), not by when either reached this guardian: judged on arrival, a suspicion near the
    // end of the grace counted at some guardians and not at others, and their accusations split
    // (the simulator saw two replicas rejuvenated reactively at once, over k). A suspicion stamped
    // before the recovery began is of the old incarnation, which the recovery settles anyway.
    const recovering =
      accused === this.id ? this.#ownRecoveryActivityAtMs : this.#recoveringPeers.get(accused);
    if (recovering !== undefined && atMs - recovering < 2 * this.#schedule.recoveryBoundMs) {
      // Info, not debug: an operator asking why f + 1 complaints accused nobody finds the answer.
      this.#log('info', { accused, reporter, reason }, 'suspicion of a replica that just recovered ignored');
      return;
    }
    this.#log('info', { accused, reporter, reason }, 'suspicion');
    const reached = this.#suspicions.report(replicaId(accused), replicaId(reporter), this.#now, atMs);
    const thresholdAtMs = this.#suspicions.thresholdTimeMs(replicaId(accused), this.#now);
    if (reached)
      this.#accuse(
        accused,
        'suspicions',
        `f + 1 replicas suspect it (${reason})`,
        thresholdAtMs ?? this.#now,
      );
    // A report that arrived late but is stamped earlier than one counted: the threshold time every
    // guardian computes once it holds the same reports.
    else if (thresholdAtMs !== null) this.#advanceAccusation(accused, thresholdAtMs);
  }

  /**
   * `atMs`: the accusation's time as every guardian can compute it (the originating guardian's
   * stamp, or the (f+1)-th earliest suspicion's), not when this guardian heard of it: the reactive
   * slots serve the oldest accusations first, and guardians that ordered them by arrival could
   * each pick a different replica for one slot (the simulator found two rejuvenating at once).
   */
  #accuse(accused: number, cause: AccusationCause, reason: string, atMs: number): void {
    const held = this.#accusations.get(accused);
    // An owed rejuvenation replaces what was held: the slot that kept the disk ran after it, and
    // the rule that skips an accusation its replica's next proactive slot served would skip it
    // at the guardians that held the older one, and not at the others (two replicas then took one
    // reactive slot in the simulator).
    if (held !== undefined && !(cause === 'owed' && held.cause !== 'owed')) return;
    this.#accusations.set(accused, { replica: replicaId(accused), accusedAtMs: atMs, cause, reason });
    this.#log('warn', { accused, reason, atMs }, 'replica accused: scheduled into the next reactive slot');
    this.#checkFaultBudget();
  }

  /** A report of an accusation already held, stamped earlier: the accusation dates from then. */
  #advanceAccusation(accused: number, atMs: number): void {
    const held = this.#accusations.get(accused);
    if (held !== undefined && atMs < held.accusedAtMs)
      this.#accusations.set(accused, { ...held, accusedAtMs: atMs });
  }

  /** A peer's replica began or ended a rejuvenation at `atMs` (the latest such time is kept). */
  #noteRecoveryActivity(peer: number, atMs: number): void {
    this.#recoveringPeers.set(peer, Math.max(atMs, this.#recoveringPeers.get(peer) ?? atMs));
  }

  /** The replica was rejuvenated: what was said of its previous incarnation no longer holds. */
  #settleAccusations(replica: number): void {
    this.#accusations.delete(replica);
    this.#provenKinds.delete(replica);
    this.#provenEpochs.delete(replica);
    this.#suspicions.clear(replicaId(replica));
    this.#checkFaultBudget();
  }

  // ───────────────────────────── the rejuvenation ─────────────────────────────

  #begin(
    kind: CoreRecoveryKind,
    reason: string,
    options: { readonly first?: boolean; readonly afterCrash?: boolean; readonly slotEndMs?: number },
  ): void {
    assert(this.#recoveringState() === null, 'a rejuvenation began while another one runs');
    const now = this.#now;
    const first = options.first === true;
    const run: RecoveryRun = {
      kind,
      reason,
      first,
      afterCrash: options.afterCrash === true,
      startedAtMs: now,
      // A first start has no slot to fit in (the whole cluster may be starting); a rejuvenation
      // must be done within T_D of its start, or it is reported and the schedule moves on.
      deadlineMs: first
        ? Number.POSITIVE_INFINITY
        : Math.min(now + this.#schedule.recoveryBoundMs, options.slotEndMs ?? Number.POSITIVE_INFINITY),
      stepStartedAtMs: now,
      steps: [],
      keyEpoch: this.#persisted.keyEpoch,
      fromDisk: false,
      diskKeptInSafeMode: false,
      reached: new Set(),
    };
    this.#rejoinOwed = false;
    this.#ownRecoveryActivityAtMs = now;
    const state: Extract<RejuvenationState, { name: 'stopping' }> = {
      name: 'stopping',
      run,
      handoff: null,
      decideDiskByMs: null,
      deadlineMs: run.deadlineMs,
    };
    this.#state = state;
    this.#emit({ type: 'recovery-begun', kind, first, afterCrash: run.afterCrash });
    this.#emit({ type: 'broadcast', message: { type: 'recovering', kind, reason, atMs: now } });
    this.#log('info', { kind, reason }, first ? 'starting the replica' : 'rejuvenation started');
    // Stopping the leader would stall every request until the others time out and change view:
    // a leader about to be rejuvenated first asks everybody to move to a view it does not lead.
    if (!first && this.#replicaLeads()) {
      this.#log('info', { view: this.#replicaStatus?.view }, 'handing leadership on before the rejuvenation');
      this.#askForViewChange(this.id);
      state.handoff = {
        deadlineMs: now + Math.min(LEADER_HANDOFF_MAX_MS, this.#schedule.recoveryBoundMs / 8),
        executedInNewView: null,
        lingerUntilMs: null,
      };
      return;
    }
    this.#emit({ type: 'stop-replica' });
  }

  #advanceWaits(state: Recovering): void {
    const now = this.#now;
    if (state.name === 'stopping') {
      if (state.handoff !== null) this.#advanceHandoff(state, state.handoff);
      else if (state.decideDiskByMs !== null) this.#decideDisk(state, state.decideDiskByMs);
      return;
    }
    if (
      state.name === 'validating-state' ||
      state.name === 'transferring-state' ||
      state.name === 'replaying-log' ||
      state.name === 'rejoining'
    ) {
      if (now < state.deadlineMs) return;
      const run = state.run;
      if (!run.first && state.name !== 'rejoining') this.#rejoinOwed = true;
      this.#alarm(
        run.first
          ? `replica ${this.id} did not catch up within ${FIRST_START_TIMEOUT_MS} ms of starting (stuck at ${state.name}); it keeps trying`
          : `the ${run.kind} recovery of replica ${this.id} did not finish by its deadline ` +
              // The slot's end may come before T_D: say which deadline passed, not always T_D.
              (state.deadlineMs - run.startedAtMs < this.#schedule.recoveryBoundMs
                ? `(the end of its slot, ${state.deadlineMs - run.startedAtMs} ms after it started, before T_D = ${this.#schedule.recoveryBoundMs} ms) `
                : `(T_D = ${this.#schedule.recoveryBoundMs} ms) `) +
              `(stuck at ${state.name}); the replica keeps catching up, the schedule moves on`,
      );
      this.#finish(state, false);
    }
  }

  /** Until the new view executes requests, and a moment more: clients learn the new leader from replies. */
  #advanceHandoff(state: Extract<Recovering, { name: 'stopping' }>, handoff: LeaderHandoff): void {
    const now = this.#now;
    let done = now >= handoff.deadlineMs && handoff.lingerUntilMs === null;
    if (handoff.lingerUntilMs !== null) done = now >= handoff.lingerUntilMs;
    else if (!done) {
      const current = this.#replicaStatus;
      if (current === null) done = true;
      else if (current.view % this.#schedule.n !== this.id) {
        if (handoff.executedInNewView === null) handoff.executedInNewView = current.lastExecuted;
        else if (current.lastExecuted > handoff.executedInNewView)
          handoff.lingerUntilMs = now + LEADER_HANDOFF_LINGER_MS;
      }
    }
    if (!done) return;
    state.handoff = null;
    this.#emit({ type: 'stop-replica' });
  }

  #onStopped(): void {
    const state = this.#state;
    if (state.name !== 'stopping' || state.handoff !== null || state.decideDiskByMs !== null) return;
    if (state.run.first) {
      this.#toCodeCheck(state.run);
      return;
    }
    // A replica that has just come back may not have said so yet, so a short wait comes first.
    state.decideDiskByMs =
      this.#now + Math.min(REJUVENATION_DECISION_WAIT_MAX_MS, this.#schedule.recoveryBoundMs / 8);
    this.#decideDisk(state, state.decideDiskByMs);
  }

  /**
   * Whether this rejuvenation must keep the replica's disk. An amnesiac replica sits out votes
   * until it rejoins, and it drops its log:
   * it is rejuvenated fully only if that keeps at most k replicas out, itself included, in its slot
   * as after a crash. Up to f of the others that say they vote may be Byzantine and silent (a
   * compromised replica tells its guardian what it likes), so a quorum is left without the
   * replicas out only when n − f − (out + 1) ≥ Q, which is out + 1 ≤ k for n = 3f + 2k + 1.
   * (Counting only the others that said they vote, as before, let a slot make its replica amnesiac
   * while the previous one was still rejoining and a Byzantine replica kept silent: two amnesiac
   * replicas and a silent one left three voters of six, fewer than Q = 4, and the cluster stalled
   * for good, since an amnesiac votes again only after a view change a quorum must complete.)
   */
  #decideDisk(state: Extract<Recovering, { name: 'stopping' }>, decideByMs: number): void {
    const run = state.run;
    if (this.#safeModeKept) {
      // In safe mode nothing is ordered any more, so no quorum needs what a wiped replica would
      // fetch back, and the certified state the replicas serve (and the operator restarts the
      // cluster from) must not be thrown away: the disk is kept, by design, owing nothing. The
      // rest of the rejuvenation (checked code, new keys, a new process) goes on.
      run.fromDisk = true;
      run.diskKeptInSafeMode = true;
      this.#log(
        'info',
        {},
        'in safe mode: the rejuvenation keeps the disk (the certified state the replica serves)',
      );
      this.#toCodeCheck(run);
      return;
    }
    const quorumLeft = this.#schedule.n - this.#schedule.f - quorumSize(this.#schedule) - 1;
    // A crash comes outside the schedule, which budgets k rejuvenating at once.
    const allowedOut = run.afterCrash ? Math.min(this.#schedule.k - 1, quorumLeft) : quorumLeft;
    const out = this.unavailableOthers(this.#now);
    if (out.length > allowedOut && this.#now < decideByMs) return;
    if (out.length > allowedOut) {
      run.fromDisk = true;
      this.#oweRejuvenation(run, out);
    } else {
      this.#emit({ type: 'archive-logs' });
    }
    this.#toCodeCheck(run);
  }

  /**
   * This rejuvenation restarts the replica from its disk: the full rejuvenation is owed, and every
   * guardian accuses it so that the next reactive slot (which never takes more than k) does it.
   */
  #oweRejuvenation(run: RecoveryRun, out: readonly number[]): void {
    const others = out.length === 1 ? `replica ${out[0]} was` : `replicas ${out.join(', ')} were`;
    const limit = run.afterCrash
      ? `k = ${this.#schedule.k}`
      : `a quorum of ${quorumSize(this.#schedule)} must be left with f = ${this.#schedule.f} of the rest silent`;
    const what = run.afterCrash ? 'its rejuvenation after a crash' : `its ${run.kind} rejuvenation`;
    const reason = `${what} kept its disk: ${others} out too (${limit})`;
    this.#alarm(`replica ${this.id}: ${reason}; a full rejuvenation is owed to the next reactive slot`);
    this.#emit({ type: 'broadcast', message: { type: 'rejuvenation-owed', reason, atMs: this.#now } });
    this.#accuse(this.id, 'owed', `${OWED_PREFIX}${reason}`, this.#now);
  }

  #enterStep(run: RecoveryRun, step: CoreRecoveryStep): void {
    const from = this.#recoveringState();
    assert(from !== null && from.run === run, 'a recovery step outside its recovery');
    run.steps.push({ step: from.name, durationMs: this.#now - run.stepStartedAtMs });
    run.stepStartedAtMs = this.#now;
    this.#log('info', { step, kind: run.kind }, 'recovery step');
  }

  #toCodeCheck(run: RecoveryRun): void {
    this.#enterStep(run, 'verifying-code');
    this.#state = { name: 'verifying-code', run, deadlineMs: run.deadlineMs };
    this.#emit({ type: 'check-code' });
  }

  #onCodeChecked(ok: boolean, problems: readonly string[]): void {
    const state = this.#state;
    if (state.name !== 'verifying-code') return;
    if (!ok) {
      this.#discardStandby();
      this.#alarm(
        `refusing to start replica ${this.id}: its code does not match the signed manifest: ${problems.join('; ')}`,
      );
      this.#end(false);
      return;
    }
    this.#enterStep(state.run, 'issuing-keys');
    this.#state = { name: 'issuing-keys', run: state.run, deadlineMs: state.deadlineMs };
    // A first start (the guardian restarted) is no rejuvenation: the epoch the replica had goes on.
    this.#emit({
      type: 'issue-keys',
      nextEpoch: this.#persisted.keyEpoch + 1,
      keepSavedEpoch: state.run.first,
    });
  }

  #onKeysIssued(certificate: KeyCertificate, fresh: boolean): void {
    const state = this.#state;
    if (state.name !== 'issuing-keys') return;
    assert(certificate.replica === this.id, 'keys issued for another replica');
    const run = state.run;
    if (fresh) {
      assert(
        certificate.keyEpoch === this.#persisted.keyEpoch + 1,
        'a key epoch must be issued once, in order',
      );
      this.#persisted = { ...this.#persisted, keyEpoch: certificate.keyEpoch };
      this.#table.install(certificate);
      this.#emit({ type: 'install-certificate', certificate });
      this.#emit({ type: 'save-state' });
    }
    run.keyEpoch = certificate.keyEpoch;
    this.#emit({ type: 'broadcast', message: { type: 'certificate', certificate } });
    this.#enterStep(run, 'starting');
    this.#state = { name: 'starting', run, deadlineMs: state.deadlineMs };
    this.#emit({
      type: 'start-replica',
      certificate,
      // The previous epoch of every replica too (its own included): signatures made just before a
      // rotation stay verifiable for the new process as they do for the others.
      certificates: this.#table.list(),
      // After a rejuvenation the log the old process wrote is not trusted; on a first start it is.
      amnesiac: !run.first && !run.fromDisk,
      lowerPriority: !run.first,
    });
  }

  #onStarted(loweredPriority: boolean): void {
    const state = this.#state;
    this.#replicaRunning = true;
    this.#replicaStatus = null;
    this.#lastProgress = null;
    this.#rejoinAsks = 0;
    // A new replica process knows none of the proofs its predecessor was told of.
    for (const [replica, proven] of this.#provenEpochs)
      if (replica !== this.id)
        this.#emit({
          type: 'cut-off-replica',
          replica,
          keyEpoch: proven.keyEpoch,
          reason: proven.reason,
          evidence: proven.evidence,
        });
    if (state.name !== 'starting') return;
    const run = state.run;
    if (loweredPriority)
      this.#priorityRestoreAtMs =
        run.startedAtMs + this.#schedule.recoveryBoundMs * this.#options.recoveringNiceShareOfTd;
    this.#enterStep(run, 'validating-state');
    const deadlineMs = run.first ? this.#now + FIRST_START_TIMEOUT_MS : run.deadlineMs;
    this.#state = { name: 'validating-state', run, deadlineMs };
    this.#checkCaughtUp();
  }

  #onProgress(stage: CoreProgress): void {
    this.#lastProgress = stage;
    const recovering = this.#recoveringState();
    recovering?.run.reached.add(stage);
    if (this.#rejoinOwed && recovering === null) {
      if (stage === 'voting') this.#rejoinOwed = false;
      else if (stage === 'caught-up') {
        this.#log(
          'info',
          {},
          'replica caught up after its recovery deadline: asking for its rejoin view change',
        );
        this.#askForRejoinViewChange();
      }
    }
    if (recovering === null) return;
    const run = recovering.run;
    if (stage === 'transferring-state' && recovering.name === 'validating-state') {
      this.#enterStep(run, 'transferring-state');
      this.#state = { name: 'transferring-state', run, deadlineMs: recovering.deadlineMs };
    }
    if (
      stage === 'replaying-log' &&
      (recovering.name === 'validating-state' || recovering.name === 'transferring-state')
    ) {
      this.#enterStep(run, 'replaying-log');
      this.#state = { name: 'replaying-log', run, deadlineMs: recovering.deadlineMs };
    }
    this.#checkCaughtUp();
  }

  /** In a waiting step: moves on once the replica reported caught-up (and then voting). */
  #checkCaughtUp(): void {
    const state = this.#recoveringState();
    if (state === null) return;
    const run = state.run;
    if (run.reached.has('safe-mode')) {
      // More than f replicas are proven faulty: the new process serves reads of its certified
      // state and will neither catch up nor vote. Its rejuvenation is over (new keys, checked
      // code); waiting for a vote that never comes would only end it at its deadline.
      this.#log('warn', {}, 'replica started in safe mode: its rejuvenation ends without a rejoin');
      this.#finish(state, true);
      return;
    }
    const reachedRank = Math.max(-1, ...[...run.reached].map((stage) => PROGRESS_ORDER.indexOf(stage)));
    if (CATCHING_UP.includes(state.name) && reachedRank >= PROGRESS_ORDER.indexOf('caught-up')) {
      if (run.first) {
        // A replica back from its disk after the whole cluster stopped may sit out the views it
        // may have voted in (an amnesiac whose log is that of a rejuvenated process that had not
        // voted yet, or one stopped in the middle of a view change): on an idle cluster no view
        // change comes by itself and its amnesia horizon is never reached, so it would sit out
        // until the next slot (the whole-cluster restart test waited 20 s for it). It is asked for
        // once, above the view it sits out; others already past that view ignore it.
        if (!run.reached.has('voting')) this.#askForRejoinViewChange();
        this.#finish(state, true);
        return;
      }
      this.#enterStep(run, 'rejoining');
      const rejoining = { name: 'rejoining', run, deadlineMs: state.deadlineMs } as const;
      this.#state = rejoining;
      // Already voting: its checkpoint passed everything it could have forgotten.
      if (!run.reached.has('voting')) this.#askForRejoinViewChange();
      else this.#finish(rejoining, true);
      return;
    }
    if (state.name === 'rejoining' && run.reached.has('voting')) this.#finish(state, true);
  }

  /**
   * Above the view the replica sits out, which may be above the view it is in: an amnesiac that
   * cannot verify the NEW-VIEW of the others' view stays in an older one, and a request about that
   * older view is one the others, already past it, take as settled (the whole-cluster restart test
   * left two rejuvenated replicas out for good that way).
   */
  #askForRejoinViewChange(): void {
    this.#rejoinOwed = false;
    this.#rejoinAsks++;
    this.#lastRejoinAskAtMs = this.#now;
    this.#askForViewChange(null, this.#replicaStatus?.rejoinAboveView ?? null);
  }

  /** Asks again (see REJOIN_RETRY_MS) while the replica has caught up and still does not vote. */
  #retryRejoinIfStuck(): void {
    const status = this.#replicaStatus;
    if (!this.#replicaRunning || this.#lastProgress !== 'caught-up' || status === null || status.voting)
      return;
    if (this.#rejoinAsks === 0 || this.#rejoinAsks >= MAX_REJOIN_ASKS) return;
    const retryMs = Math.min(REJOIN_RETRY_MS, this.#schedule.recoveryBoundMs / 4);
    if (this.#now - this.#lastRejoinAskAtMs < retryMs) return;
    this.#log(
      'info',
      { view: status.view, aboveView: status.rejoinAboveView, ask: this.#rejoinAsks + 1 },
      'replica caught up but still not voting: asking again for its rejoin view change',
    );
    this.#askForRejoinViewChange();
  }

  /** `reached`: the replica reached the last step before the deadline. */
  #finish(state: Recovering, reached: boolean): void {
    const run = state.run;
    const now = this.#now;
    if (run.fromDisk && !run.diskKeptInSafeMode) {
      this.#log(
        'info',
        { durationMs: now - run.startedAtMs, keyEpoch: run.keyEpoch, votes: reached },
        'replica restarted from its disk; its full rejuvenation is owed to the next reactive slot',
      );
      this.#end(true);
      return;
    }
    run.steps.push({ step: state.name, durationMs: now - run.stepStartedAtMs });
    const durationMs = now - run.startedAtMs;
    const bound = this.#schedule.recoveryBoundMs;
    const exceededBound = !run.first && (durationMs > bound || !reached);
    this.#persisted = { ...this.#persisted, lastRejuvenationAtMs: now };
    // Like the other guardians on 'recovered': suspicions right after a recovery are expected.
    this.#ownRecoveryActivityAtMs = now;
    this.#emit({ type: 'save-state' });
    this.#settleAccusations(this.id);
    if (!run.first) {
      this.#recoveries.unshift({
        kind: run.kind,
        reason: run.reason,
        startedAtMs: run.startedAtMs,
        durationMs,
        steps: run.steps.filter((entry) => entry.durationMs > 0 || entry.step !== 'stopping'),
        exceededBound,
        keyEpoch: run.keyEpoch,
      });
      this.#recoveries.length = Math.min(this.#recoveries.length, MAX_RECORDS);
      this.#emit({ type: 'broadcast', message: { type: 'recovered', keyEpoch: run.keyEpoch, atMs: now } });
    }
    if (exceededBound)
      this.#alarm(
        durationMs > bound
          ? `the ${run.kind} recovery of replica ${this.id} took ${durationMs} ms, over T_D = ${bound} ms`
          : // Cut off by the end of its slot (or at T_D exactly): not "over T_D".
            `the ${run.kind} recovery of replica ${this.id} ended unfinished at its deadline, ` +
              `${durationMs} ms after it started (T_D = ${bound} ms)`,
      );
    this.#log(
      'info',
      { kind: run.kind, durationMs, keyEpoch: run.keyEpoch },
      run.first ? 'replica running' : 'rejuvenation finished',
    );
    this.#end(true);
  }

  /**
   * Back to idle. A replica that is not running at the end (it crashed while the recovery ran it,
   * or `restartBecause` says why the recovery could not start it) is restarted as after a crash;
   * a refusal (code that does not match the manifest) passes no reason and stays stopped.
   */
  #end(auditArchivedLogs: boolean, restartBecause: string | null = null): void {
    this.#priorityRestoreAtMs = null;
    this.#emit({ type: 'restore-priority', reason: 'recovery-over' });
    this.#state = { name: 'idle' };
    this.#emit({ type: 'recovery-over', auditArchivedLogs });
    if (!this.#replicaRunning) {
      if (this.#crashedDuringRecovery) this.#restartAfterCrash('the replica process crashed');
      else if (restartBecause !== null) this.#restartAfterCrash(restartBecause);
    }
    this.#crashedDuringRecovery = false;
  }

  // ───────────────────────────── crashes ─────────────────────────────

  #onExit(expected: boolean, code: number | null, signal: string | null): void {
    this.#replicaRunning = false;
    if (expected) return;
    this.#alarm(`replica ${this.id} exited unexpectedly (code ${code}, signal ${signal}); rejuvenating it`);
    const recovering = this.#recoveringState();
    if (recovering === null) {
      this.#restartAfterCrash('the replica process crashed');
      return;
    }
    this.#crashedDuringRecovery = true;
    // The new process this recovery waits for is gone: nothing will report progress, and waiting
    // for the deadline (FIRST_START_TIMEOUT_MS for a first start) would leave the replica down all
    // that time. (A first start whose process found its data folder still locked by the replica
    // of the guardian's previous incarnation sat there for 60 s.) The recovery ends now, failed,
    // and #end restarts the replica as after any crash.
    if (WAITING_FOR_PROCESS.includes(recovering.name)) {
      this.#alarm(
        `the ${recovering.run.first ? 'first start' : `${recovering.run.kind} recovery`} of replica ${this.id} ` +
          `failed: its process exited at ${recovering.name}`,
      );
      this.#end(false);
    }
  }

  /**
   * A crash may be an intruder's doing, so a crashed replica is rejuvenated — after a short wait
   * to hear of other crashes, and at most once per T_D so that a replica crashing on every start
   * does not spin. Whether it keeps its disk is decided when the process is stopped (#decideDisk).
   */
  #restartAfterCrash(reason: string): void {
    this.#reportReplicaState(false);
    const settleMs = Math.min(CRASH_SETTLE_MAX_MS, this.#schedule.recoveryBoundMs / 8);
    const waitMs = Math.max(
      settleMs,
      this.#lastCrashRejuvenationAtMs + this.#schedule.recoveryBoundMs - this.#now,
    );
    this.#crashRestartAtMs = this.#now + waitMs;
    this.#crashRestartReason = reason;
  }
}

function slotName(slot: Slot): string {
  return `${slot.period}:${slot.index}`;
}
