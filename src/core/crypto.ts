/**
 * What the pure core needs from cryptography. The core never touches keys: an implementation in
 * crypto/ holds them (node:crypto Ed25519 + HMAC-SHA256) and answers these calls synchronously and
 * deterministically, so the same core runs in production and in the simulator.
 */
import type { ClientRequest } from '../messages/types.js';
import type { Digest, KeyEpoch, ReplicaId, Signature } from '../messages/ids.js';

export interface Signed {
  readonly keyEpoch: KeyEpoch;
  readonly signature: Signature;
}

export type SignaturePurpose = 'message' | 'proof';

export interface CoreCrypto {
  /** SHA-256. */
  hash(data: Uint8Array): Digest;
  /** The epoch of this replica's current session keys (what sign() signs with). */
  readonly currentEpoch: KeyEpoch;
  /**
   * The current key epoch of `replica` as this replica's key registry knows it (undefined before it
   * learned any). It rises when the replica is rejuvenated: a replica cut off for a proof made
   * under an epoch counts again once its epoch is above it.
   */
  replicaEpoch(replica: ReplicaId): KeyEpoch | undefined;
  /** Signs with this replica's current session key. */
  sign(payload: Uint8Array): Signed;
  /**
   * Checks a replica's signature made with its key of `keyEpoch`. A `message` the signer sent now
   * must use its current epoch: keys stolen before its last rejuvenation are worthless. A `proof`
   * (a vote inside a certificate, a view change relayed in a NEW-VIEW, an equivocation) may also
   * carry the epoch just before, signed before the rotation; anything older is rejected.
   *
   * The answer is about the keys accepted now: an epoch that has expired or was retired since a
   * signature was first checked makes it false from then on. The core relies on that to notice
   * that a stored checkpoint certificate needs re-certifying: it checks its stable certificate
   * again after every `keys-changed` event and every few status intervals, so an implementation
   * must not cache a `true` past the end of the epoch's acceptance.
   */
  verifyReplicaSignature(
    signer: ReplicaId,
    keyEpoch: KeyEpoch,
    payload: Uint8Array,
    signature: Signature,
    purpose: SignaturePurpose,
  ): boolean;
  /** Checks this replica's entry of the request's authenticator (or, failing that, the client's signature). */
  verifyRequest(request: ClientRequest, requestDigest: Digest): boolean;
  /** Checks the client's signature on the request (false when it carries none). */
  verifyRequestSignature(request: ClientRequest, requestDigest: Digest): boolean;
  /**
   * True when this replica's authenticator entry was made with a key epoch of this replica that
   * is already retired (the client had not heard of its rejuvenation yet): the replica cannot
   * judge the request at all, which says nothing about whoever forwarded it.
   */
  requestKeyRetired(request: ClientRequest): boolean;
}
