/**
 * Beyond f on real processes (docs/intrusion-tolerance.md, "Beyond f: safe mode and forensics"):
 * an intruder holding the keys of three of four replicas (more than f = 1) signs a second state
 * root for a checkpoint the cluster has certified and shows the certificate to the replicas. Each
 * correct replica that sees two certificates for one sequence stops: it enters safe mode with a
 * forensic proof naming the replicas that signed both (at least f + 1, never the one whose key was
 * not stolen), tells its peers, keeps answering reads of the certified state with signed replies,
 * and refuses writes, which the client reports as a 'safe-mode' error. Restarted, every replica
 * is in safe mode again from the proof it stored (a crash is no way out); restarted under new keys
 * (the operator's procedure), with one culprit's host replaced (its data wiped) and the others'
 * data kept, it runs normally on the certified state, which the replaced replica fetches.
 *
 * The keys come from the key files of a static cluster (epoch 0), as an intruder on those
 * machines would find them; the certificate is sent over an authenticated connection as replica
 * 0, the lowest id, which dials every other replica.
 */
import * as assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { PhalanxError, SafeModeSnapshotError } from '../../src/client/client.js';
import { accountabilityLogPath, replicaDataDirectory } from '../../src/config/cluster-config.js';
import { keyRegistryOf, loadReplicaKeyFile, replicaKeyPath } from '../../src/config/keys.js';
import { signBytes } from '../../src/crypto/signatures.js';
import { encodeMessage } from '../../src/messages/codec.js';
import { digest, keyEpoch, replicaId, sequenceNumber, signature } from '../../src/messages/ids.js';
import { checkpointPayload } from '../../src/messages/signing.js';
import type { CheckpointCertificate } from '../../src/messages/types.js';
import { channelKeyDirectory } from '../../src/transport/key-directory.js';
import { TcpTransport } from '../../src/transport/tcp.js';
import { replicaNode } from '../../src/transport/transport.js';
import {
  decode,
  encode,
  logLines,
  servesAfterLeavingSafeMode,
  startTestCluster,
  startUnderNewConfiguration,
  type TestCluster,
  waitFor,
} from './helpers.js';

/** The replicas whose keys the intruder holds: more than f = 1 of n = 4, a quorum. */
const STOLEN = [0, 1, 2] as const;
const UNTOUCHED = 3;

describe('safe mode on real processes, when more than f replicas sign a fork', { timeout: 240_000 }, () => {
  let test: TestCluster;

  before(async () => {
    test = await startTestCluster({});
  });

  after(async () => {
    await test?.stop();
  });

  it('every replica stops with a forensic proof, serves signed reads of the certified state and refuses writes', async () => {
    const kv = await test.kv();
    for (let index = 0; index < 40; index++) await kv.put(`before-${index}`, encode(`value ${index}`));
    // Quiet, and every replica holds the same stable checkpoint: the one to fork.
    const certified = await waitFor('one stable checkpoint at every replica', async () => {
      const reports = await test.status();
      const sequences = new Set(reports.map((report) => (report.up ? report.stableCheckpoint : -1)));
      const [only] = sequences;
      return sequences.size === 1 && only !== undefined && only > 0 ? only : null;
    });
    const latest = await kv.get(`before-39`);
    assert.equal(decode(latest), 'value 39');

    const sequence = sequenceNumber(certified);
    const forgedRoot = digest(new Uint8Array(32).fill(0xab));
    const keys = await Promise.all(
      STOLEN.map((id) => loadReplicaKeyFile(replicaKeyPath(test.config, replicaId(id)))),
    );
    const forged: CheckpointCertificate = {
      sequence,
      stateRoot: forgedRoot,
      votes: keys.map((file, index) => ({
        replicaId: replicaId(STOLEN[index]!),
        keyEpoch: keyEpoch(0),
        signature: signature(signBytes(file.sessionKeys.signing, checkpointPayload(sequence, forgedRoot))),
      })),
    };
    const frame = encodeMessage({ kind: 'checkpoint-proof', certificate: forged });
    const sentAtMs = Date.now();
    const impostor = await TcpTransport.start({
      identity: {
        node: replicaNode(replicaId(0)),
        keyEpoch: keyEpoch(0),
        signingKeys: keys[0]!.sessionKeys.signing,
      },
      peers: test.config.replicas
        .filter((entry) => entry.id !== 0)
        .map((entry) => ({ node: replicaNode(entry.id), host: entry.host, port: entry.port })),
      keys: channelKeyDirectory(keyRegistryOf(test.config)),
      events: { onFrame: () => undefined },
    });
    try {
      // The real replica 0 takes its connections back now and then: the proof goes out again
      // each second until the replica whose key was not stolen has seen it.
      let lastSentMs = 0;
      await waitFor(`replica ${UNTOUCHED} in safe mode`, async () => {
        if (Date.now() - lastSentMs > 1000) {
          for (const peer of impostor.connectedPeers()) impostor.send(peer, frame);
          lastSentMs = Date.now();
        }
        const report = (await test.status())[UNTOUCHED];
        return report?.up === true && report.safeMode === true;
      });
    } finally {
      await impostor.close();
    }

    // Every replica, the real replica 0 included (told by its peers' FORK-PROOF), is in safe
    // mode and names the same culprits: signers of both certificates, never replica 3.
    const reports = await waitFor('every replica in safe mode', async () => {
      const all = await test.status();
      return all.every((report) => report.up && report.safeMode === true) ? all : null;
    });
    for (const report of reports) {
      assert.ok(report.up);
      const culprits: readonly number[] = report.safeModeCulprits ?? [];
      assert.ok(culprits.length >= test.config.f + 1, `replica ${report.replica}: culprits ${culprits}`);
      assert.ok(
        culprits.every((culprit) => (STOLEN as readonly number[]).includes(culprit)),
        `replica ${report.replica} names a replica whose key was not stolen: ${culprits}`,
      );
    }
    process.stdout.write(
      `# culprits: ${reports.map((report) => `replica ${report.replica} names ${report.up ? report.safeModeCulprits : '?'}`).join('; ')}\n`,
    );
    const entered = logLines(test.replicaLog(replicaId(UNTOUCHED))).find(
      (line) => line.msg === 'safe-mode-entered' && line.timeMs >= sentAtMs,
    );
    assert.ok(entered !== undefined, 'replica 3 logged safe-mode-entered');
    assert.equal(entered.sequence, certified);

    // Reads of the certified state are still served (signed replies), flagged as what they are:
    // a snapshot that may be older than acknowledged writes, not a read of the current state...
    await assert.rejects(
      kv.get('before-0'),
      (error: unknown) =>
        error instanceof SafeModeSnapshotError &&
        error.code === 'safe-mode' &&
        decode(kv.snapshotValue(error)) === 'value 0' &&
        error.signedReplies.length >= 2,
    );
    // ...and writes are refused with a clear error.
    await assert.rejects(
      kv.put('after-fork', encode('refused')),
      (error: unknown) =>
        error instanceof PhalanxError && error.code === 'safe-mode' && /safe mode/.test(error.message),
    );
  });

  it('a whole cluster restarted with the same keys is in safe mode again at once, from the proof on its disks', async () => {
    await test.cluster.stopAll();
    await test.cluster.startAll();
    await test.cluster.waitUntilReady();
    const reports = await waitFor('every replica back in safe mode', async () => {
      const all = await test.status();
      return all.every((report) => report.up && report.safeMode === true) ? all : null;
    });
    for (const report of reports) {
      const entered = logLines(test.replicaLog(replicaId(report.replica))).filter(
        (line) => line.msg === 'safe-mode-entered',
      );
      // Entered again from its own disk, not only because a peer told it.
      assert.equal(entered.at(-1)?.source, 'stored proof', `replica ${report.replica}`);
    }
    const kv = await test.kv();
    await assert.rejects(
      kv.get('before-1'),
      (error: unknown) =>
        error instanceof SafeModeSnapshotError &&
        error.code === 'safe-mode' &&
        decode(kv.snapshotValue(error)) === 'value 1' &&
        error.signedReplies.length >= 2,
    );
    await assert.rejects(
      kv.put('after-restart', encode('refused')),
      (error: unknown) => error instanceof PhalanxError && error.code === 'safe-mode',
    );
  });

  it('leaves safe mode the documented way: stopped, new keys for every replica and client, a replaced host wiped, started again', async () => {
    // Steps 2-5 of "Leaving safe mode is an operator action" (docs/intrusion-tolerance.md). The
    // host of culprit 0 is replaced: its data directory and accountability log are wiped. The
    // others keep theirs (a quorum, 3 of 4, holding the certified checkpoint), re-sign it under
    // their new keys, and the replaced replica fetches it by state transfer.
    await test.cluster.stopAll();
    const previous = test.config;
    const replaced = replicaId(0);
    rmSync(replicaDataDirectory(previous, replaced), { recursive: true, force: true });
    rmSync(accountabilityLogPath(previous, replaced), { force: true });
    const { config, cluster, kv: connect, stop } = await startUnderNewConfiguration(test);
    try {
      const reports = await cluster.reports();
      assert.equal(reports.length, config.n);
      for (const replica of config.replicas) {
        const lines = logLines(readFileSync(cluster.replicaLogFile(replica.id), 'utf8'));
        // A kept replica found its stored proof and judged it: signed with the old keys, it proves
        // nothing now. The replaced one had none.
        assert.equal(
          lines.some((line) => line.msg === 'stored-safe-mode-unverified'),
          replica.id !== replaced,
          `replica ${replica.id} judged a stored proof`,
        );
      }
      const kv = await connect();
      await servesAfterLeavingSafeMode(kv);
      // The replaced replica holds the state: with one kept replica stopped, no quorum forms
      // without it, and it answers reads of what was written before the fork and after.
      await waitFor(`replica ${replaced} caught up`, async () => {
        const all = await cluster.reports();
        const executed = all.map((report) => (report.up ? report.lastExecuted : -1));
        return executed[replaced]! > 0 && executed.every((value) => value === executed[replaced])
          ? true
          : null;
      });
      // By the documented path: the kept replicas adopted their stored checkpoint once a quorum
      // re-signed it, and the replaced one fetched it.
      for (const replica of config.replicas) {
        const events = new Set(
          logLines(readFileSync(cluster.replicaLogFile(replica.id), 'utf8')).map((line) => line.msg),
        );
        const expected =
          replica.id === replaced ? 'state-transfer-completed' : 'restored-checkpoint-recertified';
        assert.ok(events.has(expected), `replica ${replica.id} logged ${expected}`);
      }
      await cluster.kill(replicaId(3));
      await kv.put('without-a-kept-replica', encode('accepted'));
      assert.equal(decode(await kv.get('before-3', { ordered: true })), 'value 3');
      assert.equal(decode(await kv.get('without-a-kept-replica', { ordered: true })), 'accepted');
    } finally {
      await stop();
    }
  });
});

/**
 * Beyond f without a fork: two replicas of n = 6 (f = 1) lie in every reply. A correct quorum
 * (Q = 4) still answers each write, so each client completes with the truth and holds a signed
 * lie of each liar beside a quorum of signed replies that contradict it: a lying-reply proof,
 * which it hands to every replica. Each replica verifies it and cuts the liar off; with proofs
 * against two replicas, more than f, it enters safe mode with a proof that names both (each by its
 * own proof: anyone with the public keys can check it) and refuses writes.
 */
describe('safe mode on real processes, when proofs name more than f replicas', { timeout: 240_000 }, () => {
  const LIARS = [4, 5] as const;
  let test: TestCluster;

  before(async () => {
    test = await startTestCluster({
      f: 1,
      k: 1,
      allowFaultInjection: true,
      faultModes: { [LIARS[0]]: 'lie-in-replies', [LIARS[1]]: 'lie-in-replies' },
    });
  });

  after(async () => {
    await test?.stop();
  });

  it('the correct replicas stop with a proof naming both liars and refuse writes', async () => {
    const kv = await test.kv();
    const startedMs = Date.now();
    // Each write completes with the correct quorum's answer while the proofs spread; once a
    // replica holds both, the writes it sees are refused.
    let refused: unknown = null;
    const reports = await waitFor('every correct replica in safe mode', async () => {
      if (refused === null) {
        try {
          await kv.put(`write-${Date.now()}`, encode('while the liars are proven'));
        } catch (error) {
          refused = error;
        }
      }
      const all = await test.status();
      const correct = all.filter((report) => !(LIARS as readonly number[]).includes(report.replica));
      return correct.every((report) => report.up && report.safeMode === true) ? correct : null;
    });
    for (const report of reports) {
      assert.ok(report.up);
      assert.deepEqual(report.safeModeCulprits, [...LIARS], `replica ${report.replica}'s culprits`);
      const entered = logLines(test.replicaLog(replicaId(report.replica))).find(
        (line) => line.msg === 'safe-mode-entered' && line.timeMs >= startedMs,
      );
      assert.ok(entered !== undefined, `replica ${report.replica} logged safe-mode-entered`);
    }
    process.stdout.write(
      `# safe mode from lying-reply proofs: ${reports.map((report) => `replica ${report.replica} (${report.up ? report.safeModeCulprits : '?'})`).join(', ')}\n`,
    );
    // From now on every write is refused with a clear error.
    await assert.rejects(
      kv.put('beyond-f', encode('refused')),
      (error: unknown) => error instanceof PhalanxError && error.code === 'safe-mode',
    );
    if (refused !== null)
      assert.ok(
        refused instanceof PhalanxError && refused.code === 'safe-mode',
        `a write during the spread failed otherwise: ${String(refused)}`,
      );
  });
});
