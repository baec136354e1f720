/**
 * The unproven checkpoint claim (docs/intrusion-tolerance.md, "Detectors"): a peer whose STATUS
 * claims a stable checkpoint above every certificate this replica verified, and never proves it
 * within the silence limit, is suspected (UNPROVEN_CHECKPOINT_SUSPICION), once per limit; a correct
 * peer ahead sends the certificate when it sees this replica behind, so it is never suspected.
 * Real Replica cores through the harness, n = 4, f = 1.
 */
import * as assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { UNPROVEN_CHECKPOINT_SUSPICION, silenceLimitMs } from '../../src/core/replica.js';
import { replicaId, sequenceNumber, viewNumber } from '../../src/messages/ids.js';
import type { Status } from '../../src/messages/types.js';
import { Harness, kv } from './harness.js';

const unproven = (cluster: Harness, observer: number, suspect: number): string[] =>
  cluster.suspicionReasons(observer, suspect).filter((reason) => reason === UNPROVEN_CHECKPOINT_SUSPICION);

/** Replica 3's STATUS, as an intruder holding it rewrites it: a stable checkpoint nobody reached. */
function inflated(cluster: Harness, claimed: number): Status {
  return {
    kind: 'status',
    replicaId: replicaId(3),
    view: viewNumber(0),
    viewChangeInProgress: false,
    lastExecuted: sequenceNumber(cluster.replica(1).lastExecuted),
    stableCheckpoint: sequenceNumber(claimed),
  };
}

describe('the unproven checkpoint claim', () => {
  test('a peer that claims a stable checkpoint it never proves is suspected after the limit, once per limit', () => {
    const cluster = new Harness();
    const limit = silenceLimitMs(cluster.config);
    // Replica 3's own STATUS messages are replaced by the inflated one; the rest it sends as usual.
    const claimed = 2 ** 40;
    cluster.filter = (envelope) =>
      envelope.from === 3 &&
      envelope.message.kind === 'status' &&
      envelope.message.stableCheckpoint !== claimed
        ? 'drop'
        : 'deliver';
    const claimFor = (ms: number): void => {
      const until = cluster.now + ms;
      while (cluster.now < until) {
        for (const observer of [0, 1, 2]) cluster.inject(3, observer, inflated(cluster, claimed));
        cluster.advance(cluster.config.statusIntervalMs, 50);
      }
    };
    claimFor(limit - 2 * cluster.config.statusIntervalMs);
    for (const observer of [0, 1, 2]) assert.deepEqual(unproven(cluster, observer, 3), [], 'not yet');
    claimFor(3 * cluster.config.statusIntervalMs);
    for (const observer of [0, 1, 2]) assert.equal(unproven(cluster, observer, 3).length, 1);
    assert.ok(cluster.logs(1, 'unproven-checkpoint-claim').length === 1);
    claimFor(limit);
    assert.equal(unproven(cluster, 1, 3).length, 2, 'again after another limit');
  });

  test('a correct peer ahead proves its stable checkpoint and is never suspected', () => {
    const cluster = new Harness();
    const alice = cluster.client('alice');
    // Replica 2 misses everything while the others make checkpoints stable.
    cluster.filter = (envelope) => (envelope.to === 2 ? 'drop' : 'deliver');
    for (let index = 0; index < 3 * cluster.config.checkpointInterval; index++)
      cluster.execute(alice.request(kv.put(`k${index}`, `${index}`)), [0, 1, 3]);
    assert.ok(cluster.replica(1).stableCheckpoint.sequence > 0);
    cluster.filter = null;
    cluster.advance(3 * silenceLimitMs(cluster.config));
    for (const suspect of [0, 1, 3]) assert.deepEqual(unproven(cluster, 2, suspect), []);
    assert.ok(
      cluster.replica(2).stableCheckpoint.sequence >=
        cluster.replica(1).stableCheckpoint.sequence - cluster.config.checkpointInterval,
    );
  });
});
