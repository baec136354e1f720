import * as assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { KvClient } from '../../src/apps/kv/client.js';
import { replicaId } from '../../src/messages/ids.js';
import { type TestCluster, decode, encode, startTestCluster, waitFor } from './helpers.js';

/** Writers that each own a few keys and remember the last value the cluster acknowledged. */
class Workload {
  readonly acknowledged = new Map<string, string>();
  completed = 0;
  readonly errors: string[] = [];
  #running = true;
  readonly #loops: Promise<void>[];

  constructor(stores: readonly KvClient[]) {
    this.#loops = stores.map((store, writer) => this.#loop(store, writer));
  }

  async #loop(store: KvClient, writer: number): Promise<void> {
    let index = 0;
    while (this.#running) {
      const key = `w${writer}/${index % 5}`;
      const value = `${writer}:${index}`;
      try {
        await store.put(key, encode(value));
        this.acknowledged.set(key, value);
        this.completed++;
      } catch (error) {
        this.errors.push(error instanceof Error ? error.message : String(error));
      }
      index++;
    }
  }

  async until(count: number, timeoutMs = 60_000): Promise<void> {
    const target = this.completed + count;
    await waitFor(`${count} more acknowledged writes`, async () => this.completed >= target, timeoutMs);
  }

  async stop(): Promise<void> {
    this.#running = false;
    await Promise.all(this.#loops);
  }
}

describe('a real 4-replica cluster under crashes', { timeout: 300_000 }, () => {
  let test: TestCluster;
  let workload: Workload;

  before(async () => {
    test = await startTestCluster({ clients: ['admin', 'writer-0', 'writer-1'] });
    // One client id per concurrent session: request numbers are per client id.
    workload = new Workload([await test.kv('writer-0'), await test.kv('writer-1')]);
    await workload.until(50);
  });

  after(async () => {
    await workload?.stop();
    await test?.stop();
  });

  it('keeps completing requests while a backup is killed with SIGKILL', async () => {
    await test.cluster.kill(replicaId(3), 'SIGKILL');
    await workload.until(300);
    assert.deepEqual(workload.errors, []);
  });

  it('the killed backup restarts and catches up by state transfer from a checkpoint', async () => {
    await test.cluster.start(replicaId(3));
    const reports = await waitFor('replica 3 to catch up', async () => {
      const all = await test.status();
      const three = all[3];
      const leader = all.find((report) => report.up && report.role === 'leader');
      if (three?.up !== true || leader?.up !== true) return null;
      return three.lastExecuted >= leader.lastExecuted - 16 && three.stableCheckpoint > 0 ? all : null;
    });
    assert.ok(reports[3]?.up);
    assert.match(test.log(replicaId(3)), /state-transfer-completed/);
    assert.deepEqual(workload.errors, []);
  });

  it('keeps completing requests when the leader is killed (view change)', async () => {
    const before = await test.status();
    const leader = before.find((report) => report.up && report.role === 'leader');
    assert.ok(leader?.up);
    await test.cluster.kill(replicaId(leader.replica), 'SIGKILL');
    await workload.until(200);
    const afterKill = await test.status();
    const views = afterKill.filter((report) => report.up).map((report) => (report.up ? report.view : -1));
    assert.ok(
      views.every((view) => view > leader.view),
      `views after the kill: ${views}`,
    );
    assert.deepEqual(workload.errors, []);
    await test.cluster.start(replicaId(leader.replica));
    await waitFor('the old leader to rejoin', async () => {
      const all = await test.status();
      const old = all[leader.replica];
      return old?.up === true && !old.viewChangeInProgress && old.view >= views[0]! ? true : null;
    });
  });

  it('loses no acknowledged write when every replica is killed with SIGKILL and restarted', async () => {
    await workload.stop();
    assert.deepEqual(workload.errors, []);
    const expected = new Map(workload.acknowledged);
    assert.ok(expected.size >= 10);
    for (const replica of test.config.replicas) await test.cluster.kill(replica.id, 'SIGKILL');
    await test.cluster.startAll();
    await test.cluster.waitUntilReady();
    const reader = await test.kv();
    for (const [key, value] of expected) {
      assert.equal(decode(await reader.get(key, { ordered: true })), value, `value of ${key} after restart`);
    }
  });
});
