import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  bytesEqual,
  type Digest,
  keyEpoch,
  type ReplicaId,
  replicaId,
  sequenceNumber,
  type Signature,
  viewNumber,
} from '../../src/messages/ids.js';
import { KeyRegistry } from '../../src/crypto/key-registry.js';
import { deriveSeed } from '../../src/crypto/keys.js';
import { ReplicaCrypto, sessionKeysFromSeed } from '../../src/crypto/replica-crypto.js';
import { type ForensicContext, verifyForensicProof } from '../../src/detection/forensics.js';
import {
  culpritsOf,
  FORK_MONITOR_SEQUENCES,
  ForkMonitor,
  forensicProofOf,
  NO_VOTES,
} from '../../src/core/forensics.js';
import { quorumSize } from '../../src/core/quorum.js';
import { checkpointPayload, proposalPayload } from '../../src/messages/signing.js';
import type {
  CheckpointCertificate,
  EquivocationEvidence,
  ForensicProof,
  OtherEvidence,
} from '../../src/messages/types.js';
import { verifyEvidence } from '../../src/detection/evidence.js';

const master = new Uint8Array(32).fill(41);

function cluster(n: number, f: number, k = 0) {
  const model = { n, f, k } as const;
  const registry = new KeyRegistry(n);
  const replicas = Array.from(
    { length: n },
    (_, index) =>
      new ReplicaCrypto({
        replica: replicaId(index),
        registry,
        epoch: keyEpoch(0),
        sessionKeys: sessionKeysFromSeed(deriveSeed(master, `replica:${index}|epoch:0`)),
      }),
  );
  const context: ForensicContext = {
    model,
    verifyReplicaSignature: (signer, epoch, payload, signature) =>
      registry.verifyReplicaSignature(signer, epoch, payload, signature),
    hash: (data) => replicas[0]!.hash(data),
    currentEpoch: (replica) => registry.currentEpoch(replica),
  };
  const validOther = (evidence: OtherEvidence): boolean => verifyEvidence(evidence, context).valid;
  const hash = (text: string): Digest => replicas[0]!.hash(new TextEncoder().encode(text));
  function certificate(sequence: number, root: Digest, signers: readonly number[]): CheckpointCertificate {
    return {
      sequence: sequenceNumber(sequence),
      stateRoot: root,
      votes: [...signers]
        .sort((a, b) => a - b)
        .map((signer) => {
          const signed = replicas[signer]!.sign(checkpointPayload(sequenceNumber(sequence), root));
          return { replicaId: replicaId(signer), keyEpoch: signed.keyEpoch, signature: signed.signature };
        }),
    };
  }
  const validVoters = (candidate: CheckpointCertificate): ReplicaId[] | null => {
    const seen = new Set<number>();
    const voters: ReplicaId[] = [];
    for (const vote of candidate.votes) {
      if (vote.replicaId >= n || seen.has(vote.replicaId)) return null;
      seen.add(vote.replicaId);
      if (
        registry.verifyReplicaSignature(
          vote.replicaId,
          vote.keyEpoch,
          checkpointPayload(candidate.sequence, candidate.stateRoot),
          vote.signature,
        )
      )
        voters.push(vote.replicaId);
    }
    return voters;
  };
  /** Two proposals of `accused` for one (view, sequence), each signed with its keys. */
  function equivocation(accused: number, view: number, sequence: number): EquivocationEvidence {
    const proposal = (batch: string) => {
      const batchDigest = hash(batch);
      const signed = replicas[accused]!.sign(
        proposalPayload(viewNumber(view), sequenceNumber(sequence), batchDigest),
      );
      return {
        view: viewNumber(view),
        sequence: sequenceNumber(sequence),
        batchDigest,
        keyEpoch: signed.keyEpoch,
        signature: signed.signature,
      };
    };
    return {
      kind: 'equivocation',
      accused: replicaId(accused),
      first: proposal('one'),
      second: proposal('two'),
    };
  }
  const validEquivocation = (evidence: EquivocationEvidence): boolean =>
    [evidence.first, evidence.second].every((proposal) =>
      registry.verifyReplicaSignature(
        evidence.accused,
        proposal.keyEpoch,
        proposalPayload(proposal.view, proposal.sequence, proposal.batchDigest),
        proposal.signature,
      ),
    ) && !bytesEqual(evidence.first.batchDigest, evidence.second.batchDigest);
  /** One replica's CHECKPOINT vote, as the monitor is shown it. */
  const vote = (sequence: number, root: Digest, signer: number) =>
    certificate(sequence, root, [signer]).votes[0]!;
  /** A checkpoint vote of `accused` against a certificate of every other replica (a quorum at n = 4, 7). */
  function conflictingCheckpoint(accused: number, sequence: number): OtherEvidence {
    const others = Array.from({ length: n }, (_, index) => index).filter((index) => index !== accused);
    const lie = hash('lie');
    const signed = certificate(sequence, lie, [accused]).votes[0]!;
    return {
      kind: 'conflicting-checkpoint',
      accused: replicaId(accused),
      certificate: certificate(sequence, hash('certified'), others),
      vote: { kind: 'checkpoint', sequence: sequenceNumber(sequence), stateRoot: lie, ...signed },
    };
  }
  return {
    model,
    context,
    hash,
    certificate,
    validVoters,
    equivocation,
    validEquivocation,
    validOther,
    conflictingCheckpoint,
    vote,
  };
}

// n = 4, f = 1: Q = 3; replicas 1 and 2 sign both roots (a twin-key fork).
const small = cluster(4, 1);
const rootA = small.hash('state A');
const rootB = small.hash('state B');
const forkProof = (): ForensicProof =>
  forensicProofOf(
    small.model,
    { certificate: small.certificate(8, rootA, [0, 1, 2]), voters: [0, 1, 2].map(replicaId) },
    { certificate: small.certificate(8, rootB, [1, 2, 3]), voters: [1, 2, 3].map(replicaId) },
  );

describe('verifyForensicProof', () => {
  it('accepts two quorum certificates for one sequence with different roots, and names the signers of both', () => {
    const proof = forkProof();
    assert.deepEqual(proof.culprits, [1, 2]);
    const verdict = verifyForensicProof(proof, small.context);
    assert.deepEqual(verdict, { valid: true, culprits: [1, 2] });
  });

  it('rejects certificates of the same root', () => {
    const proof = { ...forkProof() };
    const same = { ...proof, second: small.certificate(8, proof.first.stateRoot, [1, 2, 3]) };
    assert.match((verifyForensicProof(same, small.context) as { reason: string }).reason, /same state root/);
  });

  it('rejects certificates of two sequences', () => {
    const proof = forkProof();
    const other = { ...proof, second: small.certificate(16, rootB, [1, 2, 3]) };
    assert.match(
      (verifyForensicProof(other, small.context) as { reason: string }).reason,
      /sequences 8 and 16/,
    );
  });

  it('needs no quorum, only f + 1 replicas that signed both roots', () => {
    const proof = forkProof();
    const under = { ...proof, second: small.certificate(8, proof.second.stateRoot, [1, 2]) };
    assert.deepEqual(verifyForensicProof(under, small.context), { valid: true, culprits: [1, 2] });
    const one = {
      ...proof,
      second: small.certificate(8, proof.second.stateRoot, [1]),
      culprits: [replicaId(1)],
    };
    assert.match(
      (verifyForensicProof(one, small.context) as { reason: string }).reason,
      /only 1 replicas are proven faulty, fewer than f \+ 1 = 2/,
    );
  });

  it('counts equivocating leaders with the double signers of a checkpoint', () => {
    const proof: ForensicProof = {
      first: small.certificate(8, rootA, [0, 3]),
      second: small.certificate(8, rootB, [1, 3]),
      equivocations: [small.equivocation(0, 2, 5)],
      culprits: [replicaId(0), replicaId(3)],
      otherEvidence: [],
    };
    assert.deepEqual(verifyForensicProof(proof, small.context), { valid: true, culprits: [0, 3] });
    const alone: ForensicProof = {
      first: NO_VOTES,
      second: NO_VOTES,
      equivocations: [small.equivocation(0, 2, 5), small.equivocation(2, 3, 9)],
      culprits: [replicaId(0), replicaId(2)],
      otherEvidence: [],
    };
    assert.deepEqual(verifyForensicProof(alone, small.context), { valid: true, culprits: [0, 2] });
    const [first, second] = alone.equivocations;
    const unsigned = {
      ...first!,
      second: {
        ...first!.second,
        signature: first!.second.signature.map((byte) => byte ^ 1) as Signature,
      },
    };
    assert.match(
      (
        verifyForensicProof({ ...alone, equivocations: [unsigned, second!] }, small.context) as {
          reason: string;
        }
      ).reason,
      /equivocation of replica 0: second proposal signature does not verify/,
    );
    assert.match(
      (
        verifyForensicProof({ ...alone, equivocations: [first!, first!] }, small.context) as {
          reason: string;
        }
      ).reason,
      /two equivocations of replica 0/,
    );
    const same = { ...first!, second: first!.first };
    assert.equal(
      verifyForensicProof({ ...alone, equivocations: [same, second!] }, small.context).valid,
      false,
    );
  });

  it("rejects forged votes (a culprit's flipped signature does not count), and ignores a forged vote of a non-culprit", () => {
    const proof = forkProof();
    const flip = (replica: number) => ({
      ...proof,
      second: {
        ...proof.second,
        votes: proof.second.votes.map((vote) =>
          vote.replicaId === replica
            ? { ...vote, signature: vote.signature.map((byte) => byte ^ 1) as typeof vote.signature }
            : vote,
        ),
      },
    });
    assert.equal(verifyForensicProof(flip(1), small.context).valid, false);
    const bystander = proof.second.votes.find((vote) => vote.replicaId !== 1 && vote.replicaId !== 2)!;
    assert.deepEqual(verifyForensicProof(flip(bystander.replicaId), small.context), {
      valid: true,
      culprits: [1, 2],
    });
  });

  it('rejects a vote moved to another signer and duplicate votes', () => {
    const proof = forkProof();
    const moved = {
      ...proof,
      second: {
        ...proof.second,
        votes: proof.second.votes.map((vote) => ({ ...vote, replicaId: replicaId(0) })),
      },
    };
    assert.match(
      (verifyForensicProof(moved, small.context) as { reason: string }).reason,
      /two votes of replica 0/,
    );
  });

  it('rejects wrong culprits (framing a replica that signed one certificate only)', () => {
    const proof = forkProof();
    for (const culprits of [[0, 1, 2], [1], [2, 1], []].map((list) => list.map(replicaId))) {
      const verdict = verifyForensicProof({ ...proof, culprits }, small.context);
      assert.equal(verdict.valid, false, `culprits ${culprits.join(',')}`);
    }
  });

  it('property: any two quorums of distinct roots prove a fork of their intersection, at least f + 1 replicas', () => {
    const big = cluster(7, 2);
    const quorum = quorumSize(big.model);
    const subset = fc
      .shuffledSubarray([0, 1, 2, 3, 4, 5, 6], { minLength: quorum, maxLength: 7 })
      .map((list) => [...list].sort((a, b) => a - b));
    fc.assert(
      fc.property(subset, subset, fc.integer({ min: 1, max: 5 }), (left, right, multiple) => {
        const sequence = multiple * 8;
        const a = big.certificate(sequence, big.hash(`a${sequence}`), left);
        const b = big.certificate(sequence, big.hash(`b${sequence}`), right);
        const proof = forensicProofOf(
          big.model,
          { certificate: a, voters: left.map(replicaId) },
          { certificate: b, voters: right.map(replicaId) },
        );
        assert.ok(proof.culprits.length >= big.model.f + 1);
        assert.deepEqual(proof.culprits, culpritsOf(left.map(replicaId), right.map(replicaId)));
        const verdict = verifyForensicProof(proof, big.context);
        assert.deepEqual(verdict, { valid: true, culprits: proof.culprits });
      }),
      { numRuns: 30 },
    );
  });

  it('property: dropping votes below f + 1 double signers, or naming another culprit set, is always rejected', () => {
    const proof = forkProof();
    fc.assert(
      fc.property(
        fc.subarray([1, 2], { minLength: 1 }),
        fc.subarray([0, 1, 2, 3].map(replicaId)),
        (dropped, culprits) => {
          const votes = proof.first.votes.filter((vote) => !dropped.includes(vote.replicaId));
          const under = { ...proof, first: { ...proof.first, votes } };
          assert.equal(verifyForensicProof(under, small.context).valid, false);
          const isRight = culprits.length === 2 && culprits[0] === 1 && culprits[1] === 2;
          assert.equal(verifyForensicProof({ ...proof, culprits }, small.context).valid, isRight);
        },
      ),
      { numRuns: 50 },
    );
  });
});

describe('ForkMonitor', () => {
  it('stays quiet while every sequence has one certified root, and yields the proof at the second root', () => {
    const monitor = new ForkMonitor(
      small.model,
      small.validVoters,
      small.validEquivocation,
      small.validOther,
    );
    assert.equal(monitor.observe(small.certificate(8, rootA, [0, 1, 2])).kind, 'consistent');
    assert.equal(monitor.observe(small.certificate(8, rootA, [1, 2, 3])).kind, 'consistent');
    assert.equal(monitor.observe(small.certificate(16, rootB, [0, 1, 2])).kind, 'consistent');
    assert.equal(monitor.proof, null);
    const seen = monitor.observe(small.certificate(8, rootB, [1, 2, 3]));
    assert.equal(seen.kind, 'fork');
    const proof: ForensicProof | null = seen.kind === 'fork' ? seen.proof : null;
    assert.deepEqual(proof?.culprits, [1, 2]);
    assert.equal(monitor.proof, proof);
    assert.equal(verifyForensicProof(proof!, small.context).valid, true);
  });

  it('ignores under-quorum and forged certificates', () => {
    const monitor = new ForkMonitor(
      small.model,
      small.validVoters,
      small.validEquivocation,
      small.validOther,
    );
    monitor.observe(small.certificate(8, rootA, [0, 1, 2]));
    assert.equal(monitor.observe(small.certificate(8, rootB, [1, 2])).kind, 'invalid');
    const forged = small.certificate(8, rootB, [1, 2, 3]);
    const votes = forged.votes.map((vote) => ({
      ...vote,
      signature: vote.signature.map(() => 7) as typeof vote.signature,
    }));
    assert.equal(monitor.observe({ ...forged, votes }).kind, 'invalid');
    assert.equal(monitor.proof, null);
  });

  it(`remembers the last ${FORK_MONITOR_SEQUENCES} sequences only`, () => {
    const monitor = new ForkMonitor(
      small.model,
      small.validVoters,
      small.validEquivocation,
      small.validOther,
    );
    for (let index = 1; index <= FORK_MONITOR_SEQUENCES + 1; index++)
      monitor.observe(small.certificate(index * 8, rootA, [0, 1, 2]));
    assert.equal(monitor.rootAt(sequenceNumber(8)), null);
    assert.equal(monitor.observe(small.certificate(8, rootB, [1, 2, 3])).kind, 'consistent');
    assert.equal(monitor.observe(small.certificate(16, rootB, [1, 2, 3])).kind, 'fork');
    assert.equal(monitor.recent(4).length, 4);
  });

  it('finds f + 1 replicas that voted for one root and signed a certificate of another, without two quorums', () => {
    // The colluders' attack of src/sim/colluders.ts: their own votes for root A reach this
    // replica; the certificate of root B they made for other correct replicas reaches it later.
    const monitor = new ForkMonitor(
      small.model,
      small.validVoters,
      small.validEquivocation,
      small.validOther,
    );
    assert.equal(monitor.observeVote(sequenceNumber(8), rootA, small.vote(8, rootA, 0)).kind, 'consistent');
    assert.equal(monitor.observeVote(sequenceNumber(8), rootA, small.vote(8, rootA, 1)).kind, 'consistent');
    assert.equal(monitor.observeVote(sequenceNumber(8), rootA, small.vote(8, rootA, 2)).kind, 'consistent');
    const seen = monitor.observe(small.certificate(8, rootB, [0, 1, 3]));
    assert.equal(seen.kind, 'fork');
    const proof = seen.kind === 'fork' ? seen.proof : null;
    assert.deepEqual(proof?.culprits, [0, 1]);
    assert.deepEqual(verifyForensicProof(proof!, small.context), { valid: true, culprits: [0, 1] });
  });

  it('one double signer is not enough; with an equivocating leader it is', () => {
    const monitor = new ForkMonitor(
      small.model,
      small.validVoters,
      small.validEquivocation,
      small.validOther,
    );
    monitor.observeVote(sequenceNumber(8), rootA, small.vote(8, rootA, 1));
    assert.equal(monitor.observe(small.certificate(8, rootB, [0, 1, 3])).kind, 'consistent');
    assert.equal(monitor.proof, null);
    const seen = monitor.observeEvidence(small.equivocation(0, 4, 7));
    assert.equal(seen.kind, 'fork');
    const proof = seen.kind === 'fork' ? seen.proof : null;
    assert.deepEqual(proof?.culprits, [0, 1]);
    assert.equal(proof?.equivocations.length, 1);
    assert.equal(verifyForensicProof(proof!, small.context).valid, true);
    // An equivocation whose signature does not verify proves nothing.
    const other = new ForkMonitor(small.model, small.validVoters, small.validEquivocation, small.validOther);
    other.observeVote(sequenceNumber(8), rootA, small.vote(8, rootA, 1));
    other.observe(small.certificate(8, rootB, [0, 1, 3]));
    const forged = small.equivocation(0, 4, 7);
    const bad = {
      ...forged,
      first: {
        ...forged.first,
        signature: forged.first.signature.map(() => 3) as typeof forged.first.signature,
      },
    };
    assert.equal(other.observeEvidence(bad).kind, 'consistent');
    assert.equal(other.proof, null);
  });

  it('counts other proofs: a conflicting checkpoint with an equivocation is more than f', () => {
    const monitor = new ForkMonitor(
      small.model,
      small.validVoters,
      small.validEquivocation,
      small.validOther,
    );
    assert.equal(monitor.observeEvidence(small.conflictingCheckpoint(3, 8)).kind, 'consistent');
    // A second proof against the same replica is still one replica.
    assert.equal(monitor.observeEvidence(small.conflictingCheckpoint(3, 16)).kind, 'consistent');
    const seen = monitor.observeEvidence(small.equivocation(1, 2, 5));
    assert.equal(seen.kind, 'fork');
    const proof = seen.kind === 'fork' ? seen.proof : null;
    assert.deepEqual(proof?.culprits, [1, 3]);
    assert.equal(proof?.equivocations.length, 1);
    assert.deepEqual(
      proof?.otherEvidence.map((evidence) => evidence.accused),
      [3],
    );
    assert.deepEqual(proof?.first, NO_VOTES);
    assert.deepEqual(verifyForensicProof(proof!, small.context), { valid: true, culprits: [1, 3] });
    // Received elsewhere, it is checked and recomputed alike.
    const other = new ForkMonitor(small.model, small.validVoters, small.validEquivocation, small.validOther);
    assert.deepEqual(other.observeProof(proof!)?.culprits, [1, 3]);
    // A monitor whose evidence check refuses other proofs finds nothing (no proof without it).
    const refusing = new ForkMonitor(small.model, small.validVoters, small.validEquivocation, () => false);
    refusing.observeEvidence(small.conflictingCheckpoint(3, 8));
    assert.equal(refusing.observeEvidence(small.equivocation(1, 2, 5)).kind, 'consistent');
    assert.equal(refusing.observeProof(proof!), null);
  });

  it('refuses other proofs that do not hold, name a replica twice or hide an equivocation', () => {
    const proof: ForensicProof = {
      first: NO_VOTES,
      second: NO_VOTES,
      equivocations: [small.equivocation(1, 2, 5)],
      culprits: [replicaId(1), replicaId(3)],
      otherEvidence: [small.conflictingCheckpoint(3, 8)],
    };
    assert.deepEqual(verifyForensicProof(proof, small.context), { valid: true, culprits: [1, 3] });
    const lie = proof.otherEvidence[0]!;
    assert.ok(lie.kind === 'conflicting-checkpoint');
    const forgedVote = {
      ...lie,
      vote: { ...lie.vote, signature: lie.vote.signature.map((byte) => byte ^ 1) as Signature },
    };
    assert.match(
      (verifyForensicProof({ ...proof, otherEvidence: [forgedVote] }, small.context) as { reason: string })
        .reason,
      /conflicting-checkpoint of replica 3: the conflicting vote's signature does not verify/,
    );
    assert.match(
      (
        verifyForensicProof(
          { ...proof, otherEvidence: [small.conflictingCheckpoint(1, 8)] },
          small.context,
        ) as { reason: string }
      ).reason,
      /two proofs against replica 1/,
    );
    const hidden = { ...proof, otherEvidence: [small.equivocation(3, 2, 5) as unknown as OtherEvidence] };
    assert.match(
      (verifyForensicProof(hidden, small.context) as { reason: string }).reason,
      /an equivocation among the other evidence/,
    );
    // One other proof alone is one replica: not more than f.
    assert.equal(
      verifyForensicProof({ ...proof, equivocations: [], culprits: [replicaId(3)] }, small.context).valid,
      false,
    );
  });

  it('checks a received proof again and recomputes its culprits', () => {
    const monitor = new ForkMonitor(
      small.model,
      small.validVoters,
      small.validEquivocation,
      small.validOther,
    );
    const proof = forkProof();
    assert.deepEqual(monitor.observeProof({ ...proof, culprits: [replicaId(0)] })?.culprits, [1, 2]);
    const other = new ForkMonitor(small.model, small.validVoters, small.validEquivocation, small.validOther);
    assert.equal(other.observeProof({ ...proof, second: small.certificate(8, rootB, [2]) }), null);
    assert.equal(other.proof, null);
  });

  it('the forensic set assertion fires on certificates checked against fewer than Q votes', () => {
    assert.throws(
      () =>
        forensicProofOf(
          small.model,
          { certificate: small.certificate(8, rootA, [0, 1]), voters: [0, 1].map(replicaId) },
          { certificate: small.certificate(8, rootB, [2, 3]), voters: [2, 3].map(replicaId) },
        ),
      /smaller than f \+ 1/,
    );
  });

  it('checks the votes of a certificate the caller vouched for only when it is half of a fork', () => {
    let checks = 0;
    const counting = (candidate: CheckpointCertificate) => {
      checks++;
      return small.validVoters(candidate);
    };
    const monitor = new ForkMonitor(small.model, counting, small.validEquivocation, small.validOther);
    assert.equal(monitor.observe(small.certificate(8, rootA, [0, 1, 2]), true).kind, 'consistent');
    assert.equal(checks, 0);
    const seen = monitor.observe(small.certificate(8, rootB, [1, 2, 3]));
    assert.equal(seen.kind, 'fork');
    assert.equal(checks, 2);
    // A vouched-for certificate that turns out to hold too few valid votes proves nothing: the
    // valid one replaces it.
    const other = new ForkMonitor(small.model, small.validVoters, small.validEquivocation, small.validOther);
    const forgedVotes = small.certificate(16, rootA, [0, 1, 2]).votes.map((vote) => ({
      ...vote,
      signature: vote.signature.map(() => 1) as typeof vote.signature,
    }));
    other.observe({ sequence: sequenceNumber(16), stateRoot: rootA, votes: forgedVotes }, true);
    assert.equal(other.observe(small.certificate(16, rootB, [1, 2, 3])).kind, 'consistent');
    assert.equal(other.proof, null);
    assert.equal(other.rootAt(sequenceNumber(16))?.stateRoot, rootB);
  });
});
