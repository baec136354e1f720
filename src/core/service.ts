/**
 * The interface a replicated service implements. Phalanx orders requests and calls these methods
 * in the same order on every correct replica, so they must be deterministic: no clocks, no
 * randomness, no I/O, no iteration over unordered collections whose order could differ.
 *
 * Usage:
 * ```ts
 * class Counter implements Service {
 *   #value = 0n;
 *   execute(operation: Uint8Array) { this.#value += 1n; return encode(this.#value); }
 *   executeReadOnly() { return encode(this.#value); }
 *   snapshot() { return [encode(this.#value)]; }
 *   restore(chunks: readonly Uint8Array[]) { this.#value = decode(chunks[0]); }
 * }
 * ```
 */
import type { ClientId, RequestNumber, SequenceNumber } from '../messages/ids.js';

export interface ExecutionContext {
  readonly clientId: ClientId;
  readonly requestNumber: RequestNumber;
  /** The batch this request was ordered in (for read-only requests: the last executed batch). */
  readonly sequence: SequenceNumber;
}

export interface Service {
  /** Applies an ordered operation and returns its result. Must not throw for any input bytes. */
  execute(operation: Uint8Array, context: ExecutionContext): Uint8Array;
  /** Answers a read-only operation without changing state. */
  executeReadOnly(operation: Uint8Array, context: ExecutionContext): Uint8Array;
  /**
   * The whole state as an ordered list of chunks (each at most LIMITS.maxChunkBytes). A returned
   * chunk must never be mutated afterwards; returning the very same Uint8Array object for a chunk
   * that did not change since the last snapshot lets the core skip re-hashing it.
   */
  snapshot(): readonly Uint8Array[];
  /** Replaces the whole state with the one the chunks describe (as produced by snapshot()). */
  restore(chunks: readonly Uint8Array[]): void;
}
