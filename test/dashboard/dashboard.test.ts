import { strict as assert } from 'node:assert';
import { Buffer } from 'node:buffer';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { get, type IncomingMessage, request } from 'node:http';
import { after, describe, it } from 'node:test';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';
import {
  type ClientLatency,
  DASHBOARD_LIMITS,
  type DashboardClusterStatus,
  type DashboardHistoryJson,
  type DashboardLogJson,
  HISTORY_LIMITS,
  DashboardServer,
  GUARDIAN_STATUS_LIMITS,
  parseGuardianStatus,
  parseReplicaStatus,
} from '../../src/dashboard/index.js';
import type { GuardianReport, GuardianStatus } from '../../src/runtime/guardian-report.js';
import { STALL_AFTER_REQUEST_TIMEOUTS } from '../../src/runtime/health.js';
import type { ReplicaReport } from '../../src/runtime/status.js';
import {
  type FakeGuardian,
  type FakeReplica,
  resumeProgress,
  SAMPLE_RECOVERY,
  sampleGuardianStatus,
  sampleReplicaStatus,
  startFakeGuardians,
  startFakeReplicas,
  stopProgress,
} from './fake-replicas.js';

// ───────────────────────────── helpers ─────────────────────────────

const CLUSTER = { n: 4, f: 1, k: 0 } as const;
/** With guardians: k = 1 replica may be recovering at once, so n = 3f + 2k + 1 = 6. */
const GUARDED_CLUSTER = { n: 6, f: 1, k: 1 } as const;
/** Fast polling keeps the test short; the timeout is short so a hanging fake shows up quickly. */
const POLL_INTERVAL_MS = 100;
const FETCH_TIMEOUT_MS = 300;
const WAIT_LIMIT_MS = 5000;
/** A short request timeout, so fakes that stop progressing look stalled after a fraction of a second. */
const SHORT_REQUEST_TIMEOUT_MS = 100;

const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
// Without the background-networking flags Chromium keeps dialling out, which this machine refuses.
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  // Containers often give /dev/shm only 64 MB; Chromium's renderer then dies mid-test
  // ("Target page, context or browser has been closed"). /tmp has room.
  '--disable-dev-shm-usage',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

interface TestCluster {
  readonly fakes: FakeReplica[];
  readonly dashboard: DashboardServer;
  close(): Promise<void>;
}

interface GuardedTestCluster extends TestCluster {
  readonly guardians: FakeGuardian[];
}

/** Where the browser tests leave a screenshot of each state for a person to look at (git ignores it). */
const SCREENSHOT_DIR = join(process.cwd(), 'test-output', 'dashboard');

/** Six fake replicas, their six fake guardians, and a dashboard told the recovery timing. */
async function startGuardedTestCluster(
  options: {
    historySampleIntervalMs?: number;
    requestTimeoutMs?: number;
    clientLatency?: () => ClientLatency | null;
  } = {},
): Promise<GuardedTestCluster> {
  const [fakes, guardians] = await Promise.all([
    startFakeReplicas(GUARDED_CLUSTER.n),
    startFakeGuardians(GUARDED_CLUSTER.n),
  ]);
  const dashboard = await DashboardServer.start({
    cluster: GUARDED_CLUSTER,
    replicaAdminUrls: fakes.map((fake) => fake.url),
    guardianAdminUrls: guardians.map((guardian) => guardian.url),
    recovery: SAMPLE_RECOVERY,
    pollIntervalMs: POLL_INTERVAL_MS,
    fetchTimeoutMs: FETCH_TIMEOUT_MS,
    ...options,
  });
  return {
    fakes,
    guardians,
    dashboard,
    async close() {
      await dashboard.close();
      await Promise.all([...fakes, ...guardians].map((fake) => fake.stop()));
    },
  };
}

async function startTestCluster(
  options: { maxEventClients?: number; requestTimeoutMs?: number; historySampleIntervalMs?: number } = {},
): Promise<TestCluster> {
  const fakes = await startFakeReplicas(CLUSTER.n);
  const dashboard = await DashboardServer.start({
    cluster: CLUSTER,
    replicaAdminUrls: fakes.map((fake) => fake.url),
    pollIntervalMs: POLL_INTERVAL_MS,
    fetchTimeoutMs: FETCH_TIMEOUT_MS,
    ...options,
  });
  return {
    fakes,
    dashboard,
    async close() {
      await dashboard.close();
      await Promise.all(fakes.map((fake) => fake.stop()));
    },
  };
}

interface HttpAnswer {
  readonly status: number;
  readonly headers: IncomingMessage['headers'];
  readonly body: string;
}

/** A raw request, so the test controls the method and the Host header (fetch forbids setting Host). */
function httpRequest(url: string, options: { method?: string; host?: string } = {}): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const headers = options.host === undefined ? {} : { host: options.host };
    const pending = request(url, { method: options.method ?? 'GET', headers, agent: false }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () =>
        resolve({
          status: response.statusCode ?? 0,
          headers: response.headers,
          body: Buffer.concat(chunks).toString('utf8'),
        }),
      );
      response.on('error', reject);
    });
    pending.on('error', reject);
    pending.end();
  });
}

async function fetchCluster(dashboard: DashboardServer): Promise<DashboardClusterStatus> {
  const answer = await httpRequest(new URL('api/cluster', dashboard.url).href);
  assert.equal(answer.status, 200, answer.body);
  assert.match(answer.headers['content-type'] ?? '', /^application\/json/);
  return JSON.parse(answer.body) as DashboardClusterStatus;
}

async function waitUntil(condition: () => Promise<boolean> | boolean, what: string): Promise<void> {
  const deadline = Date.now() + WAIT_LIMIT_MS;
  while (!(await condition())) {
    if (Date.now() > deadline) assert.fail(`timed out after ${WAIT_LIMIT_MS} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** Polls /api/cluster until `replica`'s report satisfies `accept`, and returns that report. */
async function waitForReport(
  dashboard: DashboardServer,
  replica: number,
  accept: (report: ReplicaReport) => boolean,
  what: string,
): Promise<ReplicaReport> {
  let found: ReplicaReport | undefined;
  await waitUntil(async () => {
    const report = (await fetchCluster(dashboard)).replicas[replica];
    if (report !== undefined && accept(report)) found = report;
    return found !== undefined;
  }, `replica ${replica}: ${what}`);
  return found!;
}

/** Polls /api/cluster until the guardian of `replica` reports something `accept`s. */
async function waitForGuardianReport(
  dashboard: DashboardServer,
  replica: number,
  accept: (report: GuardianReport) => boolean,
  what: string,
): Promise<GuardianReport> {
  let found: GuardianReport | undefined;
  await waitUntil(async () => {
    const report = (await fetchCluster(dashboard)).guardians?.[replica];
    if (report !== undefined && accept(report)) found = report;
    return found !== undefined;
  }, `guardian ${replica}: ${what}`);
  return found!;
}

function errorOf(report: ReplicaReport | GuardianReport): string {
  assert.equal(report.up, false, `replica ${report.replica} should be down`);
  return report.up ? '' : report.error;
}

/** Opens /api/events and collects the first `count` events. */
function readEvents(dashboard: DashboardServer, count: number): Promise<DashboardClusterStatus[]> {
  return new Promise((resolve, reject) => {
    const events: DashboardClusterStatus[] = [];
    const subscription = get(new URL('api/events', dashboard.url), { agent: false }, (response) => {
      assert.equal(response.statusCode, 200);
      assert.match(response.headers['content-type'] ?? '', /^text\/event-stream/);
      let buffered = '';
      response.setEncoding('utf8');
      response.on('data', (text: string) => {
        buffered += text;
        let boundary = buffered.indexOf('\n\n');
        while (boundary >= 0) {
          const frame = buffered.slice(0, boundary);
          buffered = buffered.slice(boundary + 2);
          const data = frame
            .split('\n')
            .filter((line) => line.startsWith('data: '))
            .map((line) => line.slice('data: '.length))
            .join('\n');
          if (data !== '') events.push(JSON.parse(data) as DashboardClusterStatus);
          if (events.length === count) {
            subscription.destroy();
            resolve(events);
            return;
          }
          boundary = buffered.indexOf('\n\n');
        }
      });
    });
    subscription.on('error', (error) => {
      if (events.length < count) reject(error);
    });
  });
}

// ───────────────────────────── server ─────────────────────────────

describe('dashboard server', { timeout: 30_000 }, () => {
  it('reports every replica with the fields it sent', async () => {
    const cluster = await startTestCluster();
    try {
      const status = await fetchCluster(cluster.dashboard);
      assert.equal(status.n, 4);
      assert.equal(status.f, 1);
      assert.equal(status.k, 0);
      assert.ok(Math.abs(Date.now() - status.collectedAt) < 10_000, 'collectedAt is a recent epoch time');
      assert.equal(status.replicas.length, 4);
      status.replicas.forEach((report, replica) => {
        // The executed-request counter grows at the fake's rate (fake-replicas.ts); the rest is as sent.
        assert.ok(report.up);
        const sample = sampleReplicaStatus(replica);
        assert.ok(report.requestsExecuted >= sample.requestsExecuted, 'the counter only grows');
        assert.deepEqual({ ...report, requestsExecuted: sample.requestsExecuted }, { up: true, ...sample });
      });
      assert.equal('guardians' in status, false, 'no guardians configured, none reported');
      assert.equal('recovery' in status, false, 'no recovery timing configured, none reported');

      cluster.fakes[2]!.update({ lastExecuted: 4321, view: 3 });
      const updated = await waitForReport(
        cluster.dashboard,
        2,
        (report) => report.up && report.lastExecuted === 4321,
        'new lastExecuted',
      );
      assert.equal(updated.up && updated.view, 3);
    } finally {
      await cluster.close();
    }
  });

  it('reports a replica that stops answering as down, and up again when it recovers', async () => {
    const cluster = await startTestCluster();
    try {
      const [, hanging, , refusing] = cluster.fakes;
      hanging!.behaviour = 'hang';
      await refusing!.stop();
      const hung = await waitForReport(cluster.dashboard, 1, (report) => !report.up, 'down while hanging');
      assert.match(errorOf(hung), new RegExp(`no answer within ${FETCH_TIMEOUT_MS} ms`));
      const refused = await waitForReport(cluster.dashboard, 3, (report) => !report.up, 'down when stopped');
      assert.match(errorOf(refused), /connection refused/);

      const status = await fetchCluster(cluster.dashboard);
      assert.equal(status.replicas[0]!.up, true, 'the others stay up');
      assert.equal(status.replicas[2]!.up, true, 'the others stay up');

      hanging!.behaviour = 'healthy';
      await waitForReport(cluster.dashboard, 1, (report) => report.up, 'up again');
    } finally {
      await cluster.close();
    }
  });

  it('reports malformed, ill-typed, oversized and failed answers as down with the reason', async () => {
    const cluster = await startTestCluster();
    try {
      const limit = DASHBOARD_LIMITS.maxStatusBodyBytes;
      const cases = [
        ['malformed', /^invalid JSON: /],
        ['wrong-shape', /^invalid status: field 'view' must be a non-negative integer, got "seven"$/],
        ['oversized', new RegExp(`^status body of \\d+ bytes exceeds the ${limit}-byte limit$`)],
        ['oversized-chunked', new RegExp(`^status body exceeds the ${limit}-byte limit$`)],
      ] as const;
      for (const [behaviour, expected] of cases) {
        const replica = cases.findIndex(([name]) => name === behaviour);
        cluster.fakes[replica]!.behaviour = behaviour;
        const report = await waitForReport(cluster.dashboard, replica, (r) => !r.up, behaviour);
        assert.match(errorOf(report), expected, behaviour);
      }
      cluster.fakes[0]!.behaviour = 'server-error';
      await waitForReport(
        cluster.dashboard,
        0,
        (report) => !report.up && /^HTTP 500 from http:\/\/127\.0\.0\.1:\d+\/status$/.test(report.error),
        'HTTP 500',
      );

      // The dashboard itself is unharmed and recovers with the replicas.
      const page = await httpRequest(cluster.dashboard.url);
      assert.equal(page.status, 200);
      for (const fake of cluster.fakes) fake.behaviour = 'healthy';
      await waitUntil(
        async () => (await fetchCluster(cluster.dashboard)).replicas.every((report) => report.up),
        'every replica up again',
      );
    } finally {
      await cluster.close();
    }
  });

  it('reports a replica that answers under another id as down', async () => {
    const cluster = await startTestCluster();
    try {
      cluster.fakes[1]!.update({ replica: 2 });
      const report = await waitForReport(cluster.dashboard, 1, (r) => !r.up, 'id mismatch');
      assert.match(errorOf(report), /answered as replica 2, but this URL is configured for replica 1/);
    } finally {
      await cluster.close();
    }
  });

  it('serves the page, JSON and events on GET only, and nothing else', async () => {
    const cluster = await startTestCluster({ maxEventClients: 2 });
    try {
      const { dashboard } = cluster;
      assert.match(dashboard.url, /^http:\/\/127\.0\.0\.1:\d+\/$/);

      const page = await httpRequest(dashboard.url);
      assert.equal(page.status, 200);
      assert.match(page.headers['content-type'] ?? '', /^text\/html/);
      assert.match(
        String(page.headers['content-security-policy']),
        /default-src 'none'; script-src 'sha256-/,
      );
      assert.match(page.body, /data-testid="replica-row-3"/);
      assert.doesNotMatch(page.body, /data-testid="replica-row-4"/);
      assert.doesNotMatch(page.body, /https?:\/\/(?!www\.w3\.org\/2000\/svg)/, 'no external resources');

      assert.equal((await httpRequest(new URL('nope', dashboard.url).href)).status, 404);
      assert.equal((await httpRequest(new URL('api/cluster/', dashboard.url).href)).status, 404);
      const post = await httpRequest(new URL('api/cluster', dashboard.url).href, { method: 'POST' });
      assert.equal(post.status, 405);
      assert.equal(post.headers.allow, 'GET, HEAD');
      assert.equal(
        (await httpRequest(dashboard.url, { host: 'attacker.example:80' })).status,
        403,
        'a foreign Host header on a loopback dashboard is DNS rebinding',
      );
      assert.equal((await httpRequest(dashboard.url, { host: 'localhost:1234' })).status, 200);

      const events = await readEvents(dashboard, 3);
      assert.equal(events.length, 3);
      for (const event of events) assert.equal(event.replicas.length, 4);
      assert.ok(events[2]!.collectedAt > events[0]!.collectedAt, 'each poll round is pushed');

      // Two subscribers fill the limit of 2; the third is refused until one leaves.
      const held = [await openEventStream(dashboard), await openEventStream(dashboard)];
      const refused = await httpRequest(new URL('api/events', dashboard.url).href);
      assert.equal(refused.status, 503);
      assert.match(refused.body, /too many event subscribers \(limit 2\)/);
      for (const response of held) response.destroy();
      await waitUntil(
        async () => (await openEventStream(dashboard).then(closeStream)) === 200,
        'a free slot',
      );
    } finally {
      await cluster.close();
    }
  });

  it('publishes the verdict: stalled while requests wait and nothing executes, healthy again after', async () => {
    const cluster = await startTestCluster({ requestTimeoutMs: SHORT_REQUEST_TIMEOUT_MS });
    try {
      const first = await fetchCluster(cluster.dashboard);
      assert.equal(first.health.verdict, 'healthy');
      assert.deepEqual(first.health.reasons, []);
      assert.equal(first.health.quorum, 3);
      assert.equal(first.health.stallAfterMs, STALL_AFTER_REQUEST_TIMEOUTS * SHORT_REQUEST_TIMEOUT_MS);

      // Every replica still answers and votes; only the figures on progress give the stall away.
      for (const fake of cluster.fakes) stopProgress(fake);
      cluster.fakes[1]!.update({ viewChangeInProgress: true });
      let stalled: DashboardClusterStatus | undefined;
      await waitUntil(async () => {
        const status = await fetchCluster(cluster.dashboard);
        if (status.health.verdict === 'stalled') stalled = status;
        return stalled !== undefined;
      }, 'the stalled verdict');
      assert.ok(stalled!.replicas.every((report) => report.up));
      assert.match(
        stalled!.health.reasons[0]!,
        /^no batch executed for [\d.]+ s while 40 requests wait \(the oldest for [\d.]+ s\)$/,
      );
      assert.equal(stalled!.health.reasons[1], 'replica 1 is in a view change');

      for (const fake of cluster.fakes) resumeProgress(fake);
      cluster.fakes[1]!.update({ viewChangeInProgress: false });
      await waitUntil(
        async () => (await fetchCluster(cluster.dashboard)).health.verdict === 'healthy',
        'healthy again',
      );

      await cluster.fakes[3]!.stop();
      const degraded = await waitForReport(cluster.dashboard, 3, (report) => !report.up, 'down');
      assert.equal(degraded.up, false);
      const status = await fetchCluster(cluster.dashboard);
      assert.equal(status.health.verdict, 'degraded');
      assert.deepEqual(status.health.reasons, ['replica 3 is down']);
    } finally {
      await cluster.close();
    }
  });

  it('refuses bad options', async () => {
    const urls = ['http://127.0.0.1:1', 'http://127.0.0.1:2', 'http://127.0.0.1:3', 'http://127.0.0.1:4'];
    await assert.rejects(
      DashboardServer.start({ cluster: CLUSTER, replicaAdminUrls: urls.slice(0, 3) }),
      /replicaAdminUrls has 3 entries, but n = 4/,
    );
    await assert.rejects(
      DashboardServer.start({ cluster: CLUSTER, replicaAdminUrls: [...urls.slice(0, 3), 'https://x:1'] }),
      /replicaAdminUrls\[3\] must be an http:\/\/ URL/,
    );
    await assert.rejects(
      DashboardServer.start({ cluster: { n: 3, f: 1, k: 0 }, replicaAdminUrls: urls.slice(0, 3) }),
      /invalid cluster: n = 3 is too small/,
    );
    await assert.rejects(
      DashboardServer.start({ cluster: CLUSTER, replicaAdminUrls: urls, requestTimeoutMs: 0 }),
      /requestTimeoutMs must be an integer ≥ 1, got 0/,
    );
  });

  it('leaves no timers or sockets behind after close()', async () => {
    const before = countActiveResources();
    const cluster = await startTestCluster();
    const stream = await openEventStream(cluster.dashboard);
    cluster.fakes[1]!.behaviour = 'hang';
    await new Promise((resolve) => setTimeout(resolve, 2 * POLL_INTERVAL_MS));
    await cluster.close();
    stream.destroy();
    await waitUntil(() => {
      const now = countActiveResources();
      return now.timers <= before.timers && now.sockets <= before.sockets;
    }, 'timers and sockets released');
  });

  it('parseReplicaStatus keeps only the known fields and rejects bad values', () => {
    const status = sampleReplicaStatus(1);
    const parsed = parseReplicaStatus({ ...status, injected: '<script>' }, 1);
    assert.deepEqual(parsed, { ok: true, status });
    assert.deepEqual(parseReplicaStatus([]), {
      ok: false,
      reason: 'status must be a JSON object, got an array',
    });
    const rejects = (changes: Record<string, unknown>, reason: RegExp): void => {
      const result = parseReplicaStatus({ ...status, ...changes });
      assert.equal(result.ok, false, JSON.stringify(changes));
      assert.match(result.ok ? '' : result.reason, reason);
    };
    rejects({ role: 'king' }, /field 'role' must be 'leader' or 'backup', got "king"/);
    rejects({ lastExecuted: -1 }, /field 'lastExecuted' must be a non-negative integer, got -1/);
    rejects({ keyEpoch: 1.5 }, /field 'keyEpoch' must be a non-negative integer/);
    rejects({ throughputPerSecond: '9' }, /field 'throughputPerSecond' must be a non-negative finite number/);
    rejects({ viewChangeInProgress: 1 }, /field 'viewChangeInProgress' must be a boolean/);
    rejects({ address: undefined }, /field 'address' must be a string, got undefined/);
    rejects({ address: 'a'.repeat(DASHBOARD_LIMITS.maxAddressLength + 1) }, /longer than 300 characters/);
    rejects({ storageEngine: 'disk\u001b[31m' }, /field 'storageEngine' contains control characters/);
    rejects({ leaderLeftOutClients: -2 }, /field 'leaderLeftOutClients' must be a non-negative integer/);
    rejects(
      { leaderLeftOutClientsLimit: 'x' },
      /field 'leaderLeftOutClientsLimit' must be a non-negative integer/,
    );
    // The batch-fill figures are kept when present (null: not counted yet), and may be absent.
    const counted = { ...status, leaderLeftOutClients: null, leaderLeftOutClientsLimit: 4 };
    assert.deepEqual(parseReplicaStatus(counted), { ok: true, status: counted });
  });
});

// ───────────────────────────── guardians ─────────────────────────────

describe('dashboard server with guardians', { timeout: 30_000 }, () => {
  it('reports every guardian and the recovery timing in /api/cluster', async () => {
    const cluster = await startGuardedTestCluster();
    try {
      const status = await fetchCluster(cluster.dashboard);
      assert.deepEqual(status.recovery, SAMPLE_RECOVERY);
      assert.equal(status.replicas.length, 6);
      assert.equal(status.guardians?.length, 6);
      status.guardians!.forEach((report, replica) => {
        assert.deepEqual(report, { up: true, ...cluster.guardians[replica]!.status });
      });

      const startedAtMs = Date.now() - 1_000;
      cluster.guardians[2]!.update({
        replicaProcess: 'stopped',
        recovery: {
          inProgress: true,
          kind: 'reactive',
          reason: 'equivocation',
          step: 'issuing-keys',
          startedAtMs,
          stepStartedAtMs: startedAtMs + 600,
        },
      });
      const recovering = await waitForGuardianReport(
        cluster.dashboard,
        2,
        (report) => report.up && report.recovery.inProgress,
        'recovery in progress',
      );
      assert.equal(recovering.up && recovering.recovery.step, 'issuing-keys');
      assert.equal(recovering.up && recovering.replicaProcess, 'stopped');
      // The verdict counts it as rejuvenating, with the guardian's step and epoch.
      const { health } = await fetchCluster(cluster.dashboard);
      assert.equal(health.verdict, 'degraded');
      assert.deepEqual(health.replicas[2], {
        replica: 2,
        condition: 'rejuvenating',
        rejuvenation: { kind: 'reactive', step: 'issuing-keys', keyEpoch: 2 },
        guardianDown: false,
      });
      assert.deepEqual(health.reasons, [
        'replica 2 is being rejuvenated (reactive, step issuing-keys, key epoch 2)',
      ]);

      // A long history is relayed as its most recent entries only, in the guardian's order.
      const limit = DASHBOARD_LIMITS.maxRelayedEntriesPerList;
      const manyAlarms = Array.from({ length: limit + 10 }, (_, index) => ({
        atMs: index % 2 === 0 ? 1_000 + index : 1_000 - index,
        message: `alarm ${index}`,
      }));
      cluster.guardians[4]!.update({ alarms: manyAlarms });
      const trimmed = await waitForGuardianReport(
        cluster.dashboard,
        4,
        (report) => report.up && report.alarms.length > 0,
        'alarms relayed',
      );
      const newest = [...manyAlarms].sort((a, b) => b.atMs - a.atMs).slice(0, limit);
      assert.deepEqual(
        trimmed.up && trimmed.alarms,
        manyAlarms.filter((alarm) => newest.includes(alarm)),
      );

      const page = await httpRequest(cluster.dashboard.url);
      for (const testId of [
        'replica-exposure-5',
        'replica-recovery-0',
        'system-guarantee',
        'recoveries',
        'alarms',
        'evidence',
      ])
        assert.match(page.body, new RegExp(`data-testid="${testId}"`), testId);
    } finally {
      await cluster.close();
    }
  });

  it('reports a malformed, ill-typed, oversized or impersonating guardian as down, and keeps running', async () => {
    const cluster = await startGuardedTestCluster();
    try {
      const limit = DASHBOARD_LIMITS.maxGuardianStatusBodyBytes;
      const tooManyAlarms = Array.from({ length: GUARDIAN_STATUS_LIMITS.maxAlarms + 1 }, (_, index) => ({
        atMs: index,
        message: 'alarm',
      }));
      cluster.guardians[0]!.behaviour = 'malformed';
      cluster.guardians[1]!.behaviour = 'wrong-shape';
      cluster.guardians[2]!.behaviour = 'oversized-chunked';
      cluster.guardians[3]!.update({ replica: 4 });
      cluster.guardians[4]!.update({ alarms: tooManyAlarms });
      cluster.guardians[5]!.behaviour = 'hang';
      const expected = [
        /^invalid JSON: /,
        /^invalid guardian status: field 'recovery\.step' must be one of 'stopping', .* got "dancing"$/,
        new RegExp(`^status body exceeds the ${limit}-byte limit$`),
        /^invalid guardian status: answered as the guardian of replica 4, but this URL is configured for replica 3$/,
        /^invalid guardian status: field 'alarms' has 129 entries, more than the limit of 128$/,
        new RegExp(`^no answer within ${FETCH_TIMEOUT_MS} ms$`),
      ];
      for (const [replica, reason] of expected.entries()) {
        const report = await waitForGuardianReport(cluster.dashboard, replica, (r) => !r.up, String(reason));
        assert.match(errorOf(report), reason);
      }

      // Only the guardians' reports suffer: every replica stays up and the dashboard keeps serving.
      const status = await fetchCluster(cluster.dashboard);
      assert.ok(
        status.replicas.every((report) => report.up),
        'replicas unaffected',
      );
      assert.equal((await httpRequest(cluster.dashboard.url)).status, 200);

      for (const guardian of cluster.guardians) guardian.behaviour = 'healthy';
      cluster.guardians[3]!.update({ replica: 3 });
      cluster.guardians[4]!.update({ alarms: [] });
      await waitUntil(
        async () => (await fetchCluster(cluster.dashboard)).guardians?.every((report) => report.up) === true,
        'every guardian up again',
      );
    } finally {
      await cluster.close();
    }
  });

  it('shows the configured recovery timing without guardians, and no guardian parts', async () => {
    const fakes = await startFakeReplicas(CLUSTER.n);
    const dashboard = await DashboardServer.start({
      cluster: CLUSTER,
      replicaAdminUrls: fakes.map((fake) => fake.url),
      recovery: SAMPLE_RECOVERY,
      pollIntervalMs: POLL_INTERVAL_MS,
    });
    try {
      const status = await fetchCluster(dashboard);
      assert.deepEqual(status.recovery, SAMPLE_RECOVERY);
      assert.equal('guardians' in status, false);
      const page = await httpRequest(dashboard.url);
      assert.match(page.body, /data-testid="system-guarantee"/);
      for (const testId of [
        'system-exposure',
        'replica-exposure-0',
        'replica-process-0',
        'recoveries',
        'alarms',
      ])
        assert.doesNotMatch(page.body, new RegExp(`data-testid="${testId}"`), testId);
    } finally {
      await dashboard.close();
      await Promise.all(fakes.map((fake) => fake.stop()));
    }
  });

  it('refuses bad guardian and recovery options', async () => {
    const urls = ['http://127.0.0.1:1', 'http://127.0.0.1:2', 'http://127.0.0.1:3', 'http://127.0.0.1:4'];
    await assert.rejects(
      DashboardServer.start({ cluster: CLUSTER, replicaAdminUrls: urls, guardianAdminUrls: urls.slice(1) }),
      /guardianAdminUrls has 3 entries, but n = 4/,
    );
    await assert.rejects(
      DashboardServer.start({
        cluster: CLUSTER,
        replicaAdminUrls: urls,
        guardianAdminUrls: [...urls.slice(0, 3), 'http://user:secret@127.0.0.1:5'],
      }),
      /guardianAdminUrls\[3\] must not carry credentials/,
    );
    await assert.rejects(
      DashboardServer.start({
        cluster: CLUSTER,
        replicaAdminUrls: urls,
        recovery: { guaranteeMs: 60_000, recoveryBoundMs: 8_000, periodMs: 56_000 },
      }),
      /recovery\.guaranteeMs \(60000\) must be at least periodMs \+ recoveryBoundMs \(56000 \+ 8000 = 64000\)/,
    );
    await assert.rejects(
      DashboardServer.start({
        cluster: CLUSTER,
        replicaAdminUrls: urls,
        recovery: { guaranteeMs: 64_000, recoveryBoundMs: Number.NaN, periodMs: 56_000 },
      }),
      /recovery\.recoveryBoundMs must be an integer ≥ 1, got NaN/,
    );
  });

  it('parseGuardianStatus keeps only the known fields and rejects bad values', () => {
    const status = sampleGuardianStatus(1, 1_767_225_600_000, {
      alarms: [{ atMs: 5, message: 'recovery took 9.5 s' }],
      evidence: [
        { atMs: 6, kind: 'equivocation', accused: 2, reporter: 'replica 0', valid: true, detail: 'x' },
      ],
      suspicions: [{ accused: 2, reporters: [0, 3] }],
    });
    const withExtras = {
      ...status,
      injected: '<script>',
      recovery: { ...status.recovery, injected: 1 },
      alarms: [{ ...status.alarms[0]!, html: '<b>' }],
    };
    assert.deepEqual(parseGuardianStatus(withExtras, 1), { ok: true, status });
    assert.deepEqual(parseGuardianStatus('up'), {
      ok: false,
      reason: 'status must be a JSON object, got "up"',
    });
    const rejects = (changes: Record<string, unknown>, reason: RegExp): void => {
      const result = parseGuardianStatus({ ...status, ...changes });
      assert.equal(result.ok, false, JSON.stringify(changes));
      assert.match(result.ok ? '' : result.reason, reason);
    };
    rejects(
      { replicaProcess: 'zombie' },
      /field 'replicaProcess' must be one of 'running', 'stopped', 'starting'/,
    );
    rejects({ keyEpoch: -1 }, /field 'keyEpoch' must be a non-negative integer, got -1/);
    rejects({ trustBoundary: undefined }, /field 'trustBoundary' must be an object/);
    rejects(
      { trustBoundary: { enforced: 'no', reason: 'x' } },
      /field 'trustBoundary.enforced' must be a boolean/,
    );
    rejects(
      { trustBoundary: { enforced: false, reason: 'x'.repeat(301) } },
      /field 'trustBoundary.reason' is longer than 300 characters/,
    );
    rejects(
      { keyEpochAcceptedUntilMs: -5 },
      /field 'keyEpochAcceptedUntilMs' must be a non-negative finite number/,
    );
    rejects(
      { exposureMs: Number.POSITIVE_INFINITY },
      /field 'exposureMs' must be a non-negative finite number/,
    );
    rejects({ recovery: null }, /field 'recovery' must be an object, got null/);
    rejects(
      { recovery: { ...status.recovery, kind: 'sideways' } },
      /field 'recovery\.kind' must be one of 'proactive', 'reactive', got "sideways"/,
    );
    rejects(
      {
        recentRecoveries: [
          { ...status.recentRecoveries[0]!, steps: [{ step: 'rejoining', durationMs: '5' }] },
        ],
      },
      /field 'recentRecoveries\[0\]\.steps\[0\]\.durationMs' must be a non-negative finite number, got "5"/,
    );
    rejects(
      { alarms: [{ atMs: 1, message: 'red\u001b[31m' }] },
      /field 'alarms\[0\]\.message' contains control characters/,
    );
    rejects(
      {
        evidence: [
          { ...status.evidence[0]!, detail: 'x'.repeat(GUARDIAN_STATUS_LIMITS.maxEvidenceDetailLength + 1) },
        ],
      },
      /field 'evidence\[0\]\.detail' is longer than 500 characters/,
    );
    rejects(
      { suspicions: [{ accused: 2, reporters: 'everyone' }] },
      /field 'suspicions\[0\]\.reporters' must be an array/,
    );
    rejects({ pendingReactive: undefined }, /field 'pendingReactive' must be an array, got undefined/);
  });
});

function openEventStream(dashboard: DashboardServer): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    get(new URL('api/events', dashboard.url), { agent: false }, resolve).on('error', reject);
  });
}

function closeStream(response: IncomingMessage): number {
  response.destroy();
  return response.statusCode ?? 0;
}

function countActiveResources(): { timers: number; sockets: number } {
  const resources = process.getActiveResourcesInfo();
  return {
    timers: resources.filter((name) => name === 'Timeout').length,
    sockets: resources.filter((name) => name === 'TCPSocketWrap' || name === 'TCPServerWrap').length,
  };
}

// ───────────────────────────── browser ─────────────────────────────

/** A new page whose console errors and uncaught exceptions are collected (a test expects none). */
async function watchedPage(context: BrowserContext): Promise<{ page: Page; consoleErrors: string[] }> {
  const page = await context.newPage();
  const consoleErrors: string[] = [];
  page.on('console', (message) => {
    if (message.type() === 'error') consoleErrors.push(message.text());
  });
  page.on('pageerror', (error) => consoleErrors.push(error.message));
  return { page, consoleErrors };
}

/** Saves a full-page screenshot under SCREENSHOT_DIR and prints where. */
async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  const path = join(SCREENSHOT_DIR, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  console.log(`dashboard screenshot: ${path}`);
}

/**
 * Every visible element that reaches outside its panel (a panel, the replica table's frame or
 * the header), and every panel or scroller whose content is wider than it: what a reader would
 * find clipped or would have to scroll sideways for. Empty when the layout fits.
 */
async function overflowingElements(page: Page): Promise<string[]> {
  // A string, as the other page scripts here: the test code is compiled without the DOM types.
  return page.evaluate<string[]>(`(() => {
    const problems = [];
    const name = (element) =>
      element.tagName.toLowerCase() +
      (element.dataset.testid === undefined ? '' : '[' + element.dataset.testid + ']') +
      (element.className ? '.' + String(element.className).replace(/ /g, '.') : '');
    if (document.documentElement.scrollWidth > window.innerWidth)
      problems.push('the page is ' + document.documentElement.scrollWidth + ' px wide in a ' + window.innerWidth + ' px window');
    for (const element of document.querySelectorAll('header, .panel, .panel-scroll, .plot, .table-wrap, .verdict-bar'))
      if (element.scrollWidth > element.clientWidth + 1)
        problems.push(name(element) + ' holds ' + element.scrollWidth + ' px in ' + element.clientWidth + ' px');
    for (const element of document.querySelectorAll('header *, main *')) {
      const box = element.getBoundingClientRect();
      if (box.width === 0 || box.height === 0) continue;
      const panel = element.closest('.panel, .table-wrap, header');
      if (panel === null || panel === element) continue;
      const outer = panel.getBoundingClientRect();
      if (box.right > outer.right + 1 || box.left < outer.left - 1)
        problems.push(name(element) + ' spans ' + box.left + '…' + box.right + ' px outside ' + name(panel) + ' at ' + outer.left + '…' + outer.right + ' px');
    }
    return problems;
  })()`);
}

async function textOf(page: Page, testId: string): Promise<string> {
  return (await page.getByTestId(testId).textContent()) ?? '';
}

async function waitForText(page: Page, testId: string, expected: string | RegExp): Promise<void> {
  const matches = (text: string): boolean =>
    typeof expected === 'string' ? text.includes(expected) : expected.test(text);
  await waitUntil(async () => matches(await textOf(page, testId)), `${testId} to show ${String(expected)}`);
}

// The bound is the whole suite's (eight pages, 24 s alone): at 30 s two loaded suite runs cut the
// last test off mid-page, and the browser the timeout closed looked like a Chromium crash.
describe('dashboard page in headless Chromium', { timeout: 180_000 }, () => {
  let launching: Promise<Browser> | undefined;

  // Launched by the first test rather than in a before hook, so a missing Chromium counts as
  // failed tests in the summary (a failing hook is reported with "# fail 0" on Node 20).
  function browser(): Promise<Browser> {
    if (!existsSync(CHROMIUM_PATH)) {
      assert.fail(
        `Chromium not found at ${CHROMIUM_PATH}. Install it with \`apt-get install -y chromium\` ` +
          '(the CI script installs it); the browser test is never skipped.',
      );
    }
    if (launching === undefined) {
      // One crashed browser must cost one test, not every test after it: once it is no longer
      // connected, the next test that asks for a browser launches a new one.
      const attempt: Promise<Browser> = chromium
        .launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS, headless: true, timeout: 30_000 })
        .then((launched) => {
          launched.on('disconnected', () => {
            if (launching === attempt) launching = undefined;
          });
          return launched;
        });
      launching = attempt;
    }
    return launching;
  }

  after(async () => {
    await (await launching)?.close();
  });

  it('shows every replica and follows changes live, without reloading', async () => {
    const context = await (await browser()).newContext({ viewport: { width: 1400, height: 520 } });
    const cluster = await startTestCluster();
    try {
      const { page, consoleErrors } = await watchedPage(context);

      await page.goto(cluster.dashboard.url);
      await waitForText(page, 'connection-state', 'live');
      await waitForText(page, 'cluster-verdict', 'healthy');
      assert.equal(await page.getByTestId('cluster-reasons').isHidden(), true);
      assert.equal(await page.locator('[data-testid^="replica-row-"]').count(), 4);
      assert.equal(await textOf(page, 'cluster-n'), '4');
      assert.equal(await textOf(page, 'cluster-f'), '1');
      assert.equal(await textOf(page, 'cluster-k'), '0');
      assert.equal(await textOf(page, 'cluster-quorum'), '3');
      await waitForText(page, 'cluster-up', '4 / 4');
      for (let replica = 0; replica < 4; replica++) {
        await waitForText(page, `replica-role-${replica}`, replica === 0 ? 'leader' : 'backup');
        assert.equal(await textOf(page, `replica-view-${replica}`), '0');
        assert.equal(await textOf(page, `replica-state-${replica}`), 'up');
        assert.equal(
          await textOf(page, `replica-executed-${replica}`),
          (1000 + replica).toLocaleString('en-US'),
        );
        assert.equal(await textOf(page, `replica-checkpoint-${replica}`), '896');
        assert.equal(await textOf(page, `replica-throughput-${replica}`), String(850 + 10 * replica));
        assert.equal(
          await textOf(page, `replica-address-${replica}`),
          `127.0.0.1:${7000 + replica}`,
          'address',
        );
      }
      assert.match((await page.getByTestId('replica-row-0').getAttribute('class')) ?? '', /\bleader\b/);
      assert.doesNotMatch(
        (await page.getByTestId('replica-row-1').getAttribute('class')) ?? '',
        /\bleader\b/,
      );
      // The committed rate is what a quorum executed, as the dashboard measures it from the
      // executed-request counters (here growing at 850…880 per second): a figure near 860.
      await waitForText(page, 'cluster-throughput', /^\d/);
      const committed = Number((await textOf(page, 'cluster-throughput')).replace(/,/g, ''));
      assert.ok(committed > 400 && committed < 1700, `committed rate ${committed} near 860`);
      // Without guardians the page is the v1 page: no recovery columns, timing or panels.
      for (const testId of [
        'replica-exposure-0',
        'replica-recovery-0',
        'system-guarantee',
        'recoveries',
        'alarms',
      ])
        assert.equal(await page.getByTestId(testId).count(), 0, `${testId} absent without guardians`);
      assert.equal(await textOf(page, 'replica-key-epoch-0'), '2');
      assert.equal(await textOf(page, 'replica-epoch-0'), '2');

      // A marker on window survives only if the page is not reloaded.
      await page.evaluate('window.dashboardTestMarker = 42');

      // View change to view 1: replica 1 becomes leader, replica 2 is still changing views.
      cluster.fakes[0]!.update({ role: 'backup', view: 1, lastExecuted: 2048 });
      cluster.fakes[1]!.update({ role: 'leader', view: 1, lastExecuted: 2049 });
      cluster.fakes[2]!.update({ view: 1, viewChangeInProgress: true, stateTransferInProgress: true });
      await waitForText(page, 'replica-executed-1', '2,049');
      await waitForText(page, 'replica-role-1', 'leader');
      await waitForText(page, 'replica-view-2', 'view change');
      assert.equal(await textOf(page, 'replica-view-0'), '1');
      assert.equal(await textOf(page, 'replica-role-0'), 'backup');
      assert.equal(await textOf(page, 'replica-transfer-2'), 'in progress');
      assert.match((await page.getByTestId('replica-row-1').getAttribute('class')) ?? '', /\bleader\b/);
      assert.doesNotMatch(
        (await page.getByTestId('replica-row-0').getAttribute('class')) ?? '',
        /\bleader\b/,
      );

      await cluster.fakes[3]!.stop();
      await waitForText(page, 'replica-state-3', 'down');
      assert.equal(await page.getByTestId('replica-row-3').getAttribute('data-up'), 'false');
      // Refused, or reset when the stop caught a poll in flight.
      assert.match(await textOf(page, 'replica-error-3'), /connection (refused|reset)/);
      assert.equal(await textOf(page, 'replica-executed-3'), '—');
      await waitForText(page, 'cluster-up', '3 / 4');
      await waitForText(page, 'cluster-verdict', 'degraded');
      assert.equal(await textOf(page, 'cluster-reason-0'), 'replica 3 is down');
      assert.equal(await page.evaluate('window.dashboardTestMarker'), 42, 'the page was not reloaded');

      await screenshot(page, 'replica-down-degraded');
      assert.deepEqual(consoleErrors, [], 'no console errors');
    } finally {
      await context.close();
      await cluster.close();
    }
  });

  it('shows key epochs, exposure against T, recoveries in progress, alarms and evidence', async () => {
    const context = await (await browser()).newContext({ viewport: { width: 1600, height: 900 } });
    const cluster = await startGuardedTestCluster();
    try {
      const { page, consoleErrors } = await watchedPage(context);
      const classOf = async (testId: string): Promise<string> =>
        (await page.getByTestId(testId).getAttribute('class')) ?? '';

      await page.goto(cluster.dashboard.url);
      await waitForText(page, 'connection-state', 'live');
      await waitForText(page, 'cluster-up', '6 / 6');
      assert.equal(await textOf(page, 'system-guarantee'), '64 s');
      assert.equal(await textOf(page, 'system-recovery-bound'), '8 s');
      assert.equal(await textOf(page, 'system-period'), '56 s');
      assert.equal(
        await textOf(page, 'system-exposure'),
        '61 s',
        'the longest exposure: replica 5, 41 + 20 s',
      );
      for (let replica = 0; replica < 6; replica++) {
        await waitForText(page, `replica-epoch-${replica}`, '2');
        assert.equal(await page.getByTestId(`replica-epoch-mismatch-${replica}`).count(), 0, 'epochs agree');
        assert.equal(await textOf(page, `replica-exposure-${replica}`), `${41 + 4 * replica} s / T = 64 s`);
        assert.equal(
          await page.getByTestId(`replica-exposure-${replica}`).getAttribute('data-over'),
          'false',
        );
        assert.equal(await textOf(page, `replica-process-${replica}`), 'running');
        assert.match(
          await textOf(page, `replica-recovery-${replica}`),
          /^idle(next proactive in [\d.]+ m?s|proactive recovery due)$/,
        );
      }
      // The v1 columns are still filled.
      assert.equal(await textOf(page, 'replica-role-0'), 'leader');
      assert.equal(await textOf(page, 'replica-throughput-1'), '860');

      // A reactive recovery of replica 2: its process is stopped, so its admin port fails too.
      const startedAtMs = Date.now() - 2_100;
      const reactive: GuardianStatus['recovery'] = {
        inProgress: true,
        kind: 'reactive',
        reason: 'equivocation',
        step: 'issuing-keys',
        startedAtMs,
        stepStartedAtMs: startedAtMs + 1_500,
      };
      cluster.fakes[2]!.behaviour = 'server-error';
      cluster.guardians[2]!.update({ replicaProcess: 'stopped', recovery: reactive });
      // Not 'down': the status cell names the guardian's step and key epoch, the header says degraded.
      await waitForText(page, 'replica-rejuvenation-2', 'step issuing-keys, key epoch 2');
      await waitForText(page, 'replica-state-2', /^rejuvenating/);
      assert.match(await textOf(page, 'replica-error-2'), /^HTTP 500 from/);
      await waitForText(page, 'cluster-verdict', 'degraded');
      assert.equal(
        await textOf(page, 'cluster-reason-0'),
        'replica 2 is being rejuvenated (reactive, step issuing-keys, key epoch 2)',
      );
      await waitForText(page, 'replica-recovery-step-2', 'issuing-keys');
      assert.equal(await textOf(page, 'replica-recovery-kind-2'), 'reactive');
      assert.equal(await textOf(page, 'replica-recovery-reason-2'), 'equivocation');
      assert.match(await textOf(page, 'replica-recovery-2'), /issuing-keys 3\/8/);
      assert.match(await textOf(page, 'replica-recovery-elapsed-2'), /^\d+(\.\d)? s of T_D = 8 s$/);
      assert.equal(await page.getByTestId('replica-row-2').getAttribute('data-recovering'), 'true');
      assert.match(await classOf('replica-row-2'), /\brecovering\b/);
      await waitForText(page, 'replica-process-2', 'stopped');

      cluster.guardians[2]!.update({
        replicaProcess: 'running',
        recovery: { ...reactive, step: 'transferring-state', stepStartedAtMs: Date.now() },
      });
      await waitForText(page, 'replica-recovery-step-2', 'transferring-state');
      await waitForText(page, 'replica-rejuvenation-2', 'step transferring-state, key epoch 2');
      assert.match(await textOf(page, 'replica-recovery-2'), /transferring-state 6\/8/);
      assert.equal(await textOf(page, 'replica-process-2'), 'running');

      // It finishes late: 9.5 s against T_D = 8 s. The guardian raises an alarm; the evidence that
      // triggered it was exchanged, so several guardians hold the same record.
      const finishedAtMs = Date.now();
      const evidence = {
        atMs: startedAtMs - 300,
        kind: 'equivocation',
        accused: 2,
        reporter: 'replica 0',
        valid: true,
        detail: 'two pre-prepares for view 0, sequence 1042',
      };
      const previous = cluster.guardians[2]!.status;
      cluster.guardians[2]!.update({
        keyEpoch: 4,
        exposureMs: 400,
        lastRejuvenationAtMs: finishedAtMs,
        recovery: sampleGuardianStatus(2, finishedAtMs).recovery,
        recentRecoveries: [
          {
            kind: 'reactive',
            reason: 'equivocation',
            startedAtMs: finishedAtMs - 9_500,
            durationMs: 9_500,
            steps: [{ step: 'transferring-state', durationMs: 7_000 }],
            exceededBound: true,
            keyEpoch: 4,
          },
          ...previous.recentRecoveries,
        ],
        alarms: [{ atMs: finishedAtMs, message: 'recovery of replica 2 took 9.5 s, over T_D = 8 s' }],
        evidence: [evidence],
      });
      cluster.guardians[0]!.update({
        alarms: [{ atMs: startedAtMs - 200, message: 'replica 2 equivocated: reactive recovery scheduled' }],
        evidence: [evidence],
      });
      // The guardian's new epoch is shown at once; the replica's older one beside it until it agrees.
      cluster.fakes[2]!.behaviour = 'healthy';
      await waitForText(page, 'replica-state-2', /^up$/);
      await waitForText(page, 'cluster-verdict', 'healthy');
      assert.equal(await page.getByTestId('cluster-reasons').isHidden(), true, 'no reasons when healthy');
      // Replicas running as their guardian's user are named plainly, and the verdict stays.
      const unenforced =
        "trust boundary not enforced: replica runs as the guardian's user (no replica user is configured)";
      cluster.guardians[1]!.update({ trustBoundary: { enforced: false, reason: unenforced } });
      await waitForText(page, 'cluster-notice-0', `replica 1: ${unenforced}`);
      assert.equal(await textOf(page, 'cluster-verdict'), 'healthy');
      // An expired key epoch is a reason (the replica cannot sign), and gone once rotated.
      cluster.guardians[4]!.update({ keyEpochAcceptedUntilMs: Date.now() - 5_000 });
      await waitForText(page, 'cluster-verdict', 'degraded');
      assert.match(
        await textOf(page, 'cluster-reason-0'),
        /^replica 4's key epoch 2 expired \d+(\.\d)? s ago/,
      );
      cluster.guardians[1]!.update({ trustBoundary: sampleGuardianStatus(1, Date.now()).trustBoundary });
      cluster.guardians[4]!.update({ keyEpochAcceptedUntilMs: Date.now() + 60_000 });
      await waitForText(page, 'cluster-verdict', 'healthy');
      await waitUntil(
        async () => (await page.getByTestId('cluster-reasons').isHidden()) === true,
        'no reasons nor notices',
      );
      await waitForText(page, 'replica-epoch-2', '4');
      await waitForText(page, 'replica-epoch-mismatch-2', 'replica: 2');
      cluster.fakes[2]!.update({ keyEpoch: 4 });
      await waitUntil(
        async () => (await page.getByTestId('replica-epoch-mismatch-2').count()) === 0,
        'epochs agree',
      );
      assert.equal(await textOf(page, 'replica-key-epoch-2'), '4');
      assert.equal(await page.getByTestId('replica-row-2').getAttribute('data-recovering'), 'false');
      assert.equal(await textOf(page, 'replica-exposure-2'), '400 ms / T = 64 s');

      await waitForText(page, 'recovery-row-0', 'over T_D');
      assert.equal(await page.getByTestId('recovery-row-0').getAttribute('data-over-bound'), 'true');
      assert.match(await textOf(page, 'recovery-row-0'), /^2reactiveequivocation.*9\.5 sover T_D$/);
      assert.equal(await page.getByTestId('recovery-row-1').getAttribute('data-over-bound'), 'false');
      assert.match(await textOf(page, 'recovery-row-1'), /2\.5 s$/);
      assert.equal(
        await page.locator('[data-testid^="recovery-row-"]').count(),
        7,
        'six proactive, one reactive',
      );
      assert.match(await textOf(page, 'recoveries-summary'), /^T_D = 8 s · longest 9\.5 s$/);
      // A recovery the end of its slot cut off before T_D missed its deadline, but is not over T_D.
      const beforeCutOff = cluster.guardians[3]!.status;
      cluster.guardians[3]!.update({
        recentRecoveries: [
          {
            kind: 'proactive',
            reason: 'period 7',
            startedAtMs: finishedAtMs - 6_000,
            durationMs: 6_000,
            steps: [{ step: 'validating-state', durationMs: 6_000 }],
            exceededBound: true,
            keyEpoch: 3,
          },
          ...beforeCutOff.recentRecoveries,
        ],
      });
      const cutOff = page.locator('[data-testid^="recovery-row-"]', {
        hasText: 'unfinished at its slot end',
      });
      await waitUntil(async () => (await cutOff.count()) === 1, 'the cut-off recovery listed');
      assert.equal(await cutOff.getAttribute('data-over-bound'), 'false');
      assert.equal(await cutOff.getAttribute('data-missed-deadline'), 'true');
      assert.doesNotMatch((await cutOff.textContent()) ?? '', /over T_D/);
      await waitUntil(
        async () =>
          /1 over T_D · 1 unfinished at their slot end/.test(await textOf(page, 'timeline-summary')),
        'the timeline counting it apart',
      );
      cluster.guardians[3]!.update({ recentRecoveries: beforeCutOff.recentRecoveries });

      // Most recent alarm first, each with the guardian that raised it.
      assert.match(
        await textOf(page, 'alarm-0'),
        /guardian 2recovery of replica 2 took 9\.5 s, over T_D = 8 s$/,
      );
      assert.match(await textOf(page, 'alarm-1'), /guardian 0replica 2 equivocated/);
      await waitUntil(
        async () => (await page.locator('[data-testid^="incident-row-"]').count()) === 1,
        'one incident',
      );
      assert.equal(await textOf(page, 'incident-accused-0'), 'replica 2');
      assert.match(await textOf(page, 'incident-kind-0'), /^equivocation valid$/);
      assert.equal(
        await textOf(page, 'incident-count-0'),
        '1',
        'the same record from two guardians counts once',
      );
      assert.equal(await page.getByTestId('incident-row-0').getAttribute('data-valid'), 'true');
      assert.match(await textOf(page, 'incident-proofs-0'), /^two pre-prepares for view 0, sequence 1042$/);

      // A proactive recovery in its slot, and a replica kept past T while the reactive one ran.
      const proactiveStartMs = Date.now() - 1_200;
      cluster.guardians[3]!.update({
        recovery: {
          inProgress: true,
          kind: 'proactive',
          reason: 'scheduled',
          step: 'validating-state',
          startedAtMs: proactiveStartMs,
          stepStartedAtMs: proactiveStartMs + 900,
        },
      });
      cluster.fakes[3]!.update({ stateTransferInProgress: true });
      cluster.guardians[5]!.update({ exposureMs: 70_000 });
      await waitForText(page, 'replica-recovery-kind-3', 'proactive');
      await waitForText(page, 'replica-exposure-5', '70 s / T = 64 s');
      assert.equal(await page.getByTestId('replica-exposure-5').getAttribute('data-over'), 'true');
      assert.equal(await textOf(page, 'system-exposure'), '70 s');
      assert.match(await classOf('system-exposure'), /\bover\b/);

      await screenshot(page, 'guardians-recoveries');
      assert.deepEqual(consoleErrors, [], 'no console errors');
    } finally {
      await context.close();
      await cluster.close();
    }
  });

  it('turns the header to stalled when the replicas stop progressing, and back to healthy', async () => {
    const context = await (await browser()).newContext({ viewport: { width: 1400, height: 520 } });
    const cluster = await startTestCluster({ requestTimeoutMs: SHORT_REQUEST_TIMEOUT_MS });
    try {
      const { page, consoleErrors } = await watchedPage(context);
      const verdictOf = async (): Promise<string | null> =>
        page.getByTestId('cluster-verdict').getAttribute('data-verdict');
      await page.goto(cluster.dashboard.url);
      await waitForText(page, 'connection-state', 'live');
      await waitForText(page, 'cluster-verdict', 'healthy');
      await waitForText(page, 'cluster-up', '4 / 4');

      // Stuck in a view change: every replica answers, waits on 40 requests, and executes nothing.
      for (const fake of cluster.fakes) {
        stopProgress(fake);
        fake.update({ viewChangeInProgress: true, view: 7 });
      }
      await waitForText(page, 'cluster-verdict', 'stalled');
      assert.equal(await verdictOf(), 'stalled');
      assert.equal(await page.locator('header').getAttribute('data-verdict'), 'stalled');
      // The reasons are drawn in the same update as the verdict text, but not necessarily in the
      // same frame: wait for them (isVisible() does not wait; a loaded suite run saw it false).
      await page
        .getByTestId('cluster-reasons')
        .waitFor({ state: 'visible', timeout: 5000 })
        .catch(() => undefined);
      assert.equal(await page.getByTestId('cluster-reasons').isVisible(), true);
      assert.match(
        await textOf(page, 'cluster-reason-0'),
        /^no batch executed for [\d.]+ s while 40 requests wait \(the oldest for [\d.]+ s\)$/,
      );
      assert.equal(await textOf(page, 'cluster-reason-1'), 'replicas 0, 1, 2 and 3 are in a view change');
      assert.equal(await textOf(page, 'cluster-up'), '4 / 4', 'every replica is still up');
      // The reasons follow the numbers: the wait grows while the page stays open.
      const earlier = await textOf(page, 'cluster-reason-0');
      await waitUntil(
        async () => (await textOf(page, 'cluster-reason-0')) !== earlier,
        'the reason to update',
      );

      // The top line says it in words: the first reason.
      assert.match(await textOf(page, 'verdict-summary'), /^no batch executed for/);
      await screenshot(page, 'stalled');

      for (const fake of cluster.fakes) {
        resumeProgress(fake);
        fake.update({ viewChangeInProgress: false });
      }
      await waitForText(page, 'cluster-verdict', 'healthy');
      assert.equal(await page.locator('header').getAttribute('data-verdict'), 'healthy');
      assert.equal(await page.getByTestId('cluster-reasons').isHidden(), true);
      assert.equal(await page.getByTestId('cluster-reason-0').count(), 0);
      await screenshot(page, 'resumed-healthy');
      assert.deepEqual(consoleErrors, [], 'no console errors');
    } finally {
      await context.close();
      await cluster.close();
    }
  });

  it('falls back to polling when the event stream is refused', async () => {
    const context = await (await browser()).newContext();
    const cluster = await startTestCluster({ maxEventClients: 1 });
    let held: IncomingMessage | undefined;
    try {
      held = await openEventStream(cluster.dashboard);
      const page = await context.newPage();
      const pageErrors: string[] = [];
      page.on('pageerror', (error) => pageErrors.push(error.message));
      await page.goto(cluster.dashboard.url);
      await waitForText(page, 'connection-state', 'polling');
      await waitForText(page, 'replica-role-0', 'leader');
      cluster.fakes[2]!.update({ lastExecuted: 77_777 });
      await waitForText(page, 'replica-executed-2', '77,777');
      assert.deepEqual(pageErrors, [], 'no uncaught script errors');
    } finally {
      held?.destroy();
      await context.close();
      await cluster.close();
    }
  });

  it('keeps the history on the server: a reload draws the same charts again', async () => {
    const context = await (await browser()).newContext({ viewport: { width: 1280, height: 800 } });
    // A client beside the dashboard (the live workload of `up` and `demo`) reports its latency.
    let operations = 0;
    const cluster = await startGuardedTestCluster({
      historySampleIntervalMs: POLL_INTERVAL_MS,
      clientLatency: () => (++operations % 2 === 0 ? { p50Ms: 12, p99Ms: 40 } : { p50Ms: 14, p99Ms: 55 }),
    });
    try {
      const { page, consoleErrors } = await watchedPage(context);
      const pointsShown = async (): Promise<number> =>
        Number((await page.getByTestId('plot-throughput').getAttribute('data-points')) ?? '0');
      const latencyPointsShown = async (): Promise<number> =>
        Number((await page.getByTestId('plot-latency').getAttribute('data-points')) ?? '0');
      await page.goto(cluster.dashboard.url);
      await waitUntil(
        async () => (await page.getByTestId('charts').getAttribute('data-history')) === 'loaded',
        'the history to load',
      );
      await waitUntil(async () => (await pointsShown()) >= 10, 'ten samples on the charts');
      const firstAt = await page.getByTestId('plot-throughput').getAttribute('data-first-at');
      assert.ok(firstAt !== null && firstAt !== '');
      const before = await pointsShown();
      const latencyBefore = await latencyPointsShown();
      assert.ok(latencyBefore >= 10, `client latency charted: ${latencyBefore} points`);
      assert.match(
        (await page.getByTestId('latency-summary').textContent()) ?? '',
        /p50 1[24]\.0 ms, p99 (40|55)\.0 ms/,
      );

      await page.reload();
      await waitUntil(
        async () => (await page.getByTestId('charts').getAttribute('data-history')) === 'loaded',
        'the history to load after the reload',
      );
      // Every sample drawn before the reload is drawn again: the same first sample, and at least as many.
      assert.ok((await pointsShown()) >= before, 'the charts start from the server history');
      assert.ok((await latencyPointsShown()) >= latencyBefore, 'client latency too');
      assert.equal(await page.getByTestId('plot-throughput').getAttribute('data-first-at'), firstAt);
      await waitForText(page, 'cluster-verdict', 'healthy');

      // The history is bounded: one hour at the sample interval, at most HISTORY_LIMITS.maxSamples.
      const answer = await httpRequest(new URL('api/history', cluster.dashboard.url).href);
      assert.equal(answer.status, 200);
      assert.match(answer.headers['content-type'] ?? '', /^application\/json/);
      const history = JSON.parse(answer.body) as DashboardHistoryJson;
      assert.equal(history.series.capacity, HISTORY_LIMITS.maxSamples);
      assert.ok(history.series.atMs.length >= before);
      assert.equal(history.series.replicas.length, 6);
      assert.ok(history.series.latencyP99Ms.every((value) => value === 40 || value === 55));
      assert.equal(history.series.atMs[0], Number(firstAt));
      assert.equal(history.recoveries.length, 6, "each guardian's proactive recovery, remembered");
      // The chart library is served by the dashboard itself, under the page's CSP.
      const library = await httpRequest(new URL('assets/uplot.js', cluster.dashboard.url).href);
      assert.equal(library.status, 200);
      assert.match(library.headers['content-type'] ?? '', /^text\/javascript/);
      await screenshot(page, 'history-after-reload');
      assert.deepEqual(consoleErrors, [], 'no console errors');
    } finally {
      await context.close();
      await cluster.close();
    }
  });

  it('shows one intrusion reported by every guardian as one incident, its proof folded', async () => {
    const context = await (await browser()).newContext({ viewport: { width: 1280, height: 800 } });
    const cluster = await startGuardedTestCluster();
    try {
      const { page, consoleErrors } = await watchedPage(context);
      await page.goto(cluster.dashboard.url);
      await waitForText(page, 'connection-state', 'live');
      // Replica 2 equivocated; each other replica's guardian records it with its own time and
      // reporter, and every guardian relays every record (what made one intrusion six rows).
      const atMs = Date.now() - 5_000;
      const proof = (reporter: number): string =>
        `pre-prepares ${'9f2c'.repeat(8)} and ${'41ab'.repeat(8)} for view 0, sequence 1042 (seen by ${reporter})`;
      const records = [0, 1, 3, 4, 5].map((reporter) => ({
        atMs: atMs + 7 * reporter,
        kind: 'equivocation',
        accused: 2,
        reporter: `replica ${reporter}`,
        valid: true,
        detail: proof(reporter),
      }));
      for (const guardian of cluster.guardians)
        guardian.update({ evidence: guardian.status.replica === 2 ? records.slice(0, 2) : records });

      await waitForText(page, 'incident-count-0', '5');
      assert.equal(await page.locator('[data-testid^="incident-row-"]').count(), 1, 'one incident');
      assert.equal(await textOf(page, 'incident-accused-0'), 'replica 2');
      assert.match(await textOf(page, 'incident-kind-0'), /^equivocation valid$/);
      assert.match(await textOf(page, 'evidence-summary'), /^1 incident · 5 records$/);
      // The hashes are folded away until asked for.
      assert.equal(await page.getByTestId('incident-proofs-0').isVisible(), false);
      assert.match(
        await textOf(page, 'incident-proof-0'),
        /proofs \(5\), reported by replica 0, replica 1, replica 3, replica 4, replica 5/,
      );
      await page.getByTestId('incident-proof-0').locator('summary').click();
      assert.equal(await page.getByTestId('incident-proofs-0').isVisible(), true);
      assert.match(await textOf(page, 'incident-proofs-0'), /\(seen by 0\).*\(seen by 5\)$/);

      const answer = await httpRequest(new URL('api/log', cluster.dashboard.url).href);
      const log = JSON.parse(answer.body) as DashboardLogJson;
      assert.equal(log.incidents.length, 1);
      assert.equal(log.incidents[0]!.count, 5);
      assert.equal(log.incidents[0]!.firstSeenMs, atMs);
      assert.equal(log.incidents[0]!.lastSeenMs, atMs + 35);
      assert.equal(log.evidenceAtMs.length, 5, 'one marker per record on the charts');
      assert.deepEqual(await overflowingElements(page), [], 'the unfolded proofs fit their panel');
      await screenshot(page, 'incident-unfolded');
      assert.deepEqual(consoleErrors, [], 'no console errors');
    } finally {
      await context.close();
      await cluster.close();
    }
  });

  it('fits a 1280×800 window: no element overflows its panel, with every panel busy', async () => {
    const context = await (await browser()).newContext({ viewport: { width: 1280, height: 800 } });
    const cluster = await startGuardedTestCluster({ historySampleIntervalMs: POLL_INTERVAL_MS });
    try {
      const { page, consoleErrors } = await watchedPage(context);
      await page.goto(cluster.dashboard.url);
      await waitForText(page, 'connection-state', 'live');
      const nowMs = Date.now();
      // Long texts where they can occur: an error, a recovery in progress, evidence, alarms.
      cluster.fakes[2]!.behaviour = 'server-error';
      cluster.guardians[2]!.update({
        replicaProcess: 'stopped',
        recovery: {
          inProgress: true,
          kind: 'reactive',
          reason: 'equivocation',
          step: 'transferring-state',
          startedAtMs: nowMs - 3_000,
          stepStartedAtMs: nowMs - 1_000,
        },
      });
      cluster.fakes[3]!.update({
        lastExecuted: 400,
        throughputPerSecond: 478,
        stateTransferInProgress: true,
      });
      cluster.guardians[5]!.update({ exposureMs: 70_000 });
      const evidence = [0, 1, 3, 4, 5].map((reporter) => ({
        atMs: nowMs - 4_000 + reporter,
        kind: 'equivocation',
        accused: 2,
        reporter: `replica ${reporter}`,
        valid: true,
        detail: `${'c0ffee'.repeat(40)}`,
      }));
      cluster.guardians.forEach((guardian, replica) =>
        guardian.update({
          evidence,
          alarms: [
            {
              atMs: nowMs - 3_500 + replica,
              message: `replica 2 equivocated (${'deadbeef'.repeat(12)}): reactive recovery scheduled by guardian ${replica}`,
            },
          ],
        }),
      );
      await waitForText(page, 'replica-recovery-step-2', 'transferring-state');
      await waitForText(page, 'incident-count-0', '5');
      await waitForText(page, 'replica-catching-up-3', /^catching up/);
      await waitForText(page, 'cluster-verdict', 'degraded');
      await waitUntil(
        async () => (await page.locator('[data-testid^="alarm-"]').count()) === 6,
        'one alarm from each guardian',
      );
      await page.getByTestId('incident-proof-0').locator('summary').click();
      // The picture first, so a failure below leaves the state to look at.
      await screenshot(page, 'busy-1280x800');
      assert.deepEqual(await overflowingElements(page), [], 'nothing overflows at 1280×800');
      assert.deepEqual(consoleErrors, [], 'no console errors');
    } finally {
      await context.close();
      await cluster.close();
    }
  });

  it("shows the quorum's committed rate, not a catching-up replica's, and the unsafe verdict", async () => {
    const context = await (await browser()).newContext({ viewport: { width: 1280, height: 800 } });
    const cluster = await startGuardedTestCluster();
    try {
      const { page, consoleErrors } = await watchedPage(context);
      // The workload runs at 20 requests per second; replica 3 replays what it missed at 478.
      for (const fake of cluster.fakes) fake.update({ throughputPerSecond: 20 });
      cluster.fakes[3]!.update({ lastExecuted: 400, throughputPerSecond: 478 });
      await page.goto(cluster.dashboard.url);
      await waitForText(page, 'replica-catching-up-3', /^catching up6\d\d behind$/);
      assert.equal(await textOf(page, 'replica-throughput-3'), '478');
      // Once a sample interval has passed since the change, the committed rate is the workload's.
      const committedRate = async (): Promise<number> =>
        Number((await textOf(page, 'cluster-throughput')).replace(/,/g, ''));
      await waitUntil(async () => (await committedRate()) < 100, "the committed rate to be the workload's");
      assert.ok((await committedRate()) > 0);
      assert.equal(await textOf(page, 'replica-catching-up-0'), '');
      await screenshot(page, 'catching-up');

      // Two replicas past T: more than f = 1 may be an intruder's, which nothing tolerates.
      cluster.guardians[3]!.update({ exposureMs: 70_000 });
      cluster.guardians[5]!.update({ exposureMs: 66_000 });
      await waitForText(page, 'cluster-verdict', 'unsafe');
      assert.match(
        await textOf(page, 'verdict-summary'),
        /^replicas 3 and 5 ran longer than T without a rejuvenation/,
      );
      assert.equal(await page.locator('header').getAttribute('data-verdict'), 'unsafe');
      await screenshot(page, 'unsafe');
      cluster.guardians[3]!.update({ exposureMs: 1_000 });
      await waitForText(page, 'cluster-verdict', 'healthy');
      assert.deepEqual(consoleErrors, [], 'no console errors');
    } finally {
      await context.close();
      await cluster.close();
    }
  });
});
