import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { appendFile, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { FileStorage, fileLayout, StorageLockedError } from '../../src/storage/file-engine.js';
import { openStorage } from '../../src/storage/open.js';
import { frameRecord } from '../../src/storage/records.js';
import {
  type EngineHarness,
  makeCheckpoint,
  makeChunks,
  prePrepareRecord,
  preparedRecord,
  runComplianceSuite,
} from './compliance.js';

async function liveSegment(directory: string): Promise<string> {
  const segments = await fileLayout.segments(directory);
  assert.equal(segments.length, 1, 'one live segment');
  return segments[0]!;
}

const harness: EngineHarness = {
  engine: 'file',
  propertyRuns: 12,
  createLocation: () => mkdtemp(join(tmpdir(), 'phalanx-file-')),
  open: (location) => openStorage({ engine: 'file', directory: location }),
  async corruptChunk(location, leaf) {
    const place = await fileLayout.chunkLocation(location, leaf);
    assert.ok(place !== null, 'the chunk is stored');
    const bytes = await readFile(place.path);
    const target = place.offset + (place.length >> 1);
    bytes[target] = bytes[target]! ^ 0x01;
    await writeFile(place.path, bytes);
  },
  async tearTail(location, record) {
    const frame = frameRecord(record);
    await appendFile(await liveSegment(location), frame.subarray(0, frame.length >> 1));
  },
  removeLocation: (location) => rm(location, { recursive: true, force: true }),
};

runComplianceSuite(harness);

describe('file storage: specifics', () => {
  const directories: string[] = [];
  const fresh = async () => {
    const directory = await harness.createLocation();
    directories.push(directory);
    return directory;
  };
  after(async () => {
    for (const directory of directories) await harness.removeLocation(directory);
  });

  it('treats a forged huge length as the end of the log without allocating it', async () => {
    const directory = await fresh();
    const storage = await FileStorage.open(directory);
    const kept = prePrepareRecord(0, 1);
    storage.append(kept);
    await storage.close();
    const header = new Uint8Array(8);
    new DataView(header.buffer).setUint32(0, 0xfffffff0);
    await appendFile(await liveSegment(directory), header);
    const again = await FileStorage.open(directory);
    const report = await again.load();
    assert.equal(report.corruptRecords, 1);
    assert.deepEqual(report.restored?.records, [kept]);
    await again.close();
  });

  it('counts the intact records lost behind a damaged one in the middle of the log', async () => {
    const directory = await fresh();
    const storage = await FileStorage.open(directory);
    const records = [
      prePrepareRecord(0, 1),
      preparedRecord(0, 1),
      preparedRecord(0, 2),
      preparedRecord(0, 3),
    ];
    for (const record of records) storage.append(record);
    await storage.close();
    const path = await liveSegment(directory);
    const bytes = await readFile(path);
    const secondStart = 8 + frameRecord(records[0]!).length;
    bytes[secondStart + 10] = bytes[secondStart + 10]! ^ 0x40;
    await writeFile(path, bytes);
    const again = await FileStorage.open(directory);
    const report = await again.load();
    assert.equal(report.corruptRecords, 3, 'the damaged record and the two behind it');
    assert.deepEqual(report.restored?.records, [records[0]]);
    // The damage is cut off durably: appends go right after the intact prefix.
    const next = preparedRecord(0, 9);
    again.append(next);
    await again.close();
    const third = await FileStorage.open(directory);
    const last = await third.load();
    assert.equal(last.corruptRecords, 0);
    assert.deepEqual(last.restored?.records, [records[0], next]);
    await third.close();
  });

  it('recovers from a compaction interrupted before the old segment was deleted', async () => {
    const directory = await fresh();
    const storage = await FileStorage.open(directory);
    for (let sequence = 1; sequence <= 6; sequence++) storage.append(prePrepareRecord(0, sequence));
    await storage.flush();
    const oldSegment = await readFile(await liveSegment(directory));
    storage.storeCheckpoint(makeCheckpoint(3, makeChunks(2, 64)));
    await storage.close();
    // Put the old generation back, plus leftovers of an unfinished write.
    await writeFile(fileLayout.segmentPath(directory, 1), oldSegment);
    await writeFile(join(directory, 'checkpoint.manifest.tmp'), 'partial');
    await writeFile(join(directory, 'chunks', 'abc.tmp'), 'partial');
    const again = await FileStorage.open(directory);
    const report = await again.load();
    assert.deepEqual(
      report.restored?.records.map((record) =>
        record.kind === 'pre-prepare' ? record.message.sequence : -1,
      ),
      [4, 5, 6],
    );
    assert.equal(report.corruptChunks, 0);
    await again.close();
    const names = await readdir(directory);
    assert.deepEqual(names.filter((name) => name.endsWith('.tmp') || name.startsWith('log-')).length, 1);
    assert.deepEqual(
      (await readdir(join(directory, 'chunks'))).filter((name) => name.endsWith('.tmp')),
      [],
    );
  });

  it('refuses a second open of a directory in use, and takes over a dead owner’s lock', async () => {
    const directory = await fresh();
    const storage = await FileStorage.open(directory);
    await assert.rejects(FileStorage.open(directory), StorageLockedError);
    await storage.close();
    // A lock left behind by a process that no longer exists (kill -9).
    await writeFile(join(directory, 'LOCK'), '999999999\n');
    const again = await FileStorage.open(directory);
    await again.close();
  });

  it('takes over a lock whose owner has exited but is not reaped yet (a zombie)', async (context) => {
    if (!existsSync('/proc/self/stat')) {
      context.skip('no /proc to tell a zombie by');
      return;
    }
    const directory = await fresh();
    // The shell starts a child that exits shortly and stops itself (SIGSTOP) before the child
    // exits: a stopped parent reaps nothing, so the child stays a zombie until the parent is
    // killed, as a replica whose guardian was killed is until init reaps it.
    const parent = spawn('sh', ['-c', 'sleep 0.2 & echo $!; kill -STOP $$'], {
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    try {
      const [line] = (await once(parent.stdout, 'data')) as [Buffer];
      const zombie = Number.parseInt(line.toString('utf8'), 10);
      while (!(await readFile(`/proc/${zombie}/stat`, 'utf8')).includes(') Z'))
        await new Promise((resolve) => setTimeout(resolve, 10));
      await writeFile(join(directory, 'LOCK'), `${zombie}\n`);
      const storage = await FileStorage.open(directory);
      await storage.close();
    } finally {
      parent.kill('SIGKILL');
    }
  });

  it('makes the checkpoint durable once settled() resolves, without holding up flush()', async () => {
    const directory = await fresh();
    const storage = await FileStorage.open(directory);
    await storage.load();
    for (let sequence = 1; sequence <= 5; sequence++) storage.append(prePrepareRecord(0, sequence));
    const checkpoint = makeCheckpoint(2, makeChunks(3, 256));
    storage.storeCheckpoint(checkpoint);
    storage.append(preparedRecord(0, 6));
    await storage.flush();
    await storage.settled();
    // Read the manifest as a restarted process would, while this one still has it open.
    const manifest = await readFile(fileLayout.manifestPath(directory));
    assert.ok(manifest.length > 0);
    const segment = await readFile(await liveSegment(directory));
    assert.ok(segment.length > 8);
    await storage.close();
    for (const leaf of checkpoint.leaves)
      assert.ok((await fileLayout.chunkLocation(directory, leaf)) !== null);
  });
});
