/**
 * Exactly-once bookkeeping: for every client, which request numbers were executed and the reply
 * each produced. It is part of the replicated state (it is checkpointed and transferred with the
 * service state), so that a retransmitted request is answered from the cache, never re-executed,
 * on every correct replica alike.
 *
 * A client may have up to `window` requests outstanding. Each record keeps the replies of its
 * last `window` executed requests; every request number at or below `floor` is finished (executed,
 * or given up by the client, which never reuses a number) and is ignored if it shows up again.
 *
 * Reply budget. Results are what clients control: a client that reads a 1 MiB value a few times
 * would otherwise make its record tens of megabytes, larger than a state chunk may be, and no
 * correct replica could checkpoint any more. So a result of at most `smallResultBytes` is always
 * kept, but larger ones only up to `largeResultBytesPerClient` per client and
 * `largeResultBytesTotal` over all clients. Beyond that, the oldest larger results (per client:
 * lowest request number; over all clients: lowest (sequence, client, request number)) are evicted
 * to a marker that remembers the sequence and the result's size, never the one just recorded.
 * Eviction is a function of the table's state and the recorded reply only, so every correct
 * replica evicts the same results, also after a restore. A retransmission whose result was evicted
 * gets a deterministic error reply saying so, never a re-execution. Both budgets are at least
 * LIMITS.maxResultBytes, so the reply just executed is always cached whole.
 *
 * Chunks. Clients hash (FNV-1a) into `bucketCount` buckets. A bucket is serialized as its records
 * in client order, packed greedily into parts of at most LIMITS.maxChunkBytes; a record always
 * fits one part (the budgets and the window bound it, checked in the constructor). Every part
 * names its bucket, its index and the bucket's part count, so a checkpoint's chunk list says by
 * itself how many of its leading chunks are the table's (chunkCountIn) although that number
 * varies. An unchanged bucket yields the very same Uint8Array objects, and a changed bucket
 * reuses those of its parts whose records did not change (the core caches leaf digests by chunk
 * object).
 */

import { ByteReader, ByteWriter, DecodeError } from '../messages/bytes.js';
import { LIMITS } from '../messages/limits.js';
import type { ReplyStatus } from '../messages/types.js';
import {
  assert,
  type ClientId,
  clientId,
  InvariantViolation,
  type RequestNumber,
  type SequenceNumber,
  sequenceNumber,
} from '../messages/ids.js';

/**
 * Named bounds of the client table. The reply budgets are replicated behaviour: every replica of a
 * cluster must use the same values.
 */
export const CLIENT_TABLE_LIMITS = {
  /** A cached result of at most this many bytes is never evicted (within the window). */
  smallResultBytes: 1024,
  /** Larger cached results one client keeps at once; the oldest beyond it are evicted. */
  largeResultBytesPerClient: 2 * 1024 * 1024,
  /** Larger cached results all clients keep at once: a net for very many clients at their budget. */
  largeResultBytesTotal: 1024 * 1024 * 1024,
  /** Largest window (maxOutstandingPerClient): with the budgets, keeps one record within a chunk. */
  maxWindow: 1024,
  /** Largest number of buckets (clientTableChunks). */
  maxBuckets: 1024,
  /**
   * Chunks the table may take of a checkpoint's LIMITS.maxManifestLeaves; services get the rest.
   * The table needs at most maxBuckets + 2 × (its bytes) / maxChunkBytes, which stays below this
   * for up to about 200 000 clients at a window of 64 (13 000 at maxWindow).
   */
  maxChunks: 8192,
} as const;

export interface CachedReply {
  readonly sequence: SequenceNumber;
  readonly status: ReplyStatus;
  readonly result: Uint8Array;
}

export type ClientRequestStatus =
  | { readonly kind: 'new' }
  /**
   * `resultEvicted`: the result left the cache and `reply` is the error that says so. It was never
   * signed, so a reply proof remembered for the request does not belong to it.
   */
  | { readonly kind: 'executed'; readonly reply: CachedReply; readonly resultEvicted: boolean }
  | { readonly kind: 'expired' };

/** Budgets and chunk size; tests shrink them to reach eviction and splitting with little data. */
export interface ClientTableOptions {
  readonly smallResultBytes?: number;
  readonly largeResultBytesPerClient?: number;
  readonly largeResultBytesTotal?: number;
  readonly maxResultBytes?: number;
  readonly maxChunkBytes?: number;
}

type StoredReply =
  | { readonly evicted: false; readonly reply: CachedReply }
  | { readonly evicted: true; readonly sequence: SequenceNumber; readonly resultBytes: number };

interface ClientRecord {
  floor: number;
  readonly replies: Map<number, StoredReply>;
  /** Bytes of the kept results larger than smallResultBytes. */
  largeBytes: number;
  /** The record serialized; null once it changed since. Unchanged records keep their object. */
  encoded: Uint8Array | null;
}

interface Part {
  readonly chunk: Uint8Array;
  /** The encoded records the part holds: equal objects in equal order mean an equal chunk. */
  readonly records: readonly Uint8Array[];
}

interface Bucket {
  readonly clients: Set<ClientId>;
  /** The parts chunks() last returned; null once the bucket changed since. */
  parts: readonly Part[] | null;
  /** After a change: the parts it had, to reuse those that come out the same. */
  previous: readonly Part[] | null;
}

const newStatus: ClientRequestStatus = { kind: 'new' };
const expiredStatus: ClientRequestStatus = { kind: 'expired' };
const textEncoder = new TextEncoder();

/** Chunk format version 1: u8 tag, then u32 bucket index, part index, part count, client count. */
const CHUNK_TAG = 0x43;
export const CLIENT_TABLE_CHUNK_HEADER_BYTES = 1 + 4 + 4 + 4 + 4;

const REPLY_OK = 0;
const REPLY_ERROR = 1;
const REPLY_EVICTED = 2;
/** Varuint request number and sequence (≤ 8 bytes each), kind byte, varuint result length (≤ 3). */
const MAX_REPLY_OVERHEAD_BYTES = 8 + 8 + 1 + 3;
/** Length-prefixed client id (≤ 64 bytes), varuint floor. */
const MAX_RECORD_HEAD_BYTES = 1 + LIMITS.maxClientIdBytes + 8;

/** FNV-1a over the UTF-8 bytes of a string: a fixed, portable bucket function. */
export function fnv1a32(text: string): number {
  let hash = 0x811c9dc5;
  for (let index = 0; index < text.length; index++) {
    // Client ids are ASCII (CLIENT_ID_PATTERN), so char codes are the UTF-8 bytes.
    hash ^= text.charCodeAt(index) & 0xff;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash >>> 0;
}

function varuintBytes(value: number): number {
  let length = 1;
  for (let rest = value; rest >= 0x80; rest = Math.floor(rest / 0x80)) length++;
  return length;
}

/** The error a retransmission gets once its result was evicted: the same on every replica. */
function evictedReply(sequence: SequenceNumber, resultBytes: number): CachedReply {
  const reason =
    `request executed at sequence ${sequence}; its result (${resultBytes} bytes) was too large ` +
    'to keep for retransmission';
  return { sequence, status: 'error', result: textEncoder.encode(reason) };
}

interface ChunkHeader {
  readonly bucket: number;
  readonly part: number;
  readonly partCount: number;
  readonly clientCount: number;
}

function readHeader(chunk: Uint8Array, position: number): ChunkHeader {
  assert(
    chunk.length >= CLIENT_TABLE_CHUNK_HEADER_BYTES && chunk[0] === CHUNK_TAG,
    `state chunk ${position} is not a client table chunk`,
  );
  const view = new DataView(chunk.buffer, chunk.byteOffset, CLIENT_TABLE_CHUNK_HEADER_BYTES);
  return {
    bucket: view.getUint32(1),
    part: view.getUint32(5),
    partCount: view.getUint32(9),
    clientCount: view.getUint32(13),
  };
}

function sameObjects(left: readonly Uint8Array[], right: readonly Uint8Array[]): boolean {
  return left.length === right.length && left.every((item, index) => item === right[index]);
}

export class ClientTable {
  readonly #records = new Map<ClientId, ClientRecord>();
  readonly #bucketCount: number;
  readonly #window: number;
  readonly #smallResultBytes: number;
  readonly #largeResultBytesPerClient: number;
  readonly #largeResultBytesTotal: number;
  readonly #maxResultBytes: number;
  readonly #maxChunkBytes: number;
  #buckets: Bucket[];
  /** Bytes of all kept results larger than smallResultBytes. */
  #largeBytes = 0;

  constructor(bucketCount: number, window: number, options: ClientTableOptions = {}) {
    assert(
      Number.isSafeInteger(bucketCount) && bucketCount >= 1 && bucketCount <= CLIENT_TABLE_LIMITS.maxBuckets,
      `client table buckets must be 1 to ${CLIENT_TABLE_LIMITS.maxBuckets}, got ${bucketCount}`,
    );
    assert(
      Number.isSafeInteger(window) && window >= 1 && window <= CLIENT_TABLE_LIMITS.maxWindow,
      `client table window (maxOutstandingPerClient) must be 1 to ${CLIENT_TABLE_LIMITS.maxWindow}, got ${window}`,
    );
    this.#bucketCount = bucketCount;
    this.#window = window;
    this.#smallResultBytes = options.smallResultBytes ?? CLIENT_TABLE_LIMITS.smallResultBytes;
    this.#largeResultBytesPerClient =
      options.largeResultBytesPerClient ?? CLIENT_TABLE_LIMITS.largeResultBytesPerClient;
    this.#largeResultBytesTotal = options.largeResultBytesTotal ?? CLIENT_TABLE_LIMITS.largeResultBytesTotal;
    this.#maxResultBytes = options.maxResultBytes ?? LIMITS.maxResultBytes;
    this.#maxChunkBytes = options.maxChunkBytes ?? LIMITS.maxChunkBytes;
    assert(
      this.#maxResultBytes <= LIMITS.maxResultBytes && this.#maxChunkBytes <= LIMITS.maxChunkBytes,
      'client table results or chunks above LIMITS',
    );
    // Greedy packing needs every record to fit an empty part: the window's small results, the
    // larger ones within the client's budget (or the single one just recorded), and overheads.
    const largestRecord =
      MAX_RECORD_HEAD_BYTES +
      varuintBytes(window) +
      window * (MAX_REPLY_OVERHEAD_BYTES + this.#smallResultBytes) +
      Math.max(this.#largeResultBytesPerClient, this.#maxResultBytes);
    assert(
      largestRecord <= this.#maxChunkBytes - CLIENT_TABLE_CHUNK_HEADER_BYTES,
      `a client record may reach ${largestRecord} bytes, more than a client table chunk holds`,
    );
    this.#buckets = ClientTable.#emptyBuckets(bucketCount);
  }

  static #emptyBuckets(count: number): Bucket[] {
    return Array.from({ length: count }, () => ({
      clients: new Set<ClientId>(),
      parts: null,
      previous: null,
    }));
  }

  get bucketCount(): number {
    return this.#bucketCount;
  }

  /**
   * The number of buckets, which is the table's chunk count while no bucket is split into parts.
   * Use chunkCountIn() to find the table's chunks in a checkpoint.
   */
  get chunkCount(): number {
    return this.#bucketCount;
  }

  /** Bytes of the kept results larger than smallResultBytes, over all clients. */
  get largeResultBytes(): number {
    return this.#largeBytes;
  }

  status(client: ClientId, requestNumber: RequestNumber): ClientRequestStatus {
    const record = this.#records.get(client);
    if (record === undefined) return requestNumber >= 1 ? newStatus : expiredStatus;
    if (requestNumber <= record.floor) return expiredStatus;
    const stored = record.replies.get(requestNumber);
    if (stored === undefined) return newStatus;
    if (!stored.evicted) return { kind: 'executed', reply: stored.reply, resultEvicted: false };
    return {
      kind: 'executed',
      reply: evictedReply(stored.sequence, stored.resultBytes),
      resultEvicted: true,
    };
  }

  record(client: ClientId, requestNumber: RequestNumber, reply: CachedReply): void {
    let record = this.#records.get(client);
    if (record === undefined) {
      record = { floor: 0, replies: new Map(), largeBytes: 0, encoded: null };
      this.#records.set(client, record);
      this.#bucketOf(client).clients.add(client);
    }
    assert(requestNumber > record.floor && !record.replies.has(requestNumber), 'request executed twice');
    assert(reply.result.length <= this.#maxResultBytes, 'cached result exceeds maxResultBytes');
    record.replies.set(requestNumber, { evicted: false, reply });
    this.#addLarge(record, reply.result.length);
    this.#changed(client, record);
    while (record.replies.size > this.#window) {
      let smallest = Number.POSITIVE_INFINITY;
      for (const number of record.replies.keys()) if (number < smallest) smallest = number;
      const dropped = record.replies.get(smallest)!;
      if (!dropped.evicted) this.#addLarge(record, -dropped.reply.result.length);
      record.replies.delete(smallest);
      record.floor = Math.max(record.floor, smallest);
    }
    while (record.largeBytes > this.#largeResultBytesPerClient) {
      const victim = this.#oldestLargeOf(record, requestNumber);
      if (victim === null) break;
      this.#evict(client, record, victim);
    }
    while (this.#largeBytes > this.#largeResultBytesTotal) {
      const victim = this.#oldestLarge(client, requestNumber);
      if (victim === null) break;
      this.#evict(victim.client, victim.record, victim.number);
    }
  }

  /** The table's chunks; unchanged parts are the very same Uint8Array objects as last time. */
  chunks(): readonly Uint8Array[] {
    const out: Uint8Array[] = [];
    this.#buckets.forEach((bucket, index) => {
      let parts = bucket.parts;
      if (parts === null) {
        parts = this.#serializeBucket(index, bucket);
        bucket.parts = parts;
        bucket.previous = null;
      }
      for (const part of parts) out.push(part.chunk);
    });
    return out;
  }

  /**
   * How many leading chunks of a checkpoint's chunk list (the table's chunks, then the service's)
   * belong to the table, read from the part counts in the buckets' first chunks.
   */
  chunkCountIn(chunks: readonly Uint8Array[]): number {
    let position = 0;
    for (let bucket = 0; bucket < this.#bucketCount; bucket++) {
      assert(position < chunks.length, `checkpoint ends before client table bucket ${bucket}`);
      const header = readHeader(chunks[position]!, position);
      assert(
        header.bucket === bucket && header.part === 0,
        `state chunk ${position} should start client table bucket ${bucket}, it is bucket ${header.bucket} part ${header.part}`,
      );
      assert(
        header.partCount >= 1 && header.partCount <= LIMITS.maxManifestLeaves,
        `client table bucket ${bucket} claims ${header.partCount} parts`,
      );
      position += header.partCount;
    }
    assert(
      position <= chunks.length,
      `client table claims ${position} chunks, checkpoint has ${chunks.length}`,
    );
    return position;
  }

  /**
   * Replaces the table with the one exactly these chunks (as chunks() produced them) describe.
   * Anything not in canonical form is an invariant violation (the core verified the chunks against
   * a certified checkpoint, so it means a bug); the table is left unchanged then. The table keeps
   * the chunks and views into them, so they must not be mutated afterwards.
   */
  restore(chunks: readonly Uint8Array[]): void {
    const expected = this.chunkCountIn(chunks);
    assert(
      expected === chunks.length,
      `client table chunks say there are ${expected} of them, got ${chunks.length}`,
    );
    const records = new Map<ClientId, ClientRecord>();
    const buckets = ClientTable.#emptyBuckets(this.#bucketCount);
    let largeBytes = 0;
    let largeResults = 0;
    let position = 0;
    buckets.forEach((bucket, bucketIndex) => {
      const partCount = readHeader(chunks[position]!, position).partCount;
      const parts: Part[] = [];
      let previousClient: ClientId | null = null;
      let previousPartBytes = 0;
      for (let partIndex = 0; partIndex < partCount; partIndex++) {
        const chunk = chunks[position]!;
        const where = `client table chunk ${position} (bucket ${bucketIndex} part ${partIndex})`;
        assert(chunk.length <= this.#maxChunkBytes, `${where} exceeds maxChunkBytes`);
        const header = readHeader(chunk, position);
        assert(
          header.bucket === bucketIndex && header.part === partIndex && header.partCount === partCount,
          `${where} has the header of bucket ${header.bucket} part ${header.part} of ${header.partCount}`,
        );
        assert(header.clientCount >= 1 || partCount === 1, `${where} is empty but its bucket has parts`);
        const reader = new ByteReader(chunk);
        reader.bytes(CLIENT_TABLE_CHUNK_HEADER_BYTES, 'header');
        const encoded: Uint8Array[] = [];
        try {
          for (let index = 0; index < header.clientCount; index++) {
            const start = reader.offset;
            const client = clientId(reader.string(LIMITS.maxClientIdBytes, 'client id'));
            assert(
              fnv1a32(client) % this.#bucketCount === bucketIndex,
              `${where}: client ${client} is in the wrong bucket`,
            );
            assert(
              previousClient === null || previousClient < client,
              `${where}: clients out of order at ${client}`,
            );
            previousClient = client;
            const record = this.#decodeRecord(reader, `${where}, client ${client}`);
            record.encoded = chunk.subarray(start, reader.offset);
            encoded.push(record.encoded);
            records.set(client, record);
            bucket.clients.add(client);
            largeBytes += record.largeBytes;
            for (const stored of record.replies.values())
              if (!stored.evicted && stored.reply.result.length > this.#smallResultBytes) largeResults++;
          }
          assert(reader.remaining === 0, `${where}: trailing bytes`);
        } catch (error) {
          if (error instanceof DecodeError) throw new InvariantViolation(`${where}: ${error.message}`);
          throw error;
        }
        if (partIndex > 0) {
          // Greedy packing closes a part only when the next record does not fit into it.
          assert(
            previousPartBytes + encoded[0]!.length > this.#maxChunkBytes - CLIENT_TABLE_CHUNK_HEADER_BYTES,
            `${where}: its first record would have fit the part before (not packed the canonical way)`,
          );
        }
        previousPartBytes = chunk.length - CLIENT_TABLE_CHUNK_HEADER_BYTES;
        parts.push({ chunk, records: encoded });
        position++;
      }
      bucket.parts = parts;
    });
    assert(
      largeBytes <= this.#largeResultBytesTotal || largeResults <= 1,
      `client table keeps ${largeBytes} bytes of larger results, over the total budget`,
    );
    this.#records.clear();
    for (const [client, record] of records) this.#records.set(client, record);
    this.#buckets = buckets;
    this.#largeBytes = largeBytes;
  }

  // ───────────────────────────── eviction ─────────────────────────────

  #isLarge(bytes: number): boolean {
    return bytes > this.#smallResultBytes;
  }

  #addLarge(record: ClientRecord, signedBytes: number): void {
    if (!this.#isLarge(Math.abs(signedBytes))) return;
    record.largeBytes += signedBytes;
    this.#largeBytes += signedBytes;
  }

  /** The client's kept larger result with the lowest request number, other than `except`. */
  #oldestLargeOf(record: ClientRecord, except: number): number | null {
    let oldest: number | null = null;
    for (const [number, stored] of record.replies) {
      if (number === except || stored.evicted || !this.#isLarge(stored.reply.result.length)) continue;
      if (oldest === null || number < oldest) oldest = number;
    }
    return oldest;
  }

  /**
   * Over all clients, the kept larger result lowest in (sequence, client, request number), other
   * than the one just recorded. A full scan, but only while over the total budget, which takes
   * hundreds of clients at their own budget at once.
   */
  #oldestLarge(
    exceptClient: ClientId,
    exceptNumber: number,
  ): { client: ClientId; record: ClientRecord; number: number } | null {
    let best: { client: ClientId; record: ClientRecord; number: number; sequence: number } | null = null;
    for (const [client, record] of this.#records) {
      for (const [number, stored] of record.replies) {
        if (stored.evicted || !this.#isLarge(stored.reply.result.length)) continue;
        if (client === exceptClient && number === exceptNumber) continue;
        const sequence = stored.reply.sequence;
        if (
          best === null ||
          sequence < best.sequence ||
          (sequence === best.sequence &&
            (client < best.client || (client === best.client && number < best.number)))
        ) {
          best = { client, record, number, sequence };
        }
      }
    }
    return best;
  }

  #evict(client: ClientId, record: ClientRecord, number: number): void {
    const stored = record.replies.get(number);
    assert(stored !== undefined && !stored.evicted, 'evicting a result that is not kept');
    const resultBytes = stored.reply.result.length;
    record.replies.set(number, { evicted: true, sequence: stored.reply.sequence, resultBytes });
    this.#addLarge(record, -resultBytes);
    this.#changed(client, record);
  }

  // ───────────────────────────── serialization ─────────────────────────────

  #bucketOf(client: ClientId): Bucket {
    return this.#buckets[fnv1a32(client) % this.#bucketCount]!;
  }

  #changed(client: ClientId, record: ClientRecord): void {
    record.encoded = null;
    const bucket = this.#bucketOf(client);
    if (bucket.parts !== null) bucket.previous = bucket.parts;
    bucket.parts = null;
  }

  #serializeBucket(index: number, bucket: Bucket): Part[] {
    const records = [...bucket.clients].sort().map((client) => {
      const record = this.#records.get(client)!;
      record.encoded ??= ClientTable.#encodeRecord(client, record);
      return record.encoded;
    });
    const capacity = this.#maxChunkBytes - CLIENT_TABLE_CHUNK_HEADER_BYTES;
    const packed: Uint8Array[][] = [];
    let part: Uint8Array[] = [];
    let partBytes = 0;
    for (const encoded of records) {
      if (part.length > 0 && partBytes + encoded.length > capacity) {
        packed.push(part);
        part = [];
        partBytes = 0;
      }
      part.push(encoded);
      partBytes += encoded.length;
    }
    if (part.length > 0 || packed.length === 0) packed.push(part);
    const previous = bucket.previous;
    return packed.map((partRecords, partIndex) => {
      const before = previous?.[partIndex];
      if (
        before !== undefined &&
        previous!.length === packed.length &&
        sameObjects(before.records, partRecords)
      )
        return before;
      return {
        chunk: ClientTable.#encodePart(index, partIndex, packed.length, partRecords),
        records: partRecords,
      };
    });
  }

  static #encodePart(
    bucket: number,
    part: number,
    partCount: number,
    records: readonly Uint8Array[],
  ): Uint8Array {
    let length = CLIENT_TABLE_CHUNK_HEADER_BYTES;
    for (const record of records) length += record.length;
    const chunk = new Uint8Array(length);
    const view = new DataView(chunk.buffer);
    view.setUint8(0, CHUNK_TAG);
    view.setUint32(1, bucket);
    view.setUint32(5, part);
    view.setUint32(9, partCount);
    view.setUint32(13, records.length);
    let offset = CLIENT_TABLE_CHUNK_HEADER_BYTES;
    for (const record of records) {
      chunk.set(record, offset);
      offset += record.length;
    }
    return chunk;
  }

  static #encodeRecord(client: ClientId, record: ClientRecord): Uint8Array {
    const writer = new ByteWriter();
    writer.string(client);
    writer.varuint(record.floor);
    const numbers = [...record.replies.keys()].sort((a, b) => a - b);
    writer.varuint(numbers.length);
    for (const number of numbers) {
      const stored = record.replies.get(number)!;
      writer.varuint(number);
      if (stored.evicted) {
        writer.varuint(stored.sequence);
        writer.u8(REPLY_EVICTED);
        writer.varuint(stored.resultBytes);
      } else {
        writer.varuint(stored.reply.sequence);
        writer.u8(stored.reply.status === 'ok' ? REPLY_OK : REPLY_ERROR);
        writer.lengthPrefixedBytes(stored.reply.result);
      }
    }
    return writer.finish();
  }

  /** One record after its client id, checked to be what record() and #encodeRecord can produce. */
  #decodeRecord(reader: ByteReader, where: string): ClientRecord {
    const floor = reader.varuint('request floor');
    const replyCount = reader.varuint('reply count');
    assert(
      replyCount >= 1 && replyCount <= this.#window,
      `${where}: ${replyCount} replies, window is ${this.#window}`,
    );
    const replies = new Map<number, StoredReply>();
    let largeBytes = 0;
    let largeResults = 0;
    let previous = floor;
    for (let index = 0; index < replyCount; index++) {
      const number = reader.varuint('request number');
      assert(number > previous, `${where}: request ${number} is not above ${previous}`);
      previous = number;
      const sequence = sequenceNumber(reader.varuint('reply sequence'));
      const kind = reader.u8('reply kind');
      if (kind === REPLY_EVICTED) {
        const resultBytes = reader.varuint('evicted result bytes');
        assert(
          this.#isLarge(resultBytes) && resultBytes <= this.#maxResultBytes,
          `${where}: evicted result of ${resultBytes} bytes could not have been evicted`,
        );
        replies.set(number, { evicted: true, sequence, resultBytes });
        continue;
      }
      assert(kind === REPLY_OK || kind === REPLY_ERROR, `${where}: unknown reply kind ${kind}`);
      // A view into the chunk, which the table keeps anyway: restoring copies no results.
      const result = reader.lengthPrefixedBytes(this.#maxResultBytes, 'cached result', 'maxResultBytes');
      if (this.#isLarge(result.length)) {
        largeBytes += result.length;
        largeResults++;
      }
      replies.set(number, {
        evicted: false,
        reply: { sequence, status: kind === REPLY_OK ? 'ok' : 'error', result },
      });
    }
    assert(
      largeBytes <= this.#largeResultBytesPerClient || largeResults <= 1,
      `${where}: keeps ${largeBytes} bytes of larger results, over the client's budget`,
    );
    return { floor, replies, largeBytes, encoded: null };
  }
}
