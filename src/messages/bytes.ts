/**
 * Byte-level primitives shared by every binary codec in Phalanx: wire messages, signing payloads,
 * and (outside messages/) storage records and service operations.
 *
 * Format conventions, fixed here so that every codec built on them agrees:
 * - fixed-width integers (`u8`, `u16`, `u32`) are big-endian;
 * - `varuint` is unsigned LEB128 in its shortest form, at most 8 bytes, value ≤ 2^53 − 1;
 * - booleans are one byte, 0 or 1 and nothing else;
 * - byte strings and UTF-8 strings carry a varuint length prefix.
 *
 * Every encoding is canonical: the reader rejects overlong varuints and booleans other than 0/1,
 * so a value has exactly one encoding. That matters because digests and signatures are computed
 * over these bytes, and two encodings of one value would let an attacker vary a digest at will.
 *
 * Pure and portable: no Node.js APIs, only Uint8Array and the TextEncoder/TextDecoder globals.
 */
import { InvariantViolation, MAX_COUNTER } from './ids.js';

const DEFAULT_INITIAL_CAPACITY = 256;
const MINIMUM_CAPACITY = 16;
/** ⌈53 / 7⌉: the longest canonical varuint of a safe integer. */
const MAX_VARUINT_BYTES = 8;
/**
 * The eighth varuint byte carries bits 49..55; only 4 of them fit below 2^53, and a continuation
 * bit there would be a ninth byte.
 */
const MAX_LAST_VARUINT_BYTE = 0x0f;

const textEncoder = new TextEncoder();
/** `fatal` so that malformed UTF-8 is rejected rather than silently replaced by U+FFFD. */
const textDecoder = new TextDecoder('utf-8', { fatal: true });

/** Number of bytes `ByteWriter.varuint(value)` writes. */
export function varuintLength(value: number): number {
  let length = 1;
  let rest = value;
  while (rest >= 0x80) {
    rest = Math.floor(rest / 0x80);
    length++;
  }
  return length;
}

/**
 * Growable output buffer. Writing never allocates except when the buffer has to grow (it doubles),
 * so a writer that is reset and reused settles at the size of the largest output and then encodes
 * without allocating at all until `finish()`.
 *
 * Values out of range for the primitive (a negative varuint, a u16 above 65535) are programming
 * errors, not input errors: they throw InvariantViolation.
 */
export class ByteWriter {
  #buffer: Uint8Array;
  #length = 0;

  constructor(initialCapacity: number = DEFAULT_INITIAL_CAPACITY) {
    this.#buffer = new Uint8Array(Math.max(MINIMUM_CAPACITY, initialCapacity));
  }

  /** Bytes written so far. */
  get length(): number {
    return this.#length;
  }

  /** Size of the internal buffer, so an owner can drop a writer that grew too large to keep. */
  get capacity(): number {
    return this.#buffer.length;
  }

  /** Forgets what was written and keeps the buffer for reuse. */
  reset(): void {
    this.#length = 0;
  }

  /**
   * A COPY of exactly the bytes written. Copying (rather than returning a view of the internal
   * buffer) lets the writer be reset and reused right away without changing bytes the caller kept,
   * and keeps the caller from holding on to the spare capacity. A copy of 65 bytes to 4 KiB is a
   * view of a shared slab (see copyOut), as Node's Buffer pool does for small buffers.
   */
  finish(): Uint8Array {
    return copyOut(this.#buffer, this.#length);
  }

  u8(value: number): void {
    if (!(value >>> 0 === value && value <= 0xff)) throw new InvariantViolation(`u8 out of range: ${value}`);
    this.#reserve(1);
    this.#buffer[this.#length++] = value;
  }

  u16(value: number): void {
    if (!(value >>> 0 === value && value <= 0xffff))
      throw new InvariantViolation(`u16 out of range: ${value}`);
    this.#reserve(2);
    const buffer = this.#buffer;
    const offset = this.#length;
    buffer[offset] = value >>> 8;
    buffer[offset + 1] = value & 0xff;
    this.#length = offset + 2;
  }

  u32(value: number): void {
    if (value >>> 0 !== value) throw new InvariantViolation(`u32 out of range: ${value}`);
    this.#reserve(4);
    const buffer = this.#buffer;
    const offset = this.#length;
    buffer[offset] = value >>> 24;
    buffer[offset + 1] = (value >>> 16) & 0xff;
    buffer[offset + 2] = (value >>> 8) & 0xff;
    buffer[offset + 3] = value & 0xff;
    this.#length = offset + 4;
  }

  /** Unsigned LEB128, shortest form; any safe non-negative integer. */
  varuint(value: number): void {
    if (!(Number.isSafeInteger(value) && value >= 0)) {
      throw new InvariantViolation(`varuint out of range: ${value}`);
    }
    this.#reserve(MAX_VARUINT_BYTES);
    const buffer = this.#buffer;
    let offset = this.#length;
    let rest = value;
    // Bit operators work on 32 bits only: peel off 7-bit groups arithmetically until they fit.
    while (rest > 0x7fffffff) {
      buffer[offset++] = (rest % 0x80) | 0x80;
      rest = Math.floor(rest / 0x80);
    }
    while (rest >= 0x80) {
      buffer[offset++] = (rest & 0x7f) | 0x80;
      rest >>>= 7;
    }
    buffer[offset++] = rest;
    this.#length = offset;
  }

  bool(value: boolean): void {
    this.#reserve(1);
    this.#buffer[this.#length++] = value ? 1 : 0;
  }

  /** Raw bytes without a length: for fields whose size the format fixes (digests, signatures). */
  bytes(data: Uint8Array): void {
    this.#reserve(data.length);
    this.#buffer.set(data, this.#length);
    this.#length += data.length;
  }

  lengthPrefixedBytes(data: Uint8Array): void {
    this.varuint(data.length);
    this.bytes(data);
  }

  /** UTF-8, length-prefixed by its byte length. */
  string(value: string): void {
    const length = value.length;
    for (let index = 0; index < length; index++) {
      if (value.charCodeAt(index) > 0x7f) {
        // Rare (ids and tags are ASCII): let the platform encoder handle multi-byte sequences.
        this.lengthPrefixedBytes(textEncoder.encode(value));
        return;
      }
    }
    // ASCII: one byte per UTF-16 unit, written in place without an intermediate array.
    this.varuint(length);
    this.#reserve(length);
    const buffer = this.#buffer;
    const offset = this.#length;
    for (let index = 0; index < length; index++) buffer[offset + index] = value.charCodeAt(index);
    this.#length = offset + length;
  }

  #reserve(extra: number): void {
    const needed = this.#length + extra;
    if (needed <= this.#buffer.length) return;
    let capacity = this.#buffer.length * 2;
    while (capacity < needed) capacity *= 2;
    const grown = new Uint8Array(capacity);
    grown.set(this.#buffer.subarray(0, this.#length));
    this.#buffer = grown;
  }
}

/**
 * Typed arrays up to this size live on the JavaScript heap; a larger one gets a backing store of
 * its own outside it, which costs about ten times more to allocate and to free (an encoded
 * message is usually larger).
 */
const ON_HEAP_BYTES = 64;
/** Larger copies up to this size are carved out of a shared slab instead. */
const SLAB_COPY_MAX_BYTES = 4096;
const SLAB_BYTES = 32 * 1024;
let slab = new Uint8Array(SLAB_BYTES);
let slabUsed = 0;

/**
 * A copy of `source[0, length)` that owns no other bytes than those: a plain array, or for 65 bytes
 * to 4 KiB a view of a slab that is never written again once handed out (a new slab replaces a full
 * one). A kept copy keeps at most its slab (32 KiB) alive; its `buffer` is shared, so code that
 * reads through `buffer` must use `byteOffset` (as it must for any view).
 */
function copyOut(source: Uint8Array, length: number): Uint8Array {
  if (length <= ON_HEAP_BYTES || length > SLAB_COPY_MAX_BYTES) return source.slice(0, length);
  if (slabUsed + length > SLAB_BYTES) {
    slab = new Uint8Array(SLAB_BYTES);
    slabUsed = 0;
  }
  const out = slab.subarray(slabUsed, slabUsed + length);
  slabUsed += length;
  out.set(source.subarray(0, length));
  return out;
}

/** Scratch writers larger than this are dropped after use rather than kept for the next encode. */
const MAX_RETAINED_SCRATCH_CAPACITY = 1024 * 1024;
let scratchWriter = new ByteWriter(4096);
let scratchInUse = false;

/**
 * Runs `write` on a shared, reused writer and returns a copy of what it wrote: one allocation per
 * encoded value whatever its number of fields. Safe to nest (a nested call gets a fresh writer),
 * and encoding is synchronous, so no other caller can observe the shared writer mid-use.
 */
export function encodeToBytes<Value>(
  value: Value,
  write: (writer: ByteWriter, value: Value) => void,
): Uint8Array {
  if (scratchInUse) {
    const writer = new ByteWriter();
    write(writer, value);
    return writer.finish();
  }
  scratchInUse = true;
  try {
    scratchWriter.reset();
    write(scratchWriter, value);
    return scratchWriter.finish();
  } finally {
    scratchInUse = false;
    if (scratchWriter.capacity > MAX_RETAINED_SCRATCH_CAPACITY) scratchWriter = new ByteWriter(4096);
  }
}

/**
 * Why input could not be decoded. Thrown by ByteReader and by codecs built on it, and caught at
 * the codec's public boundary, which turns it into a rejection: it never escapes a decoder.
 */
export class DecodeError extends Error {
  override readonly name = 'DecodeError';
  /** What was wrong, without position (e.g. "operation of 5 bytes exceeds maxOperationBytes (4)"). */
  readonly reason: string;
  /** Position in the input where the problem was detected. */
  readonly offset: number;

  constructor(reason: string, offset: number) {
    // Hostile input makes these by the thousand, and the codec turns each into a rejection
    // reason: nobody reads a stack, so none is captured (capturing was most of the cost).
    const stackTraceLimit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    try {
      super(`${reason} (at byte ${offset})`);
    } finally {
      Error.stackTraceLimit = stackTraceLimit;
    }
    this.reason = reason;
    this.offset = offset;
  }
}

/**
 * Bounds-checked reader over untrusted bytes. Every method either returns a well-formed value or
 * throws DecodeError; `what` names the field in the reason so that a rejection in a log says what
 * was wrong.
 *
 * Byte fields (`bytes`, `lengthPrefixedBytes`) are returned as ZERO-COPY subarrays of the input:
 * decoding a batch does not copy its operations. The consequences for callers: a kept field keeps
 * the whole input buffer alive, and the input must not be mutated or reused (e.g. as a receive
 * ring buffer) while decoded values are in use; copy a field with `.slice()` if that matters.
 */
export class ByteReader {
  readonly #bytes: Uint8Array;
  #offset = 0;

  constructor(bytes: Uint8Array) {
    // A subclass (such as Node's Buffer) would propagate through subarray() into decoded values,
    // where its different semantics (equality, toString) would surprise; view the same memory as a
    // plain Uint8Array instead, without copying.
    this.#bytes =
      Object.getPrototypeOf(bytes) === Uint8Array.prototype
        ? bytes
        : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  get offset(): number {
    return this.#offset;
  }

  get remaining(): number {
    return this.#bytes.length - this.#offset;
  }

  /** Throws a DecodeError at the current position: for codecs' own semantic checks. */
  fail(reason: string): never {
    throw new DecodeError(reason, this.#offset);
  }

  u8(what: string): number {
    this.#need(1, what);
    return this.#bytes[this.#offset++]!;
  }

  u16(what: string): number {
    this.#need(2, what);
    const bytes = this.#bytes;
    const offset = this.#offset;
    this.#offset = offset + 2;
    return (bytes[offset]! << 8) | bytes[offset + 1]!;
  }

  u32(what: string): number {
    this.#need(4, what);
    const bytes = this.#bytes;
    const offset = this.#offset;
    this.#offset = offset + 4;
    return (
      ((bytes[offset]! << 24) |
        (bytes[offset + 1]! << 16) |
        (bytes[offset + 2]! << 8) |
        bytes[offset + 3]!) >>>
      0
    );
  }

  /** Canonical unsigned LEB128 up to 2^53 − 1 (MAX_COUNTER). */
  varuint(what: string): number {
    const bytes = this.#bytes;
    const start = this.#offset;
    if (start >= bytes.length) this.fail(`truncated ${what}`);
    const first = bytes[start]!;
    if (first < 0x80) {
      this.#offset = start + 1;
      return first;
    }
    let value = first & 0x7f;
    let scale = 0x80;
    for (let index = 1; index < MAX_VARUINT_BYTES; index++) {
      const position = start + index;
      if (position >= bytes.length) this.fail(`truncated ${what}`);
      const byte = bytes[position]!;
      if (index === MAX_VARUINT_BYTES - 1 && byte > MAX_LAST_VARUINT_BYTE) {
        this.fail(`${what} exceeds the largest counter (${MAX_COUNTER})`);
      }
      value += (byte & 0x7f) * scale;
      if (byte < 0x80) {
        // A final zero group adds nothing: the same value has a shorter encoding.
        if (byte === 0) this.fail(`${what} is a non-canonical (overlong) varuint`);
        this.#offset = position + 1;
        return value;
      }
      scale *= 0x80;
    }
    // Unreachable: the last iteration either returned or failed on the continuation bit.
    return this.fail(`${what} exceeds the largest counter (${MAX_COUNTER})`);
  }

  bool(what: string): boolean {
    this.#need(1, what);
    const byte = this.#bytes[this.#offset]!;
    if (byte > 1) this.fail(`${what} must be 0 or 1, got ${byte}`);
    this.#offset++;
    return byte === 1;
  }

  /** `length` raw bytes, as a zero-copy subarray of the input. */
  bytes(length: number, what: string): Uint8Array {
    this.#need(length, what);
    const start = this.#offset;
    this.#offset = start + length;
    return this.#bytes.subarray(start, start + length);
  }

  /**
   * A varuint length then that many bytes (zero-copy subarray). The length is checked against
   * `max` before anything else, so a forged huge length costs nothing.
   */
  lengthPrefixedBytes(max: number, what: string, limitName = 'limit'): Uint8Array {
    const length = this.varuint(what);
    if (length > max) this.fail(`${what} of ${length} bytes exceeds ${limitName} (${max})`);
    return this.bytes(length, what);
  }

  /** Length-prefixed UTF-8 of at most `maxBytes` bytes; malformed UTF-8 is rejected. */
  string(maxBytes: number, what: string, limitName = 'limit'): string {
    const start = this.#offset;
    const encoded = this.lengthPrefixedBytes(maxBytes, what, limitName);
    try {
      return textDecoder.decode(encoded);
    } catch {
      throw new DecodeError(`${what} is not valid UTF-8`, start);
    }
  }

  /**
   * An element count for an array that follows, checked against `max` BEFORE the caller loops.
   * `minimumElementBytes` also rejects at once a count the remaining input cannot possibly hold.
   */
  count(max: number, what: string, limitName = 'limit', minimumElementBytes = 1): number {
    const count = this.varuint(what);
    if (count > max) this.fail(`${what} count ${count} exceeds ${limitName} (${max})`);
    if (count * minimumElementBytes > this.remaining) {
      this.fail(`truncated ${what}: ${count} announced, only ${this.remaining} bytes left`);
    }
    return count;
  }

  /** Rejects input that continues after a complete value. */
  expectEnd(what: string): void {
    const remaining = this.remaining;
    if (remaining !== 0) this.fail(`${remaining} trailing bytes after ${what}`);
  }

  #need(count: number, what: string): void {
    if (this.#bytes.length - this.#offset < count) {
      this.fail(`truncated ${what}: needs ${count} bytes, ${this.#bytes.length - this.#offset} left`);
    }
  }
}
