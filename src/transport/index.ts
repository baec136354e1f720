/**
 * transport/: authenticated, encrypted frame delivery between replicas and clients. `Transport`
 * (transport.ts) is the interface; TcpTransport is the real one (mutually authenticated handshake
 * and AES-256-GCM records, handshake.ts), MemoryTransport the in-process one for unit tests.
 * docs/transport.md describes the protocol, the connection rules and the limits.
 *
 * Rejuvenated replicas present a key certificate (ChannelIdentity.certificate) in the handshake,
 * so that a peer that has not heard of their new key epoch yet can admit the key through its
 * directory (ChannelKeyDirectory.admitCertifiedKey); after `setIdentity`, peers end the old
 * epoch's sessions with `dropConnections(sessionsBeforeKeyEpoch(node, epoch))`.
 *
 * Usage (two replicas on loopback; replica 0 dials because the lower id dials):
 * ```ts
 * import { keyEpoch, replicaId } from '../messages/ids.js';
 * import { generateSigningKeyPair } from '../crypto/index.js';
 * import { type ChannelIdentity, channelPublicKey, nodeKey, replicaNode, StaticKeyDirectory, TcpTransport } from './index.js';
 *
 * const identities: ChannelIdentity[] = [0, 1].map((index) => ({
 *   node: replicaNode(replicaId(index)), keyEpoch: keyEpoch(0), signingKeys: generateSigningKeyPair(),
 * }));
 * const keys = new StaticKeyDirectory(identities.map((identity) => [identity.node, [channelPublicKey(identity)]] as const));
 * const one = await TcpTransport.start({
 *   identity: identities[1]!, listen: { host: '127.0.0.1', port: 0 }, peers: [], keys,
 *   events: { onFrame: (from, frame) => console.log(nodeKey(from), new TextDecoder().decode(frame)) },
 * });
 * const { port } = one.listenAddress()!;
 * const zero = await TcpTransport.start({
 *   identity: identities[0]!, peers: [{ node: identities[1]!.node, host: '127.0.0.1', port }], keys,
 *   events: { onFrame: () => {} },
 * });
 * zero.send(identities[1]!.node, new TextEncoder().encode('hello')); // queued until the handshake is done
 * await new Promise((resolve) => setTimeout(resolve, 200)); // replica 1 prints "replica:0 hello"
 * await Promise.all([zero.close(), one.close()]);
 * ```
 */
export {
  type AuthenticatedPeer,
  type CertifiedKey,
  type ChannelIdentity,
  type ChannelPhase,
  type ChannelStep,
  channelPublicKey,
  checkChannelIdentity,
  describeNode,
  HANDSHAKE_LIMITS,
  type HandshakeOperation,
  MAX_RECORD_BODY_BYTES,
  SecureChannel,
  StaticKeyDirectory,
  sameNode,
  TRANSPORT_PROTOCOL_VERSION,
} from './handshake.js';
export { type CertifyingConfiguration, channelKeyDirectory } from './key-directory.js';
export { DEFAULT_MEMORY_HUB_LIMITS, MemoryHub, type MemoryHubOptions, MemoryTransport } from './memory.js';
export {
  type ConnectionFilter,
  connectionSource,
  DEFAULT_RECONNECT_POLICY,
  DEFAULT_TCP_TRANSPORT_LIMITS,
  type PeerAddress,
  type ReconnectPolicy,
  rejectionKind,
  sessionsBeforeKeyEpoch,
  TcpTransport,
  type TcpTransportLimits,
  type TcpTransportOptions,
  type TransportLogger,
} from './tcp.js';
export {
  type ChannelKeyDirectory,
  type ChannelPublicKey,
  clientNode,
  type NodeId,
  nodeKey,
  replicaNode,
  type Transport,
  type TransportEvents,
  type TransportStatistics,
} from './transport.js';
