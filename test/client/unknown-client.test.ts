import * as assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PhalanxClient, PhalanxError, UnknownClientError } from '../../src/client/client.js';
import { parseClusterConfig } from '../../src/config/cluster-config.js';
import { clientKeyPath, generateCluster, loadClientKeyFile } from '../../src/config/keys.js';
import { clientId } from '../../src/messages/ids.js';

describe('a client not in the configuration', () => {
  let directory: string;

  before(async () => {
    directory = await mkdtemp(join(tmpdir(), 'phalanx-unknown-client-'));
  });

  after(async () => {
    await rm(directory, { recursive: true, force: true });
  });

  it('is refused by connect with a typed error that names it, before any connection is tried', async () => {
    const { configPath } = await generateCluster({
      directory,
      f: 1,
      k: 0,
      basePort: 7000,
      clients: ['admin', 'nobody'],
    });
    const document = JSON.parse(await readFile(configPath, 'utf8')) as { clients: Record<string, unknown> };
    delete document.clients.nobody;
    const config = parseClusterConfig(document, configPath);
    const keys = await loadClientKeyFile(clientKeyPath(config, clientId('nobody')));
    await assert.rejects(
      PhalanxClient.connect({ config, client: keys, connectTimeoutMs: 100 }),
      (error: unknown) => {
        assert.ok(error instanceof UnknownClientError);
        assert.ok(error instanceof PhalanxError);
        assert.equal(error.code, 'unknown-client');
        assert.equal(error.clientId, 'nobody');
        assert.equal(
          error.message,
          `client nobody is not in the configuration ${configPath} (its clients: admin)`,
        );
        return true;
      },
    );
  });
});
