/**
 * One deterministic simulated run: n real replica cores (some Byzantine), simulated clients, a
 * hostile network and crashing disks, all driven by one seed. A run has a fault phase (loss,
 * duplication, reordering, partitions, crashes, restarts — possibly with corrupt or empty disks)
 * and then heals; afterwards every request of a correct client must complete within a bound.
 *
 * The checkers (see checkers/) then judge the run: agreement, determinism, validity,
 * exactly-once, linearizability of the client histories, no evidence against a correct replica,
 * every correct replica's state checkpointable, no correct replica crashing, and liveness after
 * healing. `runSimulation({ seed })` twice gives the same report.
 *
 * With `keyTheft` (or a replica drawing 'key-thief') every replica's session keys also rotate on a
 * recovery schedule, the shared KeyRegistry applies the epoch lifetimes of that schedule on the
 * simulated clock, a key thief collects every replica's keys just before each rotation and replays
 * them, and a checker (key-theft.ts) judges every replica signature a correct party accepts
 * against the rotation log, plus the evidence the guardians would accept.
 */
import { protocolUnderFaultMode } from '../adversary/catalogue.js';
import { KvService } from '../apps/kv/service.js';
import type { AccessControlConfig } from '../apps/kv/access-control.js';
import type { Action } from '../core/actions.js';
import type { ClientProtocolConfig } from '../core/client-protocol.js';
import { defaultProtocolConfig, type ProtocolConfig } from '../core/config.js';
import type { ReplicaEvent } from '../core/events.js';
import type { CoreCrypto, SignaturePurpose } from '../core/crypto.js';
import {
  assert,
  type ClientId,
  clientId,
  type KeyEpoch,
  keyEpoch,
  type ReplicaId,
  replicaId,
  type Signature,
  toHex,
  viewNumber,
} from '../messages/ids.js';
import {
  CHECKPOINT_AGAINST_STATE_SUSPICION,
  Replica,
  RETIRED_EPOCH_SUSPICION,
  SELF_CONTRADICTION_SUSPICIONS,
  VIEW_CHANGE_LIE_SUSPICION,
} from '../core/replica.js';
import type { JsonValue, Service, ServiceModule } from '../core/service.js';
import { type ClientKeys, clientKeysFromSeed } from '../crypto/client-crypto.js';
import { KeyRegistry, UNLIMITED_EPOCH_LIFETIME } from '../crypto/key-registry.js';
import { deriveSeed } from '../crypto/keys.js';
import { clientReplicaBinding, deriveMacKey } from '../crypto/macs.js';
import { type ReplicaSessionKeys, sessionKeysFromSeed, sessionPublicKeys } from '../crypto/replica-crypto.js';
import { accusedEpochs, type EvidenceContext, verifyEvidence } from '../detection/evidence.js';
import { verifyForensicProof } from '../detection/forensics.js';
import { decodeMessage, encodeMessage } from '../messages/codec.js';
import type {
  ClientRequest,
  Evidence,
  ForensicProof,
  ReplicaMessage,
  WireMessage,
} from '../messages/types.js';
import { epochLifetimeOfSchedule } from '../crypto/key-certificates.js';
import { nextProactiveSlotOf } from '../core/schedule.js';
import {
  ByzantineAdversary,
  type ByzantineBehaviour,
  drawnInAll,
  LEADER_BEHAVIOURS,
  VOTE_HONEST_BEHAVIOURS,
} from './byzantine.js';
import { OversizedSnapshotService } from './broken-service.js';
import { Conspiracy } from './colluders.js';
import { CheckpointChecker } from './checkers/checkpoints.js';
import { ExecutionChecker } from './checkers/execution.js';
import { checkLinearizability } from './checkers/linearizability.js';
import { SimulatedDisk } from './disk.js';
import {
  AuditedCrypto,
  EpochAuditor,
  keyRotationSchedule,
  SIMULATED_GUARDIAN_RECOVERY_BOUND_MS,
} from './key-theft.js';
import { EventQueue } from './event-queue.js';
import {
  CALM_NETWORK,
  type ChannelKey,
  type Frame,
  clientAddress,
  type NetworkStatistics,
  type NodeAddress,
  replicaAddress,
  SimulatedNetwork,
} from './network.js';
import { Prng } from './prng.js';
import {
  SimulatedClientCrypto,
  type SimulatedCryptoMode,
  SimulatedReplicaCrypto,
  signatureScheme,
  type SimulatorReplicaCrypto,
  verifyRegisteredReplicaSignature,
} from './sim-crypto.js';
import { FaultyClient, LARGE_VALUE_KEYSPACE, LargeValueClient, SimulatedClient } from './workload.js';
import { type GuardiansReport, SimulatedGuardians } from './guardians.js';

export interface SimulationOptions {
  readonly seed: number;
  readonly n: number;
  readonly f: number;
  readonly k?: number;
  /** 'all': each seed draws from the whole catalogue; 'none': crash faults only. */
  readonly byzantine?: 'all' | 'none' | readonly ByzantineBehaviour[];
  readonly brokenQuorum?: boolean;
  readonly brokenViewChange?: boolean;
  /**
   * Beyond f (`--colluding c`, f < c ≤ n - 2): replicas 0..c-1 conspire to show two groups of
   * correct replicas two certified histories (colluders.ts), instead of the Byzantine draw. The
   * verdict is then "consistent or in safe mode": every correct replica whose executed history
   * diverged from another correct one's must end in safe mode with a proof the simulator
   * verifies, naming at least f + 1 replicas, all colluders. Liveness is not judged (nothing is
   * promised beyond f). Not with key theft or recovery.
   */
  readonly colluding?: number;
  /** Test only, with colluding: replicas never look for forks (the checker must object). */
  readonly brokenForkDetection?: boolean;
  /**
   * With colluding: the conspirators' cores send no FORK-PROOF either, as real colluders would
   * not (by default they do; docs/intrusion-tolerance.md, Limitations).
   */
  readonly colludersWithholdProofs?: boolean;
  /** Test only: the service's snapshot gets a chunk over maxChunkBytes once it executed anything. */
  readonly brokenSnapshot?: boolean;
  /**
   * The service the replicas run (`--service`): every replica start builds a fresh one with
   * `module.create`. Absent: the key-value store, with the linearizability checker on its
   * histories. With a module, correct clients send `module.simulation.nextOperation` operations
   * (the key-value store's without it), every correct replica's state is checked with
   * `simulation.stateProblems` after each batch, and client histories are not judged (the
   * checker models the key-value store only).
   */
  readonly service?: { readonly module: ServiceModule; readonly options: JsonValue | null };
  /**
   * Key epochs rotate on a recovery schedule and a Byzantine replica is a 'key-thief' (added to
   * its behaviours when it did not draw it). Implied when a replica draws 'key-thief'.
   */
  readonly keyTheft?: boolean;
  /**
   * Test only, with key theft: the registry accepts every epoch it holds for ever (no lifetimes),
   * so a retired epoch verifies until its replica's next rotation (the checker must object).
   */
  readonly brokenEpochLifetime?: boolean;
  /**
   * With key theft, what a replica does with its new keys (default 'restart'): restart from its
   * disk on them, as a rejuvenation that keeps the disk does; go on with them 'in-place'; or
   * restart only when in the middle of a view change ('restart-in-view-change'). The last two
   * exist to replay what they found in the core (docs/intrusion-tolerance.md, "Limitations").
   */
  readonly keyRotation?: KeyRotationMode;
  /**
   * Run the large-value client (workload.ts) whatever the Byzantine replicas; it also runs when a
   * Byzantine replica draws 'large-values-client'.
   */
  readonly largeValueClient?: boolean;
  /** How many large-value clients run when one does (default 1); several fill a table bucket faster. */
  readonly largeValueClients?: number;
  /** The protocol's clientTableChunks (default 4): 1 puts every client in one bucket. */
  readonly clientTableChunks?: number;
  /** The protocol's leaderRotationCheckpoints (default 0: no regular leader rotation). */
  readonly leaderRotationCheckpoints?: number;
  /** Once during the fault phase, every replica crashes at the same moment and restarts with its disk. */
  readonly clusterRestart?: boolean;
  readonly trace?: boolean;
  /**
   * The guardians run (`--recovery`, src/sim/guardians.ts): one GuardianCore per replica on the
   * schedule of keyRotationSchedule, which rejuvenates the replicas (amnesiac, on fresh key
   * epochs), acts on evidence and suspicions, and restarts crashed replicas; the recovery checkers
   * (checkers/recovery.ts) judge it. Key epochs are then issued by the guardians, not by the
   * key-theft rotation (whose checker still judges every accepted signature).
   */
  readonly recovery?: boolean;
  /** T_D of the guardians' schedule with recovery (default SIMULATED_GUARDIAN_RECOVERY_BOUND_MS). */
  readonly recoveryBoundMs?: number;
  /** Test only, with recovery: every reactive slot takes k + 1 replicas (the checkers must object). */
  readonly brokenGuardian?: boolean;
  /** Test only, with recovery: f suspicions accuse a replica instead of f + 1 (the checkers must object). */
  readonly brokenSuspicions?: boolean;
  /**
   * 'simulated' (default): signatures checked by identity, a microsecond each (sim-crypto.ts), and
   * frames authenticated by their channel's identity (network.ts); 'real': production Ed25519 and
   * HMAC frames (`--real-crypto`), each signature a hundred times dearer and the run about three
   * times slower. A seed runs the same with either: nothing in a run depends on a signature's or
   * a MAC's bytes, only on whether it verifies.
   */
  readonly crypto?: SimulatedCryptoMode;
  readonly clients?: number;
  /** Simulated time with network faults, crashes and partitions; then the network heals. */
  readonly faultPhaseMs?: number;
  /** After healing, every operation of a correct client must complete within this. */
  readonly livenessBoundMs?: number;
}

export type KeyRotationMode = 'restart' | 'in-place' | 'restart-in-view-change';

export interface SeedReport {
  readonly seed: number;
  readonly violations: readonly string[];
  readonly livenessFailure: string | null;
  /**
   * A liveness failure of a run whose cluster is too small for its key rotations: with keys
   * rotating, a rotation is a recovery (k ≥ 1), and n < 3f + 2k + 1 leaves no guarantee that Q
   * replicas still hold a checkpoint to re-sign it once its votes' epochs end (one lost its disk,
   * one lagged: n = 4, f = 1). Reported, not counted as a failure; safety is judged as always.
   */
  readonly livenessOutsideModel: string | null;
  readonly requestsCompleted: number;
  readonly fastReads: number;
  readonly viewChanges: number;
  readonly stateTransfers: number;
  readonly evidence: number;
  readonly rejectedInputs: number;
  /** What the detectors caught of the intruder (docs/intrusion-tolerance.md, "Detectors"). */
  readonly detections: Detections;
  /** Distinct stored checkpoints the checkpointability checker examined whole. */
  readonly checkpointsChecked: number;
  /** The most chunks the client table had in a checked checkpoint (more than its buckets: split). */
  readonly largestClientTableChunks: number;
  /** Requests the large-value clients sent, by kind; null when none ran. */
  readonly largeValueRequests: LargeValueClient['sent'] | null;
  readonly clusterRestarted: boolean;
  /** Correct replicas rejuvenated (log dropped, amnesiac) as targets of 'inflated-status'. */
  readonly rejuvenations: number;
  /** Whether key epochs rotated (key theft on). */
  readonly keyTheft: boolean;
  /** Key epochs issued after the first (every replica's, at its proactive slots). */
  readonly keyRotations: number;
  /** Forged messages and evidence the key thieves sent or handed over with stolen keys. */
  readonly stolenKeyReplays: number;
  /** Replica signatures a correct party accepted, each judged by the key-epoch checker. */
  readonly signaturesJudged: number;
  /** Of those, under the signer's previous epoch (within its grace). */
  readonly previousEpochSignatures: number;
  /** Evidence the guardians refused (forged, or naming an epoch its accused no longer speaks with). */
  readonly evidenceRefused: number;
  /** Times a correct replica cut a proven replica off (its messages no longer counted until it was rejuvenated). */
  readonly cutOffs: number;
  /** Messages correct replicas dropped unread because their sender was cut off. */
  readonly cutOffMessagesDropped: number;
  /** Signatures made with stolen keys that a correct party accepted (legitimate only within a grace). */
  readonly stolenSignaturesAccepted: number;
  /** What the guardians did and the recovery checkers measured (null without --recovery). */
  readonly recovery: GuardiansReport | null;
  /** What the colluders did and what became of it (null without --colluding). */
  readonly colluding: ColludingReport | null;
  readonly byzantine: readonly {
    readonly replica: number;
    readonly behaviours: readonly ByzantineBehaviour[];
  }[];
  readonly simulatedMs: number;
  readonly network: NetworkStatistics;
  readonly trace: readonly string[];
}

export interface ColludingReport {
  readonly members: readonly number[];
  /** The correct replicas shown the second history. */
  readonly misled: readonly number[];
  /** Proposals the colluding leaders sent the misled as a second proposal. */
  readonly equivocations: number;
  /** Sequences at which correct replicas executed different batches. */
  readonly forkedSequences: number;
  /** The correct replicas in safe mode at the end, with the culprits their (verified) proof names. */
  readonly safeMode: readonly { readonly replica: number; readonly culprits: readonly number[] }[];
  /**
   * What the fork set off at correct replicas: evidence against correct replicas (a vote or a
   * reply that contradicts the other history's quorum) and safety alarms.
   */
  readonly correctAccused: number;
  readonly safetyAlarms: number;
}

/**
 * What the detectors of correct parties caught of the replicas and clients an intruder holds (the
 * Byzantine replicas and the large-value clients), by detector. Keys are the evidence kind, the
 * suspicion's reason or the refusal's `what: reason`, with every run of digits replaced by `#`
 * (so "view change: leader turnaround: median # ms over its last # proposals, expected at most #
 * ms"). Counts, not verdicts: evidence against a correct replica is a violation of its own.
 */
export interface Detections {
  /** Evidence correct replicas and correct clients produced against a Byzantine replica, by kind. */
  readonly evidence: Readonly<Record<string, number>>;
  /** Suspicions correct replicas raised against a Byzantine replica, by reason. */
  readonly suspicions: Readonly<Record<string, number>>;
  /**
   * Input correct replicas refused from a Byzantine replica or a large-value client: the core's
   * `rejected-input` (`<what>: <reason>`), a dropped state-transfer source
   * (`state-transfer source: <reason>`), frames the simulated transport refused (`frame: <reason>`)
   * and bytes the decoder refused (`bytes: <kind it claimed> undecodable`).
   */
  readonly rejections: Readonly<Record<string, number>>;
  /** Suspicions correct replicas raised against correct replicas (timeouts under network faults). */
  readonly suspicionsOfCorrect: number;
}

/** The key a detection is counted under: digits vary from one occurrence to the next. */
export function detectionKey(text: string): string {
  return text.replace(/\d+/g, '#');
}

function countDetection(counts: Record<string, number>, text: string): void {
  const key = detectionKey(text);
  counts[key] = (counts[key] ?? 0) + 1;
}

const TICK_MS = 10;
const MAX_TRACE_LINES = 200_000;
/**
 * Suspicions a correct replica cannot earn within f (core/replica.ts: its self-contradictions, a
 * checkpoint vote against the executed batches, a view change claiming what nobody correct
 * prepared): one against a correct replica is a violation, and so is RETIRED_EPOCH_SUSPICION
 * (whose reason goes on with the epochs) where keys change only with a new process.
 */
const NEVER_EARNED_WITHIN_F: ReadonlySet<string> = new Set([
  ...Object.values(SELF_CONTRADICTION_SUSPICIONS),
  CHECKPOINT_AGAINST_STATE_SUSPICION,
  VIEW_CHANGE_LIE_SUSPICION,
]);

/** Correct closed-loop clients of a run unless SimulationOptions.clients says otherwise. */
export const DEFAULT_CORRECT_CLIENTS = 3;

/** Short timeouts and small checkpoints, so that a few simulated seconds exercise everything. */
export function simulationProtocolConfig(n: number, f: number, k: number): ProtocolConfig {
  return {
    ...defaultProtocolConfig({ n, f, k }),
    checkpointInterval: 16,
    logWindow: 64,
    pipelineDepth: 4,
    maxBatchRequests: 32,
    maxOutstandingPerClient: 8,
    requestTimeoutMs: 600,
    viewChangeTimeoutMs: 500,
    retransmitIntervalMs: 100,
    statusIntervalMs: 150,
    catchUpTimeoutMs: 300,
    stateTransfer: { sourceTimeoutMs: 300, chunksPerRequest: 4, maxRequestsInFlightPerSource: 2 },
    retainedCheckpoints: 3,
    clientTableChunks: 4,
    requireClientSignatures: true,
  };
}

function clientProtocolConfig(n: number, f: number, k: number): ClientProtocolConfig {
  return {
    n,
    f,
    k,
    retransmitTimeoutMs: 300,
    maxRetransmitTimeoutMs: 2000,
    readOnlyTimeoutMs: 250,
    maxOutstanding: 2,
    replyWindow: simulationProtocolConfig(n, f, k).maxOutstandingPerClient,
  };
}

// Keys do not depend on the seed: generating Ed25519/X25519 keys is the slowest part of a setup.
const keyMaterial = new Map<string, { replicas: ReplicaSessionKeys[]; clients: ClientKeys[] }>();
function keysFor(n: number, clients: number): { replicas: ReplicaSessionKeys[]; clients: ClientKeys[] } {
  const cacheKey = `${n}/${clients}`;
  let keys = keyMaterial.get(cacheKey);
  if (keys === undefined) {
    const master = new TextEncoder().encode('phalanx simulator key material v1').slice(0, 32);
    const seed = new Uint8Array(32);
    seed.set(master);
    keys = {
      replicas: Array.from({ length: n }, (_, index) =>
        sessionKeysFromSeed(deriveSeed(seed, `replica:${index}`)),
      ),
      clients: Array.from({ length: clients }, (_, index) =>
        clientKeysFromSeed(deriveSeed(seed, `client:${index}`), { signing: true }),
      ),
    };
    keyMaterial.set(cacheKey, keys);
  }
  return keys;
}

interface SimulatedReplicaNode {
  readonly id: ReplicaId;
  readonly crypto: SimulatorReplicaCrypto;
  readonly disk: SimulatedDisk;
  readonly adversary: ByzantineAdversary | null;
  replica: Replica | null;
  /** The service the current replica runs, which the checkpointability checker snapshots. */
  service: Service | null;
  /** Threw an exception: it stays down (restarting it would only repeat the failure). */
  dead: boolean;
}

/**
 * A frame in flight: its bytes, and once a receiver decoded them the result, which the other
 * receivers of the same frame share (see decodeFor in runSimulation).
 */
interface SimulatedFrame extends Frame {
  decoded: {
    readonly result: ReturnType<typeof decodeMessage>;
    readonly receivers: NodeAddress[];
  } | null;
}

function frameOf(bytes: Uint8Array): SimulatedFrame {
  return { bytes, decoded: null };
}

/** A network address parsed: a replica's ('r<id>') or a client's ('c:<id>'). */
interface Endpoint {
  readonly replica: ReplicaId | null;
  readonly client: ClientId | null;
}

function describe(message: WireMessage): string {
  switch (message.kind) {
    case 'request':
      return `request ${message.clientId}#${message.requestNumber}${message.readOnly ? ' ro' : ''}`;
    case 'reply':
      return `reply ${message.clientId}#${message.requestNumber} s=${message.sequence}`;
    case 'pre-prepare':
      return `pre-prepare v=${message.view} s=${message.sequence} n=${message.batch.length} d=${toHex(message.batchDigest).slice(0, 8)}`;
    case 'prepare':
    case 'commit':
      return `${message.kind} v=${message.view} s=${message.sequence} d=${toHex(message.batchDigest).slice(0, 8)}`;
    case 'checkpoint':
      return `checkpoint s=${message.sequence} root=${toHex(message.stateRoot).slice(0, 8)}`;
    case 'view-change':
      return `view-change to=${message.newView} P=${message.prepared.length} h=${message.checkpoint.sequence}`;
    case 'new-view':
      return `new-view v=${message.view} |S|=${message.viewChanges.length}`;
    case 'status':
      return `status v=${message.view}${message.viewChangeInProgress ? '*' : ''} exec=${message.lastExecuted}`;
    default:
      return message.kind;
  }
}

/** True when the evidence holds a statement of its accused under an epoch other than `current`. */
function namesRetiredEpoch(evidence: Evidence, current: KeyEpoch | undefined): boolean {
  return accusedEpochs(evidence).some((epoch) => epoch !== current);
}

export function runSimulation(options: SimulationOptions): SeedReport {
  const { seed, n, f } = options;
  const k = options.k ?? 0;
  const faultPhaseMs = options.faultPhaseMs ?? 5000;
  const livenessBoundMs = options.livenessBoundMs ?? 20000;
  const correctClientCount = options.clients ?? DEFAULT_CORRECT_CLIENTS;
  const tracing = options.trace === true;
  const root = new Prng(seed);
  const scenarioPrng = root.fork(1);
  const networkPrng = root.fork(2);
  const adversaryPrng = root.fork(3);
  const clientPrng = root.fork(4);
  const diskPrng = root.fork(5);
  // Forks of their own, so that runs without these faults draw exactly what they drew before.
  const clusterRestartPrng = root.fork(6);
  const largeValuePrng = root.fork(7);
  const rejuvenationPrng = root.fork(8);
  const rotationPrng = root.fork(9);
  const guardianPrng = root.fork(10);
  const intrusionPrng = root.fork(11);
  const recovery = options.recovery === true;

  const queue = new EventQueue();
  const trace: string[] = [];
  const note = (line: string): void => {
    if (tracing && trace.length < MAX_TRACE_LINES) trace.push(`${String(queue.now).padStart(6)}ms ${line}`);
  };
  const config: ProtocolConfig = {
    ...simulationProtocolConfig(n, f, k),
    ...(options.clientTableChunks === undefined ? {} : { clientTableChunks: options.clientTableChunks }),
    ...(options.leaderRotationCheckpoints === undefined
      ? {}
      : { leaderRotationCheckpoints: options.leaderRotationCheckpoints }),
  };
  const testing = {
    brokenQuorum: options.brokenQuorum === true,
    brokenViewChange: options.brokenViewChange === true,
    brokenForkDetection: options.brokenForkDetection === true,
  };
  const brokenSnapshot = options.brokenSnapshot === true;

  // ── who is Byzantine ──
  const byzantine = new Map<number, ByzantineBehaviour[]>();
  let amnesiaBudget = 0;
  const mode = options.byzantine ?? 'all';
  const colluding = options.colluding ?? 0;
  if (colluding > 0) {
    if (colluding <= f || colluding > n - 2)
      throw new Error(`colluding must be between f + 1 = ${f + 1} and n - 2 = ${n - 2}, got ${colluding}`);
    if (options.keyTheft === true || recovery)
      throw new Error('a colluding run has neither key theft nor recovery');
    // Members follow the protocol in their cores; the conspiracy rewrites what they send.
    for (let id = 0; id < colluding; id++) byzantine.set(id, []);
  } else if (options.brokenForkDetection === true) {
    throw new Error('brokenForkDetection needs colluding replicas');
  } else if (mode !== 'none' && f > 0) {
    let count = f;
    if (scenarioPrng.chance(0.15)) {
      count = f - 1;
      amnesiaBudget = 1;
    }
    const ids = scenarioPrng.shuffle(Array.from({ length: n }, (_, index) => index));
    for (let index = 0; index < count; index++) {
      const pool: readonly ByzantineBehaviour[] = mode !== 'all' ? mode : drawnInAll(recovery);
      const behaviours = [pool[(seed + index) % pool.length]!];
      if (mode === 'all' && scenarioPrng.chance(0.5)) behaviours.push(scenarioPrng.pick(pool));
      let id = ids[index]!;
      if (behaviours.some((behaviour) => LEADER_BEHAVIOURS.includes(behaviour)) && scenarioPrng.chance(0.7)) {
        // Make it lead view 0, so the leader attack surely happens.
        if (!byzantine.has(0)) id = 0;
      }
      if (byzantine.has(id)) id = ids.find((candidate) => !byzantine.has(candidate))!;
      byzantine.set(id, [...new Set(behaviours)]);
    }
  } else if (mode === 'none') {
    amnesiaBudget = f;
  }
  const keyTheft =
    options.keyTheft === true ||
    (Array.isArray(mode) && mode.includes('key-thief')) ||
    [...byzantine.values()].some((behaviours) => behaviours.includes('key-thief'));
  if (keyTheft && byzantine.size > 0 && ![...byzantine.values()].some((list) => list.includes('key-thief'))) {
    // The thief joins a Byzantine replica's behaviours (no draw: the scenario stays the same).
    // A run that spent f on an amnesiac instead has no Byzantine replica, and no thief.
    const [first] = [...byzantine.keys()].sort((a, b) => a - b);
    byzantine.get(first!)!.push('key-thief');
  }
  const isCorrect = (id: number): boolean => !byzantine.has(id);
  const conspiracy =
    colluding > 0
      ? new Conspiracy(n, colluding, { withholdForkProofs: options.colludersWithholdProofs === true })
      : null;
  /** With colluding: which batch each correct replica executed at each sequence, and safe modes. */
  const executedDigests = new Map<number, Map<number, string>>();
  const safeModeCulprits = new Map<number, readonly number[]>();
  /**
   * With colluding, what a fork sets off at correct replicas: evidence against a correct replica
   * (its vote contradicts the other history's certificate, or its reply the other history's
   * quorum, or its checkpoint vote the other side's executed root), counted during the run and a
   * violation at the end unless the run forked; and safety alarms (a view re-proposing another
   * batch for a decided sequence, a correct replica's view change claiming a batch the other side
   * prepared in the same view), which colluders can cause without a fork, only counted.
   */
  const beyondF = { correctAccused: 0, safetyAlarms: 0 };
  /**
   * The execution checker assumes one history. Beyond f, once correct replicas executed different
   * batches, what it says of agreement, determinism (one batch, requests skipped differently by
   * two client tables) and exactly-once (a request in both histories) describes the fork, judged
   * as a whole at the end ("consistent or safe mode"); the rest (validity) stays a violation.
   */
  const forkSymptoms: string[] = [];
  const executionProblem = (problem: string): void => {
    if (conspiracy !== null && /^(agreement|determinism|exactly-once): /.test(problem))
      forkSymptoms.push(problem);
    else violation(problem);
  };
  const accusedBeyondF = (accused: number): boolean => conspiracy !== null && isCorrect(accused);
  // 'inflated-status' needs an amnesiac target: a correct replica is rejuvenated during the fault
  // phase, when the other faults leave room for one more amnesiac in f (it counts against f).
  const voteFaulty = [...byzantine.values()].filter(
    (behaviours) => !behaviours.every((behaviour) => VOTE_HONEST_BEHAVIOURS.includes(behaviour)),
  ).length;
  const plansRejuvenation =
    [...byzantine.values()].some((behaviours) => behaviours.includes('inflated-status')) &&
    voteFaulty + amnesiaBudget + 1 <= f;
  const runsLargeValueClient =
    options.largeValueClient === true ||
    (options.largeValueClients ?? 0) > 0 ||
    [...byzantine.values()].some((behaviours) => behaviours.includes('large-values-client'));
  const largeValueClientCount = runsLargeValueClient ? Math.max(1, options.largeValueClients ?? 1) : 0;

  // ── keys ──
  // Correct clients c0…, the faulty client, then the large-value clients when they run.
  const clientIds: ClientId[] = Array.from(
    { length: correctClientCount + 1 + largeValueClientCount },
    (_, index) => clientId(`c${index}`),
  );
  const largeValueClientIds = new Set(clientIds.slice(correctClientCount + 1));
  const keys = keysFor(n, clientIds.length);
  // With key theft: the schedule the keys rotate on, and epoch lifetimes on the simulated clock.
  const schedule = recovery
    ? keyRotationSchedule(n, f, k, options.recoveryBoundMs ?? SIMULATED_GUARDIAN_RECOVERY_BOUND_MS)
    : keyTheft
      ? keyRotationSchedule(n, f, k)
      : null;
  const registry =
    schedule === null
      ? new KeyRegistry(n)
      : new KeyRegistry(n, {
          lifetime:
            options.brokenEpochLifetime === true
              ? UNLIMITED_EPOCH_LIFETIME
              : epochLifetimeOfSchedule(schedule),
          now: () => queue.now,
        });
  /** Every replica's current session keys (the thief takes them just before a rotation). */
  const sessionKeys: ReplicaSessionKeys[] = [...keys.replicas];
  if (schedule !== null) {
    // Epoch 0 is issued at time 0 like any other, so it has a lifetime too (installed before the
    // ReplicaCrypto publishes the same keys without one, which then changes nothing).
    sessionKeys.forEach((own, index) =>
      registry.installReplicaEpoch(replicaId(index), keyEpoch(0), sessionPublicKeys(own), 0),
    );
  }
  const scheme = signatureScheme(options.crypto ?? 'simulated');
  const cryptos: SimulatorReplicaCrypto[] = keys.replicas.map(
    (own, index) =>
      new SimulatedReplicaCrypto({
        replica: replicaId(index),
        registry,
        epoch: keyEpoch(0),
        sessionKeys: own,
        scheme,
      }),
  );
  clientIds.forEach((id, index) => {
    const clientKeys = keys.clients[index]!;
    registry.registerClient(id, {
      agreement: clientKeys.agreement.publicKey,
      signing: clientKeys.signing!.publicKey,
    });
  });
  /** Channel keys by endpoint pair, until the next rotation: derived keys, or identities (network.ts). */
  const channelKeys = new Map<NodeAddress, Map<NodeAddress, ChannelKey>>();
  const channelKey = (from: NodeAddress, to: NodeAddress): ChannelKey => {
    // Asked twice per frame (sending and delivering): looked up without building a pair string.
    const a = from < to ? from : to;
    const b = from < to ? to : from;
    let keysOfA = channelKeys.get(a);
    if (keysOfA === undefined) {
      keysOfA = new Map();
      channelKeys.set(a, keysOfA);
    }
    let key = keysOfA.get(b);
    if (key === undefined) {
      const replicaEnd = a.startsWith('r') ? a : b;
      const otherEnd = replicaEnd === a ? b : a;
      const replica = replicaId(Number(replicaEnd.slice(1)));
      if (scheme.mode === 'simulated') {
        // What the derived key depends on: both endpoints, and the replicas' current epochs.
        const epochOf = (end: NodeAddress): string =>
          end.startsWith('r') ? `@${cryptos[Number(end.slice(1))]!.currentEpoch}` : '';
        key = a < b ? `${a}${epochOf(a)}|${b}${epochOf(b)}` : `${b}${epochOf(b)}|${a}${epochOf(a)}`;
      } else if (otherEnd.startsWith('r')) {
        key = cryptos[replica]!.channelKey(replicaId(Number(otherEnd.slice(1))));
      } else {
        const client = clientId(otherEnd.slice(2));
        const clientKeys = keys.clients[clientIds.indexOf(client)]!;
        key = deriveMacKey(
          clientKeys.agreement,
          sessionKeys[replica]!.agreement.publicKey,
          clientReplicaBinding(client, replica, cryptos[replica]!.currentEpoch),
        );
      }
      keysOfA.set(b, key);
    }
    return key;
  };

  // ── checkers' inputs ──
  const checker = new ExecutionChecker();
  const checkpoints = new CheckpointChecker(config.clientTableChunks, config.maxOutstandingPerClient);
  const violations: string[] = [];
  const keyRotationMode: KeyRotationMode = options.keyRotation ?? 'restart';
  // A correct replica cannot sign its own message under a retired epoch when its keys change only
  // with a new process (the runtime's way, and the simulator's default). The in-place rotation
  // modes, which the runtime never uses, let a running leader retransmit proposals it signed
  // before its rotation: it is suspected then (docs/intrusion-tolerance.md, "Detectors").
  const retiredEpochSuspicionIsViolation = keyRotationMode === 'restart';
  const violation = (text: string): void => {
    if (violations.length < 20) violations.push(text);
    note(`VIOLATION ${text}`);
  };
  let viewChangesInstalled = new Set<number>();
  /** The guardians (--recovery); created once the replicas exist. */
  let guardians: SimulatedGuardians | null = null;
  /** Intruders a full rejuvenation evicted, and those that broke in again. */
  const intrusions = { evicted: 0, brokenInAgain: 0 };
  let stateTransfers = 0;
  let evidenceCount = 0;
  let evidenceRefused = 0;
  let cutOffs = 0;
  /** Dropped messages of cut-offs already lifted (those still on are added at the end). */
  let cutOffDroppedLifted = 0;
  let rejectedInputs = 0;
  const detected = {
    evidence: {} as Record<string, number>,
    suspicions: {} as Record<string, number>,
    rejections: {} as Record<string, number>,
    suspicionsOfCorrect: 0,
  };
  /** Whether input from `address` ('r<id>', 'c:<id>', or a core's `from`) came from the intruder. */
  const fromIntruder = (address: string): boolean => {
    if (address.startsWith('c:')) return largeValueClientIds.has(clientId(address.slice(2)));
    const replica = address.startsWith('r') ? address.slice(1) : address;
    if (/^\d+$/.test(replica)) return !isCorrect(Number(replica));
    return largeValueClientIds.has(clientId(address));
  };
  let keyRotations = 0;
  /** "sequence:root" of every checkpoint a correct replica computed by executing up to it. */
  const computedCheckpoints = new Set<string>();

  // ── the key-epoch checker ──
  const auditor = schedule === null ? null : new EpochAuditor(schedule, 0);
  /** Signatures the key thieves made with stolen keys; those accepted are counted (and judged). */
  const forgedSignatures = new Set<string>();
  let stolenSignaturesAccepted = 0;
  /** A correct replica or the guardians accepted `signature` of `signer` under `epoch`: judged. */
  const judgeAcceptance = (
    verifier: string,
    signer: ReplicaId,
    epoch: KeyEpoch,
    signature: Signature,
    purpose: SignaturePurpose,
  ): void => {
    if (auditor === null) return;
    const stolen = forgedSignatures.size > 0 && forgedSignatures.has(toHex(signature));
    if (stolen) stolenSignaturesAccepted++;
    const problem = auditor.judge(verifier, signer, epoch, purpose, queue.now);
    if (problem !== null) violation(stolen ? `${problem} (made with a stolen key)` : problem);
  };
  /** What every guardian decides about a piece of evidence (they share the registry here). */
  const guardianEvidenceContext: EvidenceContext = {
    model: { n, f, k },
    verifyReplicaSignature: (signer, epoch, payload, signature) => {
      const accepted = verifyRegisteredReplicaSignature(registry, scheme, signer, epoch, payload, signature);
      if (accepted) judgeAcceptance('the guardians', signer, epoch, signature, 'proof');
      return accepted;
    },
    hash: (data) => cryptos[0]!.hash(data),
    currentEpoch: (replica) => registry.currentEpoch(replica),
  };
  /** What a replica decides about a piece of evidence (the registry is shared here too). */
  const replicaEvidenceContext: EvidenceContext = {
    model: { n, f, k },
    verifyReplicaSignature: (signer, epoch, payload, signature) =>
      verifyRegisteredReplicaSignature(registry, scheme, signer, epoch, payload, signature),
    hash: (data) => cryptos[0]!.hash(data),
    currentEpoch: (replica) => registry.currentEpoch(replica),
  };
  /**
   * With colluding: a correct replica entered safe mode. Its proof must verify for anyone holding
   * the public keys (at least f + 1 proven, which verification checks) and name only colluders by
   * double signing (roots, COMMITs), equivocation or invalid new-views; a correct replica named by
   * quorum-based evidence counts as evidence
   * against a correct replica beyond f (a violation unless the run forked).
   */
  const judgeSafeMode = (replica: number, proof: ForensicProof): void => {
    const verdict = verifyForensicProof(proof, replicaEvidenceContext);
    if (!verdict.valid) {
      violation(`safe mode: replica ${replica}'s forensic proof does not verify: ${verdict.reason}`);
      return;
    }
    note(`r${replica} SAFE MODE, culprits ${verdict.culprits.join(',')}`);
    // Conflicting-checkpoint and lying-reply evidence rest on a quorum, which beyond f may be the
    // colluders' (detection/forensics.ts): a correct replica named only by it is judged as evidence
    // against a correct replica beyond f. Double commits and invalid new-views rest on the
    // accused's own signatures, as equivocations do: they never name a correct replica.
    const onQuorumAlone = new Set<number>(
      proof.otherEvidence
        .filter((evidence) => evidence.kind === 'conflicting-checkpoint' || evidence.kind === 'lying-reply')
        .map((evidence) => evidence.accused),
    );
    const innocent = verdict.culprits.filter((culprit) => isCorrect(culprit));
    const signedTwice = innocent.filter((culprit) => !onQuorumAlone.has(culprit));
    if (signedTwice.length > 0)
      violation(`safe mode: replica ${replica}'s proof names correct replica(s) ${signedTwice.join(', ')}`);
    beyondF.correctAccused += innocent.length - signedTwice.length;
    safeModeCulprits.set(replica, verdict.culprits);
  };
  /** Evidence handed to the guardians: accepted against a correct replica is a violation. */
  const judgeAtGuardians = (evidence: Evidence, origin: string): void => {
    const verdict = verifyEvidence(evidence, guardianEvidenceContext);
    if (verdict.valid) {
      if (isCorrect(evidence.accused))
        violation(
          `the guardians accepted ${evidence.kind} evidence from ${origin} against correct replica ${evidence.accused}`,
        );
      return;
    }
    evidenceRefused++;
    note(
      `guardians refused ${evidence.kind} evidence from ${origin} against r${evidence.accused}: ${verdict.reason}`,
    );
  };

  // ── network ──
  const replicas: SimulatedReplicaNode[] = [];
  const clients = new Map<ClientId, SimulatedClient | FaultyClient | LargeValueClient>();
  const crashed = new Set<number>();
  const network = new SimulatedNetwork<SimulatedFrame>(
    queue,
    networkPrng,
    channelKey,
    (to, from, frame) => deliver(to, from, frame),
    (to, from, reason) => {
      rejectedInputs++;
      if (fromIntruder(from) && !fromIntruder(to)) countDetection(detected.rejections, `frame: ${reason}`);
      note(`${to} rejected frame from ${from}: ${reason}`);
    },
  );

  const sendMessage = (
    from: ReplicaId,
    to: ReplicaId,
    message: ReplicaMessage,
    delayMs = 0,
    forgeMac = false,
  ): void => {
    const bytes = encodeMessage(message);
    const go = (): void => network.send(replicaAddress(from), replicaAddress(to), frameOf(bytes), forgeMac);
    if (delayMs > 0) queue.after(delayMs, go);
    else go();
  };

  const perform = (node: SimulatedReplicaNode, actions: readonly Action[]): void => {
    const correct = node.adversary === null;
    /**
     * Checkpoint sequences this node executed in this step: its vote for one is a root it computed.
     * Made on the first execution: most steps execute nothing.
     */
    let executedNow = null as Set<number> | null;
    for (const action of actions) {
      switch (action.kind) {
        case 'send':
          if (correct) sendMessage(node.id, action.to, action.message);
          else node.adversary.outgoing(action.to, action.message);
          break;
        case 'broadcast': {
          const message = action.message;
          if (
            correct &&
            message.kind === 'checkpoint' &&
            message.replicaId === node.id &&
            executedNow?.has(message.sequence) === true
          )
            computedCheckpoints.add(`${message.sequence}:${toHex(message.stateRoot)}`);
          // One frame for every receiver: its bytes are decoded once for all of them (deliver).
          const frame = correct ? frameOf(encodeMessage(action.message)) : null;
          for (let other = 0; other < n; other++) {
            if (other === node.id) continue;
            if (frame !== null) network.send(replicaAddress(node.id), replicaAddress(other), frame);
            else node.adversary!.outgoing(replicaId(other), action.message);
          }
          break;
        }
        case 'reply':
          if (correct)
            network.send(
              replicaAddress(node.id),
              clientAddress(action.to),
              frameOf(encodeMessage(action.reply)),
            );
          else node.adversary.reply(action.to, action.reply);
          break;
        case 'persist':
          node.disk.append(action.record);
          break;
        case 'persist-checkpoint':
          node.disk.storeCheckpoint(action.checkpoint);
          if (correct) {
            const problem = checkpoints.onCheckpoint(node.id, action.checkpoint);
            if (problem !== null) violation(problem);
            const { sequence, stateRoot } = action.checkpoint.certificate;
            if (sequence > 0 && !computedCheckpoints.has(`${sequence}:${toHex(stateRoot)}`))
              violation(
                `checkpoint: replica ${node.id} made stable checkpoint ${sequence} with root ${toHex(stateRoot).slice(0, 12)}, which no correct replica computed`,
              );
          }
          break;
        case 'executed':
          if (correct) {
            (executedNow ??= new Set()).add(action.sequence);
            const problem = checker.recordExecution(node.id, action);
            if (conspiracy !== null) {
              let bySequence = executedDigests.get(action.sequence);
              if (bySequence === undefined) executedDigests.set(action.sequence, (bySequence = new Map()));
              bySequence.set(node.id, toHex(action.batchDigest));
            }
            if (problem !== null) executionProblem(problem);
            const snapshot = node.service!.snapshot();
            const unrepresentable = checkpoints.afterBatch(node.id, action.sequence, snapshot);
            if (unrepresentable !== null) violation(unrepresentable);
            if (serviceStateProblems !== undefined) {
              for (const problem of serviceStateProblems(snapshot))
                violation(`service state: replica ${node.id} after batch ${action.sequence}: ${problem}`);
            }
          }
          break;
        case 'evidence':
          guardians?.replicaEvidence(node.id, action.evidence);
          if (correct) {
            evidenceCount++;
            if (!isCorrect(action.evidence.accused)) countDetection(detected.evidence, action.evidence.kind);
            note(`r${node.id} EVIDENCE ${action.evidence.kind} against r${action.evidence.accused}`);
            if (
              schedule !== null &&
              namesRetiredEpoch(action.evidence, registry.currentEpoch(action.evidence.accused))
            ) {
              // The replica passes it to its guardian, which counts evidence only against the
              // epoch the accused speaks with now (a thief may hold a retired one): judged there.
              judgeAtGuardians(action.evidence, `replica ${node.id}`);
            } else if (accusedBeyondF(action.evidence.accused)) {
              beyondF.correctAccused++;
            } else if (isCorrect(action.evidence.accused)) {
              violation(
                `replica ${node.id} produced ${action.evidence.kind} evidence against correct replica ${action.evidence.accused}`,
              );
            }
          }
          break;
        case 'safe-mode':
          if (correct && conspiracy !== null) {
            judgeSafeMode(node.id, action.proof);
            break;
          }
          // A fork needs f + 1 replicas that sign two roots for one checkpoint: with at most f
          // faulty ones, a correct replica in safe mode means a correct one signed twice, or a
          // proof that should not have verified.
          if (correct && byzantine.size <= f)
            violation(
              `replica ${node.id} entered safe mode with at most f = ${f} faulty replicas: culprits ${action.proof.culprits.join(',')}`,
            );
          else note(`r${node.id} SAFE MODE, culprits ${action.proof.culprits.join(',')}`);
          break;
        case 'suspect':
          guardians?.replicaSuspicion(node.id, action.replica, action.reason);
          if (correct) {
            if (isCorrect(action.replica)) {
              detected.suspicionsOfCorrect++;
              if (colluding > 0 && action.reason === CHECKPOINT_AGAINST_STATE_SUSPICION)
                // Beyond f, correct replicas on the two sides of a fork computed different roots
                // at one sequence: as evidence against a correct replica, a violation only if the
                // run did not fork.
                beyondF.correctAccused++;
              else if (colluding > 0 && action.reason === VIEW_CHANGE_LIE_SUSPICION)
                // Beyond f, the colluders' second proposals get a batch prepared on each side in
                // one view, with or without a fork: only counted, as the safety alarms are.
                beyondF.safetyAlarms++;
              else if (
                NEVER_EARNED_WITHIN_F.has(action.reason) ||
                (retiredEpochSuspicionIsViolation && action.reason.startsWith(RETIRED_EPOCH_SUSPICION))
              )
                violation(`replica ${node.id} suspected correct replica ${action.replica}: ${action.reason}`);
            } else countDetection(detected.suspicions, action.reason);
            note(`r${node.id} suspects r${action.replica}: ${action.reason}`);
          }
          break;
        case 'log':
          if (!correct) break;
          if (action.event === 'view-installed') viewChangesInstalled.add(Number(action.details.view));
          if (action.event === 'state-transfer-completed') stateTransfers++;
          if (action.event === 'rejected-input') {
            rejectedInputs++;
            if (fromIntruder(String(action.details.from)))
              countDetection(
                detected.rejections,
                `${String(action.details.what)}: ${String(action.details.reason)}`,
              );
          }
          if (action.event === 'state-transfer-source-dropped' && fromIntruder(String(action.details.source)))
            countDetection(detected.rejections, `state-transfer source: ${String(action.details.reason)}`);
          if (action.event === 'replica-cut-off') {
            cutOffs++;
            const culprit = Number(action.details.replica);
            // Only a proof cuts a replica off, and no proof holds against a correct one (a thief's
            // retired keys prove nothing: the core checks the epoch first).
            if (isCorrect(culprit) && !accusedBeyondF(culprit))
              violation(
                `replica ${node.id} cut off correct replica ${culprit}: ${String(action.details.reason)}`,
              );
          }
          if (action.event === 'replica-cut-off-lifted')
            cutOffDroppedLifted += Number(action.details.dropped);
          if (action.event === 'safety-alarm') {
            // Beyond f a fork sets it off (judged at the end: only a run that forked may).
            if (conspiracy !== null) beyondF.safetyAlarms++;
            else violation(`replica ${node.id} raised a safety alarm: ${JSON.stringify(action.details)}`);
          }
          if (tracing && action.level !== 'debug')
            note(`r${node.id} ${action.event} ${JSON.stringify(action.details)}`);
          break;
      }
    }
  };

  /** A correct replica that throws is a violation; it stays down, and the run goes on. */
  const crashedByBug = (node: SimulatedReplicaNode, error: unknown): void => {
    node.replica = null;
    node.service = null;
    node.dead = true;
    crashed.delete(node.id);
    const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    note(`r${node.id} THREW ${message}`);
    guardians?.replicaCrashed(node.id);
    if (isCorrect(node.id))
      violation(`crash: correct replica ${node.id} threw at ${queue.now} ms: ${message}`);
  };

  const step = (node: SimulatedReplicaNode, event: ReplicaEvent): void => {
    if (node.replica === null) return;
    let actions: readonly Action[];
    try {
      actions = node.replica.step(event);
    } catch (error) {
      crashedByBug(node, error);
      return;
    }
    perform(node, actions);
  };

  /**
   * A frame's decoding, kept with the frame: a broadcast is one frame sent to several receivers,
   * decoded once. Decoding is a pure function of the bytes and messages are readonly, so different
   * receivers may share the result; but a receiver never gets the same object twice (a duplicated
   * frame is decoded again for it), as over a real network: a core remembers the messages it
   * validated by identity (#validatedViewChanges), and must check a duplicate again.
   */
  const decodeFor = (to: NodeAddress, frame: SimulatedFrame): ReturnType<typeof decodeMessage> => {
    const known = frame.decoded;
    if (known === null) {
      const result = decodeMessage(frame.bytes);
      frame.decoded = { result, receivers: [to] };
      return result;
    }
    // A frame has at most n receivers (a broadcast): a short list beats a set.
    if (known.receivers.includes(to)) return decodeMessage(frame.bytes);
    known.receivers.push(to);
    return known.result;
  };
  /** What an address names, parsed once per address rather than once per frame. */
  const endpoints = new Map<NodeAddress, Endpoint>();
  const endpointOf = (address: NodeAddress): Endpoint => {
    let endpoint = endpoints.get(address);
    if (endpoint === undefined) {
      endpoint = address.startsWith('c:')
        ? { replica: null, client: clientId(address.slice(2)) }
        : { replica: replicaId(Number(address.slice(1))), client: null };
      endpoints.set(address, endpoint);
    }
    return endpoint;
  };
  const deliver = (to: NodeAddress, from: NodeAddress, frame: SimulatedFrame): void => {
    const decoded = decodeFor(to, frame);
    if (!decoded.ok) {
      rejectedInputs++;
      if (fromIntruder(from) && !fromIntruder(to))
        countDetection(detected.rejections, `bytes: ${decoded.reason.split(':')[0]!} undecodable`);
      note(`${to} rejected bytes from ${from}: ${decoded.reason}`);
      return;
    }
    const message = decoded.value;
    const receiver = endpointOf(to);
    const sender = endpointOf(from);
    if (receiver.client !== null) {
      const client = clients.get(receiver.client);
      if (message.kind !== 'reply' || sender.replica === null || message.replicaId !== sender.replica) {
        rejectedInputs++;
        return;
      }
      if (tracing) note(`${from} → ${to} ${describe(message)}`);
      client?.onReply(message);
      return;
    }
    const node = replicas[receiver.replica!]!;
    if (node.replica === null) return;
    if (tracing) note(`${from} → ${to} ${describe(message)}`);
    if (sender.client !== null) {
      if (message.kind !== 'request' || message.clientId !== sender.client) {
        rejectedInputs++;
        return;
      }
      step(node, { kind: 'client-request', request: message });
      return;
    }
    if (message.kind === 'request' || message.kind === 'reply' || message.kind === 'key-announcement') {
      rejectedInputs++;
      return;
    }
    node.adversary?.incoming(sender.replica!, message);
    step(node, { kind: 'message', from: sender.replica!, message });
  };

  // ── replicas ──
  // The large-value client is confined to its own keyspace, as on the cluster where it was found.
  const accessControl: AccessControlConfig = Object.fromEntries(
    clientIds.map((id) => [id, { keyspaces: largeValueClientIds.has(id) ? [LARGE_VALUE_KEYSPACE] : ['*'] }]),
  );
  // What a service module is told: the same grants as the key-value store's access control.
  const serviceContext = {
    options: options.service?.options ?? null,
    clients: clientIds.map((id) => ({ id, keyspaces: accessControl[id]!.keyspaces })),
  };
  const refusals = options.service?.module.configProblems?.(serviceContext) ?? [];
  if (refusals.length > 0)
    throw new Error(
      `the ${options.service!.module.name} service refuses the simulated cluster (clients ${clientIds.join(', ')}): ${refusals.join('; ')}`,
    );
  const serviceStateProblems = options.service?.module.simulation?.stateProblems;
  /** Starts the node's replica (and a new service for it); false when it threw doing so. */
  const startReplica = (
    node: SimulatedReplicaNode,
    restart: 'fresh' | 'intact' | 'corrupt' | 'amnesiac' | 'rejuvenated',
  ): boolean => {
    const restored =
      restart === 'intact' || restart === 'rejuvenated'
        ? node.disk.read()
        : restart === 'corrupt'
          ? node.disk.read(diskPrng)
          : undefined;
    let service: Service;
    if (options.service !== undefined) {
      try {
        service = options.service.module.create({ ...serviceContext, replica: node.id });
      } catch (error) {
        crashedByBug(node, error);
        return false;
      }
    } else {
      const kv = new KvService({ accessControl, bucketCount: 16 });
      service = brokenSnapshot ? new OversizedSnapshotService(kv) : kv;
    }
    try {
      node.replica = new Replica({
        // A Byzantine replica whose intruder changes how its core is made ('small-batches').
        config: protocolUnderFaultMode(
          config,
          byzantine.get(node.id)?.find((behaviour) => behaviour === 'small-batches'),
        ),
        id: node.id,
        crypto: coreCryptos[node.id]!,
        checkEvidence: (evidence) => verifyEvidence(evidence, replicaEvidenceContext).valid,
        service,
        ...(restored === undefined ? {} : { restored }),
        amnesiac: restart === 'amnesiac' || restart === 'rejuvenated',
        testing,
      });
    } catch (error) {
      crashedByBug(node, error);
      return false;
    }
    node.service = service;
    return true;
  };
  // With key theft, correct replicas run on a crypto that reports every signature they accept.
  const coreCryptos: CoreCrypto[] = cryptos.map((crypto, index) =>
    auditor === null || !isCorrect(index)
      ? crypto
      : new AuditedCrypto(crypto, (signer, epoch, signature, purpose) =>
          judgeAcceptance(`replica ${index}`, signer, epoch, signature, purpose),
        ),
  );
  for (let index = 0; index < n; index++) {
    const id = replicaId(index);
    const disk = new SimulatedDisk();
    const behaviours = byzantine.get(index);
    const node: SimulatedReplicaNode = {
      id,
      crypto: cryptos[index]!,
      disk,
      replica: null,
      service: null,
      dead: false,
      adversary:
        behaviours === undefined
          ? null
          : new ByzantineAdversary(behaviours, {
              self: id,
              config,
              prng: adversaryPrng.fork(index),
              crypto: cryptos[index]!,
              now: () => queue.now,
              ...(conspiracy === null ? {} : { conspiracy }),
              sendMessage: (to, message, sendOptions) =>
                sendMessage(id, to, message, sendOptions?.delayMs ?? 0, sendOptions?.forgeMac ?? false),
              sendBytes: (to, bytes) => network.send(replicaAddress(id), replicaAddress(to), frameOf(bytes)),
              sendReply: (to, reply) =>
                network.send(replicaAddress(id), clientAddress(to), frameOf(encodeMessage(reply))),
              ...(recovery
                ? {
                    guardian: {
                      reportSuspicion: (accused: ReplicaId, reason: string) =>
                        guardians?.replicaSuspicion(id, accused, reason),
                      recovering: () => guardians?.recoveringReplicas() ?? [],
                    },
                  }
                : {}),
              ...(schedule === null
                ? {}
                : {
                    keyTheft: {
                      schedule,
                      sign: scheme.sign,
                      reportEvidence: (evidence: Evidence) => judgeAtGuardians(evidence, `replica ${id}`),
                      forged: (signature: Signature) => forgedSignatures.add(toHex(signature)),
                    },
                  }),
            }),
    };
    replicas.push(node);
    if (conspiracy?.members.has(index) === true)
      conspiracy.join(id, {
        crypto: cryptos[index]!,
        sendMessage: (to, message) => sendMessage(id, to, message),
      });
    startReplica(node, 'fresh');
    const tick = (): void => {
      if (node.replica !== null) {
        step(node, { kind: 'tick', now: queue.now });
        node.adversary?.tick();
      }
      queue.after(TICK_MS, tick);
    };
    queue.at(index, tick);
  }

  // ── clients ──
  const protocolConfig = clientProtocolConfig(n, f, k);
  let historyIds = 0;
  const environment = {
    now: () => queue.now,
    hash: (data: Uint8Array) => cryptos[0]!.hash(data),
    sendToAll: (from: ClientId, request: ClientRequest) => {
      const frame = frameOf(encodeMessage(request));
      for (let replica = 0; replica < n; replica++)
        network.send(clientAddress(from), replicaAddress(replica), frame);
    },
    sendToReplica: (from: ClientId, replica: number, request: ClientRequest) =>
      network.send(clientAddress(from), replicaAddress(replica), frameOf(encodeMessage(request))),
    after: (delayMs: number, run: () => void) => queue.after(delayMs, run),
    recordSent: (digest: Uint8Array) => checker.recordSentRequest(digest),
    replicaEpoch: (replica: ReplicaId) => registry.currentEpoch(replica),
    reportEvidence: (from: ClientId, evidence: Evidence) => {
      evidenceCount++;
      if (!isCorrect(evidence.accused) && !largeValueClientIds.has(from))
        countDetection(detected.evidence, evidence.kind);
      note(`client ${from} EVIDENCE ${evidence.kind} against r${evidence.accused}`);
      if (accusedBeyondF(evidence.accused)) beyondF.correctAccused++;
      else if (isCorrect(evidence.accused)) {
        violation(
          `client ${from} produced ${evidence.kind} evidence against correct replica ${evidence.accused}`,
        );
      }
      // A real replica that verifies a client's report cuts the liar off at once
      // (runtime/replica-node.ts); the simulator leaves that to its guardians (--recovery), whose
      // cut-offs reach every replica: beyond f (--colluding, no guardians) a proof may name a
      // correct replica, and the run judges fork detection without cut-offs (docs/intrusion-tolerance.md).
    },
  };
  const correctClients: SimulatedClient[] = [];
  const simulatedOperations = options.service?.module.simulation ?? null;
  clientIds.forEach((id, index) => {
    const crypto = new SimulatedClientCrypto({ client: id, keys: keys.clients[index]!, registry, scheme });
    const prng = clientPrng.fork(index);
    if (index === correctClientCount) {
      clients.set(id, new FaultyClient(id, crypto, environment, prng, n));
      return;
    }
    if (largeValueClientIds.has(id)) {
      const which = index - correctClientCount - 1;
      clients.set(
        id,
        new LargeValueClient({
          id,
          crypto,
          environment,
          prng: which === 0 ? largeValuePrng : largeValuePrng.fork(which),
          replicas: n,
          window: config.maxOutstandingPerClient,
          invokeUntil: faultPhaseMs + 1000,
        }),
      );
      return;
    }
    const client = new SimulatedClient({
      id,
      config: protocolConfig,
      crypto,
      environment,
      prng,
      operations: 100_000,
      invokeUntil: faultPhaseMs + 1000,
      readOnlyShare: 0.5,
      signRequests: true,
      nextEntryId: () => historyIds++,
      serviceOperations: simulatedOperations,
    });
    clients.set(id, client);
    correctClients.push(client);
  });
  for (const client of clients.values()) {
    const tick = (): void => {
      client.tick();
      queue.after(TICK_MS, tick);
    };
    queue.at(5, tick);
    if (client instanceof SimulatedClient) queue.at(5, () => client.start());
  }

  // ── faults ──
  network.conditions = {
    lossProbability: scenarioPrng.next() * 0.08,
    duplicateProbability: scenarioPrng.next() * 0.05,
    minDelayMs: 1,
    maxDelayMs: 2 + scenarioPrng.int(25),
    spikeProbability: scenarioPrng.next() * 0.05,
    spikeDelayMs: 300,
  };
  /** Replicas that were amnesiac when they went down: their disk holds no log to trust. */
  const amnesiacWhenDown = new Set<number>();
  const stop = (node: SimulatedReplicaNode): void => {
    if (node.replica?.amnesiac === true) amnesiacWhenDown.add(node.id);
    else amnesiacWhenDown.delete(node.id);
    node.replica = null;
    node.service = null;
    crashed.add(node.id);
  };
  const restart = (id: number, requested: 'intact' | 'corrupt' | 'amnesiac' | 'rejuvenated'): void => {
    const node = replicas[id]!;
    if (node.replica !== null || node.dead) return;
    crashed.delete(id);
    // An amnesiac's disk has no log of what it voted before its amnesia: it comes back amnesiac.
    const how = requested === 'intact' && amnesiacWhenDown.has(id) ? 'rejuvenated' : requested;
    if (how === 'amnesiac') node.disk.wipe();
    if (how === 'rejuvenated') node.disk.dropLog();
    if (!startReplica(node, how)) return;
    note(`RESTART r${id} (${how} disk)`);
    guardians?.replicaRestarted(id);
    step(node, { kind: 'tick', now: queue.now });
  };
  const partitionCount = scenarioPrng.int(3);
  for (let index = 0; index < partitionCount; index++) {
    const start = scenarioPrng.int(faultPhaseMs - 500);
    const duration = 300 + scenarioPrng.int(2500);
    // Either one replica is cut off, or the replicas split in two halves (clients stay with one).
    const order = scenarioPrng.shuffle(Array.from({ length: n }, (_, replica) => replica));
    const cut = scenarioPrng.chance(0.5) ? 1 : Math.floor(n / 2);
    const alone = order.slice(0, cut).map(replicaAddress);
    const rest = [...order.slice(cut).map(replicaAddress), ...clientIds.map(clientAddress)];
    queue.at(start, () => {
      network.partition([alone, rest]);
      note(`PARTITION {${alone.join(',')}} cut off for ${duration}ms`);
      queue.after(duration, () => {
        network.heal();
        note('PARTITION healed');
      });
    });
  }
  const crashCount = scenarioPrng.int(3);
  for (let index = 0; index < crashCount; index++) {
    const start = scenarioPrng.int(faultPhaseMs - 500);
    const duration = 200 + scenarioPrng.int(2000);
    const victim = scenarioPrng.int(n);
    const roll = scenarioPrng.next();
    queue.at(start, () => {
      const node = replicas[victim]!;
      if (!isCorrect(victim) || node.replica === null) return;
      let how: 'intact' | 'corrupt' | 'amnesiac' = roll < 0.7 ? 'intact' : 'corrupt';
      if (roll > 0.85 && amnesiaBudget > 0) {
        how = 'amnesiac';
        amnesiaBudget--;
      }
      stop(node);
      note(`CRASH r${victim}, back in ${duration}ms with ${how} disk`);
      guardians?.replicaCrashed(victim);
      queue.after(duration, () => restart(victim, how));
    });
  }
  if (options.clusterRestart === true) {
    // Every replica at once (a power cut): only what each persisted survives, and acknowledged
    // writes must still be there (the linearizability checker sees any that are lost).
    const at = 500 + clusterRestartPrng.int(Math.max(1, faultPhaseMs - 2000));
    const downMs = 50 + clusterRestartPrng.int(1000);
    queue.at(at, () => {
      for (const node of replicas) {
        if (node.replica === null) continue;
        stop(node);
        guardians?.replicaCrashed(node.id);
      }
      note(`CLUSTER CRASH: every replica down, back in ${downMs}ms with intact disks`);
      queue.after(downMs, () => {
        for (const node of replicas) restart(node.id, 'intact');
      });
    });
  }
  // The guardians' part that the simulator plays: a rejuvenated replica is owed a view change to a
  // view it can vote in, asked of every replica once it caught up (and again every few seconds
  // while it still does not vote: the view change may have been lost to the faults).
  const rejuvenated = new Set<number>();
  const rejoinOwed = new Map<number, number>();
  if (plansRejuvenation) {
    const candidates = Array.from({ length: n }, (_, id) => id).filter(isCorrect);
    const victim = rejuvenationPrng.pick(candidates);
    const at = 800 + rejuvenationPrng.int(Math.max(1, faultPhaseMs - 2500));
    const downMs = 100 + rejuvenationPrng.int(400);
    queue.at(at, () => {
      const node = replicas[victim]!;
      if (node.replica === null || node.dead) return;
      stop(node);
      rejuvenated.add(victim);
      rejoinOwed.set(victim, 0);
      note(`REJUVENATE r${victim}: log dropped, back in ${downMs}ms, amnesiac`);
      queue.after(downMs, () => restart(victim, 'rejuvenated'));
    });
  }
  // The guardians' key rotations: a new epoch for each replica in each of its proactive slots, a
  // little after the slot starts (a rejuvenation issues its certificate early in the slot). The
  // others adopt it (keys-changed) and channels opened under the old keys end (frames in flight
  // are refused). The replica then restarts from its disk on the new keys, as a rejuvenation that
  // keeps the disk does (a full one is amnesiac, which the simulator counts against f); the
  // restart is instant, so k = 0 still holds. The other modes rotate keys under a running core,
  // which the runtime never does (docs/intrusion-tolerance.md, "Limitations").
  /** When each replica's current epoch was issued (all at time 0 to begin with). */
  const epochIssuedAtMs: number[] = Array.from({ length: n }, () => 0);
  /** A new key epoch for `id`, issued now: the thieves take the old keys, the others adopt it. */
  const issueEpoch = (id: ReplicaId): KeyEpoch => {
    const retired = cryptos[id]!.currentEpoch;
    const epoch = keyEpoch(retired + 1);
    const fresh = sessionKeysFromSeed(rotationPrng.bytes(32));
    const now = queue.now;
    // The thief was inside the replica until just before its rejuvenation: it has these keys.
    for (const node of replicas)
      node.adversary?.steal({ replica: id, epoch: retired, keys: sessionKeys[id]!, retiredAtMs: now });
    // The certificate's issue time sets the lifetimes; the ReplicaCrypto then finds its keys installed.
    registry.installReplicaEpoch(id, epoch, sessionPublicKeys(fresh), now);
    auditor!.recordRotation(id, epoch, now);
    cryptos[id]!.rotate(epoch, fresh);
    sessionKeys[id] = fresh;
    epochIssuedAtMs[id] = now;
    keyRotations++;
    channelKeys.clear();
    for (const crypto of cryptos) crypto.forgetRetiredKeys();
    note(`KEYS r${id} rotated to epoch ${epoch}`);
    for (const node of replicas) if (node.id !== id) step(node, { kind: 'keys-changed' });
    return epoch;
  };
  if (schedule !== null && !recovery) {
    const rotate = (id: ReplicaId): void => {
      issueEpoch(id);
      const node = replicas[id]!;
      const restarts =
        keyRotationMode === 'restart' ||
        (keyRotationMode === 'restart-in-view-change' && node.replica?.viewChangeInProgress === true);
      if (restarts && node.replica !== null) {
        stop(node);
        restart(id, 'intact');
      } else step(node, { kind: 'keys-changed' });
    };
    const rotateInNextSlot = (id: ReplicaId): void => {
      const slot = nextProactiveSlotOf(schedule, id, queue.now + 1);
      queue.at(slot.startMs + rotationPrng.int(Math.floor(schedule.recoveryBoundMs / 2)), () => {
        rotate(id);
        rotateInNextSlot(id);
      });
    };
    for (let index = 0; index < n; index++) rotateInNextSlot(replicaId(index));
  }
  if (recovery) {
    assert(schedule !== null, 'recovery runs on a schedule');
    guardians = new SimulatedGuardians({
      schedule,
      prng: guardianPrng,
      brokenReactiveSlot: options.brokenGuardian === true,
      brokenSuspicionThreshold: options.brokenSuspicions === true,
      host: {
        now: () => queue.now,
        after: (delayMs, run) => queue.after(delayMs, run),
        replica: (id) => {
          const replica = replicas[id]!.replica;
          if (replica === null) return null;
          return {
            view: replica.view,
            rejoinAboveView: replica.rejoinAboveView,
            lastExecuted: replica.lastExecuted,
            voting: replica.voting,
            caughtUp:
              replica.votingFloorKnown &&
              !replica.stateTransferInProgress &&
              !replica.restoredStatePending &&
              replica.lastExecuted >= replica.peersExecuted,
          };
        },
        stopReplica: (id) => {
          const node = replicas[id]!;
          if (node.replica === null) return;
          node.replica = null;
          node.service = null;
          note(`GUARDIAN stops r${id}`);
        },
        startReplica: (id, amnesiac) => {
          const node = replicas[id]!;
          if (node.dead) return false;
          node.replica = null;
          node.service = null;
          crashed.delete(id);
          amnesiacWhenDown.delete(id);
          if (amnesiac) node.disk.dropLog();
          if (!startReplica(node, amnesiac ? 'rejuvenated' : 'intact')) return false;
          const adversary = node.adversary;
          if (amnesiac && adversary !== null && !adversary.evicted) {
            // A full rejuvenation evicts the intruder mid-attack (clean code, fresh keys, no
            // state). It breaks in again later with the same exploit (0.5 to 2 T_D after), so the
            // rest of the run sees the attack resume on the rejuvenated replica's new keys.
            adversary.evict();
            intrusions.evicted++;
            const backInMs = Math.floor(schedule.recoveryBoundMs * (0.5 + 1.5 * intrusionPrng.next()));
            queue.after(backInMs, () => {
              if (!adversary.evicted) return;
              adversary.breakIn();
              intrusions.brokenInAgain++;
              note(`INTRUDER back in r${id}`);
            });
            note(`GUARDIAN evicts the intruder of r${id} (back in ${backInMs} ms)`);
          }
          note(
            `GUARDIAN starts r${id} (${amnesiac ? 'amnesiac, log dropped' : 'from its disk'}) on epoch ${cryptos[id]!.currentEpoch}`,
          );
          step(node, { kind: 'tick', now: queue.now });
          return true;
        },
        issueEpoch,
        currentEpoch: (id) => ({ epoch: cryptos[id]!.currentEpoch, issuedAtMs: epochIssuedAtMs[id]! }),
        changeView: (id, avoidLeaders, aboveView) =>
          step(replicas[id]!, {
            kind: 'change-view',
            reason: 'guardian nudge',
            avoidLeaders: avoidLeaders.map((leader) => replicaId(leader)),
            ...(aboveView === null ? {} : { aboveView: viewNumber(aboveView) }),
          }),
        cutOff: (id, culprit, keyEpoch, reason, proof) =>
          step(replicas[id]!, { kind: 'cut-off', replica: culprit, keyEpoch, reason, proof }),
        verifyEvidence: (evidence) => {
          const verdict = verifyEvidence(evidence, guardianEvidenceContext);
          return verdict.valid
            ? { valid: true, detail: `${evidence.kind} of replica ${evidence.accused}` }
            : { valid: false, detail: verdict.reason };
        },
        isCorrect,
        note,
      },
    });
    guardians.start();
  }
  const REJOIN_RETRY_MS = 5000;
  const nudgeRejoins = (): void => {
    for (const [id, nextAt] of rejoinOwed) {
      const replica = replicas[id]!.replica;
      if (replica === null || queue.now < nextAt) continue;
      if (replica.voting) {
        rejoinOwed.delete(id);
        continue;
      }
      const caughtUp =
        replica.votingFloorKnown &&
        !replica.stateTransferInProgress &&
        !replica.restoredStatePending &&
        replica.lastExecuted >= replica.peersExecuted;
      if (!caughtUp) continue;
      rejoinOwed.set(id, queue.now + REJOIN_RETRY_MS);
      note(`REJOIN nudge for r${id} (view ${replica.view})`);
      for (const node of replicas)
        step(node, { kind: 'change-view', reason: `rejoin r${id}`, aboveView: replica.view });
    }
    queue.after(50, nudgeRejoins);
  };
  queue.at(0, nudgeRejoins);
  const rejuvenatedNotVoting = (): number[] =>
    [...rejuvenated].filter((id) => {
      const node = replicas[id]!;
      return !node.dead && node.replica !== null && !node.replica.voting;
    });

  queue.at(faultPhaseMs, () => {
    network.conditions = CALM_NETWORK;
    network.heal();
    for (const id of [...crashed]) restart(id, 'intact');
    note('HEAL: calm network, partitions healed, crashed replicas restarted');
  });

  const largeValueTotals = (): LargeValueClient['sent'] => {
    const totals = { writes: 0, reads: 0, retransmissions: 0, unauthentic: 0, oversized: 0 };
    for (const id of largeValueClientIds) {
      const sent = (clients.get(id) as LargeValueClient).sent;
      for (const kind of Object.keys(totals) as (keyof typeof totals)[]) totals[kind] += sent[kind];
    }
    return totals;
  };

  // ── run ──
  const deadline = faultPhaseMs + livenessBoundMs;
  while (queue.runNext(deadline)) {
    if (
      queue.now > faultPhaseMs + 1000 &&
      correctClients.every((client) => client.done) &&
      rejuvenatedNotVoting().length === 0
    )
      break;
  }
  const simulatedMs = queue.now;

  // ── verdicts ──
  let livenessFailure: string | null = null;
  for (const client of correctClients) {
    if (!client.done) {
      livenessFailure = `client ${client.id} still had ${client.outstanding} operation(s) outstanding ${simulatedMs - faultPhaseMs} ms after the network healed`;
      break;
    }
  }
  const stillAbstaining = rejuvenatedNotVoting();
  if (livenessFailure === null && stillAbstaining.length > 0) {
    livenessFailure = `rejuvenated replica(s) ${stillAbstaining.map((id) => `r${id}`).join(', ')} still did not vote ${simulatedMs - faultPhaseMs} ms after the network healed`;
  }
  let livenessOutsideModel: string | null = null;
  if (
    livenessFailure !== null &&
    ((schedule !== null && n < 3 * f + 2 * Math.max(1, k) + 1) || conspiracy !== null)
  ) {
    livenessOutsideModel = livenessFailure;
    livenessFailure = null;
  }
  for (const problem of checker.finalProblems()) executionProblem(problem);
  // Beyond f: consistent, or in safe mode. A correct replica that executed another batch than
  // some other correct replica at some sequence must have stopped with a proof (judgeSafeMode).
  let forkedSequences = 0;
  if (conspiracy !== null) {
    const undetected = new Map<number, string>();
    for (const [sequence, byReplica] of [...executedDigests].sort(([a], [b]) => a - b)) {
      if (new Set(byReplica.values()).size < 2) continue;
      forkedSequences++;
      for (const [replica, digestHex] of byReplica)
        if (!safeModeCulprits.has(replica) && !undetected.has(replica)) {
          const other = [...byReplica].find(([, otherDigest]) => otherDigest !== digestHex)!;
          undetected.set(
            replica,
            `fork undetected: replica ${replica} executed batch ${digestHex.slice(0, 12)} at sequence ${sequence}, ` +
              `replica ${other[0]} batch ${other[1].slice(0, 12)}, and replica ${replica} is not in safe mode`,
          );
        }
    }
    for (const problem of undetected.values()) violation(problem);
    if (forkedSequences === 0) {
      if (beyondF.correctAccused > 0)
        violation(`no fork, yet ${beyondF.correctAccused} evidence against correct replicas`);
      for (const problem of forkSymptoms) violation(problem);
    }
  }
  if (guardians !== null) {
    guardians.checker.finish();
    for (const problem of guardians.checker.violations) violation(problem);
  }
  for (const client of correctClients) client.closeHistory();
  const history = correctClients.flatMap((client) => client.history);
  const verdict = checkLinearizability(history);
  // After a fork the clients were answered from two histories: judged above, not here.
  if (
    forkedSequences === 0 &&
    options.service === undefined &&
    !verdict.linearizable &&
    verdict.failure !== null
  ) {
    violation(`linearizability: key ${verdict.failure.key}: ${verdict.failure.explanation}`);
  }
  viewChangesInstalled = new Set([...viewChangesInstalled].filter((view) => view > 0));
  return {
    seed,
    violations,
    livenessFailure,
    livenessOutsideModel,
    requestsCompleted: correctClients.reduce((sum, client) => sum + client.completed, 0),
    fastReads: correctClients.reduce((sum, client) => sum + client.fastReads, 0),
    viewChanges: viewChangesInstalled.size,
    stateTransfers,
    evidence: evidenceCount,
    rejectedInputs,
    detections: detected,
    checkpointsChecked: checkpoints.checkpointsChecked,
    largestClientTableChunks: checkpoints.largestClientTableChunks,
    largeValueRequests: largeValueClientCount === 0 ? null : largeValueTotals(),
    clusterRestarted: options.clusterRestart === true,
    rejuvenations: rejuvenated.size,
    keyTheft,
    keyRotations,
    stolenKeyReplays: replicas.reduce((sum, node) => sum + (node.adversary?.stolenKeyReplays ?? 0), 0),
    signaturesJudged: auditor?.statistics.accepted ?? 0,
    previousEpochSignatures: auditor?.statistics.acceptedPrevious ?? 0,
    evidenceRefused,
    cutOffs,
    cutOffMessagesDropped:
      cutOffDroppedLifted +
      replicas.reduce(
        (sum, node) =>
          sum +
          (node.replica === null || !isCorrect(node.id)
            ? 0
            : [...node.replica.cutOff.values()].reduce((inner, entry) => inner + entry.dropped, 0)),
        0,
      ),
    stolenSignaturesAccepted,
    recovery: guardians?.report(intrusions) ?? null,
    colluding:
      conspiracy === null
        ? null
        : {
            members: [...conspiracy.members],
            misled: [...conspiracy.misled],
            equivocations: conspiracy.equivocations,
            forkedSequences,
            safeMode: [...safeModeCulprits].map(([replica, culprits]) => ({ replica, culprits })),
            correctAccused: beyondF.correctAccused,
            safetyAlarms: beyondF.safetyAlarms,
          },
    byzantine: [...byzantine].map(([replica, behaviours]) => ({ replica, behaviours })),
    simulatedMs,
    network: { ...network.statistics },
    trace,
  };
}
