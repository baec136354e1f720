import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { type ClientId, clientId, type KeyEpoch, keyEpoch, replicaId } from '../../src/messages/ids.js';
import { type SigningKeyPair, signingKeyPairFromSeed } from '../../src/crypto/keys.js';
import { LIMITS } from '../../src/messages/limits.js';
import {
  type ChannelIdentity,
  type ChannelStep,
  channelPublicKey,
  type HandshakeOperation,
  decodeFinish,
  decodeHello,
  decodeHelloReply,
  deriveSessionKeys,
  encodeFinish,
  encodeHello,
  encodeHelloReply,
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
import {
  type ChannelKeyDirectory,
  clientNode,
  type NodeId,
  replicaNode,
} from '../../src/transport/transport.js';
import { CertifyingKeyDirectory, TestGuardian } from './certificates.js';

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

    it('an unsupported protocol version: the old version 1, and a later one', () => {
      assert.equal(TRANSPORT_PROTOCOL_VERSION, 2);
      for (const version of [1, 3]) {
        const initiator = SecureChannel.initiator({
          identity: identities.replica0,
          expectedPeer: replica1,
          keys: everybody,
        });
        const responder = SecureChannel.responder({ identity: identities.replica1, keys: everybody });
        const hello = decodeHello(concat(initiator.start()).subarray(4));
        assert.ok(hello.ok);
        const step = responder.receive(withLengthPrefix(encodeHello({ ...hello.value, version })));
        assert.equal(step.failure, `unsupported transport protocol version ${version} (this node speaks 2)`);
        assert.deepEqual(step.outgoing, [], 'nothing is answered to another version');
      }
      // The version is judged before the rest is parsed: a later version may lay it out differently.
      const responder = SecureChannel.responder({ identity: identities.replica1, keys: everybody });
      const truncatedLaterHello = Uint8Array.of(1, 0x50, 0x48, 0x4c, 0x58, 0, 9, 0xee);
      assert.equal(
        responder.receive(withLengthPrefix(truncatedLaterHello)).failure,
        'unsupported transport protocol version 9 (this node speaks 2)',
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

describe('key certificates', () => {
  const guardians = [0, 1, 2].map((index) => new TestGuardian(replicaId(index)));
  const [guardian0, guardian1, guardian2] = guardians as [TestGuardian, TestGuardian, TestGuardian];
  // Rejuvenated replicas: fresh session keys at epochs nobody has been told about yet.
  const certified0 = guardian0.issue(2);
  const certified1 = guardian1.issue(3);
  /** What a replica knows of alice: her key, from the configuration. */
  const replicaKeys = (): StaticKeyDirectory =>
    new StaticKeyDirectory([[alice, [channelPublicKey(identities.alice)]]]);
  /** What alice (or a replica that missed an announcement) knows: the identity keys only. */
  const identityKeysOnly = (): CertifyingKeyDirectory => new CertifyingKeyDirectory(guardians);

  interface Outcome {
    readonly initiator: SecureChannel;
    readonly responder: SecureChannel;
    readonly initiatorFailure: string | null;
    readonly responderFailure: string | null;
  }

  function handshake(
    initiatorIdentity: ChannelIdentity,
    responderIdentity: ChannelIdentity,
    keys: { readonly initiator: ChannelKeyDirectory; readonly responder: ChannelKeyDirectory },
    rewrite: Parameters<typeof runHandshake>[2] = {},
  ): Outcome {
    const initiator = SecureChannel.initiator({
      identity: initiatorIdentity,
      expectedPeer: responderIdentity.node,
      keys: keys.initiator,
    });
    const responder = SecureChannel.responder({ identity: responderIdentity, keys: keys.responder });
    const run = runHandshake(initiator, responder, rewrite);
    return {
      initiator,
      responder,
      initiatorFailure: failureOf(run.initiatorSteps),
      responderFailure: failureOf(run.responderSteps),
    };
  }

  function assertEstablished(outcome: Outcome): void {
    assert.equal(outcome.initiatorFailure, null);
    assert.equal(outcome.responderFailure, null);
    assert.equal(outcome.initiator.phase, 'established');
    assert.equal(outcome.responder.phase, 'established');
  }

  /** The handshake failed, and neither end counts the channel as up. */
  function assertRefused(outcome: Outcome): void {
    assert.notEqual(outcome.initiator.phase, 'established');
    assert.notEqual(outcome.responder.phase, 'established');
  }

  it('a client that knows only identity keys admits the replica key a certificate vouches for', () => {
    const keys = identityKeysOnly();
    const outcome = handshake(identities.alice, certified1, { initiator: keys, responder: replicaKeys() });
    assertEstablished(outcome);
    assert.deepEqual(outcome.initiator.peer?.node, replica1);
    assert.equal(outcome.initiator.peer?.keyEpoch, 3);
    assert.equal(outcome.initiator.peer?.admittedByCertificate, true);
    assert.equal(outcome.responder.peer?.admittedByCertificate, false, "alice's key was listed");
    // The directory remembers the key, so the next handshake needs no certificate check.
    assert.deepEqual(keys.acceptableKeys(replica1), [
      { keyEpoch: 3, publicKey: certified1.signingKeys.publicKey.bytes },
    ]);
    const step = outcome.responder.receive(outcome.initiator.seal([text('request')]));
    assert.deepEqual(step.frames, [text('request')]);
    const reply = outcome.initiator.receive(outcome.responder.seal([text('reply')]));
    assert.deepEqual(reply.frames, [text('reply')]);

    const again = handshake(identities.alice, certified1, { initiator: keys, responder: replicaKeys() });
    assertEstablished(again);
    assert.equal(again.initiator.peer?.admittedByCertificate, false);
    assert.equal(keys.admissions, 1);
  });

  it("replica to replica, each admitting the other's certified key (the initiator's comes in FINISH)", () => {
    const outcome = handshake(certified0, certified1, {
      initiator: identityKeysOnly(),
      responder: identityKeysOnly(),
    });
    assertEstablished(outcome);
    assert.deepEqual(outcome.responder.peer?.node, replica0);
    assert.equal(outcome.responder.peer?.keyEpoch, 2);
    assert.equal(outcome.responder.peer?.admittedByCertificate, true);
    assert.equal(outcome.initiator.peer?.admittedByCertificate, true);
    assert.deepEqual(outcome.initiator.peer?.channelBinding, outcome.responder.peer?.channelBinding);
  });

  it('a listed key needs no certificate, and a certificate changes nothing when the key is listed', () => {
    const listed = directoryOf(certified0, certified1);
    const withCertificates = handshake(certified0, certified1, { initiator: listed, responder: listed });
    assertEstablished(withCertificates);
    assert.equal(withCertificates.initiator.peer?.admittedByCertificate, false);
    assert.equal(withCertificates.responder.peer?.admittedByCertificate, false);
    const bare = (certified: ChannelIdentity): ChannelIdentity => ({
      node: certified.node,
      keyEpoch: certified.keyEpoch,
      signingKeys: certified.signingKeys,
    });
    assertEstablished(
      handshake(bare(certified0), bare(certified1), { initiator: listed, responder: listed }),
    );
    // A directory that can admit certified keys still takes listed ones without any certificate.
    const certifying = identityKeysOnly();
    certifying.list(replica1, channelPublicKey(certified1));
    const outcome = handshake(identities.alice, bare(certified1), {
      initiator: certifying,
      responder: replicaKeys(),
    });
    assertEstablished(outcome);
    assert.equal(certifying.admissions, 0);
  });

  describe('refuses', () => {
    const refusedReply = 'replica 1 key epoch 3 is not accepted: the key directory refused its certificate';
    const withCertificate = (certificate: Uint8Array): ChannelIdentity => ({ ...certified1, certificate });
    const cases: readonly {
      readonly name: string;
      readonly identity: ChannelIdentity;
      readonly directoryReason: RegExp;
    }[] = [
      {
        name: 'a certificate signed by another key than the identity key',
        identity: new TestGuardian(replicaId(1)).issue(3),
        directoryReason: /^certificate signature does not verify under the identity key$/,
      },
      {
        name: "another replica's certificate",
        identity: withCertificate(guardian2.certify(keyEpoch(3), certified1.signingKeys.publicKey.bytes)),
        directoryReason: /^certificate for replica 2$/,
      },
      {
        name: 'a certificate for another key',
        identity: withCertificate(guardian1.certify(keyEpoch(3), keyPair(42).publicKey.bytes)),
        directoryReason: /^certificate for another key$/,
      },
      {
        name: 'a certificate for another epoch',
        identity: withCertificate(guardian1.certify(keyEpoch(4), certified1.signingKeys.publicKey.bytes)),
        directoryReason: /^certificate for epoch 4$/,
      },
      {
        name: 'bytes that are no certificate',
        identity: withCertificate(text('not a certificate')),
        directoryReason: /^undecodable certificate: /,
      },
    ];
    for (const { name, identity: forged, directoryReason } of cases) {
      it(name, () => {
        const keys = identityKeysOnly();
        const outcome = handshake(identities.alice, forged, { initiator: keys, responder: replicaKeys() });
        assertRefused(outcome);
        assert.equal(outcome.initiatorFailure, refusedReply);
        assert.equal(keys.refusals.length, 1);
        assert.match(keys.refusals[0]!, directoryReason);
        assert.deepEqual(keys.acceptableKeys(replica1), [], 'nothing was learned');
      });
    }

    it('an old epoch the directory has moved past, though its certificate is genuine', () => {
      const keys = identityKeysOnly();
      assertEstablished(
        handshake(identities.alice, guardian1.issue(4), { initiator: keys, responder: replicaKeys() }),
      );
      const outcome = handshake(identities.alice, certified1, { initiator: keys, responder: replicaKeys() });
      assertRefused(outcome);
      assert.equal(outcome.initiatorFailure, refusedReply);
      assert.deepEqual(keys.refusals, ['epoch 3 is not newer than the known epoch 4']);
      assert.equal(keys.acceptableKeys(replica1)[0]?.keyEpoch, 4);
    });

    it("an initiator's forged certificate, judged by the responder at FINISH", () => {
      const forged0 = new TestGuardian(replicaId(0)).issue(2);
      const responderKeys = identityKeysOnly();
      const outcome = handshake(forged0, certified1, {
        initiator: identityKeysOnly(),
        responder: responderKeys,
      });
      assertRefused(outcome);
      assert.equal(outcome.initiatorFailure, null);
      assert.equal(
        outcome.responderFailure,
        'replica 0 key epoch 2 is not accepted: the key directory refused its certificate',
      );
      assert.deepEqual(responderKeys.refusals, [
        'certificate signature does not verify under the identity key',
      ]);
    });

    it('an unlisted key without a certificate, or with one but a directory that cannot admit it', () => {
      const bare1: ChannelIdentity = {
        node: certified1.node,
        keyEpoch: certified1.keyEpoch,
        signingKeys: certified1.signingKeys,
      };
      const keys = identityKeysOnly();
      const unknown = handshake(identities.alice, bare1, { initiator: keys, responder: replicaKeys() });
      assert.equal(unknown.initiatorFailure, 'unknown replica 1');
      keys.list(replica1, { keyEpoch: keyEpoch(2), publicKey: keyPair(43).publicKey.bytes });
      const unlisted = handshake(identities.alice, bare1, { initiator: keys, responder: replicaKeys() });
      assert.equal(unlisted.initiatorFailure, 'replica 1 key epoch 3 is not accepted');
      // StaticKeyDirectory has no admitCertifiedKey: the certificate is not even looked at.
      const staticOnly = handshake(identities.alice, certified1, {
        initiator: everybody,
        responder: replicaKeys(),
      });
      assert.equal(staticOnly.initiatorFailure, 'replica 1 key epoch 3 is not accepted');
      // A responder whose directory cannot admit certified keys refuses an unlisted epoch at HELLO.
      const atHello = handshake(certified0, certified1, {
        initiator: identityKeysOnly(),
        responder: everybody,
      });
      assert.equal(atHello.responderFailure, 'replica 0 key epoch 2 is not accepted');
      assert.equal(atHello.initiatorFailure, null, 'no reply was sent');
    });

    it('a directory whose admitCertifiedKey throws (an internal error, not an exception)', () => {
      const throwing: ChannelKeyDirectory = {
        acceptableKeys: () => [],
        admitCertifiedKey: () => {
          throw new Error('directory broke');
        },
      };
      const outcome = handshake(identities.alice, certified1, {
        initiator: throwing,
        responder: replicaKeys(),
      });
      assert.equal(outcome.initiatorFailure, 'internal error: directory broke');
    });
  });

  describe('refuses at the HELLO, before any key work, identities no certificate can vouch for', () => {
    /** Runs a handshake counting the responder's public-key operations, step by step. */
    function countedHandshake(
      initiatorIdentity: ChannelIdentity,
      responderIdentity: ChannelIdentity,
      keys: { readonly initiator: ChannelKeyDirectory; readonly responder: ChannelKeyDirectory },
    ): { run: HandshakeRun; responderOperations: HandshakeOperation[] } {
      const responderOperations: HandshakeOperation[] = [];
      const initiator = SecureChannel.initiator({
        identity: initiatorIdentity,
        expectedPeer: responderIdentity.node,
        keys: keys.initiator,
      });
      const responder = SecureChannel.responder({
        identity: responderIdentity,
        keys: keys.responder,
        observe: (operation) => responderOperations.push(operation),
      });
      return { run: runHandshake(initiator, responder), responderOperations };
    }

    /** The responder refused the HELLO itself: one step, nothing written, no key work at all. */
    function assertRefusedAtHello(
      outcome: { run: HandshakeRun; responderOperations: HandshakeOperation[] },
      reason: string,
    ): void {
      const { run, responderOperations } = outcome;
      assert.equal(run.responderSteps.length, 1, 'the HELLO was the only message');
      assert.equal(run.responderSteps[0]!.failure, reason);
      assert.equal(run.responderSteps[0]!.outgoing.length, 0, 'no HELLO-REPLY');
      assert.deepEqual(responderOperations, [], 'no key generation, Diffie-Hellman or signature');
      assert.equal(run.responder.phase, 'failed');
    }

    /** What a replica of a 3-replica configuration knows: alice's key, and the replicas' guardians. */
    const replicaDirectory = (): CertifyingKeyDirectory => {
      const directory = identityKeysOnly();
      directory.list(alice, channelPublicKey(identities.alice));
      return directory;
    };

    it('a client no directory lists (mallory), though the directory admits certified keys', () => {
      const mallory = identity(clientNode(clientId('mallory')), 66);
      const outcome = countedHandshake(mallory, certified1, {
        initiator: identityKeysOnly(),
        responder: replicaDirectory(),
      });
      assertRefusedAtHello(outcome, 'unknown client mallory');
    });

    it('a listed client at an epoch it does not have: certificates are for replicas', () => {
      const staleAlice = identity(alice, 20, keyEpoch(7));
      const outcome = countedHandshake(staleAlice, certified1, {
        initiator: identityKeysOnly(),
        responder: replicaDirectory(),
      });
      assertRefusedAtHello(outcome, 'client alice key epoch 7 is not accepted');
    });

    it('a replica id no configuration can hold (maxReplicas and above)', () => {
      const outsider = new TestGuardian(replicaId(LIMITS.maxReplicas)).issue(1);
      const outcome = countedHandshake(outsider, certified1, {
        initiator: identityKeysOnly(),
        responder: replicaDirectory(),
      });
      assertRefusedAtHello(outcome, `unknown replica ${LIMITS.maxReplicas}`);
    });

    it('a replica id the directory says it can never admit (beyond n)', () => {
      const inner = replicaDirectory();
      const threeReplicas: ChannelKeyDirectory = {
        acceptableKeys: (peer) => inner.acceptableKeys(peer),
        admitCertifiedKey: (peer, epoch, publicKey, certificate) =>
          inner.admitCertifiedKey(peer, epoch, publicKey, certificate),
        mayAdmitCertifiedKey: (peer) => peer.kind === 'replica' && peer.id < 3,
      };
      const replica5 = new TestGuardian(replicaId(5)).issue(1);
      const refused = countedHandshake(replica5, certified1, {
        initiator: identityKeysOnly(),
        responder: threeReplicas,
      });
      assertRefusedAtHello(refused, 'unknown replica 5');
      // Replica 0 of the configuration, at a new certified epoch, still gets through.
      const admitted = countedHandshake(certified0, certified1, {
        initiator: identityKeysOnly(),
        responder: threeReplicas,
      });
      assert.equal(failureOf(admitted.run.responderSteps), null);
      assert.equal(admitted.run.responder.phase, 'established');
      assert.equal(admitted.run.responder.peer?.admittedByCertificate, true);
    });

    it('an epoch older than the one the directory already holds for the replica', () => {
      const responderKeys = replicaDirectory();
      responderKeys.list(replica0, { keyEpoch: keyEpoch(5), publicKey: keyPair(50).publicKey.bytes });
      for (const epoch of [2, 4]) {
        const outcome = countedHandshake(guardian0.issue(epoch), certified1, {
          initiator: identityKeysOnly(),
          responder: responderKeys,
        });
        assertRefusedAtHello(outcome, `replica 0 key epoch ${epoch} is not accepted`);
      }
      assert.equal(responderKeys.refusals.length, 0, 'no certificate was even looked at');
    });

    it('legitimate peers still connect, and the responder then does its key work', () => {
      const responderKeys = replicaDirectory();
      const client = countedHandshake(identities.alice, certified1, {
        initiator: identityKeysOnly(),
        responder: responderKeys,
      });
      assert.equal(failureOf(client.run.responderSteps), null);
      assert.equal(client.run.responder.phase, 'established');
      assert.deepEqual(client.responderOperations, [
        'key-generation',
        'key-agreement',
        'signature',
        'verification',
      ]);
      // A replica back from a rejuvenation with a newer epoch, known only by its certificate.
      const rejuvenated = countedHandshake(certified0, certified1, {
        initiator: identityKeysOnly(),
        responder: responderKeys,
      });
      assert.equal(failureOf(rejuvenated.run.responderSteps), null);
      assert.equal(rejuvenated.run.responder.peer?.keyEpoch, 2);
      assert.equal(rejuvenated.run.responder.peer?.admittedByCertificate, true);
      // And once more with an even newer one, after the directory learned epoch 2.
      const again = countedHandshake(guardian0.issue(3), certified1, {
        initiator: identityKeysOnly(),
        responder: responderKeys,
      });
      assert.equal(failureOf(again.run.responderSteps), null);
      assert.equal(again.run.responder.peer?.keyEpoch, 3);
    });
  });

  describe('a certificate swapped in transit breaks the handshake', () => {
    // Genuine and valid: the same key and epoch, re-issued later. Only the signatures can tell.
    const reissued = guardian1.certify(keyEpoch(3), certified1.signingKeys.publicKey.bytes, {
      issuedAtMs: 1_800_000_000_000,
    });
    const rewriteReply =
      (change: (certificate: Uint8Array) => Uint8Array | null) =>
      (bytes: Buffer, index: number): Buffer => {
        if (index !== 0) return bytes;
        const reply = decodeHelloReply(bytes.subarray(4));
        assert.ok(reply.ok);
        const certified = reply.value.certifiedKey;
        assert.ok(certified !== null);
        const certificate = change(certified.certificate);
        return withLengthPrefix(
          encodeHelloReply({
            ...reply.value,
            certifiedKey: certificate === null ? null : { publicKey: certified.publicKey, certificate },
          }),
        );
      };

    it('in HELLO-REPLY: the directory admits the swapped certificate, the signature does not verify', () => {
      const keys = identityKeysOnly();
      const outcome = handshake(
        identities.alice,
        certified1,
        { initiator: keys, responder: replicaKeys() },
        { toInitiator: rewriteReply(() => reissued) },
      );
      assertRefused(outcome);
      assert.equal(
        outcome.initiatorFailure,
        'HELLO-REPLY signature of replica 1 (key epoch 3) does not verify',
      );
      assert.equal(keys.admissions, 1, 'the re-issued certificate itself is genuine');
    });

    it('in HELLO-REPLY: a certificate removed, though the key is listed', () => {
      const outcome = handshake(
        identities.alice,
        certified1,
        { initiator: directoryOf(certified1), responder: replicaKeys() },
        { toInitiator: rewriteReply(() => null) },
      );
      assertRefused(outcome);
      assert.equal(
        outcome.initiatorFailure,
        'HELLO-REPLY signature of replica 1 (key epoch 3) does not verify',
      );
    });

    it("in FINISH: the responder's check of the initiator's signature fails", () => {
      const reissued0 = guardian0.certify(keyEpoch(2), certified0.signingKeys.publicKey.bytes, {
        issuedAtMs: 1_800_000_000_000,
      });
      const responderKeys = identityKeysOnly();
      const outcome = handshake(
        certified0,
        certified1,
        { initiator: identityKeysOnly(), responder: responderKeys },
        {
          toResponder: (bytes, index) => {
            if (index !== 1) return bytes;
            const finish = decodeFinish(bytes.subarray(4));
            assert.ok(finish.ok);
            const publicKey = finish.value.certifiedKey!.publicKey;
            return withLengthPrefix(
              encodeFinish({ ...finish.value, certifiedKey: { publicKey, certificate: reissued0 } }),
            );
          },
        },
      );
      assertRefused(outcome);
      assert.equal(outcome.responderFailure, 'FINISH signature of replica 0 (key epoch 2) does not verify');
    });
  });

  it('bounds certificates: identities refuse empty and oversized ones, decoders refuse them too', () => {
    const { maxCertificateBytes, maxHandshakeMessageBytes } = HANDSHAKE_LIMITS;
    assert.equal(maxCertificateBytes, 512);
    for (const size of [0, maxCertificateBytes + 1]) {
      const identity: ChannelIdentity = { ...certified1, certificate: new Uint8Array(size) };
      assert.throws(
        () => SecureChannel.responder({ identity, keys: everybody }),
        new RegExp(`1 to 512 bytes \\(maxCertificateBytes\\), got ${size}`),
      );
    }
    // The largest messages there are: certificates of the maximum size, 64-character client ids.
    const longName = clientNode(clientId('b'.repeat(64)));
    const initiatorIdentity = {
      ...identity(clientNode(clientId('a'.repeat(64))), 1),
      certificate: new Uint8Array(512),
    };
    const responderIdentity = { ...identity(longName, 2), certificate: new Uint8Array(512).fill(7) };
    const keys = directoryOf(initiatorIdentity, responderIdentity);
    const initiator = SecureChannel.initiator({ identity: initiatorIdentity, expectedPeer: longName, keys });
    const responder = SecureChannel.responder({ identity: responderIdentity, keys });
    const hello = concat(initiator.start());
    const reply = concat(responder.receive(hello).outgoing);
    const finish = concat(initiator.receive(reply).outgoing);
    responder.receive(finish);
    assert.equal(responder.phase, 'established');
    for (const message of [hello, reply, finish]) assert.ok(message.length - 4 <= maxHandshakeMessageBytes);
    const decodedReply = decodeHelloReply(reply.subarray(4));
    assert.ok(decodedReply.ok);
    assert.deepEqual(decodedReply.value.certifiedKey?.certificate, new Uint8Array(512).fill(7));

    const oversized = encodeHelloReply({
      ...decodedReply.value,
      certifiedKey: { publicKey: keyPair(1).publicKey.bytes, certificate: new Uint8Array(513) },
    });
    assert.match(
      (decodeHelloReply(oversized) as { reason: string }).reason,
      /^malformed HELLO-REPLY: key certificate of 513 bytes exceeds maxCertificateBytes \(512\)/,
    );
    const empty = encodeFinish({
      certifiedKey: { publicKey: keyPair(1).publicKey.bytes, certificate: new Uint8Array(0) },
      signature: new Uint8Array(64),
    });
    assert.match(
      (decodeFinish(empty) as { reason: string }).reason,
      /^malformed FINISH: empty key certificate/,
    );
  });

  it('HELLO-REPLY and FINISH round-trip with and without certificates', () => {
    const certifiedKeys = fc.option(
      fc
        .record({
          publicKey: fc.uint8Array({ minLength: 32, maxLength: 32 }),
          certificate: fc.uint8Array({ minLength: 1, maxLength: HANDSHAKE_LIMITS.maxCertificateBytes }),
        })
        .map(({ publicKey, certificate }) => ({ publicKey, certificate })), // a plain object, as decoded
    );
    const signatures = fc.uint8Array({ minLength: 64, maxLength: 64 });
    fc.assert(
      fc.property(certifiedKeys, signatures, (certifiedKey, signature) => {
        const finish = decodeFinish(encodeFinish({ certifiedKey, signature }));
        assert.ok(finish.ok);
        assert.deepEqual(finish.value, { certifiedKey, signature });
        const reply = {
          responder: replica1,
          responderKeyEpoch: keyEpoch(7),
          ephemeralPublicKey: new Uint8Array(32).fill(1),
          nonce: new Uint8Array(32).fill(2),
          certifiedKey,
          signature,
        };
        const decoded = decodeHelloReply(encodeHelloReply(reply));
        assert.ok(decoded.ok);
        assert.deepEqual(decoded.value, reply);
      }),
      { numRuns: 100 },
    );
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
