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
import type { ClientId, ReplicaId, RequestNumber, SequenceNumber } from '../messages/ids.js';

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

/** A JSON value, as a service's options arrive from the cluster configuration. */
export type JsonValue =
  null | boolean | number | string | readonly JsonValue[] | { readonly [key: string]: JsonValue };

/** A client of the cluster as a service sees it: its id and the grants the configuration lists. */
export interface ServiceClient {
  readonly id: ClientId;
  /** The configuration's `keyspaces` of the client: strings the service interprets (or ignores). */
  readonly keyspaces: readonly string[];
}

/** What a service module is told when it builds (or checks the options of) a service. */
export interface ServiceModuleContext {
  /** `service.options` of the cluster configuration; null when absent. */
  readonly options: JsonValue | null;
  /** The configured clients, in the configuration's order. */
  readonly clients: readonly ServiceClient[];
}

/** What `create` is told: the module context, and which replica the service is for. */
export interface ServiceCreateContext extends ServiceModuleContext {
  readonly replica: ReplicaId;
}

/** One operation a simulated correct client sends (see ServiceSimulation). */
export interface SimulatedOperation {
  readonly operation: Uint8Array;
  readonly readOnly: boolean;
}

/**
 * Optional hooks for the simulator (`npm run sim -- --service <module>`). Without them the
 * simulated clients send the key-value store's operations, which a service must answer without
 * throwing (as it must any bytes).
 */
export interface ServiceSimulation {
  /**
   * The next operation of a simulated correct client. `random()` is the run's seeded generator
   * (values in [0, 1)): use it, and nothing else, so that a seed replays exactly.
   */
  nextOperation(random: () => number, client: ClientId, index: number): SimulatedOperation;
  /**
   * Problems with a correct replica's state, given its snapshot (an invariant the service keeps,
   * e.g. a ledger's total); [] when none. The simulator checks every snapshot it takes.
   */
  stateProblems?(chunks: readonly Uint8Array[]): readonly string[];
}

/**
 * What a service module exports (as its default export, or as the named export `service`) so
 * that a cluster configuration can name it: `"service": { "module": "./ledger.js", "options": … }`.
 * The replica process, the guardian, the `phalanx` commands and the simulator load it the same way
 * (src/hosting/service-modules.ts). Every replica runs `create` once per start; each call must
 * return a fresh service in its initial state.
 *
 * Usage:
 * ```ts
 * const counterModule: ServiceModule = {
 *   name: 'counter',
 *   create: () => new Counter(),
 *   configProblems: ({ options }) => (options === null ? [] : ['the counter takes no options']),
 * };
 * export default counterModule;
 * ```
 */
export interface ServiceModule {
  /** A short name for logs and errors ('kv', 'ledger'). */
  readonly name: string;
  /** A fresh service for one replica start. */
  create(context: ServiceCreateContext): Service;
  /**
   * Problems with the configuration for this service (its options, the clients' keyspaces), each
   * a full sentence; [] when it can run. The `phalanx` commands report them as configuration
   * errors before anything starts.
   */
  configProblems?(context: ServiceModuleContext): readonly string[];
  readonly simulation?: ServiceSimulation;
}
