/**
 * A leader that proposes one request per batch however many wait (the small-batches fault mode),
 * on real replica processes over TCP with file storage. Its turnaround is a correct leader's, so
 * only what it leaves out gives it away: the backups count the clients its batches with room left
 * out (ARCHITECTURE.md, "Batch fill") and replace it, and the clients never see an error.
 */
import * as assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { replicaId } from '../../src/messages/ids.js';
import { startTestCluster, type TestCluster, viewChangeReasons, waitFor, Writers } from './helpers.js';

/** More closed-loop writers than one batch in flight: under the attack most of them wait. */
const WRITERS = 8;

describe('a leader that proposes one request per batch on a real cluster', { timeout: 180_000 }, () => {
  let test: TestCluster;
  let writers: Writers | undefined;
  const names = Array.from({ length: WRITERS }, (_, index) => `writer-${index}`);

  before(async () => {
    test = await startTestCluster({
      clients: names,
      allowFaultInjection: true,
      faultModes: { 0: 'small-batches' },
    });
  });

  after(async () => {
    await writers?.stop();
    await test?.stop();
  });

  it('is replaced for the clients it leaves out, without a client error', async () => {
    const startedAtMs = Date.now();
    writers = new Writers(await Promise.all(names.map((name) => test.kv(name))));
    await waitFor(
      'every replica in a view past the leader that leaves requests out',
      async () => (await test.status()).every((report) => report.up && report.view >= 1),
      60_000,
    );
    const target = writers.completed + 200;
    await waitFor('200 more writes in the new view', async () => writers!.completed >= target, 60_000);
    await writers.stop();
    assert.deepEqual(writers.errors, [], 'no client saw an error');

    let blamedForFill = 0;
    for (const backup of [1, 2, 3]) {
      const reasons = viewChangeReasons(test, replicaId(backup), startedAtMs - 60_000);
      assert.ok(reasons.length > 0, `replica ${backup} changed view`);
      assert.ok(
        !reasons.some((reason) => reason.startsWith('request ') || reason.startsWith('leader turnaround')),
        `replica ${backup}: neither a request timeout nor the leader's pace (${reasons.join('; ')})`,
      );
      if (
        /^leader left requests out: a median of \d+ clients over its last \d+ batches with room/.test(
          reasons[0]!,
        )
      )
        blamedForFill++;
    }
    // f + 1 backups asking move the others; the last may join without a count of its own.
    assert.ok(blamedForFill >= 2, `${blamedForFill} backups blamed the leader for what it left out`);
    const leftOut = (await test.status())[1]!;
    assert.ok(leftOut.up);
    assert.equal(typeof leftOut.leaderLeftOutClientsLimit, 'number');
  });
});
