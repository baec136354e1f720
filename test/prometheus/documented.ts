/**
 * The metrics docs/metrics.md documents for one process, read from its tables, and the check
 * that a scraped page serves exactly those: every documented name with its documented type, and
 * no `phalanx_` metric the page has that the table lacks. Tests compare the code with the doc
 * through this, so the two cannot drift apart.
 */
import * as assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { MetricFamily, MetricType } from './text-format.js';

const METRICS_DOC = fileURLToPath(new URL('../../docs/metrics.md', import.meta.url));

/** The sections of docs/metrics.md, one per process (its `## ` heading). */
export type MetricsSection = 'Replica' | 'Guardian' | 'Client';

export interface DocumentedMetric {
  readonly name: string;
  readonly type: MetricType;
  /** The labels cell is empty: the metric has exactly one series, always there. */
  readonly unlabelled: boolean;
}

const ROW = /^\| `(phalanx_[a-z0-9_]+)` \| (counter|gauge|histogram|summary) \|([^|]*)\|/;

export function documentedMetrics(section: MetricsSection): DocumentedMetric[] {
  const lines = readFileSync(METRICS_DOC, 'utf8').split('\n');
  const start = lines.indexOf(`## ${section}`);
  assert.ok(start >= 0, `docs/metrics.md has no "## ${section}" section`);
  const end = lines.findIndex((line, index) => index > start && line.startsWith('## '));
  const metrics: DocumentedMetric[] = [];
  for (const line of lines.slice(start + 1, end < 0 ? undefined : end)) {
    if (!line.startsWith('| `phalanx_')) continue;
    const match = ROW.exec(line);
    assert.ok(match !== null, `docs/metrics.md, ${section}: a row that does not parse: ${line}`);
    metrics.push({ name: match[1]!, type: match[2] as MetricType, unlabelled: match[3]!.trim() === '' });
  }
  assert.ok(metrics.length > 0, `docs/metrics.md, ${section}: no metrics listed`);
  return metrics;
}

/** The page serves what the doc lists for `section`, with the same types, and nothing more. */
export function assertServesDocumented(
  families: ReadonlyMap<string, MetricFamily>,
  section: MetricsSection,
): void {
  const documented = documentedMetrics(section);
  for (const metric of documented) {
    const family = families.get(metric.name);
    assert.ok(family !== undefined, `${metric.name} (docs/metrics.md, ${section}) is not served`);
    assert.equal(family.type, metric.type, `type of ${metric.name}`);
    if (metric.unlabelled) assert.ok(family.samples.length > 0, `${metric.name} has no sample`);
  }
  const names = new Set(documented.map((metric) => metric.name));
  const undocumented = [...families.keys()].filter((name) => name.startsWith('phalanx_') && !names.has(name));
  assert.deepEqual(undocumented, [], `served but not in docs/metrics.md, ${section}`);
}

/** The value of one series (name and labels exactly), or undefined. */
export function sampleValue(
  families: ReadonlyMap<string, MetricFamily>,
  family: string,
  name: string,
  labels: Readonly<Record<string, string>> = {},
): number | undefined {
  const wanted = Object.entries(labels);
  return families
    .get(family)
    ?.samples.find(
      (sample) => sample.name === name && wanted.every(([label, value]) => sample.labels[label] === value),
    )?.value;
}
