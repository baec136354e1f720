/**
 * The simulated network: frames between replicas and clients with seeded loss, duplication,
 * delay (hence reordering) and partitions. Every frame is authenticated under the key its two
 * endpoints share, checked on delivery, so a forged frame, or one sent under keys a rotation has
 * since replaced, is rejected exactly as the authenticated channels of the real transport reject it.
 *
 * A channel key is either real key bytes (`--real-crypto`: the frame carries an HMAC of its bytes)
 * or the channel's identity, a string naming both endpoints and their key epochs (the default):
 * the frame then carries the identity it was sent under and is accepted while that is still the
 * channel's. The two accept exactly the same frames: frames are never altered in flight, an HMAC
 * verifies under the receiver's key only when the sender used the same key, and a forgery carries
 * random bytes, which match neither. The identity saves two HMACs and a key derivation per frame.
 */
import { macBytes, verifyMac } from '../crypto/macs.js';
import type { EventQueue } from './event-queue.js';
import type { Prng } from './prng.js';

/** 'r<id>' for replicas, 'c:<client id>' for clients. */
export type NodeAddress = string;

/** Key bytes (frames carry HMACs), or a channel identity (frames carry the identity they were sent under). */
export type ChannelKey = Uint8Array | string;

// Addresses are built for every frame: the same string objects each time, not a new one per frame.
const replicaAddresses: NodeAddress[] = [];
const clientAddresses = new Map<string, NodeAddress>();

export function replicaAddress(id: number): NodeAddress {
  let address = replicaAddresses[id];
  if (address === undefined) {
    address = `r${id}`;
    if (Number.isSafeInteger(id) && id >= 0 && id < 1024) replicaAddresses[id] = address;
  }
  return address;
}
export function clientAddress(id: string): NodeAddress {
  let address = clientAddresses.get(id);
  if (address === undefined) {
    address = `c:${id}`;
    if (clientAddresses.size < 1024) clientAddresses.set(id, address);
  }
  return address;
}

export interface NetworkConditions {
  readonly lossProbability: number;
  readonly duplicateProbability: number;
  readonly minDelayMs: number;
  readonly maxDelayMs: number;
  /** Occasional long delays that reorder frames aggressively. */
  readonly spikeProbability: number;
  readonly spikeDelayMs: number;
}

export const CALM_NETWORK: NetworkConditions = {
  lossProbability: 0,
  duplicateProbability: 0,
  minDelayMs: 1,
  maxDelayMs: 3,
  spikeProbability: 0,
  spikeDelayMs: 0,
};

export interface NetworkStatistics {
  framesSent: number;
  framesDelivered: number;
  framesLost: number;
  framesDuplicated: number;
  framesPartitioned: number;
  framesRejected: number;
  bytesSent: number;
}

/** What travels: the frame's bytes, plus whatever the simulator keeps with them (network.ts reads only the bytes). */
export interface Frame {
  readonly bytes: Uint8Array;
}

export type FrameHandler<Carried extends Frame> = (
  to: NodeAddress,
  from: NodeAddress,
  frame: Carried,
) => void;
export type RejectionHandler = (to: NodeAddress, from: NodeAddress, reason: string) => void;

export class SimulatedNetwork<Carried extends Frame = Frame> {
  conditions: NetworkConditions = CALM_NETWORK;
  readonly statistics: NetworkStatistics = {
    framesSent: 0,
    framesDelivered: 0,
    framesLost: 0,
    framesDuplicated: 0,
    framesPartitioned: 0,
    framesRejected: 0,
    bytesSent: 0,
  };
  /** Groups of nodes that can talk only among themselves; nodes in no group talk to everyone outside groups. */
  #partition: Map<NodeAddress, number> | null = null;
  readonly #queue: EventQueue;
  readonly #prng: Prng;
  readonly #channelKey: (a: NodeAddress, b: NodeAddress) => ChannelKey;
  readonly #deliver: FrameHandler<Carried>;
  readonly #rejected: RejectionHandler;

  constructor(
    queue: EventQueue,
    prng: Prng,
    channelKey: (a: NodeAddress, b: NodeAddress) => ChannelKey,
    deliver: FrameHandler<Carried>,
    rejected: RejectionHandler,
  ) {
    this.#queue = queue;
    this.#prng = prng;
    this.#channelKey = channelKey;
    this.#deliver = deliver;
    this.#rejected = rejected;
  }

  /** Cuts the listed groups off from each other (and from everyone not listed). */
  partition(groups: readonly (readonly NodeAddress[])[]): void {
    this.#partition = new Map();
    groups.forEach((group, index) => {
      for (const node of group) this.#partition!.set(node, index);
    });
  }

  heal(): void {
    this.#partition = null;
  }

  get partitioned(): boolean {
    return this.#partition !== null;
  }

  #connected(a: NodeAddress, b: NodeAddress): boolean {
    if (this.#partition === null) return true;
    return (this.#partition.get(a) ?? -1) === (this.#partition.get(b) ?? -1);
  }

  /** `forgeMac` models a sender that does not hold the channel key (a Byzantine forgery). */
  send(from: NodeAddress, to: NodeAddress, frame: Carried, forgeMac = false): void {
    const bytes = frame.bytes;
    const stats = this.statistics;
    stats.framesSent++;
    stats.bytesSent += bytes.length;
    let mac: ChannelKey;
    if (forgeMac) mac = this.#prng.bytes(16);
    else {
      const key = this.#channelKey(from, to);
      mac = typeof key === 'string' ? key : macBytes(key, bytes);
    }
    const conditions = this.conditions;
    if (this.#prng.chance(conditions.lossProbability)) {
      stats.framesLost++;
      return;
    }
    const copies = this.#prng.chance(conditions.duplicateProbability) ? 2 : 1;
    if (copies === 2) stats.framesDuplicated++;
    for (let copy = 0; copy < copies; copy++) {
      let delay = this.#prng.between(conditions.minDelayMs, conditions.maxDelayMs);
      if (this.#prng.chance(conditions.spikeProbability))
        delay += this.#prng.int(conditions.spikeDelayMs + 1);
      this.#queue.after(delay, () => this.#arrive(from, to, frame, mac));
    }
  }

  #arrive(from: NodeAddress, to: NodeAddress, frame: Carried, mac: ChannelKey): void {
    const bytes = frame.bytes;
    if (!this.#connected(from, to)) {
      this.statistics.framesPartitioned++;
      return;
    }
    const key = this.#channelKey(from, to);
    const authentic =
      typeof key === 'string' ? mac === key : typeof mac !== 'string' && verifyMac(key, bytes, mac);
    if (!authentic) {
      this.statistics.framesRejected++;
      this.#rejected(to, from, 'frame MAC does not verify');
      return;
    }
    this.statistics.framesDelivered++;
    this.#deliver(to, from, frame);
  }
}
