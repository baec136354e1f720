/**
 * The service-level part of a real replica's fault injection: a wrapper of the replicated service
 * whose mode the fault injection switches (src/runtime/fault-modes.ts). Only test and demo
 * clusters wrap their service in it; a production replica runs its service as it is.
 *
 * - 'lie-in-replies': the operation is applied (so the lie is not a crash) but the result the core
 *   puts in its reply, and signs, is made up: a client that gets it holds a provable lie.
 * - 'corrupt-state': the last chunk of every snapshot has a byte appended, so the replica's signed
 *   checkpoint root differs from the quorum's, which the others prove with its own vote.
 */
import type { ExecutionContext, Service } from '../core/service.js';
import type { RuntimeFaultMode } from './catalogue.js';

export class FaultyService implements Service {
  readonly #inner: Service;
  mode: RuntimeFaultMode | null = null;

  constructor(inner: Service) {
    this.#inner = inner;
  }

  execute(operation: Uint8Array, context: ExecutionContext): Uint8Array {
    const result = this.#inner.execute(operation, context);
    if (this.mode !== 'lie-in-replies') return result;
    const lie = new Uint8Array(result.length + 1);
    lie.set(result);
    lie[result.length] = 0x5a;
    return lie;
  }

  executeReadOnly(operation: Uint8Array, context: ExecutionContext): Uint8Array {
    return this.#inner.executeReadOnly(operation, context);
  }

  snapshot(): readonly Uint8Array[] {
    const chunks = this.#inner.snapshot();
    if (this.mode !== 'corrupt-state' || chunks.length === 0) return chunks;
    const corrupted = chunks.slice();
    const last = corrupted[corrupted.length - 1]!;
    const copy = new Uint8Array(last.length + 1);
    copy.set(last);
    copy[last.length] = 0xa5;
    corrupted[corrupted.length - 1] = copy;
    return corrupted;
  }

  restore(chunks: readonly Uint8Array[]): void {
    this.#inner.restore(chunks);
  }
}
