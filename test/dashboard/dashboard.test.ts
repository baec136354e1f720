import { strict as assert } from 'node:assert';
import { Buffer } from 'node:buffer';
import { existsSync } from 'node:fs';
import { get, type IncomingMessage, request } from 'node:http';
import { after, describe, it } from 'node:test';
import { type Browser, chromium, type Page } from 'playwright-core';
import { DASHBOARD_LIMITS, DashboardServer, parseReplicaStatus } from '../../src/dashboard/index.js';
import type { ClusterStatus, ReplicaReport } from '../../src/runtime/status.js';
import { type FakeReplica, sampleReplicaStatus, startFakeReplicas } from './fake-replicas.js';

// ───────────────────────────── helpers ─────────────────────────────

const CLUSTER = { n: 4, f: 1, k: 0 } as const;
/** Fast polling keeps the test short; the timeout is short so a hanging fake shows up quickly. */
const POLL_INTERVAL_MS = 100;
const FETCH_TIMEOUT_MS = 300;
const WAIT_LIMIT_MS = 5000;

const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
// Without the background-networking flags Chromium keeps dialling out, which this machine refuses.
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
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

async function startTestCluster(options: { maxEventClients?: number } = {}): Promise<TestCluster> {
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

async function fetchCluster(dashboard: DashboardServer): Promise<ClusterStatus> {
  const answer = await httpRequest(new URL('api/cluster', dashboard.url).href);
  assert.equal(answer.status, 200, answer.body);
  assert.match(answer.headers['content-type'] ?? '', /^application\/json/);
  return JSON.parse(answer.body) as ClusterStatus;
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

function errorOf(report: ReplicaReport): string {
  assert.equal(report.up, false, `replica ${report.replica} should be down`);
  return report.up ? '' : report.error;
}

/** Opens /api/events and collects the first `count` events. */
function readEvents(dashboard: DashboardServer, count: number): Promise<ClusterStatus[]> {
  return new Promise((resolve, reject) => {
    const events: ClusterStatus[] = [];
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
          if (data !== '') events.push(JSON.parse(data) as ClusterStatus);
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
        assert.deepEqual(report, { up: true, ...sampleReplicaStatus(replica) });
      });

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

async function textOf(page: Page, testId: string): Promise<string> {
  return (await page.getByTestId(testId).textContent()) ?? '';
}

async function waitForText(page: Page, testId: string, expected: string | RegExp): Promise<void> {
  const matches = (text: string): boolean =>
    typeof expected === 'string' ? text.includes(expected) : expected.test(text);
  await waitUntil(async () => matches(await textOf(page, testId)), `${testId} to show ${String(expected)}`);
}

describe('dashboard page in headless Chromium', { timeout: 30_000 }, () => {
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
    launching ??= chromium.launch({
      executablePath: CHROMIUM_PATH,
      args: CHROMIUM_ARGS,
      headless: true,
      timeout: 30_000,
    });
    return launching;
  }

  after(async () => {
    await (await launching)?.close();
  });

  it('shows every replica and follows changes live, without reloading', async () => {
    const context = await (await browser()).newContext({ viewport: { width: 1400, height: 520 } });
    const cluster = await startTestCluster();
    try {
      const page = await context.newPage();
      const consoleErrors: string[] = [];
      page.on('console', (message) => {
        if (message.type() === 'error') consoleErrors.push(message.text());
      });
      page.on('pageerror', (error) => consoleErrors.push(error.message));

      await page.goto(cluster.dashboard.url);
      await waitForText(page, 'connection-state', 'live');
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
      // With f = 1 the second-highest rate is the one a correct replica vouches for.
      assert.equal(await textOf(page, 'cluster-throughput'), '870');

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
      assert.match(await textOf(page, 'replica-error-3'), /connection refused/);
      assert.equal(await textOf(page, 'replica-executed-3'), '—');
      await waitForText(page, 'cluster-up', '3 / 4');
      assert.equal(await page.evaluate('window.dashboardTestMarker'), 42, 'the page was not reloaded');

      const screenshotPath = process.env.DASHBOARD_SCREENSHOT;
      if (screenshotPath !== undefined && screenshotPath !== '') {
        // Vary the rates for a while so the sparklines in the picture have something to draw.
        for (let step = 0; step < 20; step++) {
          cluster.fakes.slice(0, 3).forEach((fake, replica) => {
            fake.update({ throughputPerSecond: 800 + 150 * Math.sin(step / 3 + replica) });
          });
          await new Promise((resolve) => setTimeout(resolve, POLL_INTERVAL_MS));
        }
        await page.screenshot({ path: screenshotPath, fullPage: true });
      }
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
});
