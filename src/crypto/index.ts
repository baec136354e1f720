/**
 * crypto/: the keys behind CoreCrypto. Ed25519 session keys sign what must be provable to third
 * parties (proposals, checkpoints, view changes); X25519 keys give every client–replica and
 * replica–replica pair a shared HMAC key without configuring n² secrets. Everything can be made
 * from seeds, so a simulated run is reproducible.
 *
 * Usage:
 * ```ts
 * import { clientId, keyEpoch, replicaId, requestNumber } from '../messages/ids.js';
 * import { ClientCrypto, clientKeysFromSeed, deriveSeed, KeyRegistry, ReplicaCrypto, sessionKeysFromSeed } from './index.js';
 *
 * const runSeed = new Uint8Array(32); // a simulator's seed; production keys come from generate*KeyPair()
 * const registry = new KeyRegistry(4); // public keys; each ReplicaCrypto publishes its own into it
 * const replicas = [0, 1, 2, 3].map((index) => new ReplicaCrypto({
 *   replica: replicaId(index), registry, epoch: keyEpoch(0),
 *   sessionKeys: sessionKeysFromSeed(deriveSeed(runSeed, `replica:${index}|epoch:0`)),
 * }));
 * const alice = clientId('alice');
 * const keys = clientKeysFromSeed(deriveSeed(runSeed, 'client:alice'), { signing: true });
 * registry.registerClient(alice, { agreement: keys.agreement.publicKey, signing: keys.signing!.publicKey });
 * const client = new ClientCrypto({ client: alice, keys, registry });
 *
 * const requestDigest = replicas[0]!.hash(new TextEncoder().encode('encoded request'));
 * const request = {
 *   kind: 'request', clientId: alice, requestNumber: requestNumber(1), readOnly: false,
 *   operation: new Uint8Array(0), authenticator: client.authenticator(requestDigest),
 *   signature: client.signRequest(requestDigest),
 * } as const;
 * replicas[2]!.verifyRequest(request, requestDigest); // true: entry 2 is a valid MAC for replica 2
 *
 * const payload = new TextEncoder().encode('domain-tagged payload');
 * const { keyEpoch: epoch, signature } = replicas[1]!.sign(payload);
 * replicas[3]!.verifyReplicaSignature(replicaId(1), epoch, payload, signature); // true
 * ```
 */
export {
  ClientCrypto,
  type ClientCryptoOptions,
  type ClientKeys,
  clientKeysFromSeed,
} from './client-crypto.js';
export { type ClientPublicKeys, KeyRegistry, type ReplicaPublicKeys } from './key-registry.js';
export {
  type AgreementKeyPair,
  type AgreementPublicKey,
  agreementKeyPairFromSeed,
  agreementPublicKeyFromBytes,
  agreementSeed,
  deriveSeed,
  generateAgreementKeyPair,
  generateSigningKeyPair,
  KEY_BYTES,
  keyFromBase64,
  keyToBase64,
  type SigningKeyPair,
  type SigningPublicKey,
  signingKeyPairFromSeed,
  signingPublicKeyFromBytes,
  signingSeed,
  tryParseAgreementPublicKey,
  tryParseSigningPublicKey,
} from './keys.js';
export {
  clientReplicaBinding,
  DerivedKeyCache,
  deriveMacKey,
  MAC_KEY_BYTES,
  macBytes,
  replicaPairBinding,
  verifyMac,
} from './macs.js';
export {
  ReplicaCrypto,
  type ReplicaCryptoOptions,
  type ReplicaSessionKeys,
  sessionKeysFromSeed,
  sessionPublicKeys,
} from './replica-crypto.js';
export { signBytes, verifyBytes } from './signatures.js';
