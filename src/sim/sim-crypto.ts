/**
 * The simulator's signatures: the production key objects, key registry, epochs and MACs, with
 * Ed25519 replaced by a signature checked by identity, which costs about a microsecond where an
 * Ed25519 verification costs a hundred (and half of a run's time went there).
 *
 * The simulator is not measured against a real clock and its adversaries are code of this
 * repository, so a signature only has to be exact and unforgeable within the simulator's model:
 * - a simulated signature is SHA-512 over a secret of the signing key pair and the signed payload.
 *   The key pair is one replica's keys of one epoch (or one client's), and every payload starts
 *   with its purpose's domain tag (messages/signing.ts), so the 64 bytes bind signer, epoch,
 *   purpose and payload, and verification compares all of them exactly (a flipped bit anywhere is
 *   refused, as with Ed25519);
 * - the secret is derived from the private key and known to this module only. To sign, code must
 *   hold the SigningKeyPair, exactly as with Ed25519: a Byzantine replica signs through the crypto
 *   of its own identity, and the key thief through the stolen key pairs the simulator hands it.
 *   A key pair whose public half does not belong to its private half is refused (an adversary
 *   cannot pair its own private key with a victim's public key);
 * - verification finds the secret from the public key; a key that never signed in this process
 *   has nothing to verify, and every signature under it is refused.
 * Which epochs are accepted, and until when, stays the production KeyRegistry's decision (its
 * lifetimes are what the key-epoch checker judges), and request authenticators stay the
 * production HMACs under X25519-derived keys (frames are authenticated by their channel's
 * identity instead, in network.ts).
 *
 * `signatureScheme('real')` gives production Ed25519 for the same calls (`--real-crypto`), to
 * check that a seed runs the same with either.
 */
import { createPublicKey, hash, type KeyObject } from 'node:crypto';
import type { CoreCrypto, SignaturePurpose, Signed } from '../core/crypto.js';
import { ClientCrypto, type ClientKeys } from '../crypto/client-crypto.js';
import type { KeyRegistry } from '../crypto/key-registry.js';
import { type SigningKeyPair, type SigningPublicKey, signingSeed } from '../crypto/keys.js';
import { epochFitsPurpose, ReplicaCrypto, type ReplicaSessionKeys } from '../crypto/replica-crypto.js';
import { signBytes, verifyBytes } from '../crypto/signatures.js';
import {
  assert,
  bytesEqual,
  type ClientId,
  type Digest,
  type KeyEpoch,
  type ReplicaId,
  SIGNATURE_BYTES,
  type Signature,
  signature as asSignature,
  toHex,
} from '../messages/ids.js';
import { requestSignaturePayload } from '../messages/signing.js';
import type { ClientRequest, MacEntry } from '../messages/types.js';

/** How the simulator signs: its own scheme (default), or production Ed25519. */
export type SimulatedCryptoMode = 'simulated' | 'real';

export interface SignatureScheme {
  readonly mode: SimulatedCryptoMode;
  sign(signer: SigningKeyPair, payload: Uint8Array): Signature;
  /** True only for a signature by `publicKey` over exactly `payload`; never throws. */
  verify(publicKey: SigningPublicKey, payload: Uint8Array, candidate: Uint8Array): boolean;
}

const SECRET_DOMAIN = new TextEncoder().encode('phalanx simulated signature key v1');

/** Secrets by private key object: a key pair pays for its seed export and check once. */
const secretOfPrivateKey = new WeakMap<KeyObject, Uint8Array>();
/** Secrets by public key object (the registry hands out the same objects), then by its bytes. */
const secretOfPublicKey = new WeakMap<SigningPublicKey, Uint8Array>();
const secretOfPublicBytes = new Map<string, Uint8Array>();

function secretOf(signer: SigningKeyPair): Uint8Array {
  const known = secretOfPrivateKey.get(signer.privateKey);
  if (known !== undefined) {
    // The same private key under another public key object: still the pair's own public key?
    if (secretOfPublicKey.get(signer.publicKey) !== known) registerPublic(signer, known);
    return known;
  }
  const seed = signingSeed(signer);
  const secret = new Uint8Array(hash('sha256', concatenate(SECRET_DOMAIN, seed), 'buffer'));
  secretOfPrivateKey.set(signer.privateKey, secret);
  registerPublic(signer, secret);
  return secret;
}

/** Ties the pair's public key to its secret, once it is sure the public key is the private key's. */
function registerPublic(signer: SigningKeyPair, secret: Uint8Array): void {
  const derived = createPublicKey(signer.privateKey).export({ format: 'jwk' }).x;
  assert(
    typeof derived === 'string' && bytesEqual(Buffer.from(derived, 'base64url'), signer.publicKey.bytes),
    'a simulated signing key pair whose public key is not its private key’s',
  );
  secretOfPublicKey.set(signer.publicKey, secret);
  secretOfPublicBytes.set(toHex(signer.publicKey.bytes), secret);
}

function concatenate(first: Uint8Array, second: Uint8Array): Uint8Array {
  const out = new Uint8Array(first.length + second.length);
  out.set(first, 0);
  out.set(second, first.length);
  return out;
}

/** Where tag() lays out secret ‖ payload: one buffer reused rather than one allocated per signature. */
let tagInput = new Uint8Array(1024);
const MAX_TAG_INPUT_BYTES = 64 * 1024;

function tag(secret: Uint8Array, payload: Uint8Array): Buffer {
  const length = secret.length + payload.length;
  if (length > MAX_TAG_INPUT_BYTES) return hash('sha512', concatenate(secret, payload), 'buffer');
  if (tagInput.length < length) tagInput = new Uint8Array(MAX_TAG_INPUT_BYTES);
  tagInput.set(secret, 0);
  tagInput.set(payload, secret.length);
  return hash('sha512', tagInput.subarray(0, length), 'buffer');
}

/**
 * Signatures that verified, by their bytes: the key's secret and the payload they verified for.
 * A run checks the same signature many times (every receiver of a broadcast, every certificate
 * that carries a vote, again and again), about ten checks per distinct signature. A check that
 * finds the same secret and payload here has its answer already (the tag is a function of the
 * two); anything else is hashed. Cleared when full: entries only save work.
 */
const verifiedSignatures = new Map<string, { readonly secret: Uint8Array; readonly payload: Uint8Array }>();
const MAX_VERIFIED_SIGNATURES = 65_536;

function signatureKey(candidate: Uint8Array): string {
  return Buffer.from(candidate.buffer, candidate.byteOffset, candidate.byteLength).toString('latin1');
}

/** The simulator's signature: exact, bound to the key pair and the payload, a microsecond. */
export function simulatedSign(signer: SigningKeyPair, payload: Uint8Array): Signature {
  const out = tag(secretOf(signer), payload);
  // A fresh plain Uint8Array per call: callers may flip its bits (the faulty client does).
  return asSignature(new Uint8Array(out.buffer, out.byteOffset, SIGNATURE_BYTES));
}

export function simulatedVerify(
  publicKey: SigningPublicKey,
  payload: Uint8Array,
  candidate: Uint8Array,
): boolean {
  if (candidate.length !== SIGNATURE_BYTES) return false;
  let secret = secretOfPublicKey.get(publicKey);
  if (secret === undefined) {
    secret = secretOfPublicBytes.get(toHex(publicKey.bytes));
    if (secret === undefined) return false; // this key never signed anything
    secretOfPublicKey.set(publicKey, secret);
  }
  const key = signatureKey(candidate);
  const known = verifiedSignatures.get(key);
  if (known !== undefined && known.secret === secret && bytesEqual(known.payload, payload)) return true;
  if (!bytesEqual(tag(secret, payload), candidate)) return false;
  if (verifiedSignatures.size >= MAX_VERIFIED_SIGNATURES) verifiedSignatures.clear();
  verifiedSignatures.set(key, { secret, payload: payload.slice() });
  return true;
}

const SIMULATED_SCHEME: SignatureScheme = { mode: 'simulated', sign: simulatedSign, verify: simulatedVerify };
const REAL_SCHEME: SignatureScheme = { mode: 'real', sign: signBytes, verify: verifyBytes };

export function signatureScheme(mode: SimulatedCryptoMode): SignatureScheme {
  return mode === 'real' ? REAL_SCHEME : SIMULATED_SCHEME;
}

/** What the simulator needs of a replica's crypto beyond the core's interface. */
export interface SimulatorReplicaCrypto extends CoreCrypto {
  rotate(epoch: KeyEpoch, sessionKeys: ReplicaSessionKeys): void;
  forgetRetiredKeys(): void;
  channelKey(peer: ReplicaId): Uint8Array;
}

/**
 * A replica's crypto with simulated signatures: the production ReplicaCrypto keeps the session
 * keys, the registry, the epochs and the MACs (so authenticators and channel keys are exactly
 * production's); signing and signature checks go through the scheme, with the same epoch rules.
 */
export class SimulatedReplicaCrypto implements SimulatorReplicaCrypto {
  readonly replica: ReplicaId;
  readonly #macs: ReplicaCrypto;
  readonly #registry: KeyRegistry;
  readonly #scheme: SignatureScheme;
  #signing: SigningKeyPair;

  constructor(options: {
    readonly replica: ReplicaId;
    readonly registry: KeyRegistry;
    readonly epoch: KeyEpoch;
    readonly sessionKeys: ReplicaSessionKeys;
    readonly scheme: SignatureScheme;
  }) {
    this.replica = options.replica;
    this.#registry = options.registry;
    this.#scheme = options.scheme;
    this.#signing = options.sessionKeys.signing;
    this.#macs = new ReplicaCrypto(options);
  }

  get currentEpoch(): KeyEpoch {
    return this.#macs.currentEpoch;
  }

  replicaEpoch(replica: ReplicaId): KeyEpoch | undefined {
    return this.#registry.currentEpoch(replica);
  }

  /** A property, not a method: the core passes it around unbound. */
  readonly hash = (data: Uint8Array): Digest => this.#macs.hash(data);

  rotate(epoch: KeyEpoch, sessionKeys: ReplicaSessionKeys): void {
    this.#macs.rotate(epoch, sessionKeys);
    this.#signing = sessionKeys.signing;
  }

  forgetRetiredKeys(): void {
    this.#macs.forgetRetiredKeys();
  }

  channelKey(peer: ReplicaId): Uint8Array {
    return this.#macs.channelKey(peer);
  }

  sign(payload: Uint8Array): Signed {
    return { keyEpoch: this.#macs.currentEpoch, signature: this.#scheme.sign(this.#signing, payload) };
  }

  /** ReplicaCrypto's rule: a message must use the signer's current epoch; the registry says which epochs are accepted now. */
  verifyReplicaSignature(
    signer: ReplicaId,
    keyEpoch: KeyEpoch,
    payload: Uint8Array,
    signature: Signature,
    purpose: SignaturePurpose = 'proof',
  ): boolean {
    return (
      epochFitsPurpose(this.#registry, signer, keyEpoch, purpose) &&
      verifyRegisteredReplicaSignature(this.#registry, this.#scheme, signer, keyEpoch, payload, signature)
    );
  }

  verifyRequest(request: ClientRequest, requestDigest: Digest): boolean {
    // Without a signature, ReplicaCrypto's check is its authenticator entry alone (its signature
    // fallback answers false at once), which is production's MAC check, unchanged.
    if (this.#macs.verifyRequest({ ...request, signature: null }, requestDigest)) return true;
    return this.verifyRequestSignature(request, requestDigest);
  }

  verifyRequestSignature(request: ClientRequest, requestDigest: Digest): boolean {
    if (request.signature === null) return false;
    const signing = this.#registry.clientKeys(request.clientId)?.signing;
    if (signing === undefined || signing === null) return false;
    return this.#scheme.verify(signing, requestSignaturePayload(requestDigest), request.signature);
  }

  requestKeyRetired(request: ClientRequest): boolean {
    return this.#macs.requestKeyRetired(request);
  }
}

/** KeyRegistry.verifyReplicaSignature with the scheme's check: false unless the epoch is accepted now. */
export function verifyRegisteredReplicaSignature(
  registry: KeyRegistry,
  scheme: SignatureScheme,
  signer: ReplicaId,
  epoch: KeyEpoch,
  payload: Uint8Array,
  candidate: Uint8Array,
): boolean {
  const keys = registry.replicaKeys(signer, epoch);
  return keys !== undefined && scheme.verify(keys.signing, payload, candidate);
}

/** What the simulated clients need of their crypto. */
export interface SimulatorClientCrypto {
  readonly client: ClientId;
  readonly canSign: boolean;
  authenticator(requestDigest: Digest): MacEntry[];
  signRequest(requestDigest: Digest): Signature;
}

/** A client's crypto: production's authenticator (MACs), the scheme's request signature. */
export class SimulatedClientCrypto implements SimulatorClientCrypto {
  readonly client: ClientId;
  readonly #macs: ClientCrypto;
  readonly #signing: SigningKeyPair | null;
  readonly #scheme: SignatureScheme;

  constructor(options: {
    readonly client: ClientId;
    readonly keys: ClientKeys;
    readonly registry: KeyRegistry;
    readonly scheme: SignatureScheme;
  }) {
    this.client = options.client;
    this.#macs = new ClientCrypto(options);
    this.#signing = options.keys.signing;
    this.#scheme = options.scheme;
  }

  get canSign(): boolean {
    return this.#signing !== null;
  }

  authenticator(requestDigest: Digest): MacEntry[] {
    return this.#macs.authenticator(requestDigest);
  }

  signRequest(requestDigest: Digest): Signature {
    assert(this.#signing !== null, `client ${this.client} has no signing key`);
    return this.#scheme.sign(this.#signing, requestSignaturePayload(requestDigest));
  }
}
