/**
 * Key epochs for core tests: which epoch of every replica is current and which are no longer
 * accepted, shared by every replica's crypto (checkpoint-recertification, rejoin-stale-new-view).
 */
import type { CoreCrypto, Signed, SignaturePurpose } from '../../src/core/crypto.js';
import {
  type Digest,
  type KeyEpoch,
  keyEpoch,
  type ReplicaId,
  type Signature,
} from '../../src/messages/ids.js';
import type { ReplicaCrypto } from '../../src/crypto/replica-crypto.js';
import type { ClientRequest } from '../../src/messages/types.js';

/**
 * Which key epoch of every replica is current and which are no longer accepted, shared by every
 * replica's crypto (a key registry everybody agrees on). A rotation keeps the key material and
 * only relabels it: what these tests are about is which epochs are accepted, not the keys.
 */
export class EpochBook {
  readonly current: number[];
  readonly #expired = new Set<string>();

  constructor(n: number) {
    this.current = Array.from({ length: n }, () => 0);
  }

  /** Every replica moves to a new epoch and its old one stops being accepted at once. */
  rotateAllAndExpireOld(): void {
    this.rotateAndExpireOld(this.current.map((_, replica) => replica));
  }

  /** These replicas move to a new epoch and their old ones stop being accepted at once. */
  rotateAndExpireOld(replicas: readonly number[]): void {
    for (const replica of replicas) {
      const epoch = this.current[replica]!;
      this.#expired.add(`${replica}:${epoch}`);
      this.current[replica] = epoch + 1;
    }
  }

  accepts(signer: ReplicaId, epoch: KeyEpoch, purpose: SignaturePurpose): boolean {
    if (this.#expired.has(`${signer}:${epoch}`)) return false;
    const current = this.current[signer]!;
    return epoch === current || (purpose === 'proof' && epoch === current - 1);
  }
}

export class EpochCrypto implements CoreCrypto {
  readonly #inner: ReplicaCrypto;
  readonly #self: ReplicaId;
  readonly #book: EpochBook;

  constructor(inner: ReplicaCrypto, self: ReplicaId, book: EpochBook) {
    this.#inner = inner;
    this.#self = self;
    this.#book = book;
  }

  readonly hash = (data: Uint8Array): Digest => this.#inner.hash(data);

  get currentEpoch(): KeyEpoch {
    return keyEpoch(this.#book.current[this.#self]!);
  }

  replicaEpoch(replica: ReplicaId): KeyEpoch | undefined {
    return keyEpoch(this.#book.current[replica]!);
  }

  sign(payload: Uint8Array): Signed {
    return { keyEpoch: this.currentEpoch, signature: this.#inner.sign(payload).signature };
  }

  verifyReplicaSignature(
    signer: ReplicaId,
    epoch: KeyEpoch,
    payload: Uint8Array,
    signature: Signature,
    purpose: SignaturePurpose,
  ): boolean {
    if (!this.#book.accepts(signer, epoch, purpose)) return false;
    // The key material is the epoch-0 key whatever the label.
    return this.#inner.verifyReplicaSignature(signer, keyEpoch(0), payload, signature, purpose);
  }

  verifyRequest(request: ClientRequest, requestDigest: Digest): boolean {
    return this.#inner.verifyRequest(request, requestDigest);
  }

  verifyRequestSignature(request: ClientRequest, requestDigest: Digest): boolean {
    return this.#inner.verifyRequestSignature(request, requestDigest);
  }

  requestKeyRetired(request: ClientRequest): boolean {
    return this.#inner.requestKeyRetired(request);
  }
}
