/**
 * A guardian's GET /metrics on a real guardian cluster (six guardians, six replicas, loopback):
 * parsed with a strict Prometheus text-format parser, it serves exactly the names and types
 * docs/metrics.md lists for the guardian, with the schedule's bounds and the replica's key
 * epoch as the guardian's status reports them. Short: no rejuvenation is waited for (the
 * counting of recoveries, alarms and evidence is checked on status snapshots in
 * test/recovery/guardian-metrics.test.ts).
 */
import * as assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { replicaId } from '../../../src/messages/ids.js';
import { assertServesDocumented, sampleValue } from '../../prometheus/documented.js';
import { parsePrometheusText } from '../../prometheus/text-format.js';
import { type TestCluster, startTestCluster } from '../helpers.js';
import { up } from './shared.js';

const RECOVERY_BOUND_MS = 8000;

describe("a guardian's Prometheus metrics", { timeout: 240_000 }, () => {
  let test: TestCluster;

  before(async () => {
    test = await startTestCluster({ f: 1, k: 1, recovery: { recoveryBoundMs: RECOVERY_BOUND_MS } });
  });

  after(async () => {
    await test?.stop();
  });

  it('serves the documented metrics with the values of its status', async () => {
    const self = test.config.replicas[replicaId(1)]!;
    const response = await fetch(`http://${self.adminHost}:${self.guardianAdminPort}/metrics`);
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    const page = parsePrometheusText(await response.text());
    assertServesDocumented(page, 'Guardian');
    const status = up(await test.guardians()).find((guardian) => guardian.replica === 1);
    assert.ok(status !== undefined, 'guardian 1 answers GET /status');
    const value = (name: string, labels: Record<string, string> = {}): number | undefined =>
      sampleValue(page, name, name, { replica: '1', ...labels });
    assert.equal(value('phalanx_guardian_recovery_bound_seconds'), RECOVERY_BOUND_MS / 1000);
    assert.equal(value('phalanx_guardian_exposure_bound_seconds'), status.guaranteeMs / 1000);
    assert.equal(value('phalanx_guardian_recovery_period_seconds'), status.periodMs / 1000);
    // One-hot over the process states. Which state it is depends on when the scrape lands
    // (the replica may still be starting, or a recovery may have begun): a CI run scraped it
    // before the replica was running.
    const processStates = ['running', 'stopped', 'starting'].map(
      (state) => value('phalanx_guardian_replica_process', { state }) ?? 0,
    );
    assert.deepEqual(
      processStates.toSorted((a, b) => a - b),
      [0, 0, 1],
      `process states ${processStates.join(',')}`,
    );
    const keyEpoch = value('phalanx_guardian_key_epoch');
    assert.ok(
      keyEpoch !== undefined && keyEpoch >= 0 && keyEpoch <= status.keyEpoch,
      `key epoch ${keyEpoch}`,
    );
    // The histogram is declared (HELP, TYPE) whether or not a rejuvenation ended yet: usually
    // none has (no series), but on a loaded machine the cluster's start can outlast the first
    // proactive slot (a suite run of 2026-12-02 scraped one). Its series are then a histogram's:
    // buckets cumulative up to +Inf, which equals the count.
    const samples = page.get('phalanx_guardian_recovery_duration_seconds')!.samples;
    const series = new Map<string, { readonly le: number; readonly value: number }[]>();
    for (const sample of samples) {
      if (!sample.name.endsWith('_bucket')) continue;
      const key = sample.labels.kind ?? '';
      const le = sample.labels.le === '+Inf' ? Number.POSITIVE_INFINITY : Number(sample.labels.le);
      series.set(key, [...(series.get(key) ?? []), { le, value: sample.value }]);
    }
    for (const [kind, buckets] of series) {
      const ordered = buckets.toSorted((a, b) => a.le - b.le);
      for (let index = 1; index < ordered.length; index++)
        assert.ok(ordered[index]!.value >= ordered[index - 1]!.value, `${kind} buckets are cumulative`);
      const count = samples.find((sample) => sample.name.endsWith('_count') && sample.labels.kind === kind);
      assert.equal(ordered.at(-1)!.le, Number.POSITIVE_INFINITY, `${kind} has a +Inf bucket`);
      assert.equal(ordered.at(-1)!.value, count?.value, `${kind}: +Inf bucket is the count`);
    }
  });
});
