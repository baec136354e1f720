/**
 * Claims about restarting a replica with its disk, written from what can go wrong: a replica that
 * restarts must vote again as soon as that is safe, must never repeat a vote differently, and must
 * never answer from a state older than the one it had on its disk.
 */
import * as assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Action } from '../../src/core/actions.js';
import { keyEpoch, replicaId, viewNumber } from '../../src/messages/ids.js';
import { Replica } from '../../src/core/replica.js';
import { KeyRegistry } from '../../src/crypto/key-registry.js';
import { ReplicaCrypto } from '../../src/crypto/replica-crypto.js';
import { KvService } from '../../src/apps/kv/index.js';
import type { ReplicaMessage } from '../../src/messages/types.js';
import { evidenceChecker, Harness, kv, recordSequence, replicaSessionKeys } from './harness.js';

function outgoing(actions: readonly Action[], kind: ReplicaMessage['kind']): ReplicaMessage[] {
  const found: ReplicaMessage[] = [];
  for (const action of actions) {
    if ((action.kind === 'send' || action.kind === 'broadcast') && action.message.kind === kind)
      found.push(action.message);
  }
  return found;
}

function sequencesOf(messages: readonly ReplicaMessage[]): number[] {
  return messages.map((message) => ('sequence' in message ? message.sequence : -1));
}

describe('restart with an intact disk', () => {
  test('1. a restarted backup votes again at once: with another replica down, its view still commits', () => {
    const cluster = new Harness();
    const alice = cluster.client('alice');
    for (let index = 1; index <= 6; index++) cluster.execute(alice.request(kv.put(`k${index}`, `${index}`)));
    cluster.crash(3);
    // The others go on while it is down (past every sequence it may have voted on).
    for (let index = 7; index <= 20; index++)
      cluster.execute(alice.request(kv.put(`k${index}`, `${index}`)), [0, 1, 2]);
    cluster.restart(3, 'intact');
    assert.ok(cluster.advanceUntil(() => cluster.replica(3).lastExecuted === 20, 5000));
    assert.equal(cluster.replica(3).view, 0);
    assert.equal(cluster.replica(3).voting, true, 'a backup restarted mid-view votes again');
    assert.ok(cluster.logs(3, 'restart-votes-again').length === 1);

    // Replicas 0, 1 and 3 are a quorum only if 3 takes part: no view change may be needed.
    cluster.crash(2);
    const next = alice.request(kv.put('after', 'v'));
    cluster.submit(next, [0, 1, 3]);
    assert.ok(
      cluster.advanceUntil(() => [0, 1, 3].every((id) => cluster.executionOf(id, next) !== undefined), 3000),
    );
    for (const id of [0, 1, 3]) {
      assert.equal(cluster.replica(id).view, 0, `replica ${id} stayed in view 0`);
      assert.equal(cluster.executionOf(id, next)?.sequence, 21);
    }
    assert.deepEqual(
      cluster.stepsOf(3).flatMap((step) => outgoing(step.actions, 'view-change')),
      [],
      'no view change was needed',
    );
  });

  test('2. it never votes at a sequence it may have voted on and forgotten (up to its durable vote bound)', () => {
    const cluster = new Harness();
    const alice = cluster.client('alice');
    for (let index = 1; index <= 5; index++) cluster.execute(alice.request(kv.put(`k${index}`, `${index}`)));
    // Sequence 5's records never reached replica 3's disk (accepted proposals are written lazily).
    const disk = cluster.disks[3]!;
    const bounds = disk.records.flatMap((record) =>
      record.kind === 'view' && record.voteBound !== undefined ? [record.voteBound] : [],
    );
    const bound = Math.max(...bounds);
    assert.ok(bound >= 5, `the vote bound covers the votes sent (bound ${bound})`);
    disk.records = disk.records.filter((record) => record.kind === 'view' || recordSequence(record) !== 5);
    cluster.crash(3);
    cluster.restart(3, 'intact');
    assert.equal(cluster.replica(3).voting, true);
    // Others retransmit what 3 missed; it learns sequence 5 from their commits, voting on none of it.
    assert.ok(cluster.advanceUntil(() => cluster.replica(3).lastExecuted === 5, 3000));
    const after = cluster.stepsOf(3).filter((step) => step.incarnation === 1);
    const prepared = after.flatMap((step) => sequencesOf(outgoing(step.actions, 'prepare')));
    const committed = after.flatMap((step) => sequencesOf(outgoing(step.actions, 'commit')));
    assert.ok(!prepared.includes(5) && !committed.includes(5), 'no vote at sequence 5');

    // Above the bound it votes normally.
    for (let index = 6; index <= bound + 1; index++) cluster.execute(alice.request(kv.put(`m${index}`, 'x')));
    const later = cluster.stepsOf(3).filter((step) => step.incarnation === 1);
    const preparedLater = later.flatMap((step) => sequencesOf(outgoing(step.actions, 'prepare')));
    assert.ok(preparedLater.includes(bound + 1), `it prepares sequence ${bound + 1}`);
    for (let sequence = 1; sequence <= bound; sequence++) {
      if (sequence <= 5) assert.ok(!preparedLater.includes(sequence));
    }
  });

  test('3. a restarted leader sits its view out (its proposals are persisted lazily) and asks for the next one at once', () => {
    const cluster = new Harness();
    const alice = cluster.client('alice');
    for (let index = 1; index <= 3; index++) cluster.execute(alice.request(kv.put(`k${index}`, `${index}`)));
    cluster.crash(0);
    cluster.restart(0, 'intact');
    assert.equal(cluster.logs(0, 'restart-votes-again').length, 0);
    const steps = cluster.stepsOf(0).filter((step) => step.incarnation === 1);
    assert.ok(
      steps.some((step) => outgoing(step.actions, 'view-change').length > 0),
      'it asked for view 1',
    );
    assert.deepEqual(cluster.suspicions(0), [], 'blaming nobody');
    for (const step of steps)
      for (const message of [...outgoing(step.actions, 'pre-prepare'), ...outgoing(step.actions, 'prepare')])
        assert.notEqual('view' in message ? message.view : -1, 0, 'no vote in the view it sits out');
    // The others follow at once, not on their request timers: the leader itself left its view.
    assert.ok(
      cluster.advanceUntil(() => cluster.ids.every((id) => cluster.replica(id).view >= 1), 500),
      'every replica moved to view 1 well before a request timer could fire',
    );
    for (const id of [1, 2, 3])
      assert.ok(
        cluster
          .logs(id, 'view-change-started')
          .some((entry) => entry.details['reason'] === 'the leader left its view'),
        `replica ${id} followed the leader out of its view`,
      );
    for (const id of cluster.ids) assert.deepEqual(cluster.suspicions(id), [], `replica ${id} blames nobody`);
    const next = alice.request(kv.put('after', 'v'));
    cluster.submit(next);
    assert.ok(
      cluster.advanceUntil(
        () => cluster.ids.every((id) => cluster.executionOf(id, next) !== undefined),
        10_000,
      ),
    );
    assert.ok(cluster.replica(1).view >= 1);
  });

  test('4. a checkpoint whose certificate cannot be verified yet is kept, nothing is answered from an older state, and it is installed once the keys are known', () => {
    const cluster = new Harness();
    const alice = cluster.client('alice');
    for (let index = 1; index <= 6; index++) cluster.execute(alice.request(kv.put(`k${index}`, `${index}`)));
    const restored = cluster.disks[2]!.read();
    assert.ok(restored?.checkpoint?.certificate.sequence === 4);

    // A whole-cluster restart: the replica knows its own key, not yet the others' epochs.
    const registry = new KeyRegistry(cluster.n);
    const ownKeys = replicaSessionKeys(2);
    const crypto = new ReplicaCrypto({
      replica: replicaId(2),
      registry,
      epoch: keyEpoch(0),
      sessionKeys: ownKeys,
    });
    registry.registerClient(alice.id, {
      agreement: cluster.registry.clientKeys(alice.id)!.agreement,
      signing: cluster.registry.clientKeys(alice.id)!.signing,
    });
    const replica = new Replica({
      config: cluster.config,
      id: replicaId(2),
      crypto,
      checkEvidence: evidenceChecker(cluster.config, registry, (data) => crypto.hash(data)),
      service: new KvService({ accessControl: { alice: { keyspaces: ['*'] } }, bucketCount: 8 }),
      restored,
    });
    const first = replica.step({ kind: 'tick', now: 0 });
    assert.ok(
      first.some((action) => action.kind === 'log' && action.event === 'restored-checkpoint-unverified'),
    );
    assert.ok(
      !first.some((action) => action.kind === 'log' && action.event === 'restored-checkpoint-corrupt'),
    );
    assert.equal(replica.restoredStatePending, true);
    assert.equal(replica.voting, false, 'no votes from a state behind its own disk');
    assert.equal(replica.lastExecuted, 0);
    const read = replica.step({
      kind: 'client-request',
      request: alice.request(kv.get('k1'), { readOnly: true }),
    });
    assert.deepEqual(
      read.filter((action) => action.kind === 'reply'),
      [],
      'no read is answered from the empty state',
    );

    // The other replicas' keys arrive (the guardian's saved certificates, or handshakes).
    for (const id of [0, 1, 3]) {
      const keys = replicaSessionKeys(id);
      registry.installReplicaEpoch(replicaId(id), keyEpoch(0), {
        signing: keys.signing.publicKey,
        agreement: keys.agreement.publicKey,
      });
    }
    const retried = replica.step({ kind: 'keys-changed' });
    assert.ok(
      retried.some((action) => action.kind === 'log' && action.event === 'restored-checkpoint-verified'),
    );
    assert.equal(replica.restoredStatePending, false);
    assert.equal(replica.lastExecuted, 6, 'the checkpoint and the committed log above it are back');
    const answered = replica.step({
      kind: 'client-request',
      request: alice.request(kv.get('k6'), { readOnly: true }),
    });
    const replies = answered.flatMap((action) => (action.kind === 'reply' ? [action.reply] : []));
    assert.equal(replies.length, 1);
    assert.equal(kv.value(replies[0]!.result), '6');
  });

  test('5. a rejuvenated replica that stops before its amnesia ended comes back amnesiac from its disk, whoever starts it', () => {
    const cluster = new Harness();
    const alice = cluster.client('alice');
    for (let index = 1; index <= 3; index++) cluster.execute(alice.request(kv.put(`k${index}`, `${index}`)));
    cluster.rejuvenate(2);
    // Its first step wrote the amnesiac view record, the only record of its new log.
    assert.deepEqual(
      cluster.disks[2]!.records.map((record) => (record.kind === 'view' ? record.amnesiac : record.kind)),
      [true],
    );
    // It stops before it voted again, and its guardian (restarted too) starts it from its disk.
    cluster.crash(2);
    const restarted = cluster.restart(2, 'intact');
    assert.equal(restarted.amnesiac, true, 'not a replica with an empty log that may vote anywhere');
    assert.equal(cluster.logs(2, 'restarted-amnesiac').length, 1);
    const incarnation = cluster.incarnations[2]!;
    for (let index = 4; index <= 6; index++) cluster.execute(alice.request(kv.put(`k${index}`, `${index}`)));
    for (const step of cluster.stepsOf(2).filter((entry) => entry.incarnation === incarnation))
      assert.equal(
        outgoing(step.actions, 'prepare').length,
        0,
        'no vote in a view its past may have voted in',
      );
    // The guardians' rejoin: a view change above its view lets it vote, and its new view record
    // (not amnesiac) ends the amnesia on its disk too.
    assert.ok(cluster.advanceUntil(() => cluster.replica(2).votingFloorKnown, 3000));
    const floorView = cluster.replica(2).view;
    for (const id of cluster.ids)
      cluster.step(id, { kind: 'change-view', reason: 'rejoin', aboveView: viewNumber(floorView) });
    assert.ok(
      cluster.advanceUntil(() => cluster.replica(2).voting, 5000),
      'it votes after the view change',
    );
    cluster.crash(2);
    assert.equal(cluster.restart(2, 'intact').amnesiac, false);
  });
});
