/**
 * Named limits on untrusted input. Every decoder and endpoint checks these before doing work;
 * input beyond them is rejected with a reason naming the limit. docs/LIMITS.md explains each.
 */
export const LIMITS = {
  /** Largest frame a transport accepts (the largest message is a full batch or manifest). */
  maxFrameBytes: 8 * 1024 * 1024,
  /** Largest client operation and largest service result. */
  maxOperationBytes: 1024 * 1024,
  maxResultBytes: 1024 * 1024,
  /** Requests in one batch, and the summed encoded size of a batch. */
  maxBatchRequests: 4096,
  maxBatchBytes: 4 * 1024 * 1024,
  /** n: replicas in a configuration (authenticator entries, votes in a certificate). */
  maxReplicas: 64,
  /** Entries of a view change's P and Q sets (bounded by the log window). */
  maxViewChangeEntries: 16384,
  /** Requests forwarded to the leader in one message. */
  maxForwardedRequests: 1024,
  /** Requests a backup acknowledges to the leader in one message. */
  maxAcknowledgedRequests: 4096,
  /** State chunks: size of one, number in a checkpoint, indices asked for at once. */
  maxChunkBytes: 4 * 1024 * 1024,
  maxManifestLeaves: 65536,
  maxChunkIndicesPerRequest: 256,
  /** Sibling digests in a reply's Merkle proof (a batch of 2^32 replies). */
  maxReplyProofDepth: 32,
  /** Certified checkpoints in one CERTIFICATE-HISTORY message (forensics, safe mode). */
  maxCertificateHistory: 4,
  /** UTF-8 bytes of a client id (see CLIENT_ID_PATTERN). */
  maxClientIdBytes: 64,
} as const;

export type Limits = { readonly [Name in keyof typeof LIMITS]: number };
