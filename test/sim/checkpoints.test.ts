import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { StoredCheckpoint } from '../../src/core/actions.js';
import { ClientTable } from '../../src/core/client-table.js';
import { clientId, digest, requestNumber, sequenceNumber } from '../../src/messages/ids.js';
import { LIMITS } from '../../src/messages/limits.js';
import { CheckpointChecker, SERVICE_CHUNK_SHARE } from '../../src/sim/checkers/checkpoints.js';
import { runSimulation, type SeedReport } from '../../src/sim/simulator.js';

function passed(report: SeedReport): boolean {
  return report.violations.length === 0 && report.livenessFailure === null;
}

function explain(report: SeedReport): string {
  return `seed ${report.seed}: ${[...report.violations, report.livenessFailure ?? ''].join(' | ')}`;
}

function checkpointOf(sequence: number, chunks: readonly Uint8Array[]): StoredCheckpoint {
  return {
    certificate: {
      sequence: sequenceNumber(sequence),
      stateRoot: digest(new Uint8Array(32).fill(sequence)),
      votes: [],
    },
    leaves: [],
    chunks,
  };
}

describe('clients cannot make a correct replica’s state unrepresentable', () => {
  it('the large-value client with a full-cluster restart: every checker passes (n = 4, f = 1)', () => {
    for (const seed of [1, 2]) {
      const report = runSimulation({ seed, n: 4, f: 1, largeValueClient: true, clusterRestart: true });
      assert.ok(passed(report), explain(report));
      assert.ok(report.clusterRestarted);
      const sent = report.largeValueRequests!;
      assert.ok(sent.reads >= 5 && sent.writes >= 1 && sent.unauthentic >= 1, JSON.stringify(sent));
      assert.ok(report.checkpointsChecked > 0, 'no checkpoint was checked');
      assert.ok(report.requestsCompleted > 50, `only ${report.requestsCompleted} requests completed`);
    }
  });

  it('a client table bucket split into parts survives restarts and state transfers', () => {
    // Seed 4 splits the table and transfers state three times around the cluster restart (seed 2
    // did before the request timers went per client, 2026-12-03; any change to the schedules may
    // move it).
    const report = runSimulation({
      seed: 4,
      n: 4,
      f: 1,
      largeValueClients: 3,
      clientTableChunks: 1,
      clusterRestart: true,
    });
    assert.ok(report.largestClientTableChunks > 1, 'the client table never split');
    assert.ok(passed(report), explain(report));
  });

  it('a full-cluster restart with crash faults only (n = 4, f = 1)', () => {
    const report = runSimulation({ seed: 21, n: 4, f: 1, byzantine: 'none', clusterRestart: true });
    assert.ok(passed(report), explain(report));
  });
});

describe('the checkpointability checker', () => {
  it('catches a service whose snapshot has a chunk over maxChunkBytes, and the replicas it kills', () => {
    const report = runSimulation({
      seed: 1,
      n: 4,
      f: 1,
      byzantine: 'none',
      brokenSnapshot: true,
      faultPhaseMs: 1000,
      livenessBoundMs: 1000,
    });
    const checker = report.violations.filter((violation) => violation.startsWith('checkpointable:'));
    assert.ok(checker.length > 0, explain(report));
    assert.match(checker[0]!, /service chunk \d+ of 4194305 bytes exceeds maxChunkBytes \(4194304\)/);
    // At their first checkpoint the replicas' own assertion fails; the run reports it and goes on.
    assert.ok(
      report.violations.some((violation) =>
        /^crash: correct replica \d threw .*exceeds maxChunkBytes/.test(violation),
      ),
      explain(report),
    );
  });

  it('judges a stored checkpoint whole: sizes, count, and a client table that restores', () => {
    const checker = new CheckpointChecker(2, 4);
    const table = new ClientTable(2, 4);
    table.record(clientId('alice'), requestNumber(1), {
      sequence: sequenceNumber(1),
      status: 'ok',
      result: new Uint8Array(10),
    });
    const service = [new Uint8Array(5)];
    assert.equal(checker.onCheckpoint(0, checkpointOf(1, [...table.chunks(), ...service])), null);
    assert.equal(checker.checkpointsChecked, 1);
    // The same root again is not checked twice.
    assert.equal(checker.onCheckpoint(1, checkpointOf(1, [...table.chunks(), ...service])), null);
    assert.equal(checker.checkpointsChecked, 1);
    assert.match(
      checker.onCheckpoint(
        0,
        checkpointOf(2, [...table.chunks(), new Uint8Array(LIMITS.maxChunkBytes + 1)]),
      )!,
      /^checkpointable: replica 0 checkpoint 2: state chunk 2 of 4194305 bytes exceeds maxChunkBytes/,
    );
    // One report per replica.
    assert.equal(checker.onCheckpoint(0, checkpointOf(3, [new Uint8Array(1)])), null);
    assert.match(
      checker.onCheckpoint(1, checkpointOf(4, [table.chunks()[1]!, table.chunks()[0]!]))!,
      /replica 1 checkpoint 4: its client table does not restore: state chunk 0 should start client table bucket 0/,
    );
    const many = Array.from({ length: LIMITS.maxManifestLeaves + 1 }, () => service[0]!);
    assert.match(checker.onCheckpoint(2, checkpointOf(5, many))!, /state has 65537 chunks, over 65536/);
  });

  it('judges the service after every batch against its share of a checkpoint', () => {
    const checker = new CheckpointChecker(2, 4);
    assert.equal(checker.afterBatch(0, 1, [new Uint8Array(LIMITS.maxChunkBytes)]), null);
    const tooMany = Array.from({ length: SERVICE_CHUNK_SHARE + 1 }, () => new Uint8Array(0));
    assert.match(
      checker.afterBatch(1, 2, tooMany)!,
      /replica 1 after sequence 2: service has 57345 chunks, over 57344/,
    );
    assert.equal(checker.batchesChecked, 2);
  });
});
