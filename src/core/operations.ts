/**
 * A service's operations and results, defined once and used on both sides: the service decodes
 * operations and encodes results, a client (TypedClient in src/client/typed-client.ts) encodes
 * operations and decodes results. Defining them together keeps the two ends from drifting apart.
 *
 * Decoders get bytes from the network (operations reach the service from any client, results
 * reach a client from the replicas), so they must refuse what they cannot read by returning null
 * (never throw), and bound what they allocate.
 *
 * Usage:
 * ```ts
 * const counterOperations = defineOperations<{ kind: 'add'; amount: number } | { kind: 'read' }, number>({
 *   encodeOperation: (operation) => ...,
 *   decodeOperation: (bytes) => ... ?? null,
 *   encodeResult: (value) => ...,
 *   decodeResult: (bytes) => ... ?? null,
 *   isReadOnly: (operation) => operation.kind === 'read',
 * });
 * // Resolves to the decoded result (a number here):
 * new TypedClient(phalanxClient, counterOperations).execute({ kind: 'add', amount: 2 });
 * ```
 */

export interface OperationCodecs<Operation, Result> {
  encodeOperation(operation: Operation): Uint8Array;
  /** null: the bytes are no operation of this service (the service answers with a rejection). */
  decodeOperation(bytes: Uint8Array): Operation | null;
  encodeResult(result: Result): Uint8Array;
  /** null: the bytes are no result of this service. */
  decodeResult(bytes: Uint8Array): Result | null;
  /**
   * Whether an operation only reads, so that TypedClient.invoke may send it read-only (answered
   * without ordering when the replicas agree). Absent: every operation is ordered.
   */
  isReadOnly?(operation: Operation): boolean;
}

/** The codecs as given, typed once: `defineOperations<Operation, Result>({ … })`. */
export function defineOperations<Operation, Result>(
  codecs: OperationCodecs<Operation, Result>,
): OperationCodecs<Operation, Result> {
  return codecs;
}
