/**
 * A leader that holds every proposal back for 45% of the request timeout (the stalling-leader
 * fault mode: no request ever times out), on real replica processes over TCP with file storage.
 * The backups measure its turnaround against their expectation (ARCHITECTURE.md, "Leader pace")
 * and replace it after a few proposals, and the clients never see an error.
 */
import * as assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { replicaId } from '../../src/messages/ids.js';
import { startTestCluster, type TestCluster, viewChangeReasons, waitFor, Writers } from './helpers.js';

describe('a stalling leader on a real cluster', { timeout: 180_000 }, () => {
  let test: TestCluster;
  let writers: Writers | undefined;

  before(async () => {
    test = await startTestCluster({
      clients: ['writer-0', 'writer-1'],
      allowFaultInjection: true,
      faultModes: { 0: 'stalling-leader' },
    });
  });

  after(async () => {
    await writers?.stop();
    await test?.stop();
  });

  it('is replaced for its turnaround, before any request times out, without a client error', async () => {
    const startedAtMs = Date.now();
    writers = new Writers([await test.kv('writer-0'), await test.kv('writer-1')]);
    await waitFor(
      'every replica in a view past the stalling leader',
      async () => (await test.status()).every((report) => report.up && report.view >= 1),
      60_000,
    );
    const target = writers.completed + 100;
    await waitFor('100 more writes in the new view', async () => writers!.completed >= target, 60_000);
    await writers.stop();
    assert.deepEqual(writers.errors, [], 'no client saw an error');

    for (const backup of [1, 2, 3]) {
      const reasons = viewChangeReasons(test, replicaId(backup), startedAtMs - 60_000);
      assert.ok(reasons.length > 0, `replica ${backup} changed view`);
      assert.match(
        reasons[0]!,
        /^leader turnaround: median \d+ ms over its last \d+ proposals, expected at most \d+ ms$/,
        `replica ${backup}: the first view change is for the leader's pace`,
      );
      assert.ok(
        !reasons.some((reason) => reason.startsWith('request ')),
        `replica ${backup}: no request timed out (${reasons.join('; ')})`,
      );
    }
    const backupStatus = (await test.status())[1]!;
    assert.ok(backupStatus.up);
    assert.equal(typeof backupStatus.leaderTurnaroundExpectationMs, 'number');
    assert.equal(typeof backupStatus.leaderLeftOutClientsLimit, 'number');
  });
});
