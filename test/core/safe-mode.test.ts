/**
 * Beyond f: safe mode and forensics (docs/intrusion-tolerance.md). A twin-key fork: replicas 1 and
 * 2 (f + 1 = 2 of n = 4) sign two different state roots for one checkpoint, one certified with
 * replica 0 and the other with replica 3, so each side alone holds a valid quorum certificate.
 * Every correct replica that sees both must stop, keep the proof and name exactly replicas 1 and 2.
 */
import * as assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Action } from '../../src/core/actions.js';
import { ClientSession } from '../../src/core/client-protocol.js';
import { isSafeModeRefusal, SAFE_MODE_REFUSAL_TEXT } from '../../src/core/forensics.js';
import { verifyForensicProof } from '../../src/detection/forensics.js';
import {
  type Digest,
  keyEpoch,
  replicaId,
  requestNumber,
  sequenceNumber,
  type Signature,
  toHex,
} from '../../src/messages/ids.js';
import type { ReplicaEvent } from '../../src/core/events.js';
import { checkpointPayload, replyBatchPayload, replyContent } from '../../src/messages/signing.js';
import type {
  CheckpointCertificate,
  Evidence,
  ForensicProof,
  ReplicaMessage,
} from '../../src/messages/types.js';
import { rootFromProof } from '../../src/core/merkle.js';
import { Harness, kv } from './harness.js';

function certificateBy(
  cluster: Harness,
  sequence: number,
  root: Digest,
  signers: readonly number[],
): CheckpointCertificate {
  return {
    sequence: sequenceNumber(sequence),
    stateRoot: root,
    votes: signers.map((signer) => {
      const signed = cluster.cryptos[signer]!.sign(checkpointPayload(sequenceNumber(sequence), root));
      return { replicaId: replicaId(signer), keyEpoch: signed.keyEpoch, signature: signed.signature };
    }),
  };
}

function messagesOf(actions: readonly Action[], kind: ReplicaMessage['kind']): ReplicaMessage[] {
  return actions.flatMap((action) =>
    (action.kind === 'send' || action.kind === 'broadcast') && action.message.kind === kind
      ? [action.message]
      : [],
  );
}

/**
 * A cluster that certified checkpoint 4 with replica 3 cut off (so its certificate is signed by
 * 0, 1 and 2) and a second certificate for checkpoint 4 with another root, signed by 1, 2 and 3:
 * the twins of replicas 1 and 2 on the other side of the fork.
 */
function forkedCluster() {
  const cluster = new Harness();
  const alice = cluster.client('alice');
  cluster.disconnected.add(3);
  const interval = cluster.config.checkpointInterval;
  for (let index = 1; index <= interval; index++)
    cluster.execute(alice.request(kv.put(`k${index}`, `v${index}`)), [0, 1, 2]);
  cluster.advance(100);
  const stable = cluster.replica(0).stableCheckpoint;
  assert.equal(stable.sequence, interval);
  const otherRoot = cluster.cryptos[0]!.hash(
    new TextEncoder().encode('the state on the other side of the fork'),
  );
  const other = certificateBy(cluster, interval, otherRoot, [1, 2, 3]);
  return { cluster, alice, stable, other };
}

/**
 * Evidence that replica `accused` signed another root than `stable`'s at its sequence; with
 * `signature`, that vote carries it instead of its own (a forgery that does not hold).
 */
function conflictingCheckpointAgainst(
  cluster: Harness,
  stable: CheckpointCertificate,
  accused: number,
  signature?: Signature,
): Evidence {
  const lieRoot = cluster.cryptos[0]!.hash(new TextEncoder().encode('a state no batch gives'));
  const vote = certificateBy(cluster, stable.sequence, lieRoot, [accused]).votes[0]!;
  return {
    kind: 'conflicting-checkpoint',
    accused: replicaId(accused),
    certificate: stable,
    vote: {
      kind: 'checkpoint',
      sequence: stable.sequence,
      stateRoot: lieRoot,
      ...vote,
      ...(signature === undefined ? {} : { signature }),
    },
  };
}

/**
 * A proof whose second vote set for the stable checkpoint's sequence carries signatures that verify
 * under no key (each vote reuses one of the stable certificate's signatures): a forgery, or what a
 * proof signed under keys the operator replaced looks like after the new keys are installed.
 */
function unverifiableProof(cluster: Harness, stable: CheckpointCertificate): ForensicProof {
  const otherRoot = cluster.cryptos[0]!.hash(new TextEncoder().encode('forged'));
  const forgedVotes = certificateBy(cluster, stable.sequence, otherRoot, [1, 2, 3]);
  return {
    first: stable,
    second: {
      ...forgedVotes,
      votes: forgedVotes.votes.map((vote) => ({ ...vote, signature: stable.votes[0]!.signature })),
    },
    equivocations: [],
    culprits: [replicaId(1), replicaId(2)],
    otherEvidence: [],
  };
}

describe('safe mode', () => {
  test('a certificate history that contradicts a certified root puts a correct replica in safe mode, with the proof and the f + 1 culprits', () => {
    const { cluster, alice, stable, other } = forkedCluster();
    // Work beyond the checkpoint, never certified: rolled back on entering safe mode.
    cluster.execute(alice.request(kv.put('after', 'checkpoint')), [0, 1, 2]);
    assert.equal(cluster.read(0, 'after'), 'checkpoint');
    const executedBefore = cluster.replica(0).lastExecuted;
    assert.ok(executedBefore > stable.sequence);

    const actions = cluster.deliver(3, 0, { kind: 'certificate-history', certificates: [other] });
    const replica = cluster.replica(0);
    const safeMode = replica.safeMode;
    assert.ok(safeMode !== null, 'replica 0 is in safe mode');
    assert.deepEqual(safeMode.proof.culprits, [1, 2]);
    assert.equal(safeMode.checkpoint.sequence, stable.sequence);
    // Anyone with the public keys can check the proof and recompute the culprits.
    const verdict = verifyForensicProof(safeMode.proof, {
      model: { n: 4, f: 1, k: 0 },
      verifyReplicaSignature: (signer, epoch, payload, signature) =>
        cluster.registry.verifyReplicaSignature(signer, epoch, payload, signature),
      hash: (data) => cluster.cryptos[0]!.hash(data),
      currentEpoch: (replica) => cluster.registry.currentEpoch(replica),
    });
    assert.deepEqual(verdict, { valid: true, culprits: [1, 2] });
    // The alarm: an action carrying the proof, a log line naming the culprits, and the proof to peers.
    const alarm = actions.find((action) => action.kind === 'safe-mode');
    assert.ok(alarm !== undefined && alarm.kind === 'safe-mode');
    assert.deepEqual(alarm.proof.culprits, [1, 2]);
    const line = actions.find((action) => action.kind === 'log' && action.event === 'safe-mode-entered');
    assert.ok(line !== undefined && line.kind === 'log');
    assert.equal(line.level, 'error');
    assert.equal(line.details.culprits, '1,2');
    assert.equal(messagesOf(actions, 'fork-proof').length, 1);
    // Rolled back to the state it can prove.
    assert.equal(replica.lastExecuted, stable.sequence);
    assert.equal(cluster.read(0, 'after'), null);
    assert.equal(cluster.read(0, 'k1'), 'v1');
  });

  test('the fork proof reaches every replica; each checks it and enters safe mode; nothing executes or signs a checkpoint any more', () => {
    const { cluster, alice, other } = forkedCluster();
    cluster.disconnected.delete(3);
    cluster.deliver(3, 0, { kind: 'certificate-history', certificates: [other] });
    cluster.run();
    for (const id of cluster.ids) {
      const safeMode = cluster.replica(id).safeMode;
      assert.ok(safeMode !== null, `replica ${id} is in safe mode`);
      assert.deepEqual(safeMode.proof.culprits, [1, 2]);
    }
    const sentBefore = cluster.sent.length;
    const executed = cluster.ids.map((id) => cluster.replica(id).lastExecuted);
    const write = alice.request(kv.put('x', 'after the fork'));
    cluster.submit(write);
    cluster.run();
    cluster.advance(3000);
    assert.deepEqual(
      cluster.ids.map((id) => cluster.replica(id).lastExecuted),
      executed,
      'no replica executes anything in safe mode',
    );
    const afterwards = cluster.sent.slice(sentBefore).map((envelope) => envelope.message.kind);
    for (const kind of ['pre-prepare', 'prepare', 'commit', 'checkpoint', 'view-change'] as const)
      assert.ok(!afterwards.includes(kind), `no ${kind} is sent in safe mode`);
    // Every replica refuses the write with the safe-mode reason.
    const refusals = cluster.repliesTo(write);
    assert.ok(refusals.length >= 2);
    for (const reply of refusals) {
      assert.ok(isSafeModeRefusal(reply));
      assert.equal(new TextDecoder().decode(reply.result), SAFE_MODE_REFUSAL_TEXT);
    }
  });

  test('a client fails a write with safe-mode after f + 1 refusals; reads are answered, signed, from the certified state', () => {
    const { cluster, alice, other } = forkedCluster();
    cluster.disconnected.delete(3);
    cluster.deliver(3, 0, { kind: 'certificate-history', certificates: [other] });
    cluster.run();

    const session = new ClientSession(
      {
        n: 4,
        f: 1,
        k: 0,
        retransmitTimeoutMs: 500,
        maxRetransmitTimeoutMs: 4000,
        readOnlyTimeoutMs: 500,
        maxOutstanding: 4,
        replyWindow: 16,
      },
      alice.id,
      (unsigned) =>
        alice.request(unsigned.operation, {
          readOnly: unsigned.readOnly,
          requestNumber: unsigned.requestNumber,
        }),
      1000,
    );
    const { actions } = session.invoke(kv.put('y', '1'), { readOnly: false }, 0);
    const request = actions[0]!.kind === 'send-all' ? actions[0]!.request : null;
    assert.ok(request !== null);
    cluster.submit(request);
    cluster.run();
    const replies = cluster.repliesTo(request);
    const first = session.onReply(replies[0]!, 1);
    assert.deepEqual(first, [], 'one refusal may come from a faulty replica');
    const second = session.onReply(replies[1]!, 2);
    assert.equal(second.length, 1);
    const completion = second[0]!;
    assert.ok(
      completion.kind === 'complete' && completion.safeMode === true && completion.status === 'error',
    );

    const read = alice.request(kv.get('k2'), { readOnly: true });
    cluster.submit(read);
    cluster.run();
    const answers = cluster.repliesTo(read);
    assert.equal(answers.length, 4);
    for (const answer of answers) {
      // Replicas 0 to 2 answer from checkpoint 4; replica 3, cut off before it, from its genesis state.
      const certified = cluster.replica(answer.replicaId).safeMode!.checkpoint.sequence;
      assert.equal(answer.sequence, certified);
      assert.equal(kv.value(answer.result), answer.replicaId === 3 ? null : 'v2');
      assert.equal(certified, answer.replicaId === 3 ? 0 : 4);
      const proof = answer.proof;
      assert.ok(proof !== null, 'a read in safe mode is signed');
      const root = rootFromProof(
        (data) => cluster.cryptos[0]!.hash(data),
        cluster.cryptos[0]!.hash(replyContent(answer)),
        proof.leafIndex,
        proof.leafCount,
        proof.path,
      );
      assert.ok(root !== null);
      assert.ok(
        cluster.registry.verifyReplicaSignature(
          answer.replicaId,
          proof.keyEpoch,
          replyBatchPayload(answer.sequence, root),
          proof.signature,
        ),
      );
    }

    // The client session does not hand such a read back as the current state: it completes it
    // flagged as a safe-mode snapshot of checkpoint 4 (the client library fails it with a
    // SafeModeSnapshotError that carries the answer and the signed replies).
    const snapshotRead = session.invoke(kv.get('k2'), { readOnly: true }, 10);
    const readRequest =
      snapshotRead.actions[0]!.kind === 'send-all' ? snapshotRead.actions[0]!.request : null;
    assert.ok(readRequest !== null);
    cluster.submit(readRequest);
    cluster.run();
    const completions = cluster
      .repliesTo(readRequest)
      .flatMap((reply) => session.onReply(reply, 11))
      .filter((action) => action.kind === 'complete');
    assert.equal(completions.length, 1);
    const snapshot = completions[0]!;
    assert.ok(snapshot.kind === 'complete' && snapshot.safeModeSnapshot === true);
    assert.equal(snapshot.sequence, 4);
    assert.equal(kv.value(snapshot.result), 'v2');
    assert.equal(snapshot.snapshotReplies?.length, 3);
  });

  test('proofs against more than f replicas, of any kind, put a replica in safe mode; its peers check that proof and follow', () => {
    const { cluster, alice, stable } = forkedCluster();
    cluster.disconnected.delete(3);
    const conflictingCheckpoint = (accused: number, signature?: Signature): Evidence =>
      conflictingCheckpointAgainst(cluster, stable, accused, signature);
    const cutOff = (accused: number, proof: Evidence): ReplicaEvent => ({
      kind: 'cut-off',
      replica: replicaId(accused),
      keyEpoch: keyEpoch(0),
      reason: `guardian: proof: ${proof.kind}`,
      proof,
    });
    cluster.step(0, cutOff(3, conflictingCheckpoint(3)));
    assert.equal(cluster.replica(0).safeMode, null, 'one proven replica is within f');
    // A proof that does not hold counts for nothing, whatever the driver says.
    const forged = conflictingCheckpoint(2, stable.votes[0]!.signature);
    cluster.step(0, cutOff(2, forged));
    assert.equal(cluster.replica(0).safeMode, null, 'a forged proof does not count');
    const actions = cluster.step(0, cutOff(2, conflictingCheckpoint(2)));
    const safeMode = cluster.replica(0).safeMode;
    assert.ok(safeMode !== null, 'two proven replicas with f = 1: safe mode');
    assert.deepEqual(safeMode.proof.culprits, [2, 3]);
    assert.deepEqual(
      safeMode.proof.otherEvidence.map((evidence) => evidence.accused),
      [2, 3],
    );
    assert.deepEqual(
      verifyForensicProof(safeMode.proof, {
        model: { n: 4, f: 1, k: 0 },
        verifyReplicaSignature: (signer, epoch, payload, signature) =>
          cluster.registry.verifyReplicaSignature(signer, epoch, payload, signature),
        hash: (data) => cluster.cryptos[0]!.hash(data),
        currentEpoch: (replica) => cluster.registry.currentEpoch(replica),
      }),
      { valid: true, culprits: [2, 3] },
    );
    const line = actions.find((action) => action.kind === 'log' && action.event === 'safe-mode-entered');
    assert.ok(line !== undefined && line.kind === 'log');
    assert.equal(line.details.source, 'more than f replicas proven faulty');
    assert.ok(actions.some((action) => action.kind === 'persist' && action.record.kind === 'safe-mode'));
    // Replica 1 was told of no proof: the FORK-PROOF carries them, and it checks each.
    assert.equal(cluster.replica(1).safeMode, null);
    cluster.run();
    assert.deepEqual(cluster.replica(1).safeMode?.proof.culprits, [2, 3]);
    // Writes are refused from now on.
    const write = alice.request(kv.put('x', 'beyond f'));
    cluster.submit(write, [0, 1]);
    cluster.run();
    const refusals = cluster.repliesTo(write).filter((reply) => isSafeModeRefusal(reply));
    assert.equal(refusals.length, 2);
  });

  test('replicas relay the proofs they hold: proofs against different replicas found at different replicas meet, and more than f make safe mode', () => {
    const { cluster, stable } = forkedCluster();
    cluster.disconnected.delete(3);
    const conflictingCheckpoint = (accused: number, forged = false): Evidence =>
      conflictingCheckpointAgainst(cluster, stable, accused, forged ? stable.votes[0]!.signature : undefined);
    const relay = (to: number, from: number, evidence: Evidence): void => {
      cluster.deliver(from, to, { kind: 'evidence-report', evidence });
    };

    // Replica 1 holds a proof against 3 (its guardian's cut-off): it relays it with its
    // certificate history, every four status intervals, to replicas that had no part in it.
    cluster.step(1, {
      kind: 'cut-off',
      replica: replicaId(3),
      keyEpoch: keyEpoch(0),
      reason: 'guardian: proof: conflicting-checkpoint',
      proof: conflictingCheckpoint(3),
    });
    const sentBefore = cluster.sent.length;
    cluster.tick(4 * cluster.config.statusIntervalMs);
    const relayed = cluster.sent
      .slice(sentBefore)
      .filter((envelope) => envelope.from === 1 && envelope.message.kind === 'evidence-report');
    assert.ok(relayed.length >= 1, 'replica 1 relays the proof it holds');
    assert.equal(cluster.replica(0).safeMode, null);
    relay(0, 1, conflictingCheckpoint(3));
    assert.ok(cluster.logs(0, 'evidence-relayed').some((log) => log.details.accused === 3));
    assert.equal(cluster.replica(0).safeMode, null, 'one proven replica is within f');

    // A relayed proof that does not hold counts for nothing, and a peer gets n checked per status
    // interval at most (each costs signature checks).
    for (let copy = 0; copy < 6; copy++) relay(0, 2, conflictingCheckpoint(2, true));
    assert.equal(
      cluster.logs(0, 'rejected-input').filter((log) => log.details.what === 'evidence-report').length,
      cluster.config.n,
    );
    assert.equal(cluster.replica(0).safeMode, null, 'a forged proof does not count');

    relay(0, 3, conflictingCheckpoint(2));
    const safeMode = cluster.replica(0).safeMode;
    assert.ok(safeMode !== null, 'two proven replicas with f = 1: safe mode');
    assert.deepEqual(safeMode.proof.culprits, [2, 3]);
  });

  test('a forged fork proof, or one naming fewer than f + 1 double signers, is refused, and the replica goes on', () => {
    const { cluster, stable } = forkedCluster();
    const otherRoot = cluster.cryptos[0]!.hash(new TextEncoder().encode('forged'));
    // One replica that signed both roots proves one fault, not more than f.
    const under: ForensicProof = {
      first: stable,
      second: certificateBy(cluster, stable.sequence, otherRoot, [1]),
      equivocations: [],
      culprits: [replicaId(1)],
      otherEvidence: [],
    };
    const actions = cluster.deliver(1, 0, { kind: 'fork-proof', proof: under });
    assert.equal(cluster.replica(0).safeMode, null);
    assert.ok(actions.some((action) => action.kind === 'log' && action.event === 'rejected-input'));
    const forged = unverifiableProof(cluster, stable);
    cluster.advance(1000);
    cluster.deliver(2, 0, { kind: 'fork-proof', proof: forged });
    assert.equal(cluster.replica(0).safeMode, null);
  });

  test('safe mode survives a restart: the proof is stored before anything is refused, and a replica restarted from its disk is in safe mode again', () => {
    const { cluster, alice, stable, other } = forkedCluster();
    const actions = cluster.deliver(3, 0, { kind: 'certificate-history', certificates: [other] });
    // The record goes out before the refusals and the FORK-PROOF (mustPrecedeSends).
    const kinds = actions.map((action) =>
      action.kind === 'persist' ? `persist ${action.record.kind}` : action.kind,
    );
    assert.ok(kinds.includes('persist safe-mode'), kinds.join(', '));
    assert.ok(kinds.indexOf('persist safe-mode') < kinds.indexOf('broadcast'));
    assert.equal(cluster.disks[0]!.records.filter((record) => record.kind === 'safe-mode').length, 1);

    cluster.crash(0);
    const restarted = cluster.restart(0, 'intact');
    const safeMode = restarted.safeMode;
    assert.ok(safeMode !== null, 'back in safe mode from its disk');
    assert.deepEqual(safeMode.proof.culprits, [1, 2]);
    assert.equal(safeMode.checkpoint.sequence, stable.sequence);
    assert.equal(cluster.logs(0, 'safe-mode-entered').at(-1)?.details.source, 'stored proof');
    // Not stored twice: the record read back is the one kept.
    assert.equal(cluster.disks[0]!.records.filter((record) => record.kind === 'safe-mode').length, 1);
    // It refuses writes at once, before any peer has told it of the fork again.
    cluster.disconnected.add(1).add(2).add(3);
    const write = alice.request(kv.put('after', 'restart'));
    cluster.step(0, { kind: 'client-request', request: write });
    const refusals = cluster.repliesTo(write).filter((reply) => reply.replicaId === 0);
    assert.equal(refusals.length, 1);
    assert.ok(isSafeModeRefusal(refusals[0]!));
  });

  test('a stored proof that does not verify with the keys known now leaves the restarted replica running normally', () => {
    const { cluster, alice, stable } = forkedCluster();
    cluster.disconnected.delete(3);
    cluster.disks[0]!.append({ kind: 'safe-mode', proof: unverifiableProof(cluster, stable) });
    cluster.crash(0);
    const restarted = cluster.restart(0, 'intact');
    assert.equal(restarted.safeMode, null);
    assert.equal(cluster.logs(0, 'stored-safe-mode-unverified').length, 1);
    cluster.step(0, { kind: 'keys-changed' });
    assert.equal(restarted.safeMode, null, 'tried again when keys change; still no');
    cluster.execute(alice.request(kv.put('after', 'restart')));
    assert.equal(cluster.read(0, 'after'), 'restart');
  });

  test("a replica rejuvenated on its guardian's safe-mode order starts in safe mode, even when the proof no longer verifies", () => {
    // The culprits' key epochs have moved on since the guardian verified the proof: the replica
    // could not enter safe mode from it (the stored-proof test above), but its guardian's order
    // is not judged again.
    const { cluster, alice, stable } = forkedCluster();
    cluster.disconnected.delete(3);
    const proof = unverifiableProof(cluster, stable);
    const rejuvenated = cluster.rejuvenate(0, proof);
    const safeMode = rejuvenated.safeMode;
    assert.ok(safeMode !== null, 'in safe mode from the start');
    assert.deepEqual(safeMode.proof.culprits, [1, 2]);
    assert.equal(cluster.logs(0, 'safe-mode-entered').at(-1)?.details.source, 'guardian');
    // Kept on its disk as any safe mode is (a restart from the disk finds it).
    assert.equal(cluster.disks[0]!.records.filter((record) => record.kind === 'safe-mode').length, 1);
    // Writes are refused at once; reads are answered from the state it holds.
    cluster.disconnected.add(1).add(2).add(3);
    const write = alice.request(kv.put('after', 'rejuvenation'));
    cluster.step(0, { kind: 'client-request', request: write });
    const refusals = cluster.repliesTo(write).filter((reply) => reply.replicaId === 0);
    assert.equal(refusals.length, 1);
    assert.ok(isSafeModeRefusal(refusals[0]!));
    // Nothing moves it out: not a view change asked by the guardian, nor new keys.
    cluster.step(0, { kind: 'change-view', reason: 'rejoin' });
    cluster.step(0, { kind: 'keys-changed' });
    cluster.advance(5_000);
    assert.ok(rejuvenated.safeMode !== null);
    // Without the order the same rejuvenation runs normally (the gap the order closes).
    for (const peer of [1, 2, 3]) cluster.disconnected.delete(peer);
    const plain = cluster.rejuvenate(0);
    assert.equal(plain.safeMode, null);
  });

  test("a running replica enters safe mode on its guardian's order, even when the proof no longer verifies", () => {
    const { cluster, alice, stable } = forkedCluster();
    cluster.disconnected.delete(3);
    const proof = unverifiableProof(cluster, stable);
    // From a peer it is refused (the keys it knows do not make it a proof)...
    cluster.deliver(0, 1, { kind: 'fork-proof', proof });
    assert.equal(cluster.replica(1).safeMode, null);
    // ...from its guardian it is taken on its word.
    cluster.step(1, { kind: 'safe-mode-order', proof });
    const safeMode = cluster.replica(1).safeMode;
    assert.ok(safeMode !== null);
    assert.equal(safeMode.checkpoint.sequence, stable.sequence);
    assert.equal(cluster.logs(1, 'safe-mode-entered').at(-1)?.details.source, 'guardian');
    assert.equal(cluster.disks[1]!.records.filter((record) => record.kind === 'safe-mode').length, 1);
    const write = alice.request(kv.put('after', 'order'));
    cluster.step(1, { kind: 'client-request', request: write });
    assert.ok(
      cluster
        .repliesTo(write)
        .filter((reply) => reply.replicaId === 1)
        .every((reply) => isSafeModeRefusal(reply)),
    );
  });

  test('replicas share their certified checkpoints every four status intervals', () => {
    const { cluster } = forkedCluster();
    cluster.disconnected.delete(3);
    const before = cluster.sent.length;
    cluster.advance(4 * cluster.config.statusIntervalMs + 100);
    const histories = cluster.sent
      .slice(before)
      .filter((envelope) => envelope.from === 0 && envelope.message.kind === 'certificate-history');
    assert.ok(histories.length >= 3, 'to each peer');
    const message = histories[0]!.message;
    assert.ok(message.kind === 'certificate-history');
    assert.equal(message.certificates[0]!.sequence, 4);
    for (const id of cluster.ids) assert.equal(cluster.replica(id).safeMode, null, 'no fork, no safe mode');
  });

  test('a replica never signs a second root for a checkpoint sequence, not even the certified one after repairing a corrupt state', () => {
    const cluster = new Harness();
    const alice = cluster.client('alice');
    const interval = cluster.config.checkpointInterval;
    cluster.execute(alice.request(kv.put('k1', 'v1')));
    // Replica 3's state goes wrong behind the protocol's back: its checkpoint root will differ.
    cluster.service(3).execute(kv.put('planted', 'x'), {
      clientId: alice.id,
      requestNumber: requestNumber(999),
      sequence: sequenceNumber(1),
    });
    for (let index = 2; index <= interval; index++) cluster.execute(alice.request(kv.put(`k${index}`, 'v')));
    cluster.advance(3000);
    const roots = new Set(
      cluster.sent
        .filter(
          (envelope) =>
            envelope.from === 3 &&
            envelope.message.kind === 'checkpoint' &&
            envelope.message.sequence === interval,
        )
        .map((envelope) => (envelope.message.kind === 'checkpoint' ? toHex(envelope.message.stateRoot) : '')),
    );
    assert.equal(roots.size, 1, 'one root signed for the sequence');
    assert.ok(cluster.logs(3, 'state-corruption-detected').length > 0, 'it found its state corrupt');
    assert.ok(
      cluster.logs(3, 'second-root-refused').length > 0,
      'and did not sign the certified root after repair',
    );
    assert.equal(
      cluster.replica(3).stableCheckpoint.sequence,
      interval,
      'it still adopted the certified state',
    );
    for (const id of cluster.ids) assert.equal(cluster.replica(id).safeMode, null);
  });
});
