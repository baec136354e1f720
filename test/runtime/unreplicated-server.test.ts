/**
 * The unreplicated server (the benchmark's ceiling) on real TCP and a real disk, with the real
 * client: it answers with one reply as the quorum of a one-replica configuration, and every write
 * it acknowledged is in its log, durable, as a committed batch.
 */
import * as assert from 'node:assert/strict';
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
  generateCluster,
  loadClientKeyFile,
  loadReplicaKeyFile,
  replicaKeyPath,
} from '../../src/config/keys.js';
import { clientId, replicaId } from '../../src/messages/ids.js';
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
