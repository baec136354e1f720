/**
 * Messages under a retired key epoch (docs/intrusion-tolerance.md, "Detectors"): a replica's own
 * PRE-PREPARE or CHECKPOINT signed under an epoch older than its current one is refused and its
 * sender suspected (RETIRED_EPOCH_SUSPICION), since a correct replica's keys change only with a
 * new process; a bad signature under the current epoch is refused as before, with the suspicion it
 * had. Real Replica cores through the harness, with epochs the tests retire (EpochBook).
 */
import * as assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { RETIRED_EPOCH_SUSPICION } from '../../src/core/replica.js';
import { digest as asDigest, keyEpoch, replicaId, sequenceNumber } from '../../src/messages/ids.js';
import { checkpointPayload } from '../../src/messages/signing.js';
import type { Checkpoint } from '../../src/messages/types.js';
import { EpochBook, EpochCrypto } from './epochs.js';
import { Harness, kv, signedPrePrepare } from './harness.js';

function clusterWithEpochs(): { cluster: Harness; book: EpochBook } {
  const book = new EpochBook(4);
  const cluster = new Harness({ coreCrypto: (inner, id) => new EpochCrypto(inner, id, book) });
  return { cluster, book };
}

/** Replica `signer`'s CHECKPOINT vote for sequence 4, labelled with `epoch`. */
function checkpointVote(cluster: Harness, signer: number, epoch: number): Checkpoint {
  const sequence = sequenceNumber(4);
  const stateRoot = asDigest(new Uint8Array(32).fill(7));
  const signed = cluster.cryptos[signer]!.sign(checkpointPayload(sequence, stateRoot));
  return {
    kind: 'checkpoint',
    sequence,
    stateRoot,
    replicaId: replicaId(signer),
    keyEpoch: keyEpoch(epoch),
    signature: signed.signature,
  };
}

describe('messages under a retired key epoch', () => {
  test("a CHECKPOINT of the sender's own under its retired epoch is refused and the sender suspected", () => {
    const { cluster, book } = clusterWithEpochs();
    book.rotateAndExpireOld([3]);
    cluster.deliver(3, 1, checkpointVote(cluster, 3, 0));
    assert.deepEqual(cluster.suspicionReasons(1, 3), [`${RETIRED_EPOCH_SUSPICION} 0 (current 1)`]);
    assert.ok(cluster.rejectionReasons(1).some((reason) => reason.startsWith('signature does not verify')));
  });

  test('a CHECKPOINT under the current epoch whose signature fails is refused, and nobody is suspected', () => {
    const { cluster, book } = clusterWithEpochs();
    book.rotateAndExpireOld([3]);
    const vote = checkpointVote(cluster, 3, 1);
    const forged = vote.signature.slice();
    forged[0] = forged[0]! ^ 1;
    cluster.deliver(3, 1, { ...vote, signature: forged as typeof vote.signature });
    assert.deepEqual(cluster.suspicionReasons(1, 3), []);
    assert.ok(cluster.rejectionReasons(1).some((reason) => reason.startsWith('signature does not verify')));
  });

  test("a leader's PRE-PREPARE under its retired epoch gets the retired-epoch suspicion, not the invalid-signature one", () => {
    const { cluster, book } = clusterWithEpochs();
    const proposal = signedPrePrepare(cluster, 0, 0, 1, [cluster.client('alice').request(kv.put('x', 'a'))]);
    book.rotateAndExpireOld([0]);
    cluster.deliver(0, 2, proposal);
    assert.deepEqual(cluster.suspicionReasons(2, 0), [`${RETIRED_EPOCH_SUSPICION} 0 (current 1)`]);
    const underCurrent = { ...proposal, keyEpoch: keyEpoch(1), signature: proposal.signature.slice() };
    underCurrent.signature[0] = underCurrent.signature[0]! ^ 1;
    cluster.deliver(0, 3, underCurrent as typeof proposal);
    assert.deepEqual(cluster.suspicionReasons(3, 0), ['proposal with an invalid signature']);
  });
});
