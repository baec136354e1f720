import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { clientId, digest, InvariantViolation, keyEpoch, replicaId } from '../../src/messages/ids.js';
import { ClientCrypto, clientKeysFromSeed } from '../../src/crypto/client-crypto.js';
import { KeyRegistry } from '../../src/crypto/key-registry.js';
import { deriveSeed } from '../../src/crypto/keys.js';
import { sessionKeysFromSeed, sessionPublicKeys } from '../../src/crypto/replica-crypto.js';
import { verifyBytes } from '../../src/crypto/signatures.js';
import { requestSignaturePayload } from '../../src/messages/signing.js';

const master = new Uint8Array(32).fill(12);
const requestDigest = digest(new Uint8Array(32).fill(0x5a));
const alice = clientId('alice');

function registryWithEpochs(epochs: readonly number[]): KeyRegistry {
  const registry = new KeyRegistry(epochs.length);
  epochs.forEach((epoch, index) => {
    const keys = sessionKeysFromSeed(deriveSeed(master, `replica:${index}|epoch:${epoch}`));
    registry.installReplicaEpoch(replicaId(index), keyEpoch(epoch), sessionPublicKeys(keys));
  });
  return registry;
}

describe('ClientCrypto', () => {
  it('makes one entry per replica, labelled with that replica’s current epoch', () => {
    const registry = registryWithEpochs([0, 3, 1, 0, 2]);
    const keys = clientKeysFromSeed(deriveSeed(master, 'client:alice'), { signing: false });
    const authenticator = new ClientCrypto({ client: alice, keys, registry }).authenticator(requestDigest);
    assert.deepEqual(
      authenticator.map((entry) => entry.keyEpoch),
      [0, 3, 1, 0, 2],
    );
  });

  it('leaves an unverifiable placeholder, and never throws, for a replica whose epoch has expired', () => {
    let now = 1000;
    const registry = new KeyRegistry(4, {
      lifetime: {
        validUntilMs: (_replica, issued) => issued + 100,
        retiredUntilMs: (_replica, issued) => issued,
      },
      now: () => now,
    });
    for (let index = 0; index < 4; index++) {
      const keys = sessionKeysFromSeed(deriveSeed(master, `replica:${index}|epoch:1`));
      registry.installReplicaEpoch(
        replicaId(index),
        keyEpoch(1),
        sessionPublicKeys(keys),
        index === 2 ? 0 : 1000,
      );
    }
    const keys = clientKeysFromSeed(deriveSeed(master, 'client:alice'), { signing: false });
    const client = new ClientCrypto({ client: alice, keys, registry });
    now = 1050; // replica 2's epoch (issued at 0) expired at 100; the others' run to 1100
    const authenticator = client.authenticator(requestDigest);
    assert.deepEqual(
      authenticator.map((entry) => entry.keyEpoch),
      [1, 1, 0, 1],
    );
    assert.deepEqual(authenticator[2]!.mac, new Uint8Array(authenticator[2]!.mac.length));
  });

  it('is deterministic for the same keys, and differs per client', () => {
    const registry = registryWithEpochs([0, 0, 0, 0]);
    const keys = clientKeysFromSeed(deriveSeed(master, 'client:alice'), { signing: false });
    const first = new ClientCrypto({ client: alice, keys, registry }).authenticator(requestDigest);
    const again = new ClientCrypto({ client: alice, keys, registry }).authenticator(requestDigest);
    assert.deepEqual(again, first);
    const bob = new ClientCrypto({ client: clientId('bob'), keys, registry }).authenticator(requestDigest);
    assert.notDeepEqual(bob[0]!.mac, first[0]!.mac); // same keys, other name: the binding differs
  });

  it('follows a replica rotation', () => {
    const registry = registryWithEpochs([0, 0, 0, 0]);
    const keys = clientKeysFromSeed(deriveSeed(master, 'client:alice'), { signing: false });
    const client = new ClientCrypto({ client: alice, keys, registry });
    const before = client.authenticator(requestDigest);
    const rotated = sessionKeysFromSeed(deriveSeed(master, 'replica:2|epoch:1'));
    registry.installReplicaEpoch(replicaId(2), keyEpoch(1), sessionPublicKeys(rotated));
    const after = client.authenticator(requestDigest);
    assert.equal(after[2]!.keyEpoch, 1);
    assert.notDeepEqual(after[2]!.mac, before[2]!.mac);
    assert.deepEqual(after[0], before[0]);
  });

  it('gives, with the keys it keeps between requests, what a fresh instance derives, across rotations', () => {
    const registry = registryWithEpochs([0, 0, 0, 0]);
    const keys = clientKeysFromSeed(deriveSeed(master, 'client:alice'), { signing: false });
    const reused = new ClientCrypto({ client: alice, keys, registry });
    const digests = [0x11, 0x22, 0x33].map((byte) => digest(new Uint8Array(32).fill(byte)));
    const rotations: [number, number][] = [
      [1, 1],
      [3, 1],
      [1, 2],
    ];
    for (const [replica, epoch] of [[0, 0], ...rotations] as [number, number][]) {
      if (epoch > 0) {
        const rotated = sessionKeysFromSeed(deriveSeed(master, `replica:${replica}|epoch:${epoch}`));
        registry.installReplicaEpoch(replicaId(replica), keyEpoch(epoch), sessionPublicKeys(rotated));
      }
      for (const requestDigestNow of digests) {
        const fresh = new ClientCrypto({ client: alice, keys, registry }).authenticator(requestDigestNow);
        assert.deepEqual(reused.authenticator(requestDigestNow), fresh);
      }
    }
  });

  it('signs a domain-tagged digest, and refuses to sign without a signing key', () => {
    const registry = registryWithEpochs([0]);
    const signingKeys = clientKeysFromSeed(deriveSeed(master, 'client:alice'), { signing: true });
    const signer = new ClientCrypto({ client: alice, keys: signingKeys, registry });
    assert.equal(signer.canSign, true);
    const signature = signer.signRequest(requestDigest);
    assert.equal(
      verifyBytes(signingKeys.signing!.publicKey, requestSignaturePayload(requestDigest), signature),
      true,
    );
    assert.equal(verifyBytes(signingKeys.signing!.publicKey, requestDigest, signature), false);
    const macOnly = new ClientCrypto({
      client: alice,
      keys: clientKeysFromSeed(deriveSeed(master, 'client:alice'), { signing: false }),
      registry,
    });
    assert.equal(macOnly.canSign, false);
    assert.throws(() => macOnly.signRequest(requestDigest), InvariantViolation);
  });

  it('leaves an all-zero entry for a replica whose current keys it does not know yet (rejuvenating)', () => {
    const registry = new KeyRegistry(2);
    const keys = sessionKeysFromSeed(deriveSeed(master, 'replica:0|epoch:0'));
    registry.installReplicaEpoch(replicaId(0), keyEpoch(0), sessionPublicKeys(keys));
    const client = new ClientCrypto({
      client: alice,
      keys: clientKeysFromSeed(deriveSeed(master, 'client:alice'), { signing: false }),
      registry,
    });
    const entries = client.authenticator(requestDigest);
    assert.equal(entries.length, 2);
    assert.ok(
      entries[0]!.mac.some((byte) => byte !== 0),
      'the known replica gets a real MAC',
    );
    assert.ok(
      entries[1]!.mac.every((byte) => byte === 0),
      'the unknown replica gets a placeholder',
    );
  });
});
