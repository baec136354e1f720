/**
 * A VIEW-CHANGE that claims a batch prepared where no correct replica can have prepared it
 * (docs/intrusion-tolerance.md, "Detectors"; VIEW_CHANGE_LIE_SUSPICION): another batch than a
 * quorum of COMMITs this replica counted decided there, in that view or later, or than it prepared
 * itself in that view. Such a claim is suspected once per sender, epoch and view; a truthful view
 * change, or a claim from an earlier view than the decision (a correct replica may have prepared
 * another batch then), earns nothing. Real Replica cores and real crypto through the harness.
 */
import * as assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { VIEW_CHANGE_LIE_SUSPICION } from '../../src/core/replica.js';
import { digest, sequenceNumber, viewNumber } from '../../src/messages/ids.js';
import { viewChangePayload } from '../../src/messages/signing.js';
import type { PreparedEntry, ViewChange } from '../../src/messages/types.js';
import { Harness, kv } from './harness.js';

/** Two writes committed in view 0, then a view change to view 1, and a write committed in view 1. */
function afterOneViewChange(): { cluster: Harness; viewChangeOf3: ViewChange } {
  const cluster = new Harness();
  const alice = cluster.client('alice');
  for (let index = 1; index <= 2; index++) cluster.execute(alice.request(kv.put(`k${index}`, `${index}`)));
  for (const id of cluster.ids) cluster.step(id, { kind: 'change-view', reason: 'test: a view change' });
  assert.ok(cluster.advanceUntil(() => cluster.ids.every((id) => cluster.replica(id).view === 1), 5000));
  cluster.execute(alice.request(kv.put('k3', '3')));
  cluster.advance(200);
  const [viewChangeOf3] = cluster.broadcastsOf(3, 'view-change');
  assert.ok(viewChangeOf3 !== undefined, 'replica 3 sent its view change to view 1');
  assert.ok(
    viewChangeOf3.prepared.some((entry) => entry.sequence === 1),
    'it reports what it prepared at sequence 1',
  );
  return { cluster, viewChangeOf3 };
}

/** Replica 3's view change to view 2 with `prepared` as its P-set, signed with its current key. */
function claiming(cluster: Harness, template: ViewChange, prepared: PreparedEntry[]): ViewChange {
  const unsigned: ViewChange = { ...template, newView: viewNumber(2), prepared };
  const signed = cluster.cryptos[3]!.sign(viewChangePayload(unsigned));
  return { ...unsigned, keyEpoch: signed.keyEpoch, signature: signed.signature };
}

const lies = (cluster: Harness, observer: number): string[] =>
  cluster.suspicionReasons(observer, 3).filter((reason) => reason === VIEW_CHANGE_LIE_SUSPICION);

const otherBatch = digest(new Uint8Array(32).fill(0x5a));

describe('a view change that claims what no correct replica prepared', () => {
  test('another batch than the one a quorum committed, in the commit view: suspected once', () => {
    const { cluster, viewChangeOf3 } = afterOneViewChange();
    const lie = claiming(cluster, viewChangeOf3, [
      { sequence: sequenceNumber(1), view: viewNumber(0), batchDigest: otherBatch },
    ]);
    cluster.deliver(3, 1, lie);
    assert.deepEqual(lies(cluster, 1), [VIEW_CHANGE_LIE_SUSPICION]);
    cluster.deliver(3, 1, claiming(cluster, viewChangeOf3, [...lie.prepared]));
    assert.equal(lies(cluster, 1).length, 1, 'once per sender, epoch and view');
  });

  test('the truth, and a claim from before the view the batch was decided in, earn nothing', () => {
    const { cluster, viewChangeOf3 } = afterOneViewChange();
    // Its real P-set.
    cluster.deliver(3, 1, claiming(cluster, viewChangeOf3, [...viewChangeOf3.prepared]));
    // Sequence 3 was committed in view 1: another batch prepared there in view 0 is possible for a
    // correct replica (a proposal of view 0 that never committed).
    cluster.deliver(
      3,
      2,
      claiming(cluster, viewChangeOf3, [
        { sequence: sequenceNumber(3), view: viewNumber(0), batchDigest: otherBatch },
      ]),
    );
    for (const observer of [0, 1, 2]) assert.deepEqual(lies(cluster, observer), []);
    // Both were judged: neither was refused before the claims were looked at.
    for (const observer of [1, 2])
      assert.deepEqual(
        cluster.logs(observer, 'rejected-input').filter((log) => log.details['what'] === 'view-change'),
        [],
      );
    // A truthful cluster's own view changes earned nothing either.
    for (const observer of cluster.ids)
      for (const suspect of cluster.ids)
        if (suspect !== observer)
          assert.ok(!cluster.suspicionReasons(observer, suspect).includes(VIEW_CHANGE_LIE_SUSPICION));
  });
});
