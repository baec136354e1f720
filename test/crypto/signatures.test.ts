import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { SIGNATURE_BYTES } from '../../src/messages/ids.js';
import { agreementKeyPairFromSeed, signingKeyPairFromSeed } from '../../src/crypto/keys.js';
import { signBytes, verifyBytes } from '../../src/crypto/signatures.js';

const signer = signingKeyPairFromSeed(new Uint8Array(32).fill(1));
const otherSigner = signingKeyPairFromSeed(new Uint8Array(32).fill(2));

function flipBit(bytes: Uint8Array, bit: number): Uint8Array {
  const copy = Uint8Array.from(bytes);
  copy[bit >> 3]! ^= 1 << (bit & 7);
  return copy;
}

describe('Ed25519 signatures', () => {
  it('round-trips, deterministically, as a plain Uint8Array', () => {
    const payload = new TextEncoder().encode('payload');
    const signature = signBytes(signer, payload);
    assert.equal(signature.length, SIGNATURE_BYTES);
    assert.equal(Object.getPrototypeOf(signature), Uint8Array.prototype);
    assert.deepEqual(signBytes(signer, payload), signature);
    assert.equal(verifyBytes(signer.publicKey, payload, signature), true);
    assert.equal(verifyBytes(signer.publicKey.bytes, payload, signature), true);
  });

  it('fails for any flipped bit of the payload or the signature', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 1, maxLength: 200 }),
        fc.nat(),
        fc.nat({ max: SIGNATURE_BYTES * 8 - 1 }),
        (payload, payloadBit, signatureBit) => {
          const signature = signBytes(signer, payload);
          assert.equal(verifyBytes(signer.publicKey, payload, signature), true);
          const flippedPayload = flipBit(payload, payloadBit % (payload.length * 8));
          assert.equal(verifyBytes(signer.publicKey, flippedPayload, signature), false);
          assert.equal(verifyBytes(signer.publicKey, payload, flipBit(signature, signatureBit)), false);
        },
      ),
      { numRuns: 100 },
    );
  });

  it('fails under another key', () => {
    const payload = new Uint8Array([1, 2, 3]);
    assert.equal(verifyBytes(otherSigner.publicKey, payload, signBytes(signer, payload)), false);
  });

  it('returns false, never throws, on malformed signatures and keys', () => {
    const payload = new Uint8Array([1, 2, 3]);
    const signature = signBytes(signer, payload);
    assert.equal(verifyBytes(signer.publicKey, payload, signature.subarray(0, 63)), false);
    assert.equal(verifyBytes(signer.publicKey, payload, new Uint8Array(0)), false);
    assert.equal(verifyBytes(signer.publicKey, payload, new Uint8Array(65)), false);
    assert.equal(verifyBytes(signer.publicKey, payload, new Uint8Array(64).fill(0xff)), false);
    assert.equal(verifyBytes(new Uint8Array(31), payload, signature), false);
    assert.equal(verifyBytes(new Uint8Array(0), payload, signature), false);
    assert.equal(verifyBytes(new Uint8Array(32).fill(0xff), payload, signature), false);
    // An X25519 key smuggled in where an Ed25519 key belongs (only possible around the types).
    const wrongFamily = agreementKeyPairFromSeed(new Uint8Array(32).fill(1)).publicKey;
    assert.equal(verifyBytes({ ...wrongFamily, kind: 'ed25519-public' }, payload, signature), false);
  });

  it('returns false for arbitrary bytes as key and signature', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 40 }), fc.uint8Array({ maxLength: 70 }), (key, candidate) => {
        assert.equal(verifyBytes(key, new Uint8Array([9]), candidate), false);
      }),
      { numRuns: 200 },
    );
  });
});
