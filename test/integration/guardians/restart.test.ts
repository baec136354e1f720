/**
 * A whole guardian cluster (n = 6, f = 1, k = 1) stopped and started again, twice under a client
 * that keeps writing: every guardian and replica killed with SIGKILL at once; and a mix (some
 * guardians stopped cleanly, some killed with their replicas, and two replicas killed under
 * guardians that stay up, which then see more than k replicas down). After each start every
 * acknowledged write reads back, new writes succeed, and every replica votes again within one
 * rejuvenation's bound.
 *
 * Reduced to a smoke test (issue 12): the round that stopped every process cleanly is gone. The
 * mix round stops guardians cleanly (SIGTERM), SIGKILL of everything is the harsher case for the
 * disk, and the simulator's --cluster-restart crashes every replica at once and restarts it from
 * its disk under the linearizability checker (test/sim/checkpoints.test.ts); the kept-disk
 * rule of the mix round is claim 15 of test/recovery/guardian-core.test.ts.
 */
import * as assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { replicaId } from '../../../src/messages/ids.js';
import { signCodeManifestFor } from '../../../src/recovery/code-manifest.js';
import { BUILT_CODE_DIRECTORY } from '../built-code.js';
import { type TestCluster, decode, startTestCluster, waitFor } from '../helpers.js';
import { AcknowledgedWrites, descendantsOf, killNow } from '../restart-workload.js';

// As the other guardian files: on two cores, with six replicas, six guardians and a workload, a
// recovery takes 4–6 s whenever anything else runs.
const RECOVERY_BOUND_MS = 6000;

const WRITER = 'admin';

describe('a guardian cluster restarted whole', { timeout: 420_000 }, () => {
  let test: TestCluster;
  const acknowledged = new Map<string, string>();
  let round = 0;

  before(async () => {
    test = await startTestCluster({ f: 1, k: 1, recovery: { recoveryBoundMs: RECOVERY_BOUND_MS } });
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
    // As every local start does (`phalanx up`): the guardians check the code against it.
    await signCodeManifestFor(test.config, BUILT_CODE_DIRECTORY);
    for (const replica of test.config.replicas)
      if (!test.cluster.isRunning(replica.id)) await test.cluster.start(replica.id);
    await test.cluster.waitUntilReady(60_000);
    await settleWrites();
    const reader = await test.kv();
    // Connected is not yet serving: the replicas may still be settling a view (a restarted leader
    // abdicates) or re-certifying a stored checkpoint. The first write waits for that, within a
    // bound, and says what the replicas reported if it never comes.
    let lastError = '';
    await waitFor(
      'the restarted cluster to order a write',
      async () => {
        try {
          await reader.put('after-restart', new TextEncoder().encode(String(round)));
          return true;
        } catch (error) {
          lastError = `${error instanceof Error ? error.message : String(error)}; replicas: ${JSON.stringify(
            (await test.status()).map((report) =>
              report.up
                ? {
                    replica: report.replica,
                    voting: report.voting,
                    view: report.view,
                    lastExecuted: report.lastExecuted,
                  }
                : { replica: report.replica, down: report.error },
            ),
          )}`;
          process.stdout.write(`# not serving yet: ${lastError}\n`);
          return false;
        }
      },
      60_000,
    ).catch((error: unknown) => {
      throw new Error(`${error instanceof Error ? error.message : String(error)}: ${lastError}`);
    });
    for (const [key, value] of acknowledged)
      assert.equal(decode(await reader.get(key)), value, `${key} after the restart`);
    assert.equal(decode(await reader.get('after-restart', { ordered: true })), String(round));
    // Nobody sits out votes for longer than one rejuvenation may take.
    await waitFor(
      'every replica voting again',
      async () => (await test.status()).every((report) => report.up && report.voting),
      3 * RECOVERY_BOUND_MS,
    );
    await reader.client.close();
  }

  it('keeps every acknowledged write when every guardian and replica is killed with SIGKILL at once', async () => {
    await writeThenStop(30, async () => {
      const guardians = test.config.replicas.map((replica) => test.cluster.pid(replica.id)!);
      killNow(guardians.flatMap((pid) => descendantsOf(pid)));
      await Promise.all(test.config.replicas.map((replica) => test.cluster.kill(replica.id, 'SIGKILL')));
    });
    await startAndCheck();
  });

  it('keeps every acknowledged write through a mix of clean stops, SIGKILL of guardians and crashes of replicas', async () => {
    await writeThenStop(30, async () => {
      const replicasOf = (id: number): number[] => descendantsOf(test.cluster.pid(replicaId(id))!);
      // Replicas 4 and 5 crash under guardians that stay up: with guardians 0-3 gone too, more
      // than k replicas are down, so they must restart from their disks, not amnesiac.
      killNow([...replicasOf(4), ...replicasOf(5)]);
      killNow(replicasOf(3));
      await Promise.all([
        test.cluster.kill(replicaId(0), 'SIGTERM'),
        test.cluster.kill(replicaId(1), 'SIGTERM'),
        test.cluster.kill(replicaId(2), 'SIGKILL'),
        test.cluster.kill(replicaId(3), 'SIGKILL'),
      ]);
    });
    await startAndCheck();
    const guardianLog = test.log(replicaId(4)) + test.log(replicaId(5));
    assert.match(guardianLog, /kept its disk: replicas? [0-9, ]+ (was|were) out too/);
    assert.doesNotMatch(
      test.replicaLog(replicaId(4)) + test.replicaLog(replicaId(5)),
      /restored-checkpoint-corrupt/,
    );
  });
});
