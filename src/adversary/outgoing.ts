/**
 * What an intruder does to the messages its replica's core sends: one pure function of the
 * outgoing message, the active behaviours and the randomness the environment hands in. The
 * simulator's Byzantine replicas (src/sim/byzantine.ts) and a real replica's test-only fault
 * injection (src/runtime/fault-modes.ts) both call it; whatever needs memory across messages
 * (replayed messages, the key thief) stays with the simulator's adversary.
 *
 * Every draw from `random` is made in a fixed order for a given message and set of behaviours, so
 * that the simulator's seeds replay exactly.
 */
import type { ProtocolConfig } from '../core/config.js';
import type { CoreCrypto } from '../core/crypto.js';
import {
  digest as asDigest,
  type Digest,
  type ReplicaId,
  type SequenceNumber,
  type Signature,
  sequenceNumber,
  viewNumber,
} from '../messages/ids.js';
import {
  batchContent,
  checkpointPayload,
  commitPayload,
  newViewPayload,
  proposalPayload,
  requestContent,
  viewChangePayload,
} from '../messages/signing.js';
import type {
  ClientRequest,
  NewView,
  PrePrepare,
  ReplicaMessage,
  Reply,
  Status,
  ViewChange,
} from '../messages/types.js';
import type { AdversaryBehaviour } from './catalogue.js';

/** The randomness an environment hands in: the simulator's seeded Prng, or a real random source. */
export interface AdversaryRandom {
  /** Uniform integer in [0, bound). */
  int(bound: number): number;
  chance(probability: number): boolean;
  pick<Item>(items: readonly Item[]): Item;
  bytes(length: number): Uint8Array;
}

/** Which behaviours are on now (an evicted intruder has none). */
export type ActiveBehaviours = (behaviour: AdversaryBehaviour) => boolean;

export interface RewriteContext {
  readonly config: ProtocolConfig;
  /** The replica's own crypto: an intruder signs with its replica's keys and nobody else's. */
  readonly crypto: CoreCrypto;
  readonly random: AdversaryRandom;
  /** The second proposal of an equivocation (equivocatingVariant; the simulator remembers them). */
  variantOf(message: PrePrepare): PrePrepare;
}

/** A message as the intruder lets it go: possibly rewritten, held back, or on a forged frame. */
export interface Rewritten {
  readonly message: ReplicaMessage;
  readonly delayMs: number;
  /** Send it on a frame whose authenticator is forged (the receiver's channel must refuse it). */
  readonly forgeMac: boolean;
}

/**
 * What 'inflated-status' claims: a view and a stable checkpoint nobody will ever reach. An amnesiac
 * that believed it would sit out every view and never reach its amnesia horizon.
 */
export const INFLATED_CLAIM = 2 ** 50;

/** State-transfer answers: what a stalling or lying source withholds or falsifies. */
const STATE_TRANSFER_ANSWERS: ReadonlySet<ReplicaMessage['kind']> = new Set([
  'manifest',
  'chunk',
  'batch',
  'state-unavailable',
  'checkpoint-proof',
]);

/** 'silent': nothing leaves the replica, neither messages nor replies. */
export function withholdsEverything(active: ActiveBehaviours): boolean {
  return active('silent');
}

/**
 * The message the core sends to `to`, as the active behaviours let it go, or null when it is
 * withheld. A broadcast is rewritten once per recipient.
 */
export function rewriteOutgoing(
  active: ActiveBehaviours,
  to: ReplicaId,
  message: ReplicaMessage,
  context: RewriteContext,
): Rewritten | null {
  if (withholdsEverything(active)) return null;
  const { config, crypto, random } = context;
  let rewritten: ReplicaMessage = message;
  let delayMs = 0;
  switch (message.kind) {
    case 'pre-prepare':
      if (active('equivocate') && receivesEquivocation(to, message.sequence))
        rewritten = context.variantOf(message);
      if (active('slow-leader')) delayMs = slowLeaderDelayMs(config, message.sequence);
      if (active('stalling-leader')) delayMs = stallingLeaderDelayMs(config);
      break;
    case 'prepare':
      if (active('wrong-digests') && random.chance(0.7))
        rewritten = { ...message, batchDigest: randomDigest(random) };
      break;
    case 'commit':
      if (active('wrong-digests') && random.chance(0.7)) {
        // Signed with its own key: a COMMIT is, and an unsigned lie would only be a bad signature.
        const batchDigest = randomDigest(random);
        const signed = crypto.sign(commitPayload(message.view, message.sequence, batchDigest));
        rewritten = { ...message, batchDigest, keyEpoch: signed.keyEpoch, signature: signed.signature };
      }
      break;
    case 'checkpoint':
      if (active('corrupt-checkpoint')) {
        const stateRoot = randomDigest(random);
        const signed = crypto.sign(checkpointPayload(message.sequence, stateRoot));
        rewritten = { ...message, stateRoot, keyEpoch: signed.keyEpoch, signature: signed.signature };
      }
      break;
    case 'view-change':
      if (active('lie-in-view-change')) rewritten = lyingViewChange(message, crypto, random);
      break;
    case 'new-view':
      if (active('lie-in-new-view')) rewritten = lyingNewView(message, crypto, random);
      break;
    case 'status':
      if (active('inflated-status')) rewritten = inflatedStatus(message);
      break;
    default:
      break;
  }
  if (STATE_TRANSFER_ANSWERS.has(message.kind)) {
    // Just under the requester's source timeout: it waits as long as it can before trying
    // another source, for every request it sends this one.
    if (active('stalling-source')) delayMs = Math.floor(config.stateTransfer.sourceTimeoutMs * 0.9);
    if (active('lying-source')) rewritten = lyingStateAnswer(rewritten, random);
  }
  if (active('forge-signatures')) rewritten = forgeSignature(rewritten, random);
  const forgeMac = active('forge-signatures') && random.chance(0.1);
  return { message: rewritten, delayMs, forgeMac };
}

/** 'equivocate': which backups get the second proposal (about half, a different half per sequence). */
export function receivesEquivocation(to: ReplicaId, sequence: SequenceNumber): boolean {
  return (to + sequence) % 2 === 1;
}

/**
 * 'slow-leader': how long a proposal is held back, 30% to 120% of the request timeout. The same
 * for every recipient of one proposal (a function of its sequence number), so some proposals
 * arrive in time and some make the backups suspect the leader.
 */
export function slowLeaderDelayMs(config: ProtocolConfig, sequence: SequenceNumber): number {
  const fraction = ((sequence * 2654435761) >>> 0) / 4294967296;
  return Math.floor(config.requestTimeoutMs * (0.3 + 0.9 * fraction));
}

/**
 * 'stalling-leader': how long every proposal is held back. A request that arrives just after a
 * proposal left waits for that one (one proposal in flight at a time) and then for its own: two
 * holds, so 45% of the request timeout keeps it under the timeout with room for the commit.
 */
export const STALLING_LEADER_TIMEOUT_FRACTION = 0.45;

export function stallingLeaderDelayMs(config: ProtocolConfig): number {
  return Math.floor(config.requestTimeoutMs * STALLING_LEADER_TIMEOUT_FRACTION);
}

/** A second, validly signed proposal for the same (view, sequence): the batch without its last request. */
export function equivocatingVariant(crypto: CoreCrypto, message: PrePrepare): PrePrepare {
  const batch: ClientRequest[] = message.batch.length > 1 ? message.batch.slice(0, -1) : [];
  const batchDigest = crypto.hash(batchContent(batch.map((request) => crypto.hash(requestContent(request)))));
  const signed = crypto.sign(proposalPayload(message.view, message.sequence, batchDigest));
  return { ...message, batch, batchDigest, keyEpoch: signed.keyEpoch, signature: signed.signature };
}

/**
 * 'inflated-status': its STATUS with an unreachable view and stable checkpoint. The execution
 * point stays true: the replica still wants the others' help to catch up, and keeps voting as a
 * correct one would.
 */
export function inflatedStatus(message: Status): Status {
  return {
    ...message,
    view: viewNumber(INFLATED_CLAIM),
    viewChangeInProgress: false,
    stableCheckpoint: sequenceNumber(INFLATED_CLAIM),
  };
}

/** 'lie-in-replies' (simulator): the reply with a made-up result. */
export function lyingReply(reply: Reply, random: AdversaryRandom): Reply {
  return { ...reply, result: random.bytes(1 + random.int(12)) };
}

export function randomDigest(random: AdversaryRandom): Digest {
  return asDigest(random.bytes(32));
}

/** 'lying-source': a state-transfer answer that is wrong but well-formed; only the requester's checks catch it. */
function lyingStateAnswer(message: ReplicaMessage, random: AdversaryRandom): ReplicaMessage {
  switch (message.kind) {
    case 'manifest': {
      if (message.leaves.length === 0) return message;
      const leaves = message.leaves.slice();
      leaves[random.int(leaves.length)] = randomDigest(random);
      return { ...message, leaves };
    }
    case 'chunk': {
      const data = message.data.length === 0 ? random.bytes(16) : message.data.slice();
      data[random.int(data.length)]! ^= 0x01;
      return { ...message, data };
    }
    case 'batch':
      return { ...message, batch: message.batch.slice(0, Math.max(0, message.batch.length - 1)) };
    default:
      return message;
  }
}

/**
 * 'lie-in-view-change', validly signed: either claims prepared certificates that never existed,
 * or is stale and reports nothing prepared at all (hiding what it helped to commit).
 */
function lyingViewChange(message: ViewChange, crypto: CoreCrypto, random: AdversaryRandom): ViewChange {
  let lying: ViewChange;
  if (random.chance(0.5)) {
    lying = { ...message, prepared: [], prePrepared: [] };
  } else {
    const low = message.checkpoint.sequence;
    const prepared = [];
    const prePrepared = [];
    const count = 1 + random.int(8);
    for (let offset = 1; offset <= count; offset++) {
      const sequence: SequenceNumber = sequenceNumber(low + offset);
      const view = viewNumber(Math.max(0, message.newView - 1));
      const batchDigest = randomDigest(random);
      prepared.push({ sequence, view, batchDigest });
      prePrepared.push({ sequence, view, batchDigest });
    }
    lying = { ...message, prepared, prePrepared };
  }
  const signed = crypto.sign(viewChangePayload(lying));
  return { ...lying, keyEpoch: signed.keyEpoch, signature: signed.signature };
}

/**
 * 'lie-in-new-view', validly signed: the view changes without their last one (one short of a
 * quorum when the leader had exactly Q), or with their first one in its place (one replica twice).
 */
function lyingNewView(message: NewView, crypto: CoreCrypto, random: AdversaryRandom): NewView {
  const viewChanges = message.viewChanges;
  const first = viewChanges[0];
  if (first === undefined) return message;
  const lying: NewView = {
    ...message,
    viewChanges: random.chance(0.5) ? viewChanges.slice(0, -1) : [...viewChanges.slice(0, -1), first],
  };
  const signed = crypto.sign(newViewPayload(lying));
  return { ...lying, keyEpoch: signed.keyEpoch, signature: signed.signature };
}

/** 'forge-signatures': half the signed messages go out with a bit of their signature flipped. */
function forgeSignature(message: ReplicaMessage, random: AdversaryRandom): ReplicaMessage {
  if (!random.chance(0.5)) return message;
  const corrupt = (signature: Signature): Signature => {
    const copy = signature.slice() as Signature;
    copy[random.int(copy.length)]! ^= 0x40;
    return copy;
  };
  switch (message.kind) {
    case 'pre-prepare':
    case 'commit':
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

/** What a flood sends: a frame of raw bytes, or a well-formed message asking for work. */
export interface FloodEmitter {
  bytes(to: ReplicaId, bytes: Uint8Array): void;
  message(to: ReplicaId, message: ReplicaMessage): void;
}

/** Frames plus messages one flood burst sends. */
export const FLOOD_BURST_SENDS = 8;

/**
 * 'flood', one burst: garbage frames, a frame whose length prefix claims gigabytes, and cheap
 * messages that ask for expensive work, to replicas among `targets`. Emitted in order, as drawn.
 */
export function floodBurst(
  self: ReplicaId,
  targets: readonly ReplicaId[],
  random: AdversaryRandom,
  emit: FloodEmitter,
): void {
  for (let count = 0; count < 4; count++) {
    const to = random.pick(targets);
    emit.bytes(to, random.bytes(1 + random.int(200)));
  }
  // A pre-prepare tag followed by a length prefix claiming gigabytes.
  emit.bytes(random.pick(targets), Uint8Array.of(0x10, 0xff, 0xff, 0xff, 0xff, 0x0f));
  const target = random.pick(targets);
  emit.message(target, {
    kind: 'status',
    replicaId: self,
    view: viewNumber(0),
    viewChangeInProgress: false,
    lastExecuted: sequenceNumber(0),
    stableCheckpoint: sequenceNumber(0),
  });
  emit.message(target, {
    kind: 'chunk-request',
    sequence: sequenceNumber(random.int(64)),
    indices: [random.int(65536)],
  });
  emit.message(target, {
    kind: 'batch-request',
    sequence: sequenceNumber(1 + random.int(64)),
    batchDigest: randomDigest(random),
  });
}
