/**
 * Canonical byte strings that digests, signatures and MACs are computed over.
 *
 * Each payload starts with a distinct domain tag (length-prefixed ASCII, so no tag is a prefix of
 * another's encoding): a signature or MAC made for one purpose can never be replayed as valid for
 * another, even where the remaining fields happen to have the same shape. After the tag, fields use
 * the wire primitives of `bytes.ts`; every field is self-delimiting, so distinct values always give
 * distinct payloads.
 *
 * These encodings are frozen by the `/v1` in their tags: changing what a payload covers means a
 * new tag, because old signatures (e.g. in stored evidence) must keep verifying.
 */
import type { Digest, ReplicaId, SequenceNumber, ViewNumber } from './ids.js';
import { type ByteWriter, encodeToBytes } from './bytes.js';
import { writeDigest, writeNewViewUnsigned, writeViewChangeUnsigned } from './codec.js';
import type { ClientRequest, KeyCertificate, NewView, Reply, ViewChange } from './types.js';

export const SIGNING_DOMAINS = {
  request: 'phalanx/request/v1',
  batch: 'phalanx/batch/v1',
  proposal: 'phalanx/proposal/v1',
  commit: 'phalanx/commit/v1',
  checkpoint: 'phalanx/checkpoint/v1',
  viewChange: 'phalanx/view-change/v1',
  newView: 'phalanx/new-view/v1',
  requestMac: 'phalanx/request-mac/v1',
  requestSignature: 'phalanx/request-signature/v1',
  reply: 'phalanx/reply/v1',
  replyBatch: 'phalanx/reply-batch/v1',
  keyCertificate: 'phalanx/key-certificate/v1',
} as const;

function writeDomain(writer: ByteWriter, domain: string): void {
  writer.string(domain);
}

function writeRequestContent(writer: ByteWriter, request: ClientRequest): void {
  writeDomain(writer, SIGNING_DOMAINS.request);
  writer.string(request.clientId);
  writer.varuint(request.requestNumber);
  writer.bool(request.readOnly);
  writer.lengthPrefixedBytes(request.operation);
}

/**
 * What identifies a request: client id, request number, read-only flag and operation. The
 * authenticator and signature are left out because they are computed over the digest of this.
 */
export function requestContent(request: ClientRequest): Uint8Array {
  return encodeToBytes(request, writeRequestContent);
}

function writeBatchContent(writer: ByteWriter, requestDigests: readonly Digest[]): void {
  writeDomain(writer, SIGNING_DOMAINS.batch);
  writer.varuint(requestDigests.length);
  for (let index = 0; index < requestDigests.length; index++) writeDigest(writer, requestDigests[index]!);
}

/** The ordered request digests of a batch; its hash is the batch digest. */
export function batchContent(requestDigests: readonly Digest[]): Uint8Array {
  return encodeToBytes(requestDigests, writeBatchContent);
}

interface ProposalFields {
  readonly view: ViewNumber;
  readonly sequence: SequenceNumber;
  readonly batchDigest: Digest;
}

/** A (view, sequence, batch digest) statement under `domain`: a proposal or a COMMIT. */
function slotStatementWriter(domain: string): (writer: ByteWriter, fields: ProposalFields) => void {
  return (writer, fields) => {
    writeDomain(writer, domain);
    writer.varuint(fields.view);
    writer.varuint(fields.sequence);
    writeDigest(writer, fields.batchDigest);
  };
}

const writeProposal = slotStatementWriter(SIGNING_DOMAINS.proposal);
const writeCommitStatement = slotStatementWriter(SIGNING_DOMAINS.commit);

/** What the leader signs in a PRE-PREPARE: two of these for one (view, sequence) prove equivocation. */
export function proposalPayload(view: ViewNumber, sequence: SequenceNumber, batchDigest: Digest): Uint8Array {
  return encodeToBytes({ view, sequence, batchDigest }, writeProposal);
}

/**
 * What a replica signs in a COMMIT: "I prepared batchDigest at (view, sequence)". A correct replica
 * prepares one batch per (view, sequence), so two of these with different digests prove it faulty,
 * and two commit quorums for one (view, sequence) share f + 1 such replicas (docs/intrusion-tolerance.md, Beyond f).
 */
export function commitPayload(view: ViewNumber, sequence: SequenceNumber, batchDigest: Digest): Uint8Array {
  return encodeToBytes({ view, sequence, batchDigest }, writeCommitStatement);
}

interface CheckpointFields {
  readonly sequence: SequenceNumber;
  readonly stateRoot: Digest;
}

function writeCheckpoint(writer: ByteWriter, checkpoint: CheckpointFields): void {
  writeDomain(writer, SIGNING_DOMAINS.checkpoint);
  writer.varuint(checkpoint.sequence);
  writeDigest(writer, checkpoint.stateRoot);
}

/** What a replica signs in a CHECKPOINT (and what each certificate vote covers). */
export function checkpointPayload(sequence: SequenceNumber, stateRoot: Digest): Uint8Array {
  return encodeToBytes({ sequence, stateRoot }, writeCheckpoint);
}

function writeViewChangePayload(writer: ByteWriter, message: ViewChange): void {
  writeDomain(writer, SIGNING_DOMAINS.viewChange);
  writeViewChangeUnsigned(writer, message);
}

/** Every field of a VIEW-CHANGE except its signature, key epoch included. */
export function viewChangePayload(message: ViewChange): Uint8Array {
  return encodeToBytes(message, writeViewChangePayload);
}

function writeNewViewPayload(writer: ByteWriter, message: NewView): void {
  writeDomain(writer, SIGNING_DOMAINS.newView);
  writeNewViewUnsigned(writer, message);
}

/**
 * Every field of a NEW-VIEW except its signature. The embedded view changes are covered whole,
 * their signatures included, so the new leader commits to exactly the proof it relayed.
 */
export function newViewPayload(message: NewView): Uint8Array {
  return encodeToBytes(message, writeNewViewPayload);
}

interface RequestMacFields {
  readonly requestDigest: Digest;
  readonly replica: ReplicaId;
}

function writeRequestMac(writer: ByteWriter, fields: RequestMacFields): void {
  writeDomain(writer, SIGNING_DOMAINS.requestMac);
  writeDigest(writer, fields.requestDigest);
  writer.u16(fields.replica);
}

/**
 * What a client MACs for replica `replica` (authenticator entry `replica`). Naming the replica
 * keeps one entry from being moved to another slot, even if two keys were ever equal.
 */
export function requestMacPayload(requestDigest: Digest, replica: ReplicaId): Uint8Array {
  return encodeToBytes({ requestDigest, replica }, writeRequestMac);
}

function writeRequestSignature(writer: ByteWriter, requestDigest: Digest): void {
  writeDomain(writer, SIGNING_DOMAINS.requestSignature);
  writeDigest(writer, requestDigest);
}

/** What a client signs for a request (optional, Aardvark-style): the tagged request digest. */
export function requestSignaturePayload(requestDigest: Digest): Uint8Array {
  return encodeToBytes(requestDigest, writeRequestSignature);
}

function writeReplyContent(writer: ByteWriter, reply: Reply): void {
  writeDomain(writer, SIGNING_DOMAINS.reply);
  writer.string(reply.clientId);
  writer.varuint(reply.requestNumber);
  writer.varuint(reply.sequence);
  writer.bool(reply.status === 'ok');
  writer.lengthPrefixedBytes(reply.result);
}

/**
 * What a reply says, whoever sent it: client, request number, sequence, status and result. A
 * replica's reply proof signs the Merkle root over the hashes of these for a whole batch.
 */
export function replyContent(reply: Reply): Uint8Array {
  return encodeToBytes(reply, writeReplyContent);
}

function writeReplyBatch(writer: ByteWriter, fields: { sequence: SequenceNumber; root: Digest }): void {
  writeDomain(writer, SIGNING_DOMAINS.replyBatch);
  writer.varuint(fields.sequence);
  writeDigest(writer, fields.root);
}

/** What a replica signs once per executed batch: the sequence and the root over its replies. */
export function replyBatchPayload(sequence: SequenceNumber, root: Digest): Uint8Array {
  return encodeToBytes({ sequence, root }, writeReplyBatch);
}

function writeKeyCertificateContent(writer: ByteWriter, certificate: KeyCertificate): void {
  writeDomain(writer, SIGNING_DOMAINS.keyCertificate);
  writer.u16(certificate.replica);
  writer.varuint(certificate.keyEpoch);
  writer.bytes(certificate.signingKey);
  writer.bytes(certificate.agreementKey);
  writer.varuint(certificate.issuedAtMs);
}

/** What a guardian signs with its identity key to certify a key epoch's session keys. */
export function keyCertificatePayload(certificate: KeyCertificate): Uint8Array {
  return encodeToBytes(certificate, writeKeyCertificateContent);
}
