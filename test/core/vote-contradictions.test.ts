/**
 * Detectors for votes that contradict the proposal or each other (docs/intrusion-tolerance.md,
 * "Detectors"): a PREPARE that arrives before the proposal it contradicts is judged when the
 * proposal comes, as one after it is; a replica whose COMMIT and PREPARE name two batches at one
 * view and sequence, or a leader whose COMMIT is not its own proposal, is refused and suspected.
 * Real Replica cores and real crypto through the harness.
 */
import * as assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { SELF_CONTRADICTION_SUSPICIONS } from '../../src/core/replica.js';
import { bytesEqual, replicaId } from '../../src/messages/ids.js';
import type { Commit, PrePrepare, Prepare } from '../../src/messages/types.js';
import { Harness, kv, signedCommit, signedPrePrepare } from './harness.js';

function prepareOf(proposal: PrePrepare, sender: number): Prepare {
  return {
    kind: 'prepare',
    view: proposal.view,
    sequence: proposal.sequence,
    batchDigest: proposal.batchDigest,
    replicaId: replicaId(sender),
    proposalKeyEpoch: proposal.keyEpoch,
    proposalSignature: proposal.signature,
  };
}

function commitOf(cluster: Harness, proposal: PrePrepare, sender: number): Commit {
  return signedCommit(cluster, sender, proposal);
}

/** Two proposals of the leader (replica 0) for sequence 1 of view 0, for two different batches. */
function twoProposals(cluster: Harness): { readonly genuine: PrePrepare; readonly other: PrePrepare } {
  const genuine = signedPrePrepare(cluster, 0, 0, 1, [cluster.client('alice').request(kv.put('x', 'a'))]);
  const other = signedPrePrepare(cluster, 0, 0, 1, [cluster.client('bob').request(kv.put('x', 'b'))]);
  assert.ok(!bytesEqual(genuine.batchDigest, other.batchDigest));
  return { genuine, other };
}

describe('votes that contradict the proposal or each other', () => {
  test('a PREPARE with a forged signature on another batch, arriving before the proposal, is judged when the proposal comes', () => {
    const cluster = new Harness();
    const { genuine, other } = twoProposals(cluster);
    const forgedSignature = other.signature.slice();
    forgedSignature[0]! ^= 1;
    const lie = { ...prepareOf(other, 2), proposalSignature: forgedSignature } as Prepare;
    cluster.deliver(2, 1, lie);
    assert.deepEqual(cluster.suspicionReasons(1, 2), [], 'nothing to compare it with yet');
    cluster.deliver(0, 1, genuine);
    assert.deepEqual(cluster.suspicionReasons(1, 2), ['prepare with a forged proposal signature']);
    assert.ok(cluster.rejectionReasons(1).includes('prepares a digest the leader did not sign'));
    assert.deepEqual(cluster.evidence(1), [], 'the leader signed one batch: nothing against it');
    assert.equal(cluster.replica(1).viewChangeInProgress, false);
  });

  test("a PREPARE carrying the leader's signature on another batch, arriving before the proposal, proves the equivocation once the proposal comes", () => {
    const cluster = new Harness();
    const { genuine, other } = twoProposals(cluster);
    cluster.deliver(3, 1, prepareOf(other, 3));
    assert.deepEqual(cluster.evidence(1), []);
    cluster.deliver(0, 1, genuine);
    const evidence = cluster.evidence(1);
    assert.equal(evidence.length, 1);
    assert.ok(evidence[0]!.kind === 'equivocation' && evidence[0]!.accused === 0);
    assert.deepEqual(cluster.suspicionReasons(1, 3), [], 'the forwarder is not blamed');
    assert.equal(cluster.replica(1).viewChangeInProgress, true, 'the equivocating leader is replaced');
  });

  test('a PREPARE that matches the proposal, arriving before it, still counts', () => {
    const cluster = new Harness();
    const { genuine } = twoProposals(cluster);
    cluster.deliver(2, 1, prepareOf(genuine, 2));
    cluster.deliver(0, 1, genuine);
    assert.deepEqual(cluster.suspicions(1), []);
    assert.deepEqual(cluster.rejectionReasons(1), []);
  });

  test('a COMMIT for another batch than its sender prepared is refused and suspected, in either order', () => {
    const cluster = new Harness();
    const { genuine, other } = twoProposals(cluster);
    cluster.deliver(0, 1, genuine);
    cluster.deliver(2, 1, prepareOf(genuine, 2));
    cluster.deliver(2, 1, commitOf(cluster, other, 2));
    assert.deepEqual(cluster.suspicionReasons(1, 2), [SELF_CONTRADICTION_SUSPICIONS.commitAgainstPrepare]);
    assert.ok(cluster.rejectionReasons(1).includes(SELF_CONTRADICTION_SUSPICIONS.commitAgainstPrepare));

    // Replica 3 commits first, then prepares another batch (before replica 1 holds a proposal, so
    // the PREPARE is not judged against the proposal: only against the sender's own COMMIT).
    const second = new Harness();
    const pair = twoProposals(second);
    second.deliver(3, 1, commitOf(second, pair.genuine, 3));
    second.deliver(3, 1, prepareOf(pair.other, 3));
    assert.deepEqual(second.suspicionReasons(1, 3), [SELF_CONTRADICTION_SUSPICIONS.prepareAgainstCommit]);
  });

  test("a leader's COMMIT for another batch than its own proposal is refused and suspected, in either order", () => {
    const cluster = new Harness();
    const { genuine, other } = twoProposals(cluster);
    cluster.deliver(0, 1, genuine);
    cluster.deliver(0, 1, commitOf(cluster, other, 0));
    assert.deepEqual(cluster.suspicionReasons(1, 0), [SELF_CONTRADICTION_SUSPICIONS.commitAgainstProposal]);

    const second = new Harness();
    const pair = twoProposals(second);
    second.deliver(0, 2, commitOf(second, pair.other, 0));
    assert.deepEqual(second.suspicionReasons(2, 0), []);
    second.deliver(0, 2, pair.genuine);
    assert.deepEqual(second.suspicionReasons(2, 0), [SELF_CONTRADICTION_SUSPICIONS.commitAgainstProposal]);
  });

  test('correct replicas never earn a self-contradiction suspicion: a run with a view change and retransmissions', () => {
    const cluster = new Harness();
    const alice = cluster.client('alice');
    for (let index = 0; index < 5; index++) cluster.execute(alice.request(kv.put(`k${index}`, `${index}`)));
    // The leader goes silent: the others change view and order the next request.
    cluster.disconnected.add(0);
    cluster.submit(alice.request(kv.put('after', 'view change')), [1, 2, 3]);
    cluster.advance(10_000);
    cluster.disconnected.delete(0);
    cluster.advance(5_000);
    assert.equal(cluster.read(1, 'after'), 'view change');
    const contradictions = new Set<string>(Object.values(SELF_CONTRADICTION_SUSPICIONS));
    for (const id of cluster.ids)
      assert.deepEqual(
        cluster.suspicions(id).filter((suspicion) => contradictions.has(suspicion.reason)),
        [],
        `replica ${id}`,
      );
  });
});
