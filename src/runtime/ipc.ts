/**
 * The local channel between a guardian and the replica process it runs: a socket pair on the
 * child's file descriptor GUARDIAN_LINK_FD, carrying length-prefixed JSON frames. The guardian is
 * trusted and the replica may be compromised, so what the guardian reads from it is bounded
 * before it is buffered (FrameDecoder refuses a frame whose announced length is over
 * MAX_REPLICA_FRAME_BYTES on reading the 4-byte prefix) and validated field by field with named
 * limits after it is parsed; byte strings travel as base64. Node's own IPC channel
 * (`process.send`) is not used: it reads and parses a message of any size before our code sees it.
 *
 * Guardian → replica: the session keys of the new epoch (never on disk or on the command line),
 * key certificates of the other replicas as they change, a nudge to change view (the last step of
 * a rejuvenation), and in test clusters a fault mode to switch on (an "intrusion").
 * Replica → guardian: evidence and suspicions, recovery progress, and a periodic status.
 *
 * It lives in runtime/ with the replica end (replica-node.ts); the guardian (recovery/) sits above
 * and speaks the other end.
 */

import type { Duplex } from 'node:stream';
import { isRuntimeFaultMode, RUNTIME_FAULT_MODES, type RuntimeFaultMode } from '../adversary/catalogue.js';
import { decodeMessage } from '../messages/codec.js';
import type { ForensicProof } from '../messages/types.js';

/**
 * The fault modes a test or demo cluster's replica can be switched into: the runtime's part of
 * the adversary catalogue (src/adversary/catalogue.ts describes each).
 */
export const FAULT_MODES: readonly RuntimeFaultMode[] = RUNTIME_FAULT_MODES;
export type FaultMode = RuntimeFaultMode;

export function isFaultMode(value: unknown): value is FaultMode {
  return isRuntimeFaultMode(value);
}

export type GuardianToReplica =
  | {
      readonly type: 'session-keys';
      readonly keyEpoch: number;
      readonly signingSeed: string;
      readonly agreementSeed: string;
      /** This replica's own certificate (encoded KeyCertificate, base64). */
      readonly certificate: string;
      /** Every replica's latest certificate the guardian knows. */
      readonly certificates: readonly string[];
      /** The replica's log is not trusted (rejuvenation after a possible compromise). */
      readonly amnesiac: boolean;
      readonly faultMode: FaultMode | null;
      /**
       * The fork proof this guardian verified when its replica entered safe mode (the FORK-PROOF
       * message, encodeMessage, base64, at most IPC_LIMITS.maxEvidenceBase64 characters): the
       * new process starts in safe mode (docs/intrusion-tolerance.md, Beyond f). Absent otherwise.
       */
      readonly safeMode?: string;
    }
  | { readonly type: 'certificates'; readonly certificates: readonly string[] }
  | {
      readonly type: 'nudge-view-change';
      readonly avoidLeaders: readonly number[];
      /** Replicas already in a later view ignore the nudge (see the core's change-view event). */
      readonly aboveView: number | null;
    }
  | { readonly type: 'fault'; readonly mode: FaultMode | null }
  /**
   * The guardian keeps a fork proof it learned from another guardian while this process runs
   * (same encoding and bound as session-keys' safeMode): the replica enters safe mode.
   */
  | { readonly type: 'safe-mode'; readonly proof: string }
  /**
   * The guardian verified a proof against `replica` made under its key epoch `keyEpoch`: the
   * replica stops counting the culprit's messages until the culprit's epoch is above it.
   */
  | {
      readonly type: 'cut-off';
      readonly replica: number;
      readonly keyEpoch: number;
      readonly reason: string;
      /**
       * The proof (encodeEvidence, base64, at most IPC_LIMITS.maxEvidenceBase64 characters):
       * the replica counts it toward more than f proven. Absent when it would not fit.
       */
      readonly evidence?: string;
    };

/**
 * 'safe-mode': the replica is in safe mode (started so on its guardian's order, or told by a
 * peer): it serves reads of its certified state and will neither catch up nor vote again.
 */
export type RecoveryProgress =
  'validating-state' | 'transferring-state' | 'replaying-log' | 'caught-up' | 'voting' | 'safe-mode';

export type ReplicaToGuardian =
  /**
   * The process has loaded its code and configuration and waits for its session keys: a standby
   * started before its slot says so, and its guardian knows whether the boot is done by then.
   */
  | { readonly type: 'booted' }
  | {
      readonly type: 'evidence';
      readonly evidence: string;
      /**
       * The client that handed the proof in (absent: the replica found it itself). The replica's
       * word only, for the record: the proof is checked on its own. evidenceOrigin() bounds it.
       */
      readonly origin?: string;
    }
  | { readonly type: 'suspect'; readonly accused: number; readonly reason: string }
  /**
   * The replica entered safe mode (docs/intrusion-tolerance.md, Beyond f): `proof` is the
   * FORK-PROOF message, encoded (encodeMessage) and base64; the guardian checks it on its own.
   */
  | { readonly type: 'fork-proof'; readonly proof: string }
  | { readonly type: 'progress'; readonly stage: RecoveryProgress; readonly detail: string }
  | {
      readonly type: 'status';
      readonly view: number;
      /** The view a rejoin view change must go above (Replica.rejoinAboveView): at least `view`. */
      readonly rejoinAboveView: number;
      readonly lastExecuted: number;
      readonly stableCheckpoint: number;
      readonly stateTransferInProgress: boolean;
      readonly voting: boolean;
      /** Highest lastExecuted a correct peer reported (the (f+1)-th highest), to judge catching up. */
      readonly peersExecuted: number;
    };

/** Limits on what the guardian accepts from its (possibly compromised) replica. */
export const IPC_LIMITS = {
  maxEvidenceBase64: 4 * 1024 * 1024,
  maxReasonLength: 512,
  maxDetailLength: 512,
  /**
   * Longest evidence origin kept: the guardian relays "client <origin> via replica <id>" to the
   * other guardians, whose control messages bound a reporter to 80 characters.
   */
  maxEvidenceOriginLength: 48,
} as const;

/** The client id an evidence message may name as its origin, or undefined when it may name none. */
export function evidenceOrigin(value: unknown): string | undefined {
  return typeof value === 'string' &&
    value.length <= IPC_LIMITS.maxEvidenceOriginLength &&
    /^[A-Za-z0-9._-]+$/.test(value)
    ? value
    : undefined;
}

/** Replicas a view change may be asked to avoid as leader (one slot's group, and the accused). */
const MAX_AVOIDED_LEADERS = 64;
/** A cut-off's reason is "proof: <evidence kind>"; anything much longer is not the guardian's. */
const MAX_CUT_OFF_REASON_LENGTH = 200;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function boundedString(value: unknown, max: number): value is string {
  return typeof value === 'string' && value.length <= max;
}

/** A non-negative safe integer: ids, views, sequences, epochs (also checked on the control channel). */
export function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

const PROGRESS: readonly RecoveryProgress[] = [
  'validating-state',
  'transferring-state',
  'replaying-log',
  'caught-up',
  'voting',
  'safe-mode',
];

/** Validates a message from the replica; null (and the guardian logs it) when it is malformed. */
export function parseReplicaMessage(value: unknown): ReplicaToGuardian | null {
  if (!isRecord(value)) return null;
  switch (value.type) {
    case 'booted':
      return { type: 'booted' };
    case 'evidence':
      if (!boundedString(value.evidence, IPC_LIMITS.maxEvidenceBase64)) return null;
      {
        // An origin that is too long or oddly spelled is dropped, not the proof with it.
        const origin = evidenceOrigin(value.origin);
        return origin === undefined
          ? { type: 'evidence', evidence: value.evidence }
          : { type: 'evidence', evidence: value.evidence, origin };
      }
    case 'fork-proof':
      return boundedString(value.proof, IPC_LIMITS.maxEvidenceBase64)
        ? { type: 'fork-proof', proof: value.proof }
        : null;
    case 'suspect':
      return isCount(value.accused) && boundedString(value.reason, IPC_LIMITS.maxReasonLength)
        ? { type: 'suspect', accused: value.accused, reason: value.reason }
        : null;
    case 'progress':
      return typeof value.stage === 'string' &&
        (PROGRESS as readonly string[]).includes(value.stage) &&
        boundedString(value.detail, IPC_LIMITS.maxDetailLength)
        ? { type: 'progress', stage: value.stage as RecoveryProgress, detail: value.detail }
        : null;
    case 'status':
      return isCount(value.view) &&
        isCount(value.rejoinAboveView) &&
        value.rejoinAboveView >= value.view &&
        isCount(value.lastExecuted) &&
        isCount(value.stableCheckpoint) &&
        isCount(value.peersExecuted) &&
        typeof value.stateTransferInProgress === 'boolean' &&
        typeof value.voting === 'boolean'
        ? {
            type: 'status',
            view: value.view,
            rejoinAboveView: value.rejoinAboveView,
            lastExecuted: value.lastExecuted,
            stableCheckpoint: value.stableCheckpoint,
            stateTransferInProgress: value.stateTransferInProgress,
            voting: value.voting,
            peersExecuted: value.peersExecuted,
          }
        : null;
    default:
      return null;
  }
}

/** Validates a message from the guardian (trusted, but a bug should fail loudly, not subtly). */
export function parseGuardianMessage(value: unknown): GuardianToReplica | null {
  if (!isRecord(value)) return null;
  const strings = (list: unknown): list is string[] =>
    Array.isArray(list) && list.every((item) => typeof item === 'string');
  switch (value.type) {
    case 'session-keys':
      return isCount(value.keyEpoch) &&
        typeof value.signingSeed === 'string' &&
        typeof value.agreementSeed === 'string' &&
        typeof value.certificate === 'string' &&
        strings(value.certificates) &&
        typeof value.amnesiac === 'boolean' &&
        (value.faultMode === null || isFaultMode(value.faultMode)) &&
        (value.safeMode === undefined || boundedString(value.safeMode, IPC_LIMITS.maxEvidenceBase64))
        ? {
            type: 'session-keys',
            keyEpoch: value.keyEpoch,
            signingSeed: value.signingSeed,
            agreementSeed: value.agreementSeed,
            certificate: value.certificate,
            certificates: value.certificates,
            amnesiac: value.amnesiac,
            faultMode: value.faultMode as FaultMode | null,
            ...(value.safeMode === undefined ? {} : { safeMode: value.safeMode }),
          }
        : null;
    case 'certificates':
      return strings(value.certificates) ? { type: 'certificates', certificates: value.certificates } : null;
    case 'nudge-view-change':
      return Array.isArray(value.avoidLeaders) &&
        value.avoidLeaders.length <= MAX_AVOIDED_LEADERS &&
        value.avoidLeaders.every(isCount) &&
        (value.aboveView === null || isCount(value.aboveView))
        ? {
            type: 'nudge-view-change',
            avoidLeaders: value.avoidLeaders,
            aboveView: value.aboveView as number | null,
          }
        : null;
    case 'safe-mode':
      return boundedString(value.proof, IPC_LIMITS.maxEvidenceBase64)
        ? { type: 'safe-mode', proof: value.proof }
        : null;
    case 'fault':
      return value.mode === null || isFaultMode(value.mode)
        ? { type: 'fault', mode: value.mode as FaultMode | null }
        : null;
    case 'cut-off':
      return isCount(value.replica) &&
        isCount(value.keyEpoch) &&
        typeof value.reason === 'string' &&
        value.reason.length <= MAX_CUT_OFF_REASON_LENGTH &&
        (value.evidence === undefined || boundedString(value.evidence, IPC_LIMITS.maxEvidenceBase64))
        ? {
            type: 'cut-off',
            replica: value.replica,
            keyEpoch: value.keyEpoch,
            reason: value.reason,
            ...(value.evidence === undefined ? {} : { evidence: value.evidence }),
          }
        : null;
    default:
      return null;
  }
}

/** File descriptor of the guardian link in the replica process (0-2 are stdin, stdout, stderr). */
export const GUARDIAN_LINK_FD = 3;
/** Bytes of a frame's length prefix (unsigned 32-bit, big-endian). */
export const FRAME_HEADER_BYTES = 4;
/**
 * Largest frame the guardian accepts from its replica: the largest message, evidence of
 * IPC_LIMITS.maxEvidenceBase64 characters, plus room for its JSON envelope. A longer announced
 * length is refused on reading the prefix, before any of the payload is buffered.
 */
export const MAX_REPLICA_FRAME_BYTES = IPC_LIMITS.maxEvidenceBase64 + 64 * 1024;
/**
 * Largest frame the replica accepts from its guardian: a cut-off with its proof (evidence of up
 * to IPC_LIMITS.maxEvidenceBase64 characters) and room for the envelope. Session keys with two
 * certificates (about 200 bytes of base64 each) for each of at most 64 replicas take some 30 KiB.
 */
export const MAX_GUARDIAN_FRAME_BYTES = IPC_LIMITS.maxEvidenceBase64 + 64 * 1024;

/** One JSON message as a frame: length prefix, then UTF-8 JSON. Throws if it exceeds `maxFrameBytes`. */
export function encodeFrame(message: unknown, maxFrameBytes: number): Buffer {
  const payload = Buffer.from(JSON.stringify(message), 'utf8');
  if (payload.length === 0 || payload.length > maxFrameBytes)
    throw new RangeError(`IPC frame of ${payload.length} bytes is outside 1..${maxFrameBytes}`);
  const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + payload.length);
  frame.writeUInt32BE(payload.length, 0);
  payload.copy(frame, FRAME_HEADER_BYTES);
  return frame;
}

export type FrameDecodeResult =
  | { readonly ok: true; readonly messages: readonly unknown[] }
  | { readonly ok: false; readonly reason: string };

/**
 * Cuts a byte stream into frames and parses each as JSON. At most FRAME_HEADER_BYTES +
 * `maxFrameBytes` bytes are ever held: an announced length over the limit (or zero) is refused
 * as soon as the prefix is read, before any payload is buffered. After a refusal the decoder
 * stays failed: the stream has lost its framing, and the sender is misbehaving.
 */
export class FrameDecoder {
  readonly #maxFrameBytes: number;
  #chunks: Buffer[] = [];
  #buffered = 0;
  /** Payload length of the frame being read, once its prefix is in. */
  #expected: number | null = null;
  #failure: string | null = null;

  constructor(maxFrameBytes: number) {
    if (!Number.isSafeInteger(maxFrameBytes) || maxFrameBytes < 1 || maxFrameBytes > 0xffff_ffff)
      throw new RangeError(`maxFrameBytes must be an integer from 1 to 2^32 - 1, got ${maxFrameBytes}`);
    this.#maxFrameBytes = maxFrameBytes;
  }

  /** Bytes held for a frame not yet complete (never above the prefix plus the limit). */
  get bufferedBytes(): number {
    return this.#buffered;
  }

  push(chunk: Uint8Array): FrameDecodeResult {
    if (this.#failure !== null) return { ok: false, reason: this.#failure };
    const messages: unknown[] = [];
    let rest = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    while (rest.length > 0) {
      const wanted = (this.#expected ?? FRAME_HEADER_BYTES) - this.#buffered;
      const taken = rest.subarray(0, wanted);
      rest = rest.subarray(taken.length);
      this.#chunks.push(taken);
      this.#buffered += taken.length;
      if (taken.length < wanted) break;
      const whole = this.#chunks.length === 1 ? this.#chunks[0]! : Buffer.concat(this.#chunks);
      this.#chunks = [];
      this.#buffered = 0;
      if (this.#expected === null) {
        const length = whole.readUInt32BE(0);
        if (length === 0 || length > this.#maxFrameBytes)
          return this.#fail(`frame length ${length} is outside 1..${this.#maxFrameBytes}`);
        this.#expected = length;
        continue;
      }
      this.#expected = null;
      try {
        // Node's decoder replaces invalid UTF-8; the message is validated field by field after.
        messages.push(JSON.parse(whole.toString('utf8')) as unknown);
      } catch {
        return this.#fail(`frame of ${whole.length} bytes is not JSON`);
      }
    }
    return { ok: true, messages };
  }

  #fail(reason: string): FrameDecodeResult {
    this.#failure = reason;
    this.#chunks = [];
    this.#buffered = 0;
    return { ok: false, reason };
  }
}

/** What a framed link tells its owner. */
export interface FramedLinkEvents {
  onMessage(message: unknown): void;
  /** The peer broke the framing (oversized, empty or unparsable frame); the link is already closed. */
  onProtocolError(reason: string): void;
  /** The link closed (peer gone, or closed here); called once. */
  onClose(): void;
}

/**
 * One end of the guardian link over a stream socket: frames out, decoded frames in. A framing
 * error closes the link at once; nothing read after it is looked at.
 */
export class FramedLink {
  readonly #socket: Duplex;
  readonly #maxOutgoingBytes: number;
  readonly #decoder: FrameDecoder;
  #open = true;

  constructor(
    socket: Duplex,
    limits: { readonly maxIncomingBytes: number; readonly maxOutgoingBytes: number },
    events: FramedLinkEvents,
  ) {
    this.#socket = socket;
    this.#maxOutgoingBytes = limits.maxOutgoingBytes;
    this.#decoder = new FrameDecoder(limits.maxIncomingBytes);
    let closed = false;
    const closedOnce = (): void => {
      this.#open = false;
      if (closed) return;
      closed = true;
      events.onClose();
    };
    socket.on('data', (chunk: Buffer) => {
      if (!this.#open) return;
      const result = this.#decoder.push(chunk);
      if (!result.ok) {
        this.close();
        events.onProtocolError(result.reason);
        return;
      }
      for (const message of result.messages) {
        if (!this.#open) return;
        events.onMessage(message);
      }
    });
    // A broken pipe is a closed link, never an uncaught error in the process that holds it.
    socket.on('error', () => closedOnce());
    socket.on('close', () => closedOnce());
    socket.on('end', () => closedOnce());
  }

  get open(): boolean {
    return this.#open;
  }

  /** Sends one message; false if the link is closed. A message over the outgoing limit is a bug. */
  send(message: unknown): boolean {
    if (!this.#open) return false;
    this.#socket.write(encodeFrame(message, this.#maxOutgoingBytes));
    return true;
  }

  close(): void {
    this.#open = false;
    this.#socket.destroy();
  }
}

export function toBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

export function fromBase64(text: string): Uint8Array {
  return new Uint8Array(Buffer.from(text, 'base64'));
}

/**
 * A fork proof as it travels between guardians and replicas (session-keys.safeMode, safe-mode,
 * the guardians' fork-proof control message, the kept record): a FORK-PROOF message, encoded and
 * base64. Only decoded here; whether it proves anything is verifyForensicProof's question.
 */
export function decodeForkProof(
  base64: string,
): { readonly ok: true; readonly proof: ForensicProof } | { readonly ok: false; readonly reason: string } {
  const decoded = decodeMessage(fromBase64(base64));
  if (!decoded.ok) return { ok: false, reason: decoded.reason };
  if (decoded.value.kind !== 'fork-proof')
    return { ok: false, reason: `a ${decoded.value.kind}, not a FORK-PROOF` };
  return { ok: true, proof: decoded.value.proof };
}
