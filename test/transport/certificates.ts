/**
 * Key certificates for the transport tests: a guardian that issues real KeyCertificates (Ed25519
 * over keyCertificatePayload, encoded by the message codec), and a key directory that knows only
 * the replicas' long-term identity keys and admits session keys on the strength of certificates,
 * as a client would.
 */
import {
  type KeyEpoch,
  keyEpoch,
  type ReplicaId,
  SIGNATURE_BYTES,
  signature,
} from '../../src/messages/ids.js';
import {
  generateAgreementKeyPair,
  generateSigningKeyPair,
  type SigningKeyPair,
} from '../../src/crypto/keys.js';
import { signBytes, verifyBytes } from '../../src/crypto/signatures.js';
import { ByteReader, encodeToBytes } from '../../src/messages/bytes.js';
import { readKeyCertificate, writeKeyCertificate } from '../../src/messages/codec.js';
import { LIMITS } from '../../src/messages/limits.js';
import { keyCertificatePayload } from '../../src/messages/signing.js';
import type { KeyCertificate } from '../../src/messages/types.js';
import type { ChannelIdentity } from '../../src/transport/handshake.js';
import {
  type ChannelKeyDirectory,
  type ChannelPublicKey,
  type NodeId,
  nodeKey,
  replicaNode,
} from '../../src/transport/transport.js';

/** Fixed so that a re-issued certificate differs from the first only where a test wants it to. */
const ISSUED_AT_MILLISECONDS = 1_700_000_000_000;

/** A replica's guardian: holds the long-term identity key and certifies each epoch's session key. */
export class TestGuardian {
  readonly replica: ReplicaId;
  readonly identityKeys: SigningKeyPair;

  constructor(replica: ReplicaId, identityKeys: SigningKeyPair = generateSigningKeyPair()) {
    this.replica = replica;
    this.identityKeys = identityKeys;
  }

  /** The encoded certificate for `signingKey` at `epoch`, as KeyAnnouncement carries it. */
  certify(
    epoch: KeyEpoch,
    signingKey: Uint8Array,
    options: { readonly replica?: ReplicaId; readonly issuedAtMs?: number } = {},
  ): Uint8Array {
    const unsigned = {
      replica: options.replica ?? this.replica,
      keyEpoch: epoch,
      signingKey,
      agreementKey: generateAgreementKeyPair().publicKey.bytes,
      issuedAtMs: options.issuedAtMs ?? ISSUED_AT_MILLISECONDS,
    };
    // keyCertificatePayload does not read the signature; it is filled in right after.
    const placeholder: KeyCertificate = {
      ...unsigned,
      signature: signature(new Uint8Array(SIGNATURE_BYTES)),
    };
    const certificate: KeyCertificate = {
      ...unsigned,
      signature: signBytes(this.identityKeys, keyCertificatePayload(placeholder)),
    };
    return encodeToBytes(certificate, writeKeyCertificate);
  }

  /** A fresh session key pair for `epoch`, certified: what a rejuvenated replica starts with. */
  issue(epoch: number): ChannelIdentity {
    const signingKeys = generateSigningKeyPair();
    return {
      node: replicaNode(this.replica),
      keyEpoch: keyEpoch(epoch),
      signingKeys,
      certificate: this.certify(keyEpoch(epoch), signingKeys.publicKey.bytes),
    };
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, index) => byte === b[index]);
}

/**
 * Knows replicas by their identity keys only (plus any keys listed outright, such as clients'),
 * admits a replica's session key when its certificate verifies and its epoch is newer than the
 * one known, and from then on lists only that key: older epochs are retired.
 */
export class CertifyingKeyDirectory implements ChannelKeyDirectory {
  readonly #identityKeys = new Map<number, Uint8Array>();
  readonly #current = new Map<string, ChannelPublicKey>();
  /** Why each refused certificate was refused, in order. */
  readonly refusals: string[] = [];
  admissions = 0;

  constructor(guardians: Iterable<TestGuardian>) {
    for (const guardian of guardians) {
      this.#identityKeys.set(guardian.replica, guardian.identityKeys.publicKey.bytes);
    }
  }

  list(node: NodeId, key: ChannelPublicKey): void {
    this.#current.set(nodeKey(node), key);
  }

  acceptableKeys(peer: NodeId): readonly ChannelPublicKey[] {
    const key = this.#current.get(nodeKey(peer));
    return key === undefined ? [] : [key];
  }

  admitCertifiedKey(peer: NodeId, epoch: KeyEpoch, publicKey: Uint8Array, certificate: Uint8Array): boolean {
    const refusal = this.#refusal(peer, epoch, publicKey, certificate);
    if (refusal !== null) {
      this.refusals.push(refusal);
      return false;
    }
    this.#current.set(nodeKey(peer), { keyEpoch: epoch, publicKey: Uint8Array.from(publicKey) });
    this.admissions++;
    return true;
  }

  #refusal(peer: NodeId, epoch: KeyEpoch, publicKey: Uint8Array, encoded: Uint8Array): string | null {
    if (peer.kind !== 'replica') return `${nodeKey(peer)} is not a replica`;
    const identityKey = this.#identityKeys.get(peer.id);
    if (identityKey === undefined) return `no identity key for replica ${peer.id}`;
    let certificate: KeyCertificate;
    try {
      const reader = new ByteReader(encoded);
      certificate = readKeyCertificate(reader, LIMITS);
      reader.expectEnd('key certificate');
    } catch (error) {
      return `undecodable certificate: ${error instanceof Error ? error.message : String(error)}`;
    }
    if (certificate.replica !== peer.id) return `certificate for replica ${certificate.replica}`;
    if (certificate.keyEpoch !== epoch) return `certificate for epoch ${certificate.keyEpoch}`;
    if (!sameBytes(certificate.signingKey, publicKey)) return 'certificate for another key';
    if (!verifyBytes(identityKey, keyCertificatePayload(certificate), certificate.signature)) {
      return 'certificate signature does not verify under the identity key';
    }
    const known = this.#current.get(nodeKey(peer));
    if (known !== undefined && known.keyEpoch >= epoch) {
      return `epoch ${epoch} is not newer than the known epoch ${known.keyEpoch}`;
    }
    return null;
  }
}
