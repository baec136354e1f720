/**
 * The suspicion tracker is pure and lives in src/core/suspicions.ts, where the guardian's pure
 * core (src/recovery/core/) may use it; detection/ keeps exporting it under its old path.
 */
export {
  SuspicionTracker,
  type SuspicionSnapshot,
  type SuspicionTrackerOptions,
} from '../core/suspicions.js';
