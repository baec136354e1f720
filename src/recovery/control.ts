/**
 * The guardians' control channel: what guardians tell each other, over their own authenticated
 * connections (identity keys, their own ports; nothing from the payload path). Messages are small
 * and rare, so they travel as JSON; every field is validated with named limits, because a guardian
 * on a compromised host could send anything.
 */
import { IPC_LIMITS, isCount } from '../runtime/ipc.js';

/** Longest base64 field of a control message: what a replica may hand its guardian. */
const MAX_CONTROL_BASE64_BYTES = IPC_LIMITS.maxEvidenceBase64;

export const CONTROL_LIMITS = {
  /**
   * Longest base64 field (evidence, a fork proof, a certificate): the replica link's evidence
   * limit, so that whatever evidence or fork proof a guardian accepted from its replica it can
   * also relay to every other guardian (at 768 KiB a large proof was kept but not relayed).
   */
  maxBase64Bytes: MAX_CONTROL_BASE64_BYTES,
  /** Largest control frame accepted: one such field and the message around it. */
  maxFrameBytes: MAX_CONTROL_BASE64_BYTES + 64 * 1024,
  maxReasonLength: 512,
} as const;

export type ControlMessage =
  /** The sender's replica's current key certificate (sent on every new epoch and on connect). */
  | { readonly type: 'certificate'; readonly certificate: string }
  /** Verified evidence: every guardian checks it again before acting. */
  | {
      readonly type: 'evidence';
      readonly evidence: string;
      readonly reporter: string;
      readonly atMs?: number;
    }
  /** The sender's replica suspects `accused`; f + 1 distinct suspecting replicas trigger a recovery. */
  | { readonly type: 'suspicion'; readonly accused: number; readonly reason: string; readonly atMs?: number }
  /** The sender's replica is being rejuvenated (suspicions against it meanwhile are expected). */
  | {
      readonly type: 'recovering';
      readonly kind: 'proactive' | 'reactive';
      readonly reason: string;
      readonly atMs?: number;
    }
  /** The sender's replica finished its rejuvenation: accusations against it are settled. */
  | { readonly type: 'recovered'; readonly keyEpoch: number; readonly atMs?: number }
  /**
   * Whether the sender's replica takes part in the protocol now (a running process that votes),
   * sent every REPLICA_STATE_INTERVAL_MS and on every change: a guardian discards its replica's
   * disk in a rejuvenation only while at most k replicas are out.
   */
  | { readonly type: 'replica-state'; readonly voting: boolean }
  /**
   * The sender's replica was restarted without discarding its disk (more than k replicas were
   * out): a full rejuvenation is owed to it, in the next reactive slot that can take it.
   */
  | { readonly type: 'rejuvenation-owed'; readonly reason: string; readonly atMs?: number }
  /**
   * Ask your replica to change view (a rejuvenated replica is ready to vote again, or a leader
   * hands over), unless it is already past `aboveView`.
   */
  | { readonly type: 'nudge'; readonly aboveView: number | null }
  /**
   * The fork proof the sender keeps (its replica entered safe mode: the FORK-PROOF message,
   * encodeMessage, base64), sent when it keeps it and to every guardian that connects: a guardian
   * whose replica was down meanwhile checks it and keeps it too (recovery/safe-mode-order.ts).
   */
  | { readonly type: 'fork-proof'; readonly proof: string };

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function encodeControl(message: ControlMessage): Uint8Array {
  return encoder.encode(JSON.stringify(message));
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function bounded(value: unknown, max: number): value is string {
  return typeof value === 'string' && value.length <= max;
}

/** Decodes and validates a control frame; a reason when it is not acceptable. */
export function decodeControl(
  bytes: Uint8Array,
): { ok: true; message: ControlMessage } | { ok: false; reason: string } {
  if (bytes.length > CONTROL_LIMITS.maxFrameBytes) {
    return {
      ok: false,
      reason: `control frame of ${bytes.length} bytes exceeds maxFrameBytes (${CONTROL_LIMITS.maxFrameBytes})`,
    };
  }
  let value: unknown;
  try {
    value = JSON.parse(decoder.decode(bytes));
  } catch {
    return { ok: false, reason: 'control frame is not JSON' };
  }
  if (!isRecord(value)) return { ok: false, reason: 'control frame is not an object' };
  const invalid = {
    ok: false as const,
    reason: `malformed control message of type ${JSON.stringify(String(value.type)).slice(0, 40)}`,
  };
  switch (value.type) {
    case 'certificate':
      return bounded(value.certificate, CONTROL_LIMITS.maxBase64Bytes)
        ? { ok: true, message: { type: 'certificate', certificate: value.certificate } }
        : invalid;
    case 'evidence':
      return bounded(value.evidence, CONTROL_LIMITS.maxBase64Bytes) &&
        bounded(value.reporter, 80) &&
        isOptionalStamp(value.atMs)
        ? {
            ok: true,
            message: {
              type: 'evidence',
              evidence: value.evidence,
              reporter: value.reporter,
              ...stampOf(value.atMs),
            },
          }
        : invalid;
    case 'suspicion':
      return isCount(value.accused) &&
        bounded(value.reason, CONTROL_LIMITS.maxReasonLength) &&
        isOptionalStamp(value.atMs)
        ? {
            ok: true,
            message: {
              type: 'suspicion',
              accused: value.accused,
              reason: value.reason,
              ...stampOf(value.atMs),
            },
          }
        : invalid;
    case 'recovering':
      return (value.kind === 'proactive' || value.kind === 'reactive') &&
        bounded(value.reason, CONTROL_LIMITS.maxReasonLength) &&
        isOptionalStamp(value.atMs)
        ? {
            ok: true,
            message: { type: 'recovering', kind: value.kind, reason: value.reason, ...stampOf(value.atMs) },
          }
        : invalid;
    case 'recovered':
      return isCount(value.keyEpoch) && isOptionalStamp(value.atMs)
        ? { ok: true, message: { type: 'recovered', keyEpoch: value.keyEpoch, ...stampOf(value.atMs) } }
        : invalid;
    case 'replica-state':
      return typeof value.voting === 'boolean'
        ? { ok: true, message: { type: 'replica-state', voting: value.voting } }
        : invalid;
    case 'rejuvenation-owed':
      return bounded(value.reason, CONTROL_LIMITS.maxReasonLength) && isOptionalStamp(value.atMs)
        ? { ok: true, message: { type: 'rejuvenation-owed', reason: value.reason, ...stampOf(value.atMs) } }
        : invalid;
    case 'nudge':
      return value.aboveView === null || isCount(value.aboveView)
        ? { ok: true, message: { type: 'nudge', aboveView: value.aboveView } }
        : invalid;
    case 'fork-proof':
      return bounded(value.proof, CONTROL_LIMITS.maxBase64Bytes)
        ? { ok: true, message: { type: 'fork-proof', proof: value.proof } }
        : invalid;
    default:
      return invalid;
  }
}

/** An origin's stamp: absent, or a time in ms a clock can hold (a safe integer ≥ 0). */
function isOptionalStamp(value: unknown): value is number | undefined {
  return value === undefined || (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0);
}

function stampOf(value: number | undefined): { readonly atMs?: number } {
  return value === undefined ? {} : { atMs: value };
}
