/**
 * The replica as a pure state machine: `step(event) → actions`.
 *
 * It implements PBFT-style ordering (pre-prepare / prepare / commit) with batching and a pipeline
 * of instances in flight, a view change that needs no signed prepares (see view-change.ts),
 * checkpoints every K batches certified by a quorum of signatures over a Merkle root of the state,
 * state transfer from such a checkpoint (state-transfer.ts), and exactly-once execution
 * (client-table.ts). No I/O, clocks, timers or randomness: time arrives as `tick` events.
 *
 * Usage (the runtime and the simulator are the two drivers):
 * ```ts
 * const replica = new Replica({ config, id, crypto, service });
 * for (const action of replica.step({ kind: 'tick', now: 0 })) driver.perform(action);
 * ```
 *
 * Thresholds: Q = quorumSize(n, f) votes make prepared / committed / checkpoint certificates and
 * view-change sets; f + 1 view changes for higher views make a replica join them.
 */

import { LIMITS } from '../messages/limits.js';
import {
  batchContent,
  checkpointPayload,
  commitPayload,
  newViewPayload,
  proposalPayload,
  replyBatchPayload,
  replyContent,
  requestContent,
  viewChangePayload,
} from '../messages/signing.js';
import type {
  Batch,
  BatchRequest,
  CertificateHistory,
  Checkpoint,
  CheckpointCertificate,
  CheckpointProof,
  ChunkRequest,
  ClientRequest,
  Commit,
  CommitCertificate,
  Decided,
  EquivocationEvidence,
  Evidence,
  ForensicProof,
  ForwardedRequests,
  RequestAcknowledgement,
  ManifestRequest,
  NewView,
  PrePrepare,
  PrePreparedEntry,
  Prepare,
  PreparedEntry,
  ReplicaMessage,
  Reply,
  ReplyProof,
  ReplyStatus,
  StateUnavailable,
  SignedCommit,
  Status,
  ViewChange,
} from '../messages/types.js';
import type {
  Action,
  DurableRecord,
  ExecutedRequest,
  LogDetails,
  LogLevel,
  StoredCheckpoint,
} from './actions.js';
import { type CachedReply, ClientTable } from './client-table.js';
import type { ProtocolConfig } from './config.js';
import { protocolConfigProblems } from './config.js';
import type { CoreCrypto, Signed } from './crypto.js';
import type { ReplicaEvent } from './events.js';
import {
  assert,
  bytesEqual,
  type ClientId,
  type Digest,
  type KeyEpoch,
  type ReplicaId,
  replicaId,
  type SequenceNumber,
  type Signature,
  sequenceNumber,
  toHex,
  type ViewNumber,
  viewNumber,
} from '../messages/ids.js';
import { LeaderPace, type LeaderPaceReport } from './leader-pace.js';
import { leafDigest, merkleRoot, merkleTree } from './merkle.js';
import { correctWitnessSize, quorumSize } from './quorum.js';
import type { Service } from './service.js';
import { StateTransfer } from './state-transfer.js';
import { decideNewView, type NewViewDecision, newViewProblem } from './view-change.js';
import { SenderBudgets } from './token-bucket.js';
import {
  CERTIFICATE_HISTORY_STATUS_INTERVALS,
  equivocationProblem,
  FORK_MONITOR_SEQUENCES,
  ForkMonitor,
  provenKeyEpoch,
  type SafeMode,
  type ValidOtherEvidence,
  safeModeRefusalBytes,
} from './forensics.js';

/** Deliberately broken rules, for tests that prove the simulator's checkers catch bugs. */
export interface TestingFaults {
  /** Prepared and committed after f + 1 matching votes instead of a quorum. */
  readonly brokenQuorum?: boolean;
  /** The new leader ignores prepared entries and re-proposes no-ops. */
  readonly brokenViewChange?: boolean;
  /** Never looks for forks: certificates are not compared, fork proofs are ignored. */
  readonly brokenForkDetection?: boolean;
}

/** What a restarted replica read back from its durable storage. */
export interface RestoredState {
  readonly view: ViewNumber;
  readonly viewChangeInProgress: boolean;
  /**
   * Last stable checkpoint, one chunk per leaf. The engine guarantees that every non-null chunk
   * has exactly the leaf digest at its index (it checks each one as it reads it; records.ts
   * chunkMatchesLeaf); a chunk is null when it was missing or failed that check. The core relies
   * on this and does not hash restored chunks again.
   */
  readonly checkpoint: {
    readonly certificate: CheckpointCertificate;
    readonly leaves: readonly Digest[];
    readonly chunks: readonly (Uint8Array | null)[];
  } | null;
  /** Log records above the checkpoint, in the order they were written. */
  readonly records: readonly DurableRecord[];
}

export interface ReplicaOptions {
  readonly config: ProtocolConfig;
  readonly id: ReplicaId;
  readonly crypto: CoreCrypto;
  /**
   * Whether conflicting-checkpoint or lying-reply evidence proves its accused misbehaved now, by
   * the rules guardians apply (detection/evidence.ts verifyEvidence, above the core: the runtime
   * and the simulator hand it over). With equivocations, such proofs against more than f replicas
   * not rejuvenated since put the replica in safe mode.
   */
  readonly checkEvidence: ValidOtherEvidence;
  readonly service: Service;
  readonly restored?: RestoredState;
  /**
   * The replica lost its durable log (empty or wiped disk, or a rejuvenation that does not trust
   * it). It may have voted before and forgotten it, so it abstains from voting until it installs a
   * view newer than any it learns of after the restart; it still catches up and serves state.
   */
  readonly amnesiac?: boolean;
  /**
   * The replica's guardian holds a fork proof it verified when its replica entered safe mode: the
   * replica starts in safe mode on the guardian's word (trusted, as for its keys), even when the
   * proof no longer verifies with the keys known now. A proof stops verifying once its culprits'
   * key epochs have moved on, and without this a rejuvenation would be a way out of safe mode:
   * after one recovery period every replica would have been rejuvenated and run normally again.
   */
  readonly safeModeOrder?: ForensicProof;
  readonly testing?: TestingFaults;
}

type Status_ = 'normal' | 'view-change';

interface AcceptedProposal {
  readonly view: ViewNumber;
  readonly digest: Digest;
  readonly digestHex: string;
  readonly batch: readonly ClientRequest[];
  readonly keyEpoch: KeyEpoch;
  readonly signature: Signature;
}

interface VotedDigest {
  readonly view: ViewNumber;
  readonly digest: Digest;
  readonly digestHex: string;
}

interface Instance {
  readonly sequence: SequenceNumber;
  /** The proposal accepted last (in the current view, or an earlier one). */
  proposal: AcceptedProposal | null;
  /** PREPAREs of the current view, by sender. */
  readonly prepareVotes: Map<ReplicaId, Prepare>;
  /** Highest view in which this replica prepared. */
  prepared: VotedDigest | null;
  /** Q-set: every digest accepted at this sequence with the highest view it was accepted in. */
  readonly prePrepared: Map<string, VotedDigest>;
  /** Latest COMMIT of every replica, any view. */
  readonly commitVotes: Map<ReplicaId, Commit>;
  /**
   * Peers' COMMITs relayed in a COMMIT-CERTIFICATE, for replicas whose own COMMIT here had not
   * come yet (at most one per replica, unchecked): compared with the replica's COMMIT when it
   * comes (#onCommit), so that the order of arrival does not decide whether a double signer is
   * named. Null until a certificate brings one.
   */
  relayedCommits: Map<ReplicaId, SignedCommit> | null;
  /**
   * Senders whose COMMIT here came after the sequence was committed by votes, for that very
   * (view, batch): it decides nothing, so its signature is checked only if it is ever used as
   * proof or sent on (#commitHolds). Saves n − Q signature checks per batch.
   */
  uncheckedCommits: Set<ReplicaId> | null;
  /** DECIDED claims (catch-up), digest hex by sender: f + 1 matching decide the sequence. */
  readonly decidedVotes: Map<ReplicaId, Decided>;
  committed: VotedDigest | null;
  /**
   * The view of a quorum of COMMITs this replica counted itself for `committed` (null when it
   * learned the decision otherwise: DECIDED claims, its disk). Only then does it know that no
   * correct replica prepared another batch here in that view or later (#judgeViewChangeClaims).
   */
  committedByVotesInView: ViewNumber | null;
  /** Bodies known for this sequence, by digest hex. */
  readonly bodies: Map<string, readonly ClientRequest[]>;
  /** Digests whose body is already in a persisted pre-prepare record. */
  readonly durableBodies: Set<string>;
  executed: boolean;
  executedDigestHex: string | null;
  bodyRequestedAt: number | null;
  /** A proposal of the current view this replica could not judge, waiting for f + 1 PREPAREs. */
  unvouched: PrePrepare | null;
}

interface PendingRequest {
  readonly request: ClientRequest;
  readonly digest: Digest;
  readonly key: string;
  timerStartedAt: number;
  /** When it arrived (core time); unlike the timer, never restarted. */
  readonly receivedAt: number;
  proposedInView: number | null;
  /** Sent to the leader in a FORWARD (a retransmission, or it waits too long). */
  forwarded: boolean;
  /**
   * When it was last sent to everybody in a FORWARD (null: not yet): at half a request timeout,
   * then once per request timeout while it waits (a forward lost to a crash or a partition must
   * not leave the others unaware of who holds it).
   */
  spreadAt: number | null;
  /**
   * The other replicas known to hold this request too: at the leader, the backups' REQUEST-ACKs;
   * everywhere, the FORWARDs of the request (each holder sends one to everybody when the request
   * has waited half a request timeout), and the announcements of backups (#judgeBatchFill).
   */
  readonly acks: Set<ReplicaId>;
  /**
   * When this backup announced the request as left out in `view` (#judgeBatchFill), first and
   * last: forwarded it to the leader and told the other backups it holds it. Null: never.
   */
  announced: { readonly view: number; readonly firstAt: number; lastAt: number } | null;
  /**
   * The other backups' announcements of it in view `announcersView`: who, and when it came (null
   * until one comes: most requests never see one).
   */
  announcers: Map<ReplicaId, number> | null;
  announcersView: number;
  /** Whether its client signature verifies (null: not checked yet; checked once). */
  signatureVerified: boolean | null;
}

/** Acknowledgements (leader) or forwards (any replica) for a request not held here yet. */
interface Vouchers {
  readonly digestHex: string;
  readonly from: Set<ReplicaId>;
  /** The request itself, when a FORWARD brought it (MAC not valid here): held until f + 1 vouch. */
  request: ClientRequest | null;
}

interface OwnCheckpoint {
  readonly sequence: SequenceNumber;
  readonly root: Digest;
  readonly leaves: readonly Digest[];
  readonly chunks: readonly Uint8Array[];
  readonly vote: Checkpoint;
}

/**
 * Reply bytes one client may draw from one replica per second (execution replies, replies resent
 * from the cache, read-only replies), and at once after a pause. A few bytes of request can ask
 * for a megabyte of reply; beyond the budget replies are not sent (the client's retransmission
 * gets its turn once the budget refills). Four 1 MB values a second from each replica, at most two
 * at once: measured on real processes, a client reading a 1 MB value as fast as this lets it
 * (ordered or read-only, from every replica) raised an honest client's p99 by 1.8 to 2.8 times on
 * a two-core host; 8 MiB/s with a 16 MiB burst raised it by 3 to 3.5 times.
 */
export const REPLY_BYTES_PER_CLIENT_PER_SECOND = 4 * 1024 * 1024;
/** At least the largest reply, or a large result could never be sent. */
export const REPLY_BYTES_BURST_PER_CLIENT = 2 * 1024 * 1024;
/**
 * Read-only requests one client may have executed by one replica per second (each costs service
 * work), as a burst too. Below what the reply byte budget lets through for small replies
 * (REPLY_OVERHEAD_BYTES each), so that for them this is the budget that binds.
 */
export const READ_ONLY_REQUESTS_PER_CLIENT_PER_SECOND = 5_000;
/**
 * State (chunk) bytes one replica may draw from another per second, and at once: a transfer asks
 * for each chunk once per source; a replica asking again and again gets no more than this.
 */
export const STATE_BYTES_SERVED_PER_REPLICA_PER_SECOND = 64 * 1024 * 1024;
export const STATE_BYTES_SERVED_BURST_PER_REPLICA = 256 * 1024 * 1024;
/** Requests a leader remembers acknowledgements or forwards for before it holds them itself. */
const MAX_VOUCHED_REQUESTS = 65_536;
/**
 * A leader that drops requests of a client because too few backups hold them (as when a client
 * authenticates a request for the leader alone) logs it at most once per client per this long.
 */
/**
 * Suspicions no correct replica can earn, whatever the network, the clocks, the key epochs or the
 * other replicas do: the suspect contradicted itself on an authenticated channel (two votes for
 * two batches at one view and sequence). The simulator counts one against a correct replica as a
 * violation; other suspicions (a slow leader, a timeout) may fall on correct replicas by design.
 */
export const SELF_CONTRADICTION_SUSPICIONS = {
  commitAgainstPrepare: 'commit contradicts its own prepare',
  prepareAgainstCommit: 'prepare contradicts its own commit',
  commitAgainstProposal: 'commit contradicts its own proposal',
} as const;

/**
 * A peer's CHECKPOINT vote for a state root other than the one this replica computed by executing
 * the same batches up to that sequence. Execution is deterministic, so no correct replica earns it
 * from a correct one (the simulator counts one against a correct replica as a violation). A
 * suspicion, not evidence: a third party cannot tell which root is right without a certificate;
 * once Q votes certify the right one, the vote becomes `conflicting-checkpoint` evidence.
 */
export const CHECKPOINT_AGAINST_STATE_SUSPICION = 'checkpoint vote contradicts the executed batches';

/**
 * A VIEW-CHANGE that claims a batch prepared at a sequence where no correct replica can have
 * prepared it (#judgeViewChangeClaims). No correct replica earns it within f (the simulator counts
 * one against a correct replica as a violation); beyond f, the two sides of a fork may.
 */
export const VIEW_CHANGE_LIE_SUSPICION = 'view change claims a prepared batch no correct replica prepared';

/**
 * A replica's own message (a PRE-PREPARE, a CHECKPOINT) signed under a key epoch older than the
 * one it is known to hold now, that no longer verifies: its rejuvenation retired that epoch, and
 * the grace is over. A correct replica signs what it sends with its current keys, and the process
 * that held the retired ones was stopped before they were issued, a slot before the grace ended,
 * so what it sent is long delivered. The sender's channel is its current one, so the sender is
 * who misbehaves now: it kept keys it should not have (an intruder replaying them), not a thief
 * elsewhere. The simulator counts one against a correct replica as a violation where keys change
 * only with a new process (its network delays are far below a slot).
 */
export const RETIRED_EPOCH_SUSPICION = 'signed its own message under its retired key epoch';

/**
 * A peer is suspected of silence when nothing at all has come from it for SILENCE_STATUS_INTERVALS
 * status intervals, and at least SILENCE_REQUEST_TIMEOUTS request timeouts (a correct replica sends
 * a STATUS every interval), while this replica hears a quorum: isolated itself, it blames nobody.
 * The suspicion repeats at most once per that time; the guardians ignore it for a replica they
 * know is being rejuvenated.
 */
export const SILENCE_STATUS_INTERVALS = 10;
export const SILENCE_REQUEST_TIMEOUTS = 2;
export const SILENCE_SUSPICION = 'silent: nothing received for';

/**
 * How long a peer may stay silent, or a claim unproven, before it is suspected: SILENCE_STATUS_INTERVALS
 * status intervals, and at least SILENCE_REQUEST_TIMEOUTS request timeouts.
 */
export function silenceLimitMs(
  config: Pick<ProtocolConfig, 'statusIntervalMs' | 'requestTimeoutMs'>,
): number {
  return Math.max(
    SILENCE_STATUS_INTERVALS * config.statusIntervalMs,
    SILENCE_REQUEST_TIMEOUTS * config.requestTimeoutMs,
  );
}

/**
 * A peer whose STATUS claims a stable checkpoint above every certificate this replica verified is
 * suspected once the claim has stayed unproven as long as a silence would be suspected: a correct
 * replica that sees a peer behind its stable checkpoint sends it the certificate (#onStatus, at most
 * twice per status interval), so over that many intervals a correct one proves what it claims. The
 * 'inflated-status' intruder never does. Not while this replica is isolated (it hears less than a
 * quorum), and once per that time per peer.
 */
export const UNPROVEN_CHECKPOINT_SUSPICION = 'status claims a stable checkpoint it never proved';

export const UNACKNOWLEDGED_REQUEST_LOG_INTERVAL_MS = 10_000;
/** Conflicting-checkpoint proofs remembered as reported (one per replica, epoch and sequence). */
const MAX_CONFLICTS_REPORTED = 1024;
/**
 * A backup forgets a request that fewer than 2f + 1 replicas were ever known to hold after this
 * many request timeouts: no correct leader can order it, and it takes a place in its client's window.
 */
const UNHELD_REQUEST_EXPIRY_TIMEOUTS = 4;
/**
 * A state source dropped by one transfer is left out of the next ones for this many source
 * timeouts: a recovering replica often needs a few transfers in a row (the cluster moves on while
 * it catches up), and each one waiting out the same stalling source cost a timeout each (three
 * in one recovery, measured: 3 s of a T_D of 8 s).
 */
const DISTRUSTED_SOURCE_MEMORY_TIMEOUTS = 30;
/** Clients whose budgets are tracked at once (configured clients are far fewer). */
const MAX_BUDGETED_CLIENTS = 65_536;
/** What a reply adds to its result on the wire, about (ids, counters, a proof path of a few hashes). */
const REPLY_OVERHEAD_BYTES = 256;
assert(
  REPLY_BYTES_BURST_PER_CLIENT >= LIMITS.maxResultBytes + REPLY_OVERHEAD_BYTES,
  'the reply burst budget holds the largest reply',
);
assert(
  READ_ONLY_REQUESTS_PER_CLIENT_PER_SECOND * REPLY_OVERHEAD_BYTES <= REPLY_BYTES_BURST_PER_CLIENT,
  'small read-only replies are limited by the request budget, not the byte budget',
);

/** Q-set entries kept per sequence; the lowest views are forgotten first. */
const MAX_PRE_PREPARED_PER_SEQUENCE = 4;
/** Checkpoint votes kept per sender (the highest sequences): a Byzantine sender cannot bloat memory. */
const MAX_CHECKPOINT_VOTES_PER_SENDER = 4;
/** Batches resent to a lagging peer per STATUS. */
const CATCH_UP_BATCHES_PER_STATUS = 32;
/** Reply proofs remembered for retransmitted requests (oldest forgotten first). */
const MAX_REMEMBERED_REPLY_PROOFS = 16_384;
/**
 * How far ahead of a vote the durable vote bound is raised. Larger: fewer waits for a write;
 * smaller: a replica restarted mid-view abstains at fewer sequences it may have voted on.
 */
const VOTE_BOUND_STEP = 8;
/**
 * Every this many status intervals a replica checks that its stable certificate still verifies
 * under the keys accepted now (epochs expire with time). Each check is one signature check per
 * vote; between checks, a keys-changed event triggers one at once.
 */
const CERTIFICATE_CHECK_STATUS_INTERVALS = 4;
/** The view-change timeout doubles with every failed attempt, up to this factor. */
const MAX_VIEW_CHANGE_BACKOFF = 8;
/**
 * What a request adds to a batch or a FORWARD on the wire, at most: its operation, fixed fields
 * and one MAC per replica. Batches and forwards stay under maxBatchBytes by this measure.
 */
function encodedSizeBound(request: ClientRequest): number {
  return request.operation.length + 64 + 20 * request.authenticator.length;
}

/** Instances whose messages are retransmitted per retransmission period. */
const MAX_RETRANSMITTED_INSTANCES = 64;

const textEncoder = new TextEncoder();

function requestKey(client: ClientId, requestNumber: number): string {
  return `${client}\u0000${requestNumber}`;
}

/**
 * Whether `candidate` should replace `known`, a VIEW-CHANGE from the same replica for the same
 * view: a correct replica re-signs its view change when its key epoch changes or its stable
 * checkpoint (or that checkpoint's certificate) is refreshed, so the old one would stop
 * verifying before the view change ends. Fresher: a later view, a later signing epoch, a later
 * checkpoint, or the same checkpoint with votes under later epochs.
 */
function isFresherViewChange(candidate: ViewChange, known: ViewChange): boolean {
  if (candidate.newView !== known.newView) return candidate.newView > known.newView;
  if (candidate.keyEpoch !== known.keyEpoch) return candidate.keyEpoch > known.keyEpoch;
  if (candidate.checkpoint.sequence !== known.checkpoint.sequence)
    return candidate.checkpoint.sequence > known.checkpoint.sequence;
  return voteEpochSum(candidate.checkpoint) > voteEpochSum(known.checkpoint);
}

function sameCommitVote(a: Commit, b: Commit): boolean {
  return a.view === b.view && bytesEqual(a.batchDigest, b.batchDigest);
}

function voteEpochSum(certificate: CheckpointCertificate): number {
  let sum = 0;
  for (const vote of certificate.votes) sum += vote.keyEpoch;
  return sum;
}

export class Replica {
  readonly id: ReplicaId;
  readonly config: ProtocolConfig;
  readonly #crypto: CoreCrypto;
  readonly #service: Service;
  readonly #testing: TestingFaults;
  readonly #quorum: number;
  /** silenceLimitMs(config), for the silence and unproven-claim detectors. */
  readonly #silenceLimitMs: number;
  /**
   * Q − 1 + f: backups that, having forwarded a request to the leader, include Q − 1 correct ones,
   * whose forwards are all a correct leader waits for to propose it (#judgeBatchFill).
   */
  readonly #backupsForProposal: number;
  readonly #preparedThreshold: number;
  readonly #committedThreshold: number;
  readonly #committedByWitnessThreshold: number;
  readonly #clientTable: ClientTable;

  #out: Action[] = [];
  #now = 0;

  #view: ViewNumber;
  #status: Status_ = 'normal';
  #lastExecuted: SequenceNumber;
  #lastProgressAt = 0;
  #nextSequence: SequenceNumber;

  readonly #log = new Map<number, Instance>();
  readonly #pending = new Map<string, PendingRequest>();
  /** Requests others said they hold that this replica does not hold yet, by request key. */
  readonly #vouchers = new Map<string, Vouchers>();
  /** Leader: when it last logged dropping a client's request that too few backups held. */
  readonly #unacknowledgedLoggedAt = new Map<ClientId, number>();
  /** A guardian's view change waiting for the next stable checkpoint (see #planViewChange). */
  #plannedViewChange: { target: ViewNumber; reason: string; fromView: ViewNumber; deadline: number } | null =
    null;
  /** Since the last view was installed, until a batch proposed in it executes here (for the log). */
  #viewResumption: { after: number; reproposals: number; installedAt: number } | null = null;
  /** Unproposed pending requests per client, in arrival order: batches take from them in turn. */
  readonly #queues = new Map<ClientId, PendingRequest[]>();
  readonly #pendingPerClient = new Map<ClientId, number>();
  #batchCursor = 0;

  // checkpoints
  readonly #genesisRoot: Digest;
  #stable: StoredCheckpoint;
  readonly #retained: StoredCheckpoint[] = [];
  /**
   * What this replica reported once and not again, oldest first (#reportOnce): conflicting-checkpoint
   * proofs and checkpoint-against-state suspicions by (accused, key epoch, sequence), invalid-new-view
   * proofs and view-change lies by (sender, key epoch, view).
   */
  readonly #conflictsReported = new Set<string>();
  readonly #ownCheckpoints = new Map<number, OwnCheckpoint>();
  readonly #checkpointVotes = new Map<number, Map<ReplicaId, Checkpoint>>();
  #knownCertificate: CheckpointCertificate | null = null;
  readonly #verifiedCertificates = new Set<string>();
  readonly #leafCache = new WeakMap<Uint8Array, Digest>();
  readonly #requestDigests = new WeakMap<ClientRequest, Digest>();
  /** Proofs of recent replies, for retransmissions answered from the reply cache. Not replicated state. */
  readonly #replyProofs = new Map<string, ReplyProof>();
  #stateTransfer: StateTransfer | null = null;
  /** Sources earlier transfers dropped (see DISTRUSTED_SOURCE_MEMORY_TIMEOUTS), by when. */
  readonly #distrustedSources = new Map<ReplicaId, { readonly reason: string; readonly atMs: number }>();

  // view change
  readonly #viewChanges = new Map<ReplicaId, ViewChange>();
  readonly #validatedViewChanges = new WeakSet<ViewChange>();
  /** When the view change to the current view gathered a quorum of VIEW-CHANGEs (null: not yet). */
  #viewChangeQuorumAt: number | null = null;
  #viewChangeAttempts = 0;
  /** Sequence numbers at or below this were decided by the current view's checkpoint: no proposals. */
  #viewFloor = 0;
  /** lastExecuted that peers reported in STATUS, to tell whether this replica is behind. */
  readonly #peerExecuted = new Map<ReplicaId, number>();
  /** When the last message of each peer arrived (any kind; the silence detector reads it). */
  readonly #lastHeardAt = new Map<ReplicaId, number>();
  /** When the silence detector first looked: a peer never heard counts as silent from then. */
  #silenceWatchSince: number | null = null;
  /** When each peer was last suspected of silence (one suspicion per silence limit). */
  readonly #silenceSuspectedAt = new Map<ReplicaId, number>();
  /** Each peer's STATUS claim of a stable checkpoint above every certificate verified here, and since when. */
  readonly #unprovenClaims = new Map<ReplicaId, { stable: number; since: number }>();
  /** When each peer was last suspected of an unproven checkpoint claim. */
  readonly #unprovenClaimSuspectedAt = new Map<ReplicaId, number>();
  readonly #lastHelpedAt = new Map<ReplicaId, number>();
  #currentNewView: NewView | null = null;
  /** Decided re-proposals of the current view, by sequence: the leader must propose exactly these. */
  #expectedProposals = new Map<number, string>();
  /** Leader only: re-proposals still waiting for their body. */
  readonly #reproposalsAwaitingBody = new Map<number, Digest>();

  // amnesia
  /** Started without its disk and has not voted since. */
  #amnesiac: boolean;
  /**
   * The replica votes (pre-prepares, prepares, commits, view changes) only in views above this.
   * A restarted replica may have voted in its last view without the vote reaching its disk (only
   * view changes and prepared certificates are persisted before they are sent), so it sits that
   * view out; null: not known yet (an amnesiac replica that has not heard from a quorum).
   */
  #votingFloor: number | null;
  /** Intact chunks of a restored checkpoint that could not be installed, kept for a state transfer. */
  #restoredChunks: Map<string, Uint8Array> | null = null;
  /**
   * An amnesiac's STATUS reports since its restart, the latest per reporter, until its floor is
   * known. STATUS is unsigned: a claim counts only while it is vouched for (#fixVotingFloor).
   */
  readonly #statusesSinceRestart = new Map<ReplicaId, { view: number; stable: number }>();
  /** The highest checkpoint sequence of any certificate this replica has verified (or built). */
  #highestCertifiedSequence = 0;
  /**
   * Its CHECKPOINT vote for the state it holds must go out again under its current key epoch (the
   * registry learned new epochs, or a vote of its stable certificate stopped verifying). Sent at
   * most once per statusIntervalMs (#recertifyIfDue).
   */
  #recertificationDue = false;
  #lastRecertifiedAt = Number.NEGATIVE_INFINITY;
  /** When the stable certificate was last checked against the keys accepted now. */
  #lastCertificateCheckAt = Number.NEGATIVE_INFINITY;
  readonly #freshCertificateSharedAt = new Map<ReplicaId, number>();
  /**
   * An amnesiac's own stable checkpoint reaching this sequence also ends its amnesia: it prepared
   * nothing above (the highest stable checkpoint a quorum reported when it restarted) + the log
   * window, so every vote it may have forgotten is below its stable checkpoint, where view
   * changes no longer look. This needs no view change, so amnesiacs cannot pile up in one.
   */
  #amnesiaHorizon: number | null = null;
  /**
   * The sequence of a checkpoint this replica had on its disk at restart but could not install
   * (its chunks or its certificate did not verify). Its clients were answered from that state,
   * so it neither votes nor answers a read until its state reaches this sequence again (by the
   * retry below or by a state transfer): an empty or older state must never speak for it.
   */
  #restoredFloor = 0;
  /**
   * That checkpoint, when only its certificate failed (its chunks and root are intact): the keys
   * its votes were signed with may be unknown yet (a restart of the whole cluster, before the
   * replica has every guardian's certificates). Tried again on every 'keys-changed' event.
   */
  #unverifiedRestore: StoredCheckpoint | null = null;
  /**
   * Whether this replica may vote for #unverifiedRestore. Not when it came from an amnesiac start:
   * the disk was last written by a process that may have been compromised, and a rejuvenated
   * replica's fresh-key vote for a planted state, with f faulty votes, would make f + 1.
   */
  #unverifiedRestoreVotable = false;
  /**
   * Every PREPARE or PRE-PREPARE this replica sent in its current view is for a sequence at or
   * below this; the durable view record carries it (DurableRecord 'view'.voteBound).
   */
  #voteBound = 0;
  /**
   * After a restart in the middle of a view: sequences of that view up to the restored vote
   * bound that this replica may have voted on without a record reaching its disk. It votes on
   * them only for the proposal it recorded (the same vote again), never for another one.
   */
  #restartAbstention: {
    readonly view: ViewNumber;
    readonly upTo: number;
    readonly recorded: Set<number>;
  } | null = null;
  /** A leader restarted in its view, which it must sit out: it starts a view change at its first tick. */
  #abdicateAtFirstTick = false;
  /** The vote bound of the last view record replayed at restart (null: none, or an old record without one). */
  #replayedVoteBound: number | null = null;
  /** The last view record replayed at restart was an amnesiac one: the process before never voted. */
  #replayedAmnesiac = false;
  /** An amnesiac start persists an amnesiac view record at its first step (DurableRecord 'view'.amnesiac). */
  #amnesiaRecordDue = false;

  // budgets for work remote input asks for
  readonly #replyBudgets = new SenderBudgets<ClientId>({
    ratePerSecond: REPLY_BYTES_PER_CLIENT_PER_SECOND,
    burst: REPLY_BYTES_BURST_PER_CLIENT,
    maxSenders: MAX_BUDGETED_CLIENTS,
  });
  readonly #readOnlyBudgets = new SenderBudgets<ClientId>({
    ratePerSecond: READ_ONLY_REQUESTS_PER_CLIENT_PER_SECOND,
    burst: READ_ONLY_REQUESTS_PER_CLIENT_PER_SECOND,
    maxSenders: MAX_BUDGETED_CLIENTS,
  });
  readonly #stateServedBudgets = new SenderBudgets<ReplicaId>({
    ratePerSecond: STATE_BYTES_SERVED_PER_REPLICA_PER_SECOND,
    burst: STATE_BYTES_SERVED_BURST_PER_REPLICA,
    maxSenders: 64,
  });

  /** What this replica expects of its leader's turnaround, and what the leader achieved. */
  readonly #leaderPace: LeaderPace;
  // beyond f (docs/intrusion-tolerance.md, Beyond f: safe mode and forensics)
  readonly #forks: ForkMonitor;
  #safeMode: SafeMode | null = null;
  /** A forensic proof from proofs against more than f replicas, found during this step. */
  #provenBeyondF: ForensicProof | null = null;
  /**
   * The proof of a safe-mode record found on disk that does not verify (yet) with the keys known
   * now: tried again whenever keys change (after a whole-cluster restart the signers' epochs come
   * with the guardians' certificates). Under new keys (the operator's way out of safe mode) it
   * never verifies, and the replica runs normally.
   */
  #storedForkProof: ForensicProof | null = null;
  /** The root this replica signed for each recent checkpoint sequence: it never signs another. */
  readonly #signedRoots = new Map<number, string>();
  #lastHistoryAt = Number.NEGATIVE_INFINITY;
  readonly #historyReceivedAt = new Map<ReplicaId, number>();
  readonly #forkProofSentAt = new Map<ReplicaId, number>();
  /** Relayed evidence checked per peer in the current status interval: (interval start, count). */
  readonly #relayedEvidenceChecked = new Map<ReplicaId, { since: number; count: number }>();

  /**
   * Replicas proven faulty, with the key epoch the proof was made under
   * (docs/intrusion-tolerance.md, "A proven replica is cut off at once"): their messages are
   * dropped unread, except signed checkpoint statements and fork evidence (#readFromCutOff), until
   * their key epoch is above the proof's, that is until their guardian rejuvenated them. They still count against f: quorums
   * are not resized, so Q now comes from the others.
   */
  readonly #cutOff = new Map<ReplicaId, { keyEpoch: KeyEpoch; reason: string; dropped: number }>();

  // periodic work
  #lastRetransmitAt = 0;
  #lastStatusAt = 0;
  readonly #emptyBatchDigest: Digest;

  constructor(options: ReplicaOptions) {
    const problems = protocolConfigProblems(options.config);
    assert(problems.length === 0, `invalid protocol configuration: ${problems.join('; ')}`);
    assert(
      options.id >= 0 && options.id < options.config.n,
      `replica id ${options.id} outside 0..${options.config.n - 1}`,
    );
    this.id = options.id;
    this.config = options.config;
    this.#crypto = options.crypto;
    this.#service = options.service;
    this.#testing = options.testing ?? {};
    this.#quorum = quorumSize(options.config);
    this.#silenceLimitMs = silenceLimitMs(options.config);
    this.#backupsForProposal = this.#quorum - 1 + options.config.f;
    assert(
      this.#backupsForProposal <= options.config.n - 1,
      'Q − 1 + f backups must exist for the batch-fill check',
    );
    const broken = this.#testing.brokenQuorum === true;
    this.#preparedThreshold = broken ? options.config.f : this.#quorum - 1;
    this.#committedThreshold = broken ? options.config.f + 1 : this.#quorum;
    this.#committedByWitnessThreshold = correctWitnessSize(options.config);
    this.#clientTable = new ClientTable(
      options.config.clientTableChunks,
      options.config.maxOutstandingPerClient,
    );
    this.#emptyBatchDigest = this.#crypto.hash(batchContent([]));
    this.#amnesiac = options.amnesiac === true;
    this.#votingFloor = this.#amnesiac ? null : -1;
    this.#amnesiaRecordDue = this.#amnesiac;
    this.#leaderPace = new LeaderPace({
      floorMs: options.config.leaderTurnaroundFloorMs,
      ceilingMs: Math.max(options.config.leaderTurnaroundFloorMs, options.config.requestTimeoutMs),
      historyViews: options.config.f + 1,
      pipelineDepth: options.config.pipelineDepth,
    });
    this.#forks = new ForkMonitor(
      options.config,
      (certificate) => this.#validVoters(certificate),
      (evidence) => this.#validEquivocation(evidence),
      options.checkEvidence,
    );

    const genesis = this.#snapshotState();
    this.#genesisRoot = genesis.root;
    this.#stable = {
      certificate: { sequence: sequenceNumber(0), stateRoot: genesis.root, votes: [] },
      leaves: genesis.leaves,
      chunks: genesis.chunks,
    };
    this.#retained.push(this.#stable);
    this.#view = viewNumber(0);
    this.#lastExecuted = sequenceNumber(0);
    this.#nextSequence = sequenceNumber(1);
    if (options.restored !== undefined) this.#restore(options.restored);
    if (options.safeModeOrder !== undefined) this.#enterSafeMode(options.safeModeOrder, 'guardian');
  }

  // ───────────────────────────── observation (read-only) ─────────────────────────────

  get view(): ViewNumber {
    return this.#view;
  }
  get lastExecuted(): SequenceNumber {
    return this.#lastExecuted;
  }
  get stableCheckpoint(): CheckpointCertificate {
    return this.#stable.certificate;
  }
  get viewChangeInProgress(): boolean {
    return this.#status === 'view-change';
  }
  get stateTransferInProgress(): boolean {
    return this.#stateTransfer !== null;
  }
  get isLeader(): boolean {
    return this.#leaderOf(this.#view) === this.id;
  }
  get amnesiac(): boolean {
    return this.#amnesiac;
  }
  /** The current leader's measured turnaround against this replica's expectation of it. */
  get leaderPace(): LeaderPaceReport {
    return this.#leaderPace.report;
  }

  get pendingRequestCount(): number {
    return this.#pending.size;
  }
  /** How long (core time, ms) the oldest request still waiting here has waited; null when none waits. */
  get oldestPendingAgeMs(): number | null {
    let oldest: number | null = null;
    for (const pending of this.#pending.values())
      if (oldest === null || pending.receivedAt < oldest) oldest = pending.receivedAt;
    return oldest === null ? null : this.#now - oldest;
  }
  /**
   * Whether it knows the views it must sit out (an amnesiac learns them from a quorum's STATUS):
   * only then can a view change bring it back to voting, so a guardian nudges after this.
   */
  get votingFloorKnown(): boolean {
    return this.#votingFloor !== null;
  }
  /**
   * The view a rejoin view change must go above for this replica to vote again: its own view, or
   * the voting floor of an amnesiac that has not installed a view above its floor. The two differ
   * when the NEW-VIEW of the others' view no longer verifies here (the checkpoint certificates in
   * its VIEW-CHANGEs hold votes under epochs retired since it was sent): the replica stays in an
   * older view, and a request above that view is one the others, already past it, take as settled.
   */
  get rejoinAboveView(): ViewNumber {
    const floor = this.#votingFloor;
    return floor !== null && floor > this.#view ? viewNumber(floor) : this.#view;
  }
  /** Whether it votes (false while it sits out views after a restart or rejuvenation). */
  get voting(): boolean {
    return this.#canVote();
  }
  /**
   * Its state is behind the checkpoint it had on disk when it restarted (waiting for the keys to
   * verify it, or for a state transfer): it must not vote or answer until that is over.
   */
  get restoredStatePending(): boolean {
    return this.#stable.certificate.sequence < this.#restoredFloor;
  }
  /** Safe mode (null: not in it): the fork proof, and the certified state reads are answered from. */
  get safeMode(): SafeMode | null {
    return this.#safeMode;
  }
  /** The replicas cut off now (proven faulty, not rejuvenated since), with why and how many messages were dropped. */
  get cutOff(): ReadonlyMap<
    ReplicaId,
    { readonly keyEpoch: KeyEpoch; readonly reason: string; readonly dropped: number }
  > {
    // A read, not a step: entries whose culprit has a later epoch are left out here and removed
    // (with their log line) at the next event that looks.
    return new Map(
      [...this.#cutOff].filter(([replica, entry]) => {
        const current = this.#crypto.replicaEpoch(replica);
        return current === undefined || current <= entry.keyEpoch;
      }),
    );
  }
  /** The (f+1)-th highest lastExecuted peers reported: at least one correct replica got that far. */
  get peersExecuted(): number {
    const reports = [...this.#peerExecuted.values()].sort((a, b) => b - a);
    return reports[correctWitnessSize(this.config) - 1] ?? 0;
  }

  // ───────────────────────────── entry point ─────────────────────────────

  /** Also returns what the constructor produced (a restart's replay), on the first call. */
  step(event: ReplicaEvent): Action[] {
    if (this.#amnesiaRecordDue) {
      // Before anything else: an amnesiac never votes, so this is durable before any vote of a
      // later view record supersedes it, and a restart in between comes back amnesiac.
      this.#amnesiaRecordDue = false;
      this.#persist({ kind: 'view', view: this.#view, viewChangeInProgress: false, amnesiac: true });
    }
    if (this.#safeMode !== null) return this.#stepInSafeMode(event);
    switch (event.kind) {
      case 'tick':
        assert(event.now >= this.#now, 'time went backwards');
        this.#now = event.now;
        this.#onTick();
        break;
      case 'client-request':
        this.#onClientRequest(event.request);
        break;
      case 'message':
        this.#onMessage(event.from, event.message);
        break;
      case 'keys-changed':
        // Verdicts cached under the old keys may no longer hold (an epoch expired or was retired).
        this.#verifiedCertificates.clear();
        this.#retryUnverifiedRestore();
        this.#recertificationDue = true;
        this.#checkStableCertificate();
        this.#recertifyIfDue();
        for (const replica of [...this.#cutOff.keys()]) this.#isCutOff(replica);
        this.#reenterStoredSafeMode();
        break;
      case 'cut-off':
        this.#cutOffReplica(event.replica, event.keyEpoch, event.reason);
        if (event.proof !== undefined) this.#countProven(event.proof);
        break;
      case 'safe-mode-order':
        this.#enterSafeMode(event.proof, 'guardian');
        break;
      case 'change-view':
        if (event.aboveView !== undefined && this.#view > event.aboveView) {
          this.#log_('info', 'view-change-request-settled', { view: this.#view, aboveView: event.aboveView });
        } else if (this.#status === 'normal') {
          const avoid = new Set<number>(event.avoidLeaders ?? []);
          let target = this.#view + 1;
          while (avoid.has(this.#leaderOf(target)) && target < this.#view + this.config.n) target++;
          if (avoid.has(this.#leaderOf(target))) target = this.#view + 1;
          this.#planViewChange(viewNumber(target), event.reason);
        }
        break;
    }
    if (this.#provenBeyondF !== null && this.#safeMode === null) {
      // Entered here, after the event's handling, not in the middle of it (a checkpoint
      // certificate being installed, say): safe mode rolls the state back.
      this.#enterSafeMode(this.#provenBeyondF, 'more than f replicas proven faulty');
    }
    this.#provenBeyondF = null;
    const actions = this.#out;
    this.#out = [];
    return actions;
  }

  // ───────────────────────────── small helpers ─────────────────────────────

  #leaderOf(view: number): ReplicaId {
    return replicaId(view % this.config.n);
  }

  #log_(level: LogLevel, event: string, details: LogDetails = {}): void {
    this.#out.push({ kind: 'log', level, event, details });
  }

  #reject(from: ReplicaId | ClientId, what: string, reason: string): void {
    this.#log_('warn', 'rejected-input', { from: String(from), what, reason });
  }

  #send(to: ReplicaId, message: ReplicaMessage): void {
    if (to === this.id) return;
    this.#out.push({ kind: 'send', to, message });
  }

  #broadcast(message: ReplicaMessage): void {
    this.#out.push({ kind: 'broadcast', message });
  }

  #persist(record: DurableRecord): void {
    this.#out.push({ kind: 'persist', record });
  }

  /**
   * After `from`'s own message failed its signature check: suspects it when the message names an
   * epoch older than its current one (RETIRED_EPOCH_SUSPICION). Says whether it did.
   */
  #suspectRetiredEpoch(from: ReplicaId, keyEpoch: KeyEpoch): boolean {
    const current = this.#crypto.replicaEpoch(from);
    if (current === undefined || keyEpoch >= current) return false;
    this.#suspect(from, `${RETIRED_EPOCH_SUSPICION} ${keyEpoch} (current ${current})`);
    return true;
  }

  #suspect(replica: ReplicaId, reason: string): void {
    if (replica === this.id) return;
    this.#out.push({ kind: 'suspect', replica, reason });
  }

  /**
   * An amnesiac also sends no VIEW-CHANGE until it has installed a view above its floor: its
   * P-set is gone, and an empty one would hide batches it helped to commit.
   */
  #canVote(): boolean {
    return (
      !this.#amnesiac &&
      this.#votingFloor !== null &&
      this.#view > this.#votingFloor &&
      this.#stable.certificate.sequence >= this.#restoredFloor
    );
  }

  /**
   * Whether it may vote (PREPARE, or propose as leader) at `sequence` of the current view: after a
   * restart it abstains at the sequences it may have voted on and forgotten (#restartAbstention).
   */
  #mayVoteAt(view: ViewNumber, sequence: SequenceNumber): boolean {
    const abstention = this.#restartAbstention;
    if (abstention === null || view !== abstention.view || sequence > abstention.upTo) return true;
    return abstention.recorded.has(sequence);
  }

  /**
   * Raises the durable vote bound before a vote above it leaves (the persist precedes the send in
   * the action list, and view records are made durable before later sends). One record covers
   * the next VOTE_BOUND_STEP sequences, so one vote in that many waits for the write.
   */
  #noteVote(sequence: SequenceNumber): void {
    if (sequence <= this.#voteBound || this.#status !== 'normal') return;
    this.#voteBound = sequence + VOTE_BOUND_STEP;
    this.#persist({
      kind: 'view',
      view: this.#view,
      viewChangeInProgress: false,
      voteBound: sequenceNumber(this.#voteBound),
    });
  }

  #requestDigest(request: ClientRequest): Digest {
    let digest = this.#requestDigests.get(request);
    if (digest === undefined) {
      digest = this.#crypto.hash(requestContent(request));
      this.#requestDigests.set(request, digest);
    }
    return digest;
  }

  #batchDigest(batch: readonly ClientRequest[]): Digest {
    if (batch.length === 0) return this.#emptyBatchDigest;
    return this.#crypto.hash(batchContent(batch.map((request) => this.#requestDigest(request))));
  }

  #instance(sequence: number): Instance {
    let instance = this.#log.get(sequence);
    if (instance === undefined) {
      instance = {
        sequence: sequenceNumber(sequence),
        proposal: null,
        prepareVotes: new Map(),
        prepared: null,
        prePrepared: new Map(),
        commitVotes: new Map(),
        relayedCommits: null,
        uncheckedCommits: null,
        decidedVotes: new Map(),
        committed: null,
        committedByVotesInView: null,
        bodies: new Map(),
        durableBodies: new Set(),
        executed: sequence <= this.#lastExecuted,
        executedDigestHex: null,
        bodyRequestedAt: null,
        unvouched: null,
      };
      this.#log.set(sequence, instance);
    }
    return instance;
  }

  #inWindow(sequence: number): boolean {
    const low = this.#stable.certificate.sequence;
    return sequence > low && sequence <= low + this.config.logWindow;
  }

  #leafDigest(chunk: Uint8Array): Digest {
    let digest = this.#leafCache.get(chunk);
    if (digest === undefined) {
      digest = leafDigest(this.#crypto.hash, chunk);
      this.#leafCache.set(chunk, digest);
    }
    return digest;
  }

  #snapshotState(): { root: Digest; leaves: Digest[]; chunks: Uint8Array[] } {
    const chunks = [...this.#clientTable.chunks(), ...this.#service.snapshot()];
    for (const chunk of chunks) {
      assert(
        chunk.length <= LIMITS.maxChunkBytes,
        `state chunk of ${chunk.length} bytes exceeds maxChunkBytes`,
      );
    }
    assert(
      chunks.length <= LIMITS.maxManifestLeaves,
      `state has ${chunks.length} chunks, over maxManifestLeaves`,
    );
    const leaves = chunks.map((chunk) => this.#leafDigest(chunk));
    return { root: merkleRoot(this.#crypto.hash, leaves), leaves, chunks };
  }

  // ───────────────────────────── restart ─────────────────────────────

  #restore(restored: RestoredState): void {
    this.#view = restored.view;
    this.#status = restored.viewChangeInProgress ? 'view-change' : 'normal';
    const checkpoint = restored.checkpoint;
    if (checkpoint !== null && checkpoint.certificate.sequence > 0) {
      assert(
        checkpoint.chunks.length === checkpoint.leaves.length,
        `restored checkpoint has ${checkpoint.chunks.length} chunks for ${checkpoint.leaves.length} leaves`,
      );
      // The engine checked every chunk it returns against its leaf while reading it (null when it
      // did not match), so hashing the state again here would only repeat that work: at 100 MB it
      // is a few hundred ms of CPU taken from the replicas serving clients during a recovery.
      // The cache lets later checkpoints and transfers use these leaves without hashing either.
      checkpoint.chunks.forEach((chunk, index) => {
        if (chunk !== null) this.#leafCache.set(chunk, checkpoint.leaves[index]!);
      });
      const stateIntact =
        checkpoint.chunks.every((chunk) => chunk !== null) &&
        bytesEqual(merkleRoot(this.#crypto.hash, checkpoint.leaves), checkpoint.certificate.stateRoot);
      const certified = this.#verifyCertificate(checkpoint.certificate);
      if (stateIntact && certified) {
        this.#installState(
          {
            certificate: checkpoint.certificate,
            leaves: checkpoint.leaves,
            chunks: checkpoint.chunks as Uint8Array[],
          },
          false,
        );
      } else {
        this.#restoredFloor = checkpoint.certificate.sequence;
        const pool = new Map<string, Uint8Array>();
        checkpoint.chunks.forEach((chunk, index) => {
          if (chunk !== null) pool.set(toHex(checkpoint.leaves[index]!), chunk);
        });
        // Keep the intact chunks for whichever certified checkpoint the replica transfers to next.
        this.#restoredChunks = pool;
        if (stateIntact) {
          // Only the certificate fails: its signers' key epochs may not be known yet (after a
          // restart of the whole cluster they arrive with the guardians' certificates), or they
          // are retired. Not corruption: try again as keys arrive; a transfer may come first.
          this.#unverifiedRestore = {
            certificate: checkpoint.certificate,
            leaves: checkpoint.leaves,
            chunks: checkpoint.chunks as Uint8Array[],
          };
          // Its own vote for the state it holds (leaves and root check out) goes out at the first
          // tick: with Q votes that verify now it can adopt the state (#onCertificate).
          this.#recertificationDue = true;
          this.#log_('warn', 'restored-checkpoint-unverified', {
            sequence: checkpoint.certificate.sequence,
            detail:
              'its certificate does not verify with the keys known now; waiting for keys or a state transfer',
          });
        } else {
          // Start from what verifies; the state transfer fetches only what is missing or corrupt.
          this.#log_('warn', 'restored-checkpoint-corrupt', { sequence: checkpoint.certificate.sequence });
          if (certified) this.#startStateTransfer(checkpoint.certificate, pool);
        }
      }
    }
    const low = restored.checkpoint?.certificate.sequence ?? 0;
    for (const record of restored.records) this.#replayRecord(record, low);
    if (!this.#amnesiac && this.#replayedAmnesiac) {
      // Its previous process was rejuvenated and stopped before its amnesia ended: the votes of the
      // process before that are still forgotten, whoever started this one.
      this.#amnesiac = true;
      this.#votingFloor = null;
      this.#log_('warn', 'restarted-amnesiac', {
        view: this.#view,
        detail: 'the log is that of a rejuvenated process that had not voted yet',
      });
    }
    if (!this.#amnesiac) this.#setRestartVotingFloor();
    this.#unverifiedRestoreVotable = !this.#amnesiac;
    this.#reconstructOwnVotes();
    if (this.#status === 'view-change' && this.#canVote()) {
      // The VIEW-CHANGE sent before the crash may never have arrived: rebuild it to retransmit.
      const message = this.#buildViewChange(this.#view);
      this.#viewChanges.set(this.id, message);
      this.#validatedViewChanges.add(message);
    }
    this.#executeReady();
    this.#log_('info', 'restarted', {
      view: this.#view,
      lastExecuted: this.#lastExecuted,
      stable: this.#stable.certificate.sequence,
      records: restored.records.length,
    });
    this.#reenterStoredSafeMode();
  }

  /**
   * A replica that entered safe mode before it stopped enters it again from its stored proof,
   * checked again with the keys known now: a crash must not be a way out of safe mode (an intruder
   * could otherwise crash it back into executing writes). A proof that does not verify now is kept
   * and tried again at every key change.
   */
  #reenterStoredSafeMode(): void {
    const stored = this.#storedForkProof;
    if (stored === null || this.#safeMode !== null) return;
    const proof = this.#forks.observeProof(stored);
    if (proof === null) {
      this.#log_('warn', 'stored-safe-mode-unverified', {
        culprits: stored.culprits.join(','),
        detail:
          'the stored proof of a fork does not verify with the keys known now; tried again when keys change (under new keys it never will)',
      });
      return;
    }
    this.#storedForkProof = null;
    this.#enterSafeMode(proof, 'stored proof');
  }

  /**
   * Which views a replica restarted with its disk sits out. In view-change status it never voted
   * in its view (it had not installed it). In a normal view it may have sent PREPAREs whose
   * proposal record never reached the disk, but only at sequences up to its durable vote bound:
   * a backup votes again at once, abstaining only at those sequences unless it recorded the
   * proposal (so it can only repeat a vote). A leader sits its view out: its proposals are
   * persisted lazily too, and it cannot fill a sequence it may have proposed and forgotten.
   * Without a recorded bound (an older log) the whole view is sat out.
   */
  #setRestartVotingFloor(): void {
    if (this.#status === 'view-change') {
      this.#votingFloor = this.#view - 1;
      return;
    }
    const bound = this.#replayedVoteBound;
    if (bound === null || this.#leaderOf(this.#view) === this.id) {
      this.#votingFloor = this.#view;
      // A leader that cannot lead its view asks for the next one at once rather than leave the
      // others to time out on it (it blames nobody: it knows why).
      if (this.#leaderOf(this.#view) === this.id) this.#abdicateAtFirstTick = true;
      return;
    }
    const recorded = new Set<number>();
    for (const instance of this.#log.values())
      if (instance.proposal !== null && instance.proposal.view === this.#view)
        recorded.add(instance.sequence);
    this.#votingFloor = this.#view - 1;
    this.#voteBound = bound;
    this.#restartAbstention = { view: this.#view, upTo: bound, recorded };
    this.#log_('info', 'restart-votes-again', {
      view: this.#view,
      abstainsUpTo: bound,
      recorded: recorded.size,
    });
  }

  /** The PREPARE and COMMIT this replica sent in the current view before it stopped, for retransmission. */
  #reconstructOwnVotes(): void {
    const leader = this.#leaderOf(this.#view);
    for (const instance of this.#log.values()) {
      const proposal = instance.proposal;
      if (proposal !== null && proposal.view === this.#view && leader !== this.id) {
        instance.prepareVotes.set(this.id, {
          kind: 'prepare',
          view: proposal.view,
          sequence: instance.sequence,
          batchDigest: proposal.digest,
          replicaId: this.id,
          proposalKeyEpoch: proposal.keyEpoch,
          proposalSignature: proposal.signature,
        });
      }
      const prepared = instance.prepared;
      if (prepared !== null)
        instance.commitVotes.set(
          this.id,
          this.#signedCommit(prepared.view, instance.sequence, prepared.digest),
        );
    }
  }

  /**
   * Replay keeps records above the restored certificate even when its chunks are corrupt and the
   * state is not installed yet: forgetting them would make a leader propose twice for a sequence.
   */
  #inReplayWindow(low: number, sequence: number): boolean {
    return sequence > low && sequence <= low + this.config.logWindow;
  }

  #replayRecord(record: DurableRecord, low: number): void {
    switch (record.kind) {
      case 'view':
        this.#view = record.view;
        this.#status = record.viewChangeInProgress ? 'view-change' : 'normal';
        this.#replayedVoteBound = record.voteBound ?? null;
        this.#replayedAmnesiac = record.amnesiac === true;
        return;
      case 'pre-prepare': {
        const message = record.message;
        if (!this.#inReplayWindow(low, message.sequence)) return;
        const instance = this.#instance(message.sequence);
        const digest = message.batchDigest;
        const accepted: AcceptedProposal = {
          view: message.view,
          digest,
          digestHex: toHex(digest),
          batch: message.batch,
          keyEpoch: message.keyEpoch,
          signature: message.signature,
        };
        this.#recordAcceptedProposal(instance, accepted);
        instance.durableBodies.add(accepted.digestHex);
        if (message.sequence >= this.#nextSequence) this.#nextSequence = sequenceNumber(message.sequence + 1);
        return;
      }
      case 'prepared': {
        if (!this.#inReplayWindow(low, record.sequence)) return;
        const instance = this.#instance(record.sequence);
        const prepared = {
          view: record.view,
          digest: record.batchDigest,
          digestHex: toHex(record.batchDigest),
        };
        if (instance.prepared === null || record.view >= instance.prepared.view) instance.prepared = prepared;
        // Prepared implies accepted: the Q-set entry survives even if the pre-prepare record did not.
        const known = instance.prePrepared.get(prepared.digestHex);
        if (known === undefined || prepared.view > known.view)
          instance.prePrepared.set(prepared.digestHex, prepared);
        return;
      }
      case 'committed': {
        if (!this.#inReplayWindow(low, record.sequence)) return;
        const instance = this.#instance(record.sequence);
        const digestHex = toHex(record.batchDigest);
        instance.committed = { view: record.view, digest: record.batchDigest, digestHex };
        if (record.batch !== null) instance.bodies.set(digestHex, record.batch);
        return;
      }
      case 'safe-mode':
        // Judged once the whole log is replayed (#reenterStoredSafeMode): the stable state it
        // rolls back to is installed by then.
        this.#storedForkProof = record.proof;
        return;
    }
  }

  // ───────────────────────────── client requests ─────────────────────────────

  #onClientRequest(request: ClientRequest): void {
    if (request.authenticator.length !== this.config.n) {
      this.#reject(
        request.clientId,
        'request',
        `authenticator has ${request.authenticator.length} entries, n is ${this.config.n}`,
      );
      return;
    }
    if (request.readOnly) {
      this.#executeReadOnly(request);
      return;
    }
    const status = this.#clientTable.status(request.clientId, request.requestNumber);
    if (status.kind === 'executed') {
      // An evicted result's error reply was never signed: the proof remembered for the request is
      // for the result, and attached to the error it would make a correct client report a lie.
      this.#sendReply(request, status.reply, false, !status.resultEvicted);
      return;
    }
    if (status.kind === 'expired') {
      // The reply left the cache (the client ran more than its window ahead); say so rather than stay silent.
      const result = textEncoder.encode(
        'request number is older than the reply cache; the outcome is unknown',
      );
      this.#sendReply(request, { sequence: this.#lastExecuted, status: 'error', result }, false);
      return;
    }
    const key = requestKey(request.clientId, request.requestNumber);
    const existing = this.#pending.get(key);
    if (existing !== undefined) {
      // A retransmission: the client has not seen enough replies. Say again that this replica
      // holds it (an announcement may have been lost), and help a stuck leader get it.
      if (!this.isLeader) {
        this.#announceHeld([existing]);
        if (!existing.forwarded && this.#status === 'normal') this.#forwardToLeader([existing]);
      }
      return;
    }
    // It came on the client's own authenticated channel: authentic, whatever its MACs say.
    this.#holdRequest(request, this.#requestDigest(request));
  }

  /**
   * Holds an authentic request (received from its client, or vouched for by f + 1 replicas) as
   * pending. Clients send every ordered request to every replica: a backup tells the leader it
   * holds it (REQUEST-ACK), and the leader proposes it only once Q − 1 backups do
   * (#nextProposable). A backup blames the leader for it only once 2f + 1 replicas are known to
   * hold it (#checkRequestTimers).
   */
  #holdRequest(request: ClientRequest, digest: Digest): void {
    const key = requestKey(request.clientId, request.requestNumber);
    if (!this.#addPending(request, digest)) return;
    const pending = this.#pending.get(key)!;
    const vouched = this.#vouchers.get(key);
    if (vouched !== undefined) {
      this.#vouchers.delete(key);
      if (vouched.digestHex === toHex(digest)) for (const from of vouched.from) pending.acks.add(from);
    }
    if (this.isLeader) {
      this.#tryPropose();
      return;
    }
    this.#announceHeld([pending]);
    this.#rejudgeHeldProposals();
  }

  /** The replica `from` holds these requests (whatever the view: holding does not depend on it). */
  #onRequestAcknowledgement(from: ReplicaId, message: RequestAcknowledgement): void {
    for (const entry of message.requests) {
      const key = requestKey(entry.clientId, entry.requestNumber);
      const pending = this.#pending.get(key);
      if (pending !== undefined) {
        if (!bytesEqual(pending.digest, entry.requestDigest)) continue;
        pending.acks.add(from);
        if (message.view === this.#view && !this.isLeader && from !== this.#leaderOf(this.#view)) {
          // Not the leader's acknowledgement: another backup's announcement (#judgeBatchFill).
          if (pending.announcers === null || pending.announcersView !== this.#view) {
            pending.announcers = new Map();
            pending.announcersView = this.#view;
          }
          if (!pending.announcers.has(from)) pending.announcers.set(from, this.#now);
        }
        continue;
      }
      if (this.#clientTable.status(entry.clientId, entry.requestNumber).kind !== 'new') continue;
      this.#voucherFor(key, toHex(entry.requestDigest))?.from.add(from);
    }
    this.#tryPropose();
  }

  /** How many replicas, this one included, are known to hold a pending request. */
  #holders(pending: PendingRequest): number {
    return pending.acks.size + 1;
  }

  /** Whether a request's client signature verifies, checked once per pending request. */
  #clientSignatureVerifies(pending: PendingRequest): boolean {
    pending.signatureVerified ??= this.#crypto.verifyRequestSignature(pending.request, pending.digest);
    return pending.signatureVerified;
  }

  /** The voucher record of a request not held here (null when its digest conflicts with another's). */
  #voucherFor(key: string, digestHex: string): Vouchers | null {
    let vouchers = this.#vouchers.get(key);
    if (vouchers === undefined) {
      if (this.#vouchers.size >= MAX_VOUCHED_REQUESTS)
        this.#vouchers.delete(this.#vouchers.keys().next().value!);
      vouchers = { digestHex, from: new Set(), request: null };
      this.#vouchers.set(key, vouchers);
    }
    // Two digests for one request number: a faulty client or replica; the first one stays.
    return vouchers.digestHex === digestHex ? vouchers : null;
  }

  /** Proposals held back for requests this replica could not authenticate: try them again. */
  #rejudgeHeldProposals(): void {
    for (const instance of this.#log.values()) {
      const held = instance.unvouched;
      if (held === null || held.view !== this.#view || this.#status !== 'normal') continue;
      if (this.#judgeBatchRequests(this.#leaderOf(held.view), held.batch) !== 'valid') continue;
      instance.unvouched = null;
      this.#acceptProposal(instance, held);
    }
  }

  /**
   * Sends requests to the current leader in as many FORWARD messages as the count and byte
   * limits need (a request may carry a 1 MiB operation), and marks them forwarded.
   */
  #forwardToLeader(pendings: readonly PendingRequest[]): void {
    const leader = this.#leaderOf(this.#view);
    assert(leader !== this.id, 'a leader forwards requests to itself');
    this.#forward(pendings, (message) => this.#send(leader, message));
  }

  /**
   * Tells the leader this backup holds these requests (it counts them before it proposes), in as
   * many messages as the limit needs. Nothing while a view change is under way: installing the
   * new view announces everything still held to its leader.
   */
  #announceHeld(pendings: readonly PendingRequest[]): void {
    const leader = this.#leaderOf(this.#view);
    if (leader === this.id || this.#status !== 'normal') return;
    for (let start = 0; start < pendings.length; start += LIMITS.maxAcknowledgedRequests) {
      this.#send(leader, {
        kind: 'request-ack',
        view: this.#view,
        requests: pendings.slice(start, start + LIMITS.maxAcknowledgedRequests).map((pending) => ({
          clientId: pending.request.clientId,
          requestNumber: pending.request.requestNumber,
          requestDigest: pending.digest,
        })),
      });
    }
  }

  #forward(pendings: readonly PendingRequest[], deliver: (message: ForwardedRequests) => void): void {
    let requests: ClientRequest[] = [];
    let bytes = 0;
    for (const pending of pendings) {
      pending.forwarded = true;
      const size = encodedSizeBound(pending.request);
      if (
        requests.length > 0 &&
        (requests.length >= LIMITS.maxForwardedRequests || bytes + size > this.config.maxBatchBytes)
      ) {
        deliver({ kind: 'forward', requests });
        requests = [];
        bytes = 0;
      }
      requests.push(pending.request);
      bytes += size;
    }
    if (requests.length > 0) deliver({ kind: 'forward', requests });
  }

  #addPending(request: ClientRequest, digest: Digest): boolean {
    const key = requestKey(request.clientId, request.requestNumber);
    if (this.#pending.has(key)) return false;
    let queue = this.#queues.get(request.clientId);
    const perClient = this.#pendingPerClient.get(request.clientId) ?? 0;
    if (
      this.#pending.size >= this.config.maxPendingRequests ||
      perClient >= this.config.maxOutstandingPerClient
    ) {
      this.#reject(request.clientId, 'request', 'pending request queue full');
      return false;
    }
    const pending: PendingRequest = {
      request,
      digest,
      key,
      timerStartedAt: this.#now,
      receivedAt: this.#now,
      proposedInView: null,
      forwarded: false,
      spreadAt: null,
      acks: new Set(),
      announced: null,
      announcers: null,
      announcersView: -1,
      signatureVerified: null,
    };
    this.#pending.set(key, pending);
    this.#pendingPerClient.set(request.clientId, perClient + 1);
    if (queue === undefined) {
      queue = [];
      this.#queues.set(request.clientId, queue);
    }
    queue.push(pending);
    return true;
  }

  #removePending(pending: PendingRequest): void {
    if (this.#pending.get(pending.key) !== pending) return;
    this.#pending.delete(pending.key);
    const client = pending.request.clientId;
    const remaining = (this.#pendingPerClient.get(client) ?? 1) - 1;
    if (remaining <= 0) this.#pendingPerClient.delete(client);
    else this.#pendingPerClient.set(client, remaining);
  }

  #executeReadOnly(request: ClientRequest): void {
    // Behind its own durable past, its state would answer reads it once answered differently.
    if (this.#stateTransfer !== null || this.restoredStatePending) return;
    if (!this.#withinBudget(this.#readOnlyBudgets, request.clientId, 1, 'read-only requests per second'))
      return;
    // Its reply could not be sent anyway: do not spend the work of executing it.
    if (this.#replyBudgets.exhausted(request.clientId, this.#now)) return;
    this.#sendReply(request, this.#readOnlyResult(request, this.#lastExecuted), true);
  }

  /** A read-only request executed on the current state, as of `sequence`; a service failure is an error result. */
  #readOnlyResult(request: ClientRequest, sequence: SequenceNumber): CachedReply {
    try {
      const result = this.#service.executeReadOnly(request.operation, {
        clientId: request.clientId,
        requestNumber: request.requestNumber,
        sequence,
      });
      return { sequence, status: 'ok', result };
    } catch (error) {
      const message = `service failed: ${error instanceof Error ? error.message : 'unknown'}`;
      return { sequence, status: 'error', result: textEncoder.encode(message) };
    }
  }

  #sendReply(request: ClientRequest, cached: CachedReply, readOnly: boolean, withProof = true): void {
    if (!this.#replyWithinBudget(request.clientId, cached.result.length)) return;
    this.#out.push({
      kind: 'reply',
      to: request.clientId,
      reply: this.#buildReply(request, cached, readOnly, withProof),
    });
  }

  #replyWithinBudget(client: ClientId, resultBytes: number): boolean {
    return this.#withinBudget(
      this.#replyBudgets,
      client,
      resultBytes + REPLY_OVERHEAD_BYTES,
      'reply bytes per second',
    );
  }

  /**
   * Spends from a sender's budget; a refusal is logged once per episode (the first after a
   * grant), so a flood costs one line, not one per request.
   */
  #withinBudget<Sender extends ClientId | ReplicaId>(
    budgets: SenderBudgets<Sender>,
    sender: Sender,
    units: number,
    what: string,
  ): boolean {
    const verdict = budgets.take(sender, units, this.#now);
    if (verdict === 'refused-first')
      this.#log_('warn', 'budget-exceeded', { from: String(sender), budget: what });
    return verdict === 'granted';
  }

  #buildReply(request: ClientRequest, cached: CachedReply, readOnly: boolean, withProof = true): Reply {
    const proof =
      readOnly || !withProof
        ? undefined
        : this.#replyProofs.get(requestKey(request.clientId, request.requestNumber));
    return {
      kind: 'reply',
      view: this.#view,
      replicaId: this.id,
      clientId: request.clientId,
      requestNumber: request.requestNumber,
      readOnly,
      sequence: cached.sequence,
      status: cached.status,
      result: cached.result,
      proof: proof ?? null,
    };
  }

  /**
   * One signature makes every reply of the batch transferable: the replica signs the Merkle root
   * over the replies' contents, and each reply carries its path. A client can then prove a lie.
   */
  #sendBatchReplies(
    sequence: SequenceNumber,
    replies: readonly { request: ClientRequest; cached: CachedReply }[],
  ): void {
    if (replies.length === 0) return;
    const built = replies.map(({ request, cached }) => this.#buildReply(request, cached, false));
    const leaves = built.map((reply) => this.#crypto.hash(replyContent(reply)));
    const tree = merkleTree(this.#crypto.hash, leaves);
    const signed = this.#crypto.sign(replyBatchPayload(sequence, tree.root));
    built.forEach((reply, index) => {
      const proof: ReplyProof = {
        keyEpoch: signed.keyEpoch,
        signature: signed.signature,
        leafIndex: index,
        leafCount: leaves.length,
        path: tree.proof(index),
      };
      const key = requestKey(reply.clientId, reply.requestNumber);
      this.#replyProofs.delete(key);
      this.#replyProofs.set(key, proof);
      // Not sent beyond the client's budget; the proof is kept for its retransmission.
      if (this.#replyWithinBudget(reply.clientId, reply.result.length))
        this.#out.push({ kind: 'reply', to: reply.clientId, reply: { ...reply, proof } });
    });
    while (this.#replyProofs.size > MAX_REMEMBERED_REPLY_PROOFS) {
      this.#replyProofs.delete(this.#replyProofs.keys().next().value!);
    }
  }

  // ───────────────────────────── proposing (leader) ─────────────────────────────

  #tryPropose(): void {
    if (!this.isLeader || this.#status !== 'normal' || !this.#canVote() || this.#stateTransfer !== null)
      return;
    if (this.#reproposalsAwaitingBody.size > 0) return;
    const low = this.#stable.certificate.sequence;
    while (
      this.#nextSequence - 1 - this.#lastExecuted < this.config.pipelineDepth &&
      this.#nextSequence <= low + this.config.logWindow
    ) {
      const batch = this.#takeBatch();
      if (batch.length === 0) return;
      const sequence = this.#nextSequence;
      this.#nextSequence = sequenceNumber(sequence + 1);
      this.#propose(sequence, batch, this.#batchDigest(batch));
    }
  }

  /**
   * Up to the batch limits, one request per client in turn, and no client more than its fair share
   * (#fairShare): a client that floods the leader with requests cannot crowd out the others, nor
   * make every batch longer to order and execute by filling it with its own.
   */
  #takeBatch(): ClientRequest[] {
    const batch: ClientRequest[] = [];
    let bytes = 0;
    const clients = [...this.#queues.keys()];
    if (clients.length === 0) return batch;
    const share = this.#fairShare();
    const taken = new Map<ClientId, number>();
    const start = this.#batchCursor++ % clients.length;
    let progress = true;
    while (progress && batch.length < this.config.maxBatchRequests) {
      progress = false;
      for (let offset = 0; offset < clients.length && batch.length < this.config.maxBatchRequests; offset++) {
        const client = clients[(start + offset) % clients.length]!;
        const queue = this.#queues.get(client);
        if (queue === undefined) continue;
        const alreadyTaken = taken.get(client) ?? 0;
        if (alreadyTaken >= share) continue;
        const index = this.#nextProposable(queue);
        if (index === undefined) {
          this.#queues.delete(client);
          continue;
        }
        if (index === 'wait') continue;
        const next = queue[index]!;
        const size = encodedSizeBound(next.request);
        if (batch.length > 0 && bytes + size > this.config.maxBatchBytes) return batch;
        queue.splice(index, 1);
        if (queue.length === 0) this.#queues.delete(client);
        next.proposedInView = this.#view;
        batch.push(next.request);
        taken.set(client, alreadyTaken + 1);
        bytes += size;
        progress = true;
      }
    }
    return batch;
  }

  /**
   * Most requests one client may put in the next batch: the (lower) median number of requests the
   * clients with queued requests have waiting, and at least one. Clients that all send alike are
   * never held back (with one client, or all pipelining equally, the share is what each has); one
   * client with many requests among clients with one each (the usual closed loop) gets one per
   * batch like the others, so it cannot take most of every batch, as a flooding client did
   * (`phalanx bench attack`, client-flood: throughput of the others 0.70 of fault-free with no
   * share, 0.79 with twice the median). Its requests still go in every batch, in order: it is
   * slowed to a fair share, never starved.
   */
  #fairShare(): number {
    const waiting = [...this.#queues.values()].map((queue) => queue.length).sort((a, b) => a - b);
    if (waiting.length === 0) return 1;
    // The lower median: with two clients, one flooding, the other's count decides.
    const median = waiting[(waiting.length - 1) >> 1]!;
    return Math.max(1, median);
  }

  /**
   * Where in a client's queue the first request that can be proposed now is; 'wait' while the
   * ones it may propose lack the backups' acknowledgements; undefined when the queue is spent
   * (requests proposed, executed or refused leave it on the way). A request that waits for
   * acknowledgements holds back the client's later ones for the batch-fill grace at most (they
   * usually come a moment later, and the client's order is kept), then no longer: requests a
   * client has outstanding together are concurrent, so any order is theirs, and a faulty client
   * that gave its first request to too few replicas could otherwise keep its next ones, which
   * every backup holds, out of the batches, and make a correct leader look as if it left them out
   * (#judgeBatchFill).
   */
  #nextProposable(queue: PendingRequest[]): number | 'wait' | undefined {
    let waiting = false;
    for (let index = 0; index < queue.length;) {
      const entry = queue[index]!;
      if (this.#pending.get(entry.key) === entry && entry.proposedInView !== this.#view) {
        // Q − 1 backups hold it: at least Q − 1 − f correct ones prepare it, which with the
        // leader vouch for it to every correct backup that does not hold it (#acceptIfVouched).
        if (this.#holders(entry) < this.#quorum) {
          const stuck =
            this.#leaderPace.enabled && this.#now - entry.receivedAt >= this.#leaderPace.leftOutGraceMs;
          if (!stuck) return 'wait';
          waiting = true;
          index++;
          continue;
        }
        if (!this.config.requireClientSignatures || this.#clientSignatureVerifies(entry)) return index;
        this.#removePending(entry);
        this.#reject(entry.request.clientId, 'request', 'client signature does not verify');
      }
      queue.splice(index, 1);
    }
    return waiting ? 'wait' : undefined;
  }

  #propose(sequence: SequenceNumber, batch: readonly ClientRequest[], digest: Digest): void {
    const earlier = this.#log.get(sequence)?.proposal;
    assert(
      earlier == null || earlier.view !== this.#view || bytesEqual(earlier.digest, digest),
      `leader would propose two batches for view ${this.#view} sequence ${sequence}`,
    );
    this.#noteVote(sequence);
    const signed = this.#crypto.sign(proposalPayload(this.#view, sequence, digest));
    const message: PrePrepare = {
      kind: 'pre-prepare',
      view: this.#view,
      sequence,
      batchDigest: digest,
      batch,
      keyEpoch: signed.keyEpoch,
      signature: signed.signature,
    };
    const instance = this.#instance(sequence);
    for (const request of batch) {
      // Re-proposals after a view change carry pending requests too: never batch them twice.
      const pending = this.#pending.get(requestKey(request.clientId, request.requestNumber));
      if (pending !== undefined) pending.proposedInView = this.#view;
    }
    this.#recordAcceptedProposal(instance, {
      view: this.#view,
      digest,
      digestHex: toHex(digest),
      batch,
      keyEpoch: signed.keyEpoch,
      signature: signed.signature,
    });
    this.#persist({ kind: 'pre-prepare', message });
    instance.durableBodies.add(toHex(digest));
    this.#broadcast(message);
    this.#checkPrepared(instance);
  }

  #recordAcceptedProposal(instance: Instance, proposal: AcceptedProposal): void {
    instance.proposal = proposal;
    instance.bodies.set(proposal.digestHex, proposal.batch);
    const known = instance.prePrepared.get(proposal.digestHex);
    if (known === undefined || proposal.view > known.view) {
      instance.prePrepared.set(proposal.digestHex, {
        view: proposal.view,
        digest: proposal.digest,
        digestHex: proposal.digestHex,
      });
    }
    while (instance.prePrepared.size > MAX_PRE_PREPARED_PER_SEQUENCE) {
      let lowest: VotedDigest | null = null;
      for (const entry of instance.prePrepared.values())
        if (lowest === null || entry.view < lowest.view) lowest = entry;
      instance.prePrepared.delete(lowest!.digestHex);
    }
  }

  // ───────────────────────────── message dispatch ─────────────────────────────

  #onMessage(from: ReplicaId, message: ReplicaMessage): void {
    if (from === this.id || from >= this.config.n) {
      this.#reject(from, message.kind, 'sender is not another replica of this configuration');
      return;
    }
    if ('replicaId' in message && message.kind !== 'new-view' && message.replicaId !== from) {
      this.#reject(from, message.kind, `claims to be from replica ${message.replicaId}`);
      return;
    }
    this.#lastHeardAt.set(from, this.#now);
    if (this.#cutOff.size > 0 && this.#isCutOff(from) && !this.#readFromCutOff(from, message)) return;
    switch (message.kind) {
      case 'pre-prepare':
        this.#onPrePrepare(from, message);
        break;
      case 'prepare':
        this.#onPrepare(from, message);
        break;
      case 'commit':
        this.#onCommit(from, message);
        break;
      case 'checkpoint':
        this.#onCheckpoint(from, message);
        break;
      case 'view-change':
        this.#onViewChange(from, message);
        break;
      case 'new-view':
        this.#onNewView(from, message);
        break;
      case 'forward':
        this.#onForward(from, message);
        break;
      case 'request-ack':
        this.#onRequestAcknowledgement(from, message);
        break;
      case 'status':
        this.#onStatus(from, message);
        break;
      case 'decided':
        this.#onDecided(from, message);
        break;
      case 'batch-request':
        this.#onBatchRequest(from, message);
        break;
      case 'batch':
        this.#onBatch(from, message);
        break;
      case 'checkpoint-proof':
        this.#onCheckpointProof(from, message);
        break;
      case 'manifest-request':
        this.#onManifestRequest(from, message);
        break;
      case 'manifest':
        this.#stateTransfer?.onManifest(from, message, this.#now);
        break;
      case 'chunk-request':
        this.#onChunkRequest(from, message);
        break;
      case 'chunk':
        this.#stateTransfer?.onChunk(from, message, this.#now);
        this.#finishStateTransferIfComplete();
        break;
      case 'state-unavailable':
        this.#onStateUnavailable(from, message);
        break;
      case 'certificate-history':
        this.#onCertificateHistory(from, message);
        break;
      case 'fork-proof':
        this.#onForkProof(from, message.proof);
        break;
      case 'evidence-report':
        this.#onRelayedEvidence(from, message.evidence);
        break;
      case 'commit-certificate':
        this.#onCommitCertificate(from, message);
        break;
    }
  }

  // ───────────────────────────── proven replicas ─────────────────────────────

  /**
   * Cuts `replica` off for a proof made under its epoch `keyEpoch`, unless it was rejuvenated
   * since (its epoch is above it) or it is this replica (whose keys a thief may hold: its guardian
   * rejuvenates it). A cut-off leader is replaced at once: its proposals would be dropped anyway.
   */
  #cutOffReplica(replica: ReplicaId, keyEpoch: KeyEpoch, reason: string): void {
    if (replica === this.id || replica >= this.config.n) return;
    const current = this.#crypto.replicaEpoch(replica);
    if (current !== undefined && current > keyEpoch) return;
    const existing = this.#cutOff.get(replica);
    if (existing !== undefined && existing.keyEpoch >= keyEpoch) return;
    this.#cutOff.set(replica, { keyEpoch, reason, dropped: existing?.dropped ?? 0 });
    this.#log_('error', 'replica-cut-off', { replica, keyEpoch, reason });
    this.#stateTransfer?.distrust(replica, `cut off: ${reason}`);
    if (this.#status === 'normal' && this.#leaderOf(this.#view) === replica)
      this.#startViewChange(viewNumber(this.#view + 1), `leader cut off (${reason})`, replica);
  }

  /** Whether `replica` is cut off now; lifts the cut-off once its key epoch rose above the proof's. */
  #isCutOff(replica: ReplicaId): boolean {
    const entry = this.#cutOff.get(replica);
    if (entry === undefined) return false;
    const current = this.#crypto.replicaEpoch(replica);
    if (current === undefined || current <= entry.keyEpoch) return true;
    this.#cutOff.delete(replica);
    this.#log_('info', 'replica-cut-off-lifted', { replica, keyEpoch: current, dropped: entry.dropped });
    return false;
  }

  /**
   * What of a cut-off replica's messages is still read: what is signed and checked on its own
   * merits. A fork proof and a certificate history prove what they prove whatever their sender;
   * a checkpoint vote (or CHECKPOINT-PROOF) is a signed statement about a state, and beyond f it is
   * what exposes a fork: colluders cut off for an equivocation that still sign one root to one
   * side and another root to the other must get both sides' checkpoints certified, so that the
   * certificate histories meet and name them (the simulator's --colluding run stalled unnoticed,
   * forked, when their votes were dropped). Nothing else is counted.
   */
  #readFromCutOff(from: ReplicaId, message: ReplicaMessage): boolean {
    switch (message.kind) {
      case 'fork-proof':
      case 'certificate-history':
      case 'evidence-report':
      case 'commit-certificate':
      case 'checkpoint':
      case 'checkpoint-proof':
        return true;
      default:
        this.#cutOff.get(from)!.dropped++;
        return false;
    }
  }

  // ───────────────────────────── normal case ─────────────────────────────

  #onPrePrepare(from: ReplicaId, message: PrePrepare): void {
    if (message.view !== this.#view || this.#status !== 'normal') return;
    if (from !== this.#leaderOf(message.view)) {
      this.#reject(from, 'pre-prepare', 'sender is not the leader of the view');
      return;
    }
    if (!this.#inWindow(message.sequence) || message.sequence <= this.#viewFloor) return;
    const instance = this.#instance(message.sequence);
    const existing = instance.proposal;
    if (
      existing !== null &&
      existing.view === message.view &&
      bytesEqual(existing.digest, message.batchDigest)
    )
      return;
    const digest = this.#batchDigest(message.batch);
    if (!bytesEqual(digest, message.batchDigest)) {
      this.#reject(from, 'pre-prepare', 'batch digest does not match the batch');
      this.#suspect(from, 'proposed a batch whose digest does not match');
      return;
    }
    const payload = proposalPayload(message.view, message.sequence, message.batchDigest);
    if (!this.#crypto.verifyReplicaSignature(from, message.keyEpoch, payload, message.signature, 'message')) {
      this.#reject(from, 'pre-prepare', 'leader signature does not verify (or uses a retired key epoch)');
      if (!this.#suspectRetiredEpoch(from, message.keyEpoch))
        this.#suspect(from, 'proposal with an invalid signature');
      return;
    }
    if (existing !== null && existing.view === message.view) {
      this.#reportEquivocation(from, existing, {
        view: message.view,
        sequence: message.sequence,
        batchDigest: message.batchDigest,
        keyEpoch: message.keyEpoch,
        signature: message.signature,
      });
      return;
    }
    const expected = this.#expectedProposals.get(message.sequence);
    if (expected !== undefined && expected !== toHex(digest)) {
      this.#reject(from, 'pre-prepare', 'differs from the batch the new-view decision chose');
      this.#suspect(from, 're-proposal contradicts the new-view decision');
      return;
    }
    const decided = instance.committed?.digestHex ?? instance.executedDigestHex;
    if (expected === undefined && decided != null && decided !== toHex(digest)) {
      // A quorum committed another batch here, so every view change carries it (or a checkpoint
      // above it) and a correct leader re-proposes exactly it. With no new-view decision to
      // check against (this replica restarted after installing the view, or the leader proposes
      // outside it), the conflict is the leader's word alone: its fault, not a broken quorum.
      this.#reject(from, 'pre-prepare', 'differs from the batch decided at that sequence');
      this.#suspect(from, 'proposed another batch for a decided sequence');
      return;
    }
    const verdict = expected === undefined ? this.#judgeBatchRequests(from, message.batch) : 'valid';
    if (verdict === 'invalid') return;
    if (verdict === 'unverifiable') {
      // A client MACed a request for this replica's retired key: f + 1 PREPAREs for the batch
      // include a correct replica that verified it, so those vouch for it instead.
      instance.unvouched = message;
      this.#log_('debug', 'proposal-awaits-vouchers', { view: message.view, sequence: message.sequence });
      this.#acceptIfVouched(instance);
      return;
    }
    instance.unvouched = null;
    if (expected === undefined) this.#judgeLeaderPace(from, message);
    if (message.view !== this.#view || this.#status !== 'normal') return;
    this.#acceptProposal(instance, message);
  }

  /**
   * Measures the turnaround of a new proposal (leader-pace.ts) and replaces a leader whose median
   * turnaround exceeds what recent views achieved: a leader that delays every proposal to just
   * under the request timeout would otherwise cut throughput many times over and never be caught.
   * Not while this replica is behind or fetching state: its own lag, not the leader, would show.
   */
  #judgeLeaderPace(leader: ReplicaId, message: PrePrepare): void {
    if (!this.#leaderPace.enabled || this.#stateTransfer !== null || this.#behindPeers()) return;
    let heldSince = 0;
    for (const request of message.batch) {
      const pending = this.#pending.get(requestKey(request.clientId, request.requestNumber));
      if (pending === undefined) {
        heldSince = -1;
        break;
      }
      heldSince = Math.max(heldSince, pending.receivedAt);
    }
    const verdict = this.#leaderPace.observe(message.sequence, heldSince < 0 ? null : heldSince, this.#now);
    if (verdict.kind !== 'too-slow') {
      this.#judgeBatchFill(leader, message);
      return;
    }
    this.#leaderPace.blamed();
    this.#startViewChange(
      viewNumber(this.#view + 1),
      `leader turnaround: median ${verdict.medianMs} ms over its last ${verdict.samples} proposals, expected at most ${verdict.expectationMs} ms`,
      leader,
    );
  }

  /**
   * Counts the clients a new proposal left out although it had room (leader-pace.ts, batch fill)
   * and replaces a leader whose median count over its last proposals reaches the limit (a
   * suspicion: the count rests on the backups' word and on timing, nothing a third party could
   * check).
   *
   * A request the leader could have put in this batch (it was here a grace before the leader
   * could propose this sequence) and did not, nor in one in flight, is announced: forwarded to the
   * leader (which may have lost it, or this backup's acknowledgement) and acknowledged to the other
   * backups, once per view and again every retransmission interval while it stays out. A correct
   * leader rarely leaves any out, so these n² messages cost only under the attack they reveal.
   * Its client counts as left out once this backup and Q − 1 + f − 1 others announced it in this
   * view, a grace before the leader could propose: Q − 1 correct backups among them had forwarded
   * it to the leader by then, all a correct leader waits for.
   */
  #judgeBatchFill(leader: ReplicaId, message: PrePrepare): void {
    if (message.view !== this.#view || this.#status !== 'normal' || leader === this.id) return;
    const openedAt = this.#leaderPace.openedAt(message.sequence);
    if (openedAt === null) return;
    // The proposals in flight before it must be here: what they hold is not left out.
    for (
      let earlier = message.sequence - 1;
      earlier > message.sequence - this.config.pipelineDepth;
      earlier--
    ) {
      if (earlier <= this.#lastExecuted) break;
      const instance = this.#log.get(sequenceNumber(earlier));
      if (instance?.proposal == null || instance.proposal.view !== this.#view) return;
    }
    const graceMs = this.#leaderPace.leftOutGraceMs;
    const inBatch = new Set<string>();
    const clientsInBatch = new Set<ClientId>();
    let bytes = 0;
    for (const request of message.batch) {
      inBatch.add(requestKey(request.clientId, request.requestNumber));
      clientsInBatch.add(request.clientId);
      bytes += encodedSizeBound(request);
    }
    const countsFill = message.batch.length < this.config.maxBatchRequests;
    const leftOut = new Set<ClientId>();
    let stoppedForBytes = false;
    const toAnnounce: PendingRequest[] = [];
    const considered = new Set<ClientId>();
    for (const pending of this.#pending.values()) {
      // Insertion order is arrival order: nothing further on was here before the leader could propose.
      if (pending.receivedAt > openedAt) break;
      if (pending.proposedInView === this.#view || inBatch.has(pending.key)) continue;
      // Only a client's oldest request not proposed yet, of a client with none in this batch: a
      // leader owes each client a place per batch, not all it sent (#fairShare), and announcing a
      // flooding client's whole window would cost n² messages for what is no fault.
      const client = pending.request.clientId;
      if (clientsInBatch.has(client) || considered.has(client)) continue;
      considered.add(client);
      const announced = pending.announced?.view === this.#view ? pending.announced : null;
      if (
        announced === null
          ? pending.receivedAt + graceMs / 2 <= openedAt
          : this.#now - announced.lastAt >= this.config.retransmitIntervalMs
      )
        toAnnounce.push(pending);
      if (!countsFill) continue;
      if (announced === null || announced.firstAt + graceMs > openedAt) continue;
      if (pending.announcers === null || pending.announcersView !== this.#view) continue;
      let announcers = 1;
      for (const at of pending.announcers.values()) if (at + graceMs <= openedAt) announcers++;
      if (announcers < this.#backupsForProposal) continue;
      if (this.config.requireClientSignatures && !this.#clientSignatureVerifies(pending)) continue;
      // A correct leader stops at the first request that does not fit (#takeBatch): any left
      // out after it may have been behind it.
      if (bytes + encodedSizeBound(pending.request) > this.config.maxBatchBytes) stoppedForBytes = true;
      leftOut.add(client);
    }
    if (toAnnounce.length > 0) {
      for (const pending of toAnnounce) {
        if (pending.announced?.view === this.#view) pending.announced.lastAt = this.#now;
        else pending.announced = { view: this.#view, firstAt: this.#now, lastAt: this.#now };
      }
      // The leader may lack the request itself (its client's frame to it was lost), and a
      // forward counts as this backup's acknowledgement too (one may have been lost).
      this.#forwardToLeader(toAnnounce);
      for (let start = 0; start < toAnnounce.length; start += LIMITS.maxAcknowledgedRequests) {
        const announcement: RequestAcknowledgement = {
          kind: 'request-ack',
          view: this.#view,
          requests: toAnnounce.slice(start, start + LIMITS.maxAcknowledgedRequests).map((pending) => ({
            clientId: pending.request.clientId,
            requestNumber: pending.request.requestNumber,
            requestDigest: pending.digest,
          })),
        };
        for (let peer = 0; peer < this.config.n; peer++)
          if (peer !== this.id && peer !== leader) this.#send(replicaId(peer), announcement);
      }
    }
    if (!countsFill) return;
    const verdict = this.#leaderPace.observeFill(stoppedForBytes ? 0 : leftOut.size);
    if (verdict.kind !== 'leaves-out') return;
    this.#leaderPace.blamedForFill();
    this.#startViewChange(
      viewNumber(this.#view + 1),
      `leader left requests out: a median of ${verdict.medianClients} clients over its last ${verdict.samples} batches with room, at most ${verdict.limit - 1} expected`,
      leader,
    );
  }

  /** Accepts a held-back proposal once f + 1 other replicas prepared exactly it in this view. */
  #acceptIfVouched(instance: Instance): void {
    const held = instance.unvouched;
    if (held === null) return;
    if (held.view !== this.#view || this.#status !== 'normal') {
      instance.unvouched = null;
      return;
    }
    // The leader that proposed it vouches too: with f of the PREPAREs, f + 1 distinct replicas.
    let vouchers = 1;
    for (const [sender, vote] of instance.prepareVotes)
      if (sender !== this.id && vote.view === held.view && bytesEqual(vote.batchDigest, held.batchDigest))
        vouchers++;
    if (vouchers < correctWitnessSize(this.config)) return;
    instance.unvouched = null;
    this.#acceptProposal(instance, held);
  }

  /**
   * Every request must be authentic (MAC or signature) and ordered-mode; else the leader is at
   * fault. 'unverifiable': some request is MACed only for a key epoch of this replica that is
   * already retired, so this replica cannot tell, and blames nobody.
   */
  #judgeBatchRequests(
    from: ReplicaId,
    batch: readonly ClientRequest[],
  ): 'valid' | 'invalid' | 'unverifiable' {
    let verdict: 'valid' | 'unverifiable' = 'valid';
    for (const request of batch) {
      if (request.readOnly || request.authenticator.length !== this.config.n) {
        this.#reject(from, 'pre-prepare', 'batch holds a read-only or malformed request');
        this.#suspect(from, 'proposed a malformed request');
        return 'invalid';
      }
      const digest = this.#requestDigest(request);
      const pending = this.#pending.get(requestKey(request.clientId, request.requestNumber));
      if (pending !== undefined && bytesEqual(pending.digest, digest)) continue;
      if (this.#crypto.verifyRequest(request, digest)) continue;
      if (this.config.requireClientSignatures && !this.#crypto.verifyRequestSignature(request, digest)) {
        // The leader must check signatures before it proposes: this one is its fault.
        this.#reject(
          from,
          'pre-prepare',
          `request ${request.clientId}#${request.requestNumber} is not signed`,
        );
        this.#suspect(from, 'proposed a request without a valid client signature');
        return 'invalid';
      }
      // Its MAC for this replica does not verify (or was made for a retired key epoch), and it did
      // not come here directly: the client may have authenticated it for the leader alone, so this
      // proves nothing against the leader. f + 1 replicas that prepare it vouch for it instead.
      verdict = 'unverifiable';
    }
    return verdict;
  }

  #acceptProposal(instance: Instance, message: PrePrepare): void {
    const digestHex = toHex(message.batchDigest);
    const decided = instance.committed?.digestHex ?? instance.executedDigestHex;
    if (decided != null && decided !== digestHex) {
      // Only more than f faulty replicas can make a quorum re-decide a sequence: never follow it.
      this.#log_('error', 'safety-alarm', {
        sequence: instance.sequence,
        view: message.view,
        detail: 'a view re-proposes a different batch for a decided sequence',
      });
      return;
    }
    this.#recordAcceptedProposal(instance, {
      view: message.view,
      digest: message.batchDigest,
      digestHex,
      batch: message.batch,
      keyEpoch: message.keyEpoch,
      signature: message.signature,
    });
    for (const request of message.batch) {
      const pending = this.#pending.get(requestKey(request.clientId, request.requestNumber));
      if (pending !== undefined) pending.proposedInView = message.view;
    }
    this.#prepareAccepted(instance, message, digestHex);
    this.#judgeEarlierVotes(instance);
  }

  /** Votes for a proposal just accepted: persisted, then its PREPARE sent (when it may vote). */
  #prepareAccepted(instance: Instance, message: PrePrepare, digestHex: string): void {
    if (!this.#canVote() || !this.#mayVoteAt(message.view, message.sequence)) return;
    this.#noteVote(message.sequence);
    this.#persist({ kind: 'pre-prepare', message });
    instance.durableBodies.add(digestHex);
    const prepare: Prepare = {
      kind: 'prepare',
      view: message.view,
      sequence: message.sequence,
      batchDigest: message.batchDigest,
      replicaId: this.id,
      proposalKeyEpoch: message.keyEpoch,
      proposalSignature: message.signature,
    };
    instance.prepareVotes.set(this.id, prepare);
    this.#broadcast(prepare);
    this.#checkPrepared(instance);
  }

  #reportEquivocation(
    leader: ReplicaId,
    existing: AcceptedProposal,
    other: {
      view: ViewNumber;
      sequence: SequenceNumber;
      batchDigest: Digest;
      keyEpoch: KeyEpoch;
      signature: Signature;
    },
  ): void {
    const first = {
      view: existing.view,
      sequence: other.sequence,
      batchDigest: existing.digest,
      keyEpoch: existing.keyEpoch,
      signature: existing.signature,
    };
    const evidence: EquivocationEvidence = { kind: 'equivocation', accused: leader, first, second: other };
    this.#out.push({ kind: 'evidence', evidence });
    this.#broadcast({ kind: 'evidence-report', evidence });
    this.#log_('error', 'equivocation-detected', { leader, view: other.view, sequence: other.sequence });
    // One more proven replica: with f others proven (double-signed checkpoints, equivocations),
    // more than f misbehaved (core/forensics.ts).
    if (this.#testing.brokenForkDetection !== true) {
      const seen = this.#forks.observeEvidence(evidence);
      if (seen.kind === 'fork') {
        this.#enterSafeMode(seen.proof, 'own detection');
        return;
      }
    }
    if (this.#status === 'normal' && other.view === this.#view) {
      this.#startViewChange(viewNumber(this.#view + 1), 'leader equivocated', this.#leaderOf(this.#view));
    }
    // Not cut off here: the guardian verifies this evidence and answers with a `cut-off` event
    // (milliseconds later), as for every proof. Cutting off at once on its own detection changed
    // the simulator's beyond-f runs (--colluding 2, no guardians): 6 of 40 seeds forked unnoticed,
    // because their detection relied on the colluders' own cores broadcasting a fork proof, which
    // real colluders would not do (docs/intrusion-tolerance.md, Limitations).
  }

  #onPrepare(from: ReplicaId, message: Prepare): void {
    if (message.view !== this.#view || this.#status !== 'normal' || !this.#inWindow(message.sequence)) return;
    const leader = this.#leaderOf(message.view);
    if (from === leader) {
      this.#reject(from, 'prepare', 'the leader does not send prepares');
      return;
    }
    const instance = this.#instance(message.sequence);
    const proposal = instance.proposal;
    if (
      proposal !== null &&
      proposal.view === message.view &&
      !bytesEqual(proposal.digest, message.batchDigest)
    ) {
      this.#judgeMismatchedPrepare(from, message, proposal);
      return;
    }
    const commit = instance.commitVotes.get(from);
    if (
      commit !== undefined &&
      commit.view === message.view &&
      !bytesEqual(commit.batchDigest, message.batchDigest)
    ) {
      this.#reportSelfContradiction(from, 'prepare', SELF_CONTRADICTION_SUSPICIONS.prepareAgainstCommit);
      return;
    }
    instance.prepareVotes.set(from, message);
    if (instance.unvouched !== null) this.#acceptIfVouched(instance);
    this.#checkPrepared(instance);
  }

  /**
   * A PREPARE for another batch than the proposal this replica accepted in that view: either the
   * leader equivocated (provable with the forwarded signature, under the leader's current epoch as
   * evidence must be) or the sender lies. Judged when the PREPARE arrives after the proposal, and
   * when the proposal arrives after it (#judgeEarlierVotes).
   */
  #judgeMismatchedPrepare(from: ReplicaId, message: Prepare, proposal: AcceptedProposal): void {
    const leader = this.#leaderOf(message.view);
    const payload = proposalPayload(message.view, message.sequence, message.batchDigest);
    const leaderSigned = (use: 'message' | 'proof'): boolean =>
      this.#crypto.verifyReplicaSignature(
        leader,
        message.proposalKeyEpoch,
        payload,
        message.proposalSignature,
        use,
      );
    if (leaderSigned('message')) {
      this.#reportEquivocation(leader, proposal, {
        view: message.view,
        sequence: message.sequence,
        batchDigest: message.batchDigest,
        keyEpoch: message.proposalKeyEpoch,
        signature: message.proposalSignature,
      });
      return;
    }
    if (leaderSigned('proof')) {
      // Under an epoch the leader has retired, still in its grace: whoever holds a stolen key of
      // that epoch can make this, and the guardians would refuse it as evidence. It proves
      // nothing against the leader (nor against the sender, who may only forward it).
      this.#reject(from, 'prepare', "forwards a proposal signature under the leader's retired epoch");
      return;
    }
    this.#reject(from, 'prepare', 'prepares a digest the leader did not sign');
    this.#suspect(from, 'prepare with a forged proposal signature');
  }

  /**
   * One replica voted for two batches at one (view, sequence): a correct replica PREPAREs only the
   * one proposal it accepted there and COMMITs only what it prepared, and a correct leader commits
   * only its own proposal, whatever the others did (an equivocating leader included). PREPAREs and
   * COMMITs are MAC-authenticated, not signed, so this proves nothing to a third party: a refusal
   * and a suspicion of the sender, which alone knows both of its votes came from it.
   */
  #reportSelfContradiction(
    from: ReplicaId,
    what: 'prepare' | 'commit',
    reason: (typeof SELF_CONTRADICTION_SUSPICIONS)[keyof typeof SELF_CONTRADICTION_SUSPICIONS],
  ): void {
    this.#reject(from, what, reason);
    this.#suspect(from, reason);
  }

  /**
   * Votes that arrived before the proposal they contradict, judged once it is accepted: a
   * PREPARE for another batch (as #onPrepare does), and a COMMIT of the leader for another batch
   * than its own proposal. Contradicting votes are dropped.
   */
  #judgeEarlierVotes(instance: Instance): void {
    const proposal = instance.proposal;
    if (proposal === null) return;
    const leader = this.#leaderOf(proposal.view);
    const leaderCommit = instance.commitVotes.get(leader);
    if (
      leaderCommit !== undefined &&
      leaderCommit.view === proposal.view &&
      !bytesEqual(leaderCommit.batchDigest, proposal.digest)
    ) {
      instance.commitVotes.delete(leader);
      this.#reportSelfContradiction(leader, 'commit', SELF_CONTRADICTION_SUSPICIONS.commitAgainstProposal);
    }
    for (const [sender, vote] of [...instance.prepareVotes]) {
      if (sender === this.id || vote.view !== proposal.view || bytesEqual(vote.batchDigest, proposal.digest))
        continue;
      instance.prepareVotes.delete(sender);
      this.#judgeMismatchedPrepare(sender, vote, proposal);
      // An equivocation proof may have started a view change (or safe mode): the rest is moot.
      if (this.#status !== 'normal' || this.#view !== proposal.view) return;
    }
  }

  #checkPrepared(instance: Instance): void {
    const proposal = instance.proposal;
    if (proposal === null || proposal.view !== this.#view || this.#status !== 'normal' || !this.#canVote())
      return;
    if (!this.#mayVoteAt(proposal.view, instance.sequence)) return;
    if (instance.prepared !== null && instance.prepared.view === this.#view) return;
    const leader = this.#leaderOf(this.#view);
    let matching = 0;
    for (const [voter, vote] of instance.prepareVotes) {
      if (voter !== leader && bytesEqual(vote.batchDigest, proposal.digest)) matching++;
    }
    if (matching < this.#preparedThreshold) return;
    instance.prepared = { view: proposal.view, digest: proposal.digest, digestHex: proposal.digestHex };
    this.#persist({
      kind: 'prepared',
      view: proposal.view,
      sequence: instance.sequence,
      batchDigest: proposal.digest,
    });
    const commit = this.#signedCommit(proposal.view, instance.sequence, proposal.digest);
    instance.commitVotes.set(this.id, commit);
    this.#broadcast(commit);
    this.#checkCommitted(instance);
  }

  #committedInView(instance: Instance, proposal: AcceptedProposal): boolean {
    let matching = 0;
    for (const vote of instance.commitVotes.values()) {
      if (vote.view === proposal.view && bytesEqual(vote.batchDigest, proposal.digest)) matching++;
    }
    return matching >= this.#committedThreshold;
  }

  /** This replica's COMMIT for (view, sequence, digest), signed (see Commit). */
  #signedCommit(view: ViewNumber, sequence: SequenceNumber, batchDigest: Digest): Commit {
    const signed = this.#crypto.sign(commitPayload(view, sequence, batchDigest));
    return {
      kind: 'commit',
      view,
      sequence,
      batchDigest,
      replicaId: this.id,
      keyEpoch: signed.keyEpoch,
      signature: signed.signature,
    };
  }

  #onCommit(from: ReplicaId, message: Commit): void {
    if (!this.#inWindow(message.sequence)) return;
    const instance = this.#instance(message.sequence);
    const previous = instance.commitVotes.get(from);
    if (previous !== undefined && previous.view > message.view) return;
    if (
      previous !== undefined &&
      previous.view === message.view &&
      bytesEqual(previous.batchDigest, message.batchDigest)
    )
      return; // a retransmission: checked already (or kept unchecked, as it was)
    const late =
      previous === undefined &&
      instance.committed !== null &&
      instance.committedByVotesInView === message.view &&
      bytesEqual(instance.committed.digest, message.batchDigest);
    if (!late && !this.#commitSignatureHolds(from, message)) {
      this.#reject(from, 'commit', 'signature does not verify (or uses a retired key epoch)');
      if (!this.#suspectRetiredEpoch(from, message.keyEpoch))
        this.#suspect(from, 'commit with an invalid signature');
      return;
    }
    const relayed = instance.relayedCommits?.get(from);
    if (
      relayed !== undefined &&
      relayed.view === message.view &&
      relayed.keyEpoch === message.keyEpoch &&
      !bytesEqual(relayed.batchDigest, message.batchDigest) &&
      (!late || this.#commitSignatureHolds(from, message))
    ) {
      instance.relayedCommits!.delete(from);
      const relayedPayload = commitPayload(relayed.view, relayed.sequence, relayed.batchDigest);
      if (
        this.#crypto.verifyReplicaSignature(
          from,
          relayed.keyEpoch,
          relayedPayload,
          relayed.signature,
          'proof',
        )
      )
        this.#reportDoubleCommit(from, relayed, message);
    }
    if (previous !== undefined && previous.view === message.view && previous.keyEpoch === message.keyEpoch) {
      // Two signed COMMITs for one (view, sequence) under one key epoch: proof, whatever else
      // happens. (Under two epochs, the later is a new incarnation's, which abstains where its
      // predecessor may have voted; evidence counts against the current epoch only anyway.)
      if (this.#commitHolds(instance, from, previous)) this.#reportDoubleCommit(from, previous, message);
      return;
    }
    // Its own earlier statement at this view: the leader's proposal, a backup's PREPARE.
    const fromLeader = from === this.#leaderOf(message.view);
    const proposal = instance.proposal;
    const prepare = instance.prepareVotes.get(from);
    const ownDigest = fromLeader
      ? proposal?.view === message.view
        ? proposal.digest
        : null
      : prepare?.view === message.view
        ? prepare.batchDigest
        : null;
    if (ownDigest !== null && !bytesEqual(ownDigest, message.batchDigest)) {
      this.#reportSelfContradiction(
        from,
        'commit',
        fromLeader
          ? SELF_CONTRADICTION_SUSPICIONS.commitAgainstProposal
          : SELF_CONTRADICTION_SUSPICIONS.commitAgainstPrepare,
      );
      return;
    }
    instance.commitVotes.set(from, message);
    if (late) (instance.uncheckedCommits ??= new Set()).add(from);
    else instance.uncheckedCommits?.delete(from);
    // A decision this COMMIT completes shares the certificate itself (#checkCommitted); one taken
    // before is checked against this COMMIT here, and only a COMMIT for another batch can contradict it.
    if (instance.committed === null) this.#checkCommitted(instance);
    else if (!late) this.#shareCommitCertificateIfContradicted(instance);
  }

  #commitSignatureHolds(signer: ReplicaId, commit: SignedCommit): boolean {
    const payload = commitPayload(commit.view, commit.sequence, commit.batchDigest);
    return this.#crypto.verifyReplicaSignature(signer, commit.keyEpoch, payload, commit.signature, 'message');
  }

  /**
   * Whether the COMMIT of `voter` held at `instance` is signed: checked now if it was kept
   * unchecked (`uncheckedCommits`); one that fails is dropped, as it would have been on arrival.
   */
  #commitHolds(instance: Instance, voter: ReplicaId, commit: Commit): boolean {
    if (instance.uncheckedCommits?.has(voter) !== true) return true;
    instance.uncheckedCommits.delete(voter);
    if (this.#commitSignatureHolds(voter, commit)) return true;
    instance.commitVotes.delete(voter);
    this.#reject(voter, 'commit', 'signature does not verify (or uses a retired key epoch), checked late');
    return false;
  }

  /**
   * Beyond f, a fork within one view: colluders sent COMMITs for one batch to some correct
   * replicas and for another to the rest, each side a quorum. Neither side alone holds two
   * COMMITs of one replica, so a replica that committed by a quorum of COMMITs and sees a peer's
   * COMMIT for another batch at that (view, sequence) sends that peer its signed COMMITs: the
   * peer holds the colluders' others, and f + 1 of them signed both (double-commit evidence,
   * then safe mode). Once per peer and sequence; within f it never happens (a correct replica
   * commits only what a quorum, f + 1 correct ones among it, prepared).
   */
  #shareCommitCertificateIfContradicted(instance: Instance): void {
    const committed = instance.committed;
    const view = instance.committedByVotesInView;
    if (committed === null || view === null || committed.view !== view) return;
    const matching: Commit[] = [];
    const contradicting: ReplicaId[] = [];
    for (const [voter, vote] of instance.commitVotes) {
      if (vote.view !== view) continue;
      if (!bytesEqual(vote.batchDigest, committed.digest)) contradicting.push(voter);
    }
    if (contradicting.length === 0) return;
    for (const [voter, vote] of [...instance.commitVotes]) {
      if (
        vote.view === view &&
        bytesEqual(vote.batchDigest, committed.digest) &&
        this.#commitHolds(instance, voter, vote)
      )
        matching.push(vote);
    }
    for (const peer of contradicting) {
      if (peer === this.id || !this.#reportOnce(`commit-certificate:${peer}:${instance.sequence}:${view}`))
        continue;
      this.#send(peer, {
        kind: 'commit-certificate',
        view,
        sequence: instance.sequence,
        batchDigest: committed.digest,
        commits: matching.map((vote) => ({
          replicaId: vote.replicaId,
          keyEpoch: vote.keyEpoch,
          signature: vote.signature,
        })),
      });
    }
  }

  /**
   * A peer's signed COMMITs for another batch than the COMMITs this replica holds at that (view,
   * sequence): each signer of both is proven. Cheapest checks first: the sequence is in the log
   * window, the signer's COMMIT held here names another batch; only then is its signature checked.
   * A signer whose COMMIT has not come yet is kept for when it does (`relayedCommits`).
   */
  #onCommitCertificate(from: ReplicaId, message: CommitCertificate): void {
    if (!this.#inWindow(message.sequence)) return;
    const instance = this.#instance(message.sequence);
    const payload = commitPayload(message.view, message.sequence, message.batchDigest);
    const seen = new Set<number>();
    for (const entry of message.commits) {
      if (seen.has(entry.replicaId) || entry.replicaId >= this.config.n) {
        this.#reject(
          from,
          'commit-certificate',
          `commit of replica ${entry.replicaId} repeated or out of range`,
        );
        return;
      }
      seen.add(entry.replicaId);
      const held = instance.commitVotes.get(entry.replicaId);
      if (held === undefined) {
        // Its COMMIT here may still come: kept, checked only if it contradicts it.
        instance.relayedCommits ??= new Map();
        if (!instance.relayedCommits.has(entry.replicaId))
          instance.relayedCommits.set(entry.replicaId, {
            view: message.view,
            sequence: message.sequence,
            batchDigest: message.batchDigest,
            keyEpoch: entry.keyEpoch,
            signature: entry.signature,
          });
        continue;
      }
      if (held.view !== message.view || bytesEqual(held.batchDigest, message.batchDigest)) continue;
      if (!this.#commitHolds(instance, entry.replicaId, held)) continue;
      if (
        !this.#crypto.verifyReplicaSignature(
          entry.replicaId,
          entry.keyEpoch,
          payload,
          entry.signature,
          'proof',
        )
      ) {
        this.#reject(from, 'commit-certificate', `commit of replica ${entry.replicaId} does not verify`);
        continue;
      }
      this.#reportDoubleCommit(entry.replicaId, held, {
        view: message.view,
        sequence: message.sequence,
        batchDigest: message.batchDigest,
        keyEpoch: entry.keyEpoch,
        signature: entry.signature,
      });
    }
  }

  /** Two signed COMMITs of `accused` for one (view, sequence): a proof, once per replica, epoch and sequence. */
  #reportDoubleCommit(accused: ReplicaId, first: SignedCommit, second: SignedCommit): void {
    if (accused === this.id) return;
    if (!this.#reportOnce(`double-commit:${accused}:${second.keyEpoch}:${second.view}:${second.sequence}`))
      return;
    const signed = (commit: SignedCommit): SignedCommit => ({
      view: commit.view,
      sequence: commit.sequence,
      batchDigest: commit.batchDigest,
      keyEpoch: commit.keyEpoch,
      signature: commit.signature,
    });
    const evidence: Evidence = {
      kind: 'double-commit',
      accused,
      first: signed(first),
      second: signed(second),
    };
    this.#out.push({ kind: 'evidence', evidence });
    this.#broadcast({ kind: 'evidence-report', evidence });
    this.#log_('error', 'double-commit', { accused, view: second.view, sequence: second.sequence });
    this.#countProven(evidence);
  }

  #onDecided(from: ReplicaId, message: Decided): void {
    if (!this.#inWindow(message.sequence) || message.sequence <= this.#lastExecuted) return;
    const instance = this.#instance(message.sequence);
    instance.decidedVotes.set(from, message);
    this.#checkCommitted(instance);
  }

  /**
   * Committed when a quorum sent COMMIT for the same (view, digest), or when f + 1 replicas claim
   * to have committed the same digest (one of them is correct): either way the value is decided.
   */
  #checkCommitted(instance: Instance): void {
    if (instance.committed !== null) return;
    if (instance.decidedVotes.size >= this.#committedByWitnessThreshold) {
      const counts = new Map<string, { count: number; vote: Decided }>();
      for (const vote of instance.decidedVotes.values()) {
        const key = toHex(vote.batchDigest);
        const entry = counts.get(key);
        if (entry === undefined) counts.set(key, { count: 1, vote });
        else entry.count++;
      }
      for (const [digestHex, { count, vote }] of counts) {
        if (count < this.#committedByWitnessThreshold) continue;
        instance.committed = { view: this.#view, digest: vote.batchDigest, digestHex };
        if (instance.bodies.has(digestHex)) this.#persistCommitted(instance);
        this.#executeReady();
        return;
      }
    }
    // Runs at every COMMIT: counted in place (at most n votes) rather than tallied by hex keys.
    // The first (view, digest) in vote order to reach the threshold decides, as a tally in
    // insertion order would.
    if (instance.commitVotes.size < this.#committedThreshold) return;
    const votes = [...instance.commitVotes.values()];
    for (let index = 0; index < votes.length; index++) {
      const vote = votes[index]!;
      let count = 0;
      for (let other = 0; other < votes.length; other++) {
        if (!sameCommitVote(vote, votes[other]!)) continue;
        if (other < index) break; // an earlier vote already stood for this (view, digest)
        count++;
      }
      if (count < this.#committedThreshold) continue;
      const digestHex = toHex(vote.batchDigest);
      instance.committed = { view: vote.view, digest: vote.batchDigest, digestHex };
      instance.committedByVotesInView = vote.view;
      if (instance.bodies.has(digestHex)) this.#persistCommitted(instance);
      this.#shareCommitCertificateIfContradicted(instance);
      this.#executeReady();
      return;
    }
  }

  /** The commit decision, with the body unless a persisted pre-prepare already holds it. */
  #persistCommitted(instance: Instance): void {
    const committed = instance.committed!;
    const body = instance.bodies.get(committed.digestHex)!;
    this.#persist({
      kind: 'committed',
      view: committed.view,
      sequence: instance.sequence,
      batchDigest: committed.digest,
      batch: instance.durableBodies.has(committed.digestHex) ? null : body,
    });
  }

  // ───────────────────────────── execution ─────────────────────────────

  #executeReady(): void {
    while (this.#stateTransfer === null) {
      const sequence = this.#lastExecuted + 1;
      const instance = this.#log.get(sequence);
      if (instance === undefined || instance.committed === null) break;
      const body = instance.bodies.get(instance.committed.digestHex);
      if (body === undefined) {
        this.#requestBody(instance, instance.committed.digest);
        break;
      }
      this.#executeBatch(instance, body);
    }
    this.#tryPropose();
  }

  #requestBody(instance: Instance, digest: Digest): void {
    if (
      instance.bodyRequestedAt !== null &&
      this.#now - instance.bodyRequestedAt < this.config.retransmitIntervalMs
    ) {
      return;
    }
    instance.bodyRequestedAt = this.#now;
    this.#broadcast({ kind: 'batch-request', sequence: instance.sequence, batchDigest: digest });
  }

  #executeBatch(instance: Instance, batch: readonly ClientRequest[]): void {
    const sequence = instance.sequence;
    const executed: ExecutedRequest[] = [];
    const replies: { request: ClientRequest; cached: CachedReply }[] = [];
    for (const request of batch) {
      const digest = this.#requestDigest(request);
      const key = requestKey(request.clientId, request.requestNumber);
      const pending = this.#pending.get(key);
      if (pending !== undefined) this.#removePending(pending);
      const status = this.#clientTable.status(request.clientId, request.requestNumber);
      if (status.kind !== 'new') {
        executed.push({
          clientId: request.clientId,
          requestNumber: request.requestNumber,
          requestDigest: digest,
          skipped: true,
        });
        continue;
      }
      let replyStatus: ReplyStatus = 'ok';
      let result: Uint8Array;
      try {
        result = this.#service.execute(request.operation, {
          clientId: request.clientId,
          requestNumber: request.requestNumber,
          sequence,
        });
      } catch {
        // The service broke its contract (execute must not throw); answer deterministically.
        replyStatus = 'error';
        result = textEncoder.encode('service failed to execute the operation');
      }
      const cached: CachedReply = { sequence, status: replyStatus, result };
      this.#clientTable.record(request.clientId, request.requestNumber, cached);
      replies.push({ request, cached });
      executed.push({
        clientId: request.clientId,
        requestNumber: request.requestNumber,
        requestDigest: digest,
        skipped: false,
      });
    }
    this.#sendBatchReplies(sequence, replies);
    instance.executed = true;
    instance.executedDigestHex = instance.committed!.digestHex;
    this.#lastExecuted = sequence;
    this.#lastProgressAt = this.#now;
    this.#leaderPace.executed(sequence, this.#now);
    const resumed = this.#viewResumption;
    if (resumed !== null && sequence > resumed.after) {
      // What a view change really costs clients: the time until new work executes again.
      this.#log_('info', 'view-resumed', {
        view: this.#view,
        reproposals: resumed.reproposals,
        elapsedMs: this.#now - resumed.installedAt,
      });
      this.#viewResumption = null;
    }
    this.#out.push({
      kind: 'executed',
      sequence,
      view: this.#view,
      batchDigest: instance.committed!.digest,
      requests: executed,
    });
    if (sequence % this.config.checkpointInterval === 0) this.#takeCheckpoint(sequence);
  }

  // ───────────────────────────── checkpoints ─────────────────────────────

  #takeCheckpoint(sequence: SequenceNumber): void {
    const state = this.#snapshotState();
    const signed = this.#signCheckpoint(sequence, state.root);
    if (signed === null) return;
    const vote: Checkpoint = {
      kind: 'checkpoint',
      sequence,
      stateRoot: state.root,
      replicaId: this.id,
      keyEpoch: signed.keyEpoch,
      signature: signed.signature,
    };
    this.#ownCheckpoints.set(sequence, {
      sequence,
      root: state.root,
      leaves: state.leaves,
      chunks: state.chunks,
      vote,
    });
    this.#broadcast(vote);
    // Votes that came before this replica got here are judged now.
    for (const early of this.#checkpointVotes.get(sequence)?.values() ?? [])
      this.#judgeCheckpointVoteAgainstState(early);
    this.#recordCheckpointVote(vote);
    this.#evaluateCheckpoint(sequence);
  }

  /** Suspects a peer whose checkpoint vote contradicts this replica's own root for that sequence. */
  #judgeCheckpointVoteAgainstState(vote: Checkpoint): void {
    if (vote.replicaId === this.id) return;
    const own = this.#ownCheckpoints.get(vote.sequence);
    if (own === undefined || bytesEqual(own.root, vote.stateRoot)) return;
    const reported = `state:${vote.replicaId}:${vote.keyEpoch}:${vote.sequence}`;
    if (!this.#reportOnce(reported)) return;
    this.#suspect(vote.replicaId, CHECKPOINT_AGAINST_STATE_SUSPICION);
  }

  #onCheckpoint(from: ReplicaId, message: Checkpoint): void {
    if (message.sequence % this.config.checkpointInterval !== 0 || message.sequence === 0) {
      this.#reject(from, 'checkpoint', 'sequence is not a checkpoint sequence');
      return;
    }
    const stable = this.#stable.certificate;
    // A late vote (below the stable checkpoint) matters only when it contradicts a certificate
    // still retained here: it is then as good a proof as one that came in time. Anything else
    // below the stable checkpoint is ignored unchecked (no signature check to spend).
    let late: StoredCheckpoint | undefined;
    if (message.sequence < stable.sequence) {
      late = this.#retained.find((checkpoint) => checkpoint.certificate.sequence === message.sequence);
      if (late === undefined || bytesEqual(late.certificate.stateRoot, message.stateRoot)) return;
    }
    const payload = checkpointPayload(message.sequence, message.stateRoot);
    if (!this.#crypto.verifyReplicaSignature(from, message.keyEpoch, payload, message.signature, 'message')) {
      this.#reject(from, 'checkpoint', 'signature does not verify (or uses a retired key epoch)');
      this.#suspectRetiredEpoch(from, message.keyEpoch);
      return;
    }
    // Its vote for another root than one it signed before (in a vote or a certificate) is half
    // of a proof against it: with f + 1 such signers, the fork is proven (core/forensics.ts).
    if (this.#voteForks(message)) return;
    if (late !== undefined) {
      this.#reportConflictingCheckpoint(late.certificate, message);
      return;
    }
    if (message.sequence === stable.sequence) {
      if (!bytesEqual(message.stateRoot, stable.stateRoot))
        this.#reportConflictingCheckpoint(stable, message);
      else if (!this.#refreshStableVote(message)) this.#shareFreshCertificate(from);
      return;
    }
    this.#judgeCheckpointVoteAgainstState(message);
    this.#recordCheckpointVote(message);
    this.#evaluateCheckpoint(message.sequence);
  }

  #recordCheckpointVote(vote: Checkpoint): void {
    let votes = this.#checkpointVotes.get(vote.sequence);
    if (votes === undefined) {
      votes = new Map();
      this.#checkpointVotes.set(vote.sequence, votes);
    }
    votes.set(vote.replicaId, vote);
    // Keep only each sender's few highest votes.
    const senderSequences: number[] = [];
    for (const [sequence, byReplica] of this.#checkpointVotes)
      if (byReplica.has(vote.replicaId)) senderSequences.push(sequence);
    if (senderSequences.length > MAX_CHECKPOINT_VOTES_PER_SENDER) {
      senderSequences.sort((a, b) => a - b);
      for (const sequence of senderSequences.slice(
        0,
        senderSequences.length - MAX_CHECKPOINT_VOTES_PER_SENDER,
      )) {
        const byReplica = this.#checkpointVotes.get(sequence)!;
        byReplica.delete(vote.replicaId);
        if (byReplica.size === 0) this.#checkpointVotes.delete(sequence);
      }
    }
  }

  #evaluateCheckpoint(sequence: number): void {
    const votes = this.#checkpointVotes.get(sequence);
    if (votes === undefined) return;
    const byRoot = new Map<string, Checkpoint[]>();
    for (const vote of votes.values()) {
      const key = toHex(vote.stateRoot);
      const list = byRoot.get(key);
      if (list === undefined) byRoot.set(key, [vote]);
      else list.push(vote);
    }
    for (const list of byRoot.values()) {
      if (list.length < this.#quorum) continue;
      // Every matching vote, not just a quorum: a vote becomes unverifiable once its signer has
      // rotated its keys twice, and the spare ones keep the certificate valid meanwhile.
      const certified = list.sort((a, b) => a.replicaId - b.replicaId);
      const certificate: CheckpointCertificate = {
        sequence: sequenceNumber(sequence),
        stateRoot: certified[0]!.stateRoot,
        votes: certified.map((vote) => ({
          replicaId: vote.replicaId,
          keyEpoch: vote.keyEpoch,
          signature: vote.signature,
        })),
      };
      this.#verifiedCertificates.add(`${sequence}:${toHex(certificate.stateRoot)}`);
      for (const vote of votes.values()) {
        if (!bytesEqual(vote.stateRoot, certificate.stateRoot))
          this.#reportConflictingCheckpoint(certificate, vote);
      }
      this.#onCertificate(certificate);
      return;
    }
  }

  /**
   * True the first time `key` is reported, false after (a faulty replica sending the same wrong
   * message again makes nothing more for the guardians to check); at most MAX_CONFLICTS_REPORTED
   * keys are remembered, the oldest forgotten first.
   */
  #reportOnce(key: string): boolean {
    if (this.#conflictsReported.has(key)) return false;
    this.#conflictsReported.add(key);
    while (this.#conflictsReported.size > MAX_CONFLICTS_REPORTED)
      this.#conflictsReported.delete(this.#conflictsReported.values().next().value!);
    return true;
  }

  /** A NEW-VIEW its leader signed that does not follow from its view changes: a proof, once per leader, epoch and view. */
  #reportInvalidNewView(newView: NewView): void {
    const reported = `new-view:${newView.replicaId}:${newView.keyEpoch}:${newView.view}`;
    if (!this.#reportOnce(reported)) return;
    const evidence: Evidence = { kind: 'invalid-new-view', accused: newView.replicaId, newView };
    this.#out.push({ kind: 'evidence', evidence });
    this.#broadcast({ kind: 'evidence-report', evidence });
    this.#log_('error', 'invalid-new-view', { accused: newView.replicaId, view: newView.view });
    this.#countProven(evidence);
  }

  #reportConflictingCheckpoint(certificate: CheckpointCertificate, vote: Checkpoint): void {
    if (vote.replicaId === this.id) {
      this.#log_('error', 'own-state-diverged', { sequence: vote.sequence });
      return;
    }
    // One proof per replica, key epoch and sequence: the same vote sent again (or another wrong
    // root for the same sequence) proves nothing more, and each would be checked again by every
    // guardian. A later epoch is a later incarnation, whose lie is news.
    const reported = `${vote.replicaId}:${vote.keyEpoch}:${vote.sequence}`;
    if (this.#conflictsReported.has(reported)) return;
    const fresh = this.#verifiableVotesOf(certificate);
    if (fresh.votes.length < this.#quorum) return;
    this.#reportOnce(reported);
    const evidence: Evidence = {
      kind: 'conflicting-checkpoint',
      accused: vote.replicaId,
      certificate: fresh,
      vote,
    };
    this.#out.push({ kind: 'evidence', evidence });
    this.#broadcast({ kind: 'evidence-report', evidence });
    this.#log_('error', 'conflicting-checkpoint', { accused: vote.replicaId, sequence: vote.sequence });
    this.#countProven(evidence);
  }

  /**
   * One more replica proven faulty (evidence this replica found, or a proof its driver verified):
   * with the others proven and not rejuvenated since, and the double signers of a checkpoint, more
   * than f make a forensic proof, and safe mode follows at the end of this step.
   */
  #countProven(evidence: Evidence): void {
    if (this.#testing.brokenForkDetection === true) return;
    const seen = this.#forks.observeEvidence(evidence);
    if (seen.kind === 'fork') this.#provenBeyondF ??= seen.proof;
  }

  /** Checks a certificate: genesis, or a quorum of distinct valid signatures over one root. */
  #verifyCertificate(certificate: CheckpointCertificate): boolean {
    if (certificate.sequence === 0)
      return certificate.votes.length === 0 && bytesEqual(certificate.stateRoot, this.#genesisRoot);
    if (certificate.sequence % this.config.checkpointInterval !== 0) return false;
    const key = `${certificate.sequence}:${toHex(certificate.stateRoot)}`;
    if (this.#verifiedCertificates.has(key)) return true;
    const voters = new Set<number>();
    for (const vote of certificate.votes) {
      if (vote.replicaId >= this.config.n || voters.has(vote.replicaId)) return false;
      voters.add(vote.replicaId);
    }
    // A quorum of the votes must verify; the others may be signed with keys retired since (their
    // signers rotated twice): they prove nothing, and they do not invalidate the rest. Not f + 1:
    // besides f faulty replicas, an intruder may hold the retired keys of up to k replicas still
    // in their grace, so fewer than Q valid votes need not include a correct replica's.
    if (this.#verifiableVotesOf(certificate).votes.length < this.#quorum) return false;
    this.#verifiedCertificates.add(key);
    return true;
  }

  /** The certificate with only the votes that verify under keys this replica still accepts. */
  #verifiableVotesOf(certificate: CheckpointCertificate): CheckpointCertificate {
    const payload = checkpointPayload(certificate.sequence, certificate.stateRoot);
    const votes = certificate.votes.filter((vote) =>
      this.#crypto.verifyReplicaSignature(vote.replicaId, vote.keyEpoch, payload, vote.signature, 'proof'),
    );
    return votes.length === certificate.votes.length ? certificate : { ...certificate, votes };
  }

  /**
   * A vote for the stable checkpoint (same sequence and root, its signature checked as a `message`,
   * so under the signer's current epoch): it replaces the signer's vote in the certificate when that
   * one is older or no longer verifies, or adds to it. Once Q of the votes verify under the keys
   * accepted now, the ones that no longer do are dropped (#recertifiedVotes). The certificate is
   * replaced in memory (STATUS, CHECKPOINT-PROOF and VIEW-CHANGE use it) and stored again with the
   * same durable action as when it became stable, so the certificate on disk verifies after a
   * restart however long ago the checkpoint was taken.
   */
  #refreshStableVote(vote: Checkpoint): boolean {
    const certificate = this.#stable.certificate;
    assert(
      vote.sequence === certificate.sequence && bytesEqual(vote.stateRoot, certificate.stateRoot),
      'a refreshed vote is for another checkpoint',
    );
    return this.#mergeStableVotes(
      [{ replicaId: vote.replicaId, keyEpoch: vote.keyEpoch, signature: vote.signature }],
      true,
    );
  }

  /**
   * Merges votes for the stable checkpoint (already checked, or checked here as `proof` when
   * `checked` is false) into its certificate: a vote replaces its signer's when that one is older or
   * no longer verifies. Returns whether the certificate changed.
   */
  #mergeStableVotes(entries: CheckpointCertificate['votes'], checked: boolean): boolean {
    const certificate = this.#stable.certificate;
    const payload = checkpointPayload(certificate.sequence, certificate.stateRoot);
    const verifies = (entry: CheckpointCertificate['votes'][number]): boolean =>
      entry.replicaId < this.config.n &&
      this.#crypto.verifyReplicaSignature(entry.replicaId, entry.keyEpoch, payload, entry.signature, 'proof');
    let merged = certificate.votes;
    for (const entry of entries) {
      const existing = merged.find((known) => known.replicaId === entry.replicaId);
      if (existing !== undefined && existing.keyEpoch === entry.keyEpoch) continue;
      if (existing !== undefined && existing.keyEpoch > entry.keyEpoch && verifies(existing)) continue;
      if (!checked && !verifies(entry)) continue;
      merged = merged
        .filter((known) => known.replicaId !== entry.replicaId)
        .concat([{ replicaId: entry.replicaId, keyEpoch: entry.keyEpoch, signature: entry.signature }])
        .sort((a, b) => a.replicaId - b.replicaId);
    }
    // Nothing new (a retransmission, or the periodic re-sending of a re-certifying peer): no
    // signature is checked again; stale votes are dropped by the periodic check.
    if (merged === certificate.votes) return false;
    const votes = this.#recertifiedVotes({ ...certificate, votes: merged });
    if (votes === certificate.votes) return false;
    this.#replaceStableCertificate({ ...certificate, votes });
    this.#log_('debug', 'checkpoint-votes-refreshed', {
      sequence: certificate.sequence,
      from: entries.map((entry) => `${entry.replicaId}@${entry.keyEpoch}`).join(','),
      votes: votes.length,
    });
    return true;
  }

  /**
   * A replica sent its vote for this replica's stable checkpoint again, and it changed nothing
   * here: it is re-certifying (its certificate holds votes that stopped verifying) or retransmitting.
   * When this replica's own certificate verifies whole, it sends it (CHECKPOINT-PROOF, which is
   * never answered, so two replicas cannot keep each other busy), at most once per status interval
   * per replica: the fresh votes it needs may all have been broadcast before it listened.
   */
  #shareFreshCertificate(to: ReplicaId): void {
    const certificate = this.#stable.certificate;
    const sharedAt = this.#freshCertificateSharedAt.get(to);
    if (sharedAt !== undefined && this.#now - sharedAt < this.config.statusIntervalMs) return;
    if (this.#verifiableVotesOf(certificate).votes.length !== certificate.votes.length) return;
    this.#freshCertificateSharedAt.set(to, this.#now);
    this.#send(to, { kind: 'checkpoint-proof', certificate });
  }

  /**
   * The votes of a certificate for the stable checkpoint without those that no longer verify, once
   * Q of them do (fewer: all of them, which is the best it has until fresh votes arrive; a vote
   * whose epoch is merely unknown yet may verify later).
   */
  #recertifiedVotes(certificate: CheckpointCertificate): CheckpointCertificate['votes'] {
    const fresh = this.#verifiableVotesOf(certificate);
    if (fresh.votes.length < this.#quorum || fresh.votes.length === certificate.votes.length)
      return certificate.votes;
    return fresh.votes;
  }

  #replaceStableCertificate(certificate: CheckpointCertificate): void {
    const stable = this.#stable;
    this.#stable = { ...stable, certificate };
    const index = this.#retained.indexOf(stable);
    if (index >= 0) this.#retained[index] = this.#stable;
    // Stored again whenever a vote is replaced, added or dropped (storage keeps only the latest of
    // several waiting writes): a stored certificate with every current vote stays verifiable after a
    // restart, where one of a bare quorum might not.
    this.#persistCheckpoint(this.#stable);
  }

  /**
   * Stores a stable checkpoint, unless it is below the checkpoint restored from disk that this
   * replica has not got back to yet (#restoredFloor). Storing it would replace that one, and with
   * it the only record that this replica executed up to the floor: restarted again, it would take
   * the older checkpoint for all it ever executed, vote at once, and help a view re-decide
   * sequences it had executed (simulator, --key-theft, seed 739). The older state lives in memory
   * until the replica is past the floor; the disk keeps the newer one.
   */
  #persistCheckpoint(checkpoint: StoredCheckpoint): void {
    if (checkpoint.certificate.sequence < this.#restoredFloor) {
      this.#log_('debug', 'checkpoint-not-stored-below-restored-floor', {
        sequence: checkpoint.certificate.sequence,
        restoredFloor: this.#restoredFloor,
      });
      return;
    }
    this.#out.push({ kind: 'persist-checkpoint', checkpoint });
  }

  /**
   * Whether every vote of the stable certificate still verifies under the keys accepted now. When
   * one does not (its epoch expired or was retired), this replica re-signs its own vote (which
   * tells the others to refresh theirs: their certificates hold the same old votes) and drops the
   * stale votes once Q fresh ones are in.
   */
  #checkStableCertificate(): void {
    const certificate = this.#stable.certificate;
    if (certificate.sequence === 0) return;
    const fresh = this.#verifiableVotesOf(certificate);
    if (fresh.votes.length === certificate.votes.length) return;
    this.#recertificationDue = true;
    const votes = this.#recertifiedVotes(certificate);
    if (votes !== certificate.votes) {
      this.#replaceStableCertificate({ ...certificate, votes });
      this.#log_('info', 'checkpoint-recertified', {
        sequence: certificate.sequence,
        votes: votes.length,
        dropped: certificate.votes.length - votes.length,
      });
    } else {
      this.#log_('warn', 'checkpoint-certificate-stale', {
        sequence: certificate.sequence,
        verifying: fresh.votes.length,
        quorum: this.#quorum,
      });
    }
  }

  /**
   * Re-signs and broadcasts this replica's CHECKPOINT vote for the state it holds, under its
   * current epoch, at most once per statusIntervalMs: for its stable checkpoint, and for a restored
   * checkpoint it holds but could not verify. Such a vote says "I computed or verified this state"
   * (its chunks against its leaves, its leaves against its root), which is what a CHECKPOINT vote
   * always says; it is not a vote of a view, so an amnesiac or a replica waiting for its restored
   * state casts it too (see docs/ARCHITECTURE.md, Certificate refresh).
   */
  #recertifyIfDue(): void {
    if (!this.#recertificationDue) return;
    if (this.#now - this.#lastRecertifiedAt < this.config.statusIntervalMs) return;
    this.#recertificationDue = false;
    this.#lastRecertifiedAt = this.#now;
    const stable = this.#stable.certificate;
    if (stable.sequence > 0 && !this.restoredStatePending) {
      const vote = this.#ownCurrentVote(stable.sequence, stable.stateRoot);
      if (vote !== null) {
        this.#refreshStableVote(vote);
        this.#broadcast(vote);
      }
    }
    const held = this.#unverifiedRestore;
    if (held !== null && this.#unverifiedRestoreVotable && held.certificate.sequence > stable.sequence) {
      const vote = this.#ownCurrentVote(held.certificate.sequence, held.certificate.stateRoot);
      if (vote === null) return;
      this.#recordCheckpointVote(vote);
      this.#broadcast(vote);
      this.#evaluateCheckpoint(held.certificate.sequence);
    }
  }

  /** This replica's CHECKPOINT vote for (sequence, root), signed with its current key. */
  #ownCurrentVote(sequence: SequenceNumber, root: Digest): Checkpoint | null {
    const signed = this.#signCheckpoint(sequence, root);
    if (signed === null) return null;
    return {
      kind: 'checkpoint',
      sequence,
      stateRoot: root,
      replicaId: this.id,
      keyEpoch: signed.keyEpoch,
      signature: signed.signature,
    };
  }

  /**
   * Signs the stable checkpoint with this replica's current key if its certificate lacks that
   * vote (after a state transfer, or after a rejuvenation gave it new keys), and tells everyone.
   * The state was checked against the certified root chunk by chunk, so the vote claims nothing
   * this replica has not verified.
   */
  #ensureOwnStableVote(): void {
    const stable = this.#stable.certificate;
    if (stable.sequence === 0) return;
    const own = stable.votes.find((entry) => entry.replicaId === this.id);
    if (own !== undefined && own.keyEpoch >= this.#crypto.currentEpoch) return;
    const signed = this.#signCheckpoint(stable.sequence, stable.stateRoot);
    if (signed === null) return;
    const vote: Checkpoint = {
      kind: 'checkpoint',
      sequence: stable.sequence,
      stateRoot: stable.stateRoot,
      replicaId: this.id,
      keyEpoch: signed.keyEpoch,
      signature: signed.signature,
    };
    this.#refreshStableVote(vote);
    this.#broadcast(vote);
  }

  /** A certificate (already verified) for a state: adopt it, catch up to it, or repair from it. */
  #onCertificate(certificate: CheckpointCertificate): void {
    if (this.#forkIn(certificate, true)) return;
    if (certificate.sequence > this.#highestCertifiedSequence) {
      this.#highestCertifiedSequence = certificate.sequence;
      // A verified certificate vouches for peers' stable checkpoints up to it.
      this.#fixVotingFloor();
    }
    if (certificate.sequence <= this.#stable.certificate.sequence) return;
    const held = this.#unverifiedRestore;
    if (
      held !== null &&
      this.#stateTransfer === null &&
      held.certificate.sequence === certificate.sequence &&
      bytesEqual(held.certificate.stateRoot, certificate.stateRoot)
    ) {
      // The checkpoint restored from disk, whose old certificate no longer verified: a quorum
      // vouches for exactly this state now, so it is adopted with the new certificate.
      this.#unverifiedRestore = null;
      this.#log_('info', 'restored-checkpoint-recertified', {
        sequence: certificate.sequence,
        votes: certificate.votes.length,
      });
      this.#installState({ ...held, certificate }, true);
      this.#executeReady();
      return;
    }
    const own = this.#ownCheckpoints.get(certificate.sequence);
    if (own !== undefined) {
      if (bytesEqual(own.root, certificate.stateRoot)) {
        this.#makeStable({ certificate, leaves: own.leaves, chunks: own.chunks });
        return;
      }
      this.#log_('error', 'state-corruption-detected', {
        sequence: certificate.sequence,
        detail: 'own checkpoint differs from the certified one',
      });
      const pool = new Map<string, Uint8Array>();
      own.chunks.forEach((chunk, index) => {
        pool.set(toHex(own.leaves[index]!), chunk);
      });
      this.#startStateTransfer(certificate, pool);
      return;
    }
    if (certificate.sequence <= this.#lastExecuted) return;
    if (this.#knownCertificate === null || certificate.sequence > this.#knownCertificate.sequence) {
      this.#knownCertificate = certificate;
    }
    if (this.#stateTransfer !== null) {
      this.#retargetIfTargetAging(certificate);
      return;
    }
    // Far behind (the log window cannot even reach it): fetch the state right away.
    if (certificate.sequence >= this.#lastExecuted + this.config.logWindow)
      this.#startStateTransfer(certificate);
  }

  #makeStable(checkpoint: StoredCheckpoint, persist = true): void {
    const sequence = checkpoint.certificate.sequence;
    assert(sequence > this.#stable.certificate.sequence, 'stable checkpoint moved backwards');
    this.#stable = checkpoint;
    this.#leaderPace.stabilized(this.#now);
    this.#retained.push(checkpoint);
    while (this.#retained.length > this.config.retainedCheckpoints) this.#retained.shift();
    if (persist) this.#persistCheckpoint(checkpoint);
    for (const key of [...this.#log.keys()]) if (key <= sequence) this.#log.delete(key);
    for (const key of [...this.#ownCheckpoints.keys()]) if (key <= sequence) this.#ownCheckpoints.delete(key);
    for (const key of [...this.#checkpointVotes.keys()])
      if (key <= sequence) this.#checkpointVotes.delete(key);
    for (const key of [...this.#expectedProposals.keys()])
      if (key <= sequence) this.#expectedProposals.delete(key);
    for (const key of [...this.#reproposalsAwaitingBody.keys()])
      if (key <= sequence) this.#reproposalsAwaitingBody.delete(key);
    if (this.#knownCertificate !== null && this.#knownCertificate.sequence <= sequence)
      this.#knownCertificate = null;
    if (this.#nextSequence <= sequence) this.#nextSequence = sequenceNumber(sequence + 1);
    this.#log_('info', 'checkpoint-stable', {
      sequence,
      root: toHex(checkpoint.certificate.stateRoot).slice(0, 16),
    });
    this.#ensureOwnStableVote();
    if (this.#unverifiedRestore !== null && this.#unverifiedRestore.certificate.sequence <= sequence)
      this.#unverifiedRestore = null;
    if (this.#restoredFloor > 0 && sequence >= this.#restoredFloor) {
      this.#log_('info', 'restored-state-recovered', { sequence, restoredFloor: this.#restoredFloor });
      this.#restoredFloor = 0;
      this.#joinViewChangeInProgress();
    }
    this.#endAmnesiaIfPastHorizon();
    this.#startPlannedViewChange();
    this.#rotateLeaderIfDue(sequence);
    this.#tryPropose();
  }

  /**
   * Regular leader rotation (`leaderRotationCheckpoints`): once that many checkpoints became
   * stable in this view, every correct replica reaches the same one and moves to the next view,
   * blaming nobody. At a stable checkpoint the new view has nothing to re-propose.
   */
  #rotateLeaderIfDue(stableSequence: number): void {
    const every = this.config.leaderRotationCheckpoints;
    if (every === 0 || this.#status !== 'normal') return;
    if (stableSequence - this.#viewFloor < every * this.config.checkpointInterval) return;
    this.#startViewChange(viewNumber(this.#view + 1), 'regular leader rotation', null);
  }

  /**
   * New keys are known: the checkpoint restored from disk whose certificate did not verify may
   * now. Installed only while nothing newer was installed or is being transferred.
   */
  #retryUnverifiedRestore(): void {
    const held = this.#unverifiedRestore;
    if (held === null) return;
    if (held.certificate.sequence <= this.#stable.certificate.sequence) {
      this.#unverifiedRestore = null;
      return;
    }
    if (this.#stateTransfer !== null || !this.#verifyCertificate(held.certificate)) return;
    this.#unverifiedRestore = null;
    this.#log_('info', 'restored-checkpoint-verified', { sequence: held.certificate.sequence });
    this.#installState(held, false);
    this.#executeReady();
  }

  /**
   * A view change nobody is waiting on (a guardian's handoff or rejoin) starts right after the
   * next stable checkpoint, if that comes within plannedViewChangeWaitMs: the new leader must
   * re-propose every prepared sequence above the stable checkpoint, each a full three-phase round
   * in the new view, so starting just past a checkpoint keeps the pause short for clients.
   */
  #planViewChange(target: ViewNumber, reason: string): void {
    const sinceCheckpoint = this.#lastExecuted - this.#stable.certificate.sequence;
    if (this.config.plannedViewChangeWaitMs === 0 || sinceCheckpoint <= this.config.checkpointInterval / 8) {
      this.#startViewChange(target, reason, null);
      return;
    }
    this.#plannedViewChange ??= {
      target,
      reason,
      fromView: this.#view,
      deadline: this.#now + this.config.plannedViewChangeWaitMs,
    };
  }

  /** At the next stable checkpoint, or when the wait is over. */
  #startPlannedViewChange(): void {
    const planned = this.#plannedViewChange;
    if (planned === null) return;
    this.#plannedViewChange = null;
    // Any view change since it was planned already brought what it was for (a new view).
    if (this.#status !== 'normal' || this.#view !== planned.fromView) return;
    this.#startViewChange(planned.target, planned.reason, null);
  }

  #endAmnesiaIfPastHorizon(): void {
    if (!this.#amnesiac || this.#amnesiaHorizon === null) return;
    if (this.#stable.certificate.sequence < this.#amnesiaHorizon) return;
    this.#amnesiac = false;
    this.#votingFloor = -1;
    this.#log_('info', 'amnesiac-rejoined', {
      view: this.#view,
      checkpoint: this.#stable.certificate.sequence,
    });
    this.#joinViewChangeInProgress();
  }

  /**
   * A replica that could not vote (amnesiac, or behind its own disk) and now can: if a view change
   * is under way it sat it out so far, and its VIEW-CHANGE may be the one the quorum misses.
   */
  #joinViewChangeInProgress(): void {
    if (this.#status !== 'view-change' || !this.#canVote()) return;
    if (this.#viewChanges.get(this.id)?.newView === this.#view) return;
    this.#persist({ kind: 'view', view: this.#view, viewChangeInProgress: true });
    const message = this.#buildViewChange(this.#view);
    this.#viewChanges.set(this.id, message);
    this.#validatedViewChanges.add(message);
    this.#broadcast(message);
    this.#tryNewView();
  }

  #onCheckpointProof(from: ReplicaId, message: CheckpointProof): void {
    if (this.#forkIn(message.certificate, false)) return;
    const stable = this.#stable.certificate;
    if (
      message.certificate.sequence === stable.sequence &&
      stable.sequence > 0 &&
      bytesEqual(message.certificate.stateRoot, stable.stateRoot)
    ) {
      // Its votes for the stable checkpoint, each checked on its own: fresh ones refresh ours.
      this.#mergeStableVotes(message.certificate.votes, false);
      return;
    }
    if (message.certificate.sequence <= stable.sequence) return;
    if (!this.#verifyCertificate(message.certificate)) {
      this.#reject(from, 'checkpoint-proof', 'certificate does not verify');
      return;
    }
    this.#onCertificate(message.certificate);
  }

  // ───────────────────────────── state transfer ─────────────────────────────

  /**
   * A transfer keeps its target while the sources still hold it: moving to every newer checkpoint
   * under a steady load would restart it every checkpoint interval and never finish (the log
   * catches up the rest). Only when the target is about to leave the sources' retained
   * checkpoints does it move on.
   */
  #retargetIfTargetAging(certificate: CheckpointCertificate): void {
    const transfer = this.#stateTransfer;
    if (transfer === null) return;
    const aging = (this.config.retainedCheckpoints - 1) * this.config.checkpointInterval;
    if (certificate.sequence >= transfer.target.sequence + Math.max(aging, this.config.checkpointInterval))
      transfer.retarget(certificate, this.#now);
  }

  #startStateTransfer(target: CheckpointCertificate, pool?: Map<string, Uint8Array>): void {
    if (this.#stateTransfer !== null) {
      this.#retargetIfTargetAging(target);
      return;
    }
    const localPool = pool ?? new Map<string, Uint8Array>();
    if (pool === undefined) {
      const current = this.#snapshotState();
      current.chunks.forEach((chunk, index) => {
        localPool.set(toHex(current.leaves[index]!), chunk);
      });
    }
    if (this.#restoredChunks !== null) {
      for (const [leaf, chunk] of this.#restoredChunks) if (!localPool.has(leaf)) localPool.set(leaf, chunk);
      this.#restoredChunks = null;
    }
    this.#log_('info', 'state-transfer-started', {
      target: target.sequence,
      lastExecuted: this.#lastExecuted,
      localChunks: localPool.size,
    });
    const distrusted = new Map<ReplicaId, string>();
    const rememberedSinceMs =
      this.#now - DISTRUSTED_SOURCE_MEMORY_TIMEOUTS * this.config.stateTransfer.sourceTimeoutMs;
    for (const [source, entry] of this.#distrustedSources) {
      if (entry.atMs >= rememberedSinceMs) distrusted.set(source, entry.reason);
      else this.#distrustedSources.delete(source);
    }
    for (const [source, entry] of this.#cutOff)
      if (this.#isCutOff(source)) distrusted.set(source, `cut off: ${entry.reason}`);
    this.#stateTransfer = new StateTransfer(
      {
        self: this.id,
        replicaCount: this.config.n,
        config: this.config.stateTransfer,
        hash: this.#crypto.hash,
        send: (to, message) => this.#send(to, message),
        log: (level, event, details) => this.#log_(level, event, details),
      },
      target,
      localPool,
      this.#now,
      distrusted,
    );
  }

  #finishStateTransferIfComplete(): void {
    const transfer = this.#stateTransfer;
    if (transfer === null || !transfer.complete) return;
    const checkpoint = transfer.result();
    const statistics = transfer.statistics();
    this.#stateTransfer = null;
    // A source left out from the start keeps the time and reason of the drop that put it there:
    // refreshed by every transfer that merely inherited it, it would stay distrusted for as long
    // as transfers follow one another.
    for (const [source, reason] of transfer.droppedSources())
      if (!this.#distrustedSources.has(source))
        this.#distrustedSources.set(source, { reason, atMs: this.#now });
    for (const source of transfer.deliveringSources()) this.#distrustedSources.delete(source);
    this.#installState(checkpoint, true);
    this.#log_('info', 'state-transfer-completed', {
      sequence: checkpoint.certificate.sequence,
      chunksTotal: statistics.chunksTotal,
      chunksFetched: statistics.chunksFetched,
      chunksReusedLocally: statistics.chunksReusedLocally,
      bytesFetched: statistics.bytesFetched,
      sourcesDropped: statistics.sourcesDropped,
      retargets: statistics.retargets,
      durationMs: this.#now - statistics.startedAt,
    });
    this.#executeReady();
  }

  /** Replaces the replicated state with a verified checkpoint's and makes it the stable one. */
  #installState(checkpoint: StoredCheckpoint, persist: boolean): void {
    // A bucket of the client table may be split into parts: its chunks say how many are the table's.
    const tableChunks = this.#clientTable.chunkCountIn(checkpoint.chunks);
    this.#clientTable.restore(checkpoint.chunks.slice(0, tableChunks));
    this.#service.restore(checkpoint.chunks.slice(tableChunks));
    const sequence = checkpoint.certificate.sequence;
    this.#lastExecuted = sequence;
    this.#lastProgressAt = this.#now;
    for (const pending of [...this.#pending.values()]) {
      const status = this.#clientTable.status(pending.request.clientId, pending.request.requestNumber);
      if (status.kind !== 'new') this.#removePending(pending);
    }
    this.#verifiedCertificates.add(`${sequence}:${toHex(checkpoint.certificate.stateRoot)}`);
    // Batches above the installed state run again (after a repair the replica may have executed
    // them on a corrupt state).
    for (const [key, instance] of this.#log) {
      instance.executed = key <= sequence;
      if (key > sequence) instance.executedDigestHex = null;
    }
    if (sequence > this.#stable.certificate.sequence) this.#makeStable(checkpoint, persist);
  }

  /**
   * A checkpoint's state this replica can serve: a retained stable one, or its own not yet stable
   * one (the requester holds a certificate for it and checks every byte against the root anyway).
   */
  #heldCheckpoint(
    sequence: number,
  ): { readonly leaves: readonly Digest[]; readonly chunks: readonly Uint8Array[] } | undefined {
    return (
      this.#retained.find((checkpoint) => checkpoint.certificate.sequence === sequence) ??
      this.#ownCheckpoints.get(sequence)
    );
  }

  #onManifestRequest(from: ReplicaId, message: ManifestRequest): void {
    const held = this.#heldCheckpoint(message.sequence);
    if (held !== undefined) {
      this.#send(from, { kind: 'manifest', sequence: message.sequence, leaves: held.leaves });
      return;
    }
    this.#sendUnavailable(from, message.sequence);
  }

  #onChunkRequest(from: ReplicaId, message: ChunkRequest): void {
    const held = this.#heldCheckpoint(message.sequence);
    if (held === undefined) {
      this.#sendUnavailable(from, message.sequence);
      return;
    }
    for (const index of message.indices) {
      const data = held.chunks[index];
      if (data === undefined) {
        this.#reject(from, 'chunk-request', `no chunk ${index}`);
        return;
      }
      // A transfer asks each source for each chunk once; one that asks on and on is held to a rate.
      if (!this.#withinBudget(this.#stateServedBudgets, from, data.length, 'state bytes served per second'))
        return;
      this.#send(from, { kind: 'chunk', sequence: message.sequence, index, data });
    }
  }

  #sendUnavailable(to: ReplicaId, sequence: SequenceNumber): void {
    if (this.#stable.certificate.sequence > sequence) {
      this.#send(to, { kind: 'state-unavailable', sequence, newest: this.#stable.certificate });
    }
  }

  #onStateUnavailable(from: ReplicaId, message: StateUnavailable): void {
    const transfer = this.#stateTransfer;
    if (transfer === null || message.newest.sequence <= transfer.target.sequence) return;
    if (!this.#verifyCertificate(message.newest)) {
      this.#reject(from, 'state-unavailable', 'certificate does not verify');
      return;
    }
    transfer.retarget(message.newest, this.#now);
    if (this.#knownCertificate === null || message.newest.sequence > this.#knownCertificate.sequence) {
      this.#knownCertificate = message.newest;
    }
  }

  // ───────────────────────────── catch-up ─────────────────────────────

  /**
   * Requests another replica holds and forwards: to the leader (it waits too long, or a new view
   * began) or to everybody (it waited half a request timeout). A forward says the sender holds the
   * request, so it counts as its acknowledgement; a request whose MAC this replica cannot check
   * is held once f + 1 distinct replicas forwarded it (one of them is correct and holds it).
   */
  #onForward(from: ReplicaId, message: ForwardedRequests): void {
    // Whatever the status: holding a request does not depend on the view.
    for (const request of message.requests) {
      if (request.readOnly || request.authenticator.length !== this.config.n) continue;
      if (this.#clientTable.status(request.clientId, request.requestNumber).kind !== 'new') continue;
      const key = requestKey(request.clientId, request.requestNumber);
      const digest = this.#requestDigest(request);
      const pending = this.#pending.get(key);
      if (pending !== undefined) {
        if (bytesEqual(pending.digest, digest)) pending.acks.add(from);
        continue;
      }
      if (this.#crypto.verifyRequest(request, digest)) {
        this.#holdRequest(request, digest);
        this.#pending.get(key)?.acks.add(from);
        continue;
      }
      const vouchers = this.#voucherFor(key, toHex(digest));
      if (vouchers === null) continue;
      vouchers.from.add(from);
      vouchers.request ??= request;
      if (vouchers.from.size >= correctWitnessSize(this.config)) this.#holdRequest(request, digest);
    }
    this.#tryPropose();
  }

  /**
   * An amnesiac learns its voting floor and amnesia horizon from the STATUS of Q − 1 other replicas
   * (with itself a quorum, which shares a correct replica with every quorum that moved to a view or
   * certified a checkpoint before the restart). STATUS is unsigned, so a claim counts only when it
   * is vouched for: a view at most the (f+1)-th highest view reported or this replica's own (which
   * moves only on a verified NEW-VIEW, f + 1 view changes or its own timers), and a checkpoint at
   * most the (f+1)-th highest reported or one whose certificate it verified. A reporter counts only
   * when both its claims are vouched; the floor is fixed once Q − 1 reporters count, as the highest
   * of their claims. Any Q − 1 reporters will do for the quorum argument, so leaving out a reporter
   * whose claim nobody vouches for costs no safety, and a lone faulty reporter that claims a view or
   * a checkpoint nobody reached is simply never counted (before, it set the floor and the horizon out
   * of reach, and the replica never voted again). See docs/ARCHITECTURE.md, Restart and amnesia.
   */
  #fixVotingFloor(): void {
    if (this.#votingFloor !== null) return;
    const reports = [...this.#statusesSinceRestart.values()];
    if (reports.length < this.#quorum - 1) return;
    const witnessed = (values: number[]): number =>
      values.sort((a, b) => b - a)[correctWitnessSize(this.config) - 1] ?? 0;
    const vouchedView = Math.max(this.#view, witnessed(reports.map((report) => report.view)));
    const vouchedStable = Math.max(
      this.#stable.certificate.sequence,
      this.#highestCertifiedSequence,
      witnessed(reports.map((report) => report.stable)),
    );
    const counted = reports.filter((report) => report.view <= vouchedView && report.stable <= vouchedStable);
    if (counted.length < this.#quorum - 1) return;
    this.#votingFloor = Math.max(this.#view, ...counted.map((report) => report.view));
    const highestStable = Math.max(
      this.#stable.certificate.sequence,
      ...counted.map((report) => report.stable),
    );
    this.#amnesiaHorizon = highestStable + this.config.logWindow;
    assert(this.#votingFloor <= vouchedView, 'voting floor above every vouched view');
    this.#statusesSinceRestart.clear();
    this.#log_('info', 'amnesiac-abstains', {
      throughView: this.#votingFloor,
      untilCheckpoint: this.#amnesiaHorizon,
      reporters: counted.length,
      unvouchedReporters: reports.length - counted.length,
    });
    this.#endAmnesiaIfPastHorizon();
  }

  #onStatus(from: ReplicaId, message: Status): void {
    const proven = this.#provenCheckpoint();
    if (message.stableCheckpoint > proven) {
      // Unproven since its earliest claim that is still unproven: a peer ahead whose earlier
      // claims were proven since (a correct one moving on) starts afresh.
      const earlier = this.#unprovenClaims.get(from);
      this.#unprovenClaims.set(
        from,
        earlier !== undefined && earlier.stable > proven
          ? { stable: Math.min(earlier.stable, message.stableCheckpoint), since: earlier.since }
          : { stable: message.stableCheckpoint, since: this.#now },
      );
    } else this.#unprovenClaims.delete(from);
    if (this.#votingFloor === null) {
      this.#statusesSinceRestart.set(from, { view: message.view, stable: message.stableCheckpoint });
      this.#fixVotingFloor();
    }
    if (message.view < this.#view && this.#status === 'normal' && this.#currentNewView !== null) {
      this.#send(from, this.#currentNewView);
    }
    if (message.view > this.#view && !message.viewChangeInProgress) {
      // The peer is in a later view we never saw installed; telling it where we are makes it
      // send us that view's NEW-VIEW.
      this.#send(from, this.#statusMessage());
    }
    this.#peerExecuted.set(from, message.lastExecuted);
    const helpedAt = this.#lastHelpedAt.get(from);
    if (helpedAt !== undefined && this.#now - helpedAt < this.config.statusIntervalMs / 2) return;
    const stable = this.#stable.certificate;
    const newest =
      this.#knownCertificate !== null && this.#knownCertificate.sequence > stable.sequence
        ? this.#knownCertificate
        : stable;
    if (newest.sequence > message.stableCheckpoint) {
      // The peer lacks a certificate we hold: it either catches up from it or makes it stable.
      this.#lastHelpedAt.set(from, this.#now);
      this.#send(from, { kind: 'checkpoint-proof', certificate: newest });
    }
    if (message.lastExecuted >= this.#lastExecuted) return;
    this.#lastHelpedAt.set(from, this.#now);
    const first = Math.max(message.lastExecuted, stable.sequence) + 1;
    const last = Math.min(this.#lastExecuted, first + CATCH_UP_BATCHES_PER_STATUS - 1);
    for (let sequence = first; sequence <= last; sequence++) {
      const instance = this.#log.get(sequence);
      if (instance?.committed == null) continue;
      const body = instance.bodies.get(instance.committed.digestHex);
      if (body === undefined) continue;
      this.#send(from, {
        kind: 'decided',
        sequence: instance.sequence,
        batchDigest: instance.committed.digest,
        replicaId: this.id,
      });
      this.#send(from, {
        kind: 'batch',
        sequence: instance.sequence,
        batchDigest: instance.committed.digest,
        batch: body,
      });
    }
  }

  #onBatchRequest(from: ReplicaId, message: BatchRequest): void {
    const instance = this.#log.get(message.sequence);
    const body = instance?.bodies.get(toHex(message.batchDigest));
    if (body === undefined) return;
    this.#send(from, {
      kind: 'batch',
      sequence: message.sequence,
      batchDigest: message.batchDigest,
      batch: body,
    });
  }

  /** A body is kept only when its digest is one this replica already has reason to want. */
  #onBatch(from: ReplicaId, message: Batch): void {
    if (!this.#inWindow(message.sequence)) return;
    const instance = this.#instance(message.sequence);
    const digestHex = toHex(message.batchDigest);
    if (instance.bodies.has(digestHex)) return;
    const wanted =
      instance.committed?.digestHex === digestHex ||
      this.#expectedProposals.get(message.sequence) === digestHex ||
      [...instance.commitVotes.values()].some((vote) => toHex(vote.batchDigest) === digestHex) ||
      [...instance.decidedVotes.values()].some((vote) => toHex(vote.batchDigest) === digestHex);
    if (!wanted) return;
    if (!bytesEqual(this.#batchDigest(message.batch), message.batchDigest)) {
      this.#reject(from, 'batch', 'body does not match its digest');
      return;
    }
    instance.bodies.set(digestHex, message.batch);
    if (instance.committed?.digestHex === digestHex) this.#persistCommitted(instance);
    const awaiting = this.#reproposalsAwaitingBody.get(message.sequence);
    if (awaiting !== undefined && toHex(awaiting) === digestHex) {
      this.#reproposalsAwaitingBody.delete(message.sequence);
      this.#propose(instance.sequence, message.batch, message.batchDigest);
    }
    this.#executeReady();
  }

  #statusMessage(): Status {
    return {
      kind: 'status',
      replicaId: this.id,
      view: this.#view,
      viewChangeInProgress: this.#status === 'view-change',
      lastExecuted: this.#lastExecuted,
      stableCheckpoint: this.#stable.certificate.sequence,
    };
  }

  // ───────────────────────────── view change ─────────────────────────────

  /**
   * `blame`: the replica suspects the leader it leaves (a request timed out, its proposal was
   * bad). Joining others, or a change asked for by the guardian, blames nobody: suspicions add
   * up to a reactive recovery, so they must come only from this replica's own observations.
   */
  #startViewChange(newView: ViewNumber, reason: string, blame: ReplicaId | null): void {
    this.#plannedViewChange = null;
    assert(newView > this.#view, 'view change must move to a higher view');
    const oldView = this.#view;
    this.#view = newView;
    this.#status = 'view-change';
    this.#viewChangeQuorumAt = null;
    this.#viewChangeAttempts++;
    this.#currentNewView = null;
    this.#expectedProposals = new Map();
    this.#reproposalsAwaitingBody.clear();
    for (const instance of this.#log.values()) instance.prepareVotes.clear();
    this.#log_('info', 'view-change-started', { from: oldView, to: newView, reason });
    if (blame !== null) this.#suspect(blame, `view change: ${reason}`);
    if (!this.#canVote()) return;
    this.#persist({ kind: 'view', view: newView, viewChangeInProgress: true });
    const message = this.#buildViewChange(newView);
    this.#viewChanges.set(this.id, message);
    this.#validatedViewChanges.add(message);
    this.#broadcast(message);
    this.#tryNewView();
  }

  #buildViewChange(newView: ViewNumber): ViewChange {
    const stable = this.#stable.certificate;
    const prepared: PreparedEntry[] = [];
    const prePrepared: PrePreparedEntry[] = [];
    const sequences = [...this.#log.keys()]
      .filter((sequence) => sequence > stable.sequence)
      .sort((a, b) => a - b);
    for (const sequence of sequences) {
      const instance = this.#log.get(sequence)!;
      if (instance.prepared !== null) {
        prepared.push({
          sequence: instance.sequence,
          view: instance.prepared.view,
          batchDigest: instance.prepared.digest,
        });
      }
      for (const entry of instance.prePrepared.values()) {
        prePrepared.push({ sequence: instance.sequence, view: entry.view, batchDigest: entry.digest });
      }
    }
    const unsigned: ViewChange = {
      kind: 'view-change',
      newView,
      replicaId: this.id,
      checkpoint: stable,
      prepared,
      prePrepared,
      // Signed payloads include the epoch: it must be the one that signs.
      keyEpoch: this.#crypto.currentEpoch,
      signature: new Uint8Array(64) as Signature,
    };
    const signed = this.#crypto.sign(viewChangePayload(unsigned));
    return { ...unsigned, keyEpoch: signed.keyEpoch, signature: signed.signature };
  }

  /** Structural and cryptographic checks of a view change; the result is cached per object. */
  #validateViewChange(message: ViewChange): string | null {
    if (this.#validatedViewChanges.has(message)) return null;
    if (message.replicaId >= this.config.n) return 'unknown sender';
    if (
      !this.#crypto.verifyReplicaSignature(
        message.replicaId,
        message.keyEpoch,
        viewChangePayload(message),
        message.signature,
        'proof',
      )
    ) {
      return 'signature does not verify';
    }
    if (!this.#verifyCertificate(message.checkpoint)) return 'checkpoint certificate does not verify';
    const low = message.checkpoint.sequence;
    const high = low + this.config.logWindow;
    const preparedSequences = new Set<number>();
    for (const entry of message.prepared) {
      if (entry.sequence <= low || entry.sequence > high)
        return `prepared entry ${entry.sequence} outside the window`;
      if (entry.view >= message.newView) return 'prepared entry from a view not before the new view';
      if (preparedSequences.has(entry.sequence)) return `two prepared entries for ${entry.sequence}`;
      preparedSequences.add(entry.sequence);
    }
    const perSequence = new Map<number, number>();
    for (const entry of message.prePrepared) {
      if (entry.sequence <= low || entry.sequence > high)
        return `pre-prepared entry ${entry.sequence} outside the window`;
      if (entry.view >= message.newView) return 'pre-prepared entry from a view not before the new view';
      const count = (perSequence.get(entry.sequence) ?? 0) + 1;
      if (count > MAX_PRE_PREPARED_PER_SEQUENCE) return `too many pre-prepared entries for ${entry.sequence}`;
      perSequence.set(entry.sequence, count);
    }
    this.#validatedViewChanges.add(message);
    return null;
  }

  #onViewChange(from: ReplicaId, message: ViewChange): void {
    if (message.newView < this.#view) return;
    const known = this.#viewChanges.get(from);
    if (known !== undefined && known.newView >= message.newView && !isFresherViewChange(message, known)) {
      if (known.newView === message.newView && this.#status === 'normal' && message.newView === this.#view) {
        if (this.#currentNewView !== null) this.#send(from, this.#currentNewView);
      }
      return;
    }
    const problem = this.#validateViewChange(message);
    if (problem !== null) {
      this.#reject(from, 'view-change', problem);
      return;
    }
    this.#judgeViewChangeClaims(message);
    this.#viewChanges.set(from, message);
    if (message.newView === this.#view && this.#status === 'normal') {
      // A straggler asks for a view that is already installed: show it the NEW-VIEW.
      if (this.#currentNewView !== null) this.#send(from, this.#currentNewView);
      return;
    }
    if (this.#status === 'normal' && from === this.#leaderOf(this.#view) && message.newView > this.#view) {
      // The leader itself left its view (a restarted leader abdicates, see #onTick): nobody will
      // propose in it any more, so waiting for request timers would only stall every client.
      this.#startViewChange(viewNumber(this.#view + 1), 'the leader left its view', null);
    } else this.#maybeJoinViewChange();
    if (this.#status === 'view-change' && message.newView === this.#view) this.#tryNewView();
  }

  /**
   * Suspects the sender of a VIEW-CHANGE that claims a prepared batch no correct replica can have
   * prepared (VIEW_CHANGE_LIE_SUSPICION): another batch than the one this replica prepared itself
   * in the same view (two prepared certificates of one view and sequence share f + 1 replicas, a
   * correct one among them, which accepts one batch per view and sequence), or than the one a
   * quorum of COMMITs this replica counted decided, in that view or later (every later view
   * re-proposes the decided batch, and correct replicas accept nothing else there). Within the
   * bounds #validateViewChange checks; the decision rule outvotes such a lie anyway, so the
   * suspicion is all it costs. Lies that hide what the sender prepared stay undetected.
   */
  #judgeViewChangeClaims(message: ViewChange): void {
    for (const entry of message.prepared) {
      const instance = this.#log.get(entry.sequence);
      if (instance === undefined) continue;
      const committed = instance.committed;
      const contradictsCommit =
        committed !== null &&
        instance.committedByVotesInView !== null &&
        entry.view >= instance.committedByVotesInView &&
        !bytesEqual(entry.batchDigest, committed.digest);
      const ownPrepared = instance.prepared;
      const contradictsPrepared =
        ownPrepared !== null &&
        entry.view === ownPrepared.view &&
        !bytesEqual(entry.batchDigest, ownPrepared.digest);
      if (!contradictsCommit && !contradictsPrepared) continue;
      const reported = `view-change:${message.replicaId}:${message.keyEpoch}:${message.newView}`;
      if (!this.#reportOnce(reported)) return;
      this.#log_('warn', 'view-change-lie', {
        from: message.replicaId,
        sequence: entry.sequence,
        view: entry.view,
      });
      this.#suspect(message.replicaId, VIEW_CHANGE_LIE_SUSPICION);
      return;
    }
  }

  /** PBFT liveness rule: f + 1 replicas asking for later views cannot all be faulty, so follow them. */
  #maybeJoinViewChange(): void {
    const later: number[] = [];
    for (const message of this.#viewChanges.values()) {
      if (message.newView > this.#view) later.push(message.newView);
    }
    if (later.length < correctWitnessSize(this.config)) return;
    later.sort((a, b) => a - b);
    // The smallest view that f + 1 of them want (at least): the (f+1)-th largest.
    const target = later[later.length - correctWitnessSize(this.config)]!;
    if (target > this.#view)
      this.#startViewChange(viewNumber(target), 'f + 1 replicas moved to a later view', null);
  }

  /** Replicas whose latest VIEW-CHANGE asks for this view or a later one (this replica included). */
  #replicasPastCurrentView(): number {
    let count = 0;
    for (const message of this.#viewChanges.values()) if (message.newView >= this.#view) count++;
    return count;
  }

  #viewChangeSet(view: number): ViewChange[] {
    const set: ViewChange[] = [];
    for (const message of this.#viewChanges.values()) if (message.newView === view) set.push(message);
    return set.sort((a, b) => a.replicaId - b.replicaId);
  }

  #decide(viewChanges: readonly ViewChange[]): NewViewDecision {
    return decideNewView(viewChanges, this.config, {
      brokenIgnorePrepared: this.#testing.brokenViewChange === true,
    });
  }

  #tryNewView(): void {
    if (this.#status !== 'view-change' || this.#leaderOf(this.#view) !== this.id || !this.#canVote()) return;
    const set = this.#viewChangeSet(this.#view);
    if (set.length < this.#quorum) return;
    const decision = this.#decide(set);
    if (decision.kind === 'undecided') {
      this.#log_('debug', 'new-view-undecided', { view: this.#view, sequence: decision.sequence });
      return;
    }
    const unsigned: NewView = {
      kind: 'new-view',
      view: this.#view,
      replicaId: this.id,
      viewChanges: set,
      // Signed payloads include the epoch: it must be the one that signs.
      keyEpoch: this.#crypto.currentEpoch,
      signature: new Uint8Array(64) as Signature,
    };
    const signed = this.#crypto.sign(newViewPayload(unsigned));
    const message: NewView = { ...unsigned, keyEpoch: signed.keyEpoch, signature: signed.signature };
    this.#broadcast(message);
    this.#installNewView(message, decision);
  }

  #onNewView(from: ReplicaId, message: NewView): void {
    if (message.view < this.#view || (message.view === this.#view && this.#status === 'normal')) return;
    const leader = this.#leaderOf(message.view);
    if (message.replicaId !== leader) {
      this.#reject(from, 'new-view', 'not signed by the leader of its view');
      return;
    }
    if (
      !this.#crypto.verifyReplicaSignature(
        leader,
        message.keyEpoch,
        newViewPayload(message),
        message.signature,
        // Relayed to a straggler, it is a proof: its leader may have rotated keys since (every
        // decision in it is re-derived from the signed view changes anyway).
        from === leader ? 'message' : 'proof',
      )
    ) {
      // No retired-epoch suspicion here: a rejuvenated leader may send on the NEW-VIEW its old
      // process signed, learned back from the others (simulator --recovery seed 119).
      this.#reject(from, 'new-view', 'signature does not verify');
      return;
    }
    // What no correct leader signs, whatever its view changes' signatures say: a proof anyone
    // can check (evidence 'invalid-new-view'). Judged before the embedded signatures are, so a
    // leader that also forged one of them is caught all the same.
    const judged = newViewProblem(message, this.config, this.config.logWindow);
    if (judged !== null) {
      this.#reject(from, 'new-view', judged.problem);
      this.#reportInvalidNewView(message);
      this.#suspect(leader, 'sent a new-view that does not follow from its view changes');
      return;
    }
    for (const viewChange of message.viewChanges) {
      const problem = this.#validateViewChange(viewChange);
      if (problem !== null) {
        this.#reject(from, 'new-view', `embedded view change from ${viewChange.replicaId}: ${problem}`);
        return;
      }
    }
    const decision = this.#decide(message.viewChanges);
    if (decision.kind === 'undecided') {
      // Not expected (newViewProblem judged this very set, and its span is within the log window
      // the validation above checked); refused all the same, as before that check existed.
      this.#reject(from, 'new-view', `its view changes cannot decide sequence ${decision.sequence}`);
      this.#suspect(leader, 'sent a new-view that decides nothing');
      return;
    }
    if (message.view > this.#view) {
      this.#view = message.view;
      for (const instance of this.#log.values()) instance.prepareVotes.clear();
    }
    this.#installNewView(message, decision);
  }

  #installNewView(message: NewView, decision: NewViewDecision & { kind: 'decided' }): void {
    this.#status = 'normal';
    this.#leaderPace.viewStarted(this.#now);
    this.#viewChangeAttempts = 0;
    this.#currentNewView = message;
    if (this.#amnesiac && this.#votingFloor !== null && message.view > this.#votingFloor) {
      this.#amnesiac = false;
      this.#log_('info', 'amnesiac-rejoined', { view: message.view });
    }
    this.#restartAbstention = null;
    this.#voteBound = 0;
    if (this.#canVote())
      this.#persist({
        kind: 'view',
        view: message.view,
        viewChangeInProgress: false,
        voteBound: sequenceNumber(0),
      });
    this.#log_('info', 'view-installed', {
      view: message.view,
      leader: this.#leaderOf(message.view),
      checkpoint: decision.checkpoint.sequence,
      reproposals: decision.proposals.length,
    });
    // Everything the decision fixes is recorded before anything else runs: adopting the
    // checkpoint below may trigger proposals, which must start after the re-proposed range.
    this.#viewFloor = decision.checkpoint.sequence;
    this.#expectedProposals = new Map();
    for (const proposal of decision.proposals) {
      const digest = proposal.batchDigest ?? this.#emptyBatchDigest;
      this.#expectedProposals.set(proposal.sequence, toHex(digest));
    }
    this.#viewResumption = {
      after: Math.max(decision.maxSequence, decision.checkpoint.sequence),
      reproposals: decision.proposals.length,
      installedAt: this.#now,
    };
    const leading = this.#leaderOf(message.view) === this.id;
    if (leading) {
      this.#nextSequence = sequenceNumber(Math.max(decision.maxSequence, decision.checkpoint.sequence) + 1);
      for (const proposal of decision.proposals) {
        this.#reproposalsAwaitingBody.set(proposal.sequence, proposal.batchDigest ?? this.#emptyBatchDigest);
      }
    }
    for (const pending of this.#pending.values()) {
      pending.timerStartedAt = this.#now;
      pending.forwarded = false;
    }
    this.#rebuildQueues();
    // The new leader proposes a request once Q − 1 backups hold it, and what they told the old
    // leader does not count: tell the new one what is still waiting here, so a view change costs
    // the clients one extra hop instead of a retransmission timeout. (Clients send every request
    // to every replica, so the new leader normally holds them already; one it lacks reaches it in
    // the forwards at half a request timeout.)
    if (!leading && this.#pending.size > 0) this.#announceHeld([...this.#pending.values()]);
    this.#onCertificate(decision.checkpoint);
    if (leading) {
      this.#reproposalsAwaitingBody.clear();
      for (const proposal of decision.proposals) {
        if (!this.#inWindow(proposal.sequence)) continue;
        const digest = proposal.batchDigest ?? this.#emptyBatchDigest;
        const body =
          proposal.batchDigest === null ? [] : this.#log.get(proposal.sequence)?.bodies.get(toHex(digest));
        if (body !== undefined) {
          this.#propose(proposal.sequence, body, digest);
        } else {
          this.#reproposalsAwaitingBody.set(proposal.sequence, digest);
          this.#requestBody(this.#instance(proposal.sequence), digest);
        }
      }
    }
    this.#tryPropose();
  }

  /** After a view change, requests not executed go back into the proposal queues. */
  #rebuildQueues(): void {
    this.#queues.clear();
    for (const pending of this.#pending.values()) {
      pending.proposedInView = null;
      let queue = this.#queues.get(pending.request.clientId);
      if (queue === undefined) {
        queue = [];
        this.#queues.set(pending.request.clientId, queue);
      }
      queue.push(pending);
    }
  }

  // ───────────────────────────── time ─────────────────────────────

  #onTick(): void {
    const now = this.#now;
    if (this.#abdicateAtFirstTick) {
      this.#abdicateAtFirstTick = false;
      if (this.#status === 'normal' && this.isLeader)
        this.#startViewChange(
          viewNumber(this.#view + 1),
          'restarted leader: it may have proposed in this view and forgotten it',
          null,
        );
    }
    if (this.#plannedViewChange !== null && now >= this.#plannedViewChange.deadline)
      this.#startPlannedViewChange();
    this.#checkRequestTimers();
    // A request held back behind its client's earlier one may have waited its grace out
    // (#nextProposable): time alone makes it proposable.
    this.#tryPropose();
    if (this.#status === 'view-change') {
      // As in PBFT, the timer runs only once a quorum asked for this view or a later one: a replica
      // alone in a view change waits for the others instead of racing to views nobody else joins.
      if (this.#viewChangeQuorumAt === null && this.#replicasPastCurrentView() >= this.#quorum) {
        this.#viewChangeQuorumAt = now;
      }
      const backoff = Math.min(2 ** (this.#viewChangeAttempts - 1), MAX_VIEW_CHANGE_BACKOFF);
      const timeout = this.config.viewChangeTimeoutMs * backoff;
      if (this.#viewChangeQuorumAt !== null && now - this.#viewChangeQuorumAt >= timeout) {
        // The leader of the view that never came failed its turn.
        this.#startViewChange(
          viewNumber(this.#view + 1),
          'new view did not arrive in time',
          this.#leaderOf(this.#view),
        );
      }
    }
    if (now - this.#lastRetransmitAt >= this.config.retransmitIntervalMs) {
      this.#lastRetransmitAt = now;
      this.#retransmit();
    }
    if (now - this.#lastStatusAt >= this.config.statusIntervalMs) {
      this.#lastStatusAt = now;
      this.#broadcast(this.#statusMessage());
    }
    this.#checkSilence();
    this.#checkUnprovenClaims();
    this.#shareCertificateHistoryIfDue();
    if (
      now - this.#lastCertificateCheckAt >=
      CERTIFICATE_CHECK_STATUS_INTERVALS * this.config.statusIntervalMs
    ) {
      // Epochs expire with time, not only with keys-changed events: look again now and then.
      this.#lastCertificateCheckAt = now;
      this.#verifiedCertificates.clear();
      this.#checkStableCertificate();
      // Its vote for the restored state it waits to adopt may have been lost: say it again.
      if (this.#unverifiedRestore !== null) this.#recertificationDue = true;
    }
    this.#recertifyIfDue();
    if (this.#stateTransfer !== null) {
      this.#stateTransfer.tick(now);
      this.#finishStateTransferIfComplete();
    } else if (
      this.#knownCertificate !== null &&
      this.#knownCertificate.sequence > this.#lastExecuted &&
      now - this.#lastProgressAt >= this.config.catchUpTimeoutMs
    ) {
      this.#startStateTransfer(this.#knownCertificate);
    }
  }

  /**
   * Suspects the peers nothing has come from for the silence limit (SILENCE_SUSPICION). A silent
   * leader is replaced by the request timers; a silent backup leaves no other trace, and f of
   * them leave a quorum with no room for one more fault.
   */
  #checkSilence(): void {
    if (this.#silenceWatchSince === null) {
      this.#silenceWatchSince = this.#now;
      return;
    }
    const silent = this.#silentPeers();
    if (silent === null) return;
    for (const { peer, forMs } of silent)
      this.#suspectOncePerLimit(this.#silenceSuspectedAt, peer, `${SILENCE_SUSPICION} ${forMs} ms`);
  }

  /**
   * The peers nothing came from for the silence limit (one never heard, since the detector first
   * looked), or null when this replica hears fewer than a quorum, itself included: isolated
   * itself, it blames nobody.
   */
  #silentPeers(): { peer: ReplicaId; forMs: number }[] | null {
    const watchSince = this.#silenceWatchSince ?? this.#now;
    const silent: { peer: ReplicaId; forMs: number }[] = [];
    let heard = 1; // itself
    for (let index = 0; index < this.config.n; index++) {
      const peer = replicaId(index);
      if (peer === this.id) continue;
      const forMs = this.#now - (this.#lastHeardAt.get(peer) ?? watchSince);
      if (forMs < this.#silenceLimitMs) heard++;
      else silent.push({ peer, forMs });
    }
    return heard < this.#quorum ? null : silent;
  }

  /**
   * Suspects `peer` unless `lastAt` says it was suspected for the same cause within the silence
   * limit, nor when it is cut off (a proven replica's messages are dropped, not judged).
   */
  #suspectOncePerLimit(lastAt: Map<ReplicaId, number>, peer: ReplicaId, reason: string): boolean {
    if (this.#isCutOff(peer)) return false;
    const suspectedAt = lastAt.get(peer);
    if (suspectedAt !== undefined && this.#now - suspectedAt < this.#silenceLimitMs) return false;
    lastAt.set(peer, this.#now);
    this.#suspect(peer, reason);
    return true;
  }

  /** The highest checkpoint sequence a certificate verified here proves. */
  #provenCheckpoint(): number {
    return Math.max(this.#stable.certificate.sequence, this.#highestCertifiedSequence);
  }

  /** Suspects peers whose claim of a stable checkpoint stayed unproven (UNPROVEN_CHECKPOINT_SUSPICION). */
  #checkUnprovenClaims(): void {
    if (this.#unprovenClaims.size === 0) return;
    const proven = this.#provenCheckpoint();
    const hearsQuorum = this.#silentPeers() !== null;
    for (const [peer, claim] of [...this.#unprovenClaims]) {
      if (claim.stable <= proven) {
        this.#unprovenClaims.delete(peer);
        continue;
      }
      const forMs = this.#now - claim.since;
      if (!hearsQuorum || forMs < this.#silenceLimitMs) continue;
      if (this.#suspectOncePerLimit(this.#unprovenClaimSuspectedAt, peer, UNPROVEN_CHECKPOINT_SUSPICION))
        this.#log_('warn', 'unproven-checkpoint-claim', {
          replica: peer,
          claimed: claim.stable,
          proven,
          forMs,
        });
    }
  }

  /** At least one correct peer (the (f+1)-th highest report) executed beyond this replica. */
  #behindPeers(): boolean {
    const reports = [...this.#peerExecuted.values()].sort((a, b) => b - a);
    const witnessed = reports[correctWitnessSize(this.config) - 1];
    return witnessed !== undefined && witnessed > this.#lastExecuted;
  }

  #checkRequestTimers(): void {
    if (this.#pending.size === 0) return;
    const oldest = this.#restartTimersBehindOlderRequests();
    this.#spreadWaitingRequests(oldest);
    if (this.#status !== 'normal') return;
    if (this.#behindPeers() || this.#stateTransfer !== null) {
      // Our own lag, not the leader, explains the wait: catch up before blaming anybody.
      for (const pending of this.#pending.values()) pending.timerStartedAt = this.#now;
      return;
    }
    const timeout = this.config.requestTimeoutMs;
    const leader = this.#leaderOf(this.#view);
    for (const pending of oldest) {
      const waited = this.#now - pending.timerStartedAt;
      const received = this.#now - pending.receivedAt;
      if (
        leader === this.id &&
        pending.proposedInView !== this.#view &&
        this.#holders(pending) < this.#quorum
      ) {
        // Too few backups hold it, even after it was spread (f + 1 forwards make the others hold
        // it): its client sent it to too few replicas. Drop it, refuse the client.
        if (waited >= timeout && received >= timeout) this.#dropUnacknowledged(pending);
        continue;
      }
      if (leader !== this.id) {
        // The leader is blamed only for a request 2f + 1 replicas are known to hold (their
        // forwards at half a request timeout tell): f + 1 of them are correct and forwarded it to
        // everybody, so every correct replica holds it and a correct leader gets the Q − 1
        // acknowledgements it waits for. One a client gave to too few replicas blames nobody.
        if (this.#holders(pending) < 2 * this.config.f + 1) {
          if (received >= UNHELD_REQUEST_EXPIRY_TIMEOUTS * timeout) this.#removePending(pending);
          continue;
        }
      }
      if (
        waited >= timeout &&
        this.config.requireClientSignatures &&
        !this.#clientSignatureVerifies(pending)
      ) {
        // A faulty client's request no correct leader would propose: drop it rather than blame the leader.
        this.#removePending(pending);
        this.#reject(pending.request.clientId, 'request', 'client signature does not verify');
        continue;
      }
      if (waited >= timeout) {
        this.#startViewChange(
          viewNumber(this.#view + 1),
          `request ${pending.request.clientId}#${pending.request.requestNumber} not executed in ${waited} ms`,
          leader,
        );
        return;
      }
    }
    // To everybody, not only the leader: a request only some replicas got reaches the others,
    // which hold it once f + 1 forwarded it, and acknowledge it to the leader.
  }

  /**
   * Only a client's oldest pending request is timed: the others' timers start again at every tick
   * until they are the oldest. A correct leader puts each client's next request in the next batch
   * but no more than the client's fair share (#fairShare), so a client that keeps its whole window
   * of requests in flight waits for its own requests in turn: timed from their arrival, its last
   * ones waited dozens of batches and, past a request timeout, made the backups blame a correct
   * leader for its fairness (and spread them to everybody at half of it).
   */
  #restartTimersBehindOlderRequests(): PendingRequest[] {
    const clients = new Set<ClientId>();
    const oldest: PendingRequest[] = [];
    for (const pending of this.#pending.values()) {
      // Insertion order is arrival order: the first of a client's is its oldest.
      if (clients.has(pending.request.clientId)) {
        pending.timerStartedAt = this.#now;
        continue;
      }
      clients.add(pending.request.clientId);
      oldest.push(pending);
    }
    return oldest;
  }

  /**
   * A client's oldest request held for half a request timeout (as timed: see
   * #restartTimersBehindOlderRequests) goes to everybody, and again every request timeout while
   * it waits, in whatever status (a replica in a view change holds requests too,
   * and the others count it among the holders): a request only some replicas got reaches the
   * others, which hold it once f + 1 forwarded it, and the forwards tell every replica who holds
   * it (#checkRequestTimers blames the leader only for a request 2f + 1 hold).
   */
  #spreadWaitingRequests(oldest: readonly PendingRequest[]): void {
    const timeout = this.config.requestTimeoutMs;
    const toSpread: PendingRequest[] = [];
    for (const pending of oldest) {
      const due =
        pending.spreadAt === null
          ? this.#now - pending.timerStartedAt >= timeout / 2
          : this.#now - pending.spreadAt >= timeout;
      if (due) toSpread.push(pending);
    }
    if (toSpread.length === 0) return;
    for (const pending of toSpread) pending.spreadAt = this.#now;
    this.#forward(toSpread, (message) => this.#broadcast(message));
  }

  /**
   * Leader: a request fewer than Q − 1 backups said they hold for a whole request timeout, even
   * after it forwarded it to them. Its client sent it to the leader alone, or authenticated it for
   * too few replicas: proposing it could only stall the backups that cannot authenticate it, so it
   * is refused (dropped), the client's doing, logged once per client per interval.
   */
  #dropUnacknowledged(pending: PendingRequest): void {
    this.#removePending(pending);
    const client = pending.request.clientId;
    const logged = this.#unacknowledgedLoggedAt.get(client);
    if (logged !== undefined && this.#now - logged < UNACKNOWLEDGED_REQUEST_LOG_INTERVAL_MS) return;
    if (this.#unacknowledgedLoggedAt.size >= MAX_BUDGETED_CLIENTS) this.#unacknowledgedLoggedAt.clear();
    this.#unacknowledgedLoggedAt.set(client, this.#now);
    this.#log_('warn', 'request-refused', {
      client,
      requestNumber: pending.request.requestNumber,
      backupsHolding: pending.acks.size,
      reason:
        'too few backups hold it: the client sent it to the leader alone, or authenticated it for too few replicas',
    });
  }

  /** Resends this replica's own messages for work that has not completed: the network may lose them. */
  #retransmit(): void {
    let newestOwn: OwnCheckpoint | undefined;
    for (const own of this.#ownCheckpoints.values()) {
      if (newestOwn === undefined || own.sequence > newestOwn.sequence) newestOwn = own;
    }
    if (newestOwn !== undefined) this.#broadcast(newestOwn.vote);
    if (this.#status === 'view-change') {
      let own = this.#viewChanges.get(this.id);
      if (own !== undefined && own.newView === this.#view) {
        if (own.keyEpoch !== this.#crypto.currentEpoch || own.checkpoint !== this.#stable.certificate) {
          // Signed under an epoch that ends, or carrying a certificate whose votes age with their
          // signers' epochs: a view change that lasts would stop verifying and stall for good.
          // Re-signed now, with the stable checkpoint as it is (receivers take it as fresher).
          own = this.#buildViewChange(this.#view);
          this.#viewChanges.set(this.id, own);
          this.#validatedViewChanges.add(own);
          this.#tryNewView();
        }
        this.#broadcast(own);
      }
      return;
    }
    let resent = 0;
    for (const instance of this.#log.values()) {
      if (resent >= MAX_RETRANSMITTED_INSTANCES) break;
      const committed = instance.committed;
      if (committed !== null && !instance.bodies.has(committed.digestHex))
        this.#requestBody(instance, committed.digest);
      const proposal = instance.proposal;
      if (proposal === null || proposal.view !== this.#view || !this.#canVote()) continue;
      // Committed long ago is not enough: a re-proposal must also commit in this view, for the
      // replicas that never saw the earlier decision.
      if (this.#committedInView(instance, proposal)) continue;
      resent++;
      if (this.isLeader) {
        this.#broadcast({
          kind: 'pre-prepare',
          view: proposal.view,
          sequence: instance.sequence,
          batchDigest: proposal.digest,
          batch: proposal.batch,
          keyEpoch: proposal.keyEpoch,
          signature: proposal.signature,
        });
      } else {
        const prepare = instance.prepareVotes.get(this.id);
        if (prepare !== undefined) this.#broadcast(prepare);
      }
      const commit = instance.commitVotes.get(this.id);
      if (commit !== undefined && commit.view === this.#view) this.#broadcast(commit);
    }
    for (const [sequence, digest] of this.#reproposalsAwaitingBody)
      this.#requestBody(this.#instance(sequence), digest);
  }

  // ───────────────────────────── beyond f: forks and safe mode ─────────────────────────────

  /**
   * The distinct voters of a certificate whose votes verify here under their signers' current
   * epochs (null: malformed). Not the previous epoch a `proof` may use: an intruder may hold the
   * retired keys of replicas it was inside before their rejuvenation, and with them and f faulty
   * replicas' current keys it could forge a second certificate, and so a fork that never was
   * (simulator, --recovery, seed 573). A real fork is signed with current keys when it happens.
   */
  /** Equivocation evidence that holds under the keys accepted now (a thief's retired keys do not). */
  #validEquivocation(evidence: EquivocationEvidence): boolean {
    return (
      evidence.accused < this.config.n &&
      equivocationProblem(evidence, (signer, keyEpoch, payload, signature) =>
        this.#crypto.verifyReplicaSignature(signer, keyEpoch, payload, signature, 'message'),
      ) === null
    );
  }

  #validVoters(certificate: CheckpointCertificate): ReplicaId[] | null {
    if (certificate.sequence === 0 || certificate.sequence % this.config.checkpointInterval !== 0)
      return null;
    const payload = checkpointPayload(certificate.sequence, certificate.stateRoot);
    const seen = new Set<number>();
    const voters: ReplicaId[] = [];
    for (const vote of certificate.votes) {
      if (vote.replicaId >= this.config.n || seen.has(vote.replicaId)) return null;
      seen.add(vote.replicaId);
      if (
        this.#crypto.verifyReplicaSignature(vote.replicaId, vote.keyEpoch, payload, vote.signature, 'message')
      )
        voters.push(vote.replicaId);
    }
    return voters;
  }

  /**
   * Shows a certificate to the fork monitor (`checked`: this replica verified it already); on a
   * fork, enters safe mode and returns true (the caller stops handling the certificate).
   */
  #voteForks(vote: Checkpoint): boolean {
    if (this.#testing.brokenForkDetection === true) return false;
    const seen = this.#forks.observeVote(vote.sequence, vote.stateRoot, {
      replicaId: vote.replicaId,
      keyEpoch: vote.keyEpoch,
      signature: vote.signature,
    });
    if (seen.kind !== 'fork') return false;
    this.#enterSafeMode(seen.proof, 'own detection');
    return true;
  }

  #forkIn(certificate: CheckpointCertificate, checked: boolean): boolean {
    if (this.#testing.brokenForkDetection === true) return false;
    const seen = this.#forks.observe(certificate, checked);
    if (seen.kind !== 'fork') return false;
    this.#enterSafeMode(seen.proof, 'own detection');
    return true;
  }

  /**
   * Signs (sequence, root) for a CHECKPOINT vote, unless this replica signed another root for that
   * sequence: a correct replica never does, so that two certificates for one sequence always
   * name at least f + 1 faulty replicas (docs/intrusion-tolerance.md, Beyond f).
   */
  #signCheckpoint(sequence: SequenceNumber, root: Digest): Signed | null {
    const rootHex = toHex(root);
    const before = this.#signedRoots.get(sequence);
    if (before !== undefined && before !== rootHex) {
      this.#log_('error', 'second-root-refused', {
        sequence,
        signed: before.slice(0, 16),
        asked: rootHex.slice(0, 16),
      });
      return null;
    }
    this.#signedRoots.set(sequence, rootHex);
    while (this.#signedRoots.size > FORK_MONITOR_SEQUENCES)
      this.#signedRoots.delete(Math.min(...this.#signedRoots.keys()));
    return this.#crypto.sign(checkpointPayload(sequence, root));
  }

  /** Its most recent certified checkpoints to every peer, every few status intervals. */
  #shareCertificateHistoryIfDue(): void {
    const interval = CERTIFICATE_HISTORY_STATUS_INTERVALS * this.config.statusIntervalMs;
    if (this.#now - this.#lastHistoryAt < interval) return;
    this.#lastHistoryAt = this.#now;
    // The stable certificate as refreshed since (votes re-signed under current epochs verify longer).
    const stable = this.#stable.certificate;
    const certificates = this.#forks
      .recent(LIMITS.maxCertificateHistory)
      .map((certificate) =>
        certificate.sequence === stable.sequence && bytesEqual(certificate.stateRoot, stable.stateRoot)
          ? stable
          : certificate,
      );
    if (certificates.length > 0) this.#broadcast({ kind: 'certificate-history', certificates });
    // Again at the same pace as the history (a first relay may have been lost): the proofs it
    // holds against replicas not rejuvenated since.
    for (const evidence of this.#forks.keptEvidence()) {
      const current = this.#crypto.replicaEpoch(evidence.accused);
      if (current === undefined || current <= provenKeyEpoch(evidence))
        this.#broadcast({ kind: 'evidence-report', evidence });
    }
  }

  /**
   * A peer relays a proof against some replica. Alone it changes nothing here (cutting the accused
   * off is its guardian's answer, which reaches every guardian); what matters is that proofs found
   * at different correct replicas meet: colluders beyond f that each showed one side their
   * misbehaviour would otherwise leave every correct replica holding proof against f at most, and
   * a fork unnoticed (the simulator's --colluding runs). Cheapest checks first: the accused is not
   * proven here yet (in this incarnation), and at most n proofs per peer per status interval are
   * checked (each costs up to n + 1 signature checks).
   */
  #onRelayedEvidence(from: ReplicaId, evidence: Evidence): void {
    if (this.#testing.brokenForkDetection === true) return;
    if (evidence.accused < 0 || evidence.accused >= this.config.n) {
      this.#reject(
        from,
        'evidence-report',
        `accused replica ${evidence.accused} is not in the configuration`,
      );
      return;
    }
    // Held already, unless what is held is against an earlier incarnation than this piece.
    const kept = this.#forks.evidenceAgainst(evidence.accused);
    if (kept !== undefined && provenKeyEpoch(kept) >= provenKeyEpoch(evidence)) return;
    const current = this.#crypto.replicaEpoch(evidence.accused);
    if (current !== undefined && current > provenKeyEpoch(evidence)) return;
    const checked = this.#relayedEvidenceChecked.get(from);
    if (checked === undefined || this.#now - checked.since >= this.config.statusIntervalMs) {
      this.#relayedEvidenceChecked.set(from, { since: this.#now, count: 1 });
    } else if (checked.count >= this.config.n) {
      return;
    } else {
      checked.count++;
    }
    if (!this.#forks.holds(evidence)) {
      this.#reject(
        from,
        'evidence-report',
        `${evidence.kind} evidence against replica ${evidence.accused} does not hold`,
      );
      return;
    }
    this.#log_('warn', 'evidence-relayed', {
      from: String(from),
      kind: evidence.kind,
      accused: evidence.accused,
    });
    this.#countProven(evidence);
  }

  /** At most one history per sender per status interval is checked (each costs signature checks). */
  #onCertificateHistory(from: ReplicaId, message: CertificateHistory): void {
    const receivedAt = this.#historyReceivedAt.get(from);
    if (receivedAt !== undefined && this.#now - receivedAt < this.config.statusIntervalMs) return;
    this.#historyReceivedAt.set(from, this.#now);
    for (const certificate of message.certificates) if (this.#forkIn(certificate, false)) return;
  }

  #onForkProof(from: ReplicaId, proof: ForensicProof): void {
    if (this.#testing.brokenForkDetection === true) return;
    const checkedAt = this.#forkProofSentAt.get(from);
    if (checkedAt !== undefined && this.#now - checkedAt < this.config.statusIntervalMs) return;
    this.#forkProofSentAt.set(from, this.#now);
    const recomputed = this.#forks.observeProof(proof);
    if (recomputed === null) {
      this.#reject(from, 'fork-proof', 'the certificates do not prove a fork');
      return;
    }
    this.#enterSafeMode(recomputed, `fork proof from replica ${from}`);
  }

  /**
   * Beyond f: more than f replicas signed two roots for one checkpoint. Nothing this replica
   * executes or votes for can be trusted any more, so it rolls back to its stable checkpoint (a
   * state it can prove with a certificate), executes nothing, refuses writes, answers reads from
   * that state with signed replies, tells its peers (FORK-PROOF) and raises the alarm. Only an
   * operator ends it, with a new configuration without the culprits.
   */
  #enterSafeMode(proof: ForensicProof, source: string): void {
    if (this.#safeMode !== null) return;
    const stable = this.#stable;
    const tableChunks = this.#clientTable.chunkCountIn(stable.chunks);
    this.#clientTable.restore(stable.chunks.slice(0, tableChunks));
    this.#service.restore(stable.chunks.slice(tableChunks));
    const rolledBack = this.#lastExecuted - stable.certificate.sequence;
    this.#lastExecuted = stable.certificate.sequence;
    this.#stateTransfer = null;
    this.#safeMode = { proof, checkpoint: stable.certificate, sinceMs: this.#now };
    // Before the refusals and the FORK-PROOF leave (mustPrecedeSends); a proof read back from the
    // disk is there already.
    if (source !== 'stored proof') this.#persist({ kind: 'safe-mode', proof });
    this.#log_('error', 'safe-mode-entered', {
      source,
      sequence: proof.first.sequence,
      culprits: proof.culprits.join(','),
      checkpoint: stable.certificate.sequence,
      rolledBack,
    });
    this.#out.push({ kind: 'safe-mode', proof, checkpoint: stable.certificate });
    this.#broadcast({ kind: 'fork-proof', proof });
    this.#lastHistoryAt = this.#now;
  }

  /**
   * Safe mode's whole behaviour: the FORK-PROOF again every few status intervals and to any peer
   * that speaks (once per status interval each: a restarted peer must learn it too), writes
   * refused, reads answered from the certified state. Nothing else runs.
   */
  #stepInSafeMode(event: ReplicaEvent): Action[] {
    const safeMode = this.#safeMode!;
    switch (event.kind) {
      case 'tick':
        assert(event.now >= this.#now, 'time went backwards');
        this.#now = event.now;
        if (
          this.#now - this.#lastHistoryAt >=
          CERTIFICATE_HISTORY_STATUS_INTERVALS * this.config.statusIntervalMs
        ) {
          this.#lastHistoryAt = this.#now;
          this.#broadcast({ kind: 'fork-proof', proof: safeMode.proof });
          // A proof that rests on quorums goes on looking for one that rests on signatures: the
          // peers' certified checkpoints may show who signed two roots.
          if (safeMode.proof.otherEvidence.length > 0) {
            const certificates = this.#forks.recent(LIMITS.maxCertificateHistory);
            if (certificates.length > 0) this.#broadcast({ kind: 'certificate-history', certificates });
          }
        }
        break;
      case 'client-request':
        this.#answerInSafeMode(event.request, safeMode);
        break;
      case 'message': {
        const from = event.from;
        if (from === this.id || from >= this.config.n) break;
        if (safeMode.proof.otherEvidence.length > 0) this.#seekSignedProof(from, event.message);
        if (event.message.kind === 'fork-proof') break;
        const sentAt = this.#forkProofSentAt.get(from);
        if (sentAt !== undefined && this.#now - sentAt < this.config.statusIntervalMs) break;
        this.#forkProofSentAt.set(from, this.#now);
        this.#send(from, { kind: 'fork-proof', proof: safeMode.proof });
        break;
      }
      default:
        break;
    }
    const actions = this.#out;
    this.#out = [];
    return actions;
  }

  /**
   * In safe mode on a proof that names some replicas by other evidence alone (quorums, which
   * beyond f may be the colluders' own): a FORK-PROOF or certificate history from a peer may prove
   * f + 1 replicas by their own double signatures and equivocations, a proof that names only
   * culprits. It replaces the first, stored again and announced. At most one message per peer per
   * status interval is checked (each costs signature checks).
   */
  #seekSignedProof(from: ReplicaId, message: ReplicaMessage): void {
    if (message.kind !== 'fork-proof' && message.kind !== 'certificate-history') return;
    const checkedAt = this.#historyReceivedAt.get(from);
    if (checkedAt !== undefined && this.#now - checkedAt < this.config.statusIntervalMs) return;
    this.#historyReceivedAt.set(from, this.#now);
    let found: ForensicProof | null = null;
    if (message.kind === 'fork-proof') found = this.#forks.observeProof(message.proof);
    else {
      for (const certificate of message.certificates) {
        const seen = this.#forks.observe(certificate, false);
        if (seen.kind === 'fork') {
          found = seen.proof;
          break;
        }
      }
    }
    if (found === null || found.otherEvidence.length > 0) return;
    const safeMode = this.#safeMode!;
    this.#safeMode = { ...safeMode, proof: found };
    this.#persist({ kind: 'safe-mode', proof: found });
    this.#log_('error', 'safe-mode-proof-signed', {
      culprits: found.culprits.join(','),
      before: safeMode.proof.culprits.join(','),
      from,
    });
    this.#out.push({ kind: 'safe-mode', proof: found, checkpoint: safeMode.checkpoint });
    this.#broadcast({ kind: 'fork-proof', proof: found });
  }

  #answerInSafeMode(request: ClientRequest, safeMode: SafeMode): void {
    if (request.authenticator.length !== this.config.n) return;
    const sequence = safeMode.checkpoint.sequence;
    if (!request.readOnly) {
      this.#sendReply(request, { sequence, status: 'error', result: safeModeRefusalBytes() }, false, false);
      return;
    }
    if (!this.#withinBudget(this.#readOnlyBudgets, request.clientId, 1, 'read-only requests per second'))
      return;
    const answer = this.#readOnlyResult(request, sequence);
    if (!this.#replyWithinBudget(request.clientId, answer.result.length)) return;
    // Signed, so that a client can show what it was told about the certified state.
    const reply = this.#buildReply(request, answer, true);
    const tree = merkleTree(this.#crypto.hash, [this.#crypto.hash(replyContent(reply))]);
    const signed = this.#crypto.sign(replyBatchPayload(sequence, tree.root));
    const proof: ReplyProof = {
      keyEpoch: signed.keyEpoch,
      signature: signed.signature,
      leafIndex: 0,
      leafCount: 1,
      path: tree.proof(0),
    };
    this.#out.push({ kind: 'reply', to: request.clientId, reply: { ...reply, proof } });
  }
}
