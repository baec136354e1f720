/**
 * A typed client for the replicated key-value store, on top of PhalanxClient. Service-level
 * refusals become PhalanxError('rejected') with a message that says what was refused and why.
 *
 * Usage:
 * ```ts
 * const kv = new KvClient(await PhalanxClient.connect({ config, client: keys }));
 * await kv.put('users/alice', new TextEncoder().encode('admin'));
 * const value = await kv.get('users/alice');            // fast read path, falls back to ordering
 * const swapped = await kv.compareAndSet('n', null, bytes); // only if absent
 * ```
 */
import { type PhalanxClient, PhalanxError, type SafeModeSnapshotError } from '../../client/client.js';
import { TypedClient, UndecodableResultError } from '../../client/typed-client.js';
import { type KvEntry, type KvOperation, type KvResult, kvOperations } from './operations.js';

export class KvClient {
  readonly #typed: TypedClient<KvOperation, KvResult>;

  constructor(client: PhalanxClient) {
    this.#typed = new TypedClient(client, kvOperations);
  }

  get client(): PhalanxClient {
    return this.#typed.client;
  }

  async #run(operation: KvOperation, readOnly: boolean): Promise<KvResult> {
    let value: KvResult;
    try {
      value = readOnly ? await this.#typed.read(operation) : await this.#typed.execute(operation);
    } catch (error) {
      if (error instanceof UndecodableResultError)
        throw new PhalanxError('rejected', `undecodable result from the replicas: ${error.message}`);
      throw error;
    }
    switch (value.kind) {
      case 'access-denied':
        throw new PhalanxError(
          'rejected',
          `access denied: client ${value.clientId} may not access "${value.keyOrPrefix}" (outside its keyspaces)`,
        );
      case 'bad-request':
        throw new PhalanxError('rejected', `bad request: ${value.reason}`);
      case 'not-read-only':
        throw new PhalanxError(
          'rejected',
          `${value.operation} changes state and cannot be sent as read-only`,
        );
      case 'store-full':
        throw new PhalanxError('rejected', `store full: ${value.reason}`);
      default:
        return value;
    }
  }

  /** Returns whether the key existed before. */
  async put(key: string, value: Uint8Array): Promise<boolean> {
    const result = await this.#run({ kind: 'put', key, value }, false);
    return result.kind === 'ok' && result.existed;
  }

  /**
   * The value a get() that failed with a SafeModeSnapshotError read from the replicas' last
   * certified state (checkpoint `error.sequence`, perhaps older than acknowledged writes).
   */
  snapshotValue(error: SafeModeSnapshotError): Uint8Array | null {
    const result = this.#typed.snapshotResult(error);
    return result.kind === 'value' ? result.value : null;
  }

  /**
   * Linearizable read; `ordered` skips the read-only fast path. Replicas in safe mode answer from
   * their last certified state: the read fails with a SafeModeSnapshotError (see snapshotValue).
   */
  async get(key: string, options: { readonly ordered?: boolean } = {}): Promise<Uint8Array | null> {
    const result = await this.#run({ kind: 'get', key }, options.ordered !== true);
    return result.kind === 'value' ? result.value : null;
  }

  /** Returns whether the key existed. */
  async delete(key: string): Promise<boolean> {
    const result = await this.#run({ kind: 'delete', key }, false);
    return result.kind === 'ok' && result.existed;
  }

  /** Sets `value` if the key holds `expected` (null: if it is absent). */
  async compareAndSet(
    key: string,
    expected: Uint8Array | null,
    value: Uint8Array,
  ): Promise<{ readonly succeeded: boolean; readonly current: Uint8Array | null }> {
    const result = await this.#run({ kind: 'compareAndSet', key, expected, value }, false);
    if (result.kind !== 'cas')
      throw new PhalanxError('rejected', `unexpected ${result.kind} result for compare-and-set`);
    return { succeeded: result.succeeded, current: result.current };
  }

  async list(
    prefix: string,
    limit = 100,
    options: { readonly ordered?: boolean } = {},
  ): Promise<{ readonly entries: readonly KvEntry[]; readonly truncated: boolean }> {
    const result = await this.#run({ kind: 'list', prefix, limit }, options.ordered !== true);
    if (result.kind !== 'list')
      throw new PhalanxError('rejected', `unexpected ${result.kind} result for list`);
    return { entries: result.entries, truncated: result.truncated };
  }
}
