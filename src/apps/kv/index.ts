/**
 * Replicated key-value store, Phalanx's default application: UTF-8 keys, byte values, per-client
 * keyspaces, and put / get / delete / compareAndSet / list operations in a compact binary format.
 *
 * ```ts
 * import { clientId, requestNumber, sequenceNumber } from '../../messages/ids.js';
 * import { decodeKvResult, encodeKvOperation, KvService } from './index.js';
 *
 * const kv = new KvService({ accessControl: { alice: { keyspaces: ['users/alice/'] } } });
 * const context = { clientId: clientId('alice'), requestNumber: requestNumber(1), sequence: sequenceNumber(1) };
 * const value = new TextEncoder().encode('Ada');
 * kv.execute(encodeKvOperation({ kind: 'put', key: 'users/alice/name', value }), context);
 * const reply = kv.executeReadOnly(encodeKvOperation({ kind: 'get', key: 'users/alice/name' }), context);
 * console.log(decodeKvResult(reply)); // { ok: true, value: { kind: 'value', value: Uint8Array(3) [ 65, 100, 97 ] } }
 * ```
 */
export {
  AccessControl,
  type AccessControlConfig,
  type KeyspaceGrant,
  validateAccessControlConfig,
  WHOLE_KEYSPACE,
} from './access-control.js';
export { accessControlOf, createKvService, kvConfigProblems, kvServiceModule } from './hosting.js';
export {
  compareKvKeys,
  decodeKvOperation,
  decodeKvResult,
  encodeKvOperation,
  encodeKvResult,
  isReadOnlyOperation,
  KV_LIMITS,
  type KvDecoded,
  type KvEntry,
  type KvOperation,
  type KvOperationKind,
  type KvResult,
  type KvResultKind,
} from './operations.js';
export {
  DEFAULT_BUCKET_COUNT,
  fnv1a32,
  KV_MAX_SNAPSHOT_CHUNKS,
  KvService,
  type KvServiceOptions,
  LARGE_ENTRY_BYTES,
  SMALL_PART_MIN_BYTES,
} from './service.js';
