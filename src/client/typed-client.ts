/**
 * A PhalanxClient that speaks one service's operations (OperationCodecs, src/core/operations.ts):
 * `execute` orders an operation, `read` sends it read-only, and both return the decoded result.
 *
 * Usage:
 * ```ts
 * const ledger = new TypedClient(await PhalanxClient.connect({ config, client: keys }), ledgerOperations);
 * const result = await ledger.execute({ kind: 'transfer', id: 't-1', from: 'alice', to: 'bob', amount: 5n });
 * const balance = await ledger.read({ kind: 'balance', account: 'bob' });
 * ```
 */
import type { OperationCodecs } from '../core/operations.js';
import type { PhalanxClient, SafeModeSnapshotError } from './client.js';

/**
 * A result the replicas agreed on that the codecs cannot decode: the client's codecs and the
 * service's differ (another version of the service, or another service altogether).
 */
export class UndecodableResultError extends Error {
  override readonly name = 'UndecodableResultError';
  readonly bytes: Uint8Array;
  constructor(bytes: Uint8Array) {
    super(
      `the cluster answered ${bytes.length} bytes that are no result of this service (do the codecs match?)`,
    );
    this.bytes = bytes;
  }
}

export class TypedClient<Operation, Result> {
  /** The client underneath, for anything else (close it when done). */
  readonly client: PhalanxClient;
  readonly #codecs: OperationCodecs<Operation, Result>;

  constructor(client: PhalanxClient, codecs: OperationCodecs<Operation, Result>) {
    this.client = client;
    this.#codecs = codecs;
  }

  /** Orders the operation and returns its result. */
  execute(operation: Operation, options: { readonly timeoutMs?: number } = {}): Promise<Result> {
    return this.#invoke(operation, false, options.timeoutMs);
  }

  /** Sends the operation read-only (it must not change the state) and returns its result. */
  read(operation: Operation, options: { readonly timeoutMs?: number } = {}): Promise<Result> {
    return this.#invoke(operation, true, options.timeoutMs);
  }

  /** read() when the codecs call the operation read-only, execute() otherwise. */
  invoke(operation: Operation, options: { readonly timeoutMs?: number } = {}): Promise<Result> {
    return this.#invoke(operation, this.#codecs.isReadOnly?.(operation) ?? false, options.timeoutMs);
  }

  /**
   * The answer a read got from replicas in safe mode (a SafeModeSnapshotError: their certified
   * state at `error.sequence`, which may be older than acknowledged writes), decoded.
   */
  snapshotResult(error: SafeModeSnapshotError): Result {
    const decoded = this.#codecs.decodeResult(error.result);
    if (decoded === null) throw new UndecodableResultError(error.result);
    return decoded;
  }

  async #invoke(operation: Operation, readOnly: boolean, timeoutMs: number | undefined): Promise<Result> {
    const { result } = await this.client.invoke(this.#codecs.encodeOperation(operation), {
      readOnly,
      ...(timeoutMs === undefined ? {} : { timeoutMs }),
    });
    const decoded = this.#codecs.decodeResult(result);
    if (decoded === null) throw new UndecodableResultError(result);
    return decoded;
  }
}
