/**
 * Exactly-once bookkeeping: for every client, which request numbers were executed and the reply
 * each produced. It is part of the replicated state (it is checkpointed and transferred with the
 * service state), so that a retransmitted request is answered from the cache, never re-executed,
 * on every correct replica alike.
 *
 * A client may have up to `window` requests outstanding. Each record keeps the replies of its
 * last `window` executed requests; every request number at or below `floor` is finished (executed,
 * or given up by the client, which never reuses a number) and is ignored if it shows up again.
 */

import { ByteReader, ByteWriter } from '../messages/bytes.js';
import { LIMITS } from '../messages/limits.js';
import type { ReplyStatus } from '../messages/types.js';
import {
  assert,
  type ClientId,
  clientId,
  type RequestNumber,
  type SequenceNumber,
  sequenceNumber,
} from './ids.js';

export interface CachedReply {
  readonly sequence: SequenceNumber;
  readonly status: ReplyStatus;
  readonly result: Uint8Array;
}

export type ClientRequestStatus =
  | { readonly kind: 'new' }
  | { readonly kind: 'executed'; readonly reply: CachedReply }
  | { readonly kind: 'expired' };

interface ClientRecord {
  floor: number;
  readonly replies: Map<number, CachedReply>;
}

const newStatus: ClientRequestStatus = { kind: 'new' };
const expiredStatus: ClientRequestStatus = { kind: 'expired' };

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

export class ClientTable {
  readonly #records = new Map<ClientId, ClientRecord>();
  readonly #chunkCount: number;
  readonly #window: number;
  /** Serialized bucket per chunk index; undefined when the bucket changed since it was serialized. */
  readonly #serialized: (Uint8Array | undefined)[];

  constructor(chunkCount: number, window: number) {
    assert(chunkCount >= 1 && window >= 1, 'client table needs at least one chunk and a window of one');
    this.#chunkCount = chunkCount;
    this.#window = window;
    this.#serialized = new Array<Uint8Array | undefined>(chunkCount).fill(undefined);
  }

  get chunkCount(): number {
    return this.#chunkCount;
  }

  status(client: ClientId, requestNumber: RequestNumber): ClientRequestStatus {
    const record = this.#records.get(client);
    if (record === undefined) return requestNumber >= 1 ? newStatus : expiredStatus;
    if (requestNumber <= record.floor) return expiredStatus;
    const reply = record.replies.get(requestNumber);
    return reply === undefined ? newStatus : { kind: 'executed', reply };
  }

  record(client: ClientId, requestNumber: RequestNumber, reply: CachedReply): void {
    let record = this.#records.get(client);
    if (record === undefined) {
      record = { floor: 0, replies: new Map() };
      this.#records.set(client, record);
    }
    assert(requestNumber > record.floor && !record.replies.has(requestNumber), 'request executed twice');
    record.replies.set(requestNumber, reply);
    while (record.replies.size > this.#window) {
      let smallest = Number.POSITIVE_INFINITY;
      for (const number of record.replies.keys()) if (number < smallest) smallest = number;
      record.replies.delete(smallest);
      record.floor = Math.max(record.floor, smallest);
    }
    this.#serialized[fnv1a32(client) % this.#chunkCount] = undefined;
  }

  /** One chunk per bucket; an unchanged bucket yields the very same Uint8Array as last time. */
  chunks(): readonly Uint8Array[] {
    const buckets: ClientId[][] = [];
    let needsBuckets = false;
    for (let index = 0; index < this.#chunkCount; index++)
      if (this.#serialized[index] === undefined) needsBuckets = true;
    if (needsBuckets) {
      for (let index = 0; index < this.#chunkCount; index++) buckets.push([]);
      for (const client of this.#records.keys()) buckets[fnv1a32(client) % this.#chunkCount]!.push(client);
    }
    const out: Uint8Array[] = [];
    for (let index = 0; index < this.#chunkCount; index++) {
      let chunk = this.#serialized[index];
      if (chunk === undefined) {
        chunk = this.#serializeBucket(buckets[index]!.sort());
        this.#serialized[index] = chunk;
      }
      out.push(chunk);
    }
    return out;
  }

  restore(chunks: readonly Uint8Array[]): void {
    assert(
      chunks.length === this.#chunkCount,
      `client table expects ${this.#chunkCount} chunks, got ${chunks.length}`,
    );
    this.#records.clear();
    chunks.forEach((chunk, index) => {
      this.#deserializeBucket(chunk, index);
      this.#serialized[index] = chunk;
    });
  }

  #serializeBucket(clients: readonly ClientId[]): Uint8Array {
    const writer = new ByteWriter();
    writer.varuint(clients.length);
    for (const client of clients) {
      const record = this.#records.get(client)!;
      writer.string(client);
      writer.varuint(record.floor);
      const numbers = [...record.replies.keys()].sort((a, b) => a - b);
      writer.varuint(numbers.length);
      for (const number of numbers) {
        const reply = record.replies.get(number)!;
        writer.varuint(number);
        writer.varuint(reply.sequence);
        writer.u8(reply.status === 'ok' ? 0 : 1);
        writer.lengthPrefixedBytes(reply.result);
      }
    }
    return writer.finish();
  }

  #deserializeBucket(chunk: Uint8Array, index: number): void {
    const reader = new ByteReader(chunk);
    const count = reader.varuint('client count');
    for (let clientIndex = 0; clientIndex < count; clientIndex++) {
      const client = clientId(reader.string(LIMITS.maxClientIdBytes, 'client id'));
      assert(
        fnv1a32(client) % this.#chunkCount === index,
        `client ${client} is in the wrong client table chunk`,
      );
      const floor = reader.varuint('request floor');
      const replyCount = reader.varuint('reply count');
      assert(replyCount <= this.#window, 'client table chunk holds more replies than the window');
      const replies = new Map<number, CachedReply>();
      for (let replyIndex = 0; replyIndex < replyCount; replyIndex++) {
        const number = reader.varuint('request number');
        const sequence = sequenceNumber(reader.varuint('reply sequence'));
        const status: ReplyStatus = reader.u8('reply status') === 0 ? 'ok' : 'error';
        const result = reader.lengthPrefixedBytes(LIMITS.maxResultBytes, 'cached result').slice();
        replies.set(number, { sequence, status, result });
      }
      this.#records.set(client, { floor, replies });
    }
    assert(reader.remaining === 0, 'trailing bytes in client table chunk');
  }
}
