import * as assert from 'node:assert/strict';
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { InvariantViolation } from '../../src/messages/ids.js';
import {
  agreementKeyPairFromSeed,
  agreementPublicKeyFromBytes,
  agreementSeed,
  deriveSeed,
  generateAgreementKeyPair,
  generateSigningKeyPair,
  keyFromBase64,
  keyToBase64,
  signingKeyPairFromSeed,
  signingPublicKeyFromBytes,
  signingSeed,
  tryParseAgreementPublicKey,
  tryParseSigningPublicKey,
} from '../../src/crypto/keys.js';

const seed = (fill: number): Uint8Array => new Uint8Array(32).fill(fill);

describe('deterministic key generation', () => {
  it('gives the same Ed25519 key pair for the same seed, twice', () => {
    const first = signingKeyPairFromSeed(seed(7));
    const second = signingKeyPairFromSeed(seed(7));
    assert.deepEqual(first.publicKey.bytes, second.publicKey.bytes);
    assert.deepEqual(signingSeed(first), signingSeed(second));
    assert.notDeepEqual(signingKeyPairFromSeed(seed(8)).publicKey.bytes, first.publicKey.bytes);
  });

  it('gives the same X25519 key pair for the same seed, twice', () => {
    const first = agreementKeyPairFromSeed(seed(7));
    const second = agreementKeyPairFromSeed(seed(7));
    assert.deepEqual(first.publicKey.bytes, second.publicKey.bytes);
    assert.deepEqual(agreementSeed(first), agreementSeed(second));
  });

  it('matches the RFC 8032 test vector 1 (so the seed import is right)', () => {
    const rfcSeed = Buffer.from('9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60', 'hex');
    const keyPair = signingKeyPairFromSeed(rfcSeed);
    assert.equal(
      Buffer.from(keyPair.publicKey.bytes).toString('hex'),
      'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a',
    );
  });

  it('matches the RFC 7748 §6.1 X25519 test vector', () => {
    const alice = agreementKeyPairFromSeed(
      Buffer.from('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a', 'hex'),
    );
    assert.equal(
      Buffer.from(alice.publicKey.bytes).toString('hex'),
      '8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a',
    );
  });

  it('exports the seed it was made from, and random pairs round-trip through their seed', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), (bytes) => {
        assert.deepEqual(signingSeed(signingKeyPairFromSeed(bytes)), bytes);
        assert.deepEqual(agreementSeed(agreementKeyPairFromSeed(bytes)), bytes);
      }),
      { numRuns: 50 },
    );
    const random = generateSigningKeyPair();
    assert.deepEqual(signingKeyPairFromSeed(signingSeed(random)).publicKey.bytes, random.publicKey.bytes);
    const randomAgreement = generateAgreementKeyPair();
    assert.deepEqual(
      agreementKeyPairFromSeed(agreementSeed(randomAgreement)).publicKey.bytes,
      randomAgreement.publicKey.bytes,
    );
  });

  it('rejects seeds of the wrong length', () => {
    assert.throws(() => signingKeyPairFromSeed(new Uint8Array(31)), InvariantViolation);
    assert.throws(() => agreementKeyPairFromSeed(new Uint8Array(33)), InvariantViolation);
  });

  it('derives independent seeds per label, deterministically', () => {
    const master = seed(1);
    assert.deepEqual(deriveSeed(master, 'replica:0'), deriveSeed(master, 'replica:0'));
    assert.notDeepEqual(deriveSeed(master, 'replica:0'), deriveSeed(master, 'replica:1'));
    assert.notDeepEqual(deriveSeed(master, 'replica:0'), deriveSeed(seed(2), 'replica:0'));
    assert.equal(deriveSeed(master, 'x').length, 32);
  });
});

describe('public key import', () => {
  it('round-trips raw public keys', () => {
    const signing = signingKeyPairFromSeed(seed(3));
    assert.deepEqual(signingPublicKeyFromBytes(signing.publicKey.bytes).bytes, signing.publicKey.bytes);
    const agreement = agreementKeyPairFromSeed(seed(3));
    assert.deepEqual(agreementPublicKeyFromBytes(agreement.publicKey.bytes).bytes, agreement.publicKey.bytes);
  });

  it('imports the same keys as the standard DER encodings do (RFC 8410 PKCS#8 and SPKI)', () => {
    // The module imports through JWK because it is an order of magnitude cheaper; this pins that
    // both routes give the very same keys, private and public, for both curves.
    const curves = [
      {
        pair: signingKeyPairFromSeed,
        importPublic: (raw: Uint8Array) => signingPublicKeyFromBytes(raw).keyObject,
        pkcs8Prefix: '302e020100300506032b657004220420',
        spkiPrefix: '302a300506032b6570032100',
      },
      {
        pair: agreementKeyPairFromSeed,
        importPublic: (raw: Uint8Array) => agreementPublicKeyFromBytes(raw).keyObject,
        pkcs8Prefix: '302e020100300506032b656e04220420',
        spkiPrefix: '302a300506032b656e032100',
      },
    ];
    const der = (prefixHex: string, raw: Uint8Array): Buffer =>
      Buffer.concat([Buffer.from(prefixHex, 'hex'), raw]);
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), (seedBytes) => {
        for (const curve of curves) {
          const pair = curve.pair(seedBytes);
          const privateDer = createPrivateKey({
            key: der(curve.pkcs8Prefix, seedBytes),
            format: 'der',
            type: 'pkcs8',
          });
          assert.ok(pair.privateKey.equals(privateDer));
          const publicDer = createPublicKey({
            key: der(curve.spkiPrefix, pair.publicKey.bytes),
            format: 'der',
            type: 'spki',
          });
          assert.ok(publicDer.equals(createPublicKey(privateDer)));
          assert.ok(curve.importPublic(pair.publicKey.bytes).equals(publicDer));
        }
      }),
      { numRuns: 50 },
    );
  });

  it('throws InvariantViolation on a wrong length, and tryParse returns null instead', () => {
    assert.throws(() => signingPublicKeyFromBytes(new Uint8Array(31)), InvariantViolation);
    assert.throws(() => agreementPublicKeyFromBytes(new Uint8Array(64)), InvariantViolation);
    assert.equal(tryParseSigningPublicKey(new Uint8Array(0)), null);
    assert.equal(tryParseAgreementPublicKey(new Uint8Array(33)), null);
  });

  it('refuses small-order X25519 points (they would make every shared key public)', () => {
    const zero = new Uint8Array(32);
    const one = new Uint8Array(32);
    one[0] = 1;
    assert.throws(() => agreementPublicKeyFromBytes(zero), InvariantViolation);
    assert.throws(() => agreementPublicKeyFromBytes(one), InvariantViolation);
    assert.equal(tryParseAgreementPublicKey(zero), null);
  });
});

describe('base64 key text', () => {
  it('round-trips 32-byte keys', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), (bytes) => {
        assert.deepEqual(keyFromBase64(keyToBase64(bytes)), bytes);
      }),
    );
  });

  it('rejects wrong lengths and non-canonical text instead of silently decoding part of it', () => {
    const text = keyToBase64(seed(9));
    assert.throws(() => keyFromBase64(text.slice(0, -4)), InvariantViolation);
    assert.throws(() => keyFromBase64(`${text.slice(0, 10)}!${text.slice(11)}`), InvariantViolation);
    assert.throws(() => keyFromBase64(` ${text}`), InvariantViolation);
    assert.throws(() => keyToBase64(new Uint8Array(16)), InvariantViolation);
  });

  it('does not echo the key text in the error (it may be a private seed)', () => {
    const text = `${keyToBase64(seed(9)).slice(0, -2)}?=`;
    assert.throws(
      () => keyFromBase64(text),
      (error: unknown) => error instanceof InvariantViolation && !error.message.includes(text.slice(0, 20)),
    );
  });
});
