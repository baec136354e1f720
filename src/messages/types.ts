/**
 * Wire types. Every message that crosses a process boundary is one of these plain, immutable
 * objects; `codec.ts` turns them into bytes and back. Fields that carry proof are named after
 * what they prove. Digests are computed by crypto/ over the canonical encodings in `signing.ts`.
 */
import type {
  ClientId,
  Digest,
  KeyEpoch,
  ReplicaId,
  RequestNumber,
  SequenceNumber,
  Signature,
  ViewNumber,
} from './ids.js';

// ───────────────────────────── client ↔ replica ─────────────────────────────

/** One replica's entry of a request authenticator: HMAC keyed by the client↔replica key of `keyEpoch`. */
export interface MacEntry {
  readonly keyEpoch: KeyEpoch;
  /** MAC_BYTES long. */
  readonly mac: Uint8Array;
}

export interface ClientRequest {
  readonly kind: 'request';
  readonly clientId: ClientId;
  readonly requestNumber: RequestNumber;
  /** Read-only requests may be answered without ordering (see docs/ARCHITECTURE.md). */
  readonly readOnly: boolean;
  readonly operation: Uint8Array;
  /**
   * PBFT authenticator: entry i is the MAC for replica i over the request digest. It lets a backup
   * check a request relayed by the leader without a signature verification.
   */
  readonly authenticator: readonly MacEntry[];
  /** Optional Ed25519 signature by the client over the request digest (Aardvark-style robustness). */
  readonly signature: Signature | null;
}

export type ReplyStatus = 'ok' | 'error';

/**
 * A replica's signature on the replies of one executed batch: one Ed25519 signature over the
 * Merkle root of the batch's replies (replyContent), plus the path proving this reply is a leaf.
 * It makes a reply transferable: a client holding a quorum of signed replies with one result and
 * a signed reply with another can prove that replica lied (Evidence 'lying-reply').
 */
export interface ReplyProof {
  readonly keyEpoch: KeyEpoch;
  /** Signature over replyBatchPayload(sequence, root). */
  readonly signature: Signature;
  readonly leafIndex: number;
  readonly leafCount: number;
  /** Sibling digests from the leaf up (levels where the node had no sibling are skipped). */
  readonly path: readonly Digest[];
}

export interface Reply {
  readonly kind: 'reply';
  readonly view: ViewNumber;
  readonly replicaId: ReplicaId;
  readonly clientId: ClientId;
  readonly requestNumber: RequestNumber;
  readonly readOnly: boolean;
  /** Sequence number whose execution produced the result (for read-only: last executed). */
  readonly sequence: SequenceNumber;
  readonly status: ReplyStatus;
  /** Service result when ok; a UTF-8 reason when error. */
  readonly result: Uint8Array;
  /** Present on replies to ordered requests executed in a batch (absent on read-only replies). */
  readonly proof: ReplyProof | null;
}

/**
 * A replica's session keys of one key epoch, certified by its guardian's long-term identity key
 * (which the replica process never holds). Issued at every rejuvenation.
 */
export interface KeyCertificate {
  readonly replica: ReplicaId;
  readonly keyEpoch: KeyEpoch;
  /** Raw Ed25519 public key (signatures, channel authentication). */
  readonly signingKey: Uint8Array;
  /** Raw X25519 public key (MAC keys shared with clients and peers). */
  readonly agreementKey: Uint8Array;
  /** When the guardian issued it (ms since the Unix epoch), informational. */
  readonly issuedAtMs: number;
  /** Signature by the guardian's identity key over keyCertificatePayload(this). */
  readonly signature: Signature;
}

/** Current key certificates, pushed to clients and peers so that they follow key epochs. */
export interface KeyAnnouncement {
  readonly kind: 'key-announcement';
  readonly certificates: readonly KeyCertificate[];
}

/**
 * Proof of a replica's misbehaviour: a client hands a replica one it found (e.g. a lying reply),
 * and a replica relays what it found or verified to its peers, so that proofs against different
 * replicas meet at every correct one (more than f of them prove a fork: core/forensics.ts).
 */
export interface EvidenceReport {
  readonly kind: 'evidence-report';
  readonly evidence: Evidence;
}

// ───────────────────────────── replica ↔ replica ─────────────────────────────

export interface PrePrepare {
  readonly kind: 'pre-prepare';
  readonly view: ViewNumber;
  readonly sequence: SequenceNumber;
  readonly batchDigest: Digest;
  readonly batch: readonly ClientRequest[];
  readonly keyEpoch: KeyEpoch;
  /** Leader's signature over proposalPayload(view, sequence, batchDigest): proof for equivocation. */
  readonly signature: Signature;
}

export interface Prepare {
  readonly kind: 'prepare';
  readonly view: ViewNumber;
  readonly sequence: SequenceNumber;
  readonly batchDigest: Digest;
  readonly replicaId: ReplicaId;
  /** The leader's proposal signature as this replica received it, so that a conflict is provable. */
  readonly proposalKeyEpoch: KeyEpoch;
  readonly proposalSignature: Signature;
}

/**
 * Signed (over `commitPayload`), unlike PREPARE: two COMMITs of one replica for one (view,
 * sequence) with different digests prove it faulty, which is how a fork beyond f names its
 * culprits when it never reached a checkpoint (COMMIT-CERTIFICATE, `double-commit` evidence).
 */
export interface Commit {
  readonly kind: 'commit';
  readonly view: ViewNumber;
  readonly sequence: SequenceNumber;
  readonly batchDigest: Digest;
  readonly replicaId: ReplicaId;
  readonly keyEpoch: KeyEpoch;
  readonly signature: Signature;
}

/** A replica's signed COMMIT statement, without the message around it. */
export interface SignedCommit {
  readonly view: ViewNumber;
  readonly sequence: SequenceNumber;
  readonly batchDigest: Digest;
  readonly keyEpoch: KeyEpoch;
  readonly signature: Signature;
}

/**
 * The signed COMMITs (at most one per replica, a quorum or more) for which this replica committed
 * `batchDigest` at (view, sequence), sent to a peer whose own COMMIT there names another batch:
 * beyond f, the peer holds the other side's signed COMMITs, and the replicas that signed both are
 * proven (`double-commit`).
 */
export interface CommitCertificate {
  readonly kind: 'commit-certificate';
  readonly view: ViewNumber;
  readonly sequence: SequenceNumber;
  readonly batchDigest: Digest;
  readonly commits: readonly CheckpointVote[];
}

export interface Checkpoint {
  readonly kind: 'checkpoint';
  readonly sequence: SequenceNumber;
  /** Merkle root over the state chunks after executing `sequence`. */
  readonly stateRoot: Digest;
  readonly replicaId: ReplicaId;
  readonly keyEpoch: KeyEpoch;
  /** Signature over checkpointPayload(sequence, stateRoot). */
  readonly signature: Signature;
}

export interface CheckpointVote {
  readonly replicaId: ReplicaId;
  readonly keyEpoch: KeyEpoch;
  readonly signature: Signature;
}

/**
 * Proof that a quorum of replicas reached the same state at `sequence`. The genesis certificate
 * (sequence 0) has no votes: every replica starts from the same empty state.
 */
export interface CheckpointCertificate {
  readonly sequence: SequenceNumber;
  readonly stateRoot: Digest;
  readonly votes: readonly CheckpointVote[];
}

/**
 * P-set entry: this replica prepared `batchDigest` at `sequence` in `view` (highest such view).
 * Bodies are not carried: a replica that lacks the chosen batch fetches it by digest.
 */
export interface PreparedEntry {
  readonly sequence: SequenceNumber;
  readonly view: ViewNumber;
  readonly batchDigest: Digest;
}

/** Q-set entry: this replica accepted a proposal of `batchDigest` at `sequence`, last in `view`. */
export interface PrePreparedEntry {
  readonly sequence: SequenceNumber;
  readonly view: ViewNumber;
  readonly batchDigest: Digest;
}

export interface ViewChange {
  readonly kind: 'view-change';
  readonly newView: ViewNumber;
  readonly replicaId: ReplicaId;
  readonly checkpoint: CheckpointCertificate;
  readonly prepared: readonly PreparedEntry[];
  readonly prePrepared: readonly PrePreparedEntry[];
  readonly keyEpoch: KeyEpoch;
  /** Signature over viewChangePayload(this): the message is relayed inside NEW-VIEW as proof. */
  readonly signature: Signature;
}

export interface NewView {
  readonly kind: 'new-view';
  readonly view: ViewNumber;
  readonly replicaId: ReplicaId;
  /** The view changes the decision is computed from; every replica recomputes it. */
  readonly viewChanges: readonly ViewChange[];
  readonly keyEpoch: KeyEpoch;
  readonly signature: Signature;
}

/** Client requests a backup passes to the leader when they wait too long (PBFT request forwarding). */
export interface ForwardedRequests {
  readonly kind: 'forward';
  readonly requests: readonly ClientRequest[];
}

/** One request a backup holds as authentic, named by its digest. */
export interface AcknowledgedRequest {
  readonly clientId: ClientId;
  readonly requestNumber: RequestNumber;
  readonly requestDigest: Digest;
}

/**
 * "I hold these requests of the current view's clients as authentic" (received on the client's own
 * channel, or vouched for): a backup tells the leader, which proposes a request only once Q − 1
 * backups hold it, so every correct backup can accept the proposal (it holds the request, or
 * f + 1 replicas that prepared it vouch for it) and no client can get a correct leader suspected
 * by authenticating its request for the leader alone.
 */
export interface RequestAcknowledgement {
  readonly kind: 'request-ack';
  readonly view: ViewNumber;
  readonly requests: readonly AcknowledgedRequest[];
}

/** Periodic summary that lets peers help a replica that fell behind. */
export interface Status {
  readonly kind: 'status';
  readonly replicaId: ReplicaId;
  readonly view: ViewNumber;
  readonly viewChangeInProgress: boolean;
  readonly lastExecuted: SequenceNumber;
  readonly stableCheckpoint: SequenceNumber;
}

/**
 * "I committed `batchDigest` at `sequence`." Sent to a replica that fell behind, with the body.
 * f + 1 matching claims from distinct replicas include a correct one, and a correct replica only
 * commits the decided batch, so they let the lagging replica execute it without the commit
 * quorum of one view (which it may never be able to collect once views have moved on).
 */
export interface Decided {
  readonly kind: 'decided';
  readonly sequence: SequenceNumber;
  readonly batchDigest: Digest;
  readonly replicaId: ReplicaId;
}

/** Asks for the body of a batch known only by digest (after a view change or when behind). */
export interface BatchRequest {
  readonly kind: 'batch-request';
  readonly sequence: SequenceNumber;
  readonly batchDigest: Digest;
}

/** The body of a batch; the receiver checks it against a digest it already trusts. */
export interface Batch {
  readonly kind: 'batch';
  readonly sequence: SequenceNumber;
  readonly batchDigest: Digest;
  readonly batch: readonly ClientRequest[];
}

export interface CheckpointProof {
  readonly kind: 'checkpoint-proof';
  readonly certificate: CheckpointCertificate;
}

export interface ManifestRequest {
  readonly kind: 'manifest-request';
  readonly sequence: SequenceNumber;
}

/** The leaf digests (one per state chunk) of the checkpoint at `sequence`. */
export interface Manifest {
  readonly kind: 'manifest';
  readonly sequence: SequenceNumber;
  readonly leaves: readonly Digest[];
}

export interface ChunkRequest {
  readonly kind: 'chunk-request';
  readonly sequence: SequenceNumber;
  readonly indices: readonly number[];
}

export interface Chunk {
  readonly kind: 'chunk';
  readonly sequence: SequenceNumber;
  readonly index: number;
  readonly data: Uint8Array;
}

/** The requested checkpoint is no longer (or not yet) held; `newest` is the sender's stable one. */
export interface StateUnavailable {
  readonly kind: 'state-unavailable';
  readonly sequence: SequenceNumber;
  readonly newest: CheckpointCertificate;
}

/**
 * Beyond f: proof that at least f + 1 replicas misbehaved, each by signing what no correct replica
 * signs (BFT protocol forensics, Sheng et al., CCS'21). Two kinds of double signing count: votes
 * for two state roots of one checkpoint sequence (`first` and `second`: most often two valid
 * quorum certificates, which quorum intersection says share at least f + 1 replicas), and two
 * proposals for one (view, sequence) (`equivocations`). Proofs of the other kinds (a checkpoint
 * vote against a quorum certificate, a reply against a quorum of signed replies) count too
 * (`otherEvidence`): more than f replicas proven faulty at once is beyond f whatever the proofs.
 * Anyone holding the replicas' public keys can check it (detection/forensics.ts
 * verifyForensicProof).
 */
export interface ForensicProof {
  /** Votes for one root of a checkpoint sequence; sequence 0 and no votes when unused. */
  readonly first: CheckpointCertificate;
  /** Votes for another root of the same sequence; sequence 0 and no votes when unused. */
  readonly second: CheckpointCertificate;
  /** Leaders that signed two proposals for one (view, sequence), one each, ascending by accused. */
  readonly equivocations: readonly EquivocationEvidence[];
  /**
   * Conflicting-checkpoint and lying-reply proofs, at most one per accused, ascending by accused
   * (none against a replica already proven above).
   */
  readonly otherEvidence: readonly OtherEvidence[];
  /**
   * The replicas with a valid vote in both vote sets, a valid equivocation or other valid
   * evidence, ascending, at least f + 1; the verifier recomputes them.
   */
  readonly culprits: readonly ReplicaId[];
}

/**
 * A replica's most recent certified checkpoints (at most LIMITS.maxCertificateHistory), sent to
 * every peer now and then so that a fork (two certified roots for one sequence) cannot stay
 * hidden between two groups of correct replicas.
 */
export interface CertificateHistory {
  readonly kind: 'certificate-history';
  readonly certificates: readonly CheckpointCertificate[];
}

/** "The system forked": a ForensicProof, spread so that every correct replica enters safe mode. */
export interface ForkProof {
  readonly kind: 'fork-proof';
  readonly proof: ForensicProof;
}

export type ReplicaMessage =
  | PrePrepare
  | Prepare
  | Commit
  | Checkpoint
  | ViewChange
  | NewView
  | ForwardedRequests
  | RequestAcknowledgement
  | Status
  | Decided
  | BatchRequest
  | Batch
  | CheckpointProof
  | ManifestRequest
  | Manifest
  | ChunkRequest
  | Chunk
  | StateUnavailable
  | CertificateHistory
  | ForkProof
  | EvidenceReport
  | CommitCertificate;

export type ReplicaMessageKind = ReplicaMessage['kind'];

/** Everything that can arrive on a connection. */
export type WireMessage = ReplicaMessage | ClientRequest | Reply | KeyAnnouncement | EvidenceReport;

// ───────────────────────────── evidence ─────────────────────────────

/** A leader's signed statement "at (view, sequence) I propose batchDigest". */
export interface SignedProposal {
  readonly view: ViewNumber;
  readonly sequence: SequenceNumber;
  readonly batchDigest: Digest;
  readonly keyEpoch: KeyEpoch;
  readonly signature: Signature;
}

/**
 * Transferable proof of misbehaviour: anyone holding the accused replica's public keys can check
 * it alone (see detection/ and docs/intrusion-tolerance.md).
 */
export type Evidence =
  | {
      readonly kind: 'equivocation';
      readonly accused: ReplicaId;
      readonly first: SignedProposal;
      readonly second: SignedProposal;
    }
  | {
      /** A signed checkpoint vote that disagrees with a quorum-certified state root. */
      readonly kind: 'conflicting-checkpoint';
      readonly accused: ReplicaId;
      readonly certificate: CheckpointCertificate;
      readonly vote: Checkpoint;
    }
  | {
      /**
       * A signed reply whose result differs from the one a quorum of other replicas signed for
       * the same request executed at the same sequence number: the accused lied or its state
       * is corrupt (correct replicas compute the same result).
       */
      readonly kind: 'lying-reply';
      readonly accused: ReplicaId;
      readonly reply: Reply;
      readonly certified: readonly Reply[];
    }
  | {
      /**
       * Two COMMITs the accused signed for one (view, sequence) with different batch digests: a
       * correct replica prepares, so commits, one batch per (view, sequence).
       */
      readonly kind: 'double-commit';
      readonly accused: ReplicaId;
      readonly first: SignedCommit;
      readonly second: SignedCommit;
    }
  | {
      /**
       * A NEW-VIEW its leader signed that does not follow from the view changes it carries (for
       * another view, two from one replica, fewer than a quorum, or a set that decides nothing:
       * core/view-change.ts newViewProblem). A correct leader signs only a set it decided.
       */
      readonly kind: 'invalid-new-view';
      readonly accused: ReplicaId;
      readonly newView: NewView;
    };

/** Evidence that a leader signed two proposals for one (view, sequence). */
export type EquivocationEvidence = Extract<Evidence, { readonly kind: 'equivocation' }>;

/** Evidence of the kinds a ForensicProof carries beside its equivocations. */
export type OtherEvidence = Exclude<Evidence, { readonly kind: 'equivocation' }>;
