/**
 * A checkpoint vote that arrives after its checkpoint became stable (docs/intrusion-tolerance.md,
 * "Detectors"): one that contradicts a certificate still retained is a conflicting-checkpoint
 * proof, as one that came in time is, reported once per replica, epoch and sequence; one that
 * agrees, or is for a checkpoint no longer retained, is ignored. Real Replica cores and real
 * crypto through the harness.
 */
import * as assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { digest as asDigest, sequenceNumber } from '../../src/messages/ids.js';
import { checkpointPayload } from '../../src/messages/signing.js';
import type { Checkpoint } from '../../src/messages/types.js';
import { Harness, kv } from './harness.js';

/** Eight writes: checkpoints 4 and 8 (checkpointInterval 4) stable everywhere. */
function pastTwoCheckpoints(): Harness {
  const cluster = new Harness();
  const alice = cluster.client('alice');
  for (let index = 1; index <= 8; index++) cluster.execute(alice.request(kv.put(`k${index}`, `${index}`)));
  cluster.advance(500);
  for (const id of cluster.ids) assert.equal(cluster.replica(id).stableCheckpoint.sequence, 8);
  return cluster;
}

/** Replica `signer`'s vote for checkpoint 4, over `root`, signed with its current key. */
function voteFor4(cluster: Harness, signer: number, root: Uint8Array): Checkpoint {
  const sequence = sequenceNumber(4);
  const stateRoot = asDigest(root);
  const signed = cluster.cryptos[signer]!.sign(checkpointPayload(sequence, stateRoot));
  return {
    kind: 'checkpoint',
    sequence,
    stateRoot,
    replicaId: cluster.replica(signer).id,
    keyEpoch: signed.keyEpoch,
    signature: signed.signature,
  };
}

function conflictsAgainst(cluster: Harness, observer: number, accused: number): number {
  return cluster
    .evidence(observer)
    .filter((evidence) => evidence.kind === 'conflicting-checkpoint' && evidence.accused === accused).length;
}

describe('a late checkpoint vote', () => {
  test('that contradicts a retained certificate is a proof, reported once', () => {
    const cluster = pastTwoCheckpoints();
    const lie = voteFor4(cluster, 3, new Uint8Array(32).fill(9));
    cluster.deliver(3, 1, lie);
    assert.equal(conflictsAgainst(cluster, 1, 3), 1);
    cluster.deliver(3, 1, lie);
    cluster.deliver(3, 1, voteFor4(cluster, 3, new Uint8Array(32).fill(10)));
    assert.equal(conflictsAgainst(cluster, 1, 3), 1, 'the same replica, epoch and sequence: one proof');
  });

  test('that agrees with the retained certificate is ignored', () => {
    const cluster = pastTwoCheckpoints();
    // The root every replica voted for and certified at checkpoint 4.
    const root = cluster.steps
      .flatMap((step) => step.actions)
      .find(
        (action) =>
          action.kind === 'broadcast' &&
          action.message.kind === 'checkpoint' &&
          action.message.sequence === 4,
      );
    assert.ok(root !== undefined && root.kind === 'broadcast' && root.message.kind === 'checkpoint');
    cluster.deliver(3, 1, voteFor4(cluster, 3, root.message.stateRoot));
    assert.equal(conflictsAgainst(cluster, 1, 3), 0);
    assert.deepEqual(cluster.logs(1, 'rejected-input'), []);
  });
});
