/**
 * Checkpoint certificates under expiring key epochs, written from what can go wrong: a stable
 * checkpoint certificate signed under epochs that are no longer accepted proves nothing (to a
 * replica restarting from it, to a peer it is sent to in a CHECKPOINT-PROOF or a VIEW-CHANGE), so
 * it must be re-certified under current epochs as part of the normal checkpoint cycle; a replica
 * whose stored certificate stopped verifying must get back to its state once a quorum vouches for
 * it again; and a faulty replica's vote for another state must never get that state certified.
 */
import * as assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type Digest, digest as asDigest, replicaId, sequenceNumber, toHex } from '../../src/messages/ids.js';
import { quorumSize } from '../../src/core/quorum.js';
import { checkpointPayload } from '../../src/messages/signing.js';
import type { CheckpointCertificate } from '../../src/messages/types.js';
import { EpochBook, EpochCrypto } from './epochs.js';
import { Harness, kv } from './harness.js';

function clusterWithEpochs(): { cluster: Harness; book: EpochBook } {
  const book = new EpochBook(4);
  const cluster = new Harness({ coreCrypto: (inner, id) => new EpochCrypto(inner, id, book) });
  return { cluster, book };
}

/** Four writes: checkpoint 4 (checkpointInterval 4) becomes stable everywhere, under epoch 0. */
function reachCheckpoint(cluster: Harness): CheckpointCertificate {
  const alice = cluster.client('alice');
  for (let index = 1; index <= 4; index++) cluster.execute(alice.request(kv.put(`k${index}`, `${index}`)));
  cluster.advance(500);
  const certificate = cluster.replica(0).stableCheckpoint;
  assert.equal(certificate.sequence, 4);
  for (const id of cluster.ids) assert.equal(cluster.replica(id).stableCheckpoint.sequence, 4);
  assert.ok(certificate.votes.every((vote) => vote.keyEpoch === 0));
  return certificate;
}

/** The votes of a certificate that the replica's crypto accepts now. */
function verifyingNow(cluster: Harness, id: number, certificate: CheckpointCertificate): number {
  const payload = checkpointPayload(certificate.sequence, certificate.stateRoot);
  return certificate.votes.filter((vote) =>
    cluster.coreCryptos[id]!.verifyReplicaSignature(
      vote.replicaId,
      vote.keyEpoch,
      payload,
      vote.signature,
      'proof',
    ),
  ).length;
}

function assertRecertified(cluster: Harness, id: number, root: Digest): void {
  const quorum = quorumSize(cluster.config);
  for (const certificate of [
    cluster.replica(id).stableCheckpoint,
    cluster.disks[id]!.checkpoint!.certificate,
  ]) {
    assert.equal(certificate.sequence, 4);
    assert.equal(toHex(certificate.stateRoot), toHex(root));
    assert.ok(certificate.votes.length >= quorum, `replica ${id}: ${certificate.votes.length} votes`);
    assert.ok(
      certificate.votes.every((vote) => vote.keyEpoch === 1),
      `replica ${id} still holds votes of expired epochs`,
    );
    assert.equal(verifyingNow(cluster, id, certificate), certificate.votes.length);
  }
}

describe('checkpoint certificates under expiring key epochs', () => {
  test('1. when the epochs of its votes expire (keys-changed), the stable certificate is replaced by one under current epochs, in memory and on disk', () => {
    const { cluster, book } = clusterWithEpochs();
    const before = reachCheckpoint(cluster);
    book.rotateAllAndExpireOld();
    for (const id of cluster.ids)
      assert.equal(verifyingNow(cluster, id, cluster.replica(id).stableCheckpoint), 0);
    for (const id of cluster.ids) cluster.step(id, { kind: 'keys-changed' });
    cluster.advance(500);
    for (const id of cluster.ids) assertRecertified(cluster, id, before.stateRoot);
  });

  test('2. with no keys-changed event (epochs expire with time), the periodic check re-certifies too', () => {
    const { cluster, book } = clusterWithEpochs();
    const before = reachCheckpoint(cluster);
    book.rotateAllAndExpireOld();
    cluster.advance(4 * 4 * cluster.config.statusIntervalMs);
    for (const id of cluster.ids) assertRecertified(cluster, id, before.stateRoot);
  });

  test('3. a replica restarted on a checkpoint whose certificate no longer verifies adopts it once Q votes that verify now match it, its own included, without a state transfer', () => {
    const { cluster, book } = clusterWithEpochs();
    const before = reachCheckpoint(cluster);
    cluster.crash(3);
    book.rotateAllAndExpireOld();
    cluster.restart(3, 'intact');
    assert.equal(cluster.logs(3, 'restored-checkpoint-unverified').length, 1);
    assert.equal(cluster.replica(3).restoredStatePending, true);
    for (const id of [0, 1, 2]) cluster.step(id, { kind: 'keys-changed' });
    assert.ok(cluster.advanceUntil(() => !cluster.replica(3).restoredStatePending, 3000));
    assert.equal(cluster.logs(3, 'restored-checkpoint-recertified').length, 1);
    assert.deepEqual(
      cluster
        .actionsOf(3, 1)
        .filter((action) => action.kind === 'log' && action.event === 'state-transfer-started'),
      [],
      'adopted its own state, not fetched',
    );
    assertRecertified(cluster, 3, before.stateRoot);
    assert.equal(cluster.read(3, 'k4'), '4');
  });

  test('4. a faulty replica voting for another root under a current epoch never gets it certified; the right state is adopted once Q correct votes are in', () => {
    const { cluster, book } = clusterWithEpochs();
    const before = reachCheckpoint(cluster);
    cluster.crash(3);
    book.rotateAllAndExpireOld();
    // Replica 2 is faulty: it withholds its vote for the real state (alone or inside its certificate)
    // and votes for another one.
    cluster.filter = (envelope) =>
      envelope.from === 2 && ['checkpoint', 'checkpoint-proof'].includes(envelope.message.kind)
        ? 'drop'
        : 'deliver';
    cluster.disconnected.add(1);
    cluster.restart(3, 'intact');
    cluster.step(0, { kind: 'keys-changed' });
    const forged = asDigest(new Uint8Array(32).fill(7));
    const signed = cluster.coreCryptos[2]!.sign(checkpointPayload(sequenceNumber(4), forged));
    for (const to of [0, 3]) {
      cluster.inject(2, to, {
        kind: 'checkpoint',
        sequence: sequenceNumber(4),
        stateRoot: forged,
        replicaId: replicaId(2),
        keyEpoch: signed.keyEpoch,
        signature: signed.signature,
      });
    }
    cluster.advance(3000);
    // Correct votes that verify now: 0 and 3 itself; with the faulty one that is Q replicas, but not
    // Q for any one root.
    assert.equal(cluster.replica(3).restoredStatePending, true, 'two matching votes are not a quorum');
    for (const id of [0, 2, 3]) {
      const root = toHex(cluster.replica(id).stableCheckpoint.stateRoot);
      assert.notEqual(root, toHex(forged), `replica ${id} took the faulty root`);
    }

    cluster.disconnected.delete(1);
    assert.ok(cluster.advanceUntil(() => !cluster.replica(3).restoredStatePending, 10_000));
    assert.equal(toHex(cluster.replica(3).stableCheckpoint.stateRoot), toHex(before.stateRoot));
    // Replica 1, back, re-certifies from the others' fresh votes too.
    cluster.advance(3000);
    for (const id of [0, 1, 3]) {
      const certificate = cluster.replica(id).stableCheckpoint;
      assert.equal(toHex(certificate.stateRoot), toHex(before.stateRoot));
      assert.equal(verifyingNow(cluster, id, certificate), certificate.votes.length, 'no forged vote inside');
    }
    for (const id of [0, 1, 3])
      for (const evidence of cluster.evidence(id))
        assert.equal(evidence.accused, 2, 'only the liar is accused');
  });
});
