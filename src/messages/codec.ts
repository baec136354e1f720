/**
 * Compact binary wire codec for every message in `types.ts`, and for misbehaviour evidence.
 *
 * A message is one tag byte followed by its fields in declaration order (the `kind` field is the
 * tag and is not repeated). Field encodings (primitives in `bytes.ts`):
 *
 *   view, sequence, request number, key epoch, chunk index   varuint
 *   replica id                                               u16 (big-endian)
 *   digest / signature / MAC                                 32 / 64 / 16 raw bytes
 *   `signature: Signature | null`                            presence byte (0 | 1), then 64 bytes
 *   client id                                                length-prefixed UTF-8, CLIENT_ID_PATTERN
 *   operation, result, chunk data                            length-prefixed bytes
 *   boolean                                                  one byte, 0 | 1
 *   reply status                                             one byte: 0 = ok, 1 = error
 *   arrays                                                   varuint count, then the elements
 *
 * Tag table. These values are part of the wire format: never renumber, only add.
 *
 *   0x01 request            0x14 view-change        0x1a checkpoint-proof
 *   0x02 reply              0x15 new-view           0x1b manifest-request
 *   0x10 pre-prepare        0x16 forward            0x1c manifest
 *   0x11 prepare            0x17 status             0x1d chunk-request
 *   0x12 commit             0x18 batch-request      0x1e chunk
 *   0x13 checkpoint         0x19 batch              0x1f state-unavailable
 *                                                    0x20 decided
 *                                                    0x21 key-announcement
 *                                                    0x22 evidence-report
 *                                                    0x23 request-ack
 *                                                    0x24 certificate-history
 *                                                    0x25 fork-proof
 *                                                    0x26 commit-certificate
 *
 *   Evidence (encodeEvidence/decodeEvidence; disjoint from message tags so that neither can be
 *   mistaken for the other): 0x40 equivocation, 0x41 conflicting-checkpoint, 0x42 lying-reply,
 *   0x43 invalid-new-view, 0x44 double-commit.
 *
 * Decoding treats its input as hostile: every count and length is checked against a named limit
 * (limits.ts, docs/LIMITS.md) before any loop or slice, trailing bytes and unknown tags are
 * rejected, and no input makes it throw. The reason of a rejection names the message kind, the
 * field, the limit when one applies, and the byte offset; replicas log it.
 *
 * Decoded byte fields (operations, digests, signatures, ...) are zero-copy views of the input; see
 * ByteReader. Encoding does not check limits: they guard against untrusted input, and the decoder
 * at the receiving end is where they are enforced.
 */
import {
  type ClientId,
  DIGEST_BYTES,
  type Digest,
  digest,
  InvariantViolation,
  isValidClientId,
  type KeyEpoch,
  keyEpoch,
  MAC_BYTES,
  type ReplicaId,
  replicaId,
  requestNumber,
  type SequenceNumber,
  SIGNATURE_BYTES,
  type Signature,
  sequenceNumber,
  signature,
  type ViewNumber,
  viewNumber,
} from './ids.js';
import { ByteReader, type ByteWriter, DecodeError, encodeToBytes } from './bytes.js';
import { LIMITS, type Limits } from './limits.js';
import type {
  Batch,
  BatchRequest,
  CertificateHistory,
  Checkpoint,
  CheckpointCertificate,
  CheckpointVote,
  Chunk,
  ChunkRequest,
  ClientRequest,
  Commit,
  CommitCertificate,
  Decided,
  KeyCertificate,
  ReplyProof,
  Evidence,
  EquivocationEvidence,
  ForensicProof,
  OtherEvidence,
  ForwardedRequests,
  AcknowledgedRequest,
  RequestAcknowledgement,
  MacEntry,
  Manifest,
  NewView,
  PrePrepare,
  PrePreparedEntry,
  Prepare,
  PreparedEntry,
  Reply,
  ReplyStatus,
  SignedProposal,
  Status,
  ViewChange,
  WireMessage,
} from './types.js';

export type DecodeResult<T> =
  { readonly ok: true; readonly value: T } | { readonly ok: false; readonly reason: string };

export const MESSAGE_TAGS = {
  request: 0x01,
  reply: 0x02,
  'pre-prepare': 0x10,
  prepare: 0x11,
  commit: 0x12,
  checkpoint: 0x13,
  'view-change': 0x14,
  'new-view': 0x15,
  forward: 0x16,
  status: 0x17,
  'batch-request': 0x18,
  batch: 0x19,
  'checkpoint-proof': 0x1a,
  'manifest-request': 0x1b,
  manifest: 0x1c,
  'chunk-request': 0x1d,
  chunk: 0x1e,
  'state-unavailable': 0x1f,
  decided: 0x20,
  'key-announcement': 0x21,
  'evidence-report': 0x22,
  'request-ack': 0x23,
  'certificate-history': 0x24,
  'fork-proof': 0x25,
  'commit-certificate': 0x26,
} as const satisfies Record<WireMessage['kind'], number>;

export const EVIDENCE_TAGS = {
  equivocation: 0x40,
  'conflicting-checkpoint': 0x41,
  'lying-reply': 0x42,
  'invalid-new-view': 0x43,
  'double-commit': 0x44,
} as const satisfies Record<Evidence['kind'], number>;

const MAX_KEY_EPOCH = 0xffffffff;
const REPLY_STATUS_OK = 0;
const REPLY_STATUS_ERROR = 1;

/**
 * Smallest possible encodings, used to reject at once a count the remaining input cannot hold
 * (see ByteReader.count).
 */
const MINIMUM_BYTES = {
  /** client id (1 + 1), request number, read-only, operation length, authenticator count, presence. */
  request: 7,
  macEntry: 1 + MAC_BYTES,
  vote: 2 + 1 + SIGNATURE_BYTES,
  /** sequence, root, vote count. */
  certificate: 1 + DIGEST_BYTES + 1,
  logEntry: 1 + 1 + DIGEST_BYTES,
  /** client id (1 + 1), request number, digest. */
  acknowledgedRequest: 2 + 1 + DIGEST_BYTES,
  /** new view, replica, certificate (1 + 32 + 1), two counts, key epoch, signature. */
  viewChange: 1 + 2 + (1 + DIGEST_BYTES + 1) + 1 + 1 + 1 + SIGNATURE_BYTES,
} as const;

type LimitName = keyof Limits;

// ───────────────────────────── field helpers ─────────────────────────────

function writeFixed(writer: ByteWriter, bytes: Uint8Array, expected: number, what: string): void {
  // The brands guarantee the length; checking costs nothing and keeps a corrupt value from
  // silently shifting every following field.
  if (bytes.length !== expected) {
    throw new InvariantViolation(`${what} must be ${expected} bytes, got ${bytes.length}`);
  }
  writer.bytes(bytes);
}

/** 32 raw bytes; throws InvariantViolation if the value is not DIGEST_BYTES long. */
export function writeDigest(writer: ByteWriter, value: Digest): void {
  writeFixed(writer, value, DIGEST_BYTES, 'digest');
}

/** 64 raw bytes; throws InvariantViolation if the value is not SIGNATURE_BYTES long. */
export function writeSignature(writer: ByteWriter, value: Signature): void {
  writeFixed(writer, value, SIGNATURE_BYTES, 'signature');
}

export function readDigest(reader: ByteReader, what: string): Digest {
  return digest(reader.bytes(DIGEST_BYTES, what));
}

export function readSignature(reader: ByteReader, what: string): Signature {
  return signature(reader.bytes(SIGNATURE_BYTES, what));
}

function readView(reader: ByteReader, what: string): ViewNumber {
  return viewNumber(reader.varuint(what));
}

function readSequence(reader: ByteReader, what: string): SequenceNumber {
  return sequenceNumber(reader.varuint(what));
}

function readKeyEpoch(reader: ByteReader, what: string): KeyEpoch {
  const value = reader.varuint(what);
  if (value > MAX_KEY_EPOCH) reader.fail(`${what} ${value} exceeds the largest key epoch (${MAX_KEY_EPOCH})`);
  return keyEpoch(value);
}

/**
 * Replica ids travel as u16, but no configuration has more than maxReplicas members, so a larger
 * id can never name a replica: rejecting it here spares every consumer from indexing with it.
 */
function readReplicaId(reader: ByteReader, limits: Limits, what: string): ReplicaId {
  const value = reader.u16(what);
  if (value >= limits.maxReplicas)
    reader.fail(`${what} ${value} is not below maxReplicas (${limits.maxReplicas})`);
  return replicaId(value);
}

function readClientId(reader: ByteReader, limits: Limits): ClientId {
  const value = reader.string(limits.maxClientIdBytes, 'client id', 'maxClientIdBytes');
  if (!isValidClientId(value)) reader.fail('client id violates CLIENT_ID_PATTERN');
  return value;
}

function readCount(
  reader: ByteReader,
  limits: Limits,
  limit: LimitName,
  what: string,
  minimumElementBytes: number,
): number {
  return reader.count(limits[limit], what, limit, minimumElementBytes);
}

/** Chunk indices address manifest leaves, of which there are never more than maxManifestLeaves. */
function readChunkIndex(reader: ByteReader, limits: Limits, what: string): number {
  const value = reader.varuint(what);
  if (value >= limits.maxManifestLeaves) {
    reader.fail(`${what} ${value} is not below maxManifestLeaves (${limits.maxManifestLeaves})`);
  }
  return value;
}

// ───────────────────────────── client requests ─────────────────────────────

/** Body of a client request (no tag): also the element of batches and forwarded requests. */
export function writeClientRequest(writer: ByteWriter, request: ClientRequest): void {
  writer.string(request.clientId);
  writer.varuint(request.requestNumber);
  writer.bool(request.readOnly);
  writer.lengthPrefixedBytes(request.operation);
  const authenticator = request.authenticator;
  writer.varuint(authenticator.length);
  for (let index = 0; index < authenticator.length; index++) {
    const entry = authenticator[index]!;
    writer.varuint(entry.keyEpoch);
    writeFixed(writer, entry.mac, MAC_BYTES, 'MAC');
  }
  if (request.signature === null) {
    writer.bool(false);
  } else {
    writer.bool(true);
    writeSignature(writer, request.signature);
  }
}

/** Reads what writeClientRequest wrote. Throws DecodeError: call it inside a decoder's boundary. */
export function readClientRequest(reader: ByteReader, limits: Limits): ClientRequest {
  const client = readClientId(reader, limits);
  const number = requestNumber(reader.varuint('request number'));
  const readOnly = reader.bool('read-only flag');
  const operation = reader.lengthPrefixedBytes(limits.maxOperationBytes, 'operation', 'maxOperationBytes');
  const entryCount = readCount(
    reader,
    limits,
    'maxReplicas',
    'authenticator entries',
    MINIMUM_BYTES.macEntry,
  );
  const authenticator: MacEntry[] = [];
  for (let index = 0; index < entryCount; index++) {
    const epoch = readKeyEpoch(reader, 'authenticator key epoch');
    authenticator.push({ keyEpoch: epoch, mac: reader.bytes(MAC_BYTES, 'authenticator MAC') });
  }
  const signed = reader.bool('request signature presence');
  return {
    kind: 'request',
    clientId: client,
    requestNumber: number,
    readOnly,
    operation,
    authenticator,
    signature: signed ? readSignature(reader, 'request signature') : null,
  };
}

function writeRequestList(writer: ByteWriter, requests: readonly ClientRequest[]): void {
  writer.varuint(requests.length);
  for (let index = 0; index < requests.length; index++) writeClientRequest(writer, requests[index]!);
}

/** A batch: at most maxBatchRequests requests whose encodings sum to at most maxBatchBytes. */
function readBatch(reader: ByteReader, limits: Limits): ClientRequest[] {
  const count = readCount(reader, limits, 'maxBatchRequests', 'batch requests', MINIMUM_BYTES.request);
  const start = reader.offset;
  const batch: ClientRequest[] = [];
  for (let index = 0; index < count; index++) {
    batch.push(readClientRequest(reader, limits));
    const size = reader.offset - start;
    if (size > limits.maxBatchBytes) {
      reader.fail(`batch of at least ${size} bytes exceeds maxBatchBytes (${limits.maxBatchBytes})`);
    }
  }
  return batch;
}

// ───────────────────────────── checkpoints and view changes ─────────────────────────────

/** Signed votes (a replica id, its key epoch, its signature each): a certificate's, or COMMITs'. */
function writeSignedVotes(writer: ByteWriter, votes: readonly CheckpointVote[]): void {
  writer.varuint(votes.length);
  for (let index = 0; index < votes.length; index++) {
    const vote = votes[index]!;
    writer.u16(vote.replicaId);
    writer.varuint(vote.keyEpoch);
    writeSignature(writer, vote.signature);
  }
}

/** Reads what writeSignedVotes wrote, at most maxReplicas of them; `what` names them in a rejection. */
function readSignedVotes(reader: ByteReader, limits: Limits, what: string): CheckpointVote[] {
  const count = readCount(reader, limits, 'maxReplicas', what, MINIMUM_BYTES.vote);
  const votes: CheckpointVote[] = [];
  for (let index = 0; index < count; index++) {
    const voter = readReplicaId(reader, limits, 'vote replica id');
    const epoch = readKeyEpoch(reader, 'vote key epoch');
    votes.push({ replicaId: voter, keyEpoch: epoch, signature: readSignature(reader, 'vote signature') });
  }
  return votes;
}

export function writeCheckpointCertificate(writer: ByteWriter, certificate: CheckpointCertificate): void {
  writer.varuint(certificate.sequence);
  writeDigest(writer, certificate.stateRoot);
  writeSignedVotes(writer, certificate.votes);
}

/** Reads what writeCheckpointCertificate wrote. Throws DecodeError. */
export function readCheckpointCertificate(reader: ByteReader, limits: Limits): CheckpointCertificate {
  const sequence = readSequence(reader, 'certificate sequence');
  const stateRoot = readDigest(reader, 'certificate state root');
  return { sequence, stateRoot, votes: readSignedVotes(reader, limits, 'certificate votes') };
}

function writeCheckpointBody(writer: ByteWriter, message: Checkpoint): void {
  writer.varuint(message.sequence);
  writeDigest(writer, message.stateRoot);
  writer.u16(message.replicaId);
  writer.varuint(message.keyEpoch);
  writeSignature(writer, message.signature);
}

function readCheckpointBody(reader: ByteReader, limits: Limits): Checkpoint {
  const sequence = readSequence(reader, 'checkpoint sequence');
  const stateRoot = readDigest(reader, 'checkpoint state root');
  const sender = readReplicaId(reader, limits, 'checkpoint replica id');
  const epoch = readKeyEpoch(reader, 'checkpoint key epoch');
  const signed = readSignature(reader, 'checkpoint signature');
  return { kind: 'checkpoint', sequence, stateRoot, replicaId: sender, keyEpoch: epoch, signature: signed };
}

/**
 * Two vote sets, the equivocations (accused u16, two proposals), the culprits (u16 each) and the
 * other evidence (each as encodeEvidence writes it).
 */
export function writeForensicProof(writer: ByteWriter, proof: ForensicProof): void {
  writeCheckpointCertificate(writer, proof.first);
  writeCheckpointCertificate(writer, proof.second);
  writer.varuint(proof.equivocations.length);
  for (const equivocation of proof.equivocations) {
    writer.u16(equivocation.accused);
    writeSignedProposal(writer, equivocation.first);
    writeSignedProposal(writer, equivocation.second);
  }
  writer.varuint(proof.culprits.length);
  for (const culprit of proof.culprits) writer.u16(culprit);
  writer.varuint(proof.otherEvidence.length);
  for (const evidence of proof.otherEvidence) writeEvidenceBody(writer, evidence);
}

/**
 * Reads what writeForensicProof wrote (equivocations, culprits and other evidence at most
 * maxReplicas each). Throws DecodeError.
 */
export function readForensicProof(reader: ByteReader, limits: Limits): ForensicProof {
  const first = readCheckpointCertificate(reader, limits);
  const second = readCheckpointCertificate(reader, limits);
  const equivocationCount = readCount(reader, limits, 'maxReplicas', 'forensic equivocations', 2);
  const equivocations: EquivocationEvidence[] = [];
  for (let index = 0; index < equivocationCount; index++) {
    const accused = readReplicaId(reader, limits, 'equivocating replica id');
    const firstProposal = readSignedProposal(reader);
    equivocations.push({
      kind: 'equivocation',
      accused,
      first: firstProposal,
      second: readSignedProposal(reader),
    });
  }
  const count = readCount(reader, limits, 'maxReplicas', 'forensic culprits', 2);
  const culprits: ReplicaId[] = [];
  for (let index = 0; index < count; index++)
    culprits.push(readReplicaId(reader, limits, 'culprit replica id'));
  const otherEvidence: OtherEvidence[] = [];
  const otherCount = readCount(reader, limits, 'maxReplicas', 'forensic other evidence', 3);
  for (let index = 0; index < otherCount; index++) {
    const evidence = readEvidenceBody(reader, limits);
    if (evidence.kind === 'equivocation')
      reader.fail("an equivocation among a forensic proof's other evidence (it has its own list)");
    else otherEvidence.push(evidence);
  }
  return { first, second, equivocations, culprits, otherEvidence };
}

function readCertificateHistory(reader: ByteReader, limits: Limits): CertificateHistory {
  const count = readCount(
    reader,
    limits,
    'maxCertificateHistory',
    'history certificates',
    MINIMUM_BYTES.certificate,
  );
  const certificates: CheckpointCertificate[] = [];
  for (let index = 0; index < count; index++) certificates.push(readCheckpointCertificate(reader, limits));
  return { kind: 'certificate-history', certificates };
}

function writeLogEntries(writer: ByteWriter, entries: readonly (PreparedEntry | PrePreparedEntry)[]): void {
  writer.varuint(entries.length);
  for (let index = 0; index < entries.length; index++) {
    const entry = entries[index]!;
    writer.varuint(entry.sequence);
    writer.varuint(entry.view);
    writeDigest(writer, entry.batchDigest);
  }
}

/** P- and Q-set entries share one shape. */
function readLogEntries(reader: ByteReader, limits: Limits, what: string): PreparedEntry[] {
  const count = readCount(reader, limits, 'maxViewChangeEntries', what, MINIMUM_BYTES.logEntry);
  const entries: PreparedEntry[] = [];
  for (let index = 0; index < count; index++) {
    const sequence = readSequence(reader, 'entry sequence');
    const view = readView(reader, 'entry view');
    entries.push({ sequence, view, batchDigest: readDigest(reader, 'entry batch digest') });
  }
  return entries;
}

/**
 * Every field of a view change except its signature: shared by the message encoding and by
 * viewChangePayload (the bytes that signature covers).
 */
export function writeViewChangeUnsigned(writer: ByteWriter, message: ViewChange): void {
  writer.varuint(message.newView);
  writer.u16(message.replicaId);
  writeCheckpointCertificate(writer, message.checkpoint);
  writeLogEntries(writer, message.prepared);
  writeLogEntries(writer, message.prePrepared);
  writer.varuint(message.keyEpoch);
}

/** Body of a view change (no tag), signature included: also the element of NEW-VIEW. */
export function writeViewChange(writer: ByteWriter, message: ViewChange): void {
  writeViewChangeUnsigned(writer, message);
  writeSignature(writer, message.signature);
}

/** Reads what writeViewChange wrote. Throws DecodeError. */
export function readViewChange(reader: ByteReader, limits: Limits): ViewChange {
  const newView = readView(reader, 'new view');
  const sender = readReplicaId(reader, limits, 'view change replica id');
  const checkpoint = readCheckpointCertificate(reader, limits);
  const prepared = readLogEntries(reader, limits, 'prepared entries');
  const prePrepared = readLogEntries(reader, limits, 'pre-prepared entries');
  const epoch = readKeyEpoch(reader, 'view change key epoch');
  const signed = readSignature(reader, 'view change signature');
  return {
    kind: 'view-change',
    newView,
    replicaId: sender,
    checkpoint,
    prepared,
    prePrepared,
    keyEpoch: epoch,
    signature: signed,
  };
}

/** Every field of a new view except its signature (see newViewPayload). */
export function writeNewViewUnsigned(writer: ByteWriter, message: NewView): void {
  writer.varuint(message.view);
  writer.u16(message.replicaId);
  const viewChanges = message.viewChanges;
  writer.varuint(viewChanges.length);
  for (let index = 0; index < viewChanges.length; index++) writeViewChange(writer, viewChanges[index]!);
  writer.varuint(message.keyEpoch);
}

// ───────────────────────────── messages ─────────────────────────────

function writeReply(writer: ByteWriter, message: Reply): void {
  writer.varuint(message.view);
  writer.u16(message.replicaId);
  writer.string(message.clientId);
  writer.varuint(message.requestNumber);
  writer.bool(message.readOnly);
  writer.varuint(message.sequence);
  writer.u8(message.status === 'ok' ? REPLY_STATUS_OK : REPLY_STATUS_ERROR);
  writer.lengthPrefixedBytes(message.result);
  const proof = message.proof;
  writer.bool(proof !== null);
  if (proof !== null) {
    writer.varuint(proof.keyEpoch);
    writeSignature(writer, proof.signature);
    writer.varuint(proof.leafIndex);
    writer.varuint(proof.leafCount);
    writer.varuint(proof.path.length);
    for (const node of proof.path) writeDigest(writer, node);
  }
}

function readReplyProof(reader: ByteReader, limits: Limits): ReplyProof {
  const keyEpoch = readKeyEpoch(reader, 'reply proof key epoch');
  const signature = readSignature(reader, 'reply proof signature');
  const leafIndex = reader.varuint('reply proof leaf index');
  const leafCount = reader.varuint('reply proof leaf count');
  if (leafCount === 0 || leafIndex >= leafCount)
    reader.fail(`reply proof leaf ${leafIndex} outside a batch of ${leafCount}`);
  const depth = readCount(reader, limits, 'maxReplyProofDepth', 'reply proof path', DIGEST_BYTES);
  const path: Digest[] = [];
  for (let index = 0; index < depth; index++) path.push(readDigest(reader, 'reply proof node'));
  return { keyEpoch, signature, leafIndex, leafCount, path };
}

function readReply(reader: ByteReader, limits: Limits): Reply {
  const view = readView(reader, 'reply view');
  const sender = readReplicaId(reader, limits, 'reply replica id');
  const client = readClientId(reader, limits);
  const number = requestNumber(reader.varuint('request number'));
  const readOnly = reader.bool('read-only flag');
  const sequence = readSequence(reader, 'reply sequence');
  const statusByte = reader.u8('reply status');
  let status: ReplyStatus;
  if (statusByte === REPLY_STATUS_OK) status = 'ok';
  else if (statusByte === REPLY_STATUS_ERROR) status = 'error';
  else return reader.fail(`reply status must be 0 (ok) or 1 (error), got ${statusByte}`);
  const result = reader.lengthPrefixedBytes(limits.maxResultBytes, 'result', 'maxResultBytes');
  const proof = reader.bool('reply proof flag') ? readReplyProof(reader, limits) : null;
  return {
    kind: 'reply',
    proof,
    view,
    replicaId: sender,
    clientId: client,
    requestNumber: number,
    readOnly,
    sequence,
    status,
    result,
  };
}

function writePrePrepare(writer: ByteWriter, message: PrePrepare): void {
  writer.varuint(message.view);
  writer.varuint(message.sequence);
  writeDigest(writer, message.batchDigest);
  writeRequestList(writer, message.batch);
  writer.varuint(message.keyEpoch);
  writeSignature(writer, message.signature);
}

function readPrePrepare(reader: ByteReader, limits: Limits): PrePrepare {
  const view = readView(reader, 'view');
  const sequence = readSequence(reader, 'sequence');
  const batchDigest = readDigest(reader, 'batch digest');
  const batch = readBatch(reader, limits);
  const epoch = readKeyEpoch(reader, 'key epoch');
  const signed = readSignature(reader, 'proposal signature');
  return { kind: 'pre-prepare', view, sequence, batchDigest, batch, keyEpoch: epoch, signature: signed };
}

function writePrepare(writer: ByteWriter, message: Prepare): void {
  writer.varuint(message.view);
  writer.varuint(message.sequence);
  writeDigest(writer, message.batchDigest);
  writer.u16(message.replicaId);
  writer.varuint(message.proposalKeyEpoch);
  writeSignature(writer, message.proposalSignature);
}

function readPrepare(reader: ByteReader, limits: Limits): Prepare {
  const view = readView(reader, 'view');
  const sequence = readSequence(reader, 'sequence');
  const batchDigest = readDigest(reader, 'batch digest');
  const sender = readReplicaId(reader, limits, 'replica id');
  const proposalKeyEpoch = readKeyEpoch(reader, 'proposal key epoch');
  const proposalSignature = readSignature(reader, 'proposal signature');
  return {
    kind: 'prepare',
    view,
    sequence,
    batchDigest,
    replicaId: sender,
    proposalKeyEpoch,
    proposalSignature,
  };
}

function writeCommit(writer: ByteWriter, message: Commit): void {
  writer.varuint(message.view);
  writer.varuint(message.sequence);
  writeDigest(writer, message.batchDigest);
  writer.u16(message.replicaId);
  writer.varuint(message.keyEpoch);
  writeSignature(writer, message.signature);
}

function readCommit(reader: ByteReader, limits: Limits): Commit {
  const view = readView(reader, 'view');
  const sequence = readSequence(reader, 'sequence');
  const batchDigest = readDigest(reader, 'batch digest');
  const sender = readReplicaId(reader, limits, 'replica id');
  const epoch = readKeyEpoch(reader, 'commit key epoch');
  const signed = readSignature(reader, 'commit signature');
  return {
    kind: 'commit',
    view,
    sequence,
    batchDigest,
    replicaId: sender,
    keyEpoch: epoch,
    signature: signed,
  };
}

function writeCommitCertificate(writer: ByteWriter, message: CommitCertificate): void {
  writer.varuint(message.view);
  writer.varuint(message.sequence);
  writeDigest(writer, message.batchDigest);
  writeSignedVotes(writer, message.commits);
}

function readCommitCertificate(reader: ByteReader, limits: Limits): CommitCertificate {
  const view = readView(reader, 'commit certificate view');
  const sequence = readSequence(reader, 'commit certificate sequence');
  const batchDigest = readDigest(reader, 'commit certificate batch digest');
  const commits = readSignedVotes(reader, limits, 'commit certificate commits');
  return { kind: 'commit-certificate', view, sequence, batchDigest, commits };
}

function writeDecided(writer: ByteWriter, message: Decided): void {
  writer.varuint(message.sequence);
  writeDigest(writer, message.batchDigest);
  writer.u16(message.replicaId);
}

function readDecided(reader: ByteReader, limits: Limits): Decided {
  const sequence = readSequence(reader, 'sequence');
  const batchDigest = readDigest(reader, 'batch digest');
  const sender = readReplicaId(reader, limits, 'replica id');
  return { kind: 'decided', sequence, batchDigest, replicaId: sender };
}

function readNewView(reader: ByteReader, limits: Limits): NewView {
  const view = readView(reader, 'view');
  const sender = readReplicaId(reader, limits, 'replica id');
  const count = readCount(reader, limits, 'maxReplicas', 'view changes', MINIMUM_BYTES.viewChange);
  const viewChanges: ViewChange[] = [];
  for (let index = 0; index < count; index++) viewChanges.push(readViewChange(reader, limits));
  const epoch = readKeyEpoch(reader, 'key epoch');
  const signed = readSignature(reader, 'new view signature');
  return { kind: 'new-view', view, replicaId: sender, viewChanges, keyEpoch: epoch, signature: signed };
}

function readForwardedRequests(reader: ByteReader, limits: Limits): ForwardedRequests {
  const count = readCount(
    reader,
    limits,
    'maxForwardedRequests',
    'forwarded requests',
    MINIMUM_BYTES.request,
  );
  const requests: ClientRequest[] = [];
  for (let index = 0; index < count; index++) requests.push(readClientRequest(reader, limits));
  return { kind: 'forward', requests };
}

function writeRequestAcknowledgement(writer: ByteWriter, message: RequestAcknowledgement): void {
  writer.varuint(message.view);
  writer.varuint(message.requests.length);
  for (const entry of message.requests) {
    writer.string(entry.clientId);
    writer.varuint(entry.requestNumber);
    writeDigest(writer, entry.requestDigest);
  }
}

function readRequestAcknowledgement(reader: ByteReader, limits: Limits): RequestAcknowledgement {
  const view = readView(reader, 'view');
  const count = readCount(
    reader,
    limits,
    'maxAcknowledgedRequests',
    'acknowledged requests',
    MINIMUM_BYTES.acknowledgedRequest,
  );
  const requests: AcknowledgedRequest[] = [];
  for (let index = 0; index < count; index++) {
    const clientId = readClientId(reader, limits);
    const number = requestNumber(reader.varuint('request number'));
    requests.push({ clientId, requestNumber: number, requestDigest: readDigest(reader, 'request digest') });
  }
  return { kind: 'request-ack', view, requests };
}

function writeStatus(writer: ByteWriter, message: Status): void {
  writer.u16(message.replicaId);
  writer.varuint(message.view);
  writer.bool(message.viewChangeInProgress);
  writer.varuint(message.lastExecuted);
  writer.varuint(message.stableCheckpoint);
}

function readStatus(reader: ByteReader, limits: Limits): Status {
  const sender = readReplicaId(reader, limits, 'replica id');
  const view = readView(reader, 'view');
  const viewChangeInProgress = reader.bool('view change flag');
  const lastExecuted = readSequence(reader, 'last executed');
  const stableCheckpoint = readSequence(reader, 'stable checkpoint');
  return { kind: 'status', replicaId: sender, view, viewChangeInProgress, lastExecuted, stableCheckpoint };
}

function readBatchRequest(reader: ByteReader): BatchRequest {
  const sequence = readSequence(reader, 'sequence');
  return { kind: 'batch-request', sequence, batchDigest: readDigest(reader, 'batch digest') };
}

function readBatchMessage(reader: ByteReader, limits: Limits): Batch {
  const sequence = readSequence(reader, 'sequence');
  const batchDigest = readDigest(reader, 'batch digest');
  return { kind: 'batch', sequence, batchDigest, batch: readBatch(reader, limits) };
}

function readManifest(reader: ByteReader, limits: Limits): Manifest {
  const sequence = readSequence(reader, 'sequence');
  const count = readCount(reader, limits, 'maxManifestLeaves', 'manifest leaves', DIGEST_BYTES);
  const leaves: Digest[] = [];
  for (let index = 0; index < count; index++) leaves.push(readDigest(reader, 'manifest leaf'));
  return { kind: 'manifest', sequence, leaves };
}

function readChunkRequest(reader: ByteReader, limits: Limits): ChunkRequest {
  const sequence = readSequence(reader, 'sequence');
  const count = readCount(reader, limits, 'maxChunkIndicesPerRequest', 'chunk indices', 1);
  const indices: number[] = [];
  for (let index = 0; index < count; index++) indices.push(readChunkIndex(reader, limits, 'chunk index'));
  return { kind: 'chunk-request', sequence, indices };
}

function readChunk(reader: ByteReader, limits: Limits): Chunk {
  const sequence = readSequence(reader, 'sequence');
  const index = readChunkIndex(reader, limits, 'chunk index');
  const data = reader.lengthPrefixedBytes(limits.maxChunkBytes, 'chunk data', 'maxChunkBytes');
  return { kind: 'chunk', sequence, index, data };
}

function writeMessageBody(writer: ByteWriter, message: WireMessage): void {
  writer.u8(MESSAGE_TAGS[message.kind]);
  switch (message.kind) {
    case 'request':
      writeClientRequest(writer, message);
      break;
    case 'reply':
      writeReply(writer, message);
      break;
    case 'pre-prepare':
      writePrePrepare(writer, message);
      break;
    case 'prepare':
      writePrepare(writer, message);
      break;
    case 'commit':
      writeCommit(writer, message);
      break;
    case 'checkpoint':
      writeCheckpointBody(writer, message);
      break;
    case 'view-change':
      writeViewChange(writer, message);
      break;
    case 'new-view':
      writeNewViewUnsigned(writer, message);
      writeSignature(writer, message.signature);
      break;
    case 'forward':
      writeRequestList(writer, message.requests);
      break;
    case 'request-ack':
      writeRequestAcknowledgement(writer, message);
      break;
    case 'status':
      writeStatus(writer, message);
      break;
    case 'batch-request':
      writer.varuint(message.sequence);
      writeDigest(writer, message.batchDigest);
      break;
    case 'batch':
      writer.varuint(message.sequence);
      writeDigest(writer, message.batchDigest);
      writeRequestList(writer, message.batch);
      break;
    case 'checkpoint-proof':
      writeCheckpointCertificate(writer, message.certificate);
      break;
    case 'manifest-request':
      writer.varuint(message.sequence);
      break;
    case 'manifest':
      writer.varuint(message.sequence);
      writer.varuint(message.leaves.length);
      for (let index = 0; index < message.leaves.length; index++) writeDigest(writer, message.leaves[index]!);
      break;
    case 'chunk-request':
      writer.varuint(message.sequence);
      writer.varuint(message.indices.length);
      for (let index = 0; index < message.indices.length; index++) writer.varuint(message.indices[index]!);
      break;
    case 'chunk':
      writer.varuint(message.sequence);
      writer.varuint(message.index);
      writer.lengthPrefixedBytes(message.data);
      break;
    case 'state-unavailable':
      writer.varuint(message.sequence);
      writeCheckpointCertificate(writer, message.newest);
      break;
    case 'decided':
      writeDecided(writer, message);
      break;
    case 'key-announcement':
      writer.varuint(message.certificates.length);
      for (const certificate of message.certificates) writeKeyCertificate(writer, certificate);
      break;
    case 'evidence-report':
      writeEvidenceBody(writer, message.evidence);
      break;
    case 'certificate-history':
      writer.varuint(message.certificates.length);
      for (const certificate of message.certificates) writeCheckpointCertificate(writer, certificate);
      break;
    case 'fork-proof':
      writeForensicProof(writer, message.proof);
      break;
    case 'commit-certificate':
      writeCommitCertificate(writer, message);
      break;
    default:
      unknownKind(message);
  }
}

function unknownKind(value: never): never {
  throw new InvariantViolation(`cannot encode unknown kind ${(value as { kind?: unknown }).kind}`);
}

/** Tag → kind, for decoding and for naming the message in rejection reasons. */
const KIND_BY_TAG = new Map<number, WireMessage['kind']>(
  (Object.entries(MESSAGE_TAGS) as [WireMessage['kind'], number][]).map(([kind, tag]) => [tag, kind]),
);

function readMessageBody(reader: ByteReader, kind: WireMessage['kind'], limits: Limits): WireMessage {
  switch (kind) {
    case 'request':
      return readClientRequest(reader, limits);
    case 'reply':
      return readReply(reader, limits);
    case 'pre-prepare':
      return readPrePrepare(reader, limits);
    case 'prepare':
      return readPrepare(reader, limits);
    case 'commit':
      return readCommit(reader, limits);
    case 'checkpoint':
      return readCheckpointBody(reader, limits);
    case 'view-change':
      return readViewChange(reader, limits);
    case 'new-view':
      return readNewView(reader, limits);
    case 'forward':
      return readForwardedRequests(reader, limits);
    case 'request-ack':
      return readRequestAcknowledgement(reader, limits);
    case 'status':
      return readStatus(reader, limits);
    case 'batch-request':
      return readBatchRequest(reader);
    case 'batch':
      return readBatchMessage(reader, limits);
    case 'checkpoint-proof':
      return { kind: 'checkpoint-proof', certificate: readCheckpointCertificate(reader, limits) };
    case 'manifest-request':
      return { kind: 'manifest-request', sequence: readSequence(reader, 'sequence') };
    case 'manifest':
      return readManifest(reader, limits);
    case 'chunk-request':
      return readChunkRequest(reader, limits);
    case 'chunk':
      return readChunk(reader, limits);
    case 'state-unavailable': {
      const sequence = readSequence(reader, 'sequence');
      return { kind: 'state-unavailable', sequence, newest: readCheckpointCertificate(reader, limits) };
    }
    case 'decided':
      return readDecided(reader, limits);
    case 'key-announcement': {
      const count = readCount(reader, limits, 'maxReplicas', 'key certificates', 64);
      const certificates: KeyCertificate[] = [];
      for (let index = 0; index < count; index++) certificates.push(readKeyCertificate(reader, limits));
      return { kind: 'key-announcement', certificates };
    }
    case 'evidence-report':
      return { kind: 'evidence-report', evidence: readEvidenceBody(reader, limits) };
    case 'certificate-history':
      return readCertificateHistory(reader, limits);
    case 'fork-proof':
      return { kind: 'fork-proof', proof: readForensicProof(reader, limits) };
    case 'commit-certificate':
      return readCommitCertificate(reader, limits);
    default:
      return unknownKind(kind);
  }
}

/** Encodes a message as a tag byte plus its fields. Throws InvariantViolation on a malformed value. */
export function encodeMessage(message: WireMessage): Uint8Array {
  return encodeToBytes(message, writeMessageBody);
}

/** Turns a caught exception into the reason of a rejection: decoders must never throw. */
function rejection(context: string, error: unknown): { readonly ok: false; readonly reason: string } {
  if (error instanceof DecodeError) return { ok: false, reason: `${context}: ${error.message}` };
  // Not expected (the readers validate before calling the brand constructors), but a bug here
  // must still not let hostile input crash the replica.
  const detail = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  return { ok: false, reason: `${context}: unexpected decoder failure: ${detail}` };
}

function frameTooLarge(bytes: Uint8Array, limits: Limits): string | null {
  return bytes.length > limits.maxFrameBytes
    ? `input of ${bytes.length} bytes exceeds maxFrameBytes (${limits.maxFrameBytes})`
    : null;
}

/**
 * Decodes one complete message. Never throws: any malformed, truncated, oversized or trailing
 * input yields `{ ok: false, reason }`. Byte fields of the result are views of `bytes`.
 */
export function decodeMessage(bytes: Uint8Array, limits: Limits = LIMITS): DecodeResult<WireMessage> {
  let context = 'message';
  try {
    const tooLarge = frameTooLarge(bytes, limits);
    if (tooLarge !== null) return { ok: false, reason: `${context}: ${tooLarge}` };
    const reader = new ByteReader(bytes);
    const tag = reader.u8('message tag');
    const kind = KIND_BY_TAG.get(tag);
    if (kind === undefined) return reader.fail(`unknown message tag 0x${tag.toString(16).padStart(2, '0')}`);
    context = kind;
    const value = readMessageBody(reader, kind, limits);
    reader.expectEnd(kind);
    return { ok: true, value };
  } catch (error) {
    return rejection(context, error);
  }
}

// ───────────────────────────── evidence ─────────────────────────────

function writeSignedProposal(writer: ByteWriter, proposal: SignedProposal): void {
  writer.varuint(proposal.view);
  writer.varuint(proposal.sequence);
  writeDigest(writer, proposal.batchDigest);
  writer.varuint(proposal.keyEpoch);
  writeSignature(writer, proposal.signature);
}

function readSignedProposal(reader: ByteReader): SignedProposal {
  const view = readView(reader, 'proposal view');
  const sequence = readSequence(reader, 'proposal sequence');
  const batchDigest = readDigest(reader, 'proposal batch digest');
  const epoch = readKeyEpoch(reader, 'proposal key epoch');
  const signed = readSignature(reader, 'proposal signature');
  return { view, sequence, batchDigest, keyEpoch: epoch, signature: signed };
}

function writeEvidenceBody(writer: ByteWriter, evidence: Evidence): void {
  writer.u8(EVIDENCE_TAGS[evidence.kind]);
  writer.u16(evidence.accused);
  switch (evidence.kind) {
    case 'equivocation':
      writeSignedProposal(writer, evidence.first);
      writeSignedProposal(writer, evidence.second);
      break;
    case 'conflicting-checkpoint':
      writeCheckpointCertificate(writer, evidence.certificate);
      writeCheckpointBody(writer, evidence.vote);
      break;
    case 'lying-reply':
      writeReply(writer, evidence.reply);
      writer.varuint(evidence.certified.length);
      for (const reply of evidence.certified) writeReply(writer, reply);
      break;
    case 'invalid-new-view':
      writeNewViewUnsigned(writer, evidence.newView);
      writeSignature(writer, evidence.newView.signature);
      break;
    case 'double-commit':
      // The same five fields as a signed proposal (view, sequence, digest, epoch, signature).
      writeSignedProposal(writer, evidence.first);
      writeSignedProposal(writer, evidence.second);
      break;
    default:
      unknownKind(evidence);
  }
}

function readEvidenceBody(reader: ByteReader, limits: Limits): Evidence {
  const tag = reader.u8('evidence tag');
  if (tag === EVIDENCE_TAGS.equivocation) {
    const accused = readReplicaId(reader, limits, 'accused replica id');
    const first = readSignedProposal(reader);
    return { kind: 'equivocation', accused, first, second: readSignedProposal(reader) };
  }
  if (tag === EVIDENCE_TAGS['conflicting-checkpoint']) {
    const accused = readReplicaId(reader, limits, 'accused replica id');
    const certificate = readCheckpointCertificate(reader, limits);
    return { kind: 'conflicting-checkpoint', accused, certificate, vote: readCheckpointBody(reader, limits) };
  }
  if (tag === EVIDENCE_TAGS['lying-reply']) {
    const accused = readReplicaId(reader, limits, 'accused replica id');
    const reply = readReply(reader, limits);
    const count = readCount(reader, limits, 'maxReplicas', 'certified replies', 8);
    const certified: Reply[] = [];
    for (let index = 0; index < count; index++) certified.push(readReply(reader, limits));
    return { kind: 'lying-reply', accused, reply, certified };
  }
  if (tag === EVIDENCE_TAGS['invalid-new-view']) {
    const accused = readReplicaId(reader, limits, 'accused replica id');
    return { kind: 'invalid-new-view', accused, newView: readNewView(reader, limits) };
  }
  if (tag === EVIDENCE_TAGS['double-commit']) {
    const accused = readReplicaId(reader, limits, 'accused replica id');
    const first = readSignedProposal(reader);
    return { kind: 'double-commit', accused, first, second: readSignedProposal(reader) };
  }
  return reader.fail(`unknown evidence tag 0x${tag.toString(16).padStart(2, '0')}`);
}

function writeKeyCertificate(writer: ByteWriter, certificate: KeyCertificate): void {
  writer.u16(certificate.replica);
  writer.varuint(certificate.keyEpoch);
  writer.bytes(certificate.signingKey);
  writer.bytes(certificate.agreementKey);
  writer.varuint(certificate.issuedAtMs);
  writeSignature(writer, certificate.signature);
}

function readKeyCertificate(reader: ByteReader, limits: Limits): KeyCertificate {
  const replica = readReplicaId(reader, limits, 'certified replica id');
  const keyEpoch = readKeyEpoch(reader, 'certified key epoch');
  const signingKey = reader.bytes(32, 'certified signing key');
  const agreementKey = reader.bytes(32, 'certified agreement key');
  const issuedAtMs = reader.varuint('certificate issue time');
  return {
    replica,
    keyEpoch,
    signingKey,
    agreementKey,
    issuedAtMs,
    signature: readSignature(reader, 'certificate signature'),
  };
}

export { writeKeyCertificate, readKeyCertificate, writeReply };

export function encodeEvidence(evidence: Evidence): Uint8Array {
  return encodeToBytes(evidence, writeEvidenceBody);
}

/** Decodes evidence as encodeEvidence wrote it. Never throws (see decodeMessage). */
export function decodeEvidence(bytes: Uint8Array, limits: Limits = LIMITS): DecodeResult<Evidence> {
  const context = 'evidence';
  try {
    const tooLarge = frameTooLarge(bytes, limits);
    if (tooLarge !== null) return { ok: false, reason: `${context}: ${tooLarge}` };
    const reader = new ByteReader(bytes);
    const value = readEvidenceBody(reader, limits);
    reader.expectEnd(context);
    return { ok: true, value };
  } catch (error) {
    return rejection(context, error);
  }
}
