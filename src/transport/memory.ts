/**
 * An in-process Transport for unit tests: every node attached to one MemoryHub can reach the
 * others, with the semantics of the TCP transport minus the sockets. Frames are delivered in send
 * order per pair on a later event-loop turn (setImmediate), never inside `send`, so a handler that
 * replies does not recurse. The receiver gets its own copy of each frame.
 *
 * Reachability mirrors TCP: replicas reach each other and clients reach replicas, but two clients
 * never have a channel. `send` returns false for an unknown peer, for a pair the hub was told to
 * disconnect (`disconnect(a, b)`, undone by `reconnect`), and when the pair's bounded in-flight
 * queue is full; the last two count as dropped frames. Frames in flight when a pair is
 * disconnected or a node closes are lost, as on a broken TCP connection.
 *
 * Not for production: there is no authentication to speak of (the hub is trusted to say who sent
 * what) and no limit on how much a node can make the hub do.
 */
import { InvariantViolation } from '../messages/ids.js';
import { LIMITS } from '../messages/limits.js';
import { describeNode } from './handshake.js';
import {
  type NodeId,
  nodeKey,
  type Transport,
  type TransportEvents,
  type TransportStatistics,
} from './transport.js';

export interface MemoryHubOptions {
  /** Frames in flight from one node to another before `send` drops. */
  readonly maxQueuedFramesPerPeer?: number;
  /** Frame bytes in flight from one node to another before `send` drops. */
  readonly maxQueuedBytesPerPeer?: number;
}

export const DEFAULT_MEMORY_HUB_LIMITS = {
  maxQueuedFramesPerPeer: 100_000,
  maxQueuedBytesPerPeer: 64 * 1024 * 1024,
} as const;

/** One direction between two nodes: what is in flight, and which incarnation of the link it is. */
interface DirectedChannel {
  queuedFrames: number;
  queuedBytes: number;
  /** Bumped when the pair is cut or an end closes; in-flight deliveries of older generations are dropped. */
  generation: number;
}

type PendingDelivery =
  | {
      readonly kind: 'frame';
      readonly from: MemoryTransport;
      readonly to: MemoryTransport;
      readonly frame: Uint8Array;
      readonly channel: DirectedChannel;
      readonly generation: number;
    }
  | {
      readonly kind: 'peer-state';
      readonly to: MemoryTransport;
      readonly peer: NodeId;
      readonly connected: boolean;
    };

function pairKey(a: NodeId, b: NodeId): string {
  const first = nodeKey(a);
  const second = nodeKey(b);
  return first < second ? `${first}|${second}` : `${second}|${first}`;
}

export class MemoryHub {
  readonly #maxQueuedFrames: number;
  readonly #maxQueuedBytes: number;
  readonly #members = new Map<string, MemoryTransport>();
  readonly #cutPairs = new Set<string>();
  readonly #channels = new Map<string, DirectedChannel>();
  #pending: PendingDelivery[] = [];
  #delivery: NodeJS.Immediate | null = null;

  constructor(options: MemoryHubOptions = {}) {
    this.#maxQueuedFrames =
      options.maxQueuedFramesPerPeer ?? DEFAULT_MEMORY_HUB_LIMITS.maxQueuedFramesPerPeer;
    this.#maxQueuedBytes = options.maxQueuedBytesPerPeer ?? DEFAULT_MEMORY_HUB_LIMITS.maxQueuedBytesPerPeer;
  }

  /** Adds a node; it is at once connected to every node it can reach (peer-state events follow). */
  attach(node: NodeId, events: TransportEvents): MemoryTransport {
    const key = nodeKey(node);
    if (this.#members.has(key)) throw new InvariantViolation(`${describeNode(node)} is already attached`);
    const transport = new MemoryTransport(this, node, events);
    this.#members.set(key, transport);
    for (const other of this.#members.values()) {
      if (other !== transport && this.#linked(node, other.node)) this.#announce(transport, other, true);
    }
    return transport;
  }

  /** Cuts the channel between two nodes: frames in flight are lost and sends fail until `reconnect`. */
  disconnect(a: NodeId, b: NodeId): void {
    const key = pairKey(a, b);
    const wasLinked = this.#linked(a, b);
    this.#cutPairs.add(key);
    this.#resetChannels(a, b);
    const first = this.#members.get(nodeKey(a));
    const second = this.#members.get(nodeKey(b));
    if (wasLinked && first !== undefined && second !== undefined) this.#announce(first, second, false);
  }

  reconnect(a: NodeId, b: NodeId): void {
    if (!this.#cutPairs.delete(pairKey(a, b))) return;
    const first = this.#members.get(nodeKey(a));
    const second = this.#members.get(nodeKey(b));
    if (first !== undefined && second !== undefined && this.#linked(a, b))
      this.#announce(first, second, true);
  }

  /** @internal MemoryTransport.send */
  route(from: MemoryTransport, to: NodeId, frame: Uint8Array): 'queued' | 'unknown' | 'dropped' {
    const target = this.#members.get(nodeKey(to));
    if (target === undefined || target === from || !this.#reachable(from.node, to)) return 'unknown';
    if (this.#cutPairs.has(pairKey(from.node, to))) return 'dropped';
    if (frame.length > LIMITS.maxFrameBytes) return 'dropped';
    const channel = this.#channel(from.node, to);
    if (
      channel.queuedFrames >= this.#maxQueuedFrames ||
      channel.queuedBytes + frame.length > this.#maxQueuedBytes
    ) {
      return 'dropped';
    }
    channel.queuedFrames++;
    channel.queuedBytes += frame.length;
    // A copy: the receiver may keep and mutate its frame, and the sender may reuse its buffer.
    this.#enqueue({
      kind: 'frame',
      from,
      to: target,
      frame: Uint8Array.from(frame),
      channel,
      generation: channel.generation,
    });
    return 'queued';
  }

  /** @internal MemoryTransport.connectedPeers */
  linkedPeers(node: NodeId): NodeId[] {
    const peers: NodeId[] = [];
    for (const other of this.#members.values()) if (this.#linked(node, other.node)) peers.push(other.node);
    return peers;
  }

  /** @internal MemoryTransport.close */
  detach(transport: MemoryTransport): void {
    const key = nodeKey(transport.node);
    if (this.#members.get(key) !== transport) return;
    const peers = this.linkedPeers(transport.node);
    this.#members.delete(key);
    for (const peer of peers) {
      this.#resetChannels(transport.node, peer);
      const other = this.#members.get(nodeKey(peer));
      if (other !== undefined)
        this.#enqueue({ kind: 'peer-state', to: other, peer: transport.node, connected: false });
    }
    if (this.#members.size === 0 && this.#delivery !== null) {
      clearImmediate(this.#delivery);
      this.#delivery = null;
      this.#pending = [];
    }
  }

  /** Both attached, distinct, allowed a channel, and not cut. */
  #linked(a: NodeId, b: NodeId): boolean {
    return (
      this.#members.has(nodeKey(a)) &&
      this.#members.has(nodeKey(b)) &&
      nodeKey(a) !== nodeKey(b) &&
      this.#reachable(a, b) &&
      !this.#cutPairs.has(pairKey(a, b))
    );
  }

  /** As over TCP: clients only ever talk to replicas. */
  #reachable(a: NodeId, b: NodeId): boolean {
    return a.kind === 'replica' || b.kind === 'replica';
  }

  #channel(from: NodeId, to: NodeId): DirectedChannel {
    const key = `${nodeKey(from)}>${nodeKey(to)}`;
    let channel = this.#channels.get(key);
    if (channel === undefined) {
      channel = { queuedFrames: 0, queuedBytes: 0, generation: 0 };
      this.#channels.set(key, channel);
    }
    return channel;
  }

  #resetChannels(a: NodeId, b: NodeId): void {
    for (const channel of [this.#channel(a, b), this.#channel(b, a)]) {
      channel.generation++;
      channel.queuedFrames = 0;
      channel.queuedBytes = 0;
    }
  }

  #announce(first: MemoryTransport, second: MemoryTransport, connected: boolean): void {
    this.#enqueue({ kind: 'peer-state', to: first, peer: second.node, connected });
    this.#enqueue({ kind: 'peer-state', to: second, peer: first.node, connected });
  }

  #enqueue(delivery: PendingDelivery): void {
    this.#pending.push(delivery);
    this.#delivery ??= setImmediate(() => this.#deliver());
  }

  #deliver(): void {
    this.#delivery = null;
    // Deliveries queued by handlers during this pass wait for the next turn, like network traffic.
    const batch = this.#pending;
    this.#pending = [];
    for (const delivery of batch) {
      const target = delivery.to;
      if (this.#members.get(nodeKey(target.node)) !== target) continue;
      if (delivery.kind === 'peer-state') {
        target.deliverPeerState(delivery.peer, delivery.connected);
        continue;
      }
      const channel = delivery.channel;
      if (delivery.generation !== channel.generation) continue;
      channel.queuedFrames--;
      channel.queuedBytes -= delivery.frame.length;
      delivery.from.countSent(delivery.frame.length);
      target.deliverFrame(delivery.from.node, delivery.frame);
    }
  }
}

export class MemoryTransport implements Transport {
  readonly node: NodeId;
  readonly #hub: MemoryHub;
  readonly #events: TransportEvents;
  #closed = false;
  #framesSent = 0;
  #framesReceived = 0;
  #bytesSent = 0;
  #bytesReceived = 0;
  #framesDropped = 0;

  /** @internal Made by MemoryHub.attach. */
  constructor(hub: MemoryHub, node: NodeId, events: TransportEvents) {
    this.#hub = hub;
    this.node = node;
    this.#events = events;
  }

  send(to: NodeId, frame: Uint8Array): boolean {
    if (this.#closed) return false;
    const outcome = this.#hub.route(this, to, frame);
    if (outcome === 'dropped') this.#framesDropped++;
    return outcome === 'queued';
  }

  connectedPeers(): NodeId[] {
    return this.#closed ? [] : this.#hub.linkedPeers(this.node);
  }

  statistics(): TransportStatistics {
    return {
      framesSent: this.#framesSent,
      framesReceived: this.#framesReceived,
      bytesSent: this.#bytesSent,
      bytesReceived: this.#bytesReceived,
      framesDropped: this.#framesDropped,
      handshakesRejected: 0,
      connectedPeers: this.connectedPeers().length,
    };
  }

  close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      this.#hub.detach(this);
    }
    return Promise.resolve();
  }

  /** @internal Counted on delivery, as TCP counts frames once they are written. */
  countSent(bytes: number): void {
    this.#framesSent++;
    this.#bytesSent += bytes;
  }

  /** @internal */
  deliverFrame(from: NodeId, frame: Uint8Array): void {
    if (this.#closed) return;
    this.#framesReceived++;
    this.#bytesReceived += frame.length;
    this.#events.onFrame(from, frame);
  }

  /** @internal */
  deliverPeerState(peer: NodeId, connected: boolean): void {
    if (!this.#closed) this.#events.onPeerStateChange?.(peer, connected);
  }
}
