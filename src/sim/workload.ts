/**
 * Simulated clients: correct ones run a closed-loop key-value workload through the real client
 * protocol (ClientSession) and record a history for the linearizability checker; a faulty one
 * sends conflicting duplicates, bad authenticators and bad signatures; a large-value one tries to
 * make the replicated state too large to checkpoint.
 */

import {
  decodeKvResult,
  encodeKvOperation,
  KV_LIMITS,
  type KvOperation as ServiceOperation,
} from '../apps/kv/operations.js';
import type { ClientAction, ClientProtocolConfig, UnauthenticatedRequest } from '../core/client-protocol.js';
import type { ServiceSimulation } from '../core/service.js';
import { ClientSession } from '../core/client-protocol.js';
import type { ClientId, Digest, KeyEpoch, ReplicaId } from '../messages/ids.js';
import { requestNumber, toHex } from '../messages/ids.js';
import { LIMITS } from '../messages/limits.js';
import { requestContent } from '../messages/signing.js';
import type { ClientRequest, Evidence, Reply } from '../messages/types.js';
import type { HistoryEntry, KvOperation, KvResult } from './checkers/linearizability.js';
import type { Prng } from './prng.js';
import type { SimulatorClientCrypto } from './sim-crypto.js';

export interface ClientEnvironment {
  now(): number;
  hash(data: Uint8Array): Digest;
  /** Sends to every replica. */
  sendToAll(from: ClientId, request: ClientRequest): void;
  sendToReplica(from: ClientId, replica: number, request: ClientRequest): void;
  after(delayMs: number, run: () => void): void;
  /** Every request a client authenticated, so the validity checker knows what clients really sent. */
  recordSent(digest: Digest): void;
  /** A client proved that a replica signed a reply that contradicts a quorum certificate. */
  reportEvidence(from: ClientId, evidence: Evidence): void;
  /** A replica's current key epoch as the shared registry holds it (a real client learns it from key announcements). */
  replicaEpoch(replica: ReplicaId): KeyEpoch | undefined;
}

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder();
export const SIMULATION_KEYS = ['k0', 'k1', 'k2', 'k3', 'k4'] as const;

interface InFlight {
  readonly entryId: number;
  /** null: an operation of another service (simulation hooks), which the history does not model. */
  readonly operation: KvOperation | null;
  readonly invokedAt: number;
}

export class SimulatedClient {
  readonly id: ClientId;
  readonly history: HistoryEntry[] = [];
  readonly #session: ClientSession;
  readonly #environment: ClientEnvironment;
  readonly #prng: Prng;
  readonly #operations: number;
  /** No new operation is invoked from this time on; the ones in flight must still complete. */
  readonly #invokeUntil: number;
  readonly #readOnlyShare: number;
  #invoked = 0;
  /** f + 1 replicas refused one of its operations in safe mode: it invokes nothing more. */
  #stoppedBySafeMode = false;
  #completed = 0;
  #nextEntryId: () => number;
  readonly #serviceOperations: ServiceSimulation | null;
  readonly #inFlight = new Map<number, InFlight>();
  #finishedAt: number | null = null;
  fastReads = 0;

  constructor(options: {
    id: ClientId;
    config: ClientProtocolConfig;
    crypto: SimulatorClientCrypto;
    environment: ClientEnvironment;
    prng: Prng;
    operations: number;
    invokeUntil: number;
    readOnlyShare: number;
    signRequests: boolean;
    nextEntryId: () => number;
    /** Another service's operations (its simulation hooks) instead of the key-value workload. */
    serviceOperations?: ServiceSimulation | null;
  }) {
    this.#serviceOperations = options.serviceOperations ?? null;
    this.id = options.id;
    this.#environment = options.environment;
    this.#prng = options.prng;
    this.#operations = options.operations;
    this.#invokeUntil = options.invokeUntil;
    this.#readOnlyShare = options.readOnlyShare;
    this.#nextEntryId = options.nextEntryId;
    const { crypto, environment, signRequests } = options;
    this.#session = new ClientSession(options.config, options.id, (unsigned: UnauthenticatedRequest) => {
      const digest = environment.hash(requestContent({ ...unsigned, authenticator: [], signature: null }));
      environment.recordSent(digest);
      return {
        ...unsigned,
        authenticator: crypto.authenticator(digest),
        signature: signRequests ? crypto.signRequest(digest) : null,
      };
    });
  }

  /** Everything invoked has completed and nothing more will be invoked. */
  get done(): boolean {
    const stopped =
      this.#stoppedBySafeMode ||
      this.#invoked >= this.#operations ||
      this.#environment.now() >= this.#invokeUntil;
    return stopped && this.#inFlight.size === 0;
  }
  get invoked(): number {
    return this.#invoked;
  }
  get finishedAt(): number | null {
    return this.#finishedAt;
  }
  get completed(): number {
    return this.#completed;
  }
  get outstanding(): number {
    return this.#inFlight.size;
  }

  start(): void {
    this.#fill();
  }

  #fill(): void {
    const now = this.#environment.now();
    while (
      !this.#stoppedBySafeMode &&
      this.#invoked < this.#operations &&
      now < this.#invokeUntil &&
      this.#session.canInvoke
    )
      this.#invokeNext();
    if (this.done && this.#finishedAt === null) this.#finishedAt = now;
  }

  #invokeNext(): void {
    if (this.#serviceOperations !== null) {
      const next = this.#serviceOperations.nextOperation(() => this.#prng.next(), this.id, this.#invoked);
      this.#invoked++;
      const now = this.#environment.now();
      const { invocation, actions } = this.#session.invoke(next.operation, { readOnly: next.readOnly }, now);
      this.#inFlight.set(invocation, { entryId: this.#nextEntryId(), operation: null, invokedAt: now });
      this.#perform(actions);
      return;
    }
    const prng = this.#prng;
    const key = prng.pick(SIMULATION_KEYS);
    const value = `${this.id}:${this.#invoked}`;
    const roll = prng.next();
    let operation: KvOperation;
    let serviceOperation: ServiceOperation;
    let readOnly = false;
    if (roll < 0.35) {
      operation = { kind: 'put', key, value };
      serviceOperation = { kind: 'put', key, value: textEncoder.encode(value) };
    } else if (roll < 0.7) {
      operation = { kind: 'get', key };
      serviceOperation = { kind: 'get', key };
      readOnly = prng.chance(this.#readOnlyShare);
    } else if (roll < 0.8) {
      operation = { kind: 'delete', key };
      serviceOperation = { kind: 'delete', key };
    } else {
      const expected = prng.chance(0.3)
        ? null
        : `${prng.pick(['c0', 'c1', 'c2'])}:${prng.int(Math.max(1, this.#invoked))}`;
      operation = { kind: 'cas', key, expected, value };
      serviceOperation = {
        kind: 'compareAndSet',
        key,
        expected: expected === null ? null : textEncoder.encode(expected),
        value: textEncoder.encode(value),
      };
    }
    this.#invoked++;
    const now = this.#environment.now();
    const { invocation, actions } = this.#session.invoke(
      encodeKvOperation(serviceOperation),
      { readOnly },
      now,
    );
    this.#inFlight.set(invocation, { entryId: this.#nextEntryId(), operation, invokedAt: now });
    this.#perform(actions);
  }

  onReply(reply: Reply): void {
    // A replica this client proved lying counts again once it was rejuvenated.
    if (this.#session.cutOff.has(reply.replicaId)) {
      const epoch = this.#environment.replicaEpoch(reply.replicaId);
      if (epoch !== undefined) this.#session.replicaRejuvenated(reply.replicaId, epoch);
    }
    this.#perform(this.#session.onReply(reply, this.#environment.now()));
  }

  tick(): void {
    this.#perform(this.#session.tick(this.#environment.now()));
  }

  /** Requests never answered go into the history as pending (they may or may not have taken effect). */
  closeHistory(): void {
    for (const flight of this.#inFlight.values()) this.#recordOpen(flight);
    this.#inFlight.clear();
  }

  /** An operation without an answer it can trust: open in the history (it may or may not have run). */
  #recordOpen(flight: InFlight): void {
    if (flight.operation === null) return;
    this.history.push({
      id: flight.entryId,
      client: this.id,
      operation: flight.operation,
      invokedAt: flight.invokedAt,
      completedAt: null,
      result: null,
    });
  }

  #perform(actions: readonly ClientAction[]): void {
    for (const action of actions) {
      if (action.kind === 'send-all') {
        this.#environment.sendToAll(this.id, action.request);
        continue;
      }
      if (action.kind === 'send') {
        this.#environment.sendToReplica(this.id, action.to, action.request);
        continue;
      }
      if (action.kind === 'report-evidence') {
        this.#environment.reportEvidence(this.id, action.evidence);
        continue;
      }
      const flight = this.#inFlight.get(action.invocation);
      if (flight === undefined) continue;
      this.#inFlight.delete(action.invocation);
      if (action.safeMode === true || action.safeModeSnapshot === true) {
        // f + 1 replicas refused it in safe mode (beyond f, `--colluding`): not executed by them,
        // perhaps executed before they stopped, so open in the history, like one never answered.
        // An application stops writing then; so does this client. A read answered from the
        // certified snapshot of replicas in safe mode is no read of the current state (the client
        // library fails it with a SafeModeSnapshotError): open too, which a read may always be.
        this.#stoppedBySafeMode = true;
        this.#recordOpen(flight);
        continue;
      }
      if (action.fastPath) this.fastReads++;
      if (flight.operation !== null)
        this.history.push({
          id: flight.entryId,
          client: this.id,
          operation: flight.operation,
          invokedAt: flight.invokedAt,
          completedAt: this.#environment.now(),
          result: toCheckerResult(action.status, action.result),
        });
      this.#completed++;
      this.#environment.after(this.#prng.int(20), () => this.#fill());
    }
  }
}

/** Service results as the checker models them; anything else is recorded as an impossible value. */
function toCheckerResult(status: string, bytes: Uint8Array): KvResult {
  if (status !== 'ok') return { kind: 'value', value: `<error ${textDecoder.decode(bytes)}>` };
  const decoded = decodeKvResult(bytes);
  if (!decoded.ok) return { kind: 'value', value: `<undecodable ${toHex(bytes).slice(0, 32)}>` };
  const result = decoded.value;
  switch (result.kind) {
    case 'ok':
      return { kind: 'ok' };
    case 'value':
      return { kind: 'value', value: result.value === null ? null : textDecoder.decode(result.value) };
    case 'cas':
      return { kind: 'cas', succeeded: result.succeeded };
    default:
      return { kind: 'value', value: `<unexpected ${result.kind}>` };
  }
}

/**
 * A Byzantine client: the same request number with different operations to different replicas,
 * authenticators with wrong MACs, signatures that do not verify, and replays of old requests. It
 * works in its own keyspace so that its effects do not muddle the correct clients' histories.
 */
export class FaultyClient {
  readonly id: ClientId;
  readonly #crypto: SimulatorClientCrypto;
  readonly #environment: ClientEnvironment;
  readonly #prng: Prng;
  readonly #replicas: number;
  #nextNumber = 1;
  readonly #sent: ClientRequest[] = [];

  constructor(
    id: ClientId,
    crypto: SimulatorClientCrypto,
    environment: ClientEnvironment,
    prng: Prng,
    replicas: number,
  ) {
    this.id = id;
    this.#crypto = crypto;
    this.#environment = environment;
    this.#prng = prng;
    this.#replicas = replicas;
  }

  onReply(): void {}

  tick(): void {
    if (!this.#prng.chance(0.05)) return;
    const prng = this.#prng;
    const attack = prng.int(4);
    const number =
      attack === 3 && this.#nextNumber > 1 ? prng.between(1, this.#nextNumber - 1) : this.#nextNumber++;
    const make = (value: string, options: { badMacFor?: number; badSignature?: boolean }): ClientRequest => {
      const operation = encodeKvOperation({
        kind: 'put',
        key: `faulty/${prng.int(3)}`,
        value: textEncoder.encode(value),
      });
      const unsigned = {
        kind: 'request' as const,
        clientId: this.id,
        requestNumber: requestNumber(number),
        readOnly: false,
        operation,
        authenticator: [],
        signature: null,
      };
      const digest = this.#environment.hash(requestContent(unsigned));
      this.#environment.recordSent(digest);
      const authenticator = this.#crypto
        .authenticator(digest)
        .map((entry, index) =>
          index === options.badMacFor ? { ...entry, mac: prng.bytes(entry.mac.length) } : entry,
        );
      const signature = this.#crypto.signRequest(digest);
      if (options.badSignature === true) signature[0]! ^= 0xff;
      return { ...unsigned, authenticator, signature };
    };
    switch (attack) {
      case 0: {
        // Conflicting duplicates: one request number, two operations, each to half the replicas.
        const first = make(`a${number}`, {});
        const second = make(`b${number}`, {});
        for (let replica = 0; replica < this.#replicas; replica++) {
          this.#environment.sendToReplica(this.id, replica, replica % 2 === 0 ? first : second);
        }
        this.#sent.push(first, second);
        return;
      }
      case 1:
      case 2: {
        // A replica with a wrong MAC that never gets the request directly must rely on the
        // signature: valid in case 1, invalid in case 2 (a correct leader then refuses it).
        const victim = prng.int(this.#replicas);
        const request = make(`${attack === 1 ? 'm' : 's'}${number}`, {
          badMacFor: victim,
          badSignature: attack === 2,
        });
        for (let replica = 0; replica < this.#replicas; replica++) {
          if (replica !== victim) this.#environment.sendToReplica(this.id, replica, request);
        }
        if (attack === 1) this.#sent.push(request);
        return;
      }
      default: {
        if (this.#sent.length > 0) this.#environment.sendToAll(this.id, prng.pick(this.#sent));
        return;
      }
    }
  }
}

/** The large-value client's own keyspace (the simulator grants it nothing else). */
export const LARGE_VALUE_KEYSPACE = 'big/';
/** Chance per 10 ms tick that it acts: about one near-1 MiB request every 100 ms of simulated time. */
const LARGE_VALUE_ACTION_CHANCE = 0.1;
/** A request unanswered this long is given up (its number is never reused), so the window moves. */
const LARGE_VALUE_GIVE_UP_MS = 3000;
/** Answered requests remembered for retransmission, whose replies may have left the reply cache. */
const LARGE_VALUE_ANSWERED_MEMORY = 32;

/**
 * A client that tries to make correct replicas' state unrepresentable (the field report behind
 * it: a client wrote a 1 MB value and read it a few times; the cached replies made a client table
 * chunk larger than LIMITS.maxChunkBytes and every replica exited). Within its own keyspace it
 * writes values near LIMITS.maxOperationBytes and issues as many ordered reads of them as its
 * window allows, each reply about 1 MiB; it retransmits requests answered long ago (whose results
 * the replicas may have evicted), sends near-maximal requests whose authenticators or signatures
 * do not verify, operations one byte over maxOperationBytes, and writes outside its keyspace.
 * Everything it sends with valid keys is a request a client may send: none of it may crash a
 * correct replica or make correct replicas disagree.
 */
export class LargeValueClient {
  readonly id: ClientId;
  readonly #crypto: SimulatorClientCrypto;
  readonly #environment: ClientEnvironment;
  readonly #prng: Prng;
  readonly #replicas: number;
  /** The replicas' maxOutstandingPerClient; it keeps one fewer outstanding. */
  readonly #window: number;
  readonly #invokeUntil: number;
  #nextNumber = 1;
  readonly #outstanding = new Map<number, number>();
  readonly #answered: ClientRequest[] = [];
  readonly #sent = new Map<number, ClientRequest>();
  #written: string | null = null;
  /** Requests sent, by kind, for the simulator's report. */
  readonly sent = { writes: 0, reads: 0, retransmissions: 0, unauthentic: 0, oversized: 0 };

  constructor(options: {
    id: ClientId;
    crypto: SimulatorClientCrypto;
    environment: ClientEnvironment;
    prng: Prng;
    replicas: number;
    window: number;
    invokeUntil: number;
  }) {
    this.id = options.id;
    this.#crypto = options.crypto;
    this.#environment = options.environment;
    this.#prng = options.prng;
    this.#replicas = options.replicas;
    this.#window = options.window;
    this.#invokeUntil = options.invokeUntil;
  }

  onReply(reply: Reply): void {
    if (reply.readOnly || !this.#outstanding.delete(reply.requestNumber)) return;
    const request = this.#sent.get(reply.requestNumber);
    this.#sent.delete(reply.requestNumber);
    if (request === undefined) return;
    this.#answered.push(request);
    if (this.#answered.length > LARGE_VALUE_ANSWERED_MEMORY) this.#answered.shift();
  }

  tick(): void {
    const now = this.#environment.now();
    if (now >= this.#invokeUntil || !this.#prng.chance(LARGE_VALUE_ACTION_CHANCE)) return;
    for (const [number, sentAt] of [...this.#outstanding]) {
      if (now - sentAt < LARGE_VALUE_GIVE_UP_MS) continue;
      this.#outstanding.delete(number);
      this.#sent.delete(number);
    }
    const prng = this.#prng;
    const roll = prng.next();
    if (roll < 0.15 && this.#answered.length > 0) {
      this.sent.retransmissions++;
      this.#environment.sendToAll(this.id, prng.pick(this.#answered));
      return;
    }
    if (roll < 0.3) {
      this.sent.unauthentic++;
      const request = this.#make(this.#nextNumber++, this.#bigPut(), {
        badMacs: prng.chance(0.5) ? 'all' : prng.int(this.#replicas),
        badSignature: true,
      });
      this.#environment.sendToAll(this.id, request);
      return;
    }
    if (roll < 0.35) {
      this.sent.oversized++;
      const request = this.#make(this.#nextNumber++, new Uint8Array(LIMITS.maxOperationBytes + 1), {});
      this.#environment.sendToAll(this.id, request);
      return;
    }
    if (this.#outstanding.size >= this.#window - 1) return;
    let operation: Uint8Array;
    if (this.#written === null || prng.chance(0.15)) {
      this.sent.writes++;
      operation = this.#bigPut();
    } else {
      this.sent.reads++;
      operation = encodeKvOperation({ kind: 'get', key: this.#written });
    }
    const number = this.#nextNumber++;
    const request = this.#make(number, operation, {});
    this.#outstanding.set(number, now);
    this.#sent.set(number, request);
    // To a random replica: a backup forwards it to the leader, a 1 MiB FORWARD.
    this.#environment.sendToReplica(this.id, prng.int(this.#replicas), request);
  }

  /** A put of a near-maximal value into its keyspace, or (rarely) outside it. */
  #bigPut(): Uint8Array {
    const prng = this.#prng;
    const outside = prng.chance(0.05);
    const key = outside ? SIMULATION_KEYS[0] : `${LARGE_VALUE_KEYSPACE}${prng.int(2)}`;
    const value = new Uint8Array(KV_LIMITS.maxValueBytes - prng.int(512)).fill(this.#nextNumber & 0xff);
    if (!outside) this.#written = key;
    return encodeKvOperation({ kind: 'put', key, value });
  }

  #make(
    number: number,
    operation: Uint8Array,
    options: { badMacs?: 'all' | number; badSignature?: boolean },
  ): ClientRequest {
    const unsigned = {
      kind: 'request' as const,
      clientId: this.id,
      requestNumber: requestNumber(number),
      readOnly: false,
      operation,
      authenticator: [],
      signature: null,
    };
    const digest = this.#environment.hash(requestContent(unsigned));
    this.#environment.recordSent(digest);
    const authenticator = this.#crypto
      .authenticator(digest)
      .map((entry, index) =>
        options.badMacs === 'all' || options.badMacs === index
          ? { ...entry, mac: this.#prng.bytes(entry.mac.length) }
          : entry,
      );
    const signature = this.#crypto.signRequest(digest);
    if (options.badSignature === true) signature[0]! ^= 0xff;
    return { ...unsigned, authenticator, signature };
  }
}
