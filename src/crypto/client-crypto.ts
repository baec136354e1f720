/**
 * A client's side of request authentication: the PBFT authenticator (one MAC per replica, under the
 * key the client shares with that replica's current session key) and the optional signature.
 */
import {
  assert,
  type ClientId,
  type Digest,
  type KeyEpoch,
  keyEpoch,
  MAC_BYTES,
  replicaId,
  type Signature,
} from '../messages/ids.js';
import { requestMacPayload, requestSignaturePayload } from '../messages/signing.js';
import type { MacEntry } from '../messages/types.js';
import type { KeyRegistry } from './key-registry.js';
import {
  type AgreementKeyPair,
  type AgreementPublicKey,
  agreementKeyPairFromSeed,
  deriveSeed,
  type SigningKeyPair,
  signingKeyPairFromSeed,
} from './keys.js';
import { clientReplicaBinding, DerivedKeyCache, macBytes } from './macs.js';
import { signBytes } from './signatures.js';

/** A client's private keys. Clients have no epochs: their keys change only by re-registration. */
export interface ClientKeys {
  readonly agreement: AgreementKeyPair;
  /** Null for a client that never signs (its requests then rely on the authenticator alone). */
  readonly signing: SigningKeyPair | null;
}

/** Deterministic client keys from one 32-byte seed (independent sub-seeds for the two key types). */
export function clientKeysFromSeed(seed: Uint8Array, options: { readonly signing: boolean }): ClientKeys {
  return {
    agreement: agreementKeyPairFromSeed(deriveSeed(seed, 'x25519')),
    signing: options.signing ? signingKeyPairFromSeed(deriveSeed(seed, 'ed25519')) : null,
  };
}

export interface ClientCryptoOptions {
  readonly client: ClientId;
  readonly keys: ClientKeys;
  /** Supplies the replicas' current public keys; the client follows their rotations through it. */
  readonly registry: KeyRegistry;
}

export class ClientCrypto {
  readonly client: ClientId;
  readonly #keys: ClientKeys;
  readonly #registry: KeyRegistry;
  readonly #derivedKeys = new DerivedKeyCache();
  /** Replica epochs the cache was last pruned at; a change means some keys were retired. */
  readonly #epochsSeen: (KeyEpoch | undefined)[] = [];
  /**
   * The key last used for each replica, with the epoch and public key it was derived for: every
   * request needs one per replica, and this skips building the binding string and the cache
   * lookup while neither changed (a changed epoch or key object goes through #derivedKeys).
   */
  readonly #lastKeys: ({ epoch: KeyEpoch; peer: AgreementPublicKey; key: Uint8Array } | undefined)[] = [];

  constructor(options: ClientCryptoOptions) {
    this.client = options.client;
    this.#keys = options.keys;
    this.#registry = options.registry;
  }

  get canSign(): boolean {
    return this.#keys.signing !== null;
  }

  /**
   * Entry i is the MAC for replica i under the key shared with its current epoch; an all-zero
   * placeholder while that epoch's keys are not known yet (see below).
   */
  authenticator(requestDigest: Digest): MacEntry[] {
    const entries: MacEntry[] = [];
    const currentPeerKeys: AgreementPublicKey[] = [];
    let rotated = false;
    for (let index = 0; index < this.#registry.replicaCount; index++) {
      const replica = replicaId(index);
      const epoch = this.#registry.currentEpoch(replica);
      // Keys of this replica's current epoch are not known yet (it is down, or being
      // rejuvenated), or its epoch has expired (its rejuvenation is late, or the newer
      // certificate has not reached this client): it will check the request by other means (it
      // receives it directly on a retransmission, or by the signature), so an entry it cannot
      // verify is the honest answer.
      const replicaKeys = epoch === undefined ? undefined : this.#registry.replicaKeys(replica, epoch);
      if (epoch === undefined || replicaKeys === undefined) {
        entries.push({ keyEpoch: keyEpoch(0), mac: new Uint8Array(MAC_BYTES) });
        continue;
      }
      if (this.#epochsSeen[index] !== epoch) {
        rotated ||= this.#epochsSeen[index] !== undefined;
        this.#epochsSeen[index] = epoch;
      }
      currentPeerKeys.push(replicaKeys.agreement);
      const last = this.#lastKeys[index];
      let key: Uint8Array;
      if (last !== undefined && last.epoch === epoch && last.peer === replicaKeys.agreement) key = last.key;
      else {
        key = this.#derivedKeys.macKey(
          clientReplicaBinding(this.client, replica, epoch),
          this.#keys.agreement,
          replicaKeys.agreement,
        );
        this.#lastKeys[index] = { epoch, peer: replicaKeys.agreement, key };
      }
      entries.push({ keyEpoch: epoch, mac: macBytes(key, requestMacPayload(requestDigest, replica)) });
    }
    if (rotated) {
      // A client only ever MACs for current epochs, so keys for any other epoch are dead weight.
      const inUse = new Set(currentPeerKeys);
      this.#derivedKeys.retain((_own, peer) => inUse.has(peer));
    }
    return entries;
  }

  /** Throws InvariantViolation for a client configured without a signing key (see canSign). */
  signRequest(requestDigest: Digest): Signature {
    assert(this.#keys.signing !== null, `client ${this.client} has no signing key`);
    return signBytes(this.#keys.signing, requestSignaturePayload(requestDigest));
  }
}
