/**
 * The public keys a node knows: every replica's session keys by epoch, and every client's keys.
 *
 * Epoch policy. A replica's session keys are replaced at every rejuvenation (a new KeyEpoch), and a
 * replica that was compromised before rejuvenating must lose the power to speak for itself, so old
 * keys are retired. Certificates and messages signed just before a rotation are still in flight when
 * it happens, though, so the epoch immediately before the current one stays accepted as a grace
 * window. Anything older, and any epoch never installed, verifies as false.
 */
import {
  assert,
  bytesEqual,
  type ClientId,
  type KeyEpoch,
  type ReplicaId,
  replicaId,
  type Signature,
} from '../core/ids.js';
import type { AgreementPublicKey, SigningPublicKey } from './keys.js';
import { verifyBytes } from './signatures.js';

export interface ReplicaPublicKeys {
  readonly signing: SigningPublicKey;
  readonly agreement: AgreementPublicKey;
}

export interface ClientPublicKeys {
  /** Absent for clients that never sign requests (their requests rely on MAC authenticators only). */
  readonly signing: SigningPublicKey | null;
  readonly agreement: AgreementPublicKey;
}

interface EpochKeys {
  readonly epoch: KeyEpoch;
  readonly keys: ReplicaPublicKeys;
}

interface ReplicaKeyHistory {
  readonly current: EpochKeys;
  /** Only ever the epoch exactly one below current: the grace window. */
  readonly previous: EpochKeys | null;
}

function samePublicKeys(a: ReplicaPublicKeys, b: ReplicaPublicKeys): boolean {
  return bytesEqual(a.signing.bytes, b.signing.bytes) && bytesEqual(a.agreement.bytes, b.agreement.bytes);
}

export class KeyRegistry {
  /** n: replicas are 0..n-1, and a client's authenticator has one entry for each. */
  readonly replicaCount: number;
  readonly #replicas: (ReplicaKeyHistory | undefined)[];
  readonly #clients = new Map<ClientId, ClientPublicKeys>();

  constructor(replicaCount: number) {
    assert(Number.isSafeInteger(replicaCount) && replicaCount >= 1, `invalid replica count: ${replicaCount}`);
    replicaId(replicaCount - 1);
    this.replicaCount = replicaCount;
    this.#replicas = new Array<ReplicaKeyHistory | undefined>(replicaCount).fill(undefined);
  }

  /**
   * Makes `epoch` the replica's current epoch and retires everything older than epoch - 1.
   * Installing the current epoch again with the same keys does nothing. Throws InvariantViolation
   * for an epoch below the current one (epochs only move forward, and going back would revive
   * retired keys), for different keys under an already installed epoch (caches are keyed by epoch),
   * and for a replica outside 0..n-1. Callers validate rotation announcements before installing.
   */
  installReplicaEpoch(replica: ReplicaId, epoch: KeyEpoch, keys: ReplicaPublicKeys): void {
    assert(replica < this.replicaCount, `replica ${replica} outside 0..${this.replicaCount - 1}`);
    const history = this.#replicas[replica];
    if (history === undefined) {
      this.#replicas[replica] = { current: { epoch, keys }, previous: null };
      return;
    }
    const current = history.current;
    if (epoch === current.epoch) {
      assert(
        samePublicKeys(current.keys, keys),
        `replica ${replica} already has other keys for epoch ${epoch}`,
      );
      return;
    }
    assert(epoch > current.epoch, `replica ${replica} is at epoch ${current.epoch}; cannot install ${epoch}`);
    this.#replicas[replica] = {
      current: { epoch, keys },
      previous: current.epoch === epoch - 1 ? current : null,
    };
  }

  /** The replica's current epoch, or undefined before any was installed. */
  currentEpoch(replica: ReplicaId): KeyEpoch | undefined {
    return this.#replicas[replica]?.current.epoch;
  }

  /** The replica's keys of `epoch` if that epoch is accepted (current or the one before), else undefined. */
  replicaKeys(replica: ReplicaId, epoch: KeyEpoch): ReplicaPublicKeys | undefined {
    const history = this.#replicas[replica];
    if (history === undefined) return undefined;
    if (history.current.epoch === epoch) return history.current.keys;
    if (history.previous !== null && history.previous.epoch === epoch) return history.previous.keys;
    return undefined;
  }

  /** Accepted epochs of the replica, current first. */
  acceptedEpochs(replica: ReplicaId): readonly KeyEpoch[] {
    const history = this.#replicas[replica];
    if (history === undefined) return [];
    return history.previous === null
      ? [history.current.epoch]
      : [history.current.epoch, history.previous.epoch];
  }

  /** False (never an exception) for an unknown replica, a retired or unknown epoch, or a bad signature. */
  verifyReplicaSignature(
    signer: ReplicaId,
    epoch: KeyEpoch,
    payload: Uint8Array,
    candidate: Signature | Uint8Array,
  ): boolean {
    const keys = this.replicaKeys(signer, epoch);
    return keys !== undefined && verifyBytes(keys.signing, payload, candidate);
  }

  /** Adds the client, or replaces its keys (a re-registered client's old keys stop working at once). */
  registerClient(client: ClientId, keys: ClientPublicKeys): void {
    this.#clients.set(client, keys);
  }

  removeClient(client: ClientId): boolean {
    return this.#clients.delete(client);
  }

  clientKeys(client: ClientId): ClientPublicKeys | undefined {
    return this.#clients.get(client);
  }

  /**
   * Every agreement key this registry still accepts (each client's, each replica's of an accepted
   * epoch), as a set of the very objects it holds. Owners of derived-key caches drop entries whose
   * peer key is not in it: that key was replaced or retired. One pass, so pruning a cache of m
   * entries costs O(n + clients + m), not their product.
   */
  agreementKeysInUse(): Set<AgreementPublicKey> {
    const inUse = new Set<AgreementPublicKey>();
    for (const history of this.#replicas) {
      if (history === undefined) continue;
      inUse.add(history.current.keys.agreement);
      if (history.previous !== null) inUse.add(history.previous.keys.agreement);
    }
    for (const keys of this.#clients.values()) inUse.add(keys.agreement);
    return inUse;
  }
}
