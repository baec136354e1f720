import * as assert from 'node:assert/strict';
import { createHmac, createPublicKey } from 'node:crypto';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { clientId, InvariantViolation, keyEpoch, MAC_BYTES, replicaId } from '../../src/messages/ids.js';
import { agreementKeyPairFromSeed } from '../../src/crypto/keys.js';
import {
  clientReplicaBinding,
  DerivedKeyCache,
  deriveMacKey,
  MAC_KEY_BYTES,
  macBytes,
  replicaPairBinding,
  verifyMac,
} from '../../src/crypto/macs.js';

const key = new Uint8Array(32).fill(5);
const alice = agreementKeyPairFromSeed(new Uint8Array(32).fill(1));
const bob = agreementKeyPairFromSeed(new Uint8Array(32).fill(2));
const carol = agreementKeyPairFromSeed(new Uint8Array(32).fill(3));

describe('HMAC-SHA256/128', () => {
  it('is the first MAC_BYTES of HMAC-SHA256, as a plain Uint8Array', () => {
    const data = new TextEncoder().encode('data');
    const mac = macBytes(key, data);
    assert.equal(mac.length, MAC_BYTES);
    assert.equal(Object.getPrototypeOf(mac), Uint8Array.prototype);
    assert.deepEqual(
      mac,
      new Uint8Array(createHmac('sha256', key).update(data).digest().subarray(0, MAC_BYTES)),
    );
  });

  it('verifies its own MACs and rejects any flipped bit of data or MAC', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 1, maxLength: 100 }),
        fc.nat(),
        fc.nat(),
        (data, dataBit, macBit) => {
          const mac = macBytes(key, data);
          assert.equal(verifyMac(key, data, mac), true);
          const flippedData = Uint8Array.from(data);
          flippedData[(dataBit >> 3) % data.length]! ^= 1 << (dataBit & 7);
          assert.equal(verifyMac(key, flippedData, mac), false);
          const flippedMac = Uint8Array.from(mac);
          flippedMac[(macBit >> 3) % MAC_BYTES]! ^= 1 << (macBit & 7);
          assert.equal(verifyMac(key, data, flippedMac), false);
        },
      ),
    );
  });

  it('returns false, never throws, for a MAC of the wrong length', () => {
    const data = new Uint8Array([1]);
    const full = createHmac('sha256', key).update(data).digest();
    assert.equal(verifyMac(key, data, full), false);
    assert.equal(verifyMac(key, data, full.subarray(0, MAC_BYTES - 1)), false);
    assert.equal(verifyMac(key, data, new Uint8Array(0)), false);
  });
});

describe('pairwise key derivation', () => {
  it('gives both sides the same key', () => {
    const binding = clientReplicaBinding(clientId('alice'), replicaId(2), keyEpoch(0));
    const fromAlice = deriveMacKey(alice, bob.publicKey, binding);
    assert.equal(fromAlice.length, MAC_KEY_BYTES);
    assert.deepEqual(deriveMacKey(bob, alice.publicKey, binding), fromAlice);
  });

  it('orders replica pairs so both ends build the same binding', () => {
    assert.equal(
      replicaPairBinding(replicaId(3), keyEpoch(7), replicaId(1), keyEpoch(2)),
      replicaPairBinding(replicaId(1), keyEpoch(2), replicaId(3), keyEpoch(7)),
    );
    assert.equal(
      replicaPairBinding(replicaId(1), keyEpoch(2), replicaId(3), keyEpoch(7)),
      'replica:1|replica:3|epochs:2,7',
    );
    // Epochs stay attached to their replica: swapping them is a different channel.
    assert.notEqual(
      replicaPairBinding(replicaId(1), keyEpoch(7), replicaId(3), keyEpoch(2)),
      replicaPairBinding(replicaId(1), keyEpoch(2), replicaId(3), keyEpoch(7)),
    );
  });

  it('separates keys by binding and by party', () => {
    const one = deriveMacKey(
      alice,
      bob.publicKey,
      clientReplicaBinding(clientId('a'), replicaId(0), keyEpoch(0)),
    );
    const otherEpoch = deriveMacKey(
      alice,
      bob.publicKey,
      clientReplicaBinding(clientId('a'), replicaId(0), keyEpoch(1)),
    );
    const otherPeer = deriveMacKey(
      alice,
      carol.publicKey,
      clientReplicaBinding(clientId('a'), replicaId(0), keyEpoch(0)),
    );
    assert.notDeepEqual(one, otherEpoch);
    assert.notDeepEqual(one, otherPeer);
  });

  it('throws InvariantViolation (not a node error) when agreement fails', () => {
    // A small-order point imported behind keys.ts's back: X25519 with it yields all zeros.
    const smallOrder = createPublicKey({
      key: Buffer.concat([Buffer.from('302a300506032b656e032100', 'hex'), Buffer.alloc(32)]),
      format: 'der',
      type: 'spki',
    });
    const sneaky = { ...bob.publicKey, keyObject: smallOrder };
    assert.throws(() => deriveMacKey(alice, sneaky, 'x'), InvariantViolation);
  });
});

describe('DerivedKeyCache', () => {
  it('derives once per binding and re-derives when a party key object changes', () => {
    const cache = new DerivedKeyCache();
    const first = cache.macKey('b', alice, bob.publicKey);
    assert.equal(cache.macKey('b', alice, bob.publicKey), first); // the very same object: cached
    const replaced = cache.macKey('b', alice, carol.publicKey);
    assert.deepEqual(replaced, deriveMacKey(alice, carol.publicKey, 'b'));
    assert.notDeepEqual(replaced, first);
    assert.equal(cache.size, 1);
  });

  it('drops what retain rejects', () => {
    const cache = new DerivedKeyCache();
    cache.macKey('with-bob', alice, bob.publicKey);
    cache.macKey('with-carol', alice, carol.publicKey);
    cache.retain((_own, peer) => peer === carol.publicKey);
    assert.equal(cache.size, 1);
  });
});
