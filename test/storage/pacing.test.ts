/**
 * Paced loading (a rejuvenated replica spreads its checkpoint load over time): the pacer pauses
 * once per busy slice, and a paced file-storage load reads the same state as an unpaced one,
 * pausing between chunks.
 */
import * as assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { openStorage } from '../../src/storage/open.js';
import { LoadPacer, processCpuMs } from '../../src/storage/pacing.js';
import { makeCheckpoint, makeChunks, prePrepareRecord } from './compliance.js';

describe('load pacing', () => {
  const directories: string[] = [];
  after(async () => {
    for (const directory of directories) await rm(directory, { recursive: true, force: true });
  });

  it('pauses for pauseMs each time a slice has used busyMs, and not before', async () => {
    let now = 0;
    const sleeps: number[] = [];
    const pacer = new LoadPacer(
      { busyMs: 10, pauseMs: 7 },
      {
        now: () => now,
        sleep: async (ms) => {
          sleeps.push(ms);
          now += ms;
        },
      },
    );
    now = 9;
    // No pause due: no promise either, so a loop over many small pieces need not await each one.
    assert.equal(pacer.yield(), undefined);
    assert.deepEqual(sleeps, [], 'the slice is not used up at 9 ms');
    now = 10;
    await pacer.yield();
    assert.deepEqual(sleeps, [7]);
    // A new slice starts after the pause (at 17): work until 27 goes on without one.
    now = 26;
    await pacer.yield();
    assert.deepEqual(sleeps, [7]);
    now = 27;
    await pacer.yield();
    assert.deepEqual(sleeps, [7, 7]);
    assert.equal(pacer.pausedMs, 14);
  });

  it('measures a slice in CPU time: time spent waiting on a busy machine is no work done', async () => {
    // Generous numbers: the process's other threads (the compiler, the collector) use some CPU
    // while this one waits, but nowhere near a slice.
    const pacer = new LoadPacer({ busyMs: 250, pauseMs: 1 });
    // 400 ms of wall time idle (as a process waiting for a core or for the disk is): far less
    // than 250 ms of CPU, so no pause is due; a wall-clock pacer would pause here.
    await new Promise((resolve) => setTimeout(resolve, 400));
    assert.equal(pacer.yield(), undefined);
    // A whole slice of CPU spent: now one is.
    const started = processCpuMs();
    while (processCpuMs() - started < 260) Math.sqrt(Math.random());
    const pause = pacer.yield();
    assert.ok(pause !== undefined, 'no pause after a whole slice of CPU time');
    await pause;
    assert.equal(pacer.pausedMs, 1);
  });

  it('makes concurrent pieces of work wait in one pause, counted once', async () => {
    let now = 0;
    let sleeps = 0;
    let wake: () => void = () => undefined;
    const pacer = new LoadPacer(
      { busyMs: 5, pauseMs: 5 },
      {
        now: () => now,
        sleep: (ms) => {
          sleeps++;
          return new Promise<void>((resolve) => {
            wake = () => {
              now += ms;
              resolve();
            };
          });
        },
      },
    );
    now = 5;
    const waiting = [pacer.yield(), pacer.yield(), pacer.yield()];
    assert.equal(sleeps, 1);
    wake();
    await Promise.all(waiting);
    assert.equal(pacer.pausedMs, 5);
  });

  it('refuses a pacing that would never work or never pause sensibly', () => {
    assert.throws(() => new LoadPacer({ busyMs: 0, pauseMs: 5 }), /invalid load pacing/);
    assert.throws(() => new LoadPacer({ busyMs: 5, pauseMs: -1 }), /invalid load pacing/);
    assert.throws(() => new LoadPacer({ busyMs: Number.NaN, pauseMs: 5 }), /invalid load pacing/);
  });

  it('a paced file-storage load pauses between chunks and reads the same state', async () => {
    const directory = await mkdtemp(join(tmpdir(), 'phalanx-pacing-'));
    directories.push(directory);
    const storage = await openStorage({ engine: 'file', directory });
    const chunks = makeChunks(40, 2048);
    storage.storeCheckpoint(makeCheckpoint(8, chunks));
    storage.append(prePrepareRecord(0, 9));
    await storage.close();

    const unpaced = await openStorage({ engine: 'file', directory });
    const expected = await unpaced.load();
    await unpaced.close();

    const paced = await openStorage({ engine: 'file', directory });
    let calls = 0;
    const report = await paced.load({
      pace: async () => {
        calls++;
        await new Promise((resolve) => setImmediate(resolve));
      },
    });
    await paced.close();
    assert.equal(calls, chunks.length, 'one chance to pause per chunk read');
    assert.deepEqual(report, expected);
    assert.deepEqual(report.restored?.checkpoint?.chunks, chunks);
  });
});
