import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { sequenceNumber, viewNumber } from '../../src/messages/ids.js';
import { MemoryDisk, MemoryStorage } from '../../src/storage/memory-engine.js';
import { openStorage } from '../../src/storage/open.js';
import {
  decodeFramedRecord,
  decodeManifest,
  decodeRecord,
  encodeRecord,
  FRAME_HEADER_BYTES,
  frameRecord,
  MAX_RECORD_PAYLOAD_BYTES,
  unframe,
} from '../../src/storage/records.js';
import {
  committedRecord,
  type EngineHarness,
  prePrepareRecord,
  preparedRecord,
  runComplianceSuite,
  viewRecord,
} from './compliance.js';

const disks = new Map<string, MemoryDisk>();
let nextLocation = 0;

const harness: EngineHarness = {
  engine: 'memory',
  propertyRuns: 60,
  async createLocation() {
    const location = `memory-${nextLocation++}`;
    disks.set(location, new MemoryDisk());
    return location;
  },
  async open(location) {
    return new MemoryStorage({ disk: disks.get(location)! });
  },
  async corruptChunk(location, leaf) {
    disks.get(location)!.corruptChunk(leaf);
  },
  async tearTail(location, record) {
    disks.get(location)!.tearTail(record);
  },
  async removeLocation(location) {
    disks.delete(location);
  },
};

runComplianceSuite(harness);

describe('memory storage: specifics', () => {
  it('loses unflushed data when asked to, as a crash would', async () => {
    const disk = new MemoryDisk();
    const storage = new MemoryStorage({ disk, loseUnflushedData: true });
    const kept = prePrepareRecord(0, 1);
    storage.append(kept);
    await storage.flush();
    storage.append(preparedRecord(0, 1));
    await storage.close();
    const report = await new MemoryStorage({ disk }).load();
    assert.deepEqual(report.restored?.records, [kept]);

    const crashing = new MemoryStorage({ disk });
    crashing.append(preparedRecord(0, 2));
    crashing.crash();
    assert.deepEqual((await new MemoryStorage({ disk }).load()).restored?.records, [kept]);
  });

  it('is what openStorage returns for the memory engine', async () => {
    const storage = await openStorage({ engine: 'memory' });
    assert.equal(storage.engine, 'memory');
    assert.equal((await storage.load()).restored, undefined);
  });
});

describe('storage record codec', () => {
  it('round-trips every record kind through encode/decode', () => {
    for (const record of [
      viewRecord(7, true),
      {
        kind: 'view',
        view: viewNumber(7),
        viewChangeInProgress: false,
        voteBound: sequenceNumber(24),
      } as const,
      { kind: 'view', view: viewNumber(7), viewChangeInProgress: false, amnesiac: true } as const,
      prePrepareRecord(3, 9, 5),
      preparedRecord(3, 9),
      committedRecord(3, 9, true),
      committedRecord(3, 9, false),
    ]) {
      const decoded = decodeRecord(encodeRecord(record));
      assert.ok(decoded.ok);
      assert.deepEqual(decoded.value, record);
      const framed = decodeFramedRecord(frameRecord(record));
      assert.ok(framed.ok);
      assert.deepEqual(framed.value, record);
    }
  });

  it('refuses to encode an amnesiac view record with a vote bound or in a view change', () => {
    assert.throws(
      () => encodeRecord({ kind: 'view', view: viewNumber(7), viewChangeInProgress: true, amnesiac: true }),
      /amnesiac view record/,
    );
    assert.throws(
      () =>
        encodeRecord({
          kind: 'view',
          view: viewNumber(7),
          viewChangeInProgress: false,
          amnesiac: true,
          voteBound: sequenceNumber(8),
        }),
      /amnesiac view record/,
    );
  });

  it('rejects a flipped bit anywhere in a frame', () => {
    const frame = frameRecord(prePrepareRecord(1, 1, 2));
    for (let index = 0; index < frame.length; index += 7) {
      const damaged = frame.slice();
      damaged[index] = damaged[index]! ^ 0x10;
      assert.equal(decodeFramedRecord(damaged).ok, false, `flip at byte ${index}`);
    }
  });

  it('rejects a forged huge length before reading or allocating anything', () => {
    const frame = frameRecord(preparedRecord(1, 1));
    new DataView(frame.buffer).setUint32(0, 0xfffffff0);
    const result = unframe(frame, MAX_RECORD_PAYLOAD_BYTES, 'record');
    assert.equal(result.ok, false);
    assert.match(result.ok ? '' : result.reason, /exceeds its limit/);
    assert.equal(unframe(frame.subarray(0, FRAME_HEADER_BYTES - 1), 100, 'record').ok, false);
  });

  it('rejects unknown tags, trailing bytes and mismatched committed batches', () => {
    assert.equal(decodeRecord(Uint8Array.of(0x7f)).ok, false);
    const payload = encodeRecord(preparedRecord(1, 1));
    const trailing = new Uint8Array(payload.length + 1);
    trailing.set(payload);
    assert.equal(decodeRecord(trailing).ok, false);
    // A committed record whose embedded batch names another sequence: tag, view 1, then the
    // sequence varuint (5) at byte 2.
    const spliced = encodeRecord(committedRecord(1, 5, true));
    assert.equal(spliced[2], 5);
    spliced[2] = 6;
    assert.equal(decodeRecord(spliced).ok, false);
    assert.equal(decodeManifest(Uint8Array.of(1, 2, 3)).ok, false);
  });
});
