/**
 * An unreplicated server: the same client protocol, transport, service and storage engine as a
 * replica, behind one process and without ordering. It is the ceiling of this stack on a machine,
 * measured by `phalanx bench --unreplicated` beside the replicated figures of the same run, so that
 * a throughput ratio says what the agreement protocol costs rather than how fast the machine is.
 *
 * What it keeps of a replica's work per request: the frame is decoded and decrypted by the same
 * transport, the request's MAC is checked, the operation is executed by the configured service,
 * its batch is appended to the same storage engine as a commit record and made durable (one
 * fsync per event-loop turn, group commit) before any of its replies leaves, and a retransmitted
 * request gets its cached reply instead of a second execution. What it drops is everything that
 * replication adds: proposals, votes, checkpoints, signed reply batches and their proofs.
 *
 * It serves a configuration of one replica (n = 1, f = 0), whose clients then accept one reply as
 * their quorum. It does not recover its state after a restart: it is a measuring instrument, not a
 * deployment shape, and a restart starts from an empty data folder (the folder is wiped at start).
 *
 * Usage:
 * ```ts
 * const server = await UnreplicatedServer.start({ config, keys, service, dataDirectory, logger });
 * // ... clients connect to config.replicas[0]
 * await server.close();
 * ```
 */
import { rmSync } from 'node:fs';
import type { Logger } from 'pino';
import type { ClusterConfig } from '../config/cluster-config.js';
import { keyRegistryOf, type ReplicaKeyFile } from '../config/keys.js';
import type { Service } from '../core/service.js';
import { ReplicaCrypto } from '../crypto/replica-crypto.js';
import { decodeMessage, encodeMessage } from '../messages/codec.js';
import {
  assert,
  type ClientId,
  type Digest,
  keyEpoch,
  replicaId,
  type RequestNumber,
  type SequenceNumber,
  sequenceNumber,
  viewNumber,
} from '../messages/ids.js';
import { LIMITS } from '../messages/limits.js';
import { batchContent, requestContent } from '../messages/signing.js';
import type { ClientRequest, Reply, ReplyStatus } from '../messages/types.js';
import { openStorage } from '../storage/open.js';
import type { ReplicaStorage } from '../storage/storage.js';
import { channelKeyDirectory } from '../transport/key-directory.js';
import { TcpTransport } from '../transport/tcp.js';
import { clientNode, type NodeId, replicaNode } from '../transport/transport.js';

/** Replies kept per client for retransmissions (a client's window of outstanding requests). */
export const UNREPLICATED_CACHED_REPLIES_PER_CLIENT = 64;
/** Requests executed but not yet durable; beyond this the server refuses new ones until a flush ends. */
export const UNREPLICATED_MAX_UNFLUSHED_REQUESTS = 4 * LIMITS.maxBatchRequests;

const textEncoder = new TextEncoder();

export interface UnreplicatedServerOptions {
  /** A configuration of one replica (n = 1). */
  readonly config: ClusterConfig;
  /** Replica 0's key file. */
  readonly keys: ReplicaKeyFile;
  readonly service: Service;
  /** Emptied at start: the server keeps no state across restarts. */
  readonly dataDirectory: string;
  readonly logger: Logger;
}

interface ExecutedRequest {
  readonly request: ClientRequest;
  /** Computed once, for the MAC check, and reused for the batch digest. */
  readonly requestDigest: Digest;
  readonly reply: Reply;
}

export class UnreplicatedServer {
  readonly #crypto: ReplicaCrypto;
  readonly #service: Service;
  readonly #storage: ReplicaStorage;
  readonly #logger: Logger;
  #transport: TcpTransport | null = null;
  #lastSequence = 0;
  /** Executed in this event-loop turn, to be appended as one batch. */
  #batch: ExecutedRequest[] = [];
  /** Appended, waiting for the flush that makes them durable before their replies leave. */
  #unflushed: ExecutedRequest[] = [];
  #flushing = false;
  #flushScheduled = false;
  readonly #replies = new Map<ClientId, Map<RequestNumber, Reply>>();
  /** Replies of requests whose batch is not durable yet: not to be resent before it is. */
  readonly #notDurable = new Set<Reply>();
  #rejected = 0;
  #closed = false;

  private constructor(options: UnreplicatedServerOptions, crypto: ReplicaCrypto, storage: ReplicaStorage) {
    this.#crypto = crypto;
    this.#service = options.service;
    this.#storage = storage;
    this.#logger = options.logger;
  }

  static async start(options: UnreplicatedServerOptions): Promise<UnreplicatedServer> {
    const { config, keys } = options;
    if (config.n !== 1)
      throw new Error(
        `an unreplicated server serves a configuration of one replica, this one has ${config.n}`,
      );
    if (keys.replica !== 0) throw new Error(`the key file is for replica ${keys.replica}, not 0`);
    const registry = keyRegistryOf(config);
    const crypto = new ReplicaCrypto({
      replica: replicaId(0),
      registry,
      epoch: keyEpoch(0),
      sessionKeys: keys.sessionKeys,
    });
    rmSync(options.dataDirectory, { recursive: true, force: true });
    const storage = await openStorage({ engine: config.storage.engine, directory: options.dataDirectory });
    await storage.load();
    const server = new UnreplicatedServer(options, crypto, storage);
    const self = config.replicas[0]!;
    server.#transport = await TcpTransport.start({
      identity: {
        node: replicaNode(replicaId(0)),
        keyEpoch: keyEpoch(0),
        signingKeys: keys.sessionKeys.signing,
      },
      listen: { host: self.host, port: self.port },
      peers: [],
      keys: channelKeyDirectory(registry, config),
      logger: options.logger,
      events: { onFrame: (from, frame) => server.#onFrame(from, frame) },
    });
    options.logger.info({ address: `${self.host}:${self.port}` }, 'unreplicated server started');
    return server;
  }

  /** Requests refused so far (undecodable, not a request, bad MAC, or over the unflushed bound). */
  get rejected(): number {
    return this.#rejected;
  }

  #onFrame(from: NodeId, frame: Uint8Array): void {
    if (this.#closed || from.kind !== 'client') return;
    const decoded = decodeMessage(frame);
    if (!decoded.ok || decoded.value.kind !== 'request' || decoded.value.clientId !== from.id) {
      this.#reject('not a request of this client');
      return;
    }
    const request = decoded.value;
    const requestDigest = this.#crypto.hash(requestContent(request));
    if (!this.#crypto.verifyRequest(request, requestDigest)) {
      this.#reject('request authenticator does not verify');
      return;
    }
    if (request.readOnly) {
      const { status, result } = this.#run(request, true);
      this.#send(this.#reply(request, sequenceNumber(this.#lastSequence), status, result));
      return;
    }
    const cached = this.#replies.get(request.clientId)?.get(request.requestNumber);
    if (cached !== undefined) {
      // Executed before: resent once durable (the flush that makes it so sends it anyway).
      if (!this.#notDurable.has(cached)) this.#send(cached);
      return;
    }
    if (this.#batch.length + this.#unflushed.length >= UNREPLICATED_MAX_UNFLUSHED_REQUESTS) {
      this.#reject('too many requests waiting for the disk');
      return;
    }
    const sequence = sequenceNumber(this.#lastSequence + 1);
    const { status, result } = this.#run(request, false, sequence);
    const reply = this.#reply(request, sequence, status, result);
    this.#remember(reply);
    this.#notDurable.add(reply);
    this.#batch.push({ request, requestDigest, reply });
    if (this.#batch.length >= LIMITS.maxBatchRequests) this.#appendBatch();
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      setImmediate(() => {
        this.#flushScheduled = false;
        this.#appendBatch();
        void this.#flush();
      });
    }
  }

  #run(
    request: ClientRequest,
    readOnly: boolean,
    sequence: SequenceNumber = sequenceNumber(this.#lastSequence),
  ): { status: ReplyStatus; result: Uint8Array } {
    const context = { clientId: request.clientId, requestNumber: request.requestNumber, sequence };
    try {
      return {
        status: 'ok',
        result: readOnly
          ? this.#service.executeReadOnly(request.operation, context)
          : this.#service.execute(request.operation, context),
      };
    } catch (error) {
      return {
        status: 'error',
        result: textEncoder.encode(`service failed: ${error instanceof Error ? error.message : 'unknown'}`),
      };
    }
  }

  /** Appends the requests executed so far as one commit record of the next sequence. */
  #appendBatch(): void {
    if (this.#batch.length === 0) return;
    const batch = this.#batch;
    this.#batch = [];
    const sequence = sequenceNumber(++this.#lastSequence);
    assert(
      batch.every((executed) => executed.reply.sequence === sequence),
      'a batch is appended under the sequence its replies carry',
    );
    const requests = batch.map((executed) => executed.request);
    this.#storage.append({
      kind: 'committed',
      view: viewNumber(0),
      sequence,
      batchDigest: this.#crypto.hash(batchContent(batch.map((executed) => executed.requestDigest))),
      batch: requests,
    });
    this.#unflushed.push(...batch);
  }

  async #flush(): Promise<void> {
    if (this.#flushing || this.#closed) return;
    this.#flushing = true;
    try {
      while (this.#unflushed.length > 0 && !this.#closed) {
        const durable = this.#unflushed;
        this.#unflushed = [];
        await this.#storage.flush();
        for (const executed of durable) {
          this.#notDurable.delete(executed.reply);
          this.#send(executed.reply);
        }
      }
    } catch (error) {
      this.#logger.fatal({ err: error }, 'the unreplicated server could not make its log durable; stopping');
      void this.close();
    } finally {
      this.#flushing = false;
    }
  }

  #reply(request: ClientRequest, sequence: SequenceNumber, status: ReplyStatus, result: Uint8Array): Reply {
    return {
      kind: 'reply',
      view: viewNumber(0),
      replicaId: replicaId(0),
      clientId: request.clientId,
      requestNumber: request.requestNumber,
      readOnly: request.readOnly,
      sequence,
      status,
      result,
      proof: null,
    };
  }

  #remember(reply: Reply): void {
    let replies = this.#replies.get(reply.clientId);
    if (replies === undefined) {
      replies = new Map();
      this.#replies.set(reply.clientId, replies);
    }
    replies.set(reply.requestNumber, reply);
    // Insertion order is request order for one client: the oldest goes first.
    while (replies.size > UNREPLICATED_CACHED_REPLIES_PER_CLIENT)
      replies.delete(replies.keys().next().value!);
  }

  #send(reply: Reply): void {
    this.#transport?.send(clientNode(reply.clientId), encodeMessage(reply));
  }

  #reject(reason: string): void {
    // Counted, and logged at debug only: a flood of bad frames must not become a flood of lines.
    this.#rejected++;
    this.#logger.debug({ reason }, 'request rejected');
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#transport?.close();
    await this.#storage.close();
  }
}
