/**
 * Prometheus metrics as a Prometheus server sees them, on real processes over loopback HTTP: a
 * replica's admin port and `phalanx bench --metrics-port` (its clients' metrics, the client
 * library's sink). Each page is parsed with a strict text-format parser and must serve exactly
 * the names and types docs/metrics.md lists for its process. The guardian's page is checked in
 * test/integration/guardians/metrics.test.ts (a guardian cluster is heavier).
 */
import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { replicaId } from '../../src/messages/ids.js';
import { assertServesDocumented, sampleValue } from '../prometheus/documented.js';
import { type MetricFamily, parsePrometheusText } from '../prometheus/text-format.js';
import { builtEntryPoint } from './built-code.js';
import { type TestCluster, startTestCluster, waitFor } from './helpers.js';

const BENCH_CLIENTS = 2;
const BENCH_REQUESTS = 200;
const BENCH_WARMUP = 20;

/** GET a /metrics page, checking the content type a Prometheus server expects. */
async function scrape(url: string): Promise<Map<string, MetricFamily>> {
  const response = await fetch(url);
  assert.equal(response.status, 200, `${url}: ${response.status}`);
  assert.match(response.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  return parsePrometheusText(await response.text());
}

describe('Prometheus metrics of a replica and of the bench client', { timeout: 240_000 }, () => {
  let test: TestCluster;

  before(async () => {
    test = await startTestCluster({
      clients: ['admin', ...Array.from({ length: BENCH_CLIENTS }, (_, index) => `bench-${index}`)],
    });
  });

  after(async () => {
    await test?.stop();
  });

  it('the bench serves its clients’ metrics, then a replica serves its own', async () => {
    const [executable, ...prefix] = builtEntryPoint();
    const bench = spawn(
      executable!,
      [
        ...prefix,
        'bench',
        '--connect',
        test.config.source,
        '--clients',
        String(BENCH_CLIENTS),
        '--requests',
        String(BENCH_REQUESTS),
        '--warmup',
        String(BENCH_WARMUP),
        // No timed warm-up: the count below is exactly the requests asked for.
        '--warmup-seconds',
        '0',
        '--metrics-port',
        '0',
        // Long enough for the scrape below; the test ends the process once it has scraped.
        '--metrics-linger',
        '600000',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stdout = '';
    let stderr = '';
    bench.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    bench.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => bench.once('exit', (code) => resolve(code)));
    try {
      const url = await waitFor(
        'the bench to print its metrics address',
        async () => /client metrics: (http:\/\/127\.0\.0\.1:\d+\/metrics)/.exec(stderr)?.[1],
        60_000,
      );
      const result = await waitFor(
        'the bench result',
        async () => stdout.split('\n').find((line) => line.startsWith('{')),
        180_000,
      );
      assert.equal((JSON.parse(result) as { errors: number }).errors, 0, result);
      const client = await scrape(url);
      assertServesDocumented(client, 'Client');
      const duration = 'phalanx_client_request_duration_seconds';
      // Every request of the run (warm-up included) was answered once, ordered.
      assert.equal(
        sampleValue(client, duration, `${duration}_count`, { path: 'ordered' }),
        BENCH_REQUESTS + BENCH_WARMUP,
      );
      assert.equal(sampleValue(client, duration, `${duration}_count`, { path: 'fast-path' }), 0);
    } finally {
      if (bench.exitCode === null) bench.kill('SIGTERM');
      await exited;
    }

    const self = test.config.replicas[replicaId(0)]!;
    const replicaUrl = `http://${self.adminHost}:${self.adminPort}/metrics`;
    // Checkpoints become stable a little after the batch that takes them: wait for the first.
    const replica = await waitFor('a stable checkpoint timed on replica 0', async () => {
      const page = await scrape(replicaUrl);
      const stable = 'phalanx_checkpoint_stable_seconds';
      return (sampleValue(page, stable, `${stable}_count`) ?? 0) > 0 ? page : null;
    });
    assertServesDocumented(replica, 'Replica');
    const value = (family: string, suffix: string, labels: Record<string, string> = {}): number =>
      sampleValue(replica, family, `${family}${suffix}`, labels) ?? Number.NaN;
    // Clients send every request to every replica, so replica 0 timed requests it answered.
    assert.ok(value('phalanx_request_duration_seconds', '_count', { kind: 'ordered' }) > 0);
    const executed = value('phalanx_requests_executed_total', '');
    assert.ok(executed >= BENCH_REQUESTS + BENCH_WARMUP, `executed ${executed}`);
    // Every executed request is in exactly one batch.
    assert.equal(value('phalanx_batch_requests', '_sum'), executed);
    assert.equal(value('phalanx_batch_requests', '_count'), value('phalanx_batches_executed_total', ''));
    assert.ok(value('phalanx_storage_flush_seconds', '_count') > 0);
  });
});
