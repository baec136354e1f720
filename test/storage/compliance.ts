/**
 * The behaviour every storage engine must have, as one suite that each engine's test file runs
 * with its own harness (how to make a location, open it, and damage it the way a disk would).
 * Also the record and checkpoint fixtures the crash test's writer uses.
 */
import * as assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, describe, it } from 'node:test';
import fc from 'fast-check';
import type { DurableRecord, StoredCheckpoint } from '../../src/core/actions.js';
import {
  type ClientId,
  type Digest,
  digest,
  keyEpoch,
  replicaId,
  requestNumber,
  type SequenceNumber,
  sequenceNumber,
  signature,
  viewNumber,
} from '../../src/messages/ids.js';
import { leafDigest, merkleRoot } from '../../src/core/merkle.js';
import type { ClientRequest, PrePrepare } from '../../src/messages/types.js';
import { survivorsOfCheckpoint } from '../../src/storage/records.js';
import type { ReplicaStorage, StorageEngineName } from '../../src/storage/storage.js';

// ───────────────────────────── fixtures ─────────────────────────────

export function sha256(data: Uint8Array): Digest {
  return digest(new Uint8Array(createHash('sha256').update(data).digest()));
}

function bytes(length: number): Uint8Array {
  return new Uint8Array(randomBytes(length));
}

export function makeRequest(number: number, operationBytes = 24, signed = false): ClientRequest {
  return {
    kind: 'request',
    clientId: `client-${number % 7}` as ClientId,
    requestNumber: requestNumber(number),
    readOnly: false,
    operation: bytes(operationBytes),
    authenticator: [0, 1, 2, 3].map((index) => ({ keyEpoch: keyEpoch(index), mac: bytes(16) })),
    signature: signed ? signature(bytes(64)) : null,
  };
}

export function makeBatch(size: number, operationBytes = 24): ClientRequest[] {
  return Array.from({ length: size }, (_, index) => makeRequest(index + 1, operationBytes, index % 2 === 0));
}

export function makePrePrepare(view: number, sequence: number, batchSize = 3): PrePrepare {
  return {
    kind: 'pre-prepare',
    view: viewNumber(view),
    sequence: sequenceNumber(sequence),
    batchDigest: sha256(bytes(8)),
    batch: makeBatch(batchSize),
    keyEpoch: keyEpoch(1),
    signature: signature(bytes(64)),
  };
}

export function prePrepareRecord(view: number, sequence: number, batchSize = 3): DurableRecord {
  return { kind: 'pre-prepare', message: makePrePrepare(view, sequence, batchSize) };
}

export function preparedRecord(view: number, sequence: number): DurableRecord {
  return {
    kind: 'prepared',
    view: viewNumber(view),
    sequence: sequenceNumber(sequence),
    batchDigest: sha256(bytes(4)),
  };
}

export function committedRecord(view: number, sequence: number, withBatch: boolean): DurableRecord {
  return {
    kind: 'committed',
    view: viewNumber(view),
    sequence: sequenceNumber(sequence),
    batchDigest: sha256(bytes(4)),
    batch: withBatch ? makeBatch(2) : null,
  };
}

/** A safe-mode record: two vote sets for sequence 4 with different roots, replicas 1 and 2 in both. */
export function safeModeRecord(): DurableRecord {
  const votes = (signers: readonly number[]) =>
    signers.map((index) => ({
      replicaId: replicaId(index),
      keyEpoch: keyEpoch(1),
      signature: signature(bytes(64)),
    }));
  return {
    kind: 'safe-mode',
    proof: {
      first: { sequence: sequenceNumber(4), stateRoot: sha256(bytes(5)), votes: votes([0, 1, 2]) },
      second: { sequence: sequenceNumber(4), stateRoot: sha256(bytes(6)), votes: votes([1, 2, 3]) },
      equivocations: [],
      culprits: [replicaId(1), replicaId(2)],
      otherEvidence: [],
    },
  };
}

export function viewRecord(view: number, viewChangeInProgress: boolean): DurableRecord {
  return { kind: 'view', view: viewNumber(view), viewChangeInProgress };
}

export function makeCheckpoint(sequence: number, chunks: readonly Uint8Array[]): StoredCheckpoint {
  const leaves = chunks.map((chunk) => leafDigest(sha256, chunk));
  return {
    certificate: {
      sequence: sequenceNumber(sequence),
      stateRoot: merkleRoot(sha256, leaves),
      votes: [0, 1, 2].map((index) => ({
        replicaId: replicaId(index),
        keyEpoch: keyEpoch(1),
        signature: signature(bytes(64)),
      })),
    },
    leaves,
    chunks,
  };
}

export function makeChunks(count: number, size: number): Uint8Array[] {
  return Array.from({ length: count }, () => bytes(size));
}

/** Sequence of a record, or null for a view record and a safe-mode record (they belong to none). */
export function sequenceOf(record: DurableRecord): SequenceNumber | null {
  switch (record.kind) {
    case 'view':
    case 'safe-mode':
      return null;
    case 'pre-prepare':
      return record.message.sequence;
    case 'prepared':
    case 'committed':
      return record.sequence;
  }
}

// ───────────────────────────── suite ─────────────────────────────

/** What the suite needs to know about an engine. Damage hooks are called with the storage closed. */
export interface EngineHarness {
  readonly engine: StorageEngineName;
  /** A fresh, empty place to store into. */
  createLocation(): Promise<string>;
  open(location: string): Promise<ReplicaStorage>;
  /** Flips a byte of the stored chunk named by `leaf`. */
  corruptChunk(location: string, leaf: Digest): Promise<void>;
  /** Leaves the beginning of `record`'s encoding after the last record, as a crash mid-write would. */
  tearTail(location: string, record: DurableRecord): Promise<void>;
  removeLocation(location: string): Promise<void>;
  /** Fewer property runs for slow engines. */
  readonly propertyRuns: number;
}

/** Protocol records without the view records (of which only the last is guaranteed to survive). */
function withoutViews(records: readonly DurableRecord[] | undefined): DurableRecord[] {
  return (records ?? []).filter((record) => record.kind !== 'view');
}

export function runComplianceSuite(harness: EngineHarness): void {
  const locations: string[] = [];
  const fresh = async (): Promise<string> => {
    const location = await harness.createLocation();
    locations.push(location);
    return location;
  };
  const reopen = async (location: string) => {
    const storage = await harness.open(location);
    const report = await storage.load();
    return { storage, report };
  };
  /** What a restart would read, without keeping the storage open. */
  const loadAndClose = async (location: string) => {
    const { storage, report } = await reopen(location);
    await storage.close();
    return report;
  };
  after(async () => {
    for (const location of locations) await harness.removeLocation(location);
  });

  describe(`${harness.engine} storage: compliance`, () => {
    it('reports nothing stored for a fresh location', async () => {
      const { storage, report } = await reopen(await fresh());
      assert.equal(report.restored, undefined);
      assert.equal(report.corruptRecords, 0);
      assert.equal(report.corruptChunks, 0);
      await storage.close();
    });

    it('round-trips every record kind, before and after a reopen', async () => {
      const location = await fresh();
      const storage = await harness.open(location);
      await storage.load();
      const records = [
        viewRecord(1, false),
        prePrepareRecord(1, 1),
        { kind: 'pre-prepare', message: { ...makePrePrepare(1, 2, 0) } } satisfies DurableRecord,
        preparedRecord(1, 1),
        committedRecord(1, 1, false),
        committedRecord(1, 2, true),
        safeModeRecord(),
        viewRecord(2, true),
      ];
      for (const record of records) storage.append(record);
      await storage.flush();
      assert.deepEqual((await storage.load()).restored?.records, records);
      await storage.close();
      const { storage: again, report } = await reopen(location);
      assert.deepEqual(report.restored?.records, records);
      assert.equal(report.restored?.view, 2);
      assert.equal(report.restored?.viewChangeInProgress, true);
      assert.equal(report.restored?.checkpoint, null);
      assert.equal(report.corruptRecords, 0);
      await again.close();
    });

    it('keeps a safe-mode record through every compaction (it belongs to no sequence)', async () => {
      const location = await fresh();
      const storage = await harness.open(location);
      await storage.load();
      const safeMode = safeModeRecord();
      storage.append(prePrepareRecord(0, 1));
      storage.append(safeMode);
      storage.append(preparedRecord(0, 2));
      storage.storeCheckpoint(makeCheckpoint(6, makeChunks(2, 50)));
      await storage.flush();
      storage.storeCheckpoint(makeCheckpoint(12, makeChunks(2, 50)));
      await storage.flush();
      assert.deepEqual((await storage.load()).restored?.records, [safeMode]);
      await storage.close();
      const { storage: again, report } = await reopen(location);
      assert.deepEqual(report.restored?.records, [safeMode]);
      await again.close();
    });

    it('resumes in view 0 without a view record, else in the view of the last one', async () => {
      const location = await fresh();
      const storage = await harness.open(location);
      storage.append(preparedRecord(0, 1));
      await storage.flush();
      let report = await storage.load();
      assert.equal(report.restored?.view, 0);
      assert.equal(report.restored?.viewChangeInProgress, false);
      storage.append(viewRecord(3, true));
      storage.append(preparedRecord(3, 2));
      storage.append(viewRecord(4, false));
      await storage.flush();
      report = await storage.load();
      assert.equal(report.restored?.view, 4);
      assert.equal(report.restored?.viewChangeInProgress, false);
      storage.append(viewRecord(5, true));
      await storage.close();
      report = await loadAndClose(location);
      assert.equal(report.restored?.view, 5);
      assert.equal(report.restored?.viewChangeInProgress, true);
    });

    it('drops records at or below a stored checkpoint, keeps later ones and the latest view', async () => {
      const location = await fresh();
      const storage = await harness.open(location);
      await storage.load();
      const written: DurableRecord[] = [viewRecord(1, false)];
      for (let sequence = 1; sequence <= 10; sequence++) {
        written.push(
          prePrepareRecord(1, sequence),
          preparedRecord(1, sequence),
          committedRecord(1, sequence, false),
        );
        if (sequence === 4) written.push(viewRecord(2, true), viewRecord(2, false));
      }
      for (const record of written) storage.append(record);
      const chunks = makeChunks(3, 100);
      storage.storeCheckpoint(makeCheckpoint(6, chunks));
      const later = [prePrepareRecord(2, 11), preparedRecord(2, 11)];
      for (const record of later) storage.append(record);
      await storage.flush();
      const expected = [...written.filter((_, index) => survivors(written, 6)[index]), ...later];
      assert.ok(expected.every((record) => (sequenceOf(record) ?? 7) > 6));
      assert.equal(expected.filter((record) => record.kind === 'view').length, 1);
      // Older view records may or may not survive (compaction can be lazy); the view they give and
      // every protocol record above the checkpoint must.
      const report = await storage.load();
      assert.deepEqual(withoutViews(report.restored?.records), withoutViews(expected));
      assert.equal(report.restored?.view, 2);
      assert.equal(report.restored?.checkpoint?.certificate.sequence, 6);
      await storage.close();
      const { storage: again, report: reopened } = await reopen(location);
      assert.deepEqual(withoutViews(reopened.restored?.records), withoutViews(expected));
      assert.deepEqual(reopened.restored?.checkpoint?.chunks, chunks);
      assert.equal(reopened.restored?.view, 2);
      assert.equal(reopened.restored?.viewChangeInProgress, false);
      // Appends after the compaction go on after the survivors.
      const more = prePrepareRecord(2, 12);
      again.append(more);
      await again.close();
      assert.deepEqual(
        withoutViews((await loadAndClose(location)).restored?.records),
        withoutViews([...expected, more]),
      );
    });

    it('round-trips chunks, reuses unchanged ones and replaces the checkpoint whole', async () => {
      const location = await fresh();
      const storage = await harness.open(location);
      await storage.load();
      const first = makeChunks(4, 1000);
      storage.storeCheckpoint(makeCheckpoint(10, first));
      await storage.settled();
      const written = storage.statistics().chunksWritten;
      assert.equal(written, 4);
      const second = [first[0]!, makeChunks(1, 10)[0]!, first[2]!, first[2]!, new Uint8Array(0)];
      storage.storeCheckpoint(makeCheckpoint(20, second));
      await storage.settled();
      const statistics = storage.statistics();
      assert.equal(statistics.chunksWritten - written, 2, 'the new chunk and the empty one');
      assert.equal(statistics.chunksReused, 3, 'two unchanged chunks and one duplicate');
      assert.equal(statistics.checkpointsStored, 2);
      await storage.close();
      const { storage: again, report } = await reopen(location);
      assert.equal(report.restored?.checkpoint?.certificate.sequence, 20);
      assert.deepEqual(report.restored?.checkpoint?.chunks, second);
      assert.deepEqual(report.restored?.checkpoint?.leaves, makeCheckpoint(20, second).leaves);
      assert.equal(report.corruptChunks, 0);
      assert.deepEqual(report.restored?.records, []);
      // A checkpoint without chunks is stored too.
      again.storeCheckpoint(makeCheckpoint(30, []));
      await again.close();
      const last = await loadAndClose(location);
      assert.equal(last.restored?.checkpoint?.certificate.sequence, 30);
      assert.deepEqual(last.restored?.checkpoint?.chunks, []);
    });

    it('returns everything flushed and everything queued before close after a reopen', async () => {
      const location = await fresh();
      const storage = await harness.open(location);
      const first = prePrepareRecord(0, 1, 50);
      const second = preparedRecord(0, 1);
      storage.append(first);
      await storage.flush();
      storage.append(second);
      await storage.close();
      assert.throws(() => storage.append(second), /closed/);
      await assert.rejects(storage.flush(), /closed/);
      const { storage: again, report } = await reopen(location);
      assert.deepEqual(report.restored?.records, [first, second]);
      await again.close();
    });

    /** A closed storage holding checkpoint 5 of three chunks, the middle one damaged, and `records`. */
    const storedWithDamagedChunk = async (records: readonly DurableRecord[]) => {
      const location = await fresh();
      const storage = await harness.open(location);
      const chunks = makeChunks(3, 4096);
      const checkpoint = makeCheckpoint(5, chunks);
      storage.storeCheckpoint(checkpoint);
      for (const record of records) storage.append(record);
      await storage.close();
      await harness.corruptChunk(location, checkpoint.leaves[1]!);
      return { location, chunks };
    };

    it('returns a null chunk for a damaged chunk and counts it', async () => {
      const { location, chunks } = await storedWithDamagedChunk([prePrepareRecord(0, 6)]);
      const { storage: again, report } = await reopen(location);
      assert.equal(report.corruptChunks, 1);
      assert.deepEqual(report.restored?.checkpoint?.chunks, [chunks[0], null, chunks[2]]);
      assert.equal(report.restored?.records.length, 1);
      await again.close();
    });

    it('discards the log on an amnesiac load: no records now or after a restart, the checkpoint kept', async () => {
      const location = await fresh();
      const storage = await harness.open(location);
      const chunks = makeChunks(3, 1024);
      storage.storeCheckpoint(makeCheckpoint(4, chunks));
      const before = [prePrepareRecord(0, 5), preparedRecord(0, 5), viewRecord(1, true)];
      for (const record of before) storage.append(record);
      await storage.flush();
      await storage.close();

      const amnesiac = await harness.open(location);
      const report = await amnesiac.load({ discardLog: true });
      assert.deepEqual(report.restored?.records, []);
      assert.deepEqual(report.restored?.checkpoint?.chunks, chunks);
      assert.equal(report.restored?.checkpoint?.certificate.sequence, 4);
      // What the new process writes is all a later (non-amnesiac) restart reads.
      const after = [prePrepareRecord(2, 6), preparedRecord(2, 6)];
      for (const record of after) amnesiac.append(record);
      await amnesiac.flush();
      await amnesiac.close();
      const restart = await loadAndClose(location);
      assert.deepEqual(restart.restored?.records, after);
      assert.deepEqual(restart.restored?.checkpoint?.chunks, chunks);

      // Only as the first operation: queued records would be discarded unflushed.
      const late = await harness.open(location);
      late.append(prePrepareRecord(2, 7));
      await assert.rejects(late.load({ discardLog: true }), /first operation/);
      await late.close();
    });

    it('writes a damaged chunk again when a later checkpoint names it, so the repair lasts', async () => {
      const { location, chunks } = await storedWithDamagedChunk([]);
      const { storage: again, report } = await reopen(location);
      assert.equal(report.corruptChunks, 1);
      // What a state transfer does: the same chunks, now intact, in the next checkpoint.
      again.storeCheckpoint(makeCheckpoint(10, chunks));
      await again.close();
      const { storage: third, report: repaired } = await reopen(location);
      assert.equal(repaired.corruptChunks, 0);
      assert.deepEqual(repaired.restored?.checkpoint?.chunks, chunks);
      await third.close();
    });

    it('drops a torn tail record, and appends after it are read back', async () => {
      const location = await fresh();
      const storage = await harness.open(location);
      const records = [prePrepareRecord(0, 1), preparedRecord(0, 1), committedRecord(0, 1, false)];
      for (const record of records) storage.append(record);
      await storage.close();
      await harness.tearTail(location, prePrepareRecord(0, 2, 20));
      const { storage: again, report } = await reopen(location);
      assert.equal(report.corruptRecords, 1);
      assert.deepEqual(report.restored?.records, records);
      const after = prePrepareRecord(0, 2);
      again.append(after);
      await again.flush();
      await again.close();
      const { storage: third, report: last } = await reopen(location);
      assert.equal(last.corruptRecords, 0);
      assert.deepEqual(last.restored?.records, [...records, after]);
      await third.close();
    });

    it('resolves concurrent flushes, sharing fsyncs between them (group commit)', async () => {
      const location = await fresh();
      const storage = await harness.open(location);
      await storage.load();
      const before = storage.statistics();
      const records: DurableRecord[] = [];
      const flushes: Promise<void>[] = [];
      for (let sequence = 1; sequence <= 20; sequence++) {
        const record = prePrepareRecord(0, sequence);
        records.push(record);
        storage.append(record);
        flushes.push(storage.flush());
      }
      // More work while the first batch is being written: it goes into the next batch.
      await Promise.resolve();
      for (let sequence = 21; sequence <= 30; sequence++) {
        const record = preparedRecord(0, sequence);
        records.push(record);
        storage.append(record);
        flushes.push(storage.flush());
      }
      await Promise.all(flushes);
      const statistics = storage.statistics();
      assert.equal(statistics.flushes - before.flushes, 30);
      assert.ok(statistics.fsyncs - before.fsyncs >= 1);
      assert.ok(
        statistics.fsyncs - before.fsyncs < statistics.flushes - before.flushes,
        `${statistics.fsyncs - before.fsyncs} fsyncs for 30 flushes`,
      );
      assert.equal(statistics.recordsAppended - before.recordsAppended, 30);
      await storage.close();
      const { storage: again, report } = await reopen(location);
      assert.deepEqual(report.restored?.records, records);
      await again.close();
    });

    it('ends in the model state under any interleaving of append, storeCheckpoint and flush', async () => {
      type Step =
        | { readonly kind: 'append'; readonly recordKind: 'pre-prepare' | 'prepared' | 'view' }
        | { readonly kind: 'checkpoint'; readonly lag: number }
        | { readonly kind: 'flush'; readonly awaited: boolean };
      const step = fc.oneof(
        {
          arbitrary: fc.record({
            kind: fc.constant('append' as const),
            recordKind: fc.constantFrom('pre-prepare' as const, 'prepared' as const, 'view' as const),
          }),
          weight: 6,
        },
        { arbitrary: fc.record({ kind: fc.constant('checkpoint' as const), lag: fc.nat(4) }), weight: 1 },
        { arbitrary: fc.record({ kind: fc.constant('flush' as const), awaited: fc.boolean() }), weight: 2 },
      );
      await fc.assert(
        fc.asyncProperty(fc.array(step, { maxLength: 40 }), async (steps: Step[]) => {
          const location = await fresh();
          const storage = await harness.open(location);
          let model: DurableRecord[] = [];
          let checkpoint: StoredCheckpoint | null = null;
          let sequence = 0;
          let view = 0;
          const flushes: Promise<void>[] = [];
          for (const current of steps) {
            if (current.kind === 'append') {
              let record: DurableRecord;
              if (current.recordKind === 'view') record = viewRecord(++view, view % 2 === 0);
              else if (current.recordKind === 'prepared')
                record = preparedRecord(view, Math.max(1, sequence));
              else record = prePrepareRecord(view, ++sequence, 1);
              storage.append(record);
              model.push(record);
            } else if (current.kind === 'checkpoint') {
              const stable = Math.max(0, sequence - current.lag);
              if (checkpoint !== null && stable < checkpoint.certificate.sequence) continue;
              checkpoint = makeCheckpoint(stable, makeChunks(2, 16));
              storage.storeCheckpoint(checkpoint);
              const kept = survivors(model, stable);
              model = model.filter((_, index) => kept[index]);
            } else if (current.awaited) {
              await storage.flush();
            } else {
              flushes.push(storage.flush());
            }
          }
          await Promise.all(flushes);
          await storage.close();
          const report = await loadAndClose(location);
          if (model.length === 0 && checkpoint === null) {
            assert.equal(report.restored, undefined);
            return;
          }
          // Records appended after a checkpoint at or below its sequence are not resumed from either.
          const stable = checkpoint?.certificate.sequence ?? -1;
          const expected = model.filter(
            (record) => (sequenceOf(record) ?? Number.POSITIVE_INFINITY) > stable,
          );
          assert.deepEqual(withoutViews(report.restored?.records), withoutViews(expected));
          const lastView = [...model].reverse().find((record) => record.kind === 'view');
          assert.equal(report.restored?.view, lastView?.kind === 'view' ? lastView.view : 0);
          assert.equal(report.restored?.checkpoint?.certificate.sequence, checkpoint?.certificate.sequence);
          assert.deepEqual(report.restored?.checkpoint?.chunks, checkpoint?.chunks);
          assert.equal(report.corruptRecords + report.corruptChunks, 0);
        }),
        { numRuns: harness.propertyRuns },
      );
    });
  });
}

function survivors(records: readonly DurableRecord[], stable: number): boolean[] {
  return survivorsOfCheckpoint(
    records.map((record) => sequenceOf(record) ?? Number.POSITIVE_INFINITY),
    stable,
  );
}
