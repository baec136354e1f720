/**
 * The client's prom-client sink (phalanx/metrics) in a registry the application owns: the page
 * serves what docs/metrics.md lists for the client, and each report lands in its series.
 */
import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { prometheusClientMetrics } from '../../src/client/prometheus-metrics.js';
import { assertServesDocumented, sampleValue } from '../prometheus/documented.js';
import { parsePrometheusText } from '../prometheus/text-format.js';

describe('prometheusClientMetrics', () => {
  it("registers the documented metrics in the application's registry and feeds them", async () => {
    const registry = new Registry();
    const sink = prometheusClientMetrics(registry);
    // Every series is there from the start, at 0.
    const empty = parsePrometheusText(await registry.metrics());
    const duration = 'phalanx_client_request_duration_seconds';
    assert.equal(sampleValue(empty, duration, `${duration}_count`, { path: 'fast-path' }), 0);
    sink.completed('ordered', 0.004);
    sink.completed('fast-path', 0.001);
    sink.failed('timeout');
    sink.retransmitted(3);
    sink.fellBack();
    sink.evidenceReported();
    const page = parsePrometheusText(await registry.metrics());
    assertServesDocumented(page, 'Client');
    assert.equal(sampleValue(page, duration, `${duration}_count`, { path: 'ordered' }), 1);
    assert.equal(sampleValue(page, duration, `${duration}_count`, { path: 'fast-path' }), 1);
    const errors = 'phalanx_client_errors_total';
    assert.equal(sampleValue(page, errors, errors, { kind: 'timeout' }), 1);
    assert.equal(sampleValue(page, errors, errors, { kind: 'closed' }), 0);
    // From the start too: a dashboard query for refusals in safe mode finds 0, not nothing.
    assert.equal(sampleValue(page, errors, errors, { kind: 'safe-mode' }), 0);
    const retransmissions = 'phalanx_client_retransmissions_total';
    assert.equal(sampleValue(page, retransmissions, retransmissions), 3);
    // The names are the registry's now: a second sink on it is refused, not merged silently.
    assert.throws(() => prometheusClientMetrics(registry), /already been registered/);
  });
});
