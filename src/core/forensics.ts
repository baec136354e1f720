/**
 * Forensics beyond f: finding a fork and naming who caused it (BFT protocol forensics, Sheng et
 * al., CCS'21). Pure: no I/O, no clock; signatures are checked by the caller's function.
 *
 * A fork is two valid quorum certificates for one checkpoint sequence with different state roots.
 * Two quorums of Q = ⌈(n + f + 1)/2⌉ replicas out of n share at least 2Q − n ≥ f + 1 replicas, and
 * a correct replica never signs two roots for one sequence, so every replica with a valid vote in
 * both certificates misbehaved, and there are at least f + 1 of them: more than the configuration
 * tolerates. That intersection is the forensic set; the two certificates are its proof.
 *
 * The ForkMonitor remembers the certified root of the last FORK_MONITOR_SEQUENCES checkpoint
 * sequences it saw certified (its own certificates, its peers' CERTIFICATE-HISTORY, FORK-PROOFs)
 * and yields a ForensicProof as soon as a second, different root is certified for one of them.
 */
import type { CheckpointCertificate, ForensicProof, Reply } from '../messages/types.js';
import { assert, bytesEqual, type ReplicaId, type SequenceNumber, toHex } from '../messages/ids.js';
import { type FaultModel, quorumSize } from './quorum.js';

/** Checkpoint sequences whose certified root the monitor remembers. */
export const FORK_MONITOR_SEQUENCES = 32;

/**
 * The distinct replicas (below n) whose vote in `certificate` verifies, or null when the
 * certificate itself is malformed (a replica voting twice, an id out of range).
 */
export type ValidVoters = (certificate: CheckpointCertificate) => readonly ReplicaId[] | null;

/** Replicas in both lists, ascending, without repeats. */
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

/**
 * The proof that two certificates conflict, from their valid voters. Asserts (always on) that the
 * forensic set has at least f + 1 replicas: it follows from quorum intersection, so a smaller one
 * means the caller checked a certificate against fewer than Q valid votes.
 */
export function forensicProofOf(
  model: FaultModel,
  first: { readonly certificate: CheckpointCertificate; readonly voters: readonly ReplicaId[] },
  second: { readonly certificate: CheckpointCertificate; readonly voters: readonly ReplicaId[] },
): ForensicProof {
  assert(first.certificate.sequence === second.certificate.sequence, 'fork of two different sequences');
  assert(!bytesEqual(first.certificate.stateRoot, second.certificate.stateRoot), 'fork of one root');
  const culprits = culpritsOf(first.voters, second.voters);
  assert(
    culprits.length >= model.f + 1,
    `forensic set of ${culprits.length} replicas is smaller than f + 1 = ${model.f + 1}`,
  );
  // Lower root first, so that every replica builds the same proof from the same two certificates.
  const ordered = toHex(first.certificate.stateRoot) < toHex(second.certificate.stateRoot);
  const a = restrictedTo(first.certificate, first.voters);
  const b = restrictedTo(second.certificate, second.voters);
  return { first: ordered ? a : b, second: ordered ? b : a, culprits };
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

export class ForkMonitor {
  readonly #model: FaultModel;
  readonly #quorum: number;
  readonly #validVoters: ValidVoters;
  readonly #roots = new Map<number, Remembered>();
  #proof: ForensicProof | null = null;

  constructor(model: FaultModel, validVoters: ValidVoters) {
    this.#model = model;
    this.#quorum = quorumSize(model);
    this.#validVoters = validVoters;
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
    return { kind: 'consistent' };
  }

  #quorumVoters(certificate: CheckpointCertificate): readonly ReplicaId[] | 'invalid' {
    const voters = this.#validVoters(certificate);
    if (voters === null || new Set(voters).size < this.#quorum) return 'invalid';
    return voters;
  }

  /**
   * A received proof: both certificates are observed (so a proof whose certificates are not valid
   * here yields nothing). Returns the proof as recomputed here, or null.
   */
  observeProof(proof: ForensicProof): ForensicProof | null {
    if (proof.first.sequence !== proof.second.sequence) return null;
    if (bytesEqual(proof.first.stateRoot, proof.second.stateRoot)) return null;
    const first = this.#validVoters(proof.first);
    const second = this.#validVoters(proof.second);
    if (first === null || second === null) return null;
    if (new Set(first).size < this.#quorum || new Set(second).size < this.#quorum) return null;
    const recomputed = forensicProofOf(
      this.#model,
      { certificate: proof.first, voters: first },
      { certificate: proof.second, voters: second },
    );
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
  'SAFE_MODE: this replica holds proof that more than f replicas misbehaved (a fork); it executes ' +
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
