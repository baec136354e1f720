/**
 * View changes a guardian asks for (leader handoff, rejoin after a rejuvenation) and how they
 * keep the pause short for clients: they wait for the next stable checkpoint (bounded), and
 * a replica that does not lead tells the leader at once which requests it holds.
 */
import * as assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Action } from '../../src/core/actions.js';
import { replicaId, viewNumber } from '../../src/messages/ids.js';
import { Harness, kv } from './harness.js';

function viewChangesSent(actions: readonly Action[]): number {
  return actions.filter((action) => action.kind === 'broadcast' && action.message.kind === 'view-change')
    .length;
}

/** REQUEST-ACKs that reach replica `to` (sent to it, or to everybody). */
function acknowledgementsTo(actions: readonly Action[], to: number): number {
  return actions.filter(
    (action) =>
      ((action.kind === 'send' && action.to === to) || action.kind === 'broadcast') &&
      action.message.kind === 'request-ack',
  ).length;
}

function forwardsTo(actions: readonly Action[], to: number): number {
  return actions.filter(
    (action) => action.kind === 'send' && action.to === to && action.message.kind === 'forward',
  ).length;
}

describe('planned view changes', () => {
  test('a guardian-asked view change waits for the next stable checkpoint, then re-proposes little', () => {
    // checkpointInterval is 4 in the harness: after 6 batches the stable checkpoint is 4.
    const cluster = new Harness({ config: { pipelineDepth: 1 } });
    const alice = cluster.client('alice');
    for (let index = 1; index <= 6; index++) cluster.execute(alice.request(kv.put(`k${index}`, `${index}`)));
    assert.equal(cluster.replica(0).lastExecuted, 6);
    assert.equal(cluster.replica(0).stableCheckpoint.sequence, 4);

    for (const id of cluster.ids) {
      const actions = cluster.step(id, { kind: 'change-view', reason: 'guardian: test' });
      assert.equal(viewChangesSent(actions), 0, `replica ${id} waits for the checkpoint`);
    }
    cluster.run();
    assert.equal(cluster.replica(0).view, 0);

    // Two more batches make checkpoint 8 stable: the view change starts right after it.
    for (let index = 7; index <= 8; index++) cluster.execute(alice.request(kv.put(`k${index}`, `${index}`)));
    assert.ok(cluster.advanceUntil(() => cluster.ids.every((id) => cluster.replica(id).view === 1), 2000));
    const installed = cluster.logs(1, 'view-installed').at(-1);
    assert.ok(installed !== undefined);
    assert.equal(installed.details.checkpoint, 8);
    assert.equal(installed.details.reproposals, 0);

    // And the cluster goes on in the new view.
    const after = alice.request(kv.put('after', 'yes'));
    cluster.execute(after);
    assert.ok(cluster.advanceUntil(() => cluster.ids.every((id) => cluster.executionOf(id, after)), 2000));
  });

  test('without a checkpoint in time it starts when plannedViewChangeWaitMs is over', () => {
    const cluster = new Harness({ config: { plannedViewChangeWaitMs: 600 } });
    const alice = cluster.client('alice');
    for (let index = 1; index <= 6; index++) cluster.execute(alice.request(kv.put(`k${index}`, `${index}`)));
    for (const id of cluster.ids) cluster.step(id, { kind: 'change-view', reason: 'guardian: test' });
    cluster.advance(500);
    assert.ok(
      cluster.ids.every((id) => cluster.replica(id).view === 0),
      'still waiting at 500 ms',
    );
    assert.ok(cluster.advanceUntil(() => cluster.ids.every((id) => cluster.replica(id).view === 1), 2000));
  });

  test('plannedViewChangeWaitMs 0, or a checkpoint just taken, starts the view change at once', () => {
    for (const [config, batches] of [
      [{ plannedViewChangeWaitMs: 0 }, 6],
      [{}, 8],
    ] as const) {
      const cluster = new Harness({ config });
      const alice = cluster.client('alice');
      for (let index = 1; index <= batches; index++)
        cluster.execute(alice.request(kv.put(`k${index}`, `${index}`)));
      const actions = cluster.step(2, { kind: 'change-view', reason: 'guardian: test' });
      assert.equal(viewChangesSent(actions), 1, `after ${batches} batches with ${JSON.stringify(config)}`);
    }
  });

  test('a request about a view the replica has already left is settled, and costs no view change', () => {
    const cluster = new Harness({ config: { plannedViewChangeWaitMs: 0 } });
    const alice = cluster.client('alice');
    cluster.execute(alice.request(kv.put('k', '1')));
    for (const id of cluster.ids)
      cluster.step(id, { kind: 'change-view', reason: 'guardian: first', aboveView: viewNumber(0) });
    assert.ok(cluster.advanceUntil(() => cluster.ids.every((id) => cluster.replica(id).view === 1), 2000));
    // The same request delivered late (a busy process, a slow guardian link): already satisfied.
    for (const id of cluster.ids) {
      const actions = cluster.step(id, {
        kind: 'change-view',
        reason: 'guardian: late',
        aboveView: viewNumber(0),
      });
      assert.equal(viewChangesSent(actions), 0, `replica ${id} moves no further`);
      assert.equal(cluster.logs(id, 'view-change-request-settled').length, 1);
    }
    // One about the current view still moves it on.
    const actions = cluster.step(2, {
      kind: 'change-view',
      reason: 'guardian: again',
      aboveView: viewNumber(1),
    });
    assert.equal(viewChangesSent(actions), 1);
  });
});

describe('requests reach the leader without waiting for a timeout', () => {
  test('a backup tells the others (the leader among them) at once that it holds a new request; the leader proposes it once Q − 1 backups do', () => {
    const cluster = new Harness();
    const alice = cluster.client('alice');
    const request = alice.request(kv.put('a', '1'));
    cluster.submit(request, [0]);
    cluster.run();
    assert.equal(cluster.executionOf(0, request), undefined, 'the leader alone holding it proposes nothing');
    const acknowledged = cluster.step(1, { kind: 'client-request', request });
    assert.equal(acknowledgementsTo(acknowledged, 0), 1);
    assert.equal(forwardsTo(acknowledged, 0), 0, 'no body goes to the leader, only its digest');
    cluster.run();
    assert.equal(cluster.executionOf(0, request), undefined, 'one backup of the Q − 1 = 2 needed');
    cluster.submit(request, [2]);
    cluster.run();
    assert.ok(cluster.executionOf(0, request) !== undefined, 'the leader ordered it');
    for (const id of cluster.ids) assert.ok(cluster.executionOf(id, request) !== undefined);
  });

  test('after a view change the new leader proposes at once what the backups hold, without any forwarding', () => {
    const cluster = new Harness();
    const alice = cluster.client('alice');
    for (let index = 1; index <= 4; index++) cluster.execute(alice.request(kv.put(`k${index}`, `${index}`)));
    // Every replica holds a request the leader (0) does not get proposed before the view change.
    const held = alice.request(kv.put('held', '1'));
    cluster.filter = (envelope) =>
      envelope.message.kind === 'pre-prepare' && envelope.message.view === 0 ? 'drop' : 'deliver';
    cluster.submit(held);
    cluster.run();
    cluster.filter = () => 'deliver';
    for (const id of cluster.ids)
      cluster.step(id, { kind: 'change-view', reason: 'guardian: test', avoidLeaders: [replicaId(0)] });
    const before = cluster.now;
    assert.ok(
      cluster.advanceUntil(
        () => cluster.ids.every((id) => cluster.executionOf(id, held) !== undefined),
        3000,
      ),
    );
    assert.equal(cluster.replica(1).view, 1);
    assert.ok(
      cluster.now - before < cluster.config.requestTimeoutMs / 2,
      'executed before any replica forwarded it (the announcements of view 0 were enough)',
    );
  });
});

describe('regular leader rotation (leaderRotationCheckpoints)', () => {
  test('the view moves on every N stable checkpoints, blaming nobody, and requests keep executing', () => {
    const cluster = new Harness({ config: { leaderRotationCheckpoints: 2 } });
    const alice = cluster.client('alice');
    const interval = cluster.config.checkpointInterval;
    // Two checkpoints' worth of batches, one request each: the second stable checkpoint rotates.
    for (let index = 1; index <= 2 * interval + 1; index++)
      cluster.execute(alice.request(kv.put(`k${index}`, `${index}`)));
    cluster.advance(2_000);
    for (const id of cluster.ids) {
      assert.ok(cluster.replica(id).view >= 1, `replica ${id} is in view ${cluster.replica(id).view}`);
      assert.equal(cluster.suspicions(id).length, 0, `replica ${id} blamed a leader`);
      assert.ok(
        cluster
          .logs(id, 'view-change-started')
          .some((log) => log.details.reason === 'regular leader rotation'),
      );
    }
    cluster.execute(alice.request(kv.put('after', 'rotation')));
    assert.equal(cluster.read(2, 'after'), 'rotation');
  });

  test('off by default: a long run stays in view 0', () => {
    const cluster = new Harness();
    const alice = cluster.client('alice');
    for (let index = 1; index <= 4 * cluster.config.checkpointInterval; index++)
      cluster.execute(alice.request(kv.put(`k${index}`, `${index}`)));
    for (const id of cluster.ids) assert.equal(cluster.replica(id).view, 0);
  });
});
