/**
 * Checks a guardian's GET /status answer against GuardianStatus (src/runtime/guardian-report.ts).
 *
 * Guardians are the trusted part of a replica host, but what reaches the dashboard over HTTP may
 * still come from a broken or impersonated endpoint, so it is treated like a replica's answer:
 * every field is checked for type and range, every list and string has a named maximum, and the
 * result is a fresh copy holding only the known fields, so nothing else is relayed to browsers.
 */
import {
  type Alarm,
  type EvidenceRecord,
  type GuardianStatus,
  RECOVERY_STEPS,
  type RecoveryKind,
  type RecoveryRecord,
  type RecoveryStep,
  type TrustBoundaryNote,
} from '../runtime/guardian-report.js';

/** Named limits on a guardian's answer; an answer beyond any of them marks the guardian down. */
export const GUARDIAN_STATUS_LIMITS = {
  /**
   * Largest /status body a guardian may send: room for every list below at its limit with
   * ordinary entries; a usual answer is a few KiB.
   */
  maxStatusBodyBytes: 512 * 1024,
  /** Entries of `recentRecoveries`. */
  maxRecentRecoveries: 64,
  /** Entries of one recovery's `steps`: each step at most twice (a retried step is reported again). */
  maxStepsPerRecovery: 2 * RECOVERY_STEPS.length,
  /** Entries of `alarms`. */
  maxAlarms: 128,
  /** Entries of `evidence`. */
  maxEvidence: 128,
  /** Entries of `suspicions`, of one suspicion's `reporters`, of `pendingReactive`, and of `safeMode.culprits`. */
  maxReplicaList: 64,
  /** Longest recovery `reason` (an evidence kind or "f + 1 suspicions"). */
  maxReasonLength: 200,
  /** Longest alarm `message`. */
  maxAlarmMessageLength: 500,
  /** Longest evidence `kind`. */
  maxEvidenceKindLength: 64,
  /** Longest evidence `reporter` (a replica or client id). */
  maxReporterLength: 100,
  /** Longest evidence `detail`. */
  maxEvidenceDetailLength: 500,
  /** Longest trust-boundary `reason` (the guardian's words on its replica's user). */
  maxTrustBoundaryReasonLength: 300,
} as const;

export type GuardianStatusParse =
  { readonly ok: true; readonly status: GuardianStatus } | { readonly ok: false; readonly reason: string };

/** Thrown by the readers below; the message names the offending field by its path. */
class StatusProblem extends Error {}

type Reader<Value> = (value: unknown, path: string) => Value;

function describeValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (value === null || typeof value !== 'object') return String(value);
  return Array.isArray(value) ? 'an array' : 'an object';
}

function problem(path: string, expected: string, value: unknown): StatusProblem {
  return new StatusProblem(`field '${path}' must be ${expected}, got ${describeValue(value)}`);
}

const nonNegativeInteger: Reader<number> = (value, path) => {
  if (Number.isSafeInteger(value) && (value as number) >= 0) return value as number;
  throw problem(path, 'a non-negative integer', value);
};

/** Durations and times since the Unix epoch, in milliseconds; fractions are allowed. */
const milliseconds: Reader<number> = (value, path) => {
  if (typeof value === 'number' && Number.isFinite(value) && value >= 0) return value;
  throw problem(path, 'a non-negative finite number', value);
};

const boolean: Reader<boolean> = (value, path) => {
  if (typeof value === 'boolean') return value;
  throw problem(path, 'a boolean', value);
};

// Control characters would let a guardian garble the page or a terminal that prints the JSON.
function hasControlCharacter(text: string): boolean {
  for (let index = 0; index < text.length; index++) {
    const code = text.charCodeAt(index);
    if (code < 0x20 || code === 0x7f) return true;
  }
  return false;
}

function boundedString(maxLength: number): Reader<string> {
  return (value, path) => {
    if (typeof value !== 'string') throw problem(path, 'a string', value);
    if (value.length > maxLength)
      throw new StatusProblem(`field '${path}' is longer than ${maxLength} characters`);
    if (hasControlCharacter(value)) throw new StatusProblem(`field '${path}' contains control characters`);
    return value;
  };
}

function oneOf<Word extends string>(words: readonly Word[]): Reader<Word> {
  return (value, path) => {
    if (typeof value === 'string' && (words as readonly string[]).includes(value)) return value as Word;
    throw problem(path, `one of ${words.map((word) => `'${word}'`).join(', ')}`, value);
  };
}

function nullable<Value>(read: Reader<Value>): Reader<Value | null> {
  return (value, path) => (value === null ? null : read(value, path));
}

function boundedList<Value>(maxLength: number, read: Reader<Value>): Reader<readonly Value[]> {
  return (value, path) => {
    if (!Array.isArray(value)) throw problem(path, 'an array', value);
    if (value.length > maxLength)
      throw new StatusProblem(
        `field '${path}' has ${value.length} entries, more than the limit of ${maxLength}`,
      );
    return value.map((entry, index) => read(entry, `${path}[${index}]`));
  };
}

/** Reads an object field by field; `readers` lists every field, so unknown ones are dropped. */
function record<Shape extends object>(readers: {
  readonly [Name in keyof Shape]: Reader<Shape[Name]>;
}): Reader<Shape> {
  return (value, path) => {
    if (value === null || typeof value !== 'object' || Array.isArray(value))
      throw problem(path, 'an object', value);
    const source = value as Record<string, unknown>;
    const copy: Partial<Record<keyof Shape, unknown>> = {};
    for (const name of Object.keys(readers) as (keyof Shape & string)[]) {
      copy[name] = readers[name](source[name], path === '' ? name : `${path}.${name}`);
    }
    return copy as Shape;
  };
}

const limits = GUARDIAN_STATUS_LIMITS;
const recoveryKind = oneOf<RecoveryKind>(['proactive', 'reactive']);
const recoveryStep = oneOf<RecoveryStep>(RECOVERY_STEPS);

const readRecoveryRecord = record<RecoveryRecord>({
  kind: recoveryKind,
  reason: boundedString(limits.maxReasonLength),
  startedAtMs: milliseconds,
  durationMs: milliseconds,
  steps: boundedList(
    limits.maxStepsPerRecovery,
    record<{ step: RecoveryStep; durationMs: number }>({ step: recoveryStep, durationMs: milliseconds }),
  ),
  exceededBound: boolean,
  keyEpoch: nonNegativeInteger,
});

const readAlarm = record<Alarm>({
  atMs: milliseconds,
  message: boundedString(limits.maxAlarmMessageLength),
});

const readEvidence = record<EvidenceRecord>({
  atMs: milliseconds,
  kind: boundedString(limits.maxEvidenceKindLength),
  accused: nonNegativeInteger,
  reporter: boundedString(limits.maxReporterLength),
  valid: boolean,
  detail: boundedString(limits.maxEvidenceDetailLength),
});

const readGuardianStatus = record<GuardianStatus>({
  replica: nonNegativeInteger,
  keyEpoch: nonNegativeInteger,
  replicaProcess: oneOf(['running', 'stopped', 'starting']),
  recovery: record<GuardianStatus['recovery']>({
    inProgress: boolean,
    kind: nullable(recoveryKind),
    reason: nullable(boundedString(limits.maxReasonLength)),
    step: nullable(recoveryStep),
    startedAtMs: nullable(milliseconds),
    stepStartedAtMs: nullable(milliseconds),
  }),
  lastRejuvenationAtMs: nullable(milliseconds),
  exposureMs: milliseconds,
  guaranteeMs: milliseconds,
  recoveryBoundMs: milliseconds,
  periodMs: milliseconds,
  nextProactiveAtMs: milliseconds,
  recentRecoveries: boundedList(limits.maxRecentRecoveries, readRecoveryRecord),
  alarms: boundedList(limits.maxAlarms, readAlarm),
  evidence: boundedList(limits.maxEvidence, readEvidence),
  suspicions: boundedList(
    limits.maxReplicaList,
    record<{ accused: number; reporters: readonly number[] }>({
      accused: nonNegativeInteger,
      reporters: boundedList(limits.maxReplicaList, nonNegativeInteger),
    }),
  ),
  faultyReplicas: record<GuardianStatus['faultyReplicas']>({
    f: nonNegativeInteger,
    counted: boundedList(limits.maxReplicaList, nonNegativeInteger),
    proven: boundedList(limits.maxReplicaList, nonNegativeInteger),
  }),
  connectedGuardians: nonNegativeInteger,
  pendingReactive: boundedList(limits.maxReplicaList, nonNegativeInteger),
  safeMode: nullable(
    record<NonNullable<GuardianStatus['safeMode']>>({
      culprits: boundedList(limits.maxReplicaList, nonNegativeInteger),
      verifiedAtMs: milliseconds,
    }),
  ),
  keyEpochAcceptedUntilMs: nullable(milliseconds),
  trustBoundary: record<TrustBoundaryNote>({
    enforced: boolean,
    reason: boundedString(limits.maxTrustBoundaryReasonLength),
  }),
});

/**
 * Checks a parsed guardian /status body. `expectedReplica` is the replica whose guardian the URL
 * was configured for; an answer naming another replica is refused.
 */
export function parseGuardianStatus(value: unknown, expectedReplica?: number): GuardianStatusParse {
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    return { ok: false, reason: `status must be a JSON object, got ${describeValue(value)}` };
  let status: GuardianStatus;
  try {
    status = readGuardianStatus(value, '');
  } catch (error) {
    if (error instanceof StatusProblem) return { ok: false, reason: error.message };
    throw error;
  }
  if (expectedReplica !== undefined && status.replica !== expectedReplica) {
    return {
      ok: false,
      reason: `answered as the guardian of replica ${status.replica}, but this URL is configured for replica ${expectedReplica}`,
    };
  }
  return { ok: true, status };
}
