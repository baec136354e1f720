/**
 * Building blocks shared by the storage engines: the binary codec of DurableRecord and of the
 * checkpoint manifest, the checksummed frame every stored value travels in, and the group-commit
 * queue that turns many concurrent `flush()` calls into one fsync.
 *
 * Record payload (version 1; the tag byte is part of the on-disk format: never renumber):
 *
 *   0x01 view          varuint view, bool viewChangeInProgress
 *   0x05 view, bounded varuint view, bool viewChangeInProgress, varuint voteBound: a view record
 *                      that also says up to which sequence the replica may have voted in the view
 *                      (DurableRecord 'view'.voteBound); written when voteBound is present
 *   0x06 view, amnesiac varuint view: the view record of a process that started amnesiac and has
 *                      not voted since (DurableRecord 'view'.amnesiac); never in a view change
 *   0x02 pre-prepare   the PRE-PREPARE as encodeMessage writes it (its own tag byte included)
 *   0x03 prepared      varuint view, varuint sequence, batch digest (32 bytes)
 *   0x04 committed     varuint view, varuint sequence, batch digest, bool hasBatch,
 *                      then, if hasBatch, a BATCH message (encodeMessage) with the same sequence
 *                      and digest: the codec's request-list encoding is reused through it
 *   0x07 safe-mode     the FORK-PROOF message carrying the proof (encodeMessage, its own tag byte
 *                      included)
 *
 * Manifest payload: the checkpoint certificate (writeCheckpointCertificate), varuint leaf count,
 * then the leaf digests (32 bytes each).
 *
 * Frame: [u32 payload length][u32 CRC-32][payload], big-endian. The CRC (IEEE, zlib's) covers the
 * four length bytes and the payload, so a damaged length is caught even when the bytes it points
 * to happen to look valid. Lengths are checked against a named limit before anything is read or
 * allocated.
 *
 * Decoding never throws on bad input: every decoder returns a DecodeResult, because what comes
 * back from a disk is as untrusted as what comes from a network (bit rot, torn writes).
 */
import { createHash } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { type DurableRecord, recordSequence, type StoredCheckpoint } from '../core/actions.js';
import {
  bytesEqual,
  DIGEST_BYTES,
  type Digest,
  digest,
  InvariantViolation,
  sequenceNumber,
  toHex,
  type ViewNumber,
  viewNumber,
} from '../messages/ids.js';
import { leafDigest } from '../core/merkle.js';
import type { RestoredState } from '../core/replica.js';
import { ByteReader, ByteWriter, DecodeError } from '../messages/bytes.js';
import {
  type DecodeResult,
  decodeMessage,
  encodeMessage,
  readCheckpointCertificate,
  readDigest,
  writeCheckpointCertificate,
  writeDigest,
} from '../messages/codec.js';
import { LIMITS } from '../messages/limits.js';
import type { CheckpointCertificate } from '../messages/types.js';

export const RECORD_TAGS = {
  view: 0x01,
  'pre-prepare': 0x02,
  prepared: 0x03,
  committed: 0x04,
  'safe-mode': 0x07,
} as const satisfies Record<DurableRecord['kind'], number>;

/** A view record carrying a vote bound (see the format above). */
export const BOUNDED_VIEW_RECORD_TAG = 0x05;
/** The tag of an amnesiac view record (DurableRecord 'view'.amnesiac). */
export const AMNESIAC_VIEW_RECORD_TAG = 0x06;

/** [u32 length][u32 crc32] in front of every payload. */
export const FRAME_HEADER_BYTES = 8;

/**
 * Largest record payload: a tag, a few varuints and a digest around one message no larger than
 * the largest wire frame (the decoder rejects anything bigger, so nothing larger can be valid).
 */
export const MAX_RECORD_PAYLOAD_BYTES = LIMITS.maxFrameBytes + 64;

/** Largest manifest payload: a certificate with maxReplicas votes plus maxManifestLeaves leaves. */
export const MAX_MANIFEST_PAYLOAD_BYTES =
  64 + LIMITS.maxReplicas * (2 + 9 + 64) + 9 + LIMITS.maxManifestLeaves * DIGEST_BYTES;

/** Largest chunk read back from disk; a larger one is corrupt by definition. */
export const MAX_CHUNK_BYTES = LIMITS.maxChunkBytes;

// ───────────────────────────── record codec ─────────────────────────────

export { recordSequence };

function writeRecord(writer: ByteWriter, record: DurableRecord): void {
  if (record.kind === 'view' && record.amnesiac === true) {
    if (record.voteBound !== undefined || record.viewChangeInProgress)
      throw new InvariantViolation('an amnesiac view record has no vote bound and no view change');
    writer.u8(AMNESIAC_VIEW_RECORD_TAG);
    writer.varuint(record.view);
    return;
  }
  if (record.kind === 'view' && record.voteBound !== undefined) {
    writer.u8(BOUNDED_VIEW_RECORD_TAG);
    writer.varuint(record.view);
    writer.bool(record.viewChangeInProgress);
    writer.varuint(record.voteBound);
    return;
  }
  writer.u8(RECORD_TAGS[record.kind]);
  switch (record.kind) {
    case 'view':
      writer.varuint(record.view);
      writer.bool(record.viewChangeInProgress);
      return;
    case 'pre-prepare':
      writer.bytes(encodeMessage(record.message));
      return;
    case 'prepared':
      writer.varuint(record.view);
      writer.varuint(record.sequence);
      writeDigest(writer, record.batchDigest);
      return;
    case 'committed':
      writer.varuint(record.view);
      writer.varuint(record.sequence);
      writeDigest(writer, record.batchDigest);
      writer.bool(record.batch !== null);
      if (record.batch !== null) {
        writer.bytes(
          encodeMessage({
            kind: 'batch',
            sequence: record.sequence,
            batchDigest: record.batchDigest,
            batch: record.batch,
          }),
        );
      }
      return;
    case 'safe-mode':
      writer.bytes(encodeMessage({ kind: 'fork-proof', proof: record.proof }));
      return;
  }
}

/** The record payload (unframed). Throws InvariantViolation for a record no decoder would accept. */
export function encodeRecord(record: DurableRecord): Uint8Array {
  const writer = new ByteWriter(record.kind === 'pre-prepare' || record.kind === 'safe-mode' ? 4096 : 64);
  writeRecord(writer, record);
  if (writer.length > MAX_RECORD_PAYLOAD_BYTES) {
    throw new InvariantViolation(
      `${record.kind} record of ${writer.length} bytes exceeds MAX_RECORD_PAYLOAD_BYTES (${MAX_RECORD_PAYLOAD_BYTES})`,
    );
  }
  return writer.finish();
}

function digestsEqual(a: Digest, b: Digest): boolean {
  for (let index = 0; index < DIGEST_BYTES; index++) if (a[index] !== b[index]) return false;
  return true;
}

function readRecord(reader: ByteReader): DurableRecord {
  const tag = reader.u8('record tag');
  switch (tag) {
    case RECORD_TAGS.view: {
      const view = viewNumber(reader.varuint('view'));
      return { kind: 'view', view, viewChangeInProgress: reader.bool('view change flag') };
    }
    case AMNESIAC_VIEW_RECORD_TAG:
      return {
        kind: 'view',
        view: viewNumber(reader.varuint('view')),
        viewChangeInProgress: false,
        amnesiac: true,
      };
    case BOUNDED_VIEW_RECORD_TAG: {
      const view = viewNumber(reader.varuint('view'));
      const viewChangeInProgress = reader.bool('view change flag');
      const voteBound = sequenceNumber(reader.varuint('vote bound'));
      return { kind: 'view', view, viewChangeInProgress, voteBound };
    }
    case RECORD_TAGS['pre-prepare']: {
      const decoded = decodeMessage(reader.bytes(reader.remaining, 'pre-prepare message'));
      if (!decoded.ok) return reader.fail(decoded.reason);
      if (decoded.value.kind !== 'pre-prepare')
        return reader.fail(`expected pre-prepare, got ${decoded.value.kind}`);
      return { kind: 'pre-prepare', message: decoded.value };
    }
    case RECORD_TAGS.prepared: {
      const view = viewNumber(reader.varuint('view'));
      const sequence = sequenceNumber(reader.varuint('sequence'));
      return { kind: 'prepared', view, sequence, batchDigest: readDigest(reader, 'batch digest') };
    }
    case RECORD_TAGS.committed: {
      const view = viewNumber(reader.varuint('view'));
      const sequence = sequenceNumber(reader.varuint('sequence'));
      const batchDigest = readDigest(reader, 'batch digest');
      if (!reader.bool('batch presence'))
        return { kind: 'committed', view, sequence, batchDigest, batch: null };
      const decoded = decodeMessage(reader.bytes(reader.remaining, 'committed batch'));
      if (!decoded.ok) return reader.fail(decoded.reason);
      const message = decoded.value;
      if (message.kind !== 'batch') return reader.fail(`expected batch, got ${message.kind}`);
      if (message.sequence !== sequence || !digestsEqual(message.batchDigest, batchDigest)) {
        return reader.fail('committed batch does not match the record sequence and digest');
      }
      return { kind: 'committed', view, sequence, batchDigest, batch: message.batch };
    }
    case RECORD_TAGS['safe-mode']: {
      const decoded = decodeMessage(reader.bytes(reader.remaining, 'fork-proof message'));
      if (!decoded.ok) return reader.fail(decoded.reason);
      if (decoded.value.kind !== 'fork-proof')
        return reader.fail(`expected fork-proof, got ${decoded.value.kind}`);
      return { kind: 'safe-mode', proof: decoded.value.proof };
    }
    default:
      return reader.fail(`unknown record tag 0x${tag.toString(16).padStart(2, '0')}`);
  }
}

function rejection(context: string, error: unknown): { readonly ok: false; readonly reason: string } {
  if (error instanceof DecodeError) return { ok: false, reason: `${context}: ${error.message}` };
  const detail = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  return { ok: false, reason: `${context}: unexpected decoder failure: ${detail}` };
}

/**
 * Decodes a record payload. Never throws. Byte fields of the result are views of `payload`: pass
 * a buffer the record may keep (engines copy the payload out of their read buffers first).
 */
export function decodeRecord(payload: Uint8Array): DecodeResult<DurableRecord> {
  try {
    if (payload.length > MAX_RECORD_PAYLOAD_BYTES) {
      return {
        ok: false,
        reason: `record of ${payload.length} bytes exceeds MAX_RECORD_PAYLOAD_BYTES (${MAX_RECORD_PAYLOAD_BYTES})`,
      };
    }
    const reader = new ByteReader(payload);
    const record = readRecord(reader);
    reader.expectEnd('record');
    return { ok: true, value: record };
  } catch (error) {
    return rejection('record', error);
  }
}

// ───────────────────────────── manifest codec ─────────────────────────────

/** What a stored checkpoint looks like without its chunks. */
export interface CheckpointManifest {
  readonly certificate: CheckpointCertificate;
  readonly leaves: readonly Digest[];
}

export function encodeManifest(manifest: CheckpointManifest): Uint8Array {
  const writer = new ByteWriter(256 + manifest.leaves.length * DIGEST_BYTES);
  writeCheckpointCertificate(writer, manifest.certificate);
  writer.varuint(manifest.leaves.length);
  for (const leaf of manifest.leaves) writeDigest(writer, leaf);
  if (writer.length > MAX_MANIFEST_PAYLOAD_BYTES) {
    throw new InvariantViolation(
      `manifest of ${writer.length} bytes exceeds MAX_MANIFEST_PAYLOAD_BYTES (${MAX_MANIFEST_PAYLOAD_BYTES})`,
    );
  }
  return writer.finish();
}

/** Never throws. Leaves are copied, so the result does not keep `payload` alive. */
export function decodeManifest(payload: Uint8Array): DecodeResult<CheckpointManifest> {
  try {
    if (payload.length > MAX_MANIFEST_PAYLOAD_BYTES) {
      return {
        ok: false,
        reason: `manifest of ${payload.length} bytes exceeds MAX_MANIFEST_PAYLOAD_BYTES (${MAX_MANIFEST_PAYLOAD_BYTES})`,
      };
    }
    const reader = new ByteReader(new Uint8Array(payload));
    const certificate = readCheckpointCertificate(reader, LIMITS);
    const count = reader.count(
      LIMITS.maxManifestLeaves,
      'manifest leaves',
      'maxManifestLeaves',
      DIGEST_BYTES,
    );
    const leaves: Digest[] = [];
    for (let index = 0; index < count; index++) leaves.push(readDigest(reader, 'manifest leaf'));
    reader.expectEnd('manifest');
    return { ok: true, value: { certificate, leaves } };
  } catch (error) {
    return rejection('manifest', error);
  }
}

// ───────────────────────────── framing ─────────────────────────────

function frameChecksum(frame: Uint8Array, payloadLength: number): number {
  const lengthBytes = frame.subarray(0, 4);
  return crc32(frame.subarray(FRAME_HEADER_BYTES, FRAME_HEADER_BYTES + payloadLength), crc32(lengthBytes));
}

/** [u32 length][u32 crc32][payload] as one buffer. */
export function framePayload(payload: Uint8Array): Uint8Array {
  const frame = new Uint8Array(FRAME_HEADER_BYTES + payload.length);
  const view = new DataView(frame.buffer);
  view.setUint32(0, payload.length);
  frame.set(payload, FRAME_HEADER_BYTES);
  view.setUint32(4, frameChecksum(frame, payload.length));
  return frame;
}

export function frameRecord(record: DurableRecord): Uint8Array {
  return framePayload(encodeRecord(record));
}

/** Payload length announced by a frame header (the first FRAME_HEADER_BYTES bytes of `header`). */
export function framePayloadLength(header: Uint8Array): number {
  return new DataView(header.buffer, header.byteOffset, FRAME_HEADER_BYTES).getUint32(0);
}

/** Whether `header` (8 bytes) and `payload` form an intact frame. */
export function frameChecksumMatches(header: Uint8Array, payload: Uint8Array): boolean {
  const stored = new DataView(header.buffer, header.byteOffset, FRAME_HEADER_BYTES).getUint32(4);
  if (framePayloadLength(header) !== payload.length) return false;
  return crc32(payload, crc32(header.subarray(0, 4))) === stored;
}

/**
 * Checks a buffer that must hold exactly one frame (a manifest file, a LevelDB value) and returns
 * its payload as a view of `bytes`.
 */
export function unframe(bytes: Uint8Array, maxPayloadBytes: number, what: string): DecodeResult<Uint8Array> {
  if (bytes.length < FRAME_HEADER_BYTES) return { ok: false, reason: `${what}: truncated frame header` };
  const length = framePayloadLength(bytes);
  if (length > maxPayloadBytes) {
    return { ok: false, reason: `${what}: frame length ${length} exceeds its limit (${maxPayloadBytes})` };
  }
  if (bytes.length !== FRAME_HEADER_BYTES + length) {
    return {
      ok: false,
      reason: `${what}: frame announces ${length} bytes, holds ${bytes.length - FRAME_HEADER_BYTES}`,
    };
  }
  const payload = bytes.subarray(FRAME_HEADER_BYTES);
  if (!frameChecksumMatches(bytes, payload)) return { ok: false, reason: `${what}: checksum mismatch` };
  return { ok: true, value: payload };
}

/** Checks and decodes a framed record that must fill `bytes` exactly. The payload is copied. */
export function decodeFramedRecord(bytes: Uint8Array): DecodeResult<DurableRecord> {
  const payload = unframe(bytes, MAX_RECORD_PAYLOAD_BYTES, 'record');
  if (!payload.ok) return payload;
  // A plain copy (`new Uint8Array(view)` copies; Buffer#slice would not): decoded records keep
  // views of their payload and should not pin a larger read buffer.
  return decodeRecord(new Uint8Array(payload.value));
}

// ───────────────────────────── shared engine helpers ─────────────────────────────

function sha256(data: Uint8Array): Digest {
  return digest(new Uint8Array(createHash('sha256').update(data).digest()));
}

/**
 * Whether a chunk read back from disk is the one its leaf names. Replicas hash state with SHA-256
 * (core/crypto.ts), and leaves are domain-separated leaf digests (core/merkle.ts).
 */
export function chunkMatchesLeaf(leaf: Digest, chunk: Uint8Array): boolean {
  return chunk.length <= MAX_CHUNK_BYTES && bytesEqual(leafDigest(sha256, chunk), leaf);
}

/**
 * What a replica resumes from, given what an engine read back: records at or below the checkpoint
 * are dropped (a crash between storing a checkpoint and compacting the log leaves them behind);
 * the view is the one of the last view record. Undefined when nothing at all was stored.
 */
export function assembleRestoredState(
  checkpoint: RestoredState['checkpoint'],
  records: readonly DurableRecord[],
): RestoredState | undefined {
  if (checkpoint === null && records.length === 0) return undefined;
  const stable = checkpoint?.certificate.sequence ?? -1;
  let view = 0 as ViewNumber;
  let viewChangeInProgress = false;
  const kept: DurableRecord[] = [];
  for (const record of records) {
    if (record.kind === 'view') {
      view = record.view;
      viewChangeInProgress = record.viewChangeInProgress;
      kept.push(record);
    } else if (recordSequence(record) > stable) {
      kept.push(record);
    }
  }
  return { view, viewChangeInProgress, checkpoint, records: kept };
}

/** Lower-case hex of a leaf digest: the name a chunk is stored under. */
export function leafName(leaf: Digest): string {
  return toHex(leaf);
}

/** Throws InvariantViolation (synchronously, at the caller) for a malformed checkpoint. */
export function assertCheckpointShape(checkpoint: StoredCheckpoint): void {
  if (checkpoint.chunks.length !== checkpoint.leaves.length) {
    throw new InvariantViolation(
      `checkpoint has ${checkpoint.chunks.length} chunks but ${checkpoint.leaves.length} leaves`,
    );
  }
  for (const chunk of checkpoint.chunks) {
    if (chunk.length > MAX_CHUNK_BYTES) {
      throw new InvariantViolation(
        `chunk of ${chunk.length} bytes exceeds MAX_CHUNK_BYTES (${MAX_CHUNK_BYTES})`,
      );
    }
  }
  // Encoding checks the manifest limits now rather than when the write is already under way.
  encodeManifest(checkpoint);
}

/** Work queued by append/storeCheckpoint and not yet handed to the disk. */
export type QueuedOperation =
  | { readonly kind: 'records'; readonly frames: Uint8Array[]; readonly sequences: number[] }
  | { readonly kind: 'checkpoint'; readonly checkpoint: StoredCheckpoint };

/**
 * load({ discardLog }) must be the first operation on an opened storage: records queued before
 * it would be discarded unflushed, and a log already read may have been handed out.
 */
export function assertDiscardLogFirst(queue: readonly QueuedOperation[], alreadyStarted: boolean): void {
  if (queue.length > 0 || alreadyStarted)
    throw new InvariantViolation('discardLog must be the first operation on the storage');
}

/** Adds a framed record to the queue, extending the trailing run of records if there is one. */
export function queueRecord(queue: QueuedOperation[], frame: Uint8Array, sequence: number): void {
  const last = queue[queue.length - 1];
  if (last !== undefined && last.kind === 'records') {
    last.frames.push(frame);
    last.sequences.push(sequence);
  } else {
    queue.push({ kind: 'records', frames: [frame], sequences: [sequence] });
  }
}

/**
 * Queues a checkpoint and drops any queued, not yet started checkpoint it supersedes: storing the
 * older one first would end in the same state (its records are dropped by the newer one anyway)
 * and only cost chunk writes and fsyncs.
 */
export function queueCheckpoint(queue: QueuedOperation[], checkpoint: StoredCheckpoint): void {
  const sequence = checkpoint.certificate.sequence;
  for (let index = queue.length - 1; index >= 0; index--) {
    const operation = queue[index]!;
    if (operation.kind === 'checkpoint' && operation.checkpoint.certificate.sequence <= sequence) {
      queue.splice(index, 1);
    }
  }
  queue.push({ kind: 'checkpoint', checkpoint });
}

/**
 * Which of a log's entries survive a checkpoint at `stable`: records above it, and the latest view
 * record (the view a restart resumes in), each in its original relative order.
 */
export function survivorsOfCheckpoint(sequences: readonly number[], stable: number): boolean[] {
  let latestView = -1;
  for (let index = 0; index < sequences.length; index++) {
    if (sequences[index] === Number.POSITIVE_INFINITY) latestView = index;
  }
  return sequences.map((sequence, index) =>
    sequence === Number.POSITIVE_INFINITY ? index === latestView : sequence > stable,
  );
}

/**
 * Group commit: `request()` returns the completion of the next batch that has not started yet,
 * scheduling one if needed. Every caller between two batch starts shares that batch, so N
 * concurrent flushes cost one fsync; a flush called while a batch is being written waits for the
 * next one, which picks up everything queued in the meantime.
 *
 * Batches and exclusive jobs run one at a time in the order they were scheduled. After a failed
 * batch the queue stays failed: a write or fsync error leaves the file in an unknown state (Linux
 * may drop the dirty pages after reporting the error once), so the only safe continuation is to
 * stop and recover from disk with `load()` in a new process.
 */
export class GroupCommitQueue {
  readonly #performBatch: () => Promise<void>;
  #tail: Promise<void> = Promise.resolve();
  #scheduled: Promise<void> | null = null;
  #failure: { readonly error: unknown } | null = null;

  constructor(performBatch: () => Promise<void>) {
    this.#performBatch = performBatch;
  }

  get failure(): { readonly error: unknown } | null {
    return this.#failure;
  }

  request(): Promise<void> {
    if (this.#scheduled !== null) return this.#scheduled;
    const batch = this.#tail.then(() => {
      this.#scheduled = null;
      return this.#guarded(this.#performBatch);
    });
    this.#scheduled = batch;
    this.#tail = batch.catch(() => undefined);
    return batch;
  }

  /**
   * Runs `job` alone, after every batch and job scheduled before it. With `evenAfterFailure` the
   * job runs although an earlier batch failed (close() must still release file handles), and its
   * own failure does not fail the queue.
   */
  exclusive<Result>(
    job: () => Promise<Result>,
    options: { readonly evenAfterFailure?: boolean } = {},
  ): Promise<Result> {
    const result = this.#tail.then(() => (options.evenAfterFailure === true ? job() : this.#guarded(job)));
    this.#tail = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }

  async #guarded<Result>(work: () => Promise<Result>): Promise<Result> {
    if (this.#failure !== null) throw this.#failure.error;
    try {
      return await work();
    } catch (error) {
      this.#failure = { error };
      throw error;
    }
  }
}

/** Mutable counters behind StorageStatistics. */
export interface StatisticsCounters {
  recordsAppended: number;
  bytesWritten: number;
  flushes: number;
  fsyncs: number;
  checkpointsStored: number;
  chunksWritten: number;
  chunksReused: number;
}

export function emptyCounters(): StatisticsCounters {
  return {
    recordsAppended: 0,
    bytesWritten: 0,
    flushes: 0,
    fsyncs: 0,
    checkpointsStored: 0,
    chunksWritten: 0,
    chunksReused: 0,
  };
}
