/**
 * The public keys a node knows: every replica's session keys by epoch, and every client's keys.
 *
 * Epoch policy. A replica's session keys are replaced at every rejuvenation (a new KeyEpoch), and a
 * replica that was compromised before rejuvenating must lose the power to speak for itself, so old
 * keys are retired. Certificates and messages signed just before a rotation are still in flight when
 * it happens, though, so the epoch immediately before the current one stays accepted for a grace
 * window. Both are bounded in time by an `EpochLifetime` (docs/intrusion-tolerance.md, "Key
 * epochs"): with guardians, an epoch is accepted at most until its certificate's validity ends,
 * and once retired only until the end of the recovery slot that retired it. Anything older, any
 * epoch past those times, and any epoch never installed, verifies as false.
 */
import {
  assert,
  bytesEqual,
  type ClientId,
  type KeyEpoch,
  type ReplicaId,
  replicaId,
  type Signature,
} from '../messages/ids.js';
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
  /** On the registry's clock; Infinity for keys without a lifetime (no guardians, own keys). */
  readonly acceptedUntilMs: number;
}

/**
 * How long an epoch's keys are accepted, from the issue times its guardian put in the
 * certificates (ms on the guardians' clock, which the verifiers share up to a stated skew).
 */
export interface EpochLifetime {
  /** Until when the replica's epoch whose certificate was issued at `issuedAtMs` is accepted while current. */
  validUntilMs(replica: ReplicaId, issuedAtMs: number): number;
  /** Until when the replica's epoch is accepted once its successor's certificate, issued at `successorIssuedAtMs`, retired it. */
  retiredUntilMs(replica: ReplicaId, successorIssuedAtMs: number): number;
}

/** No limit in time (a cluster without guardians never rotates its keys). */
export const UNLIMITED_EPOCH_LIFETIME: EpochLifetime = {
  validUntilMs: () => Number.POSITIVE_INFINITY,
  retiredUntilMs: () => Number.POSITIVE_INFINITY,
};

export interface KeyRegistryOptions {
  readonly lifetime?: EpochLifetime;
  /** The clock the lifetimes are checked against (default Date.now). */
  readonly now?: () => number;
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
  readonly #lifetime: EpochLifetime;
  readonly #now: () => number;

  constructor(replicaCount: number, options: KeyRegistryOptions = {}) {
    assert(Number.isSafeInteger(replicaCount) && replicaCount >= 1, `invalid replica count: ${replicaCount}`);
    replicaId(replicaCount - 1);
    this.replicaCount = replicaCount;
    this.#replicas = new Array<ReplicaKeyHistory | undefined>(replicaCount).fill(undefined);
    this.#lifetime = options.lifetime ?? UNLIMITED_EPOCH_LIFETIME;
    this.#now = options.now ?? Date.now;
  }

  /** The lifetime rule this registry applies (key-certificate checks use it too). */
  get lifetime(): EpochLifetime {
    return this.#lifetime;
  }

  /** The registry's clock. */
  now(): number {
    return this.#now();
  }

  /**
   * Makes `epoch` the replica's current epoch and retires everything older than epoch - 1.
   * Installing the current epoch again with the same keys does nothing. Throws InvariantViolation
   * for an epoch below the current one (epochs only move forward, and going back would revive
   * retired keys), for different keys under an already installed epoch (caches are keyed by epoch),
   * and for a replica outside 0..n-1. Callers validate rotation announcements before installing.
   *
   * `issuedAtMs` is the issue time of the epoch's certificate: the epoch is accepted until the
   * lifetime's validity from it, and the epoch it retires until the lifetime's grace from it.
   * Without it (keys of the configuration, a node's own keys) neither limit applies.
   */
  installReplicaEpoch(
    replica: ReplicaId,
    epoch: KeyEpoch,
    keys: ReplicaPublicKeys,
    issuedAtMs?: number,
  ): void {
    assert(replica < this.replicaCount, `replica ${replica} outside 0..${this.replicaCount - 1}`);
    const history = this.#replicas[replica];
    const acceptedUntilMs =
      issuedAtMs === undefined ? Number.POSITIVE_INFINITY : this.#lifetime.validUntilMs(replica, issuedAtMs);
    if (history === undefined) {
      this.#replicas[replica] = { current: { epoch, keys, acceptedUntilMs }, previous: null };
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
    const retiredUntilMs =
      issuedAtMs === undefined
        ? Number.POSITIVE_INFINITY
        : this.#lifetime.retiredUntilMs(replica, issuedAtMs);
    this.#replicas[replica] = {
      current: { epoch, keys, acceptedUntilMs },
      previous:
        current.epoch === epoch - 1
          ? { ...current, acceptedUntilMs: Math.min(current.acceptedUntilMs, retiredUntilMs) }
          : null,
    };
  }

  /** The replica's current epoch, or undefined before any was installed. */
  currentEpoch(replica: ReplicaId): KeyEpoch | undefined {
    return this.#replicas[replica]?.current.epoch;
  }

  /**
   * The replica's keys of `epoch` if that epoch is accepted now (current or the one before, each
   * within its time), else undefined.
   */
  replicaKeys(replica: ReplicaId, epoch: KeyEpoch): ReplicaPublicKeys | undefined {
    return this.#accepted(replica, epoch)?.keys;
  }

  /** Until when the replica's `epoch` is accepted (ms on this registry's clock), or undefined if it is not now. */
  acceptedUntilMs(replica: ReplicaId, epoch: KeyEpoch): number | undefined {
    return this.#accepted(replica, epoch)?.acceptedUntilMs;
  }

  #accepted(replica: ReplicaId, epoch: KeyEpoch): EpochKeys | undefined {
    const history = this.#replicas[replica];
    if (history === undefined) return undefined;
    const entry =
      history.current.epoch === epoch
        ? history.current
        : history.previous !== null && history.previous.epoch === epoch
          ? history.previous
          : undefined;
    if (entry === undefined) return undefined;
    // A finite lifetime is checked on every use: nothing has to run when it ends.
    if (entry.acceptedUntilMs !== Number.POSITIVE_INFINITY && this.#now() > entry.acceptedUntilMs)
      return undefined;
    return entry;
  }

  /** Accepted epochs of the replica, current first. */
  acceptedEpochs(replica: ReplicaId): readonly KeyEpoch[] {
    const history = this.#replicas[replica];
    if (history === undefined) return [];
    const epochs =
      history.previous === null ? [history.current.epoch] : [history.current.epoch, history.previous.epoch];
    return epochs.filter((epoch) => this.#accepted(replica, epoch) !== undefined);
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
