/**
 * A plain cluster (n = 4, f = 1, no guardians) stopped and started again under a client that
 * keeps writing: every replica stopped cleanly, every one killed with SIGKILL at once, and a mix.
 * Every acknowledged write reads back after each start. And a backup restarted with its disk takes
 * part again at once: when another backup crashes right after, the three that are left (a
 * quorum only with it) go on in the same view.
 */
import * as assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { replicaId } from '../../src/messages/ids.js';
import { type TestCluster, decode, encode, startTestCluster, waitFor } from './helpers.js';
import { AcknowledgedWrites } from './restart-workload.js';

const WRITER = 'writer';

describe('a plain 4-replica cluster restarted whole', { timeout: 300_000 }, () => {
  let test: TestCluster;
  const acknowledged = new Map<string, string>();
  let round = 0;

  before(async () => {
    test = await startTestCluster({ clients: ['admin', 'writer'] });
  });

  after(async () => {
    await test?.stop();
  });

  /**
   * Writes until `count` more are acknowledged, then stops the cluster with `stop` under the next
   * write. That write waits (it may succeed once the cluster is back, or time out): what it
   * acknowledged is added by startAndCheck.
   */
  let inFlight: { writes: AcknowledgedWrites; halted: Promise<void>; close: () => Promise<void> } | null =
    null;
  async function writeThenStop(count: number, stop: () => Promise<void>): Promise<void> {
    const store = await test.kv(WRITER);
    const writes = new AcknowledgedWrites(store, `round-${round++}`);
    await writes.until(count);
    const halted = writes.halt();
    await stop();
    inFlight = { writes, halted, close: () => store.client.close() };
  }

  async function settleWrites(): Promise<void> {
    if (inFlight === null) return;
    await inFlight.halted;
    assert.deepEqual(inFlight.writes.errors, [], 'no write failed before the stop');
    for (const [key, value] of inFlight.writes.acknowledged) acknowledged.set(key, value);
    await inFlight.close();
    inFlight = null;
  }

  async function startAndCheck(): Promise<void> {
    for (const replica of test.config.replicas)
      if (!test.cluster.isRunning(replica.id)) await test.cluster.start(replica.id);
    await test.cluster.waitUntilReady();
    await settleWrites();
    const reader = await test.kv();
    for (const [key, value] of acknowledged)
      assert.equal(decode(await reader.get(key)), value, `${key} after the restart`);
    await reader.put('after-restart', encode(String(round)));
    assert.equal(decode(await reader.get('after-restart', { ordered: true })), String(round));
    await reader.client.close();
  }

  it('keeps every acknowledged write across a clean stop of every replica', async () => {
    await writeThenStop(40, () => test.cluster.stopAll());
    await startAndCheck();
  });

  it('keeps every acknowledged write when every replica is killed with SIGKILL at once', async () => {
    await writeThenStop(40, async () => {
      await Promise.all(test.config.replicas.map((replica) => test.cluster.kill(replica.id, 'SIGKILL')));
    });
    await startAndCheck();
  });

  it('keeps every acknowledged write through a mix of clean stops and SIGKILL', async () => {
    await writeThenStop(40, async () => {
      await Promise.all([
        test.cluster.kill(replicaId(0), 'SIGKILL'),
        test.cluster.kill(replicaId(1), 'SIGTERM'),
        test.cluster.kill(replicaId(2), 'SIGKILL'),
        test.cluster.kill(replicaId(3), 'SIGTERM'),
      ]);
    });
    await startAndCheck();
  });

  it('a backup restarted after SIGKILL votes again at once: another crash right after costs no view change', async () => {
    const store = await test.kv('writer');
    const writes = new AcknowledgedWrites(store, 'kill-restart-kill');
    try {
      await writes.until(20);
      const reports = await test.status();
      const view = reports.find((report) => report.up)!.view;
      const leader = view % test.config.n;
      const [first, second] = [0, 1, 2, 3].filter((id) => id !== leader);
      await test.cluster.kill(replicaId(first!), 'SIGKILL');
      await writes.until(20);
      await test.cluster.start(replicaId(first!));
      await waitFor('the restarted backup to catch up and vote', async () => {
        const all = await test.status();
        const restarted = all[first!];
        const top = Math.max(...all.map((report) => (report.up ? report.lastExecuted : 0)));
        return restarted?.up === true && restarted.voting && restarted.lastExecuted >= top - 1;
      });
      await test.cluster.kill(replicaId(second!), 'SIGKILL');
      await writes.until(20);
      const after = (await test.status()).filter((report) => report.up);
      assert.equal(after.length, 3);
      for (const report of after)
        assert.equal(report.view, view, `replica ${report.replica} needed no view change`);
      assert.deepEqual(writes.errors, []);
    } finally {
      await writes.stop();
      await store.client.close();
      for (const replica of test.config.replicas)
        if (!test.cluster.isRunning(replica.id)) await test.cluster.start(replica.id);
    }
  });
});
