/**
 * A rejuvenated (amnesiac) replica that cannot verify the NEW-VIEW of the view the others are in:
 * the VIEW-CHANGEs inside it carry the checkpoint certificates their senders held when the view
 * changed, and once the epochs of those votes are retired the message proves nothing, while the
 * others, already in that view, never send a newer one. Seen in the whole-cluster restart test:
 * replicas 3 and 4, rejuvenated after every epoch had rotated, rejected every NEW-VIEW with
 * "embedded view change from 0: checkpoint certificate does not verify", and their rejoin request
 * named view 0 (their own), which the others, in view 2, took as settled. The request must name
 * the view the replica sits out (its voting floor), so that the others move past it.
 */
import * as assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { viewNumber } from '../../src/messages/ids.js';
import { EpochBook, EpochCrypto } from './epochs.js';
import { Harness, kv } from './harness.js';

/** A cluster in view 1 whose NEW-VIEW holds certificates under epoch 0, then two replicas rotated. */
function clusterWithStaleNewView(): Harness {
  const book = new EpochBook(4);
  const cluster = new Harness({ coreCrypto: (inner, id) => new EpochCrypto(inner, id, book) });
  const alice = cluster.client('alice');
  for (let index = 1; index <= 4; index++) cluster.execute(alice.request(kv.put(`k${index}`, `${index}`)));
  cluster.advance(500);
  for (const id of cluster.ids) cluster.step(id, { kind: 'change-view', reason: 'guardian: handoff' });
  assert.ok(cluster.advanceUntil(() => cluster.ids.every((id) => cluster.replica(id).view === 1), 5000));
  cluster.advance(500);
  // Replicas 2 and 3 rotate (and their old epochs' grace ends): the certificate of the VIEW-CHANGE
  // from 0 inside view 1's NEW-VIEW keeps two votes that verify, fewer than Q = 3, while the
  // signatures of replica 0 and of the leader, replica 1, still verify.
  book.rotateAndExpireOld([2, 3]);
  for (const id of cluster.ids) cluster.step(id, { kind: 'keys-changed' });
  cluster.advance(1000);
  return cluster;
}

const staleNewViewRejected = (cluster: Harness): boolean =>
  cluster
    .logs(3, 'rejected-input')
    .some(
      (log) =>
        log.details['what'] === 'new-view' &&
        /embedded view change from \d+: checkpoint certificate does not verify/.test(
          String(log.details['reason']),
        ),
    );

describe('an amnesiac replica that cannot verify the current NEW-VIEW', () => {
  test('asks for a view change above its voting floor, not above its own view, and votes again', () => {
    const cluster = clusterWithStaleNewView();
    cluster.rejuvenate(3);
    cluster.advance(2000);
    const rejoining = cluster.replica(3);
    assert.ok(staleNewViewRejected(cluster), 'the NEW-VIEW of view 1 no longer verifies');
    assert.equal(rejoining.view, 0, 'it could not install view 1');
    assert.equal(rejoining.voting, false);
    assert.ok(rejoining.votingFloorKnown);
    assert.equal(rejoining.rejoinAboveView, 1, 'the view it sits out is the others’ view');

    // What the guardians did before: the request named the replica's own view, which the others
    // are past, so they took it as settled and nothing changed.
    for (const id of cluster.ids)
      cluster.step(id, { kind: 'change-view', reason: 'guardian: rejoin', aboveView: rejoining.view });
    cluster.advance(3000);
    assert.equal(cluster.replica(0).view, 1, 'the others stayed in view 1');
    assert.equal(cluster.replica(3).voting, false, 'still sitting out');

    // Above the voting floor: a fresh view change, whose certificates verify under current epochs.
    const aboveView = viewNumber(cluster.replica(3).rejoinAboveView);
    for (const id of cluster.ids)
      cluster.step(id, { kind: 'change-view', reason: 'guardian: rejoin', aboveView });
    assert.ok(
      cluster.advanceUntil(() => cluster.replica(3).voting, 5000),
      'it votes again',
    );
    assert.ok(cluster.replica(3).view >= 2);
    // And the cluster orders with it.
    const bob = cluster.client('bob');
    cluster.execute(bob.request(kv.put('after', 'rejoin')));
    cluster.advance(500);
    assert.equal(cluster.read(3, 'after'), 'rejoin');
  });

  test('a replica that is not amnesiac asks above its own view', () => {
    const cluster = clusterWithStaleNewView();
    for (const id of cluster.ids) assert.equal(cluster.replica(id).rejoinAboveView, cluster.replica(id).view);
  });
});
