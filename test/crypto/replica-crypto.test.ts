import * as assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  type ClientId,
  clientId,
  DIGEST_BYTES,
  type Digest,
  InvariantViolation,
  keyEpoch,
  MAC_BYTES,
  replicaId,
  requestNumber,
  type Signature,
} from '../../src/messages/ids.js';
import { ClientCrypto, clientKeysFromSeed } from '../../src/crypto/client-crypto.js';
import { KeyRegistry } from '../../src/crypto/key-registry.js';
import { deriveSeed } from '../../src/crypto/keys.js';
import { ReplicaCrypto, sessionKeysFromSeed } from '../../src/crypto/replica-crypto.js';
import type { ClientRequest, MacEntry } from '../../src/messages/types.js';

const master = new Uint8Array(32).fill(11);
const replicaCount = 4;

function sessionKeys(replica: number, epoch: number) {
  return sessionKeysFromSeed(deriveSeed(master, `replica:${replica}|epoch:${epoch}`));
}

/** Four replicas sharing one registry (as in the simulator), and a signing client "alice". */
function cluster() {
  const registry = new KeyRegistry(replicaCount);
  const replicas = Array.from(
    { length: replicaCount },
    (_, index) =>
      new ReplicaCrypto({
        replica: replicaId(index),
        registry,
        epoch: keyEpoch(0),
        sessionKeys: sessionKeys(index, 0),
      }),
  );
  const alice = clientId('alice');
  const keys = clientKeysFromSeed(deriveSeed(master, 'client:alice'), { signing: true });
  registry.registerClient(alice, { agreement: keys.agreement.publicKey, signing: keys.signing!.publicKey });
  const client = new ClientCrypto({ client: alice, keys, registry });
  return { registry, replicas, alice, client };
}

function requestOf(
  client: ClientId,
  authenticator: readonly MacEntry[],
  signature: Signature | null,
): ClientRequest {
  return {
    kind: 'request',
    clientId: client,
    requestNumber: requestNumber(1),
    readOnly: false,
    operation: new Uint8Array([1, 2, 3]),
    authenticator,
    signature,
  };
}

function corrupt(entries: readonly MacEntry[], index: number): MacEntry[] {
  return entries.map((entry, position) => {
    if (position !== index) return entry;
    const mac = Uint8Array.from(entry.mac);
    mac[0]! ^= 1;
    return { keyEpoch: entry.keyEpoch, mac };
  });
}

const encoder = new TextEncoder();

describe('ReplicaCrypto hash', () => {
  it('is SHA-256 as a plain Uint8Array', () => {
    const { replicas } = cluster();
    const data = encoder.encode('abc');
    const result = replicas[0]!.hash(data);
    assert.equal(result.length, DIGEST_BYTES);
    assert.equal(Object.getPrototypeOf(result), Uint8Array.prototype);
    assert.deepEqual(result, new Uint8Array(createHash('sha256').update(data).digest()));
  });
});

describe('ReplicaCrypto signatures', () => {
  it('verifies at every replica, and not as another signer', () => {
    const { replicas } = cluster();
    const payload = encoder.encode('prepare');
    const signed = replicas[1]!.sign(payload);
    assert.equal(signed.keyEpoch, 0);
    for (const verifier of replicas) {
      assert.equal(
        verifier.verifyReplicaSignature(replicaId(1), signed.keyEpoch, payload, signed.signature),
        true,
      );
      assert.equal(
        verifier.verifyReplicaSignature(replicaId(2), signed.keyEpoch, payload, signed.signature),
        false,
      );
    }
  });

  it('signs with the new key after rotation; old signatures stay valid for one rotation only', () => {
    const { replicas } = cluster();
    const payload = encoder.encode('checkpoint');
    const atEpoch0 = replicas[1]!.sign(payload);
    replicas[1]!.rotate(keyEpoch(1), sessionKeys(1, 1));
    const atEpoch1 = replicas[1]!.sign(payload);
    assert.equal(atEpoch1.keyEpoch, 1);
    assert.notDeepEqual(atEpoch1.signature, atEpoch0.signature);
    const verifier = replicas[3]!;
    assert.equal(
      verifier.verifyReplicaSignature(replicaId(1), keyEpoch(0), payload, atEpoch0.signature),
      true,
    );
    assert.equal(
      verifier.verifyReplicaSignature(replicaId(1), keyEpoch(1), payload, atEpoch1.signature),
      true,
    );
    replicas[1]!.rotate(keyEpoch(2), sessionKeys(1, 2));
    assert.equal(
      verifier.verifyReplicaSignature(replicaId(1), keyEpoch(0), payload, atEpoch0.signature),
      false,
    );
    assert.equal(
      verifier.verifyReplicaSignature(replicaId(1), keyEpoch(1), payload, atEpoch1.signature),
      true,
    );
    assert.equal(
      verifier.verifyReplicaSignature(replicaId(1), keyEpoch(3), payload, atEpoch1.signature),
      false,
    );
  });

  it('returns false for malformed signatures instead of throwing', () => {
    const { replicas } = cluster();
    const payload = encoder.encode('x');
    const short = new Uint8Array(12) as Signature;
    assert.equal(replicas[0]!.verifyReplicaSignature(replicaId(1), keyEpoch(0), payload, short), false);
  });

  it('refuses to rotate backwards or to a registry that knows newer keys for it', () => {
    const { registry, replicas } = cluster();
    assert.throws(() => replicas[0]!.rotate(keyEpoch(0), sessionKeys(0, 0)), InvariantViolation);
    registry.installReplicaEpoch(replicaId(0), keyEpoch(5), {
      signing: sessionKeys(0, 5).signing.publicKey,
      agreement: sessionKeys(0, 5).agreement.publicKey,
    });
    assert.throws(() => replicas[0]!.rotate(keyEpoch(3), sessionKeys(0, 3)), InvariantViolation);
  });
});

describe('request authentication', () => {
  it('accepts the client authenticator at each replica', () => {
    const { replicas, alice, client } = cluster();
    const requestDigest = replicas[0]!.hash(encoder.encode('request'));
    const authenticator = client.authenticator(requestDigest);
    assert.equal(authenticator.length, replicaCount);
    for (const entry of authenticator) assert.equal(entry.mac.length, MAC_BYTES);
    const request = requestOf(alice, authenticator, null);
    for (const replica of replicas) assert.equal(replica.verifyRequest(request, requestDigest), true);
  });

  it('fails at a replica whose entry is corrupted, and only there', () => {
    const { replicas, alice, client } = cluster();
    const requestDigest = replicas[0]!.hash(encoder.encode('request'));
    const request = requestOf(alice, corrupt(client.authenticator(requestDigest), 2), null);
    assert.deepEqual(
      replicas.map((replica) => replica.verifyRequest(request, requestDigest)),
      [true, true, false, true],
    );
  });

  it('fails for a different digest, a moved entry, a missing entry, or an unknown client', () => {
    const { replicas, alice, client } = cluster();
    const requestDigest = replicas[0]!.hash(encoder.encode('request'));
    const otherDigest = replicas[0]!.hash(encoder.encode('other request'));
    const authenticator = client.authenticator(requestDigest);
    const verifier = replicas[1]!;
    assert.equal(verifier.verifyRequest(requestOf(alice, authenticator, null), otherDigest), false);
    const swapped = [authenticator[1]!, authenticator[0]!, authenticator[2]!, authenticator[3]!];
    assert.equal(verifier.verifyRequest(requestOf(alice, swapped, null), requestDigest), false);
    assert.equal(
      verifier.verifyRequest(requestOf(alice, authenticator.slice(0, 1), null), requestDigest),
      false,
    );
    assert.equal(
      verifier.verifyRequest(requestOf(clientId('mallory'), authenticator, null), requestDigest),
      false,
    );
  });

  it('falls back to the signature when the MAC entry is wrong', () => {
    const { replicas, alice, client } = cluster();
    const requestDigest = replicas[0]!.hash(encoder.encode('request'));
    const signature = client.signRequest(requestDigest);
    const request = requestOf(alice, corrupt(client.authenticator(requestDigest), 2), signature);
    assert.equal(replicas[2]!.verifyRequest(request, requestDigest), true);
    assert.equal(replicas[2]!.verifyRequestSignature(request, requestDigest), true);
    const withoutAuthenticator = requestOf(alice, [], signature);
    assert.equal(replicas[3]!.verifyRequest(withoutAuthenticator, requestDigest), true);
    const badSignature = Uint8Array.from(signature) as Signature;
    badSignature[5]! ^= 0x10;
    const forged = requestOf(alice, corrupt(client.authenticator(requestDigest), 2), badSignature);
    assert.equal(replicas[2]!.verifyRequest(forged, requestDigest), false);
  });

  it('verifyRequestSignature is false without a signature or a client signing key', () => {
    const { registry, replicas, alice, client } = cluster();
    const requestDigest = replicas[0]!.hash(encoder.encode('request'));
    assert.equal(replicas[0]!.verifyRequestSignature(requestOf(alice, [], null), requestDigest), false);
    const signature = client.signRequest(requestDigest);
    registry.registerClient(alice, { agreement: registry.clientKeys(alice)!.agreement, signing: null });
    assert.equal(replicas[0]!.verifyRequestSignature(requestOf(alice, [], signature), requestDigest), false);
    const shortSignature = new Uint8Array(3) as Signature;
    assert.equal(replicas[0]!.verifyRequest(requestOf(alice, [], shortSignature), requestDigest), false);
  });

  it('accepts MACs for the previous epoch across one rotation, not two', () => {
    const { replicas, alice, client } = cluster();
    const requestDigest = replicas[0]!.hash(encoder.encode('request'));
    const atEpoch0 = requestOf(alice, client.authenticator(requestDigest), null);
    replicas[1]!.rotate(keyEpoch(1), sessionKeys(1, 1));
    assert.equal(replicas[1]!.verifyRequest(atEpoch0, requestDigest), true);
    const atEpoch1 = client.authenticator(requestDigest);
    assert.equal(atEpoch1[1]!.keyEpoch, 1);
    assert.equal(replicas[1]!.verifyRequest(requestOf(alice, atEpoch1, null), requestDigest), true);
    replicas[1]!.rotate(keyEpoch(2), sessionKeys(1, 2));
    assert.equal(replicas[1]!.verifyRequest(atEpoch0, requestDigest), false);
    assert.equal(replicas[1]!.verifyRequest(requestOf(alice, atEpoch1, null), requestDigest), true);
  });

  it('rejects an entry MACed under the right key but labelled with another accepted epoch', () => {
    const { replicas, alice, client } = cluster();
    const requestDigest = replicas[0]!.hash(encoder.encode('request'));
    replicas[1]!.rotate(keyEpoch(1), sessionKeys(1, 1));
    const entries = client.authenticator(requestDigest);
    const relabelled = entries.map((entry, index) =>
      index === 1 ? { ...entry, keyEpoch: keyEpoch(0) } : entry,
    );
    assert.equal(replicas[1]!.verifyRequest(requestOf(alice, relabelled, null), requestDigest), false);
  });

  it('never throws on arbitrary authenticator entries', () => {
    const { replicas, alice } = cluster();
    const requestDigest = replicas[0]!.hash(encoder.encode('request'));
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            keyEpoch: fc.nat({ max: 3 }).map(keyEpoch),
            mac: fc.uint8Array({ maxLength: 40 }),
          }),
          { maxLength: 6 },
        ),
        (authenticator) => {
          for (const replica of replicas)
            assert.equal(replica.verifyRequest(requestOf(alice, authenticator, null), requestDigest), false);
        },
      ),
      { numRuns: 100 },
    );
  });
});

describe('replica channels', () => {
  it('gives both ends the same pairwise key, distinct per pair', () => {
    const { replicas } = cluster();
    for (const a of replicas) {
      for (const b of replicas) {
        assert.deepEqual(a.channelKey(b.replica), b.channelKey(a.replica));
      }
    }
    assert.notDeepEqual(replicas[0]!.channelKey(replicaId(1)), replicas[0]!.channelKey(replicaId(2)));
  });

  it('authenticates frames between the pair only', () => {
    const { replicas } = cluster();
    const frame = encoder.encode('frame');
    const mac = replicas[0]!.macFrame(replicaId(1), frame);
    assert.equal(replicas[1]!.verifyFrame(replicaId(0), frame, mac), true);
    assert.equal(replicas[2]!.verifyFrame(replicaId(0), frame, mac), false);
    assert.equal(replicas[1]!.verifyFrame(replicaId(3), frame, mac), false);
    assert.equal(replicas[1]!.verifyFrame(replicaId(0), encoder.encode('frame!'), mac), false);
    assert.equal(replicas[1]!.verifyFrame(replicaId(0), frame, mac.subarray(1)), false);
  });

  it('keeps frames made just before a rotation verifiable, and changes the key', () => {
    const { replicas } = cluster();
    const frame = encoder.encode('frame');
    const keyBefore = replicas[0]!.channelKey(replicaId(1));
    const sentBefore = replicas[0]!.macFrame(replicaId(1), frame);
    replicas[1]!.rotate(keyEpoch(1), sessionKeys(1, 1));
    assert.notDeepEqual(replicas[0]!.channelKey(replicaId(1)), keyBefore);
    assert.deepEqual(replicas[0]!.channelKey(replicaId(1)), replicas[1]!.channelKey(replicaId(0)));
    assert.equal(replicas[1]!.verifyFrame(replicaId(0), frame, sentBefore), true);
    replicas[1]!.rotate(keyEpoch(2), sessionKeys(1, 2));
    assert.equal(replicas[1]!.verifyFrame(replicaId(0), frame, sentBefore), false);
  });

  it('throws for a peer the registry does not know, but verifyFrame just says false', () => {
    const registry = new KeyRegistry(2);
    const lonely = new ReplicaCrypto({
      replica: replicaId(0),
      registry,
      epoch: keyEpoch(0),
      sessionKeys: sessionKeys(0, 0),
    });
    assert.throws(() => lonely.channelKey(replicaId(1)), InvariantViolation);
    assert.equal(lonely.verifyFrame(replicaId(1), new Uint8Array(1), new Uint8Array(MAC_BYTES)), false);
  });
});

describe('ReplicaCrypto construction', () => {
  it('publishes its keys, and refuses a registry holding other keys for its epoch', () => {
    const registry = new KeyRegistry(2);
    const replica = new ReplicaCrypto({
      replica: replicaId(0),
      registry,
      epoch: keyEpoch(3),
      sessionKeys: sessionKeys(0, 3),
    });
    assert.equal(replica.currentEpoch, 3);
    assert.equal(registry.currentEpoch(replicaId(0)), 3);
    assert.throws(
      () =>
        new ReplicaCrypto({
          replica: replicaId(0),
          registry,
          epoch: keyEpoch(3),
          sessionKeys: sessionKeys(0, 9),
        }),
      InvariantViolation,
    );
  });

  it('restarted inside the grace window, still verifies MACs for the previous epoch', () => {
    const { registry, replicas, alice, client } = cluster();
    const requestDigest: Digest = replicas[0]!.hash(encoder.encode('request'));
    const atEpoch0 = requestOf(alice, client.authenticator(requestDigest), null);
    replicas[1]!.rotate(keyEpoch(1), sessionKeys(1, 1));
    const restarted = new ReplicaCrypto({
      replica: replicaId(1),
      registry,
      epoch: keyEpoch(1),
      sessionKeys: sessionKeys(1, 1),
      previousSessionKeys: sessionKeys(1, 0),
    });
    assert.equal(restarted.verifyRequest(atEpoch0, requestDigest), true);
  });
});
