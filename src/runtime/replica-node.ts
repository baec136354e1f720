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
 * const node = await ReplicaNode.start({ config, id: replicaId(0), keys, logger, service: createKvService });
 * // ... later
 * await node.close();
 * ```
 */
import { hash as oneShotHash } from 'node:crypto';
import { renameSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { hostHeaderAllowed, refuseHostHeader } from './host-header.js';
import { AT_START_ONLY_BEHAVIOURS, protocolUnderFaultMode } from '../adversary/catalogue.js';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { accountabilityLogPath, type ClusterConfig, replicaDataDirectory } from '../config/cluster-config.js';
import { AccountabilityLog, AccountabilityLogError } from '../detection/accountability-log.js';
import { type ReplicaKeyFile, clientRegistryOf, keyRegistryOf } from '../config/keys.js';
import { type Action, mustPrecedeSends, type StoredCheckpoint } from '../core/actions.js';
import type { ReplicaEvent } from '../core/events.js';
import {
  bytesEqual,
  type ClientId,
  digest as asDigest,
  type KeyEpoch,
  keyEpoch,
  type ReplicaId,
  replicaId,
  type ViewNumber,
  viewNumber,
} from '../messages/ids.js';
import { Replica } from '../core/replica.js';
import type { CoreCrypto } from '../core/crypto.js';
import type { Service } from '../core/service.js';
import { provenKeyEpoch } from '../core/forensics.js';
import type { KeyRegistry } from '../crypto/key-registry.js';
import { ReplicaCrypto, type ReplicaSessionKeys } from '../crypto/replica-crypto.js';
import { type EvidenceContext, verifyEvidence } from '../detection/evidence.js';
import { describeForensicProof } from '../detection/forensics.js';
import { decodeEvidence, decodeMessage, encodeEvidence, encodeMessage } from '../messages/codec.js';
import type {
  AcknowledgedRequest,
  Evidence,
  ForensicProof,
  KeyCertificate,
  ReplicaMessage,
  Reply,
  RequestAcknowledgement,
} from '../messages/types.js';
import { LIMITS } from '../messages/limits.js';
import {
  decodeKeyCertificate,
  encodeKeyCertificate,
  installCertificate,
  verifyCertificateForConfig,
} from '../crypto/key-certificates.js';
import {
  type FaultMode,
  type GuardianToReplica,
  type RecoveryProgress,
  type ReplicaToGuardian,
  evidenceOrigin,
  decodeForkProof,
  fromBase64,
  toBase64,
} from './ipc.js';
import { openStorage } from '../storage/open.js';
import { LoadPacer, RECOVERY_LOAD_PACING } from '../storage/pacing.js';
import type { ReplicaStorage } from '../storage/storage.js';
import { channelKeyDirectory } from '../transport/key-directory.js';
import { rejectionKind, TcpTransport } from '../transport/tcp.js';
import { clientNode, type NodeId, nodeKey, replicaNode } from '../transport/transport.js';
import { signingSeed } from '../crypto/keys.js';
import { ReplicaMetrics } from './metrics.js';
import { OVERFLOW_KEY, RATE_LIMITED_LOG_LIMITS, RateLimitedLog } from '../transport/rate-limited-log.js';
import type { ReplicaStatus } from './status.js';

export const TICK_MS = 10;
/** Sends held back behind an unfinished flush; beyond this the node is overloaded and drops. */
export const MAX_HELD_SENDS = 200_000;
/** Longest a commit decision waits in memory when no other record forces a flush. */
export const LAZY_FLUSH_DELAY_MS = 20;
/** A client's evidence reports are checked at most once per this interval. */
export const EVIDENCE_REPORT_INTERVAL_MS = 1000;
/** Reporters remembered for that rate limit (the table is reset beyond this). */
const MAX_TRACKED_REPORTERS = 4096;

/** Where a replica's session keys come from. */
export type ReplicaKeySource =
  /** Epoch 0 keys from its key file: a cluster without guardians. */
  | { readonly kind: 'key-file'; readonly file: ReplicaKeyFile }
  /** A key epoch issued by its guardian, with every replica's latest certificate. */
  | {
      readonly kind: 'guardian';
      readonly keyEpoch: KeyEpoch;
      readonly sessionKeys: ReplicaSessionKeys;
      readonly certificate: KeyCertificate;
      readonly certificates: readonly KeyCertificate[];
    };

/** The replica's end of the link to its guardian. */
export interface GuardianLink {
  send(message: ReplicaToGuardian): void;
  onMessage(handler: (message: GuardianToReplica) => void): void;
}

/** What a ServiceFactory is told about the replica it builds the service for. */
export interface ServiceFactoryContext {
  readonly config: ClusterConfig;
  readonly id: ReplicaId;
}

/**
 * Builds the replicated service a replica runs, once per start. The runtime knows no service of
 * its own: the wiring above it chooses (the `phalanx` CLI passes the one of the configuration's
 * service module, serviceFactoryOf in src/hosting/service-modules.ts). Every replica of a cluster must build the same
 * deterministic service (src/core/service.ts).
 */
export type ServiceFactory = (context: ServiceFactoryContext) => Service;

export interface ReplicaNodeOptions {
  readonly config: ClusterConfig;
  readonly id: ReplicaId;
  readonly keys: ReplicaKeySource;
  readonly logger: Logger;
  /** The replicated service (see ServiceFactory). */
  readonly service: ServiceFactory;
  readonly guardian?: GuardianLink;
  /**
   * Test and demo clusters only (allowFaultInjection): the fault injection (FaultInjection of
   * fault-modes.ts), which sees what the core sends before the wire does. Refused otherwise.
   */
  readonly outgoingInterceptor?: OutgoingInterceptor;
  /** Test and demo clusters only (with an outgoingInterceptor): start as an intruder would run it. */
  readonly faultMode?: FaultMode | null;
  /** Data folder; defaults to the configuration's data folder for this replica. */
  readonly dataDirectory?: string;
  /** The disk was lost or is not trusted: see ReplicaOptions.amnesiac. */
  readonly amnesiac?: boolean;
  /** Its guardian holds a fork proof: start in safe mode (ReplicaOptions.safeModeOrder). */
  readonly safeModeOrder?: ForensicProof;
}

/**
 * Test-only: sees every message, broadcast and reply the core sends before the wire does, and may
 * take it over (withhold, rewrite, delay it). Installed only in clusters that allow fault
 * injection; a production replica has none, and its send path is the plain one.
 */
export interface OutgoingInterceptor {
  /** Wraps the replicated service, once, before the core is built. */
  wrapService(service: Service): Service;
  /** Called once at start, before any message, with the node's plain send path. */
  attach(replica: InterceptedReplica): void;
  /** Switches the fault mode (null: behave correctly). */
  setMode(mode: FaultMode | null): void;
  /** Each returns whether it took the message over (then the plain path does not send it). */
  send(to: ReplicaId, message: ReplicaMessage): boolean;
  broadcast(message: ReplicaMessage): boolean;
  reply(to: ClientId, reply: Reply): boolean;
  close(): void;
}

/** What an outgoing interceptor may use of its replica node. */
export interface InterceptedReplica {
  readonly id: ReplicaId;
  readonly config: Pick<ClusterConfig, 'n' | 'protocol'>;
  /** The replica's own crypto: an intruder signs with its replica's keys. */
  readonly crypto: CoreCrypto;
  /** Sends on the plain path: accounted, and after the persists before it are durable. */
  send(to: ReplicaId, message: ReplicaMessage): void;
  /** Raw bytes on the channel to a replica (garbage frames). */
  sendBytes(to: ReplicaId, bytes: Uint8Array): void;
}

type Send = () => void;

/**
 * How this replica checks a proof, as its guardian does: signatures under the keys it knows (a
 * proof's, so a little old is fine), and only against a replica's current epoch.
 */
function evidenceContextOf(
  config: Pick<ClusterConfig, 'n' | 'f' | 'k'>,
  crypto: ReplicaCrypto,
  registry: KeyRegistry,
): EvidenceContext {
  return {
    model: config,
    hash: (data) => crypto.hash(data),
    verifyReplicaSignature: (signer, epoch, payload, signature) =>
      crypto.verifyReplicaSignature(signer, epoch, payload, signature, 'proof'),
    currentEpoch: (replica) => registry.currentEpoch(replica),
  };
}

export class ReplicaNode {
  readonly id: ReplicaId;
  readonly config: ClusterConfig;
  readonly #logger: Logger;
  readonly #crypto: ReplicaCrypto;
  readonly #replica: Replica;
  readonly #storage: ReplicaStorage;
  readonly #metrics: ReplicaMetrics;
  #transport: TcpTransport | null = null;
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
  readonly #registry: KeyRegistry;
  /** Test and demo clusters only; null in production (see OutgoingInterceptor). */
  readonly #interceptor: OutgoingInterceptor | null;
  #guardian: GuardianLink | null = null;
  #guardianStatusTimer: NodeJS.Timeout | null = null;
  readonly #certificates = new Map<number, KeyCertificate>();
  readonly #evidenceReportAt = new Map<string, number>();
  /**
   * What an intruder in this process could steal: its session signing key and certificate.
   * Served (GET /debug/stolen-keys) only by clusters that allow fault injection, so tests can
   * show the keys are worthless after the next rejuvenation.
   */
  #loot: { keyEpoch: number; signingSeed: Uint8Array; certificate: Uint8Array | null } | null = null;
  #lastProgress: string | null = null;
  /** REQUEST-ACK entries of this event-loop turn, sent as one message at its end. */
  #pendingAcknowledgements: { to: ReplicaId; view: ViewNumber; requests: AcknowledgedRequest[] } | null =
    null;
  /** performance.now() of the last executed batch (null: none since the process started). */
  #lastExecutionAt: number | null = null;
  /**
   * Lines hostile input can cause (refused frames and messages, the core's rejected input): the
   * first of each offender and kind, then at most one per interval with the count it stands for.
   */
  readonly #hostileInputLog = new RateLimitedLog();
  #suppressedReportTimer: NodeJS.Timeout | null = null;
  /** PeerReview-style record of every frame sent and received (null when it could not be opened). */
  #accountability: AccountabilityLog | null = null;

  private constructor(
    options: ReplicaNodeOptions,
    storage: ReplicaStorage,
    replica: Replica,
    crypto: ReplicaCrypto,
    registry: KeyRegistry,
    interceptor: OutgoingInterceptor | null,
  ) {
    this.id = options.id;
    this.config = options.config;
    this.#logger = options.logger;
    this.#storage = storage;
    this.#replica = replica;
    this.#crypto = crypto;
    this.#registry = registry;
    this.#interceptor = interceptor;
    this.#metrics = new ReplicaMetrics(options.id, options.config.protocol.checkpointInterval);
  }

  /** The keys this replica signs with and the public keys it checks others with. */
  static #keys(
    config: ClusterConfig,
    id: ReplicaId,
    keys: ReplicaKeySource,
  ): {
    registry: KeyRegistry;
    crypto: ReplicaCrypto;
    sessionKeys: ReplicaSessionKeys;
    certificate: KeyCertificate | null;
  } {
    if (keys.kind === 'key-file') {
      const file = keys.file;
      if (file.replica !== id) throw new Error(`key file is for replica ${file.replica}, not ${id}`);
      const configured = config.replicas[id]!;
      if (
        !bytesEqual(file.sessionKeys.signing.publicKey.bytes, configured.signingKey) ||
        !bytesEqual(file.sessionKeys.agreement.publicKey.bytes, configured.agreementKey)
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
        sessionKeys: file.sessionKeys,
      });
      return { registry, crypto, sessionKeys: file.sessionKeys, certificate: null };
    }
    // With guardians the configuration's epoch-0 keys are never used: every epoch is certified.
    const registry = clientRegistryOf(config);
    // Oldest first: a replica's previous epoch must be installed before its current one.
    const ordered = [...keys.certificates].sort((a, b) => a.replica - b.replica || a.keyEpoch - b.keyEpoch);
    for (const certificate of ordered) {
      // Own certificates: only the previous epoch's (ReplicaCrypto publishes the current keys itself).
      const usable = certificate.replica !== id || certificate.keyEpoch < keys.keyEpoch;
      if (usable && verifyCertificateForConfig(certificate, config))
        installCertificate(registry, certificate);
    }
    const crypto = new ReplicaCrypto({
      replica: id,
      registry,
      epoch: keys.keyEpoch,
      sessionKeys: keys.sessionKeys,
    });
    return { registry, crypto, sessionKeys: keys.sessionKeys, certificate: keys.certificate };
  }

  static async start(options: ReplicaNodeOptions): Promise<ReplicaNode> {
    const { config, id, keys, logger } = options;
    if (options.faultMode != null && !config.allowFaultInjection) {
      throw new Error(
        `fault mode ${options.faultMode} refused: the configuration does not set allowFaultInjection`,
      );
    }
    const interceptor = options.outgoingInterceptor ?? null;
    if (interceptor !== null && !config.allowFaultInjection)
      throw new Error('fault injection refused: the configuration does not set allowFaultInjection');
    if (options.faultMode != null && interceptor === null)
      throw new Error(
        `fault mode ${options.faultMode} refused: this replica has no fault injection installed`,
      );
    // How long each part of a start takes (a rejuvenation waits for all of them): logged at the end.
    const phases: Record<string, number> = {};
    let phaseStartedAt = performance.now();
    const phaseDone = (name: string): void => {
      const now = performance.now();
      phases[name] = Math.round(now - phaseStartedAt);
      phaseStartedAt = now;
    };
    const { registry, crypto, sessionKeys, certificate } = ReplicaNode.#keys(config, id, keys);
    phaseDone('keysMs');
    const storage = await openStorage({
      engine: config.storage.engine,
      directory: options.dataDirectory ?? replicaDataDirectory(config, id),
    });
    // An amnesiac (rejuvenated) replica keeps its checkpoint (every chunk is checked against a
    // certified root) but not its log: records written by a possibly compromised process are not
    // evidence of anything it may promise now. So the log is discarded unread, and the checkpoint
    // loads at a pace (pacing.ts): the other replicas serve clients meanwhile.
    const amnesiac = options.amnesiac === true;
    const pacer = amnesiac ? new LoadPacer(RECOVERY_LOAD_PACING) : null;
    const loaded = await storage.load(pacer === null ? {} : { pace: () => pacer.yield(), discardLog: true });
    phaseDone('storageMs');
    if (loaded.corruptRecords > 0 || loaded.corruptChunks > 0) {
      logger.warn(
        { corruptRecords: loaded.corruptRecords, corruptChunks: loaded.corruptChunks },
        'durable state has corrupt parts; they will be repaired from other replicas',
      );
    }
    const plainService = options.service({ config, id });
    const service = interceptor === null ? plainService : interceptor.wrapService(plainService);
    const replica = new Replica({
      // Test clusters only (the interceptor exists only with allowFaultInjection): a fault mode
      // that changes how the core is made ('small-batches') applies here, at the start.
      config:
        interceptor === null ? config.protocol : protocolUnderFaultMode(config.protocol, options.faultMode),
      id,
      crypto,
      checkEvidence: (evidence) =>
        verifyEvidence(evidence, evidenceContextOf(config, crypto, registry)).valid,
      service,
      ...(loaded.restored === undefined ? {} : { restored: loaded.restored }),
      amnesiac,
      ...(options.safeModeOrder === undefined ? {} : { safeModeOrder: options.safeModeOrder }),
    });
    phaseDone('restoreMs');
    const node = new ReplicaNode(options, storage, replica, crypto, registry, interceptor);
    node.#accountability = await openAccountabilityLog(accountabilityLogPath(config, id), logger);
    phaseDone('accountabilityLogMs');
    if (keys.kind === 'guardian') {
      // What key announcements to clients carry: every replica's latest certificate, own included.
      for (const known of [...keys.certificates, keys.certificate]) {
        const held = node.#certificates.get(known.replica);
        if (
          (held === undefined || held.keyEpoch < known.keyEpoch) &&
          verifyCertificateForConfig(known, config)
        )
          node.#certificates.set(known.replica, known);
      }
    }
    interceptor?.attach({
      id,
      config,
      crypto,
      send: (to, message) => node.#sendToReplica(to, message),
      sendBytes: (to, bytes) => node.#transport?.send(replicaNode(to), bytes),
    });
    node.#setFaultMode(options.faultMode ?? null);
    const self = config.replicas[id]!;
    node.#transport = await TcpTransport.start({
      identity: {
        node: replicaNode(id),
        keyEpoch: crypto.currentEpoch,
        signingKeys: sessionKeys.signing,
        ...(certificate === null ? {} : { certificate: encodeKeyCertificate(certificate) }),
      },
      listen: { host: self.host, port: self.port },
      peers: config.replicas
        .filter((peer) => peer.id !== id)
        .map((peer) => ({ node: replicaNode(peer.id), host: peer.host, port: peer.port })),
      // Not stepped from inside the handshake: the core's actions may send on this transport.
      keys: channelKeyDirectory(registry, config, () =>
        setImmediate(() => node.#step({ kind: 'keys-changed' })),
      ),
      // The transport logs its own refusals, at most one line per offender and kind per interval.
      logger,
      events: {
        onFrame: (from, frame) => node.#onFrame(from, frame),
        onPeerStateChange: (peer, connected) => logger.debug({ peer, connected }, 'peer connection changed'),
        onRejection: () => node.#metrics.rejected('connection'),
      },
    });
    node.#loot = {
      keyEpoch: crypto.currentEpoch,
      signingSeed: signingSeed(sessionKeys.signing),
      certificate: certificate === null ? null : encodeKeyCertificate(certificate),
    };
    phaseDone('transportMs');
    node.#admin = await node.#startAdmin(self.adminHost, self.adminPort);
    node.#ticker = setInterval(
      () => node.#step({ kind: 'tick', now: Math.floor(performance.now()) }),
      TICK_MS,
    );
    node.#step({ kind: 'tick', now: Math.floor(performance.now()) });
    if (options.guardian !== undefined) node.#linkGuardian(options.guardian);
    node.#suppressedReportTimer = setInterval(
      () => node.#reportSuppressed(),
      RATE_LIMITED_LOG_LIMITS.defaultIntervalMilliseconds,
    );
    node.#suppressedReportTimer.unref();
    logger.info(
      {
        replica: id,
        address: `${self.host}:${self.port}`,
        admin: `${self.adminHost}:${self.adminPort}`,
        view: replica.view,
        lastExecuted: replica.lastExecuted,
        ...phases,
        ...(pacer === null ? {} : { storagePausedMs: pacer.pausedMs }),
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
    const pace = replica.leaderPace;
    return {
      replica: this.id,
      role: replica.isLeader ? 'leader' : 'backup',
      view: replica.view,
      viewChangeInProgress: replica.viewChangeInProgress,
      lastExecuted: replica.lastExecuted,
      stableCheckpoint: replica.stableCheckpoint.sequence,
      stateTransferInProgress: replica.stateTransferInProgress,
      pendingRequests: replica.pendingRequestCount,
      oldestPendingMs: replica.oldestPendingAgeMs,
      leaderTurnaroundMs: pace.medianMs === null ? null : Math.round(pace.medianMs),
      leaderTurnaroundExpectationMs: Math.round(pace.expectationMs),
      leaderLeftOutClients: pace.leftOutClientsMedian,
      leaderLeftOutClientsLimit: pace.leftOutClientsLimit,
      msSinceLastExecution:
        this.#lastExecutionAt === null ? null : Math.round(performance.now() - this.#lastExecutionAt),
      voting: replica.voting,
      safeMode: replica.safeMode !== null,
      ...(replica.safeMode === null ? {} : { safeModeCulprits: [...replica.safeMode.proof.culprits] }),
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
      this.#warnHostile(
        `${nodeKey(from)} frame ${rejectionKind(decoded.reason)}`,
        { from, reason: decoded.reason },
        'rejected frame',
      );
      return;
    }
    const message = decoded.value;
    this.#account('received', from, message.kind, frame);
    if (from.kind === 'client') {
      if (message.kind === 'evidence-report') {
        this.#onEvidenceReport(`client ${from.id}`, message.evidence);
        return;
      }
      if (message.kind !== 'request' || message.clientId !== from.id) {
        this.#metrics.rejected('client-message');
        this.#warnHostile(
          `${nodeKey(from)} client-message ${message.kind}`,
          { from, kind: message.kind },
          'rejected message: clients may only send their own requests',
        );
        return;
      }
      this.#metrics.requestArrived(message.clientId, message.requestNumber);
      this.#step({ kind: 'client-request', request: message });
      return;
    }
    if (message.kind === 'request' || message.kind === 'reply' || message.kind === 'key-announcement') {
      this.#metrics.rejected('replica-message');
      this.#warnHostile(
        `${nodeKey(from)} replica-message ${message.kind}`,
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
          this.#storeCheckpoint(action.checkpoint);
          break;
        case 'send':
          if (this.#interceptor?.send(action.to, action.message) === true) break;
          this.#sendToReplica(action.to, action.message);
          break;
        case 'broadcast': {
          if (this.#interceptor?.broadcast(action.message) === true) break;
          const frame = encodeMessage(action.message);
          this.#account('sent', 'replicas', action.message.kind, frame);
          this.#send(() => this.#broadcast(frame));
          break;
        }
        case 'reply': {
          if (this.#interceptor?.reply(action.to, action.reply) === true) break;
          const frame = encodeMessage(action.reply);
          const to = clientNode(action.to);
          const { clientId, requestNumber, readOnly } = action.reply;
          this.#account('sent', to, 'reply', frame);
          this.#send(() => {
            transport?.send(to, frame);
            this.#metrics.replySent(clientId, requestNumber, readOnly);
          });
          break;
        }
        case 'executed':
          this.#lastExecutionAt = performance.now();
          this.#metrics.executed(action.sequence, action.requests.length);
          break;
        case 'evidence':
          this.#logger.error(
            { evidence: action.evidence.kind, accused: action.evidence.accused },
            'misbehaviour proven',
          );
          this.#guardian?.send({ type: 'evidence', evidence: toBase64(encodeEvidence(action.evidence)) });
          break;
        case 'safe-mode':
          this.#logger.fatal(
            {
              culprits: action.proof.culprits,
              sequence: action.proof.first.sequence,
              checkpoint: action.checkpoint.sequence,
              fork: describeForensicProof(action.proof),
            },
            'SAFE MODE: more than f replicas misbehaved (a fork, or proofs against more than f replicas); ' +
              'writes are refused until an operator restarts the cluster without the culprits',
          );
          this.#guardian?.send({
            type: 'fork-proof',
            proof: toBase64(encodeMessage({ kind: 'fork-proof', proof: action.proof })),
          });
          break;
        case 'suspect':
          this.#logger.warn({ suspect: action.replica, reason: action.reason }, 'suspicion');
          this.#guardian?.send({
            type: 'suspect',
            accused: action.replica,
            reason: action.reason.slice(0, 500),
          });
          break;
        case 'log':
          this.#metrics.logged(action.event, action.details);
          if (action.event === 'state-transfer-started')
            this.#progress('transferring-state', `to ${action.details.target}`);
          if (action.event === 'state-transfer-completed')
            this.#progress('replaying-log', `from ${action.details.sequence}`);
          if (action.event === 'rejected-input' || action.event === 'budget-exceeded') {
            const { from, what, reason, budget } = action.details;
            this.#warnHostile(
              `${String(from)} ${action.event} ${String(what ?? budget)} ${rejectionKind(String(reason ?? ''))}`,
              { ...action.details },
              action.event,
            );
            break;
          }
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

  /** Stores a stable checkpoint in the background, timing how long it takes to become durable. */
  #storeCheckpoint(checkpoint: StoredCheckpoint): void {
    const started = performance.now();
    this.#storage.storeCheckpoint(checkpoint);
    // A failed write is the storage's to report (a restart finds the previous checkpoint); only
    // the ones that became durable are timed.
    this.#storage.settled().then(
      () => this.#metrics.checkpointStored((performance.now() - started) / 1000),
      () => undefined,
    );
  }

  /**
   * The core tells the leader of every request it holds in a REQUEST-ACK of its own (one client
   * request is one step). Those of one event-loop turn to one replica go out as one message: the
   * leader decodes and steps one frame per backup per turn instead of one per request. Nothing
   * orders them against other messages; they only wait, like any send, for a flush of what was
   * persisted before them.
   */
  #coalesceAcknowledgement(to: ReplicaId, message: RequestAcknowledgement): void {
    const pending = this.#pendingAcknowledgements;
    if (pending !== null && (pending.to !== to || pending.view !== message.view))
      this.#flushAcknowledgements();
    if (this.#pendingAcknowledgements === null) {
      this.#pendingAcknowledgements = { to, view: message.view, requests: [] };
      setImmediate(() => this.#flushAcknowledgements());
    }
    this.#pendingAcknowledgements!.requests.push(...message.requests);
  }

  #flushAcknowledgements(): void {
    const pending = this.#pendingAcknowledgements;
    this.#pendingAcknowledgements = null;
    if (pending === null || this.#closed) return;
    const to = replicaNode(pending.to);
    for (let start = 0; start < pending.requests.length; start += LIMITS.maxAcknowledgedRequests) {
      const frame = encodeMessage({
        kind: 'request-ack',
        view: pending.view,
        requests: pending.requests.slice(start, start + LIMITS.maxAcknowledgedRequests),
      });
      this.#account('sent', to, 'request-ack', frame);
      this.#send(() => this.#transport?.send(to, frame));
    }
  }

  /** A message to one replica on the plain path (REQUEST-ACKs of one turn go out as one). */
  #sendToReplica(to: ReplicaId, message: ReplicaMessage): void {
    if (message.kind === 'request-ack') {
      this.#coalesceAcknowledgement(to, message);
      return;
    }
    const frame = encodeMessage(message);
    const node = replicaNode(to);
    this.#account('sent', node, message.kind, frame);
    this.#send(() => this.#transport?.send(node, frame));
  }

  /** One entry of the accountability log; a full buffer drops it (the log records the gap). */
  #account(direction: 'sent' | 'received', peer: NodeId | 'replicas', kind: string, frame: Uint8Array): void {
    const log = this.#accountability;
    if (log === null) return;
    // One-shot: a third cheaper than a Hash object for frames this small, and there is one per frame.
    const hash = oneShotHash('sha256', frame, 'buffer');
    log.append({
      direction,
      peer: peer === 'replicas' ? 'replicas' : `${peer.kind}:${peer.id}`,
      kind,
      digest: asDigest(new Uint8Array(hash.buffer, hash.byteOffset, hash.length)),
      atMs: Date.now(),
    });
  }

  /** A warning hostile input caused, rate limited per key (offender and kind). */
  #warnHostile(key: string, details: Record<string, unknown>, message: string): void {
    const permit = this.#hostileInputLog.admit(key);
    if (permit === null) return;
    this.#logger.warn(
      {
        ...details,
        suppressed: permit.suppressed,
        ...(permit.key === OVERFLOW_KEY ? { limitedAs: OVERFLOW_KEY } : {}),
      },
      message,
    );
  }

  /** The counts a burst of hostile input left owed when it stopped. */
  #reportSuppressed(): void {
    for (const owed of this.#hostileInputLog.overdue())
      this.#logger.warn(
        { key: owed.key, suppressed: owed.suppressed },
        'rejections suppressed by the log rate limit',
      );
  }

  #setFaultMode(mode: FaultMode | null): void {
    if (this.#interceptor === null) {
      if (mode !== null)
        this.#logger.error({ mode }, 'fault mode refused: the configuration does not allow fault injection');
      return;
    }
    this.#interceptor.setMode(mode);
    if (mode !== null)
      this.#logger.warn({ mode }, 'FAULT MODE ON: this replica now behaves like an intruder holds it');
  }

  /** Whether fault injection is installed (test and demo clusters only). */
  get faultInjectionInstalled(): boolean {
    return this.#interceptor !== null;
  }

  /** A client hands in proof that a replica lied: check it, then pass it to the guardian. */
  #onEvidenceReport(reporter: string, evidence: Evidence): void {
    // Checking a report costs up to n + 1 signature checks: one per reporter per interval.
    const now = performance.now();
    const last = this.#evidenceReportAt.get(reporter);
    if (last !== undefined && now - last < EVIDENCE_REPORT_INTERVAL_MS) {
      this.#metrics.rejected('evidence-report-rate');
      return;
    }
    if (this.#evidenceReportAt.size >= MAX_TRACKED_REPORTERS) this.#evidenceReportAt.clear();
    this.#evidenceReportAt.set(reporter, now);
    const verdict = verifyEvidence(evidence, evidenceContextOf(this.config, this.#crypto, this.#registry));
    if (!verdict.valid) {
      this.#metrics.rejected('evidence-report');
      this.#logger.warn(
        { reporter, kind: evidence.kind, reason: verdict.reason },
        'rejected evidence report',
      );
      return;
    }
    this.#logger.error(
      { reporter, evidence: evidence.kind, accused: evidence.accused },
      'misbehaviour reported with proof',
    );
    // Cut off from now, not from when the guardians' reactive slot comes (up to T_P away).
    this.#step({
      kind: 'cut-off',
      replica: evidence.accused,
      keyEpoch: provenKeyEpoch(evidence),
      reason: `proof: ${evidence.kind}, reported by ${reporter}`,
      proof: evidence,
    });
    // `reporter` is "client <id>": the guardian records the client as who found the lie.
    const origin = evidenceOrigin(reporter.replace(/^client /, ''));
    this.#guardian?.send({
      type: 'evidence',
      evidence: toBase64(encodeEvidence(evidence)),
      ...(origin === undefined ? {} : { origin }),
    });
  }

  #linkGuardian(link: GuardianLink): void {
    this.#guardian = link;
    link.onMessage((message) => this.#onGuardianMessage(message));
    this.#guardianStatusTimer = setInterval(() => this.#reportToGuardian(), 200);
    this.#progress('validating-state', `checkpoint ${this.#replica.stableCheckpoint.sequence}`);
    // A restored checkpoint found corrupt starts its transfer while the node is built, before
    // the link is attached: report it now, or the guardian counts the transfer as validation.
    if (this.#replica.stateTransferInProgress) this.#progress('transferring-state', 'begun at start-up');
  }

  #onGuardianMessage(message: GuardianToReplica): void {
    switch (message.type) {
      case 'certificates':
        this.#applyCertificates(message.certificates);
        break;
      case 'nudge-view-change':
        this.#step({
          kind: 'change-view',
          // The guardians nudge for a rejuvenated replica's rejoin and for a leader's handoff alike.
          reason: 'guardian: planned view change (a rejoin or a leader handoff)',
          avoidLeaders: message.avoidLeaders.filter((id) => id < this.config.n).map((id) => replicaId(id)),
          ...(message.aboveView === null ? {} : { aboveView: viewNumber(message.aboveView) }),
        });
        break;
      case 'fault':
        if (message.mode !== null && AT_START_ONLY_BEHAVIOURS.includes(message.mode)) {
          this.#logger.error(
            { mode: message.mode },
            'fault mode refused: it takes effect only when the replica starts in it (--fault-mode)',
          );
          break;
        }
        this.#setFaultMode(message.mode);
        break;
      case 'cut-off': {
        if (message.replica >= this.config.n) break;
        const proof = message.evidence === undefined ? null : decodeEvidence(fromBase64(message.evidence));
        if (proof !== null && !proof.ok)
          this.#logger.warn(
            { reason: proof.reason },
            "ignored the proof of a guardian's cut-off: it does not decode",
          );
        this.#step({
          kind: 'cut-off',
          replica: replicaId(message.replica),
          keyEpoch: keyEpoch(message.keyEpoch),
          reason: `guardian: ${message.reason}`,
          ...(proof?.ok === true && proof.value.accused === message.replica ? { proof: proof.value } : {}),
        });
        break;
      }
      case 'session-keys':
        this.#logger.warn('ignored session keys after start (keys change only with a new process)');
        break;
      case 'safe-mode': {
        const decoded = decodeForkProof(message.proof);
        if (!decoded.ok) {
          this.#logger.error(
            { reason: decoded.reason },
            "ignored the guardian's safe-mode order: its proof does not decode",
          );
          break;
        }
        this.#step({ kind: 'safe-mode-order', proof: decoded.proof });
        break;
      }
    }
  }

  /** New key epochs of other replicas: check, adopt, end sessions opened with their old keys, tell clients. */
  #applyCertificates(encoded: readonly string[]): void {
    const changed: KeyCertificate[] = [];
    for (const text of encoded) {
      const certificate = decodeKeyCertificate(fromBase64(text));
      if (certificate === null || !verifyCertificateForConfig(certificate, this.config)) {
        this.#logger.warn('ignored a key certificate that does not verify');
        continue;
      }
      // Announcements carry each replica's latest certificate: never replace it with an older one.
      const held = this.#certificates.get(certificate.replica);
      if (held === undefined || held.keyEpoch < certificate.keyEpoch)
        this.#certificates.set(certificate.replica, certificate);
      if (certificate.replica === this.id) continue;
      if (installCertificate(this.#registry, certificate)) changed.push(certificate);
    }
    if (changed.length === 0) return;
    this.#step({ kind: 'keys-changed' });
    for (const certificate of changed) {
      this.#logger.info(
        { epochOf: certificate.replica, keyEpoch: certificate.keyEpoch },
        'adopted a new key epoch',
      );
    }
    // Sessions a peer opened with an older epoch's key end now (the key may be stolen); a
    // session it already opened with the new key stays.
    const newEpochs = new Map(
      changed.map((certificate) => [certificate.replica as number, certificate.keyEpoch]),
    );
    this.#transport?.dropConnections((peer, session) => {
      const epoch = peer.kind === 'replica' ? newEpochs.get(peer.id) : undefined;
      return epoch !== undefined && (session === null || session.keyEpoch < epoch);
    });
    const announcement = encodeMessage({
      kind: 'key-announcement',
      certificates: [...this.#certificates.values()],
    });
    for (const peer of this.#transport?.connectedPeers() ?? []) {
      if (peer.kind === 'client') this.#transport?.send(peer, announcement);
    }
  }

  #progress(stage: RecoveryProgress, detail: string): void {
    if (this.#guardian === null || this.#lastProgress === stage) return;
    this.#lastProgress = stage;
    this.#guardian.send({ type: 'progress', stage, detail });
  }

  #reportToGuardian(): void {
    const replica = this.#replica;
    const settled =
      replica.votingFloorKnown && !replica.stateTransferInProgress && !replica.restoredStatePending;
    // The status first: the guardian acts on a progress step with the view it names (a rejoin
    // asks above the replica's rejoinAboveView), which must not be the one before the floor.
    this.#guardian?.send({
      type: 'status',
      view: replica.view,
      rejoinAboveView: replica.rejoinAboveView,
      lastExecuted: replica.lastExecuted,
      stableCheckpoint: replica.stableCheckpoint.sequence,
      stateTransferInProgress: replica.stateTransferInProgress,
      voting: replica.voting,
      peersExecuted: replica.peersExecuted,
    });
    const safeMode = replica.safeMode;
    if (safeMode !== null) {
      this.#progress('safe-mode', `serving checkpoint ${safeMode.checkpoint.sequence}`);
      return;
    }
    // Voting means it takes part again; under load it may trail the others by a batch or two.
    if (settled && replica.voting) this.#progress('voting', `executed ${replica.lastExecuted}`);
    else if (settled && replica.lastExecuted >= replica.peersExecuted)
      this.#progress('caught-up', `executed ${replica.lastExecuted}`);
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
    // DNS rebinding: a page the operator visits must not read status or stolen-key debug output.
    if (!hostHeaderAllowed(request, this.config.replicas[this.id]!.adminHost)) {
      refuseHostHeader(response, 'replica admin server');
      return;
    }
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
    } else if (path === '/debug/stolen-keys' && this.config.allowFaultInjection && this.#loot !== null) {
      const loot = this.#loot;
      response.writeHead(200, { 'content-type': 'application/json' }).end(
        JSON.stringify({
          replica: this.id,
          keyEpoch: loot.keyEpoch,
          signingSeed: toBase64(loot.signingSeed),
          certificate: loot.certificate === null ? null : toBase64(loot.certificate),
        }),
      );
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
    this.#interceptor?.close();
    if (this.#guardianStatusTimer !== null) clearInterval(this.#guardianStatusTimer);
    if (this.#lazyFlushTimer !== null) clearTimeout(this.#lazyFlushTimer);
    if (this.#suppressedReportTimer !== null) clearInterval(this.#suppressedReportTimer);
    await this.#transport?.close();
    await new Promise<void>((resolve) =>
      this.#admin === null ? resolve() : this.#admin.close(() => resolve()),
    );
    try {
      await this.#storage.flush();
    } finally {
      await this.#storage.close();
      await this.#accountability?.close().catch((error: unknown) => {
        this.#logger.error({ err: error }, 'accountability log could not be closed cleanly');
      });
    }
    // The logger's base already names this replica.
    this.#logger.info('replica stopped');
  }
}

/**
 * Opens (and continues) the accountability log. One that is broken is evidence: it is moved
 * aside for an operator, never appended to, and a fresh log starts; a log that cannot be opened at
 * all costs accountability, not availability.
 */
async function openAccountabilityLog(path: string, logger: Logger): Promise<AccountabilityLog | null> {
  try {
    return await AccountabilityLog.open(path);
  } catch (error) {
    if (!(error instanceof AccountabilityLogError)) {
      logger.error({ err: error, path }, 'accountability log unavailable; running without it');
      return null;
    }
    const aside = `${path}.broken-${Date.now()}`;
    logger.error({ reason: error.message, movedTo: aside }, 'accountability log is broken; kept as evidence');
    try {
      renameSync(path, aside);
      return await AccountabilityLog.open(path);
    } catch (retry) {
      logger.error({ err: retry, path }, 'accountability log unavailable; running without it');
      return null;
    }
  }
}
