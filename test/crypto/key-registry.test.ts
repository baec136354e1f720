import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { clientId, InvariantViolation, keyEpoch, replicaId } from '../../src/messages/ids.js';
import { KeyRegistry, type ReplicaPublicKeys } from '../../src/crypto/key-registry.js';
import { agreementKeyPairFromSeed, deriveSeed, signingKeyPairFromSeed } from '../../src/crypto/keys.js';
import { signBytes } from '../../src/crypto/signatures.js';

const master = new Uint8Array(32).fill(4);

function sessionOf(replica: number, epoch: number) {
  const label = `replica:${replica}|epoch:${epoch}`;
  const signing = signingKeyPairFromSeed(deriveSeed(master, `${label}|ed25519`));
  const agreement = agreementKeyPairFromSeed(deriveSeed(master, `${label}|x25519`));
  const publicKeys: ReplicaPublicKeys = { signing: signing.publicKey, agreement: agreement.publicKey };
  return { signing, publicKeys };
}

const payload = new TextEncoder().encode('checkpoint 42');
const r1 = replicaId(1);
const r2 = replicaId(2);

function signedBy(replica: number, epoch: number) {
  return signBytes(sessionOf(replica, epoch).signing, payload);
}

describe('KeyRegistry epoch policy', () => {
  it('verifies a replica signature under its current epoch, and not as another replica', () => {
    const registry = new KeyRegistry(4);
    registry.installReplicaEpoch(r1, keyEpoch(0), sessionOf(1, 0).publicKeys);
    registry.installReplicaEpoch(r2, keyEpoch(0), sessionOf(2, 0).publicKeys);
    const signature = signedBy(1, 0);
    assert.equal(registry.verifyReplicaSignature(r1, keyEpoch(0), payload, signature), true);
    assert.equal(registry.verifyReplicaSignature(r2, keyEpoch(0), payload, signature), false);
  });

  it('accepts current and previous epochs, and rejects older ones after two rotations', () => {
    const registry = new KeyRegistry(4);
    for (const epoch of [0, 1, 2])
      registry.installReplicaEpoch(r1, keyEpoch(epoch), sessionOf(1, epoch).publicKeys);
    assert.equal(registry.currentEpoch(r1), 2);
    assert.deepEqual(registry.acceptedEpochs(r1), [2, 1]);
    assert.equal(registry.verifyReplicaSignature(r1, keyEpoch(2), payload, signedBy(1, 2)), true);
    assert.equal(registry.verifyReplicaSignature(r1, keyEpoch(1), payload, signedBy(1, 1)), true);
    assert.equal(registry.verifyReplicaSignature(r1, keyEpoch(0), payload, signedBy(1, 0)), false);
    assert.equal(registry.replicaKeys(r1, keyEpoch(0)), undefined);
  });

  it('rejects a signature claimed under the wrong (but accepted) epoch', () => {
    const registry = new KeyRegistry(4);
    registry.installReplicaEpoch(r1, keyEpoch(0), sessionOf(1, 0).publicKeys);
    registry.installReplicaEpoch(r1, keyEpoch(1), sessionOf(1, 1).publicKeys);
    assert.equal(registry.verifyReplicaSignature(r1, keyEpoch(1), payload, signedBy(1, 0)), false);
  });

  it('rejects unknown replicas and epochs never installed', () => {
    const registry = new KeyRegistry(4);
    assert.equal(registry.currentEpoch(r1), undefined);
    assert.deepEqual(registry.acceptedEpochs(r1), []);
    assert.equal(registry.verifyReplicaSignature(r1, keyEpoch(0), payload, signedBy(1, 0)), false);
    registry.installReplicaEpoch(r1, keyEpoch(0), sessionOf(1, 0).publicKeys);
    assert.equal(registry.verifyReplicaSignature(r1, keyEpoch(1), payload, signedBy(1, 1)), false);
    assert.equal(registry.verifyReplicaSignature(replicaId(9), keyEpoch(0), payload, signedBy(9, 0)), false);
  });

  it('has no grace window after a skipped epoch (epoch - 1 was never known)', () => {
    const registry = new KeyRegistry(4);
    registry.installReplicaEpoch(r1, keyEpoch(0), sessionOf(1, 0).publicKeys);
    registry.installReplicaEpoch(r1, keyEpoch(2), sessionOf(1, 2).publicKeys);
    assert.deepEqual(registry.acceptedEpochs(r1), [2]);
    assert.equal(registry.verifyReplicaSignature(r1, keyEpoch(0), payload, signedBy(1, 0)), false);
  });

  it('returns false, never throws, for a malformed signature', () => {
    const registry = new KeyRegistry(4);
    registry.installReplicaEpoch(r1, keyEpoch(0), sessionOf(1, 0).publicKeys);
    assert.equal(registry.verifyReplicaSignature(r1, keyEpoch(0), payload, new Uint8Array(10)), false);
  });

  it('refuses to go back an epoch, to change an installed epoch, and replicas outside 0..n-1', () => {
    const registry = new KeyRegistry(4);
    registry.installReplicaEpoch(r1, keyEpoch(1), sessionOf(1, 1).publicKeys);
    registry.installReplicaEpoch(r1, keyEpoch(1), sessionOf(1, 1).publicKeys); // same keys: no-op
    assert.throws(
      () => registry.installReplicaEpoch(r1, keyEpoch(0), sessionOf(1, 0).publicKeys),
      InvariantViolation,
    );
    assert.throws(
      () => registry.installReplicaEpoch(r1, keyEpoch(1), sessionOf(1, 9).publicKeys),
      InvariantViolation,
    );
    assert.throws(
      () => registry.installReplicaEpoch(replicaId(4), keyEpoch(0), sessionOf(4, 0).publicKeys),
      InvariantViolation,
    );
    assert.throws(() => new KeyRegistry(0), InvariantViolation);
  });
});

describe('KeyRegistry epoch lifetimes', () => {
  // Issue times in ms; a certificate is valid 100 ms after its issue, a retired epoch 10 ms
  // after its successor's issue (the schedule's numbers, scaled down).
  const lifetime = {
    validUntilMs: (_replica: number, issuedAtMs: number) => issuedAtMs + 100,
    retiredUntilMs: (_replica: number, successorIssuedAtMs: number) => successorIssuedAtMs + 10,
  };

  it('accepts a current epoch until its validity ends, and nothing after (a stolen key expires without a rotation)', () => {
    let now = 1000;
    const registry = new KeyRegistry(4, { lifetime, now: () => now });
    registry.installReplicaEpoch(r1, keyEpoch(1), sessionOf(1, 1).publicKeys, 1000);
    assert.equal(registry.verifyReplicaSignature(r1, keyEpoch(1), payload, signedBy(1, 1)), true);
    now = 1100;
    assert.equal(registry.verifyReplicaSignature(r1, keyEpoch(1), payload, signedBy(1, 1)), true);
    now = 1101;
    assert.equal(registry.verifyReplicaSignature(r1, keyEpoch(1), payload, signedBy(1, 1)), false);
    assert.deepEqual(registry.acceptedEpochs(r1), []);
    assert.equal(registry.acceptedUntilMs(r1, keyEpoch(1)), undefined);
    // Still the current epoch (the evidence rule asks for it), just not accepted.
    assert.equal(registry.currentEpoch(r1), 1);
  });

  it('accepts a retired epoch only until the grace after its successor was issued', () => {
    let now = 1000;
    const registry = new KeyRegistry(4, { lifetime, now: () => now });
    registry.installReplicaEpoch(r1, keyEpoch(1), sessionOf(1, 1).publicKeys, 1000);
    now = 1050;
    registry.installReplicaEpoch(r1, keyEpoch(2), sessionOf(1, 2).publicKeys, 1050);
    assert.equal(registry.verifyReplicaSignature(r1, keyEpoch(1), payload, signedBy(1, 1)), true);
    assert.deepEqual(registry.acceptedEpochs(r1), [2, 1]);
    now = 1061;
    // The old keys stop counting 10 ms after the rotation, although their own validity runs to 1100.
    assert.equal(registry.verifyReplicaSignature(r1, keyEpoch(1), payload, signedBy(1, 1)), false);
    assert.equal(registry.verifyReplicaSignature(r1, keyEpoch(2), payload, signedBy(1, 2)), true);
    assert.deepEqual(registry.acceptedEpochs(r1), [2]);
  });

  it('keeps the earlier of the two limits for a retired epoch', () => {
    let now = 1000;
    const registry = new KeyRegistry(4, {
      lifetime: { validUntilMs: (_r, issued) => issued + 100, retiredUntilMs: (_r, issued) => issued + 500 },
      now: () => now,
    });
    registry.installReplicaEpoch(r1, keyEpoch(1), sessionOf(1, 1).publicKeys, 1000);
    registry.installReplicaEpoch(r1, keyEpoch(2), sessionOf(1, 2).publicKeys, 1090);
    now = 1101;
    assert.equal(registry.verifyReplicaSignature(r1, keyEpoch(1), payload, signedBy(1, 1)), false);
  });

  it('applies no limit to keys installed without an issue time (configuration keys, own keys)', () => {
    const registry = new KeyRegistry(4, { lifetime, now: () => Number.MAX_SAFE_INTEGER });
    registry.installReplicaEpoch(r1, keyEpoch(0), sessionOf(1, 0).publicKeys);
    assert.equal(registry.verifyReplicaSignature(r1, keyEpoch(0), payload, signedBy(1, 0)), true);
  });
});

describe('KeyRegistry clients', () => {
  it('registers, replaces and removes clients', () => {
    const registry = new KeyRegistry(1);
    const alice = clientId('alice');
    const first = { agreement: sessionOf(7, 0).publicKeys.agreement, signing: null };
    const second = {
      agreement: sessionOf(7, 1).publicKeys.agreement,
      signing: sessionOf(7, 1).publicKeys.signing,
    };
    assert.equal(registry.clientKeys(alice), undefined);
    registry.registerClient(alice, first);
    assert.equal(registry.clientKeys(alice), first);
    registry.registerClient(alice, second);
    assert.equal(registry.clientKeys(alice), second);
    assert.equal(registry.agreementKeysInUse().has(second.agreement), true);
    assert.equal(registry.agreementKeysInUse().has(first.agreement), false);
    assert.equal(registry.removeClient(alice), true);
    assert.equal(registry.clientKeys(alice), undefined);
  });
});
