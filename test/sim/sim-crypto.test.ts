import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as fc from 'fast-check';
import { signingKeyPairFromSeed } from '../../src/crypto/keys.js';
import { KeyRegistry } from '../../src/crypto/key-registry.js';
import { sessionKeysFromSeed } from '../../src/crypto/replica-crypto.js';
import { verifyBytes } from '../../src/crypto/signatures.js';
import { keyEpoch, replicaId, SIGNATURE_BYTES } from '../../src/messages/ids.js';
import {
  SimulatedReplicaCrypto,
  signatureScheme,
  simulatedSign,
  simulatedVerify,
} from '../../src/sim/sim-crypto.js';

const seedOf = (byte: number): Uint8Array => new Uint8Array(32).fill(byte);
const alice = signingKeyPairFromSeed(seedOf(1));
const bob = signingKeyPairFromSeed(seedOf(2));
const payload = new TextEncoder().encode('phalanx/checkpoint/v1 sequence 16');

describe('simulated signatures', () => {
  it('verify under the signer’s key and payload only', () => {
    const signature = simulatedSign(alice, payload);
    assert.equal(signature.length, SIGNATURE_BYTES);
    assert.ok(simulatedVerify(alice.publicKey, payload, signature));
    assert.ok(!simulatedVerify(bob.publicKey, payload, signature), 'another key');
    assert.ok(!simulatedVerify(alice.publicKey, payload.subarray(1), signature), 'another payload');
    assert.ok(!simulatedVerify(alice.publicKey, payload, signature.subarray(1)), 'a truncated signature');
    assert.ok(!verifyBytes(alice.publicKey, payload, signature), 'not an Ed25519 signature');
  });

  it('refuse a signature with any one bit flipped, anywhere in its 64 bytes', () => {
    const signature = simulatedSign(alice, payload);
    fc.assert(
      fc.property(fc.integer({ min: 0, max: SIGNATURE_BYTES * 8 - 1 }), (bit) => {
        const flipped = signature.slice();
        flipped[bit >> 3]! ^= 1 << (bit & 7);
        return !simulatedVerify(alice.publicKey, payload, flipped);
      }),
    );
  });

  it('are deterministic, and every call returns bytes of its own', () => {
    const first = simulatedSign(alice, payload);
    const second = simulatedSign(alice, payload);
    assert.deepEqual(first, second);
    first[0]! ^= 0xff;
    assert.ok(simulatedVerify(alice.publicKey, payload, second));
  });

  it('cannot be made by pairing one’s own private key with a victim’s public key', () => {
    simulatedSign(bob, payload);
    assert.throws(() => simulatedSign({ ...alice, publicKey: bob.publicKey }, payload), /not its private/);
    const stranger = signingKeyPairFromSeed(seedOf(3));
    assert.throws(() => simulatedSign({ ...stranger, publicKey: bob.publicKey }, payload), /not its private/);
  });

  it('under a key that never signed, nothing verifies', () => {
    const silent = signingKeyPairFromSeed(seedOf(4));
    assert.ok(!simulatedVerify(silent.publicKey, payload, new Uint8Array(SIGNATURE_BYTES)));
  });
});

describe('a replica’s simulated crypto', () => {
  const keys = [sessionKeysFromSeed(seedOf(10)), sessionKeysFromSeed(seedOf(11))];
  const crypto = (registry: KeyRegistry, index: number): SimulatedReplicaCrypto =>
    new SimulatedReplicaCrypto({
      replica: replicaId(index),
      registry,
      epoch: keyEpoch(0),
      sessionKeys: keys[index]!,
      scheme: signatureScheme('simulated'),
    });

  it('follows the registry’s epochs: a message needs the current epoch, a proof may use the one before', () => {
    const registry = new KeyRegistry(2);
    const signer = crypto(registry, 0);
    const verifier = crypto(registry, 1);
    const old = signer.sign(payload);
    assert.equal(old.keyEpoch, 0);
    assert.ok(verifier.verifyReplicaSignature(replicaId(0), old.keyEpoch, payload, old.signature, 'message'));
    assert.ok(!verifier.verifyReplicaSignature(replicaId(0), keyEpoch(1), payload, old.signature, 'proof'));
    signer.rotate(keyEpoch(1), sessionKeysFromSeed(seedOf(12)));
    const fresh = signer.sign(payload);
    assert.equal(fresh.keyEpoch, 1);
    assert.notDeepEqual(fresh.signature, old.signature);
    assert.ok(
      verifier.verifyReplicaSignature(replicaId(0), keyEpoch(1), payload, fresh.signature, 'message'),
    );
    assert.ok(!verifier.verifyReplicaSignature(replicaId(0), keyEpoch(0), payload, old.signature, 'message'));
    assert.ok(verifier.verifyReplicaSignature(replicaId(0), keyEpoch(0), payload, old.signature, 'proof'));
    assert.ok(!verifier.verifyReplicaSignature(replicaId(0), keyEpoch(1), payload, old.signature, 'proof'));
    signer.rotate(keyEpoch(2), sessionKeysFromSeed(seedOf(13)));
    assert.ok(!verifier.verifyReplicaSignature(replicaId(0), keyEpoch(0), payload, old.signature, 'proof'));
  });
});
