/**
 * A PeerReview-style tamper-evident log of what a replica sent and received (Haeberlen et al.,
 * SOSP 2007). Each entry names the peer, the message kind and the message digest; each is chained
 * to everything before it, so the latest chain hash (the head) commits to the whole history. A
 * replica that publishes its head (e.g. in signed messages) can later be audited: the log it
 * produces must recompute to that head, and a modified, removed or reordered entry makes the
 * recomputation break at that entry.
 *
 * What the chain alone cannot show: entries cut off the END of a log at a record boundary leave a
 * shorter but consistent chain. Only a head published earlier exposes that, which is why audits
 * return the head they recomputed.
 *
 * File format, version 2 (all integers big-endian):
 *
 *   header   "PHXACCT2" (8 bytes) ‖ start head (32) ‖ SHA-256(header domain ‖ magic ‖ start head) (32)
 *   record   u16 body length L ‖ u16 (L XOR 0xFFFF) ‖ body (L bytes) ‖ chain hash (32)
 *   body     u8 0x11 (sent) | 0x12 (received) ‖ peer ‖ kind ‖ digest (32) ‖ varuint atMs
 *            u8 0x13 (gap)   ‖ varuint dropped entries ‖ varuint first dropped atMs ‖ varuint last atMs
 *   peer     u8 0 ‖ varuint id              'replica:<id>'
 *            u8 1 ‖ string id               'client:<id>'
 *            u8 2                           'replicas' (a broadcast)
 *            u8 3 ‖ string                  any other peer, verbatim
 *   kind     u8 k ≥ 1                       ACCOUNTABILITY_LOG_MESSAGE_KINDS[k − 1]
 *            u8 0 ‖ string                  any other kind, verbatim
 *
 * where strings are varuint-length-prefixed UTF-8 (messages/bytes.ts conventions) and chain
 * hash_i = SHA-256(chain hash_{i-1} ‖ body_i), chain hash_0 = the start head. The start head of the
 * first file is ACCOUNTABILITY_LOG_GENESIS_HEAD; after a rotation it is the head the previous file
 * ended with, so continuity across files is checkable. The length is stored with its complement so
 * that a corrupt length is recognised as corruption, never mistaken for a torn write (and never
 * makes a reader allocate more than one maximum record).
 *
 * Every record means the same wherever it stands: no dictionary or time delta refers to earlier
 * records, because a chain commits to a sequence of bodies, not to where files were cut. A body
 * whose meaning depended on the records before it in its file could be given another meaning, under
 * the same published head, by cutting the files elsewhere.
 *
 * Version 1 ("PHXACCT1", written until the version 2 change) had the same header, framing and
 * chain, and bodies `u8 1 ‖ u8 direction (0 sent, 1 received) ‖ string peer ‖ string kind ‖
 * digest ‖ varuint atMs` and `u8 2 ‖ gap fields`: a message between replicas took 98 bytes, 78
 * in version 2 (the replica's name and the message kind were text). Audits read both. The record
 * types of the two versions are disjoint, so no body of one version is a body of the other: a
 * version 1 chain cannot be passed off, under its published head, as a version 2 file that says
 * something else. open() never appends to a version 1 file: it rotates it and continues its chain
 * in version 2.
 *
 * Disk footprint: a file is rotated before it would exceed `maxBytes` (default
 * ACCOUNTABILITY_LOG_LIMITS.defaultMaxFileBytes), into `<path>.1` … `<path>.N` (N = maxRotatedFiles,
 * default defaultMaxRotatedFiles), the oldest dropped: at most (1 + N) × maxBytes per log.
 *
 * Torn tail policy: a file that ends inside a record (the process crashed during a write, or
 * someone truncated it) fails the audit, at that record, with `tornTail: true`: an auditor cannot
 * tell a crash from tampering. AccountabilityLog.open() repairs it by cutting the incomplete
 * record, which had never been flushed (flush() returns only after the bytes are on disk).
 */
import { createHash, hash as oneShotHash } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { type FileHandle, open, rename, unlink } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import {
  assert,
  bytesEqual,
  DIGEST_BYTES,
  type Digest,
  digest,
  InvariantViolation,
} from '../messages/ids.js';
import { ByteReader, ByteWriter, DecodeError } from '../messages/bytes.js';
import type { Pace } from '../storage/pacing.js';

const textEncoder = new TextEncoder();

const FILE_MAGIC = textEncoder.encode('PHXACCT2');
/** Files of the previous version, still audited (and continued, in a new file, by open()). */
const FILE_MAGIC_V1 = textEncoder.encode('PHXACCT1');
const HEADER_DOMAIN = textEncoder.encode('phalanx/accountability-log/header/v1');
const GENESIS_DOMAIN = textEncoder.encode('phalanx/accountability-log/genesis/v1');

// Version 2 record types, disjoint from version 1's (1 entry, 2 gap).
const RECORD_TYPE_SENT = 0x11;
const RECORD_TYPE_RECEIVED = 0x12;
const RECORD_TYPE_GAP = 0x13;
const V1_RECORD_TYPE_ENTRY = 1;
const V1_RECORD_TYPE_GAP = 2;

const PEER_FORM_REPLICA = 0;
const PEER_FORM_CLIENT = 1;
const PEER_FORM_BROADCAST = 2;
const PEER_FORM_VERBATIM = 3;
const REPLICA_PREFIX = 'replica:';
const CLIENT_PREFIX = 'client:';
const BROADCAST_PEER = 'replicas';
const KIND_VERBATIM = 0;

/**
 * The message kinds a replica logs, coded by their position + 1 in version 2 bodies. Append-only:
 * a code never changes its kind, or logs written earlier would read differently. A kind missing
 * here is stored verbatim.
 */
export const ACCOUNTABILITY_LOG_MESSAGE_KINDS: readonly string[] = Object.freeze([
  'request',
  'reply',
  'key-announcement',
  'evidence-report',
  'pre-prepare',
  'prepare',
  'commit',
  'checkpoint',
  'view-change',
  'new-view',
  'forward',
  'status',
  'decided',
  'batch-request',
  'batch',
  'checkpoint-proof',
  'manifest-request',
  'manifest',
  'chunk-request',
  'chunk',
  'state-unavailable',
  'request-ack',
  'certificate-history',
  'fork-proof',
  'commit-certificate',
]);
const KIND_CODES = new Map(ACCOUNTABILITY_LOG_MESSAGE_KINDS.map((kind, index) => [kind, index + 1]));

/** Named size limits of the format; decoders check them before allocating or hashing. */
export const ACCOUNTABILITY_LOG_LIMITS = {
  /** UTF-8 bytes of an entry's peer name (a replica name or a client id). */
  maxPeerBytes: 128,
  /** UTF-8 bytes of an entry's message kind. */
  maxKindBytes: 64,
  /**
   * Record body: the largest entry, a verbatim peer and kind at their limits, is
   * 1 + 1 + 2 + 128 + 1 + 1 + 64 + 32 + 8 = 238 bytes (237 in version 1).
   */
  maxRecordBodyBytes: 256,
  /** Default bound on bytes appended but not yet written (see AccountabilityLogOptions). */
  defaultMaxBufferedBytes: 1024 * 1024,
  /**
   * Default size at which a file is rotated. A record between replicas takes 78 bytes, so 8 MiB
   * holds about 100 000 messages sent or received: minutes of a busy replica, far more than one
   * incarnation lives between rejuvenations in the demo.
   */
  defaultMaxFileBytes: 8 * 1024 * 1024,
  /** Default rotated files kept (`<path>.1` … `<path>.3`): a log takes at most 4 × 8 MiB = 32 MiB. */
  defaultMaxRotatedFiles: 3,
  /** Most rotated files a log may be configured to keep. */
  maxRotatedFiles: 99,
  /**
   * Default time appended entries wait to be written together (see AccountabilityLogOptions).
   * Written as soon as they were appended, a busy replica's entries went to disk in one write
   * per event-loop turn, a fifth of its busy time in the profile at 50 clients.
   */
  defaultWriteDelayMs: 20,
  /** Longest write delay a log may be configured with: what a crash of the process may lose. */
  maxWriteDelayMs: 1000,
} as const;

/** Byte layout constants, for tools that walk a log file. */
export const ACCOUNTABILITY_LOG_FORMAT = {
  /** What open() writes; audits also read `previousMagics`. */
  magic: 'PHXACCT2',
  version: 2,
  previousMagics: ['PHXACCT1'],
  headerBytes: FILE_MAGIC.length + 2 * DIGEST_BYTES,
  /** u16 length and its complement. */
  framePrefixBytes: 4,
  chainHashBytes: DIGEST_BYTES,
} as const;

const HEADER_BYTES = ACCOUNTABILITY_LOG_FORMAT.headerBytes;
const FRAME_PREFIX_BYTES = ACCOUNTABILITY_LOG_FORMAT.framePrefixBytes;
const MAX_FRAME_BYTES = FRAME_PREFIX_BYTES + ACCOUNTABILITY_LOG_LIMITS.maxRecordBodyBytes + DIGEST_BYTES;
/** Smallest maxBytes: a header and one record of the largest size. */
export const MIN_ACCOUNTABILITY_LOG_BYTES = HEADER_BYTES + MAX_FRAME_BYTES;
/** The buffer must hold at least a gap record and an entry at once (see append()). */
const MIN_BUFFERED_BYTES = 2 * MAX_FRAME_BYTES;
/** Reads during an audit go through a buffer of this size, whatever the file size. */
const READ_CHUNK_BYTES = 64 * 1024;
/** Upper bound on one background write, so a full buffer is not copied into one huge array. */
const MAX_WRITE_BATCH_BYTES = 256 * 1024;

function sha256(...parts: Uint8Array[]): Digest {
  const hasher = createHash('sha256');
  for (const part of parts) hasher.update(part);
  const out = hasher.digest();
  return digest(new Uint8Array(out.buffer, out.byteOffset, out.length));
}

/** `head ‖ body` of the record being chained; bodies are bounded (maxRecordBodyBytes), so one buffer serves. */
const chainScratch = Buffer.allocUnsafe(DIGEST_BYTES + ACCOUNTABILITY_LOG_LIMITS.maxRecordBodyBytes);

/**
 * SHA-256(head ‖ body), the same value as sha256(head, body): one-shot over a reused buffer, as
 * every frame a replica sends or receives is chained (a Hash object per entry cost three times as much).
 */
function chainHash(head: Digest, body: Uint8Array): Digest {
  if (body.length > ACCOUNTABILITY_LOG_LIMITS.maxRecordBodyBytes) return sha256(head, body);
  chainScratch.set(head, 0);
  chainScratch.set(body, DIGEST_BYTES);
  const out = oneShotHash('sha256', chainScratch.subarray(0, DIGEST_BYTES + body.length), 'buffer');
  return digest(new Uint8Array(out.buffer, out.byteOffset, out.length));
}

/** The start head of a log that continues no earlier file. */
export const ACCOUNTABILITY_LOG_GENESIS_HEAD: Digest = sha256(GENESIS_DOMAIN);

export interface AccountabilityEntry {
  readonly direction: 'sent' | 'received';
  /** Who the message went to or came from, e.g. 'replica:2' or a client id. */
  readonly peer: string;
  /** Message kind, e.g. 'pre-prepare'. */
  readonly kind: string;
  /** Digest of the message as sent or received. */
  readonly digest: Digest;
  readonly atMs: number;
}

export interface AccountabilityLogOptions {
  /**
   * A file is rotated before a record would take it past this (at least
   * MIN_ACCOUNTABILITY_LOG_BYTES). Default ACCOUNTABILITY_LOG_LIMITS.defaultMaxFileBytes.
   */
  readonly maxBytes?: number;
  /**
   * Rotated files kept, `<path>.1` (newest) to `<path>.N`; the oldest is deleted at each rotation.
   * 1 to ACCOUNTABILITY_LOG_LIMITS.maxRotatedFiles, default defaultMaxRotatedFiles.
   */
  readonly maxRotatedFiles?: number;
  /**
   * Bound on bytes appended but not yet written. When it is reached, append() drops the entry and
   * returns false; the next entry that fits is preceded by a chained gap record saying how many
   * were dropped, so the loss is visible in the log rather than silent. Appending never blocks
   * and never waits for the disk. Default ACCOUNTABILITY_LOG_LIMITS.defaultMaxBufferedBytes.
   */
  readonly maxBufferedBytes?: number;
  /**
   * Entries appended wait up to this long (0 to ACCOUNTABILITY_LOG_LIMITS.maxWriteDelayMs) to be
   * written together, or until a write's worth (MAX_WRITE_BATCH_BYTES) is waiting; flush() and
   * close() write at once. A process that crashes loses what waited, as it loses what it had not
   * yet fdatasync'd (the log is evidence kept at best effort, never a condition of progress).
   * Default ACCOUNTABILITY_LOG_LIMITS.defaultWriteDelayMs.
   */
  readonly writeDelayMs?: number;
}

export type AccountabilityAudit =
  | {
      readonly ok: true;
      /** Records in the file (entries and gap records). */
      readonly entries: number;
      /** Chain hash after the last record (the start head for an empty file). */
      readonly head: Digest;
      /** The head this file continues (genesis, or the previous file's last head). */
      readonly startHead: Digest;
      /** Entries the writer reported as dropped in gap records. */
      readonly droppedEntries: number;
      /** The file's format version (ACCOUNTABILITY_LOG_FORMAT). */
      readonly formatVersion: number;
    }
  | {
      readonly ok: false;
      /** First broken record, counted from 1; 0 is the file header. */
      readonly entry: number;
      readonly reason: string;
      /** The file ends inside this record: a crash during a write, or truncation. */
      readonly tornTail: boolean;
    };

export interface AuditOptions {
  /** The head the previous file ended with: the file's header must continue from it. */
  readonly expectedStartHead?: Digest;
  /**
   * Called between entries; the audit waits for it. A guardian audits a stopped replica's log
   * (tens of MB) while the replicas serve clients on the same machines, and paces it (LoadPacer).
   */
  readonly pace?: Pace;
  /**
   * Called with each entry (not gap records) once its chain hash has verified, in order: for tools
   * and tests that look at what a log says, not only whether it is intact.
   */
  readonly onEntry?: (entry: AccountabilityEntry) => void;
}

/** Thrown by AccountabilityLog.open for a file it must not append to. */
export class AccountabilityLogError extends Error {
  override readonly name = 'AccountabilityLogError';
}

// ───────────────────────────── encoding ─────────────────────────────

function encodeHeader(startHead: Digest): Uint8Array {
  const header = new Uint8Array(HEADER_BYTES);
  header.set(FILE_MAGIC, 0);
  header.set(startHead, FILE_MAGIC.length);
  header.set(sha256(HEADER_DOMAIN, FILE_MAGIC, startHead), FILE_MAGIC.length + DIGEST_BYTES);
  return header;
}

function utf8Length(text: string): number {
  return Buffer.byteLength(text, 'utf8');
}

/** The id of a 'replica:<id>' peer when `peer` is exactly that (canonical decimal), else null. */
function replicaIdOf(peer: string): number | null {
  if (!peer.startsWith(REPLICA_PREFIX)) return null;
  const digits = peer.slice(REPLICA_PREFIX.length);
  if (!/^(0|[1-9][0-9]{0,15})$/.test(digits)) return null;
  const id = Number(digits);
  return Number.isSafeInteger(id) ? id : null;
}

function writePeer(writer: ByteWriter, peer: string): void {
  const replica = replicaIdOf(peer);
  if (replica !== null) {
    writer.u8(PEER_FORM_REPLICA);
    writer.varuint(replica);
  } else if (peer.startsWith(CLIENT_PREFIX)) {
    writer.u8(PEER_FORM_CLIENT);
    writer.string(peer.slice(CLIENT_PREFIX.length));
  } else if (peer === BROADCAST_PEER) {
    writer.u8(PEER_FORM_BROADCAST);
  } else {
    writer.u8(PEER_FORM_VERBATIM);
    writer.string(peer);
  }
}

function readPeer(reader: ByteReader): string {
  const limits = ACCOUNTABILITY_LOG_LIMITS;
  const form = reader.u8('peer form');
  switch (form) {
    case PEER_FORM_REPLICA:
      return `${REPLICA_PREFIX}${reader.varuint('peer replica id')}`;
    case PEER_FORM_CLIENT:
      return `${CLIENT_PREFIX}${reader.string(limits.maxPeerBytes - CLIENT_PREFIX.length, 'peer client id', 'maxPeerBytes')}`;
    case PEER_FORM_BROADCAST:
      return BROADCAST_PEER;
    case PEER_FORM_VERBATIM:
      return reader.string(limits.maxPeerBytes, 'peer', 'maxPeerBytes');
    default:
      return reader.fail(`unknown peer form ${form}`);
  }
}

function writeKind(writer: ByteWriter, kind: string): void {
  const code = KIND_CODES.get(kind);
  if (code !== undefined) {
    writer.u8(code);
    return;
  }
  writer.u8(KIND_VERBATIM);
  writer.string(kind);
}

function readKind(reader: ByteReader): string {
  const code = reader.u8('kind code');
  if (code === KIND_VERBATIM)
    return reader.string(ACCOUNTABILITY_LOG_LIMITS.maxKindBytes, 'kind', 'maxKindBytes');
  const kind = ACCOUNTABILITY_LOG_MESSAGE_KINDS[code - 1];
  return kind ?? reader.fail(`unknown kind code ${code}`);
}

function encodeEntryBody(writer: ByteWriter, entry: AccountabilityEntry): Uint8Array {
  const limits = ACCOUNTABILITY_LOG_LIMITS;
  assert(entry.direction === 'sent' || entry.direction === 'received', 'direction must be sent or received');
  assert(
    utf8Length(entry.peer) <= limits.maxPeerBytes,
    `peer longer than maxPeerBytes (${limits.maxPeerBytes})`,
  );
  assert(
    utf8Length(entry.kind) <= limits.maxKindBytes,
    `kind longer than maxKindBytes (${limits.maxKindBytes})`,
  );
  assert(entry.digest.length === DIGEST_BYTES, `digest must be ${DIGEST_BYTES} bytes`);
  assert(Number.isSafeInteger(entry.atMs) && entry.atMs >= 0, `invalid atMs: ${entry.atMs}`);
  writer.reset();
  writer.u8(entry.direction === 'sent' ? RECORD_TYPE_SENT : RECORD_TYPE_RECEIVED);
  writePeer(writer, entry.peer);
  writeKind(writer, entry.kind);
  writer.bytes(entry.digest);
  writer.varuint(entry.atMs);
  return writer.finish();
}

interface DroppedEntries {
  count: number;
  readonly firstAtMs: number;
  lastAtMs: number;
}

function encodeGapBody(writer: ByteWriter, dropped: DroppedEntries): Uint8Array {
  writer.reset();
  writer.u8(RECORD_TYPE_GAP);
  writer.varuint(dropped.count);
  writer.varuint(dropped.firstAtMs);
  writer.varuint(dropped.lastAtMs);
  return writer.finish();
}

function frameRecord(body: Uint8Array, chainHash: Digest): Uint8Array {
  const frame = new Uint8Array(FRAME_PREFIX_BYTES + body.length + DIGEST_BYTES);
  const view = new DataView(frame.buffer);
  view.setUint16(0, body.length);
  view.setUint16(2, body.length ^ 0xffff);
  frame.set(body, FRAME_PREFIX_BYTES);
  frame.set(chainHash, FRAME_PREFIX_BYTES + body.length);
  return frame;
}

type DecodedRecord =
  | { readonly type: 'entry'; readonly entry: AccountabilityEntry }
  | { readonly type: 'gap'; readonly droppedEntries: number };

/** Format versions an audit reads. */
type FormatVersion = 1 | 2;

function readGap(reader: ByteReader): DecodedRecord {
  const droppedEntries = reader.varuint('dropped entries');
  if (droppedEntries === 0) reader.fail('a gap record drops at least one entry');
  reader.varuint('first dropped atMs');
  reader.varuint('last dropped atMs');
  reader.expectEnd('gap record');
  return { type: 'gap', droppedEntries };
}

function readEntryTail(
  reader: ByteReader,
  direction: 'sent' | 'received',
  peer: string,
  kind: string,
): DecodedRecord {
  const entryDigest = digest(reader.bytes(DIGEST_BYTES, 'digest').slice());
  const atMs = reader.varuint('atMs');
  reader.expectEnd('entry');
  return { type: 'entry', entry: { direction, peer, kind, digest: entryDigest, atMs } };
}

/** Throws DecodeError (only) on a malformed body. */
function decodeRecordBody(body: Uint8Array, version: FormatVersion): DecodedRecord {
  const reader = new ByteReader(body);
  const type = reader.u8('record type');
  if (version === 1) {
    const limits = ACCOUNTABILITY_LOG_LIMITS;
    if (type === V1_RECORD_TYPE_ENTRY) {
      const directionCode = reader.u8('direction');
      if (directionCode > 1) reader.fail(`direction must be 0 or 1, got ${directionCode}`);
      const peer = reader.string(limits.maxPeerBytes, 'peer', 'maxPeerBytes');
      const kind = reader.string(limits.maxKindBytes, 'kind', 'maxKindBytes');
      return readEntryTail(reader, directionCode === 0 ? 'sent' : 'received', peer, kind);
    }
    if (type === V1_RECORD_TYPE_GAP) return readGap(reader);
    return reader.fail(`unknown record type ${type}`);
  }
  if (type === RECORD_TYPE_SENT || type === RECORD_TYPE_RECEIVED) {
    const peer = readPeer(reader);
    const kind = readKind(reader);
    return readEntryTail(reader, type === RECORD_TYPE_SENT ? 'sent' : 'received', peer, kind);
  }
  if (type === RECORD_TYPE_GAP) return readGap(reader);
  return reader.fail(`unknown record type ${type}`);
}

// ───────────────────────────── audit ─────────────────────────────

/** Where an audit reads from: a file through a bounded buffer, or bytes in memory. */
interface ByteSource {
  /** Makes up to `count` bytes available; returns how many are (fewer only at the end). */
  fill(count: number): Promise<number>;
  /** The next `count` available bytes, consumed (a view, valid until the next fill). */
  take(count: number): Uint8Array;
}

class MemorySource implements ByteSource {
  readonly #bytes: Uint8Array;
  #offset = 0;

  constructor(bytes: Uint8Array) {
    this.#bytes = bytes;
  }

  fill(count: number): Promise<number> {
    return Promise.resolve(Math.min(count, this.#bytes.length - this.#offset));
  }

  take(count: number): Uint8Array {
    const out = this.#bytes.subarray(this.#offset, this.#offset + count);
    this.#offset += count;
    return out;
  }
}

class FileSource implements ByteSource {
  readonly #handle: FileHandle;
  readonly #buffer = new Uint8Array(READ_CHUNK_BYTES);
  #start = 0;
  #end = 0;
  #filePosition = 0;
  #endOfFile = false;

  constructor(handle: FileHandle) {
    this.#handle = handle;
  }

  async fill(count: number): Promise<number> {
    assert(count <= this.#buffer.length, `cannot buffer ${count} bytes`);
    while (this.#end - this.#start < count && !this.#endOfFile) {
      if (this.#start > 0) {
        this.#buffer.copyWithin(0, this.#start, this.#end);
        this.#end -= this.#start;
        this.#start = 0;
      }
      const { bytesRead } = await this.#handle.read(
        this.#buffer,
        this.#end,
        this.#buffer.length - this.#end,
        this.#filePosition,
      );
      if (bytesRead === 0) this.#endOfFile = true;
      this.#end += bytesRead;
      this.#filePosition += bytesRead;
    }
    return Math.min(count, this.#end - this.#start);
  }

  take(count: number): Uint8Array {
    const out = this.#buffer.subarray(this.#start, this.#start + count);
    this.#start += count;
    return out;
  }
}

interface ScanResult {
  readonly audit: AccountabilityAudit;
  /** The format version of the file (null when its header is unusable). */
  readonly version: FormatVersion | null;
  /** Header plus every intact record before the first problem (what open() keeps of a torn file). */
  readonly validBytes: number;
  /** Chain hash after the last intact record (null when the header itself is unusable). */
  readonly lastGoodHead: Digest | null;
}

function failure(entry: number, reason: string, tornTail = false): AccountabilityAudit {
  return { ok: false, entry, reason, tornTail };
}

async function scanLog(source: ByteSource, options: AuditOptions): Promise<ScanResult> {
  const headerAvailable = await source.fill(HEADER_BYTES);
  if (headerAvailable < HEADER_BYTES) {
    return {
      audit: failure(
        0,
        `the file ends inside the header (${headerAvailable} of ${HEADER_BYTES} bytes)`,
        true,
      ),
      version: null,
      validBytes: 0,
      lastGoodHead: null,
    };
  }
  const header = source.take(HEADER_BYTES);
  const checked = checkHeader(header, options);
  if (typeof checked === 'string') {
    return { audit: failure(0, checked), version: null, validBytes: 0, lastGoodHead: null };
  }
  const version = checked;
  const startHead = digest(header.slice(FILE_MAGIC.length, FILE_MAGIC.length + DIGEST_BYTES));
  let head = startHead;
  let records = 0;
  let droppedEntries = 0;
  let validBytes = HEADER_BYTES;
  for (;;) {
    const pause = options.pace?.();
    if (pause !== undefined) await pause;
    const entry = records + 1;
    const stopped = (audit: AccountabilityAudit): ScanResult => ({
      audit,
      version,
      validBytes,
      lastGoodHead: head,
    });
    const prefixAvailable = await source.fill(FRAME_PREFIX_BYTES);
    if (prefixAvailable === 0) break;
    if (prefixAvailable < FRAME_PREFIX_BYTES) {
      return stopped(failure(entry, `the file ends inside the frame of entry ${entry} (torn write?)`, true));
    }
    const prefix = source.take(FRAME_PREFIX_BYTES);
    const bodyLength = (prefix[0]! << 8) | prefix[1]!;
    const lengthCheck = (prefix[2]! << 8) | prefix[3]!;
    if ((bodyLength ^ 0xffff) !== lengthCheck) {
      return stopped(failure(entry, `entry ${entry} has a corrupt length (check bytes do not match)`));
    }
    if (bodyLength < 1 || bodyLength > ACCOUNTABILITY_LOG_LIMITS.maxRecordBodyBytes) {
      return stopped(
        failure(
          entry,
          `entry ${entry} claims ${bodyLength} bytes, outside 1..maxRecordBodyBytes ` +
            `(${ACCOUNTABILITY_LOG_LIMITS.maxRecordBodyBytes})`,
        ),
      );
    }
    const restBytes = bodyLength + DIGEST_BYTES;
    const restAvailable = await source.fill(restBytes);
    if (restAvailable < restBytes) {
      return stopped(
        failure(
          entry,
          `the file ends inside entry ${entry} (${restAvailable} of ${restBytes} bytes; torn write?)`,
          true,
        ),
      );
    }
    const rest = source.take(restBytes);
    const body = rest.subarray(0, bodyLength);
    let decoded: DecodedRecord;
    try {
      decoded = decodeRecordBody(body, version);
    } catch (error) {
      if (!(error instanceof DecodeError)) throw error;
      return stopped(failure(entry, `entry ${entry} does not decode: ${error.reason}`));
    }
    const expected = chainHash(head, body);
    if (!bytesEqual(expected, rest.subarray(bodyLength))) {
      return stopped(
        failure(
          entry,
          `entry ${entry} breaks the hash chain: it was modified, or an entry was removed or reordered here`,
        ),
      );
    }
    head = expected;
    records = entry;
    validBytes += FRAME_PREFIX_BYTES + restBytes;
    if (decoded.type === 'gap') droppedEntries += decoded.droppedEntries;
    else options.onEntry?.(decoded.entry);
  }
  return {
    audit: { ok: true, entries: records, head, startHead, droppedEntries, formatVersion: version },
    version,
    validBytes,
    lastGoodHead: head,
  };
}

/** The file's format version, or why its header is refused. */
function checkHeader(header: Uint8Array, options: AuditOptions): FormatVersion | string {
  const magic = header.subarray(0, FILE_MAGIC.length);
  let version: FormatVersion;
  if (bytesEqual(magic, FILE_MAGIC)) version = 2;
  else if (bytesEqual(magic, FILE_MAGIC_V1)) version = 1;
  else {
    return `not an accountability log: the file does not start with ${ACCOUNTABILITY_LOG_FORMAT.magic} (or ${ACCOUNTABILITY_LOG_FORMAT.previousMagics.join(', ')})`;
  }
  const startHead = header.subarray(FILE_MAGIC.length, FILE_MAGIC.length + DIGEST_BYTES);
  const check = header.subarray(FILE_MAGIC.length + DIGEST_BYTES);
  if (!bytesEqual(sha256(HEADER_DOMAIN, magic, startHead), check)) {
    return 'the header checksum does not match (the start head was modified)';
  }
  if (options.expectedStartHead !== undefined && !bytesEqual(startHead, options.expectedStartHead)) {
    return 'the start head does not continue the expected previous head';
  }
  return version;
}

async function scanFile(path: string, options: AuditOptions): Promise<ScanResult> {
  const handle = await open(path, 'r');
  try {
    return await scanLog(new FileSource(handle), options);
  } finally {
    await handle.close();
  }
}

/**
 * Re-computes the chain of the log file at `path` and reports the first broken record. Never
 * throws: an unreadable file is reported as a broken header (entry 0). Reads through a bounded
 * buffer, whatever the file size. To check continuity across a rotation, audit `<path>.1` first
 * and pass its head as `expectedStartHead`.
 */
export async function auditAccountabilityLog(
  path: string,
  options: AuditOptions = {},
): Promise<AccountabilityAudit> {
  try {
    return (await scanFile(path, options)).audit;
  } catch (error) {
    return failure(0, `cannot read ${path}: ${error instanceof Error ? error.message : String(error)}`);
  }
}

/**
 * Audits the files of one log oldest first (as accountabilityLogFiles lists them), each but the
 * first required to continue the head the one before ended with: a file removed, reordered or
 * replaced between two others breaks the chain at the later one's header. Stops at the first
 * file that fails; returns the audit of each file it read.
 */
export async function auditAccountabilityLogFiles(
  files: readonly string[],
  options: Omit<AuditOptions, 'expectedStartHead'> = {},
): Promise<{ readonly file: string; readonly audit: AccountabilityAudit }[]> {
  const audits: { file: string; audit: AccountabilityAudit }[] = [];
  let previousHead: Digest | undefined;
  for (const file of files) {
    const audit = await auditAccountabilityLog(file, {
      ...options,
      ...(previousHead === undefined ? {} : { expectedStartHead: previousHead }),
    });
    audits.push({ file, audit });
    if (!audit.ok) break;
    previousHead = audit.head;
  }
  return audits;
}

/** Like auditAccountabilityLog, for a log held in memory (e.g. one handed over for an audit). */
export async function auditAccountabilityLogBytes(
  bytes: Uint8Array,
  options: AuditOptions = {},
): Promise<AccountabilityAudit> {
  return (await scanLog(new MemorySource(bytes), options)).audit;
}

// ───────────────────────────── writer ─────────────────────────────

interface QueuedFrame {
  readonly frame: Uint8Array;
  readonly headAfter: Digest;
}

function isMissingFile(error: unknown): boolean {
  return error instanceof Error && (error as NodeJS.ErrnoException).code === 'ENOENT';
}

async function scanIfExists(path: string): Promise<ScanResult | null> {
  try {
    return await scanFile(path, {});
  } catch (error) {
    if (isMissingFile(error)) return null;
    throw error;
  }
}

async function writeFully(handle: FileHandle, bytes: Uint8Array, position: number): Promise<void> {
  let written = 0;
  while (written < bytes.length) {
    const { bytesWritten } = await handle.write(bytes, written, bytes.length - written, position + written);
    written += bytesWritten;
  }
}

async function syncDirectory(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function createLogFile(path: string, startHead: Digest): Promise<FileHandle> {
  const handle = await open(path, 'w');
  try {
    await writeFully(handle, encodeHeader(startHead), 0);
    await handle.datasync();
    await syncDirectory(dirname(path));
    return handle;
  } catch (error) {
    await handle.close();
    throw error;
  }
}

/**
 * Appends chained entries to a log file. append() is synchronous and cheap (one SHA-256 and an
 * encoding): the chain head moves at once, and the bytes are written in the background, in
 * order, by one writer. One process must own a log file at a time.
 */
export class AccountabilityLog {
  readonly path: string;
  readonly maxBytes: number;
  readonly maxRotatedFiles: number;
  readonly maxBufferedBytes: number;
  readonly writeDelayMs: number;
  /** The pending delayed drain (see writeDelayMs), if any. */
  #drainTimer: NodeJS.Timeout | null = null;
  readonly #writer = new ByteWriter(ACCOUNTABILITY_LOG_LIMITS.maxRecordBodyBytes);
  #handle: FileHandle;
  /** Bytes in the current file that are written (the header included). */
  #fileBytes: number;
  /** Head after every accepted append, written or not. */
  #head: Digest;
  /** Head after the last record written to the current file: a rotation starts the next file there. */
  #writtenHead: Digest;
  #queue: QueuedFrame[] = [];
  /** Bytes queued or being written. */
  #bufferedBytes = 0;
  /** Entries dropped since the last gap record (not yet reported in the log). */
  #pendingDrop: DroppedEntries | null = null;
  #droppedEntries = 0;
  #rotations = 0;
  /** Disk work runs one operation at a time, in order, on this chain. */
  #diskWork: Promise<void> = Promise.resolve();
  #drainScheduled = false;
  #failure: Error | null = null;
  #closed = false;

  private constructor(
    path: string,
    options: Required<AccountabilityLogOptions>,
    handle: FileHandle,
    fileBytes: number,
    head: Digest,
  ) {
    this.path = path;
    this.maxBytes = options.maxBytes;
    this.maxRotatedFiles = options.maxRotatedFiles;
    this.maxBufferedBytes = options.maxBufferedBytes;
    this.writeDelayMs = options.writeDelayMs;
    this.#handle = handle;
    this.#fileBytes = fileBytes;
    this.#head = head;
    this.#writtenHead = head;
  }

  /**
   * Opens the log at `path`, creating it if missing, and continues its chain. A file whose last
   * record is torn (a crash during a write) is cut back to its last intact record. A missing file
   * next to `<path>.1` (a crash during a rotation) continues that file's chain. A version 1 file
   * is rotated (it is never appended to) and continued in a new version 2 file. Throws
   * AccountabilityLogError for a log that is broken anywhere else: it is evidence, so it is left
   * for an operator (and an audit) rather than appended to or overwritten.
   */
  static async open(path: string, options: AccountabilityLogOptions = {}): Promise<AccountabilityLog> {
    const limits = ACCOUNTABILITY_LOG_LIMITS;
    const resolved: Required<AccountabilityLogOptions> = {
      maxBytes: options.maxBytes ?? limits.defaultMaxFileBytes,
      maxRotatedFiles: options.maxRotatedFiles ?? limits.defaultMaxRotatedFiles,
      maxBufferedBytes: options.maxBufferedBytes ?? limits.defaultMaxBufferedBytes,
      writeDelayMs: options.writeDelayMs ?? limits.defaultWriteDelayMs,
    };
    assert(
      Number.isSafeInteger(resolved.maxBytes) && resolved.maxBytes >= MIN_ACCOUNTABILITY_LOG_BYTES,
      `maxBytes must be an integer ≥ ${MIN_ACCOUNTABILITY_LOG_BYTES}, got ${resolved.maxBytes}`,
    );
    assert(
      Number.isSafeInteger(resolved.maxRotatedFiles) &&
        resolved.maxRotatedFiles >= 1 &&
        resolved.maxRotatedFiles <= limits.maxRotatedFiles,
      `maxRotatedFiles must be an integer from 1 to ${limits.maxRotatedFiles}, got ${resolved.maxRotatedFiles}`,
    );
    assert(
      Number.isSafeInteger(resolved.maxBufferedBytes) && resolved.maxBufferedBytes >= MIN_BUFFERED_BYTES,
      `maxBufferedBytes must be an integer ≥ ${MIN_BUFFERED_BYTES}, got ${resolved.maxBufferedBytes}`,
    );
    assert(
      Number.isSafeInteger(resolved.writeDelayMs) &&
        resolved.writeDelayMs >= 0 &&
        resolved.writeDelayMs <= limits.maxWriteDelayMs,
      `writeDelayMs must be an integer from 0 to ${limits.maxWriteDelayMs}, got ${resolved.writeDelayMs}`,
    );
    const existing = await scanIfExists(path);
    // A file that ends inside its header was being created when the process stopped.
    if (existing === null || (!existing.audit.ok && existing.audit.entry === 0 && existing.audit.tornTail)) {
      const startHead = await AccountabilityLog.#headOfRotatedFile(path);
      const handle = await createLogFile(path, startHead);
      return new AccountabilityLog(path, resolved, handle, HEADER_BYTES, startHead);
    }
    const audit = existing.audit;
    if (!audit.ok && !audit.tornTail) {
      throw new AccountabilityLogError(
        `accountability log ${path} is broken at entry ${audit.entry}: ${audit.reason}`,
      );
    }
    const handle = await open(path, 'r+');
    let continued = false;
    try {
      if (!audit.ok) {
        await handle.truncate(existing.validBytes);
        await handle.datasync();
      }
      if (existing.version === 2) {
        continued = true;
        return new AccountabilityLog(path, resolved, handle, existing.validBytes, existing.lastGoodHead!);
      }
    } finally {
      if (!continued) await handle.close();
    }
    // A file of an older version: its chain goes on in a new file of this version.
    await shiftRotatedFiles(path, resolved.maxRotatedFiles);
    const head = existing.lastGoodHead!;
    return new AccountabilityLog(path, resolved, await createLogFile(path, head), HEADER_BYTES, head);
  }

  static async #headOfRotatedFile(path: string): Promise<Digest> {
    const rotated = await scanIfExists(rotatedPath(path));
    if (rotated === null) return ACCOUNTABILITY_LOG_GENESIS_HEAD;
    if (!rotated.audit.ok) {
      throw new AccountabilityLogError(
        `cannot continue the chain of ${rotatedPath(path)}: broken at entry ${rotated.audit.entry}: ${rotated.audit.reason}`,
      );
    }
    return rotated.audit.head;
  }

  /** The chain hash after the latest accepted append (written to disk or still buffered). */
  head(): Digest {
    return this.#head;
  }

  /** Entries dropped because the buffer was full or the log had failed, since open(). */
  get droppedEntries(): number {
    return this.#droppedEntries;
  }

  /** Bytes appended but not yet written. */
  get bufferedBytes(): number {
    return this.#bufferedBytes;
  }

  get rotations(): number {
    return this.#rotations;
  }

  /** The write error that stopped the log, if any (flush() and close() reject with it). */
  get failure(): Error | null {
    return this.#failure;
  }

  /**
   * Chains `entry` and queues it for writing. Returns false, dropping the entry, when the buffer
   * is full or a write has failed (see AccountabilityLogOptions.maxBufferedBytes). Throws
   * InvariantViolation after close() or for an entry beyond the format's limits (a caller bug).
   */
  append(entry: AccountabilityEntry): boolean {
    if (this.#closed) throw new InvariantViolation('append to a closed accountability log');
    const body = encodeEntryBody(this.#writer, entry);
    const gapBody = this.#pendingDrop === null ? null : encodeGapBody(this.#writer, this.#pendingDrop);
    const neededBytes = frameLength(body) + (gapBody === null ? 0 : frameLength(gapBody));
    if (this.#failure !== null || this.#bufferedBytes + neededBytes > this.maxBufferedBytes) {
      this.#noteDropped(entry.atMs);
      return false;
    }
    if (gapBody !== null) {
      this.#enqueue(gapBody);
      this.#pendingDrop = null;
    }
    this.#enqueue(body);
    this.#scheduleDrain();
    return true;
  }

  /** Resolves once every entry appended before the call is written and fdatasync'd. */
  async flush(): Promise<void> {
    await this.#exclusive(async () => {
      await this.#drain();
      if (this.#failure !== null) throw this.#failure;
      await this.#handle.datasync();
    });
  }

  /** Flushes and closes the file; rejects with the write failure, if any, after closing. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    try {
      await this.flush();
    } finally {
      await this.#exclusive(async () => {
        await this.#handle.close().catch(() => undefined);
      });
    }
  }

  #enqueue(body: Uint8Array): void {
    this.#head = chainHash(this.#head, body);
    const frame = frameRecord(body, this.#head);
    this.#queue.push({ frame, headAfter: this.#head });
    this.#bufferedBytes += frame.length;
  }

  #noteDropped(atMs: number): void {
    this.#droppedEntries++;
    if (this.#pendingDrop === null) this.#pendingDrop = { count: 1, firstAtMs: atMs, lastAtMs: atMs };
    else {
      this.#pendingDrop.count++;
      this.#pendingDrop.lastAtMs = Math.max(this.#pendingDrop.lastAtMs, atMs);
    }
  }

  #exclusive(work: () => Promise<void>): Promise<void> {
    const result = this.#diskWork.then(work);
    this.#diskWork = result.catch(() => undefined);
    return result;
  }

  #scheduleDrain(): void {
    // Due now: no delay configured, or a write's worth waits (whatever a pending timer says).
    const due = this.writeDelayMs === 0 || this.#bufferedBytes >= MAX_WRITE_BATCH_BYTES;
    if (this.#drainScheduled && !(due && this.#drainTimer !== null)) return;
    this.#cancelDrainTimer();
    this.#drainScheduled = true;
    // #drain never rejects: a failure is kept in #failure for flush() and close() to report.
    if (due) {
      void this.#exclusive(() => this.#drain());
      return;
    }
    this.#drainTimer = setTimeout(() => {
      this.#drainTimer = null;
      void this.#exclusive(() => this.#drain());
    }, this.writeDelayMs);
    // A log alone keeps no process alive; close() writes what waits.
    this.#drainTimer.unref();
  }

  #cancelDrainTimer(): void {
    if (this.#drainTimer !== null) clearTimeout(this.#drainTimer);
    this.#drainTimer = null;
  }

  async #drain(): Promise<void> {
    this.#drainScheduled = false;
    // flush() may get here before the timer: what it would have written is written now.
    this.#cancelDrainTimer();
    let framesInFlight = 0;
    try {
      while (this.#queue.length > 0 && this.#failure === null) {
        const { frames, rotateAfter } = this.#takeWriteBatch();
        framesInFlight = frames.length;
        if (frames.length > 0) await this.#write(frames);
        framesInFlight = 0;
        if (rotateAfter) await this.#rotate();
      }
    } catch (error) {
      this.#failure = error instanceof Error ? error : new Error(String(error));
      // What was queued will never be written: account for it as dropped, and free the memory.
      this.#droppedEntries += framesInFlight + this.#queue.length;
      this.#queue = [];
      this.#bufferedBytes = 0;
    }
  }

  /** The frames that fit in the current file (and one write), and whether the file is full after them. */
  #takeWriteBatch(): { frames: QueuedFrame[]; rotateAfter: boolean } {
    let count = 0;
    let batchBytes = 0;
    let rotateAfter = false;
    for (const queued of this.#queue) {
      const fileBytes = this.#fileBytes + batchBytes;
      // Rotate before a record that would overflow the file, unless the file holds no record yet.
      if (fileBytes + queued.frame.length > this.maxBytes && fileBytes > HEADER_BYTES) {
        rotateAfter = true;
        break;
      }
      if (count > 0 && batchBytes + queued.frame.length > MAX_WRITE_BATCH_BYTES) break;
      count++;
      batchBytes += queued.frame.length;
    }
    return { frames: this.#queue.splice(0, count), rotateAfter };
  }

  async #write(frames: readonly QueuedFrame[]): Promise<void> {
    let totalBytes = 0;
    for (const queued of frames) totalBytes += queued.frame.length;
    const batch = new Uint8Array(totalBytes);
    let offset = 0;
    for (const queued of frames) {
      batch.set(queued.frame, offset);
      offset += queued.frame.length;
    }
    await writeFully(this.#handle, batch, this.#fileBytes);
    this.#fileBytes += totalBytes;
    this.#bufferedBytes -= totalBytes;
    this.#writtenHead = frames[frames.length - 1]!.headAfter;
  }

  /**
   * The full file becomes `<path>.1` (replacing an older one) and a new file starts with a header
   * carrying the head the old file ended with. The old file is synced before the rename, so the
   * chain never depends on bytes that could still be lost.
   */
  async #rotate(): Promise<void> {
    await this.#handle.datasync();
    await this.#handle.close();
    await shiftRotatedFiles(this.path, this.maxRotatedFiles);
    this.#handle = await createLogFile(this.path, this.#writtenHead);
    this.#fileBytes = HEADER_BYTES;
    this.#rotations++;
  }
}

function frameLength(body: Uint8Array): number {
  return FRAME_PREFIX_BYTES + body.length + DIGEST_BYTES;
}

/** Where the `index`th rotated file of a log goes (1, the default, is the newest). */
export function rotatedPath(path: string, index = 1): string {
  return `${path}.${index}`;
}

/**
 * `<path>.{N-1}` → `<path>.N`, …, `<path>` → `<path>.1`, the oldest file deleted. A crash in
 * between leaves a hole in the numbering at worst, which the next rotation closes; open()
 * continues the chain from `<path>` or, without it, from `<path>.1`.
 */
async function shiftRotatedFiles(path: string, maxRotatedFiles: number): Promise<void> {
  const renameIfPresent = async (from: string, to: string): Promise<void> => {
    try {
      await rename(from, to);
    } catch (error) {
      if (!isMissingFile(error)) throw error;
    }
  };
  try {
    await unlink(rotatedPath(path, maxRotatedFiles));
  } catch (error) {
    if (!isMissingFile(error)) throw error;
  }
  for (let index = maxRotatedFiles - 1; index >= 1; index--) {
    await renameIfPresent(rotatedPath(path, index), rotatedPath(path, index + 1));
  }
  await renameIfPresent(path, rotatedPath(path, 1));
}

/**
 * The files of the log at `path` that exist, oldest first: `<path>.N` … `<path>.1`, then `<path>`
 * (what auditAccountabilityLogFiles takes, and what a guardian archives when it stops a replica).
 */
export function accountabilityLogFiles(path: string): string[] {
  const name = basename(path);
  let names: string[];
  try {
    names = readdirSync(dirname(path));
  } catch (error) {
    if (isMissingFile(error)) return [];
    throw error;
  }
  const rotated: number[] = [];
  for (const candidate of names) {
    if (!candidate.startsWith(`${name}.`)) continue;
    const suffix = candidate.slice(name.length + 1);
    if (/^[1-9][0-9]*$/.test(suffix)) rotated.push(Number(suffix));
  }
  const files = rotated.sort((a, b) => b - a).map((index) => rotatedPath(path, index));
  if (names.includes(name)) files.push(path);
  return files;
}
