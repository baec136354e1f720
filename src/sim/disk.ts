/**
 * A replica's simulated durable storage: what survives a crash. Persist actions are durable the
 * moment they are performed (the simulator has no torn writes); a restart reads them back, an
 * "empty disk" restart reads nothing, and a corrupted restart loses some checkpoint chunks.
 */
import { type DurableRecord, recordSequence, type StoredCheckpoint } from '../core/actions.js';
import type { ViewNumber } from '../messages/ids.js';
import type { RestoredState } from '../core/replica.js';
import type { Prng } from './prng.js';

export class SimulatedDisk {
  #records: DurableRecord[] = [];
  #checkpoint: StoredCheckpoint | null = null;
  #view: ViewNumber | null = null;
  #viewChangeInProgress = false;

  get empty(): boolean {
    return this.#records.length === 0 && this.#checkpoint === null && this.#view === null;
  }

  append(record: DurableRecord): void {
    if (record.kind === 'view') {
      this.#view = record.view;
      this.#viewChangeInProgress = record.viewChangeInProgress;
    }
    this.#records.push(record);
  }

  storeCheckpoint(checkpoint: StoredCheckpoint): void {
    this.#checkpoint = checkpoint;
    const stable = checkpoint.certificate.sequence;
    this.#records = this.#records.filter(
      (record) => record.kind === 'view' || recordSequence(record) > stable,
    );
  }

  wipe(): void {
    this.#records = [];
    this.#checkpoint = null;
    this.#view = null;
    this.#viewChangeInProgress = false;
  }

  /**
   * A rejuvenation: the log, written by a process that may have been compromised, is dropped; the
   * stored checkpoint stays (the replica verifies it before use).
   */
  dropLog(): void {
    this.#records = [];
    this.#view = null;
    this.#viewChangeInProgress = false;
  }

  /** What a restarted replica reads; with `corruptChunks`, some checkpoint chunks come back unreadable. */
  read(prng: Prng | null = null): RestoredState | undefined {
    if (this.empty) return undefined;
    const checkpoint = this.#checkpoint;
    const chunks: (Uint8Array | null)[] | undefined = checkpoint?.chunks.slice();
    if (prng !== null && chunks !== undefined && chunks.length > 0) {
      const damaged = 1 + prng.int(Math.max(1, Math.floor(chunks.length / 4)));
      for (let count = 0; count < damaged; count++) chunks[prng.int(chunks.length)] = null;
    }
    return {
      view: this.#view ?? (0 as ViewNumber),
      viewChangeInProgress: this.#viewChangeInProgress,
      checkpoint:
        checkpoint === null
          ? null
          : { certificate: checkpoint.certificate, leaves: checkpoint.leaves, chunks: chunks ?? [] },
      records: this.#records.slice(),
    };
  }
}
