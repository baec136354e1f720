import * as assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PhalanxClient, PhalanxError } from '../../src/client/client.js';
import { loadClusterConfig } from '../../src/config/cluster-config.js';
import { clientKeyPath, generateCluster, loadClientKeyFile } from '../../src/config/keys.js';
import { clientId, keyEpoch, replicaId, requestNumber } from '../../src/messages/ids.js';
import { encodeMessage } from '../../src/messages/codec.js';
import { LIMITS } from '../../src/messages/limits.js';
import { channelKeyDirectory } from '../../src/transport/key-directory.js';
import { keyRegistryOf } from '../../src/config/keys.js';
import { TcpTransport } from '../../src/transport/tcp.js';
import { clientNode, replicaNode } from '../../src/transport/transport.js';
import { LocalCluster } from '../../src/runtime/local-cluster.js';
import { builtEntryPoint } from './built-code.js';
import { type TestCluster, decode, encode, runCli, startTestCluster, waitFor } from './helpers.js';

describe('authentication, authorisation and hostile input on a real cluster', { timeout: 180_000 }, () => {
  let test: TestCluster;

  before(async () => {
    test = await startTestCluster({ clients: ['admin', 'alice'], keyspaces: { alice: ['alice/'] } });
  });

  after(async () => {
    await test?.stop();
  });

  it('refuses a client whose key the cluster does not know, with a logged reason', async () => {
    // mallory exists in her own copy of the configuration, not in the replicas'.
    const other = await generateCluster({
      directory: join(test.directory, 'mallory'),
      f: 1,
      k: 0,
      basePort: 1,
      clients: ['mallory'],
      benchClients: 0,
    });
    const malloryConfig = await loadClusterConfig(other.configPath);
    const malloryKeys = await loadClientKeyFile(clientKeyPath(malloryConfig, clientId('mallory')));
    const document = JSON.parse(readFileSync(test.config.source, 'utf8')) as {
      clients: Record<string, unknown>;
    };
    const mallorysView = JSON.parse(readFileSync(other.configPath, 'utf8')) as {
      clients: Record<string, unknown>;
    };
    document.clients.mallory = mallorysView.clients.mallory;
    const forged = join(test.directory, 'mallory-view.json');
    writeFileSync(
      forged,
      JSON.stringify({
        ...document,
        dataDirectory: join(test.directory, 'data'),
        keysDirectory: join(test.directory, 'keys'),
      }),
    );
    const config = await loadClusterConfig(forged);
    await assert.rejects(
      PhalanxClient.connect({ config, client: malloryKeys, connectTimeoutMs: 2000 }),
      (error: unknown) => error instanceof PhalanxError && error.code === 'unavailable',
    );
    await waitFor('a logged rejection of mallory', async () =>
      /unknown client mallory/.test(test.log(replicaId(0))),
    );
  });

  it('refuses a replica that presents the wrong key, and keeps serving', async () => {
    // An impostor takes replica 3's place with keys of its own (and a configuration that names
    // them); the genuine replicas know replica 3's real key.
    await test.cluster.kill(replicaId(3), 'SIGKILL');
    const impostor = await generateCluster({
      directory: join(test.directory, 'impostor'),
      f: 1,
      k: 0,
      basePort: 1,
      clients: [],
      benchClients: 0,
    });
    const impostorKeys = JSON.parse(readFileSync(impostor.configPath, 'utf8')) as {
      replicas: { signingKey: string; agreementKey: string }[];
    };
    const document = JSON.parse(readFileSync(test.config.source, 'utf8')) as {
      replicas: { signingKey: string; agreementKey: string }[];
    };
    document.replicas[3]!.signingKey = impostorKeys.replicas[3]!.signingKey;
    document.replicas[3]!.agreementKey = impostorKeys.replicas[3]!.agreementKey;
    const impostorConfig = join(test.directory, 'impostor', 'view.json');
    writeFileSync(
      impostorConfig,
      JSON.stringify({
        ...document,
        dataDirectory: join(test.directory, 'impostor', 'data'),
        keysDirectory: join(test.directory, 'impostor', 'keys'),
      }),
    );
    const impostorCluster = new LocalCluster({
      config: await loadClusterConfig(impostorConfig),
      entryPoint: builtEntryPoint(),
      logDirectory: join(test.directory, 'impostor'),
    });
    await impostorCluster.start(replicaId(3));
    try {
      await waitFor('a logged rejection of the impostor', async () =>
        [0, 1, 2].some((id) =>
          /replica 3 key epoch 0|signature of replica 3|replica 3.*does not verify/.test(
            test.log(replicaId(id)),
          ),
        ),
      );
      const reports = await test.status();
      const three = reports[3];
      assert.ok(
        three?.up === true && three.connectedPeers === 0,
        `the impostor has no peers: ${JSON.stringify(three)}`,
      );
      const kv = await test.kv();
      await kv.put('after-impostor', encode('still fine'));
      assert.equal(decode(await kv.get('after-impostor')), 'still fine');
    } finally {
      await impostorCluster.stopAll();
    }
    await test.cluster.start(replicaId(3));
    await test.cluster.waitUntilReady();
  });

  it('a replica refuses to start with a key file that is not its own', async () => {
    const wrong = join(test.directory, 'impostor', 'keys', 'replica-3.json');
    const output = await runCli(['replica', '--config', test.config.source, '--id', '3', '--keys', wrong]);
    assert.notEqual(output.code, 0);
    assert.match(output.stderr + output.stdout, /not replica 3's keys/);
  });

  it('refuses a client outside its keyspace with a clear error, and allows it inside', async () => {
    const alice = await test.kv('alice');
    await alice.put('alice/notes', encode('mine'));
    assert.equal(decode(await alice.get('alice/notes')), 'mine');
    await assert.rejects(alice.put('bob/notes', encode('not mine')), (error: unknown) => {
      assert.ok(error instanceof PhalanxError);
      assert.equal(error.code, 'rejected');
      assert.match(error.message, /access denied: client alice may not access "bob\/notes"/);
      return true;
    });
    await assert.rejects(alice.list('b'), /access denied/);
  });

  it('rejects malformed frames and oversized messages without crashing anything', async () => {
    const replica = test.config.replicas[1]!;
    // 1. Unauthenticated garbage on the payload port.
    await new Promise<void>((resolve) => {
      const socket = connect(replica.port, replica.host, () => {
        socket.write(Buffer.from([0, 0, 0, 5, 1, 2, 3, 4, 5, 0xff, 0xff, 0xff, 0xff, 9, 9, 9]));
      });
      socket.on('close', () => resolve());
      socket.on('error', () => resolve());
      setTimeout(() => socket.destroy(), 2000);
    });
    // 2. An authenticated client sending bytes that are no message, and a request whose operation
    // is larger than maxOperationBytes (the frame itself is within the transport's limit).
    const config = test.config;
    const keys = await loadClientKeyFile(clientKeyPath(config, clientId('admin')));
    const transport = await TcpTransport.start({
      identity: {
        node: clientNode(clientId('admin')),
        keyEpoch: keyEpoch(0),
        signingKeys: keys.keys.signing!,
      },
      peers: [{ node: replicaNode(replica.id), host: replica.host, port: replica.port }],
      keys: channelKeyDirectory(keyRegistryOf(config)),
      events: { onFrame: () => {} },
    });
    try {
      await waitFor('the raw client to connect', async () => transport.connectedPeers().length === 1);
      const garbage = Uint8Array.of(0x10, 0xff, 0xff, 0xff, 0xff, 0x0f);
      transport.send(replicaNode(replica.id), garbage);
      const oversized = encodeMessage({
        kind: 'request',
        clientId: clientId('admin'),
        requestNumber: requestNumber(1),
        readOnly: false,
        operation: new Uint8Array(LIMITS.maxOperationBytes + 1),
        authenticator: [],
        signature: null,
      });
      transport.send(replicaNode(replica.id), oversized);
      let sentAt = Date.now();
      await waitFor('the replica to log both rejections', async () => {
        const log = test.log(replica.id);
        if (/rejected frame/.test(log) && /maxOperationBytes/.test(log)) return true;
        // A frame sent while the session was still settling may be lost with a reconnect:
        // send both again now and then (each is rejected alone, so repeats are harmless).
        if (Date.now() - sentAt > 3000) {
          transport.send(replicaNode(replica.id), garbage);
          transport.send(replicaNode(replica.id), oversized);
          sentAt = Date.now();
        }
        return false;
      });
    } finally {
      // A transport left open keeps reconnecting, and the test process would never exit.
      await transport.close();
    }
    // Everything still works, and the replica that got the garbage is still up.
    const reports = await test.status();
    assert.ok(reports[replica.id]?.up === true, JSON.stringify(reports));
    const kv = await test.kv();
    await kv.put('after-garbage', encode('ok'));
    assert.equal(decode(await kv.get('after-garbage')), 'ok');
  });
});
