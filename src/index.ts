/**
 * The package's main entry point (`import … from 'phalanx'`): what an application needs to use a
 * Phalanx cluster as a client, and the contract a replicated service implements. It loads none of
 * the replica runtime (no storage engine, no guardian, no HTTP server, no child processes):
 * test/architecture/module-graph.test.ts keeps it so. A service's own code (its `ServiceModule`,
 * its operation codecs with `defineOperations`, which `TypedClient` uses on the client side) needs
 * this entry only. Hosting a replica is `phalanx/replica`;
 * the key-value store and its typed client are `phalanx/kv`.
 *
 * Usage:
 * ```ts
 * import { clientId, clientKeyPath, loadClientKeyFile, loadClusterConfig, PhalanxClient } from 'phalanx';
 *
 * const config = await loadClusterConfig('.phalanx/cluster.json');
 * const keys = await loadClientKeyFile(clientKeyPath(config, clientId('admin')));
 * const client = await PhalanxClient.connect({ config, client: keys });
 * const { result } = await client.invoke(new TextEncoder().encode('operation'));
 * await client.close();
 * ```
 */
export {
  type ClientMetricsSink,
  type InvocationPath,
  type InvocationResult,
  PhalanxClient,
  type PhalanxClientOptions,
  PhalanxError,
  type PhalanxErrorCode,
  SafeModeSnapshotError,
  UnknownClientError,
} from './client/client.js';
export {
  type ClientEntry,
  type ClusterConfig,
  ConfigError,
  loadClusterConfig,
  parseClusterConfig,
  type RecoveryConfig,
  type ReplicaEntry,
} from './config/cluster-config.js';
export { type ClientKeyFile, clientKeyPath, loadClientKeyFile } from './config/keys.js';
export type {
  ExecutionContext,
  JsonValue,
  Service,
  ServiceClient,
  ServiceCreateContext,
  ServiceModule,
  ServiceModuleContext,
  ServiceSimulation,
  SimulatedOperation,
} from './core/service.js';
export { defineOperations, type OperationCodecs } from './core/operations.js';
export { TypedClient, UndecodableResultError } from './client/typed-client.js';
export {
  type ClientId,
  clientId,
  type RequestNumber,
  requestNumber,
  type ReplicaId,
  replicaId,
  type SequenceNumber,
  sequenceNumber,
} from './messages/ids.js';
export { LIMITS } from './messages/limits.js';
