/**
 * The PBFT protocol as our replica implements it, one test per claim, in the style of etcd-raft's
 * raft_paper_test.go: real Replica cores, real crypto and the KV service, driven through the small
 * deterministic harness in ./harness.ts (FIFO network with a filter, logical clock, disks).
 */
import * as assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Action } from '../../src/core/actions.js';
import { bytesEqual, replicaId, sequenceNumber, toHex } from '../../src/messages/ids.js';
import { checkpointPayload, proposalPayload } from '../../src/messages/signing.js';
import type { ClientRequest, PrePrepare, Prepare, ReplicaMessage } from '../../src/messages/types.js';
import {
  type Envelope,
  type ExecutedAction,
  Harness,
  kv,
  signedPrePrepare,
  type StepRecord,
} from './harness.js';

// ───────────────────────────── helpers ─────────────────────────────

/** Messages of a kind a replica put on the wire (broadcasts count once), in order. */
function outgoing(actions: readonly Action[], kind: ReplicaMessage['kind']): ReplicaMessage[] {
  const found: ReplicaMessage[] = [];
  for (const action of actions) {
    if ((action.kind === 'send' || action.kind === 'broadcast') && action.message.kind === kind)
      found.push(action.message);
  }
  return found;
}

function sentBy(cluster: Harness, from: number, kind: ReplicaMessage['kind']): Envelope[] {
  return cluster.sent.filter((envelope) => envelope.from === from && envelope.message.kind === kind);
}

/** What a step may not change: everything a test can observe of a replica from outside. */
function observable(cluster: Harness, id: number): Record<string, unknown> {
  const replica = cluster.replica(id);
  return {
    view: replica.view,
    lastExecuted: replica.lastExecuted,
    viewChangeInProgress: replica.viewChangeInProgress,
    stateTransferInProgress: replica.stateTransferInProgress,
    pending: replica.pendingRequestCount,
    stable: replica.stableCheckpoint.sequence,
    diskRecords: cluster.disks[id]!.records.length,
    snapshot: cluster.snapshot(id).map(toHex).join(','),
  };
}

function assertOnlyRejected(actions: readonly Action[], reason: RegExp): void {
  const rejected = actions.filter((action) => action.kind === 'log' && action.event === 'rejected-input');
  assert.equal(rejected.length, 1, `one rejected-input log, got ${JSON.stringify(actions)}`);
  const details = (rejected[0] as Extract<Action, { kind: 'log' }>).details;
  assert.match(String(details.reason), reason);
  for (const action of actions) {
    assert.ok(
      action.kind === 'log' || action.kind === 'suspect',
      `a rejected input must cause no ${action.kind} action`,
    );
  }
}

// ───────────────────────────── normal case ─────────────────────────────

describe('normal case', () => {
  test('1. a request sent to all replicas is executed by every replica at the same sequence, in three phases, and each replies with the same result', () => {
    const cluster = new Harness();
    const alice = cluster.client('alice');
    const request = alice.request(kv.put('x', '1'));
    cluster.execute(request);

    const executions = cluster.ids.map((id) => cluster.executionOf(id, request));
    for (const execution of executions) {
      assert.ok(execution !== undefined, 'every replica executed the request');
      assert.equal(execution.sequence, 1);
      assert.ok(bytesEqual(execution.batchDigest, executions[0]!.batchDigest));
    }
    // The three phases: the leader alone pre-prepares, the backups prepare, everybody commits.
    assert.deepEqual(
      [...new Set(cluster.sent.filter((e) => e.message.kind === 'pre-prepare').map((e) => e.from))],
      [0],
    );
    assert.deepEqual(
      [...new Set(cluster.sent.filter((e) => e.message.kind === 'prepare').map((e) => e.from))].sort(),
      [1, 2, 3],
    );
    assert.deepEqual(
      [...new Set(cluster.sent.filter((e) => e.message.kind === 'commit').map((e) => e.from))].sort(),
      [0, 1, 2, 3],
    );

    const replies = cluster.repliesTo(request);
    assert.deepEqual(replies.map((reply) => reply.replicaId).sort(), [0, 1, 2, 3]);
    for (const reply of replies) {
      assert.equal(reply.status, 'ok');
      assert.equal(reply.sequence, 1);
      assert.equal(reply.view, 0);
      assert.equal(reply.readOnly, false);
      assert.ok(bytesEqual(reply.result, replies[0]!.result));
    }
    assert.deepEqual(kv.result(replies[0]!.result), { kind: 'ok', existed: false });
    for (const id of cluster.ids) assert.equal(cluster.read(id, 'x'), '1');
  });

  test('2a. a batch commits with one backup silent: n = 4 tolerates f = 1', () => {
    const cluster = new Harness();
    cluster.filter = (envelope) => (envelope.from === 3 ? 'drop' : 'deliver');
    const request = cluster.client('alice').request(kv.put('x', '1'));
    cluster.execute(request);
    for (const id of [0, 1, 2, 3]) assert.equal(cluster.executionOf(id, request)?.sequence, 1);
    assert.equal(cluster.repliesTo(request).length, 4);
  });

  test('2b. a batch does not commit with two backups silent: the quorum is 3', () => {
    const cluster = new Harness();
    cluster.filter = (envelope) => (envelope.from === 2 || envelope.from === 3 ? 'drop' : 'deliver');
    const request = cluster.client('alice').request(kv.put('x', '1'));
    cluster.execute(request);
    for (const id of cluster.ids) {
      assert.equal(cluster.executed(id).length, 0, `replica ${id} executed nothing`);
      assert.equal(cluster.replica(id).lastExecuted, 0);
    }
    // Not even prepared: the leader and replica 1 saw one prepare besides the leader's proposal.
    for (const id of [0, 1])
      assert.ok(!cluster.disks[id]!.records.some((record) => record.kind === 'prepared'));
    assert.equal(cluster.repliesTo(request).length, 0);
  });

  test('3. persist before send: PRE-PREPARE and PREPARE follow the persisted pre-prepare, COMMIT the persisted prepared, VIEW-CHANGE the persisted view', () => {
    const cluster = new Harness();
    const alice = cluster.client('alice');
    for (let index = 0; index < 3; index++) cluster.execute(alice.request(kv.put(`k${index}`, 'v')));
    // Then the leader falls silent with a request pending: a view change, and ordering in view 1.
    cluster.filter = (envelope) => (envelope.from === 0 ? 'drop' : 'deliver');
    const request = alice.request(kv.put('after', 'v'));
    cluster.submit(request);
    assert.ok(cluster.advanceUntil(() => cluster.executionOf(1, request) !== undefined, 5000));
    cluster.advance(1000);

    const checked = { prePrepare: 0, prepare: 0, commit: 0, viewChange: 0 };
    for (const id of cluster.ids) {
      const sentBefore = new Set<string>();
      for (const step of cluster.stepsOf(id)) {
        const persisted = new Set<string>();
        for (const action of step.actions) {
          if (action.kind === 'persist') {
            const record = action.record;
            if (record.kind === 'pre-prepare') {
              const m = record.message;
              persisted.add(`prepare:${m.view}:${m.sequence}:${toHex(m.batchDigest)}`);
              persisted.add(`pre-prepare:${m.view}:${m.sequence}:${toHex(m.batchDigest)}`);
            } else if (record.kind === 'prepared') {
              persisted.add(`commit:${record.view}:${record.sequence}:${toHex(record.batchDigest)}`);
            } else if (record.kind === 'view' && record.viewChangeInProgress) {
              persisted.add(`view-change:${record.view}`);
            }
            continue;
          }
          if (action.kind !== 'broadcast' && action.kind !== 'send') continue;
          const message = action.message;
          let key: string;
          if (message.kind === 'pre-prepare' || message.kind === 'prepare' || message.kind === 'commit') {
            key = `${message.kind}:${message.view}:${message.sequence}:${toHex(message.batchDigest)}`;
          } else if (message.kind === 'view-change') {
            key = `view-change:${message.newView}`;
          } else continue;
          // A retransmission repeats a message whose first sending was checked already.
          if (sentBefore.has(key)) continue;
          assert.ok(
            persisted.has(key),
            `replica ${id} sent ${key} without persisting its record earlier in the same action list`,
          );
          sentBefore.add(key);
          if (message.kind === 'pre-prepare') checked.prePrepare++;
          else if (message.kind === 'prepare') checked.prepare++;
          else if (message.kind === 'commit') checked.commit++;
          else checked.viewChange++;
        }
      }
    }
    // The scenario did exercise all three rules.
    assert.ok(
      checked.prePrepare >= 4 && checked.prepare >= 9 && checked.commit >= 12 && checked.viewChange >= 3,
      JSON.stringify(checked),
    );
  });

  test('4. batching: many requests at once execute in fewer batches than requests, and the leader keeps at most pipelineDepth batches in flight', () => {
    const cluster = new Harness();
    const requests: ClientRequest[] = [];
    for (const name of ['alice', 'bob', 'carol', 'dave']) {
      const client = cluster.client(name);
      for (let index = 0; index < 10; index++) requests.push(client.request(kv.put(`${name}/${index}`, 'v')));
    }
    for (const request of requests) cluster.submit(request);
    cluster.run();

    for (const id of cluster.ids) {
      const batches = cluster.executed(id).filter((action) => action.requests.length > 0);
      assert.ok(batches.length < requests.length, `replica ${id}: ${batches.length} batches`);
      assert.ok(
        batches.some((action) => action.requests.length > 1),
        'some batch holds several requests',
      );
      for (const action of batches) assert.ok(action.requests.length <= cluster.config.maxBatchRequests);
      const executed = batches.flatMap((action) => action.requests.filter((entry) => !entry.skipped));
      assert.equal(executed.length, requests.length, 'every request executed exactly once');
      for (const request of requests) assert.ok(cluster.executionOf(id, request) !== undefined);
    }
    for (const request of requests) assert.equal(cluster.repliesTo(request).length, 4);

    // In flight at the leader: proposed (first pre-prepare broadcast) but not yet executed.
    const proposed = new Set<number>();
    const executed = new Set<number>();
    let maxInFlight = 0;
    for (const action of cluster.actionsOf(0)) {
      if (action.kind === 'broadcast' && action.message.kind === 'pre-prepare')
        proposed.add(action.message.sequence);
      if (action.kind === 'executed') executed.add(action.sequence);
      const inFlight = [...proposed].filter((sequence) => !executed.has(sequence)).length;
      maxInFlight = Math.max(maxInFlight, inFlight);
    }
    assert.equal(maxInFlight, cluster.config.pipelineDepth);
  });

  test('4b. fair batches: a client with many requests waiting puts at most the median share in a batch, and all of them execute in order', () => {
    const cluster = new Harness();
    const flooder = cluster.client('bob');
    const flood = Array.from({ length: 12 }, (_, index) => flooder.request(kv.put(`bob/${index}`, 'v')));
    const others = ['alice', 'carol', 'dave'].map((name) => cluster.client(name).request(kv.put(name, 'v')));
    for (const request of [...flood, ...others]) cluster.submit(request);
    cluster.run();

    // Three clients with one request each and one with twelve: the lower median is one, so the
    // flooder gets one place in any batch, as each of the others, who all fit in the first batches.
    const batches = cluster
      .actionsOf(0)
      .flatMap((action) =>
        action.kind === 'broadcast' && action.message.kind === 'pre-prepare' ? [action.message.batch] : [],
      );
    const othersBatches = batches.filter((batch) => batch.some((request) => request.clientId !== flooder.id));
    assert.ok(othersBatches.length > 0);
    for (const batch of othersBatches) {
      const fromFlooder = batch.filter((request) => request.clientId === flooder.id).length;
      assert.ok(
        fromFlooder <= 1,
        `a batch with other clients' requests held ${fromFlooder} of the flooder's`,
      );
    }
    // Never starved: every request executes, the flooder's in the order it numbered them.
    for (const id of cluster.ids) {
      for (const request of [...flood, ...others]) assert.ok(cluster.executionOf(id, request) !== undefined);
      const order = cluster
        .executed(id)
        .flatMap((action) => action.requests)
        .filter((entry) => entry.clientId === flooder.id && !entry.skipped)
        .map((entry) => entry.requestNumber);
      assert.deepEqual(
        order,
        [...order].sort((a, b) => a - b),
      );
    }
  });

  test('5. exactly-once: a retransmitted request is answered from the reply cache and never executed again', () => {
    const cluster = new Harness();
    const alice = cluster.client('alice');
    const request = alice.request(kv.cas('lock', null, 'alice'));
    // Every replica-to-replica message arrives twice: still one execution.
    cluster.filter = () => 'duplicate';
    cluster.execute(request);
    cluster.filter = null;
    for (const id of cluster.ids) assert.equal(cluster.executed(id).length, 1);
    const first = cluster.repliesTo(request);
    assert.equal(first.length, 4);
    assert.deepEqual(kv.result(first[0]!.result), {
      kind: 'cas',
      succeeded: true,
      current: new TextEncoder().encode('alice'),
    });

    // The client retransmits (re-authenticated, same number): every replica answers from its cache.
    const retransmission = alice.request(kv.cas('lock', null, 'alice'), { requestNumber: 1 });
    for (const id of cluster.ids) {
      const actions = cluster.step(id, { kind: 'client-request', request: retransmission });
      const replies = actions.filter((action) => action.kind === 'reply');
      assert.equal(replies.length, 1, `replica ${id} answers at once`);
      assert.deepEqual(
        actions.map((action) => action.kind),
        ['reply'],
        'nothing is proposed or executed',
      );
    }
    cluster.run();
    const all = cluster.repliesTo(request);
    assert.equal(all.length, 8);
    for (const reply of all) {
      assert.equal(reply.sequence, 1);
      assert.ok(
        bytesEqual(reply.result, first[0]!.result),
        'the cached result, not a failed compare-and-set',
      );
    }

    // Even a leader that orders the request a second time cannot make it run twice.
    const fresh = alice.request(kv.put('other', 'v'));
    const reordered = signedPrePrepare(cluster, 0, 0, 2, [request, fresh]);
    for (const id of [1, 2, 3]) cluster.inject(0, id, reordered);
    cluster.run();
    for (const id of cluster.ids) {
      const second = cluster.executed(id).find((action) => action.sequence === 2);
      assert.ok(second !== undefined, `replica ${id} executed sequence 2`);
      assert.deepEqual(
        second.requests.map((entry) => [entry.requestNumber, entry.skipped]),
        [
          [1, true],
          [2, false],
        ],
      );
      const unskipped = cluster
        .executed(id)
        .flatMap((action) => action.requests)
        .filter(
          (entry) => entry.requestNumber === 1 && entry.clientId === request.clientId && !entry.skipped,
        );
      assert.equal(unskipped.length, 1, `replica ${id} executed the compare-and-set once`);
      assert.equal(cluster.read(id, 'lock'), 'alice');
      assert.equal(cluster.read(id, 'other'), 'v');
    }
    assert.equal(cluster.repliesTo(request).length, 8, 'a skipped duplicate is not answered again');
  });
});

// ───────────────────────────── view change ─────────────────────────────

describe('view change', () => {
  test('6. with the leader silent and a request pending, backups change view after requestTimeoutMs and the new leader orders the request', () => {
    const cluster = new Harness();
    cluster.filter = (envelope) => (envelope.from === 0 ? 'drop' : 'deliver');
    const request = cluster.client('alice').request(kv.put('x', '1'));
    cluster.execute(request);
    const timeout = cluster.config.requestTimeoutMs;

    const startedAt = new Map<number, number>();
    cluster.afterStep((record: StepRecord) => {
      if (record.actions.some((a) => a.kind === 'log' && a.event === 'view-change-started'))
        if (!startedAt.has(record.replica)) startedAt.set(record.replica, cluster.now);
    });
    cluster.advance(timeout - 50);
    for (const id of [1, 2, 3]) {
      assert.equal(cluster.replica(id).view, 0, `replica ${id} still in view 0 before the timeout`);
      assert.equal(cluster.replica(id).viewChangeInProgress, false);
    }
    assert.ok(
      cluster.advanceUntil(
        () => [0, 1, 2, 3].every((id) => cluster.executionOf(id, request) !== undefined),
        3000,
      ),
    );
    for (const id of [1, 2, 3]) {
      const at = startedAt.get(id);
      assert.ok(at !== undefined && at >= timeout && at < timeout + 100, `replica ${id} started at ${at}`);
    }
    for (const id of cluster.ids) {
      const replica = cluster.replica(id);
      assert.equal(replica.view, 1);
      assert.equal(replica.viewChangeInProgress, false);
      assert.equal(replica.isLeader, id === 1);
    }
    const executions = cluster.ids.map((id) => cluster.executionOf(id, request)!);
    for (const execution of executions) {
      assert.equal(execution.sequence, executions[0]!.sequence);
      assert.ok(bytesEqual(execution.batchDigest, executions[0]!.batchDigest));
    }
    // View 1's leader ordered it.
    assert.ok(sentBy(cluster, 1, 'pre-prepare').some((e) => (e.message as PrePrepare).view === 1));
    const replies = cluster.repliesTo(request).filter((reply) => reply.view === 1);
    assert.ok(replies.length >= 3);
    // Backups suspect the silent leader.
    for (const id of [1, 2, 3]) assert.ok(cluster.suspicions(id).some((s) => s.replica === 0));
  });

  test('7. a request prepared before the leader stops survives the view change at the same sequence with the same digest', () => {
    const cluster = new Harness();
    const alice = cluster.client('alice');
    cluster.execute(alice.request(kv.put('before', '0')));
    let leaderStopped = false;
    cluster.filter = (envelope) => {
      if (leaderStopped && envelope.from === 0) return 'drop';
      if (envelope.message.kind === 'commit' && envelope.message.view === 0) return 'drop';
      return 'deliver';
    };
    const request = alice.request(kv.put('x', 'prepared'));
    cluster.execute(request);
    const preparedDigest = new Map<number, string>();
    for (const id of cluster.ids) {
      const prepared = cluster.disks[id]!.records.find(
        (record) => record.kind === 'prepared' && record.sequence === 2,
      );
      assert.ok(prepared !== undefined && prepared.kind === 'prepared', `replica ${id} prepared sequence 2`);
      assert.equal(prepared.view, 0);
      preparedDigest.set(id, toHex(prepared.batchDigest));
      assert.equal(cluster.executionOf(id, request), undefined, 'not committed: commits were dropped');
    }
    assert.equal(new Set(preparedDigest.values()).size, 1);

    leaderStopped = true;
    assert.ok(
      cluster.advanceUntil(
        () => [1, 2, 3].every((id) => cluster.executionOf(id, request) !== undefined),
        5000,
      ),
    );
    for (const id of [1, 2, 3]) {
      const execution = cluster.executionOf(id, request)!;
      assert.equal(execution.sequence, 2);
      assert.equal(toHex(execution.batchDigest), preparedDigest.get(1));
      const action = cluster.executed(id).find((a) => a.sequence === 2)!;
      assert.equal(action.view, 1, 'executed in the new view');
      assert.equal(cluster.read(id, 'x'), 'prepared');
    }
    // The new leader re-proposed exactly the prepared batch.
    const reproposal = sentBy(cluster, 1, 'pre-prepare')
      .map((e) => e.message as PrePrepare)
      .find((m) => m.view === 1 && m.sequence === 2);
    assert.ok(reproposal !== undefined);
    assert.equal(toHex(reproposal.batchDigest), preparedDigest.get(1));
  });

  test('7b. in a pipeline with gaps, prepared batches keep their sequence and digest, unprepared ones become no-ops, and every request still runs once', () => {
    const cluster = new Harness();
    const alice = cluster.client('alice');
    const requests = [1, 2, 3, 4].map((index) => alice.request(kv.cas(`k${index}`, null, `${index}`)));
    let leaderStopped = false;
    cluster.filter = ({ from, message }) => {
      if (leaderStopped && from === 0) return 'drop';
      if (message.kind === 'commit' && message.view === 0) return 'drop';
      // The proposals for 1 and 3 never reach anybody.
      if (message.kind === 'pre-prepare' && message.view === 0 && message.sequence % 2 === 1) return 'drop';
      return 'deliver';
    };
    for (const request of requests) cluster.submit(request);
    cluster.run();
    const preparedAt = new Map<number, string>();
    for (const record of cluster.disks[1]!.records)
      if (record.kind === 'prepared') preparedAt.set(record.sequence, toHex(record.batchDigest));
    assert.deepEqual([...preparedAt.keys()].sort(), [2, 4]);

    leaderStopped = true;
    const done = () =>
      cluster.ids.every((id) => requests.every((request) => cluster.executionOf(id, request) !== undefined));
    assert.ok(cluster.advanceUntil(done, 5000));
    for (const id of cluster.ids) {
      const bySequence = new Map<number, ExecutedAction>(
        cluster.executed(id).map((action) => [action.sequence, action]),
      );
      for (const sequence of [2, 4]) {
        assert.equal(toHex(bySequence.get(sequence)!.batchDigest), preparedAt.get(sequence));
        assert.equal(bySequence.get(sequence)!.view, 1);
      }
      for (const sequence of [1, 3]) assert.equal(bySequence.get(sequence)!.requests.length, 0, 'a no-op');
      for (const [index, request] of requests.entries()) {
        const runs = cluster
          .executed(id)
          .flatMap((action) => action.requests)
          .filter((entry) => entry.requestNumber === request.requestNumber && !entry.skipped);
        assert.equal(runs.length, 1, `replica ${id} ran request ${index + 1} once`);
        assert.equal(cluster.read(id, `k${index + 1}`), `${index + 1}`);
      }
      assert.equal(cluster.executionOf(id, requests[1]!)!.sequence, 2);
      assert.equal(cluster.executionOf(id, requests[3]!)!.sequence, 4);
    }
  });

  test('7c. a prepared batch survives the view change even when the new leader never received its body', () => {
    const cluster = new Harness();
    const alice = cluster.client('alice');
    let leaderStopped = false;
    cluster.filter = ({ from, to, message }) => {
      if (leaderStopped && from === 0) return 'drop';
      if (message.kind === 'commit' && message.view === 0) return 'drop';
      if (message.kind === 'pre-prepare' && message.view === 0 && to === 1) return 'drop';
      return 'deliver';
    };
    const request = alice.request(kv.put('x', 'prepared'));
    cluster.submit(request, [0, 2, 3]);
    cluster.run();
    assert.ok(!cluster.disks[1]!.records.some((record) => record.kind === 'pre-prepare'));
    const prepared = cluster.disks[2]!.records.find((record) => record.kind === 'prepared');
    assert.ok(prepared !== undefined && prepared.kind === 'prepared');

    leaderStopped = true;
    assert.ok(
      cluster.advanceUntil(
        () => cluster.ids.every((id) => cluster.executionOf(id, request) !== undefined),
        5000,
      ),
    );
    assert.ok(sentBy(cluster, 1, 'batch-request').length > 0, 'the new leader fetched the body');
    for (const id of cluster.ids) {
      const execution = cluster.executionOf(id, request)!;
      assert.equal(execution.sequence, prepared.sequence);
      assert.ok(bytesEqual(execution.batchDigest, prepared.batchDigest));
    }
  });
});

// ───────────────────────────── checkpoints, state transfer, restarts ─────────────────────────────

describe('checkpoints and recovery', () => {
  test('8. after checkpointInterval batches a checkpoint becomes stable everywhere with one state root, and the log below it is truncated', () => {
    const cluster = new Harness();
    const alice = cluster.client('alice');
    const interval = cluster.config.checkpointInterval;
    for (let index = 1; index < interval; index++) cluster.execute(alice.request(kv.put(`k${index}`, 'v')));
    // Before the checkpoint a replica still serves the body of an executed batch.
    const probe = () =>
      cluster.deliver(2, 1, { kind: 'batch-request', sequence: sequenceNumber(2), batchDigest: digestAt(2) });
    const digestAt = (sequence: number) =>
      cluster.executed(1).find((a) => a.sequence === sequence)!.batchDigest;
    assert.equal(outgoing(probe(), 'batch').length, 1);
    for (const id of cluster.ids) assert.equal(cluster.replica(id).stableCheckpoint.sequence, 0);

    cluster.execute(alice.request(kv.put(`k${interval}`, 'v')));
    const roots = new Set<string>();
    for (const id of cluster.ids) {
      const replica = cluster.replica(id);
      assert.equal(replica.lastExecuted, interval);
      const certificate = replica.stableCheckpoint;
      assert.equal(certificate.sequence, interval);
      roots.add(toHex(certificate.stateRoot));
      // A quorum of valid signatures over the root.
      assert.ok(certificate.votes.length >= 3);
      assert.equal(new Set(certificate.votes.map((vote) => vote.replicaId)).size, certificate.votes.length);
      for (const vote of certificate.votes) {
        assert.ok(
          cluster.registry.verifyReplicaSignature(
            vote.replicaId,
            vote.keyEpoch,
            checkpointPayload(certificate.sequence, certificate.stateRoot),
            vote.signature,
          ),
        );
      }
      const persisted = cluster
        .actionsOf(id)
        .flatMap((action) => (action.kind === 'persist-checkpoint' ? [action.checkpoint] : []));
      // Stored when it became stable, and again as the votes after the quorum arrive: the last
      // stored certificate has every replica's vote (it stays verifiable when signers rotate keys).
      assert.ok(persisted.length >= 1);
      assert.ok(persisted.every((checkpoint) => checkpoint.certificate.sequence === interval));
      assert.equal(persisted.at(-1)!.certificate.votes.length, cluster.n);
      // The driver dropped every durable record at or below it.
      assert.ok(
        cluster.disks[id]!.records.every((record) => record.kind === 'view'),
        `replica ${id} disk holds only records above the checkpoint`,
      );
    }
    assert.equal(roots.size, 1, 'the same state root everywhere');
    // The replica forgot the batches below it: the same request now goes unanswered.
    assert.equal(outgoing(probe(), 'batch').length, 0);
  });

  test('9. a replica cut off while the others run past logWindow catches up by state transfer', () => {
    const cluster = new Harness();
    const alice = cluster.client('alice');
    cluster.disconnected.add(3);
    const batches = cluster.config.logWindow + 6;
    for (let index = 1; index <= batches; index++)
      cluster.execute(alice.request(kv.put(`k${index % 5}`, `${index}`)));
    assert.equal(cluster.replica(0).lastExecuted, batches);
    assert.equal(cluster.replica(3).lastExecuted, 0);

    const transferStates: boolean[] = [];
    cluster.afterStep((record, replica) => {
      if (record.replica !== 3) return;
      const inProgress = replica.stateTransferInProgress;
      if (transferStates.at(-1) !== inProgress) transferStates.push(inProgress);
    });
    cluster.disconnected.delete(3);
    assert.ok(cluster.advanceUntil(() => cluster.replica(3).lastExecuted === batches, 10_000));
    assert.deepEqual(transferStates.slice(0, 3), [false, true, false]);
    assert.ok(cluster.logs(3, 'state-transfer-completed').length >= 1);
    assert.ok(cluster.replica(3).stableCheckpoint.sequence >= batches - cluster.config.checkpointInterval);
    const reference = cluster.snapshot(0).map(toHex);
    assert.deepEqual(cluster.snapshot(3).map(toHex), reference);
    for (let key = 0; key < 5; key++) assert.equal(cluster.read(3, `k${key}`), cluster.read(0, `k${key}`));
    // And it takes part again.
    const next = alice.request(kv.put('after', 'v'));
    cluster.execute(next);
    assert.equal(cluster.executionOf(3, next)?.sequence, batches + 1);
  });

  test('9b. a source a transfer dropped is left out of the next transfers, and asked again once the memory of the drop has expired', () => {
    const cluster = new Harness();
    const alice = cluster.client('alice');
    // Replica 2 never answers replica 3's state requests: a stalling source.
    cluster.filter = ({ from, to, message }) =>
      from === 2 && to === 3 && (message.kind === 'manifest' || message.kind === 'chunk')
        ? 'drop'
        : 'deliver';
    let written = 0;
    /** Replica 3 misses more than logWindow batches, then comes back and catches up; returns how often it asked replica 2. */
    const catchUp = (): number => {
      cluster.disconnected.add(3);
      for (let index = 0; index < cluster.config.logWindow + 6; index++) {
        written++;
        cluster.execute(alice.request(kv.put(`k${written % 40}`, `${written}`.padEnd(200, '.'))));
      }
      const mark = cluster.sent.length;
      cluster.disconnected.delete(3);
      const target = cluster.replica(0).lastExecuted;
      assert.ok(
        cluster.advanceUntil(() => cluster.replica(3).lastExecuted === target, 30_000),
        'caught up',
      );
      return cluster.sent
        .slice(mark)
        .filter(
          ({ from, to, message }) =>
            from === 3 &&
            to === 2 &&
            (message.kind === 'manifest-request' || message.kind === 'chunk-request'),
        ).length;
    };
    const droppedTwo = (): number =>
      cluster.logs(3, 'state-transfer-source-dropped').filter((entry) => entry.details['source'] === 2)
        .length;

    assert.ok(catchUp() > 0, 'the first transfer asks replica 2');
    assert.equal(droppedTwo(), 1, 'and drops it when it stalls');
    const firstCaughtUpAt = cluster.now;

    cluster.advance(1_000);
    assert.equal(catchUp(), 0, 'a transfer soon after leaves replica 2 out from the start');
    assert.equal(droppedTwo(), 1, 'without waiting out its timeout again');

    // The memory of a drop lasts 30 source timeouts from the drop itself, however many transfers
    // inherited it since: the second transfer ended over a second after the first, so a memory it
    // refreshed would still hold at this point.
    const memoryMs = 30 * cluster.config.stateTransfer.sourceTimeoutMs;
    cluster.advance(firstCaughtUpAt + memoryMs + 100 - cluster.now, 100);
    assert.ok(catchUp() > 0, 'once the memory has expired, replica 2 is asked again');
    assert.equal(droppedTwo(), 2, 'and, stalling still, dropped again');
  });

  test('10a. a replica restarted from its persisted records resumes with the same lastExecuted and state', () => {
    const cluster = new Harness();
    const alice = cluster.client('alice');
    for (let index = 1; index <= 6; index++) cluster.execute(alice.request(kv.put(`k${index}`, `${index}`)));
    const before = {
      lastExecuted: cluster.replica(2).lastExecuted,
      snapshot: cluster.snapshot(2).map(toHex),
    };
    assert.equal(before.lastExecuted, 6);
    const restored = cluster.disks[2]!.read();
    assert.ok(restored !== undefined && restored.checkpoint?.certificate.sequence === 4);
    assert.ok(restored.records.some((record) => record.kind === 'committed' && record.sequence === 6));

    cluster.crash(2);
    const replica = cluster.restart(2, 'intact');
    assert.equal(replica.lastExecuted, before.lastExecuted);
    assert.equal(replica.view, 0);
    assert.equal(replica.amnesiac, false);
    assert.deepEqual(cluster.snapshot(2).map(toHex), before.snapshot);
    assert.equal(cluster.read(2, 'k6'), '6');

    const next = alice.request(kv.put('after', 'v'));
    cluster.execute(next);
    for (const id of cluster.ids) assert.equal(cluster.executionOf(id, next)?.sequence, 7);
  });

  test('10b. an amnesiac replica (empty disk) catches up by state transfer and sends no PREPARE/COMMIT until it installs a newer view', () => {
    const cluster = new Harness();
    const alice = cluster.client('alice');
    for (let index = 1; index <= 9; index++) cluster.execute(alice.request(kv.put(`k${index}`, `${index}`)));
    cluster.crash(3);
    cluster.restart(3, 'amnesiac');
    assert.equal(cluster.replica(3).amnesiac, true);
    assert.equal(cluster.replica(3).lastExecuted, 0);
    let transferSeen = false;
    cluster.afterStep((record, replica) => {
      if (record.replica === 3 && replica.stateTransferInProgress) transferSeen = true;
    });
    assert.ok(cluster.advanceUntil(() => cluster.replica(3).lastExecuted === 9, 5000));
    assert.ok(transferSeen, 'state transfer ran');
    assert.ok(cluster.logs(3, 'state-transfer-completed').length >= 1);
    assert.deepEqual(cluster.snapshot(3).map(toHex), cluster.snapshot(0).map(toHex));

    // Still in view 0, it follows commits but casts no vote.
    const tenth = alice.request(kv.put('k10', '10'));
    cluster.execute(tenth);
    assert.equal(cluster.executionOf(3, tenth)?.sequence, 10);
    assert.equal(cluster.replica(3).amnesiac, true);

    // A view change (requests the leader never sees) installs view 1; only then does it vote again.
    cluster.filter = (envelope) =>
      envelope.message.kind === 'forward' && envelope.to === 0 ? 'drop' : 'deliver';
    const eleventh = alice.request(kv.put('k11', '11'));
    cluster.submit(eleventh, [1, 2, 3]);
    assert.ok(
      cluster.advanceUntil(
        () => cluster.ids.every((id) => cluster.executionOf(id, eleventh) !== undefined),
        5000,
      ),
    );
    assert.equal(cluster.replica(3).view, 1);
    assert.equal(cluster.replica(3).amnesiac, false);

    const steps = cluster.stepsOf(3).filter((step) => step.incarnation === 1);
    const rejoined = steps.findIndex((step) =>
      step.actions.some((a) => a.kind === 'log' && a.event === 'amnesiac-rejoined'),
    );
    assert.ok(rejoined >= 0, 'it rejoined on installing view 1');
    const installed = steps[rejoined]!.actions.find((a) => a.kind === 'log' && a.event === 'view-installed');
    assert.ok(installed !== undefined && installed.kind === 'log' && installed.details.view === 1);
    const votes = (step: StepRecord) => [
      ...outgoing(step.actions, 'prepare'),
      ...outgoing(step.actions, 'commit'),
    ];
    for (const step of steps.slice(0, rejoined)) {
      assert.deepEqual(votes(step), [], 'no PREPARE or COMMIT while amnesiac');
      assert.deepEqual(outgoing(step.actions, 'view-change'), [], 'no VIEW-CHANGE while amnesiac');
    }
    assert.ok(
      steps.slice(rejoined).some((step) => votes(step).length > 0),
      'it votes again after rejoining',
    );
  });
});

// ───────────────────────────── Byzantine inputs ─────────────────────────────

describe('Byzantine inputs', () => {
  test('11. two validly signed pre-prepares for one view and sequence produce equivocation evidence and a view change', () => {
    const cluster = new Harness();
    const a = cluster.client('alice').request(kv.put('x', 'a'));
    const b = cluster.client('bob').request(kv.put('x', 'b'));
    const first = signedPrePrepare(cluster, 0, 0, 1, [a]);
    const second = signedPrePrepare(cluster, 0, 0, 1, [b]);
    assert.ok(!bytesEqual(first.batchDigest, second.batchDigest));

    const accepted = cluster.deliver(0, 1, first);
    assert.equal(outgoing(accepted, 'prepare').length, 1);
    const actions = cluster.deliver(0, 1, second);
    const evidence = cluster.evidence(1);
    assert.equal(evidence.length, 1);
    const proof = evidence[0]!;
    assert.ok(proof.kind === 'equivocation');
    assert.equal(proof.accused, 0);
    assert.equal(proof.first.view, 0);
    assert.equal(proof.first.sequence, 1);
    assert.equal(proof.second.sequence, 1);
    assert.ok(bytesEqual(proof.first.batchDigest, first.batchDigest));
    assert.ok(bytesEqual(proof.second.batchDigest, second.batchDigest));
    for (const signed of [proof.first, proof.second]) {
      assert.ok(
        cluster.registry.verifyReplicaSignature(
          replicaId(0),
          signed.keyEpoch,
          proposalPayload(signed.view, signed.sequence, signed.batchDigest),
          signed.signature,
        ),
        'each signature verifies with the registry alone',
      );
    }
    const replica = cluster.replica(1);
    assert.equal(replica.viewChangeInProgress, true);
    assert.equal(replica.view, 1);
    const kinds = actions.map((action) => (action.kind === 'broadcast' ? action.message.kind : action.kind));
    assert.ok(kinds.indexOf('evidence') < kinds.indexOf('view-change'));
    assert.ok(cluster.suspicions(1).some((s) => s.replica === 0));

    // A backup that got only one proposal detects the other through a PREPARE carrying its signature.
    cluster.deliver(0, 2, first);
    const prepareForSecond = outgoing(cluster.deliver(0, 3, second), 'prepare')[0] as Prepare;
    cluster.deliver(3, 2, prepareForSecond);
    const relayed = cluster.evidence(2);
    assert.equal(relayed.length, 1);
    const relayedProof = relayed[0]!;
    assert.ok(relayedProof.kind === 'equivocation' && relayedProof.accused === 0);
    assert.equal(cluster.replica(2).viewChangeInProgress, true);
  });

  test('12. forged, misdirected and malformed inputs are rejected with a rejected-input log and change nothing', async (t) => {
    const cluster = new Harness();
    const alice = cluster.client('alice');
    cluster.execute(alice.request(kv.put('x', '1')));
    const request = alice.request(kv.put('x', '2'));
    const genuine = signedPrePrepare(cluster, 0, 0, 2, [request]);

    await t.test('a pre-prepare whose signature does not verify', () => {
      const signature = genuine.signature.slice();
      signature[0]! ^= 1;
      const forged = { ...genuine, signature } as PrePrepare;
      const before = observable(cluster, 1);
      assertOnlyRejected(cluster.deliver(0, 1, forged), /signature/);
      assert.deepEqual(observable(cluster, 1), before);
    });

    await t.test('a pre-prepare from a replica that does not lead the view', () => {
      const fromBackup = signedPrePrepare(cluster, 2, 0, 2, [request]);
      const before = observable(cluster, 1);
      assertOnlyRejected(cluster.deliver(2, 1, fromBackup), /not the leader/);
      assert.deepEqual(observable(cluster, 1), before);
    });

    await t.test('a message whose replicaId is not its sender', () => {
      const prepare: Prepare = {
        kind: 'prepare',
        view: genuine.view,
        sequence: genuine.sequence,
        batchDigest: genuine.batchDigest,
        replicaId: replicaId(2),
        proposalKeyEpoch: genuine.keyEpoch,
        proposalSignature: genuine.signature,
      };
      const before = observable(cluster, 1);
      assertOnlyRejected(cluster.deliver(3, 1, prepare), /claims to be from replica 2/);
      assert.deepEqual(observable(cluster, 1), before);
    });

    await t.test('a client request with the wrong number of authenticator entries', () => {
      const short = { ...request, authenticator: request.authenticator.slice(0, cluster.n - 1) };
      for (const id of cluster.ids) {
        const before = observable(cluster, id);
        assertOnlyRejected(cluster.step(id, { kind: 'client-request', request: short }), /authenticator/);
        assert.deepEqual(observable(cluster, id), before);
      }
    });

    await t.test('none of them left a trace: the genuine proposal is accepted normally', () => {
      const actions = cluster.deliver(0, 1, genuine);
      assert.equal(outgoing(actions, 'prepare').length, 1);
      assert.deepEqual(cluster.evidence(1), []);
      cluster.submit(request);
      cluster.run();
      for (const id of cluster.ids) assert.equal(cluster.read(id, 'x'), '2');
    });
  });
});

// ───────────────────────────── read-only ─────────────────────────────

describe('read-only requests', () => {
  test('13. read-only requests are answered at once by each replica from its executed state, without ordering', () => {
    const cluster = new Harness();
    const alice = cluster.client('alice');
    cluster.execute(alice.request(kv.put('x', '1')));
    // The second write reaches replica 3's execution late: its commits are held.
    cluster.filter = (envelope) =>
      envelope.to === 3 && envelope.message.kind === 'commit' ? 'hold' : 'deliver';
    cluster.execute(alice.request(kv.put('x', '2')));
    assert.equal(cluster.replica(3).lastExecuted, 1);
    const sentBefore = cluster.sent.length;
    const pendingBefore = cluster.ids.map((id) => cluster.replica(id).pendingRequestCount);

    const read = alice.request(kv.get('x'), { readOnly: true });
    for (const id of cluster.ids) {
      const actions = cluster.step(id, { kind: 'client-request', request: read });
      assert.deepEqual(
        actions.map((action) => action.kind),
        ['reply'],
        `replica ${id} answers at once`,
      );
      const reply = (actions[0] as Extract<Action, { kind: 'reply' }>).reply;
      assert.equal(reply.readOnly, true);
      assert.equal(reply.status, 'ok');
      const expected = id === 3 ? { value: '1', sequence: 1 } : { value: '2', sequence: 2 };
      assert.equal(kv.value(reply.result), expected.value);
      assert.equal(reply.sequence, expected.sequence);
    }
    cluster.run();
    assert.equal(cluster.sent.length, sentBefore, 'nothing was ordered');
    assert.deepEqual(
      cluster.ids.map((id) => cluster.replica(id).pendingRequestCount),
      pendingBefore,
      'a read-only request is never queued for ordering',
    );

    cluster.filter = null;
    cluster.release();
    cluster.run();
    assert.equal(cluster.replica(3).lastExecuted, 2);
    const again = alice.request(kv.get('x'), { readOnly: true });
    cluster.submit(again);
    assert.deepEqual(
      cluster.repliesTo(again).map((reply) => kv.value(reply.result)),
      ['2', '2', '2', '2'],
    );
  });
});
