/**
 * What a guardian reports on its admin port (GET /status, JSON): the state of its replica's
 * rejuvenations, key epochs and the alarms and evidence it has seen. The dashboard, the CLI and
 * tests read this shape. It lives in runtime/, below the guardian (recovery/) that fills it in,
 * because the cluster status and health modules here read it.
 */

/** The steps of one rejuvenation, in order (docs/intrusion-tolerance.md). */
export const RECOVERY_STEPS = [
  'stopping',
  'verifying-code',
  'issuing-keys',
  'starting',
  'validating-state',
  'transferring-state',
  'replaying-log',
  'rejoining',
] as const;
export type RecoveryStep = (typeof RECOVERY_STEPS)[number];

export type RecoveryKind = 'proactive' | 'reactive';

export interface RecoveryRecord {
  readonly kind: RecoveryKind;
  /** Why (for reactive recoveries: the evidence kind or "f + 1 suspicions"). */
  readonly reason: string;
  readonly startedAtMs: number;
  readonly durationMs: number;
  readonly steps: readonly { readonly step: RecoveryStep; readonly durationMs: number }[];
  /** The recovery took longer than T_D: an alarm was raised. */
  readonly exceededBound: boolean;
  readonly keyEpoch: number;
}

export interface Alarm {
  readonly atMs: number;
  readonly message: string;
}

export interface EvidenceRecord {
  readonly atMs: number;
  readonly kind: string;
  readonly accused: number;
  /**
   * Who found it: "replica <r>" when replica r's own checks did, "client <id> via replica <r>"
   * when a client handed it in through replica r (the client's id as that replica tells it).
   */
  readonly reporter: string;
  readonly valid: boolean;
  readonly detail: string;
}

export interface GuardianStatus {
  readonly replica: number;
  readonly keyEpoch: number;
  readonly replicaProcess: 'running' | 'stopped' | 'starting';
  readonly recovery: {
    readonly inProgress: boolean;
    readonly kind: RecoveryKind | null;
    readonly reason: string | null;
    readonly step: RecoveryStep | null;
    readonly startedAtMs: number | null;
    readonly stepStartedAtMs: number | null;
  };
  /** When the last rejuvenation finished (or the guardian first started its replica). */
  readonly lastRejuvenationAtMs: number | null;
  /** Time since then: how long an intruder could have held this replica. */
  readonly exposureMs: number;
  /** T = T_P + T_D: the most any replica is exposed, by construction. */
  readonly guaranteeMs: number;
  readonly recoveryBoundMs: number;
  readonly periodMs: number;
  readonly nextProactiveAtMs: number;
  readonly recentRecoveries: readonly RecoveryRecord[];
  readonly alarms: readonly Alarm[];
  readonly evidence: readonly EvidenceRecord[];
  /** Replicas currently suspected, with the distinct replicas that suspect them. */
  readonly suspicions: readonly { readonly accused: number; readonly reporters: readonly number[] }[];
  readonly connectedGuardians: number;
  /**
   * f at run time: the replicas proven faulty or accused and not rejuvenated since (`counted`), of
   * those the proven ones, and f (docs/intrusion-tolerance.md, "f at run time").
   */
  readonly faultyReplicas: {
    readonly f: number;
    readonly counted: readonly number[];
    readonly proven: readonly number[];
  };
  /** Reactive recoveries scheduled and not yet done (replica ids). */
  readonly pendingReactive: readonly number[];
  /**
   * The fork proof this guardian keeps (docs/intrusion-tolerance.md, "The guardians keep safe
   * mode"): the replicas it names and when this guardian verified it; null when none is kept.
   * While kept, every process the guardian starts starts in safe mode.
   */
  readonly safeMode: { readonly culprits: readonly number[]; readonly verifiedAtMs: number } | null;
  /**
   * Until when the replica's current key epoch is accepted (docs/intrusion-tolerance.md, "Epoch
   * lifetimes"); past it, the replica cannot speak for itself until its guardian rotates it.
   */
  readonly keyEpochAcceptedUntilMs: number | null;
  /** Whether the replica runs as a user of its own, and the guardian's words on why (or why not). */
  readonly trustBoundary: TrustBoundaryNote;
}

export interface TrustBoundaryNote {
  readonly enforced: boolean;
  readonly reason: string;
}

export type GuardianReport =
  | ({ readonly up: true } & GuardianStatus)
  | { readonly up: false; readonly replica: number; readonly error: string };

/** The statuses of the guardians that answered. */
export function guardiansUp(reports: readonly GuardianReport[]): GuardianStatus[] {
  return reports.flatMap((report) => (report.up ? [report] : []));
}
