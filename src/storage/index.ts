/**
 * Durable storage for replicas: the log of protocol records above the last stable checkpoint, and
 * that checkpoint with its state chunks (the contract is in storage.ts, the formats and measured
 * costs in docs/storage.md).
 *
 * ```ts
 * import { openStorage } from './storage/index.js';
 *
 * const storage = await openStorage({ engine: 'file', directory: '/var/lib/phalanx/replica-0' });
 * const { restored, corruptRecords, corruptChunks } = await storage.load();
 * const replica = new Replica({ ...options, restored });
 * // for every `persist` action: storage.append(action.record)
 * // for every `persist-checkpoint` action: storage.storeCheckpoint(action.checkpoint)
 * await storage.flush(); // before sending anything that followed those actions
 * await storage.close();
 * ```
 */
export { FileStorage, fileLayout, StorageFormatError, StorageLockedError } from './file-engine.js';
export { LevelDbStorage, levelDbKeys } from './leveldb-engine.js';
export { MemoryDisk, MemoryStorage, type MemoryStorageOptions } from './memory-engine.js';
export { DEFAULT_STORAGE_ENGINE, type OpenStorageOptions, openStorage } from './open.js';
export {
  decodeManifest,
  decodeRecord,
  encodeManifest,
  encodeRecord,
  frameRecord,
  MAX_CHUNK_BYTES,
  MAX_MANIFEST_PAYLOAD_BYTES,
  MAX_RECORD_PAYLOAD_BYTES,
} from './records.js';
export { BACKGROUND_PACING, type LoadPacing, LoadPacer, RECOVERY_LOAD_PACING } from './pacing.js';
export type {
  LoadOptions,
  LoadReport,
  ReplicaStorage,
  StorageEngineName,
  StorageStatistics,
} from './storage.js';
