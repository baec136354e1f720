/**
 * A NEW-VIEW that does not follow from its view changes (docs/intrusion-tolerance.md,
 * "Detectors"): its leader signed view changes for another view, two from one replica, fewer
 * than a quorum, or a set that decides nothing, which no correct leader does (it decides the set
 * before it signs). A replica refuses it and reports 'invalid-new-view' evidence, which anyone
 * with the public keys can check (detection/evidence.ts), while the NEW-VIEW of a correct leader
 * earns nothing. Real Replica cores and real crypto through the harness.
 */
import * as assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { newViewProblem } from '../../src/core/view-change.js';
import { verifyEvidence } from '../../src/detection/evidence.js';
import { decodeEvidence, encodeEvidence } from '../../src/messages/codec.js';
import {
  digest,
  keyEpoch,
  replicaId,
  sequenceNumber,
  signature,
  viewNumber,
} from '../../src/messages/ids.js';
import { newViewPayload } from '../../src/messages/signing.js';
import type { Evidence, NewView, ViewChange } from '../../src/messages/types.js';
import { evidenceContext, Harness, kv } from './harness.js';

/** View 1 installed at replicas 0-2; replica 3 never got the NEW-VIEW and waits for one. */
function viewOneWithoutReplica3(): { cluster: Harness; correct: NewView } {
  const cluster = new Harness();
  const alice = cluster.client('alice');
  for (let index = 1; index <= 2; index++) cluster.execute(alice.request(kv.put(`k${index}`, `${index}`)));
  cluster.filter = (envelope) =>
    envelope.message.kind === 'new-view' && envelope.to === 3 ? 'drop' : 'deliver';
  for (const id of cluster.ids) cluster.step(id, { kind: 'change-view', reason: 'test: a view change' });
  assert.ok(cluster.advanceUntil(() => [0, 1, 2].every((id) => cluster.replica(id).view === 1), 5000));
  const [correct] = cluster.broadcastsOf(1, 'new-view');
  assert.ok(correct !== undefined, 'replica 1, leader of view 1, sent its NEW-VIEW');
  return { cluster, correct };
}

/** `viewChanges` in a NEW-VIEW signed by `signer` with its current key. */
function signedBy(
  cluster: Harness,
  signer: number,
  template: NewView,
  viewChanges: readonly ViewChange[],
): NewView {
  const unsigned: NewView = { ...template, replicaId: replicaId(signer), viewChanges };
  const signed = cluster.cryptos[signer]!.sign(newViewPayload(unsigned));
  return { ...unsigned, keyEpoch: signed.keyEpoch, signature: signed.signature };
}

function check(cluster: Harness, evidence: Evidence): ReturnType<typeof verifyEvidence> {
  return verifyEvidence(
    evidence,
    evidenceContext(cluster.config, cluster.registry, (data) => cluster.cryptos[0]!.hash(data)),
  );
}

const invalidNewViews = (cluster: Harness, observer: number): Evidence[] =>
  cluster.evidence(observer).filter((evidence) => evidence.kind === 'invalid-new-view');

describe('a NEW-VIEW that does not follow from its view changes', () => {
  test('with fewer than a quorum of view changes: refused, and a proof against its leader that anyone can check', () => {
    const { cluster, correct } = viewOneWithoutReplica3();
    const short = signedBy(cluster, 1, correct, correct.viewChanges.slice(0, 2));
    cluster.deliver(1, 3, short);
    assert.equal(cluster.replica(3).viewChangeInProgress, true, 'not installed');
    const [proof, ...more] = invalidNewViews(cluster, 3);
    assert.ok(proof !== undefined && more.length === 0);
    assert.equal(proof.accused, 1);
    assert.deepEqual(check(cluster, proof), { valid: true });
    // It travels: encoded and decoded, it still proves the same.
    const decoded = decodeEvidence(encodeEvidence(proof));
    assert.ok(decoded.ok);
    assert.deepEqual(check(cluster, decoded.value), { valid: true });
    assert.ok(
      cluster.suspicionReasons(3, 1).includes('sent a new-view that does not follow from its view changes'),
    );
    // The same NEW-VIEW again: no second proof.
    cluster.deliver(1, 3, short);
    assert.equal(invalidNewViews(cluster, 3).length, 1);
    // The leader's correct NEW-VIEW is still installed afterwards.
    cluster.deliver(1, 3, correct);
    assert.equal(cluster.replica(3).view, 1);
    assert.equal(cluster.replica(3).viewChangeInProgress, false);
  });

  test('with two view changes from one replica: a proof', () => {
    const { cluster, correct } = viewOneWithoutReplica3();
    const [first, second] = correct.viewChanges;
    const doubled = signedBy(cluster, 1, correct, [first!, first!, second!]);
    cluster.deliver(1, 3, doubled);
    const [proof] = invalidNewViews(cluster, 3);
    assert.ok(proof !== undefined);
    assert.deepEqual(check(cluster, proof), { valid: true });
  });

  test("a correct leader's NEW-VIEW earns nothing, and is no proof in anybody's hands", () => {
    const { cluster, correct } = viewOneWithoutReplica3();
    cluster.deliver(1, 3, correct);
    assert.equal(cluster.replica(3).view, 1);
    for (const id of cluster.ids) assert.deepEqual(invalidNewViews(cluster, id), []);
    const framed = check(cluster, { kind: 'invalid-new-view', accused: replicaId(1), newView: correct });
    assert.equal(framed.valid, false);
    assert.match(framed.valid ? '' : framed.reason, /follows from its view changes/);
  });

  test('a proof needs the accused to have signed it as the leader of its view', () => {
    const { cluster, correct } = viewOneWithoutReplica3();
    const short = correct.viewChanges.slice(0, 2);
    // Signed by replica 2, which does not lead view 1.
    const notLeader = check(cluster, {
      kind: 'invalid-new-view',
      accused: replicaId(2),
      newView: signedBy(cluster, 2, correct, short),
    });
    assert.match(notLeader.valid ? '' : notLeader.reason, /does not lead view 1/);
    // Replica 1's NEW-VIEW, pinned on replica 2.
    const pinned = check(cluster, {
      kind: 'invalid-new-view',
      accused: replicaId(2),
      newView: signedBy(cluster, 1, correct, short),
    });
    assert.match(pinned.valid ? '' : pinned.reason, /not the accused replica 2's/);
    // A bad NEW-VIEW whose signature is not the leader's: anybody could have written it.
    const forged = {
      ...signedBy(cluster, 1, correct, short),
      signature: signature(new Uint8Array(64).fill(3)),
    };
    const unsigned = check(cluster, { kind: 'invalid-new-view', accused: replicaId(1), newView: forged });
    assert.match(unsigned.valid ? '' : unsigned.reason, /signature does not verify/);
  });
});

describe('newViewProblem', () => {
  const model = { n: 4, f: 1, k: 0 };
  const genesis = { sequence: sequenceNumber(0), stateRoot: digest(new Uint8Array(32)), votes: [] };
  const viewChange = (replica: number, prepared: number | null): ViewChange => ({
    kind: 'view-change',
    newView: viewNumber(1),
    replicaId: replicaId(replica),
    checkpoint: genesis,
    prepared:
      prepared === null
        ? []
        : [
            {
              sequence: sequenceNumber(1),
              view: viewNumber(0),
              batchDigest: digest(new Uint8Array(32).fill(prepared)),
            },
          ],
    prePrepared: [],
    keyEpoch: keyEpoch(0),
    signature: signature(new Uint8Array(64)),
  });
  const newView = (viewChanges: ViewChange[]): NewView => ({
    kind: 'new-view',
    view: viewNumber(1),
    replicaId: replicaId(1),
    viewChanges,
    keyEpoch: keyEpoch(0),
    signature: signature(new Uint8Array(64)),
  });

  test('a set that cannot decide a sequence: two prepared batches at one view, and one without', () => {
    const problem = newViewProblem(
      newView([viewChange(0, 7), viewChange(2, 8), viewChange(3, null)]),
      model,
      512,
    );
    assert.deepEqual(problem, { problem: 'its view changes cannot decide sequence 1' });
  });

  test('a set that decides, for another view, and one too wide to judge', () => {
    assert.equal(
      newViewProblem(newView([viewChange(0, null), viewChange(2, null), viewChange(3, null)]), model, 512),
      null,
    );
    const elsewhere = { ...viewChange(3, null), newView: viewNumber(2) };
    assert.match(
      newViewProblem(newView([viewChange(0, null), viewChange(2, null), elsewhere]), model, 512)?.problem ??
        '',
      /for view 2, not 1/,
    );
    // Undecidable, but reaching past the span: not judged (refusing a proof is the safe side).
    assert.equal(
      newViewProblem(newView([viewChange(0, 7), viewChange(2, 8), viewChange(3, null)]), model, 0),
      null,
    );
  });
});
