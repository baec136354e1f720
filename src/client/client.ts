/**
 * `PhalanxClient`: invoke operations on a replicated service.
 *
 * It sends every request to all replicas over authenticated, encrypted connections, accepts a
 * result once a quorum of replicas returned the same one (so up to f lying replicas cannot fool
 * it), retransmits with backoff, answers read-only operations from a quorum of replicas without
 * ordering when they agree (falling back to ordering when they do not), and reports failures
 * as `PhalanxError` with a code: 'timeout', 'rejected', 'unavailable', 'overloaded', 'closed';
 * and 'unknown-client' (an `UnknownClientError`, from `connect`) when the client's id is not in
 * the configuration; 'safe-mode' when f + 1 replicas refuse a write because they hold proof of a
 * fork (more than f misbehaving replicas; docs/intrusion-tolerance.md, Beyond f), and for a read
 * answered from their certified state (a `SafeModeSnapshotError`, which carries the answer). Given a `ClientMetricsSink` (`metrics` option), it reports each
 * invocation's latency, its retransmissions and its errors there; `phalanx/metrics` makes one
 * that feeds a prom-client Registry the application passes in (this module loads no metrics
 * library itself).
 *
 * Usage:
 * ```ts
 * const client = await PhalanxClient.connect({ config, client: await loadClientKeyFile(path) });
 * const { result } = await client.invoke(operation);
 * const { result: fresh } = await client.invoke(query, { readOnly: true });
 * await client.close();
 * ```
 */

import { hash as oneShotHash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { ClusterConfig } from '../config/cluster-config.js';
import { type ClientKeyFile, clientRegistryOf, keyRegistryOf } from '../config/keys.js';
import { type ClientAction, ClientSession, type UnauthenticatedRequest } from '../core/client-protocol.js';
import { type Digest, digest as asDigest, keyEpoch, type SequenceNumber, toHex } from '../messages/ids.js';
import { quorumSize } from '../core/quorum.js';
import { ClientCrypto } from '../crypto/client-crypto.js';
import { decodeMessage, encodeMessage } from '../messages/codec.js';
import { requestContent } from '../messages/signing.js';
import type { ClientRequest, Reply } from '../messages/types.js';
import type { KeyRegistry } from '../crypto/key-registry.js';
import { installCertificate, verifyCertificateForConfig } from '../crypto/key-certificates.js';
import { channelKeyDirectory } from '../transport/key-directory.js';
import { TcpTransport } from '../transport/tcp.js';
import { clientNode, type NodeId, replicaNode, type Transport } from '../transport/transport.js';

export type PhalanxErrorCode =
  'timeout' | 'rejected' | 'unavailable' | 'overloaded' | 'closed' | 'unknown-client' | 'safe-mode';

export class PhalanxError extends Error {
  override readonly name: string = 'PhalanxError';
  readonly code: PhalanxErrorCode;
  constructor(code: PhalanxErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}

/**
 * The read was answered from the certified state of replicas in safe mode (f + 1 of the Q
 * matching replies, so at least one correct replica, hold proof that more than f replicas
 * misbehaved). It is the state of their last stable checkpoint and may be older than writes this
 * or another client already saw acknowledged, so it is not handed back as the current state: it
 * comes as this error, code 'safe-mode', with the answer and the replicas' signed replies, which
 * show what they were told (docs/intrusion-tolerance.md, Beyond f).
 */
export class SafeModeSnapshotError extends PhalanxError {
  override readonly name: string = 'SafeModeSnapshotError';
  /** The answer, as of checkpoint `sequence`. */
  readonly result: Uint8Array;
  /** The certified checkpoint it was read from (the oldest among the signed replies). */
  readonly sequence: SequenceNumber;
  /** The signed replies (each with a one-leaf reply proof under its replica's key). */
  readonly signedReplies: readonly Reply[];
  constructor(result: Uint8Array, sequence: SequenceNumber, signedReplies: readonly Reply[]) {
    super(
      'safe-mode',
      'the replicas are in safe mode: they hold proof that more than f replicas misbehaved (a fork); ' +
        `this read was answered from their last certified state, checkpoint ${sequence}, which may be ` +
        'older than acknowledged writes (error.result holds it, error.signedReplies the signed replies)',
    );
    this.result = result;
    this.sequence = sequence;
    this.signedReplies = signedReplies;
  }
}

/** How an invocation got its answer: ordered, or by the read-only fast path. */
export type InvocationPath = 'ordered' | 'fast-path';

/**
 * Where a client reports what it measures. Calls are synchronous and must be cheap (they are on
 * the path of every reply); one sink may serve many clients.
 */
export interface ClientMetricsSink {
  /** An invocation got its answer (a result, or the replicas' refusal) after `seconds`. */
  completed(path: InvocationPath, seconds: number): void;
  /** An invocation failed with this code (a refusal by the replicas is 'rejected'). */
  failed(code: PhalanxErrorCode): void;
  /** Requests sent again to every replica because no quorum of replies came in time. */
  retransmitted(requests: number): void;
  /** A read-only request the replicas did not answer alike, sent again to be ordered. */
  fellBack(): void;
  /** A reply proven to lie was reported to the replicas. */
  evidenceReported(): void;
}

/** Client ids named in an UnknownClientError's message, so a long list stays one readable line. */
const MAX_CLIENTS_NAMED = 8;

/**
 * The client id is not among the configuration's clients: no replica would accept its
 * connection, so PhalanxClient.connect (or the constructor behind it) refuses at once instead of
 * timing out against replicas that drop it.
 */
export class UnknownClientError extends PhalanxError {
  override readonly name = 'UnknownClientError';
  readonly clientId: string;
  constructor(client: string, config: Pick<ClusterConfig, 'source' | 'clients'>) {
    const known = config.clients.map((entry) => entry.id);
    const named =
      known.length === 0
        ? 'it lists no clients'
        : `its clients: ${known.slice(0, MAX_CLIENTS_NAMED).join(', ')}${known.length > MAX_CLIENTS_NAMED ? `, … (${known.length} in all)` : ''}`;
    super('unknown-client', `client ${client} is not in the configuration ${config.source} (${named})`);
    this.clientId = client;
  }
}

export interface InvocationResult {
  readonly result: Uint8Array;
  /** The batch that ordered it (read-only: the state it was read from). */
  readonly sequence: SequenceNumber;
  /** Answered by the read-only fast path, without ordering. */
  readonly fastPath: boolean;
}

export interface PhalanxClientOptions {
  readonly config: ClusterConfig;
  readonly client: ClientKeyFile;
  /** Per invocation, unless given to invoke(). Default 10 s. */
  readonly timeoutMs?: number;
  /** Requests in flight at once; more wait in a bounded queue. Default 16. */
  readonly maxOutstanding?: number;
  /** Invocations waiting for a slot; beyond this invoke() fails with 'overloaded'. Default 100 000. */
  readonly maxQueued?: number;
  /** Sign every request (required when the cluster sets requireClientSignatures). */
  readonly signRequests?: boolean;
  /** How long connect() waits for a quorum of replicas. Default 10 s. */
  readonly connectTimeoutMs?: number;
  /** Where to report latency, retransmissions and errors (e.g. phalanx/metrics' prometheusClientMetrics). */
  readonly metrics?: ClientMetricsSink;
}

interface Invocation {
  readonly operation: Uint8Array;
  readonly readOnly: boolean;
  readonly deadline: number;
  /** performance.now() at invoke(): latency includes the wait for a free slot. */
  readonly startedAt: number;
  readonly resolve: (result: InvocationResult) => void;
  readonly reject: (error: PhalanxError) => void;
}

const TICK_MS = 20;
const EVIDENCE_REPORT_INTERVAL_MS = 5000;
const decoder = new TextDecoder();

/** One-shot: once per request, and a third of the cost of a Hash object for inputs this small. */
function sha256(data: Uint8Array): Digest {
  return asDigest(oneShotHash('sha256', data, 'buffer'));
}

/**
 * Sorts the sends among a session's actions into first sends and retransmissions. Request
 * numbers are handed out in increasing order and a new request is sent at once, so a send of a
 * number at or below the highest sent so far is a retransmission.
 */
export function countSends(
  actions: readonly ClientAction[],
  highestSent: number,
): { readonly retransmitted: number; readonly firstSends: number; readonly highestSent: number } {
  let retransmitted = 0;
  let firstSends = 0;
  let highest = highestSent;
  for (const action of actions) {
    if (action.kind !== 'send-all' && action.kind !== 'send') continue;
    const number = action.request.requestNumber;
    if (number <= highest) retransmitted++;
    else {
      firstSends++;
      highest = number;
    }
  }
  return { retransmitted, firstSends, highestSent: highest };
}

export class PhalanxClient {
  readonly #config: ClusterConfig;
  readonly #session: ClientSession;
  readonly #timeoutMs: number;
  readonly #maxQueued: number;
  #transport: Transport | null = null;
  readonly #inFlight = new Map<number, Invocation>();
  readonly #queue: Invocation[] = [];
  #ticker: NodeJS.Timeout | null = null;
  #closed = false;
  #evidenceReported = 0;
  readonly #lastReportAt = new Map<number, number>();
  readonly #registry: KeyRegistry;
  readonly #metrics: ClientMetricsSink | null;
  /**
   * The highest request number sent so far. Numbers are handed out in increasing order and sent
   * at once, so a send of a number at or below it is a retransmission.
   */
  #highestSent = -1;

  private constructor(options: PhalanxClientOptions) {
    const { config, client } = options;
    this.#config = config;
    this.#timeoutMs = options.timeoutMs ?? 10_000;
    this.#maxQueued = options.maxQueued ?? 100_000;
    this.#metrics = options.metrics ?? null;
    // With guardians every replica key epoch is certified by the replica's guardian: the client
    // learns current keys from certificates (in the handshake and in announcements), never from
    // the configuration's epoch-0 keys.
    const registry = config.recovery === null ? keyRegistryOf(config) : clientRegistryOf(config);
    this.#registry = registry;
    if (registry.clientKeys(client.client) === undefined) throw new UnknownClientError(client.client, config);
    const crypto = new ClientCrypto({ client: client.client, keys: client.keys, registry });
    const sign = options.signRequests ?? config.protocol.requireClientSignatures;
    const authenticate = (unsigned: UnauthenticatedRequest): ClientRequest => {
      const digest = sha256(requestContent({ ...unsigned, authenticator: [], signature: null }));
      return {
        ...unsigned,
        authenticator: crypto.authenticator(digest),
        signature: sign ? crypto.signRequest(digest) : null,
      };
    };
    const maxOutstanding = Math.min(
      options.maxOutstanding ?? 16,
      Math.max(1, config.protocol.maxOutstandingPerClient - 2),
    );
    // Numbers must grow across restarts of this client: start from the wall clock in microseconds.
    const firstRequestNumber = Math.floor(Date.now() * 1000);
    this.#session = new ClientSession(
      {
        n: config.n,
        f: config.f,
        k: config.k,
        retransmitTimeoutMs: 500,
        maxRetransmitTimeoutMs: 4000,
        readOnlyTimeoutMs: 300,
        maxOutstanding,
        replyWindow: config.protocol.maxOutstandingPerClient,
      },
      client.client,
      authenticate,
      firstRequestNumber,
    );
  }

  static async connect(options: PhalanxClientOptions): Promise<PhalanxClient> {
    const client = new PhalanxClient(options);
    const { config } = options;
    client.#transport = await TcpTransport.start({
      identity: {
        node: clientNode(options.client.client),
        keyEpoch: keyEpoch(0),
        signingKeys: options.client.keys.signing!,
      },
      peers: config.replicas.map((replica) => ({
        node: replicaNode(replica.id),
        host: replica.host,
        port: replica.port,
      })),
      keys: channelKeyDirectory(client.#registry, config),
      events: { onFrame: (from, frame) => client.#onFrame(from, frame) },
    });
    client.#ticker = setInterval(() => client.#tick(), TICK_MS);
    const quorum = quorumSize(config);
    const deadline = performance.now() + (options.connectTimeoutMs ?? 10_000);
    while (client.#transport.connectedPeers().length < quorum) {
      if (performance.now() > deadline) {
        const connected = client.#transport.connectedPeers().length;
        await client.close();
        throw client.#failure(
          'unavailable',
          `only ${connected} of ${config.n} replicas accepted the connection; ${quorum} are needed ` +
            "(are the replicas running, and is this client's key in their configuration?)",
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    return client;
  }

  /** Replicas with an authenticated connection right now. */
  get connectedReplicas(): number {
    return this.#transport?.connectedPeers().length ?? 0;
  }

  /** How many lying replies this client has proven and reported to the replicas. */
  get evidenceReported(): number {
    return this.#evidenceReported;
  }

  invoke(
    operation: Uint8Array,
    options: { readonly readOnly?: boolean; readonly timeoutMs?: number } = {},
  ): Promise<InvocationResult> {
    if (this.#closed) return Promise.reject(this.#failure('closed', 'the client is closed'));
    if (this.#queue.length >= this.#maxQueued) {
      return Promise.reject(
        this.#failure('overloaded', `more than ${this.#maxQueued} invocations are waiting`),
      );
    }
    return new Promise<InvocationResult>((resolve, reject) => {
      const startedAt = performance.now();
      this.#queue.push({
        operation,
        readOnly: options.readOnly === true,
        deadline: startedAt + (options.timeoutMs ?? this.#timeoutMs),
        startedAt,
        resolve,
        reject,
      });
      this.#drainQueue();
    });
  }

  /** A PhalanxError, counted by the metrics sink. */
  #failure(code: PhalanxErrorCode, message: string): PhalanxError {
    this.#metrics?.failed(code);
    return new PhalanxError(code, message);
  }

  /**
   * Reports the retransmissions among sends, and (`afterInvoke`: the actions did not come from
   * invoke()) the first sends, which then are read-only requests falling back to ordering.
   */
  #countSends(actions: readonly ClientAction[], afterInvoke: boolean): void {
    const metrics = this.#metrics;
    if (metrics === null) return;
    const counted = countSends(actions, this.#highestSent);
    this.#highestSent = counted.highestSent;
    if (counted.retransmitted > 0) metrics.retransmitted(counted.retransmitted);
    if (afterInvoke) for (let index = 0; index < counted.firstSends; index++) metrics.fellBack();
  }

  #drainQueue(): void {
    while (this.#queue.length > 0 && this.#session.canInvoke) {
      const invocation = this.#queue.shift()!;
      const { invocation: number, actions } = this.#session.invoke(
        invocation.operation,
        { readOnly: invocation.readOnly },
        performance.now(),
      );
      this.#inFlight.set(number, invocation);
      this.#countSends(actions, false);
      this.#perform(actions);
    }
  }

  #perform(actions: readonly ClientAction[]): void {
    for (const action of actions) {
      if (action.kind === 'send-all') {
        const frame = encodeMessage(action.request);
        for (const replica of this.#config.replicas) this.#transport?.send(replicaNode(replica.id), frame);
        continue;
      }
      if (action.kind === 'send') {
        this.#transport?.send(replicaNode(action.to), encodeMessage(action.request));
        continue;
      }
      if (action.kind === 'report-evidence') {
        // One report per liar per few seconds: its guardian acts on the first; the rest would only
        // make every replica check the same kind of proof again.
        const now = performance.now();
        const last = this.#lastReportAt.get(action.evidence.accused);
        if (last !== undefined && now - last < EVIDENCE_REPORT_INTERVAL_MS) continue;
        this.#lastReportAt.set(action.evidence.accused, now);
        // Every replica verifies the evidence itself and hands it to its guardian; telling all of
        // them means a single faulty receiver cannot bury it.
        const frame = encodeMessage({ kind: 'evidence-report', evidence: action.evidence });
        for (const replica of this.#config.replicas) this.#transport?.send(replicaNode(replica.id), frame);
        this.#evidenceReported++;
        this.#metrics?.evidenceReported();
        continue;
      }
      const invocation = this.#inFlight.get(action.invocation);
      if (invocation === undefined) continue;
      this.#inFlight.delete(action.invocation);
      this.#metrics?.completed(
        action.fastPath ? 'fast-path' : 'ordered',
        (performance.now() - invocation.startedAt) / 1000,
      );
      if (action.safeMode === true) {
        invocation.reject(
          this.#failure(
            'safe-mode',
            'the replicas are in safe mode: they hold proof that more than f replicas misbehaved ' +
              '(a fork); writes are refused until an operator restarts the cluster without the culprits',
          ),
        );
      } else if (action.safeModeSnapshot === true) {
        this.#metrics?.failed('safe-mode');
        invocation.reject(
          new SafeModeSnapshotError(action.result, action.sequence, action.snapshotReplies ?? []),
        );
      } else if (action.status === 'ok') {
        invocation.resolve({ result: action.result, sequence: action.sequence, fastPath: action.fastPath });
      } else {
        invocation.reject(
          this.#failure('rejected', `the replicas refused the request: ${decoder.decode(action.result)}`),
        );
      }
    }
    this.#drainQueue();
  }

  #onFrame(from: NodeId, frame: Uint8Array): void {
    if (from.kind !== 'replica') return;
    const decoded = decodeMessage(frame);
    if (!decoded.ok) return;
    if (decoded.value.kind === 'key-announcement') {
      // Any replica may relay certificates: each is checked against its guardian's identity key.
      // Every replica announces every certificate when one epoch changes, so most are known
      // already; those are skipped before the signature check, which is the costly part.
      if (this.#config.recovery === null) return;
      for (const certificate of decoded.value.certificates) {
        const known = this.#registry.currentEpoch(certificate.replica);
        if (known !== undefined && certificate.keyEpoch <= known) continue;
        if (verifyCertificateForConfig(certificate, this.#config)) {
          installCertificate(this.#registry, certificate);
          this.#session.replicaRejuvenated(certificate.replica, certificate.keyEpoch);
        }
      }
      return;
    }
    if (decoded.value.kind !== 'reply' || decoded.value.replicaId !== from.id) return;
    const actions = this.#session.onReply(decoded.value, performance.now());
    this.#countSends(actions, true);
    this.#perform(actions);
  }

  #tick(): void {
    const now = performance.now();
    for (const [number, invocation] of this.#inFlight) {
      if (now < invocation.deadline) continue;
      this.#inFlight.delete(number);
      const gathered = this.#session.abandon(number);
      const detail =
        gathered === null
          ? ''
          : ` (request ${gathered.requestNumber}: replies from [${gathered.repliedBy.join(', ')}], ` +
            `at most ${gathered.largestMatching} matching, ${gathered.needed} needed)`;
      const connected = this.connectedReplicas;
      invocation.reject(
        connected < quorumSize(this.#config)
          ? this.#failure(
              'unavailable',
              `no answer: only ${connected} of ${this.#config.n} replicas are reachable`,
            )
          : this.#failure('timeout', `no quorum of matching replies before the deadline${detail}`),
      );
    }
    for (let index = this.#queue.length - 1; index >= 0; index--) {
      const invocation = this.#queue[index]!;
      if (now >= invocation.deadline) {
        this.#queue.splice(index, 1);
        invocation.reject(this.#failure('timeout', 'the request waited too long for a free slot'));
      }
    }
    const actions = this.#session.tick(now);
    this.#countSends(actions, true);
    this.#perform(actions);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#ticker !== null) clearInterval(this.#ticker);
    const error = new PhalanxError('closed', 'the client was closed');
    for (const invocation of [...this.#inFlight.values(), ...this.#queue]) {
      this.#metrics?.failed('closed');
      invocation.reject(error);
    }
    this.#inFlight.clear();
    this.#queue.length = 0;
    await this.#transport?.close();
  }
}

export { toHex };
