/**
 * Signed COMMITs (docs/intrusion-tolerance.md, Beyond f): a replica that signs COMMITs for two
 * batches at one (view, sequence) is proven, and a fork within one view, two commit quorums for
 * two batches, names its f + 1 culprits even when it never reaches a checkpoint: a replica that
 * committed sends a peer whose COMMIT names another batch its signed COMMITs
 * (COMMIT-CERTIFICATE), and the peer holds the signers' other ones. Real cores and real crypto
 * through the harness.
 */
import * as assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { verifyEvidence } from '../../src/detection/evidence.js';
import { replicaId } from '../../src/messages/ids.js';
import type { CommitCertificate, PrePrepare } from '../../src/messages/types.js';
import { evidenceContext, Harness, kv, signedCommit, signedPrePrepare } from './harness.js';

/** Two proposals replica 0 signed for view 0, sequence 1. */
function twoProposals(cluster: Harness): { genuine: PrePrepare; other: PrePrepare } {
  const alice = cluster.client('alice');
  return {
    genuine: signedPrePrepare(cluster, 0, 0, 1, [alice.request(kv.put('a', '1'))]),
    other: signedPrePrepare(cluster, 0, 0, 1, [alice.request(kv.put('a', '2'))]),
  };
}

/**
 * Replica 2 accepts `proposal` from leader 0, prepares it with replica 1's PREPARE (its own makes
 * 2f), and commits it with the signed COMMITs of 0 and 1 (its own makes Q = 3).
 */
function commitAtReplica2(cluster: Harness, proposal: PrePrepare): void {
  cluster.deliver(0, 2, proposal);
  cluster.deliver(1, 2, {
    kind: 'prepare',
    view: proposal.view,
    sequence: proposal.sequence,
    batchDigest: proposal.batchDigest,
    replicaId: replicaId(1),
    proposalKeyEpoch: proposal.keyEpoch,
    proposalSignature: proposal.signature,
  });
  for (const voter of [0, 1]) cluster.deliver(voter, 2, signedCommit(cluster, voter, proposal));
}

function contextOf(cluster: Harness) {
  return evidenceContext({ n: 4, f: 1, k: 0 }, cluster.registry, (data) => cluster.cryptos[0]!.hash(data));
}

function certificateOf(
  cluster: Harness,
  proposal: PrePrepare,
  signers: readonly number[],
): CommitCertificate {
  return {
    kind: 'commit-certificate',
    view: proposal.view,
    sequence: proposal.sequence,
    batchDigest: proposal.batchDigest,
    commits: signers.map((signer) => {
      const commit = signedCommit(cluster, signer, proposal);
      return { replicaId: commit.replicaId, keyEpoch: commit.keyEpoch, signature: commit.signature };
    }),
  };
}

describe('signed commits', () => {
  test('a COMMIT whose signature does not verify is refused and its sender suspected', () => {
    const cluster = new Harness();
    const { genuine } = twoProposals(cluster);
    const commit = signedCommit(cluster, 2, genuine);
    const forged = commit.signature.slice();
    forged[0]! ^= 1;
    cluster.deliver(2, 1, { ...commit, signature: forged as typeof commit.signature });
    assert.deepEqual(cluster.suspicionReasons(1, 2), ['commit with an invalid signature']);
    // Signed with another replica's key: refused the same way.
    cluster.deliver(2, 1, { ...signedCommit(cluster, 3, genuine), replicaId: commit.replicaId });
    assert.deepEqual(cluster.suspicionReasons(1, 2), [
      'commit with an invalid signature',
      'commit with an invalid signature',
    ]);
    assert.deepEqual(cluster.evidence(1), []);
  });

  test('two signed COMMITs of one replica for one (view, sequence) are evidence anyone can check', () => {
    const cluster = new Harness();
    const { genuine, other } = twoProposals(cluster);
    cluster.deliver(2, 1, signedCommit(cluster, 2, genuine));
    cluster.deliver(2, 1, signedCommit(cluster, 2, genuine));
    assert.deepEqual(cluster.evidence(1), [], 'a retransmission proves nothing');
    cluster.deliver(2, 1, signedCommit(cluster, 2, other));
    const evidence = cluster.evidence(1);
    assert.equal(evidence.length, 1);
    const proof = evidence[0]!;
    assert.ok(proof.kind === 'double-commit' && proof.accused === 2);
    assert.deepEqual(verifyEvidence(proof, contextOf(cluster)), { valid: true });
    // Relayed to the peers (so that proofs found at different replicas meet).
    assert.ok(
      cluster.sent.some((envelope) => envelope.from === 1 && envelope.message.kind === 'evidence-report'),
    );
    // Tampered: one signature over the other digest no longer verifies.
    const tampered = { ...proof, second: { ...proof.second, batchDigest: genuine.batchDigest } };
    assert.equal(verifyEvidence(tampered, contextOf(cluster)).valid, false);
  });

  test('a fork within one view: the replica that committed sends its signed COMMITs to a peer whose COMMIT names another batch, and the double signers are named', () => {
    const cluster = new Harness();
    const { genuine, other } = twoProposals(cluster);
    // Replica 2 committed `genuine` with replicas 0, 1 and itself (0 and 1 collude beyond f).
    commitAtReplica2(cluster, genuine);
    assert.equal(cluster.replica(2).lastExecuted, 1, 'replica 2 committed and executed it');
    // Replica 3 tells replica 2 it committed `other`: replica 2 answers with its certificate.
    const sentBefore = cluster.sent.length;
    cluster.deliver(3, 2, signedCommit(cluster, 3, other));
    const answers = cluster.sent
      .slice(sentBefore)
      .filter((envelope) => envelope.from === 2 && envelope.message.kind === 'commit-certificate');
    assert.equal(answers.length, 1, 'replica 2 committed and answers replica 3');
    assert.equal(answers[0]!.to, 3);
    // Replica 3's side: it holds 0's and 1's signed COMMITs for `other`; replica 2's certificate
    // for `genuine` names them both, f + 1 = 2: safe mode, naming exactly the colluders.
    for (const voter of [0, 1]) cluster.deliver(voter, 3, signedCommit(cluster, voter, other));
    assert.equal(cluster.replica(3).safeMode, null);
    cluster.deliver(2, 3, certificateOf(cluster, genuine, [0, 1, 2]));
    const accused = cluster
      .evidence(3)
      .filter((evidence) => evidence.kind === 'double-commit')
      .map((evidence) => evidence.accused)
      .sort();
    assert.deepEqual(accused, [0, 1]);
    const safeMode = cluster.replica(3).safeMode;
    assert.ok(safeMode !== null, 'two proven replicas with f = 1: safe mode');
    assert.deepEqual(safeMode.proof.culprits, [0, 1]);
  });

  test("a commit certificate that arrives before the signers' own COMMITs is kept and compared when they come", () => {
    const cluster = new Harness();
    const { genuine, other } = twoProposals(cluster);
    cluster.deliver(2, 3, certificateOf(cluster, genuine, [0, 1, 2]));
    assert.deepEqual(cluster.evidence(3), [], 'nothing of 0 and 1 held yet');
    cluster.deliver(0, 3, signedCommit(cluster, 0, other));
    cluster.deliver(1, 3, signedCommit(cluster, 1, genuine));
    const accused = cluster.evidence(3).map((evidence) => `${evidence.kind}:${evidence.accused}`);
    assert.deepEqual(accused, ['double-commit:0'], 'replica 1 signed the same batch: nothing against it');
  });

  test('a COMMIT that comes after the decision, for the decided batch, is checked only when it is used', () => {
    const cluster = new Harness();
    const { genuine, other } = twoProposals(cluster);
    commitAtReplica2(cluster, genuine);
    assert.equal(cluster.replica(2).lastExecuted, 1);
    // Replica 3's COMMIT for the decided batch, with a broken signature: it decides nothing, so
    // it is not checked (no suspicion)...
    const late = signedCommit(cluster, 3, genuine);
    const broken = late.signature.slice();
    broken[0]! ^= 1;
    cluster.deliver(3, 2, { ...late, signature: broken as typeof late.signature });
    assert.deepEqual(cluster.suspicionReasons(2, 3), []);
    // ...until it is used as proof: a certificate in which replica 3 signed the other batch
    // would make it half of a double-commit proof, so it is checked then, fails, and is dropped.
    cluster.deliver(1, 2, certificateOf(cluster, other, [3]));
    assert.deepEqual(cluster.evidence(2), []);
    assert.ok(cluster.rejectionReasons(2).some((reason) => reason.includes('checked late')));
    assert.equal(cluster.replica(2).safeMode, null);
  });

  test('a commit certificate that names nobody twice, or carries a forged commit, proves nothing', () => {
    const cluster = new Harness();
    const { genuine, other } = twoProposals(cluster);
    for (const voter of [0, 1]) cluster.deliver(voter, 3, signedCommit(cluster, voter, other));
    // Same batch as held: nothing to compare.
    cluster.deliver(2, 3, certificateOf(cluster, other, [0, 1, 2]));
    assert.deepEqual(cluster.evidence(3), []);
    // Another batch, but the signatures are replica 2's own, not 0's and 1's.
    const forged = certificateOf(cluster, genuine, [2, 2, 2]);
    cluster.deliver(2, 3, {
      ...forged,
      commits: [0, 1].map((signer, index) => ({ ...forged.commits[index]!, replicaId: signer as never })),
    });
    assert.deepEqual(cluster.evidence(3), []);
    assert.ok(cluster.rejectionReasons(3).some((reason) => reason.includes('does not verify')));
    assert.equal(cluster.replica(3).safeMode, null);
  });
});
