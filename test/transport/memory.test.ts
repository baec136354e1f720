import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { clientId, replicaId } from '../../src/messages/ids.js';
import { MemoryHub, type MemoryTransport } from '../../src/transport/memory.js';
import { clientNode, nodeKey, replicaNode } from '../../src/transport/transport.js';
import { EventRecorder, hasPeer, transportCompliance, waitUntil } from './compliance.js';

transportCompliance('MemoryTransport', async (specification, events) => {
  const hub = new MemoryHub();
  const transports = new Map<string, MemoryTransport>();
  const nodes = [
    ...Array.from({ length: specification.replicas }, (_, index) => replicaNode(replicaId(index))),
    ...specification.clients.map((name) => clientNode(clientId(name))),
  ];
  for (const node of nodes) transports.set(nodeKey(node), hub.attach(node, events(node)));
  return {
    transport: (node) => transports.get(nodeKey(node))!,
    close: async () => {
      await Promise.all([...transports.values()].map((transport) => transport.close()));
    },
  };
});

describe('MemoryHub', () => {
  const replica0 = replicaNode(replicaId(0));
  const replica1 = replicaNode(replicaId(1));
  const text = (value: string): Uint8Array => new TextEncoder().encode(value);

  it('disconnects and reconnects a pair: sends fail and in-flight frames are lost meanwhile', async () => {
    const hub = new MemoryHub();
    const zero = new EventRecorder();
    const one = new EventRecorder();
    const transportZero = hub.attach(replica0, zero.events());
    const transportOne = hub.attach(replica1, one.events());
    assert.equal(transportZero.send(replica1, text('in flight')), true);
    hub.disconnect(replica0, replica1);
    assert.equal(hasPeer(transportZero, replica1), false);
    assert.equal(transportZero.send(replica1, text('while cut')), false);
    assert.equal(transportZero.statistics().framesDropped, 1);
    await waitUntil(() => one.peerStates.some((state) => !state.connected), 'replica 1 saw the cut');
    assert.equal(one.frames.length, 0);
    hub.reconnect(replica0, replica1);
    assert.equal(transportZero.send(replica1, text('after')), true);
    await waitUntil(() => one.frames.length === 1, 'the frame arrived');
    assert.deepEqual(one.frames[0]!.frame, text('after'));
    await Promise.all([transportZero.close(), transportOne.close()]);
  });

  it('bounds what is in flight per pair and hands the receiver its own copy', async () => {
    const hub = new MemoryHub({ maxQueuedFramesPerPeer: 3 });
    const one = new EventRecorder();
    const transportZero = hub.attach(replica0, new EventRecorder().events());
    const transportOne = hub.attach(replica1, one.events());
    const frame = text('same buffer');
    const accepted = [1, 2, 3, 4].map(() => transportZero.send(replica1, frame));
    assert.deepEqual(accepted, [true, true, true, false]);
    assert.equal(transportZero.statistics().framesDropped, 1);
    frame.fill(0);
    await waitUntil(() => one.frames.length === 3, 'the accepted frames arrived');
    assert.deepEqual(one.frames[0]!.frame, text('same buffer'));
    assert.notEqual(one.frames[0]!.frame, one.frames[1]!.frame);
    await Promise.all([transportZero.close(), transportOne.close()]);
  });

  it('refuses to attach a node twice', () => {
    const hub = new MemoryHub();
    const transport = hub.attach(clientNode(clientId('alice')), new EventRecorder().events());
    assert.throws(
      () => hub.attach(clientNode(clientId('alice')), new EventRecorder().events()),
      /already attached/,
    );
    void transport.close();
  });
});
