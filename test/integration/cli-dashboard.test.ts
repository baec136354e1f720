import * as assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium } from 'playwright-core';
import { freePortRange } from '../../src/cli/bench.js';
import { startDashboard } from '../../src/cli/up.js';
import { loadClusterConfig } from '../../src/config/cluster-config.js';
import type { DashboardServer } from '../../src/dashboard/server.js';
import { LocalCluster, cliEntryPoint } from '../../src/runtime/local-cluster.js';
import { runCli } from './helpers.js';

const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

describe('the phalanx command and the dashboard on a real cluster', { timeout: 180_000 }, () => {
  let directory: string;
  let configPath: string;
  let cluster: LocalCluster;
  let dashboard: DashboardServer | null = null;

  before(async () => {
    directory = mkdtempSync(join(tmpdir(), 'phalanx-cli-'));
    const basePort = await freePortRange(209);
    const keygen = await runCli([
      'keygen',
      '--dir',
      directory,
      '--base-port',
      String(basePort),
      '--bench-clients',
      '0',
      '--dashboard-port',
      '0',
    ]);
    assert.equal(keygen.code, 0, keygen.stderr);
    configPath = join(directory, 'cluster.json');
    cluster = new LocalCluster({ config: await loadClusterConfig(configPath), entryPoint: cliEntryPoint() });
    await cluster.startAll();
    await cluster.waitUntilReady();
  });

  after(async () => {
    await dashboard?.close();
    await cluster?.stopAll();
    rmSync(directory, { recursive: true, force: true });
  });

  it('keygen writes the public configuration and private key files readable by the owner only', () => {
    assert.ok(existsSync(configPath));
    for (const name of ['replica-0.json', 'replica-3.json', 'client-admin.json']) {
      const mode = statSync(join(directory, 'keys', name)).mode & 0o777;
      assert.equal(mode, 0o600, `${name} has mode ${mode.toString(8)}`);
    }
  });

  it('kv put, get, list and del work from the command line', async () => {
    const put = await runCli(['kv', 'put', '--config', configPath, 'a', '1']);
    assert.equal(put.code, 0, put.stderr);
    assert.match(put.stdout, /^OK/);
    const get = await runCli(['kv', 'get', '--config', configPath, 'a']);
    assert.equal(get.code, 0, get.stderr);
    assert.equal(get.stdout, '1\n');
    const list = await runCli(['kv', 'list', '--config', configPath]);
    assert.equal(list.stdout, 'a\t1\n');
    const del = await runCli(['kv', 'del', '--config', configPath, 'a']);
    assert.match(del.stdout, /deleted/);
    const missing = await runCli(['kv', 'get', '--config', configPath, 'a']);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /no value for a/);
  });

  it('status shows every replica with its role', async () => {
    const status = await runCli(['status', '--config', configPath]);
    assert.equal(status.code, 0, status.stderr);
    assert.equal((status.stdout.match(/\b(leader|backup)\b/g) ?? []).length, 4);
  });

  it('explains every problem of a bad configuration, field by field', async () => {
    const bad = join(directory, 'bad.json');
    writeFileSync(
      bad,
      JSON.stringify({
        f: 1,
        replicas: [{ id: 0, host: '127.0.0.1', port: 'seven', adminPort: 7100 }],
        clients: { 'bad name': {} },
        colour: 'red',
        storage: { engine: 'file', compression: true },
        dashboard: { theme: 'dark' },
      }),
    );
    const result = await runCli(['status', '--config', bad]);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /replicas\[0\]\.port: must be an integer from 1 to 65535, got "seven"/);
    assert.match(result.stderr, /replicas\[0\]\.signingKey: must be a base64 32-byte public key/);
    assert.match(result.stderr, /n must be at least 3f \+ 2k \+ 1 = 4/);
    assert.match(result.stderr, /colour: unknown field/);
    assert.match(result.stderr, /storage\.compression: unknown field/);
    assert.match(result.stderr, /dashboard\.theme: unknown field/);
    assert.match(result.stderr, /clients\.bad name: client ids use/);
  });

  it('the dashboard shows the 4 replicas of the running cluster in a real browser', async () => {
    assert.ok(
      existsSync(CHROMIUM_PATH),
      `Chromium not found at ${CHROMIUM_PATH}: apt-get install -y chromium`,
    );
    dashboard = await startDashboard(cluster.config, 0);
    const browser = await chromium.launch({
      executablePath: CHROMIUM_PATH,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    try {
      const page = await browser.newPage();
      const errors: string[] = [];
      page.on('console', (message) => {
        if (message.type() === 'error') errors.push(message.text());
      });
      await page.goto(dashboard.url);
      for (let id = 0; id < 4; id++) await page.getByTestId(`replica-row-${id}`).waitFor({ timeout: 10_000 });
      const deadline = Date.now() + 10_000;
      let roles: string[] = [];
      while (Date.now() < deadline) {
        roles = await Promise.all(
          [0, 1, 2, 3].map(async (id) => (await page.getByTestId(`replica-role-${id}`).textContent()) ?? ''),
        );
        if (roles.filter((role) => /leader/.test(role)).length === 1) break;
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      assert.equal(roles.filter((role) => /leader/.test(role)).length, 1, `roles: ${roles}`);
      assert.equal(roles.filter((role) => /backup/.test(role)).length, 3, `roles: ${roles}`);
      assert.deepEqual(errors, []);
    } finally {
      await browser.close();
    }
  });
});
