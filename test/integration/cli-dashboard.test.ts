import * as assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium } from 'playwright-core';
import { freePortRange } from '../../src/cli/bench.js';
import { STATUS_EXIT_CODES } from '../../src/cli/status.js';
import { startDashboard } from '../../src/cli/up.js';
import { loadClusterConfig } from '../../src/config/cluster-config.js';
import { generateCluster } from '../../src/config/keys.js';
import type { DashboardServer } from '../../src/dashboard/server.js';
import type { GuardianReport } from '../../src/runtime/guardian-report.js';
import type { ClusterHealth } from '../../src/runtime/health.js';
import { replicaId } from '../../src/messages/ids.js';
import { LocalCluster } from '../../src/runtime/local-cluster.js';
import { builtEntryPoint } from './built-code.js';
import type { ReplicaReport } from '../../src/runtime/status.js';
import {
  type FakeGuardian,
  type FakeReplica,
  sampleGuardianStatus,
  startFakeGuardians,
  startFakeReplicas,
} from '../dashboard/fake-replicas.js';
import { runCli } from './helpers.js';

const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
/** Screenshots for a person to look at (ignored by git), as the dashboard tests leave theirs. */
const SCREENSHOT_DIR = join(process.cwd(), 'test-output', 'dashboard');

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
    cluster = new LocalCluster({
      config: await loadClusterConfig(configPath),
      entryPoint: builtEntryPoint(),
    });
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
    assert.equal(get.stdout, '1', 'to a pipe, get writes the exact bytes, no newline');
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
    assert.match(status.stdout, /^cluster: healthy$/m, status.stdout);
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

      // f + 1 = 2 replica processes frozen (SIGSTOP by their pids): they still hold their ports but
      // answer nothing, so no quorum orders anything. The verdict says stalled, whatever the
      // processes' state; it turns back once they run again (SIGCONT).
      const verdict = async (): Promise<string> =>
        (await page.getByTestId('cluster-verdict').getAttribute('data-verdict')) ?? '';
      const waitForVerdict = async (expected: string, limitMs: number): Promise<void> => {
        const until = Date.now() + limitMs;
        while ((await verdict()) !== expected) {
          assert.ok(Date.now() < until, `the verdict is ${await verdict()}, not ${expected}`);
          await new Promise((resolve) => setTimeout(resolve, 200));
        }
      };
      await waitForVerdict('healthy', 20_000);
      const frozen = [2, 3].map((id) => {
        const pid = cluster.pid(replicaId(id));
        assert.ok(pid !== undefined, `replica ${id} runs`);
        return pid;
      });
      try {
        for (const pid of frozen) process.kill(pid, 'SIGSTOP');
        await waitForVerdict('stalled', 20_000);
        assert.match(
          (await page.getByTestId('verdict-summary').textContent()) ?? '',
          /^only 2 of 4 replicas are up and voting; a quorum needs 3$/,
        );
        mkdirSync(SCREENSHOT_DIR, { recursive: true });
        await page.screenshot({ path: join(SCREENSHOT_DIR, 'real-cluster-stalled.png'), fullPage: true });
        console.log(`dashboard screenshot: ${join(SCREENSHOT_DIR, 'real-cluster-stalled.png')}`);
      } finally {
        for (const pid of frozen) process.kill(pid, 'SIGCONT');
      }
      await waitForVerdict('healthy', 60_000);
      await page.screenshot({ path: join(SCREENSHOT_DIR, 'real-cluster-resumed.png'), fullPage: true });
      console.log(`dashboard screenshot: ${join(SCREENSHOT_DIR, 'real-cluster-resumed.png')}`);
      assert.deepEqual(errors, []);
    } finally {
      await browser.close();
    }
  });
});

describe(
  'phalanx status: the verdict and the exit status, against fake admin endpoints',
  { timeout: 120_000 },
  () => {
    const n = 6;
    let directory: string;
    let configPath: string;
    let replicas: FakeReplica[];
    let guardians: FakeGuardian[];

    before(async () => {
      directory = mkdtempSync(join(tmpdir(), 'phalanx-status-'));
      [replicas, guardians] = await Promise.all([startFakeReplicas(n), startFakeGuardians(n)]);
      // Nothing listens on the payload and control ports: only the admin ports are asked, and
      // those are rewritten to the fakes'.
      const basePort = await freePortRange(301 + n);
      ({ configPath } = await generateCluster({
        directory,
        f: 1,
        k: 1,
        basePort,
        clients: ['admin'],
        recovery: { recoveryBoundMs: 8000 },
      }));
      const document = JSON.parse(readFileSync(configPath, 'utf8')) as {
        replicas: { adminPort: number; guardianAdminPort: number }[];
      };
      document.replicas.forEach((replica, id) => {
        replica.adminPort = Number(new URL(replicas[id]!.url).port);
        replica.guardianAdminPort = Number(new URL(guardians[id]!.url).port);
      });
      writeFileSync(configPath, JSON.stringify(document));
    });

    after(async () => {
      await Promise.all([...(replicas ?? []), ...(guardians ?? [])].map((fake) => fake.stop()));
      rmSync(directory, { recursive: true, force: true });
    });

    it('exits 0 and says healthy when every replica progresses, 2 on a usage error', async () => {
      const status = await runCli(['status', '--config', configPath]);
      assert.equal(status.code, STATUS_EXIT_CODES.healthy, status.stdout + status.stderr);
      assert.equal((status.stdout.match(/\b(leader|backup)\b/g) ?? []).length, n);
      assert.match(status.stdout, /\ncluster: healthy\n$/);
      const usage = await runCli(['status', '--config', configPath, '--verbose']);
      assert.equal(usage.code, STATUS_EXIT_CODES.usage, 'a usage error is not "a replica is down"');
      assert.match(usage.stderr, /unknown option '--verbose'/);
    });

    it('shows a replica its guardian is rejuvenating with the step, epoch, T_D and T, and exits 1', async () => {
      const startedAtMs = Date.now() - 1_200;
      replicas[2]!.behaviour = 'server-error';
      guardians[2]!.update({
        keyEpoch: 5,
        replicaProcess: 'stopped',
        recovery: {
          inProgress: true,
          kind: 'proactive',
          reason: 'scheduled',
          step: 'validating-state',
          startedAtMs,
          stepStartedAtMs: startedAtMs + 900,
        },
      });
      const status = await runCli(['status', '--config', configPath]);
      assert.equal(status.code, STATUS_EXIT_CODES.unhealthy, status.stdout + status.stderr);
      assert.match(
        status.stdout,
        /^2 +rejuvenating \(step validating-state \([\d.]+ s\), key epoch 5, [\d.]+ s of T_D = 8 s; exposure 49 s of T = 64 s\)$/m,
      );
      assert.doesNotMatch(status.stdout, /DOWN/);
      assert.match(
        status.stdout,
        /\ncluster: degraded\n {2}replica 2 is being rejuvenated \(proactive, step validating-state, key epoch 5\)\n$/,
      );
    });

    it('exits 1 when a replica is down and no guardian rejuvenates it, and says why', async () => {
      replicas[3]!.behaviour = 'wrong-shape';
      const status = await runCli(['status', '--config', configPath]);
      assert.equal(status.code, STATUS_EXIT_CODES.unhealthy, status.stdout + status.stderr);
      assert.match(
        status.stdout,
        /^3 +DOWN +invalid status: field 'view' must be a non-negative integer, got "seven"$/m,
      );
      assert.match(
        status.stdout,
        /\ncluster: degraded\n {2}replica 3 is down\n {2}replica 2 is being rejuvenated/,
      );
    });

    it('exits 1 when requests wait and nothing executes, with the verdict in --json too', async () => {
      for (const replica of [0, 1, 4, 5])
        replicas[replica]!.update({
          pendingRequests: 40,
          oldestPendingMs: 60_000,
          msSinceLastExecution: 50_000,
          throughputPerSecond: 0,
          viewChangeInProgress: true,
        });
      const text = await runCli(['status', '--config', configPath]);
      assert.equal(text.code, STATUS_EXIT_CODES.unhealthy, text.stdout + text.stderr);
      assert.match(text.stdout, /^0 +leader .* 40 \(60 s\) +view change$/m);
      assert.match(
        text.stdout,
        /\ncluster: stalled\n {2}no batch executed for 50 s while 40 requests wait \(the oldest for 60 s\)\n/,
      );

      const json = await runCli(['status', '--config', configPath, '--json']);
      assert.equal(json.code, STATUS_EXIT_CODES.unhealthy, json.stderr);
      const report = JSON.parse(json.stdout) as {
        n: number;
        f: number;
        k: number;
        replicas: ReplicaReport[];
        guardians: GuardianReport[];
        health: ClusterHealth;
      };
      assert.deepEqual([report.n, report.f, report.k], [6, 1, 1]);
      assert.deepEqual(
        report.replicas.map((replica) => replica.up),
        [true, true, false, false, true, true],
      );
      assert.equal(report.guardians.length, n);
      assert.equal(report.health.verdict, 'stalled');
      assert.deepEqual(report.health.reasons, [
        'no batch executed for 50 s while 40 requests wait (the oldest for 60 s)',
        'replicas 0, 1, 4 and 5 are in a view change',
        'replica 3 is down',
        'replica 2 is being rejuvenated (proactive, step validating-state, key epoch 5)',
      ]);
      assert.equal(report.health.replicas[2]!.condition, 'rejuvenating');

      // Back to progressing, the rejuvenation over and replica 3 answering: healthy and 0 again.
      for (const [replica, fake] of replicas.entries()) {
        fake.behaviour = 'healthy';
        fake.update({ oldestPendingMs: 12, msSinceLastExecution: 4, viewChangeInProgress: false, replica });
      }
      guardians[2]!.update({ ...sampleGuardianStatus(2, Date.now()), keyEpoch: 5 });
      const healthy = await runCli(['status', '--config', configPath]);
      assert.equal(healthy.code, STATUS_EXIT_CODES.healthy, healthy.stdout);
      assert.match(healthy.stdout, /\ncluster: healthy\n$/);
    });
  },
);
