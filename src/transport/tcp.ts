/**
 * The production transport: TCP connections secured by the handshake and record layer of
 * handshake.ts (docs/transport.md has the whole design).
 *
 * Who connects to whom. Replicas listen; clients never do. Between two replicas exactly one
 * connection is wanted, so the rule is fixed: the replica with the LOWER id dials, the higher one
 * only accepts (and refuses a dial from a higher id, so a misconfigured or faulty replica cannot
 * churn the pair's connection by dialing the other way). A client dials every replica, and a
 * replica answers a client on the connection the client opened. A newer authenticated connection
 * from a peer replaces the older one.
 *
 * Sending. `send` appends the frame to the peer's bounded queue (bounded in frames and in bytes;
 * beyond either bound the frame is dropped and counted: the protocol retransmits). Once per event
 * loop turn (setImmediate) each peer's queue is packed into records of up to
 * `maxCoalescedRecordBytes` and written, so thousands of small frames cost a handful of cipher
 * operations and socket writes. When the socket reports backpressure (write returns false), the
 * queue waits for 'drain'. A configured replica peer keeps its queue while disconnected (it is
 * being reconnected); a client's queue goes away with its connection.
 *
 * Failure. Nothing a peer sends can throw out of the transport: handshake failures, malformed or
 * unauthentic records, timeouts and connection floods close the offending connection and are
 * reported through `onRejection` (and counted). Exceptions thrown by the event handlers are caught
 * and logged at error level, so one faulty handler does not take the node's networking down.
 */
import { randomInt } from 'node:crypto';
import { createServer, connect as dial, type Server, type Socket } from 'node:net';
import { InvariantViolation, type KeyEpoch } from '../messages/ids.js';
import { LIMITS } from '../messages/limits.js';
import { ConnectionRateLimiter } from './connection-rate.js';
import { OVERFLOW_KEY, RATE_LIMITED_LOG_LIMITS, RateLimitedLog } from './rate-limited-log.js';
import {
  type AuthenticatedPeer,
  type ChannelIdentity,
  checkChannelIdentity,
  describeNode,
  FRAME_HEADER_BYTES,
  HANDSHAKE_LIMITS,
  MAX_RECORD_PLAINTEXT_BYTES,
  SecureChannel,
  sameNode,
} from './handshake.js';
import {
  type ChannelKeyDirectory,
  type NodeId,
  nodeKey,
  type Transport,
  type TransportEvents,
  type TransportStatistics,
} from './transport.js';

/** Where to reach a peer. For a replica, every other replica; for a client, every replica. */
export interface PeerAddress {
  readonly node: NodeId;
  readonly host: string;
  readonly port: number;
}

export interface TcpTransportLimits {
  /** Frame bytes queued for one peer (not yet written to its socket) before frames are dropped. */
  readonly maxQueuedBytesPerPeer: number;
  /** Frames queued for one peer before frames are dropped. */
  readonly maxQueuedFramesPerPeer: number;
  /** Accepted sockets at once, authenticated or not (`server.maxConnections`). */
  readonly maxInboundConnections: number;
  /** Accepted sockets still in the handshake; an unauthenticated flood cannot take every slot. */
  readonly maxPendingInboundHandshakes: number;
  /**
   * The share of `maxPendingInboundHandshakes` each source (an IPv4 address, or an IPv6 /64: see
   * `connectionSource`) is guaranteed. While the budget has room a source may hold more (a host
   * running many clients connects them all at once); once it is full, a newcomer from a source
   * holding fewer than this evicts the oldest pending handshake of the source holding the most
   * beyond it, and a newcomer from a source already holding this many is refused. So one host
   * cannot take the budget from the others, whatever it opens.
   */
  readonly maxPendingInboundHandshakesPerSource: number;
  /**
   * Authenticated connections one client identity may open within
   * `clientConnectionWindowMilliseconds`; beyond, its connection is closed and the identity is
   * refused for `clientRefusalMilliseconds`, at its HELLO, before any cryptography (see
   * connection-rate.ts). Replicas are not limited here.
   */
  readonly maxConnectionsPerClient: number;
  readonly clientConnectionWindowMilliseconds: number;
  readonly clientRefusalMilliseconds: number;
  /** Client identities whose connection rate is remembered (least recently seen forgotten first). */
  readonly maxRateTrackedClients: number;
  /** From dialing (or accepting) to an established channel. */
  readonly handshakeTimeoutMilliseconds: number;
  /** Plaintext packed into one record by the send path; a larger frame still gets a record of its own. */
  readonly maxCoalescedRecordBytes: number;
  /**
   * Rejection log lines (and event-handler failures) per offender and kind of reason: the first,
   * then at most one per this interval, carrying how many were suppressed (see RateLimitedLog).
   * `onRejection` still fires for every rejection.
   */
  readonly rejectionLogIntervalMilliseconds: number;
  /** Offender-and-reason keys the rejection log tracks; beyond, they share one catch-all key. */
  readonly maxRejectionLogKeys: number;
}

export const DEFAULT_TCP_TRANSPORT_LIMITS: TcpTransportLimits = {
  maxQueuedBytesPerPeer: 64 * 1024 * 1024,
  maxQueuedFramesPerPeer: 100_000,
  maxInboundConnections: 4096,
  maxPendingInboundHandshakes: 256,
  // Binds only once the 256 are taken (a host starting a hundred clients is not throttled before):
  // then an attacker needs 32 addresses to hold them all with shares of 8.
  maxPendingInboundHandshakesPerSource: 8,
  // A client reconnects with backoff (50 ms doubling to 2 s, reset only by a connection that
  // lasted 5 s): even one whose every connection drops opens about 8 in 10 s. Honest use goes
  // higher when several processes share one identity (a shell script running five `ledger`
  // commands at once as admin: each newer connection replaces the older, and each process redials)
  // and 30 refused such a burst (test/integration/packed-ledger.test.ts). At 100 the churn attack
  // kept 0.53 of the fault-free throughput and was refused after 9.4 s; at 50, 0.85 and 3.5 s
  // (`bench attack --attacks connection-churn`, 2026-12-02).
  maxConnectionsPerClient: 50,
  clientConnectionWindowMilliseconds: 10_000,
  clientRefusalMilliseconds: 30_000,
  maxRateTrackedClients: 4096,
  handshakeTimeoutMilliseconds: HANDSHAKE_LIMITS.handshakeTimeoutMilliseconds,
  maxCoalescedRecordBytes: 256 * 1024,
  rejectionLogIntervalMilliseconds: RATE_LIMITED_LOG_LIMITS.defaultIntervalMilliseconds,
  maxRejectionLogKeys: RATE_LIMITED_LOG_LIMITS.defaultMaxTrackedKeys,
};

/**
 * Delay before redialing a peer: doubles per failed attempt, with jitter. A replica resets it at
 * every handshake. For a client, a connection that ends within `stableConnectionMilliseconds` of
 * its handshake counts as a failed attempt too; only one that lasted resets the delay. Else a peer that closes every connection as soon as it is
 * made is redialed every 50 ms for ever: two processes sharing one client identity (each newer
 * connection replaces the older one at the replica) would replace each other's connections ten
 * times a second, and the replicas' connection-rate limit would refuse the identity for both.
 */
export interface ReconnectPolicy {
  readonly initialDelayMilliseconds: number;
  readonly maxDelayMilliseconds: number;
  readonly stableConnectionMilliseconds: number;
}

export const DEFAULT_RECONNECT_POLICY: ReconnectPolicy = {
  initialDelayMilliseconds: 50,
  maxDelayMilliseconds: 2000,
  stableConnectionMilliseconds: 5000,
};

/** Structured logging in pino's argument order, so a pino logger can be passed as is. */
export interface TransportLogger {
  debug(details: Record<string, unknown>, message: string): void;
  warn(details: Record<string, unknown>, message: string): void;
  error(details: Record<string, unknown>, message: string): void;
}

/** Without a logger only errors (a throwing event handler, an internal fault) reach stderr. */
const DEFAULT_LOGGER: TransportLogger = {
  debug() {},
  warn() {},
  error(details, message) {
    console.error(`transport: ${message}`, details);
  },
};

export interface TcpTransportOptions {
  readonly identity: ChannelIdentity;
  /** Replicas listen (port 0 picks a free port; see `listenAddress`); clients must not. */
  readonly listen?: { readonly host: string; readonly port: number };
  readonly peers: Iterable<PeerAddress>;
  readonly keys: ChannelKeyDirectory;
  readonly events: TransportEvents;
  readonly limits?: Partial<TcpTransportLimits>;
  readonly reconnect?: Partial<ReconnectPolicy>;
  readonly logger?: TransportLogger;
}

/**
 * Chooses connections for `TcpTransport.dropConnections`: `peer` is the node at the far end (the
 * authenticated one, else the one dialed or claimed in a HELLO), `session` what its handshake
 * proved, or null while the handshake is still under way.
 */
export type ConnectionFilter = (peer: NodeId, session: AuthenticatedPeer | null) => boolean;

/**
 * The connections to `node` that are not authenticated at `keyEpoch` or later: for a peer that has
 * moved to `keyEpoch`, the sessions its old key opened. Connections to it still in the handshake
 * are included too, as they may be about to complete under the old key; they are simply redone.
 */
export function sessionsBeforeKeyEpoch(node: NodeId, keyEpoch: KeyEpoch): ConnectionFilter {
  return (peer, session) => sameNode(peer, node) && (session === null || session.keyEpoch < keyEpoch);
}

/** TCP keep-alive probes start after this much silence, so a vanished peer is noticed eventually. */
const KEEP_ALIVE_INITIAL_DELAY_MILLISECONDS = 10_000;

/** 16-bit groups of an IPv6 address that name its source: the /64 network prefix. */
const IPV6_SOURCE_PREFIX_GROUPS = 4;

/**
 * The source an inbound connection counts under for `maxPendingInboundHandshakesPerSource` and in
 * rate-limited logs: its IPv4 address (IPv4-mapped IPv6 included), or the /64 prefix of an IPv6
 * address: a single IPv6 host usually holds a whole /64, so keyed by full address it could take
 * every slot anyway.
 */
export function connectionSource(address: string | undefined): string {
  if (address === undefined || address === '') return 'unknown';
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped !== null) return mapped[1]!;
  if (!address.includes(':')) return address;
  const withoutZone = address.split('%', 1)[0]!;
  const groupsOf = (part: string): string[] =>
    part === '' ? [] : part.split(':').flatMap((group) => (group.includes('.') ? ['0', '0'] : [group]));
  const compressed = withoutZone.indexOf('::');
  let groups: string[];
  if (compressed < 0) groups = groupsOf(withoutZone);
  else {
    const left = groupsOf(withoutZone.slice(0, compressed));
    const right = groupsOf(withoutZone.slice(compressed + 2));
    groups = [...left, ...Array<string>(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right];
  }
  const prefix = groups
    .slice(0, IPV6_SOURCE_PREFIX_GROUPS)
    .map((group) => (Number.parseInt(group, 16) || 0).toString(16));
  return `${prefix.join(':')}::/64`;
}

/**
 * What kind of refusal a reason is, its variable parts (numbers, quoted text, client names as
 * describeNode writes them) masked, so that a rate-limited log keys on the kind of input and not
 * on each variant of it: an attacker varying its claimed name still shares one key.
 */
export function rejectionKind(reason: string): string {
  return reason
    .replace(/"(?:[^"\\]|\\.)*"/g, '"…"')
    .replace(/\bclient (?!id\b)[A-Za-z0-9._-]+/g, 'client …')
    .replace(/\d+/g, 'N');
}

/** Frames waiting for a peer's socket: an array with a moving head, so dequeuing is O(1). */
class FrameQueue {
  #frames: Uint8Array[] = [];
  #head = 0;
  #bytes = 0;

  get length(): number {
    return this.#frames.length - this.#head;
  }

  get bytes(): number {
    return this.#bytes;
  }

  /** The backing array; queued frames are `items[head..]`. Valid until the next removeFront. */
  get items(): readonly Uint8Array[] {
    return this.#frames;
  }

  get head(): number {
    return this.#head;
  }

  push(frame: Uint8Array): void {
    this.#frames.push(frame);
    this.#bytes += frame.length;
  }

  removeFront(count: number, bytes: number): void {
    this.#head += count;
    this.#bytes -= bytes;
    if (this.#head === this.#frames.length) {
      this.#frames = [];
      this.#head = 0;
    } else if (this.#head > 4096 && this.#head * 2 > this.#frames.length) {
      // Compact now and then so a queue that never fully drains does not keep sent frames alive.
      this.#frames = this.#frames.slice(this.#head);
      this.#head = 0;
    }
  }

  clear(): void {
    this.#frames = [];
    this.#head = 0;
    this.#bytes = 0;
  }
}

/** Everything the transport keeps about one peer. */
interface PeerLink {
  readonly node: NodeId;
  readonly key: string;
  /** Set when this node dials the peer. */
  readonly address: PeerAddress | null;
  /** From the peers list: kept (with its queue) while disconnected. Clients learned from inbound connections are not. */
  readonly configured: boolean;
  active: Connection | null;
  /** An outbound attempt in progress (dialing or handshaking). */
  dialing: Connection | null;
  reconnectTimer: NodeJS.Timeout | null;
  failedAttempts: number;
  readonly queue: FrameQueue;
  /** The key epoch the peer last authenticated with: a higher one is a new process (see #onEstablished). */
  keyEpoch: KeyEpoch | null;
}

interface Connection {
  readonly socket: Socket;
  readonly channel: SecureChannel;
  readonly direction: 'inbound' | 'outbound';
  readonly remoteAddress: string;
  /** Inbound: the source counted in #pendingBySource while the handshake lasts (connectionSource). */
  readonly source: string | null;
  /** The dialed link for outbound connections; for inbound ones, set once established. */
  link: PeerLink | null;
  /** Outbound: the TCP connection is up (before that, failures are just "peer unreachable"). */
  socketConnected: boolean;
  established: boolean;
  /** When the handshake completed (performance.now()), for the reconnect policy's stability rule. */
  establishedAtMs: number;
  waitingForDrain: boolean;
  /** Detached from its link and destroyed; later events on it only finish the bookkeeping. */
  detached: boolean;
  /** A rejection was reported (or the close was ours), so closing it reports nothing more. */
  quiet: boolean;
  handshakeTimer: NodeJS.Timeout | null;
  socketError: string | null;
  readonly closed: Promise<void>;
}

interface MutableStatistics {
  framesSent: number;
  framesReceived: number;
  bytesSent: number;
  bytesReceived: number;
  framesDropped: number;
  handshakesRejected: number;
}

function checkPositiveInteger(value: number, name: string): void {
  if (!(Number.isSafeInteger(value) && value > 0))
    throw new InvariantViolation(`${name} must be a positive integer, got ${value}`);
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export class TcpTransport implements Transport {
  readonly #keys: ChannelKeyDirectory;
  readonly #events: TransportEvents;
  readonly #limits: TcpTransportLimits;
  readonly #reconnect: ReconnectPolicy;
  readonly #logger: TransportLogger;
  readonly #clientRate: ConnectionRateLimiter;
  /**
   * Links by peer, in two maps keyed by the bare id so that `send` finds a link without building a
   * key string per frame.
   */
  readonly #replicaLinks = new Map<number, PeerLink>();
  readonly #clientLinks = new Map<string, PeerLink>();
  readonly #connections = new Set<Connection>();
  readonly #dirtyLinks = new Set<PeerLink>();
  readonly #statistics: MutableStatistics = {
    framesSent: 0,
    framesReceived: 0,
    bytesSent: 0,
    bytesReceived: 0,
    framesDropped: 0,
    handshakesRejected: 0,
  };
  #identity: ChannelIdentity;
  #server: Server | null = null;
  #pendingInboundHandshakes = 0;
  /** Pending inbound handshakes per source, oldest first; an entry goes when its set empties. */
  readonly #pendingBySource = new Map<string, Set<Connection>>();
  readonly #rejectionLog: RateLimitedLog;
  /** Reports counts the rejection log suppressed at the end of a burst; set only while some are owed. */
  #rejectionSummaryTimer: NodeJS.Timeout | null = null;
  #flushImmediate: NodeJS.Immediate | null = null;
  #closing: Promise<void> | null = null;
  /** Set the moment close() is called; from then on nothing is started and no event fires. */
  #closed = false;

  private constructor(options: TcpTransportOptions) {
    this.#identity = options.identity;
    this.#keys = options.keys;
    this.#events = options.events;
    this.#limits = { ...DEFAULT_TCP_TRANSPORT_LIMITS, ...options.limits };
    this.#reconnect = { ...DEFAULT_RECONNECT_POLICY, ...options.reconnect };
    this.#logger = options.logger ?? DEFAULT_LOGGER;
    for (const [name, value] of Object.entries(this.#limits)) checkPositiveInteger(value, name);
    this.#clientRate = new ConnectionRateLimiter({
      maxConnectionsPerWindow: this.#limits.maxConnectionsPerClient,
      windowMilliseconds: this.#limits.clientConnectionWindowMilliseconds,
      refusalMilliseconds: this.#limits.clientRefusalMilliseconds,
      maxTrackedClients: this.#limits.maxRateTrackedClients,
    });
    this.#rejectionLog = new RateLimitedLog({
      intervalMilliseconds: this.#limits.rejectionLogIntervalMilliseconds,
      maxTrackedKeys: this.#limits.maxRejectionLogKeys,
    });
    checkPositiveInteger(this.#reconnect.initialDelayMilliseconds, 'initialDelayMilliseconds');
    checkPositiveInteger(this.#reconnect.maxDelayMilliseconds, 'maxDelayMilliseconds');
    checkPositiveInteger(this.#reconnect.stableConnectionMilliseconds, 'stableConnectionMilliseconds');
    if (this.#limits.maxCoalescedRecordBytes > MAX_RECORD_PLAINTEXT_BYTES) {
      throw new InvariantViolation(`maxCoalescedRecordBytes must be at most ${MAX_RECORD_PLAINTEXT_BYTES}`);
    }
    checkChannelIdentity(options.identity);
    const self = options.identity.node;
    if (self.kind === 'client' && options.listen !== undefined) {
      throw new InvariantViolation('clients do not listen: replicas answer on the connection a client opens');
    }
    for (const peer of options.peers) {
      if (peer.node.kind !== 'replica') {
        throw new InvariantViolation(`peer ${describeNode(peer.node)}: only replicas are dialed`);
      }
      if (sameNode(peer.node, self)) continue;
      const key = nodeKey(peer.node);
      if (this.#linkOf(peer.node) !== undefined)
        throw new InvariantViolation(`peer ${describeNode(peer.node)} is listed twice`);
      // The lower replica id dials; a client dials every replica.
      const dialsPeer = self.kind === 'client' || self.id < peer.node.id;
      this.#addLink({
        node: peer.node,
        key,
        address: dialsPeer ? peer : null,
        configured: true,
        active: null,
        dialing: null,
        reconnectTimer: null,
        failedAttempts: 0,
        queue: new FrameQueue(),
        keyEpoch: null,
      });
    }
  }

  /** Listens (if asked), starts dialing its peers, and resolves once listening. */
  static async start(options: TcpTransportOptions): Promise<TcpTransport> {
    const transport = new TcpTransport(options);
    if (options.listen !== undefined) await transport.#listen(options.listen.host, options.listen.port);
    for (const link of transport.#allLinks()) if (link.address !== null) transport.#dial(link);
    return transport;
  }

  // ───────────────────────────── Transport ─────────────────────────────

  send(to: NodeId, frame: Uint8Array): boolean {
    if (this.#closed) return false;
    const link = this.#linkOf(to);
    if (link === undefined) return false;
    const queue = link.queue;
    if (
      frame.length > LIMITS.maxFrameBytes ||
      queue.length >= this.#limits.maxQueuedFramesPerPeer ||
      queue.bytes + frame.length > this.#limits.maxQueuedBytesPerPeer
    ) {
      this.#statistics.framesDropped++;
      if (frame.length > LIMITS.maxFrameBytes) {
        this.#logger.warn(
          { peer: link.key, frameBytes: frame.length, maxFrameBytes: LIMITS.maxFrameBytes },
          'frame exceeds maxFrameBytes; dropped',
        );
      }
      return false;
    }
    queue.push(frame);
    const connection = link.active;
    if (connection !== null && !connection.waitingForDrain) this.#scheduleFlush(link);
    return true;
  }

  connectedPeers(): NodeId[] {
    const peers: NodeId[] = [];
    for (const link of this.#allLinks()) if (link.active !== null) peers.push(link.node);
    return peers;
  }

  statistics(): TransportStatistics {
    let connectedPeers = 0;
    for (const link of this.#allLinks()) if (link.active !== null) connectedPeers++;
    return { ...this.#statistics, connectedPeers };
  }

  /**
   * Stops listening, destroys every connection (frames still queued are lost) and cancels every
   * timer; resolves once every socket and the listener are closed. No events fire once called.
   */
  close(): Promise<void> {
    if (this.#closing !== null) return this.#closing;
    this.#closing = this.#closeEverything();
    return this.#closing;
  }

  // ───────────────────────────── beyond Transport ─────────────────────────────

  /** The address actually listened on (the port chosen when 0 was asked), or null. */
  listenAddress(): { host: string; port: number } | null {
    const address = this.#server?.address();
    if (address === null || address === undefined || typeof address === 'string') return null;
    return { host: address.address, port: address.port };
  }

  /**
   * Closes the connections (established or still in the handshake) that `filter` chooses (all
   * when omitted), so they are re-established with a fresh handshake under the keys the directory
   * and `setIdentity` hold now: after a key epoch change, old session keys stop working. The
   * filter sees each connection's authenticated session, hence the epoch its peer proved (see
   * `sessionsBeforeKeyEpoch`). Dialed peers are redialed; others are expected to redial. Returns
   * how many were closed.
   */
  dropConnections(filter?: ConnectionFilter): number {
    let dropped = 0;
    for (const connection of [...this.#connections]) {
      if (connection.detached) continue;
      const session = connection.established ? connection.channel.peer : null;
      const peer = session?.node ?? connection.channel.claimedPeer;
      // A connection whose HELLO has not arrived yet names no one; it is dropped too, as it may
      // be about to authenticate under an old key.
      if (filter !== undefined && peer !== null && !filter(peer, session)) continue;
      // Dropped by our own decision, not the peer's: redialed at once, however young it was.
      if (connection.link !== null) connection.link.failedAttempts = 0;
      this.#closeConnection(connection, 'dropped on request (re-handshake)', false);
      dropped++;
    }
    return dropped;
  }

  /**
   * Replaces this node's channel identity (same node; a new key epoch, key and certificate) for
   * handshakes from now on. Connections already open, or still in their handshake, keep the
   * identity they started with: follow with `dropConnections()` to end them.
   */
  setIdentity(identity: ChannelIdentity): void {
    if (!sameNode(identity.node, this.#identity.node)) {
      throw new InvariantViolation(
        `setIdentity: ${describeNode(identity.node)} is not ${describeNode(this.#identity.node)}`,
      );
    }
    checkChannelIdentity(identity);
    this.#identity = identity;
  }

  /** This node's channel identity, as new handshakes present it. */
  identity(): ChannelIdentity {
    return this.#identity;
  }

  /** What the handshake of the connection in use to `peer` proved, or null when not connected. */
  session(peer: NodeId): AuthenticatedPeer | null {
    return this.#linkOf(peer)?.active?.channel.peer ?? null;
  }

  /** What is queued for `peer` and not yet written to its socket, or null for an unknown peer. */
  outboundQueue(peer: NodeId): { frames: number; bytes: number } | null {
    const link = this.#linkOf(peer);
    return link === undefined ? null : { frames: link.queue.length, bytes: link.queue.bytes };
  }

  #linkOf(node: NodeId): PeerLink | undefined {
    return node.kind === 'replica' ? this.#replicaLinks.get(node.id) : this.#clientLinks.get(node.id);
  }

  #addLink(link: PeerLink): void {
    const node = link.node;
    if (node.kind === 'replica') this.#replicaLinks.set(node.id, link);
    else this.#clientLinks.set(node.id, link);
  }

  #removeLink(link: PeerLink): void {
    const node = link.node;
    if (node.kind === 'replica') this.#replicaLinks.delete(node.id);
    else this.#clientLinks.delete(node.id);
  }

  *#allLinks(): IterableIterator<PeerLink> {
    yield* this.#replicaLinks.values();
    yield* this.#clientLinks.values();
  }

  // ───────────────────────────── listening and dialing ─────────────────────────────

  async #listen(host: string, port: number): Promise<void> {
    const server = createServer({ noDelay: true });
    server.maxConnections = this.#limits.maxInboundConnections;
    server.on('connection', (socket) => this.#onInbound(socket));
    server.on('drop', (data) => {
      const remote = data === undefined ? 'unknown' : `${data.remoteAddress}:${data.remotePort}`;
      this.#report(
        null,
        remote,
        `too many inbound connections (maxInboundConnections ${this.#limits.maxInboundConnections})`,
        connectionSource(data?.remoteAddress),
      );
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host, port }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (error) => this.#logger.error({ error: errorMessage(error) }, 'listener error'));
    this.#server = server;
  }

  #onInbound(socket: Socket): void {
    const remoteAddress = `${socket.remoteAddress}:${socket.remotePort}`;
    if (this.#closed) {
      socket.destroy();
      return;
    }
    const source = connectionSource(socket.remoteAddress);
    const refusal = this.#makeRoomForHandshake(source);
    if (refusal !== null) {
      socket.on('error', () => {});
      socket.destroy();
      this.#statistics.handshakesRejected++;
      this.#report(null, remoteAddress, refusal, source);
      return;
    }
    this.#pendingInboundHandshakes++;
    const channel = SecureChannel.responder({
      identity: this.#identity,
      keys: this.#keys,
      admit: (claimed) => this.#admit(claimed),
    });
    const connection = this.#setUpConnection(socket, channel, 'inbound', remoteAddress, null, source);
    let pending = this.#pendingBySource.get(source);
    if (pending === undefined) {
      pending = new Set();
      this.#pendingBySource.set(source, pending);
    }
    pending.add(connection);
  }

  /**
   * Whether a new inbound connection from `source` may start a handshake: null when it may (after
   * evicting another source's oldest pending handshake if the budget was full), else why not.
   */
  #makeRoomForHandshake(source: string): string | null {
    const { maxPendingInboundHandshakes, maxPendingInboundHandshakesPerSource } = this.#limits;
    if (this.#pendingInboundHandshakes < maxPendingInboundHandshakes) return null;
    if ((this.#pendingBySource.get(source)?.size ?? 0) >= maxPendingInboundHandshakesPerSource) {
      return `too many connections in the handshake from ${source} (maxPendingInboundHandshakesPerSource ${maxPendingInboundHandshakesPerSource})`;
    }
    // The budget is full: the source holding the most beyond its share gives up its oldest.
    let hog: Set<Connection> | null = null;
    let hogSource = '';
    for (const [candidate, pending] of this.#pendingBySource) {
      if (pending.size > maxPendingInboundHandshakesPerSource && pending.size > (hog?.size ?? 0)) {
        hog = pending;
        hogSource = candidate;
      }
    }
    const oldest = hog?.values().next().value;
    if (oldest === undefined) {
      return `too many connections in the handshake (maxPendingInboundHandshakes ${maxPendingInboundHandshakes})`;
    }
    this.#rejectConnection(
      oldest,
      `evicted from the handshake: the pending handshakes are full and ${hogSource} holds more than its share (maxPendingInboundHandshakesPerSource ${maxPendingInboundHandshakesPerSource})`,
    );
    return null;
  }

  /** An inbound connection left the handshake (established, or closed): its slots are free again. */
  #inboundHandshakeEnded(connection: Connection): void {
    this.#pendingInboundHandshakes--;
    const source = connection.source;
    if (source === null) return;
    const pending = this.#pendingBySource.get(source);
    pending?.delete(connection);
    if (pending?.size === 0) this.#pendingBySource.delete(source);
  }

  /**
   * Who may dial this node: clients, and replicas with a lower id than this one. Whether the
   * claimed identity exists at all is the key directory's to say, in the handshake that follows.
   */
  #admit(claimed: NodeId): string | null {
    if (claimed.kind === 'client') return this.#clientRate.refusal(nodeKey(claimed), performance.now());
    const self = this.#identity.node;
    if (self.kind === 'replica' && claimed.id > self.id) {
      return `${describeNode(claimed)} must not dial ${describeNode(self)}: the lower replica id dials`;
    }
    return null;
  }

  #dial(link: PeerLink): void {
    link.reconnectTimer = null;
    const address = link.address;
    if (this.#closed || address === null || link.active !== null || link.dialing !== null) return;
    const socket = dial({ host: address.host, port: address.port });
    const channel = SecureChannel.initiator({
      identity: this.#identity,
      expectedPeer: link.node,
      keys: this.#keys,
    });
    const connection = this.#setUpConnection(
      socket,
      channel,
      'outbound',
      `${address.host}:${address.port}`,
      link,
    );
    link.dialing = connection;
    socket.once('connect', () => {
      connection.socketConnected = true;
      for (const bytes of channel.start()) socket.write(bytes);
    });
  }

  #scheduleReconnect(link: PeerLink): void {
    if (this.#closed || link.address === null || link.reconnectTimer !== null) return;
    const { initialDelayMilliseconds, maxDelayMilliseconds } = this.#reconnect;
    const exponent = Math.min(link.failedAttempts, 30);
    const ceiling = Math.min(maxDelayMilliseconds, initialDelayMilliseconds * 2 ** exponent);
    // Jitter over the upper half, so peers that lost each other at the same moment do not redial in lockstep.
    const half = Math.floor(ceiling / 2);
    const delay = half + randomInt(0, ceiling - half + 1);
    link.failedAttempts++;
    link.reconnectTimer = setTimeout(() => this.#dial(link), delay);
  }

  // ───────────────────────────── connections ─────────────────────────────

  #setUpConnection(
    socket: Socket,
    channel: SecureChannel,
    direction: 'inbound' | 'outbound',
    remoteAddress: string,
    link: PeerLink | null,
    source: string | null = null,
  ): Connection {
    let markClosed: () => void = () => {};
    const closed = new Promise<void>((resolve) => {
      markClosed = resolve;
    });
    const connection: Connection = {
      socket,
      channel,
      direction,
      remoteAddress,
      source,
      link,
      socketConnected: direction === 'inbound',
      established: false,
      establishedAtMs: 0,
      waitingForDrain: false,
      detached: false,
      quiet: false,
      handshakeTimer: null,
      socketError: null,
      closed,
    };
    this.#connections.add(connection);
    socket.setNoDelay(true);
    socket.setKeepAlive(true, KEEP_ALIVE_INITIAL_DELAY_MILLISECONDS);
    connection.handshakeTimer = setTimeout(() => {
      connection.handshakeTimer = null;
      if (connection.established || connection.detached) return;
      const timeout = this.#limits.handshakeTimeoutMilliseconds;
      if (!connection.socketConnected) {
        this.#logger.debug({ peer: link?.key, remoteAddress }, `no TCP connection within ${timeout} ms`);
        this.#closeConnection(connection, 'connect timeout', false);
        return;
      }
      this.#rejectConnection(connection, `handshake did not complete within ${timeout} ms`);
    }, this.#limits.handshakeTimeoutMilliseconds);
    socket.on('data', (chunk: Buffer) => this.#onData(connection, chunk));
    socket.on('drain', () => {
      connection.waitingForDrain = false;
      const current = connection.link;
      if (current !== null && current.active === connection) this.#flushLink(current);
    });
    socket.on('error', (error) => {
      connection.socketError = errorMessage(error);
    });
    socket.on('close', () => {
      this.#connections.delete(connection);
      this.#onClosed(connection);
      markClosed();
    });
    return connection;
  }

  #onData(connection: Connection, chunk: Buffer): void {
    if (connection.detached || this.#closed) return;
    const step = connection.channel.receive(chunk);
    for (const bytes of step.outgoing) connection.socket.write(bytes);
    if (step.established !== null) this.#onEstablished(connection, step.established);
    if (connection.detached) return;
    const peer = connection.channel.peer;
    if (peer !== null && step.frames.length > 0) {
      for (const frame of step.frames) {
        if (this.#closed) break;
        this.#statistics.framesReceived++;
        this.#statistics.bytesReceived += frame.length;
        try {
          this.#events.onFrame(peer.node, frame);
        } catch (error) {
          this.#handlerThrew('onFrame', nodeKey(peer.node), error);
        }
      }
    }
    if (step.failure !== null) this.#rejectConnection(connection, step.failure);
  }

  #onEstablished(connection: Connection, peer: AuthenticatedPeer): void {
    if (connection.handshakeTimer !== null) clearTimeout(connection.handshakeTimer);
    connection.handshakeTimer = null;
    connection.established = true;
    connection.establishedAtMs = performance.now();
    let link = connection.link;
    if (connection.direction === 'inbound') {
      this.#inboundHandshakeEnded(connection);
      const key = nodeKey(peer.node);
      if (peer.node.kind === 'client') {
        const refusal = this.#clientRate.established(key, performance.now());
        if (refusal !== null) {
          this.#rejectConnection(connection, refusal);
          return;
        }
      }
      link = this.#linkOf(peer.node) ?? null;
      if (link === null) {
        // A client, or a replica missing from the peers list: known while its connection lasts.
        link = {
          node: peer.node,
          key,
          address: null,
          configured: false,
          active: null,
          dialing: null,
          reconnectTimer: null,
          failedAttempts: 0,
          queue: new FrameQueue(),
          keyEpoch: null,
        };
        this.#addLink(link);
      }
      connection.link = link;
    }
    if (link === null) throw new InvariantViolation('an outbound connection always has its link');
    if (link.dialing === connection) link.dialing = null;
    // A replica's links to its peers: a handshake resets the backoff at once, so that a peer back
    // from a restart or a rejuvenation is redialed fast. A client's links reset only once a
    // connection lasted (ReconnectPolicy).
    if (this.#identity.node.kind === 'replica') link.failedAttempts = 0;
    if (link.keyEpoch !== null && peer.keyEpoch > link.keyEpoch && link.queue.length > 0) {
      // A peer back with a newer key epoch is a new process (a rejuvenated replica): the frames
      // queued while it was away were meant for the process that is gone. The new one catches up
      // by state transfer, and flushing it seconds of stale protocol traffic (megabytes, each
      // frame to decrypt, decode and discard) would only slow its recovery and its peers.
      const frames = link.queue.length;
      const bytes = link.queue.bytes;
      this.#statistics.framesDropped += frames;
      link.queue.clear();
      this.#logger.debug(
        { peer: link.key, keyEpoch: peer.keyEpoch, previousKeyEpoch: link.keyEpoch, frames, bytes },
        'peer is a new process (newer key epoch): frames queued for the old one dropped',
      );
    }
    link.keyEpoch = peer.keyEpoch;
    const previous = link.active;
    link.active = connection;
    this.#logger.debug(
      {
        peer: link.key,
        keyEpoch: peer.keyEpoch,
        admittedByCertificate: peer.admittedByCertificate,
        remoteAddress: connection.remoteAddress,
        direction: connection.direction,
      },
      previous === null ? 'peer connected' : 'peer reconnected; older connection replaced',
    );
    if (previous !== null) {
      this.#closeConnection(previous, 'replaced by a newer connection from the same peer', false);
    } else {
      this.#emitPeerState(link.node, true);
    }
    if (link.queue.length > 0) this.#scheduleFlush(link);
  }

  /** Reports `reason` (once) and closes the connection. */
  #rejectConnection(connection: Connection, reason: string): void {
    if (connection.detached) return;
    if (!connection.quiet) {
      connection.quiet = true;
      if (!connection.established) this.#statistics.handshakesRejected++;
      this.#report(this.#reportedPeer(connection), connection.remoteAddress, reason, connection.source);
    }
    this.#closeConnection(connection, reason, false);
  }

  /**
   * The peer named in a rejection: the authenticated one, or the one this node dialed; null for an
   * inbound connection that never authenticated (its claim is in the reason text, not trusted here).
   */
  #reportedPeer(connection: Connection): NodeId | null {
    if (connection.established) return connection.channel.peer?.node ?? null;
    return connection.direction === 'outbound' ? (connection.link?.node ?? null) : null;
  }

  /** Detaches the connection from its link at once and destroys its socket. Idempotent. */
  #closeConnection(connection: Connection, reason: string, report: boolean): void {
    if (connection.detached) return;
    if (!report) connection.quiet = true;
    this.#detach(connection, reason);
    connection.socket.destroy();
  }

  #onClosed(connection: Connection): void {
    if (this.#closed) return;
    const claimed = connection.channel.claimedPeer;
    // The far end hung up mid-handshake: typically it refused this node's key or identity. An
    // inbound socket closed before sending a HELLO (a port probe, a health check) is not reported.
    const hungUpMidHandshake =
      !connection.established &&
      connection.socketConnected &&
      (connection.direction === 'outbound' || claimed !== null);
    if (!connection.detached && !connection.quiet && hungUpMidHandshake) {
      connection.quiet = true;
      this.#statistics.handshakesRejected++;
      const who =
        connection.direction === 'outbound' && claimed !== null ? describeNode(claimed) : 'the peer';
      const detail = connection.socketError === null ? '' : ` (${connection.socketError})`;
      this.#report(
        this.#reportedPeer(connection),
        connection.remoteAddress,
        `${who} closed the connection during the handshake${detail}`,
        connection.source,
      );
    }
    this.#detach(connection, connection.socketError ?? 'closed');
  }

  #detach(connection: Connection, reason: string): void {
    if (connection.detached) return;
    connection.detached = true;
    connection.channel.fail(reason);
    if (connection.handshakeTimer !== null) clearTimeout(connection.handshakeTimer);
    connection.handshakeTimer = null;
    if (connection.direction === 'inbound' && !connection.established)
      this.#inboundHandshakeEnded(connection);
    if (this.#closed) return;
    const link = connection.link;
    if (link === null) return;
    if (link.dialing === connection) link.dialing = null;
    if (link.active === connection) {
      link.active = null;
      if (performance.now() - connection.establishedAtMs >= this.#reconnect.stableConnectionMilliseconds)
        link.failedAttempts = 0;
      this.#dirtyLinks.delete(link);
      this.#logger.debug({ peer: link.key, reason }, 'peer disconnected');
      if (!link.configured) {
        link.queue.clear();
        this.#removeLink(link);
      }
      this.#emitPeerState(link.node, false);
    }
    if (link.address !== null && link.active === null && link.dialing === null) this.#scheduleReconnect(link);
  }

  // ───────────────────────────── sending ─────────────────────────────

  #scheduleFlush(link: PeerLink): void {
    this.#dirtyLinks.add(link);
    this.#flushImmediate ??= setImmediate(() => this.#flushDirtyLinks());
  }

  #flushDirtyLinks(): void {
    this.#flushImmediate = null;
    for (const link of this.#dirtyLinks) this.#flushLink(link);
    this.#dirtyLinks.clear();
  }

  /** Packs the queue into records and writes them until it is empty or the socket pushes back. */
  #flushLink(link: PeerLink): void {
    const connection = link.active;
    if (connection === null || connection.waitingForDrain || connection.detached) return;
    const queue = link.queue;
    const maxRecordBytes = this.#limits.maxCoalescedRecordBytes;
    try {
      while (queue.length > 0) {
        const frames = queue.items;
        const start = queue.head;
        let end = start;
        let plaintextBytes = 0;
        while (end < frames.length) {
          const size = FRAME_HEADER_BYTES + frames[end]!.length;
          if (end > start && plaintextBytes + size > maxRecordBytes) break;
          plaintextBytes += size;
          end++;
        }
        const record = connection.channel.seal(frames, start, end);
        const frameCount = end - start;
        const frameBytes = plaintextBytes - frameCount * FRAME_HEADER_BYTES;
        queue.removeFront(frameCount, frameBytes);
        this.#statistics.framesSent += frameCount;
        this.#statistics.bytesSent += frameBytes;
        if (!connection.socket.write(record)) {
          connection.waitingForDrain = true;
          return;
        }
      }
    } catch (error) {
      this.#logger.error({ peer: link.key, error: errorMessage(error) }, 'could not seal a record');
      this.#closeConnection(connection, `could not seal a record: ${errorMessage(error)}`, false);
    }
  }

  // ───────────────────────────── events and shutdown ─────────────────────────────

  /**
   * Reports a rejection: `onRejection` every time, a warn line rate-limited per offender (the
   * authenticated or dialed peer, else the connection's source) and kind of reason, so that a
   * flood of hostile connections or frames costs the log a few lines, not one per attempt.
   */
  #report(peer: NodeId | null, remoteAddress: string, reason: string, source: string | null = null): void {
    if (this.#closed) return;
    const peerKey = peer === null ? null : nodeKey(peer);
    const offender = peerKey ?? source ?? remoteAddress;
    this.#logLimited(`${offender} ${rejectionKind(reason)}`, (suppressed, limitedAs) =>
      this.#logger.warn({ peer: peerKey, remoteAddress, reason, suppressed, ...limitedAs }, 'rejected'),
    );
    try {
      this.#events.onRejection?.(peer, remoteAddress, reason);
    } catch (error) {
      this.#handlerThrew('onRejection', peerKey ?? offender, error);
    }
  }

  /** A throwing event handler is a bug, logged at error level, rate-limited like rejections. */
  #handlerThrew(handler: string, peer: string, error: unknown): void {
    const message = errorMessage(error);
    this.#logLimited(`${peer} ${handler} threw ${rejectionKind(message)}`, (suppressed, limitedAs) =>
      this.#logger.error({ peer, error: message, suppressed, ...limitedAs }, `${handler} handler threw`),
    );
  }

  /** Writes a line through the rejection log's rate limit (`limitedAs` names a catch-all key). */
  #logLimited(
    key: string,
    write: (suppressed: number, limitedAs: { readonly limitedAs?: string }) => void,
  ): void {
    const permit = this.#rejectionLog.admit(key);
    if (permit === null) {
      this.#scheduleRejectionSummary();
      return;
    }
    write(permit.suppressed, permit.key === OVERFLOW_KEY ? { limitedAs: OVERFLOW_KEY } : {});
  }

  /** Counts suppressed at the end of a burst are written once their interval is over. */
  #scheduleRejectionSummary(): void {
    if (this.#rejectionSummaryTimer !== null || this.#closed) return;
    this.#rejectionSummaryTimer = setTimeout(() => {
      this.#rejectionSummaryTimer = null;
      if (this.#closed) return;
      for (const owed of this.#rejectionLog.overdue()) {
        this.#logger.warn(
          { key: owed.key, suppressed: owed.suppressed },
          'rejections suppressed by the log rate limit',
        );
      }
      if (this.#rejectionLog.owesCounts) this.#scheduleRejectionSummary();
    }, this.#limits.rejectionLogIntervalMilliseconds);
    this.#rejectionSummaryTimer.unref();
  }

  #emitPeerState(peer: NodeId, connected: boolean): void {
    try {
      this.#events.onPeerStateChange?.(peer, connected);
    } catch (error) {
      this.#handlerThrew('onPeerStateChange', nodeKey(peer), error);
    }
  }

  /** Runs with `#closing` still null until its first await: everything it calls checks `#closed`. */
  async #closeEverything(): Promise<void> {
    this.#closed = true;
    if (this.#rejectionSummaryTimer !== null) clearTimeout(this.#rejectionSummaryTimer);
    this.#rejectionSummaryTimer = null;
    if (this.#flushImmediate !== null) clearImmediate(this.#flushImmediate);
    this.#flushImmediate = null;
    this.#dirtyLinks.clear();
    for (const link of this.#allLinks()) {
      if (link.reconnectTimer !== null) clearTimeout(link.reconnectTimer);
      link.reconnectTimer = null;
    }
    const waits: Promise<void>[] = [];
    for (const connection of this.#connections) {
      waits.push(connection.closed);
      connection.quiet = true;
      this.#detach(connection, 'transport closed');
      connection.socket.destroy();
    }
    const server = this.#server;
    if (server !== null) waits.push(new Promise<void>((resolve) => server.close(() => resolve())));
    await Promise.all(waits);
    for (const link of this.#allLinks()) {
      link.active = null;
      link.dialing = null;
      link.queue.clear();
    }
  }
}
