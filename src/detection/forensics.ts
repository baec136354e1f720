/**
 * Third-party verification of a ForensicProof (messages/types.ts; core/forensics.ts builds them):
 * a replica, a guardian, a client or an offline auditor holding only the replicas' public keys
 * decides on its own whether two checkpoint certificates prove a fork, and recomputes the
 * culprits, the replicas that signed both. Nothing here trusts whoever handed the proof over.
 *
 * Cost is bounded before any signature is checked: at most 2n signature verifications.
 */
import {
  bytesEqual,
  DIGEST_BYTES,
  type KeyEpoch,
  MAX_COUNTER,
  type ReplicaId,
  SIGNATURE_BYTES,
  type Signature,
} from '../messages/ids.js';
import { culpritsOf } from '../core/forensics.js';
import { type FaultModel, quorumSize } from '../core/quorum.js';
import { checkpointPayload } from '../messages/signing.js';
import type { CheckpointCertificate, ForensicProof } from '../messages/types.js';

export interface ForensicContext {
  readonly model: FaultModel;
  /** Signature check with the signer's keys of that epoch; false, never a throw, when unknown. */
  verifyReplicaSignature(
    signer: ReplicaId,
    keyEpoch: KeyEpoch,
    payload: Uint8Array,
    signature: Signature,
  ): boolean;
}

export type ForensicVerdict =
  | { readonly valid: true; readonly culprits: readonly ReplicaId[] }
  | { readonly valid: false; readonly reason: string };

function invalid(reason: string): ForensicVerdict {
  return { valid: false, reason };
}

/** Valid distinct voters of one certificate, or the reason it is not a quorum certificate. */
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
  const quorum = quorumSize(context.model);
  if (voters.length < quorum)
    return `${which} certificate has ${voters.length} valid votes, fewer than a quorum (${quorum})`;
  return voters;
}

/**
 * Checks that `proof` proves a fork: two quorum certificates for one sequence with different
 * roots, and exactly the culprits it names (the replicas with a valid vote in both, ascending;
 * at least f + 1 by quorum intersection). Never throws.
 */
export function verifyForensicProof(proof: ForensicProof, context: ForensicContext): ForensicVerdict {
  try {
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
    const culprits = culpritsOf(first, second);
    if (culprits.length < context.model.f + 1)
      return invalid(
        `only ${culprits.length} replicas signed both, fewer than f + 1 = ${context.model.f + 1}`,
      );
    const named = proof.culprits;
    if (named.length !== culprits.length || named.some((replica, index) => replica !== culprits[index]))
      return invalid(
        `the proof names culprits [${named.join(', ')}], the certificates prove [${culprits.join(', ')}]`,
      );
    return { valid: true, culprits };
  } catch (error) {
    return invalid(`malformed proof: ${error instanceof Error ? error.message : String(error)}`);
  }
}

/** One line for logs: the sequence, the two roots (abbreviated) and the culprits. */
export function describeForensicProof(proof: ForensicProof): string {
  const hex = (bytes: Uint8Array): string =>
    [...bytes.subarray(0, 8)].map((byte) => byte.toString(16).padStart(2, '0')).join('');
  return (
    `fork at checkpoint ${proof.first.sequence}: roots ${hex(proof.first.stateRoot)}… and ` +
    `${hex(proof.second.stateRoot)}…, both signed by replicas ${proof.culprits.join(', ')}`
  );
}
