/**
 * A hostile client in a process of its own, for test/integration/hostile-clients.test.ts: the
 * honest client whose latency the test measures must not share an event loop (or a core's worth
 * of decryption) with the attacker. It attacks until it is killed.
 *
 *   node --import tsx test/integration/attacker.ts <cluster.json> <client> <mode> [<leader>]
 *
 * Modes: `ordered-reads` (a 1 MB value of its own keyspace read in order, 8 at a time),
 * `read-only` (the same, read-only), `leader-only` (a request whose MACs verify at the leader
 * alone, sent to the leader alone, every 20 ms).
 */
import { createHash } from 'node:crypto';
import { KvClient } from '../../src/apps/kv/client.js';
import { encodeKvOperation } from '../../src/apps/kv/index.js';
import { PhalanxClient } from '../../src/client/client.js';
import { loadClusterConfig } from '../../src/config/cluster-config.js';
import { clientKeyPath, keyRegistryOf, loadClientKeyFile } from '../../src/config/keys.js';
import { clientId, keyEpoch, replicaId, requestNumber } from '../../src/messages/ids.js';
import { ClientCrypto } from '../../src/crypto/client-crypto.js';
import { encodeMessage } from '../../src/messages/codec.js';
import { requestContent } from '../../src/messages/signing.js';
import { channelKeyDirectory } from '../../src/transport/key-directory.js';
import { TcpTransport } from '../../src/transport/tcp.js';
import { clientNode, replicaNode } from '../../src/transport/transport.js';

const [configPath, name, mode, leaderArgument] = process.argv.slice(2);
if (configPath === undefined || name === undefined || mode === undefined) {
  process.stderr.write('usage: attacker.ts <cluster.json> <client> <mode> [<leader>]\n');
  process.exit(2);
}
const config = await loadClusterConfig(configPath);
const keys = await loadClientKeyFile(clientKeyPath(config, clientId(name)));

async function readLoop(readOnly: boolean): Promise<never> {
  const client = await PhalanxClient.connect({ config, client: keys, timeoutMs: 5000 });
  const store = new KvClient(client);
  await store.put(`${name}/big`, new Uint8Array(1000 * 1000).fill(7));
  process.stdout.write('attacking\n');
  for (;;) {
    // Its own requests may fail (beyond its reply budget, results too large to keep): its problem.
    await Promise.all(
      Array.from({ length: 8 }, () =>
        store.get(`${name}/big`, { ordered: !readOnly }).then(
          () => undefined,
          () => undefined,
        ),
      ),
    );
  }
}

async function leaderOnly(leader: number): Promise<never> {
  const registry = keyRegistryOf(config);
  const transport = await TcpTransport.start({
    identity: { node: clientNode(keys.client), keyEpoch: keyEpoch(0), signingKeys: keys.keys.signing! },
    peers: config.replicas.map((replica) => ({
      node: replicaNode(replica.id),
      host: replica.host,
      port: replica.port,
    })),
    keys: channelKeyDirectory(registry, config),
    events: { onFrame: () => undefined },
  });
  const crypto = new ClientCrypto({ client: keys.client, keys: keys.keys, registry });
  while (transport.connectedPeers().length < config.n)
    await new Promise((resolve) => setTimeout(resolve, 20));
  process.stdout.write('attacking\n');
  let next = Math.floor(Date.now() * 1000);
  for (;;) {
    const unsigned = {
      kind: 'request' as const,
      clientId: keys.client,
      requestNumber: requestNumber(next++),
      readOnly: false,
      operation: encodeKvOperation({ kind: 'put', key: `${name}/x`, value: new TextEncoder().encode('1') }),
    };
    const digest = createHash('sha256')
      .update(requestContent({ ...unsigned, authenticator: [], signature: null }))
      .digest();
    // Valid for the leader only: every other entry flipped, and no signature to fall back on.
    const authenticator = crypto
      .authenticator(digest as never)
      .map((entry, replica) =>
        replica === leader ? entry : { ...entry, mac: entry.mac.map((byte) => byte ^ 0xff) },
      );
    transport.send(
      replicaNode(replicaId(leader)),
      encodeMessage({ ...unsigned, authenticator, signature: null }),
    );
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

if (mode === 'ordered-reads') await readLoop(false);
else if (mode === 'read-only') await readLoop(true);
else if (mode === 'leader-only') await leaderOnly(Number(leaderArgument));
else {
  process.stderr.write(`unknown mode ${mode}\n`);
  process.exit(2);
}
