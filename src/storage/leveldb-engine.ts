/**
 * LevelDB engine (classic-level). Keys are binary, one prefix byte per kind:
 *
 *   'f'                        format marker, "phalanx-storage/1"
 *   'r' + u64 big-endian n     the n-th appended record, framed (records.ts)
 *   'm'                        the checkpoint manifest, framed
 *   'c' + 32-byte leaf digest  a chunk's raw bytes (content-addressed)
 *
 * A flush writes everything queued as ONE LevelDB batch with `sync: true`: LevelDB appends the
 * batch to its write-ahead log and fsyncs it, and replays it whole or not at all after a crash.
 * That makes a checkpoint (new chunks, manifest, deletion of the records it covers and of the
 * chunks nobody names any more) a single atomic step. Records are framed with our own CRC anyway,
 * so that damage LevelDB does not notice (a bad sector inside a table file is only noticed with
 * paranoid checks) still ends the log cleanly.
 */
import { ClassicLevel } from 'classic-level';
import type { DurableRecord, StoredCheckpoint } from '../core/actions.js';
import { bytesEqual, DIGEST_BYTES, type Digest, InvariantViolation } from '../messages/ids.js';
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

const FORMAT_MARKER = new TextEncoder().encode('phalanx-storage/1');
const PREFIX = { format: 0x66, record: 0x72, manifest: 0x6d, chunk: 0x63 } as const;
const COUNTER_BYTES = 8;
const TWO_TO_THE_32 = 2 ** 32;

type Database = ClassicLevel<Uint8Array, Uint8Array>;
type BatchOperation =
  | { readonly type: 'put'; readonly key: Uint8Array; readonly value: Uint8Array }
  | { readonly type: 'del'; readonly key: Uint8Array };

/** Key builders, exported for tools and tests that inspect or damage a database. */
export const levelDbKeys = {
  format: Uint8Array.of(PREFIX.format),
  manifest: Uint8Array.of(PREFIX.manifest),
  record(counter: number): Uint8Array {
    const key = new Uint8Array(1 + COUNTER_BYTES);
    const view = new DataView(key.buffer);
    key[0] = PREFIX.record;
    view.setUint32(1, Math.floor(counter / TWO_TO_THE_32));
    view.setUint32(5, counter % TWO_TO_THE_32);
    return key;
  },
  chunk(leaf: Digest): Uint8Array {
    const key = new Uint8Array(1 + DIGEST_BYTES);
    key[0] = PREFIX.chunk;
    key.set(leaf, 1);
    return key;
  },
  /** Range bounds of all keys with one prefix. */
  range(prefix: number): { readonly gte: Uint8Array; readonly lt: Uint8Array } {
    return { gte: Uint8Array.of(prefix), lt: Uint8Array.of(prefix + 1) };
  },
  recordPrefix: PREFIX.record,
  chunkPrefix: PREFIX.chunk,
} as const;

function counterOf(key: Uint8Array): number | null {
  if (key.length !== 1 + COUNTER_BYTES) return null;
  const view = new DataView(key.buffer, key.byteOffset, key.byteLength);
  const high = view.getUint32(1);
  const value = high * TWO_TO_THE_32 + view.getUint32(5);
  return Number.isSafeInteger(value) ? value : null;
}

interface LogEntry {
  readonly counter: number;
  readonly sequence: number;
}

/** What the engine knows about the database once recovered. */
interface Recovered {
  entries: LogEntry[];
  nextCounter: number;
  /** Hex names of the chunks stored. */
  chunks: Set<string>;
}

export class LevelDbStorage implements ReplicaStorage {
  readonly engine = 'leveldb' as const;
  readonly directory: string;
  readonly #database: Database;
  readonly #counters: StatisticsCounters = emptyCounters();
  readonly #queue: GroupCommitQueue;
  #pending: QueuedOperation[] = [];
  #recovered: Recovered | null = null;
  /** Stored chunks that failed their digest when read: not reused, rewritten when named again. */
  readonly #damagedChunks = new Set<string>();
  #closed = false;

  private constructor(directory: string, database: Database) {
    this.directory = directory;
    this.#database = database;
    this.#queue = new GroupCommitQueue(() => this.#performPending());
  }

  /** Opens (creating if needed) a database directory; LevelDB's own LOCK keeps out a second opener. */
  static async open(directory: string): Promise<LevelDbStorage> {
    const database: Database = new ClassicLevel<Uint8Array, Uint8Array>(directory, {
      keyEncoding: 'view',
      valueEncoding: 'view',
      createIfMissing: true,
    });
    await database.open();
    const format = await database.get(levelDbKeys.format);
    if (format === undefined) {
      await database.put(levelDbKeys.format, FORMAT_MARKER, { sync: true });
    } else if (!bytesEqual(format, FORMAT_MARKER)) {
      await database.close();
      throw new Error(`${directory} holds a database of another format`);
    }
    return new LevelDbStorage(directory, database);
  }

  /** Performs queued work first, then reads back what is stored (and drops a damaged tail). */
  load(options: LoadOptions = {}): Promise<LoadReport> {
    if (this.#closed) return Promise.reject(new InvariantViolation('storage is closed'));
    return this.#queue.exclusive(async () => {
      if (options.discardLog === true) {
        assertDiscardLogFirst(this.#pending, this.#recovered !== null);
        await this.#discardRecords();
      }
      let scan = this.#recovered === null ? await this.#scanRecords() : null;
      if (this.#pending.length > 0) {
        await this.#performPending();
        scan = null;
      }
      const { records, corruptRecords } = scan ?? (await this.#scanRecords());
      const { checkpoint, corruptChunks } = await this.#readCheckpoint();
      return { restored: assembleRestoredState(checkpoint, records), corruptRecords, corruptChunks };
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
        try {
          if (this.#queue.failure === null) await this.#performPending();
        } finally {
          this.#pending = [];
          await this.#database.close();
        }
      },
      { evenAfterFailure: true },
    );
  }

  #assertOpen(): void {
    if (this.#closed) throw new InvariantViolation('storage is closed');
  }

  // ───────────────────────────── reading ─────────────────────────────

  /** Deletes every stored record in one synced batch (load({ discardLog })). */
  async #discardRecords(): Promise<void> {
    await this.#scanRecords();
    const recovered = this.#recovered!;
    if (recovered.entries.length === 0) return;
    await this.#database.batch(
      recovered.entries.map((entry) => ({ type: 'del' as const, key: levelDbKeys.record(entry.counter) })),
      { sync: true },
    );
    this.#counters.fsyncs++;
    recovered.entries = [];
  }

  /**
   * Reads the records in append order up to the first damaged one; that one and every later one
   * are deleted (durably) so that new appends do not end up stranded behind a gap.
   */
  async #scanRecords(): Promise<{ records: DurableRecord[]; corruptRecords: number }> {
    const records: DurableRecord[] = [];
    const entries: LogEntry[] = [];
    const dropped: Uint8Array[] = [];
    let lastCounter = -1;
    for await (const [key, value] of this.#database.iterator(levelDbKeys.range(PREFIX.record))) {
      if (dropped.length === 0) {
        const counter = counterOf(key);
        const decoded = counter === null ? undefined : decodeFramedRecord(value);
        if (counter !== null && decoded?.ok === true) {
          records.push(decoded.value);
          entries.push({ counter, sequence: recordSequence(decoded.value) });
          lastCounter = counter;
          continue;
        }
      }
      dropped.push(key);
    }
    if (dropped.length > 0) {
      await this.#database.batch(
        dropped.map((key) => ({ type: 'del' as const, key })),
        { sync: true },
      );
      this.#counters.fsyncs++;
    }
    const chunks = new Set<string>();
    for await (const key of this.#database.keys(levelDbKeys.range(PREFIX.chunk))) {
      if (key.length === 1 + DIGEST_BYTES) chunks.add(leafName(key.subarray(1) as Digest));
    }
    this.#recovered = { entries, nextCounter: lastCounter + 1, chunks };
    return { records, corruptRecords: dropped.length };
  }

  async #readCheckpoint(): Promise<{ checkpoint: RestoredState['checkpoint']; corruptChunks: number }> {
    const stored = await this.#database.get(levelDbKeys.manifest);
    if (stored === undefined) return { checkpoint: null, corruptChunks: 0 };
    const payload = unframe(stored, MAX_MANIFEST_PAYLOAD_BYTES, 'manifest');
    const manifest = payload.ok ? decodeManifest(payload.value) : payload;
    // Damaged media; resuming without a checkpoint is safe and state transfer fetches the state.
    if (!manifest.ok) return { checkpoint: null, corruptChunks: 0 };
    const { certificate, leaves } = manifest.value;
    const values = leaves.length === 0 ? [] : await this.#database.getMany(leaves.map(levelDbKeys.chunk));
    let corruptChunks = 0;
    const chunks = leaves.map((leaf, index) => {
      const chunk = values[index];
      if (chunk !== undefined && chunkMatchesLeaf(leaf, chunk)) return plainBytes(chunk);
      // The next checkpoint naming it writes it again over the damage (one not naming it deletes it).
      this.#damagedChunks.add(leafName(leaf));
      corruptChunks++;
      return null;
    });
    return { checkpoint: { certificate, leaves, chunks }, corruptChunks };
  }

  // ───────────────────────────── writing ─────────────────────────────

  async #performPending(): Promise<void> {
    const recovered = this.#recovered ?? (await this.#recover());
    const operations = this.#pending;
    this.#pending = [];
    if (operations.length === 0) return;
    const batch: BatchOperation[] = [];
    let checkpoints = 0;
    for (const operation of operations) {
      if (operation.kind === 'records') {
        operation.frames.forEach((frame, index) => {
          const counter = recovered.nextCounter++;
          batch.push({ type: 'put', key: levelDbKeys.record(counter), value: frame });
          recovered.entries.push({ counter, sequence: operation.sequences[index]! });
          this.#counters.bytesWritten += frame.length;
        });
      } else {
        this.#addCheckpoint(batch, recovered, operation.checkpoint);
        checkpoints++;
      }
    }
    await this.#database.batch(batch, { sync: true });
    this.#counters.fsyncs++;
    this.#counters.checkpointsStored += checkpoints;
  }

  async #recover(): Promise<Recovered> {
    await this.#scanRecords();
    return this.#recovered!;
  }

  #addCheckpoint(batch: BatchOperation[], recovered: Recovered, checkpoint: StoredCheckpoint): void {
    const referenced = new Set<string>();
    checkpoint.leaves.forEach((leaf, index) => {
      const name = leafName(leaf);
      if (referenced.has(name) || (recovered.chunks.has(name) && !this.#damagedChunks.has(name))) {
        this.#counters.chunksReused++;
      } else {
        const chunk = checkpoint.chunks[index]!;
        batch.push({ type: 'put', key: levelDbKeys.chunk(leaf), value: chunk });
        this.#damagedChunks.delete(name);
        this.#counters.chunksWritten++;
        this.#counters.bytesWritten += chunk.length;
      }
      referenced.add(name);
    });
    const manifest = framePayload(encodeManifest(checkpoint));
    batch.push({ type: 'put', key: levelDbKeys.manifest, value: manifest });
    this.#counters.bytesWritten += manifest.length;
    const survivors = survivorsOfCheckpoint(
      recovered.entries.map((entry) => entry.sequence),
      checkpoint.certificate.sequence,
    );
    const kept: LogEntry[] = [];
    recovered.entries.forEach((entry, index) => {
      if (survivors[index]) kept.push(entry);
      else batch.push({ type: 'del', key: levelDbKeys.record(entry.counter) });
    });
    recovered.entries = kept;
    for (const name of recovered.chunks) {
      if (!referenced.has(name)) batch.push({ type: 'del', key: levelDbKeys.chunk(hexToDigest(name)) });
    }
    recovered.chunks = referenced;
  }
}

/** A Buffer from the binding viewed as a plain Uint8Array (see ByteReader on why that matters). */
function plainBytes(bytes: Uint8Array): Uint8Array {
  return Object.getPrototypeOf(bytes) === Uint8Array.prototype
    ? bytes
    : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function hexToDigest(hex: string): Digest {
  return Uint8Array.from(Buffer.from(hex, 'hex')) as Digest;
}
