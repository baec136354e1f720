/**
 * Key epochs: at every rejuvenation a guardian draws fresh session keys for its replica and
 * certifies them with its long-term identity key, which never leaves the guardian. Anyone who
 * knows the replica's identity key (it is in the cluster configuration) can check a certificate,
 * so keys stolen from an earlier epoch are recognisably old.
 *
 * Usage:
 * ```ts
 * const issued = issueKeyCertificate(identity, replicaId(2), keyEpoch(5), Date.now());
 * verifyKeyCertificate(issued.certificate, config.replicas[2].identityKey); // true
 * ```
 */
import { randomBytes } from 'node:crypto';
import { type KeyEpoch, type ReplicaId, signature as asSignature } from '../messages/ids.js';
import type { EpochLifetime, KeyRegistry } from './key-registry.js';
import {
  type SigningKeyPair,
  agreementKeyPairFromSeed,
  agreementPublicKeyFromBytes,
  signingKeyPairFromSeed,
  signingPublicKeyFromBytes,
} from './keys.js';
import type { ReplicaSessionKeys } from './replica-crypto.js';
import { signBytes, verifyBytes } from './signatures.js';
import { ByteReader, encodeToBytes } from '../messages/bytes.js';
import { encodeMessage, readKeyCertificate, writeKeyCertificate } from '../messages/codec.js';
import { LIMITS } from '../messages/limits.js';
import { keyCertificatePayload } from '../messages/signing.js';
import type { KeyCertificate } from '../messages/types.js';
import { epochValidUntilMs, retiredEpochAcceptedUntilMs, type ScheduleParameters } from '../core/schedule.js';

/**
 * How far apart the clocks of guardians and verifiers may be (ms): an epoch's validity is
 * extended by it. The schedule already assumes the guardians share a clock to well within T_D.
 */
export const CLOCK_SKEW_ALLOWANCE_MS = 1000;

/**
 * The lifetime of key epochs under a recovery schedule (docs/intrusion-tolerance.md, "Key
 * epochs"). A certificate issued at I is valid until the end of its replica's first proactive
 * slot starting T_D or more after I (at most I + T_P + 2·T_D): the rejuvenation in that slot
 * replaces it. Once a newer certificate, issued at I', retires it, it stays accepted only
 * until the end of the slot containing I' (at most I' + T_D): signatures made just before the
 * rotation (checkpoint votes, a view change in flight) still count while the recovery runs, and
 * at any instant only the retired epochs of the replicas rotated in the current slot (at most k)
 * are accepted. A configuration's lifetime is epochLifetimeOf in src/config/keys.ts.
 */
export function epochLifetimeOfSchedule(schedule: ScheduleParameters): EpochLifetime {
  return {
    // Extended by the skew allowance: a verifier whose clock runs ahead must not cut off a
    // replica that its guardian will rotate on time.
    validUntilMs: (replica, issuedAtMs) =>
      epochValidUntilMs(schedule, replica, issuedAtMs, CLOCK_SKEW_ALLOWANCE_MS),
    retiredUntilMs: (_replica, successorIssuedAtMs) =>
      retiredEpochAcceptedUntilMs(schedule, successorIssuedAtMs),
  };
}

export interface IssuedKeys {
  readonly certificate: KeyCertificate;
  readonly sessionKeys: ReplicaSessionKeys;
  /** The seeds, to hand the keys to the replica process (never written to disk). */
  readonly signingSeed: Uint8Array;
  readonly agreementSeed: Uint8Array;
}

export function issueKeyCertificate(
  identity: SigningKeyPair,
  replica: ReplicaId,
  epoch: KeyEpoch,
  nowMs: number,
): IssuedKeys {
  const signingSeed = new Uint8Array(randomBytes(32));
  const agreementSeed = new Uint8Array(randomBytes(32));
  const sessionKeys: ReplicaSessionKeys = {
    signing: signingKeyPairFromSeed(signingSeed),
    agreement: agreementKeyPairFromSeed(agreementSeed),
  };
  const unsigned: KeyCertificate = {
    replica,
    keyEpoch: epoch,
    signingKey: sessionKeys.signing.publicKey.bytes,
    agreementKey: sessionKeys.agreement.publicKey.bytes,
    issuedAtMs: Math.floor(nowMs),
    signature: asSignature(new Uint8Array(64)),
  };
  const certificate = { ...unsigned, signature: signBytes(identity, keyCertificatePayload(unsigned)) };
  return { certificate, sessionKeys, signingSeed, agreementSeed };
}

export function sessionKeysFromSeeds(signingSeed: Uint8Array, agreementSeed: Uint8Array): ReplicaSessionKeys {
  return { signing: signingKeyPairFromSeed(signingSeed), agreement: agreementKeyPairFromSeed(agreementSeed) };
}

/** True when the certificate is signed by `identityKey` (the replica's guardian) and well formed. */
export function verifyKeyCertificate(certificate: KeyCertificate, identityKey: Uint8Array | null): boolean {
  if (identityKey === null || certificate.signingKey.length !== 32 || certificate.agreementKey.length !== 32)
    return false;
  return verifyBytes(identityKey, keyCertificatePayload(certificate), certificate.signature);
}

/**
 * Each replica's long-term identity key, by replica id (null: no guardian). A ClusterConfig is
 * one; the narrow shape keeps crypto/ below the configuration file's module.
 */
export interface ReplicaIdentityKeys {
  readonly replicas: readonly { readonly identityKey: Uint8Array | null }[];
}

/** Checks a certificate against the configuration: the right replica's identity key signed it. */
export function verifyCertificateForConfig(
  certificate: KeyCertificate,
  config: ReplicaIdentityKeys,
): boolean {
  const replica = config.replicas[certificate.replica];
  return replica !== undefined && verifyKeyCertificate(certificate, replica.identityKey);
}

/**
 * Installs a verified certificate's keys as the replica's current epoch, if it is newer than the
 * one the registry has. Returns whether the registry changed.
 */
export function installCertificate(registry: KeyRegistry, certificate: KeyCertificate): boolean {
  const current = registry.currentEpoch(certificate.replica);
  // Epochs only move forward: an older or repeated certificate changes nothing.
  if (current !== undefined && certificate.keyEpoch <= current) return false;
  registry.installReplicaEpoch(
    certificate.replica,
    certificate.keyEpoch,
    {
      signing: signingPublicKeyFromBytes(certificate.signingKey),
      agreement: agreementPublicKeyFromBytes(certificate.agreementKey),
    },
    certificate.issuedAtMs,
  );
  return true;
}

/** A certificate as opaque bytes (for the transport handshake and the control channel). */
export function encodeKeyCertificate(certificate: KeyCertificate): Uint8Array {
  return encodeToBytes(certificate, writeKeyCertificate);
}

export function decodeKeyCertificate(bytes: Uint8Array): KeyCertificate | null {
  try {
    const reader = new ByteReader(bytes);
    const certificate = readKeyCertificate(reader, LIMITS);
    reader.expectEnd('key certificate');
    return certificate;
  } catch {
    return null;
  }
}

/** The key-announcement message replicas push to clients when epochs change. */
export function encodeKeyAnnouncement(certificates: readonly KeyCertificate[]): Uint8Array {
  return encodeMessage({ kind: 'key-announcement', certificates });
}
