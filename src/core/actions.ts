/**
 * What the core asks its driver (runtime or simulator) to do, and what it feeds back.
 *
 * Ordering rule, as in etcd-raft's Ready: actions are carried out in list order, and every
 * `persist` of a record for which `mustPrecedeSends(record)` holds must be durable before any
 * `send`, `broadcast` or `reply` that FOLLOWS it in the list is put on the wire. A driver may
 * batch the persists of several steps into one fsync (group commit) as long as it holds back the
 * later sends until then. The other records (commit decisions) and `persist-checkpoint` only
 * speed up a restart: they must become durable eventually, in order, but nothing waits for them.
 */
import type {
  CheckpointCertificate,
  ClientRequest,
  Evidence,
  ForensicProof,
  PrePrepare,
  ReplicaMessage,
  Reply,
} from '../messages/types.js';
import type {
  ClientId,
  Digest,
  ReplicaId,
  RequestNumber,
  SequenceNumber,
  ViewNumber,
} from '../messages/ids.js';

/** A record of the durable log, above the last stable checkpoint. */
export type DurableRecord =
  | {
      readonly kind: 'view';
      readonly view: ViewNumber;
      readonly viewChangeInProgress: boolean;
      /**
       * Every PREPARE and PRE-PREPARE this replica sends in `view` is for a sequence at or below
       * this (raised, by a new record, before a vote above it leaves). Accepted proposals are
       * persisted lazily, so this is what tells a restarted replica which sequences of its view it
       * may have voted on and forgotten: it votes again at once above the bound. Absent in records
       * written before the bound existed (the replica then sits its whole view out).
       */
      readonly voteBound?: SequenceNumber;
      /**
       * Written by a process that started amnesiac (a rejuvenation dropped its log) before it votes
       * at all: while it is the latest view record, a restart from this log comes back amnesiac.
       * Without it, a rejuvenated replica that crashed before its amnesia ended found an empty log
       * at a plain restart (its guardian restarted too), took it for a log with no votes, and voted
       * again in the views its previous process had voted in and forgotten.
       */
      readonly amnesiac?: true;
    }
  | { readonly kind: 'pre-prepare'; readonly message: PrePrepare }
  | {
      readonly kind: 'prepared';
      readonly view: ViewNumber;
      readonly sequence: SequenceNumber;
      readonly batchDigest: Digest;
    }
  | {
      readonly kind: 'committed';
      readonly view: ViewNumber;
      readonly sequence: SequenceNumber;
      readonly batchDigest: Digest;
      /**
       * The body when no pre-prepare record holds it already (it arrived by catch-up); null when a
       * pre-prepare record with this digest was persisted before.
       */
      readonly batch: readonly ClientRequest[] | null;
    }
  | {
      /**
       * The proof this replica entered safe mode on (beyond f). Kept through every compaction: a
       * restarted replica re-enters safe mode from it as soon as the proof verifies with the keys
       * it knows, and never if the cluster was given new keys (the operator's way out).
       */
      readonly kind: 'safe-mode';
      readonly proof: ForensicProof;
    };

/**
 * The sequence a record is filed under, for truncation at a checkpoint: a record at or below the
 * stable checkpoint is dropped. View records belong to no sequence (POSITIVE_INFINITY: only the
 * latest survives, superseded by later ones); a safe-mode record is never dropped
 * (MAX_SAFE_INTEGER: above every checkpoint, and not a view).
 */
export function recordSequence(record: DurableRecord): number {
  switch (record.kind) {
    case 'view':
      return Number.POSITIVE_INFINITY;
    case 'pre-prepare':
      return record.message.sequence;
    case 'prepared':
    case 'committed':
      return record.sequence;
    case 'safe-mode':
      return Number.MAX_SAFE_INTEGER;
  }
}

/**
 * Whether a record must be durable before the messages that follow it leave. The view (before a
 * VIEW-CHANGE) and a prepared certificate (its P-set entry, before COMMIT) are promises a later
 * VIEW-CHANGE must keep. An accepted proposal need not wait: a restarted replica sits out the
 * view it restarted in (see Replica), so it can never contradict a PREPARE it forgot, and its
 * Q-set entries for batches it went on to prepare follow from its prepared records. A commit
 * decision can be learnt again from the other replicas. Safe mode's refusals and FORK-PROOFs follow
 * its record, so that a replica that said it stopped stays stopped after a crash.
 */
export function mustPrecedeSends(record: DurableRecord): boolean {
  return record.kind === 'view' || record.kind === 'prepared' || record.kind === 'safe-mode';
}

/** A stable checkpoint with its state: what a restart or a state transfer resumes from. */
export interface StoredCheckpoint {
  readonly certificate: CheckpointCertificate;
  /** One digest per chunk; their Merkle root is certificate.stateRoot. */
  readonly leaves: readonly Digest[];
  readonly chunks: readonly Uint8Array[];
}

export interface ExecutedRequest {
  readonly clientId: ClientId;
  readonly requestNumber: RequestNumber;
  readonly requestDigest: Digest;
  /** Already executed before (a duplicate) or expired: not executed again. */
  readonly skipped: boolean;
}

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogDetails = Readonly<Record<string, string | number | boolean | null>>;

export type Action =
  | { readonly kind: 'persist'; readonly record: DurableRecord }
  /** Store the checkpoint and drop every durable record at or below its sequence. */
  | { readonly kind: 'persist-checkpoint'; readonly checkpoint: StoredCheckpoint }
  | { readonly kind: 'send'; readonly to: ReplicaId; readonly message: ReplicaMessage }
  /** Send to every other replica. */
  | { readonly kind: 'broadcast'; readonly message: ReplicaMessage }
  | { readonly kind: 'reply'; readonly to: ClientId; readonly reply: Reply }
  /** Observation: a batch was executed (checkers, metrics, dashboards). */
  | {
      readonly kind: 'executed';
      readonly sequence: SequenceNumber;
      readonly view: ViewNumber;
      readonly batchDigest: Digest;
      readonly requests: readonly ExecutedRequest[];
    }
  /** Transferable proof that a replica misbehaved; the guardian verifies and reacts. */
  | { readonly kind: 'evidence'; readonly evidence: Evidence }
  /** A suspicion (timeouts, unprovable misbehaviour); f + 1 distinct suspecters are needed to act. */
  | { readonly kind: 'suspect'; readonly replica: ReplicaId; readonly reason: string }
  /**
   * Alarm: proof of a fork, more than f replicas misbehaved (docs/intrusion-tolerance.md, Beyond
   * f). The replica is in safe mode from now on: it executes nothing and refuses writes, and
   * answers reads, signed, from `checkpoint`. The driver tells the guardian, logs and counts it.
   */
  | {
      readonly kind: 'safe-mode';
      readonly proof: ForensicProof;
      readonly checkpoint: CheckpointCertificate;
    }
  /** Structured log line; `rejected-*` events name the reason input was refused. */
  | { readonly kind: 'log'; readonly level: LogLevel; readonly event: string; readonly details: LogDetails };

export type ActionKind = Action['kind'];
