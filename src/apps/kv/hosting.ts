/**
 * The key-value store as a cluster's service: what the wiring above the replica runtime (the
 * `phalanx` CLI) needs to run it. The runtime takes any `ServiceFactory`
 * (src/runtime/replica-node.ts); `createKvService` is the KV store's, and `kvServiceModule` its
 * service module (the built-in `phalanx/kv` a configuration runs by default, src/hosting/). The
 * cluster configuration carries each client's keyspaces as plain strings; `kvConfigProblems`
 * checks what they mean to this service, and the CLI reports its problems as configuration errors
 * when it loads a file configured with this service.
 *
 * Usage:
 * ```ts
 * const config = await loadClusterConfig(path);
 * const problems = kvConfigProblems(config); // [] when every keyspace is usable
 * const node = await ReplicaNode.start({ config, id, keys, logger, service: createKvService });
 * ```
 */
import type { ClusterConfig } from '../../config/cluster-config.js';
import type { ServiceClient, ServiceModule } from '../../core/service.js';
import { type AccessControlConfig, validateAccessControlConfig } from './access-control.js';
import { KvService } from './service.js';

/** The clients' grants of a configuration, as the access control of the KV store reads them. */
export function accessControlOf(config: { readonly clients: readonly ServiceClient[] }): AccessControlConfig {
  return Object.fromEntries(
    config.clients.map((client) => [client.id, { keyspaces: [...client.keyspaces] }]),
  );
}

/**
 * Problems with a configuration's keyspaces for the KV store, each a full sentence prefixed
 * `clients:` like the configuration parser's own; [] when the store can run it.
 */
export function kvConfigProblems(config: { readonly clients: readonly ServiceClient[] }): string[] {
  return validateAccessControlConfig(accessControlOf(config)).map((problem) => `clients: ${problem}`);
}

/**
 * The key-value store as a service module: what a configuration without a `service` section (or
 * with `"module": "phalanx/kv"`) runs. It takes no options; the clients' keyspaces are its grants.
 */
export const kvServiceModule: ServiceModule = {
  name: 'kv',
  create: (context) => new KvService({ accessControl: accessControlOf(context) }),
  configProblems: (context) => [
    ...(context.options === null ? [] : ['service.options: the key-value store takes no options']),
    ...kvConfigProblems(context),
  ],
};

/**
 * The KV store a replica of `config` runs (a ServiceFactory). Throws when kvConfigProblems
 * reports anything: AccessControl refuses an invalid configuration.
 */
export function createKvService(context: { readonly config: ClusterConfig }): KvService {
  return new KvService({ accessControl: accessControlOf(context.config) });
}
