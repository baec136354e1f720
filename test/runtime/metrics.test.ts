/**
 * A replica's metrics without processes: the durations it times from what the node reports
 * (request arrival to reply, checkpoint taken to stable, view change, state transfer), the table
 * of unanswered requests staying bounded, and the page serving what docs/metrics.md lists.
 */
import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MAX_TIMED_REQUESTS, ReplicaMetrics } from '../../src/runtime/metrics.js';
import type { ReplicaStatus } from '../../src/runtime/status.js';
import { assertServesDocumented, sampleValue } from '../prometheus/documented.js';
import { parsePrometheusText } from '../prometheus/text-format.js';

const STATUS = {
  view: 2,
  lastExecuted: 40,
  stableCheckpoint: 32,
  pendingRequests: 0,
  connectedPeers: 3,
  keyEpoch: 0,
  leaderTurnaroundMs: 12,
  leaderTurnaroundExpectationMs: 150,
  leaderLeftOutClients: 3,
  leaderLeftOutClientsLimit: 4,
} as ReplicaStatus;

describe('ReplicaMetrics', () => {
  it('serves what docs/metrics.md lists for the replica, and times what the node reports', async () => {
    const metrics = new ReplicaMetrics(1, 16);
    const empty = parsePrometheusText(await metrics.render(STATUS));
    const duration = 'phalanx_request_duration_seconds';
    assert.equal(sampleValue(empty, duration, `${duration}_count`, { kind: 'read-only' }), 0);
    assert.equal(sampleValue(empty, 'phalanx_leader_turnaround_ms', 'phalanx_leader_turnaround_ms', {}), 12);
    assert.equal(
      sampleValue(
        empty,
        'phalanx_leader_turnaround_expectation_ms',
        'phalanx_leader_turnaround_expectation_ms',
        {},
      ),
      150,
    );
    const leftOut = 'phalanx_leader_left_out_clients';
    assert.equal(sampleValue(empty, leftOut, leftOut, {}), 3);
    assert.equal(sampleValue(empty, `${leftOut}_limit`, `${leftOut}_limit`, {}), 4);
    metrics.requestArrived('alice', 7);
    metrics.requestArrived('alice', 7); // a retransmission: timed from the first arrival, once
    metrics.replySent('alice', 7, false);
    metrics.replySent('alice', 7, false); // a reply sent again: nothing left to time
    metrics.requestArrived('bob', 1);
    metrics.replySent('bob', 1, true);
    metrics.replySent('carol', 1, false); // relayed to this replica in a batch: never arrived here
    metrics.executed(15, 3);
    metrics.executed(16, 1); // takes checkpoint 16
    metrics.logged('checkpoint-stable', { sequence: 16 });
    metrics.logged('checkpoint-stable', { sequence: 32 }); // not taken here (a state transfer)
    metrics.logged('view-change-started', { from: 1, to: 2 });
    metrics.logged('view-change-started', { from: 2, to: 3 });
    metrics.logged('view-installed', { view: 3 });
    metrics.logged('state-transfer-completed', { sequence: 32, durationMs: 1500 });
    metrics.checkpointStored(0.02);
    const page = parsePrometheusText(await metrics.render(STATUS));
    assertServesDocumented(page, 'Replica');
    const value = (family: string, suffix: string, labels: Record<string, string> = {}): number | undefined =>
      sampleValue(page, family, `${family}${suffix}`, labels);
    assert.equal(value('phalanx_request_duration_seconds', '_count', { kind: 'ordered' }), 1);
    assert.equal(value('phalanx_request_duration_seconds', '_count', { kind: 'read-only' }), 1);
    assert.equal(value('phalanx_batch_requests', '_count'), 2);
    assert.equal(value('phalanx_batch_requests', '_sum'), 4);
    assert.equal(value('phalanx_checkpoint_stable_seconds', '_count'), 1);
    assert.equal(value('phalanx_view_change_seconds', '_count'), 1);
    assert.equal(value('phalanx_state_transfer_seconds', '_sum'), 1.5);
    assert.equal(value('phalanx_checkpoint_store_seconds', '_count'), 1);
    assert.equal(value('phalanx_view', '', { replica: '1' }), 2);
  });

  it('keeps at most MAX_TIMED_REQUESTS unanswered requests, counting those it leaves untimed', async () => {
    const metrics = new ReplicaMetrics(0, 16);
    for (let number = 0; number < MAX_TIMED_REQUESTS + 10; number++) metrics.requestArrived('flood', number);
    metrics.replySent('flood', MAX_TIMED_REQUESTS + 5, false); // was not kept
    metrics.replySent('flood', 0, false);
    const page = parsePrometheusText(await metrics.render(STATUS));
    assert.equal(
      sampleValue(page, 'phalanx_request_timings_dropped_total', 'phalanx_request_timings_dropped_total'),
      10,
    );
    assert.equal(
      sampleValue(page, 'phalanx_request_duration_seconds', 'phalanx_request_duration_seconds_count', {
        kind: 'ordered',
      }),
      1,
    );
  });
});
