/**
 * In-memory engine for unit tests: the same encoded frames, checksums and semantics as the disk
 * engines, without the disk. A MemoryDisk outlives the MemoryStorage instances opened on it, so a
 * test can close (or crash) one and open another on the same disk to exercise a restart.
 */
import type { DurableRecord, StoredCheckpoint } from '../core/actions.js';
import type { Digest } from '../messages/ids.js';
import { InvariantViolation } from '../messages/ids.js';
import type { RestoredState } from '../core/replica.js';
import {
  assembleRestoredState,
  assertCheckpointShape,
  assertDiscardLogFirst,
  chunkMatchesLeaf,
  decodeFramedRecord,
  decodeManifest,
  emptyCounters,
  encodeManifest,
  framePayload,
  frameRecord,
  GroupCommitQueue,
  leafName,
  MAX_MANIFEST_PAYLOAD_BYTES,
  type QueuedOperation,
  queueCheckpoint,
  queueRecord,
  recordSequence,
  type StatisticsCounters,
  survivorsOfCheckpoint,
  unframe,
} from './records.js';
import type { LoadOptions, LoadReport, ReplicaStorage, StorageStatistics } from './storage.js';

interface StoredFrame {
  readonly frame: Uint8Array;
  readonly sequence: number;
}

/** What a MemoryStorage has flushed: the part that survives a crash. */
export class MemoryDisk {
  frames: StoredFrame[] = [];
  /** The framed manifest payload, or null before the first checkpoint. */
  manifest: Uint8Array | null = null;
  readonly chunks = new Map<string, Uint8Array>();

  /** Flips one byte of a stored chunk, as bit rot would (test hook). */
  corruptChunk(leaf: Digest): void {
    const chunk = this.chunks.get(leafName(leaf));
    if (chunk === undefined) throw new InvariantViolation('no such chunk');
    const damaged = chunk.slice();
    damaged[damaged.length >> 1] = (damaged[damaged.length >> 1] ?? 0) ^ 0xff;
    this.chunks.set(leafName(leaf), damaged);
  }

  /** Appends the first half of a valid frame, as a write torn by a crash would leave (test hook). */
  tearTail(record: DurableRecord): void {
    const frame = frameRecord(record);
    this.frames.push({ frame: frame.subarray(0, frame.length >> 1), sequence: recordSequence(record) });
  }
}

export interface MemoryStorageOptions {
  /** The disk to open; a fresh empty one by default. */
  readonly disk?: MemoryDisk;
  /** close() drops queued, unflushed work instead of flushing it, as a crash would. */
  readonly loseUnflushedData?: boolean;
}

export class MemoryStorage implements ReplicaStorage {
  readonly engine = 'memory' as const;
  readonly disk: MemoryDisk;
  readonly #loseUnflushedData: boolean;
  readonly #counters: StatisticsCounters = emptyCounters();
  readonly #queue: GroupCommitQueue;
  #pending: QueuedOperation[] = [];
  #closed = false;

  constructor(options: MemoryStorageOptions = {}) {
    this.disk = options.disk ?? new MemoryDisk();
    this.#loseUnflushedData = options.loseUnflushedData ?? false;
    this.#queue = new GroupCommitQueue(() => this.#performPending());
  }

  load(options: LoadOptions = {}): Promise<LoadReport> {
    return this.#queue.exclusive(async () => {
      if (options.discardLog === true) {
        // Nothing to recover in memory: only queued work can come before.
        assertDiscardLogFirst(this.#pending, false);
        this.disk.frames = [];
      }
      await this.#performPending();
      return this.#read();
    });
  }

  append(record: DurableRecord): void {
    this.#assertOpen();
    queueRecord(this.#pending, frameRecord(record), recordSequence(record));
    this.#counters.recordsAppended++;
  }

  storeCheckpoint(checkpoint: StoredCheckpoint): void {
    this.#assertOpen();
    assertCheckpointShape(checkpoint);
    queueCheckpoint(this.#pending, checkpoint);
  }

  /** Checkpoints ride in the next batch here, so the next batch settles them. */
  settled(): Promise<void> {
    return this.#queue.request();
  }

  flush(): Promise<void> {
    if (this.#closed) return Promise.reject(new InvariantViolation('storage is closed'));
    this.#counters.flushes++;
    return this.#queue.request();
  }

  statistics(): StorageStatistics {
    return { ...this.#counters };
  }

  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    return this.#queue.exclusive(
      async () => {
        if (this.#loseUnflushedData || this.#queue.failure !== null) this.#pending = [];
        else await this.#performPending();
      },
      { evenAfterFailure: true },
    );
  }

  /** Stops at once, dropping everything not flushed: what kill -9 does to a process (test hook). */
  crash(): void {
    this.#closed = true;
    this.#pending = [];
  }

  #assertOpen(): void {
    if (this.#closed) throw new InvariantViolation('storage is closed');
  }

  async #performPending(): Promise<void> {
    const operations = this.#pending;
    this.#pending = [];
    if (operations.length === 0) return;
    const disk = this.disk;
    for (const operation of operations) {
      if (operation.kind === 'records') {
        operation.frames.forEach((frame, index) => {
          disk.frames.push({ frame, sequence: operation.sequences[index]! });
          this.#counters.bytesWritten += frame.length;
        });
      } else {
        this.#storeCheckpoint(operation.checkpoint);
      }
    }
    this.#counters.fsyncs++;
  }

  #storeCheckpoint(checkpoint: StoredCheckpoint): void {
    const disk = this.disk;
    const referenced = new Set<string>();
    checkpoint.leaves.forEach((leaf, index) => {
      const name = leafName(leaf);
      if (referenced.has(name) || disk.chunks.has(name)) {
        this.#counters.chunksReused++;
      } else {
        const chunk = checkpoint.chunks[index]!;
        disk.chunks.set(name, new Uint8Array(chunk));
        this.#counters.chunksWritten++;
        this.#counters.bytesWritten += chunk.length;
      }
      referenced.add(name);
    });
    const manifest = framePayload(encodeManifest(checkpoint));
    disk.manifest = manifest;
    this.#counters.bytesWritten += manifest.length;
    const survivors = survivorsOfCheckpoint(
      disk.frames.map((stored) => stored.sequence),
      checkpoint.certificate.sequence,
    );
    disk.frames = disk.frames.filter((_, index) => survivors[index]);
    for (const name of [...disk.chunks.keys()]) if (!referenced.has(name)) disk.chunks.delete(name);
    this.#counters.checkpointsStored++;
  }

  #read(): LoadReport {
    const disk = this.disk;
    let corruptChunks = 0;
    let checkpoint: RestoredState['checkpoint'] = null;
    if (disk.manifest !== null) {
      const payload = unframe(disk.manifest, MAX_MANIFEST_PAYLOAD_BYTES, 'manifest');
      const manifest = payload.ok ? decodeManifest(payload.value) : payload;
      if (manifest.ok) {
        const chunks = manifest.value.leaves.map((leaf) => {
          const chunk = disk.chunks.get(leafName(leaf));
          if (chunk !== undefined && chunkMatchesLeaf(leaf, chunk)) return chunk.slice();
          // Forgotten, so the next checkpoint naming it writes it again instead of keeping the damage.
          disk.chunks.delete(leafName(leaf));
          corruptChunks++;
          return null;
        });
        checkpoint = { certificate: manifest.value.certificate, leaves: manifest.value.leaves, chunks };
      }
    }
    const records: DurableRecord[] = [];
    let corruptRecords = 0;
    for (let index = 0; index < disk.frames.length; index++) {
      const decoded = decodeFramedRecord(disk.frames[index]!.frame);
      if (!decoded.ok) {
        // The log ends at the first bad record; later ones are dropped with it so that new appends
        // are not stranded behind it.
        corruptRecords = disk.frames.length - index;
        disk.frames = disk.frames.slice(0, index);
        break;
      }
      records.push(decoded.value);
    }
    return { restored: assembleRestoredState(checkpoint, records), corruptRecords, corruptChunks };
  }
}
