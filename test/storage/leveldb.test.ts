import * as assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ClassicLevel } from 'classic-level';
import { LevelDbStorage, levelDbKeys } from '../../src/storage/leveldb-engine.js';
import { openStorage } from '../../src/storage/open.js';
import { frameRecord } from '../../src/storage/records.js';
import { type EngineHarness, prePrepareRecord, preparedRecord, runComplianceSuite } from './compliance.js';

/** Opens the database underneath the engine, to damage it as a disk would. */
async function withRawDatabase(
  location: string,
  work: (database: ClassicLevel<Uint8Array, Uint8Array>) => Promise<void>,
): Promise<void> {
  const database = new ClassicLevel<Uint8Array, Uint8Array>(location, {
    keyEncoding: 'view',
    valueEncoding: 'view',
  });
  await database.open();
  try {
    await work(database);
  } finally {
    await database.close();
  }
}

const harness: EngineHarness = {
  engine: 'leveldb',
  propertyRuns: 12,
  createLocation: () => mkdtemp(join(tmpdir(), 'phalanx-leveldb-')),
  open: (location) => openStorage({ engine: 'leveldb', directory: location }),
  corruptChunk: (location, leaf) =>
    withRawDatabase(location, async (database) => {
      const key = levelDbKeys.chunk(leaf);
      const value = new Uint8Array((await database.get(key))!);
      value[value.length >> 1] = value[value.length >> 1]! ^ 0x01;
      await database.put(key, value);
    }),
  tearTail: (location, record) =>
    withRawDatabase(location, async (database) => {
      let last = -1;
      for await (const key of database.keys({
        ...levelDbKeys.range(levelDbKeys.recordPrefix),
        reverse: true,
        limit: 1,
      })) {
        last = new DataView(key.buffer, key.byteOffset).getUint32(5);
      }
      const frame = frameRecord(record);
      await database.put(levelDbKeys.record(last + 1), frame.subarray(0, frame.length >> 1));
    }),
  removeLocation: (location) => rm(location, { recursive: true, force: true }),
};

runComplianceSuite(harness);

describe('leveldb storage: specifics', () => {
  const directories: string[] = [];
  after(async () => {
    for (const directory of directories) await harness.removeLocation(directory);
  });

  it('drops a damaged record in the middle and every later one, then appends cleanly', async () => {
    const directory = await harness.createLocation();
    directories.push(directory);
    const storage = await LevelDbStorage.open(directory);
    const records = [prePrepareRecord(0, 1), preparedRecord(0, 1), preparedRecord(0, 2)];
    for (const record of records) storage.append(record);
    await storage.close();
    await withRawDatabase(directory, async (database) => {
      const key = levelDbKeys.record(1);
      const value = new Uint8Array((await database.get(key))!);
      value[value.length - 1] = value[value.length - 1]! ^ 0x01;
      await database.put(key, value);
    });
    const again = await LevelDbStorage.open(directory);
    const report = await again.load();
    assert.equal(report.corruptRecords, 2);
    assert.deepEqual(report.restored?.records, [records[0]]);
    const next = preparedRecord(0, 7);
    again.append(next);
    await again.close();
    const third = await LevelDbStorage.open(directory);
    const last = await third.load();
    assert.equal(last.corruptRecords, 0);
    assert.deepEqual(last.restored?.records, [records[0], next]);
    await assert.rejects(LevelDbStorage.open(directory));
    await third.close();
  });
});
