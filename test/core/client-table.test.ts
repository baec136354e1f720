import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  CLIENT_TABLE_CHUNK_HEADER_BYTES,
  CLIENT_TABLE_LIMITS,
  type CachedReply,
  ClientTable,
  type ClientTableOptions,
  fnv1a32,
} from '../../src/core/client-table.js';
import {
  type ClientId,
  clientId,
  InvariantViolation,
  requestNumber,
  sequenceNumber,
} from '../../src/messages/ids.js';
import { ByteWriter } from '../../src/messages/bytes.js';
import { LIMITS } from '../../src/messages/limits.js';

const alice = clientId('alice');
const bob = clientId('bob');
const textDecoder = new TextDecoder();

function replyOf(sequence: number, text: string, status: 'ok' | 'error' = 'ok'): CachedReply {
  return { sequence: sequenceNumber(sequence), status, result: new TextEncoder().encode(text) };
}

/** Results of any size up to LIMITS.maxResultBytes without allocating each: views of one buffer. */
const resultPool = Uint8Array.from({ length: LIMITS.maxResultBytes }, (_, index) => (index * 31) & 0xff);
function resultOf(bytes: number, salt = 0): Uint8Array {
  const start = salt % 251;
  return resultPool.subarray(start, start + Math.min(bytes, LIMITS.maxResultBytes - start));
}
function sizedReply(sequence: number, bytes: number): CachedReply {
  return { sequence: sequenceNumber(sequence), status: 'ok', result: resultPool.subarray(0, bytes) };
}

interface RecordSpec {
  readonly client: ClientId;
  readonly number: number;
  readonly reply: CachedReply;
}

/** Each client's records in increasing request order; clients interleaved at random. */
const clientNames = ['alice', 'bob', 'carol', 'dave', 'eve', 'frank', 'grace', 'heidi'].map(clientId);
function recordsOf(
  resultArbitrary: fc.Arbitrary<Uint8Array>,
  maxLength: number,
  clients: readonly ClientId[] = clientNames,
): fc.Arbitrary<RecordSpec[]> {
  return fc
    .array(
      fc.record({
        client: fc.constantFrom(...clients),
        gap: fc.integer({ min: 1, max: 3 }),
        status: fc.constantFrom<'ok' | 'error'>('ok', 'error'),
        result: resultArbitrary,
      }),
      { maxLength },
    )
    .map((draws) => {
      const last = new Map<ClientId, number>();
      return draws.map(({ client, gap, status, result }, index) => {
        const number = (last.get(client) ?? 0) + gap;
        last.set(client, number);
        return { client, number, reply: { sequence: sequenceNumber(index + 1), status, result } };
      });
    });
}
const recordsArbitrary = recordsOf(fc.uint8Array({ maxLength: 8 }), 40);

/** Sizes around every threshold: small, just above smallResultBytes, large, the largest. */
const anySizeResult: fc.Arbitrary<Uint8Array> = fc
  .tuple(
    fc.oneof(
      { arbitrary: fc.integer({ min: 0, max: 64 }), weight: 1 },
      {
        arbitrary: fc.integer({
          min: CLIENT_TABLE_LIMITS.smallResultBytes - 2,
          max: CLIENT_TABLE_LIMITS.smallResultBytes + 2,
        }),
        weight: 1,
      },
      { arbitrary: fc.integer({ min: 0, max: LIMITS.maxResultBytes }), weight: 2 },
      { arbitrary: fc.integer({ min: LIMITS.maxResultBytes - 300, max: LIMITS.maxResultBytes }), weight: 3 },
    ),
    fc.nat(250),
  )
  .map(([bytes, salt]) => resultOf(bytes, salt));

/** Small budgets and chunks: eviction (per client and in total) and split buckets with little data. */
const tinyOptions: ClientTableOptions = {
  smallResultBytes: 4,
  largeResultBytesPerClient: 40,
  largeResultBytesTotal: 100,
  maxResultBytes: 40,
  maxChunkBytes: 512,
};
const tinyResult = fc.uint8Array({ maxLength: 40 });

function fill(table: ClientTable, records: readonly RecordSpec[]): ClientTable {
  for (const { client, number, reply } of records) table.record(client, requestNumber(number), reply);
  return table;
}

/** The same records, with the clients' streams interleaved in another order (per-client order kept). */
function regroupedByClient(records: readonly RecordSpec[]): RecordSpec[] {
  const byClient = new Map<ClientId, RecordSpec[]>();
  for (const spec of records) byClient.set(spec.client, [...(byClient.get(spec.client) ?? []), spec]);
  return [...byClient.keys()]
    .sort()
    .reverse()
    .flatMap((client) => byClient.get(client)!);
}

function bucketOf(table: ClientTable, client: ClientId): number {
  return fnv1a32(client) % table.bucketCount;
}

function copies(chunks: readonly Uint8Array[]): Uint8Array[] {
  return chunks.map((chunk) => Uint8Array.from(chunk));
}

/** A chunk in the documented format, for restore tests that need what chunks() never makes. */
function handChunk(
  bucket: number,
  part: number,
  partCount: number,
  records: readonly Uint8Array[],
): Uint8Array {
  const writer = new ByteWriter();
  writer.u8(0x43);
  writer.u32(bucket);
  writer.u32(part);
  writer.u32(partCount);
  writer.u32(records.length);
  for (const record of records) writer.bytes(record);
  return writer.finish();
}

interface HandReply {
  readonly number: number;
  readonly sequence: number;
  readonly kind: number;
  readonly result?: Uint8Array;
  readonly evictedBytes?: number;
}
function handRecord(client: string, floor: number, replies: readonly HandReply[]): Uint8Array {
  const writer = new ByteWriter();
  writer.string(client);
  writer.varuint(floor);
  writer.varuint(replies.length);
  for (const reply of replies) {
    writer.varuint(reply.number);
    writer.varuint(reply.sequence);
    writer.u8(reply.kind);
    if (reply.kind === 2) writer.varuint(reply.evictedBytes!);
    else writer.lengthPrefixedBytes(reply.result ?? new Uint8Array());
  }
  return writer.finish();
}
/** Chunks of a table of `buckets` buckets where only `bucket` holds `records`, in one part. */
function withBucket(buckets: number, bucket: number, records: readonly Uint8Array[]): Uint8Array[] {
  return Array.from({ length: buckets }, (_, index) =>
    handChunk(index, 0, 1, index === bucket ? records : []),
  );
}

describe('fnv1a32', () => {
  it('is the standard 32-bit FNV-1a', () => {
    assert.equal(fnv1a32(''), 0x811c9dc5);
    assert.equal(fnv1a32('a'), 0xe40c292c);
    assert.equal(fnv1a32('foobar'), 0xbf9cf968);
  });
});

describe('ClientTable statuses', () => {
  it('reports a request number ≥ 1 of an unknown client as new, and 0 as expired', () => {
    const table = new ClientTable(4, 3);
    assert.deepEqual(table.status(alice, requestNumber(1)), { kind: 'new' });
    assert.deepEqual(table.status(alice, requestNumber(1000)), { kind: 'new' });
    assert.deepEqual(table.status(alice, requestNumber(0)), { kind: 'expired' });
  });

  it('returns the cached reply of an executed request, and new for numbers not executed', () => {
    const table = new ClientTable(4, 3);
    const reply = replyOf(7, 'seven', 'error');
    table.record(alice, requestNumber(2), reply);
    assert.deepEqual(table.status(alice, requestNumber(2)), {
      kind: 'executed',
      reply,
      resultEvicted: false,
    });
    assert.deepEqual(table.status(alice, requestNumber(1)), { kind: 'new' });
    assert.deepEqual(table.status(alice, requestNumber(3)), { kind: 'new' });
    assert.deepEqual(table.status(bob, requestNumber(2)), { kind: 'new' });
  });

  it('refuses to record the same request twice', () => {
    const table = new ClientTable(4, 3);
    table.record(alice, requestNumber(1), replyOf(1, 'x'));
    assert.throws(() => table.record(alice, requestNumber(1), replyOf(2, 'y')), InvariantViolation);
  });

  it('evicts the smallest reply beyond the window and raises the floor to it', () => {
    const table = new ClientTable(4, 2);
    table.record(alice, requestNumber(1), replyOf(1, 'one'));
    table.record(alice, requestNumber(3), replyOf(2, 'three'));
    assert.deepEqual(table.status(alice, requestNumber(2)), { kind: 'new' });
    table.record(alice, requestNumber(4), replyOf(3, 'four'));
    // 1 was evicted: it and everything below it is finished.
    assert.deepEqual(table.status(alice, requestNumber(1)), { kind: 'expired' });
    assert.deepEqual(table.status(alice, requestNumber(0)), { kind: 'expired' });
    // 2 is above the floor and was never executed: it may still be.
    assert.deepEqual(table.status(alice, requestNumber(2)), { kind: 'new' });
    assert.equal(table.status(alice, requestNumber(3)).kind, 'executed');
    assert.equal(table.status(alice, requestNumber(4)).kind, 'executed');
    table.record(alice, requestNumber(5), replyOf(4, 'five'));
    // Now 3 is evicted and the floor passes over the never-executed 2.
    assert.deepEqual(table.status(alice, requestNumber(2)), { kind: 'expired' });
    assert.deepEqual(table.status(alice, requestNumber(3)), { kind: 'expired' });
    assert.throws(() => table.record(alice, requestNumber(2), replyOf(5, 'late')), InvariantViolation);
    // Other clients are unaffected.
    assert.deepEqual(table.status(bob, requestNumber(1)), { kind: 'new' });
  });

  it('keeps at most `window` replies per client, always the latest ones', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 20 }), (window, count) => {
        const table = new ClientTable(2, window);
        for (let number = 1; number <= count; number++) {
          table.record(alice, requestNumber(number), replyOf(number, `r${number}`));
        }
        for (let number = 1; number <= count; number++) {
          const expected = number > count - window ? 'executed' : 'expired';
          assert.equal(table.status(alice, requestNumber(number)).kind, expected, `request ${number}`);
        }
      }),
    );
  });

  it('refuses a window or bucket count beyond its named limits', () => {
    assert.throws(() => new ClientTable(4, CLIENT_TABLE_LIMITS.maxWindow + 1), /maxOutstandingPerClient/);
    assert.throws(() => new ClientTable(CLIENT_TABLE_LIMITS.maxBuckets + 1, 4), /buckets/);
    assert.throws(() => new ClientTable(0, 4), /buckets/);
    assert.ok(new ClientTable(CLIENT_TABLE_LIMITS.maxBuckets, CLIENT_TABLE_LIMITS.maxWindow));
  });
});

describe('ClientTable reply budget', () => {
  const megabyte = LIMITS.maxResultBytes;

  it('keeps a client’s larger results up to its budget and evicts the oldest to a marker', () => {
    const table = new ClientTable(4, 64);
    table.record(alice, requestNumber(1), sizedReply(10, megabyte));
    table.record(alice, requestNumber(2), sizedReply(11, megabyte));
    assert.equal(table.largeResultBytes, 2 * megabyte);
    assert.equal(table.status(alice, requestNumber(1)).kind, 'executed');
    table.record(alice, requestNumber(3), sizedReply(12, megabyte));
    const evicted = table.status(alice, requestNumber(1));
    assert.equal(evicted.kind, 'executed');
    assert.ok(evicted.kind === 'executed' && evicted.resultEvicted);
    assert.equal(evicted.reply.status, 'error');
    assert.equal(evicted.reply.sequence, 10);
    assert.equal(
      textDecoder.decode(evicted.reply.result),
      `request executed at sequence 10; its result (${megabyte} bytes) was too large to keep for retransmission`,
    );
    for (const number of [2, 3]) {
      const kept = table.status(alice, requestNumber(number));
      assert.ok(kept.kind === 'executed' && !kept.resultEvicted && kept.reply.result.length === megabyte);
    }
    assert.equal(table.largeResultBytes, 2 * megabyte);
    // Another client's budget is its own.
    table.record(bob, requestNumber(1), sizedReply(13, megabyte));
    assert.ok(table.status(bob, requestNumber(1)).kind === 'executed');
    assert.equal(table.largeResultBytes, 3 * megabyte);
  });

  it('evicts by request number, never the reply just recorded, and never a small result', () => {
    const table = new ClientTable(1, 8, { smallResultBytes: 4, largeResultBytesPerClient: 10 });
    table.record(alice, requestNumber(1), replyOf(1, 'tiny'));
    table.record(alice, requestNumber(5), replyOf(2, 'five bytes'.slice(0, 5)));
    table.record(alice, requestNumber(3), replyOf(3, 'three'));
    // 5 + 5 bytes fit the budget of 10.
    assert.ok(
      ['tiny', 'five ', 'three'].every(
        (_, index) => table.status(alice, requestNumber([1, 5, 3][index]!)).kind === 'executed',
      ),
    );
    // Twenty bytes alone exceed the budget: it is kept, the older larger ones go, lowest number first.
    table.record(alice, requestNumber(4), replyOf(4, 'twenty bytes exactly'));
    const statuses = [1, 3, 4, 5].map((number) => table.status(alice, requestNumber(number)));
    assert.deepEqual(
      statuses.map((status) => status.kind === 'executed' && status.resultEvicted),
      [false, true, false, true],
    );
    assert.equal(table.largeResultBytes, 20);
  });

  it('keeps the total over all clients within its budget, evicting the oldest by sequence', () => {
    const table = new ClientTable(2, 8, {
      smallResultBytes: 4,
      largeResultBytesPerClient: 100,
      largeResultBytesTotal: 30,
    });
    table.record(bob, requestNumber(1), replyOf(1, 'b'.repeat(10)));
    table.record(alice, requestNumber(1), replyOf(2, 'a'.repeat(10)));
    table.record(bob, requestNumber(2), replyOf(2, 'B'.repeat(10)));
    assert.equal(table.largeResultBytes, 30);
    table.record(alice, requestNumber(2), replyOf(3, 'A'.repeat(10)));
    // bob#1 (sequence 1) goes first.
    const evicted = (client: ClientId, number: number): boolean => {
      const status = table.status(client, requestNumber(number));
      return status.kind === 'executed' && status.resultEvicted;
    };
    assert.deepEqual(
      [evicted(bob, 1), evicted(alice, 1), evicted(bob, 2), evicted(alice, 2)],
      [true, false, false, false],
    );
    table.record(bob, requestNumber(3), replyOf(4, 'C'.repeat(10)));
    // At sequence 2 both alice#1 and bob#2 are oldest: the lower client id goes first.
    assert.deepEqual([evicted(alice, 1), evicted(bob, 2)], [true, false]);
    assert.equal(table.largeResultBytes, 30);
  });

  it('reproduces the field report: 64 ordered reads of a 1 MB value still checkpoint', () => {
    const table = new ClientTable(16, 64);
    table.record(alice, requestNumber(1), replyOf(1, 'ok'));
    for (let number = 2; number <= 65; number++)
      table.record(alice, requestNumber(number), sizedReply(number, megabyte));
    const chunks = table.chunks();
    assert.equal(chunks.length, 16);
    assert.ok(chunks.every((chunk) => chunk.length <= LIMITS.maxChunkBytes));
    assert.equal(table.largeResultBytes, 2 * megabyte);
    const restored = new ClientTable(16, 64);
    restored.restore(copies(chunks));
    assert.deepEqual(restored.chunks(), chunks);
    assert.ok(restored.status(alice, requestNumber(3)).kind === 'executed');
  });
});

describe('ClientTable chunks', () => {
  it('has one chunk per bucket, even when empty, and identical chunks for identical tables', () => {
    const empty = new ClientTable(5, 3).chunks();
    assert.equal(empty.length, 5);
    assert.deepEqual(empty, new ClientTable(5, 3).chunks());
  });

  it('are identical across two tables fed the same records, in whatever client order', () => {
    fc.assert(
      fc.property(
        recordsArbitrary,
        fc.integer({ min: 1, max: 6 }),
        fc.integer({ min: 1, max: 4 }),
        (records, chunkCount, window) => {
          const first = fill(new ClientTable(chunkCount, window), records);
          const second = fill(new ClientTable(chunkCount, window), regroupedByClient(records));
          assert.deepEqual(first.chunks(), second.chunks());
        },
      ),
      { numRuns: 200 },
    );
  });

  it('are identical across two tables fed the same records in the same order, budgets and splits included', () => {
    fc.assert(
      fc.property(
        recordsOf(tinyResult, 80),
        fc.integer({ min: 1, max: 3 }),
        fc.integer({ min: 1, max: 6 }),
        fc.integer({ min: 0, max: 80 }),
        (records, buckets, window, snapshotAt) => {
          const first = new ClientTable(buckets, window, tinyOptions);
          const second = new ClientTable(buckets, window, tinyOptions);
          // Snapshotting midway must not change what comes out at the end.
          fill(first, records.slice(0, snapshotAt)).chunks();
          fill(first, records.slice(snapshotAt));
          fill(second, records);
          assert.deepEqual(first.chunks(), second.chunks());
        },
      ),
      { numRuns: 200 },
    );
  });

  it('depend on the contents: another cached result changes its client’s chunk', () => {
    const first = new ClientTable(4, 3);
    const second = new ClientTable(4, 3);
    first.record(alice, requestNumber(1), replyOf(1, 'yes'));
    second.record(alice, requestNumber(1), replyOf(1, 'no'));
    const bucket = bucketOf(first, alice);
    assert.notDeepEqual(first.chunks()[bucket], second.chunks()[bucket]);
  });

  it('keeps the identity of unchanged buckets and re-serializes only the changed one', () => {
    const table = new ClientTable(8, 3);
    for (const client of clientNames) table.record(client, requestNumber(1), replyOf(1, client));
    const before = table.chunks();
    assert.ok(table.chunks().every((chunk, index) => chunk === before[index]));
    table.record(alice, requestNumber(2), replyOf(2, 'again'));
    const after = table.chunks();
    const changed = bucketOf(table, alice);
    for (let index = 0; index < after.length; index++) {
      if (index === changed) assert.notEqual(after[index], before[index]);
      else assert.equal(after[index], before[index], `bucket ${index} was re-serialized`);
    }
  });

  it('splits a bucket into parts of at most maxChunkBytes and keeps the parts that did not change', () => {
    const table = new ClientTable(1, 64);
    // Six clients of about 2 MiB each in one bucket: 12 MiB, at least three parts.
    for (const [index, client] of clientNames.slice(0, 6).entries()) {
      table.record(client, requestNumber(1), sizedReply(index + 1, LIMITS.maxResultBytes));
      table.record(client, requestNumber(2), sizedReply(index + 1, LIMITS.maxResultBytes - 1000));
    }
    const before = table.chunks();
    assert.ok(before.length >= 3, `${before.length} parts`);
    assert.ok(before.every((chunk) => chunk.length <= LIMITS.maxChunkBytes));
    assert.equal(table.chunkCountIn([...before, new Uint8Array(3)]), before.length);
    // The last client (in id order) changes: only the last part is new.
    const last = clientNames.slice(0, 6).sort().at(-1)!;
    table.record(last, requestNumber(3), replyOf(99, 'small'));
    const after = table.chunks();
    assert.equal(after.length, before.length);
    after.forEach((chunk, index) => {
      if (index === after.length - 1) assert.notEqual(chunk, before[index]);
      else assert.equal(chunk, before[index], `part ${index} was rebuilt`);
    });
  });

  it('any records with results up to maxResultBytes give chunks within maxChunkBytes, and round-trip', () => {
    fc.assert(
      fc.property(
        recordsOf(anySizeResult, 40, clientNames.slice(0, 5)),
        fc.integer({ min: 1, max: 3 }),
        fc.constantFrom(1, 8, 64),
        (records, buckets, window) => {
          const table = fill(new ClientTable(buckets, window), records);
          const chunks = table.chunks();
          for (const chunk of chunks)
            assert.ok(chunk.length <= LIMITS.maxChunkBytes, `${chunk.length} bytes`);
          assert.ok(chunks.length <= CLIENT_TABLE_LIMITS.maxChunks);
          const restored = new ClientTable(buckets, window);
          restored.restore(copies(chunks));
          assert.deepEqual(restored.chunks(), chunks);
        },
      ),
      { numRuns: 25 },
    );
  });

  it('any records give chunks within a small chunk size, which chunkCountIn finds and restore takes back', () => {
    fc.assert(
      fc.property(
        recordsOf(tinyResult, 80),
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 1, max: 6 }),
        fc.array(fc.uint8Array({ maxLength: 20 }), { maxLength: 3 }),
        (records, buckets, window, serviceChunks) => {
          const table = fill(new ClientTable(buckets, window, tinyOptions), records);
          const chunks = table.chunks();
          for (const chunk of chunks) assert.ok(chunk.length <= tinyOptions.maxChunkBytes!);
          assert.equal(table.chunkCountIn([...chunks, ...serviceChunks]), chunks.length);
          const restored = new ClientTable(buckets, window, tinyOptions);
          restored.record(clientId('stale'), requestNumber(1), replyOf(1, 'dropped by restore'));
          restored.restore(copies(chunks));
          assert.deepEqual(restored.chunks(), chunks);
          assert.equal(restored.largeResultBytes, table.largeResultBytes);
          // Restored, it goes on exactly like the original.
          const next = { client: alice, reply: replyOf(records.length + 1, 'after restore, twenty') };
          const number = requestNumber(1000);
          table.record(next.client, number, next.reply);
          restored.record(next.client, number, next.reply);
          assert.deepEqual(restored.chunks(), table.chunks());
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('ClientTable restore', () => {
  it('round-trips: statuses, cached replies and chunks survive', () => {
    fc.assert(
      fc.property(
        recordsArbitrary,
        fc.integer({ min: 1, max: 6 }),
        fc.integer({ min: 1, max: 4 }),
        (records, chunkCount, window) => {
          const original = fill(new ClientTable(chunkCount, window), records);
          const chunks = copies(original.chunks());
          const restored = new ClientTable(chunkCount, window);
          restored.record(clientId('stale'), requestNumber(1), replyOf(1, 'dropped by restore'));
          restored.restore(chunks);
          assert.deepEqual(restored.chunks(), original.chunks());
          assert.deepEqual(restored.status(clientId('stale'), requestNumber(1)), { kind: 'new' });
          for (const client of clientNames) {
            for (let number = 0; number <= 1 + 3 * records.length; number++) {
              assert.deepEqual(
                restored.status(client, requestNumber(number)),
                original.status(client, requestNumber(number)),
                `${client} #${number}`,
              );
            }
          }
        },
      ),
      { numRuns: 100 },
    );
  });

  it('keeps unchanged chunks it restored as the same objects', () => {
    const table = new ClientTable(4, 3);
    table.record(alice, requestNumber(1), replyOf(1, 'hello'));
    const chunks = copies(table.chunks());
    const restored = new ClientTable(4, 3);
    restored.restore(chunks);
    assert.ok(restored.chunks().every((chunk, index) => chunk === chunks[index]));
  });

  it('rejects a chunk placed in the wrong bucket', () => {
    const table = new ClientTable(4, 3);
    table.record(alice, requestNumber(1), replyOf(1, 'hello'));
    const chunks = [...table.chunks()];
    const home = bucketOf(table, alice);
    const elsewhere = (home + 1) % 4;
    [chunks[home], chunks[elsewhere]] = [chunks[elsewhere]!, chunks[home]!];
    assert.throws(() => new ClientTable(4, 3).restore(chunks), /should start client table bucket/);
    // Right header, wrong contents: the client does not hash there.
    const home4 = fnv1a32(alice) % 4;
    const moved = withBucket(4, (home4 + 1) % 4, [
      handRecord('alice', 0, [{ number: 1, sequence: 1, kind: 0 }]),
    ]);
    assert.throws(() => new ClientTable(4, 3).restore(moved), /wrong bucket/);
  });

  it('rejects the wrong number of chunks, more replies than the window, and trailing bytes', () => {
    const table = new ClientTable(4, 3);
    for (let number = 1; number <= 3; number++)
      table.record(alice, requestNumber(number), replyOf(number, 'x'));
    const chunks = table.chunks();
    assert.throws(() => new ClientTable(5, 3).restore(chunks), InvariantViolation);
    assert.throws(() => new ClientTable(3, 3).restore(chunks), /chunks say there are 3/);
    assert.throws(() => new ClientTable(4, 2).restore(chunks), /3 replies, window is 2/);
    const home = bucketOf(table, alice);
    const withTrailingByte = chunks.map((chunk, index) =>
      index === home ? Uint8Array.from([...chunk, 0]) : chunk,
    );
    assert.throws(() => new ClientTable(4, 3).restore(withTrailingByte), /trailing bytes/);
    assert.throws(
      () => new ClientTable(4, 3).restore([...chunks, new Uint8Array(4)]),
      /chunks say there are 4/,
    );
  });

  it('rejects what chunks() never produces: unordered clients or requests, unknown kinds, over-budget records', () => {
    const bucket = (client: string): number => fnv1a32(client) % 1;
    const restoreOne = (records: readonly Uint8Array[], options: ClientTableOptions = {}): void =>
      new ClientTable(1, 4, options).restore(withBucket(1, bucket('alice'), records));
    const one = (number: number): HandReply => ({
      number,
      sequence: number,
      kind: 0,
      result: new Uint8Array(1),
    });
    assert.throws(
      () => restoreOne([handRecord('bob', 0, [one(1)]), handRecord('alice', 0, [one(1)])]),
      /out of order/,
    );
    assert.throws(() => restoreOne([handRecord('alice', 0, [one(2), one(1)])]), /not above 2/);
    assert.throws(() => restoreOne([handRecord('alice', 3, [one(3)])]), /not above 3/);
    assert.throws(() => restoreOne([handRecord('alice', 0, [])]), /0 replies/);
    assert.throws(
      () => restoreOne([handRecord('alice', 0, [{ number: 1, sequence: 1, kind: 3 }])]),
      /unknown reply kind/,
    );
    assert.throws(
      () => restoreOne([handRecord('alice', 0, [{ number: 1, sequence: 1, kind: 2, evictedBytes: 10 }])]),
      /could not have been evicted/,
    );
    const big = (number: number): HandReply => ({
      number,
      sequence: number,
      kind: 0,
      result: new Uint8Array(30),
    });
    const options = { smallResultBytes: 4, largeResultBytesPerClient: 40 };
    assert.throws(
      () => restoreOne([handRecord('alice', 0, [big(1), big(2)])], options),
      /over the client's budget/,
    );
    // One larger result alone may exceed the budget (it was the one just recorded).
    restoreOne(
      [handRecord('alice', 0, [{ number: 1, sequence: 1, kind: 0, result: new Uint8Array(50) }])],
      options,
    );
    assert.throws(
      () =>
        new ClientTable(1, 4, { ...options, largeResultBytesTotal: 40 }).restore(
          withBucket(1, 0, [handRecord('alice', 0, [big(1)]), handRecord('bob', 0, [big(1)])]),
        ),
      /over the total budget/,
    );
    assert.throws(
      () => new ClientTable(1, 4).restore([new Uint8Array([0x43, 0, 0])]),
      /not a client table chunk/,
    );
  });

  it('rejects a bucket split where greedy packing would not split it', () => {
    const options: ClientTableOptions = {
      ...tinyOptions,
      largeResultBytesPerClient: 120,
      largeResultBytesTotal: 1000,
      maxResultBytes: 120,
    };
    const record = (client: string): Uint8Array =>
      handRecord(client, 0, [{ number: 1, sequence: 1, kind: 0, result: new Uint8Array(100) }]);
    // Two small records fit one part together: two parts is not canonical.
    const split = [handChunk(0, 0, 2, [record('alice')]), handChunk(0, 1, 2, [record('bob')])];
    assert.throws(() => new ClientTable(1, 4, options).restore(split), /would have fit the part before/);
    new ClientTable(1, 4, options).restore([handChunk(0, 0, 1, [record('alice'), record('bob')])]);
    assert.throws(
      () =>
        new ClientTable(1, 4, options).restore([
          handChunk(0, 0, 2, [record('alice')]),
          handChunk(0, 1, 2, []),
        ]),
      /empty but its bucket has parts/,
    );
  });

  it('restores a hand-written bucket with a raised floor and an evicted result', () => {
    const chunkCount = 4;
    const home = fnv1a32(alice) % chunkCount;
    const chunks = withBucket(chunkCount, home, [
      handRecord('alice', 5, [
        { number: 7, sequence: 42, kind: 0, result: new TextEncoder().encode('seven') },
        { number: 8, sequence: 43, kind: 2, evictedBytes: 5000 },
      ]),
    ]);
    const table = new ClientTable(chunkCount, 3);
    table.restore(chunks);
    assert.deepEqual(table.status(alice, requestNumber(5)), { kind: 'expired' });
    assert.deepEqual(table.status(alice, requestNumber(6)), { kind: 'new' });
    assert.deepEqual(table.status(alice, requestNumber(7)), {
      kind: 'executed',
      reply: replyOf(42, 'seven'),
      resultEvicted: false,
    });
    const evicted = table.status(alice, requestNumber(8));
    assert.ok(evicted.kind === 'executed' && evicted.resultEvicted && evicted.reply.sequence === 43);
    assert.match(textDecoder.decode(evicted.reply.result), /sequence 43; its result \(5000 bytes\)/);
    assert.deepEqual(table.chunks(), chunks);
  });

  it('leaves the table as it was when restore fails', () => {
    const table = new ClientTable(1, 4);
    table.record(alice, requestNumber(1), replyOf(1, 'kept'));
    const before = table.chunks();
    assert.throws(() => table.restore([handChunk(0, 0, 1, [handRecord('alice', 0, [])])]));
    assert.equal(table.chunks()[0], before[0]);
    assert.equal(table.status(alice, requestNumber(1)).kind, 'executed');
  });

  it('finds the table’s chunks at the head of a checkpoint whatever its part counts', () => {
    const table = new ClientTable(2, 4, tinyOptions);
    const many = Array.from({ length: 40 }, (_, index) => clientId(`client-${index}`));
    for (let number = 1; number <= 4; number++)
      for (const client of many) table.record(client, requestNumber(number), replyOf(number, 'four'));
    const chunks = table.chunks();
    assert.ok(chunks.length > 2);
    const service = [new Uint8Array([0x41, 1, 2]), new Uint8Array(0)];
    assert.equal(table.chunkCountIn([...chunks, ...service]), chunks.length);
    assert.throws(() => table.chunkCountIn(chunks.slice(0, -1)), /claims|ends before/);
    assert.throws(() => table.chunkCountIn(service), /not a client table chunk/);
    assert.equal(CLIENT_TABLE_CHUNK_HEADER_BYTES, 17);
  });
});
