/**
 * Checkpointability: every correct replica's state can always be checkpointed, whatever clients
 * send. A checkpoint is at most LIMITS.maxManifestLeaves chunks of at most LIMITS.maxChunkBytes
 * each; a replica whose state breaks that cannot take a checkpoint (the core asserts, and the
 * replica process exits, again after every restart). Two inputs:
 * - after every batch a correct replica executes, its service's snapshot (the simulator holds the
 *   service): every chunk within maxChunkBytes, and no more chunks than a service may have beside
 *   the client table (maxManifestLeaves − CLIENT_TABLE_LIMITS.maxChunks);
 * - every checkpoint a correct replica stores, whole: chunk sizes and count, and the client table's
 *   part (found by chunkCountIn, as the core finds it) restores and snapshots to the same bytes.
 * The simulator also turns a correct replica that throws (the core's own assertion on an
 * oversized checkpoint among them) into a violation instead of an aborted run.
 */
import type { StoredCheckpoint } from '../../core/actions.js';
import { CLIENT_TABLE_LIMITS, ClientTable } from '../../core/client-table.js';
import { bytesEqual, InvariantViolation, toHex } from '../../messages/ids.js';
import { LIMITS } from '../../messages/limits.js';

/** Chunks a service may use: what a checkpoint holds minus what the client table may need. */
export const SERVICE_CHUNK_SHARE = LIMITS.maxManifestLeaves - CLIENT_TABLE_LIMITS.maxChunks;

export class CheckpointChecker {
  readonly #clientTableChunks: number;
  readonly #window: number;
  /** Checkpoints already checked, by state root: correct replicas store the same ones. */
  readonly #checkedRoots = new Set<string>();
  /** Replicas already reported, so one broken state does not fill the report. */
  readonly #reported = new Set<number>();
  batchesChecked = 0;
  checkpointsChecked = 0;
  /** The most chunks the client table had in a checked checkpoint. */
  largestClientTableChunks = 0;

  constructor(clientTableChunks: number, maxOutstandingPerClient: number) {
    this.#clientTableChunks = clientTableChunks;
    this.#window = maxOutstandingPerClient;
  }

  /** After `replica` executed the batch at `sequence`: its service's chunks. Returns a violation or null. */
  afterBatch(replica: number, sequence: number, serviceChunks: readonly Uint8Array[]): string | null {
    this.batchesChecked++;
    const problem = chunkProblem(serviceChunks, SERVICE_CHUNK_SHARE, 'service');
    return problem === null ? null : this.#report(replica, `after sequence ${sequence}: ${problem}`);
  }

  /** A checkpoint `replica` stores (its whole state: client table, then service). */
  onCheckpoint(replica: number, checkpoint: StoredCheckpoint): string | null {
    const root = toHex(checkpoint.certificate.stateRoot);
    if (this.#checkedRoots.has(root)) return null;
    this.#checkedRoots.add(root);
    this.checkpointsChecked++;
    const where = `checkpoint ${checkpoint.certificate.sequence}`;
    const chunks = checkpoint.chunks;
    const problem = chunkProblem(chunks, LIMITS.maxManifestLeaves, 'state');
    if (problem !== null) return this.#report(replica, `${where}: ${problem}`);
    const table = new ClientTable(this.#clientTableChunks, this.#window);
    let tableChunks: number;
    try {
      tableChunks = table.chunkCountIn(chunks);
      table.restore(chunks.slice(0, tableChunks));
    } catch (error) {
      if (!(error instanceof InvariantViolation)) throw error;
      return this.#report(replica, `${where}: its client table does not restore: ${error.message}`);
    }
    if (tableChunks > CLIENT_TABLE_LIMITS.maxChunks) {
      return this.#report(
        replica,
        `${where}: client table of ${tableChunks} chunks exceeds CLIENT_TABLE_LIMITS.maxChunks (${CLIENT_TABLE_LIMITS.maxChunks})`,
      );
    }
    const again = table.chunks();
    if (again.some((chunk, index) => !bytesEqual(chunk, chunks[index]!))) {
      return this.#report(replica, `${where}: its client table restores to different chunks`);
    }
    this.largestClientTableChunks = Math.max(this.largestClientTableChunks, tableChunks);
    return null;
  }

  #report(replica: number, problem: string): string | null {
    if (this.#reported.has(replica)) return null;
    this.#reported.add(replica);
    return `checkpointable: replica ${replica} ${problem}`;
  }
}

function chunkProblem(chunks: readonly Uint8Array[], maxChunks: number, what: string): string | null {
  if (chunks.length > maxChunks) return `${what} has ${chunks.length} chunks, over ${maxChunks}`;
  const index = chunks.findIndex((chunk) => chunk.length > LIMITS.maxChunkBytes);
  if (index < 0) return null;
  return `${what} chunk ${index} of ${chunks[index]!.length} bytes exceeds maxChunkBytes (${LIMITS.maxChunkBytes})`;
}
