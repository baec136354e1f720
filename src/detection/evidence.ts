/**
 * Third-party verification of Evidence (messages/types.ts): a guardian, a replica, a client or an
 * offline auditor holding only the replicas' public keys decides on its own whether a piece of
 * evidence proves that the accused replica misbehaved. Nothing here trusts whoever handed the
 * evidence over: the evidence arrives from the network, possibly from a faulty replica trying to
 * frame a correct one, so every rule a correct replica could never break is checked, and every
 * rejection names the rule.
 *
 * Cost is bounded before any signature is checked: at most n + 1 signature verifications and
 * n + 1 Merkle paths of at most LIMITS.maxReplyProofDepth hashes, whatever the input; an
 * invalid-new-view proof costs one signature and a view-change decision over at most
 * NEW_VIEW_EVIDENCE_MAX_SPAN sequences.
 */
import { hash } from 'node:crypto';
import {
  bytesEqual,
  DIGEST_BYTES,
  type Digest,
  isValidClientId,
  type KeyEpoch,
  MAX_COUNTER,
  type ReplicaId,
  SIGNATURE_BYTES,
  type Signature,
  toHex,
} from '../messages/ids.js';
import { rootFromProof } from '../core/merkle.js';
import { type FaultModel, quorumSize } from '../core/quorum.js';
import { LIMITS } from '../messages/limits.js';
import { checkpointPayload, newViewPayload, replyBatchPayload, replyContent } from '../messages/signing.js';
import type {
  CheckpointCertificate,
  EquivocationEvidence,
  Evidence,
  Reply,
  SignedProposal,
} from '../messages/types.js';
import { type DoubleCommitEvidence, doubleCommitProblem, equivocationProblem } from '../core/forensics.js';
import { newViewProblem } from '../core/view-change.js';

export interface EvidenceContext {
  readonly model: FaultModel;
  /**
   * Signature check with the signer's keys of that epoch (current or the one before: evidence may
   * be a little old). Must return false, never throw, for an unknown signer or epoch.
   */
  verifyReplicaSignature(
    signer: ReplicaId,
    keyEpoch: KeyEpoch,
    payload: Uint8Array,
    signature: Signature,
  ): boolean;
  /** SHA-256. */
  hash(data: Uint8Array): Digest;
  /**
   * The accused replica's current key epoch as the verifier knows it (undefined: none known).
   * Evidence counts only against the epoch a replica speaks with now: a retired epoch belongs to
   * a process that a rejuvenation has already replaced, so accusing it cleans nothing, and its
   * keys may have been stolen (an intruder holding retired keys must not be able to frame the
   * clean replica that now bears the same id).
   */
  currentEpoch(replica: ReplicaId): KeyEpoch | undefined;
}

export type EvidenceVerdict = { readonly valid: true } | { readonly valid: false; readonly reason: string };

const VALID: EvidenceVerdict = { valid: true };

function invalid(reason: string): EvidenceVerdict {
  return { valid: false, reason };
}

/**
 * Checks that `evidence` proves its accused replica misbehaved. Never throws: malformed evidence
 * (wrong field lengths, out-of-range numbers, an unknown kind) is simply invalid.
 */
export function verifyEvidence(evidence: Evidence, context: EvidenceContext): EvidenceVerdict {
  try {
    const accusedProblem = replicaIdProblem(evidence.accused, context.model.n, 'accused');
    if (accusedProblem !== null) return invalid(accusedProblem);
    const epochProblem = accusedEpochProblem(evidence, context);
    if (epochProblem !== null) return invalid(epochProblem);
    switch (evidence.kind) {
      case 'equivocation':
        return verifyEquivocation(evidence, context);
      case 'conflicting-checkpoint':
        return verifyConflictingCheckpoint(evidence, context);
      case 'lying-reply':
        return verifyLyingReply(evidence, context);
      case 'invalid-new-view':
        return verifyInvalidNewView(evidence, context);
      case 'double-commit':
        return verifyDoubleCommit(evidence, context);
      default:
        return invalid(`unknown evidence kind ${JSON.stringify((evidence as { kind: unknown }).kind)}`);
    }
  } catch (error) {
    // Only evidence whose fields escaped the shape checks below (built in memory, not decoded)
    // can reach this; it proves nothing, and a verifier must not be crashed by it.
    return invalid(`malformed evidence: ${error instanceof Error ? error.message : String(error)}`);
  }
}

/** The key epochs under which the accused signed what the evidence holds against it. */
export function accusedEpochs(evidence: Evidence): readonly KeyEpoch[] {
  switch (evidence.kind) {
    case 'equivocation':
      return [evidence.first.keyEpoch, evidence.second.keyEpoch];
    case 'conflicting-checkpoint':
      return [evidence.vote.keyEpoch];
    case 'lying-reply':
      // A reply without a proof is refused by the shape checks.
      return evidence.reply.proof === null ? [] : [evidence.reply.proof.keyEpoch];
    case 'invalid-new-view':
      return [evidence.newView.keyEpoch];
    case 'double-commit':
      return [evidence.first.keyEpoch, evidence.second.keyEpoch];
    default:
      return [];
  }
}

function accusedEpochProblem(evidence: Evidence, context: EvidenceContext): string | null {
  const current = context.currentEpoch(evidence.accused);
  for (const epoch of accusedEpochs(evidence)) {
    if (epoch !== current)
      return (
        `signed under key epoch ${epoch} of replica ${evidence.accused}, whose current epoch is ` +
        `${current ?? 'unknown'}: evidence counts only against the epoch a replica speaks with now`
      );
  }
  return null;
}

/** The replica the evidence accuses. */
export function evidenceAccused(evidence: Evidence): ReplicaId {
  return evidence.accused;
}

/** One line for logs and dashboards; safe on unverified evidence (it never throws). */
export function describeEvidence(evidence: Evidence): string {
  try {
    switch (evidence.kind) {
      case 'equivocation':
        return (
          `equivocation by replica ${evidence.accused}: two proposals at view ${evidence.first.view}, ` +
          `sequence ${evidence.first.sequence} (${shortHex(evidence.first.batchDigest)} vs ` +
          `${shortHex(evidence.second.batchDigest)})`
        );
      case 'conflicting-checkpoint':
        return (
          `conflicting checkpoint by replica ${evidence.accused}: state root ` +
          `${shortHex(evidence.vote.stateRoot)} at sequence ${evidence.vote.sequence}, certified ` +
          `${shortHex(evidence.certificate.stateRoot)} at sequence ${evidence.certificate.sequence} ` +
          `by ${evidence.certificate.votes.length} votes`
        );
      case 'lying-reply': {
        const reply = evidence.reply;
        const certified = evidence.certified[0];
        const certifiedOutcome = certified === undefined ? 'nothing' : replyOutcome(certified);
        return (
          `lying reply by replica ${evidence.accused}: request ${requestName(reply)} at sequence ` +
          `${reply.sequence} answered ${replyOutcome(reply)}, ${evidence.certified.length} replicas ` +
          `certified ${certifiedOutcome}`
        );
      }
      case 'invalid-new-view':
        return (
          `invalid new-view by replica ${evidence.accused}: view ${evidence.newView.view} with ` +
          `${evidence.newView.viewChanges.length} view changes that do not decide it`
        );
      case 'double-commit':
        return (
          `double commit by replica ${evidence.accused}: two commits at view ${evidence.first.view}, ` +
          `sequence ${evidence.first.sequence} (${shortHex(evidence.first.batchDigest)} vs ` +
          `${shortHex(evidence.second.batchDigest)})`
        );
      default:
        return `unknown evidence kind ${JSON.stringify((evidence as { kind: unknown }).kind)}`;
    }
  } catch {
    return `malformed evidence against replica ${String(evidence.accused)}`;
  }
}

// ───────────────────────────── equivocation ─────────────────────────────

/** A correct leader signs one batch digest per (view, sequence); two different ones prove a fault. */
/** Equivocation evidence, shapes first (what was decoded from a peer may be anything). */
export function verifyEquivocation(
  evidence: EquivocationEvidence,
  context: Pick<EvidenceContext, 'verifyReplicaSignature'>,
): EvidenceVerdict {
  const { first, second } = evidence;
  const shapeProblem = proposalShapeProblem(first, 'first') ?? proposalShapeProblem(second, 'second');
  if (shapeProblem !== null) return invalid(shapeProblem);
  const problem = equivocationProblem(evidence, (signer, keyEpoch, payload, signature) =>
    context.verifyReplicaSignature(signer, keyEpoch, payload, signature),
  );
  return problem === null ? VALID : invalid(problem);
}

/**
 * A correct replica prepares, so commits, one batch per (view, sequence): two signed COMMITs with
 * different digests prove a fault, on the accused's signatures alone (as an equivocation does).
 */
function verifyDoubleCommit(
  evidence: DoubleCommitEvidence,
  context: Pick<EvidenceContext, 'verifyReplicaSignature'>,
): EvidenceVerdict {
  const { first, second } = evidence;
  const shapeProblem = proposalShapeProblem(first, 'first') ?? proposalShapeProblem(second, 'second');
  if (shapeProblem !== null) return invalid(shapeProblem.replace('proposal', 'commit'));
  const problem = doubleCommitProblem(evidence, (signer, keyEpoch, payload, signature) =>
    context.verifyReplicaSignature(signer, keyEpoch, payload, signature),
  );
  return problem === null ? VALID : invalid(problem);
}

function proposalShapeProblem(proposal: SignedProposal, name: string): string | null {
  return (
    counterProblem(proposal.view, `${name} proposal view`) ??
    counterProblem(proposal.sequence, `${name} proposal sequence`) ??
    counterProblem(proposal.keyEpoch, `${name} proposal key epoch`) ??
    fixedLengthProblem(proposal.batchDigest, DIGEST_BYTES, `${name} proposal batch digest`) ??
    fixedLengthProblem(proposal.signature, SIGNATURE_BYTES, `${name} proposal signature`)
  );
}

// ───────────────────────────── invalid new-view ─────────────────────────────

type InvalidNewViewEvidence = Extract<Evidence, { kind: 'invalid-new-view' }>;

/**
 * Sequences above its checkpoint an invalid-new-view proof may span and still be judged (8 × the
 * default log window): the decision costs time in the span, and a wider NEW-VIEW, which a
 * configuration with a larger window could produce, is refused as a proof, the safe side.
 */
export const NEW_VIEW_EVIDENCE_MAX_SPAN = 4096;

/**
 * The accused led the NEW-VIEW's view and signed it, and its view changes do not decide it
 * (core/view-change.ts newViewProblem): a correct leader signs only a set it decided. Judged on
 * the content alone; the embedded view changes' own signatures do not matter (a leader that
 * signed forged ones is faulty as well), so this costs one signature check.
 */
function verifyInvalidNewView(evidence: InvalidNewViewEvidence, context: EvidenceContext): EvidenceVerdict {
  const { newView, accused } = evidence;
  const shapeProblem =
    counterProblem(newView.view, 'new-view view') ??
    counterProblem(newView.keyEpoch, 'new-view key epoch') ??
    fixedLengthProblem(newView.signature, SIGNATURE_BYTES, 'new-view signature');
  if (shapeProblem !== null) return invalid(shapeProblem);
  if (newView.replicaId !== accused)
    return invalid(`the new-view is replica ${newView.replicaId}'s, not the accused replica ${accused}'s`);
  const leader = newView.view % context.model.n;
  if (leader !== accused)
    return invalid(`replica ${accused} does not lead view ${newView.view} (replica ${leader} does)`);
  if (newView.viewChanges.length > LIMITS.maxReplicas)
    return invalid(
      `the new-view holds ${newView.viewChanges.length} view changes, more than ${LIMITS.maxReplicas}`,
    );
  // The signature first: the decision below costs more than one check, and only a leader's own
  // NEW-VIEW is worth it.
  if (!context.verifyReplicaSignature(accused, newView.keyEpoch, newViewPayload(newView), newView.signature))
    return invalid(
      `the new-view's signature does not verify as replica ${accused}'s (key epoch ${newView.keyEpoch})`,
    );
  const judged = newViewProblem(newView, context.model, NEW_VIEW_EVIDENCE_MAX_SPAN);
  if (judged === null) return invalid('the new-view follows from its view changes (or is too wide to judge)');
  return VALID;
}

// ───────────────────────────── conflicting checkpoint ─────────────────────────────

type ConflictingCheckpointEvidence = Extract<Evidence, { kind: 'conflicting-checkpoint' }>;

/**
 * A quorum certified one state root at a sequence; the quorum includes correct replicas, so the
 * certified root is the correct state. A replica that signed another root at that sequence has a
 * corrupt state or lies.
 */
function verifyConflictingCheckpoint(
  evidence: ConflictingCheckpointEvidence,
  context: EvidenceContext,
): EvidenceVerdict {
  const { certificate, vote, accused } = evidence;
  const shapeProblem =
    counterProblem(certificate.sequence, 'certificate sequence') ??
    fixedLengthProblem(certificate.stateRoot, DIGEST_BYTES, 'certificate state root') ??
    counterProblem(vote.sequence, 'vote sequence') ??
    counterProblem(vote.keyEpoch, 'vote key epoch') ??
    fixedLengthProblem(vote.stateRoot, DIGEST_BYTES, 'vote state root') ??
    fixedLengthProblem(vote.signature, SIGNATURE_BYTES, 'vote signature');
  if (shapeProblem !== null) return invalid(shapeProblem);
  // Genesis is certified by fiat, not by signatures: it proves nothing against anybody.
  if (certificate.sequence === 0) return invalid('a genesis certificate (sequence 0) is not evidence');
  if (vote.replicaId !== accused) {
    return invalid(
      `the conflicting vote is replica ${vote.replicaId}'s, not the accused replica ${accused}'s`,
    );
  }
  if (vote.sequence !== certificate.sequence) {
    return invalid(
      `the vote is for sequence ${vote.sequence}, the certificate for sequence ${certificate.sequence}`,
    );
  }
  if (bytesEqual(vote.stateRoot, certificate.stateRoot)) {
    return invalid('the vote agrees with the certified state root');
  }
  const certificateProblem = checkpointCertificateProblem(certificate, context);
  if (certificateProblem !== null) return invalid(certificateProblem);
  const payload = checkpointPayload(vote.sequence, vote.stateRoot);
  if (!context.verifyReplicaSignature(accused, vote.keyEpoch, payload, vote.signature)) {
    return invalid(
      `the conflicting vote's signature does not verify as replica ${accused}'s (key epoch ${vote.keyEpoch})`,
    );
  }
  return VALID;
}

/** Null when the certificate carries a quorum of distinct, valid votes over its root. */
function checkpointCertificateProblem(
  certificate: CheckpointCertificate,
  context: EvidenceContext,
): string | null {
  const { n } = context.model;
  const quorum = quorumSize(context.model);
  // Structural checks over all votes first, so that forged input costs no signature verification.
  if (certificate.votes.length > n) {
    return `the certificate has ${certificate.votes.length} votes, more than n = ${n}`;
  }
  const voters = new Set<number>();
  for (const vote of certificate.votes) {
    const problem =
      replicaIdProblem(vote.replicaId, n, 'certificate voter') ??
      counterProblem(vote.keyEpoch, `key epoch of replica ${vote.replicaId}'s certificate vote`) ??
      fixedLengthProblem(vote.signature, SIGNATURE_BYTES, `replica ${vote.replicaId}'s certificate vote`);
    if (problem !== null) return problem;
    if (voters.has(vote.replicaId)) return `replica ${vote.replicaId} votes twice in the certificate`;
    voters.add(vote.replicaId);
  }
  if (voters.size < quorum) return `only ${voters.size} certificate votes, a quorum is ${quorum}`;
  // A quorum of the votes must verify. The others may be under epochs retired since (stored
  // certificates keep every vote, and a voter may have been rejuvenated after voting): they prove
  // nothing, and they do not invalidate the rest.
  const payload = checkpointPayload(certificate.sequence, certificate.stateRoot);
  const failed: string[] = [];
  for (const vote of certificate.votes) {
    if (!context.verifyReplicaSignature(vote.replicaId, vote.keyEpoch, payload, vote.signature))
      failed.push(`replica ${vote.replicaId} (key epoch ${vote.keyEpoch})`);
  }
  const verified = certificate.votes.length - failed.length;
  if (verified < quorum)
    return `only ${verified} certificate votes verify, a quorum is ${quorum}; not verifying: ${failed.join(', ')}`;
  return null;
}

// ───────────────────────────── lying reply ─────────────────────────────

type LyingReplyEvidence = Extract<Evidence, { kind: 'lying-reply' }>;

/**
 * Correct replicas that execute one request at one sequence compute one result. A quorum of other
 * replicas signed one result; the accused signed another, so it lied or its state is corrupt.
 * Every reply counts only through its batch signature (ReplyProof), which makes it transferable.
 */
function verifyLyingReply(evidence: LyingReplyEvidence, context: EvidenceContext): EvidenceVerdict {
  const { reply, certified, accused } = evidence;
  const { n } = context.model;
  const quorum = quorumSize(context.model);
  // Bound the work before looking at any reply: at most n replicas can certify anything.
  if (certified.length > n) return invalid(`${certified.length} certified replies, more than n = ${n}`);
  if (reply.replicaId !== accused) {
    return invalid(`the accused reply is replica ${reply.replicaId}'s, not the accused replica ${accused}'s`);
  }
  const accusedProblem = replyShapeProblem(reply, n, 'the accused reply');
  if (accusedProblem !== null) return invalid(accusedProblem);
  const certifiers = new Set<number>();
  for (const certifiedReply of certified) {
    const name = `replica ${certifiedReply.replicaId}'s certified reply`;
    const problem = replyShapeProblem(certifiedReply, n, name);
    if (problem !== null) return invalid(problem);
    if (certifiedReply.replicaId === accused) {
      return invalid(`the accused replica ${accused} cannot be one of the certifiers`);
    }
    if (certifiers.has(certifiedReply.replicaId)) {
      return invalid(`replica ${certifiedReply.replicaId} appears twice among the certified replies`);
    }
    certifiers.add(certifiedReply.replicaId);
    if (
      certifiedReply.clientId !== reply.clientId ||
      certifiedReply.requestNumber !== reply.requestNumber ||
      certifiedReply.sequence !== reply.sequence
    ) {
      return invalid(
        `${name} answers request ${requestName(certifiedReply)} at sequence ${certifiedReply.sequence}, ` +
          `the accused reply request ${requestName(reply)} at sequence ${reply.sequence}`,
      );
    }
  }
  if (certifiers.size < quorum)
    return invalid(`only ${certifiers.size} certified replies, a quorum is ${quorum}`);
  const reference = certified[0]!;
  for (const certifiedReply of certified) {
    if (!sameOutcome(certifiedReply, reference)) {
      return invalid(
        `certified replies disagree: replica ${reference.replicaId} answered ${replyOutcome(reference)}, ` +
          `replica ${certifiedReply.replicaId} ${replyOutcome(certifiedReply)}`,
      );
    }
  }
  if (sameOutcome(reply, reference)) return invalid('the accused reply has the certified status and result');
  for (const [name, checked] of [
    ['the accused reply', reply] as const,
    ...certified.map(
      (certifiedReply) => [`replica ${certifiedReply.replicaId}'s certified reply`, certifiedReply] as const,
    ),
  ]) {
    const problem = replyProofProblem(checked, name, context);
    if (problem !== null) return invalid(problem);
  }
  return VALID;
}

/** Structural problems of a reply that make it unusable as evidence (checked before any hashing). */
function replyShapeProblem(reply: Reply, n: number, name: string): string | null {
  const idProblem = replicaIdProblem(reply.replicaId, n, `${name}'s sender`);
  if (idProblem !== null) return idProblem;
  // A read-only reply is answered without ordering and may legitimately lag: it proves nothing.
  if (reply.readOnly) return `${name} is read-only`;
  if (reply.proof === null) return `${name} has no reply proof`;
  const proof = reply.proof;
  if (proof.path.length > LIMITS.maxReplyProofDepth) {
    return `${name}'s proof path has ${proof.path.length} digests, more than maxReplyProofDepth (${LIMITS.maxReplyProofDepth})`;
  }
  for (const sibling of proof.path) {
    const problem = fixedLengthProblem(sibling, DIGEST_BYTES, `a digest in ${name}'s proof path`);
    if (problem !== null) return problem;
  }
  return (
    counterProblem(reply.requestNumber, `${name}'s request number`) ??
    counterProblem(reply.sequence, `${name}'s sequence`) ??
    counterProblem(proof.keyEpoch, `${name}'s key epoch`) ??
    counterProblem(proof.leafIndex, `${name}'s leaf index`) ??
    counterProblem(proof.leafCount, `${name}'s leaf count`) ??
    fixedLengthProblem(proof.signature, SIGNATURE_BYTES, `${name}'s proof signature`) ??
    (typeof reply.clientId === 'string' ? null : `${name} has no client id`) ??
    (reply.status === 'ok' || reply.status === 'error' ? null : `${name} has an unknown status`)
  );
}

/** Null when the reply is a leaf under a batch root its sender signed. */
function replyProofProblem(reply: Reply, name: string, context: EvidenceContext): string | null {
  const proof = reply.proof!;
  const leaf = context.hash(replyContent(reply));
  const root = rootFromProof(context.hash, leaf, proof.leafIndex, proof.leafCount, proof.path);
  if (root === null) {
    return (
      `${name}'s proof does not lead to a root (leaf ${proof.leafIndex} of ${proof.leafCount}, ` +
      `${proof.path.length} path digests)`
    );
  }
  const payload = replyBatchPayload(reply.sequence, root);
  if (!context.verifyReplicaSignature(reply.replicaId, proof.keyEpoch, payload, proof.signature)) {
    return `${name}'s batch signature does not verify as replica ${reply.replicaId}'s (key epoch ${proof.keyEpoch})`;
  }
  return null;
}

function sameOutcome(a: Reply, b: Reply): boolean {
  return a.status === b.status && bytesEqual(a.result, b.result);
}

// ───────────────────────────── helpers ─────────────────────────────

function replicaIdProblem(id: number, n: number, name: string): string | null {
  if (!Number.isSafeInteger(id) || id < 0) return `${name} ${String(id)} is not a replica id`;
  if (id >= n) return `${name} ${id} is not a replica (n = ${n})`;
  return null;
}

function counterProblem(value: number, name: string): string | null {
  return Number.isSafeInteger(value) && value >= 0 && value <= MAX_COUNTER
    ? null
    : `${name} ${String(value)} is not a counter`;
}

function fixedLengthProblem(bytes: Uint8Array, length: number, name: string): string | null {
  if (!(bytes instanceof Uint8Array)) return `${name} is not a byte string`;
  return bytes.length === length ? null : `${name} is ${bytes.length} bytes, not ${length}`;
}

/** Enough of a digest to tell two apart in a log line. */
function shortHex(bytes: Uint8Array): string {
  return toHex(bytes.subarray(0, 4));
}

function requestName(reply: Reply): string {
  // Quoted when it is not a valid client id, so that untrusted input cannot break the line.
  const client = isValidClientId(reply.clientId) ? reply.clientId : JSON.stringify(reply.clientId);
  return `${client}#${reply.requestNumber}`;
}

function replyOutcome(reply: Reply): string {
  // The result itself may be large or binary; its length and a short hash tell two apart.
  const fingerprint = toHex(hash('sha256', reply.result, 'buffer').subarray(0, 4));
  return `${reply.status} (${reply.result.length} bytes, sha256 ${fingerprint}…)`;
}
