/**
 * What a guardian keeps of its replica's safe mode (docs/intrusion-tolerance.md, "Beyond f: safe
 * mode and forensics"), so that no new process of the replica runs normally again until the
 * operator has left safe mode with a new configuration.
 *
 * Why the guardian keeps it: a replica checks a fork proof with the keys it knows, and only
 * against key epochs still accepted (an intruder holding retired keys must not be able to forge
 * one). Once the culprits have been rejuvenated, a proof against them stops verifying, so a
 * replica rejuvenated after that could not enter safe mode from its peers' FORK-PROOF, and after
 * one recovery period every replica would run normally again: proactive recovery would be a way
 * out of safe mode. The guardian verified the proof while it could be verified, stores it
 * durably, and hands it to every process it starts (ReplicaOptions.safeModeOrder): the replica
 * starts in safe mode on its guardian's word, as it starts with the keys its guardian gives it.
 *
 * The record names the configuration it was verified under (its replicas' identity keys): the
 * operator's way out, a configuration with new keys for every replica, makes the record stale,
 * and the guardian discards it (and says so) instead of holding the new cluster in safe mode.
 */
import { createHash } from 'node:crypto';
import type { ClusterConfig } from '../config/cluster-config.js';
import { IPC_LIMITS } from '../runtime/ipc.js';

/** The record file in the guardian's state folder. */
export const SAFE_MODE_FILE = 'safe-mode.json';

export const SAFE_MODE_ORDER_LIMITS = {
  /** Longest proof kept: what the replica link carries. */
  maxProofBase64: IPC_LIMITS.maxEvidenceBase64,
  /** Longest record file read (the proof and a few short fields). */
  maxFileBytes: 4 * 1024 * 1024 + 16 * 1024,
  /** Culprits listed in a record: at most one per replica of the largest configuration. */
  maxCulprits: 1024,
} as const;

export interface StoredSafeMode {
  /** The configuration the proof was verified under (configurationFingerprint). */
  readonly configuration: string;
  /** The FORK-PROOF message the replica reported (encodeMessage, base64), as verified. */
  readonly proof: string;
  /** The replicas the proof named when it was verified. */
  readonly culprits: readonly number[];
  /** When this guardian verified it (ms since the Unix epoch, the guardian's clock). */
  readonly verifiedAtMs: number;
}

/**
 * Names a configuration by what its operator replaces to leave safe mode: every replica's
 * identity key (and the shape n, f). Hex SHA-256.
 */
export function configurationFingerprint(config: Pick<ClusterConfig, 'n' | 'f' | 'replicas'>): string {
  const hash = createHash('sha256');
  hash.update(`phalanx safe-mode configuration v1 n=${config.n} f=${config.f}\n`);
  for (const replica of config.replicas) {
    hash.update(`${replica.id}:`);
    hash.update(replica.identityKey ?? new Uint8Array(0));
    hash.update('\n');
  }
  return hash.digest('hex');
}

export type StoredSafeModeVerdict =
  /** Entered under this configuration: every start of the replica is in safe mode. */
  | { readonly kind: 'applies'; readonly record: StoredSafeMode }
  /** Entered under another configuration: the operator left safe mode; discard it. */
  | { readonly kind: 'other-configuration'; readonly record: StoredSafeMode }
  /** Not a record this guardian wrote (written atomically, so damaged or tampered with). */
  | { readonly kind: 'unreadable'; readonly reason: string };

/** Judges the record file's text against the configuration the guardian runs now. */
export function judgeStoredSafeMode(text: string, fingerprint: string): StoredSafeModeVerdict {
  if (text.length > SAFE_MODE_ORDER_LIMITS.maxFileBytes)
    return { kind: 'unreadable', reason: `over ${SAFE_MODE_ORDER_LIMITS.maxFileBytes} bytes` };
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    return {
      kind: 'unreadable',
      reason: `not JSON (${error instanceof Error ? error.message : String(error)})`,
    };
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
    return { kind: 'unreadable', reason: 'not an object' };
  const fields = parsed as Record<string, unknown>;
  const { configuration, proof, culprits, verifiedAtMs } = fields;
  if (typeof configuration !== 'string' || !/^[0-9a-f]{64}$/.test(configuration))
    return { kind: 'unreadable', reason: 'no configuration fingerprint' };
  if (
    typeof proof !== 'string' ||
    proof.length === 0 ||
    proof.length > SAFE_MODE_ORDER_LIMITS.maxProofBase64 ||
    !/^[A-Za-z0-9+/]*={0,2}$/.test(proof)
  )
    return { kind: 'unreadable', reason: 'no proof' };
  if (
    !Array.isArray(culprits) ||
    culprits.length > SAFE_MODE_ORDER_LIMITS.maxCulprits ||
    !culprits.every((culprit) => Number.isSafeInteger(culprit) && (culprit as number) >= 0)
  )
    return { kind: 'unreadable', reason: 'no culprits' };
  if (typeof verifiedAtMs !== 'number' || !Number.isFinite(verifiedAtMs))
    return { kind: 'unreadable', reason: 'no verification time' };
  const record: StoredSafeMode = { configuration, proof, culprits: culprits as number[], verifiedAtMs };
  return configuration === fingerprint
    ? { kind: 'applies', record }
    : { kind: 'other-configuration', record };
}
