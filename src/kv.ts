/**
 * Entry point `phalanx/kv`: Phalanx's replicated key-value store. The service side (KvService,
 * and createKvService, the ServiceFactory to give `ReplicaNode.start` from `phalanx/replica`)
 * and the client side (KvClient over a PhalanxClient from `phalanx`). Like `phalanx`, it loads
 * none of the replica runtime.
 *
 * Usage:
 * ```ts
 * import { PhalanxClient } from 'phalanx';
 * import { KvClient } from 'phalanx/kv';
 *
 * const kv = new KvClient(await PhalanxClient.connect({ config, client: keys }));
 * await kv.put('users/alice', new TextEncoder().encode('admin'));
 * const value = await kv.get('users/alice');
 * ```
 */
export * from './apps/kv/index.js';
export { KvClient } from './apps/kv/client.js';
