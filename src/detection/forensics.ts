/**
 * Third-party verification of a ForensicProof (messages/types.ts; core/forensics.ts builds them):
 * a replica, a guardian, a client or an offline auditor holding only the replicas' public keys
 * decides on its own whether two checkpoint certificates prove a fork, and recomputes the
 * culprits, the replicas that signed both. Nothing here trusts whoever handed the proof over.
 *
 * Cost is bounded before any signature is checked: at most 2n signature verifications.
 */
import { bytesEqual, DIGEST_BYTES, MAX_COUNTER, type ReplicaId, SIGNATURE_BYTES } from '../messages/ids.js';
import { culpritsOf } from '../core/forensics.js';
import { checkpointPayload } from '../messages/signing.js';
import { type EvidenceContext, verifyEquivocation, verifyEvidence } from './evidence.js';
import type { CheckpointCertificate, EquivocationEvidence, ForensicProof } from '../messages/types.js';

/**
 * What verifying a proof needs: the fault model and the replicas' signature check; for its other
 * evidence (conflicting checkpoints, lying replies) everything verifyEvidence needs.
 */
export type ForensicContext = EvidenceContext;

export type ForensicVerdict =
  | { readonly valid: true; readonly culprits: readonly ReplicaId[] }
  | { readonly valid: false; readonly reason: string };

function invalid(reason: string): ForensicVerdict {
  return { valid: false, reason };
}

/**
 * Valid distinct voters of one vote set, or the reason it is malformed. No quorum is needed: what
 * the proof shows is who signed both roots (two quorum certificates are only the common case).
 */
function validVoters(
  certificate: CheckpointCertificate,
  which: string,
  context: ForensicContext,
): ReplicaId[] | string {
  const { n } = context.model;
  if (
    !Number.isSafeInteger(certificate.sequence) ||
    certificate.sequence <= 0 ||
    certificate.sequence > MAX_COUNTER
  )
    return `${which} certificate sequence ${certificate.sequence} is not a checkpoint sequence`;
  if (certificate.stateRoot.length !== DIGEST_BYTES) return `${which} certificate state root is malformed`;
  if (certificate.votes.length > n)
    return `${which} certificate has ${certificate.votes.length} votes, more than n = ${n}`;
  const payload = checkpointPayload(certificate.sequence, certificate.stateRoot);
  const seen = new Set<number>();
  const voters: ReplicaId[] = [];
  for (const vote of certificate.votes) {
    if (!Number.isSafeInteger(vote.replicaId) || vote.replicaId < 0 || vote.replicaId >= n)
      return `${which} certificate has a vote of replica ${vote.replicaId}, not in 0..${n - 1}`;
    if (seen.has(vote.replicaId)) return `${which} certificate has two votes of replica ${vote.replicaId}`;
    seen.add(vote.replicaId);
    if (vote.signature.length !== SIGNATURE_BYTES) continue;
    if (context.verifyReplicaSignature(vote.replicaId, vote.keyEpoch, payload, vote.signature))
      voters.push(vote.replicaId);
  }
  return voters;
}

/**
 * Checks that `proof` proves more than f replicas faulty: at least f + 1 replicas with a valid
 * vote in both of two vote sets for one sequence with different roots (a correct replica never
 * signs two roots for one sequence; two quorum certificates always have f + 1 in common), a valid
 * equivocation or other valid evidence, one proof per replica, and exactly those named as
 * culprits, ascending. Never throws.
 *
 * Double signing and equivocation name their signers whatever else is true. Other evidence rests
 * on a quorum (of checkpoint votes, of signed replies) that contains a correct replica only while
 * at most f are faulty, so beyond f it may name a correct replica; even then the proof holds that
 * more than f are faulty (either every piece is sound, or one rests on a quorum of liars), but
 * those names are suspects for the operator to examine, not culprits beyond doubt.
 */
export function verifyForensicProof(proof: ForensicProof, context: ForensicContext): ForensicVerdict {
  try {
    let doubleSigners: ReplicaId[] = [];
    if (proof.first.votes.length > 0 || proof.second.votes.length > 0) {
      if (proof.first.sequence !== proof.second.sequence)
        return invalid(
          `the certificates are for sequences ${proof.first.sequence} and ${proof.second.sequence}`,
        );
      if (bytesEqual(proof.first.stateRoot, proof.second.stateRoot))
        return invalid('the certificates certify the same state root: no fork');
      const first = validVoters(proof.first, 'first', context);
      if (typeof first === 'string') return invalid(first);
      const second = validVoters(proof.second, 'second', context);
      if (typeof second === 'string') return invalid(second);
      doubleSigners = culpritsOf(first, second);
    }
    if (proof.equivocations.length > context.model.n)
      return invalid(`${proof.equivocations.length} equivocations, more than n = ${context.model.n}`);
    const equivocators: ReplicaId[] = [];
    for (const evidence of proof.equivocations) {
      const problem = equivocationProblem(evidence, context);
      if (problem !== null) return invalid(problem);
      if (equivocators.includes(evidence.accused))
        return invalid(`two equivocations of replica ${evidence.accused}`);
      equivocators.push(evidence.accused);
    }
    if (proof.otherEvidence.length > context.model.n)
      return invalid(`${proof.otherEvidence.length} other proofs, more than n = ${context.model.n}`);
    const otherAccused: ReplicaId[] = [];
    for (const evidence of proof.otherEvidence) {
      if (evidence.kind === ('equivocation' as string))
        return invalid('an equivocation among the other evidence (it belongs to the equivocations)');
      if (equivocators.includes(evidence.accused) || otherAccused.includes(evidence.accused))
        return invalid(`two proofs against replica ${evidence.accused}`);
      const verdict = verifyEvidence(evidence, context);
      if (!verdict.valid)
        return invalid(`${evidence.kind} of replica ${evidence.accused}: ${verdict.reason}`);
      otherAccused.push(evidence.accused);
    }
    const all = [...doubleSigners, ...equivocators, ...otherAccused];
    const culprits = culpritsOf(all, all);
    if (culprits.length < context.model.f + 1)
      return invalid(
        `only ${culprits.length} replicas are proven faulty, fewer than f + 1 = ${context.model.f + 1}`,
      );
    const named = proof.culprits;
    if (named.length !== culprits.length || named.some((replica, index) => replica !== culprits[index]))
      return invalid(
        `the proof names culprits [${named.join(', ')}], the signatures prove [${culprits.join(', ')}]`,
      );
    return { valid: true, culprits };
  } catch (error) {
    return invalid(`malformed proof: ${error instanceof Error ? error.message : String(error)}`);
  }
}

/** Why an equivocation does not prove its accused signed two proposals, or null when it does. */
function equivocationProblem(evidence: EquivocationEvidence, context: ForensicContext): string | null {
  const { accused } = evidence;
  if (!Number.isSafeInteger(accused) || accused < 0 || accused >= context.model.n)
    return `equivocation of replica ${accused}, not in 0..${context.model.n - 1}`;
  const verdict = verifyEquivocation(evidence, context);
  return verdict.valid ? null : `equivocation of replica ${accused}: ${verdict.reason}`;
}

/** One line for logs: the sequence, the two roots (abbreviated) and the culprits. */
export function describeForensicProof(proof: ForensicProof): string {
  const hex = (bytes: Uint8Array): string =>
    [...bytes.subarray(0, 8)].map((byte) => byte.toString(16).padStart(2, '0')).join('');
  const parts: string[] = [];
  if (proof.first.votes.length > 0)
    parts.push(
      `roots ${hex(proof.first.stateRoot)}… and ${hex(proof.second.stateRoot)}… of checkpoint ` +
        `${proof.first.sequence} both signed by replicas ${culpritsOf(
          proof.first.votes.map((vote) => vote.replicaId),
          proof.second.votes.map((vote) => vote.replicaId),
        ).join(', ')}`,
    );
  for (const evidence of proof.equivocations)
    parts.push(
      `two proposals of replica ${evidence.accused} for view ${evidence.first.view}, sequence ${evidence.first.sequence}`,
    );
  return `more than f replicas misbehaved (${proof.culprits.join(', ')}): ${parts.join('; ')}`;
}
