/**
 * `openStorage`: the one place that maps an engine name to an implementation, so that a replica's
 * configuration can name its engine as a string.
 */
import { FileStorage } from './file-engine.js';
import { LevelDbStorage } from './leveldb-engine.js';
import { MemoryStorage, type MemoryStorageOptions } from './memory-engine.js';
import type { ReplicaStorage, StorageEngineName } from './storage.js';

/** The engine a replica should use unless it has a reason not to (see docs/storage.md). */
export const DEFAULT_STORAGE_ENGINE: StorageEngineName = 'file';

export type OpenStorageOptions =
  | {
      readonly engine: 'file' | 'leveldb';
      /** Created if missing. One process at a time: a second opener fails. */
      readonly directory: string;
    }
  | {
      readonly engine: 'memory';
      /** Ignored: memory storage lives in `memory.disk` (a fresh one by default). */
      readonly directory?: string;
      readonly memory?: MemoryStorageOptions;
    };

export async function openStorage(options: OpenStorageOptions): Promise<ReplicaStorage> {
  switch (options.engine) {
    case 'file':
      return FileStorage.open(options.directory);
    case 'leveldb':
      return LevelDbStorage.open(options.directory);
    case 'memory':
      return new MemoryStorage(options.memory);
  }
}
