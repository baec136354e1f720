/**
 * The 'key-thief' Byzantine behaviour (byzantine.ts): an intruder that was inside every replica
 * shortly before that replica's rejuvenation and took its session keys, keeps every key it ever
 * saw, and replays them from the replica it holds once their epochs are retired: the attack of
 * docs/intrusion-tolerance.md, "Epoch lifetimes" (an intruder that stole the keys of four replicas
 * of six one by one, never holding more than one, forged a checkpoint certificate that every
 * replica adopted).
 *
 * For each stolen epoch it tries at several moments after the retirement: inside the grace
 * window of the epoch (where the keys of at most k replicas retired in the current slot may
 * still verify as proofs), at its edge, right after it, well after it, and after the victim's
 * next rotation. Each attempt sends
 * - a CHECKPOINT-PROOF whose certificate covers a made-up state root with its own current vote
 *   and one vote of every other replica under that replica's stolen keys (a quorum, if they
 *   verified);
 * - a CHECKPOINT of its own under its own retired epoch (a message must use the current epoch);
 * - a VIEW-CHANGE of its own carrying that certificate;
 * - a NEW-VIEW for the next view it leads, built from view changes of the other replicas forged
 *   with their stolen keys, each reporting nothing prepared (it would erase committed batches);
 * - a PREPARE carrying a second proposal of the current leader signed with the leader's stolen
 *   key, when the victim leads (a correct backup that believed it would report equivocation);
 * - evidence against the victim signed with its stolen key (a conflicting checkpoint vote and an
 *   equivocation), handed to the guardians as a compromised replica can.
 * With the key-epoch rules none of this may be accepted outside the stated grace; the simulator's
 * checker (key-theft.ts) judges every signature a correct party accepts.
 */
import type { ProtocolConfig } from '../core/config.js';
import type { CoreCrypto } from '../core/crypto.js';
import {
  digest as asDigest,
  type Digest,
  type ReplicaId,
  replicaId,
  sequenceNumber,
  type Signature,
  toHex,
  viewNumber,
} from '../messages/ids.js';
import { quorumSize } from '../core/quorum.js';
import type { SigningKeyPair } from '../crypto/keys.js';
import {
  checkpointPayload,
  newViewPayload,
  proposalPayload,
  viewChangePayload,
} from '../messages/signing.js';
import type {
  Checkpoint,
  CheckpointCertificate,
  CheckpointVote,
  Evidence,
  NewView,
  PrePrepare,
  ReplicaMessage,
  SignedProposal,
  ViewChange,
} from '../messages/types.js';
import { type ScheduleParameters, slotAt } from '../core/schedule.js';
import type { StolenKey } from './key-theft.js';
import type { Prng } from './prng.js';

export interface KeyThiefContext {
  readonly self: ReplicaId;
  readonly config: ProtocolConfig;
  readonly prng: Prng;
  /** Its own replica's crypto: its current keys, which it holds anyway. */
  readonly crypto: CoreCrypto;
  /** The cluster's recovery schedule: public, so the thief knows when graces end. */
  readonly schedule: ScheduleParameters;
  /** The run's signature scheme (sim-crypto.ts), applied to a stolen key pair. */
  sign(signer: SigningKeyPair, payload: Uint8Array): Signature;
  now(): number;
  sendMessage(to: ReplicaId, message: ReplicaMessage): void;
  /** Hands evidence to the guardians, as a compromised replica can over its IPC link. */
  reportEvidence(evidence: Evidence): void;
  /** Every signature made with a stolen key (the simulator counts those a correct party accepts). */
  forged(signature: Signature): void;
}

/** When, relative to a stolen epoch's retirement, an attempt is made. */
export type ReplayMoment =
  'inside-grace' | 'grace-edge' | 'after-grace' | 'long-after' | 'after-next-rotation';

interface PlannedReplay {
  readonly atMs: number;
  readonly key: StolenKey;
  readonly moment: ReplayMoment;
}

/** Incoming checkpoint votes kept per sequence, to assemble a genuine certificate from. */
const VOTE_SEQUENCES_KEPT = 4;

export class KeyThief {
  readonly #context: KeyThiefContext;
  /** Every key it ever took, per replica, oldest first. */
  readonly #stolen = new Map<ReplicaId, StolenKey[]>();
  /** Pending attempts, earliest first. */
  #planned: PlannedReplay[] = [];
  /** The highest view its own replica has been in (from what its core sends). */
  #view = 0;
  /** The highest checkpoint sequence it has seen certified or voted. */
  #checkpointSequence = 0;
  /** Checkpoint votes seen, by sequence, then state root, then voter. */
  readonly #votes = new Map<number, Map<string, Map<ReplicaId, Checkpoint>>>();
  /** The newest certificate assembled from a quorum of genuine votes. */
  #genuineCertificate: CheckpointCertificate | null = null;
  /** The newest proposal it received, and from which leader. */
  #latestProposal: PrePrepare | null = null;
  /** Forged messages sent and forged evidence handed over, each carrying a stolen signature. */
  replays = 0;

  constructor(context: KeyThiefContext) {
    this.#context = context;
  }

  /** The keys of `key.replica`'s epoch `key.epoch`, taken just before that replica rotated. */
  steal(key: StolenKey): void {
    let keys = this.#stolen.get(key.replica);
    if (keys === undefined) {
      keys = [];
      this.#stolen.set(key.replica, keys);
    }
    keys.push(key);
    const { prng, schedule } = this.#context;
    const retiredAt = key.retiredAtMs;
    const graceEnd = slotAt(schedule, retiredAt).endMs;
    const period = schedule.periodMs;
    const slot = schedule.recoveryBoundMs;
    const plan: [ReplayMoment, number][] = [
      ['inside-grace', retiredAt + 1 + prng.int(Math.max(1, Math.floor((graceEnd - retiredAt) / 2)))],
      ['grace-edge', Math.max(retiredAt + 1, graceEnd - 1 - prng.int(30))],
      ['after-grace', graceEnd + 1 + prng.int(Math.floor(slot / 2))],
      ['long-after', retiredAt + Math.floor(period / 2) + prng.int(Math.floor(period / 2))],
      ['after-next-rotation', retiredAt + period + slot + prng.int(period)],
    ];
    for (const [moment, atMs] of plan) this.#planned.push({ atMs, key, moment });
    this.#planned.sort((a, b) => a.atMs - b.atMs);
  }

  /** A message its own core sends (before any other behaviour rewrites it). */
  observeOwn(message: ReplicaMessage): void {
    switch (message.kind) {
      case 'status':
        this.#view = Math.max(this.#view, message.view);
        this.#checkpointSequence = Math.max(this.#checkpointSequence, message.stableCheckpoint);
        break;
      case 'view-change':
        this.#view = Math.max(this.#view, message.newView);
        break;
      case 'checkpoint':
        this.#recordVote(message);
        break;
      default:
        break;
    }
  }

  /** A message its replica received (already authenticated as coming from `from`). */
  observe(from: ReplicaId, message: ReplicaMessage): void {
    if (message.kind === 'checkpoint' && message.replicaId === from) this.#recordVote(message);
    if (message.kind === 'pre-prepare' && message.view % this.#context.config.n === from)
      this.#latestProposal = message;
  }

  tick(): void {
    const now = this.#context.now();
    while (this.#planned.length > 0 && this.#planned[0]!.atMs <= now) {
      const next = this.#planned.shift()!;
      this.#replay(next.key);
    }
  }

  #recordVote(vote: Checkpoint): void {
    let byRoot = this.#votes.get(vote.sequence);
    if (byRoot === undefined) {
      byRoot = new Map();
      this.#votes.set(vote.sequence, byRoot);
      if (this.#votes.size > VOTE_SEQUENCES_KEPT) {
        const oldest = Math.min(...this.#votes.keys());
        this.#votes.delete(oldest);
      }
    }
    const root = toHex(vote.stateRoot);
    let voters = byRoot.get(root);
    if (voters === undefined) {
      voters = new Map();
      byRoot.set(root, voters);
    }
    voters.set(vote.replicaId, vote);
    this.#checkpointSequence = Math.max(this.#checkpointSequence, vote.sequence);
    const quorum = quorumSize(this.#context.config);
    if (voters.size >= quorum && vote.sequence > (this.#genuineCertificate?.sequence ?? 0)) {
      this.#genuineCertificate = {
        sequence: vote.sequence,
        stateRoot: vote.stateRoot,
        votes: [...voters.values()]
          .sort((a, b) => a.replicaId - b.replicaId)
          .map((entry) => ({
            replicaId: entry.replicaId,
            keyEpoch: entry.keyEpoch,
            signature: entry.signature,
          })),
      };
    }
  }

  /** The key used for each other replica: `key` for its own replica, the newest stolen for the rest. */
  #keysFor(key: StolenKey): StolenKey[] {
    const chosen: StolenKey[] = [];
    for (let index = 0; index < this.#context.config.n; index++) {
      const replica = replicaId(index);
      if (replica === this.#context.self) continue;
      if (replica === key.replica) {
        chosen.push(key);
        continue;
      }
      const keys = this.#stolen.get(replica);
      if (keys !== undefined && keys.length > 0) chosen.push(keys[keys.length - 1]!);
    }
    return chosen;
  }

  #others(): ReplicaId[] {
    const out: ReplicaId[] = [];
    for (let index = 0; index < this.#context.config.n; index++)
      if (index !== this.#context.self) out.push(replicaId(index));
    return out;
  }

  /** A signature with a stolen key, reported as forged. */
  #forge(key: StolenKey, payload: Uint8Array): Signature {
    const signature = this.#context.sign(key.keys.signing, payload);
    this.#context.forged(signature);
    return signature;
  }

  #randomDigest(): Digest {
    return asDigest(this.#context.prng.bytes(32));
  }

  #sendToOthers(message: ReplicaMessage): void {
    for (const to of this.#others()) {
      this.#context.sendMessage(to, message);
      this.replays++;
    }
  }

  #replay(key: StolenKey): void {
    const context = this.#context;
    const interval = context.config.checkpointInterval;
    const forgedKeys = this.#keysFor(key);
    const sequence = sequenceNumber(
      (Math.floor(this.#checkpointSequence / interval) + 1 + context.prng.int(3)) * interval,
    );
    const stateRoot = this.#randomDigest();
    const forgedCertificate = this.#forgedCertificate(sequence, stateRoot, forgedKeys);
    this.#sendToOthers({ kind: 'checkpoint-proof', certificate: forgedCertificate });

    const ownRetired = this.#stolen.get(context.self);
    if (ownRetired !== undefined && ownRetired.length > 0) {
      const own = ownRetired[ownRetired.length - 1]!;
      this.#sendToOthers({
        kind: 'checkpoint',
        sequence,
        stateRoot,
        replicaId: context.self,
        keyEpoch: own.epoch,
        signature: this.#forge(own, checkpointPayload(sequence, stateRoot)),
      });
    }

    this.#sendToOthers(
      this.#signedViewChange(
        {
          kind: 'view-change',
          newView: viewNumber(this.#view + 1),
          replicaId: context.self,
          checkpoint: forgedCertificate,
          prepared: [],
          prePrepared: [],
          keyEpoch: context.crypto.currentEpoch,
          signature: emptySignature(),
        },
        null,
      ),
    );

    this.#sendToOthers(this.#forgedNewView(forgedKeys, this.#genuineCertificate ?? forgedCertificate));

    const proposal = this.#latestProposal;
    if (
      proposal !== null &&
      proposal.view % context.config.n === key.replica &&
      key.replica !== context.self
    ) {
      const batchDigest = this.#randomDigest();
      this.#sendToOthers({
        kind: 'prepare',
        view: proposal.view,
        sequence: proposal.sequence,
        batchDigest,
        replicaId: context.self,
        proposalKeyEpoch: key.epoch,
        proposalSignature: this.#forge(key, proposalPayload(proposal.view, proposal.sequence, batchDigest)),
      });
    }

    if (key.replica !== context.self) this.#frame(key);
  }

  /** Its own current vote and one vote per stolen key, over a root no correct replica computed. */
  #forgedCertificate(
    sequence: CheckpointCertificate['sequence'],
    stateRoot: Digest,
    keys: readonly StolenKey[],
  ): CheckpointCertificate {
    const payload = checkpointPayload(sequence, stateRoot);
    const own = this.#context.crypto.sign(payload);
    const votes: CheckpointVote[] = [
      { replicaId: this.#context.self, keyEpoch: own.keyEpoch, signature: own.signature },
      ...keys.map((stolen) => ({
        replicaId: stolen.replica,
        keyEpoch: stolen.epoch,
        signature: this.#forge(stolen, payload),
      })),
    ];
    votes.sort((a, b) => a.replicaId - b.replicaId);
    return { sequence, stateRoot, votes };
  }

  /** The view change, signed with `stolen` (forged in another replica's name) or its own current key. */
  #signedViewChange(unsigned: ViewChange, stolen: StolenKey | null): ViewChange {
    if (stolen === null) {
      const signed = this.#context.crypto.sign(viewChangePayload(unsigned));
      return { ...unsigned, keyEpoch: signed.keyEpoch, signature: signed.signature };
    }
    const message: ViewChange = { ...unsigned, replicaId: stolen.replica, keyEpoch: stolen.epoch };
    return { ...message, signature: this.#forge(stolen, viewChangePayload(message)) };
  }

  /**
   * A NEW-VIEW for the next view this replica leads: its own view change and one forged with each
   * stolen key, all reporting nothing prepared above `checkpoint`, so that the new view would
   * forget every batch committed since.
   */
  #forgedNewView(keys: readonly StolenKey[], checkpoint: CheckpointCertificate): NewView {
    const context = this.#context;
    const n = context.config.n;
    let view = this.#view + 1;
    while (view % n !== context.self) view++;
    const template: ViewChange = {
      kind: 'view-change',
      newView: viewNumber(view),
      replicaId: context.self,
      checkpoint,
      prepared: [],
      prePrepared: [],
      keyEpoch: context.crypto.currentEpoch,
      signature: emptySignature(),
    };
    const viewChanges = [
      this.#signedViewChange(template, null),
      ...keys.map((stolen) => this.#signedViewChange(template, stolen)),
    ].sort((a, b) => a.replicaId - b.replicaId);
    const unsigned: NewView = {
      kind: 'new-view',
      view: viewNumber(view),
      replicaId: context.self,
      viewChanges,
      keyEpoch: context.crypto.currentEpoch,
      signature: emptySignature(),
    };
    const signed = context.crypto.sign(newViewPayload(unsigned));
    return { ...unsigned, keyEpoch: signed.keyEpoch, signature: signed.signature };
  }

  /** Evidence against the stolen key's replica, signed with that key, handed to the guardians. */
  #frame(key: StolenKey): void {
    const context = this.#context;
    const certificate = this.#genuineCertificate;
    if (certificate !== null) {
      const stateRoot = this.#randomDigest();
      const vote: Checkpoint = {
        kind: 'checkpoint',
        sequence: certificate.sequence,
        stateRoot,
        replicaId: key.replica,
        keyEpoch: key.epoch,
        signature: this.#forge(key, checkpointPayload(certificate.sequence, stateRoot)),
      };
      context.reportEvidence({ kind: 'conflicting-checkpoint', accused: key.replica, certificate, vote });
      this.replays++;
    }
    const view = viewNumber(this.#latestProposal?.view ?? this.#view);
    const sequence = sequenceNumber(this.#latestProposal?.sequence ?? 1);
    const proposal = (batchDigest: Digest): SignedProposal => ({
      view,
      sequence,
      batchDigest,
      keyEpoch: key.epoch,
      signature: this.#forge(key, proposalPayload(view, sequence, batchDigest)),
    });
    context.reportEvidence({
      kind: 'equivocation',
      accused: key.replica,
      first: proposal(this.#randomDigest()),
      second: proposal(this.#randomDigest()),
    });
    this.replays++;
  }
}

function emptySignature(): Signature {
  return new Uint8Array(64) as Signature;
}
