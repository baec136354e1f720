/**
 * Entry point `phalanx/replica`: hosting a replica of a Phalanx cluster in a Node process, with
 * the replicated service of your choice (a `ServiceFactory`; every replica of a cluster must run
 * the same deterministic service, see `Service` in `phalanx`). Guardians (proactive recovery)
 * run through the `phalanx guardian` command, not this entry.
 *
 * Usage:
 * ```ts
 * import { loadClusterConfig, loadReplicaKeyFile, ReplicaNode, replicaId, replicaKeyPath } from 'phalanx/replica';
 * import pino from 'pino';
 *
 * const config = await loadClusterConfig('.phalanx/cluster.json');
 * const id = replicaId(0);
 * const file = await loadReplicaKeyFile(replicaKeyPath(config, id));
 * const node = await ReplicaNode.start({
 *   config, id, keys: { kind: 'key-file', file }, logger: pino(), service: () => new Counter(),
 * });
 * // ... later
 * await node.close();
 * ```
 */
export {
  type ClusterConfig,
  ConfigError,
  loadClusterConfig,
  parseClusterConfig,
  replicaDataDirectory,
} from './config/cluster-config.js';
export { loadReplicaKeyFile, type ReplicaKeyFile, replicaKeyPath } from './config/keys.js';
export type { ExecutionContext, Service, ServiceModule } from './core/service.js';
export { type ReplicaId, replicaId } from './messages/ids.js';
export {
  type GuardianLink,
  type ReplicaKeySource,
  ReplicaNode,
  type ReplicaNodeOptions,
  type ServiceFactory,
  type ServiceFactoryContext,
} from './runtime/replica-node.js';
export type { ReplicaStatus } from './runtime/status.js';
