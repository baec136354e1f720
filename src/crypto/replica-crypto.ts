/**
 * CoreCrypto for one replica: its own session keys (current epoch, and the one before it during the
 * grace window), and the KeyRegistry for everybody else's public keys.
 */
import { hash } from 'node:crypto';
import type { CoreCrypto, SignaturePurpose, Signed } from '../core/crypto.js';
import {
  assert,
  type ClientId,
  type Digest,
  digest,
  type KeyEpoch,
  keyEpoch,
  type ReplicaId,
  type Signature,
} from '../messages/ids.js';
import { requestMacPayload, requestSignaturePayload } from '../messages/signing.js';
import type { ClientRequest, MacEntry } from '../messages/types.js';
import type { KeyRegistry, ReplicaPublicKeys } from './key-registry.js';
import {
  type AgreementKeyPair,
  agreementKeyPairFromSeed,
  deriveSeed,
  type SigningKeyPair,
  signingKeyPairFromSeed,
} from './keys.js';
import { clientReplicaBinding, DerivedKeyCache, macBytes, replicaPairBinding, verifyMac } from './macs.js';
import { signBytes, verifyBytes } from './signatures.js';

/** The private half of one epoch of a replica's session keys. */
export interface ReplicaSessionKeys {
  readonly signing: SigningKeyPair;
  readonly agreement: AgreementKeyPair;
}

/** Deterministic session keys from one 32-byte seed (independent sub-seeds for the two key types). */
/**
 * Whether a signature under `keyEpoch` may be judged at all for `purpose`: a message a replica
 * sends now must use the signer's current epoch (a retired epoch's keys may be stolen), while a
 * proof may carry any epoch the registry still accepts. Shared by every CoreCrypto (production
 * and the simulator's), so the rule stands in one place.
 */
export function epochFitsPurpose(
  registry: KeyRegistry,
  signer: ReplicaId,
  keyEpoch: KeyEpoch,
  purpose: SignaturePurpose,
): boolean {
  return purpose !== 'message' || registry.currentEpoch(signer) === keyEpoch;
}

export function sessionKeysFromSeed(seed: Uint8Array): ReplicaSessionKeys {
  return {
    signing: signingKeyPairFromSeed(deriveSeed(seed, 'ed25519')),
    agreement: agreementKeyPairFromSeed(deriveSeed(seed, 'x25519')),
  };
}

/** What the registry (and every other node) needs to know of these session keys. */
export function sessionPublicKeys(keys: ReplicaSessionKeys): ReplicaPublicKeys {
  return { signing: keys.signing.publicKey, agreement: keys.agreement.publicKey };
}

interface EpochSession {
  readonly epoch: KeyEpoch;
  readonly keys: ReplicaSessionKeys;
}

export interface ReplicaCryptoOptions {
  readonly replica: ReplicaId;
  readonly registry: KeyRegistry;
  /** The current epoch and its session keys. */
  readonly epoch: KeyEpoch;
  readonly sessionKeys: ReplicaSessionKeys;
  /**
   * The keys of epoch - 1, when restarting inside the grace window: requests clients MACed for that
   * epoch still verify cheaply. Without them such requests fall back to their signatures.
   */
  readonly previousSessionKeys?: ReplicaSessionKeys;
}

/**
 * Publishing its own public keys into the registry keeps a node's view of itself consistent with the
 * keys it signs with; a registry that already knows a newer epoch for this replica means two sets of
 * keys claim to be this replica, which is a configuration error.
 */
function publishOwnKeys(registry: KeyRegistry, replica: ReplicaId, session: EpochSession): void {
  const known = registry.currentEpoch(replica);
  assert(
    known === undefined || known <= session.epoch,
    `registry has epoch ${known} for replica ${replica}, newer than its own keys (${session.epoch})`,
  );
  registry.installReplicaEpoch(replica, session.epoch, sessionPublicKeys(session.keys));
}

export class ReplicaCrypto implements CoreCrypto {
  readonly replica: ReplicaId;
  readonly #registry: KeyRegistry;
  #current: EpochSession;
  #previous: EpochSession | null;
  readonly #derivedKeys = new DerivedKeyCache();

  constructor(options: ReplicaCryptoOptions) {
    this.replica = options.replica;
    this.#registry = options.registry;
    this.#current = { epoch: options.epoch, keys: options.sessionKeys };
    this.#previous =
      options.previousSessionKeys !== undefined && options.epoch > 0
        ? { epoch: keyEpoch(options.epoch - 1), keys: options.previousSessionKeys }
        : null;
    if (this.#previous !== null && this.#registry.currentEpoch(this.replica) === undefined) {
      publishOwnKeys(this.#registry, this.replica, this.#previous);
    }
    publishOwnKeys(this.#registry, this.replica, this.#current);
  }

  replicaEpoch(replica: ReplicaId): KeyEpoch | undefined {
    return this.#registry.currentEpoch(replica);
  }

  get currentEpoch(): KeyEpoch {
    return this.#current.epoch;
  }

  /**
   * Switches to a new epoch's session keys (rejuvenation). The old current epoch stays usable for
   * verification while it is the one immediately before; everything older is forgotten, including
   * the MAC keys derived from it.
   */
  rotate(epoch: KeyEpoch, sessionKeys: ReplicaSessionKeys): void {
    assert(epoch > this.#current.epoch, `cannot rotate from epoch ${this.#current.epoch} to ${epoch}`);
    const next: EpochSession = { epoch, keys: sessionKeys };
    publishOwnKeys(this.#registry, this.replica, next);
    this.#previous = this.#current.epoch === epoch - 1 ? this.#current : null;
    this.#current = next;
    this.forgetRetiredKeys();
  }

  /**
   * Drops derived MAC keys made with own keys that are no longer current or previous, or with peer
   * keys the registry no longer holds. Called on rotation; call it also after other parties rotate
   * or clients are removed, if many of them do.
   */
  forgetRetiredKeys(): void {
    const current = this.#current.keys.agreement;
    const previous = this.#previous?.keys.agreement;
    const inUse = this.#registry.agreementKeysInUse();
    this.#derivedKeys.retain((own, peer) => (own === current || own === previous) && inUse.has(peer));
  }

  hash(data: Uint8Array): Digest {
    const out = hash('sha256', data, 'buffer');
    // A plain Uint8Array view of node's Buffer: same bytes, no copy, and no Buffer-specific
    // behaviour (deepStrictEqual against a Uint8Array, slice semantics) leaking into the core.
    return digest(new Uint8Array(out.buffer, out.byteOffset, out.length));
  }

  sign(payload: Uint8Array): Signed {
    return { keyEpoch: this.#current.epoch, signature: signBytes(this.#current.keys.signing, payload) };
  }

  verifyReplicaSignature(
    signer: ReplicaId,
    keyEpoch: KeyEpoch,
    payload: Uint8Array,
    signature: Signature,
    purpose: SignaturePurpose = 'proof',
  ): boolean {
    return (
      epochFitsPurpose(this.#registry, signer, keyEpoch, purpose) &&
      this.#registry.verifyReplicaSignature(signer, keyEpoch, payload, signature)
    );
  }

  verifyRequest(request: ClientRequest, requestDigest: Digest): boolean {
    const entry = request.authenticator[this.replica];
    if (entry !== undefined && this.#verifyAuthenticatorEntry(request.clientId, entry, requestDigest)) {
      return true;
    }
    return this.verifyRequestSignature(request, requestDigest);
  }

  requestKeyRetired(request: ClientRequest): boolean {
    const entry = request.authenticator[this.replica];
    return (
      entry !== undefined &&
      entry.keyEpoch < this.#current.epoch &&
      this.#sessionOfEpoch(entry.keyEpoch) === undefined
    );
  }

  verifyRequestSignature(request: ClientRequest, requestDigest: Digest): boolean {
    if (request.signature === null) return false;
    const signing = this.#registry.clientKeys(request.clientId)?.signing;
    if (signing === undefined || signing === null) return false;
    return verifyBytes(signing, requestSignaturePayload(requestDigest), request.signature);
  }

  #sessionOfEpoch(epoch: KeyEpoch): EpochSession | undefined {
    if (epoch === this.#current.epoch) return this.#current;
    if (this.#previous !== null && epoch === this.#previous.epoch) return this.#previous;
    return undefined;
  }

  #verifyAuthenticatorEntry(client: ClientId, entry: MacEntry, requestDigest: Digest): boolean {
    const session = this.#sessionOfEpoch(entry.keyEpoch);
    if (session === undefined) return false;
    const clientKeys = this.#registry.clientKeys(client);
    if (clientKeys === undefined) return false;
    try {
      const key = this.#derivedKeys.macKey(
        clientReplicaBinding(client, this.replica, session.epoch),
        session.keys.agreement,
        clientKeys.agreement,
      );
      return verifyMac(key, requestMacPayload(requestDigest, this.replica), entry.mac);
    } catch {
      // Only a key that slipped past keys.ts validation can get here; it authenticates nothing.
      return false;
    }
  }

  // ───────────────────────────── replica ↔ replica channels ─────────────────────────────

  /**
   * The MAC key this replica shares with `peer` for both sides' current epochs. Throws
   * InvariantViolation when the registry has no keys for `peer` (a configuration error).
   */
  channelKey(peer: ReplicaId): Uint8Array {
    const peerEpoch = this.#registry.currentEpoch(peer);
    assert(peerEpoch !== undefined, `no keys for replica ${peer}`);
    const key = this.#channelKeyFor(this.#current, peer, peerEpoch);
    assert(key !== undefined, `registry lost the current keys of replica ${peer}`);
    return key;
  }

  /** MAC of an outgoing frame to `peer`, under channelKey(peer). */
  macFrame(peer: ReplicaId, frame: Uint8Array): Uint8Array {
    return macBytes(this.channelKey(peer), frame);
  }

  /**
   * Checks a frame from `peer`. The current epoch pair is tried first; during a rotation the sender
   * may still use the other side's previous epoch, so the other accepted combinations (at most three
   * more MACs, only on a mismatch) are tried next. Never throws.
   */
  verifyFrame(peer: ReplicaId, frame: Uint8Array, mac: Uint8Array): boolean {
    const peerEpochs = this.#registry.acceptedEpochs(peer);
    const ownSessions = this.#previous === null ? [this.#current] : [this.#current, this.#previous];
    for (const own of ownSessions) {
      for (const peerEpoch of peerEpochs) {
        let key: Uint8Array | undefined;
        try {
          key = this.#channelKeyFor(own, peer, peerEpoch);
        } catch {
          continue; // a peer key that cannot be agreed with authenticates nothing
        }
        if (key !== undefined && verifyMac(key, frame, mac)) return true;
      }
    }
    return false;
  }

  #channelKeyFor(own: EpochSession, peer: ReplicaId, peerEpoch: KeyEpoch): Uint8Array | undefined {
    const peerKeys = this.#registry.replicaKeys(peer, peerEpoch);
    if (peerKeys === undefined) return undefined;
    return this.#derivedKeys.macKey(
      replicaPairBinding(this.replica, own.epoch, peer, peerEpoch),
      own.keys.agreement,
      peerKeys.agreement,
    );
  }
}
