/**
 * The unreplicated server (the benchmark's ceiling) on real TCP and a real disk, with the real
 * client: it answers with one reply as the quorum of a one-replica configuration, and every write
 * it acknowledged is in its log, durable, as a committed batch.
 */
import * as assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { KvClient } from '../../src/apps/kv/client.js';
import { createKvService } from '../../src/apps/kv/hosting.js';
import { freePortRange } from '../../src/cli/bench.js';
import { PhalanxClient } from '../../src/client/client.js';
import { loadClusterConfig, type ClusterConfig } from '../../src/config/cluster-config.js';
import {
  clientKeyPath,
  keyRegistryOf,
  generateCluster,
  loadClientKeyFile,
  loadReplicaKeyFile,
  replicaKeyPath,
} from '../../src/config/keys.js';
import { encodeKvOperation } from '../../src/apps/kv/operations.js';
import { ClientCrypto } from '../../src/crypto/client-crypto.js';
import { decodeMessage, encodeMessage } from '../../src/messages/codec.js';
import { bytesEqual, clientId, digest, keyEpoch, replicaId, requestNumber } from '../../src/messages/ids.js';
import { requestContent } from '../../src/messages/signing.js';
import type { ClientRequest, Reply } from '../../src/messages/types.js';
import { channelKeyDirectory } from '../../src/transport/key-directory.js';
import { TcpTransport } from '../../src/transport/tcp.js';
import { clientNode, replicaNode, type Transport } from '../../src/transport/transport.js';
import { UnreplicatedServer } from '../../src/runtime/unreplicated-server.js';
import { openStorage } from '../../src/storage/open.js';

describe('the unreplicated server', () => {
  let directory: string;
  let config: ClusterConfig;
  let dataDirectory: string;
  let server: UnreplicatedServer | null = null;

  before(async () => {
    directory = mkdtempSync(join(tmpdir(), 'phalanx-unreplicated-'));
    const { configPath } = await generateCluster({
      directory,
      f: 0,
      k: 0,
      basePort: await freePortRange(103),
      clients: ['admin'],
      dashboardPort: 0,
    });
    config = await loadClusterConfig(configPath);
    dataDirectory = join(directory, 'data', 'unreplicated');
  });

  after(async () => {
    await server?.close();
    rmSync(directory, { recursive: true, force: true });
  });

  async function start(served: ClusterConfig): Promise<UnreplicatedServer> {
    return UnreplicatedServer.start({
      config: served,
      keys: await loadReplicaKeyFile(replicaKeyPath(config, replicaId(0))),
      service: createKvService({ config }),
      dataDirectory,
      logger: pino({ level: 'silent' }),
    });
  }

  it('refuses a configuration of more than one replica', async () => {
    await assert.rejects(start({ ...config, n: 4 }), /one replica, this one has 4/);
  });

  /**
   * A client that speaks the wire protocol by hand, so a test can send what the real client never
   * does: the same request twice, or a request whose MAC is wrong.
   */
  async function rawClient(): Promise<{
    request(number: number, key: string, options?: { readonly badMac?: boolean }): ClientRequest;
    send(request: ClientRequest): void;
    repliesTo(number: number): Reply[];
    close(): Promise<void>;
  }> {
    const keys = await loadClientKeyFile(clientKeyPath(config, clientId('admin')));
    const registry = keyRegistryOf(config);
    const crypto = new ClientCrypto({ client: keys.client, keys: keys.keys, registry });
    const replies: Reply[] = [];
    const replica = config.replicas[0]!;
    const transport: Transport = await TcpTransport.start({
      identity: { node: clientNode(keys.client), keyEpoch: keyEpoch(0), signingKeys: keys.keys.signing! },
      peers: [{ node: replicaNode(replica.id), host: replica.host, port: replica.port }],
      keys: channelKeyDirectory(registry, config),
      events: {
        onFrame: (_from, frame) => {
          const decoded = decodeMessage(frame);
          if (decoded.ok && decoded.value.kind === 'reply') replies.push(decoded.value);
        },
      },
    });
    await until(() => transport.connectedPeers().length === 1, 'the connection');
    return {
      request(number, key, options = {}) {
        const unsigned: ClientRequest = {
          kind: 'request',
          clientId: keys.client,
          requestNumber: requestNumber(number),
          readOnly: false,
          operation: encodeKvOperation({ kind: 'put', key, value: new TextEncoder().encode(key) }),
          authenticator: [],
          signature: null,
        };
        const requestDigest = digest(createHash('sha256').update(requestContent(unsigned)).digest());
        const authenticator = crypto.authenticator(requestDigest);
        return {
          ...unsigned,
          authenticator:
            options.badMac === true
              ? authenticator.map((entry) => ({ ...entry, mac: entry.mac.map((byte) => byte ^ 0xff) }))
              : authenticator,
        };
      },
      send: (request) => transport.send(replicaNode(replica.id), encodeMessage(request)),
      repliesTo: (number) => replies.filter((reply) => reply.requestNumber === number),
      close: () => transport.close(),
    };
  }

  async function until(done: () => boolean, what: string): Promise<void> {
    const deadline = Date.now() + 10_000;
    while (!done()) {
      if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  it('answers a retransmitted request from its reply cache without executing it again, and refuses a bad MAC', async () => {
    server = await start(config);
    const client = await rawClient().catch(async (error: unknown) => {
      await server?.close();
      server = null;
      throw error;
    });
    try {
      const first = client.request(1_000, 'once');
      client.send(first);
      await until(() => client.repliesTo(1_000).length === 1, 'the first reply');
      client.send(first);
      await until(() => client.repliesTo(1_000).length === 2, 'the reply to the retransmission');
      const [original, resent] = client.repliesTo(1_000) as [Reply, Reply];
      assert.equal(resent.sequence, original.sequence, 'the cached reply, not a second execution');
      assert.ok(bytesEqual(resent.result, original.result));

      const forged = client.request(1_001, 'forged', { badMac: true });
      client.send(forged);
      await until(() => server!.rejected === 1, 'the refusal');
      // A later good request is served, and the forged one was never executed or answered.
      client.send(client.request(1_002, 'after'));
      await until(() => client.repliesTo(1_002).length === 1, 'the reply after the refusal');
      assert.equal(client.repliesTo(1_001).length, 0);
      assert.equal(client.repliesTo(1_002)[0]!.sequence, original.sequence + 1, 'one execution in between');
    } finally {
      await client.close();
      await server.close();
      server = null;
      rmSync(dataDirectory, { recursive: true, force: true });
    }
  });

  it('answers the real client, and what it acknowledged is durable in its log', async () => {
    server = await start(config);
    const keys = await loadClientKeyFile(clientKeyPath(config, clientId('admin')));
    const kv = new KvClient(await PhalanxClient.connect({ config, client: keys, maxOutstanding: 8 }));
    await Promise.all(
      Array.from({ length: 20 }, (_, index) => kv.put(`key-${index}`, new TextEncoder().encode(`${index}`))),
    );
    assert.equal(new TextDecoder().decode((await kv.get('key-7'))!), '7');
    assert.equal(new TextDecoder().decode((await kv.get('key-7', { ordered: true }))!), '7');
    await kv.client.close();
    assert.equal(server.rejected, 0);
    await server.close();
    server = null;

    const storage = await openStorage({ engine: config.storage.engine, directory: dataDirectory });
    const { restored } = await storage.load();
    await storage.close();
    const logged = (restored?.records ?? []).flatMap((record) =>
      record.kind === 'committed' ? (record.batch ?? []) : [],
    );
    // 20 puts and the ordered get, each once, in sequence order.
    assert.equal(logged.length, 21);
    const sequences = (restored?.records ?? []).map((record) =>
      record.kind === 'committed' ? record.sequence : 0,
    );
    assert.deepEqual(
      sequences,
      [...sequences].sort((a, b) => a - b),
    );
  });
});
