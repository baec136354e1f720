/**
 * A replica process: the pure core driven by a real clock, TCP transport, disk and crypto.
 *
 * The node feeds the core three kinds of events (authenticated frames from replicas and clients,
 * and a tick every TICK_MS) and carries out the actions it returns. Persist-before-send is kept
 * with group commit: persists go to storage at once, but any send that follows a persist waits
 * until a flush (one fsync for everything queued in this event-loop turn) has made it durable.
 *
 * Usage:
 * ```ts
 * const node = await ReplicaNode.start({ config, id: replicaId(0), keys, logger });
 * // ... later
 * await node.close();
 * ```
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { KvService } from '../apps/kv/service.js';
import { accessControlOf, type ClusterConfig, replicaDataDirectory } from '../config/cluster-config.js';
import { keyRegistryOf, type ReplicaKeyFile } from '../config/keys.js';
import { type Action, mustPrecedeSends } from '../core/actions.js';
import type { ReplicaEvent } from '../core/events.js';
import { bytesEqual, keyEpoch, type ReplicaId } from '../core/ids.js';
import { Replica } from '../core/replica.js';
import type { KeyRegistry } from '../crypto/key-registry.js';
import { ReplicaCrypto } from '../crypto/replica-crypto.js';
import { decodeMessage, encodeMessage } from '../messages/codec.js';
import { openStorage } from '../storage/open.js';
import type { ReplicaStorage } from '../storage/storage.js';
import { TcpTransport } from '../transport/tcp.js';
import {
  type ChannelKeyDirectory,
  clientNode,
  type NodeId,
  replicaNode,
  type Transport,
} from '../transport/transport.js';
import { ReplicaMetrics } from './metrics.js';
import type { ReplicaStatus } from './status.js';

export const TICK_MS = 10;
/** Sends held back behind an unfinished flush; beyond this the node is overloaded and drops. */
export const MAX_HELD_SENDS = 200_000;
/** Longest a commit decision waits in memory when no other record forces a flush. */
export const LAZY_FLUSH_DELAY_MS = 20;

export interface ReplicaNodeOptions {
  readonly config: ClusterConfig;
  readonly id: ReplicaId;
  readonly keys: ReplicaKeyFile;
  readonly logger: Logger;
  /** Data folder; defaults to the configuration's data folder for this replica. */
  readonly dataDirectory?: string;
  /** The disk was lost or is not trusted: see ReplicaOptions.amnesiac. */
  readonly amnesiac?: boolean;
}

/** Which channel keys peers may present: the current key epoch of each replica, each client's key. */
export function channelKeyDirectory(registry: KeyRegistry): ChannelKeyDirectory {
  return {
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

type Send = () => void;

export class ReplicaNode {
  readonly id: ReplicaId;
  readonly config: ClusterConfig;
  readonly #logger: Logger;
  readonly #crypto: ReplicaCrypto;
  readonly #replica: Replica;
  readonly #storage: ReplicaStorage;
  readonly #metrics: ReplicaMetrics;
  #transport: Transport | null = null;
  #admin: Server | null = null;
  #ticker: NodeJS.Timeout | null = null;
  readonly #startedAt = performance.now();
  /** Persists appended since the last flush started. */
  #unflushed = false;
  #flushing = false;
  /** Sends waiting for the flush that makes their preceding persists durable. */
  #held: Send[] = [];
  /** Records appended that no send waits for (commit decisions), not yet flushed. */
  #lazyAppends = false;
  #lazyFlushTimer: NodeJS.Timeout | null = null;
  #closed = false;

  private constructor(
    options: ReplicaNodeOptions,
    storage: ReplicaStorage,
    replica: Replica,
    crypto: ReplicaCrypto,
  ) {
    this.id = options.id;
    this.config = options.config;
    this.#logger = options.logger;
    this.#storage = storage;
    this.#replica = replica;
    this.#crypto = crypto;
    this.#metrics = new ReplicaMetrics(options.id);
  }

  static async start(options: ReplicaNodeOptions): Promise<ReplicaNode> {
    const { config, id, keys, logger } = options;
    if (keys.replica !== id) throw new Error(`key file is for replica ${keys.replica}, not ${id}`);
    const configured = config.replicas[id]!;
    if (
      !bytesEqual(keys.sessionKeys.signing.publicKey.bytes, configured.signingKey) ||
      !bytesEqual(keys.sessionKeys.agreement.publicKey.bytes, configured.agreementKey)
    ) {
      throw new Error(
        `the key file's public keys are not replica ${id}'s keys in ${config.source}: ` +
          'the other replicas would refuse this replica (wrong key file, or a configuration from another cluster)',
      );
    }
    const registry = keyRegistryOf(config);
    const crypto = new ReplicaCrypto({
      replica: id,
      registry,
      epoch: keyEpoch(0),
      sessionKeys: keys.sessionKeys,
    });
    const storage = await openStorage({
      engine: config.storage.engine,
      directory: options.dataDirectory ?? replicaDataDirectory(config, id),
    });
    const loaded = await storage.load();
    if (loaded.corruptRecords > 0 || loaded.corruptChunks > 0) {
      logger.warn(
        { corruptRecords: loaded.corruptRecords, corruptChunks: loaded.corruptChunks },
        'durable state has corrupt parts; they will be repaired from other replicas',
      );
    }
    const replica = new Replica({
      config: config.protocol,
      id,
      crypto,
      service: new KvService({ accessControl: accessControlOf(config) }),
      ...(loaded.restored === undefined ? {} : { restored: loaded.restored }),
      amnesiac: options.amnesiac === true,
    });
    const node = new ReplicaNode(options, storage, replica, crypto);
    const self = config.replicas[id]!;
    node.#transport = await TcpTransport.start({
      identity: {
        node: replicaNode(id),
        keyEpoch: crypto.currentEpoch,
        signingKeys: keys.sessionKeys.signing,
      },
      listen: { host: self.host, port: self.port },
      peers: config.replicas
        .filter((peer) => peer.id !== id)
        .map((peer) => ({ node: replicaNode(peer.id), host: peer.host, port: peer.port })),
      keys: channelKeyDirectory(registry),
      events: {
        onFrame: (from, frame) => node.#onFrame(from, frame),
        onPeerStateChange: (peer, connected) => logger.debug({ peer, connected }, 'peer connection changed'),
        onRejection: (peer, remoteAddress, reason) => {
          node.#metrics.rejected('connection');
          logger.warn({ peer, remoteAddress, reason }, 'rejected connection or frame');
        },
      },
    });
    node.#admin = await node.#startAdmin(self.adminHost, self.adminPort);
    node.#ticker = setInterval(
      () => node.#step({ kind: 'tick', now: Math.floor(performance.now()) }),
      TICK_MS,
    );
    node.#step({ kind: 'tick', now: Math.floor(performance.now()) });
    logger.info(
      {
        replica: id,
        address: `${self.host}:${self.port}`,
        admin: `${self.adminHost}:${self.adminPort}`,
        view: replica.view,
        lastExecuted: replica.lastExecuted,
      },
      'replica started',
    );
    return node;
  }

  get adminUrl(): string {
    const address = this.#admin?.address() as AddressInfo | null;
    return `http://${this.config.replicas[this.id]!.adminHost}:${address?.port ?? 0}`;
  }

  status(): ReplicaStatus {
    const replica = this.#replica;
    const self = this.config.replicas[this.id]!;
    return {
      replica: this.id,
      role: replica.isLeader ? 'leader' : 'backup',
      view: replica.view,
      viewChangeInProgress: replica.viewChangeInProgress,
      lastExecuted: replica.lastExecuted,
      stableCheckpoint: replica.stableCheckpoint.sequence,
      stateTransferInProgress: replica.stateTransferInProgress,
      pendingRequests: replica.pendingRequestCount,
      requestsExecuted: this.#metrics.requestsExecuted,
      throughputPerSecond: this.#metrics.throughputPerSecond(),
      keyEpoch: this.#crypto.currentEpoch,
      connectedPeers: this.#transport?.connectedPeers().length ?? 0,
      uptimeSeconds: Math.round((performance.now() - this.#startedAt) / 100) / 10,
      address: `${self.host}:${self.port}`,
      storageEngine: this.#storage.engine,
    };
  }

  #onFrame(from: NodeId, frame: Uint8Array): void {
    if (this.#closed) return;
    const decoded = decodeMessage(frame);
    if (!decoded.ok) {
      this.#metrics.rejected('frame');
      this.#logger.warn({ from, reason: decoded.reason }, 'rejected frame');
      return;
    }
    const message = decoded.value;
    if (from.kind === 'client') {
      if (message.kind !== 'request' || message.clientId !== from.id) {
        this.#metrics.rejected('client-message');
        this.#logger.warn(
          { from, kind: message.kind },
          'rejected message: clients may only send their own requests',
        );
        return;
      }
      this.#step({ kind: 'client-request', request: message });
      return;
    }
    if (
      message.kind === 'request' ||
      message.kind === 'reply' ||
      message.kind === 'evidence-report' ||
      message.kind === 'key-announcement'
    ) {
      this.#metrics.rejected('replica-message');
      this.#logger.warn(
        { from, kind: message.kind },
        'rejected message: replicas do not send requests or replies to replicas',
      );
      return;
    }
    this.#step({ kind: 'message', from: from.id, message });
  }

  #step(event: ReplicaEvent): void {
    if (this.#closed) return;
    let actions: Action[];
    try {
      actions = this.#replica.step(event);
    } catch (error) {
      // An invariant of the core broke: a bug. Stop rather than continue in an unknown state.
      this.#logger.fatal({ err: error, event: event.kind }, 'replica invariant violated; stopping');
      void this.close().finally(() => process.exit(70));
      return;
    }
    this.#perform(actions);
  }

  #send(send: Send): void {
    if (this.#unflushed || this.#held.length > 0) {
      if (this.#held.length >= MAX_HELD_SENDS) {
        this.#metrics.rejected('held-send-overflow');
        return;
      }
      this.#held.push(send);
    } else {
      send();
    }
  }

  #perform(actions: readonly Action[]): void {
    const transport = this.#transport;
    for (const action of actions) {
      switch (action.kind) {
        case 'persist':
          this.#storage.append(action.record);
          if (mustPrecedeSends(action.record)) this.#unflushed = true;
          else this.#lazyAppends = true;
          break;
        case 'persist-checkpoint':
          // Written in the background (the storage's checkpoint lane); sends do not wait for it.
          this.#storage.storeCheckpoint(action.checkpoint);
          break;
        case 'send': {
          const frame = encodeMessage(action.message);
          this.#send(() => transport?.send(replicaNode(action.to), frame));
          break;
        }
        case 'broadcast': {
          const frame = encodeMessage(action.message);
          this.#send(() => this.#broadcast(frame));
          break;
        }
        case 'reply': {
          const frame = encodeMessage(action.reply);
          this.#send(() => transport?.send(clientNode(action.to), frame));
          break;
        }
        case 'executed':
          this.#metrics.executed(action.requests.length);
          break;
        case 'evidence':
          this.#logger.error(
            { evidence: action.evidence.kind, accused: action.evidence.accused },
            'misbehaviour proven',
          );
          break;
        case 'suspect':
          this.#logger.warn({ suspect: action.replica, reason: action.reason }, 'suspicion');
          break;
        case 'log':
          this.#metrics.logged(action.event, action.details);
          this.#logger[action.level === 'debug' ? 'debug' : action.level](
            { ...action.details },
            action.event,
          );
          break;
      }
    }
    if (this.#unflushed && !this.#flushing) this.#scheduleFlush();
    else if (this.#lazyAppends && !this.#flushing && this.#lazyFlushTimer === null) {
      // Records nothing waits for still reach the disk soon, with the next flush at the latest.
      this.#lazyFlushTimer = setTimeout(() => {
        this.#lazyFlushTimer = null;
        if (this.#lazyAppends && !this.#flushing && !this.#closed) {
          this.#unflushed = true;
          this.#scheduleFlush();
        }
      }, LAZY_FLUSH_DELAY_MS);
    }
  }

  #broadcast(frame: Uint8Array): void {
    const transport = this.#transport;
    if (transport === null) return;
    for (const peer of this.config.replicas)
      if (peer.id !== this.id) transport.send(replicaNode(peer.id), frame);
  }

  /** Group commit: everything persisted in this event-loop turn shares one fsync. */
  #scheduleFlush(): void {
    this.#flushing = true;
    setImmediate(() => {
      const released = this.#held;
      this.#held = [];
      this.#unflushed = false;
      this.#lazyAppends = false;
      const started = performance.now();
      this.#storage.flush().then(
        () => {
          this.#metrics.flushed((performance.now() - started) / 1000);
          this.#flushing = false;
          // Sends held after this flush started must wait for the next one (queued in #held).
          for (const send of released) send();
          if (this.#unflushed) this.#scheduleFlush();
          else if (this.#held.length > 0) {
            const rest = this.#held;
            this.#held = [];
            for (const send of rest) send();
          }
        },
        (error: unknown) => {
          // Without durable storage the replica must not send anything that relies on it.
          this.#logger.fatal({ err: error }, 'storage flush failed; stopping');
          void this.close().finally(() => process.exit(74));
        },
      );
    });
  }

  async #startAdmin(host: string, port: number): Promise<Server> {
    const server = createServer((request: IncomingMessage, response: ServerResponse) => {
      void this.#serveAdmin(request, response);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
    return server;
  }

  async #serveAdmin(request: IncomingMessage, response: ServerResponse): Promise<void> {
    if (request.method !== 'GET') {
      response.writeHead(405, { allow: 'GET' }).end();
      return;
    }
    const path = (request.url ?? '/').split('?')[0];
    if (path === '/status') {
      response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(this.status()));
    } else if (path === '/metrics') {
      const body = await this.#metrics.render(this.status());
      response.writeHead(200, { 'content-type': this.#metrics.contentType }).end(body);
    } else if (path === '/healthz') {
      response.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
    } else {
      response.writeHead(404).end();
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#ticker !== null) clearInterval(this.#ticker);
    if (this.#lazyFlushTimer !== null) clearTimeout(this.#lazyFlushTimer);
    await this.#transport?.close();
    await new Promise<void>((resolve) =>
      this.#admin === null ? resolve() : this.#admin.close(() => resolve()),
    );
    try {
      await this.#storage.flush();
    } finally {
      await this.#storage.close();
    }
    this.#logger.info({ replica: this.id }, 'replica stopped');
  }
}
