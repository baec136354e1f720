/**
 * A small deterministic in-memory cluster of real `Replica` cores for protocol tests, in the style of
 * etcd-raft's raft_paper_test.go: no simulator, no randomness, no timers. Replica → replica messages
 * go through one FIFO queue (round-tripped through the wire codec) and an optional filter that can
 * drop, hold or duplicate them; time only moves when a test calls `tick`. Everything each replica
 * emits is recorded: every step's action list, persisted records (a per-replica disk a restart
 * reads back), replies per client, executed batches, evidence, suspicions and log lines.
 *
 * Usage:
 * ```ts
 * const cluster = new Harness();
 * const alice = cluster.client('alice');
 * cluster.submit(alice.request(kvPut('x', '1')));
 * cluster.run();
 * assert.equal(cluster.replies('alice').length, 4);
 * ```
 */

import { decodeKvResult, encodeKvOperation, type KvResult, KvService } from '../../src/apps/kv/index.js';
import {
  type Action,
  type DurableRecord,
  type ExecutedRequest,
  recordSequence,
  type StoredCheckpoint,
} from '../../src/core/actions.js';
import { defaultProtocolConfig, type ProtocolConfig } from '../../src/core/config.js';
import type { CoreCrypto } from '../../src/core/crypto.js';
import type { ReplicaEvent } from '../../src/core/events.js';
import {
  type ClientId,
  clientId,
  type Digest,
  keyEpoch,
  type ReplicaId,
  replicaId,
  requestNumber,
  type SequenceNumber,
  sequenceNumber,
  type ViewNumber,
  viewNumber,
} from '../../src/messages/ids.js';
import { Replica, type RestoredState, type TestingFaults } from '../../src/core/replica.js';
import type { ValidOtherEvidence } from '../../src/core/forensics.js';
import type { FaultModel } from '../../src/core/quorum.js';
import { type EvidenceContext, verifyEvidence } from '../../src/detection/evidence.js';
import { ClientCrypto, type ClientKeys, clientKeysFromSeed } from '../../src/crypto/client-crypto.js';
import { KeyRegistry } from '../../src/crypto/key-registry.js';
import { deriveSeed } from '../../src/crypto/keys.js';
import {
  ReplicaCrypto,
  type ReplicaSessionKeys,
  sessionKeysFromSeed,
} from '../../src/crypto/replica-crypto.js';
import { decodeMessage, encodeMessage } from '../../src/messages/codec.js';
import { batchContent, commitPayload, proposalPayload, requestContent } from '../../src/messages/signing.js';
import type {
  ClientRequest,
  Commit,
  Evidence,
  ForensicProof,
  PrePrepare,
  ReplicaMessage,
  Reply,
} from '../../src/messages/types.js';

// ───────────────────────────── configuration and keys ─────────────────────────────

/** Small numbers so that a few batches and a few seconds of logical time exercise everything. */
export function testProtocolConfig(
  model: { n: number; f: number; k: number } = { n: 4, f: 1, k: 0 },
  overrides: Partial<ProtocolConfig> = {},
): ProtocolConfig {
  return {
    ...defaultProtocolConfig(model),
    checkpointInterval: 4,
    logWindow: 16,
    pipelineDepth: 4,
    maxBatchRequests: 8,
    maxOutstandingPerClient: 16,
    requestTimeoutMs: 1000,
    viewChangeTimeoutMs: 1000,
    retransmitIntervalMs: 200,
    statusIntervalMs: 300,
    catchUpTimeoutMs: 500,
    stateTransfer: { sourceTimeoutMs: 500, chunksPerRequest: 4, maxRequestsInFlightPerSource: 2 },
    retainedCheckpoints: 3,
    clientTableChunks: 4,
    requireClientSignatures: false,
    ...overrides,
  };
}

const MASTER_SEED = (() => {
  const seed = new Uint8Array(32);
  seed.set(new TextEncoder().encode('phalanx replica paper tests v1'));
  return seed;
})();

// Key derivation (Ed25519 + X25519 from seeds) is the slowest part of a setup: do it once per name.
const replicaKeyCache = new Map<number, ReplicaSessionKeys>();
const clientKeyCache = new Map<string, ClientKeys>();

export function replicaSessionKeys(index: number): ReplicaSessionKeys {
  let keys = replicaKeyCache.get(index);
  if (keys === undefined) {
    keys = sessionKeysFromSeed(deriveSeed(MASTER_SEED, `replica:${index}`));
    replicaKeyCache.set(index, keys);
  }
  return keys;
}

function clientKeys(name: string): ClientKeys {
  let keys = clientKeyCache.get(name);
  if (keys === undefined) {
    keys = clientKeysFromSeed(deriveSeed(MASTER_SEED, `client:${name}`), { signing: true });
    clientKeyCache.set(name, keys);
  }
  return keys;
}

// ───────────────────────────── KV helpers ─────────────────────────────

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder();

export const kv = {
  put: (key: string, value: string): Uint8Array =>
    encodeKvOperation({ kind: 'put', key, value: utf8.encode(value) }),
  get: (key: string): Uint8Array => encodeKvOperation({ kind: 'get', key }),
  cas: (key: string, expected: string | null, value: string): Uint8Array =>
    encodeKvOperation({
      kind: 'compareAndSet',
      key,
      expected: expected === null ? null : utf8.encode(expected),
      value: utf8.encode(value),
    }),
  /** Decodes a reply's result; throws on malformed bytes. */
  result(bytes: Uint8Array): KvResult {
    const decoded = decodeKvResult(bytes);
    if (!decoded.ok) throw new Error(`malformed KV result: ${decoded.reason}`);
    return decoded.value;
  },
  /** The value of a `get` result as text (null when absent). */
  value(bytes: Uint8Array): string | null {
    const result = kv.result(bytes);
    if (result.kind !== 'value') throw new Error(`not a get result: ${result.kind}`);
    return result.value === null ? null : fromUtf8.decode(result.value);
  },
};

// ───────────────────────────── clients ─────────────────────────────

/** A replica's evidence check as the runtime builds it: the rules of verifyEvidence, the registry's keys. */
/** What a third party with the registry's public keys checks evidence with. */
export function evidenceContext(
  model: FaultModel,
  registry: KeyRegistry,
  hash: (data: Uint8Array) => Digest,
): EvidenceContext {
  return {
    model,
    hash,
    verifyReplicaSignature: (signer, epoch, payload, signature) =>
      registry.verifyReplicaSignature(signer, epoch, payload, signature),
    currentEpoch: (replica) => registry.currentEpoch(replica),
  };
}

export function evidenceChecker(
  model: FaultModel,
  registry: KeyRegistry,
  hash: (data: Uint8Array) => Digest,
): ValidOtherEvidence {
  const context = evidenceContext(model, registry, hash);
  return (evidence) => verifyEvidence(evidence, context).valid;
}

export class HarnessClient {
  readonly id: ClientId;
  readonly crypto: ClientCrypto;
  readonly #hash: (data: Uint8Array) => Digest;
  #next = 1;

  constructor(id: ClientId, crypto: ClientCrypto, hash: (data: Uint8Array) => Digest) {
    this.id = id;
    this.crypto = crypto;
    this.#hash = hash;
  }

  /** A fully authenticated request (authenticator for every replica and a signature). */
  request(
    operation: Uint8Array,
    options: { readonly readOnly?: boolean; readonly requestNumber?: number } = {},
  ): ClientRequest {
    const number = options.requestNumber ?? this.#next++;
    const unsigned = {
      kind: 'request' as const,
      clientId: this.id,
      requestNumber: requestNumber(number),
      readOnly: options.readOnly === true,
      operation,
    };
    const digest = this.digest(unsigned);
    return {
      ...unsigned,
      authenticator: this.crypto.authenticator(digest),
      signature: this.crypto.signRequest(digest),
    };
  }

  /** The request digest replicas compute (over client, number, read-only flag and operation). */
  digest(request: Omit<ClientRequest, 'authenticator' | 'signature'>): Digest {
    return this.#hash(requestContent({ ...request, authenticator: [], signature: null }));
  }
}

// ───────────────────────────── disk ─────────────────────────────

/** What survives a crash of one replica: persisted records above the stored checkpoint. */
export class HarnessDisk {
  records: DurableRecord[] = [];
  checkpoint: StoredCheckpoint | null = null;
  view: ViewNumber | null = null;
  viewChangeInProgress = false;

  append(record: DurableRecord): void {
    if (record.kind === 'view') {
      this.view = record.view;
      this.viewChangeInProgress = record.viewChangeInProgress;
    }
    this.records.push(record);
  }

  storeCheckpoint(checkpoint: StoredCheckpoint): void {
    this.checkpoint = checkpoint;
    const stable = checkpoint.certificate.sequence;
    this.records = this.records.filter((record) => record.kind === 'view' || recordSequence(record) > stable);
  }

  wipe(): void {
    this.records = [];
    this.checkpoint = null;
    this.view = null;
    this.viewChangeInProgress = false;
  }

  get empty(): boolean {
    return this.records.length === 0 && this.checkpoint === null && this.view === null;
  }

  /** The RestoredState a restarted replica is built from (undefined for an empty disk). */
  read(): RestoredState | undefined {
    if (this.empty) return undefined;
    const checkpoint = this.checkpoint;
    return {
      view: this.view ?? viewNumber(0),
      viewChangeInProgress: this.viewChangeInProgress,
      checkpoint:
        checkpoint === null
          ? null
          : {
              certificate: checkpoint.certificate,
              leaves: checkpoint.leaves,
              chunks: checkpoint.chunks.slice(),
            },
      records: this.records.slice(),
    };
  }
}

export { recordSequence };

/** A pre-prepare signed with replica `signer`'s real key (what a leader, correct or not, can produce). */
/** `signer`'s COMMIT for (view, sequence, batchDigest), signed with its current key. */
export function signedCommit(
  cluster: Harness,
  signer: number,
  vote: { readonly view: ViewNumber; readonly sequence: SequenceNumber; readonly batchDigest: Digest },
): Commit {
  const signed = cluster.cryptos[signer]!.sign(commitPayload(vote.view, vote.sequence, vote.batchDigest));
  return {
    kind: 'commit',
    view: vote.view,
    sequence: vote.sequence,
    batchDigest: vote.batchDigest,
    replicaId: replicaId(signer),
    keyEpoch: signed.keyEpoch,
    signature: signed.signature,
  };
}

export function signedPrePrepare(
  cluster: Harness,
  signer: number,
  view: number,
  sequence: number,
  batch: readonly ClientRequest[],
): PrePrepare {
  const crypto = cluster.cryptos[signer]!;
  const batchDigest = crypto.hash(batchContent(batch.map((request) => crypto.hash(requestContent(request)))));
  const signed = crypto.sign(proposalPayload(viewNumber(view), sequenceNumber(sequence), batchDigest));
  return {
    kind: 'pre-prepare',
    view: viewNumber(view),
    sequence: sequenceNumber(sequence),
    batchDigest,
    batch,
    keyEpoch: signed.keyEpoch,
    signature: signed.signature,
  };
}

// ───────────────────────────── the cluster ─────────────────────────────

export interface Envelope {
  readonly from: ReplicaId;
  readonly to: ReplicaId;
  readonly message: ReplicaMessage;
}

/** What happens to a message when it reaches the head of the queue. */
export type Verdict = 'deliver' | 'drop' | 'hold' | 'duplicate';
export type MessageFilter = (envelope: Envelope) => Verdict;

export type ExecutedAction = Extract<Action, { kind: 'executed' }>;
export type LogAction = Extract<Action, { kind: 'log' }>;
export type SuspectAction = Extract<Action, { kind: 'suspect' }>;

/** One step of one replica: the event it was given and the action list it returned. */
export interface StepRecord {
  readonly replica: ReplicaId;
  readonly event: ReplicaEvent;
  readonly actions: readonly Action[];
  /** Which incarnation of the replica (0, then one more per restart). */
  readonly incarnation: number;
}

export interface HarnessOptions {
  readonly n?: number;
  readonly f?: number;
  readonly k?: number;
  readonly config?: Partial<ProtocolConfig>;
  readonly bucketCount?: number;
  /** Client names that get keys and full KV access; more can be added with client(). */
  readonly clients?: readonly string[];
  /** Deliberately broken rules (to check that a test can fail at all). */
  readonly testing?: TestingFaults;
  /** What the cores get as crypto (default: the replica's ReplicaCrypto), e.g. one whose epochs expire. */
  readonly coreCrypto?: (crypto: ReplicaCrypto, id: ReplicaId) => CoreCrypto;
  /** One replica's own protocol configuration (default: `config` for all), as a fault mode makes it. */
  readonly replicaConfig?: (config: ProtocolConfig, id: ReplicaId) => ProtocolConfig;
}

export class Harness {
  readonly n: number;
  readonly config: ProtocolConfig;
  readonly registry: KeyRegistry;
  readonly cryptos: readonly ReplicaCrypto[];
  /** What each core is given (the same objects as `cryptos` unless HarnessOptions.coreCrypto). */
  readonly coreCryptos: readonly CoreCrypto[];
  readonly replicas: (Replica | null)[] = [];
  readonly services: (KvService | null)[] = [];
  readonly disks: HarnessDisk[] = [];
  readonly incarnations: number[] = [];

  /** Every step of every replica, in order. */
  readonly steps: StepRecord[] = [];
  /** Messages waiting for delivery, oldest first. */
  readonly queue: Envelope[] = [];
  /** Messages the filter held back; release() puts them back in the queue. */
  readonly held: Envelope[] = [];
  readonly dropped: Envelope[] = [];
  /** Every message put on the wire (sends, and one envelope per broadcast recipient). */
  readonly sent: Envelope[] = [];
  filter: MessageFilter | null = null;
  /** Replicas cut off from everybody: messages from or to them are dropped. */
  readonly disconnected = new Set<number>();
  now = 0;

  readonly #clients = new Map<string, HarnessClient>();
  readonly #replies = new Map<string, Reply[]>();
  readonly #bucketCount: number;
  readonly #testing: TestingFaults;
  readonly #replicaConfig: (config: ProtocolConfig, id: ReplicaId) => ProtocolConfig;
  readonly #afterStep: ((record: StepRecord, replica: Replica) => void)[] = [];

  constructor(options: HarnessOptions = {}) {
    this.n = options.n ?? 4;
    const f = options.f ?? 1;
    const k = options.k ?? 0;
    this.config = testProtocolConfig({ n: this.n, f, k }, options.config);
    this.#bucketCount = options.bucketCount ?? 8;
    this.#testing = options.testing ?? {};
    this.#replicaConfig = options.replicaConfig ?? ((config) => config);
    this.registry = new KeyRegistry(this.n);
    this.cryptos = Array.from(
      { length: this.n },
      (_, index) =>
        new ReplicaCrypto({
          replica: replicaId(index),
          registry: this.registry,
          epoch: keyEpoch(0),
          sessionKeys: replicaSessionKeys(index),
        }),
    );
    const wrap = options.coreCrypto;
    this.coreCryptos = this.cryptos.map((crypto, index) =>
      wrap === undefined ? crypto : wrap(crypto, replicaId(index)),
    );
    for (const name of options.clients ?? ['alice', 'bob', 'carol', 'dave']) this.#registerClient(name);
    for (let index = 0; index < this.n; index++) {
      this.disks.push(new HarnessDisk());
      this.incarnations.push(0);
      this.replicas.push(null);
      this.services.push(null);
      this.#boot(replicaId(index), undefined, false);
    }
  }

  // ── construction ──

  #registerClient(name: string): HarnessClient {
    const id = clientId(name);
    const keys = clientKeys(name);
    this.registry.registerClient(id, {
      agreement: keys.agreement.publicKey,
      signing: keys.signing!.publicKey,
    });
    const client = new HarnessClient(
      id,
      new ClientCrypto({ client: id, keys, registry: this.registry }),
      (data) => this.cryptos[0]!.hash(data),
    );
    this.#clients.set(name, client);
    this.#replies.set(name, []);
    return client;
  }

  #accessControl(): Record<string, { keyspaces: string[] }> {
    return Object.fromEntries([...this.#clients.keys()].map((name) => [name, { keyspaces: ['*'] }]));
  }

  #boot(
    id: ReplicaId,
    restored: RestoredState | undefined,
    amnesiac: boolean,
    safeModeOrder?: ForensicProof,
  ): Replica {
    const service = new KvService({ accessControl: this.#accessControl(), bucketCount: this.#bucketCount });
    const replica = new Replica({
      config: this.#replicaConfig(this.config, id),
      id,
      crypto: this.coreCryptos[id]!,
      checkEvidence: evidenceChecker(this.config, this.registry, (data) => this.cryptos[0]!.hash(data)),
      service,
      ...(restored === undefined ? {} : { restored }),
      amnesiac,
      ...(safeModeOrder === undefined ? {} : { safeModeOrder }),
      testing: this.#testing,
    });
    this.replicas[id] = replica;
    this.services[id] = service;
    return replica;
  }

  /** The named client (registered on first use; replicas built later grant it access too). */
  client(name: string): HarnessClient {
    return this.#clients.get(name) ?? this.#registerClient(name);
  }

  replica(id: number): Replica {
    const replica = this.replicas[id];
    if (replica == null) throw new Error(`replica ${id} is not running`);
    return replica;
  }

  /** An empty proposal for `sequence` in view 0, validly signed by replica 0 (the view's leader). */
  proposal(sequence: number): PrePrepare {
    const crypto = this.cryptos[0]!;
    const batchDigest = crypto.hash(new Uint8Array([sequence]));
    const signed = crypto.sign(proposalPayload(viewNumber(0), sequenceNumber(sequence), batchDigest));
    return {
      kind: 'pre-prepare',
      view: viewNumber(0),
      sequence: sequenceNumber(sequence),
      batchDigest,
      batch: [],
      keyEpoch: signed.keyEpoch,
      signature: signed.signature,
    };
  }

  service(id: number): KvService {
    const service = this.services[id];
    if (service == null) throw new Error(`replica ${id} is not running`);
    return service;
  }

  get ids(): ReplicaId[] {
    return Array.from({ length: this.n }, (_, index) => replicaId(index));
  }

  /** Called after every step of any replica (to watch observable state change over time). */
  afterStep(observer: (record: StepRecord, replica: Replica) => void): void {
    this.#afterStep.push(observer);
  }

  // ── crash and restart ──

  crash(id: number): void {
    this.replicas[id] = null;
    this.services[id] = null;
  }

  /** Restarts from the replica's own disk ('intact') or from nothing ('amnesiac', the disk is wiped). */
  restart(id: number, how: 'intact' | 'amnesiac'): Replica {
    if (this.replicas[id] != null) this.crash(id);
    const disk = this.disks[id]!;
    if (how === 'amnesiac') disk.wipe();
    this.incarnations[id]!++;
    const replica = this.#boot(replicaId(id), how === 'intact' ? disk.read() : undefined, how === 'amnesiac');
    this.step(id, { kind: 'tick', now: this.now });
    return replica;
  }

  /**
   * A rejuvenation as the guardian does it: a new process that keeps the stored checkpoint (verified
   * as it is installed) but drops the log, so it is amnesiac. `safeModeOrder`: the guardian holds
   * a fork proof (ReplicaOptions.safeModeOrder).
   */
  rejuvenate(id: number, safeModeOrder?: ForensicProof): Replica {
    if (this.replicas[id] != null) this.crash(id);
    const disk = this.disks[id]!;
    disk.records = [];
    disk.view = null;
    disk.viewChangeInProgress = false;
    this.incarnations[id]!++;
    const replica = this.#boot(replicaId(id), disk.read(), true, safeModeOrder);
    this.step(id, { kind: 'tick', now: this.now });
    return replica;
  }

  // ── driving ──

  /** Feeds one event to one replica and carries out the actions it returns. */
  step(id: number, event: ReplicaEvent): readonly Action[] {
    const replica = this.replicas[id];
    if (replica == null) return [];
    const actions = replica.step(event);
    const record: StepRecord = {
      replica: replicaId(id),
      event,
      actions,
      incarnation: this.incarnations[id]!,
    };
    this.steps.push(record);
    for (const action of actions) this.#perform(replicaId(id), action);
    for (const observer of this.#afterStep) observer(record, replica);
    return actions;
  }

  #perform(id: ReplicaId, action: Action): void {
    switch (action.kind) {
      case 'persist':
        this.disks[id]!.append(action.record);
        return;
      case 'persist-checkpoint':
        this.disks[id]!.storeCheckpoint(action.checkpoint);
        return;
      case 'send':
        this.#enqueue({ from: id, to: action.to, message: action.message });
        return;
      case 'broadcast':
        for (let other = 0; other < this.n; other++)
          if (other !== id) this.#enqueue({ from: id, to: replicaId(other), message: action.message });
        return;
      case 'reply': {
        let list = this.#replies.get(action.to);
        if (list === undefined) {
          list = [];
          this.#replies.set(action.to, list);
        }
        list.push(roundTrip(action.reply) as Reply);
        return;
      }
      default:
        return;
    }
  }

  #enqueue(envelope: Envelope): void {
    // Through the codec, as on a real wire: no object is shared between replicas.
    const message = roundTrip(envelope.message) as ReplicaMessage;
    const copy = { ...envelope, message };
    this.sent.push(copy);
    this.queue.push(copy);
  }

  /** Puts a message in the queue as if `from` had sent it (forged or hand-built messages). */
  inject(from: number, to: number, message: ReplicaMessage): void {
    this.queue.push({
      from: replicaId(from),
      to: replicaId(to),
      message: roundTrip(message) as ReplicaMessage,
    });
  }

  /** Delivers a message to one replica right now, bypassing queue and filter. */
  deliver(from: number, to: number, message: ReplicaMessage): readonly Action[] {
    return this.step(to, {
      kind: 'message',
      from: replicaId(from),
      message: roundTrip(message) as ReplicaMessage,
    });
  }

  /** A client request arrives at the given replicas (all by default, disconnected ones skipped), in order. */
  submit(request: ClientRequest, to: readonly number[] = this.ids): void {
    for (const id of to) {
      if (this.disconnected.has(id)) continue;
      this.step(id, { kind: 'client-request', request: roundTrip(request) as ClientRequest });
    }
  }

  /** Delivers the message at the head of the queue; false when the queue is empty. */
  deliverNext(): boolean {
    const envelope = this.queue.shift();
    if (envelope === undefined) return false;
    if (this.disconnected.has(envelope.from) || this.disconnected.has(envelope.to)) {
      this.dropped.push(envelope);
      return true;
    }
    const verdict = this.filter?.(envelope) ?? 'deliver';
    switch (verdict) {
      case 'drop':
        this.dropped.push(envelope);
        return true;
      case 'hold':
        this.held.push(envelope);
        return true;
      case 'duplicate':
        this.step(envelope.to, { kind: 'message', from: envelope.from, message: envelope.message });
        this.step(envelope.to, { kind: 'message', from: envelope.from, message: envelope.message });
        return true;
      case 'deliver':
        this.step(envelope.to, { kind: 'message', from: envelope.from, message: envelope.message });
        return true;
    }
  }

  /** Delivers until no message is queued (held ones stay held); throws past the step bound. */
  run(maxSteps = 100_000): number {
    let delivered = 0;
    while (this.queue.length > 0) {
      if (delivered >= maxSteps) throw new Error(`not quiescent after ${maxSteps} deliveries`);
      this.deliverNext();
      delivered++;
    }
    return delivered;
  }

  /** Moves held messages (those matching, or all) back to the end of the queue. */
  release(predicate: (envelope: Envelope) => boolean = () => true): number {
    const keep: Envelope[] = [];
    let released = 0;
    for (const envelope of this.held) {
      if (predicate(envelope)) {
        this.queue.push(envelope);
        released++;
      } else keep.push(envelope);
    }
    this.held.splice(0, this.held.length, ...keep);
    return released;
  }

  /** Advances the logical clock by `ms` and ticks every running replica (messages stay queued). */
  tick(ms: number): void {
    this.now += ms;
    for (let id = 0; id < this.n; id++) this.step(id, { kind: 'tick', now: this.now });
  }

  /** Ticks in `stepMs` increments, running to quiescence after each, for `totalMs`. */
  advance(totalMs: number, stepMs = 50): void {
    const until = this.now + totalMs;
    while (this.now < until) {
      this.tick(Math.min(stepMs, until - this.now));
      this.run();
    }
  }

  /** Like advance() but stops as soon as `done()` holds; returns whether it did within `maxMs`. */
  advanceUntil(done: () => boolean, maxMs: number, stepMs = 50): boolean {
    const until = this.now + maxMs;
    this.run();
    while (!done()) {
      if (this.now >= until) return false;
      this.tick(stepMs);
      this.run();
    }
    return true;
  }

  /** Submits one request everywhere it should go and runs to quiescence. */
  execute(request: ClientRequest, to?: readonly number[]): void {
    this.submit(request, to);
    this.run();
  }

  // ── observations ──

  replies(client: string): Reply[] {
    return this.#replies.get(client) ?? [];
  }

  repliesTo(request: ClientRequest): Reply[] {
    return this.replies(request.clientId).filter(
      (reply) => reply.requestNumber === request.requestNumber && reply.readOnly === request.readOnly,
    );
  }

  actionsOf(id: number, incarnation?: number): Action[] {
    return this.steps
      .filter(
        (step) => step.replica === id && (incarnation === undefined || step.incarnation === incarnation),
      )
      .flatMap((step) => step.actions);
  }

  stepsOf(id: number): StepRecord[] {
    return this.steps.filter((step) => step.replica === id);
  }

  executed(id: number): ExecutedAction[] {
    return this.actionsOf(id).filter((action): action is ExecutedAction => action.kind === 'executed');
  }

  /** The messages of one kind replica `id` broadcast, in order (every incarnation). */
  broadcastsOf<Kind extends ReplicaMessage['kind']>(
    id: number,
    kind: Kind,
  ): Extract<ReplicaMessage, { kind: Kind }>[] {
    return this.actionsOf(id).flatMap((action) =>
      action.kind === 'broadcast' && action.message.kind === kind
        ? [action.message as Extract<ReplicaMessage, { kind: Kind }>]
        : [],
    );
  }

  evidence(id: number): Evidence[] {
    return this.actionsOf(id).flatMap((action) => (action.kind === 'evidence' ? [action.evidence] : []));
  }

  suspicions(id: number): SuspectAction[] {
    return this.actionsOf(id).filter((action): action is SuspectAction => action.kind === 'suspect');
  }

  /** Why replica `observer` suspected replica `suspect`, in order. */
  suspicionReasons(observer: number, suspect: number): string[] {
    return this.suspicions(observer)
      .filter((suspicion) => suspicion.replica === suspect)
      .map((suspicion) => suspicion.reason);
  }

  /** Why replica `observer` refused input (its `rejected-input` logs), in order. */
  rejectionReasons(observer: number): string[] {
    return this.logs(observer, 'rejected-input').map((log) => String(log.details.reason));
  }

  logs(id: number, event?: string): LogAction[] {
    return this.actionsOf(id).filter(
      (action): action is LogAction =>
        action.kind === 'log' && (event === undefined || action.event === event),
    );
  }

  /** Where a request was executed (not skipped) at a replica, or undefined. */
  executionOf(
    id: number,
    request: ClientRequest,
  ): { sequence: SequenceNumber; batchDigest: Digest } | undefined {
    for (const action of this.executed(id)) {
      if (action.requests.some((entry) => sameRequest(entry, request) && !entry.skipped))
        return { sequence: action.sequence, batchDigest: action.batchDigest };
    }
    return undefined;
  }

  /** Answer of a replica's own KV service to a read (directly, not through the protocol). */
  read(id: number, key: string): string | null {
    const bytes = this.service(id).executeReadOnly(kv.get(key), {
      clientId: clientId('alice'),
      requestNumber: requestNumber(0),
      sequence: this.replica(id).lastExecuted,
    });
    return kv.value(bytes);
  }

  /** The service snapshot of a replica (its whole KV state as chunks). */
  snapshot(id: number): readonly Uint8Array[] {
    return this.service(id).snapshot();
  }
}

export function sameRequest(entry: ExecutedRequest, request: ClientRequest): boolean {
  return entry.clientId === request.clientId && entry.requestNumber === request.requestNumber;
}

function roundTrip(message: ReplicaMessage | ClientRequest | Reply): ReplicaMessage | ClientRequest | Reply {
  const decoded = decodeMessage(encodeMessage(message));
  if (!decoded.ok) throw new Error(`codec round trip of ${message.kind} failed: ${decoded.reason}`);
  if (decoded.value.kind === 'key-announcement') {
    throw new Error(`codec round trip turned a ${message.kind} into a ${decoded.value.kind}`);
  }
  return decoded.value;
}
