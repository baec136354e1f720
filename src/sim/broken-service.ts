/**
 * Test only (`--broken-snapshot`): a key-value service that breaks the Service contract on chunk
 * size. Once it has executed anything, its snapshot carries one chunk a byte over
 * LIMITS.maxChunkBytes, a state no replica can checkpoint. Tests use it to show that the
 * checkpointability checker catches such a state (and the simulator a replica that dies of it).
 */
import type { KvService } from '../apps/kv/service.js';
import type { ExecutionContext, Service } from '../core/service.js';
import { LIMITS } from '../messages/limits.js';

export class OversizedSnapshotService implements Service {
  readonly #inner: KvService;
  #broken = false;
  #oversized: Uint8Array | null = null;

  constructor(inner: KvService) {
    this.#inner = inner;
  }

  execute(operation: Uint8Array, context: ExecutionContext): Uint8Array {
    this.#broken = true;
    return this.#inner.execute(operation, context);
  }

  executeReadOnly(operation: Uint8Array, context: ExecutionContext): Uint8Array {
    return this.#inner.executeReadOnly(operation, context);
  }

  snapshot(): readonly Uint8Array[] {
    const chunks = this.#inner.snapshot();
    if (!this.#broken) return chunks;
    this.#oversized ??= new Uint8Array(LIMITS.maxChunkBytes + 1);
    return [...chunks, this.#oversized];
  }

  restore(chunks: readonly Uint8Array[]): void {
    this.#broken = chunks.some((chunk) => chunk.length > LIMITS.maxChunkBytes);
    this.#inner.restore(chunks.filter((chunk) => chunk.length <= LIMITS.maxChunkBytes));
  }
}
