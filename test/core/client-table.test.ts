import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { type CachedReply, ClientTable, fnv1a32 } from '../../src/core/client-table.js';
import {
  type ClientId,
  clientId,
  InvariantViolation,
  requestNumber,
  sequenceNumber,
} from '../../src/core/ids.js';
import { ByteWriter } from '../../src/messages/bytes.js';

const alice = clientId('alice');
const bob = clientId('bob');

function replyOf(sequence: number, text: string, status: 'ok' | 'error' = 'ok'): CachedReply {
  return { sequence: sequenceNumber(sequence), status, result: new TextEncoder().encode(text) };
}

interface RecordSpec {
  readonly client: ClientId;
  readonly number: number;
  readonly reply: CachedReply;
}

/** Each client's records in increasing request order; clients interleaved at random. */
const clientNames = ['alice', 'bob', 'carol', 'dave', 'eve', 'frank', 'grace', 'heidi'].map(clientId);
const recordsArbitrary: fc.Arbitrary<RecordSpec[]> = fc
  .array(
    fc.record({
      client: fc.constantFrom(...clientNames),
      gap: fc.integer({ min: 1, max: 3 }),
      status: fc.constantFrom<'ok' | 'error'>('ok', 'error'),
      result: fc.uint8Array({ maxLength: 8 }),
    }),
    { maxLength: 40 },
  )
  .map((draws) => {
    const last = new Map<ClientId, number>();
    return draws.map(({ client, gap, status, result }, index) => {
      const number = (last.get(client) ?? 0) + gap;
      last.set(client, number);
      return { client, number, reply: { sequence: sequenceNumber(index + 1), status, result } };
    });
  });

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
  return fnv1a32(client) % table.chunkCount;
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
    assert.deepEqual(table.status(alice, requestNumber(2)), { kind: 'executed', reply });
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
          const chunks = original.chunks().map((chunk) => Uint8Array.from(chunk));
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

  it('rejects a chunk placed in the wrong bucket', () => {
    const table = new ClientTable(4, 3);
    table.record(alice, requestNumber(1), replyOf(1, 'hello'));
    const chunks = [...table.chunks()];
    const home = bucketOf(table, alice);
    const elsewhere = (home + 1) % 4;
    [chunks[home], chunks[elsewhere]] = [chunks[elsewhere]!, chunks[home]!];
    assert.throws(() => new ClientTable(4, 3).restore(chunks), /wrong client table chunk/);
  });

  it('rejects the wrong number of chunks, more replies than the window, and trailing bytes', () => {
    const table = new ClientTable(4, 3);
    for (let number = 1; number <= 3; number++)
      table.record(alice, requestNumber(number), replyOf(number, 'x'));
    const chunks = table.chunks();
    assert.throws(() => new ClientTable(5, 3).restore(chunks), InvariantViolation);
    assert.throws(() => new ClientTable(4, 2).restore(chunks), /more replies than the window/);
    const home = bucketOf(table, alice);
    const withTrailingByte = chunks.map((chunk, index) =>
      index === home ? Uint8Array.from([...chunk, 0]) : chunk,
    );
    assert.throws(() => new ClientTable(4, 3).restore(withTrailingByte), /trailing bytes/);
  });

  it('restores a hand-written bucket with a raised floor', () => {
    const chunkCount = 4;
    const writer = new ByteWriter();
    writer.varuint(1);
    writer.string(alice);
    writer.varuint(5); // floor
    writer.varuint(1); // one cached reply
    writer.varuint(7);
    writer.varuint(42);
    writer.u8(0);
    writer.lengthPrefixedBytes(new TextEncoder().encode('seven'));
    const chunks = Array.from({ length: chunkCount }, () => new ClientTable(chunkCount, 3).chunks()[0]!);
    chunks[fnv1a32(alice) % chunkCount] = writer.finish();
    const table = new ClientTable(chunkCount, 3);
    table.restore(chunks);
    assert.deepEqual(table.status(alice, requestNumber(5)), { kind: 'expired' });
    assert.deepEqual(table.status(alice, requestNumber(6)), { kind: 'new' });
    assert.deepEqual(table.status(alice, requestNumber(7)), {
      kind: 'executed',
      reply: replyOf(42, 'seven'),
    });
  });
});
