/**
 * Fetching a certified checkpoint's state, chunk by chunk, from several replicas at once.
 *
 * The target is a checkpoint certificate (a quorum signed its Merkle root), so nothing a source
 * sends has to be trusted: the manifest must hash to the certified root and every chunk to its
 * leaf. Chunks the replica already holds locally (same leaf digest) are not fetched at all.
 * Missing chunks are spread over all sources; a source that sends a bad chunk is dropped at once,
 * one that makes no progress for `sourceTimeoutMs` is dropped too, and its chunks go to the
 * others. So a lying or stalling source costs at most one timeout, never the whole transfer.
 * A replica that needs several transfers in a row (it fell behind again while catching up) starts
 * each with the sources the previous ones dropped left out (`distrusted`), so the same stalling
 * source does not cost one timeout per transfer; they come back like any dropped source, when
 * every other source is dropped too.
 */

import { LIMITS } from '../messages/limits.js';
import type { CheckpointCertificate, Chunk, Manifest, ReplicaMessage } from '../messages/types.js';
import type { StoredCheckpoint } from './actions.js';
import type { StateTransferConfig } from './config.js';
import { assert, bytesEqual, type Digest, type ReplicaId, replicaId, toHex } from '../messages/ids.js';
import { type HashFunction, leafDigest, merkleRoot } from './merkle.js';

const EARLIER_DROP = 'dropped by an earlier transfer: ';

export interface StateTransferHost {
  readonly self: ReplicaId;
  readonly replicaCount: number;
  readonly config: StateTransferConfig;
  readonly hash: HashFunction;
  send(to: ReplicaId, message: ReplicaMessage): void;
  log(
    level: 'debug' | 'info' | 'warn',
    event: string,
    details: Record<string, string | number | boolean>,
  ): void;
}

interface SourceState {
  dropped: string | null;
  readonly inFlight: Set<number>;
  lastProgressAt: number;
  chunksDelivered: number;
}

export interface StateTransferStatistics {
  readonly startedAt: number;
  readonly chunksTotal: number;
  readonly chunksReusedLocally: number;
  readonly chunksFetched: number;
  readonly bytesFetched: number;
  readonly sourcesDropped: number;
  readonly retargets: number;
}

export class StateTransfer {
  readonly #host: StateTransferHost;
  #target: CheckpointCertificate;
  /** Chunks the replica holds already, by leaf digest (hex): its own state and verified fetches. */
  readonly #pool: Map<string, Uint8Array>;
  #leaves: readonly Digest[] | null = null;
  #chunks: (Uint8Array | undefined)[] = [];
  #queue: number[] = [];
  #missing = 0;
  #manifestRequestedAt: number;
  readonly #sources = new Map<ReplicaId, SourceState>();
  readonly #startedAt: number;
  #chunksReusedLocally = 0;
  #chunksFetched = 0;
  #bytesFetched = 0;
  #sourcesDropped = 0;
  #retargets = 0;
  #roundRobin = 0;

  constructor(
    host: StateTransferHost,
    target: CheckpointCertificate,
    pool: Map<string, Uint8Array>,
    now: number,
    /** Sources an earlier transfer dropped, with why: left out from the start. */
    distrusted: ReadonlyMap<ReplicaId, string> = new Map(),
  ) {
    this.#host = host;
    this.#target = target;
    this.#pool = pool;
    this.#startedAt = now;
    this.#manifestRequestedAt = now;
    for (let index = 0; index < host.replicaCount; index++) {
      const source = replicaId(index);
      if (source === host.self) continue;
      const earlier = distrusted.get(source);
      this.#sources.set(source, {
        dropped: earlier === undefined ? null : `${EARLIER_DROP}${earlier}`,
        inFlight: new Set(),
        lastProgressAt: now,
        chunksDelivered: 0,
      });
    }
    this.#requestManifest(now);
  }

  get target(): CheckpointCertificate {
    return this.#target;
  }

  get complete(): boolean {
    return this.#leaves !== null && this.#missing === 0;
  }

  statistics(): StateTransferStatistics {
    return {
      startedAt: this.#startedAt,
      chunksTotal: this.#leaves?.length ?? 0,
      chunksReusedLocally: this.#chunksReusedLocally,
      chunksFetched: this.#chunksFetched,
      bytesFetched: this.#bytesFetched,
      sourcesDropped: this.#sourcesDropped,
      retargets: this.#retargets,
    };
  }

  /** Sources dropped and not revived since, with why (for the next transfer: `distrusted`). */
  droppedSources(): Map<ReplicaId, string> {
    const dropped = new Map<ReplicaId, string>();
    for (const [id, source] of this.#sources) if (source.dropped !== null) dropped.set(id, source.dropped);
    return dropped;
  }

  /** Sources that delivered at least one verified chunk. */
  deliveringSources(): ReplicaId[] {
    return [...this.#sources].filter(([, source]) => source.chunksDelivered > 0).map(([id]) => id);
  }

  /** The fetched checkpoint; only once `complete`. */
  result(): StoredCheckpoint {
    assert(this.complete && this.#leaves !== null, 'state transfer result taken before completion');
    return { certificate: this.#target, leaves: this.#leaves, chunks: this.#chunks as Uint8Array[] };
  }

  /** Moves to a newer certified checkpoint, keeping every verified chunk for reuse. */
  retarget(target: CheckpointCertificate, now: number): void {
    assert(target.sequence > this.#target.sequence, 'state transfer retargeted backwards');
    if (this.#leaves !== null) {
      this.#chunks.forEach((chunk, index) => {
        if (chunk !== undefined) this.#pool.set(toHex(this.#leaves![index]!), chunk);
      });
    }
    this.#target = target;
    this.#leaves = null;
    this.#chunks = [];
    this.#queue = [];
    this.#missing = 0;
    this.#retargets++;
    for (const source of this.#sources.values()) source.inFlight.clear();
    this.#host.log('info', 'state-transfer-retargeted', { sequence: target.sequence });
    this.#requestManifest(now);
  }

  onManifest(from: ReplicaId, manifest: Manifest, now: number): void {
    const source = this.#sources.get(from);
    if (source === undefined || this.#leaves !== null || manifest.sequence !== this.#target.sequence) return;
    if (!bytesEqual(merkleRoot(this.#host.hash, manifest.leaves), this.#target.stateRoot)) {
      this.#drop(from, 'manifest does not match the certified state root');
      return;
    }
    this.#leaves = manifest.leaves;
    this.#chunks = new Array<Uint8Array | undefined>(manifest.leaves.length).fill(undefined);
    manifest.leaves.forEach((leaf, index) => {
      const local = this.#pool.get(toHex(leaf));
      if (local !== undefined) {
        this.#chunks[index] = local;
        this.#chunksReusedLocally++;
      } else {
        this.#queue.push(index);
        this.#missing++;
      }
    });
    source.lastProgressAt = now;
    this.#host.log('info', 'state-transfer-manifest', {
      sequence: manifest.sequence,
      chunks: manifest.leaves.length,
      missing: this.#missing,
      from,
    });
    this.#dispatch(now);
  }

  onChunk(from: ReplicaId, chunk: Chunk, now: number): void {
    const source = this.#sources.get(from);
    if (source === undefined || this.#leaves === null || chunk.sequence !== this.#target.sequence) return;
    const leaf = this.#leaves[chunk.index];
    if (leaf === undefined || this.#chunks[chunk.index] !== undefined) return;
    if (!bytesEqual(leafDigest(this.#host.hash, chunk.data), leaf)) {
      this.#drop(from, `chunk ${chunk.index} does not match the certified state`);
      this.#dispatch(now);
      return;
    }
    this.#chunks[chunk.index] = chunk.data;
    this.#missing--;
    this.#chunksFetched++;
    this.#bytesFetched += chunk.data.length;
    for (const other of this.#sources.values()) other.inFlight.delete(chunk.index);
    source.lastProgressAt = now;
    source.chunksDelivered++;
    this.#dispatch(now);
  }

  tick(now: number): void {
    const timeout = this.#host.config.sourceTimeoutMs;
    if (this.#leaves === null) {
      if (now - this.#manifestRequestedAt >= timeout) this.#requestManifest(now);
      return;
    }
    for (const [id, source] of this.#sources) {
      if (source.dropped === null && source.inFlight.size > 0 && now - source.lastProgressAt >= timeout) {
        this.#drop(id, `no chunk for ${now - source.lastProgressAt} ms`);
      }
    }
    this.#dispatch(now);
  }

  #requestManifest(now: number): void {
    this.#manifestRequestedAt = now;
    this.#reviveIfAllDropped();
    for (const [id, source] of this.#sources) {
      if (source.dropped === null)
        this.#host.send(id, { kind: 'manifest-request', sequence: this.#target.sequence });
    }
  }

  /** Leaves `id` out from now on (it was proven faulty): its chunks in flight go to the others. */
  distrust(id: ReplicaId, reason: string): void {
    if (!this.#sources.has(id)) return;
    this.#drop(id, reason);
    this.#reviveIfAllDropped();
  }

  #drop(id: ReplicaId, reason: string): void {
    const source = this.#sources.get(id)!;
    if (source.dropped !== null) return;
    source.dropped = reason;
    this.#sourcesDropped++;
    for (const index of source.inFlight) if (this.#chunks[index] === undefined) this.#queue.unshift(index);
    source.inFlight.clear();
    this.#host.log('warn', 'state-transfer-source-dropped', { source: id, reason });
  }

  /** When every source was dropped the fault may have been the network's: give them another chance. */
  #reviveIfAllDropped(): void {
    for (const source of this.#sources.values()) if (source.dropped === null) return;
    for (const source of this.#sources.values()) source.dropped = null;
    this.#host.log('warn', 'state-transfer-sources-revived', { sources: this.#sources.size });
  }

  #dispatch(now: number): void {
    if (this.#leaves === null || this.#queue.length === 0) return;
    this.#reviveIfAllDropped();
    const config = this.#host.config;
    const perSourceLimit = config.chunksPerRequest * config.maxRequestsInFlightPerSource;
    const ids = [...this.#sources.keys()];
    let idle = 0;
    while (this.#queue.length > 0 && idle < ids.length) {
      const id = ids[this.#roundRobin++ % ids.length]!;
      const source = this.#sources.get(id)!;
      if (source.dropped !== null || source.inFlight.size + config.chunksPerRequest > perSourceLimit) {
        idle++;
        continue;
      }
      idle = 0;
      const indices: number[] = [];
      while (indices.length < Math.min(config.chunksPerRequest, LIMITS.maxChunkIndicesPerRequest)) {
        const index = this.#queue.shift();
        if (index === undefined) break;
        if (this.#chunks[index] !== undefined) continue;
        indices.push(index);
      }
      if (indices.length === 0) break;
      if (source.inFlight.size === 0) source.lastProgressAt = now;
      for (const index of indices) source.inFlight.add(index);
      this.#host.send(id, { kind: 'chunk-request', sequence: this.#target.sequence, indices });
    }
  }
}
