/**
 * Safe mode under guardians, on real processes (docs/intrusion-tolerance.md, "Beyond f"): an
 * intruder holding the session keys of a quorum of replicas (more than f) signs a second state
 * root for a certified checkpoint. Every replica enters safe mode; every guardian verifies the fork
 * proof its replica reports and keeps it on its disk (src/recovery/safe-mode-order.ts); and a
 * replica rejuvenated afterwards starts in safe mode on its guardian's order, not only if a peer
 * tells it in time: a proof stops verifying once its culprits' key epochs have moved on, and
 * without the order proactive recovery would take every replica out of safe mode within a period.
 * Its rejuvenation ends as soon as it reports safe mode (no rejoin, which would never come). A
 * guardian that was down meanwhile learns the proof from the other guardians. Restarted, the whole
 * cluster is in safe mode again; the operator's new configuration takes it out.
 */
import * as assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PhalanxError, SafeModeSnapshotError } from '../../../src/client/client.js';
import { quorumSize } from '../../../src/core/quorum.js';
import { encodeMessage } from '../../../src/messages/codec.js';
import { digest, replicaId, sequenceNumber } from '../../../src/messages/ids.js';
import { SAFE_MODE_FILE } from '../../../src/recovery/safe-mode-order.js';
import {
  decode,
  encode,
  logLines,
  servesAfterLeavingSafeMode,
  startTestCluster,
  startUnderNewConfiguration,
  type TestCluster,
  waitFor,
} from '../helpers.js';
import { forgeCheckpointCertificate, impostorTransport, type StolenKeys, stealKeys, up } from './shared.js';

describe('safe mode under guardians', { timeout: 240_000 }, () => {
  let test: TestCluster;

  before(async () => {
    test = await startTestCluster({
      f: 1,
      k: 1,
      recovery: { recoveryBoundMs: 6000 },
      allowFaultInjection: true,
    });
  });

  after(async () => {
    await test?.stop();
  });

  const guardianSafeModeFile = (id: number): string =>
    join(test.config.dataDirectory, `guardian-${id}`, SAFE_MODE_FILE);

  it("every guardian keeps the fork proof, and a replica rejuvenated afterwards starts in safe mode on its guardian's order", async () => {
    const kv = await test.kv();
    for (let index = 0; index < 40; index++) await kv.put(`before-${index}`, encode(`value ${index}`));
    // Quiet, and every replica up and holding the same stable checkpoint: the one to fork.
    const certified = await waitFor(
      'one stable checkpoint at every replica',
      async () => {
        const reports = await test.status();
        const sequences = new Set(reports.map((report) => (report.up ? report.stableCheckpoint : -1)));
        const [only] = sequences;
        return sequences.size === 1 && only !== undefined && only > 0 ? only : null;
      },
      60_000,
    );

    // Guardian 5 (and with it its replica) is down while the fork is found: it learns the proof
    // from the other guardians when it comes back.
    const absent = test.config.n - 1;
    await test.cluster.kill(replicaId(absent));

    // The intruder's loot: the current session keys of a quorum of replicas, stolen again for
    // each attempt. A slot comes every T_D = 6 s here: a replica rejuvenated after the theft no
    // longer speaks with the stolen keys (its peers refuse the impostor's connection under its
    // retired epoch, and a vote two epochs old no longer verifies), and a suite run saw the
    // single attempt of before time out that way.
    const quorum = quorumSize(test.config);
    const sequence = sequenceNumber(certified);
    const forgedRoot = digest(new Uint8Array(32).fill(0xab));
    const stolen = new Set<number>();
    const inSafeMode = async (): Promise<boolean> =>
      (await test.status()).some((report) => report.up && report.safeMode === true);
    let forkFound = false;
    for (let attempt = 0; attempt < 5 && !forkFound; attempt++) {
      const loot = await waitFor('the keys of a quorum of replicas', async () => {
        const found = (
          await Promise.all(test.config.replicas.map((entry) => stealKeys(test.config, entry.id)))
        ).filter((keys): keys is StolenKeys => keys !== null);
        return found.length >= quorum ? found.slice(0, quorum) : null;
      });
      for (const keys of loot) stolen.add(keys.replica);
      const frame = encodeMessage({
        kind: 'checkpoint-proof',
        certificate: forgeCheckpointCertificate(loot, sequence, forgedRoot),
      });
      // Sent as a stolen replica that dials others (not the highest id: the lower id dials).
      const sender = loot.find((keys) => keys.replica < test.config.n - 1)!;
      const impostor = await impostorTransport(test.config, sender);
      try {
        // The real replica takes its connections back now and then: the proof goes out again
        // each second until some replica has it; the replicas then tell each other (FORK-PROOF).
        const until = Date.now() + 8000;
        while (Date.now() < until && !forkFound) {
          for (const peer of impostor.connectedPeers()) impostor.send(peer, frame);
          await new Promise((resolve) => setTimeout(resolve, 1000));
          forkFound = await inSafeMode();
        }
      } finally {
        await impostor.close();
      }
    }
    assert.ok(forkFound || (await inSafeMode()), 'a replica entered safe mode on the forged certificate');

    // Every guardian verified the proof its replica (or a peer guardian) reported and keeps it.
    await waitFor(
      'every guardian up keeping the proof',
      async () =>
        test.config.replicas.every(
          (entry) => entry.id === absent || existsSync(guardianSafeModeFile(entry.id)),
        ),
      60_000,
    );
    assert.ok(!existsSync(guardianSafeModeFile(absent)));
    await test.cluster.start(replicaId(absent));
    await waitFor('the guardian that was down keeping the proof', async () =>
      existsSync(guardianSafeModeFile(absent)),
    );
    const kept = logLines(test.log(replicaId(absent))).find((line) => line.msg.startsWith('SAFE MODE'));
    assert.match(
      String(kept?.source),
      /^guardian \d+$/,
      `guardian ${absent} learned it from a peer guardian`,
    );
    const keptAtMs = Date.now();
    for (const entry of test.config.replicas) {
      const record = JSON.parse(readFileSync(guardianSafeModeFile(entry.id), 'utf8')) as {
        culprits: number[];
      };
      assert.ok(
        record.culprits.length >= test.config.f + 1,
        `guardian ${entry.id}: culprits ${record.culprits}`,
      );
      assert.ok(
        record.culprits.every((culprit) => stolen.has(culprit)),
        `guardian ${entry.id} names a replica whose keys were not stolen: ${record.culprits}`,
      );
    }

    // The next rejuvenation (a proactive slot comes every T_D) starts its new process in safe mode.
    // It keeps the replica's disk (by design in safe mode: a run that found another replica
    // restarted in safe mode, not voting, used to keep it and owe a full rejuvenation instead,
    // and recorded none), so the proof comes from the disk or, once it no longer verifies there,
    // from the guardian's order; never from a peer's FORK-PROOF.
    const rejuvenated = await waitFor(
      'a rejuvenation begun after every guardian kept the proof',
      async () => {
        for (const report of up(await test.guardians())) {
          const record = report.recentRecoveries.find((entry) => entry.startedAtMs > keptAtMs);
          if (record !== undefined) return { replica: report.replica, record };
        }
        return null;
      },
      60_000,
    );
    const entered = logLines(test.replicaLog(replicaId(rejuvenated.replica))).filter(
      (line) => line.msg === 'safe-mode-entered' && line.timeMs >= rejuvenated.record.startedAtMs,
    );
    assert.match(
      String(entered[0]?.source),
      /^(guardian|stored proof)$/,
      `replica ${rejuvenated.replica}: ${JSON.stringify(entered[0])}`,
    );
    // Its rejuvenation ended when it reported safe mode, without waiting for a rejoin.
    assert.ok(
      !rejuvenated.record.steps.some((step) => step.step === 'rejoining'),
      JSON.stringify(rejuvenated.record.steps),
    );
    const reports = await waitFor('every replica in safe mode', async () => {
      const all = await test.status();
      return all.every((report) => report.up && report.safeMode === true) ? all : null;
    });
    assert.equal(reports.length, test.config.n);

    // Reads of the certified state are served (as a SafeModeSnapshotError that carries them);
    // writes are refused with a clear error.
    await assert.rejects(
      kv.get('before-0'),
      (error: unknown) =>
        error instanceof SafeModeSnapshotError &&
        error.code === 'safe-mode' &&
        decode(kv.snapshotValue(error)) === 'value 0' &&
        error.signedReplies.length >= 2,
    );
    await assert.rejects(
      kv.put('after-fork', encode('refused')),
      (error: unknown) => error instanceof PhalanxError && error.code === 'safe-mode',
    );
  });

  it('a whole guardian cluster restarted is in safe mode again, with the alarm', async () => {
    await test.cluster.stopAll();
    await test.cluster.startAll();
    await test.cluster.waitUntilReady(60_000);
    await waitFor(
      'every replica in safe mode',
      async () => (await test.status()).every((report) => report.up && report.safeMode === true),
      60_000,
    );
    const guardians = up(await test.guardians());
    assert.equal(guardians.length, test.config.n);
    for (const report of guardians) {
      assert.ok(
        report.alarms.some((alarm) => /kept in safe mode/.test(alarm.message)),
        `guardian ${report.replica}: ${JSON.stringify(report.alarms)}`,
      );
      // Its status says so too, with the culprits (the dashboard and the metrics read it).
      assert.ok(
        (report.safeMode?.culprits.length ?? 0) >= test.config.f + 1,
        `guardian ${report.replica}: ${JSON.stringify(report.safeMode)}`,
      );
    }
  });

  it("leaves safe mode the operator's way: a new configuration, new keys for every replica, data kept", async () => {
    await test.cluster.stopAll();
    const { config, cluster, kv, stop } = await startUnderNewConfiguration(test);
    try {
      for (const report of up(await cluster.guardianReports()))
        assert.equal(report.safeMode, null, `guardian ${report.replica} keeps no proof`);
      for (const entry of config.replicas) {
        assert.ok(!existsSync(guardianSafeModeFile(entry.id)), `guardian ${entry.id} discarded its record`);
        const lines = logLines(readFileSync(cluster.logFile(entry.id), 'utf8'));
        assert.ok(
          lines.some((line) => line.msg.startsWith('discarded the safe mode of an earlier configuration')),
          `guardian ${entry.id} said so`,
        );
      }
      await servesAfterLeavingSafeMode(await kv());
    } finally {
      await stop();
    }
  });
});
