/**
 * A proven replica is cut off at once (docs/intrusion-tolerance.md, "A proven replica is cut off
 * at once"): from the `cut-off` event (or the replica's own proof) its messages are not counted,
 * a cut-off leader is replaced, and the cut-off ends when its key epoch rises above the proof's.
 */
import * as assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { sessionPublicKeys } from '../../src/crypto/replica-crypto.js';
import { keyEpoch, replicaId } from '../../src/messages/ids.js';
import { Harness, kv, replicaSessionKeys } from './harness.js';

function cutOffEverywhere(cluster: Harness, culprit: number, epoch = 0): void {
  for (const id of cluster.ids)
    if (id !== culprit)
      cluster.step(id, {
        kind: 'cut-off',
        replica: replicaId(culprit),
        keyEpoch: keyEpoch(epoch),
        reason: 'proof: test',
      });
}

describe('a proven replica is cut off', () => {
  test('its votes no longer make a quorum: with one more replica away, nothing commits', () => {
    const cluster = new Harness();
    const alice = cluster.client('alice');
    cutOffEverywhere(cluster, 3);
    // Replica 2 away: 0, 1 and the cut-off 3 would be a quorum of 3 if 3 still counted.
    cluster.disconnected.add(2);
    cluster.submit(alice.request(kv.put('a', '1')), [0, 1, 3]);
    cluster.advance(1_000);
    assert.equal(cluster.read(0, 'a'), null, 'nothing committed on the cut-off replica votes');
    const entry = cluster.replica(0).cutOff.get(replicaId(3));
    assert.ok(entry !== undefined && entry.dropped > 0, 'replica 0 dropped the cut-off replica messages');
    // Replica 2 back: 0, 1 and 2 are the quorum, and the request commits without replica 3.
    cluster.disconnected.delete(2);
    assert.ok(
      cluster.advanceUntil(() => cluster.read(0, 'a') === '1', 10_000),
      'committed with the others',
    );
    assert.equal(cluster.read(1, 'a'), '1');
  });

  test('a cut-off leader is replaced at once, without waiting for a request timeout', () => {
    const cluster = new Harness();
    const alice = cluster.client('alice');
    cutOffEverywhere(cluster, 0);
    for (const id of [1, 2, 3]) {
      const started = cluster.logs(id, 'view-change-started');
      assert.ok(
        started.some((log) => String(log.details.reason).includes('leader cut off')),
        `replica ${id} started a view change: ${JSON.stringify(started.map((log) => log.details))}`,
      );
    }
    cluster.run();
    cluster.advance(1_000);
    assert.ok(cluster.replica(1).view >= 1);
    cluster.execute(alice.request(kv.put('b', '2')), [0, 1, 2, 3]);
    assert.equal(cluster.read(1, 'b'), '2');
  });

  test('ends once the culprit has a later key epoch (it was rejuvenated), and not before', () => {
    const cluster = new Harness();
    cutOffEverywhere(cluster, 3);
    cluster.step(0, { kind: 'keys-changed' });
    assert.ok(cluster.replica(0).cutOff.has(replicaId(3)), 'still cut off under the same epoch');
    cluster.registry.installReplicaEpoch(replicaId(3), keyEpoch(1), sessionPublicKeys(replicaSessionKeys(3)));
    cluster.step(0, { kind: 'keys-changed' });
    assert.equal(cluster.replica(0).cutOff.size, 0);
    assert.equal(cluster.logs(0, 'replica-cut-off-lifted').length, 1);
  });

  test('a proof under an epoch older than the culprit current one cuts nobody off, nor does one against itself', () => {
    const cluster = new Harness();
    cluster.registry.installReplicaEpoch(replicaId(3), keyEpoch(1), sessionPublicKeys(replicaSessionKeys(3)));
    cluster.step(0, {
      kind: 'cut-off',
      replica: replicaId(3),
      keyEpoch: keyEpoch(0),
      reason: 'proof: stale',
    });
    cluster.step(0, { kind: 'cut-off', replica: replicaId(0), keyEpoch: keyEpoch(0), reason: 'proof: self' });
    assert.equal(cluster.replica(0).cutOff.size, 0);
    assert.equal(cluster.logs(0, 'replica-cut-off').length, 0);
  });
});
