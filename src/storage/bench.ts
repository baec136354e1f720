/**
 * Measures the disk engines: log throughput with a flush every M records, the latency of a flush
 * (one write plus one fdatasync, or one synced LevelDB batch), the effect of group commit, and the
 * cost of storing checkpoints. Prints one JSON line per engine.
 *
 *   npx tsx src/storage/bench.ts [--records 4000] [--flush-every 4] [--in-flight 16]
 *                                [--checkpoints 5] [--checkpoint-mb 8] [--chunk-kb 256]
 *                                [--changed 0.25] [--directory /tmp] [--engines file,leveldb]
 *
 * Records are realistic pre-prepares: a batch of 50 small requests (32-byte operations, a MAC for
 * each of 4 replicas, every other request signed), about 6 KB encoded. Between two checkpoints a
 * fraction `--changed` of the chunks changes; the others are reused. Numbers depend on the disk
 * and on what else uses it: compare engines within one run.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { DurableRecord, StoredCheckpoint } from '../core/actions.js';
import {
  type ClientId,
  type Digest,
  digest,
  keyEpoch,
  replicaId,
  requestNumber,
  sequenceNumber,
  signature,
  viewNumber,
} from '../messages/ids.js';
import { leafDigest, merkleRoot } from '../core/merkle.js';
import type { ClientRequest } from '../messages/types.js';
import { openStorage } from './open.js';
import { encodeRecord } from './records.js';
import type { ReplicaStorage } from './storage.js';

const REQUESTS_PER_BATCH = 50;
const OPERATION_BYTES = 32;
const REPLICAS = 4;

function sha256(data: Uint8Array): Digest {
  return digest(new Uint8Array(createHash('sha256').update(data).digest()));
}

function bytes(length: number): Uint8Array {
  return new Uint8Array(randomBytes(length));
}

function request(number: number): ClientRequest {
  return {
    kind: 'request',
    clientId: `client-${number % 100}` as ClientId,
    requestNumber: requestNumber(number),
    readOnly: false,
    operation: bytes(OPERATION_BYTES),
    authenticator: Array.from({ length: REPLICAS }, (_, index) => ({
      keyEpoch: keyEpoch(index),
      mac: bytes(16),
    })),
    signature: number % 2 === 0 ? signature(bytes(64)) : null,
  };
}

function prePrepare(sequence: number): DurableRecord {
  return {
    kind: 'pre-prepare',
    message: {
      kind: 'pre-prepare',
      view: viewNumber(0),
      sequence: sequenceNumber(sequence),
      batchDigest: sha256(bytes(8)),
      batch: Array.from({ length: REQUESTS_PER_BATCH }, (_, index) =>
        request(sequence * REQUESTS_PER_BATCH + index),
      ),
      keyEpoch: keyEpoch(1),
      signature: signature(bytes(64)),
    },
  };
}

function checkpoint(sequence: number, chunks: readonly Uint8Array[]): StoredCheckpoint {
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

function percentile(sorted: readonly number[], fraction: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(fraction * sorted.length))]!;
}

function round(value: number, digits = 2): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}

interface Options {
  readonly records: number;
  readonly flushEvery: number;
  readonly inFlight: number;
  readonly checkpoints: number;
  readonly checkpointMegabytes: number;
  readonly chunkKilobytes: number;
  readonly changed: number;
}

async function measure(storage: ReplicaStorage, options: Options): Promise<Record<string, unknown>> {
  await storage.load();
  // Records are built beforehand so that only storage work is timed.
  const records = Array.from({ length: options.records }, (_, index) => prePrepare(index + 1));
  const moreRecords = Array.from({ length: options.records }, (_, index) =>
    prePrepare(options.records + index + 1),
  );
  const recordBytes = encodeRecord(records[0]!).length;

  // 1. One writer: append M records, wait for the flush, repeat.
  const flushLatencies: number[] = [];
  let start = performance.now();
  for (let index = 0; index < records.length; index++) {
    storage.append(records[index]!);
    if ((index + 1) % options.flushEvery === 0 || index === records.length - 1) {
      const flushStart = performance.now();
      await storage.flush();
      flushLatencies.push(performance.now() - flushStart);
    }
  }
  const sequentialSeconds = (performance.now() - start) / 1000;
  flushLatencies.sort((a, b) => a - b);

  // 2. Many flushes in flight (as a replica with many instances in progress has): group commit.
  const before = storage.statistics();
  const inFlight = new Set<Promise<void>>();
  start = performance.now();
  for (let index = 0; index < moreRecords.length; index++) {
    storage.append(moreRecords[index]!);
    const flushed: Promise<void> = storage.flush().then(() => {
      inFlight.delete(flushed);
    });
    inFlight.add(flushed);
    if (inFlight.size >= options.inFlight) await Promise.race(inFlight);
  }
  await Promise.all(inFlight);
  const concurrentSeconds = (performance.now() - start) / 1000;
  const afterConcurrent = storage.statistics();

  // 3. Checkpoints: each replaces a fraction of the chunks, then one flush; each compacts the log.
  const chunkCount = Math.max(1, Math.round((options.checkpointMegabytes * 1024) / options.chunkKilobytes));
  const chunks = Array.from({ length: chunkCount }, () => bytes(options.chunkKilobytes * 1024));
  const checkpointDurations: number[] = [];
  const beforeCheckpoints = storage.statistics();
  for (let index = 0; index < options.checkpoints; index++) {
    if (index > 0) {
      const changed = Math.round(chunkCount * options.changed);
      for (let chunk = 0; chunk < changed; chunk++)
        chunks[(index * changed + chunk) % chunkCount] = bytes(options.chunkKilobytes * 1024);
    }
    // Within the first phase's sequences: the second phase's records stay in the log for the restart.
    const sequence = Math.floor((options.records * (index + 1)) / options.checkpoints);
    const stored = checkpoint(sequence, chunks.slice());
    const checkpointStart = performance.now();
    storage.storeCheckpoint(stored);
    await storage.flush();
    checkpointDurations.push(performance.now() - checkpointStart);
  }
  const afterCheckpoints = storage.statistics();
  checkpointDurations.sort((a, b) => a - b);

  return {
    recordBytes,
    sequential: {
      recordsPerSecond: round(options.records / sequentialSeconds, 0),
      flushesPerSecond: round(flushLatencies.length / sequentialSeconds, 0),
      flushLatencyMs: {
        p50: round(percentile(flushLatencies, 0.5), 3),
        p99: round(percentile(flushLatencies, 0.99), 3),
        max: round(flushLatencies[flushLatencies.length - 1] ?? 0, 3),
      },
    },
    groupCommit: {
      inFlight: options.inFlight,
      recordsPerSecond: round(options.records / concurrentSeconds, 0),
      flushCalls: afterConcurrent.flushes - before.flushes,
      fsyncs: afterConcurrent.fsyncs - before.fsyncs,
    },
    checkpoints: {
      count: options.checkpoints,
      megabytes: round((chunkCount * options.chunkKilobytes) / 1024, 1),
      chunks: chunkCount,
      msP50: round(percentile(checkpointDurations, 0.5), 1),
      msMax: round(checkpointDurations[checkpointDurations.length - 1] ?? 0, 1),
      chunksWritten: afterCheckpoints.chunksWritten - beforeCheckpoints.chunksWritten,
      chunksReused: afterCheckpoints.chunksReused - beforeCheckpoints.chunksReused,
      fsyncs: afterCheckpoints.fsyncs - beforeCheckpoints.fsyncs,
    },
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      records: { type: 'string', default: '4000' },
      'flush-every': { type: 'string', default: '4' },
      'in-flight': { type: 'string', default: '16' },
      checkpoints: { type: 'string', default: '5' },
      'checkpoint-mb': { type: 'string', default: '8' },
      'chunk-kb': { type: 'string', default: '256' },
      changed: { type: 'string', default: '0.25' },
      directory: { type: 'string', default: tmpdir() },
      engines: { type: 'string', default: 'file,leveldb' },
    },
  });
  const options: Options = {
    records: Number(values.records),
    flushEvery: Number(values['flush-every']),
    inFlight: Number(values['in-flight']),
    checkpoints: Number(values.checkpoints),
    checkpointMegabytes: Number(values['checkpoint-mb']),
    chunkKilobytes: Number(values['chunk-kb']),
    changed: Number(values.changed),
  };
  for (const engine of values.engines.split(',')) {
    if (engine !== 'file' && engine !== 'leveldb') throw new Error(`unknown disk engine ${engine}`);
    const directory = await mkdtemp(join(values.directory, `phalanx-bench-${engine}-`));
    try {
      const storage = await openStorage({ engine, directory });
      const result = await measure(storage, options);
      await storage.close();
      // Recovery: what a restart costs with the log and checkpoint left behind.
      const loadStart = performance.now();
      const reopened = await openStorage({ engine, directory });
      const report = await reopened.load();
      const loadMs = performance.now() - loadStart;
      await reopened.close();
      console.log(
        JSON.stringify({
          engine,
          parameters: options,
          ...result,
          restart: { loadMs: round(loadMs, 1), recordsRestored: report.restored?.records.length ?? 0 },
        }),
      );
    } finally {
      await rm(directory, { recursive: true, force: true });
    }
  }
}

await main();
