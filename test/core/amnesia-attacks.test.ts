/**
 * Attacks on an amnesiac replica (just rejuvenated, or restarted without its log), written from the
 * attacker's side. The amnesiac learns which views it must sit out from its peers' STATUS messages,
 * which are not signed: one faulty replica must not be able to keep it from voting for ever, and
 * whatever it claims may cost at most one view change.
 */
import * as assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { sequenceNumber, viewNumber } from '../../src/messages/ids.js';
import type { Status } from '../../src/messages/types.js';
import { Harness, kv } from './harness.js';

/** Far beyond anything the cluster will reach, still a valid varuint on the wire. */
const INFLATED = 2 ** 50;

function inflatedStatus(from: number, claims: { view?: number; stable?: number }): Status {
  return {
    kind: 'status',
    replicaId: from as Status['replicaId'],
    view: viewNumber(claims.view ?? INFLATED),
    viewChangeInProgress: false,
    lastExecuted: sequenceNumber(INFLATED),
    stableCheckpoint: sequenceNumber(claims.stable ?? INFLATED),
  };
}

/** The guardians' rejoin: every replica is asked for a view change above the rejuvenated one's view. */
function rejoinViewChange(cluster: Harness, aboveView: number): void {
  for (const id of cluster.ids)
    cluster.step(id, { kind: 'change-view', reason: 'rejoin', aboveView: viewNumber(aboveView) });
}

function abstainLog(cluster: Harness, id: number): Record<string, unknown> | undefined {
  return cluster.logs(id, 'amnesiac-abstains').at(-1)?.details;
}

describe('inflated STATUS to an amnesiac replica', () => {
  test('1. one replica claiming an unreachable view and checkpoint does not set the floor: the rejuvenated replica votes after one view change, and the cluster commits once the attacker goes silent', () => {
    const cluster = new Harness();
    const alice = cluster.client('alice');
    for (let index = 1; index <= 6; index++) cluster.execute(alice.request(kv.put(`k${index}`, `${index}`)));
    cluster.rejuvenate(3);
    assert.equal(cluster.replica(3).amnesiac, true);
    // Replica 2 is the attacker: its first word to the rejuvenated replica is the lie, and it never
    // tells it the truth afterwards.
    cluster.deliver(2, 3, inflatedStatus(2, {}));
    cluster.filter = (envelope) =>
      envelope.from === 2 && envelope.to === 3 && envelope.message.kind === 'status' ? 'drop' : 'deliver';
    assert.ok(cluster.advanceUntil(() => cluster.replica(3).votingFloorKnown, 3000));

    // One view change, the one a rejuvenation always costs.
    rejoinViewChange(cluster, cluster.replica(3).view);
    assert.ok(cluster.advanceUntil(() => cluster.ids.every((id) => cluster.replica(id).view === 1), 5000));
    assert.ok(
      cluster.advanceUntil(() => cluster.replica(3).voting, 2000),
      'it votes again in view 1',
    );

    // The attacker stops (silent): replicas 0, 1 and 3 are a quorum only if 3 votes.
    cluster.disconnected.add(2);
    const next = alice.request(kv.put('after', 'attack'));
    cluster.submit(next, [0, 1, 3]);
    assert.ok(
      cluster.advanceUntil(() => [0, 1, 3].every((id) => cluster.executionOf(id, next) !== undefined), 5000),
      'the cluster commits without the attacker',
    );
    const abstains = abstainLog(cluster, 3);
    assert.ok(abstains !== undefined);
    assert.equal(abstains.throughView, 0, 'the floor is the view the correct replicas reported');
    assert.ok(Number(abstains.untilCheckpoint) <= 4 + cluster.config.logWindow, 'the horizon too');
  });

  test('2. an inflated checkpoint claim does not push the amnesia horizon out of reach: the replica votes again through the horizon, with no view change', () => {
    const cluster = new Harness();
    const alice = cluster.client('alice');
    for (let index = 1; index <= 6; index++) cluster.execute(alice.request(kv.put(`k${index}`, `${index}`)));
    cluster.rejuvenate(3);
    cluster.deliver(2, 3, inflatedStatus(2, { view: 0 }));
    cluster.filter = (envelope) =>
      envelope.from === 2 && envelope.to === 3 && envelope.message.kind === 'status' ? 'drop' : 'deliver';
    assert.ok(cluster.advanceUntil(() => cluster.replica(3).votingFloorKnown, 3000));
    // logWindow (16) and a checkpoint interval more of progress take its stable checkpoint past the horizon.
    for (let index = 7; index <= 6 + 24; index++) {
      cluster.execute(alice.request(kv.put(`k${index}`, `${index}`)));
      cluster.advance(50);
    }
    assert.ok(
      cluster.advanceUntil(() => cluster.replica(3).voting, 2000),
      'it votes again',
    );
    assert.equal(cluster.replica(3).view, 0, 'without a view change');
    assert.equal(cluster.logs(3, 'amnesiac-rejoined').length, 1);
  });

  test('3. a view that f + 1 replicas report is vouched for and still sets the floor (the quorum argument is kept)', () => {
    const cluster = new Harness();
    const alice = cluster.client('alice');
    for (let index = 1; index <= 2; index++) cluster.execute(alice.request(kv.put(`k${index}`, `${index}`)));
    cluster.rejuvenate(3);
    // Replicas 1 and 2 both say view 5: at least one of them is correct and got there.
    cluster.deliver(1, 3, inflatedStatus(1, { view: 5, stable: 0 }));
    cluster.deliver(2, 3, inflatedStatus(2, { view: 5, stable: 0 }));
    const abstains = abstainLog(cluster, 3);
    assert.ok(abstains !== undefined, 'two vouched reports (Q − 1) fix the floor');
    assert.equal(abstains.throughView, 5);
  });

  test('4. a lone claim of a view nobody vouches for is not counted; the floor waits for Q − 1 reporters that are', () => {
    const cluster = new Harness();
    cluster.rejuvenate(3);
    cluster.deliver(2, 3, inflatedStatus(2, { view: 7, stable: 0 }));
    cluster.deliver(1, 3, inflatedStatus(1, { view: 0, stable: 0 }));
    assert.equal(cluster.replica(3).votingFloorKnown, false, 'the lone claim of view 7 does not count');
    cluster.deliver(0, 3, inflatedStatus(0, { view: 0, stable: 0 }));
    assert.equal(cluster.replica(3).votingFloorKnown, true);
    assert.equal(abstainLog(cluster, 3)?.throughView, 0);
    assert.equal(abstainLog(cluster, 3)?.unvouchedReporters, 1);
  });
});
