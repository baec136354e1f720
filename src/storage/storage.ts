/**
 * Durable storage of a replica: the log of protocol records above the last stable checkpoint,
 * and that checkpoint with its state chunks. Engines: `file` (append-only segment files),
 * `leveldb` (classic-level), and `memory` (unit tests only). One compliance suite runs against all.
 *
 * Durability contract (what the core's persist-before-send rule relies on):
 * - `append` and `storeCheckpoint` only queue work; it is durable once a later `flush()` resolves.
 *   Concurrent flushes share one fsync (group commit).
 * - After a crash at any point (kill -9, power loss), `load()` returns every record appended
 *   before the last resolved flush, in order, plus possibly some later ones, never a torn or
 *   reordered record: a record that fails its checksum ends the log there.
 * - `storeCheckpoint` replaces the stored checkpoint atomically (the old one stays readable
 *   until the new one is complete) and drops records at or below its sequence. It is
 *   asynchronous and `flush()` need not wait for it (the file engine writes checkpoints in a lane
 *   of their own so megabytes of chunks never delay the protocol); `settled()` does. Until it is
 *   durable the previous checkpoint and the log above it remain, a correct state to restart from.
 *
 * Usage:
 * ```ts
 * const storage = await openStorage({ engine: 'file', directory: '/var/lib/phalanx/replica-0' });
 * const restored = await storage.load();
 * storage.append(record);
 * await storage.flush(); // now the record survives a crash
 * ```
 */
import type { DurableRecord, StoredCheckpoint } from '../core/actions.js';
import type { RestoredState } from '../core/replica.js';
import type { Pace } from './pacing.js';

export type StorageEngineName = 'file' | 'leveldb' | 'memory';

export interface LoadReport {
  /** What the replica resumes from (undefined: nothing stored, a fresh replica). */
  readonly restored: RestoredState | undefined;
  /** Records dropped because they failed their checksum or could not be decoded. */
  readonly corruptRecords: number;
  /** Checkpoint chunks that were missing or failed their digest (returned as null chunks). */
  readonly corruptChunks: number;
}

export interface StorageStatistics {
  readonly recordsAppended: number;
  readonly bytesWritten: number;
  readonly flushes: number;
  readonly fsyncs: number;
  readonly checkpointsStored: number;
  readonly chunksWritten: number;
  readonly chunksReused: number;
}

export interface LoadOptions {
  /**
   * Called between pieces of the checkpoint's loading (engines that read it piece by piece): it
   * may pause, to spread the load over time (see pacing.ts).
   */
  readonly pace?: Pace;
  /**
   * Forget the log instead of reading it: records returned none, and every record stored so far
   * deleted (durably) before the load returns; the checkpoint is kept. For an amnesiac start (a
   * rejuvenated replica trusts nothing its previous process wrote but the checkpoint, which it
   * checks against its certificate): reading the log only to drop it cost most of the load of a
   * small state, and records left behind would mix with the new process's own after a later
   * restart. Only as the first operation on an opened storage.
   */
  readonly discardLog?: boolean;
}

export interface ReplicaStorage {
  readonly engine: StorageEngineName;
  load(options?: LoadOptions): Promise<LoadReport>;
  append(record: DurableRecord): void;
  storeCheckpoint(checkpoint: StoredCheckpoint): void;
  flush(): Promise<void>;
  /** Resolves when every checkpoint passed to storeCheckpoint so far is durable. */
  settled(): Promise<void>;
  statistics(): StorageStatistics;
  close(): Promise<void>;
}
