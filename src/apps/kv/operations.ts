/**
 * Binary formats of the key-value store: the operations clients send, the results replicas
 * return, and the chunks a snapshot is made of.
 *
 * Every operation and result starts with a tag byte naming both its kind and its format version
 * (0x1_ operations, 0x2_ results, 0x3_ errors, all version 1); an incompatible future format gets
 * new tags, so an old decoder rejects it instead of misreading it. Integers are big-endian.
 * Field encodings:
 *   key / prefix / text:  u16 length, UTF-8 bytes
 *   value:                u32 length, bytes
 *   optional value:       u8 0 (absent) | u8 1, value
 *   boolean:              u8 0 | 1
 *
 * Encodings are canonical (one byte string per value: booleans must be 0 or 1, UTF-8 must be
 * valid and is never normalised, no trailing bytes), which matters because replicas compare
 * results and snapshot chunks byte for byte.
 *
 * Decoders take untrusted bytes and never throw: they return `{ ok: false, reason }` naming the
 * problem and the limit involved. Encoders take values built by the caller's own code and throw a
 * RangeError when a value breaks a limit, since that is a bug in the caller.
 */
import { defineOperations } from '../../core/operations.js';
import { LIMITS } from '../../messages/limits.js';

/**
 * Room reserved in an operation or result for the tag, the key and the length fields, so that a
 * put of a maximal value and the get result carrying it both fit LIMITS.maxOperationBytes /
 * LIMITS.maxResultBytes (and a list result can always hold at least one entry).
 */
const ENVELOPE_RESERVE_BYTES = 2048;

export const KV_LIMITS = {
  /** UTF-8 bytes of a key or list prefix. Keys are non-empty; a prefix may be empty. */
  maxKeyBytes: 1024,
  /**
   * Bytes of a value. A compareAndSet carries two values, and the whole operation must still fit
   * LIMITS.maxOperationBytes, so its expected value and new value share that budget.
   */
  maxValueBytes: Math.min(
    1024 * 1024,
    LIMITS.maxOperationBytes - ENVELOPE_RESERVE_BYTES,
    LIMITS.maxResultBytes - ENVELOPE_RESERVE_BYTES,
  ),
  /** Entries one list may ask for and return; a list result also stops at LIMITS.maxResultBytes. */
  maxListResults: 1000,
  /** UTF-8 bytes of the reason of a bad-request result. */
  maxReasonBytes: 1024,
} as const;

// ───────────────────────────── types ─────────────────────────────

export type KvOperation =
  | { readonly kind: 'put'; readonly key: string; readonly value: Uint8Array }
  | { readonly kind: 'get'; readonly key: string }
  | { readonly kind: 'delete'; readonly key: string }
  | {
      readonly kind: 'compareAndSet';
      readonly key: string;
      /** The value the key must hold for the swap to happen; null means the key must be absent. */
      readonly expected: Uint8Array | null;
      readonly value: Uint8Array;
    }
  | {
      readonly kind: 'list';
      /** Every key starting with this prefix ('' = all keys), in ascending key order. */
      readonly prefix: string;
      /** At most this many entries (0 ≤ limit ≤ KV_LIMITS.maxListResults). */
      readonly limit: number;
    };

export type KvOperationKind = KvOperation['kind'];

export interface KvEntry {
  readonly key: string;
  readonly value: Uint8Array;
}

export type KvResult =
  /** put and delete: whether the key held a value before the operation. */
  | { readonly kind: 'ok'; readonly existed: boolean }
  /** get: the value, or null when the key is absent. */
  | { readonly kind: 'value'; readonly value: Uint8Array | null }
  /** compareAndSet: whether it swapped, and the value the key holds after the operation. */
  | { readonly kind: 'cas'; readonly succeeded: boolean; readonly current: Uint8Array | null }
  /** list: entries in ascending key order; truncated when more matching keys exist. */
  | { readonly kind: 'list'; readonly entries: readonly KvEntry[]; readonly truncated: boolean }
  /** The client may not touch this key (or list this prefix). */
  | { readonly kind: 'access-denied'; readonly clientId: string; readonly keyOrPrefix: string }
  /** The operation bytes could not be decoded. */
  | { readonly kind: 'bad-request'; readonly reason: string }
  /** A mutating operation was sent as a read-only request. */
  | { readonly kind: 'not-read-only'; readonly operation: KvOperationKind }
  /** A write refused because the state would no longer fit a checkpoint (see KvService). */
  | { readonly kind: 'store-full'; readonly reason: string };

export type KvResultKind = KvResult['kind'];

export type KvDecoded<Value> =
  { readonly ok: true; readonly value: Value } | { readonly ok: false; readonly reason: string };

const operationTags = {
  put: 0x11,
  get: 0x12,
  delete: 0x13,
  compareAndSet: 0x14,
  list: 0x15,
} as const satisfies Record<KvOperationKind, number>;

const resultTags = {
  ok: 0x21,
  value: 0x22,
  cas: 0x23,
  list: 0x24,
  'access-denied': 0x31,
  'bad-request': 0x32,
  'not-read-only': 0x33,
  'store-full': 0x34,
} as const satisfies Record<KvResultKind, number>;

function operationKindOfTag(tag: number): KvOperationKind | undefined {
  for (const kind of Object.keys(operationTags) as KvOperationKind[]) {
    if (operationTags[kind] === tag) return kind;
  }
  return undefined;
}

export function isReadOnlyOperation(operation: KvOperation): boolean {
  return operation.kind === 'get' || operation.kind === 'list';
}

// ───────────────────────────── text ─────────────────────────────

const utf8Encoder = new TextEncoder();
// fatal: invalid UTF-8 is an error, not silently replaced; ignoreBOM: a leading U+FEFF is part of
// the key, not a byte-order mark to strip (stripping it would make two keys decode the same).
const utf8Decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** False for strings with lone surrogates, which have no UTF-8 form (TextEncoder would replace them). */
export function isWellFormedText(text: string): boolean {
  for (let index = 0; index < text.length; index++) {
    const unit = text.charCodeAt(index);
    if (unit < 0xd800 || unit > 0xdfff) continue;
    if (unit > 0xdbff) return false;
    const next = text.charCodeAt(index + 1);
    if (!(next >= 0xdc00 && next <= 0xdfff)) return false;
    index++;
  }
  return true;
}

/** UTF-8 of a string known to be well formed (e.g. one that came out of a decoder). */
export function utf8(text: string): Uint8Array {
  return utf8Encoder.encode(text);
}

/**
 * Key order: Unicode code point order, which is also the byte order of the UTF-8 encodings, so
 * clients in any language can reproduce it. Plain `<` compares UTF-16 code units instead, which
 * puts U+10000 and above (surrogate pairs) before U+E000–U+FFFF.
 */
export function compareKvKeys(left: string, right: string): number {
  const shorter = Math.min(left.length, right.length);
  for (let index = 0; index < shorter; index++) {
    const a = left.charCodeAt(index);
    const b = right.charCodeAt(index);
    if (a !== b) return codePointRank(a) - codePointRank(b);
  }
  return left.length - right.length;
}

/** Moves surrogates (D800–DFFF) above E000–FFFF while keeping each range's internal order. */
function codePointRank(unit: number): number {
  if (unit < 0xd800) return unit;
  return unit >= 0xe000 ? unit - 0x800 : unit + 0x2000;
}

function encodeText(text: string, what: string, minBytes: number, maxBytes: number): Uint8Array {
  if (!isWellFormedText(text))
    throw new RangeError(`${what} contains a lone surrogate and has no UTF-8 form`);
  const bytes = utf8Encoder.encode(text);
  if (bytes.length < minBytes) throw new RangeError(`${what} must not be empty`);
  if (bytes.length > maxBytes)
    throw new RangeError(`${what} is ${bytes.length} UTF-8 bytes, limit ${maxBytes}`);
  return bytes;
}

function checkValue(value: Uint8Array, what: string): void {
  if (value.length > KV_LIMITS.maxValueBytes) {
    throw new RangeError(
      `${what} is ${value.length} bytes, KV_LIMITS.maxValueBytes is ${KV_LIMITS.maxValueBytes}`,
    );
  }
}

// ───────────────────────────── byte helpers ─────────────────────────────

type Piece = Uint8Array | { readonly width: 1 | 2 | 4; readonly value: number };

/** Collects fields, then copies them into one exactly sized buffer (values are copied once). */
class ByteBuilder {
  readonly #pieces: Piece[] = [];
  #length = 0;

  get length(): number {
    return this.#length;
  }

  u8(value: number): this {
    return this.#integer(1, value);
  }
  u16(value: number): this {
    return this.#integer(2, value);
  }
  u32(value: number): this {
    return this.#integer(4, value);
  }
  boolean(value: boolean): this {
    return this.u8(value ? 1 : 0);
  }
  raw(bytes: Uint8Array): this {
    this.#pieces.push(bytes);
    this.#length += bytes.length;
    return this;
  }
  /** u16 length + bytes (keys, prefixes, text). */
  short(bytes: Uint8Array): this {
    return this.u16(bytes.length).raw(bytes);
  }
  /** u32 length + bytes (values). */
  long(bytes: Uint8Array): this {
    return this.u32(bytes.length).raw(bytes);
  }
  optionalLong(bytes: Uint8Array | null): this {
    return bytes === null ? this.u8(0) : this.u8(1).long(bytes);
  }

  finish(): Uint8Array {
    const out = new Uint8Array(this.#length);
    const view = new DataView(out.buffer);
    let offset = 0;
    for (const piece of this.#pieces) {
      if (piece instanceof Uint8Array) {
        out.set(piece, offset);
        offset += piece.length;
      } else {
        if (piece.width === 1) view.setUint8(offset, piece.value);
        else if (piece.width === 2) view.setUint16(offset, piece.value);
        else view.setUint32(offset, piece.value);
        offset += piece.width;
      }
    }
    return out;
  }

  #integer(width: 1 | 2 | 4, value: number): this {
    this.#pieces.push({ width, value });
    this.#length += width;
    return this;
  }
}

/** Thrown inside a decoder only; the exported decoders turn it into `{ ok: false }`. */
class DecodeFailure extends Error {
  override readonly name = 'DecodeFailure';
}

class ByteReader {
  readonly #bytes: Uint8Array;
  readonly #view: DataView;
  #offset = 0;

  constructor(bytes: Uint8Array) {
    this.#bytes = bytes;
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  u8(what: string): number {
    this.#need(1, what);
    return this.#view.getUint8(this.#offset++);
  }
  u16(what: string): number {
    this.#need(2, what);
    const value = this.#view.getUint16(this.#offset);
    this.#offset += 2;
    return value;
  }
  u32(what: string): number {
    this.#need(4, what);
    const value = this.#view.getUint32(this.#offset);
    this.#offset += 4;
    return value;
  }
  boolean(what: string): boolean {
    const byte = this.u8(what);
    if (byte > 1) throw new DecodeFailure(`${what} must be 0 or 1, got ${byte}`);
    return byte === 1;
  }
  /**
   * A copy, so decoded values never alias (and never pin) the input buffer; unless `view`: then a
   * view into the decoded bytes, which it keeps alive.
   */
  bytes(count: number, what: string, view = false): Uint8Array {
    this.#need(count, what);
    const end = this.#offset + count;
    const out = view ? this.#bytes.subarray(this.#offset, end) : this.#bytes.slice(this.#offset, end);
    this.#offset = end;
    return out;
  }

  /** u16 length + UTF-8, at most maxBytes; `minBytes` 1 for keys, 0 for prefixes and text. */
  text(
    what: string,
    minBytes: number,
    maxBytes: number,
  ): { readonly text: string; readonly bytes: Uint8Array } {
    const length = this.u16(`${what} length`);
    if (length < minBytes) throw new DecodeFailure(`${what} must not be empty`);
    if (length > maxBytes) throw new DecodeFailure(`${what} is ${length} bytes, limit ${maxBytes}`);
    const bytes = this.bytes(length, what);
    let text: string;
    try {
      text = utf8Decoder.decode(bytes);
    } catch {
      throw new DecodeFailure(`${what} is not valid UTF-8`);
    }
    return { text, bytes };
  }
  key(what: string): string {
    return this.text(what, 1, KV_LIMITS.maxKeyBytes).text;
  }
  value(what: string, view = false): Uint8Array {
    const length = this.u32(`${what} length`);
    if (length > KV_LIMITS.maxValueBytes) {
      throw new DecodeFailure(
        `${what} is ${length} bytes, KV_LIMITS.maxValueBytes is ${KV_LIMITS.maxValueBytes}`,
      );
    }
    return this.bytes(length, what, view);
  }
  optionalValue(what: string): Uint8Array | null {
    return this.boolean(`${what} presence flag`) ? this.value(what) : null;
  }

  end(what: string): void {
    const left = this.#bytes.length - this.#offset;
    if (left !== 0) throw new DecodeFailure(`${left} unexpected bytes after the end of ${what}`);
  }

  #need(count: number, what: string): void {
    const left = this.#bytes.length - this.#offset;
    if (left < count) throw new DecodeFailure(`truncated: ${what} needs ${count} bytes, only ${left} left`);
  }
}

function decodeWith<Value>(
  bytes: Uint8Array,
  what: string,
  maxBytes: number,
  maxBytesName: string,
  read: (reader: ByteReader) => Value,
): KvDecoded<Value> {
  if (bytes.length > maxBytes) {
    return { ok: false, reason: `${what} is ${bytes.length} bytes, ${maxBytesName} is ${maxBytes}` };
  }
  try {
    const reader = new ByteReader(bytes);
    const value = read(reader);
    reader.end(what);
    return { ok: true, value };
  } catch (error) {
    if (error instanceof DecodeFailure) return { ok: false, reason: `${what}: ${error.message}` };
    throw error;
  }
}

// ───────────────────────────── operations ─────────────────────────────

export function encodeKvOperation(operation: KvOperation): Uint8Array {
  const out = new ByteBuilder().u8(operationTags[operation.kind]);
  switch (operation.kind) {
    case 'put':
      checkValue(operation.value, 'value');
      out.short(encodeText(operation.key, 'key', 1, KV_LIMITS.maxKeyBytes)).long(operation.value);
      break;
    case 'get':
    case 'delete':
      out.short(encodeText(operation.key, 'key', 1, KV_LIMITS.maxKeyBytes));
      break;
    case 'compareAndSet':
      if (operation.expected !== null) checkValue(operation.expected, 'expected value');
      checkValue(operation.value, 'value');
      out
        .short(encodeText(operation.key, 'key', 1, KV_LIMITS.maxKeyBytes))
        .optionalLong(operation.expected)
        .long(operation.value);
      break;
    case 'list':
      if (
        !Number.isInteger(operation.limit) ||
        operation.limit < 0 ||
        operation.limit > KV_LIMITS.maxListResults
      ) {
        throw new RangeError(
          `list limit must be an integer from 0 to KV_LIMITS.maxListResults (${KV_LIMITS.maxListResults}), got ${operation.limit}`,
        );
      }
      out.short(encodeText(operation.prefix, 'prefix', 0, KV_LIMITS.maxKeyBytes)).u32(operation.limit);
      break;
  }
  if (out.length > LIMITS.maxOperationBytes) {
    throw new RangeError(
      `operation is ${out.length} bytes, LIMITS.maxOperationBytes is ${LIMITS.maxOperationBytes}`,
    );
  }
  return out.finish();
}

export function decodeKvOperation(bytes: Uint8Array): KvDecoded<KvOperation> {
  return decodeWith(
    bytes,
    'kv operation',
    LIMITS.maxOperationBytes,
    'LIMITS.maxOperationBytes',
    readOperation,
  );
}

function readOperation(reader: ByteReader): KvOperation {
  const tag = reader.u8('operation tag');
  const kind = operationKindOfTag(tag);
  switch (kind) {
    case 'put': {
      const key = reader.key('key');
      return { kind, key, value: reader.value('value') };
    }
    case 'get':
    case 'delete':
      return { kind, key: reader.key('key') };
    case 'compareAndSet': {
      const key = reader.key('key');
      const expected = reader.optionalValue('expected value');
      return { kind, key, expected, value: reader.value('value') };
    }
    case 'list': {
      const prefix = reader.text('prefix', 0, KV_LIMITS.maxKeyBytes).text;
      const limit = reader.u32('list limit');
      if (limit > KV_LIMITS.maxListResults) {
        throw new DecodeFailure(
          `list limit ${limit} exceeds KV_LIMITS.maxListResults (${KV_LIMITS.maxListResults})`,
        );
      }
      return { kind, prefix, limit };
    }
    case undefined:
      throw new DecodeFailure(`unknown operation tag 0x${tag.toString(16).padStart(2, '0')}`);
  }
}

// ───────────────────────────── results ─────────────────────────────

/** Encoded size of a list result with no entries: tag, truncated flag, u32 entry count. */
export const LIST_RESULT_HEADER_BYTES = 1 + 1 + 4;

/** Encoded size of one list result entry (and of one snapshot chunk entry: same layout). */
export function kvEntryEncodedBytes(keyBytes: number, valueBytes: number): number {
  return 2 + keyBytes + 4 + valueBytes;
}

export function encodeKvResult(result: KvResult): Uint8Array {
  const out = new ByteBuilder().u8(resultTags[result.kind]);
  switch (result.kind) {
    case 'ok':
      out.boolean(result.existed);
      break;
    case 'value':
      if (result.value !== null) checkValue(result.value, 'value');
      out.optionalLong(result.value);
      break;
    case 'cas':
      if (result.current !== null) checkValue(result.current, 'current value');
      out.boolean(result.succeeded).optionalLong(result.current);
      break;
    case 'list':
      if (result.entries.length > KV_LIMITS.maxListResults) {
        throw new RangeError(
          `list result has ${result.entries.length} entries, KV_LIMITS.maxListResults is ${KV_LIMITS.maxListResults}`,
        );
      }
      out.boolean(result.truncated).u32(result.entries.length);
      for (const entry of result.entries) {
        checkValue(entry.value, 'value');
        out.short(encodeText(entry.key, 'key', 1, KV_LIMITS.maxKeyBytes)).long(entry.value);
      }
      break;
    case 'access-denied':
      out
        .short(encodeText(result.clientId, 'client id', 0, LIMITS.maxClientIdBytes))
        .short(encodeText(result.keyOrPrefix, 'key or prefix', 0, KV_LIMITS.maxKeyBytes));
      break;
    case 'bad-request':
      out.short(encodeText(result.reason, 'reason', 0, KV_LIMITS.maxReasonBytes));
      break;
    case 'not-read-only':
      out.u8(operationTags[result.operation]);
      break;
    case 'store-full':
      out.short(encodeText(result.reason, 'reason', 0, KV_LIMITS.maxReasonBytes));
      break;
  }
  if (out.length > LIMITS.maxResultBytes) {
    throw new RangeError(`result is ${out.length} bytes, LIMITS.maxResultBytes is ${LIMITS.maxResultBytes}`);
  }
  return out.finish();
}

export function decodeKvResult(bytes: Uint8Array): KvDecoded<KvResult> {
  return decodeWith(bytes, 'kv result', LIMITS.maxResultBytes, 'LIMITS.maxResultBytes', readResult);
}

function readResult(reader: ByteReader): KvResult {
  const tag = reader.u8('result tag');
  switch (tag) {
    case resultTags.ok:
      return { kind: 'ok', existed: reader.boolean('existed flag') };
    case resultTags.value:
      return { kind: 'value', value: reader.optionalValue('value') };
    case resultTags.cas: {
      const succeeded = reader.boolean('succeeded flag');
      return { kind: 'cas', succeeded, current: reader.optionalValue('current value') };
    }
    case resultTags.list: {
      const truncated = reader.boolean('truncated flag');
      const count = reader.u32('entry count');
      if (count > KV_LIMITS.maxListResults) {
        throw new DecodeFailure(
          `${count} entries exceed KV_LIMITS.maxListResults (${KV_LIMITS.maxListResults})`,
        );
      }
      const entries: KvEntry[] = [];
      for (let index = 0; index < count; index++) {
        const key = reader.key(`key of entry ${index}`);
        entries.push({ key, value: reader.value(`value of entry ${index}`) });
      }
      return { kind: 'list', entries, truncated };
    }
    case resultTags['access-denied']: {
      const clientId = reader.text('client id', 0, LIMITS.maxClientIdBytes).text;
      return {
        kind: 'access-denied',
        clientId,
        keyOrPrefix: reader.text('key or prefix', 0, KV_LIMITS.maxKeyBytes).text,
      };
    }
    case resultTags['bad-request']:
      return { kind: 'bad-request', reason: reader.text('reason', 0, KV_LIMITS.maxReasonBytes).text };
    case resultTags['not-read-only']: {
      const operationTag = reader.u8('operation tag');
      const operation = operationKindOfTag(operationTag);
      if (operation === undefined) {
        throw new DecodeFailure(`unknown operation tag 0x${operationTag.toString(16).padStart(2, '0')}`);
      }
      return { kind: 'not-read-only', operation };
    }
    case resultTags['store-full']:
      return { kind: 'store-full', reason: reader.text('reason', 0, KV_LIMITS.maxReasonBytes).text };
    default:
      throw new DecodeFailure(`unknown result tag 0x${tag.toString(16).padStart(2, '0')}`);
  }
}

// ───────────────────────────── snapshot chunks ─────────────────────────────

/**
 * Snapshot chunk, format version 1:
 *   u8 0x41 | u32 bucketCount | u32 bucketIndex | u32 part | u32 entryCount | entries
 * with each entry `u16 key length, key UTF-8, u32 value length, value`, in ascending key order.
 * A bucket is normally one chunk (part 0); one whose entries exceed LIMITS.maxChunkBytes
 * continues in parts 1, 2, … (see KvService).
 */
const chunkTag = 0x41;

/**
 * The store's operations and results as one service's codecs (src/core/operations.ts): KvClient
 * speaks them through TypedClient, the service encodes its results with them. The service decodes
 * operations with decodeKvOperation itself, whose reason goes into its bad-request answer.
 */
export const kvOperations = defineOperations<KvOperation, KvResult>({
  encodeOperation: encodeKvOperation,
  decodeOperation: (bytes) => {
    const decoded = decodeKvOperation(bytes);
    return decoded.ok ? decoded.value : null;
  },
  encodeResult: encodeKvResult,
  decodeResult: (bytes) => {
    const decoded = decodeKvResult(bytes);
    return decoded.ok ? decoded.value : null;
  },
  isReadOnly: isReadOnlyOperation,
});

export const KV_CHUNK_HEADER_BYTES = 1 + 4 + 4 + 4 + 4;

export interface KvChunkHeader {
  /** Buckets of the service that wrote the chunk; restoring into a different count is an error. */
  readonly bucketCount: number;
  readonly bucketIndex: number;
  /** Position of this chunk within its bucket, from 0. */
  readonly part: number;
}

/** An entry as the service stores it: the key together with its UTF-8 form. */
export interface KvStoredEntry {
  readonly key: string;
  readonly keyBytes: Uint8Array;
  readonly value: Uint8Array;
}

export interface KvChunk {
  readonly header: KvChunkHeader;
  readonly entries: readonly KvStoredEntry[];
}

/** Writes the entries as given; ordering and splitting are the caller's job. */
export function encodeKvChunk(header: KvChunkHeader, entries: readonly KvStoredEntry[]): Uint8Array {
  const out = new ByteBuilder()
    .u8(chunkTag)
    .u32(header.bucketCount)
    .u32(header.bucketIndex)
    .u32(header.part)
    .u32(entries.length);
  for (const entry of entries) out.short(entry.keyBytes).long(entry.value);
  if (out.length > LIMITS.maxChunkBytes) {
    throw new RangeError(`chunk is ${out.length} bytes, LIMITS.maxChunkBytes is ${LIMITS.maxChunkBytes}`);
  }
  return out.finish();
}

/**
 * Checks the structure and limits only; bucket membership and key order are checked by the service.
 * Values are copies, except the value of a chunk's only entry: that one is a view into `bytes`
 * (which must then not change). Such a chunk is little more than its value, so the view pins no
 * memory the entry does not need, and restoring large values (each in its own chunk) copies no
 * state.
 */
export function decodeKvChunk(bytes: Uint8Array): KvDecoded<KvChunk> {
  return decodeWith(bytes, 'kv snapshot chunk', LIMITS.maxChunkBytes, 'LIMITS.maxChunkBytes', (reader) => {
    const tag = reader.u8('chunk tag');
    if (tag !== chunkTag) throw new DecodeFailure(`unknown chunk tag 0x${tag.toString(16).padStart(2, '0')}`);
    const bucketCount = reader.u32('bucket count');
    const bucketIndex = reader.u32('bucket index');
    if (bucketIndex >= bucketCount) {
      throw new DecodeFailure(`bucket index ${bucketIndex} is not below the bucket count ${bucketCount}`);
    }
    const part = reader.u32('part');
    const count = reader.u32('entry count');
    const entries: KvStoredEntry[] = [];
    for (let index = 0; index < count; index++) {
      const key = reader.text(`key of entry ${index}`, 1, KV_LIMITS.maxKeyBytes);
      const value = reader.value(`value of entry ${index}`, count === 1);
      entries.push({ key: key.text, keyBytes: key.bytes, value });
    }
    return { header: { bucketCount, bucketIndex, part }, entries };
  });
}
