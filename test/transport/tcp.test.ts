import * as assert from 'node:assert/strict';
import { createServer, connect as dial, type Server, type Socket } from 'node:net';
import { describe, it } from 'node:test';
import { clientId, type KeyEpoch, keyEpoch, replicaId } from '../../src/core/ids.js';
import { generateSigningKeyPair } from '../../src/crypto/keys.js';
import {
  type ChannelIdentity,
  channelPublicKey,
  HANDSHAKE_LIMITS,
  SecureChannel,
  StaticKeyDirectory,
} from '../../src/transport/handshake.js';
import {
  type PeerAddress,
  TcpTransport,
  type TcpTransportLimits,
  type TransportLogger,
} from '../../src/transport/tcp.js';
import { clientNode, type NodeId, nodeKey, replicaNode } from '../../src/transport/transport.js';
import { EventRecorder, hasPeer, transportCompliance, waitUntil } from './compliance.js';

const LOOPBACK = '127.0.0.1';

/** Rejections are asserted through onRejection; only a real fault (a throwing handler) is printed. */
const testLogger: TransportLogger = {
  debug() {},
  warn() {},
  error(details, message) {
    console.error(`transport error: ${message}`, details);
  },
};

function makeIdentity(node: NodeId, epoch: KeyEpoch = keyEpoch(0)): ChannelIdentity {
  return { node, keyEpoch: epoch, signingKeys: generateSigningKeyPair() };
}

const text = (value: string): Uint8Array => new TextEncoder().encode(value);
const asText = (bytes: Uint8Array): string => new TextDecoder().decode(bytes);
const pause = (milliseconds: number): Promise<void> =>
  new Promise((resolve) => setTimeout(resolve, milliseconds));

transportCompliance('TcpTransport', async (specification, events) => {
  const keys = new StaticKeyDirectory();
  const transports = new Map<string, TcpTransport>();
  const listening: PeerAddress[] = [];
  // Highest id first: each replica dials only higher ids, which are then already listening.
  for (let index = specification.replicas - 1; index >= 0; index--) {
    const identity = makeIdentity(replicaNode(replicaId(index)));
    keys.set(identity.node, [channelPublicKey(identity)]);
    const transport = await TcpTransport.start({
      identity,
      listen: { host: LOOPBACK, port: 0 },
      peers: [...listening],
      keys,
      events: events(identity.node),
      logger: testLogger,
    });
    transports.set(nodeKey(identity.node), transport);
    listening.push({ node: identity.node, host: LOOPBACK, port: transport.listenAddress()!.port });
  }
  for (const name of specification.clients) {
    const identity = makeIdentity(clientNode(clientId(name)));
    keys.set(identity.node, [channelPublicKey(identity)]);
    const transport = await TcpTransport.start({
      identity,
      peers: [...listening],
      keys,
      events: events(identity.node),
      logger: testLogger,
    });
    transports.set(nodeKey(identity.node), transport);
  }
  return {
    transport: (node) => transports.get(nodeKey(node))!,
    close: async () => {
      await Promise.all([...transports.values()].map((transport) => transport.close()));
    },
  };
});

const replica0 = replicaNode(replicaId(0));
const replica1 = replicaNode(replicaId(1));
const replica2 = replicaNode(replicaId(2));

/** A small set of nodes with keys in one directory, started on demand. */
class TestCluster {
  readonly keys = new StaticKeyDirectory();
  readonly recorders = new Map<string, EventRecorder>();
  readonly #identities = new Map<string, ChannelIdentity>();
  readonly #transports: TcpTransport[] = [];

  identity(node: NodeId): ChannelIdentity {
    const key = nodeKey(node);
    let identity = this.#identities.get(key);
    if (identity === undefined) {
      identity = makeIdentity(node);
      this.#identities.set(key, identity);
      this.keys.set(node, [channelPublicKey(identity)]);
    }
    return identity;
  }

  recorder(node: NodeId): EventRecorder {
    const key = nodeKey(node);
    let recorder = this.recorders.get(key);
    if (recorder === undefined) {
      recorder = new EventRecorder();
      this.recorders.set(key, recorder);
    }
    return recorder;
  }

  async start(
    node: NodeId,
    options: {
      listenPort?: number;
      peers?: PeerAddress[];
      identity?: ChannelIdentity;
      limits?: Partial<TcpTransportLimits>;
    } = {},
  ): Promise<TcpTransport> {
    const transport = await TcpTransport.start({
      identity: options.identity ?? this.identity(node),
      ...(options.listenPort === undefined ? {} : { listen: { host: LOOPBACK, port: options.listenPort } }),
      peers: options.peers ?? [],
      keys: this.keys,
      events: this.recorder(node).events(),
      logger: testLogger,
      ...(options.limits === undefined ? {} : { limits: options.limits }),
    });
    this.#transports.push(transport);
    return transport;
  }

  async close(): Promise<void> {
    await Promise.all(this.#transports.map((transport) => transport.close()));
  }
}

function addressOf(node: NodeId, transport: TcpTransport): PeerAddress {
  return { node, host: LOOPBACK, port: transport.listenAddress()!.port };
}

/** A port nothing listens on (taken from the OS, then released). */
async function unusedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, LOOPBACK, resolve));
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** A raw socket to a listener; resolves once connected. */
async function rawSocket(port: number): Promise<{ socket: Socket; closed: Promise<void> }> {
  const socket = dial({ host: LOOPBACK, port });
  socket.on('error', () => {});
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  return { socket, closed };
}

type ProxyMode =
  'pass' | 'tamper-first-record' | 'replay-first-record' | 'oversized-record' | 'stall-after-handshake';

/**
 * A man in the middle between a dialing replica and a listener. It understands the transport's
 * framing (every handshake message and record is `u32 length ‖ body`), so it can meddle with the
 * first record the dialer sends: units 0 and 1 from the dialer are HELLO and FINISH, records
 * follow. Only the first connection is meddled with; later ones (reconnections) pass untouched.
 */
class RecordProxy {
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  connections = 0;

  private constructor(server: Server) {
    this.#server = server;
  }

  static async start(targetPort: number, mode: ProxyMode): Promise<RecordProxy> {
    const server = createServer();
    const proxy = new RecordProxy(server);
    server.on('connection', (downstream) =>
      proxy.#relay(downstream, targetPort, proxy.connections++ === 0 ? mode : 'pass'),
    );
    await new Promise<void>((resolve) => server.listen(0, LOOPBACK, resolve));
    return proxy;
  }

  get port(): number {
    const address = this.#server.address();
    return typeof address === 'object' && address !== null ? address.port : 0;
  }

  #relay(downstream: Socket, targetPort: number, mode: ProxyMode): void {
    const upstream = dial({ host: LOOPBACK, port: targetPort });
    for (const socket of [downstream, upstream]) {
      this.#sockets.add(socket);
      socket.on('error', () => {});
      socket.on('close', () => {
        this.#sockets.delete(socket);
        downstream.destroy();
        upstream.destroy();
      });
    }
    upstream.on('data', (chunk: Buffer) => downstream.write(chunk));
    let pending = Buffer.alloc(0);
    let unitIndex = 0;
    let stalled = false;
    downstream.on('data', (chunk: Buffer) => {
      if (stalled) return;
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 4) {
        const length = pending.readUInt32BE(0);
        if (pending.length < 4 + length) break;
        const unit = Buffer.from(pending.subarray(0, 4 + length));
        pending = pending.subarray(4 + length);
        const isFirstRecord = unitIndex++ === 2;
        if (isFirstRecord && mode === 'tamper-first-record') {
          unit[4]! ^= 0x80;
          upstream.write(unit);
        } else if (isFirstRecord && mode === 'replay-first-record') {
          upstream.write(unit);
          upstream.write(unit);
        } else if (isFirstRecord && mode === 'oversized-record') {
          upstream.write(Buffer.of(0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0));
        } else if (isFirstRecord && mode === 'stall-after-handshake') {
          // Stop reading: the dialer's kernel buffers fill up and its socket pushes back.
          stalled = true;
          downstream.pause();
          return;
        } else {
          upstream.write(unit);
        }
      }
    });
  }

  async close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

describe('TcpTransport', () => {
  describe('authentication', () => {
    it('rejects a client with an unknown key: a clear reason, no frame delivered', async () => {
      const cluster = new TestCluster();
      const mallory = clientNode(clientId('mallory'));
      try {
        const one = await cluster.start(replica1, { listenPort: 0 });
        // Mallory has a key pair, but the replica's directory does not list it.
        const malloryTransport = await TcpTransport.start({
          identity: makeIdentity(mallory),
          peers: [addressOf(replica1, one)],
          keys: cluster.keys,
          events: cluster.recorder(mallory).events(),
          logger: testLogger,
        });
        assert.equal(malloryTransport.send(replica1, text('let me in')), true, 'queued while connecting');
        await waitUntil(
          () =>
            cluster
              .recorder(replica1)
              .rejections.some((rejection) => rejection.reason === 'unknown client mallory'),
          'the replica rejected mallory',
        );
        const rejection = cluster.recorder(replica1).rejections[0]!;
        assert.equal(rejection.peer, null, 'an unauthenticated claim is not reported as the peer');
        assert.match(rejection.remoteAddress, /^127\.0\.0\.1:\d+$/);
        await waitUntil(
          () =>
            cluster
              .recorder(mallory)
              .rejections.some((entry) =>
                /replica 1 closed the connection during the handshake/.test(entry.reason),
              ),
          'mallory learned the replica hung up',
        );
        assert.equal(cluster.recorder(replica1).frames.length, 0);
        assert.deepEqual(one.connectedPeers(), []);
        assert.ok(one.statistics().handshakesRejected >= 1);
        await malloryTransport.close();
      } finally {
        await cluster.close();
      }
    });

    it('rejects a replica presenting a key that is not its registered one, in either role', async () => {
      const cluster = new TestCluster();
      try {
        // Registered identities; the impostors below make key pairs of their own.
        cluster.identity(replica0);
        cluster.identity(replica1);
        cluster.identity(replica2);
        // Replica 0 (the dialer) signs with a key the directory does not know.
        const one = await cluster.start(replica1, { listenPort: 0 });
        const impostor = await cluster.start(replica0, {
          peers: [addressOf(replica1, one)],
          identity: makeIdentity(replica0),
        });
        await waitUntil(
          () => cluster.recorder(replica1).rejections.length > 0,
          'replica 1 rejected the dialer',
        );
        assert.equal(
          cluster.recorder(replica1).rejections[0]!.reason,
          'FINISH signature of replica 0 (key epoch 0) does not verify',
        );
        assert.deepEqual(one.connectedPeers(), []);
        await impostor.close();

        // Now the listener is the impostor: the dialer refuses it.
        const fakeTwo = await cluster.start(replica2, { listenPort: 0, identity: makeIdentity(replica2) });
        const zero = await cluster.start(replica0, { peers: [addressOf(replica2, fakeTwo)] });
        await waitUntil(
          () =>
            cluster.recorder(replica0).rejections.some((entry) => /HELLO-REPLY signature/.test(entry.reason)),
          'replica 0 rejected the listener',
        );
        const rejection = cluster
          .recorder(replica0)
          .rejections.find((entry) => /HELLO-REPLY/.test(entry.reason))!;
        assert.equal(rejection.reason, 'HELLO-REPLY signature of replica 2 (key epoch 0) does not verify');
        assert.deepEqual(rejection.peer, replica2, 'a dialed connection names the peer it was dialed for');
        assert.deepEqual(zero.connectedPeers(), []);
      } finally {
        await cluster.close();
      }
    });

    it('rejects a retired key epoch', async () => {
      const cluster = new TestCluster();
      try {
        const current = makeIdentity(replica0, keyEpoch(3));
        cluster.keys.set(replica0, [channelPublicKey(current)]);
        const one = await cluster.start(replica1, { listenPort: 0 });
        const stale = { ...current, keyEpoch: keyEpoch(2) };
        await cluster.start(replica0, { peers: [addressOf(replica1, one)], identity: stale });
        await waitUntil(
          () => cluster.recorder(replica1).rejections.length > 0,
          'the stale epoch was rejected',
        );
        assert.equal(
          cluster.recorder(replica1).rejections[0]!.reason,
          'replica 0 key epoch 2 is not accepted',
        );
      } finally {
        await cluster.close();
      }
    });

    it('refuses a dial from a higher replica id (the lower id dials)', async () => {
      const cluster = new TestCluster();
      try {
        const one = await cluster.start(replica1, { listenPort: 0 });
        const { socket, closed } = await rawSocket(one.listenAddress()!.port);
        const channel = SecureChannel.initiator({
          identity: cluster.identity(replica2),
          expectedPeer: replica1,
          keys: cluster.keys,
        });
        for (const bytes of channel.start()) socket.write(bytes);
        await closed;
        assert.equal(
          cluster.recorder(replica1).rejections[0]?.reason,
          'replica 2 must not dial replica 1: the lower replica id dials',
        );
      } finally {
        await cluster.close();
      }
    });

    it('re-handshakes under new keys after dropConnections, and old keys stop working', async () => {
      const cluster = new TestCluster();
      try {
        const one = await cluster.start(replica1, { listenPort: 0 });
        const zero = await cluster.start(replica0, { peers: [addressOf(replica1, one)] });
        await waitUntil(() => hasPeer(zero, replica1) && hasPeer(one, replica0), 'connected');

        // Replica 0 rotates to epoch 1: the directory retires epoch 0, replica 0 takes the new key.
        const rotated = makeIdentity(replica0, keyEpoch(1));
        cluster.keys.set(replica0, [channelPublicKey(rotated)]);
        zero.setIdentity(rotated);
        assert.equal(
          zero.dropConnections((peer) => peer.kind === 'replica'),
          1,
        );
        assert.equal(hasPeer(zero, replica1), false, 'dropped at once');
        assert.equal(zero.send(replica1, text('after rotation')), true);
        await waitUntil(
          () => cluster.recorder(replica1).frames.length === 1,
          'the frame arrived over the new session',
        );
        assert.equal(asText(cluster.recorder(replica1).frames[0]!.frame), 'after rotation');
        assert.deepEqual(cluster.recorder(replica1).rejections, []);

        // The directory moves on to epoch 2 but replica 0 keeps epoch 1: once replica 1 drops the
        // connection, replica 0's redials are refused.
        cluster.keys.set(replica0, [channelPublicKey(makeIdentity(replica0, keyEpoch(2)))]);
        assert.equal(one.dropConnections(), 1);
        await waitUntil(
          () =>
            cluster
              .recorder(replica1)
              .rejections.some((entry) => entry.reason === 'replica 0 key epoch 1 is not accepted'),
          'the old epoch was refused',
        );
        assert.equal(hasPeer(one, replica0), false);
      } finally {
        await cluster.close();
      }
    });
  });

  describe('hostile input', () => {
    it('rejects garbage, an oversized length prefix and an HTTP request, and keeps serving', async () => {
      const cluster = new TestCluster();
      try {
        const one = await cluster.start(replica1, { listenPort: 0 });
        const port = one.listenAddress()!.port;
        const inputs: { bytes: Buffer; reason: RegExp }[] = [
          { bytes: Buffer.of(0, 0, 0, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0), reason: /^malformed HELLO: / },
          {
            bytes: Buffer.of(0xff, 0xff, 0xff, 0xff, 1, 2, 3),
            reason: new RegExp(
              `^handshake message of 4294967295 bytes exceeds maxHandshakeMessageBytes \\(${HANDSHAKE_LIMITS.maxHandshakeMessageBytes}\\)$`,
            ),
          },
          {
            bytes: Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'),
            reason: /^handshake message of 1195725856 bytes/,
          },
        ];
        for (const [index, input] of inputs.entries()) {
          const { socket, closed } = await rawSocket(port);
          socket.write(input.bytes);
          await closed;
          const rejection = cluster.recorder(replica1).rejections[index];
          assert.ok(rejection !== undefined, `input ${index} was rejected`);
          assert.match(rejection.reason, input.reason);
          assert.equal(rejection.peer, null);
        }
        assert.equal(one.statistics().handshakesRejected, inputs.length);

        const alice = clientNode(clientId('alice'));
        const client = await cluster.start(alice, { peers: [addressOf(replica1, one)] });
        client.send(replica1, text('hello after the garbage'));
        await waitUntil(
          () => cluster.recorder(replica1).frames.length === 1,
          'a well-behaved client is served',
        );
        assert.deepEqual(cluster.recorder(replica1).frames[0]!.from, alice);
      } finally {
        await cluster.close();
      }
    });

    it('bounds inbound connections as a whole', async () => {
      const cluster = new TestCluster();
      const sockets: Socket[] = [];
      try {
        const one = await cluster.start(replica1, { listenPort: 0, limits: { maxInboundConnections: 1 } });
        const port = one.listenAddress()!.port;
        sockets.push((await rawSocket(port)).socket);
        const second = await rawSocket(port);
        sockets.push(second.socket);
        await second.closed;
        await waitUntil(
          () => cluster.recorder(replica1).rejections.length > 0,
          'the second connection was refused',
        );
        assert.equal(
          cluster.recorder(replica1).rejections[0]!.reason,
          'too many inbound connections (maxInboundConnections 1)',
        );
      } finally {
        for (const socket of sockets) socket.destroy();
        await cluster.close();
      }
    });

    it('survives an event handler that throws, logging it as an error', async () => {
      const errors: string[] = [];
      const keys = new StaticKeyDirectory();
      const identities = [makeIdentity(replica0), makeIdentity(replica1)];
      for (const identity of identities) keys.set(identity.node, [channelPublicKey(identity)]);
      const received: string[] = [];
      const logger: TransportLogger = {
        debug() {},
        warn() {},
        error: (_details, message) => errors.push(message),
      };
      const one = await TcpTransport.start({
        identity: identities[1]!,
        listen: { host: LOOPBACK, port: 0 },
        peers: [],
        keys,
        logger,
        events: {
          onFrame: (_from, frame) => {
            received.push(asText(frame));
            if (asText(frame) === 'boom') throw new Error('handler bug');
          },
        },
      });
      const zero = await TcpTransport.start({
        identity: identities[0]!,
        peers: [addressOf(replica1, one)],
        keys,
        logger,
        events: { onFrame() {} },
      });
      try {
        zero.send(replica1, text('boom'));
        zero.send(replica1, text('after'));
        await waitUntil(() => received.length === 2, 'both frames were handed over');
        assert.deepEqual(received, ['boom', 'after']);
        assert.deepEqual(errors, ['onFrame handler threw']);
        assert.ok(hasPeer(one, replica0), 'the connection survives');
      } finally {
        await Promise.all([zero.close(), one.close()]);
      }
    });

    it('closes a connection that does not finish the handshake in time', async () => {
      const cluster = new TestCluster();
      try {
        const one = await cluster.start(replica1, {
          listenPort: 0,
          limits: { handshakeTimeoutMilliseconds: 150 },
        });
        const { closed } = await rawSocket(one.listenAddress()!.port);
        await closed;
        assert.equal(
          cluster.recorder(replica1).rejections[0]?.reason,
          'handshake did not complete within 150 ms',
        );
      } finally {
        await cluster.close();
      }
    });

    it('bounds connections that are still in the handshake', async () => {
      const cluster = new TestCluster();
      const sockets: Socket[] = [];
      try {
        const one = await cluster.start(replica1, {
          listenPort: 0,
          limits: { maxPendingInboundHandshakes: 2 },
        });
        const port = one.listenAddress()!.port;
        for (let index = 0; index < 2; index++) sockets.push((await rawSocket(port)).socket);
        const third = await rawSocket(port);
        sockets.push(third.socket);
        await third.closed;
        assert.match(
          cluster.recorder(replica1).rejections[0]?.reason ?? '',
          /^too many connections in the handshake \(maxPendingInboundHandshakes 2\)$/,
        );
      } finally {
        for (const socket of sockets) socket.destroy();
        await cluster.close();
      }
    });

    for (const [mode, expected] of [
      ['tamper-first-record', /^record 0 does not authenticate/],
      ['replay-first-record', /^record 1 does not authenticate/],
      ['oversized-record', /^record of 4294967295 bytes exceeds the largest record/],
    ] as const) {
      it(`kills the connection on ${mode.replaceAll('-', ' ')}, then recovers`, async () => {
        const cluster = new TestCluster();
        let proxy: RecordProxy | null = null;
        try {
          const one = await cluster.start(replica1, { listenPort: 0 });
          proxy = await RecordProxy.start(one.listenAddress()!.port, mode);
          const zero = await cluster.start(replica0, {
            peers: [{ node: replica1, host: LOOPBACK, port: proxy.port }],
          });
          await waitUntil(() => hasPeer(zero, replica1), 'connected through the proxy');
          zero.send(replica1, text('first'));
          await waitUntil(
            () => cluster.recorder(replica1).rejections.length > 0,
            'the meddling was detected',
          );
          const rejection = cluster.recorder(replica1).rejections[0]!;
          assert.match(rejection.reason, expected);
          assert.deepEqual(
            rejection.peer,
            replica0,
            'the connection was authenticated, so the peer is named',
          );
          const firsts = cluster
            .recorder(replica1)
            .frames.filter((received) => asText(received.frame) === 'first');
          assert.equal(
            firsts.length,
            mode === 'replay-first-record' ? 1 : 0,
            'no frame delivered twice or tampered',
          );
          // Replica 0 redials (the proxy no longer meddles) and frames flow again.
          await waitUntil(() => {
            zero.send(replica1, text('again'));
            return cluster.recorder(replica1).frames.some((received) => asText(received.frame) === 'again');
          }, 'frames flow after the reconnection');
          assert.equal(proxy.connections, 2);
        } finally {
          await cluster.close();
          await proxy?.close();
        }
      });
    }
  });

  describe('connections and queues', () => {
    it('reconnects after the peer restarts on the same port, delivering what was queued meanwhile', async () => {
      const cluster = new TestCluster();
      try {
        const one = await cluster.start(replica1, { listenPort: 0 });
        const port = one.listenAddress()!.port;
        const zero = await cluster.start(replica0, { peers: [{ node: replica1, host: LOOPBACK, port }] });
        zero.send(replica1, text('before'));
        await waitUntil(() => cluster.recorder(replica1).frames.length === 1, 'the first frame arrived');
        await one.close();
        await waitUntil(() => !hasPeer(zero, replica1), 'replica 0 saw the restart');
        assert.equal(zero.send(replica1, text('while down')), true, 'a configured peer keeps its queue');
        await pause(100);
        const restarted = await cluster.start(replica1, { listenPort: port });
        await waitUntil(() => hasPeer(zero, replica1) && hasPeer(restarted, replica0), 'reconnected');
        zero.send(replica1, text('after'));
        await waitUntil(
          () => cluster.recorder(replica1).frames.length === 3,
          'frames arrived after the restart',
        );
        assert.deepEqual(
          cluster.recorder(replica1).frames.map((received) => asText(received.frame)),
          ['before', 'while down', 'after'],
        );
        const states = cluster.recorder(replica0).peerStates.map((state) => state.connected);
        assert.deepEqual(states, [true, false, true]);
      } finally {
        await cluster.close();
      }
    });

    it('drops and counts frames beyond the queue bound of an unreachable peer', async () => {
      const cluster = new TestCluster();
      try {
        const port = await unusedPort();
        const zero = await cluster.start(replica0, {
          peers: [{ node: replica1, host: LOOPBACK, port }],
          limits: { maxQueuedFramesPerPeer: 100 },
        });
        const accepted = Array.from({ length: 150 }, () => zero.send(replica1, new Uint8Array(10)));
        assert.equal(accepted.filter(Boolean).length, 100);
        assert.deepEqual(accepted.slice(100), new Array(50).fill(false));
        assert.equal(zero.statistics().framesDropped, 50);
        assert.deepEqual(zero.outboundQueue(replica1), { frames: 100, bytes: 1000 });
      } finally {
        await cluster.close();
      }
    });

    it('under backpressure, drops and counts frames rather than growing its queue', async () => {
      const cluster = new TestCluster();
      let proxy: RecordProxy | null = null;
      try {
        const one = await cluster.start(replica1, { listenPort: 0 });
        proxy = await RecordProxy.start(one.listenAddress()!.port, 'stall-after-handshake');
        const maxQueuedBytesPerPeer = 1024 * 1024;
        const zero = await cluster.start(replica0, {
          peers: [{ node: replica1, host: LOOPBACK, port: proxy.port }],
          limits: { maxQueuedBytesPerPeer },
        });
        await waitUntil(() => hasPeer(zero, replica1), 'connected through the proxy');
        const frame = new Uint8Array(64 * 1024);
        let accepted = 0;
        // Loopback kernel buffers absorb some megabytes before the socket pushes back.
        for (let turn = 0; turn < 2000 && zero.statistics().framesDropped === 0; turn++) {
          for (let index = 0; index < 8; index++) if (zero.send(replica1, frame)) accepted++;
          await new Promise((resolve) => setImmediate(resolve));
        }
        const statistics = zero.statistics();
        assert.ok(statistics.framesDropped > 0, 'frames were dropped');
        assert.ok(zero.outboundQueue(replica1)!.bytes <= maxQueuedBytesPerPeer);
        assert.equal(statistics.framesSent + zero.outboundQueue(replica1)!.frames, accepted);
        assert.ok(hasPeer(zero, replica1), 'backpressure alone does not break the connection');
      } finally {
        await cluster.close();
        await proxy?.close();
      }
    });

    it('delivers 2 000 frames of 100 bytes between two replicas in order', async () => {
      const cluster = new TestCluster();
      try {
        const one = await cluster.start(replica1, { listenPort: 0 });
        const zero = await cluster.start(replica0, { peers: [addressOf(replica1, one)] });
        await waitUntil(() => hasPeer(zero, replica1), 'connected');
        const count = 2000;
        for (let index = 0; index < count; index++) {
          const frame = new Uint8Array(100).fill(index & 0xff);
          new DataView(frame.buffer).setUint32(0, index);
          assert.equal(zero.send(replica1, frame), true);
        }
        await waitUntil(() => cluster.recorder(replica1).frames.length === count, 'all frames arrived');
        cluster.recorder(replica1).frames.forEach((received, index) => {
          assert.equal(received.frame.length, 100);
          assert.equal(new DataView(received.frame.buffer, received.frame.byteOffset).getUint32(0), index);
        });
      } finally {
        await cluster.close();
      }
    });

    it('a newer connection from the same client replaces the older one', async () => {
      const cluster = new TestCluster();
      const alice = clientNode(clientId('alice'));
      try {
        const one = await cluster.start(replica1, { listenPort: 0 });
        const first = await cluster.start(alice, { peers: [addressOf(replica1, one)] });
        await waitUntil(() => hasPeer(one, alice), 'the first connection is up');
        const second = await cluster.start(alice, { peers: [addressOf(replica1, one)] });
        await waitUntil(() => hasPeer(second, replica1), 'the second connection is up');
        await waitUntil(() => !hasPeer(first, replica1), 'the first connection was closed');
        assert.equal(one.send(alice, text('to the newest')), true);
        await waitUntil(() => cluster.recorder(alice).frames.length === 1, 'the reply arrived');
        assert.equal(one.connectedPeers().length, 1);
        await first.close();
      } finally {
        await cluster.close();
      }
    });

    it('close() leaves no sockets or timers behind', async () => {
      const countResources = (): Map<string, number> => {
        const counts = new Map<string, number>();
        for (const name of process.getActiveResourcesInfo()) counts.set(name, (counts.get(name) ?? 0) + 1);
        return counts;
      };
      const before = countResources();
      const cluster = new TestCluster();
      const one = await cluster.start(replica1, { listenPort: 0 });
      const zero = await cluster.start(replica0, { peers: [addressOf(replica1, one)] });
      // A peer that is never reachable keeps a reconnect timer armed until close.
      const unreachable = await cluster.start(clientNode(clientId('carol')), {
        peers: [{ node: replica2, host: LOOPBACK, port: await unusedPort() }],
      });
      await waitUntil(() => hasPeer(zero, replica1), 'connected');
      zero.send(replica1, text('x'));
      unreachable.send(replica2, text('y'));
      await cluster.close();
      const after = countResources();
      for (const name of ['TCPSocketWrap', 'TCPServerWrap', 'Timeout', 'Immediate']) {
        assert.ok((after.get(name) ?? 0) <= (before.get(name) ?? 0), `${name}: ${after.get(name)} left`);
      }
    });
  });
});
