/**
 * The simulator's model of key epochs and key theft (docs/intrusion-tolerance.md, "Key epochs"):
 * the recovery schedule a simulated cluster rotates its session keys on, the stolen keys a
 * 'key-thief' replica collects, and the checker that judges every signature a correct party
 * accepts against the rotation log, from the schedule alone (never by asking the KeyRegistry,
 * whose rules are what is being checked).
 *
 * The checker's rule: a signature of replica r under epoch e accepted at time t is legitimate only
 * when
 * - e is r's current epoch and t ≤ its validity: the end of r's first proactive slot that starts
 *   T_D or more after the epoch's issue time, plus the clock-skew allowance; or
 * - e is the epoch just before r's current one, the signature is judged as a proof (not as a
 *   message r sends now), and t ≤ min(its validity, the end of the schedule slot that holds the
 *   issue time of the epoch that retired it).
 * Anything else (an older epoch, an epoch past its time, a retired epoch accepted as a message) is
 * a violation.
 */
import type { CoreCrypto, SignaturePurpose, Signed } from '../core/crypto.js';
import { assert, type Digest, type KeyEpoch, type ReplicaId, type Signature } from '../messages/ids.js';
import type { ReplicaSessionKeys } from '../crypto/replica-crypto.js';
import type { ClientRequest } from '../messages/types.js';
import { CLOCK_SKEW_ALLOWANCE_MS } from '../crypto/key-certificates.js';
import {
  minimumPeriodMs,
  nextProactiveSlotOf,
  type ScheduleParameters,
  scheduleProblems,
  slotAt,
} from '../core/schedule.js';

/**
 * T_D of the simulated schedule: short enough that a replica's keys rotate a few times within the
 * 5 s fault phase (T_P is the minimum, (⌈n/k⌉ + ⌈f/k⌉)·T_D), long enough that a checkpoint vote
 * signed just before a rotation still arrives within the grace of its epoch (the simulator rotates
 * in the first half of a slot, so a grace lasts at least T_D/2).
 */
export const SIMULATED_RECOVERY_BOUND_MS = 400;
/**
 * T_D of the guardians' schedule under --recovery. A rejuvenation must finish within T_D, and a
 * real one includes stopping and starting the replica, its catch-up, and the view change that lets
 * an amnesiac vote again, which takes a second one when the nudged view's leader is Byzantine (the
 * simulated view-change timeout is 500 ms). At 400 ms a third of the rejuvenations of 100 seeds
 * (`--n 6 --f 1 --k 1 --byzantine all`) overran T_D, and every overrun made the next slot keep its
 * disk; at 800 ms one in six overruns (a silent or slow leader of the rejoin view, a partition).
 */
export const SIMULATED_GUARDIAN_RECOVERY_BOUND_MS = 800;

/**
 * The recovery schedule a simulated cluster of n replicas (f Byzantine, k recovering) rotates its
 * keys on, starting at simulated time 0.
 *
 * A schedule needs k ≥ 1 and n ≥ 3f + 2k + 1 (scheduleProblems). The simulator's default cluster
 * has k = 0 (n = 4, f = 1), for which there is none; its keys then rotate on the schedule of
 * k = 1 with the largest f that still fits n (n = 4: f = 0). A rotation here restarts its replica
 * at once (or rotates in place), so no replica is down for a slot and k = 0 stays true for
 * availability; and the f of a schedule only places its reactive slots, which the simulator does
 * not use (nobody is accused). What the key-epoch bound needs is that a slot holds at most
 * max(1, k) replicas: that many retired epochs at most are in their grace at any instant, and a
 * thief holding f current epochs and those has fewer signers than a quorum for any f ≥ 1.
 */
export function keyRotationSchedule(
  n: number,
  f: number,
  k: number,
  recoveryBoundMs: number = SIMULATED_RECOVERY_BOUND_MS,
): ScheduleParameters {
  const scheduleK = Math.max(1, k);
  let scheduleF = f;
  while (scheduleF > 0 && n < 3 * scheduleF + 2 * scheduleK + 1) scheduleF--;
  const model = { n, f: scheduleF, k: scheduleK };
  const schedule: ScheduleParameters = {
    ...model,
    recoveryBoundMs,
    periodMs: minimumPeriodMs(model, recoveryBoundMs),
    originMs: 0,
  };
  const problems = scheduleProblems(schedule);
  assert(
    problems.length === 0,
    `no key rotation schedule for n = ${n}, f = ${f}, k = ${k}: ${problems.join('; ')}`,
  );
  return schedule;
}

/** One epoch of a replica's session keys as the thief took it, just before the replica rotated. */
export interface StolenKey {
  readonly replica: ReplicaId;
  readonly epoch: KeyEpoch;
  readonly keys: ReplicaSessionKeys;
  /** When the next epoch's certificate was issued: the stolen one was retired then. */
  readonly retiredAtMs: number;
}

/** What the checker counted. */
export interface EpochAuditStatistics {
  /** Signature verifications a correct party accepted (each one judged). */
  readonly accepted: number;
  /** Of those, under the signer's previous epoch (inside its grace, or a violation). */
  readonly acceptedPrevious: number;
}

/**
 * The rotation log and the judge of accepted signatures. Epoch e of a replica is the e-th entry of
 * its log (every replica starts at epoch 0, issued at time 0).
 */
export class EpochAuditor {
  readonly #schedule: ScheduleParameters;
  /** Per replica, the issue time of each of its epochs (index = epoch). */
  readonly #issuedAtMs: number[][];
  #accepted = 0;
  #acceptedPrevious = 0;

  constructor(schedule: ScheduleParameters, startMs: number) {
    this.#schedule = schedule;
    this.#issuedAtMs = Array.from({ length: schedule.n }, () => [startMs]);
  }

  get statistics(): EpochAuditStatistics {
    return { accepted: this.#accepted, acceptedPrevious: this.#acceptedPrevious };
  }

  /** The replica's current epoch, by the log. */
  currentEpoch(replica: ReplicaId): number {
    return this.#issuedAtMs[replica]!.length - 1;
  }

  /** The replica's epoch `epoch` was issued (and the one before retired) at `issuedAtMs`. */
  recordRotation(replica: ReplicaId, epoch: KeyEpoch, issuedAtMs: number): void {
    const issued = this.#issuedAtMs[replica]!;
    assert(
      epoch === issued.length,
      `replica ${replica} rotates to epoch ${epoch} after ${issued.length - 1}`,
    );
    assert(issuedAtMs >= issued[issued.length - 1]!, 'rotations are logged in time order');
    issued.push(issuedAtMs);
  }

  /** How long an epoch issued at `issuedAtMs` is accepted while current (the documented rule). */
  validUntilMs(replica: ReplicaId, issuedAtMs: number): number {
    const schedule = this.#schedule;
    return (
      nextProactiveSlotOf(schedule, replica, issuedAtMs + schedule.recoveryBoundMs).endMs +
      CLOCK_SKEW_ALLOWANCE_MS
    );
  }

  /** How long a retired epoch is accepted once its successor was issued at `successorIssuedAtMs`. */
  retiredUntilMs(successorIssuedAtMs: number): number {
    return slotAt(this.#schedule, successorIssuedAtMs).endMs;
  }

  /**
   * `verifier` accepted a signature of `signer` under `epoch` at `nowMs`, judged as `purpose`.
   * Returns the violation, or null when the acceptance was legitimate.
   */
  judge(
    verifier: string,
    signer: ReplicaId,
    epoch: KeyEpoch,
    purpose: SignaturePurpose,
    nowMs: number,
  ): string | null {
    this.#accepted++;
    const issued = this.#issuedAtMs[signer];
    const accepted = `${verifier} accepted a signature of replica ${signer} under key epoch ${epoch} at ${nowMs} ms`;
    if (issued === undefined) return `key epochs: ${accepted}, but there is no such replica`;
    const current = issued.length - 1;
    if (epoch === current) {
      const validUntil = this.validUntilMs(signer, issued[current]!);
      if (nowMs <= validUntil) return null;
      return `key epochs: ${accepted}, its current epoch, valid only until ${validUntil} ms`;
    }
    if (epoch === current - 1) {
      this.#acceptedPrevious++;
      if (purpose === 'message') {
        return `key epochs: ${accepted} as a message it sends now, but that epoch was retired at ${issued[current]} ms`;
      }
      const until = Math.min(
        this.validUntilMs(signer, issued[epoch]!),
        this.retiredUntilMs(issued[current]!),
      );
      if (nowMs <= until) return null;
      return `key epochs: ${accepted}, retired at ${issued[current]} ms and accepted only until ${until} ms`;
    }
    return `key epochs: ${accepted}, but its current epoch is ${current}: nothing older than ${current - 1} may verify`;
  }
}

export type AcceptedSignatureListener = (
  signer: ReplicaId,
  epoch: KeyEpoch,
  signature: Signature,
  purpose: SignaturePurpose,
) => void;

/**
 * The CoreCrypto a correct replica runs on, reporting every replica signature it accepts. Signing
 * and everything else is the wrapped ReplicaCrypto's.
 */
export class AuditedCrypto implements CoreCrypto {
  readonly #inner: CoreCrypto;
  readonly #onAccepted: AcceptedSignatureListener;

  constructor(inner: CoreCrypto, onAccepted: AcceptedSignatureListener) {
    this.#inner = inner;
    this.#onAccepted = onAccepted;
  }

  get currentEpoch(): KeyEpoch {
    return this.#inner.currentEpoch;
  }

  replicaEpoch(replica: ReplicaId): KeyEpoch | undefined {
    return this.#inner.replicaEpoch(replica);
  }

  /** A property, not a method: the core passes it around unbound (as ReplicaCrypto's does not care). */
  readonly hash = (data: Uint8Array): Digest => this.#inner.hash(data);

  sign(payload: Uint8Array): Signed {
    return this.#inner.sign(payload);
  }

  verifyReplicaSignature(
    signer: ReplicaId,
    keyEpoch: KeyEpoch,
    payload: Uint8Array,
    signature: Signature,
    purpose: SignaturePurpose,
  ): boolean {
    const accepted = this.#inner.verifyReplicaSignature(signer, keyEpoch, payload, signature, purpose);
    if (accepted) this.#onAccepted(signer, keyEpoch, signature, purpose);
    return accepted;
  }

  verifyRequest(request: ClientRequest, requestDigest: Digest): boolean {
    return this.#inner.verifyRequest(request, requestDigest);
  }

  verifyRequestSignature(request: ClientRequest, requestDigest: Digest): boolean {
    return this.#inner.verifyRequestSignature(request, requestDigest);
  }

  requestKeyRetired(request: ClientRequest): boolean {
    return this.#inner.requestKeyRetired(request);
  }
}
