/**
 * A leader that holds every proposal back for 45% of the request timeout (the stalling-leader
 * fault mode: no request ever times out), on real replica processes over TCP with file storage.
 * The backups measure its turnaround against their expectation (ARCHITECTURE.md, "Leader pace")
 * and replace it after a few proposals, and the clients never see an error.
 */
import * as assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { KvClient } from '../../src/apps/kv/client.js';
import { replicaId } from '../../src/messages/ids.js';
import { encode, logLines, startTestCluster, type TestCluster, waitFor } from './helpers.js';

/** Closed-loop writers, each on its own client id; every error is kept. */
class Writers {
  completed = 0;
  readonly errors: string[] = [];
  #running = true;
  readonly #loops: Promise<void>[];

  constructor(stores: readonly KvClient[]) {
    this.#loops = stores.map(async (store, writer) => {
      for (let index = 0; this.#running; index++) {
        try {
          await store.put(`w${writer}/${index % 4}`, encode(`${index}`));
          this.completed++;
        } catch (error) {
          this.errors.push(error instanceof Error ? error.message : String(error));
        }
      }
    });
  }

  async stop(): Promise<void> {
    this.#running = false;
    await Promise.all(this.#loops);
  }
}

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
      const reasons = logLines(test.replicaLog(replicaId(backup)))
        .filter((line) => line.timeMs >= startedAtMs - 60_000 && line.msg === 'view-change-started')
        .map((line) => String(line.reason));
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
