/**
 * The local channel between a guardian and the replica process it runs (Node's IPC pipe of the
 * child process). The guardian is trusted and the replica may be compromised, so everything the
 * guardian reads from it is validated field by field with named limits; byte strings travel as
 * base64 (the pipe carries JSON).
 *
 * Guardian → replica: the session keys of the new epoch (never on disk or on the command line),
 * key certificates of the other replicas as they change, a nudge to change view (the last step of
 * a rejuvenation), and in test clusters a fault mode to switch on (an "intrusion").
 * Replica → guardian: evidence and suspicions, recovery progress, and a periodic status.
 */

export const FAULT_MODES = [
  'equivocate',
  'corrupt-state',
  'lie-in-replies',
  'silent',
  'slow-leader',
  'flood',
] as const;
export type FaultMode = (typeof FAULT_MODES)[number];

export function isFaultMode(value: unknown): value is FaultMode {
  return typeof value === 'string' && (FAULT_MODES as readonly string[]).includes(value);
}

export type GuardianToReplica =
  | {
      readonly type: 'session-keys';
      readonly keyEpoch: number;
      readonly signingSeed: string;
      readonly agreementSeed: string;
      /** This replica's own certificate (encoded KeyCertificate, base64). */
      readonly certificate: string;
      /** Every replica's latest certificate the guardian knows. */
      readonly certificates: readonly string[];
      /** The replica's log is not trusted (rejuvenation after a possible compromise). */
      readonly amnesiac: boolean;
      readonly faultMode: FaultMode | null;
    }
  | { readonly type: 'certificates'; readonly certificates: readonly string[] }
  | {
      readonly type: 'nudge-view-change';
      readonly avoidLeaders: readonly number[];
      /** Replicas already in a later view ignore the nudge (see the core's change-view event). */
      readonly aboveView: number | null;
    }
  | { readonly type: 'fault'; readonly mode: FaultMode | null };

export type RecoveryProgress =
  'validating-state' | 'transferring-state' | 'replaying-log' | 'caught-up' | 'voting';

export type ReplicaToGuardian =
  | { readonly type: 'evidence'; readonly evidence: string }
  | { readonly type: 'suspect'; readonly accused: number; readonly reason: string }
  | { readonly type: 'progress'; readonly stage: RecoveryProgress; readonly detail: string }
  | {
      readonly type: 'status';
      readonly view: number;
      readonly lastExecuted: number;
      readonly stableCheckpoint: number;
      readonly stateTransferInProgress: boolean;
      readonly voting: boolean;
      /** Highest lastExecuted a correct peer reported (the (f+1)-th highest), to judge catching up. */
      readonly peersExecuted: number;
    };

/** Limits on what the guardian accepts from its (possibly compromised) replica. */
export const IPC_LIMITS = {
  maxEvidenceBase64: 4 * 1024 * 1024,
  maxReasonLength: 512,
  maxDetailLength: 512,
} as const;

/** Replicas a view change may be asked to avoid as leader (one slot's group, and the accused). */
const MAX_AVOIDED_LEADERS = 64;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function boundedString(value: unknown, max: number): value is string {
  return typeof value === 'string' && value.length <= max;
}

/** A non-negative safe integer: ids, views, sequences, epochs (also checked on the control channel). */
export function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

const PROGRESS: readonly RecoveryProgress[] = [
  'validating-state',
  'transferring-state',
  'replaying-log',
  'caught-up',
  'voting',
];

/** Validates a message from the replica; null (and the guardian logs it) when it is malformed. */
export function parseReplicaMessage(value: unknown): ReplicaToGuardian | null {
  if (!isRecord(value)) return null;
  switch (value.type) {
    case 'evidence':
      return boundedString(value.evidence, IPC_LIMITS.maxEvidenceBase64)
        ? { type: 'evidence', evidence: value.evidence }
        : null;
    case 'suspect':
      return isCount(value.accused) && boundedString(value.reason, IPC_LIMITS.maxReasonLength)
        ? { type: 'suspect', accused: value.accused, reason: value.reason }
        : null;
    case 'progress':
      return typeof value.stage === 'string' &&
        (PROGRESS as readonly string[]).includes(value.stage) &&
        boundedString(value.detail, IPC_LIMITS.maxDetailLength)
        ? { type: 'progress', stage: value.stage as RecoveryProgress, detail: value.detail }
        : null;
    case 'status':
      return isCount(value.view) &&
        isCount(value.lastExecuted) &&
        isCount(value.stableCheckpoint) &&
        isCount(value.peersExecuted) &&
        typeof value.stateTransferInProgress === 'boolean' &&
        typeof value.voting === 'boolean'
        ? {
            type: 'status',
            view: value.view,
            lastExecuted: value.lastExecuted,
            stableCheckpoint: value.stableCheckpoint,
            stateTransferInProgress: value.stateTransferInProgress,
            voting: value.voting,
            peersExecuted: value.peersExecuted,
          }
        : null;
    default:
      return null;
  }
}

/** Validates a message from the guardian (trusted, but a bug should fail loudly, not subtly). */
export function parseGuardianMessage(value: unknown): GuardianToReplica | null {
  if (!isRecord(value)) return null;
  const strings = (list: unknown): list is string[] =>
    Array.isArray(list) && list.every((item) => typeof item === 'string');
  switch (value.type) {
    case 'session-keys':
      return isCount(value.keyEpoch) &&
        typeof value.signingSeed === 'string' &&
        typeof value.agreementSeed === 'string' &&
        typeof value.certificate === 'string' &&
        strings(value.certificates) &&
        typeof value.amnesiac === 'boolean' &&
        (value.faultMode === null || isFaultMode(value.faultMode))
        ? {
            type: 'session-keys',
            keyEpoch: value.keyEpoch,
            signingSeed: value.signingSeed,
            agreementSeed: value.agreementSeed,
            certificate: value.certificate,
            certificates: value.certificates,
            amnesiac: value.amnesiac,
            faultMode: value.faultMode as FaultMode | null,
          }
        : null;
    case 'certificates':
      return strings(value.certificates) ? { type: 'certificates', certificates: value.certificates } : null;
    case 'nudge-view-change':
      return Array.isArray(value.avoidLeaders) &&
        value.avoidLeaders.length <= MAX_AVOIDED_LEADERS &&
        value.avoidLeaders.every(isCount) &&
        (value.aboveView === null || isCount(value.aboveView))
        ? {
            type: 'nudge-view-change',
            avoidLeaders: value.avoidLeaders,
            aboveView: value.aboveView as number | null,
          }
        : null;
    case 'fault':
      return value.mode === null || isFaultMode(value.mode)
        ? { type: 'fault', mode: value.mode as FaultMode | null }
        : null;
    default:
      return null;
  }
}

export function toBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

export function fromBase64(text: string): Uint8Array {
  return new Uint8Array(Buffer.from(text, 'base64'));
}
