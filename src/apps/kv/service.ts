/**
 * The replicated key-value store: Phalanx's default application.
 *
 * State layout. Entries live in `bucketCount` buckets chosen by FNV-1a (32-bit) of the key's UTF-8
 * bytes. A snapshot is one chunk per bucket holding the bucket's entries in key order, so a write
 * changes one chunk; snapshot() keeps the chunks of untouched buckets and returns the very same
 * Uint8Array objects again, which lets the core skip re-hashing them. A bucket whose entries do
 * not fit LIMITS.maxChunkBytes (possible: a few near-maximal values landing in one bucket) spills
 * into further chunks, part 1, 2, …, so a snapshot has at least `bucketCount` chunks.
 *
 * Large entries. An entry of LARGE_ENTRY_BYTES or more (encoded) gets a chunk of its own. A
 * chunk is hashed, stored and transferred whole, so without this a 16-byte write to a bucket that
 * also holds a 256 KiB value would rewrite the value at every checkpoint on every replica (measured
 * with `phalanx bench recovery`: 24 MB per checkpoint and replica, and a stall before each
 * checkpoint). When a bucket changes, its new chunks that are byte-for-byte the ones it had are
 * replaced by those very objects, so the core does not hash them again and storage, which finds
 * chunks by digest, does not write them again.
 *
 * Chunk budget. The price is chunk count, and a checkpoint holds at most LIMITS.maxManifestLeaves
 * chunks, the client table's included. A bucket with L large entries has at most 2L + 1 parts
 * plus one for every full part of small entries, and a part of small entries is closed only when
 * it holds more than SMALL_PART_MIN_BYTES. So the snapshot never has more than
 *   bucketCount + 2 × (large entries) + ⌊(encoded bytes of small entries) / SMALL_PART_MIN_BYTES⌋
 * chunks (snapshotChunkBound). A write that would raise this bound above `maxSnapshotChunks`
 * (KV_MAX_SNAPSHOT_CHUNKS, what the client table leaves) is refused with a `store-full` result
 * before it changes anything: the state stays checkpointable whatever clients write. The bound
 * is a function of the state, so every replica refuses the same writes. It is reached at about
 * 28 000 large entries (3.5 GiB or more) or 230 GiB of small ones.
 *
 * Listing. list(prefix) needs key order, which hash buckets do not give. A sorted array of all keys
 * is kept and brought up to date lazily: writes only record keys added or removed since the last
 * list (O(1) each), and the next list merges them in, O(n + k log k) for n keys and k changes
 * (a full O(n log n) sort after restore). With ~100k keys that is a few milliseconds, acceptable
 * because listing is rare; the lookup itself is a binary search plus one step per returned entry.
 *
 * Everything here is deterministic: no clocks, no randomness, and no output depends on the
 * iteration order of a Map (bucket entries are sorted before they are serialized).
 */
import { Buffer } from 'node:buffer';
import { CLIENT_TABLE_LIMITS } from '../../core/client-table.js';
import { bytesEqual } from '../../messages/ids.js';
import type { ExecutionContext, Service } from '../../core/service.js';
import { LIMITS } from '../../messages/limits.js';
import { AccessControl, type AccessControlConfig } from './access-control.js';
import {
  compareKvKeys,
  decodeKvChunk,
  decodeKvOperation,
  encodeKvChunk,
  encodeKvResult,
  isReadOnlyOperation,
  KV_CHUNK_HEADER_BYTES,
  type KvEntry,
  type KvOperation,
  type KvResult,
  type KvStoredEntry,
  kvEntryEncodedBytes,
  LIST_RESULT_HEADER_BYTES,
  utf8,
} from './operations.js';

export const DEFAULT_BUCKET_COUNT = 1024;
/** An entry this big (encoded) or bigger gets a chunk of its own: see "Large entries" above. */
export const LARGE_ENTRY_BYTES = 128 * 1024;
/**
 * Entry bytes a closed part of small entries holds at least: it was closed because the next entry
 * (smaller than LARGE_ENTRY_BYTES) did not fit.
 */
export const SMALL_PART_MIN_BYTES = LIMITS.maxChunkBytes - KV_CHUNK_HEADER_BYTES - LARGE_ENTRY_BYTES + 2;
/** Chunks the KV state may take: what a checkpoint holds minus what the client table may need. */
export const KV_MAX_SNAPSHOT_CHUNKS = LIMITS.maxManifestLeaves - CLIENT_TABLE_LIMITS.maxChunks;

export interface KvServiceOptions {
  /** Who may touch which keys; a config is validated and rejected with an Error listing problems. */
  readonly accessControl: AccessControlConfig | AccessControl;
  /**
   * Number of state buckets (1 … maxSnapshotChunks), default 1024. It decides the snapshot
   * layout, so every replica must use the same value.
   */
  readonly bucketCount?: number;
  /**
   * Writes that could make a snapshot longer than this many chunks are refused (default and
   * maximum KV_MAX_SNAPSHOT_CHUNKS). Replicated behaviour: every replica must use the same value.
   */
  readonly maxSnapshotChunks?: number;
}

function entryEncodedBytes(entry: KvStoredEntry): number {
  return kvEntryEncodedBytes(entry.keyBytes.length, entry.value.length);
}

function isLarge(entry: KvStoredEntry): boolean {
  return entryEncodedBytes(entry) >= LARGE_ENTRY_BYTES;
}

function markChanged(bucket: Bucket): void {
  if (bucket.chunks !== null) bucket.previousChunks = bucket.chunks;
  bucket.chunks = null;
}

/** `fresh`, with each chunk equal to the one at its position in `previous` replaced by that object. */
function reuseUnchanged(
  fresh: readonly Uint8Array[],
  previous: readonly Uint8Array[] | null,
): readonly Uint8Array[] {
  if (previous === null) return fresh;
  return fresh.map((chunk, part) => {
    const before = previous[part];
    return before !== undefined && (before === chunk || sameBytes(before, chunk)) ? before : chunk;
  });
}

/** bytesEqual at memcmp speed: the chunks compared here add up to megabytes per checkpoint. */
function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return (
    a.length === b.length &&
    Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(
      Buffer.from(b.buffer, b.byteOffset, b.byteLength),
    )
  );
}

/** FNV-1a, 32-bit: cheap, stable across platforms, and good enough to spread keys over buckets. */
export function fnv1a32(bytes: Uint8Array): number {
  let hash = 0x811c9dc5;
  for (let index = 0; index < bytes.length; index++) {
    hash ^= bytes[index]!;
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

interface Bucket {
  readonly entries: Map<string, KvStoredEntry>;
  /** The chunks snapshot() last returned for this bucket; null once the bucket changed since. */
  chunks: readonly Uint8Array[] | null;
  /** After a change: the chunks it had before, to reuse the parts that come out the same. */
  previousChunks: readonly Uint8Array[] | null;
}

function emptyBuckets(count: number): Bucket[] {
  return Array.from({ length: count }, () => ({
    entries: new Map<string, KvStoredEntry>(),
    chunks: null,
    previousChunks: null,
  }));
}

/** Decoder reasons are short ASCII; the cap only guarantees the result encoder can never throw. */
const maxReasonChars = 300;

export class KvService implements Service {
  readonly #access: AccessControl;
  readonly #bucketCount: number;
  readonly #maxSnapshotChunks: number;
  /** The chunk each large entry was last serialized into, and at which part of its bucket. */
  readonly #largeEntryChunks = new WeakMap<
    KvStoredEntry,
    { readonly part: number; readonly chunk: Uint8Array }
  >();
  #buckets: Bucket[];
  #stateBytes = 0;
  #keyCount = 0;
  /** The two variable terms of snapshotChunkBound(). */
  #largeEntries = 0;
  #smallEntryBytes = 0;
  /** Every key in compareKvKeys order as of the last list, or null when it must be rebuilt. */
  #sortedKeys: string[] | null = [];
  readonly #addedSinceSort = new Set<string>();
  readonly #removedSinceSort = new Set<string>();

  constructor(options: KvServiceOptions) {
    const maxSnapshotChunks = options.maxSnapshotChunks ?? KV_MAX_SNAPSHOT_CHUNKS;
    if (
      !Number.isInteger(maxSnapshotChunks) ||
      maxSnapshotChunks < 1 ||
      maxSnapshotChunks > KV_MAX_SNAPSHOT_CHUNKS
    ) {
      throw new RangeError(
        `maxSnapshotChunks must be an integer from 1 to KV_MAX_SNAPSHOT_CHUNKS (${KV_MAX_SNAPSHOT_CHUNKS}), got ${maxSnapshotChunks}`,
      );
    }
    const bucketCount = options.bucketCount ?? Math.min(DEFAULT_BUCKET_COUNT, maxSnapshotChunks);
    if (!Number.isInteger(bucketCount) || bucketCount < 1 || bucketCount > maxSnapshotChunks) {
      throw new RangeError(
        `bucketCount must be an integer from 1 to maxSnapshotChunks (${maxSnapshotChunks}), got ${bucketCount}`,
      );
    }
    this.#bucketCount = bucketCount;
    this.#maxSnapshotChunks = maxSnapshotChunks;
    this.#access =
      options.accessControl instanceof AccessControl
        ? options.accessControl
        : new AccessControl(options.accessControl);
    this.#buckets = emptyBuckets(bucketCount);
  }

  get bucketCount(): number {
    return this.#bucketCount;
  }

  /** UTF-8 bytes of all keys plus all values (for a state-size metric; excludes overheads). */
  stateBytes(): number {
    return this.#stateBytes;
  }

  keyCount(): number {
    return this.#keyCount;
  }

  /** An upper bound on snapshot().length, kept within maxSnapshotChunks (see "Chunk budget"). */
  snapshotChunkBound(): number {
    return chunkBound(this.#bucketCount, this.#largeEntries, this.#smallEntryBytes);
  }

  execute(operation: Uint8Array, context: ExecutionContext): Uint8Array {
    const decoded = decodeKvOperation(operation);
    if (!decoded.ok) return encodeKvResult(badRequest(decoded.reason));
    return encodeKvResult(this.#apply(decoded.value, context.clientId));
  }

  executeReadOnly(operation: Uint8Array, context: ExecutionContext): Uint8Array {
    const decoded = decodeKvOperation(operation);
    if (!decoded.ok) return encodeKvResult(badRequest(decoded.reason));
    if (!isReadOnlyOperation(decoded.value)) {
      return encodeKvResult({ kind: 'not-read-only', operation: decoded.value.kind });
    }
    return encodeKvResult(this.#apply(decoded.value, context.clientId));
  }

  snapshot(): readonly Uint8Array[] {
    const chunks: Uint8Array[] = [];
    for (let index = 0; index < this.#bucketCount; index++) {
      const bucket = this.#buckets[index]!;
      if (bucket.chunks === null) {
        bucket.chunks = reuseUnchanged(this.#serializeBucket(index, bucket.entries), bucket.previousChunks);
        bucket.previousChunks = null;
      }
      chunks.push(...bucket.chunks);
    }
    return chunks;
  }

  /**
   * Replaces the state with the one `chunks` describe. The chunks must come from snapshot() (the
   * core verifies them against a checkpoint first), so anything malformed is a state error and
   * throws; the current state is left untouched in that case. The service keeps the chunk
   * objects and returns them from later snapshots while their bucket is unchanged, so the caller
   * must not mutate them afterwards.
   */
  restore(chunks: readonly Uint8Array[]): void {
    const buckets = emptyBuckets(this.#bucketCount);
    const partsOf: Uint8Array[][] = buckets.map(() => []);
    /** Entries of each given part, to check the split against the canonical one. */
    const partEntriesOf: (readonly KvStoredEntry[])[][] = buckets.map(() => []);
    let stateBytes = 0;
    let keyCount = 0;
    let largeEntries = 0;
    let smallEntryBytes = 0;
    let currentBucket = -1;
    let previousKey: string | null = null;

    for (const [position, chunk] of chunks.entries()) {
      // Annotated so that TypeScript knows a call to it ends the iteration (narrowing below).
      const fail: (problem: string) => never = (problem) => {
        throw new Error(`KvService.restore: chunk ${position} of ${chunks.length}: ${problem}`);
      };
      const decoded = decodeKvChunk(chunk);
      if (!decoded.ok) fail(`malformed: ${decoded.reason}`);
      const { header, entries } = decoded.value;
      if (header.bucketCount !== this.#bucketCount) {
        fail(`written by a service with ${header.bucketCount} buckets, this one has ${this.#bucketCount}`);
      }
      const expectedPart = header.bucketIndex === currentBucket ? partsOf[currentBucket]!.length : 0;
      if (header.bucketIndex !== currentBucket && header.bucketIndex !== currentBucket + 1) {
        fail(`bucket ${header.bucketIndex} out of order, expected bucket ${currentBucket + 1}`);
      }
      if (header.part !== expectedPart) {
        fail(`bucket ${header.bucketIndex} part ${header.part} out of order, expected part ${expectedPart}`);
      }
      if (header.bucketIndex !== currentBucket) previousKey = null;
      currentBucket = header.bucketIndex;
      const bucket = buckets[currentBucket]!;
      for (const entry of entries) {
        if (this.#bucketIndexOf(entry.keyBytes) !== currentBucket) {
          fail(`key ${JSON.stringify(entry.key)} does not hash to bucket ${currentBucket}`);
        }
        if (previousKey !== null && compareKvKeys(previousKey, entry.key) >= 0) {
          fail(
            `key ${JSON.stringify(entry.key)} is not after ${JSON.stringify(previousKey)} (keys must ascend)`,
          );
        }
        previousKey = entry.key;
        bucket.entries.set(entry.key, entry);
        stateBytes += entry.keyBytes.length + entry.value.length;
        keyCount++;
        if (isLarge(entry)) largeEntries++;
        else smallEntryBytes += entryEncodedBytes(entry);
      }
      partsOf[currentBucket]!.push(chunk);
      partEntriesOf[currentBucket]!.push(entries);
    }
    if (currentBucket !== this.#bucketCount - 1) {
      throw new Error(
        `KvService.restore: got chunks for ${currentBucket + 1} of ${this.#bucketCount} buckets; the snapshot is incomplete`,
      );
    }
    // Splitting a bucket into parts must match what snapshot() would produce, or replicas holding
    // the same entries would disagree on the chunks (and so on the checkpoint digest).
    // The chunk encoding is canonical (fixed-width fields, no trailing bytes: decoding succeeded),
    // so the same entries split at the same places are the same bytes, and comparing the split is
    // enough: no copy of the state is serialized again only to be compared.
    buckets.forEach((bucket, index) => {
      const given = partEntriesOf[index]!;
      const canonical = this.#partition([...bucket.entries.values()]);
      if (
        canonical.length !== given.length ||
        canonical.some((part, position) => part.length !== given[position]!.length)
      ) {
        throw new Error(
          `KvService.restore: bucket ${index} is not split into chunks the way snapshot() splits it`,
        );
      }
      bucket.chunks = partsOf[index]!;
      canonical.forEach((part, position) => {
        // Large entries keep the chunk they came in: later snapshots reuse it without a copy.
        if (part.length === 1 && isLarge(part[0]!))
          this.#largeEntryChunks.set(part[0]!, { part: position, chunk: partsOf[index]![position]! });
      });
    });

    this.#buckets = buckets;
    this.#stateBytes = stateBytes;
    this.#keyCount = keyCount;
    this.#largeEntries = largeEntries;
    this.#smallEntryBytes = smallEntryBytes;
    this.#sortedKeys = null;
    this.#addedSinceSort.clear();
    this.#removedSinceSort.clear();
  }

  // ───────────────────────────── operations ─────────────────────────────

  #apply(operation: KvOperation, clientId: string): KvResult {
    if (operation.kind === 'list') {
      if (!this.#access.allowsList(clientId, operation.prefix)) {
        return { kind: 'access-denied', clientId, keyOrPrefix: operation.prefix };
      }
      return this.#list(operation.prefix, operation.limit);
    }
    if (!this.#access.allows(clientId, operation.key)) {
      return { kind: 'access-denied', clientId, keyOrPrefix: operation.key };
    }
    switch (operation.kind) {
      case 'get':
        return { kind: 'value', value: this.#lookup(operation.key)?.value ?? null };
      case 'put': {
        const refusal = this.#refuseGrowth(operation.key, operation.value);
        if (refusal !== null) return refusal;
        return { kind: 'ok', existed: this.#put(operation.key, operation.value) };
      }
      case 'delete':
        return { kind: 'ok', existed: this.#delete(operation.key) };
      case 'compareAndSet': {
        const current = this.#lookup(operation.key)?.value ?? null;
        const matches =
          operation.expected === null
            ? current === null
            : current !== null && bytesEqual(current, operation.expected);
        if (!matches) return { kind: 'cas', succeeded: false, current };
        const refusal = this.#refuseGrowth(operation.key, operation.value);
        if (refusal !== null) return refusal;
        this.#put(operation.key, operation.value);
        return { kind: 'cas', succeeded: true, current: operation.value };
      }
    }
  }

  /**
   * A store-full result when writing `value` under `key` would raise the snapshot's chunk bound
   * above maxSnapshotChunks; null when the write may go ahead. A write that does not raise the
   * bound (an overwrite with a smaller value) always may.
   */
  #refuseGrowth(key: string, value: Uint8Array): KvResult | null {
    const keyBytes = utf8(key);
    const previous = this.#bucketFor(keyBytes).entries.get(key);
    let largeEntries = this.#largeEntries;
    let smallEntryBytes = this.#smallEntryBytes;
    if (previous !== undefined) {
      if (isLarge(previous)) largeEntries--;
      else smallEntryBytes -= entryEncodedBytes(previous);
    }
    const next = { key, keyBytes, value };
    if (isLarge(next)) largeEntries++;
    else smallEntryBytes += entryEncodedBytes(next);
    const before = this.snapshotChunkBound();
    const after = chunkBound(this.#bucketCount, largeEntries, smallEntryBytes);
    if (after <= this.#maxSnapshotChunks || after <= before) return null;
    return {
      kind: 'store-full',
      reason:
        `the write could make the state ${after} chunks, over the store's limit of ${this.#maxSnapshotChunks} ` +
        `(${this.#keyCount} keys, ${this.#stateBytes} bytes); delete keys or write smaller values`,
    };
  }

  #lookup(key: string): KvStoredEntry | undefined {
    return this.#bucketFor(utf8(key)).entries.get(key);
  }

  /** Returns whether the key existed before. */
  #put(key: string, value: Uint8Array): boolean {
    const keyBytes = utf8(key);
    const bucket = this.#bucketFor(keyBytes);
    const previous = bucket.entries.get(key);
    const entry = { key, keyBytes, value };
    bucket.entries.set(key, entry);
    markChanged(bucket);
    if (previous !== undefined) this.#countEntry(previous, -1);
    this.#countEntry(entry, 1);
    if (previous === undefined) {
      this.#stateBytes += keyBytes.length + value.length;
      this.#keyCount++;
      this.#noteKeyAdded(key);
    } else {
      this.#stateBytes += value.length - previous.value.length;
    }
    return previous !== undefined;
  }

  /** Returns whether the key existed. */
  #delete(key: string): boolean {
    const keyBytes = utf8(key);
    const bucket = this.#bucketFor(keyBytes);
    const previous = bucket.entries.get(key);
    if (previous === undefined) return false;
    bucket.entries.delete(key);
    markChanged(bucket);
    this.#countEntry(previous, -1);
    this.#stateBytes -= previous.keyBytes.length + previous.value.length;
    this.#keyCount--;
    this.#noteKeyRemoved(key);
    return true;
  }

  #countEntry(entry: KvStoredEntry, sign: 1 | -1): void {
    if (isLarge(entry)) this.#largeEntries += sign;
    else this.#smallEntryBytes += sign * entryEncodedBytes(entry);
  }

  /** Entries under the prefix in key order, stopping at `limit` or when the result would outgrow LIMITS.maxResultBytes. */
  #list(prefix: string, limit: number): KvResult {
    const keys = this.#keysInOrder();
    const entries: KvEntry[] = [];
    let resultBytes = LIST_RESULT_HEADER_BYTES;
    for (let index = lowerBound(keys, prefix); index < keys.length; index++) {
      const key = keys[index]!;
      if (!key.startsWith(prefix)) break;
      const entry = this.#lookup(key)!;
      const entryBytes = kvEntryEncodedBytes(entry.keyBytes.length, entry.value.length);
      if (entries.length === limit || resultBytes + entryBytes > LIMITS.maxResultBytes) {
        return { kind: 'list', entries, truncated: true };
      }
      entries.push({ key, value: entry.value });
      resultBytes += entryBytes;
    }
    return { kind: 'list', entries, truncated: false };
  }

  // ───────────────────────────── buckets ─────────────────────────────

  #bucketIndexOf(keyBytes: Uint8Array): number {
    return fnv1a32(keyBytes) % this.#bucketCount;
  }

  #bucketFor(keyBytes: Uint8Array): Bucket {
    return this.#buckets[this.#bucketIndexOf(keyBytes)]!;
  }

  /**
   * How a bucket's entries, in key order, are split into chunks: greedily up to
   * LIMITS.maxChunkBytes, except that a large entry (LARGE_ENTRY_BYTES or more) is a part of its
   * own. An empty bucket is one empty part.
   */
  #partition(sorted: readonly KvStoredEntry[]): KvStoredEntry[][] {
    const parts: KvStoredEntry[][] = [];
    let part: KvStoredEntry[] = [];
    let partBytes = KV_CHUNK_HEADER_BYTES;
    const close = (): void => {
      parts.push(part);
      part = [];
      partBytes = KV_CHUNK_HEADER_BYTES;
    };
    for (const entry of sorted) {
      // A single entry (≤ maxKeyBytes + maxValueBytes + 6) always fits an empty chunk.
      const entryBytes = entryEncodedBytes(entry);
      const large = entryBytes >= LARGE_ENTRY_BYTES;
      if (part.length > 0 && (large || partBytes + entryBytes > LIMITS.maxChunkBytes)) close();
      part.push(entry);
      partBytes += entryBytes;
      if (large) close();
    }
    if (part.length > 0 || parts.length === 0) close();
    return parts;
  }

  /** The bucket's entries in key order, as chunks split by #partition. */
  #serializeBucket(bucketIndex: number, entries: ReadonlyMap<string, KvStoredEntry>): readonly Uint8Array[] {
    const sorted = [...entries.values()].sort((left, right) => compareKvKeys(left.key, right.key));
    return this.#partition(sorted).map((part, position) => {
      const only = part.length === 1 ? part[0]! : undefined;
      if (only !== undefined && isLarge(only)) {
        // Its chunk depends only on the entry (an object replaced by every write) and its position.
        const cached = this.#largeEntryChunks.get(only);
        if (cached !== undefined && cached.part === position) return cached.chunk;
        const chunk = encodeKvChunk({ bucketCount: this.#bucketCount, bucketIndex, part: position }, part);
        this.#largeEntryChunks.set(only, { part: position, chunk });
        return chunk;
      }
      return encodeKvChunk({ bucketCount: this.#bucketCount, bucketIndex, part: position }, part);
    });
  }

  // ───────────────────────────── key order ─────────────────────────────

  #noteKeyAdded(key: string): void {
    if (this.#sortedKeys === null) return;
    // A key removed and re-added since the last sort is still in #sortedKeys.
    if (!this.#removedSinceSort.delete(key)) this.#addedSinceSort.add(key);
  }

  #noteKeyRemoved(key: string): void {
    if (this.#sortedKeys === null) return;
    if (!this.#addedSinceSort.delete(key)) this.#removedSinceSort.add(key);
  }

  #keysInOrder(): readonly string[] {
    if (this.#sortedKeys === null) {
      const keys: string[] = [];
      for (const bucket of this.#buckets) for (const key of bucket.entries.keys()) keys.push(key);
      this.#sortedKeys = keys.sort(compareKvKeys);
    } else if (this.#addedSinceSort.size > 0 || this.#removedSinceSort.size > 0) {
      this.#sortedKeys = mergeSorted(this.#sortedKeys, this.#removedSinceSort, [...this.#addedSinceSort]);
    }
    this.#addedSinceSort.clear();
    this.#removedSinceSort.clear();
    return this.#sortedKeys;
  }
}

function chunkBound(bucketCount: number, largeEntries: number, smallEntryBytes: number): number {
  return bucketCount + 2 * largeEntries + Math.floor(smallEntryBytes / SMALL_PART_MIN_BYTES);
}

function badRequest(reason: string): KvResult {
  return {
    kind: 'bad-request',
    reason: reason.length > maxReasonChars ? `${reason.slice(0, maxReasonChars)}…` : reason,
  };
}

/** `sorted` without `removed`, plus `added` (keys not in `sorted`), still in key order. */
function mergeSorted(sorted: readonly string[], removed: ReadonlySet<string>, added: string[]): string[] {
  added.sort(compareKvKeys);
  const merged: string[] = [];
  let next = 0;
  for (const key of sorted) {
    if (removed.has(key)) continue;
    while (next < added.length && compareKvKeys(added[next]!, key) < 0) merged.push(added[next++]!);
    merged.push(key);
  }
  while (next < added.length) merged.push(added[next++]!);
  return merged;
}

/** Index of the first key not before `target` (every key with prefix `target` follows it). */
function lowerBound(keys: readonly string[], target: string): number {
  let low = 0;
  let high = keys.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (compareKvKeys(keys[middle]!, target) < 0) low = middle + 1;
    else high = middle;
  }
  return low;
}
