/**
 * Forensics beyond f: finding a fork and naming who caused it (BFT protocol forensics, Sheng et
 * al., CCS'21). Pure: no I/O, no clock; signatures are checked by the caller's function.
 *
 * A correct replica never signs two state roots for one checkpoint sequence, so a replica with
 * valid votes for two roots of one sequence misbehaved, and f + 1 of them are more than the
 * configuration tolerates. That is what a ForensicProof shows: two sets of votes for one sequence
 * with different roots, and the replicas with a valid vote in both (the forensic set, at least
 * f + 1). The common case is a fork: two valid quorum certificates for one sequence, since two
 * quorums of Q = ⌈(n + f + 1)/2⌉ replicas out of n share at least 2Q − n ≥ f + 1 replicas. But a
 * fork need not be certified twice to be proven: colluders that certify a second root for some
 * correct replicas and vote their own root to the others have signed both, and a replica that
 * sees their votes for one root and a certificate of the other holds the proof.
 *
 * The ForkMonitor remembers the certified root of the last FORK_MONITOR_SEQUENCES checkpoint
 * sequences it saw certified (its own certificates, its peers' CERTIFICATE-HISTORY, FORK-PROOFs)
 * and yields a ForensicProof as soon as a second, different root is certified for one of them.
 * It also keeps, for those sequences, each replica's verified votes for up to two roots (from
 * CHECKPOINT messages and certificates), and yields a proof as soon as f + 1 replicas are seen
 * signing the same two roots.
 */
import type {
  CheckpointCertificate,
  CheckpointVote,
  EquivocationEvidence,
  Evidence,
  ForensicProof,
  OtherEvidence,
  Reply,
  SignedCommit,
  SignedProposal,
} from '../messages/types.js';
import {
  assert,
  bytesEqual,
  DIGEST_BYTES,
  digest,
  type Digest,
  type KeyEpoch,
  type ReplicaId,
  type Signature,
  type SequenceNumber,
  sequenceNumber,
  type ViewNumber,
  toHex,
} from '../messages/ids.js';
import { type FaultModel, quorumSize } from './quorum.js';
import { commitPayload, proposalPayload } from '../messages/signing.js';

/** Checkpoint sequences whose certified root the monitor remembers. */
export const FORK_MONITOR_SEQUENCES = 32;

/**
 * The distinct replicas (below n) whose vote in `certificate` verifies, or null when the
 * certificate itself is malformed (a replica voting twice, an id out of range).
 */
export type ValidVoters = (certificate: CheckpointCertificate) => readonly ReplicaId[] | null;

/**
 * Whether equivocation evidence holds: one (view, sequence), two batch digests, both proposals
 * signed by the accused under keys accepted now.
 */
export type ValidEquivocation = (evidence: EquivocationEvidence) => boolean;

/**
 * Whether conflicting-checkpoint or lying-reply evidence holds against its accused now (the rules
 * of detection/evidence.ts verifyEvidence, which lives above the core: the replica is handed it).
 */
export type ValidOtherEvidence = (evidence: OtherEvidence) => boolean;

/** Replicas in both lists, ascending, without repeats. */
/**
 * The key epoch a proof against its accused was made under: the accused is cut off until its
 * epoch is above it (it was rejuvenated). For an equivocation, the later of its two signatures.
 */
export function provenKeyEpoch(evidence: Evidence): KeyEpoch {
  switch (evidence.kind) {
    case 'equivocation':
      return evidence.first.keyEpoch > evidence.second.keyEpoch
        ? evidence.first.keyEpoch
        : evidence.second.keyEpoch;
    case 'conflicting-checkpoint':
      return evidence.vote.keyEpoch;
    case 'lying-reply':
      assert(evidence.reply.proof !== null, 'a lying-reply proof carries a signed reply');
      return evidence.reply.proof.keyEpoch;
    case 'invalid-new-view':
      return evidence.newView.keyEpoch;
    case 'double-commit':
      return evidence.first.keyEpoch > evidence.second.keyEpoch
        ? evidence.first.keyEpoch
        : evidence.second.keyEpoch;
  }
}

export function culpritsOf(first: readonly ReplicaId[], second: readonly ReplicaId[]): ReplicaId[] {
  const inSecond = new Set<number>(second);
  return [...new Set(first.filter((replica) => inSecond.has(replica)))].sort((a, b) => a - b);
}

/** The certificate with only the votes of `voters` (the ones that verify), in replica order. */
function restrictedTo(
  certificate: CheckpointCertificate,
  voters: readonly ReplicaId[],
): CheckpointCertificate {
  const valid = new Set<number>(voters);
  const votes = certificate.votes
    .filter((vote) => valid.has(vote.replicaId))
    .sort((a, b) => a.replicaId - b.replicaId);
  return votes.length === certificate.votes.length ? certificate : { ...certificate, votes };
}

type SignatureCheck = (
  signer: ReplicaId,
  keyEpoch: KeyEpoch,
  payload: Uint8Array,
  signature: Signature,
) => boolean;

/** Two statements of one replica about one (view, sequence): proposals, or COMMITs. */
interface TwoSlotStatements {
  readonly accused: ReplicaId;
  readonly first: SignedProposal | SignedCommit;
  readonly second: SignedProposal | SignedCommit;
}

/**
 * Why two signed statements do not prove that their accused said two things about one (view,
 * sequence), or null when they do: the same view and sequence, two batch digests, and both
 * signatures valid under `verify` (the caller's rule for which key epochs count) over `payloadOf`.
 */
function twoStatementsProblem(
  evidence: TwoSlotStatements,
  noun: 'proposal' | 'commit',
  payloadOf: (view: ViewNumber, sequence: SequenceNumber, batchDigest: Digest) => Uint8Array,
  verify: SignatureCheck,
): string | null {
  const { first, second, accused } = evidence;
  if (first.view !== second.view)
    return `${noun}s are for different views (${first.view} and ${second.view})`;
  if (first.sequence !== second.sequence)
    return `${noun}s are for different sequences (${first.sequence} and ${second.sequence})`;
  if (bytesEqual(first.batchDigest, second.batchDigest)) return `both ${noun}s carry the same batch digest`;
  for (const [name, statement] of [
    ['first', first],
    ['second', second],
  ] as const) {
    const payload = payloadOf(statement.view, statement.sequence, statement.batchDigest);
    if (!verify(accused, statement.keyEpoch, payload, statement.signature))
      return `${name} ${noun} signature does not verify as replica ${accused}'s (key epoch ${statement.keyEpoch})`;
  }
  return null;
}

/**
 * Why equivocation evidence does not prove that its accused signed two proposals for one (view,
 * sequence), or null when it does. Shared by the replica's fork monitor and
 * detection/evidence.ts, which checks the fields' shapes first.
 */
export function equivocationProblem(evidence: EquivocationEvidence, verify: SignatureCheck): string | null {
  return twoStatementsProblem(evidence, 'proposal', proposalPayload, verify);
}

/** Evidence that a replica signed two COMMITs for one (view, sequence). */
export type DoubleCommitEvidence = Extract<Evidence, { readonly kind: 'double-commit' }>;

/** Why double-commit evidence does not prove two COMMITs of its accused for one slot, or null. */
export function doubleCommitProblem(evidence: DoubleCommitEvidence, verify: SignatureCheck): string | null {
  return twoStatementsProblem(evidence, 'commit', commitPayload, verify);
}

/** An unused vote set of a proof that rests on equivocations alone. */
export const NO_VOTES: CheckpointCertificate = {
  sequence: sequenceNumber(0),
  stateRoot: digest(new Uint8Array(DIGEST_BYTES)),
  votes: [],
};

/** Two vote sets for one sequence with different roots, and their valid voters. */
interface VotePart {
  readonly first: { readonly certificate: CheckpointCertificate; readonly voters: readonly ReplicaId[] };
  readonly second: { readonly certificate: CheckpointCertificate; readonly voters: readonly ReplicaId[] };
}

/**
 * The proof from double-signed votes (`votes`, or none), valid equivocations and other valid
 * evidence (at most one per accused), or null when together they name fewer than f + 1 replicas.
 * Other evidence is left out when the votes and the equivocations name f + 1 without it, and
 * against a replica they already name.
 * Deterministic: the lower root first, evidence by accused, so every replica builds the same proof
 * from the same facts.
 */
export function forensicProofFrom(
  model: FaultModel,
  votes: VotePart | null,
  equivocations: readonly EquivocationEvidence[],
  otherEvidence: readonly OtherEvidence[] = [],
): ForensicProof | null {
  let first = NO_VOTES;
  let second = NO_VOTES;
  let doubleSigners: ReplicaId[] = [];
  if (votes !== null) {
    assert(votes.first.certificate.sequence === votes.second.certificate.sequence, 'votes of two sequences');
    assert(
      !bytesEqual(votes.first.certificate.stateRoot, votes.second.certificate.stateRoot),
      'votes of one root',
    );
    doubleSigners = culpritsOf(votes.first.voters, votes.second.voters);
    const ordered = toHex(votes.first.certificate.stateRoot) < toHex(votes.second.certificate.stateRoot);
    const a = restrictedTo(votes.first.certificate, votes.first.voters);
    const b = restrictedTo(votes.second.certificate, votes.second.voters);
    first = ordered ? a : b;
    second = ordered ? b : a;
  }
  const sortedEquivocations = [...equivocations].sort((a, b) => a.accused - b.accused);
  const proven = new Set<number>([
    ...doubleSigners,
    ...sortedEquivocations.map((evidence) => evidence.accused),
  ]);
  const sortedOther: OtherEvidence[] = [];
  // Only when what the accused signed twice names fewer than f + 1: other evidence rests on
  // quorums, which beyond f may be the colluders' and name a correct replica.
  if (proven.size < model.f + 1) {
    for (const evidence of [...otherEvidence].sort((a, b) => a.accused - b.accused)) {
      if (proven.has(evidence.accused)) continue;
      proven.add(evidence.accused);
      sortedOther.push(evidence);
    }
  }
  const all = [...proven] as ReplicaId[];
  const culprits = culpritsOf(all, all);
  if (culprits.length < model.f + 1) return null;
  return { first, second, equivocations: sortedEquivocations, culprits, otherEvidence: sortedOther };
}

/**
 * The proof that two quorum certificates for one sequence conflict, from their valid voters.
 * Asserts (always on) that the forensic set has at least f + 1 replicas: it follows from quorum
 * intersection, so a smaller one means the caller checked a certificate against fewer than Q
 * valid votes.
 */
export function forensicProofOf(
  model: FaultModel,
  first: { readonly certificate: CheckpointCertificate; readonly voters: readonly ReplicaId[] },
  second: { readonly certificate: CheckpointCertificate; readonly voters: readonly ReplicaId[] },
): ForensicProof {
  const proof = forensicProofFrom(model, { first, second }, []);
  assert(
    proof !== null,
    `forensic set of ${culpritsOf(first.voters, second.voters).length} replicas is smaller than f + 1 = ${model.f + 1}`,
  );
  return proof;
}

interface Remembered {
  readonly certificate: CheckpointCertificate;
  /** Null: the caller vouched for the certificate; its voters are checked only if a fork needs them. */
  readonly voters: readonly ReplicaId[] | null;
}

export type ForkObservation =
  /** Not a valid quorum certificate (or genesis): ignored. */
  | { readonly kind: 'invalid' }
  /** Consistent with everything remembered (or too old to compare). */
  | { readonly kind: 'consistent' }
  /** A second certified root for a sequence: the proof (also kept in `proof`). */
  | { readonly kind: 'fork'; readonly proof: ForensicProof };

/** One verified vote, with the root it is for. */
interface LedgerEntry {
  readonly stateRoot: Digest;
  readonly vote: CheckpointVote;
}

export class ForkMonitor {
  readonly #model: FaultModel;
  readonly #quorum: number;
  readonly #validVoters: ValidVoters;
  readonly #roots = new Map<number, Remembered>();
  /**
   * Sequence → replica → its verified votes for at most two roots (two are all a proof needs; a
   * replica signing more cannot grow this). At most FORK_MONITOR_SEQUENCES sequences, the highest.
   */
  readonly #ledger = new Map<number, Map<number, LedgerEntry[]>>();
  /**
   * The evidence seen against each replica, an equivocation preferred (its validity checked at
   * proof time; one that no longer holds, its accused rejuvenated since, is replaced by newer).
   */
  readonly #proven = new Map<number, Evidence>();
  readonly #validEquivocation: ValidEquivocation;
  readonly #validOtherEvidence: ValidOtherEvidence;
  #proof: ForensicProof | null = null;

  constructor(
    model: FaultModel,
    validVoters: ValidVoters,
    validEquivocation: ValidEquivocation,
    validOtherEvidence: ValidOtherEvidence,
  ) {
    this.#model = model;
    this.#quorum = quorumSize(model);
    this.#validVoters = validVoters;
    this.#validEquivocation = validEquivocation;
    this.#validOtherEvidence = validOtherEvidence;
  }

  /** Whether `evidence` holds against its accused under the keys accepted now (signature checks). */
  holds(evidence: Evidence): boolean {
    return this.#holds(evidence);
  }

  /** The piece kept against `accused`, if any (not checked again here). */
  evidenceAgainst(accused: ReplicaId): Evidence | undefined {
    return this.#proven.get(accused);
  }

  /** Every piece kept, one per accused replica. */
  keptEvidence(): Evidence[] {
    return [...this.#proven.values()];
  }

  #holds(evidence: Evidence): boolean {
    return evidence.kind === 'equivocation'
      ? this.#validEquivocation(evidence)
      : this.#validOtherEvidence(evidence);
  }

  /** The first fork found (null: none). */
  get proof(): ForensicProof | null {
    return this.#proof;
  }

  /** The certified root remembered for `sequence`, if any. */
  rootAt(sequence: SequenceNumber): CheckpointCertificate | null {
    return this.#roots.get(sequence)?.certificate ?? null;
  }

  /** The most recent certificates remembered, newest first, at most `count`. */
  recent(count: number): CheckpointCertificate[] {
    return [...this.#roots.keys()]
      .sort((a, b) => b - a)
      .slice(0, count)
      .map((sequence) => this.#roots.get(sequence)!.certificate);
  }

  /**
   * A certificate seen anywhere. Checked here (a quorum of valid distinct votes) unless `checked`
   * (the caller verified it already: its votes are checked again only when it is half of a
   * fork); compared with the root remembered for its sequence; remembered when new and recent.
   */
  observe(certificate: CheckpointCertificate, checked = false): ForkObservation {
    if (certificate.sequence === 0 || certificate.votes.length > this.#model.n) return { kind: 'invalid' };
    const known = this.#roots.get(certificate.sequence);
    // The same root again costs no signature check.
    if (known !== undefined && bytesEqual(known.certificate.stateRoot, certificate.stateRoot))
      return { kind: 'consistent' };
    if (known === undefined && this.#roots.size >= FORK_MONITOR_SEQUENCES) {
      const lowest = Math.min(...this.#roots.keys());
      if (certificate.sequence < lowest) return { kind: 'consistent' };
    }
    const voters = checked && known === undefined ? null : this.#quorumVoters(certificate);
    if (voters === 'invalid') return { kind: 'invalid' };
    if (known !== undefined && voters !== null) {
      const knownVoters = known.voters ?? this.#quorumVoters(known.certificate);
      if (knownVoters === 'invalid') {
        // The remembered one (vouched for by the caller, or checked under keys no longer
        // accepted) holds no quorum of valid votes now: it proves nothing, the new one replaces it.
        this.#roots.set(certificate.sequence, { certificate: restrictedTo(certificate, voters), voters });
        return { kind: 'consistent' };
      }
      const proof = forensicProofOf(
        this.#model,
        { certificate: known.certificate, voters: knownVoters },
        { certificate, voters },
      );
      if (this.#proof === null) this.#proof = proof;
      return { kind: 'fork', proof };
    }
    this.#roots.set(certificate.sequence, {
      certificate: voters === null ? certificate : restrictedTo(certificate, voters),
      voters,
    });
    while (this.#roots.size > FORK_MONITOR_SEQUENCES) this.#roots.delete(Math.min(...this.#roots.keys()));
    const valid = voters === null ? null : new Set<number>(voters);
    return this.#record(
      certificate.sequence,
      certificate.stateRoot,
      certificate.votes.filter((vote) => valid === null || valid.has(vote.replicaId)),
    );
  }

  /**
   * A CHECKPOINT vote the caller verified: kept in the ledger, and a proof when it makes f + 1
   * replicas seen signing the same two roots of its sequence.
   */
  observeVote(sequence: SequenceNumber, stateRoot: Digest, vote: CheckpointVote): ForkObservation {
    if (sequence === 0 || vote.replicaId < 0 || vote.replicaId >= this.#model.n) return { kind: 'invalid' };
    return this.#record(sequence, stateRoot, [vote]);
  }

  /** Verified votes into the ledger; a proof if they complete f + 1 double signers of two roots. */
  #record(sequence: number, stateRoot: Digest, votes: readonly CheckpointVote[]): ForkObservation {
    let byVoter = this.#ledger.get(sequence);
    if (byVoter === undefined) {
      if (this.#ledger.size >= FORK_MONITOR_SEQUENCES && sequence < Math.min(...this.#ledger.keys()))
        return { kind: 'consistent' };
      byVoter = new Map();
      this.#ledger.set(sequence, byVoter);
      while (this.#ledger.size > FORK_MONITOR_SEQUENCES)
        this.#ledger.delete(Math.min(...this.#ledger.keys()));
    }
    let secondRoots = false;
    for (const vote of votes) {
      if (vote.replicaId < 0 || vote.replicaId >= this.#model.n) continue;
      const entries = byVoter.get(vote.replicaId) ?? [];
      if (entries.length >= 2 || entries.some((entry) => bytesEqual(entry.stateRoot, stateRoot))) continue;
      entries.push({ stateRoot, vote });
      byVoter.set(vote.replicaId, entries);
      if (entries.length === 2) secondRoots = true;
    }
    if (!secondRoots) return { kind: 'consistent' };
    return this.#seekProof();
  }

  /**
   * Evidence this replica found or was handed (verified or not: it is checked at proof time): one
   * more proven replica, which with the others proven and the double signers of a checkpoint may
   * make f + 1. One piece per accused is kept: an equivocation rather than another kind (it is
   * the kind a proof lists first), and a newer piece when the kept one no longer holds.
   */
  observeEvidence(evidence: Evidence): ForkObservation {
    if (evidence.accused < 0 || evidence.accused >= this.#model.n) return { kind: 'invalid' };
    const kept = this.#proven.get(evidence.accused);
    if (kept !== undefined && (kept.kind === 'equivocation' || evidence.kind !== 'equivocation')) {
      if (this.#holds(kept)) return { kind: 'consistent' };
    }
    this.#proven.set(evidence.accused, evidence);
    return this.#seekProof();
  }

  /**
   * The replicas proven so far: double signers of one pair of roots of one sequence (the pair
   * with the most, in the ledger) and replicas with other evidence (equivocations first). Signatures are checked again (under the keys
   * accepted now) only once the candidates are f + 1.
   */
  #seekProof(): ForkObservation {
    const provenOtherwise = [...this.#proven.keys()];
    const candidates: {
      readonly sequence: number;
      readonly pair: readonly (readonly [LedgerEntry, LedgerEntry])[];
    }[] = [];
    for (const [sequence, byVoter] of this.#ledger) {
      const pairs = new Map<string, (readonly [LedgerEntry, LedgerEntry])[]>();
      for (const entries of byVoter.values()) {
        if (entries.length < 2) continue;
        const [x, y] =
          toHex(entries[0]!.stateRoot) < toHex(entries[1]!.stateRoot)
            ? [entries[0]!, entries[1]!]
            : [entries[1]!, entries[0]!];
        const key = `${toHex(x.stateRoot)}:${toHex(y.stateRoot)}`;
        pairs.set(key, [...(pairs.get(key) ?? []), [x, y] as const]);
      }
      for (const pair of pairs.values()) candidates.push({ sequence, pair });
    }
    const provenBy = (pair: readonly (readonly [LedgerEntry, LedgerEntry])[]): number =>
      new Set([...pair.map(([entry]) => entry.vote.replicaId as number), ...provenOtherwise]).size;
    candidates.sort((a, b) => provenBy(b.pair) - provenBy(a.pair) || b.sequence - a.sequence);
    if (
      Math.max(provenOtherwise.length, ...candidates.map((candidate) => provenBy(candidate.pair))) <
      this.#model.f + 1
    )
      return { kind: 'consistent' };
    const equivocations: EquivocationEvidence[] = [];
    const otherEvidence: OtherEvidence[] = [];
    for (const evidence of this.#proven.values()) {
      if (!this.#holds(evidence)) continue;
      if (evidence.kind === 'equivocation') equivocations.push(evidence);
      else otherEvidence.push(evidence);
    }
    for (const { sequence, pair } of candidates) {
      const setOf = (side: 0 | 1): CheckpointCertificate => ({
        sequence: sequenceNumber(sequence),
        stateRoot: pair[0]![side].stateRoot,
        votes: pair.map((entries) => entries[side].vote).sort((a, b) => a.replicaId - b.replicaId),
      });
      const first = setOf(0);
      const second = setOf(1);
      const firstVoters = this.#validVoters(first);
      const secondVoters = this.#validVoters(second);
      if (firstVoters === null || secondVoters === null) continue;
      const proof = forensicProofFrom(
        this.#model,
        {
          first: { certificate: first, voters: firstVoters },
          second: { certificate: second, voters: secondVoters },
        },
        equivocations,
        otherEvidence,
      );
      if (proof !== null) return this.#found(proof);
    }
    const proof = forensicProofFrom(this.#model, null, equivocations, otherEvidence);
    return proof === null ? { kind: 'consistent' } : this.#found(proof);
  }

  #found(proof: ForensicProof): ForkObservation {
    if (this.#proof === null) this.#proof = proof;
    return { kind: 'fork', proof };
  }

  #quorumVoters(certificate: CheckpointCertificate): readonly ReplicaId[] | 'invalid' {
    const voters = this.#validVoters(certificate);
    if (voters === null || new Set(voters).size < this.#quorum) return 'invalid';
    return voters;
  }

  /**
   * A received proof: its two vote sets and its evidence are checked here (so a proof whose votes
   * or evidence are not valid here, or that names fewer than f + 1 replicas, yields nothing).
   * Returns the proof as recomputed here, or null.
   */
  observeProof(proof: ForensicProof): ForensicProof | null {
    let votes: VotePart | null = null;
    if (proof.first.votes.length > 0 || proof.second.votes.length > 0) {
      if (proof.first.sequence !== proof.second.sequence) return null;
      if (bytesEqual(proof.first.stateRoot, proof.second.stateRoot)) return null;
      const first = this.#validVoters(proof.first);
      const second = this.#validVoters(proof.second);
      if (first === null || second === null) return null;
      votes = {
        first: { certificate: proof.first, voters: first },
        second: { certificate: proof.second, voters: second },
      };
    }
    if (proof.equivocations.length > this.#model.n) return null;
    const accused = new Set<number>();
    for (const evidence of proof.equivocations) {
      if (evidence.accused < 0 || evidence.accused >= this.#model.n || accused.has(evidence.accused))
        return null;
      accused.add(evidence.accused);
      if (!this.#validEquivocation(evidence)) return null;
    }
    if (proof.otherEvidence.length > this.#model.n) return null;
    for (const evidence of proof.otherEvidence) {
      if (evidence.accused < 0 || evidence.accused >= this.#model.n || accused.has(evidence.accused))
        return null;
      accused.add(evidence.accused);
      if (!this.#validOtherEvidence(evidence)) return null;
    }
    const recomputed = forensicProofFrom(this.#model, votes, proof.equivocations, proof.otherEvidence);
    if (recomputed === null) return null;
    if (this.#proof === null) this.#proof = recomputed;
    return recomputed;
  }
}

// ───────────────────────────── safe mode ─────────────────────────────

/** A replica sends its recent certificates (CERTIFICATE-HISTORY) every this many status intervals. */
export const CERTIFICATE_HISTORY_STATUS_INTERVALS = 4;

/**
 * The result of a write refused in safe mode (reply status 'error'). A client that gets it from
 * f + 1 replicas (one of them correct) fails the request with PhalanxError code 'safe-mode'.
 */
export const SAFE_MODE_REFUSAL_TEXT =
  'SAFE_MODE: this replica holds proof that more than f replicas misbehaved (a fork, or proofs ' +
  'against more than f replicas); it executes ' +
  'no writes until an operator restarts the cluster without the culprits';
const safeModeRefusal = new TextEncoder().encode(SAFE_MODE_REFUSAL_TEXT);

/** A fresh copy of the refusal's bytes. */
export function safeModeRefusalBytes(): Uint8Array {
  return safeModeRefusal.slice();
}

/** Whether a reply is a safe-mode refusal. */
export function isSafeModeRefusal(reply: Reply): boolean {
  return reply.status === 'error' && bytesEqual(reply.result, safeModeRefusal);
}

/** What a replica in safe mode holds: the proof, and the certified state it answers reads from. */
export interface SafeMode {
  readonly proof: ForensicProof;
  /** The stable checkpoint it rolled back to (reads are answered from it, signed). */
  readonly checkpoint: CheckpointCertificate;
  /** Core time it entered safe mode. */
  readonly sinceMs: number;
}
