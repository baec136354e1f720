/**
 * The silence detector (docs/intrusion-tolerance.md, "Detectors"): a peer nothing has come from
 * for the silence limit is suspected (SILENCE_SUSPICION), once per limit; a replica that hears
 * fewer than a quorum blames nobody (its own isolation explains the silence). Real Replica cores
 * through the harness, n = 4, f = 1.
 */
import * as assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { SILENCE_SUSPICION, silenceLimitMs } from '../../src/core/replica.js';
import { Harness } from './harness.js';

const silenceSuspicions = (cluster: Harness, observer: number, suspect: number): string[] =>
  cluster.suspicionReasons(observer, suspect).filter((reason) => reason.startsWith(SILENCE_SUSPICION));

describe('the silence detector', () => {
  test('a backup that sends nothing is suspected by every replica that hears a quorum, once per limit', () => {
    const cluster = new Harness();
    const limitMs = silenceLimitMs(cluster.config);
    cluster.filter = (envelope) => (envelope.from === 3 ? 'drop' : 'deliver');
    cluster.advance(limitMs - 200);
    for (const observer of [0, 1, 2])
      assert.deepEqual(silenceSuspicions(cluster, observer, 3), [], 'not yet');
    cluster.advance(400);
    for (const observer of [0, 1, 2]) {
      const reasons = silenceSuspicions(cluster, observer, 3);
      assert.equal(reasons.length, 1, `replica ${observer}: ${JSON.stringify(reasons)}`);
      assert.match(reasons[0]!, /^silent: nothing received for \d+ ms$/);
      // Nobody else is called silent: every other replica's STATUS keeps coming.
      for (const other of [0, 1, 2])
        if (other !== observer) assert.deepEqual(silenceSuspicions(cluster, observer, other), []);
    }
    // Again only after another limit.
    cluster.advance(limitMs - 400);
    assert.equal(silenceSuspicions(cluster, 0, 3).length, 1);
    cluster.advance(400);
    assert.equal(silenceSuspicions(cluster, 0, 3).length, 2);
  });

  test('a replica cut off from a quorum blames nobody', () => {
    const cluster = new Harness();
    const limitMs = silenceLimitMs(cluster.config);
    // Replica 0 hears only replica 1: two of four, itself included, is less than Q = 3.
    cluster.filter = (envelope) => (envelope.to === 0 && envelope.from !== 1 ? 'drop' : 'deliver');
    cluster.advance(3 * limitMs);
    for (const suspect of [1, 2, 3]) assert.deepEqual(silenceSuspicions(cluster, 0, suspect), []);
    // The others still hear a quorum (0's messages reach them): none of them is called silent.
    for (const observer of [1, 2, 3])
      for (const suspect of [0, 1, 2, 3])
        if (suspect !== observer) assert.deepEqual(silenceSuspicions(cluster, observer, suspect), []);
  });
});
