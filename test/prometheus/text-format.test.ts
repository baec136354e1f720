/**
 * The strict Prometheus text parser the metrics tests rely on: it reads what prom-client writes
 * (every type, labels with escapes) and refuses malformed pages, so a passing metrics test means
 * a well-formed page.
 */
import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Counter, Gauge, Histogram, Registry, Summary } from 'prom-client';
import { parsePrometheusText, PrometheusTextError } from './text-format.js';

describe('parsePrometheusText', () => {
  it("reads prom-client's output: types, HELP, labels with escapes, histogram series", async () => {
    const registry = new Registry();
    registry.setDefaultLabels({ replica: '3' });
    const registers = [registry];
    const counter = new Counter({
      name: 'x_total',
      help: 'a "counter"\nwith \\ escapes',
      labelNames: ['what'],
      registers,
    });
    counter.inc({ what: 'quote " backslash \\ newline \n end' }, 2);
    new Gauge({ name: 'x_gauge', help: 'g', registers }).set(-1.5);
    const histogram = new Histogram({
      name: 'x_seconds',
      help: 'h',
      labelNames: ['kind'],
      buckets: [0.1, 1],
      registers,
    });
    histogram.observe({ kind: 'a' }, 0.05);
    histogram.observe({ kind: 'a' }, 5);
    new Summary({ name: 'x_summary', help: 's', percentiles: [0.5], registers }).observe(1);
    new Counter({
      name: 'x_unused_total',
      help: 'never incremented, with labels',
      labelNames: ['l'],
      registers,
    });
    const families = parsePrometheusText(await registry.metrics());
    assert.equal(families.get('x_total')?.type, 'counter');
    assert.equal(families.get('x_total')?.help, 'a "counter"\nwith \\ escapes');
    assert.deepEqual(families.get('x_total')?.samples[0]?.labels, {
      what: 'quote " backslash \\ newline \n end',
      replica: '3',
    });
    assert.equal(families.get('x_gauge')?.samples[0]?.value, -1.5);
    const buckets = families.get('x_seconds')!.samples.filter((sample) => sample.name === 'x_seconds_bucket');
    assert.deepEqual(
      buckets.map((sample) => [sample.labels.le, sample.value]),
      [
        ['0.1', 1],
        ['1', 1],
        ['+Inf', 2],
      ],
    );
    assert.equal(families.get('x_summary')?.type, 'summary');
    assert.equal(families.get('x_unused_total')?.type, 'counter');
    assert.equal(families.get('x_unused_total')?.samples.length, 0);
  });

  it('reads values NaN, ±Inf, exponents and timestamps', () => {
    const families = parsePrometheusText(
      '# TYPE a gauge\na NaN\n# TYPE b gauge\nb{l="v",} -Inf 1700000000000\nc 1.5e-3\n',
    );
    assert.ok(Number.isNaN(families.get('a')!.samples[0]!.value));
    assert.equal(families.get('b')!.samples[0]!.value, Number.NEGATIVE_INFINITY);
    assert.equal(families.get('b')!.samples[0]!.timestamp, 1_700_000_000_000);
    assert.equal(families.get('c')!.type, 'untyped');
    assert.equal(families.get('c')!.samples[0]!.value, 0.0015);
  });

  const refused: Record<string, string> = {
    'no final newline': '# TYPE a gauge\na 1',
    'unknown type': '# TYPE a meter\na 1\n',
    'second TYPE': '# TYPE a gauge\n# TYPE a counter\na 1\n',
    'TYPE after a sample': 'a 1\n# TYPE a gauge\n',
    'invalid value': 'a one\n',
    'bad label escape': 'a{l="\\x"} 1\n',
    'unterminated label value': 'a{l="x} 1\n',
    'duplicate label': 'a{l="x",l="y"} 1\n',
    'duplicate series': 'a{l="x"} 1\na{l="x"} 2\n',
    'family split by another': '# TYPE a gauge\na{l="x"} 1\nb 1\na{l="y"} 2\n',
    'counter with a foreign suffix': '# TYPE a_total counter\na_total_sum 1\n',
    'bucket without le': '# TYPE h histogram\nh_bucket 1\nh_sum 1\nh_count 1\n',
    'no +Inf bucket': '# TYPE h histogram\nh_bucket{le="1"} 1\nh_sum 1\nh_count 1\n',
    'buckets not cumulative':
      '# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n',
    'count not the +Inf bucket': '# TYPE h histogram\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 2\n',
    'le out of order':
      '# TYPE h histogram\nh_bucket{le="2"} 0\nh_bucket{le="1"} 0\nh_bucket{le="+Inf"} 0\nh_sum 0\nh_count 0\n',
    'invalid metric name': '9a 1\n',
    'reserved label name': 'a{__name__="x"} 1\n',
  };
  for (const [what, text] of Object.entries(refused)) {
    it(`refuses: ${what}`, () => {
      assert.throws(() => parsePrometheusText(text), PrometheusTextError);
    });
  }
});
