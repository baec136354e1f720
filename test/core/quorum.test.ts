import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  correctWitnessSize,
  type FaultModel,
  faultModelProblems,
  minimumReplicas,
  quorumSize,
} from '../../src/core/quorum.js';

/** Every valid model with f in 0..10, k in 0..5 and n from the minimum to five above it. */
const validModel: fc.Arbitrary<FaultModel> = fc
  .record({
    f: fc.integer({ min: 0, max: 10 }),
    k: fc.integer({ min: 0, max: 5 }),
    extra: fc.nat({ max: 5 }),
  })
  .map(({ f, k, extra }) => ({ n: minimumReplicas(f, k) + extra, f, k }));

describe('quorum arithmetic', () => {
  it('two quorums intersect in at least f + 1 replicas', () => {
    fc.assert(
      fc.property(validModel, (model) => {
        const quorum = quorumSize(model);
        assert.ok(quorum <= model.n, `quorum ${quorum} exceeds n = ${model.n}`);
        const smallestIntersection = 2 * quorum - model.n;
        assert.ok(
          smallestIntersection >= model.f + 1,
          `quorums of ${quorum} out of ${model.n} may share only ${smallestIntersection} replicas`,
        );
      }),
      { numRuns: 500 },
    );
  });

  it('the correct, non-recovering replicas can form a quorum alone (n − f − k ≥ quorum)', () => {
    fc.assert(
      fc.property(validModel, (model) => {
        assert.ok(model.n - model.f - model.k >= quorumSize(model));
      }),
      { numRuns: 500 },
    );
  });

  it('the correct witness size is f + 1, so it always includes a correct replica', () => {
    fc.assert(
      fc.property(validModel, (model) => {
        assert.equal(correctWitnessSize(model), model.f + 1);
      }),
    );
  });

  it('quorum is 2f + 1 when n = 3f + 1', () => {
    for (let f = 0; f <= 10; f++) assert.equal(quorumSize({ n: 3 * f + 1, f, k: 0 }), 2 * f + 1);
  });

  it('quorum is 2f + k + 1 at the minimum n = 3f + 2k + 1', () => {
    for (let f = 0; f <= 10; f++) {
      for (let k = 0; k <= 5; k++)
        assert.equal(quorumSize({ n: minimumReplicas(f, k), f, k }), 2 * f + k + 1);
    }
  });
});

describe('faultModelProblems', () => {
  it('accepts every valid model', () => {
    fc.assert(
      fc.property(validModel, (model) => {
        assert.deepEqual(faultModelProblems(model), []);
      }),
      { numRuns: 300 },
    );
  });

  it('explains a too-small n, naming the bound 3f + 2k + 1', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 10 }),
        fc.integer({ min: 0, max: 5 }),
        fc.integer({ min: 1, max: 10 }),
        (f, k, shortBy) => {
          const n = Math.max(0, minimumReplicas(f, k) - shortBy);
          const problems = faultModelProblems({ n, f, k });
          assert.ok(problems.length >= 1);
          const tooSmall = problems.find((problem) => problem.includes('too small'));
          assert.ok(tooSmall !== undefined, `no "too small" problem in ${JSON.stringify(problems)}`);
          assert.match(tooSmall, /3f \+ 2k \+ 1/);
          assert.ok(tooSmall.includes(`= ${minimumReplicas(f, k)}`), tooSmall);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('rejects non-integers, negatives and non-finite numbers, naming the field', () => {
    const cases: { model: FaultModel; field: 'n' | 'f' | 'k' }[] = [
      { model: { n: 4.5, f: 1, k: 0 }, field: 'n' },
      { model: { n: 4, f: 0.5, k: 0 }, field: 'f' },
      { model: { n: 4, f: 1, k: 0.25 }, field: 'k' },
      { model: { n: Number.NaN, f: 1, k: 0 }, field: 'n' },
      { model: { n: Number.POSITIVE_INFINITY, f: 1, k: 0 }, field: 'n' },
      { model: { n: 4, f: -1, k: 0 }, field: 'f' },
      { model: { n: 4, f: 1, k: -2 }, field: 'k' },
    ];
    for (const { model, field } of cases) {
      const problems = faultModelProblems(model);
      assert.equal(problems.length, 1, `${JSON.stringify(model)}: ${JSON.stringify(problems)}`);
      assert.ok(problems[0]!.startsWith(`${field} must be a non-negative integer`), problems[0]);
    }
  });

  it('rejects the empty configuration', () => {
    const problems = faultModelProblems({ n: 0, f: 0, k: 0 });
    assert.ok(problems.length >= 1);
    assert.ok(problems.some((problem) => problem.includes('n must be at least 1')));
  });
});
