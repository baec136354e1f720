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
 * This module is the process shell. Every decision above (which slot to act on, whom to accuse,
 * which step comes next and when it times out, which key epochs are accepted until when) is made
 * by the pure GuardianCore (src/recovery/core/guardian-core.ts); the shell feeds it events (timer
 * ticks with the time, decoded and authenticated control frames, replica messages, process exits,
 * the results of its own work) and carries out its actions: spawning and stopping processes,
 * the standby, priorities, the control channel, the admin server, the state file, code hashing,
 * log archiving and audit, signatures.
 *
 * Usage:
 * ```ts
 * const guardian = await Guardian.start({ config, id: replicaId(0), identity, entryPoint: cliEntryPoint(), logger });
 * // ... guardian.status() ...
 * await guardian.stop();
 * ```
 */
import { AT_START_ONLY_BEHAVIOURS } from '../adversary/catalogue.js';
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
  statSync,
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
import {
  bytesEqual,
  type Digest,
  type ReplicaId,
  digest as asDigest,
  InvariantViolation,
  keyEpoch,
  toHex,
} from '../messages/ids.js';
import type { KeyRegistry } from '../crypto/key-registry.js';
import type { SigningKeyPair } from '../crypto/keys.js';
import { describeEvidence, type EvidenceContext, verifyEvidence } from '../detection/evidence.js';
import { describeForensicProof, verifyForensicProof } from '../detection/forensics.js';
import { encodeEvidence } from '../messages/codec.js';
import type { KeyCertificate } from '../messages/types.js';
import { openProcessOutput } from '../runtime/log-file.js';
import { BACKGROUND_PACING, LoadPacer } from '../storage/pacing.js';
import { rejectionKind, TcpTransport } from '../transport/tcp.js';
import { RateLimitedLog } from '../transport/rate-limited-log.js';
import { hostHeaderAllowed, refuseHostHeader } from '../runtime/host-header.js';
import { type NodeId, replicaNode } from '../transport/transport.js';
import { codeBundleFingerprint, verifyCodeBundle } from './code-manifest.js';
import {
  configurationFingerprint,
  judgeStoredSafeMode,
  SAFE_MODE_FILE,
  SAFE_MODE_ORDER_LIMITS,
  type StoredSafeMode,
} from './safe-mode-order.js';
import { serviceCodeFiles } from '../hosting/service-code.js';
import {
  canRestorePriority,
  RECOVERING_NICE,
  RECOVERING_NICE_SHARE_OF_T_D,
  setProcessNice,
} from './priority.js';
import { CONTROL_LIMITS, type ControlMessage, decodeControl, encodeControl } from './control.js';
import {
  type FaultMode,
  FramedLink,
  GUARDIAN_LINK_FD,
  type GuardianToReplica,
  IPC_LIMITS,
  MAX_GUARDIAN_FRAME_BYTES,
  MAX_REPLICA_FRAME_BYTES,
  parseReplicaMessage,
  type RecoveryProgress,
  type ReplicaToGuardian,
  decodeForkProof,
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
import { type ScheduleParameters, nextProactiveSlotOf } from '../core/schedule.js';
import type { GuardianStatus, RecoveryKind, RecoveryStep } from '../runtime/guardian-report.js';
import {
  type CoreControlMessage,
  type CoreProgress,
  type CoreRecoveryKind,
  type CoreRecoveryStep,
  evidenceVerdict,
  type GuardianAction,
  type GuardianEvent,
  type GuardianPersistentState,
  GuardianCore,
} from './core/guardian-core.js';
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

export { STANDBY_LEAD_MS } from './core/guardian-core.js';

// The core names the report's vocabulary itself (it is pure and may not import runtime/): these
// lines stop the build if the two ever drift apart.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const stepsAgree: Same<CoreRecoveryStep, RecoveryStep> &
  Same<CoreRecoveryKind, RecoveryKind> &
  Same<CoreProgress, RecoveryProgress> = true;
void stepsAgree;

/** How often the shell feeds the core a tick (the clock and the connected guardians). */
const SCHEDULE_TICK_MS = 50;
/** A stopped replica gets this long to exit before SIGKILL. */
const STOP_GRACE_MS = 1000;
/**
 * A fork proof from a peer guardian is checked at most this often per peer: a guardian on a
 * compromised host must not make the others verify signatures in a loop. A correct peer sends
 * one when it keeps it and one per connection.
 */
const PEER_FORK_PROOF_CHECK_INTERVAL_MS = 5000;
/** Largest body of a test-only replica message posted to the admin port. */
const MAX_DEBUG_MESSAGE_BYTES = 256 * 1024;
/** The current epoch's session key seeds, in the guardian's state folder (never the replica's). */
const SESSION_KEYS_FILE = 'session-keys.json';
/** Certificates read back from the state file at most: two per replica (current and previous). */
const MAX_PERSISTED_CERTIFICATES = 2 * 64;
/** Events queued while the shell carries out the actions of an earlier one, at most. */
const MAX_QUEUED_EVENTS = 10_000;

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

/** What the state file holds, as written (certificates as base64 of their encoding). */
interface StateFile extends GuardianPersistentState {
  /**
   * Every replica's latest key certificate and the one before. Signatures in durable state
   * (checkpoint certificates on the replica's disk) were made under these epochs: after a restart
   * of the whole cluster no process remembers them otherwise.
   */
  readonly certificates: readonly string[];
}

/**
 * The process shell around GuardianCore (src/recovery/core/guardian-core.ts), the way
 * ReplicaNode drives Replica: it turns timers, control frames, replica messages and the ends of
 * its own work into events, and carries out the core's actions (processes, priorities, files,
 * sockets, hashing, signatures, logs).
 */
export class Guardian {
  readonly id: ReplicaId;
  readonly #config: ClusterConfig;
  readonly #options: GuardianOptions;
  readonly #logger: Logger;
  readonly #now: () => number;
  readonly #schedule: ScheduleParameters;
  readonly #registry: KeyRegistry;
  readonly #core: GuardianCore;
  readonly #stateDirectory: string;
  #control: TcpTransport | null = null;
  #admin: Server | null = null;
  #ticker: NodeJS.Timeout | null = null;
  #child: ChildProcess | null = null;
  #childExpectedExit = false;
  #replicaStatus: Extract<ReplicaToGuardian, { type: 'status' }> | null = null;
  readonly #rejectionLog = new RateLimitedLog();
  #pendingFaultMode: FaultMode | null;
  #stopped = false;
  /** Events that came in while the actions of an earlier one were carried out (FIFO). */
  readonly #queuedEvents: GuardianEvent[] = [];
  #stepping = false;
  /** The rejuvenation in progress, resolved at the core's 'recovery-over'. */
  #recoveryDone: { readonly promise: Promise<void>; readonly resolve: () => void } | null = null;
  /** The accountability logs the current rejuvenation moved aside, audited once it is over. */
  #archivedLogs: string[] = [];
  /** Keys of the epoch being started, between the core's 'issue-keys' and 'start-replica'. */
  #issuedKeys: IssuedKeys | null = null;
  /**
   * A process started from verified code shortly before this replica's proactive slot, holding
   * no keys and doing nothing until it gets them: loading the code (a second of CPU) happens
   * while the old process still serves, not inside the recovery.
   */
  #standby: ChildProcess | null = null;
  #preparingStandby = false;
  /** Whether this guardian may raise a priority it lowered (else it never lowers one). */
  readonly #canRestorePriority = canRestorePriority();
  /** The recovering process running at RECOVERING_NICE (the core says when that ends). */
  #lowPriorityPid: number | null = null;
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
  readonly #starts = new WeakMap<
    ChildProcess,
    { readonly spawnedAtMs: number; readonly asStandby: boolean; booted: boolean }
  >();
  /** Refused IPC frames, logged at most once per interval (a compromised replica may loop). */
  readonly #ipcRejectionLog = new RateLimitedLog();
  /** The fork proof its replica reported and this guardian verified: every start is in safe mode. */
  #safeMode: StoredSafeMode | null = null;
  /** When a proof a peer guardian sent was last checked, by peer (PEER_FORK_PROOF_CHECK_INTERVAL_MS). */
  readonly #peerForkProofCheckedAtMs = new Map<number, number>();

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
    this.#stateDirectory = join(config.dataDirectory, `guardian-${options.id}`);
    mkdirSync(this.#stateDirectory, { recursive: true });
    const saved = this.#loadState();
    this.#safeMode = this.#loadSafeMode();
    const certificates = this.#restoreCertificates(saved.certificates);
    this.#core = new GuardianCore({
      id: options.id,
      schedule: this.#schedule,
      persisted: {
        keyEpoch: saved.keyEpoch,
        lastRejuvenationAtMs: saved.lastRejuvenationAtMs,
        lastSlot: saved.lastSlot,
      },
      certificates,
      clockSkewAllowanceMs: CLOCK_SKEW_ALLOWANCE_MS,
      recoveringNiceShareOfTd: RECOVERING_NICE_SHARE_OF_T_D,
      safeModeKept: this.#safeMode !== null,
    });
    // The table keeps, per replica, the certificate before the latest and the latest: installed
    // in that order, the registry accepts each as the core does.
    for (const certificate of this.#core.certificates.list().sort((a, b) => a.keyEpoch - b.keyEpoch))
      installCertificate(this.#registry, certificate);
    this.#pendingFaultMode = options.initialFaultMode ?? null;
  }

  static async start(options: GuardianOptions): Promise<Guardian> {
    const guardian = new Guardian(options);
    const kept = guardian.#safeMode;
    if (kept !== null)
      // Restarted in safe mode: the alarm list (dashboard, status, metrics) says so again.
      guardian.#alarm(
        `replica ${guardian.id} is kept in safe mode (a fork proof naming replicas ${kept.culprits.join(', ')}); ` +
          'restart the cluster with a configuration without them',
      );
    // The service module's own files (a user's project, outside the code directory) must be
    // readable by the replica user too; what cannot even be found is the code check's to report.
    const service = await serviceCodeFiles(guardian.#config, options.codeDirectory);
    guardian.#establishTrustBoundary(service.files);
    await guardian.#startControlChannel();
    guardian.#admin = await guardian.#startAdmin();
    // The first start of the replica (not a rejuvenation: the disk is as trustworthy as the host);
    // the ticks drive its waits and, once it is over, the schedule.
    guardian.#feed({ type: 'started', now: guardian.#now() });
    guardian.#ticker = setInterval(() => guardian.#tick(), SCHEDULE_TICK_MS);
    await guardian.#recoveryDone?.promise;
    return guardian;
  }

  #tick(): void {
    const connectedGuardians = (this.#control?.connectedPeers() ?? []).flatMap((peer) =>
      peer.kind === 'replica' ? [peer.id] : [],
    );
    this.#feed({ type: 'tick', now: this.#now(), connectedGuardians });
  }

  // ───────────────────────────── driving the core ─────────────────────────────

  /**
   * Hands `event` to the core and carries out its actions, in order. An event raised while
   * actions are carried out (an answer computed synchronously) waits its turn, so the core
   * always sees one event at a time.
   */
  #feed(event: GuardianEvent): void {
    if (this.#stopped) return;
    if (this.#stepping) {
      if (this.#queuedEvents.length >= MAX_QUEUED_EVENTS)
        throw new InvariantViolation(`guardian ${this.id}: more than ${MAX_QUEUED_EVENTS} events queued`);
      this.#queuedEvents.push(event);
      return;
    }
    this.#stepping = true;
    try {
      let next: GuardianEvent | undefined = event;
      while (next !== undefined) {
        for (const action of this.#core.step(next)) this.#carryOut(action);
        next = this.#stopped ? undefined : this.#queuedEvents.shift();
      }
    } finally {
      this.#stepping = false;
      this.#queuedEvents.length = 0;
    }
  }

  #carryOut(action: GuardianAction): void {
    try {
      this.#carryOutAction(action);
    } catch (error) {
      // What the shell could not do (a file not written, a process not started) fails the
      // rejuvenation in progress, as an exception inside it always did; outside one it is reported.
      if (this.#core.recovering) this.#recoveryFailed(error);
      else this.#alarm(`guardian ${this.id} could not carry out ${action.type}: ${errorMessage(error)}`);
    }
  }

  #carryOutAction(action: GuardianAction): void {
    switch (action.type) {
      case 'log':
        this.#logger[action.level](action.fields, action.message);
        return;
      case 'alarm':
        this.#logger.error({ alarm: action.message }, 'ALARM');
        return;
      case 'broadcast':
        this.#broadcastControl(action.message);
        return;
      case 'nudge-replica':
        this.#toReplica({
          type: 'nudge-view-change',
          avoidLeaders: action.avoidLeaders,
          aboveView: action.aboveView,
        });
        return;
      case 'cut-off-replica': {
        const proof = toBase64(encodeEvidence(action.evidence));
        const fits = proof.length <= IPC_LIMITS.maxEvidenceBase64;
        if (!fits)
          this.#logger.warn(
            { replica: action.replica, bytes: proof.length },
            'proof too large for the replica link: the replica cuts the culprit off without counting it',
          );
        this.#toReplica({
          type: 'cut-off',
          replica: action.replica,
          keyEpoch: action.keyEpoch,
          reason: action.reason,
          ...(fits ? { evidence: proof } : {}),
        });
        return;
      }
      case 'forward-certificate':
        this.#toReplica({
          type: 'certificates',
          certificates: [toBase64(encodeKeyCertificate(action.certificate))],
        });
        return;
      case 'install-certificate':
        installCertificate(this.#registry, action.certificate);
        return;
      case 'save-state':
        this.#saveState();
        return;
      case 'verify-evidence':
        this.#verifyEvidence(action);
        return;
      case 'prepare-standby':
        void this.#prepareStandby();
        return;
      case 'discard-standby':
        this.#discardStandby();
        return;
      case 'recovery-begun': {
        let resolve = (): void => undefined;
        const promise = new Promise<void>((done) => (resolve = done));
        this.#recoveryDone = { promise, resolve };
        this.#archivedLogs = [];
        return;
      }
      case 'stop-replica':
        this.#stopReplica().then(
          () => this.#feed({ type: 'replica-stopped', now: this.#now() }),
          (error: unknown) => this.#recoveryFailed(error),
        );
        return;
      case 'archive-logs':
        this.#archivedLogs = this.#archiveAccountabilityLog();
        return;
      case 'check-code':
        this.#verifyCodeForRecovery().then(
          (verdict) =>
            this.#feed({
              type: 'code-checked',
              now: this.#now(),
              ok: verdict.ok,
              problems: verdict.ok ? [] : verdict.problems,
            }),
          (error: unknown) => this.#recoveryFailed(error),
        );
        return;
      case 'issue-keys': {
        const kept = action.keepSavedEpoch ? this.#savedSessionKeys() : null;
        const issued = kept ?? this.#issueEpoch(action.nextEpoch);
        this.#issuedKeys = issued;
        this.#feed({
          type: 'keys-issued',
          now: this.#now(),
          certificate: issued.certificate,
          fresh: kept === null,
        });
        return;
      }
      case 'start-replica':
        this.#startReplica(action);
        return;
      case 'restore-priority':
        this.#restoreRecoveringPriority();
        return;
      case 'recovery-over': {
        this.#issuedKeys = null;
        if (action.auditArchivedLogs) void this.#auditArchivedLogs(this.#archivedLogs);
        this.#archivedLogs = [];
        const done = this.#recoveryDone;
        this.#recoveryDone = null;
        done?.resolve();
        return;
      }
    }
  }

  #recoveryFailed(error: unknown): void {
    this.#feed({
      type: 'recovery-failed',
      now: this.#now(),
      message: errorMessage(error),
    });
  }

  #alarm(message: string): void {
    this.#feed({ type: 'alarm', now: this.#now(), message });
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

  #loadState(): StateFile {
    const path = join(this.#stateDirectory, 'state.json');
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch {
      return { keyEpoch: 0, lastRejuvenationAtMs: null, lastSlot: null, certificates: [] };
    }
    let parsed: Partial<StateFile>;
    try {
      parsed = JSON.parse(text) as Partial<StateFile>;
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

  /**
   * The safe mode this guardian keeps (safe-mode-order.ts), if it was entered under this
   * configuration. One entered under another configuration is how the operator leaves safe mode:
   * it is discarded. A record that cannot be read stops the guardian, as a damaged state file
   * does: running the replica normally could be a way out of safe mode.
   */
  #loadSafeMode(): StoredSafeMode | null {
    const path = join(this.#stateDirectory, SAFE_MODE_FILE);
    let text: string;
    try {
      if (statSync(path).size > SAFE_MODE_ORDER_LIMITS.maxFileBytes)
        throw new Error(`the safe-mode record ${path} is over ${SAFE_MODE_ORDER_LIMITS.maxFileBytes} bytes`);
      text = readFileSync(path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw error;
    }
    const verdict = judgeStoredSafeMode(text, configurationFingerprint(this.#config));
    switch (verdict.kind) {
      case 'applies':
        this.#logger.error(
          { culprits: verdict.record.culprits, verifiedAtMs: verdict.record.verifiedAtMs },
          'SAFE MODE kept: every start of the replica is in safe mode until the cluster runs a configuration without the culprits',
        );
        return verdict.record;
      case 'other-configuration':
        rmSync(path, { force: true });
        this.#logger.warn(
          { culprits: verdict.record.culprits, verifiedAtMs: verdict.record.verifiedAtMs },
          'discarded the safe mode of an earlier configuration (new identity keys: the operator left safe mode)',
        );
        return null;
      case 'unreadable':
        throw new Error(
          `the safe-mode record ${path} cannot be read (${verdict.reason}); restore it from a backup, ` +
            'or delete it to leave safe mode (an operator decision: docs/intrusion-tolerance.md, Beyond f)',
        );
    }
  }

  /** Written durably (fsync of the file and of its folder): a key epoch must never be issued twice. */
  #saveState(): void {
    const state: StateFile = {
      ...this.#core.persistentState(),
      certificates: this.#core.certificates
        .list()
        .map((certificate) => toBase64(encodeKeyCertificate(certificate))),
    };
    writeFileDurably(join(this.#stateDirectory, 'state.json'), JSON.stringify(state));
  }

  /**
   * A new key epoch for the replica: fresh session keys, certified with the identity key. Its
   * keys are durable before the core records the epoch (and has the state file saved), which is
   * before any signature under it exists.
   */
  #issueEpoch(epochNumber: number): IssuedKeys {
    const epoch = keyEpoch(epochNumber);
    const issued = issueKeyCertificate(this.#options.identity, this.id, epoch, this.#now());
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
    return issued;
  }

  /** The current epoch's keys saved by an earlier run, if they match its certificate; else null. */
  #savedSessionKeys(): IssuedKeys | null {
    const certificate = this.#core.certificates.current(this.id);
    if (certificate === undefined || certificate.keyEpoch !== this.#core.persistentState().keyEpoch)
      return null;
    // An epoch that has expired, or would before a rejuvenation could replace it, is not resumed:
    // nobody would accept its signatures (the cluster was down past its replica's slot). The slot
    // that replaces it must start after this start is surely over: a slot that begins while the
    // guardian is still starting its replica is skipped (GuardianCore), and a whole cluster starting
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
   * The certificates saved by an earlier run of this guardian that still verify: they let its
   * replica verify the checkpoint on its disk after the whole cluster restarted.
   */
  #restoreCertificates(saved: readonly string[]): KeyCertificate[] {
    const decoded = saved
      .map((text) => decodeKeyCertificate(fromBase64(text)))
      .filter(
        (certificate): certificate is KeyCertificate =>
          certificate !== null && verifyCertificateForConfig(certificate, this.#config),
      );
    if (decoded.length > 0)
      this.#logger.info(
        { certificates: decoded.length },
        'restored the key certificates saved before the restart',
      );
    return decoded;
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
          if (connected && peer.kind !== 'replica') return;
          if (connected) this.#sendCertificatesTo(peer);
          if (connected && this.#safeMode !== null) this.#sendForkProofTo(peer);
        },
        onRejection: () => undefined,
      },
    });
  }

  #broadcastControl(message: CoreControlMessage): void {
    const frame = encodeControl(toControlMessage(message));
    for (const replica of this.#config.replicas) {
      if (replica.id !== this.id) this.#control?.send(replicaNode(replica.id), frame);
    }
  }

  /** The fork proof this guardian keeps (it fits a control frame: CONTROL_LIMITS.maxBase64Bytes is the link's limit). */
  #sendForkProofTo(peer: NodeId): void {
    const proof = this.#safeMode?.proof;
    if (proof === undefined || proof.length > CONTROL_LIMITS.maxBase64Bytes) return;
    this.#control?.send(peer, encodeControl({ type: 'fork-proof', proof }));
  }

  #sendCertificatesTo(peer: NodeId): void {
    for (const certificate of this.#core.certificates.currents()) {
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
    const now = this.#now();
    switch (message.type) {
      case 'certificate':
        this.#acceptCertificate(fromBase64(message.certificate), `guardian ${from.id}`);
        return;
      case 'evidence':
        this.#feed({
          type: 'peer-evidence',
          now,
          evidence: fromBase64(message.evidence),
          reporter: message.reporter,
          ...(message.atMs === undefined ? {} : { atMs: message.atMs }),
        });
        return;
      case 'suspicion':
        this.#feed({
          type: 'peer-suspicion',
          now,
          from: from.id,
          accused: message.accused,
          reason: message.reason,
          ...(message.atMs === undefined ? {} : { atMs: message.atMs }),
        });
        return;
      case 'recovering':
        this.#feed({
          type: 'peer-recovering',
          now,
          from: from.id,
          ...(message.atMs === undefined ? {} : { atMs: message.atMs }),
        });
        return;
      case 'recovered':
        this.#feed({
          type: 'peer-recovered',
          now,
          from: from.id,
          ...(message.atMs === undefined ? {} : { atMs: message.atMs }),
        });
        return;
      case 'replica-state':
        this.#feed({ type: 'peer-replica-state', now, from: from.id, voting: message.voting });
        return;
      case 'rejuvenation-owed':
        this.#feed({
          type: 'peer-rejuvenation-owed',
          now,
          from: from.id,
          reason: message.reason,
          ...(message.atMs === undefined ? {} : { atMs: message.atMs }),
        });
        return;
      case 'nudge':
        this.#feed({ type: 'peer-nudge', now, aboveView: message.aboveView });
        return;
      case 'fork-proof':
        this.#onForkProof(message.proof, `guardian ${from.id}`, from.id);
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
    this.#feed({ type: 'certificate-verified', now: this.#now(), certificate });
  }

  // ───────────────────────────── evidence ─────────────────────────────

  /**
   * Its replica entered safe mode: more than f replicas misbehaved. The proof is checked here
   * against the keys this guardian knows; a valid one raises an alarm naming the culprits (the
   * operator leaves safe mode with a new configuration without them, docs/intrusion-tolerance.md)
   * and is kept, durably, for every later start of the replica (safe-mode-order.ts).
   */
  #onForkProof(encoded: string, source: string, peer: number | null = null): void {
    if (this.#safeMode !== null) {
      // Kept already: a replica started in safe mode reports the proof it was given, which may
      // no longer verify (its culprits were rejuvenated since), and peers send theirs on connect.
      this.#logger.debug({ source }, 'fork proof: safe mode is kept already');
      return;
    }
    if (peer !== null) {
      // A guardian on a compromised host could send proofs that fail only after costly checks.
      const lastMs = this.#peerForkProofCheckedAtMs.get(peer);
      if (lastMs !== undefined && this.#now() - lastMs < PEER_FORK_PROOF_CHECK_INTERVAL_MS) return;
      this.#peerForkProofCheckedAtMs.set(peer, this.#now());
    }
    const decoded = decodeForkProof(encoded);
    if (!decoded.ok) {
      this.#logger.warn({ source, reason: decoded.reason }, 'malformed fork proof');
      return;
    }
    const proof = decoded.proof;
    const verdict = verifyForensicProof(proof, this.#evidenceContext());
    if (!verdict.valid) {
      this.#logger.warn({ source, reason: verdict.reason }, 'fork proof does not verify');
      return;
    }
    this.#logger.fatal({ source, culprits: verdict.culprits }, `SAFE MODE: ${describeForensicProof(proof)}`);
    const record: StoredSafeMode = {
      configuration: configurationFingerprint(this.#config),
      proof: encoded,
      culprits: [...verdict.culprits],
      verifiedAtMs: this.#now(),
    };
    // Durable before the alarm: a crash of this guardian must not be a way out either.
    writeFileDurably(join(this.#stateDirectory, SAFE_MODE_FILE), JSON.stringify(record));
    this.#safeMode = record;
    this.#feed({ type: 'safe-mode-kept', now: this.#now() });
    this.#alarm(
      `replica ${this.id} is kept in safe mode (proof from ${source}): ${describeForensicProof(proof)}; ` +
        `restart the cluster with a configuration without replicas ${verdict.culprits.join(', ')}`,
    );
    // From a peer guardian: its own replica runs normally (it may be unable to verify the proof
    // any more, or was down when its peers sent theirs), and must stop now, not at its next start.
    if (peer !== null) this.#toReplica({ type: 'safe-mode', proof: encoded });
    // Every guardian keeps it, also one whose replica is down now and may come back only after
    // the proof has stopped verifying for replicas.
    for (const entry of this.#config.replicas)
      if (entry.id !== this.id) this.#sendForkProofTo(replicaNode(entry.id));
  }

  /** Proofs are checked with the keys this guardian knows, and only against current epochs. */
  #evidenceContext(): EvidenceContext {
    return {
      model: this.#config,
      hash: sha256,
      verifyReplicaSignature: (signer, epoch, payload, signature) =>
        this.#registry.verifyReplicaSignature(signer, epoch, payload, signature),
      currentEpoch: (replica) => this.#registry.currentEpoch(replica),
    };
  }

  #verifyEvidence(action: Extract<GuardianAction, { type: 'verify-evidence' }>): void {
    const evidence = action.evidence;
    const verdict = verifyEvidence(evidence, this.#evidenceContext());
    this.#feed(
      evidenceVerdict(action, this.#now(), {
        valid: verdict.valid,
        detail: verdict.valid ? describeEvidence(evidence) : verdict.reason,
      }),
    );
  }

  // ───────────────────────────── the rejuvenation's work ─────────────────────────────

  /**
   * The new replica process of a rejuvenation (the standby if one is alive), with its session
   * keys and every certificate the core holds; at the recovering priority when asked.
   */
  #startReplica(action: Extract<GuardianAction, { type: 'start-replica' }>): void {
    const issued = this.#issuedKeys;
    if (issued === null || issued.certificate.keyEpoch !== action.certificate.keyEpoch)
      throw new InvariantViolation('a replica start without the keys the core issued');
    this.#spawnReplica({
      type: 'session-keys',
      keyEpoch: issued.certificate.keyEpoch,
      signingSeed: toBase64(issued.signingSeed),
      agreementSeed: toBase64(issued.agreementSeed),
      certificate: toBase64(encodeKeyCertificate(issued.certificate)),
      certificates: action.certificates.map((certificate) => toBase64(encodeKeyCertificate(certificate))),
      amnesiac: action.amnesiac,
      faultMode: this.#pendingFaultMode,
      ...(this.#safeMode === null ? {} : { safeMode: this.#safeMode.proof }),
    });
    this.#pendingFaultMode = null;
    const lowered = action.lowerPriority && this.#lowerRecoveringPriority();
    this.#feed({ type: 'replica-started', now: this.#now(), loweredPriority: lowered });
  }
  /**
   * The new process loads, checks and fetches state on the cores the serving replicas use: it
   * runs at a low priority until it votes again, or until RECOVERING_NICE_SHARE_OF_T_D of T_D has
   * passed (the core's 'restore-priority'), after which it gets the normal priority back so the
   * bound holds however busy the machine is. Whether it was lowered.
   */
  #lowerRecoveringPriority(): boolean {
    const child = this.#child;
    if (child !== null && this.#starts.get(child)?.booted !== true) {
      // A standby still booting at its slot (or a process started just now): its start-up is on
      // the recovery's clock already, and at a low priority on busy cores it took seconds.
      this.#logger.info(
        'the replica process had not finished booting when its recovery began: it runs at normal priority',
      );
      this.#restoreRecoveringPriority();
      return false;
    }
    return this.#lowerPriority(child?.pid);
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
    const pid = this.#lowPriorityPid;
    this.#lowPriorityPid = null;
    if (pid !== null && !setProcessNice(pid, 0) && this.#child?.pid === pid)
      this.#alarm(`could not give replica ${this.id}'s process (pid ${pid}) its normal CPU priority back`);
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
      const target = `${source}.epoch-${this.#core.persistentState().keyEpoch}`;
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

  // ───────────────────────────── the replica process ─────────────────────────────

  /**
   * A replica process from the code directory, as the replica user when the trust boundary is
   * enforced; it waits for its session keys on its guardian link (fd GUARDIAN_LINK_FD).
   */
  #spawnProcess(asStandby: boolean): ChildProcess {
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
    this.#starts.set(child, { spawnedAtMs: this.#now(), asStandby, booted: false });
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
      if (!verdict.ok || this.#stopped || this.#core.recovering) return;
      this.#standbyCodeCheck = fingerprint === null ? null : { fingerprint, atMs: this.#now() };
      const standby = this.#spawnProcess(true);
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
    const child = this.#liveStandby() ?? this.#spawnProcess(false);
    if (child !== this.#standby) this.#discardStandby();
    this.#standby = null;
    this.#child = child;
    this.#childExpectedExit = false;
    this.#replicaStatus = null;
    child.once('exit', (code, signal) => {
      if (this.#child !== child) return;
      this.#child = null;
      this.#feed({
        type: 'replica-exited',
        now: this.#now(),
        expected: this.#childExpectedExit,
        code,
        signal,
      });
    });
    this.#links.get(child)?.send(keys);
  }

  #onBooted(child: ChildProcess): void {
    const start = this.#starts.get(child);
    if (start === undefined || start.booted) return;
    start.booted = true;
    // `standby`: started ahead of its slot; `adoptedBeforeBoot`: its slot came (and the recovery
    // handed it its keys) before it had finished booting, which a loaded machine makes common.
    this.#logger.info(
      {
        adoptedBeforeBoot: start.asStandby && child !== this.#standby,
        standby: start.asStandby,
        bootMs: this.#now() - start.spawnedAtMs,
      },
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
    const now = this.#now();
    switch (message.type) {
      case 'evidence':
        this.#feed({
          type: 'replica-evidence',
          now,
          evidence: fromBase64(message.evidence),
          ...(message.origin === undefined ? {} : { origin: message.origin }),
        });
        return;
      case 'fork-proof':
        this.#onForkProof(message.proof, 'its replica');
        return;
      case 'suspect':
        this.#feed({ type: 'replica-suspicion', now, accused: message.accused, reason: message.reason });
        return;
      case 'booted':
        if (this.#child !== null) this.#onBooted(this.#child);
        return;
      case 'progress':
        this.#feed({ type: 'replica-progress', now, stage: message.stage });
        return;
      case 'status':
        this.#replicaStatus = message;
        this.#feed({
          type: 'replica-status',
          now,
          view: message.view,
          rejoinAboveView: message.rejoinAboveView,
          lastExecuted: message.lastExecuted,
          voting: message.voting,
        });
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
    const core = this.#core.status(this.#now());
    return {
      replica: this.id,
      keyEpoch: core.keyEpoch,
      replicaProcess:
        this.#child === null ? 'stopped' : this.#replicaStatus === null ? 'starting' : 'running',
      recovery: core.recovery,
      lastRejuvenationAtMs: core.lastRejuvenationAtMs,
      exposureMs: core.exposureMs,
      guaranteeMs: core.guaranteeMs,
      recoveryBoundMs: core.recoveryBoundMs,
      periodMs: core.periodMs,
      nextProactiveAtMs: core.nextProactiveAtMs,
      recentRecoveries: core.recentRecoveries,
      alarms: core.alarms,
      evidence: core.evidence,
      suspicions: core.suspicions,
      connectedGuardians: this.#control?.connectedPeers().length ?? 0,
      pendingReactive: core.pendingReactive,
      faultyReplicas: core.faultyReplicas,
      safeMode:
        this.#safeMode === null
          ? null
          : { culprits: this.#safeMode.culprits, verifiedAtMs: this.#safeMode.verifiedAtMs },
      keyEpochAcceptedUntilMs: core.keyEpochAcceptedUntilMs,
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
      if (mode !== null && AT_START_ONLY_BEHAVIOURS.includes(mode)) {
        response
          .writeHead(400)
          .end(`fault mode ${mode} takes effect only at a replica's start: phalanx guardian --fault-mode\n`);
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
    this.#discardStandby();
    await this.#stopReplica();
    await this.#control?.close();
    await new Promise<void>((resolve) =>
      this.#admin === null ? resolve() : this.#admin.close(() => resolve()),
    );
    // A start still waiting for its first recovery returns now.
    this.#recoveryDone?.resolve();
  }
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** The control channel's form of a core message: certificates and evidence as base64. */
function toControlMessage(message: CoreControlMessage): ControlMessage {
  switch (message.type) {
    case 'certificate':
      return { type: 'certificate', certificate: toBase64(encodeKeyCertificate(message.certificate)) };
    case 'evidence':
      return {
        type: 'evidence',
        evidence: toBase64(message.evidence),
        reporter: message.reporter,
        atMs: message.atMs,
      };
    default:
      return message;
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
