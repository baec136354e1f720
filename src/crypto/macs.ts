/**
 * HMAC-SHA256 truncated to MAC_BYTES, and the pairwise keys it runs under.
 *
 * A pairwise key is never configured: both parties derive it from their X25519 key pairs, so
 * registering one public key per party is enough for n² channels. HKDF's info binds the key to both
 * identities and the key epochs involved, so a key derived for one channel or epoch is useless on
 * any other, and a rotation changes every key the rotated party shares.
 */
import { createHmac, diffieHellman, hkdfSync, timingSafeEqual } from 'node:crypto';
import type { ClientId, KeyEpoch, ReplicaId } from '../messages/ids.js';
import { InvariantViolation, MAC_BYTES } from '../messages/ids.js';
import type { AgreementKeyPair, AgreementPublicKey } from './keys.js';

/** Length of a derived pairwise key (the HMAC-SHA256 block allows up to 64; 32 is its full strength). */
export const MAC_KEY_BYTES = 32;

const KEY_DERIVATION_SALT = new TextEncoder().encode('phalanx-mac-v1');
const textEncoder = new TextEncoder();

/** HMAC-SHA256 of `data` under `key`, truncated to MAC_BYTES. */
export function macBytes(key: Uint8Array, data: Uint8Array): Uint8Array {
  const full = createHmac('sha256', key).update(data).digest();
  // Copy the truncated prefix out so the caller does not keep node's 32-byte buffer alive and
  // gets a plain Uint8Array rather than a Buffer.
  return new Uint8Array(full.subarray(0, MAC_BYTES));
}

/** Constant-time check of a MAC produced by macBytes; false (never an exception) on a wrong length. */
export function verifyMac(key: Uint8Array, data: Uint8Array, mac: Uint8Array): boolean {
  if (mac.length !== MAC_BYTES) return false;
  const full = createHmac('sha256', key).update(data).digest();
  return timingSafeEqual(full.subarray(0, MAC_BYTES), mac);
}

// ───────────────────────────── pairwise key derivation ─────────────────────────────

/** HKDF info for the key a client shares with a replica's session key of `replicaEpoch`. */
export function clientReplicaBinding(client: ClientId, replica: ReplicaId, replicaEpoch: KeyEpoch): string {
  // Client ids cannot contain '|' or ':' (CLIENT_ID_PATTERN), so the string parses one way only.
  return `client:${client}|replica:${replica}|epoch:${replicaEpoch}`;
}

/**
 * HKDF info for the channel key of two replicas. The pair is written lower id first, each with its
 * own epoch, so both ends build the same string whichever of them computes it.
 */
export function replicaPairBinding(
  replica: ReplicaId,
  replicaEpoch: KeyEpoch,
  peer: ReplicaId,
  peerEpoch: KeyEpoch,
): string {
  const [low, lowEpoch, high, highEpoch] =
    replica <= peer ? [replica, replicaEpoch, peer, peerEpoch] : [peer, peerEpoch, replica, replicaEpoch];
  return `replica:${low}|replica:${high}|epochs:${lowEpoch},${highEpoch}`;
}

/**
 * HKDF-SHA256 over X25519(own private, peer public). Both parties get the same key because X25519
 * is symmetric and the binding names both of them. Throws InvariantViolation if the agreement
 * fails, which keys imported through keys.ts cannot make happen (small-order points are refused).
 */
export function deriveMacKey(own: AgreementKeyPair, peer: AgreementPublicKey, binding: string): Uint8Array {
  let shared: Buffer;
  try {
    shared = diffieHellman({ privateKey: own.privateKey, publicKey: peer.keyObject });
  } catch (error) {
    throw new InvariantViolation(`X25519 agreement failed for ${binding}`, { cause: error });
  }
  return new Uint8Array(
    hkdfSync('sha256', shared, KEY_DERIVATION_SALT, textEncoder.encode(binding), MAC_KEY_BYTES),
  );
}

interface CachedMacKey {
  readonly own: AgreementKeyPair;
  readonly peer: AgreementPublicKey;
  readonly key: Uint8Array;
}

/**
 * Derived keys by binding string. A derivation (X25519 + HKDF) costs about twenty HMACs, and every
 * request verification needs a key, so each is derived once. An entry also remembers the key objects
 * it came from and is re-derived if either changed, so a replaced registry entry can never be
 * answered with a stale key.
 */
export class DerivedKeyCache {
  readonly #entries = new Map<string, CachedMacKey>();

  macKey(binding: string, own: AgreementKeyPair, peer: AgreementPublicKey): Uint8Array {
    const cached = this.#entries.get(binding);
    if (cached !== undefined && cached.own === own && cached.peer === peer) return cached.key;
    const key = deriveMacKey(own, peer, binding);
    this.#entries.set(binding, { own, peer, key });
    return key;
  }

  /** Drops every entry `keep` rejects; owners call it when a rotation retires keys. */
  retain(keep: (own: AgreementKeyPair, peer: AgreementPublicKey) => boolean): void {
    for (const [binding, entry] of this.#entries) {
      if (!keep(entry.own, entry.peer)) this.#entries.delete(binding);
    }
  }

  get size(): number {
    return this.#entries.size;
  }
}
