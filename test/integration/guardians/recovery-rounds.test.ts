/**
 * Proactive recovery on real processes: six guardians (f = 1, k = 1) rejuvenate their replicas
 * round after round while a client keeps working; never more than k recover at once; keys an
 * intruder stole before a rejuvenation are refused after it.
 */
import * as assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { clientRegistryOf } from '../../../src/config/keys.js';
import { keyEpoch, replicaId } from '../../../src/core/ids.js';
import { keyFromBase64, signingKeyPairFromSeed } from '../../../src/crypto/keys.js';
import type { GuardianReport, RecoveryRecord } from '../../../src/recovery/status.js';
import { channelKeyDirectory } from '../../../src/runtime/replica-node.js';
import { TcpTransport } from '../../../src/transport/tcp.js';
import { replicaNode } from '../../../src/transport/transport.js';
import { type TestCluster, startTestCluster, waitFor } from '../helpers.js';
import { Workload } from './shared.js';

const RECOVERY_BOUND_MS = 6000;

interface StolenKeys {
  readonly replica: number;
  readonly keyEpoch: number;
  readonly signingSeed: string;
  readonly certificate: string;
}

function recoveriesOf(reports: readonly GuardianReport[]): { replica: number; record: RecoveryRecord }[] {
  return reports.flatMap((report) =>
    report.up ? report.recentRecoveries.map((record) => ({ replica: report.replica, record })) : [],
  );
}

/** The most recoveries that overlap at any instant. */
function maximumOverlap(records: readonly RecoveryRecord[]): number {
  const edges = records.flatMap((record) => [
    { at: record.startedAtMs, delta: 1 },
    { at: record.startedAtMs + record.durationMs, delta: -1 },
  ]);
  // At equal times an end comes before a start: back-to-back slots do not overlap.
  edges.sort((a, b) => a.at - b.at || a.delta - b.delta);
  let current = 0;
  let maximum = 0;
  for (const edge of edges) {
    current += edge.delta;
    maximum = Math.max(maximum, current);
  }
  return maximum;
}

describe('proactive recovery on real processes', { timeout: 300_000 }, () => {
  let test: TestCluster;

  before(async () => {
    test = await startTestCluster({
      f: 1,
      k: 1,
      recovery: { recoveryBoundMs: RECOVERY_BOUND_MS },
      allowFaultInjection: true,
    });
  });

  after(async () => {
    await test?.stop();
  });

  async function steal(replica: number): Promise<StolenKeys> {
    const entry = test.config.replicas[replica]!;
    const response = await fetch(`http://${entry.adminHost}:${entry.adminPort}/debug/stolen-keys`);
    assert.equal(response.status, 200);
    return (await response.json()) as StolenKeys;
  }

  /** Connects to replica 5 pretending to be `loot.replica` with the stolen key; true if admitted. */
  async function impersonate(loot: StolenKeys): Promise<boolean> {
    const target = test.config.replicas[5]!;
    const rejections: string[] = [];
    const transport = await TcpTransport.start({
      identity: {
        node: replicaNode(replicaId(loot.replica)),
        keyEpoch: keyEpoch(loot.keyEpoch),
        signingKeys: signingKeyPairFromSeed(keyFromBase64(loot.signingSeed)),
        certificate: new Uint8Array(Buffer.from(loot.certificate, 'base64')),
      },
      peers: [{ node: replicaNode(replicaId(5)), host: target.host, port: target.port }],
      keys: channelKeyDirectory(clientRegistryOf(test.config), test.config),
      events: { onFrame: () => undefined, onRejection: (_peer, _address, reason) => rejections.push(reason) },
    });
    try {
      const deadline = Date.now() + 3000;
      while (Date.now() < deadline) {
        if (transport.connectedPeers().length > 0) return true;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      return false;
    } finally {
      await transport.close();
    }
  }

  it('rejuvenates every replica in every period, at most k at once, with no client errors', async () => {
    const workload = new Workload(await test.kv(), 'rounds');
    try {
      const reports = await waitFor(
        'two rejuvenations of every replica',
        async () => {
          const current = await test.guardians();
          const counts = current.map((report) => (report.up ? report.recentRecoveries.length : 0));
          return counts.every((count) => count >= 2) ? current : null;
        },
        180_000,
      );
      const all = recoveriesOf(reports);
      assert.ok(
        all.every(({ record }) => record.kind === 'proactive'),
        'no replica misbehaved, so none is recovered reactively',
      );
      assert.ok(
        maximumOverlap(all.map(({ record }) => record)) <= test.config.k,
        'never more than k recovering at once',
      );
      for (const report of reports) {
        assert.ok(report.up);
        // Key epochs only move forward, one per rejuvenation.
        const epochs = report.recentRecoveries.map((record) => record.keyEpoch);
        assert.deepEqual(
          epochs,
          [...epochs].sort((a, b) => b - a),
        );
        assert.ok(report.exposureMs <= report.guaranteeMs, `replica ${report.replica} exposed longer than T`);
      }
      const durations = all.map(({ record }) => record.durationMs);
      process.stdout.write(
        `# recoveries: ${durations.length}, longest ${Math.max(...durations)} ms, T_D = ${RECOVERY_BOUND_MS} ms; ` +
          `${workload.completed} client operations\n`,
      );
      for (const { replica, record } of all) {
        process.stdout.write(
          `# r${replica} ${record.durationMs} ms: ${record.steps.map((step) => `${step.step} ${step.durationMs}`).join(', ')}\n`,
        );
      }
    } finally {
      await workload.stop();
    }
    assert.deepEqual(workload.errors, []);
    assert.ok(workload.completed > 100, `only ${workload.completed} operations completed`);
    // Every rejuvenation archived the stopped process's accountability log, and its audit passed.
    for (const replica of test.config.replicas)
      assert.match(test.log(replicaId(replica.id)), /accountability log audited/, `guardian ${replica.id}`);
  });

  it("refuses a replica's session key stolen before its rejuvenation, and accepts the new one", async () => {
    const before = await steal(2);
    await waitFor(
      'the next rejuvenation of replica 2',
      async () => {
        const [report] = (await test.guardians()).filter((entry) => entry.replica === 2);
        return report?.up === true && report.keyEpoch > before.keyEpoch && !report.recovery.inProgress;
      },
      60_000,
    );
    const current = await waitFor('replica 2 serving its new keys', async () => {
      const loot = await steal(2).catch(() => null);
      return loot !== null && loot.keyEpoch > before.keyEpoch ? loot : null;
    });
    assert.equal(await impersonate(before), false, 'the key of the previous epoch is refused');
    await waitFor('a logged refusal of the old epoch', async () =>
      /replica 2 key epoch \d+ is not accepted/.test(test.replicaLog(replicaId(5))),
    );
    // The same procedure with the current key succeeds: the refusal above is about the epoch.
    assert.equal(await impersonate(current), true, 'the current key is accepted');
  });
});
