/**
 * detection/: deciding, from evidence anyone can check, that a replica misbehaved (docs/design.md §5).
 *
 * - verifyEvidence: checks a transferable proof (equivocation, conflicting checkpoint, lying
 *   reply) against the replicas' public keys alone, and says why when it does not hold.
 * - verifyForensicProof: checks a fork proof (two quorum certificates for one checkpoint with
 *   different roots) and recomputes its culprits, the ≥ f + 1 replicas that signed both.
 * - SuspicionTracker: unprovable complaints count once f + 1 distinct replicas make them within
 *   a window.
 * - AccountabilityLog: a hash-chained record of what a replica sent and received, audited with
 *   auditAccountabilityLog.
 *
 * Usage:
 * ```ts
 * import { keyEpoch, replicaId } from '../messages/ids.js';
 * import { KeyRegistry, ReplicaCrypto, sessionKeysFromSeed } from '../crypto/index.js';
 * import type { Evidence } from '../messages/types.js';
 * import {
 *   AccountabilityLog, auditAccountabilityLog, describeEvidence, type EvidenceContext, SuspicionTracker,
 *   verifyEvidence,
 * } from './index.js';
 *
 * const registry = new KeyRegistry(4); // every replica's public keys, from their key certificates
 * const crypto = new ReplicaCrypto({
 *   replica: replicaId(0), registry, epoch: keyEpoch(0), sessionKeys: sessionKeysFromSeed(new Uint8Array(32)),
 * });
 * const context: EvidenceContext = {
 *   model: { n: 4, f: 1, k: 0 },
 *   verifyReplicaSignature: (signer, epoch, payload, signature) =>
 *     registry.verifyReplicaSignature(signer, epoch, payload, signature),
 *   hash: (data) => crypto.hash(data),
 *   currentEpoch: (replica) => registry.currentEpoch(replica), // evidence counts only against it
 * };
 * declare const evidence: Evidence; // e.g. from an 'evidence-report' message
 * const verdict = verifyEvidence(evidence, context);
 * console.log(verdict.valid ? describeEvidence(evidence) : `rejected evidence: ${verdict.reason}`);
 *
 * const suspicions = new SuspicionTracker({ n: 4, f: 1, windowMs: 30_000 });
 * suspicions.report(replicaId(0), replicaId(2), Date.now()); // false: one complaint
 * suspicions.report(replicaId(0), replicaId(3), Date.now()); // true: f + 1 = 2 distinct reporters
 *
 * const path = '/var/lib/phalanx/replica-0/accountability.log';
 * const log = await AccountabilityLog.open(path); // rotated at 8 MiB, 3 older files kept
 * const messageDigest = crypto.hash(new TextEncoder().encode('encoded prepare'));
 * log.append({ direction: 'sent', peer: 'replica:2', kind: 'prepare', digest: messageDigest, atMs: Date.now() });
 * await log.close();
 * await auditAccountabilityLog(path); // { ok: true, entries: 1, head: log.head(), … }
 * ```
 */
export {
  ACCOUNTABILITY_LOG_FORMAT,
  ACCOUNTABILITY_LOG_GENESIS_HEAD,
  ACCOUNTABILITY_LOG_LIMITS,
  ACCOUNTABILITY_LOG_MESSAGE_KINDS,
  accountabilityLogFiles,
  type AccountabilityAudit,
  type AccountabilityEntry,
  AccountabilityLog,
  AccountabilityLogError,
  type AccountabilityLogOptions,
  auditAccountabilityLog,
  auditAccountabilityLogBytes,
  auditAccountabilityLogFiles,
  type AuditOptions,
  MIN_ACCOUNTABILITY_LOG_BYTES,
  rotatedPath,
} from './accountability-log.js';
export {
  describeEvidence,
  type EvidenceContext,
  evidenceAccused,
  type EvidenceVerdict,
  verifyEvidence,
} from './evidence.js';
export {
  describeForensicProof,
  type ForensicContext,
  type ForensicVerdict,
  verifyForensicProof,
} from './forensics.js';
export { SuspicionTracker, type SuspicionSnapshot, type SuspicionTrackerOptions } from './suspicions.js';
