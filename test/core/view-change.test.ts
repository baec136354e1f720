import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  bytesEqual,
  type Digest,
  digest,
  keyEpoch,
  replicaId,
  type SequenceNumber,
  sequenceNumber,
  signature,
  toHex,
  viewNumber,
} from '../../src/messages/ids.js';
import { type FaultModel, quorumSize } from '../../src/core/quorum.js';
import { chooseCheckpoint, decideNewView, type NewViewDecision } from '../../src/core/view-change.js';
import type {
  CheckpointCertificate,
  PrePreparedEntry,
  PreparedEntry,
  ViewChange,
} from '../../src/messages/types.js';

/** A digest that is recognisable in failure messages: 32 copies of `label`. */
function digestOf(label: number): Digest {
  return digest(new Uint8Array(32).fill(label));
}

function checkpointAt(sequence: number): CheckpointCertificate {
  return { sequence: sequenceNumber(sequence), stateRoot: digestOf(200 + (sequence % 50)), votes: [] };
}

const genesis = checkpointAt(0);

interface EntrySpec {
  readonly sequence: number;
  readonly view: number;
  readonly digestLabel: number;
}

function entry(spec: EntrySpec): PreparedEntry & PrePreparedEntry {
  return {
    sequence: sequenceNumber(spec.sequence),
    view: viewNumber(spec.view),
    batchDigest: digestOf(spec.digestLabel),
  };
}

function viewChange(
  replica: number,
  newView: number,
  prepared: readonly EntrySpec[],
  prePrepared: readonly EntrySpec[],
  checkpoint: CheckpointCertificate = genesis,
): ViewChange {
  return {
    kind: 'view-change',
    newView: viewNumber(newView),
    replicaId: replicaId(replica),
    checkpoint,
    prepared: prepared.map(entry),
    prePrepared: prePrepared.map(entry),
    keyEpoch: keyEpoch(0),
    // decideNewView does not verify signatures: a dummy one is enough.
    signature: signature(new Uint8Array(64)),
  };
}

/** The proposal at `sequence` of a decided decision: a digest, null for a no-op, undefined if absent. */
function proposalAt(decision: NewViewDecision, sequence: number): Digest | null | undefined {
  assert.equal(decision.kind, 'decided');
  if (decision.kind !== 'decided') return undefined;
  return decision.proposals.find((proposal) => proposal.sequence === sequence)?.batchDigest;
}

function describeDecision(decision: NewViewDecision): string {
  if (decision.kind === 'undecided') return `undecided at ${decision.sequence}`;
  return `decided ${decision.proposals
    .map(
      (proposal) =>
        `${proposal.sequence}:${proposal.batchDigest === null ? 'no-op' : toHex(proposal.batchDigest).slice(0, 4)}`,
    )
    .join(' ')}`;
}

/**
 * A world in which batch `committedLabel` was committed at `sequence` in view `committedView`.
 *
 * - `committed` correct replicas (at least quorum − f) report P (s, d, w) and Q (s, d, w' ≥ w), and
 *   possibly Q-entries at s for other digests in earlier views;
 * - the other correct replicas report nothing at s, or P and Q entries with views < w (any digest),
 *   and possibly a Q-entry of view w for any digest (the leader of w may have equivocated);
 * - up to f Byzantine replicas report anything with views < newView, at s and elsewhere.
 * Correct replicas report nothing at other sequences. Checkpoints are all genesis.
 */
interface CommittedWorld {
  readonly model: FaultModel;
  readonly newView: number;
  readonly sequence: number;
  readonly committedView: number;
  readonly committedLabel: number;
  readonly viewChanges: readonly ViewChange[];
}

const digestLabels = [1, 2, 3];
/** Mostly one of a few shared digests (so that claims collide), sometimes a fresh one. */
const anyDigestLabel = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...digestLabels) },
  { weight: 1, arbitrary: fc.integer({ min: 5, max: 105 }) },
);

/**
 * fc.gen() slows down badly when handed a fresh arbitrary on every call, so every parameterised
 * arbitrary is built once per parameter set.
 */
function memoized<Value>(build: (...parameters: number[]) => fc.Arbitrary<Value>) {
  const cache = new Map<string, fc.Arbitrary<Value>>();
  return (...parameters: number[]): fc.Arbitrary<Value> => {
    const key = parameters.join(',');
    let arbitrary = cache.get(key);
    if (arbitrary === undefined) {
      arbitrary = build(...parameters);
      cache.set(key, arbitrary);
    }
    return arbitrary;
  };
}

/**
 * Up to `maxLength` entries at `sequence` (only there when maxSequence = sequence, else mostly there
 * and sometimes elsewhere in [1, maxSequence]), with views in [minView, maxView].
 */
const entriesArbitrary = memoized((sequence = 1, maxSequence = 1, minView = 0, maxView = 0, maxLength = 1) =>
  fc.array(
    fc.record({
      sequence:
        maxSequence === sequence
          ? fc.constant(sequence)
          : fc.oneof(fc.constant(sequence), fc.integer({ min: 1, max: maxSequence })),
      view: fc.integer({ min: minView, max: maxView }),
      digestLabel: anyDigestLabel,
    }),
    { maxLength },
  ),
);

/** Distinct indices in 0..count−1, in random order, at least `minLength` of them. */
const indicesArbitrary = memoized((count = 1, minLength = 0) =>
  fc.shuffledSubarray(
    Array.from({ length: count }, (_, index) => index),
    { minLength },
  ),
);

function committedWorld(g: fc.GeneratorValue): CommittedWorld {
  const f = g(fc.integer, { min: 1, max: 3 });
  const n = 3 * f + 1;
  const model: FaultModel = { n, f, k: 0 };
  const quorum = quorumSize(model);
  const committedView = g(fc.integer, { min: 0, max: 4 });
  const newView = committedView + g(fc.integer, { min: 1, max: 3 });
  const sequence = g(fc.integer, { min: 1, max: 3 });
  const committedLabel = g(fc.constantFrom, ...digestLabels);
  const replicas = g(() => indicesArbitrary(n, n));
  const byzantineCount = g(fc.integer, { min: 0, max: f });
  const committedCount = g(fc.integer, { min: quorum - f, max: n - byzantineCount });
  const byzantine = new Set(replicas.slice(0, byzantineCount));
  const committed = new Set(replicas.slice(byzantineCount, byzantineCount + committedCount));
  /** Entries at s of views < w: P- or Q-entries of a correct replica that is not in the commit quorum. */
  const earlierEntries = (): EntrySpec[] =>
    committedView === 0 ? [] : g(() => entriesArbitrary(sequence, sequence, 0, committedView - 1, 2));
  /**
   * A Q-entry at s of view w: a Byzantine leader of view w may have sent another digest to the
   * replicas outside the commit quorum, but none of them can have prepared it.
   */
  const acceptedFromEquivocatingLeader = (): EntrySpec[] =>
    g(() => entriesArbitrary(sequence, sequence, committedView, committedView, 1));

  const viewChanges: ViewChange[] = [];
  for (let replica = 0; replica < n; replica++) {
    if (byzantine.has(replica)) {
      const anyEntries = (): EntrySpec[] =>
        g(() => entriesArbitrary(sequence, sequence + 2, 0, newView - 1, 4));
      // A Byzantine replica often backs its own P-entries with Q-entries, to pass the f + 1 rule.
      const prepared = anyEntries();
      const backed = prepared.filter(() => g(fc.boolean));
      viewChanges.push(viewChange(replica, newView, prepared, [...backed, ...anyEntries()]));
    } else if (committed.has(replica)) {
      const vouchedView = g(fc.integer, { min: committedView, max: newView - 1 });
      viewChanges.push(
        viewChange(
          replica,
          newView,
          [{ sequence, view: committedView, digestLabel: committedLabel }],
          [{ sequence, view: vouchedView, digestLabel: committedLabel }, ...earlierEntries()],
        ),
      );
    } else {
      // At most one P-entry per sequence, as a correct replica reports only its latest.
      const prepared = earlierEntries().slice(0, 1);
      viewChanges.push(
        viewChange(replica, newView, prepared, [
          ...prepared,
          ...earlierEntries(),
          ...acceptedFromEquivocatingLeader(),
        ]),
      );
    }
  }
  return { model, newView, sequence, committedView, committedLabel, viewChanges };
}

/** Some of the world's view changes, in random order, at least `minLength` of them. */
function pickViewChanges(g: fc.GeneratorValue, world: CommittedWorld, minLength: number): ViewChange[] {
  return g(() => indicesArbitrary(world.viewChanges.length, minLength)).map(
    (index) => world.viewChanges[index]!,
  );
}

/** The safety claim: undecided, or d at s. */
function assertSafe(world: CommittedWorld, decision: NewViewDecision): void {
  if (decision.kind === 'undecided') return;
  const chosen = proposalAt(decision, world.sequence);
  // The failure message is built only on failure: this runs thousands of times.
  if (chosen instanceof Uint8Array && bytesEqual(chosen, digestOf(world.committedLabel))) return;
  assert.fail(
    `committed ${world.committedLabel} at ${world.sequence} in view ${world.committedView}, got ${describeDecision(decision)}`,
  );
}

describe('decideNewView safety', () => {
  it('never replaces a committed batch: any quorum of view changes is undecided or re-proposes it', () => {
    fc.assert(
      fc.property(fc.gen(), (g) => {
        const world = committedWorld(g);
        const quorum = quorumSize(world.model);
        const subset = pickViewChanges(g, world, quorum);
        assert.equal(new Set(subset.map((message) => message.replicaId)).size, subset.length);
        assertSafe(world, decideNewView(subset, world.model));
      }),
      { numRuns: 3000 },
    );
  });

  it('with all n view changes of such a world it decides, and re-proposes the committed batch', () => {
    fc.assert(
      fc.property(fc.gen(), (g) => {
        const world = committedWorld(g);
        const order = pickViewChanges(g, world, world.viewChanges.length);
        const decision = decideNewView(order, world.model);
        assert.equal(decision.kind, 'decided', describeDecision(decision));
        assertSafe(world, decision);
      }),
      { numRuns: 1000 },
    );
  });

  it('the deliberately broken rule (brokenIgnorePrepared) replaces a committed batch with a no-op', () => {
    const model: FaultModel = { n: 4, f: 1, k: 0 };
    const committed = { sequence: 1, view: 0, digestLabel: 7 };
    const everyone = [0, 1, 2, 3].map((replica) => viewChange(replica, 1, [committed], [committed]));
    const world: CommittedWorld = {
      model,
      newView: 1,
      sequence: 1,
      committedView: 0,
      committedLabel: 7,
      viewChanges: everyone,
    };
    assertSafe(world, decideNewView(everyone, model));
    const broken = decideNewView(everyone, model, { brokenIgnorePrepared: true });
    assert.equal(broken.kind, 'decided');
    assert.equal(proposalAt(broken, 1), null);
    assert.throws(() => assertSafe(world, broken), assert.AssertionError);
  });
});

describe('decideNewView choices', () => {
  it('picks a no-op at a sequence where nobody prepared anything', () => {
    fc.assert(
      fc.property(fc.gen(), (g) => {
        const f = g(fc.integer, { min: 1, max: 3 });
        const model: FaultModel = { n: 3 * f + 1, f, k: 0 };
        const gap = g(fc.integer, { min: 1, max: 4 });
        const later = { sequence: gap + 1, view: 0, digestLabel: 9 };
        const viewChanges = Array.from({ length: model.n }, (_, replica) => {
          // Pre-prepared (but never prepared) entries at the gap do not matter.
          const accepted = g(fc.boolean)
            ? [{ sequence: gap, view: 0, digestLabel: g(fc.nat, { max: 5 }) }]
            : [];
          return viewChange(replica, 1, [later], [later, ...accepted]);
        });
        const quorum = quorumSize(model);
        const subset = g(() => indicesArbitrary(model.n, quorum)).map((index) => viewChanges[index]!);
        const decision = decideNewView(subset, model);
        for (let sequence = 1; sequence <= gap; sequence++)
          assert.equal(proposalAt(decision, sequence), null);
        assert.deepEqual(proposalAt(decision, gap + 1), digestOf(9));
      }),
      { numRuns: 300 },
    );
  });

  it('re-proposes a batch prepared by a quorum in the highest view over an older prepared one', () => {
    const model: FaultModel = { n: 4, f: 1, k: 0 };
    const old = { sequence: 1, view: 0, digestLabel: 1 };
    const newer = { sequence: 1, view: 2, digestLabel: 2 };
    const viewChanges = [
      viewChange(0, 3, [old], [old]),
      viewChange(1, 3, [newer], [old, newer]),
      viewChange(2, 3, [newer], [newer]),
    ];
    assert.deepEqual(proposalAt(decideNewView(viewChanges, model), 1), digestOf(2));
  });

  it('is undecided when a prepared batch is vouched for by fewer than f + 1 Q-entries and no quorum lacks it', () => {
    const model: FaultModel = { n: 4, f: 1, k: 0 };
    const claim = { sequence: 1, view: 0, digestLabel: 3 };
    // Two of three report a P-entry, only one a matching Q-entry: neither rule applies.
    const viewChanges = [
      viewChange(0, 1, [claim], [claim]),
      viewChange(1, 1, [claim], []),
      viewChange(2, 1, [], []),
    ];
    const decision = decideNewView(viewChanges, model);
    assert.deepEqual(decision, { kind: 'undecided', sequence: sequenceNumber(1) });
  });

  it('the deliberately broken rule fills every sequence up to the highest prepared one with no-ops', () => {
    const model: FaultModel = { n: 4, f: 1, k: 0 };
    const entries = [1, 2, 3].map((sequence) => ({ sequence, view: 0, digestLabel: sequence }));
    const viewChanges = [0, 1, 2].map((replica) => viewChange(replica, 1, entries, entries));
    const broken = decideNewView(viewChanges, model, { brokenIgnorePrepared: true });
    assert.equal(broken.kind, 'decided');
    if (broken.kind !== 'decided') return;
    assert.deepEqual(
      broken.proposals.map((proposal) => [proposal.sequence, proposal.batchDigest]),
      [
        [1, null],
        [2, null],
        [3, null],
      ],
    );
    const correct = decideNewView(viewChanges, model);
    assert.equal(correct.kind, 'decided');
    if (correct.kind !== 'decided') return;
    assert.deepEqual(
      correct.proposals.map((proposal) => proposal.batchDigest),
      [1, 2, 3].map(digestOf),
    );
  });
});

describe('decideNewView coverage', () => {
  /**
   * Four replicas with random checkpoints; prepared sequences `prepared` (every replica prepared
   * digestOf(s) there, with the matching Q-entry); extra Q-only entries at other sequences.
   */
  const coverageWorld = fc.record({
    checkpoints: fc.array(fc.constantFrom(0, 4, 8), { minLength: 4, maxLength: 4 }),
    prepared: fc.uniqueArray(fc.integer({ min: 1, max: 16 }), { maxLength: 8 }),
    prePreparedOnly: fc.uniqueArray(fc.integer({ min: 1, max: 20 }), { maxLength: 6 }),
  });

  it('chooses the highest checkpoint among the view changes', () => {
    fc.assert(
      fc.property(coverageWorld, ({ checkpoints, prepared }) => {
        const entries = prepared.map((sequence) => ({ sequence, view: 0, digestLabel: sequence }));
        const viewChanges = checkpoints.map((checkpoint, replica) =>
          viewChange(replica, 1, entries, entries, checkpointAt(checkpoint)),
        );
        const highest = Math.max(...checkpoints);
        assert.equal(chooseCheckpoint(viewChanges).sequence, highest);
        const decision = decideNewView(viewChanges, { n: 4, f: 1, k: 0 });
        assert.equal(decision.kind, 'decided');
        if (decision.kind !== 'decided') return;
        assert.deepEqual(decision.checkpoint, checkpointAt(highest));
      }),
      { numRuns: 300 },
    );
  });

  it('proposes exactly the sequences in (checkpoint, highest prepared sequence]', () => {
    fc.assert(
      fc.property(coverageWorld, ({ checkpoints, prepared, prePreparedOnly }) => {
        const preparedEntries = prepared.map((sequence) => ({ sequence, view: 0, digestLabel: sequence }));
        const extra = prePreparedOnly
          .filter((sequence) => !prepared.includes(sequence))
          .map((sequence) => ({ sequence, view: 0, digestLabel: 100 + sequence }));
        const viewChanges = checkpoints.map((checkpoint, replica) =>
          viewChange(replica, 1, preparedEntries, [...preparedEntries, ...extra], checkpointAt(checkpoint)),
        );
        const checkpoint = Math.max(...checkpoints);
        const top = Math.max(checkpoint, ...prepared.filter((sequence) => sequence > checkpoint));
        const decision = decideNewView(viewChanges, { n: 4, f: 1, k: 0 });
        assert.equal(decision.kind, 'decided');
        if (decision.kind !== 'decided') return;
        assert.equal(decision.maxSequence, top);
        const expected: [SequenceNumber, Digest | null][] = [];
        for (let sequence = checkpoint + 1; sequence <= top; sequence++) {
          expected.push([sequenceNumber(sequence), prepared.includes(sequence) ? digestOf(sequence) : null]);
        }
        assert.deepEqual(
          decision.proposals.map((proposal) => [proposal.sequence, proposal.batchDigest]),
          expected,
        );
      }),
      { numRuns: 500 },
    );
  });
});
