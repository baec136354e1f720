/**
 * Behaviour every Transport must have, run against each implementation (tcp.test.ts,
 * memory.test.ts) through a factory that builds a small network of replicas and clients.
 */
import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { clientId, replicaId } from '../../src/messages/ids.js';
import { LIMITS } from '../../src/messages/limits.js';
import {
  clientNode,
  type NodeId,
  nodeKey,
  replicaNode,
  type Transport,
  type TransportEvents,
} from '../../src/transport/transport.js';

export interface NetworkSpecification {
  /** Replicas 0..replicas-1. */
  readonly replicas: number;
  readonly clients: readonly string[];
}

export interface TransportNetwork {
  transport(node: NodeId): Transport;
  /** Closes every transport of the network (and anything else the factory started). */
  close(): Promise<void>;
}

/**
 * Builds the network; `events(node)` gives the handlers for each node's transport. The factory
 * need not wait for connections: the suite waits until every expected pair is connected.
 */
export type TransportFactory = (
  specification: NetworkSpecification,
  events: (node: NodeId) => TransportEvents,
) => Promise<TransportNetwork>;

export interface ReceivedFrame {
  readonly from: NodeId;
  readonly frame: Uint8Array;
}

/** Records what a node's transport reports; `respond` lets a test answer frames as they arrive. */
export class EventRecorder {
  readonly frames: ReceivedFrame[] = [];
  readonly peerStates: { peer: NodeId; connected: boolean }[] = [];
  readonly rejections: { peer: NodeId | null; remoteAddress: string; reason: string }[] = [];
  respond: ((from: NodeId, frame: Uint8Array) => void) | null = null;

  events(): TransportEvents {
    return {
      onFrame: (from, frame) => {
        this.frames.push({ from, frame });
        this.respond?.(from, frame);
      },
      onPeerStateChange: (peer, connected) => {
        this.peerStates.push({ peer, connected });
      },
      onRejection: (peer, remoteAddress, reason) => {
        this.rejections.push({ peer, remoteAddress, reason });
      },
    };
  }

  framesFrom(peer: NodeId): Uint8Array[] {
    const key = nodeKey(peer);
    return this.frames.filter((received) => nodeKey(received.from) === key).map((received) => received.frame);
  }
}

/** Polls `condition` until it holds, failing with `what` after `timeoutMilliseconds`. */
export async function waitUntil(
  condition: () => boolean,
  what: string,
  timeoutMilliseconds = 5000,
): Promise<void> {
  const deadline = performance.now() + timeoutMilliseconds;
  while (!condition()) {
    if (performance.now() > deadline) assert.fail(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

export function hasPeer(transport: Transport, peer: NodeId): boolean {
  const key = nodeKey(peer);
  return transport.connectedPeers().some((connected) => nodeKey(connected) === key);
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const text = (value: string): Uint8Array => encoder.encode(value);
const asText = (bytes: Uint8Array): string => decoder.decode(bytes);

/** Deterministic frame contents: its index in the first 4 bytes, then a pattern, `size` bytes in all. */
function patternFrame(index: number, size: number): Uint8Array {
  const frame = new Uint8Array(Math.max(4, size));
  new DataView(frame.buffer).setUint32(0, index);
  for (let offset = 4; offset < frame.length; offset++) frame[offset] = (index * 31 + offset) & 0xff;
  return frame;
}

interface Started {
  readonly network: TransportNetwork;
  readonly recorders: Map<string, EventRecorder>;
  recorder(node: NodeId): EventRecorder;
  transport(node: NodeId): Transport;
}

async function startNetwork(
  factory: TransportFactory,
  specification: NetworkSpecification,
): Promise<Started> {
  const recorders = new Map<string, EventRecorder>();
  const recorderOf = (node: NodeId): EventRecorder => {
    const key = nodeKey(node);
    let recorder = recorders.get(key);
    if (recorder === undefined) {
      recorder = new EventRecorder();
      recorders.set(key, recorder);
    }
    return recorder;
  };
  const network = await factory(specification, (node) => recorderOf(node).events());
  const replicas = Array.from({ length: specification.replicas }, (_, index) =>
    replicaNode(replicaId(index)),
  );
  const clients = specification.clients.map((name) => clientNode(clientId(name)));
  await waitUntil(() => {
    for (const replica of replicas) {
      const transport = network.transport(replica);
      for (const other of [...replicas, ...clients]) {
        if (nodeKey(other) !== nodeKey(replica) && !hasPeer(transport, other)) return false;
      }
    }
    for (const client of clients) {
      for (const replica of replicas) if (!hasPeer(network.transport(client), replica)) return false;
    }
    return true;
  }, 'every replica is connected to every other node');
  return {
    network,
    recorders,
    recorder: recorderOf,
    transport: (node) => network.transport(node),
  };
}

export function transportCompliance(name: string, factory: TransportFactory): void {
  const replica0 = replicaNode(replicaId(0));
  const replica1 = replicaNode(replicaId(1));
  const replica2 = replicaNode(replicaId(2));
  const alice = clientNode(clientId('alice'));
  const bob = clientNode(clientId('bob'));

  describe(`Transport compliance: ${name}`, () => {
    it('delivers frames intact and in order between two replicas, both ways', async () => {
      const started = await startNetwork(factory, { replicas: 2, clients: [] });
      try {
        const count = 300;
        const sizes = Array.from({ length: count }, (_, index) => (index * 7919) % 5000);
        for (let index = 0; index < count; index++) {
          assert.equal(started.transport(replica0).send(replica1, patternFrame(index, sizes[index]!)), true);
          assert.equal(
            started.transport(replica1).send(replica0, patternFrame(index + count, sizes[index]!)),
            true,
          );
        }
        await waitUntil(
          () =>
            started.recorder(replica1).frames.length === count &&
            started.recorder(replica0).frames.length === count,
          'all frames arrived',
        );
        for (let index = 0; index < count; index++) {
          const atOne = started.recorder(replica1).frames[index]!;
          assert.deepEqual(atOne.from, replica0);
          assert.deepEqual(atOne.frame, patternFrame(index, sizes[index]!));
          const atZero = started.recorder(replica0).frames[index]!;
          assert.deepEqual(atZero.from, replica1);
          assert.deepEqual(atZero.frame, patternFrame(index + count, sizes[index]!));
        }
      } finally {
        await started.network.close();
      }
    });

    it('carries client requests to replicas and their replies back to the client', async () => {
      const started = await startNetwork(factory, { replicas: 2, clients: ['alice'] });
      try {
        for (const replica of [replica0, replica1]) {
          started.recorder(replica).respond = (from, frame) => {
            if (from.kind !== 'client') return;
            assert.equal(
              started
                .transport(replica)
                .send(from, text(`reply to ${asText(frame)} from ${nodeKey(replica)}`)),
              true,
            );
          };
        }
        const count = 50;
        for (let index = 0; index < count; index++) {
          assert.equal(started.transport(alice).send(replica0, text(`request ${index}`)), true);
          assert.equal(started.transport(alice).send(replica1, text(`request ${index}`)), true);
        }
        await waitUntil(() => started.recorder(alice).frames.length === 2 * count, 'every reply arrived');
        for (const replica of [replica0, replica1]) {
          const requests = started.recorder(replica).framesFrom(alice).map(asText);
          assert.deepEqual(
            requests,
            Array.from({ length: count }, (_, index) => `request ${index}`),
          );
          const replies = started.recorder(alice).framesFrom(replica).map(asText);
          assert.deepEqual(
            replies,
            Array.from({ length: count }, (_, index) => `reply to request ${index} from ${nodeKey(replica)}`),
          );
        }
      } finally {
        await started.network.close();
      }
    });

    it('names the authenticated sender as `from`', async () => {
      const started = await startNetwork(factory, { replicas: 3, clients: ['alice'] });
      try {
        const senders = [replica0, replica1, replica2, alice];
        for (const sender of senders) {
          for (const receiver of [replica0, replica1, replica2]) {
            if (nodeKey(sender) === nodeKey(receiver)) continue;
            assert.equal(started.transport(sender).send(receiver, text(nodeKey(sender))), true);
          }
        }
        await waitUntil(
          () =>
            [replica0, replica1, replica2].every((replica) => started.recorder(replica).frames.length === 3),
          'every replica heard from the three others',
        );
        for (const replica of [replica0, replica1, replica2]) {
          for (const received of started.recorder(replica).frames) {
            assert.equal(asText(received.frame), nodeKey(received.from));
          }
        }
      } finally {
        await started.network.close();
      }
    });

    it('refuses to send to an unknown peer, to itself, between clients, and frames above maxFrameBytes', async () => {
      const started = await startNetwork(factory, { replicas: 2, clients: ['alice', 'bob'] });
      try {
        const frame = text('x');
        assert.equal(started.transport(replica0).send(replicaNode(replicaId(99)), frame), false);
        assert.equal(started.transport(replica0).send(clientNode(clientId('nobody')), frame), false);
        assert.equal(started.transport(replica0).send(replica0, frame), false);
        assert.equal(started.transport(alice).send(bob, frame), false);
        assert.equal(started.transport(alice).send(replicaNode(replicaId(7)), frame), false);
        assert.equal(
          started.transport(replica0).send(replica1, new Uint8Array(LIMITS.maxFrameBytes + 1)),
          false,
        );
        await new Promise((resolve) => setTimeout(resolve, 20));
        assert.equal(started.recorder(replica1).frames.length, 0);
        assert.equal(started.recorder(bob).frames.length, 0);
      } finally {
        await started.network.close();
      }
    });

    it('delivers empty frames and frames of exactly maxFrameBytes', async () => {
      const started = await startNetwork(factory, { replicas: 2, clients: [] });
      try {
        const largest = patternFrame(9, LIMITS.maxFrameBytes);
        const frames = [new Uint8Array(0), text('small'), largest, new Uint8Array(0)];
        for (const frame of frames) assert.equal(started.transport(replica0).send(replica1, frame), true);
        await waitUntil(
          () => started.recorder(replica1).frames.length === frames.length,
          'all frames arrived',
          10_000,
        );
        assert.deepEqual(
          started.recorder(replica1).frames.map((received) => received.frame),
          frames,
        );
      } finally {
        await started.network.close();
      }
    });

    it('counts frames and bytes, lists connected peers, and reports connections', async () => {
      const started = await startNetwork(factory, { replicas: 2, clients: ['alice'] });
      try {
        for (let index = 0; index < 10; index++)
          started.transport(replica0).send(replica1, new Uint8Array(100));
        await waitUntil(() => started.recorder(replica1).frames.length === 10, 'frames arrived');
        const sender = started.transport(replica0).statistics();
        const receiver = started.transport(replica1).statistics();
        assert.equal(sender.framesSent, 10);
        assert.equal(sender.bytesSent, 1000);
        assert.equal(receiver.framesReceived, 10);
        assert.equal(receiver.bytesReceived, 1000);
        assert.equal(sender.framesDropped, 0);
        assert.equal(sender.connectedPeers, 2);
        assert.equal(started.transport(alice).statistics().connectedPeers, 2);
        const peersOfZero = started.transport(replica0).connectedPeers().map(nodeKey).sort();
        assert.deepEqual(peersOfZero, [nodeKey(alice), nodeKey(replica1)].sort());
        await waitUntil(
          () =>
            started
              .recorder(replica0)
              .peerStates.some((state) => nodeKey(state.peer) === nodeKey(alice) && state.connected),
          'replica 0 was told the client connected',
        );
        await waitUntil(
          () =>
            started
              .recorder(alice)
              .peerStates.some((state) => nodeKey(state.peer) === nodeKey(replica1) && state.connected),
          'the client was told replica 1 connected',
        );
      } finally {
        await started.network.close();
      }
    });

    it('close() resolves, is idempotent, stops sending, and the peer notices', async () => {
      const started = await startNetwork(factory, { replicas: 2, clients: ['alice'] });
      try {
        const closing = started.transport(replica1);
        await closing.close();
        await closing.close();
        assert.equal(closing.send(replica0, text('after close')), false);
        assert.deepEqual(closing.connectedPeers(), []);
        await waitUntil(() => !hasPeer(started.transport(replica0), replica1), 'replica 0 saw replica 1 go');
        await waitUntil(() => !hasPeer(started.transport(alice), replica1), 'the client saw replica 1 go');
        await waitUntil(
          () =>
            started
              .recorder(replica0)
              .peerStates.some((state) => nodeKey(state.peer) === nodeKey(replica1) && !state.connected),
          'replica 0 was told replica 1 disconnected',
        );
        // The survivors still talk.
        assert.equal(started.transport(alice).send(replica0, text('still here')), true);
        await waitUntil(
          () => started.recorder(replica0).framesFrom(alice).length === 1,
          'the request arrived',
        );
      } finally {
        await started.network.close();
      }
    });
  });
}
