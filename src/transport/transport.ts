/**
 * One interface for moving frames between nodes, with two implementations: TCP with an
 * authenticated, encrypted handshake (tcp.ts) and an in-memory hub (memory.ts) for unit tests.
 *
 * A frame is an opaque byte string (an encoded message). The transport guarantees that a frame
 * handed to `onFrame` came from the peer it names (the channel is mutually authenticated) and was
 * not altered, replayed or reordered within a connection. It does not guarantee delivery: frames
 * may be lost when a connection breaks or a peer's bounded queue is full; the protocol above
 * retransmits what matters.
 *
 * Usage:
 * ```ts
 * const transport = await TcpTransport.start({ identity, listen: { host: '127.0.0.1', port: 7000 }, peers, keys, onFrame });
 * transport.send(replicaNode(1), encodeMessage(message));
 * await transport.close();
 * ```
 */
import type { ClientId, KeyEpoch, ReplicaId } from '../messages/ids.js';

/** Who is at the other end: a replica of the configuration or a client principal. */
export type NodeId =
  { readonly kind: 'replica'; readonly id: ReplicaId } | { readonly kind: 'client'; readonly id: ClientId };

export function replicaNode(id: ReplicaId): NodeId {
  return { kind: 'replica', id };
}
export function clientNode(id: ClientId): NodeId {
  return { kind: 'client', id };
}
/** 'replica:3' / 'client:alice': for maps and logs. */
export function nodeKey(node: NodeId): string {
  return `${node.kind}:${node.id}`;
}

export interface TransportEvents {
  /** An authenticated frame arrived. The buffer is the receiver's to keep. */
  onFrame(from: NodeId, frame: Uint8Array): void;
  /** A peer connected (handshake done) or disconnected; optional, for metrics and logs. */
  onPeerStateChange?(peer: NodeId, connected: boolean): void;
  /** A connection attempt or frame was refused; `reason` says why (wrong key, bad frame...). */
  onRejection?(peer: NodeId | null, remoteAddress: string, reason: string): void;
}

export interface TransportStatistics {
  readonly framesSent: number;
  readonly framesReceived: number;
  readonly bytesSent: number;
  readonly bytesReceived: number;
  /** Frames dropped because a peer's outbound queue was full or it was not connected. */
  readonly framesDropped: number;
  readonly handshakesRejected: number;
  readonly connectedPeers: number;
}

export interface Transport {
  /**
   * Queues a frame for a peer. Returns false, and drops the frame, when the peer is unknown, not
   * connected (and not being connected), or its bounded outbound queue is full.
   */
  send(to: NodeId, frame: Uint8Array): boolean;
  /** Peers with an established, authenticated connection. */
  connectedPeers(): NodeId[];
  statistics(): TransportStatistics;
  /** Closes every connection and the listener. */
  close(): Promise<void>;
}

/** The public half of a node's channel identity at one key epoch. */
export interface ChannelPublicKey {
  readonly keyEpoch: KeyEpoch;
  /** Raw 32-byte Ed25519 public key. */
  readonly publicKey: Uint8Array;
}

/**
 * Who may connect, with which key. A replica's acceptable keys change when it is rejuvenated
 * (a new key epoch); a client's when it is re-registered.
 */
export interface ChannelKeyDirectory {
  /** Keys the peer may authenticate with right now (usually its current epoch only). */
  acceptableKeys(peer: NodeId): readonly ChannelPublicKey[];
  /**
   * Asked during a handshake when `peer` announces a key epoch that `acceptableKeys` does not list
   * but sends a key certificate with it (an encoded KeyCertificate, at most
   * HANDSHAKE_LIMITS.maxCertificateBytes, not yet checked by anyone): true admits `publicKey` as
   * the peer's key at `keyEpoch`, and the handshake then requires the peer's signature under it.
   *
   * The transport treats the certificate as opaque bytes; everything that makes the admission safe
   * is the directory's to check: that the certificate decodes, names this peer, this epoch and
   * this very key, that its signature verifies under the peer's long-term identity key, and that
   * the epoch is not one it has already moved past (a certificate stays valid forever, the key it
   * certifies does not: a stolen old key must not come back with its old certificate). A directory
   * that admits a key should remember it, so that `acceptableKeys` lists it from then on.
   *
   * Absent, or false: the handshake is refused as for any key that is not accepted. Called
   * synchronously, on the event loop: keep it to a signature verification or so.
   */
  admitCertifiedKey?(
    peer: NodeId,
    keyEpoch: KeyEpoch,
    publicKey: Uint8Array,
    certificate: Uint8Array,
  ): boolean;
  /**
   * Whether `admitCertifiedKey` could ever admit a key for `peer`, whatever certificate came: false
   * for identities no certificate can vouch for (a replica id outside the configuration, a client
   * when certificates are only issued to replicas). A responder asks it at the HELLO of a peer whose
   * announced epoch `acceptableKeys` does not list, because the initiator's certificate only comes
   * with FINISH: waiting for it costs a key generation, a Diffie-Hellman and a signature, which an
   * identity that can never be admitted must not get for free. It must not depend on anything the
   * peer sends: it is asked before the peer has proven anything.
   *
   * Absent: only replicas with an id below LIMITS.maxReplicas are assumed admissible (the
   * transport's default: key certificates are issued by guardians, for replicas).
   */
  mayAdmitCertifiedKey?(peer: NodeId): boolean;
}
