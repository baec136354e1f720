/**
 * The guardian: the small trusted timely subsystem of one replica host (DESIGN §4).
 *
 * It runs its replica as a child process and is the only holder of the replica's long-term
 * identity key. It talks to the other guardians only, over a control channel with its own keys
 * and ports. On a deterministic schedule it rejuvenates its replica (proactive recovery), and it
 * does so at once — in the next reactive slot — when the replica is proven to misbehave or f + 1
 * replicas suspect it (reactive recovery). A rejuvenation:
 *
 *   stopping → verifying-code → issuing-keys → starting → validating-state →
 *   transferring-state → replaying-log → rejoining
 *
 * Each step is timed; a recovery longer than T_D raises an alarm.
 *
 * Usage:
 * ```ts
 * const guardian = await Guardian.start({ config, id: replicaId(0), identity, entryPoint: cliEntryPoint(), logger });
 * // ... guardian.status() ...
 * await guardian.stop();
 * ```
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  closeSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, dirname, isAbsolute, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import {
  accountabilityLogPath,
  type ClusterConfig,
  replicaDataDirectory,
  scheduleOf,
} from '../config/cluster-config.js';
import { accountabilityLogFiles, auditAccountabilityLogFiles } from '../detection/accountability-log.js';
import { guardianMetricsOf } from './guardian-metrics.js';
import { clientRegistryOf, guardianKeyPath } from '../config/keys.js';
import { quorumSize } from '../core/quorum.js';
import {
  bytesEqual,
  type Digest,
  type ReplicaId,
  digest as asDigest,
  InvariantViolation,
  keyEpoch,
  replicaId,
  toHex,
} from '../messages/ids.js';
import type { KeyRegistry } from '../crypto/key-registry.js';
import type { SigningKeyPair } from '../crypto/keys.js';
import { describeEvidence, verifyEvidence } from '../detection/evidence.js';
import { SuspicionTracker } from '../detection/suspicions.js';
import { decodeEvidence } from '../messages/codec.js';
import type { Evidence, KeyCertificate } from '../messages/types.js';
import { openProcessOutput } from '../runtime/log-file.js';
import { BACKGROUND_PACING, LoadPacer } from '../storage/pacing.js';
import { rejectionKind, TcpTransport } from '../transport/tcp.js';
import { RateLimitedLog } from '../transport/rate-limited-log.js';
import { hostHeaderAllowed, refuseHostHeader } from '../runtime/host-header.js';
import { type NodeId, replicaNode } from '../transport/transport.js';
import { codeBundleFingerprint, verifyCodeBundle } from './code-manifest.js';
import { serviceCodeFiles } from '../hosting/service-code.js';
import {
  canRestorePriority,
  RECOVERING_NICE,
  RECOVERING_NICE_SHARE_OF_T_D,
  setProcessNice,
} from './priority.js';
import { type ControlMessage, decodeControl, encodeControl } from './control.js';
import {
  type FaultMode,
  FramedLink,
  GUARDIAN_LINK_FD,
  type GuardianToReplica,
  MAX_GUARDIAN_FRAME_BYTES,
  MAX_REPLICA_FRAME_BYTES,
  parseReplicaMessage,
  type RecoveryProgress,
  type ReplicaToGuardian,
  fromBase64,
  isFaultMode,
  toBase64,
} from '../runtime/ipc.js';
import {
  CLOCK_SKEW_ALLOWANCE_MS,
  decodeKeyCertificate,
  encodeKeyCertificate,
  installCertificate,
  type IssuedKeys,
  issueKeyCertificate,
  sessionKeysFromSeeds,
  verifyCertificateForConfig,
} from '../crypto/key-certificates.js';
import {
  type Accusation,
  type ScheduleParameters,
  type Slot,
  exposureBoundMs,
  nextProactiveSlotOf,
  reactiveAssignment,
  slotAt,
} from '../core/schedule.js';
import {
  type Alarm,
  type EvidenceRecord,
  type GuardianStatus,
  type RecoveryKind,
  type RecoveryRecord,
  type RecoveryStep,
} from '../runtime/guardian-report.js';
import {
  openGuardianOwnedFile,
  prepareReplicaFiles,
  probeAccessAs,
  replicaEnvironment,
  resolveTrustBoundary,
  setOwnerOfFile,
  type SystemUser,
  TRUST_BOUNDARY_NOT_ENFORCED,
  type TrustBoundary,
} from './trust-boundary.js';

const PROGRESS_ORDER: readonly RecoveryProgress[] = [
  'validating-state',
  'transferring-state',
  'replaying-log',
  'caught-up',
  'voting',
];
/** How often the guardian looks at the clock and the schedule. */
const SCHEDULE_TICK_MS = 50;
/** A stopped replica gets this long to exit before SIGKILL. */
const STOP_GRACE_MS = 1000;
/** Records kept for the status page. */
const MAX_RECORDS = 20;
/** An accusation must reach every guardian this long before the reactive slot that acts on it. */
const DECISION_LEAD_MAX_MS = 1000;
/** A suspicion of the same replica is relayed to the other guardians at most this often. */
const SUSPICION_RELAY_INTERVAL_MS = 500;
/** Largest body of a test-only replica message posted to the admin port. */
const MAX_DEBUG_MESSAGE_BYTES = 256 * 1024;
/**
 * A standby process is started this long before the replica's proactive slot (from code verified
 * then): the preparation that keeps code loading out of the recovery itself.
 */
export const STANDBY_LEAD_MS = 3000;
/** Evidence from the guardian's own replica checked per second at most. */
const MAX_OWN_EVIDENCE_PER_SECOND = 20;
/** Longest a leader's rejuvenation waits for the others to move to a view it does not lead. */
const LEADER_HANDOFF_MAX_MS = 1000;
/** A leader asks for a view it does not lead this long before its own proactive slot. */
const LEADER_HANDOFF_LEAD_MS = 1000;
/** How long a former leader keeps running once the new view executes, for clients to follow. */
const LEADER_HANDOFF_LINGER_MS = 250;
/** A first start waits this long for its replica to catch up before reporting it. */
const FIRST_START_TIMEOUT_MS = 60_000;
/** A guardian that notices its slot this late skips it (and raises an alarm) rather than overrun it. */
const SLOT_LATENESS_MAX_MS = 1000;
/**
 * A guardian whose replica crashed waits this long (or T_D / 8 if shorter) to hear of other
 * crashes before it chooses between rejuvenating now and restarting from the disk: when the
 * whole cluster goes down at once, every guardian must see that more than k are down.
 */
const CRASH_SETTLE_MAX_MS = 500;
/** How often a guardian tells the others whether its replica votes. */
const REPLICA_STATE_INTERVAL_MS = 250;
/** A guardian not heard from for this long counts its replica as out. */
const REPLICA_STATE_STALE_MS = 1500;
/** A rejuvenation waits at most this long (or T_D / 8) for replicas that are out to come back before keeping the disk. */
const REJUVENATION_DECISION_WAIT_MAX_MS = 1000;
/** The current epoch's session key seeds, in the guardian's state folder (never the replica's). */
const SESSION_KEYS_FILE = 'session-keys.json';
/** Certificates read back from the state file at most: two per replica (current and previous). */
const MAX_PERSISTED_CERTIFICATES = 2 * 64;

export interface GuardianOptions {
  readonly config: ClusterConfig;
  readonly id: ReplicaId;
  readonly identity: SigningKeyPair;
  /** Command that runs the CLI: [executable, ...args before the subcommand]. */
  readonly entryPoint: readonly string[];
  readonly logger: Logger;
  /** The code the replica runs, checked against the signed manifest before every start. */
  readonly codeDirectory: string;
  readonly manifestPath: string;
  /** Test and demo clusters: the first incarnation of the replica runs in this fault mode. */
  readonly initialFaultMode?: FaultMode | null;
  readonly replicaLogLevel?: string;
  /** Clock (ms since the Unix epoch); guardians of a cluster share it. */
  readonly now?: () => number;
  /** The replica's OS user (name or `{id}` pattern); overrides recovery.replicaUser; null: none. */
  readonly replicaUser?: string | null;
  /** May create a missing replica user (also allowed by recovery.createReplicaUser). */
  readonly createReplicaUser?: boolean;
  /** The identity key file: root-only once the boundary is enforced, and checked unreadable by the replica. */
  readonly identityKeyFile?: string;
}

interface PersistentState {
  keyEpoch: number;
  lastRejuvenationAtMs: number | null;
  /** (period, index) of the last slot this guardian acted on, so a restart does not repeat it. */
  lastSlot: string | null;
  /**
   * Every replica's latest key certificate and the one before (base64 of the encoded
   * certificate). Signatures in durable state (checkpoint certificates on the replica's disk)
   * were made under these epochs: after a restart of the whole cluster no process remembers
   * them otherwise, and a stored checkpoint whose votes cannot be verified is worthless.
   */
  certificates: string[];
}

interface ActiveRecovery {
  readonly kind: RecoveryKind;
  readonly reason: string;
  readonly startedAtMs: number;
  step: RecoveryStep;
  stepStartedAtMs: number;
  readonly steps: { step: RecoveryStep; durationMs: number }[];
  keyEpoch: number;
}

export class Guardian {
  readonly id: ReplicaId;
  readonly #config: ClusterConfig;
  readonly #options: GuardianOptions;
  readonly #logger: Logger;
  readonly #now: () => number;
  readonly #schedule: ScheduleParameters;
  readonly #registry: KeyRegistry;
  readonly #certificates = new Map<number, KeyCertificate>();
  /** Each replica's certificate before its latest one (signatures of that epoch still count). */
  readonly #previousCertificates = new Map<number, KeyCertificate>();
  readonly #suspicions: SuspicionTracker;
  readonly #stateDirectory: string;
  #state: PersistentState;
  #control: TcpTransport | null = null;
  #admin: Server | null = null;
  #ticker: NodeJS.Timeout | null = null;
  #child: ChildProcess | null = null;
  #childExpectedExit = false;
  #replicaStatus: Extract<ReplicaToGuardian, { type: 'status' }> | null = null;
  #recovery: ActiveRecovery | null = null;
  #waiters: { stage: RecoveryProgress | 'exit'; resolve: () => void }[] = [];
  #reached = new Set<RecoveryProgress>();
  readonly #recoveries: RecoveryRecord[] = [];
  readonly #alarms: Alarm[] = [];
  readonly #evidence: EvidenceRecord[] = [];
  /** Replicas proven (or f + 1 times suspected) to misbehave and not yet rejuvenated since. */
  readonly #accusations = new Map<number, Accusation & { reason: string }>();
  /** Evidence kinds already verified against each replica since its last rejuvenation. */
  readonly #provenKinds = new Map<number, Set<string>>();
  /** Replicas other guardians reported as recovering, with when (suspicions of them are expected). */
  readonly #recoveringPeers = new Map<number, number>();
  /**
   * What each other guardian last said of its replica ('replica-state'): whether it votes, and
   * when that was said. A rejuvenation discards the disk only while at most k replicas are out
   * (#unavailableOthers).
   */
  readonly #peerStates = new Map<number, { readonly voting: boolean; readonly atMs: number }>();
  #stateReporter: NodeJS.Timeout | null = null;
  readonly #rejectionLog = new RateLimitedLog();
  /** What this guardian last said of its own replica (null: nothing yet). */
  #reportedVoting: boolean | null = null;
  #pendingFaultMode: FaultMode | null;
  #stopped = false;
  /** When this guardian last announced a recovery of its replica, or its end (suspicions then are expected). */
  #ownRecoveryActivityAtMs: number | undefined;
  /**
   * A rejuvenation ran out of time before its replica caught up: it still needs the view change
   * that lets it vote again, asked for as soon as it catches up (else amnesiacs pile up).
   */
  #rejoinOwed = false;
  /** The replica process died while a recovery was running it. */
  #crashedDuringRecovery = false;
  /**
   * A process started from verified code shortly before this replica's proactive slot, holding
   * no keys and doing nothing until it gets them: loading the code (a second of CPU) happens
   * while the old process still serves, not inside the recovery.
   */
  #standby: ChildProcess | null = null;
  #preparingStandby = false;
  /** Whether this guardian may raise a priority it lowered (else it never lowers one). */
  readonly #canRestorePriority = canRestorePriority();
  /** The recovering process running at RECOVERING_NICE, and the timer that ends that (RECOVERING_NICE_SHARE_OF_T_D). */
  #lowPriorityPid: number | null = null;
  #priorityTimer: NodeJS.Timeout | null = null;
  /** The start of the own slot a leader handoff was last asked for ahead of. */
  #handedOffForSlotMs: number | null = null;
  /** The code fingerprint taken when the standby's code was last verified by hashing. */
  #standbyCodeCheck: { readonly fingerprint: string; readonly atMs: number } | null = null;
  /** Whether the replica runs as a user of its own (decided at start). */
  #trustBoundary: TrustBoundary = {
    enforced: false,
    replicaUser: null,
    replicaUid: null,
    reason: `${TRUST_BOUNDARY_NOT_ENFORCED} (not started yet)`,
  };
  /** The replica's user when the boundary is enforced; null: the guardian's own. */
  #replicaUser: SystemUser | null = null;
  /** The framed link of each replica process this guardian started (the standby's too). */
  readonly #links = new WeakMap<ChildProcess, FramedLink>();
  /** When each replica process was started, and whether it said it booted (loaded, waiting for keys). */
  readonly #starts = new WeakMap<ChildProcess, { readonly spawnedAtMs: number; booted: boolean }>();
  /** Refused IPC frames, logged at most once per interval (a compromised replica may loop). */
  readonly #ipcRejectionLog = new RateLimitedLog();
  #evidenceWindowStartMs = 0;
  #evidenceInWindow = 0;
  #lastCrashRejuvenationAtMs = Number.NEGATIVE_INFINITY;
  readonly #suspicionRelayedAt = new Map<number, number>();

  private constructor(options: GuardianOptions) {
    const { config } = options;
    if (config.recovery === null)
      throw new Error('the configuration has no recovery section: guardians need T_D and T_P');
    this.id = options.id;
    this.#config = config;
    this.#options = options;
    this.#logger = options.logger;
    this.#now = options.now ?? Date.now;
    this.#schedule = scheduleOf(config);
    this.#registry = clientRegistryOf(config, () => this.#now());
    this.#suspicions = new SuspicionTracker({
      n: config.n,
      f: config.f,
      windowMs: 2 * config.recovery.recoveryBoundMs,
    });
    this.#stateDirectory = join(config.dataDirectory, `guardian-${options.id}`);
    mkdirSync(this.#stateDirectory, { recursive: true });
    this.#state = this.#loadState();
    this.#restoreCertificates();
    this.#pendingFaultMode = options.initialFaultMode ?? null;
  }

  static async start(options: GuardianOptions): Promise<Guardian> {
    const guardian = new Guardian(options);
    // The service module's own files (a user's project, outside the code directory) must be
    // readable by the replica user too; what cannot even be found is the code check's to report.
    const service = await serviceCodeFiles(guardian.#config, options.codeDirectory);
    guardian.#establishTrustBoundary(service.files);
    await guardian.#startControlChannel();
    guardian.#stateReporter = setInterval(
      () => guardian.#reportReplicaState(true),
      REPLICA_STATE_INTERVAL_MS,
    );
    guardian.#admin = await guardian.#startAdmin();
    // A slot already running when the guardian starts is not acted on: the replica starts fresh now.
    const current = slotAt(guardian.#schedule, guardian.#now());
    guardian.#state.lastSlot = `${current.period}:${current.index}`;
    // The first start is not a rejuvenation: the disk is as trustworthy as the host.
    await guardian.#runRecovery('proactive', 'guardian started', { first: true });
    guardian.#ticker = setInterval(() => guardian.#onTick(), SCHEDULE_TICK_MS);
    return guardian;
  }

  // ───────────────────────────── trust boundary ─────────────────────────────

  /**
   * Decides whether the replica runs as a user of its own and, if so, prepares the files and
   * checks as that user that it reaches the code (the service module's files outside the code
   * directory included) and configuration and not the keys. Throws (the
   * guardian does not start) when a user is configured and could be enforced but something is in
   * the way: running anyway would quietly give up what the configuration asks for.
   */
  #establishTrustBoundary(serviceFiles: readonly string[]): void {
    const recovery = this.#config.recovery!;
    const pattern =
      this.#options.replicaUser !== undefined ? this.#options.replicaUser : recovery.replicaUser;
    const { boundary, user } = resolveTrustBoundary(this.id, {
      pattern,
      mayCreate: this.#options.createReplicaUser === true || recovery.createReplicaUser,
    });
    if (user !== null) {
      const identityKeyFile = this.#options.identityKeyFile ?? guardianKeyPath(this.#config, this.id);
      for (const warning of prepareReplicaFiles(this.#config, this.id, user, identityKeyFile))
        this.#logger.warn({ replicaUser: user.name }, warning);
      const problems = probeAccessAs(user, {
        readable: [
          this.#config.source,
          this.#options.codeDirectory,
          ...this.#options.entryPoint.filter((part) => isAbsolute(part)),
          ...this.#options.entryPoint.flatMap((part) =>
            part.startsWith('file:') ? [fileURLToPath(part)] : [],
          ),
          ...serviceFiles,
        ],
        writable: [this.#config.dataDirectory, replicaDataDirectory(this.#config, this.id), tmpdir()],
        forbidden: [
          identityKeyFile,
          this.#config.keysDirectory,
          this.#stateDirectory,
          join(this.#stateDirectory, 'state.json'),
          join(this.#stateDirectory, SESSION_KEYS_FILE),
        ],
      });
      if (problems.length > 0)
        throw new Error(`replica ${this.id} cannot run as ${user.name}:\n  ${problems.join('\n  ')}`);
      this.#logger.info({ replicaUser: user.name, uid: user.uid, gid: user.gid }, boundary.reason);
    } else {
      // Once, plainly: an operator reading the log must not take the isolation for granted.
      this.#logger.warn({ trustBoundary: boundary }, boundary.reason);
    }
    this.#trustBoundary = boundary;
    this.#replicaUser = user;
  }

  // ───────────────────────────── persistent state ─────────────────────────────

  #loadState(): PersistentState {
    const path = join(this.#stateDirectory, 'state.json');
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch {
      return { keyEpoch: 0, lastRejuvenationAtMs: null, lastSlot: null, certificates: [] };
    }
    let parsed: Partial<PersistentState>;
    try {
      parsed = JSON.parse(text) as Partial<PersistentState>;
    } catch (error) {
      // Starting over would reuse key epoch numbers already certified: refuse instead.
      throw new Error(
        `the guardian state file ${path} is not valid JSON (${error instanceof Error ? error.message : String(error)}); ` +
          'restore it from a backup, or delete the whole data folder to start the cluster afresh',
        { cause: error },
      );
    }
    const certificates = Array.isArray(parsed.certificates)
      ? parsed.certificates.filter((entry): entry is string => typeof entry === 'string')
      : [];
    return {
      keyEpoch: typeof parsed.keyEpoch === 'number' ? parsed.keyEpoch : 0,
      lastRejuvenationAtMs:
        typeof parsed.lastRejuvenationAtMs === 'number' ? parsed.lastRejuvenationAtMs : null,
      lastSlot: typeof parsed.lastSlot === 'string' ? parsed.lastSlot : null,
      certificates: certificates.slice(0, MAX_PERSISTED_CERTIFICATES),
    };
  }

  /** Written durably (fsync of the file and of its folder): a key epoch must never be issued twice. */
  #saveState(): void {
    this.#state.certificates = [...this.#previousCertificates.values(), ...this.#certificates.values()].map(
      (certificate) => toBase64(encodeKeyCertificate(certificate)),
    );
    writeFileDurably(join(this.#stateDirectory, 'state.json'), JSON.stringify(this.#state));
  }

  /**
   * A new key epoch for the replica: fresh session keys, certified with the identity key. The
   * epoch number, its certificate and its keys are durable before any signature under it exists.
   */
  #issueEpoch(): IssuedKeys {
    const epoch = keyEpoch(this.#state.keyEpoch + 1);
    const issued = issueKeyCertificate(this.#options.identity, this.id, epoch, this.#now());
    this.#state.keyEpoch = epoch;
    const previousOwn = this.#certificates.get(this.id);
    if (previousOwn !== undefined) this.#previousCertificates.set(this.id, previousOwn);
    this.#certificates.set(this.id, issued.certificate);
    installCertificate(this.#registry, issued.certificate);
    // Kept beside the identity key (same folder, same protection): a restart of this guardian
    // goes on with the epoch instead of retiring it.
    writeFileDurably(
      join(this.#stateDirectory, SESSION_KEYS_FILE),
      JSON.stringify({
        keyEpoch: epoch,
        signingSeed: toBase64(issued.signingSeed),
        agreementSeed: toBase64(issued.agreementSeed),
      }),
    );
    this.#saveState();
    return issued;
  }

  /** The current epoch's keys saved by an earlier run, if they match its certificate; else null. */
  #savedSessionKeys(): IssuedKeys | null {
    const certificate = this.#certificates.get(this.id);
    if (certificate === undefined || certificate.keyEpoch !== this.#state.keyEpoch) return null;
    // An epoch that has expired, or would before a rejuvenation could replace it, is not resumed:
    // nobody would accept its signatures (the cluster was down past its replica's slot). The slot
    // that replaces it must start after this start is surely over: a slot that begins while the
    // guardian is still starting its replica is skipped (#onTick), and a whole cluster starting
    // at once on a small machine takes longer than T_D, hence the two T_D.
    const acceptedUntilMs = this.#registry.acceptedUntilMs(this.id, certificate.keyEpoch);
    const replacingSlot = nextProactiveSlotOf(
      this.#schedule,
      this.id,
      this.#now() + 2 * this.#schedule.recoveryBoundMs,
    );
    if (acceptedUntilMs === undefined || acceptedUntilMs < replacingSlot.endMs) {
      this.#logger.info(
        { keyEpoch: certificate.keyEpoch, issuedAtMs: certificate.issuedAtMs },
        'the saved key epoch has expired: a new one is issued',
      );
      return null;
    }
    try {
      const saved = JSON.parse(readFileSync(join(this.#stateDirectory, SESSION_KEYS_FILE), 'utf8')) as {
        keyEpoch?: unknown;
        signingSeed?: unknown;
        agreementSeed?: unknown;
      };
      if (
        saved.keyEpoch !== certificate.keyEpoch ||
        typeof saved.signingSeed !== 'string' ||
        typeof saved.agreementSeed !== 'string'
      )
        return null;
      const signingSeed = fromBase64(saved.signingSeed);
      const agreementSeed = fromBase64(saved.agreementSeed);
      const sessionKeys = sessionKeysFromSeeds(signingSeed, agreementSeed);
      if (
        !bytesEqual(sessionKeys.signing.publicKey.bytes, certificate.signingKey) ||
        !bytesEqual(sessionKeys.agreement.publicKey.bytes, certificate.agreementKey)
      )
        return null;
      this.#logger.info({ keyEpoch: certificate.keyEpoch }, 'the replica goes on with the key epoch it had');
      return { certificate, sessionKeys, signingSeed, agreementSeed };
    } catch {
      return null;
    }
  }

  /**
   * The certificates saved by an earlier run of this guardian, oldest epoch first per replica:
   * they let its replica verify the checkpoint on its disk after the whole cluster restarted.
   */
  #restoreCertificates(): void {
    const decoded = this.#state.certificates
      .map((text) => decodeKeyCertificate(fromBase64(text)))
      .filter(
        (certificate): certificate is KeyCertificate =>
          certificate !== null && verifyCertificateForConfig(certificate, this.#config),
      )
      .sort((a, b) => a.replica - b.replica || a.keyEpoch - b.keyEpoch);
    for (const certificate of decoded) {
      const known = this.#certificates.get(certificate.replica);
      if (known !== undefined && known.keyEpoch >= certificate.keyEpoch) continue;
      if (known !== undefined) this.#previousCertificates.set(certificate.replica, known);
      this.#certificates.set(certificate.replica, certificate);
      installCertificate(this.#registry, certificate);
    }
    if (decoded.length > 0)
      this.#logger.info(
        { certificates: decoded.length },
        'restored the key certificates saved before the restart',
      );
  }

  // ───────────────────────────── control channel ─────────────────────────────

  async #startControlChannel(): Promise<void> {
    const config = this.#config;
    const self = config.replicas[this.id]!;
    this.#control = await TcpTransport.start({
      identity: { node: replicaNode(this.id), keyEpoch: keyEpoch(0), signingKeys: this.#options.identity },
      listen: { host: self.guardianHost, port: self.guardianPort },
      peers: config.replicas
        .filter((replica) => replica.id !== this.id)
        .map((replica) => ({
          node: replicaNode(replica.id),
          host: replica.guardianHost,
          port: replica.guardianPort,
        })),
      keys: {
        acceptableKeys: (peer: NodeId) => {
          if (peer.kind !== 'replica') return [];
          const identity = config.replicas[peer.id]?.identityKey;
          return identity == null ? [] : [{ keyEpoch: keyEpoch(0), publicKey: identity }];
        },
      },
      // The transport logs its own refusals, at most one line per offender and kind per interval.
      logger: this.#logger,
      events: {
        onFrame: (from, frame) => this.#onControlFrame(from, frame),
        onPeerStateChange: (peer, connected) => {
          if (connected && peer.kind === 'replica') this.#sendCertificatesTo(peer);
        },
        onRejection: () => undefined,
      },
    });
  }

  #broadcastControl(message: ControlMessage): void {
    const frame = encodeControl(message);
    for (const replica of this.#config.replicas) {
      if (replica.id !== this.id) this.#control?.send(replicaNode(replica.id), frame);
    }
  }

  #sendCertificatesTo(peer: NodeId): void {
    for (const certificate of this.#certificates.values()) {
      this.#control?.send(
        peer,
        encodeControl({ type: 'certificate', certificate: toBase64(encodeKeyCertificate(certificate)) }),
      );
    }
  }

  #onControlFrame(from: NodeId, frame: Uint8Array): void {
    if (from.kind !== 'replica') return;
    const decoded = decodeControl(frame);
    if (!decoded.ok) {
      // A guardian on a compromised host could send a flood of these: one line per interval.
      const permit = this.#rejectionLog.admit(`replica:${from.id} ${rejectionKind(decoded.reason)}`);
      if (permit !== null)
        this.#logger.warn(
          { from: from.id, reason: decoded.reason, suppressed: permit.suppressed },
          'rejected control frame',
        );
      return;
    }
    const message = decoded.message;
    switch (message.type) {
      case 'certificate':
        this.#acceptCertificate(fromBase64(message.certificate), `guardian ${from.id}`);
        return;
      case 'evidence':
        this.#onEvidence(fromBase64(message.evidence), message.reporter);
        return;
      case 'suspicion':
        this.#onSuspicion(message.accused, from.id, message.reason);
        return;
      case 'recovering':
        this.#recoveringPeers.set(from.id, this.#now());
        this.#peerStates.set(from.id, { voting: false, atMs: this.#now() });
        return;
      case 'recovered':
        this.#recoveringPeers.set(from.id, this.#now());
        this.#accusations.delete(from.id);
        this.#provenKinds.delete(from.id);
        this.#suspicions.clear(replicaId(from.id));
        return;
      case 'replica-state':
        this.#peerStates.set(from.id, { voting: message.voting, atMs: this.#now() });
        return;
      case 'rejuvenation-owed':
        this.#accuse(from.id, `rejuvenation owed: ${message.reason}`);
        return;
      case 'nudge':
        this.#toReplica({
          type: 'nudge-view-change',
          avoidLeaders: this.#recoveringNext(),
          aboveView: message.aboveView,
        });
        return;
    }
  }

  #acceptCertificate(encoded: Uint8Array, source: string): void {
    const certificate = decodeKeyCertificate(encoded);
    if (certificate === null || !verifyCertificateForConfig(certificate, this.#config)) {
      this.#alarm(
        `rejected a key certificate from ${source}: it does not verify with the replica's identity key`,
      );
      return;
    }
    const known = this.#certificates.get(certificate.replica);
    if (known !== undefined && known.keyEpoch >= certificate.keyEpoch) return;
    if (known !== undefined) this.#previousCertificates.set(certificate.replica, known);
    this.#certificates.set(certificate.replica, certificate);
    installCertificate(this.#registry, certificate);
    // Before the replica can receive votes signed under it: a restart must still know this epoch.
    this.#saveState();
    this.#toReplica({ type: 'certificates', certificates: [toBase64(encoded)] });
  }

  // ───────────────────────────── evidence and suspicions ─────────────────────────────

  #onEvidence(encoded: Uint8Array, reporter: string): void {
    const decoded = decodeEvidence(encoded);
    if (!decoded.ok) {
      this.#recordEvidence({
        kind: 'undecodable',
        accused: -1,
        reporter,
        valid: false,
        detail: decoded.reason,
      });
      return;
    }
    const evidence: Evidence = decoded.value;
    // One proof of each kind is recorded until the replica is rejuvenated (one is enough to
    // accuse it, and checking each of a flood of copies would let a liar keep every guardian busy).
    const proven = this.#provenKinds.get(evidence.accused);
    if (proven?.has(evidence.kind) === true) return;
    const verdict = verifyEvidence(evidence, {
      model: this.#config,
      hash: sha256,
      verifyReplicaSignature: (signer, epoch, payload, signature) =>
        this.#registry.verifyReplicaSignature(signer, epoch, payload, signature),
      currentEpoch: (replica) => this.#registry.currentEpoch(replica),
    });
    if (!verdict.valid) {
      this.#recordEvidence({
        kind: evidence.kind,
        accused: evidence.accused,
        reporter,
        valid: false,
        detail: verdict.reason,
      });
      this.#logger.warn(
        { reporter, kind: evidence.kind, reason: verdict.reason },
        'forged or invalid evidence rejected',
      );
      return;
    }
    this.#recordEvidence({
      kind: evidence.kind,
      accused: evidence.accused,
      reporter,
      valid: true,
      detail: describeEvidence(evidence),
    });
    if (proven === undefined) this.#provenKinds.set(evidence.accused, new Set([evidence.kind]));
    else proven.add(evidence.kind);
    // Relayed once by every guardian that accepts it: all of them learn it even if some links are down.
    this.#broadcastControl({ type: 'evidence', evidence: toBase64(encoded), reporter });
    if (!this.#accusations.has(evidence.accused)) this.#accuse(evidence.accused, `proof: ${evidence.kind}`);
  }

  #onSuspicion(accused: number, reporter: number, reason: string): void {
    if (accused >= this.#config.n || accused === reporter) return;
    // A replica being rejuvenated is down on purpose: suspicions of it are expected, not evidence.
    // Every guardian applies the same rule (its own replica included), so all reach the same
    // accusations: a replica is not suspected within 2·T_D of announcing a recovery.
    const recovering =
      accused === this.id ? this.#ownRecoveryActivityAtMs : this.#recoveringPeers.get(accused);
    const bound = this.#config.recovery!.recoveryBoundMs;
    if (recovering !== undefined && this.#now() - recovering < 2 * bound) {
      // Info, not debug: an operator asking why f + 1 complaints accused nobody finds the answer.
      this.#logger.info({ accused, reporter, reason }, 'suspicion of a replica that just recovered ignored');
      return;
    }
    this.#logger.info({ accused, reporter, reason }, 'suspicion');
    if (this.#suspicions.report(replicaId(accused), replicaId(reporter), this.#now())) {
      this.#accuse(accused, `f + 1 replicas suspect it (${reason})`);
    }
  }

  #accuse(accused: number, reason: string): void {
    if (this.#accusations.has(accused)) return;
    this.#accusations.set(accused, { replica: replicaId(accused), accusedAtMs: this.#now(), reason });
    this.#logger.warn({ accused, reason }, 'replica accused: scheduled into the next reactive slot');
  }

  #recordEvidence(record: Omit<EvidenceRecord, 'atMs'>): void {
    this.#evidence.unshift({ ...record, atMs: this.#now() });
    this.#evidence.length = Math.min(this.#evidence.length, MAX_RECORDS);
  }

  #alarm(message: string): void {
    this.#logger.error({ alarm: message }, 'ALARM');
    this.#alarms.unshift({ atMs: this.#now(), message });
    this.#alarms.length = Math.min(this.#alarms.length, MAX_RECORDS);
  }

  // ───────────────────────────── schedule ─────────────────────────────

  #onTick(): void {
    if (this.#stopped || this.#recovery !== null) return;
    const now = this.#now();
    const ownSlot = nextProactiveSlotOf(this.#schedule, this.id, now);
    if (ownSlot.startMs - now <= STANDBY_LEAD_MS && ownSlot.startMs > now) void this.#prepareStandby();
    if (ownSlot.startMs - now <= LEADER_HANDOFF_LEAD_MS && ownSlot.startMs > now)
      this.#handOffBeforeSlot(ownSlot.startMs);
    const slot = slotAt(this.#schedule, now);
    const slotName = `${slot.period}:${slot.index}`;
    if (this.#state.lastSlot === slotName) return;
    // A replica (re)started during this very slot (the guardian was starting it) is already fresh,
    // unless its key epoch ends with this slot: then only this slot's rejuvenation replaces it.
    const freshInSlot =
      this.#state.lastRejuvenationAtMs !== null &&
      this.#state.lastRejuvenationAtMs >= slot.startMs &&
      !this.#ownEpochEndsWith(slot);
    if (freshInSlot && slot.kind === 'proactive') {
      this.#state.lastSlot = slotName;
      if (slot.replicas.includes(this.id)) this.#discardStandby();
      return;
    }
    const late = now - slot.startMs > SLOT_LATENESS_MAX_MS;
    if (slot.kind === 'proactive' && slot.replicas.includes(this.id)) {
      this.#state.lastSlot = slotName;
      if (late) {
        this.#discardStandby();
        // Starting now could overrun into the next slot and take more than k replicas down at once.
        // Its key epoch ends with this slot, so the rejuvenation is owed to the next reactive slot.
        const reason = `it missed its proactive slot (the guardian noticed it ${now - slot.startMs} ms late)`;
        this.#alarm(`replica ${this.id} ${reason}; a rejuvenation is owed to the next reactive slot`);
        this.#broadcastControl({ type: 'rejuvenation-owed', reason });
        this.#accuse(this.id, `rejuvenation owed: ${reason}`);
        return;
      }
      void this.#runRecovery('proactive', `period ${slot.period}`, { slotEndMs: slot.endMs });
      return;
    }
    if (slot.kind === 'reactive') {
      const lead = Math.min(DECISION_LEAD_MAX_MS, this.#schedule.recoveryBoundMs / 4);
      const chosen = reactiveAssignment(this.#schedule, slot, [...this.#accusations.values()], lead);
      if (chosen.includes(this.id)) {
        this.#state.lastSlot = slotName;
        if (late) {
          this.#alarm(`replica ${this.id} missed its reactive slot; it stays accused for the next one`);
          return;
        }
        const reason = this.#accusations.get(this.id)?.reason ?? 'accused';
        void this.#runRecovery('reactive', reason, { slotEndMs: slot.endMs });
      }
    }
  }

  /** Until when the replica's current key epoch is accepted (null: none issued yet). */
  #ownEpochAcceptedUntilMs(): number | null {
    const acceptedUntilMs = this.#registry.acceptedUntilMs(this.id, keyEpoch(this.#state.keyEpoch));
    return acceptedUntilMs === undefined || !Number.isFinite(acceptedUntilMs) ? null : acceptedUntilMs;
  }

  /** Whether the replica's current key epoch stops being accepted at the end of `slot`. */
  #ownEpochEndsWith(slot: Slot): boolean {
    const acceptedUntilMs = this.#ownEpochAcceptedUntilMs();
    return acceptedUntilMs === null || acceptedUntilMs <= slot.endMs + CLOCK_SKEW_ALLOWANCE_MS;
  }

  // ───────────────────────────── rejuvenation ─────────────────────────────

  #enterStep(step: RecoveryStep): void {
    const recovery = this.#recovery;
    if (recovery === null) return;
    const now = this.#now();
    recovery.steps.push({ step: recovery.step, durationMs: now - recovery.stepStartedAtMs });
    recovery.step = step;
    recovery.stepStartedAtMs = now;
    this.#logger.info({ step, kind: recovery.kind }, 'recovery step');
  }

  async #runRecovery(
    kind: RecoveryKind,
    reason: string,
    options: {
      /** The guardian's first start of its replica: from its disk, not a rejuvenation. */
      readonly first?: boolean;
      /** The replica process crashed: a rejuvenation outside the schedule (#mustKeepDisk). */
      readonly afterCrash?: boolean;
      readonly slotEndMs?: number;
    } = {},
  ): Promise<void> {
    const first = options.first === true;
    let fromDisk = false;
    const now = this.#now();
    this.#recovery = {
      kind,
      reason,
      startedAtMs: now,
      step: 'stopping',
      stepStartedAtMs: now,
      steps: [],
      keyEpoch: this.#state.keyEpoch,
    };
    this.#reached.clear();
    this.#rejoinOwed = false;
    this.#ownRecoveryActivityAtMs = now;
    this.#broadcastControl({ type: 'recovering', kind, reason });
    this.#logger.info({ kind, reason }, first ? 'starting the replica' : 'rejuvenation started');
    try {
      if (!first) await this.#handOffLeadership();
      await this.#stopReplica();
      if (!first) fromDisk = await this.#mustKeepDisk(kind, options.afterCrash === true);
      const archivedLogs = first || fromDisk ? [] : this.#archiveAccountabilityLog();
      this.#enterStep('verifying-code');
      const verdict = await this.#verifyCodeForRecovery();
      if (!verdict.ok) {
        this.#discardStandby();
        this.#alarm(
          `refusing to start replica ${this.id}: its code does not match the signed manifest: ${verdict.problems.join('; ')}`,
        );
        return;
      }
      this.#enterStep('issuing-keys');
      // A first start (the guardian restarted) is no rejuvenation: the epoch the replica had goes
      // on, or every restart would retire one more epoch of every replica and leave checkpoint
      // certificates on disk with votes nobody accepts any more.
      const kept = first ? this.#savedSessionKeys() : null;
      const issued = kept ?? this.#issueEpoch();
      const epoch = issued.certificate.keyEpoch;
      this.#recovery.keyEpoch = epoch;
      this.#broadcastControl({
        type: 'certificate',
        certificate: toBase64(encodeKeyCertificate(issued.certificate)),
      });
      this.#enterStep('starting');
      this.#spawnReplica({
        type: 'session-keys',
        keyEpoch: epoch,
        signingSeed: toBase64(issued.signingSeed),
        agreementSeed: toBase64(issued.agreementSeed),
        certificate: toBase64(encodeKeyCertificate(issued.certificate)),
        // The previous epoch of every replica too (its own included): signatures made just
        // before a rotation (checkpoint votes, view changes inside a NEW-VIEW) stay verifiable
        // for the new process as they do for the others.
        certificates: [...this.#previousCertificates.values(), ...this.#certificates.values()].map(
          (certificate) => toBase64(encodeKeyCertificate(certificate)),
        ),
        // After a rejuvenation the log the old process wrote is not trusted; on a first start it is.
        amnesiac: !first && !fromDisk,
        faultMode: this.#pendingFaultMode,
      });
      this.#pendingFaultMode = null;
      if (!first) this.#lowerRecoveringPriority(now);
      this.#enterStep('validating-state');
      // A first start has no slot to fit in (the whole cluster may be starting); a rejuvenation
      // must be done within T_D of its start, or it is reported and the schedule moves on.
      const deadline = first
        ? Number.POSITIVE_INFINITY
        : Math.min(now + this.#schedule.recoveryBoundMs, options.slotEndMs ?? Number.POSITIVE_INFINITY);
      let reached = await this.#waitFor('caught-up', first ? this.#now() + FIRST_START_TIMEOUT_MS : deadline);
      if (reached && !first) {
        this.#enterStep('rejoining');
        // Already voting: its checkpoint passed everything it could have forgotten.
        if (!this.#reached.has('voting')) this.#askForRejoinViewChange();
        reached = await this.#waitFor('voting', deadline);
      } else if (!reached && !first) {
        this.#rejoinOwed = true;
      }
      if (!reached) {
        const step = this.#recovery.step;
        this.#alarm(
          first
            ? `replica ${this.id} did not catch up within ${FIRST_START_TIMEOUT_MS} ms of starting (stuck at ${step}); it keeps trying`
            : `the ${kind} recovery of replica ${this.id} did not finish by its deadline ` +
                // The slot's end may come before T_D: say which deadline passed, not always T_D.
                (deadline - now < this.#schedule.recoveryBoundMs
                  ? `(the end of its slot, ${deadline - now} ms after it started, before T_D = ${this.#schedule.recoveryBoundMs} ms) `
                  : `(T_D = ${this.#schedule.recoveryBoundMs} ms) `) +
                `(stuck at ${step}); the replica keeps catching up, the schedule moves on`,
        );
      }
      this.#restoreRecoveringPriority();
      if (fromDisk) this.#finishRestartFromDisk(reached);
      else this.#finishRecovery(first, reached);
      void this.#auditArchivedLogs(archivedLogs);
    } catch (error) {
      this.#alarm(
        `recovery of replica ${this.id} failed: ${error instanceof Error ? error.message : String(error)}`,
      );
    } finally {
      this.#restoreRecoveringPriority();
      this.#recovery = null;
      if (this.#crashedDuringRecovery && this.#child === null && !this.#stopped) this.#restartAfterCrash();
      this.#crashedDuringRecovery = false;
    }
  }

  /**
   * The new process loads, checks and fetches state on the cores the serving replicas use: it
   * runs at a low priority until it votes again, or until RECOVERING_NICE_SHARE_OF_T_D of T_D has
   * passed, after which it gets the normal priority back so the bound holds however busy the
   * machine is.
   */
  #lowerRecoveringPriority(startedAtMs: number): void {
    const child = this.#child;
    if (child !== null && this.#starts.get(child)?.booted !== true) {
      // A standby still booting at its slot (or a process started just now): its start-up is on
      // the recovery's clock already, and at a low priority on busy cores it took seconds.
      this.#logger.info(
        'the replica process had not finished booting when its recovery began: it runs at normal priority',
      );
      this.#restoreRecoveringPriority();
      return;
    }
    if (!this.#lowerPriority(child?.pid)) return;
    const restoreAtMs = startedAtMs + this.#schedule.recoveryBoundMs * RECOVERING_NICE_SHARE_OF_T_D;
    this.#priorityTimer = setTimeout(
      () => {
        this.#logger.info(
          'recovery past its low-priority share of T_D: its process gets the normal priority back',
        );
        this.#restoreRecoveringPriority();
      },
      Math.max(0, restoreAtMs - this.#now()),
    );
  }

  /**
   * Runs `pid` at RECOVERING_NICE, remembered for #restoreRecoveringPriority. Only when this
   * guardian can raise it back; a process some of whose threads refused is put back to normal.
   */
  #lowerPriority(pid: number | undefined): boolean {
    if (pid === undefined || !this.#canRestorePriority) return false;
    if (!setProcessNice(pid, RECOVERING_NICE)) {
      setProcessNice(pid, 0);
      return false;
    }
    this.#lowPriorityPid = pid;
    return true;
  }

  #restoreRecoveringPriority(): void {
    if (this.#priorityTimer !== null) clearTimeout(this.#priorityTimer);
    this.#priorityTimer = null;
    const pid = this.#lowPriorityPid;
    this.#lowPriorityPid = null;
    if (pid !== null && !setProcessNice(pid, 0) && this.#child?.pid === pid)
      this.#alarm(`could not give replica ${this.id}'s process (pid ${pid}) its normal CPU priority back`);
  }

  /** `finished`: the replica reached the last step before the deadline. */
  #finishRecovery(first: boolean, finished: boolean): void {
    const recovery = this.#recovery!;
    const now = this.#now();
    recovery.steps.push({ step: recovery.step, durationMs: now - recovery.stepStartedAtMs });
    const durationMs = now - recovery.startedAtMs;
    const bound = this.#config.recovery!.recoveryBoundMs;
    const exceededBound = !first && (durationMs > bound || !finished);
    this.#state.lastRejuvenationAtMs = now;
    // Like the other guardians on 'recovered': suspicions right after a recovery are expected.
    this.#ownRecoveryActivityAtMs = now;
    this.#saveState();
    this.#accusations.delete(this.id);
    this.#provenKinds.delete(this.id);
    this.#suspicions.clear(this.id);
    if (!first) {
      this.#recoveries.unshift({
        kind: recovery.kind,
        reason: recovery.reason,
        startedAtMs: recovery.startedAtMs,
        durationMs,
        steps: recovery.steps.filter((entry) => entry.durationMs > 0 || entry.step !== 'stopping'),
        exceededBound,
        keyEpoch: recovery.keyEpoch,
      });
      this.#recoveries.length = Math.min(this.#recoveries.length, MAX_RECORDS);
      this.#broadcastControl({ type: 'recovered', keyEpoch: recovery.keyEpoch });
    }
    if (exceededBound)
      this.#alarm(
        durationMs > bound
          ? `the ${recovery.kind} recovery of replica ${this.id} took ${durationMs} ms, over T_D = ${bound} ms`
          : // Cut off by the end of its slot (or at T_D exactly): not "over T_D".
            `the ${recovery.kind} recovery of replica ${this.id} ended unfinished at its deadline, ` +
              `${durationMs} ms after it started (T_D = ${bound} ms)`,
      );
    this.#logger.info(
      { kind: recovery.kind, durationMs, keyEpoch: recovery.keyEpoch },
      first ? 'replica running' : 'rejuvenation finished',
    );
  }

  /**
   * Takes the stopped process's accountability log (and its rotated predecessor) out of the
   * way under the key epoch that wrote it: the new process starts a fresh chain at once, without
   * reading megabytes of history inside the recovery, and the audit of the old files runs after.
   * The two newest archives are kept.
   */
  #archiveAccountabilityLog(): string[] {
    const path = accountabilityLogPath(this.#config, this.id);
    const archived: string[] = [];
    // Oldest first, as the audit reads them: each file's chain continues the one before.
    for (const source of accountabilityLogFiles(path)) {
      const target = `${source}.epoch-${this.#state.keyEpoch}`;
      renameSync(source, target);
      // Archived, the log is the guardian's: the replica user (in a sticky folder) could otherwise
      // still replace or delete it before the audit, or any time after.
      if (
        this.#replicaUser !== null &&
        !setOwnerOfFile(target, { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 })
      )
        this.#logger.warn(
          { file: target },
          'archived accountability log is not a plain file; left to the audit',
        );
      archived.push(target);
    }
    const directory = dirname(path);
    const prefix = `${basename(path)}`;
    const epochs = readdirSync(directory)
      .map((name) => /\.epoch-(\d+)$/.exec(name)?.[1])
      .filter((epoch): epoch is string => epoch !== undefined)
      .map(Number);
    const keep = new Set([...new Set(epochs)].sort((x, y) => y - x).slice(0, 2));
    for (const name of readdirSync(directory)) {
      const match = /\.epoch-(\d+)$/.exec(name);
      if (name.startsWith(prefix) && match !== null && !keep.has(Number(match[1])))
        rmSync(join(directory, name), { force: true });
    }
    return archived;
  }

  /**
   * Checks the hash chain of what a stopped process says it sent and received. A broken chain
   * means the log was tampered with (or torn by a crash): the file is kept as evidence and an
   * alarm is raised.
   */
  async #auditArchivedLogs(files: readonly string[]): Promise<void> {
    if (files.length === 0) return;
    const pacer = new LoadPacer(BACKGROUND_PACING);
    let audits: Awaited<ReturnType<typeof auditAccountabilityLogFiles>>;
    try {
      // Oldest first, each file's chain checked to go on from the head of the one before.
      audits = await auditAccountabilityLogFiles(files, { pace: () => pacer.yield() });
    } catch (error) {
      this.#logger.warn({ err: error, files }, 'accountability log could not be audited');
      return;
    }
    for (const { file, audit } of audits) {
      if (audit.ok) {
        this.#logger.info(
          {
            file: basename(file),
            entries: audit.entries,
            droppedEntries: audit.droppedEntries,
            head: toHex(audit.head).slice(0, 16),
            pausedMs: pacer.pausedMs,
          },
          'accountability log audited',
        );
        continue;
      }
      const aside = `${file}.broken`;
      try {
        renameSync(file, aside);
      } catch (error) {
        this.#logger.warn({ err: error, file }, 'could not set the broken accountability log aside');
      }
      this.#alarm(
        `the accountability log of replica ${this.id} fails its audit at record ${audit.entry}: ${audit.reason}` +
          `${audit.tornTail ? ' (torn tail)' : ''}; kept as ${aside}`,
      );
    }
  }

  async #verifyCode(): Promise<{ ok: true } | { ok: false; problems: readonly string[] }> {
    const installKey = this.#config.installKey;
    if (installKey === null) return { ok: true };
    // The service module's files are found again now: an import added since signing is a file
    // the manifest does not list.
    const service = await serviceCodeFiles(this.#config, this.#options.codeDirectory);
    const verdict = await verifyCodeBundle(
      this.#options.codeDirectory,
      this.#options.manifestPath,
      installKey,
      {
        serviceFiles: service.files,
      },
    );
    const problems = [...service.problems, ...(verdict.ok ? [] : verdict.problems)];
    return problems.length === 0 ? { ok: true } : { ok: false, problems };
  }

  /**
   * The code check inside a rejuvenation. A standby process was started seconds ago from code
   * hashed against the manifest then; if the file system shows no file of the bundle or the
   * manifest touched since (same fingerprint), that verdict still holds and hashing the whole
   * bundle again would only take CPU from the replicas serving clients during the recovery.
   * Otherwise (no standby, or anything changed) the bundle is hashed now.
   */
  async #verifyCodeForRecovery(): Promise<{ ok: true } | { ok: false; problems: readonly string[] }> {
    const check = this.#standbyCodeCheck;
    this.#standbyCodeCheck = null;
    if (
      check !== null &&
      this.#liveStandby() !== null &&
      (await this.#codeFingerprint()) === check.fingerprint
    ) {
      this.#logger.info(
        { verifiedMsAgo: this.#now() - check.atMs },
        'code bundle unchanged since the standby was started from it verified',
      );
      return { ok: true };
    }
    return await this.#verifyCode();
  }

  async #codeFingerprint(): Promise<string | null> {
    try {
      const service = await serviceCodeFiles(this.#config, this.#options.codeDirectory);
      if (service.problems.length > 0) return null;
      return await codeBundleFingerprint(this.#options.codeDirectory, this.#options.manifestPath, {
        serviceFiles: service.files,
      });
    } catch {
      return null;
    }
  }

  /**
   * Resolves true when the replica reports `stage` (or a later one), false when `deadlineMs` (on
   * the guardian's clock) passes first: a recovery never blocks the schedule forever.
   */
  #waitFor(stage: RecoveryProgress, deadlineMs: number): Promise<boolean> {
    if (
      [...this.#reached].some((reached) => PROGRESS_ORDER.indexOf(reached) >= PROGRESS_ORDER.indexOf(stage))
    ) {
      return Promise.resolve(true);
    }
    return new Promise((resolve) => {
      const waiter = {
        stage,
        resolve: () => {
          clearTimeout(timer);
          resolve(true);
        },
      };
      const timer = setTimeout(
        () => {
          this.#waiters = this.#waiters.filter((entry) => entry !== waiter);
          resolve(false);
        },
        Math.max(0, deadlineMs - this.#now()),
      );
      this.#waiters.push(waiter);
    });
  }

  /** Every replica moves to the next view, which the rejuvenated one can vote in. */
  #askForRejoinViewChange(): void {
    this.#rejoinOwed = false;
    this.#askForViewChange();
  }

  /**
   * Every replica (this one directly, the others through their guardians) moves to a later view
   * led by none of the replicas about to be rejuvenated, nor by `alsoAvoid`.
   */
  #askForViewChange(alsoAvoid: number | null = null): void {
    // The view this replica last reported: the one a rejuvenated replica sat out, or the one a
    // leader hands over. A replica that has moved past it when the nudge arrives ignores it.
    const aboveView = this.#replicaStatus?.view ?? null;
    this.#broadcastControl({ type: 'nudge', aboveView });
    const avoid = new Set(this.#recoveringNext());
    if (alsoAvoid !== null) avoid.add(alsoAvoid);
    this.#toReplica({ type: 'nudge-view-change', avoidLeaders: [...avoid], aboveView });
  }

  /** Whether this guardian's replica leads the view it last reported. */
  #replicaLeads(): boolean {
    const status = this.#replicaStatus;
    return status !== null && status.view % this.#config.n === this.id;
  }

  /**
   * Who the next slot rejuvenates (every guardian computes the same from the schedule): the view
   * a rejoin moves to should not be led by one of them.
   */
  #recoveringNext(): number[] {
    const current = slotAt(this.#schedule, this.#now());
    const next = slotAt(this.#schedule, current.endMs);
    const avoid = new Set<number>();
    for (const slot of [current, next]) {
      if (slot.kind === 'proactive') for (const replica of slot.replicas) avoid.add(replica);
      if (slot.kind === 'reactive') for (const replica of this.#accusations.keys()) avoid.add(replica);
    }
    if (this.#recovery !== null) avoid.add(this.id);
    return [...avoid];
  }

  /**
   * A leader whose proactive slot is about to start asks, once, for a view it does not lead, so
   * the view change (and the re-proposals it costs) is over before the slot rather than inside
   * the recovery. The view chosen also avoids the next slot's replicas, so in steady rounds the
   * leader is never the replica being rejuvenated.
   */
  #handOffBeforeSlot(slotStartMs: number): void {
    if (this.#handedOffForSlotMs === slotStartMs || !this.#replicaLeads()) return;
    this.#handedOffForSlotMs = slotStartMs;
    this.#logger.info(
      { view: this.#replicaStatus?.view, slotInMs: slotStartMs - this.#now() },
      'handing leadership on before the slot',
    );
    this.#askForViewChange(this.id);
  }

  /**
   * Stopping the leader would stall every request until the others time out and change view:
   * a leader about to be rejuvenated first asks everybody to move to a view it does not lead.
   */
  async #handOffLeadership(): Promise<void> {
    if (!this.#replicaLeads()) return;
    this.#logger.info({ view: this.#replicaStatus?.view }, 'handing leadership on before the rejuvenation');
    this.#askForViewChange(this.id);
    const deadline = this.#now() + Math.min(LEADER_HANDOFF_MAX_MS, this.#schedule.recoveryBoundMs / 8);
    // Until the new view executes requests, and a moment more: clients learn the new leader from
    // replies, and meanwhile this replica still forwards what they send it.
    let executedInNewView: number | null = null;
    while (this.#now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      const current = this.#replicaStatus;
      if (current === null) break;
      if (current.view % this.#config.n === this.id) continue;
      if (executedInNewView === null) executedInNewView = current.lastExecuted;
      else if (current.lastExecuted > executedInNewView) {
        await new Promise((resolve) => setTimeout(resolve, LEADER_HANDOFF_LINGER_MS));
        break;
      }
    }
  }

  #onProgress(stage: RecoveryProgress): void {
    this.#reached.add(stage);
    if (this.#rejoinOwed && this.#recovery === null) {
      if (stage === 'voting') this.#rejoinOwed = false;
      else if (stage === 'caught-up') {
        this.#logger.info('replica caught up after its recovery deadline: asking for its rejoin view change');
        this.#askForRejoinViewChange();
      }
    }
    const recovery = this.#recovery;
    if (recovery !== null) {
      if (stage === 'transferring-state' && recovery.step === 'validating-state')
        this.#enterStep('transferring-state');
      if (
        stage === 'replaying-log' &&
        (recovery.step === 'validating-state' || recovery.step === 'transferring-state')
      ) {
        this.#enterStep('replaying-log');
      }
    }
    const reachedRank = PROGRESS_ORDER.indexOf(stage);
    const ready = this.#waiters.filter(
      (waiter) => waiter.stage !== 'exit' && PROGRESS_ORDER.indexOf(waiter.stage) <= reachedRank,
    );
    this.#waiters = this.#waiters.filter((waiter) => !ready.includes(waiter));
    for (const waiter of ready) waiter.resolve();
  }

  // ───────────────────────────── the replica process ─────────────────────────────

  /**
   * A replica process from the code directory, as the replica user when the trust boundary is
   * enforced; it waits for its session keys on its guardian link (fd GUARDIAN_LINK_FD).
   */
  #spawnProcess(): ChildProcess {
    const [executable, ...prefix] = this.#options.entryPoint;
    const logFile = join(this.#config.dataDirectory, `replica-${this.id}.log`);
    const user = this.#replicaUser;
    // The replica writes its own log, rotated by size; only what Node prints goes to .stderr,
    // a file of the guardian's (the folder is shared with replica users: never through a link).
    const output = user === null ? openProcessOutput(logFile) : openGuardianOwnedFile(`${logFile}.stderr`);
    const child = spawn(
      executable!,
      [
        ...prefix,
        'replica',
        '--config',
        this.#config.source,
        '--id',
        String(this.id),
        '--guardian',
        '--log-level',
        this.#options.replicaLogLevel ?? 'info',
        '--log-file',
        logFile,
      ],
      {
        // fd 3 (GUARDIAN_LINK_FD): a socket pair carrying length-prefixed frames, not Node's IPC.
        stdio: ['ignore', output, output, 'pipe'],
        env: replicaEnvironment(process.env, user, replicaDataDirectory(this.#config, this.id)),
        ...(user === null
          ? {}
          : { uid: user.uid, gid: user.gid, cwd: replicaDataDirectory(this.#config, this.id) }),
      },
    );
    closeSync(output);
    this.#starts.set(child, { spawnedAtMs: this.#now(), booted: false });
    const socket = child.stdio[GUARDIAN_LINK_FD];
    if (!(socket instanceof Socket)) {
      child.kill('SIGKILL');
      throw new InvariantViolation('a replica process was started without its guardian link');
    }
    this.#links.set(
      child,
      new FramedLink(
        socket,
        { maxIncomingBytes: MAX_REPLICA_FRAME_BYTES, maxOutgoingBytes: MAX_GUARDIAN_FRAME_BYTES },
        {
          onMessage: (raw) => this.#onReplicaMessage(child, raw),
          onProtocolError: (reason) => this.#onReplicaProtocolError(child, reason),
          onClose: () => undefined,
        },
      ),
    );
    return child;
  }

  /** Starts the standby for the coming slot, from code checked against the manifest first. */
  async #prepareStandby(): Promise<void> {
    if (this.#standby !== null || this.#preparingStandby || this.#stopped) return;
    this.#preparingStandby = true;
    try {
      // Taken before hashing: a file written while it is hashed changes the fingerprint.
      const fingerprint = await this.#codeFingerprint();
      const verdict = await this.#verifyCode();
      // The recovery checks again (by fingerprint, or by hashing) before it hands the standby its keys.
      if (!verdict.ok || this.#stopped || this.#recovery !== null) return;
      this.#standbyCodeCheck = fingerprint === null ? null : { fingerprint, atMs: this.#now() };
      const standby = this.#spawnProcess();
      // A standby only boots and then waits for its keys: at a low priority its start-up takes CPU
      // the serving replicas leave idle. The recovery that takes it keeps it low until the replica
      // votes, and gives it the normal priority back in every case (#restoreRecoveringPriority).
      this.#lowerPriority(standby.pid);
      standby.once('exit', () => {
        if (this.#standby === standby) this.#standby = null;
        // A pid that has exited may be reused by an unrelated process: never renice it.
        if (this.#lowPriorityPid === standby.pid) this.#lowPriorityPid = null;
      });
      standby.once('error', () => undefined);
      this.#standby = standby;
    } catch (error) {
      // No standby is no failure: the recovery starts a process itself (and reports if it cannot).
      this.#logger.warn({ err: error }, 'could not start a standby process');
    } finally {
      this.#preparingStandby = false;
    }
  }

  #discardStandby(): void {
    const standby = this.#standby;
    this.#standby = null;
    if (standby !== null && standby.exitCode === null) standby.kill('SIGKILL');
  }

  /** The standby process, if it is still alive and its IPC pipe open. */
  #liveStandby(): ChildProcess | null {
    const standby = this.#standby;
    return standby !== null && standby.exitCode === null && this.#links.get(standby)?.open === true
      ? standby
      : null;
  }

  #spawnReplica(keys: Extract<GuardianToReplica, { type: 'session-keys' }>): void {
    // A live standby runs code checked before this recovery's own check.
    const child = this.#liveStandby() ?? this.#spawnProcess();
    if (child !== this.#standby) this.#discardStandby();
    this.#standby = null;
    this.#child = child;
    this.#childExpectedExit = false;
    this.#replicaStatus = null;
    child.once('exit', (code, signal) => {
      if (this.#child === child) this.#child = null;
      for (const waiter of this.#waiters.filter((entry) => entry.stage === 'exit')) waiter.resolve();
      this.#waiters = this.#waiters.filter((entry) => entry.stage !== 'exit');
      if (!this.#childExpectedExit && !this.#stopped) {
        this.#alarm(
          `replica ${this.id} exited unexpectedly (code ${code}, signal ${signal}); rejuvenating it`,
        );
        if (this.#recovery === null) this.#restartAfterCrash();
        else this.#crashedDuringRecovery = true;
      }
    });
    this.#links.get(child)?.send(keys);
  }

  /**
   * A crash may be an intruder's doing (to come back on a disk it rolled back, or to have the
   * slot counted as served), so a crashed replica is rejuvenated: checked code, a new key epoch,
   * an untrusted log. But a rejuvenated replica sits out votes until it rejoins, so that is done
   * at once only if at most k replicas are then out of the protocol (itself included). With more
   * down, as when a whole host or the whole cluster crashed, amnesiac restarts would leave no
   * quorum to vouch for anything and would throw away the acknowledged writes above each
   * replica's last checkpoint: the replica restarts from its disk instead, and is accused so that
   * the next reactive slot, which never takes more than k, rejuvenates it. At most one such
   * restart per T_D, so a replica that crashes at once on every start does not spin.
   */
  #restartAfterCrash(): void {
    this.#reportReplicaState(false);
    const settleMs = Math.min(CRASH_SETTLE_MAX_MS, this.#schedule.recoveryBoundMs / 8);
    const wait = Math.max(
      settleMs,
      this.#lastCrashRejuvenationAtMs + this.#schedule.recoveryBoundMs - this.#now(),
    );
    const timer = setTimeout(() => {
      if (this.#stopped || this.#recovery !== null || this.#child !== null) return;
      this.#lastCrashRejuvenationAtMs = this.#now();
      void this.#runRecovery('reactive', 'the replica process crashed', { afterCrash: true });
    }, wait);
    timer.unref();
  }

  /**
   * Whether this rejuvenation must keep the replica's disk. An amnesiac replica sits out votes
   * until it rejoins, and it drops its log:
   * - after a crash, the replica is rejuvenated at once only if that keeps at most k replicas out
   *   (itself included): a crash comes outside the schedule, which budgets k;
   * - in its slot (proactive or reactive), it is rejuvenated as scheduled, so that the exposure
   *   bound holds, unless the others that take part are too few to form a quorum without it: then
   *   nobody could vouch for what it forgot or let it rejoin, and the acknowledged writes above
   *   each replica's last checkpoint would go with the logs (a cluster restarting as a whole, or
   *   most of it down).
   * A replica that has just come back may not have said so yet, so a short wait comes first.
   */
  async #mustKeepDisk(kind: RecoveryKind, afterCrash: boolean): Promise<boolean> {
    const allowedOut = afterCrash ? this.#config.k - 1 : this.#config.n - 1 - quorumSize(this.#config);
    const decideBy =
      this.#now() + Math.min(REJUVENATION_DECISION_WAIT_MAX_MS, this.#schedule.recoveryBoundMs / 8);
    let out = this.#unavailableOthers();
    while (out.length > allowedOut && this.#now() < decideBy) {
      await new Promise((resolve) => setTimeout(resolve, SCHEDULE_TICK_MS));
      out = this.#unavailableOthers();
    }
    if (out.length <= allowedOut) return false;
    this.#oweRejuvenation(kind, out, afterCrash);
    return true;
  }

  /**
   * This rejuvenation restarts the replica from its disk (#runRecovery): a new process from
   * checked code with new keys, but its disk, which an intruder may have shaped, is kept. The
   * full rejuvenation is owed, and every guardian accuses it so that the next reactive slot
   * (which never takes more than k) does it.
   */
  #oweRejuvenation(kind: RecoveryKind, out: readonly number[], afterCrash: boolean): void {
    const others = out.length === 1 ? `replica ${out[0]} was` : `replicas ${out.join(', ')} were`;
    const limit = afterCrash
      ? `k = ${this.#config.k}`
      : `the others that take part are fewer than a quorum of ${quorumSize(this.#config)}`;
    const what = afterCrash ? 'its rejuvenation after a crash' : `its ${kind} rejuvenation`;
    const reason = `${what} kept its disk: ${others} out too (${limit})`;
    this.#alarm(`replica ${this.id}: ${reason}; a full rejuvenation is owed to the next reactive slot`);
    this.#broadcastControl({ type: 'rejuvenation-owed', reason });
    this.#accuse(this.id, `rejuvenation owed: ${reason}`);
  }

  /**
   * Tells the other guardians whether this replica takes part now: periodically (`periodic`),
   * and at once on a change. A guardian that never hears from another counts that replica out.
   */
  #reportReplicaState(periodic: boolean): void {
    if (this.#stopped) return;
    const voting = this.#recovery === null && this.#child !== null && this.#replicaStatus?.voting === true;
    if (!periodic && voting === this.#reportedVoting) return;
    this.#reportedVoting = voting;
    this.#broadcastControl({ type: 'replica-state', voting });
  }

  /**
   * Other replicas not taking part now: their guardian is unreachable or silent, or says its
   * replica does not vote (stopped, crashed, being rejuvenated, or still catching up).
   */
  #unavailableOthers(): number[] {
    const now = this.#now();
    const connected = new Set(
      (this.#control?.connectedPeers() ?? []).flatMap((peer) => (peer.kind === 'replica' ? [peer.id] : [])),
    );
    const unavailable: number[] = [];
    for (const replica of this.#config.replicas) {
      if (replica.id === this.id) continue;
      const state = this.#peerStates.get(replica.id);
      const fresh = state !== undefined && now - state.atMs <= REPLICA_STATE_STALE_MS;
      if (!connected.has(replica.id) || !fresh || !state.voting) unavailable.push(replica.id);
    }
    return unavailable;
  }

  /** A rejuvenation that kept the disk is over (or gave up waiting): the full one is still owed. */
  #finishRestartFromDisk(votes: boolean): void {
    const recovery = this.#recovery!;
    this.#logger.info(
      { durationMs: this.#now() - recovery.startedAtMs, keyEpoch: recovery.keyEpoch, votes },
      'replica restarted from its disk; its full rejuvenation is owed to the next reactive slot',
    );
  }

  #onBooted(child: ChildProcess): void {
    const start = this.#starts.get(child);
    if (start === undefined || start.booted) return;
    start.booted = true;
    this.#logger.info(
      { standby: child === this.#standby, bootMs: this.#now() - start.spawnedAtMs },
      'replica process booted',
    );
  }

  #onReplicaMessage(child: ChildProcess, raw: unknown): void {
    if (child !== this.#child) {
      // A standby's only message: it has booted.
      if (child === this.#standby && parseReplicaMessage(raw)?.type === 'booted') this.#onBooted(child);
      return;
    }
    const message = parseReplicaMessage(raw);
    if (message === null) {
      const permit = this.#ipcRejectionLog.admit('malformed message');
      if (permit !== null)
        this.#logger.warn({ suppressed: permit.suppressed }, 'ignored a malformed message from the replica');
      return;
    }
    this.#handleReplicaMessage(message);
  }

  /**
   * The replica broke the framing of its link (a frame over MAX_REPLICA_FRAME_BYTES, an empty
   * one, or one that is not JSON): it misbehaves. The link is already closed; the process is
   * killed, and the exit is handled as any crash (an alarm, then a rejuvenation within k).
   */
  #onReplicaProtocolError(child: ChildProcess, reason: string): void {
    const permit = this.#ipcRejectionLog.admit(`framing:${reason.split(' ')[0] ?? ''}`);
    if (permit !== null)
      this.#logger.warn(
        { reason, suppressed: permit.suppressed, pid: child.pid },
        'replica broke the framing of its guardian link; stopping that process',
      );
    if (child === this.#child)
      this.#alarm(
        `replica ${this.id} sent an invalid frame on its guardian link (${reason}); its process is stopped`,
      );
    if (child.exitCode === null) child.kill('SIGKILL');
  }

  #handleReplicaMessage(message: ReplicaToGuardian): void {
    switch (message.type) {
      case 'evidence': {
        // Checking evidence costs signature verifications: a compromised replica sending a
        // stream of it must not keep its guardian busy (valid proofs of a kind count once anyway).
        const now = this.#now();
        if (now - this.#evidenceWindowStartMs >= 1000) {
          this.#evidenceWindowStartMs = now;
          this.#evidenceInWindow = 0;
        }
        if (++this.#evidenceInWindow > MAX_OWN_EVIDENCE_PER_SECOND) {
          if (this.#evidenceInWindow === MAX_OWN_EVIDENCE_PER_SECOND + 1)
            this.#logger.warn(
              'replica sends evidence faster than the guardian checks it; dropping the excess',
            );
          return;
        }
        // Who found it: the client that handed it in (as the replica says), or the replica itself.
        this.#onEvidence(
          fromBase64(message.evidence),
          message.origin === undefined
            ? `replica ${this.id}`
            : `client ${message.origin} via replica ${this.id}`,
        );
        return;
      }
      case 'suspect':
        if (message.accused < this.#config.n && message.accused !== this.id) {
          // A compromised replica may report suspicions in a loop: relay each accused at most
          // once per interval (a vote stays counted for the tracker's whole window anyway).
          const now = this.#now();
          const last = this.#suspicionRelayedAt.get(message.accused);
          if (last !== undefined && now - last < SUSPICION_RELAY_INTERVAL_MS) return;
          this.#suspicionRelayedAt.set(message.accused, now);
          this.#broadcastControl({ type: 'suspicion', accused: message.accused, reason: message.reason });
          this.#onSuspicion(message.accused, this.id, message.reason);
        }
        return;
      case 'booted':
        if (this.#child !== null) this.#onBooted(this.#child);
        return;
      case 'progress':
        this.#onProgress(message.stage);
        return;
      case 'status':
        this.#replicaStatus = message;
        this.#reportReplicaState(false);
        return;
    }
  }

  #toReplica(message: GuardianToReplica): void {
    const child = this.#child;
    if (child !== null) this.#links.get(child)?.send(message);
  }

  async #stopReplica(): Promise<void> {
    const child = this.#child;
    if (child === null || child.exitCode !== null) return;
    this.#childExpectedExit = true;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
    await exited;
    clearTimeout(timer);
  }

  /** Test and demo clusters: switch the running replica into a fault mode (an intrusion). */
  injectFault(mode: FaultMode | null): boolean {
    if (!this.#config.allowFaultInjection) return false;
    this.#toReplica({ type: 'fault', mode });
    return true;
  }

  // ───────────────────────────── status ─────────────────────────────

  status(): GuardianStatus & { readonly trustBoundary: TrustBoundary } {
    const now = this.#now();
    const recovery = this.#recovery;
    const last = this.#state.lastRejuvenationAtMs;
    return {
      replica: this.id,
      keyEpoch: this.#state.keyEpoch,
      replicaProcess:
        this.#child === null ? 'stopped' : this.#replicaStatus === null ? 'starting' : 'running',
      recovery: {
        inProgress: recovery !== null,
        kind: recovery?.kind ?? null,
        reason: recovery?.reason ?? null,
        step: recovery?.step ?? null,
        startedAtMs: recovery?.startedAtMs ?? null,
        stepStartedAtMs: recovery?.stepStartedAtMs ?? null,
      },
      lastRejuvenationAtMs: last,
      exposureMs: last === null ? 0 : now - last,
      guaranteeMs: exposureBoundMs(this.#schedule),
      recoveryBoundMs: this.#schedule.recoveryBoundMs,
      periodMs: this.#schedule.periodMs,
      nextProactiveAtMs: nextProactiveSlotOf(this.#schedule, this.id, now).startMs,
      recentRecoveries: this.#recoveries.slice(),
      alarms: this.#alarms.slice(),
      evidence: this.#evidence.slice(),
      suspicions: this.#suspicions
        .snapshot(now)
        .map((entry) => ({ accused: entry.accused, reporters: [...entry.reporters] })),
      connectedGuardians: this.#control?.connectedPeers().length ?? 0,
      pendingReactive: [...this.#accusations.keys()].sort((a, b) => a - b),
      keyEpochAcceptedUntilMs: this.#ownEpochAcceptedUntilMs(),
      trustBoundary: this.#trustBoundary,
    };
  }

  /** Whether the replica runs as a user of its own, and why (or why not). */
  get trustBoundary(): TrustBoundary {
    return this.#trustBoundary;
  }

  /** GET /metrics: the Prometheus text of src/recovery/guardian-metrics.ts, and its content type. */
  async #metrics(): Promise<{ readonly body: string; readonly contentType: string }> {
    const status = this.status();
    const standby = this.#liveStandby();
    const metrics = guardianMetricsOf(this, status);
    const body = await metrics.render({
      status,
      standby:
        standby !== null
          ? this.#starts.get(standby)?.booted === true
            ? 'ready'
            : 'starting'
          : this.#preparingStandby
            ? 'starting'
            : 'none',
    });
    return { body, contentType: metrics.contentType };
  }

  async #startAdmin(): Promise<Server> {
    const self = this.#config.replicas[this.id]!;
    const server = createServer((request, response) => void this.#serveAdmin(request, response));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(self.guardianAdminPort, self.adminHost, () => resolve());
    });
    return server;
  }

  async #serveAdmin(request: IncomingMessage, response: ServerResponse): Promise<void> {
    if (!hostHeaderAllowed(request, this.#config.replicas[this.id]!.adminHost)) {
      refuseHostHeader(response, 'guardian admin server');
      return;
    }
    const path = (request.url ?? '/').split('?')[0];
    if (request.method === 'GET' && path === '/status') {
      response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(this.status()));
      return;
    }
    if (request.method === 'GET' && path === '/metrics') {
      const { body, contentType } = await this.#metrics();
      response.writeHead(200, { 'content-type': contentType }).end(body);
      return;
    }
    if (request.method === 'POST' && path === '/fault') {
      // Only clusters configured for fault injection accept this (tests and the demo).
      const body = await readBody(request, 1024);
      let mode: unknown;
      try {
        mode = (JSON.parse(body) as { mode?: unknown }).mode ?? null;
      } catch {
        response.writeHead(400).end('body must be JSON {"mode": ...}\n');
        return;
      }
      if (mode !== null && !isFaultMode(mode)) {
        response.writeHead(400).end('unknown fault mode\n');
        return;
      }
      if (!this.injectFault(mode as FaultMode | null)) {
        response.writeHead(403).end('fault injection is not allowed by this configuration\n');
        return;
      }
      response.writeHead(200).end('ok\n');
      return;
    }
    if (request.method === 'POST' && path === '/debug/replica-message') {
      // Test clusters only: handle a message as if this guardian's (compromised) replica sent it,
      // e.g. a false suspicion or forged evidence, through exactly the path the real one takes.
      if (!this.#config.allowFaultInjection) {
        response.writeHead(403).end('fault injection is not allowed by this configuration\n');
        return;
      }
      const body = await readBody(request, MAX_DEBUG_MESSAGE_BYTES);
      let message: ReplicaToGuardian | null;
      try {
        message = parseReplicaMessage(JSON.parse(body) as unknown);
      } catch {
        message = null;
      }
      if (message === null || (message.type !== 'suspect' && message.type !== 'evidence')) {
        response
          .writeHead(400)
          .end('body must be a replica-to-guardian message of type suspect or evidence\n');
        return;
      }
      this.#handleReplicaMessage(message);
      response.writeHead(200).end('ok\n');
      return;
    }
    if (request.method === 'GET' && path === '/healthz') {
      response.writeHead(200).end('ok\n');
      return;
    }
    response.writeHead(404).end();
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    if (this.#ticker !== null) clearInterval(this.#ticker);
    if (this.#stateReporter !== null) clearInterval(this.#stateReporter);
    this.#discardStandby();
    await this.#stopReplica();
    await this.#control?.close();
    await new Promise<void>((resolve) =>
      this.#admin === null ? resolve() : this.#admin.close(() => resolve()),
    );
  }
}

/**
 * Replaces `path` with `contents` so that after a crash or power loss either the old or the new
 * file is there, whole: written to a temporary file, fsynced, renamed, and the folder fsynced.
 */
function writeFileDurably(path: string, contents: string): void {
  const temporary = `${path}.tmp`;
  const file = openSync(temporary, 'w', 0o600);
  try {
    writeSync(file, contents);
    fsyncSync(file);
  } finally {
    closeSync(file);
  }
  renameSync(temporary, path);
  const folder = openSync(dirname(path), 'r');
  try {
    fsyncSync(folder);
  } finally {
    closeSync(folder);
  }
}

async function readBody(request: IncomingMessage, maxBytes: number): Promise<string> {
  let body = '';
  for await (const chunk of request) {
    body += String(chunk);
    if (body.length > maxBytes) break;
  }
  return body.slice(0, maxBytes);
}

function sha256(data: Uint8Array): Digest {
  return asDigest(new Uint8Array(createHash('sha256').update(data).digest()));
}
