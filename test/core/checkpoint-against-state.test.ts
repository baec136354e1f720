/**
 * A checkpoint vote against the executed batches (docs/intrusion-tolerance.md, "Detectors"): a
 * peer's vote for another root than the one this replica computed at that sequence is suspected
 * at once (CHECKPOINT_AGAINST_STATE_SUSPICION), whether it comes after this replica got there or
 * before, once per replica, epoch and sequence, with no certificate needed; correct votes earn
 * nothing. Real Replica cores and real crypto through the harness; checkpoint votes are kept from
 * the replicas so that no certificate forms (with one, the vote is conflicting-checkpoint evidence,
 * test/core/late-checkpoint-vote.test.ts).
 */
import * as assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { CHECKPOINT_AGAINST_STATE_SUSPICION } from '../../src/core/replica.js';
import { digest as asDigest, sequenceNumber } from '../../src/messages/ids.js';
import { checkpointPayload } from '../../src/messages/signing.js';
import type { Checkpoint } from '../../src/messages/types.js';
import { Harness, kv } from './harness.js';

/** A cluster whose checkpoint votes are all dropped: no certificate ever forms. */
function withoutCertificates(): Harness {
  const cluster = new Harness();
  cluster.filter = (envelope) => (envelope.message.kind === 'checkpoint' ? 'drop' : 'deliver');
  return cluster;
}

function writes(cluster: Harness, from: number, to: number): void {
  const alice = cluster.client('alice');
  for (let index = from; index <= to; index++)
    cluster.execute(alice.request(kv.put(`k${index}`, `${index}`)));
}

/** Replica `signer`'s vote for checkpoint `sequence` over a made-up root, under its current key. */
function lie(cluster: Harness, signer: number, sequence: number, fill = 9): Checkpoint {
  const stateRoot = asDigest(new Uint8Array(32).fill(fill));
  const signed = cluster.cryptos[signer]!.sign(checkpointPayload(sequenceNumber(sequence), stateRoot));
  return {
    kind: 'checkpoint',
    sequence: sequenceNumber(sequence),
    stateRoot,
    replicaId: cluster.replica(signer).id,
    keyEpoch: signed.keyEpoch,
    signature: signed.signature,
  };
}

const against = (cluster: Harness, observer: number, suspect: number): string[] =>
  cluster
    .suspicionReasons(observer, suspect)
    .filter((reason) => reason === CHECKPOINT_AGAINST_STATE_SUSPICION);

describe('a checkpoint vote against the executed batches', () => {
  test('after this replica executed that far: suspected at once, once per replica, epoch and sequence', () => {
    const cluster = withoutCertificates();
    writes(cluster, 1, 4);
    assert.equal(cluster.replica(1).stableCheckpoint.sequence, 0, 'no certificate');
    cluster.deliver(3, 1, lie(cluster, 3, 4));
    assert.deepEqual(against(cluster, 1, 3), [CHECKPOINT_AGAINST_STATE_SUSPICION]);
    cluster.deliver(3, 1, lie(cluster, 3, 4, 10));
    assert.equal(against(cluster, 1, 3).length, 1, 'one per replica, epoch and sequence');
    assert.deepEqual(cluster.evidence(1), [], 'no certificate, no proof');
  });

  test('before this replica executed that far: suspected when it gets there', () => {
    const cluster = withoutCertificates();
    writes(cluster, 1, 4);
    cluster.deliver(3, 1, lie(cluster, 3, 8));
    assert.deepEqual(against(cluster, 1, 3), [], 'not judged before replica 1 has a root of its own');
    writes(cluster, 5, 8);
    assert.deepEqual(against(cluster, 1, 3), [CHECKPOINT_AGAINST_STATE_SUSPICION]);
  });

  test('correct votes earn nothing', () => {
    const cluster = new Harness();
    writes(cluster, 1, 8);
    cluster.advance(500);
    for (const observer of cluster.ids)
      for (const suspect of cluster.ids)
        if (suspect !== observer) assert.deepEqual(against(cluster, observer, suspect), []);
    for (const id of cluster.ids) assert.equal(cluster.replica(id).stableCheckpoint.sequence, 8);
  });
});
