/**
 * The simulator's catalogue of Byzantine replicas. A Byzantine replica runs the real core (so it
 * knows the protocol state and can attack at the worst moment) and an adversary that rewrites,
 * withholds, delays, forges or adds to what the core sends. It signs with its own keys only:
 * like a real intruder it holds its replica's keys and nobody else's.
 *
 * One entry is about clients: with 'large-values-client' the intruder also holds a client (its own
 * keyspace, valid keys) and runs the LargeValueClient of workload.ts, which tries to make correct
 * replicas' state too large to checkpoint. The replica it holds follows the protocol otherwise
 * (with a second behaviour drawn under `--byzantine all`, it misbehaves too).
 *
 * One entry breaks the "own keys only" rule on purpose: 'key-thief' (key-thief.ts) models an
 * intruder that took every replica's session keys shortly before that replica's rejuvenation and
 * replays them once their epochs are retired. The simulator hands it the keys (`steal`) and, for a
 * run with one, rotates every replica's keys on a recovery schedule (key-theft.ts).
 */
import type { ProtocolConfig } from '../core/config.js';
import type { CoreCrypto } from '../core/crypto.js';
import {
  digest as asDigest,
  type ClientId,
  type Digest,
  type ReplicaId,
  replicaId,
  type SequenceNumber,
  type Signature,
  sequenceNumber,
  viewNumber,
} from '../messages/ids.js';
import {
  batchContent,
  checkpointPayload,
  proposalPayload,
  requestContent,
  viewChangePayload,
} from '../messages/signing.js';
import type {
  ClientRequest,
  Evidence,
  PrePrepare,
  ReplicaMessage,
  Reply,
  Status,
  ViewChange,
} from '../messages/types.js';
import type { ScheduleParameters } from '../core/schedule.js';
import type { SigningKeyPair } from '../crypto/keys.js';
import type { StolenKey } from './key-theft.js';
import { KeyThief } from './key-thief.js';
import type { Prng } from './prng.js';

export const BYZANTINE_CATALOGUE = [
  'silent',
  'equivocate',
  'forge-signatures',
  'replay',
  'wrong-digests',
  'slow-leader',
  'lie-in-view-change',
  'corrupt-checkpoint',
  'flood',
  'lie-in-replies',
  'large-values-client',
  'inflated-status',
  'key-thief',
  // Aimed at recovery (drawn by `--byzantine all` only with --recovery; see RECOVERY_BEHAVIOURS).
  'stalling-source',
  'lying-source',
  'frame',
  'flood-recovering',
] as const;

export type ByzantineBehaviour = (typeof BYZANTINE_CATALOGUE)[number];

/**
 * Behaviours that never change a vote: a replica with only these still prepares, commits, signs
 * checkpoints and view changes as a correct one would. The simulator rejuvenates a correct replica
 * alongside 'inflated-status' (the attack needs an amnesiac target) only when the other faults
 * leave room for it in f: an amnesiac counts against f. Not 'key-thief': the certificates it forges
 * carry its own signed vote for a state root nobody computed.
 */
export const VOTE_HONEST_BEHAVIOURS: readonly ByzantineBehaviour[] = [
  'inflated-status',
  'lie-in-replies',
  'large-values-client',
];

/**
 * What 'inflated-status' claims: a view and a stable checkpoint nobody will ever reach. An amnesiac
 * that believed it would sit out every view and never reach its amnesia horizon.
 */
export const INFLATED_CLAIM = 2 ** 50;

/**
 * Behaviours that only bite when the replica leads a view. Not 'key-thief': it forges a NEW-VIEW
 * for the next view it leads whenever it replays, but its other forgeries need no leadership.
 */
export const LEADER_BEHAVIOURS: readonly ByzantineBehaviour[] = ['equivocate', 'slow-leader'];

/**
 * Behaviours aimed at recovery: a state-transfer source that answers just before the requester
 * would give up on it, one that answers with wrong manifests, chunks and batches, a replica that
 * reports suspicions of a correct replica to its guardian to get it accused ("frame"), and one
 * that floods the replicas being rejuvenated while they catch up. `--byzantine all` draws them only
 * with --recovery (the first two matter without it too and can be named explicitly).
 */
export const RECOVERY_BEHAVIOURS: readonly ByzantineBehaviour[] = [
  'stalling-source',
  'lying-source',
  'frame',
  'flood-recovering',
];

/** State-transfer answers: what a stalling or lying source withholds or falsifies. */
const STATE_TRANSFER_ANSWERS: ReadonlySet<ReplicaMessage['kind']> = new Set([
  'manifest',
  'chunk',
  'batch',
  'state-unavailable',
  'checkpoint-proof',
]);

export function isByzantineBehaviour(name: string): name is ByzantineBehaviour {
  return (BYZANTINE_CATALOGUE as readonly string[]).includes(name);
}

export interface SendOptions {
  readonly delayMs?: number;
  readonly forgeMac?: boolean;
}

export interface AdversaryContext {
  readonly self: ReplicaId;
  readonly config: ProtocolConfig;
  readonly prng: Prng;
  readonly crypto: CoreCrypto;
  now(): number;
  sendMessage(to: ReplicaId, message: ReplicaMessage, options?: SendOptions): void;
  sendBytes(to: ReplicaId, bytes: Uint8Array): void;
  sendReply(to: ClientId, reply: Reply): void;
  /** Present when the run rotates key epochs: what 'key-thief' needs beyond a replica's own keys. */
  readonly keyTheft?: {
    readonly schedule: ScheduleParameters;
    /** How the run signs: the thief signs with stolen key pairs through it. */
    sign(signer: SigningKeyPair, payload: Uint8Array): Signature;
    /** Hands evidence to the guardians, as a compromised replica can over its IPC link. */
    reportEvidence(evidence: Evidence): void;
    /** Every signature the thief makes with a stolen key. */
    forged(signature: Signature): void;
  };
  /** Present with --recovery: the replica's link to its guardian, and what the intruder sees. */
  readonly guardian?: {
    /** Hands a suspicion to its guardian, as a compromised replica can over its IPC link. */
    reportSuspicion(accused: ReplicaId, reason: string): void;
    /** The replicas being rejuvenated now (the guardians announce it to every replica's peers). */
    recovering(): readonly ReplicaId[];
  };
}

const REPLAY_MEMORY = 256;

export class ByzantineAdversary {
  readonly behaviours: ReadonlySet<ByzantineBehaviour>;
  readonly #context: AdversaryContext;
  readonly #memory: ReplicaMessage[] = [];
  readonly #variants = new Map<string, PrePrepare>();
  /** The last STATUS the core sent, the template of the extra lies 'inflated-status' tells. */
  #lastStatus: Status | null = null;
  readonly #thief: KeyThief | null = null;
  /**
   * The intruder was evicted by a full rejuvenation of its replica (clean code, fresh keys, no
   * state), and has not broken in again yet: the replica follows the protocol. Only the key thief
   * goes on, since it replays keys it took away with it.
   */
  #evicted = false;
  /** With 'frame': the correct replica it tries to get accused. */
  readonly #framed: ReplicaId | null;

  constructor(behaviours: readonly ByzantineBehaviour[], context: AdversaryContext) {
    this.behaviours = new Set(behaviours);
    this.#context = context;
    // Drawn only with 'frame', so that the other behaviours' draws stay as they were.
    const others = this.#others();
    this.#framed = this.behaviours.has('frame') ? context.prng.pick(others) : null;
    if (this.behaviours.has('key-thief')) {
      const keyTheft = context.keyTheft;
      if (keyTheft === undefined) throw new Error("'key-thief' needs a run that rotates key epochs");
      this.#thief = new KeyThief({
        self: context.self,
        config: context.config,
        // A stream of its own, so its plans do not shift with the other behaviours' draws.
        prng: context.prng.fork(BYZANTINE_CATALOGUE.indexOf('key-thief')),
        crypto: context.crypto,
        schedule: keyTheft.schedule,
        sign: (signer, payload) => keyTheft.sign(signer, payload),
        now: () => context.now(),
        sendMessage: (to, message) => context.sendMessage(to, message),
        reportEvidence: (evidence) => keyTheft.reportEvidence(evidence),
        forged: (signature) => keyTheft.forged(signature),
      });
    }
  }

  /** 'key-thief': the session keys of a replica's epoch, taken just before it rotated. */
  steal(key: StolenKey): void {
    this.#thief?.steal(key);
  }

  /** Forged messages and evidence the key thief sent with stolen keys (0 for other behaviours). */
  get stolenKeyReplays(): number {
    return this.#thief?.replays ?? 0;
  }

  #has(behaviour: ByzantineBehaviour): boolean {
    return !this.#evicted && this.behaviours.has(behaviour);
  }

  /** A full rejuvenation of its replica evicted the intruder (until `breakIn`). */
  evict(): void {
    this.#evicted = true;
    this.#memory.length = 0;
    this.#variants.clear();
    this.#lastStatus = null;
  }

  /** The intruder is back in (the same exploit on the rejuvenated replica, on its new keys). */
  breakIn(): void {
    this.#evicted = false;
  }

  get evicted(): boolean {
    return this.#evicted;
  }

  /** With 'frame': whom it tries to get accused. */
  get framed(): ReplicaId | null {
    return this.#framed;
  }

  #remember(message: ReplicaMessage): void {
    if (!this.#has('replay')) return;
    this.#memory.push(message);
    if (this.#memory.length > REPLAY_MEMORY) this.#memory.shift();
  }

  incoming(from: ReplicaId, message: ReplicaMessage): void {
    this.#remember(message);
    this.#thief?.observe(from, message);
  }

  /** Called for every message the core sends to `to` (broadcasts arrive once per recipient). */
  outgoing(to: ReplicaId, message: ReplicaMessage): void {
    const context = this.#context;
    this.#thief?.observeOwn(message);
    if (this.#has('silent')) return;
    this.#remember(message);
    let rewritten: ReplicaMessage = message;
    let delayMs = 0;
    switch (message.kind) {
      case 'pre-prepare':
        if (this.#has('equivocate') && (to + message.sequence) % 2 === 1) rewritten = this.#variant(message);
        if (this.#has('slow-leader')) {
          const timeout = context.config.requestTimeoutMs;
          delayMs = Math.floor(timeout * (0.3 + 0.9 * this.#variantDelayFraction(message.sequence)));
        }
        break;
      case 'prepare':
      case 'commit':
        if (this.#has('wrong-digests') && context.prng.chance(0.7)) {
          rewritten = { ...message, batchDigest: this.#randomDigest() };
        }
        break;
      case 'checkpoint':
        if (this.#has('corrupt-checkpoint')) {
          const stateRoot = this.#randomDigest();
          const signed = context.crypto.sign(checkpointPayload(message.sequence, stateRoot));
          rewritten = { ...message, stateRoot, keyEpoch: signed.keyEpoch, signature: signed.signature };
        }
        break;
      case 'view-change':
        if (this.#has('lie-in-view-change')) rewritten = this.#lyingViewChange(message);
        break;
      case 'status':
        if (this.#has('inflated-status')) {
          this.#lastStatus = message;
          rewritten = this.#inflatedStatus(message);
        }
        break;
      default:
        break;
    }
    if (STATE_TRANSFER_ANSWERS.has(message.kind)) {
      // Just under the requester's source timeout: it waits as long as it can before trying
      // another source, for every request it sends this one.
      if (this.#has('stalling-source'))
        delayMs = Math.floor(context.config.stateTransfer.sourceTimeoutMs * 0.9);
      if (this.#has('lying-source')) rewritten = this.#lyingStateAnswer(rewritten);
    }
    if (this.#has('forge-signatures')) rewritten = this.#forgeSignature(rewritten);
    const forgeMac = this.#has('forge-signatures') && context.prng.chance(0.1);
    context.sendMessage(to, rewritten, { delayMs, forgeMac });
  }

  reply(to: ClientId, reply: Reply): void {
    if (this.#has('silent')) return;
    if (this.#has('lie-in-replies')) {
      this.#context.sendReply(to, {
        ...reply,
        result: this.#context.prng.bytes(1 + this.#context.prng.int(12)),
      });
      return;
    }
    this.#context.sendReply(to, reply);
  }

  tick(): void {
    const context = this.#context;
    if (this.#has('silent')) return;
    const others = this.#others();
    if (this.#has('replay') && this.#memory.length > 0 && context.prng.chance(0.3)) {
      context.sendMessage(context.prng.pick(others), context.prng.pick(this.#memory));
    }
    if (this.#has('flood')) this.#flood(others);
    if (this.#has('flood-recovering')) {
      const targets = context.guardian?.recovering().filter((id) => id !== context.self) ?? [];
      // Ten times the plain flood, at the replicas that are catching up, while they do.
      if (targets.length > 0) for (let round = 0; round < 10; round++) this.#flood(targets);
    }
    if (
      this.#has('frame') &&
      this.#framed !== null &&
      context.guardian !== undefined &&
      context.prng.chance(0.2)
    )
      context.guardian.reportSuspicion(this.#framed, 'view change: request not executed in time');
    this.#thief?.tick();
    // Lies often, so that a replica that just restarted hears one among its first reports.
    if (this.#has('inflated-status') && this.#lastStatus !== null && context.prng.chance(0.3))
      context.sendMessage(context.prng.pick(others), this.#inflatedStatus(this.#lastStatus));
  }

  /** A state-transfer answer that is wrong but well-formed: only the requester's checks catch it. */
  #lyingStateAnswer(message: ReplicaMessage): ReplicaMessage {
    const prng = this.#context.prng;
    switch (message.kind) {
      case 'manifest': {
        if (message.leaves.length === 0) return message;
        const leaves = message.leaves.slice();
        leaves[prng.int(leaves.length)] = this.#randomDigest();
        return { ...message, leaves };
      }
      case 'chunk': {
        const data = message.data.length === 0 ? prng.bytes(16) : message.data.slice();
        data[prng.int(data.length)]! ^= 0x01;
        return { ...message, data };
      }
      case 'batch':
        return { ...message, batch: message.batch.slice(0, Math.max(0, message.batch.length - 1)) };
      default:
        return message;
    }
  }

  /**
   * Its STATUS with an unreachable view and stable checkpoint. The execution point stays true: the
   * replica still wants the others' help to catch up, and keeps voting as a correct one would.
   */
  #inflatedStatus(message: Status): Status {
    return {
      ...message,
      view: viewNumber(INFLATED_CLAIM),
      viewChangeInProgress: false,
      stableCheckpoint: sequenceNumber(INFLATED_CLAIM),
    };
  }

  #others(): ReplicaId[] {
    const out: ReplicaId[] = [];
    for (let index = 0; index < this.#context.config.n; index++)
      if (index !== this.#context.self) out.push(replicaId(index));
    return out;
  }

  #randomDigest(): Digest {
    return asDigest(this.#context.prng.bytes(32));
  }

  #variantDelayFraction(sequence: number): number {
    // Deterministic per sequence so every recipient sees the same delay for one proposal.
    return ((sequence * 2654435761) >>> 0) / 4294967296;
  }

  /** A second, validly signed proposal for the same (view, sequence): provable equivocation. */
  #variant(message: PrePrepare): PrePrepare {
    const key = `${message.view}:${message.sequence}`;
    const known = this.#variants.get(key);
    if (known !== undefined) return known;
    const batch: ClientRequest[] = message.batch.length > 1 ? message.batch.slice(0, -1) : [];
    const crypto = this.#context.crypto;
    const batchDigest = crypto.hash(
      batchContent(batch.map((request) => crypto.hash(requestContent(request)))),
    );
    const signed = crypto.sign(proposalPayload(message.view, message.sequence, batchDigest));
    const variant: PrePrepare = {
      ...message,
      batch,
      batchDigest,
      keyEpoch: signed.keyEpoch,
      signature: signed.signature,
    };
    this.#variants.set(key, variant);
    if (this.#variants.size > 1024) this.#variants.delete(this.#variants.keys().next().value!);
    return variant;
  }

  /**
   * Lies in a view change, validly signed: either claims prepared certificates that never existed,
   * or is stale and reports nothing prepared at all (hiding what it helped to commit).
   */
  #lyingViewChange(message: ViewChange): ViewChange {
    const prng = this.#context.prng;
    let lying: ViewChange;
    if (prng.chance(0.5)) {
      lying = { ...message, prepared: [], prePrepared: [] };
    } else {
      const low = message.checkpoint.sequence;
      const prepared = [];
      const prePrepared = [];
      const count = 1 + prng.int(8);
      for (let offset = 1; offset <= count; offset++) {
        const sequence: SequenceNumber = sequenceNumber(low + offset);
        const view = viewNumber(Math.max(0, message.newView - 1));
        const batchDigest = this.#randomDigest();
        prepared.push({ sequence, view, batchDigest });
        prePrepared.push({ sequence, view, batchDigest });
      }
      lying = { ...message, prepared, prePrepared };
    }
    const signed = this.#context.crypto.sign(viewChangePayload(lying));
    return { ...lying, keyEpoch: signed.keyEpoch, signature: signed.signature };
  }

  #forgeSignature(message: ReplicaMessage): ReplicaMessage {
    if (!this.#context.prng.chance(0.5)) return message;
    const corrupt = (signature: Signature): Signature => {
      const copy = signature.slice() as Signature;
      copy[this.#context.prng.int(copy.length)]! ^= 0x40;
      return copy;
    };
    switch (message.kind) {
      case 'pre-prepare':
      case 'checkpoint':
      case 'view-change':
      case 'new-view':
        return { ...message, signature: corrupt(message.signature) };
      case 'prepare':
        return { ...message, proposalSignature: corrupt(message.proposalSignature) };
      default:
        return message;
    }
  }

  /** Garbage frames, frames claiming absurd sizes, and cheap requests that ask for expensive work. */
  #flood(others: readonly ReplicaId[]): void {
    const context = this.#context;
    const prng = context.prng;
    for (let count = 0; count < 4; count++) {
      context.sendBytes(prng.pick(others), prng.bytes(1 + prng.int(200)));
    }
    // A pre-prepare tag followed by a length prefix claiming gigabytes.
    context.sendBytes(prng.pick(others), Uint8Array.of(0x10, 0xff, 0xff, 0xff, 0xff, 0x0f));
    const target = prng.pick(others);
    context.sendMessage(target, {
      kind: 'status',
      replicaId: context.self,
      view: viewNumber(0),
      viewChangeInProgress: false,
      lastExecuted: sequenceNumber(0),
      stableCheckpoint: sequenceNumber(0),
    });
    context.sendMessage(target, {
      kind: 'chunk-request',
      sequence: sequenceNumber(prng.int(64)),
      indices: [prng.int(65536)],
    });
    context.sendMessage(target, {
      kind: 'batch-request',
      sequence: sequenceNumber(1 + prng.int(64)),
      batchDigest: this.#randomDigest(),
    });
  }
}
