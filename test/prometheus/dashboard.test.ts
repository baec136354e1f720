/**
 * The example Grafana dashboard (docs/grafana-dashboard.json) queries only metrics that
 * docs/metrics.md documents (and so the processes serve), and uses histograms as histograms.
 */
import * as assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { documentedMetrics } from './documented.js';

const DASHBOARD = fileURLToPath(new URL('../../docs/grafana-dashboard.json', import.meta.url));

interface Panel {
  readonly type: string;
  readonly title: string;
  readonly targets?: readonly { readonly expr: string }[];
}

describe('docs/grafana-dashboard.json', () => {
  it('queries documented metrics only, histograms through their _bucket, _sum or _count', () => {
    const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as { panels: Panel[] };
    const documented = new Map(
      (['Replica', 'Guardian', 'Client'] as const).flatMap((section) =>
        documentedMetrics(section).map((metric) => [metric.name, metric.type] as const),
      ),
    );
    const queried = new Set<string>();
    for (const panel of dashboard.panels) {
      if (panel.type === 'row') continue;
      assert.ok((panel.targets ?? []).length > 0, `panel ${panel.title} has no query`);
      for (const { expr } of panel.targets ?? []) {
        for (const [name] of expr.matchAll(/phalanx_[a-z0-9_]+/g)) {
          const histogram = /^(.*)_(bucket|sum|count)$/.exec(name)?.[1];
          if (histogram !== undefined && documented.get(histogram) === 'histogram') {
            queried.add(histogram);
            continue;
          }
          assert.ok(documented.has(name), `panel ${panel.title} queries ${name}, not in docs/metrics.md`);
          assert.notEqual(documented.get(name), 'histogram', `${name} queried without _bucket/_sum/_count`);
          queried.add(name);
        }
      }
    }
    // The panels the dashboard is for.
    for (const name of [
      'phalanx_requests_executed_total',
      'phalanx_request_duration_seconds',
      'phalanx_guardian_exposure_seconds',
      'phalanx_guardian_recovery_duration_seconds',
      'phalanx_guardian_alarms_total',
      'phalanx_client_request_duration_seconds',
    ])
      assert.ok(queried.has(name), `no panel queries ${name}`);
  });
});
