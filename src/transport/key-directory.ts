/**
 * The channel-key directory of a replica or client: which keys peers may present in a handshake,
 * from the key registry, and (with guardians) adoption of a newer key epoch presented with its
 * guardian's certificate. Used by the replica runtime and by PhalanxClient alike.
 *
 * Usage:
 * ```ts
 * const keys = channelKeyDirectory(registry, config, () => logger.info('key epoch installed'));
 * await TcpTransport.start({ identity, peers, keys, events });
 * ```
 */
import {
  decodeKeyCertificate,
  installCertificate,
  type ReplicaIdentityKeys,
  verifyCertificateForConfig,
} from '../crypto/key-certificates.js';
import type { KeyRegistry } from '../crypto/key-registry.js';
import { bytesEqual, type KeyEpoch, keyEpoch } from '../messages/ids.js';
import type { ChannelKeyDirectory, NodeId } from './transport.js';

/**
 * What the directory needs of the cluster configuration (a ClusterConfig is one): its size, and
 * each replica's identity key to check certificates with. Narrow so that transport/ stays below
 * config/.
 */
export interface CertifyingConfiguration extends ReplicaIdentityKeys {
  readonly n: number;
}

/**
 * Which channel keys peers may present: the current key epoch of each replica, each client's key.
 * With guardians, a replica may also present a newer epoch's key together with its certificate,
 * signed by its identity key from the configuration: the directory checks it and adopts the epoch.
 */
export function channelKeyDirectory(
  registry: KeyRegistry,
  config?: CertifyingConfiguration,
  /** Called after a certificate presented in a handshake installed a new epoch. */
  onEpochInstalled?: () => void,
): ChannelKeyDirectory & {
  admitCertifiedKey(
    peer: NodeId,
    keyEpoch: KeyEpoch,
    publicKey: Uint8Array,
    certificate: Uint8Array,
  ): boolean;
} {
  return {
    // Only a replica of this configuration can ever present a certificate worth checking: refused
    // from its HELLO, any other identity costs no key exchange or signature.
    mayAdmitCertifiedKey(peer) {
      return config !== undefined && peer.kind === 'replica' && peer.id < config.n;
    },
    admitCertifiedKey(peer, epoch, publicKey, encoded) {
      if (config === undefined || peer.kind !== 'replica') return false;
      const certificate = decodeKeyCertificate(encoded);
      if (
        certificate === null ||
        certificate.replica !== peer.id ||
        certificate.keyEpoch !== epoch ||
        !bytesEqual(certificate.signingKey, publicKey) ||
        !verifyCertificateForConfig(certificate, config)
      ) {
        return false;
      }
      if (installCertificate(registry, certificate)) onEpochInstalled?.();
      // Current and not expired: a genuine certificate past its validity (keys stolen from a
      // replica whose rejuvenation has since replaced them) admits nobody.
      return registry.currentEpoch(peer.id) === epoch && registry.replicaKeys(peer.id, epoch) !== undefined;
    },
    acceptableKeys(peer: NodeId) {
      if (peer.kind === 'replica') {
        const epoch = registry.currentEpoch(peer.id);
        if (epoch === undefined) return [];
        const keys = registry.replicaKeys(peer.id, epoch);
        return keys === undefined ? [] : [{ keyEpoch: epoch, publicKey: keys.signing.bytes }];
      }
      const keys = registry.clientKeys(peer.id);
      return keys?.signing == null ? [] : [{ keyEpoch: keyEpoch(0), publicKey: keys.signing.bytes }];
    },
  };
}
