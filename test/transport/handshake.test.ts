import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { type ClientId, clientId, type KeyEpoch, keyEpoch, replicaId } from '../../src/core/ids.js';
import { type SigningKeyPair, signingKeyPairFromSeed } from '../../src/crypto/keys.js';
import { LIMITS } from '../../src/messages/limits.js';
import {
  type ChannelIdentity,
  type ChannelStep,
  channelPublicKey,
  decodeFinish,
  decodeHello,
  decodeHelloReply,
  deriveSessionKeys,
  encodeHello,
  HANDSHAKE_LIMITS,
  LengthPrefixedReader,
  MAX_RECORD_BODY_BYTES,
  RecordOpener,
  RecordSealer,
  SecureChannel,
  StaticKeyDirectory,
  splitRecordFrames,
  TRANSPORT_PROTOCOL_VERSION,
  withLengthPrefix,
} from '../../src/transport/handshake.js';
import { clientNode, type NodeId, replicaNode } from '../../src/transport/transport.js';

const replica0 = replicaNode(replicaId(0));
const replica1 = replicaNode(replicaId(1));
const replica2 = replicaNode(replicaId(2));
const alice = clientNode(clientId('alice'));

function keyPair(seed: number): SigningKeyPair {
  return signingKeyPairFromSeed(new Uint8Array(32).fill(seed));
}

function identity(node: NodeId, seed: number, epoch: KeyEpoch = keyEpoch(0)): ChannelIdentity {
  return { node, keyEpoch: epoch, signingKeys: keyPair(seed) };
}

const identities = {
  replica0: identity(replica0, 10),
  replica1: identity(replica1, 11),
  replica2: identity(replica2, 12),
  alice: identity(alice, 20),
};

function directoryOf(...members: ChannelIdentity[]): StaticKeyDirectory {
  return new StaticKeyDirectory(members.map((member) => [member.node, [channelPublicKey(member)]] as const));
}

const everybody = directoryOf(
  identities.replica0,
  identities.replica1,
  identities.replica2,
  identities.alice,
);

function concat(parts: readonly Uint8Array[]): Buffer {
  return Buffer.concat(parts);
}

interface HandshakeRun {
  readonly initiator: SecureChannel;
  readonly responder: SecureChannel;
  readonly initiatorSteps: ChannelStep[];
  readonly responderSteps: ChannelStep[];
}

/**
 * Runs a handshake by handing each side's output to the other, optionally rewriting bytes in
 * flight. Stops when neither side has anything more to say.
 */
function runHandshake(
  initiator: SecureChannel,
  responder: SecureChannel,
  rewrite: {
    toResponder?: (bytes: Buffer, index: number) => Buffer;
    toInitiator?: (bytes: Buffer, index: number) => Buffer;
  } = {},
): HandshakeRun {
  const initiatorSteps: ChannelStep[] = [];
  const responderSteps: ChannelStep[] = [];
  let toResponder = concat(initiator.start());
  let round = 0;
  while (toResponder.length > 0) {
    const responderStep = responder.receive(rewrite.toResponder?.(toResponder, round) ?? toResponder);
    responderSteps.push(responderStep);
    const toInitiator = concat(responderStep.outgoing);
    if (toInitiator.length === 0) break;
    const initiatorStep = initiator.receive(rewrite.toInitiator?.(toInitiator, round) ?? toInitiator);
    initiatorSteps.push(initiatorStep);
    toResponder = concat(initiatorStep.outgoing);
    round++;
  }
  return { initiator, responder, initiatorSteps, responderSteps };
}

function failureOf(steps: readonly ChannelStep[]): string | null {
  for (const step of steps) if (step.failure !== null) return step.failure;
  return null;
}

function connectedPair(
  initiatorIdentity: ChannelIdentity = identities.replica0,
  responderIdentity: ChannelIdentity = identities.replica1,
): { initiator: SecureChannel; responder: SecureChannel } {
  const initiator = SecureChannel.initiator({
    identity: initiatorIdentity,
    expectedPeer: responderIdentity.node,
    keys: everybody,
  });
  const responder = SecureChannel.responder({ identity: responderIdentity, keys: everybody });
  const run = runHandshake(initiator, responder);
  assert.equal(failureOf(run.initiatorSteps), null);
  assert.equal(failureOf(run.responderSteps), null);
  assert.equal(initiator.phase, 'established');
  assert.equal(responder.phase, 'established');
  return { initiator, responder };
}

const text = (value: string): Uint8Array => new TextEncoder().encode(value);

describe('handshake', () => {
  it('establishes a replica–replica channel: both ends authenticated, same channel binding', () => {
    const { initiator, responder } = connectedPair();
    assert.deepEqual(initiator.peer?.node, replica1);
    assert.deepEqual(responder.peer?.node, replica0);
    assert.equal(initiator.peer?.keyEpoch, 0);
    assert.equal(initiator.peer?.channelBinding.length, 32);
    assert.deepEqual(initiator.peer?.channelBinding, responder.peer?.channelBinding);
  });

  it('establishes a client–replica channel and reports the established peer once on each side', () => {
    const initiator = SecureChannel.initiator({
      identity: identities.alice,
      expectedPeer: replica2,
      keys: everybody,
    });
    const responder = SecureChannel.responder({ identity: identities.replica2, keys: everybody });
    const run = runHandshake(initiator, responder);
    const responderEstablished = run.responderSteps.filter((step) => step.established !== null);
    const initiatorEstablished = run.initiatorSteps.filter((step) => step.established !== null);
    assert.equal(responderEstablished.length, 1);
    assert.equal(initiatorEstablished.length, 1);
    assert.deepEqual(responderEstablished[0]!.established!.node, alice);
    assert.deepEqual(initiatorEstablished[0]!.established!.node, replica2);
  });

  it('gives fresh keys per session', () => {
    const first = connectedPair();
    const second = connectedPair();
    assert.notDeepEqual(first.initiator.peer?.channelBinding, second.initiator.peer?.channelBinding);
  });

  it('works when the bytes arrive one at a time', () => {
    const initiator = SecureChannel.initiator({
      identity: identities.replica0,
      expectedPeer: replica1,
      keys: everybody,
    });
    const responder = SecureChannel.responder({ identity: identities.replica1, keys: everybody });
    const feed = (channel: SecureChannel, bytes: Uint8Array): Buffer[] => {
      const out: Buffer[] = [];
      for (const byte of bytes) {
        const step = channel.receive(Uint8Array.of(byte));
        assert.equal(step.failure, null);
        out.push(...step.outgoing);
      }
      return out;
    };
    const reply = feed(responder, concat(initiator.start()));
    const finish = feed(initiator, concat(reply));
    const confirmation = feed(responder, concat(finish));
    feed(initiator, concat(confirmation));
    assert.equal(initiator.phase, 'established');
    assert.equal(responder.phase, 'established');
  });

  describe('refuses', () => {
    const refusal = (
      initiatorIdentity: ChannelIdentity,
      expectedPeer: NodeId,
      responderIdentity: ChannelIdentity,
      keys: { initiator: StaticKeyDirectory; responder: StaticKeyDirectory },
      admit?: (claimed: NodeId) => string | null,
    ): { initiator: string | null; responder: string | null } => {
      const initiator = SecureChannel.initiator({
        identity: initiatorIdentity,
        expectedPeer,
        keys: keys.initiator,
      });
      const responder = SecureChannel.responder({
        identity: responderIdentity,
        keys: keys.responder,
        ...(admit === undefined ? {} : { admit }),
      });
      const run = runHandshake(initiator, responder);
      assert.notEqual(initiator.phase, 'established');
      assert.notEqual(responder.phase, 'established');
      return { initiator: failureOf(run.initiatorSteps), responder: failureOf(run.responderSteps) };
    };

    it('an unknown client', () => {
      const mallory = identity(clientNode(clientId('mallory')), 66);
      const result = refusal(mallory, replica1, identities.replica1, {
        initiator: everybody,
        responder: everybody,
      });
      assert.equal(result.responder, 'unknown client mallory');
    });

    it('a retired key epoch', () => {
      const keys = new StaticKeyDirectory([
        [replica1, [channelPublicKey(identities.replica1)]],
        [replica0, [{ keyEpoch: keyEpoch(1), publicKey: keyPair(99).publicKey.bytes }]],
      ]);
      const result = refusal(identities.replica0, replica1, identities.replica1, {
        initiator: everybody,
        responder: keys,
      });
      assert.equal(result.responder, 'replica 0 key epoch 0 is not accepted');
    });

    it("an initiator whose key is not the directory's (FINISH signature)", () => {
      const impostor = identity(replica0, 77);
      const result = refusal(impostor, replica1, identities.replica1, {
        initiator: everybody,
        responder: everybody,
      });
      assert.equal(result.responder, 'FINISH signature of replica 0 (key epoch 0) does not verify');
    });

    it("a responder whose key is not the directory's (HELLO-REPLY signature)", () => {
      const impostor = identity(replica1, 78);
      const result = refusal(identities.replica0, replica1, impostor, {
        initiator: everybody,
        responder: everybody,
      });
      assert.equal(result.initiator, 'HELLO-REPLY signature of replica 1 (key epoch 0) does not verify');
    });

    it('a responder that is not the node the initiator meant to reach', () => {
      const result = refusal(identities.replica0, replica2, identities.replica1, {
        initiator: everybody,
        responder: everybody,
      });
      assert.equal(result.responder, 'replica 0 expected replica 2, this is replica 1');
    });

    it('a peer claiming to be the responder itself', () => {
      const result = refusal(identities.replica1, replica1, identities.replica1, {
        initiator: everybody,
        responder: everybody,
      });
      assert.equal(result.responder, 'peer claims to be this node (replica 1)');
    });

    it('whoever the admission policy refuses, before any key work', () => {
      const result = refusal(
        identities.replica2,
        replica1,
        identities.replica1,
        { initiator: everybody, responder: everybody },
        (claimed) => (claimed.kind === 'replica' && claimed.id > 1 ? 'higher ids do not dial' : null),
      );
      assert.equal(result.responder, 'higher ids do not dial');
    });

    it('a reply from another node than the one dialed', () => {
      // The responder is told it is the one expected (it is replica 2), but the initiator dialed replica 1.
      const initiator = SecureChannel.initiator({
        identity: identities.replica0,
        expectedPeer: replica1,
        keys: everybody,
      });
      const responder = SecureChannel.responder({ identity: identities.replica2, keys: everybody });
      const hello = decodeHello(concat(initiator.start()).subarray(4));
      assert.ok(hello.ok);
      const redirected = withLengthPrefix(encodeHello({ ...hello.value, expectedResponder: replica2 }));
      const reply = responder.receive(redirected);
      assert.equal(reply.failure, null);
      const step = initiator.receive(concat(reply.outgoing));
      assert.equal(step.failure, 'HELLO-REPLY from replica 2, expected replica 1');
    });

    it('an unsupported protocol version', () => {
      const initiator = SecureChannel.initiator({
        identity: identities.replica0,
        expectedPeer: replica1,
        keys: everybody,
      });
      const responder = SecureChannel.responder({ identity: identities.replica1, keys: everybody });
      const hello = decodeHello(concat(initiator.start()).subarray(4));
      assert.ok(hello.ok);
      const step = responder.receive(withLengthPrefix(encodeHello({ ...hello.value, version: 2 })));
      assert.equal(
        step.failure,
        `unsupported transport protocol version 2 (this node speaks ${TRANSPORT_PROTOCOL_VERSION})`,
      );
    });

    it('a man in the middle that swaps the ephemeral key of the HELLO', () => {
      const initiator = SecureChannel.initiator({
        identity: identities.replica0,
        expectedPeer: replica1,
        keys: everybody,
      });
      const responder = SecureChannel.responder({ identity: identities.replica1, keys: everybody });
      const attackerKey = SecureChannel.initiator({
        identity: identities.replica2,
        expectedPeer: replica1,
        keys: everybody,
      });
      const attackerHello = decodeHello(concat(attackerKey.start()).subarray(4));
      assert.ok(attackerHello.ok);
      const run = runHandshake(initiator, responder, {
        toResponder: (bytes, index) => {
          if (index !== 0) return bytes;
          const hello = decodeHello(bytes.subarray(4));
          assert.ok(hello.ok);
          return withLengthPrefix(
            encodeHello({ ...hello.value, ephemeralPublicKey: attackerHello.value.ephemeralPublicKey }),
          );
        },
      });
      assert.match(
        failureOf(run.initiatorSteps) ?? '',
        /HELLO-REPLY signature of replica 1 .* does not verify/,
      );
    });

    it('oversized and malformed handshake messages', () => {
      const responder = SecureChannel.responder({ identity: identities.replica1, keys: everybody });
      const step = responder.receive(Uint8Array.of(0xff, 0xff, 0xff, 0xff, 1, 2, 3));
      assert.equal(
        step.failure,
        `handshake message of 4294967295 bytes exceeds maxHandshakeMessageBytes (${HANDSHAKE_LIMITS.maxHandshakeMessageBytes})`,
      );
      assert.equal(responder.phase, 'failed');
      // After a failure, input is ignored rather than parsed.
      assert.equal(responder.receive(new Uint8Array(10)).failure, null);

      const other = SecureChannel.responder({ identity: identities.replica1, keys: everybody });
      const garbage = other.receive(withLengthPrefix(text('GET / HTTP/1.1')));
      assert.match(
        garbage.failure ?? '',
        /^malformed HELLO: expected HELLO \(message type 1\), got message type 71/,
      );
    });

    it('a key lookup that changed between HELLO and FINISH', () => {
      const keys = directoryOf(identities.replica0, identities.replica1);
      const initiator = SecureChannel.initiator({
        identity: identities.replica0,
        expectedPeer: replica1,
        keys,
      });
      const responder = SecureChannel.responder({ identity: identities.replica1, keys });
      const reply = responder.receive(concat(initiator.start()));
      const finish = initiator.receive(concat(reply.outgoing));
      keys.set(replica0, [{ keyEpoch: keyEpoch(1), publicKey: keyPair(5).publicKey.bytes }]);
      assert.equal(
        responder.receive(concat(finish.outgoing)).failure,
        'replica 0 key epoch 0 is not accepted',
      );
    });
  });

  it('encodes and decodes handshake messages, refusing truncation and trailing bytes', () => {
    const initiator = SecureChannel.initiator({
      identity: identity(clientNode(clientId('a'.repeat(64))), 1),
      expectedPeer: replica1,
      keys: everybody,
    });
    const helloBytes = concat(initiator.start()).subarray(4);
    assert.ok(helloBytes.length <= HANDSHAKE_LIMITS.maxHandshakeMessageBytes);
    const hello = decodeHello(helloBytes);
    assert.ok(hello.ok);
    assert.deepEqual(hello.value.initiator, clientNode('a'.repeat(64) as ClientId));
    assert.deepEqual(encodeHello(hello.value), new Uint8Array(helloBytes));
    assert.equal(decodeHello(helloBytes.subarray(0, helloBytes.length - 1)).ok, false);
    assert.match(
      (decodeHello(Buffer.concat([helloBytes, Buffer.of(0)])) as { reason: string }).reason,
      /1 trailing bytes after HELLO/,
    );
    assert.equal(decodeHelloReply(helloBytes).ok, false);
    assert.equal(decodeFinish(helloBytes).ok, false);
  });
});

describe('record layer', () => {
  it('carries frames both ways, many frames per record, in order, as plain Uint8Arrays', () => {
    const { initiator, responder } = connectedPair();
    const frames = [text('one'), new Uint8Array(0), text('three')];
    const step = responder.receive(initiator.seal(frames));
    assert.deepEqual(step.frames, frames);
    for (const frame of step.frames) assert.equal(Object.getPrototypeOf(frame), Uint8Array.prototype);
    const back = initiator.receive(responder.seal([text('reply')]));
    assert.deepEqual(back.frames, [text('reply')]);
    const empty = responder.receive(initiator.seal([]));
    assert.deepEqual(empty.frames, []);
    assert.equal(empty.failure, null);
  });

  it('kills the channel on any flipped byte of a record', () => {
    const record = (() => {
      const { initiator } = connectedPair();
      return initiator.seal([text('payload')]);
    })();
    for (let index = 0; index < record.length; index++) {
      const { initiator, responder } = connectedPair();
      const sealed = initiator.seal([text('payload')]);
      assert.equal(sealed.length, record.length);
      sealed[index]! ^= 0x01;
      const step = responder.receive(sealed);
      assert.deepEqual(step.frames, [], `byte ${index}`);
      // A flipped length byte either announces an oversized record or leaves the channel waiting.
      if (step.failure === null) assert.equal(responder.phase, 'established');
      else assert.equal(responder.phase, 'failed');
      if (index >= 4) assert.match(step.failure ?? '', /does not authenticate/);
    }
  });

  it('kills the channel on a replayed, reordered or dropped record', () => {
    {
      const { initiator, responder } = connectedPair();
      const first = initiator.seal([text('a')]);
      assert.deepEqual(responder.receive(first).frames, [text('a')]);
      const replay = responder.receive(first);
      assert.deepEqual(replay.frames, []);
      assert.match(
        replay.failure ?? '',
        /record 1 does not authenticate \(tampered, replayed, reordered or dropped\)/,
      );
    }
    {
      const { initiator, responder } = connectedPair();
      initiator.seal([text('a')]); // sealed first, delivered second
      const second = initiator.seal([text('b')]);
      const step = responder.receive(second);
      assert.match(step.failure ?? '', /record 0 does not authenticate/);
      assert.deepEqual(step.frames, []);
    }
    {
      const { initiator, responder } = connectedPair();
      initiator.seal([text('dropped')]);
      assert.match(responder.receive(initiator.seal([text('c')])).failure ?? '', /does not authenticate/);
    }
  });

  it('refuses a record from another session or the other direction', () => {
    const one = connectedPair();
    const two = connectedPair();
    assert.match(
      two.responder.receive(one.initiator.seal([text('x')])).failure ?? '',
      /does not authenticate/,
    );
    const three = connectedPair();
    // The responder's own records are sealed under the other direction's key.
    assert.match(
      three.responder.receive(three.responder.seal([text('x')])).failure ?? '',
      /does not authenticate/,
    );
  });

  it('refuses an oversized record from its length prefix, before buffering it', () => {
    const { responder } = connectedPair();
    const header = Buffer.alloc(4);
    header.writeUInt32BE(MAX_RECORD_BODY_BYTES + 1, 0);
    const step = responder.receive(header);
    assert.match(step.failure ?? '', /^record of \d+ bytes exceeds the largest record/);
  });

  it('refuses a record shorter than its tag', () => {
    const { responder } = connectedPair();
    const step = responder.receive(withLengthPrefix(new Uint8Array(5)));
    assert.equal(step.failure, 'record of 5 bytes is shorter than its authentication tag');
  });

  it('carries a frame of exactly maxFrameBytes and refuses to seal more than a record holds', () => {
    const { initiator, responder } = connectedPair();
    const largest = new Uint8Array(LIMITS.maxFrameBytes).fill(3);
    const record = initiator.seal([largest]);
    const step = responder.receive(record);
    assert.equal(step.failure, null);
    assert.equal(step.frames[0]!.length, LIMITS.maxFrameBytes);
    assert.throws(() => initiator.seal([largest, new Uint8Array(1)]), /exceeds/);
  });

  it('does not seal before the handshake is done', () => {
    const initiator = SecureChannel.initiator({
      identity: identities.replica0,
      expectedPeer: replica1,
      keys: everybody,
    });
    assert.throws(() => initiator.seal([text('early')]), /phase awaiting-reply/);
  });

  it('sealer and opener agree under derived keys, and split malformed plaintext cleanly', () => {
    const keys = deriveSessionKeys(new Uint8Array(32).fill(1), new Uint8Array(32).fill(2));
    const sealer = new RecordSealer(keys.initiatorToResponder);
    const opener = new RecordOpener(keys.initiatorToResponder);
    const record = sealer.seal([text('x'), text('yz')]);
    const opened = opener.open(record.subarray(0, 4), record.subarray(4));
    assert.ok(opened.ok);
    const frames: Uint8Array[] = [];
    assert.equal(splitRecordFrames(opened.value, frames), null);
    assert.deepEqual(frames, [text('x'), text('yz')]);

    const broken = (bytes: number[]): string | null => splitRecordFrames(Buffer.from(bytes), []);
    assert.match(broken([0, 0]) ?? '', /too few for a frame header/);
    assert.match(broken([0, 0, 0, 5, 1]) ?? '', /frame of 5 bytes, only 1 left/);
    assert.match(broken([0xff, 0xff, 0xff, 0xff]) ?? '', /exceeds maxFrameBytes/);
  });
});

describe('LengthPrefixedReader', () => {
  it('reassembles units across arbitrary chunk boundaries', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 10 }),
        fc.array(fc.integer({ min: 1, max: 50 }), { minLength: 1, maxLength: 20 }),
        (units, cuts) => {
          const stream = Buffer.concat(units.map((unit) => withLengthPrefix(unit)));
          const reader = new LengthPrefixedReader();
          const out: Uint8Array[] = [];
          let offset = 0;
          let cutIndex = 0;
          while (offset < stream.length) {
            const size = cuts[cutIndex++ % cuts.length]!;
            reader.push(stream.subarray(offset, offset + size));
            offset += size;
            for (;;) {
              const length = reader.peekLength();
              if (length < 0 || reader.bufferedBytes < 4 + length) break;
              out.push(new Uint8Array(reader.take(4 + length).subarray(4)));
            }
          }
          assert.deepEqual(out, units);
          assert.equal(reader.bufferedBytes, 0);
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('parsers never throw on random input', () => {
  it('handshake message decoders', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), fc.integer({ min: 1, max: 3 }), (bytes, type) => {
        const typed = bytes.length > 0 ? Uint8Array.from([type, ...bytes.subarray(1)]) : bytes;
        for (const input of [bytes, typed]) {
          assert.equal(typeof decodeHello(input).ok, 'boolean');
          assert.equal(typeof decodeHelloReply(input).ok, 'boolean');
          assert.equal(typeof decodeFinish(input).ok, 'boolean');
        }
      }),
      { numRuns: 500 },
    );
  });

  it('a responder fed random chunks (with plausible length prefixes)', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            fc.uint8Array({ maxLength: 200 }),
            fc.uint8Array({ maxLength: 300 }).map((body) => new Uint8Array(withLengthPrefix(body))),
          ),
          { maxLength: 5 },
        ),
        (chunks) => {
          const responder = SecureChannel.responder({ identity: identities.replica1, keys: everybody });
          for (const chunk of chunks) {
            const step = responder.receive(chunk);
            assert.deepEqual(step.frames, []);
            assert.equal(step.established, null);
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('an initiator and an established channel fed random chunks', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 200 }), { maxLength: 5 }), (chunks) => {
        const initiator = SecureChannel.initiator({
          identity: identities.replica0,
          expectedPeer: replica1,
          keys: everybody,
        });
        initiator.start();
        for (const chunk of chunks) {
          const step = initiator.receive(chunk);
          assert.equal(step.established, null);
        }
      }),
      { numRuns: 200 },
    );
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 20, maxLength: 200 }), (body) => {
        const { responder: fresh } = connectedPair();
        const step = fresh.receive(withLengthPrefix(body));
        assert.deepEqual(step.frames, []);
        assert.match(step.failure ?? '', /does not authenticate/);
      }),
      { numRuns: 30 },
    );
  });

  it('a valid stream cut anywhere gives the same frames', () => {
    fc.assert(
      fc.property(
        fc.array(fc.array(fc.uint8Array({ maxLength: 100 }), { maxLength: 4 }), {
          minLength: 1,
          maxLength: 5,
        }),
        fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1, maxLength: 8 }),
        (records, cuts) => {
          const { initiator, responder } = connectedPair();
          const stream = Buffer.concat(records.map((frames) => initiator.seal(frames)));
          const received: Uint8Array[] = [];
          let offset = 0;
          let cutIndex = 0;
          while (offset < stream.length) {
            const size = cuts[cutIndex++ % cuts.length]!;
            const step = responder.receive(stream.subarray(offset, offset + size));
            assert.equal(step.failure, null);
            received.push(...step.frames);
            offset += size;
          }
          assert.deepEqual(received, records.flat());
        },
      ),
      { numRuns: 40 },
    );
  });
});
