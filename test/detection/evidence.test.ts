import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  clientId,
  type Digest,
  keyEpoch,
  type ReplicaId,
  replicaId,
  requestNumber,
  type SequenceNumber,
  sequenceNumber,
  type Signature,
  viewNumber,
} from '../../src/messages/ids.js';
import { merkleProof, merkleRoot } from '../../src/core/merkle.js';
import { KeyRegistry } from '../../src/crypto/key-registry.js';
import { deriveSeed } from '../../src/crypto/keys.js';
import { ReplicaCrypto, sessionKeysFromSeed } from '../../src/crypto/replica-crypto.js';
import {
  describeEvidence,
  type EvidenceContext,
  evidenceAccused,
  type EvidenceVerdict,
  verifyEvidence,
} from '../../src/detection/evidence.js';
import {
  checkpointPayload,
  proposalPayload,
  replyBatchPayload,
  replyContent,
} from '../../src/messages/signing.js';
import type {
  Checkpoint,
  CheckpointCertificate,
  Evidence,
  Reply,
  ReplyProof,
  SignedProposal,
} from '../../src/messages/types.js';

// n = 4, f = 1, k = 0: a quorum is 3.
const model = { n: 4, f: 1, k: 0 } as const;
const master = new Uint8Array(32).fill(23);

function sessionKeys(replica: number, epoch: number) {
  return sessionKeysFromSeed(deriveSeed(master, `replica:${replica}|epoch:${epoch}`));
}

function cluster() {
  const registry = new KeyRegistry(model.n);
  const replicas = Array.from(
    { length: model.n },
    (_, index) =>
      new ReplicaCrypto({
        replica: replicaId(index),
        registry,
        epoch: keyEpoch(0),
        sessionKeys: sessionKeys(index, 0),
      }),
  );
  const context: EvidenceContext = {
    model,
    verifyReplicaSignature: (signer, epoch, payload, signature) =>
      registry.verifyReplicaSignature(signer, epoch, payload, signature),
    hash: (data) => replicas[0]!.hash(data),
    currentEpoch: (replica) => registry.currentEpoch(replica),
  };
  return { registry, replicas, context };
}

const { replicas, context } = cluster();
const hash = (data: Uint8Array): Digest => replicas[0]!.hash(data);
const text = (value: string) => new TextEncoder().encode(value);

function flipped<Bytes extends Uint8Array>(bytes: Bytes, index = 0): Bytes {
  const copy = bytes.slice() as Bytes;
  copy[index] = copy[index]! ^ 0x01;
  return copy;
}

function assertValid(verdict: EvidenceVerdict): void {
  assert.deepEqual(verdict, { valid: true });
}

function assertInvalid(verdict: EvidenceVerdict, reasonPattern: RegExp): void {
  assert.equal(verdict.valid, false);
  if (verdict.valid) return;
  assert.match(verdict.reason, reasonPattern);
}

// ───────────────────────────── equivocation ─────────────────────────────

const leader = replicaId(1);

function proposalBy(
  signer: number,
  fields: { view?: number; sequence?: number; batch?: string } = {},
): SignedProposal {
  const view = viewNumber(fields.view ?? 5);
  const sequence = sequenceNumber(fields.sequence ?? 7);
  const batchDigest = hash(text(fields.batch ?? 'batch A'));
  const signed = replicas[signer]!.sign(proposalPayload(view, sequence, batchDigest));
  return { view, sequence, batchDigest, keyEpoch: signed.keyEpoch, signature: signed.signature };
}

function equivocation(first: SignedProposal, second: SignedProposal, accused: ReplicaId = leader): Evidence {
  return { kind: 'equivocation', accused, first, second };
}

const validEquivocation = equivocation(proposalBy(1), proposalBy(1, { batch: 'batch B' }));

describe('verifyEvidence: equivocation', () => {
  it('accepts two proposals the accused signed for one (view, sequence) with different digests', () => {
    assertValid(verifyEvidence(validEquivocation, context));
    assert.equal(evidenceAccused(validEquivocation), leader);
  });

  it('rejects proposals signed by someone other than the accused', () => {
    const evidence = equivocation(proposalBy(1), proposalBy(2, { batch: 'batch B' }));
    assertInvalid(
      verifyEvidence(evidence, context),
      /^second proposal signature does not verify as replica 1's/,
    );
  });

  it('rejects a flipped signature byte', () => {
    const first = proposalBy(1);
    const evidence = equivocation(
      { ...first, signature: flipped(first.signature, 17) },
      proposalBy(1, { batch: 'batch B' }),
    );
    assertInvalid(verifyEvidence(evidence, context), /^first proposal signature does not verify/);
  });

  it('rejects two proposals of the same digest', () => {
    const evidence = equivocation(proposalBy(1), proposalBy(1));
    assertInvalid(verifyEvidence(evidence, context), /same batch digest/);
  });

  it('rejects proposals for different sequences or views', () => {
    const otherSequence = equivocation(proposalBy(1), proposalBy(1, { batch: 'batch B', sequence: 8 }));
    assertInvalid(verifyEvidence(otherSequence, context), /different sequences \(7 and 8\)/);
    const otherView = equivocation(proposalBy(1), proposalBy(1, { batch: 'batch B', view: 6 }));
    assertInvalid(verifyEvidence(otherView, context), /different views \(5 and 6\)/);
  });

  it('rejects an accused outside the configuration', () => {
    const evidence = { ...validEquivocation, accused: 4 as ReplicaId };
    assertInvalid(verifyEvidence(evidence, context), /accused 4 is not a replica \(n = 4\)/);
  });

  it("refuses evidence signed under the accused's retired epoch: its keys may be stolen, and the process that held them is gone", () => {
    const { replicas: rotating, context: rotatingContext } = cluster();
    const sign = (batch: string): SignedProposal => {
      const view = viewNumber(5);
      const sequence = sequenceNumber(7);
      const batchDigest = hash(text(batch));
      const signed = rotating[1]!.sign(proposalPayload(view, sequence, batchDigest));
      return { view, sequence, batchDigest, keyEpoch: signed.keyEpoch, signature: signed.signature };
    };
    // An intruder in replica 1 keeps its epoch-0 keys and signs two proposals after the rotation.
    const evidence = equivocation(sign('batch A'), sign('batch B'));
    assertValid(verifyEvidence(evidence, rotatingContext));
    rotating[1]!.rotate(keyEpoch(1), sessionKeys(1, 1));
    assertInvalid(
      verifyEvidence(evidence, rotatingContext),
      /signed under key epoch 0 of replica 1, whose current epoch is 1/,
    );
    // What the clean process signs under its current epoch still counts.
    assertValid(verifyEvidence(equivocation(sign('batch C'), sign('batch D')), rotatingContext));
  });

  it('accepts a certificate whose voters rotated just after voting, against an accused at its current epoch', () => {
    const { replicas: rotating, context: rotatingContext } = cluster();
    const sequence = sequenceNumber(64);
    const good = hash(text('good state'));
    const votes = [0, 2, 3].map((index) => {
      const signed = rotating[index]!.sign(checkpointPayload(sequence, good));
      return { replicaId: replicaId(index), keyEpoch: signed.keyEpoch, signature: signed.signature };
    });
    // Voter 2 rotates: its vote is under the epoch just retired, which a certificate may still hold.
    rotating[2]!.rotate(keyEpoch(1), sessionKeys(2, 1));
    const lie = rotating[1]!.sign(checkpointPayload(sequence, hash(text('made-up state'))));
    const evidence: Evidence = {
      kind: 'conflicting-checkpoint',
      accused: replicaId(1),
      certificate: { sequence, stateRoot: good, votes },
      vote: {
        kind: 'checkpoint',
        replicaId: replicaId(1),
        sequence,
        stateRoot: hash(text('made-up state')),
        keyEpoch: lie.keyEpoch,
        signature: lie.signature,
      },
    };
    assertValid(verifyEvidence(evidence, rotatingContext));
  });

  it('never throws on malformed fields', () => {
    const first = proposalBy(1);
    const shortDigest = equivocation(
      { ...first, batchDigest: new Uint8Array(5) as Digest },
      proposalBy(1, { batch: 'batch B' }),
    );
    assertInvalid(verifyEvidence(shortDigest, context), /first proposal batch digest is 5 bytes, not 32/);
    const badView = equivocation({ ...first, view: -1 as never }, proposalBy(1, { batch: 'batch B' }));
    assertInvalid(verifyEvidence(badView, context), /first proposal view -1 is not a counter/);
    const unknownKind = { kind: 'gossip', accused: leader } as unknown as Evidence;
    assertInvalid(verifyEvidence(unknownKind, context), /unknown evidence kind "gossip"/);
  });
});

// ───────────────────────────── conflicting checkpoint ─────────────────────────────

const checkpointSequence = sequenceNumber(100);
const certifiedRoot = hash(text('state after 100'));
const divergentRoot = hash(text('corrupt state after 100'));

function voteOf(
  replica: number,
  stateRoot: Digest,
  sequence: SequenceNumber = checkpointSequence,
): Checkpoint {
  const signed = replicas[replica]!.sign(checkpointPayload(sequence, stateRoot));
  return {
    kind: 'checkpoint',
    sequence,
    stateRoot,
    replicaId: replicaId(replica),
    keyEpoch: signed.keyEpoch,
    signature: signed.signature,
  };
}

function certificateOf(voters: readonly number[], sequence = checkpointSequence): CheckpointCertificate {
  return {
    sequence,
    stateRoot: certifiedRoot,
    votes: voters.map((voter) => {
      const { replicaId: id, keyEpoch: epoch, signature } = voteOf(voter, certifiedRoot, sequence);
      return { replicaId: id, keyEpoch: epoch, signature };
    }),
  };
}

const accusedOfDivergence = replicaId(2);

function conflictingCheckpoint(certificate: CheckpointCertificate, vote: Checkpoint): Evidence {
  return { kind: 'conflicting-checkpoint', accused: accusedOfDivergence, certificate, vote };
}

const validConflict = conflictingCheckpoint(certificateOf([0, 1, 3]), voteOf(2, divergentRoot));

describe('verifyEvidence: conflicting checkpoint', () => {
  it('accepts a signed vote that disagrees with a quorum-certified root', () => {
    assertValid(verifyEvidence(validConflict, context));
    assert.equal(evidenceAccused(validConflict), accusedOfDivergence);
  });

  it('also accepts a certificate the accused itself voted in', () => {
    const evidence = conflictingCheckpoint(certificateOf([0, 1, 2]), voteOf(2, divergentRoot));
    assertValid(verifyEvidence(evidence, context));
  });

  it('rejects a certificate with too few votes', () => {
    const evidence = conflictingCheckpoint(certificateOf([0, 1]), voteOf(2, divergentRoot));
    assertInvalid(verifyEvidence(evidence, context), /^only 2 certificate votes, a quorum is 3$/);
  });

  it('rejects duplicate voters', () => {
    const evidence = conflictingCheckpoint(certificateOf([0, 1, 1]), voteOf(2, divergentRoot));
    assertInvalid(verifyEvidence(evidence, context), /replica 1 votes twice in the certificate/);
  });

  it('rejects more votes than replicas before verifying any', () => {
    const evidence = conflictingCheckpoint(certificateOf([0, 1, 3, 0, 1]), voteOf(2, divergentRoot));
    assertInvalid(verifyEvidence(evidence, context), /5 votes, more than n = 4/);
  });

  it('rejects a voter outside the configuration', () => {
    const certificate = certificateOf([0, 1, 3]);
    const votes = [...certificate.votes, { ...certificate.votes[0]!, replicaId: 9 as ReplicaId }];
    const evidence = conflictingCheckpoint({ ...certificate, votes }, voteOf(2, divergentRoot));
    assertInvalid(verifyEvidence(evidence, context), /certificate voter 9 is not a replica/);
  });

  it('rejects a certificate vote with a flipped signature byte', () => {
    const certificate = certificateOf([0, 1, 3]);
    const votes = certificate.votes.map((vote, index) =>
      index === 1 ? { ...vote, signature: flipped(vote.signature, 40) } : vote,
    );
    const evidence = conflictingCheckpoint({ ...certificate, votes }, voteOf(2, divergentRoot));
    assertInvalid(
      verifyEvidence(evidence, context),
      /only 2 certificate votes verify, a quorum is 3; not verifying: replica 1 \(key epoch 0\)/,
    );
  });

  it('counts a certificate by its votes that verify: a quorum of them is enough beside one that does not', () => {
    const certificate = certificateOf([0, 1, 3]);
    // A fourth vote (replica 2's, the accused) whose signature does not verify.
    const broken = {
      ...certificate.votes[1]!,
      replicaId: replicaId(2),
      signature: flipped(certificate.votes[1]!.signature, 40),
    };
    const votes = [...certificate.votes, broken];
    const evidence = conflictingCheckpoint({ ...certificate, votes }, voteOf(2, divergentRoot));
    assertValid(verifyEvidence(evidence, context));
  });

  it('rejects a genesis certificate', () => {
    const genesis: CheckpointCertificate = {
      sequence: sequenceNumber(0),
      stateRoot: certifiedRoot,
      votes: [],
    };
    const evidence = conflictingCheckpoint(genesis, voteOf(2, divergentRoot, sequenceNumber(0)));
    assertInvalid(verifyEvidence(evidence, context), /genesis certificate \(sequence 0\) is not evidence/);
  });

  it("rejects a vote that is not the accused's", () => {
    const evidence = conflictingCheckpoint(certificateOf([0, 1, 3]), voteOf(3, divergentRoot));
    assertInvalid(verifyEvidence(evidence, context), /vote is replica 3's, not the accused replica 2's/);
  });

  it('rejects a vote whose replicaId was rewritten to the accused', () => {
    const forged = { ...voteOf(3, divergentRoot), replicaId: accusedOfDivergence };
    const evidence = conflictingCheckpoint(certificateOf([0, 1, 3]), forged);
    assertInvalid(
      verifyEvidence(evidence, context),
      /conflicting vote's signature does not verify as replica 2's/,
    );
  });

  it('rejects a vote for another sequence, or for the certified root', () => {
    const otherSequence = conflictingCheckpoint(
      certificateOf([0, 1, 3]),
      voteOf(2, divergentRoot, sequenceNumber(200)),
    );
    assertInvalid(
      verifyEvidence(otherSequence, context),
      /vote is for sequence 200, the certificate for sequence 100/,
    );
    const agreeing = conflictingCheckpoint(certificateOf([0, 1, 3]), voteOf(2, certifiedRoot));
    assertInvalid(verifyEvidence(agreeing, context), /agrees with the certified state root/);
  });

  it('rejects a flipped byte in the vote signature', () => {
    const vote = voteOf(2, divergentRoot);
    const evidence = conflictingCheckpoint(certificateOf([0, 1, 3]), {
      ...vote,
      signature: flipped(vote.signature, 3),
    });
    assertInvalid(verifyEvidence(evidence, context), /conflicting vote's signature does not verify/);
  });
});

// ───────────────────────────── lying reply ─────────────────────────────

const alice = clientId('alice');
const bob = clientId('bob');
const carol = clientId('carol');
const replySequence = sequenceNumber(42);
const liar = replicaId(3);

function unsignedReply(
  replica: number,
  client = alice,
  result = 'balance=10',
  status: 'ok' | 'error' = 'ok',
): Reply {
  return {
    kind: 'reply',
    view: viewNumber(0),
    replicaId: replicaId(replica),
    clientId: client,
    requestNumber: requestNumber(client === alice ? 9 : 1),
    readOnly: false,
    sequence: replySequence,
    status,
    result: text(result),
    proof: null,
  };
}

/** Signs a batch of replies the way core/replica.ts #sendBatchReplies does. */
function signBatch(replica: number, batch: readonly Reply[]): Reply[] {
  const leaves = batch.map((reply) => hash(replyContent(reply)));
  const root = merkleRoot(hash, leaves);
  const signed = replicas[replica]!.sign(replyBatchPayload(replySequence, root));
  return batch.map((reply, index) => {
    const proof: ReplyProof = {
      keyEpoch: signed.keyEpoch,
      signature: signed.signature,
      leafIndex: index,
      leafCount: leaves.length,
      path: merkleProof(hash, leaves, index),
    };
    return { ...reply, proof };
  });
}

/** Replica `replica`'s signed reply to alice, in a batch of three (alice's is the middle leaf). */
function signedReplyToAlice(replica: number, result = 'balance=10', status: 'ok' | 'error' = 'ok'): Reply {
  const batch = [
    unsignedReply(replica, bob),
    unsignedReply(replica, alice, result, status),
    unsignedReply(replica, carol),
  ];
  return signBatch(replica, batch)[1]!;
}

const lyingReply = signedReplyToAlice(3, 'balance=1000000');
const certifiedReplies = [0, 1, 2].map((replica) => signedReplyToAlice(replica));

function lyingReplyEvidence(reply: Reply, certified: readonly Reply[], accused: ReplicaId = liar): Evidence {
  return { kind: 'lying-reply', accused, reply, certified };
}

const validLie = lyingReplyEvidence(lyingReply, certifiedReplies);

function withProof(reply: Reply, change: Partial<ReplyProof>): Reply {
  return { ...reply, proof: { ...reply.proof!, ...change } };
}

describe('verifyEvidence: lying reply', () => {
  it('accepts a signed reply that differs from a quorum of signed replies', () => {
    assertValid(verifyEvidence(validLie, context));
    assert.equal(evidenceAccused(validLie), liar);
  });

  it('accepts a lie in the status alone', () => {
    const evidence = lyingReplyEvidence(signedReplyToAlice(3, 'balance=10', 'error'), certifiedReplies);
    assertValid(verifyEvidence(evidence, context));
  });

  it('rejects a certified reply with a different result', () => {
    const certified = [certifiedReplies[0]!, certifiedReplies[1]!, signedReplyToAlice(2, 'balance=11')];
    assertInvalid(
      verifyEvidence(lyingReplyEvidence(lyingReply, certified), context),
      /^certified replies disagree/,
    );
  });

  it('rejects an accused reply that matches the certified result', () => {
    const evidence = lyingReplyEvidence(signedReplyToAlice(3), certifiedReplies);
    assertInvalid(verifyEvidence(evidence, context), /accused reply has the certified status and result/);
  });

  it('rejects a proof path of the wrong length', () => {
    const shortened = withProof(certifiedReplies[1]!, { path: certifiedReplies[1]!.proof!.path.slice(1) });
    const evidence = lyingReplyEvidence(lyingReply, [certifiedReplies[0]!, shortened, certifiedReplies[2]!]);
    assertInvalid(
      verifyEvidence(evidence, context),
      /replica 1's certified reply's proof does not lead to a root/,
    );
    const lengthened = withProof(lyingReply, { path: [...lyingReply.proof!.path, hash(text('extra'))] });
    assertInvalid(
      verifyEvidence(lyingReplyEvidence(lengthened, certifiedReplies), context),
      /the accused reply's proof does not lead to a root/,
    );
  });

  it('rejects a proof claiming another leaf position', () => {
    const moved = withProof(certifiedReplies[0]!, { leafIndex: 0 });
    const evidence = lyingReplyEvidence(lyingReply, [moved, certifiedReplies[1]!, certifiedReplies[2]!]);
    assertInvalid(
      verifyEvidence(evidence, context),
      /replica 0's certified reply's batch signature does not verify/,
    );
  });

  it('rejects a flipped byte in a batch signature', () => {
    const forged = withProof(lyingReply, {
      signature: flipped(lyingReply.proof!.signature, 63) as Signature,
    });
    assertInvalid(
      verifyEvidence(lyingReplyEvidence(forged, certifiedReplies), context),
      /the accused reply's batch signature does not verify as replica 3's/,
    );
  });

  it('rejects a read-only reply, accused or certified', () => {
    const readOnlyLie = lyingReplyEvidence({ ...lyingReply, readOnly: true }, certifiedReplies);
    assertInvalid(verifyEvidence(readOnlyLie, context), /the accused reply is read-only/);
    const readOnlyCertified = [{ ...certifiedReplies[0]!, readOnly: true }, ...certifiedReplies.slice(1)];
    assertInvalid(
      verifyEvidence(lyingReplyEvidence(lyingReply, readOnlyCertified), context),
      /replica 0's certified reply is read-only/,
    );
  });

  it('rejects a reply without proof', () => {
    const evidence = lyingReplyEvidence(lyingReply, [
      { ...certifiedReplies[0]!, proof: null },
      ...certifiedReplies.slice(1),
    ]);
    assertInvalid(verifyEvidence(evidence, context), /replica 0's certified reply has no reply proof/);
  });

  it('rejects more certified replies than replicas before verifying any', () => {
    const tooMany = [...certifiedReplies, ...certifiedReplies];
    let verifications = 0;
    const countingContext: EvidenceContext = {
      ...context,
      verifyReplicaSignature: (...args) => {
        verifications++;
        return context.verifyReplicaSignature(...args);
      },
    };
    assertInvalid(
      verifyEvidence(lyingReplyEvidence(lyingReply, tooMany), countingContext),
      /^6 certified replies, more than n = 4$/,
    );
    assert.equal(verifications, 0);
  });

  it('rejects too few certified replies, and duplicates', () => {
    const tooFew = lyingReplyEvidence(lyingReply, certifiedReplies.slice(0, 2));
    assertInvalid(verifyEvidence(tooFew, context), /^only 2 certified replies, a quorum is 3$/);
    const duplicated = lyingReplyEvidence(lyingReply, [
      certifiedReplies[0]!,
      certifiedReplies[1]!,
      certifiedReplies[1]!,
    ]);
    assertInvalid(verifyEvidence(duplicated, context), /replica 1 appears twice among the certified replies/);
  });

  it('rejects the accused among the certifiers', () => {
    const evidence = lyingReplyEvidence(lyingReply, [...certifiedReplies.slice(0, 2), signedReplyToAlice(3)]);
    assertInvalid(verifyEvidence(evidence, context), /accused replica 3 cannot be one of the certifiers/);
  });

  it("rejects a reply that is not the accused's", () => {
    const evidence = lyingReplyEvidence(lyingReply, certifiedReplies, replicaId(2));
    assertInvalid(
      verifyEvidence(evidence, context),
      /accused reply is replica 3's, not the accused replica 2's/,
    );
  });

  it('rejects certified replies to another request or sequence', () => {
    const otherRequest = { ...certifiedReplies[2]!, requestNumber: requestNumber(10) };
    assertInvalid(
      verifyEvidence(
        lyingReplyEvidence(lyingReply, [...certifiedReplies.slice(0, 2), otherRequest]),
        context,
      ),
      /answers request alice#10 at sequence 42, the accused reply request alice#9 at sequence 42/,
    );
    const otherSequence = { ...certifiedReplies[2]!, sequence: sequenceNumber(43) };
    assertInvalid(
      verifyEvidence(
        lyingReplyEvidence(lyingReply, [...certifiedReplies.slice(0, 2), otherSequence]),
        context,
      ),
      /at sequence 43/,
    );
  });

  it('rejects any single flipped byte of any result (property)', () => {
    const replies = [lyingReply, ...certifiedReplies];
    fc.assert(
      fc.property(
        fc.nat({ max: replies.length - 1 }),
        fc.nat(),
        fc.integer({ min: 1, max: 255 }),
        (which, at, mask) => {
          const target = replies[which]!;
          const result = target.result.slice();
          const index = at % result.length;
          result[index] = result[index]! ^ mask;
          const changed = { ...target, result };
          const evidence =
            which === 0
              ? lyingReplyEvidence(changed, certifiedReplies)
              : lyingReplyEvidence(
                  lyingReply,
                  certifiedReplies.map((reply, position) => (position === which - 1 ? changed : reply)),
                );
          assert.equal(verifyEvidence(evidence, context).valid, false);
        },
      ),
      { numRuns: 60 },
    );
  });
});

describe('describeEvidence', () => {
  it('gives one line naming the kind and the accused', () => {
    for (const evidence of [validEquivocation, validConflict, validLie]) {
      const line = describeEvidence(evidence);
      assert.doesNotMatch(line, /\n/);
      assert.match(line, new RegExp(`^${evidence.kind.replace('-', ' ')} by replica ${evidence.accused}: `));
    }
    assert.match(describeEvidence(validLie), /request alice#9 at sequence 42 answered ok \(15 bytes/);
  });

  it('keeps a hostile client id on one line', () => {
    const hostile = { ...validLie, reply: { ...lyingReply, clientId: 'x\ny' as never } } as Evidence;
    assert.doesNotMatch(describeEvidence(hostile), /\n/);
  });
});
