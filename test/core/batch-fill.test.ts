/**
 * The leader's batch fill: a leader that proposes one request per batch however many wait keeps a
 * perfect turnaround and still halves throughput (`phalanx bench attack`, small-batches, 0.45).
 * Backups count the clients each new batch with room left out among requests every correct backup
 * had told the leader it holds, and replace a leader whose median count reaches the limit; a leader
 * that fills its batches, or whose batches are full, is never blamed, and faulty clients that give
 * the leader and the backups different requests cannot make a correct leader look as if it left
 * them out.
 */
import * as assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { protocolUnderFaultMode } from '../../src/adversary/catalogue.js';
import {
  LeaderPace,
  MAX_FILL_BACKOFF,
  MIN_LEFT_OUT_CLIENTS,
  MIN_TURNAROUND_SAMPLES,
  TURNAROUND_WINDOW,
} from '../../src/core/leader-pace.js';
import type { ClientRequest } from '../../src/messages/types.js';
import { Harness, type HarnessClient, kv } from './harness.js';

const CONFIG = { floorMs: 150, ceilingMs: 2000, historyViews: 2, pipelineDepth: 1 };

describe('batch fill (unit)', () => {
  test('judges nobody before MIN_TURNAROUND_SAMPLES batches, then the median against the limit', () => {
    const pace = new LeaderPace(CONFIG);
    pace.viewStarted(0);
    const verdicts = Array.from({ length: MIN_TURNAROUND_SAMPLES }, () => pace.observeFill(5));
    assert.deepEqual(
      verdicts.slice(0, -1).map((verdict) => verdict.kind),
      Array<string>(MIN_TURNAROUND_SAMPLES - 1).fill('filled'),
    );
    assert.deepEqual(verdicts.at(-1), {
      kind: 'leaves-out',
      medianClients: 5,
      limit: MIN_LEFT_OUT_CLIENTS,
      samples: MIN_TURNAROUND_SAMPLES,
    });
  });

  test('a few batches with clients left out among filled ones blame nobody (the median, not the maximum)', () => {
    const pace = new LeaderPace(CONFIG);
    pace.viewStarted(0);
    for (const count of [0, 9, 0, 9, 0, 0, 9, 0]) assert.equal(pace.observeFill(count).kind, 'filled');
    assert.equal(pace.report.leftOutClientsMedian, 0);
    // One client left out again and again is below the limit too (a race, or a faulty client).
    for (let index = 0; index < TURNAROUND_WINDOW; index++)
      assert.equal(pace.observeFill(MIN_LEFT_OUT_CLIENTS - 1).kind, 'filled');
  });

  test('the limit doubles per blame up to its bound and halves for each view that kept it', () => {
    const pace = new LeaderPace(CONFIG);
    for (let blame = 0; blame < 20; blame++) pace.blamedForFill();
    assert.equal(pace.leftOutClientsLimit, MIN_LEFT_OUT_CLIENTS * MAX_FILL_BACKOFF);
    pace.viewStarted(0);
    for (let index = 0; index < TURNAROUND_WINDOW; index++) pace.observeFill(0);
    pace.viewStarted(100);
    assert.equal(pace.leftOutClientsLimit, (MIN_LEFT_OUT_CLIENTS * MAX_FILL_BACKOFF) / 2);
    // A view too short to judge keeps the bar where it is.
    pace.viewStarted(200);
    assert.equal(pace.leftOutClientsLimit, (MIN_LEFT_OUT_CLIENTS * MAX_FILL_BACKOFF) / 2);
  });

  test('floor 0 turns the check off', () => {
    const pace = new LeaderPace({ ...CONFIG, floorMs: 0 });
    pace.viewStarted(0);
    for (let index = 0; index < 10; index++) assert.equal(pace.observeFill(100).kind, 'filled');
  });

  test('the leader could propose a sequence once the one pipelineDepth below it executed here', () => {
    const pace = new LeaderPace({ ...CONFIG, pipelineDepth: 2 });
    pace.viewStarted(100);
    assert.equal(pace.openedAt(1), 100);
    assert.equal(pace.openedAt(3), null);
    pace.executed(1, 250);
    assert.equal(pace.openedAt(3), 250);
    pace.stabilized(300);
    assert.equal(pace.openedAt(3), 300);
  });

  test('property: counts always below the limit never blame a leader', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 1000 }), { maxLength: 80 }), (counts) => {
        const pace = new LeaderPace(CONFIG);
        pace.viewStarted(0);
        return counts.every(
          (count) => pace.observeFill(Math.min(count, pace.leftOutClientsLimit - 1)).kind === 'filled',
        );
      }),
    );
  });
});

const CLIENTS = ['alice', 'bob', 'carol', 'dave', 'erin', 'frank'];

/**
 * Closed-loop clients, each with one request outstanding: every PRE-PREPARE is held for
 * `holdMs` before it is delivered (time passes between batches, as on a real network), and each
 * client keeps `inFlight` requests not yet executed at every replica. `rounds` batches' worth.
 */
function runClosedLoop(
  cluster: Harness,
  clients: readonly HarnessClient[],
  rounds: number,
  holdMs: number,
  inFlight = 1,
): void {
  const outstanding = new Map<HarnessClient, ClientRequest[]>(clients.map((client) => [client, []]));
  let counter = 0;
  // Proposals made while the released ones are delivered wait for the next round.
  const released = new Set<unknown>();
  cluster.filter = (envelope) =>
    envelope.message.kind === 'pre-prepare' && !released.has(envelope) ? 'hold' : 'deliver';
  for (let round = 0; round < rounds; round++) {
    for (const client of clients) {
      const waiting = outstanding
        .get(client)!
        .filter((request) => !cluster.ids.every((id) => cluster.executionOf(id, request)));
      while (waiting.length < inFlight) {
        const next = client.request(kv.put(`${client.id}-${counter}`, `${counter++}`));
        waiting.push(next);
        cluster.submit(next);
      }
      outstanding.set(client, waiting);
    }
    cluster.run();
    cluster.advance(holdMs, holdMs);
    for (const envelope of cluster.held) released.add(envelope);
    cluster.release();
    cluster.run();
  }
  cluster.filter = null;
  cluster.release();
  cluster.run();
}

const leftOutReasons = (cluster: Harness, id: number): string[] =>
  cluster
    .logs(id, 'view-change-started')
    .map((log) => String(log.details.reason))
    .filter((reason) => reason.startsWith('leader left requests out'));

describe('batch fill in the replica', () => {
  test('a leader that proposes one request per batch (small-batches) is replaced by its backups', () => {
    const cluster = new Harness({
      config: { pipelineDepth: 1 },
      clients: CLIENTS,
      replicaConfig: (config, id) => (id === 0 ? protocolUnderFaultMode(config, 'small-batches') : config),
    });
    runClosedLoop(
      cluster,
      CLIENTS.map((name) => cluster.client(name)),
      12,
      20,
    );
    assert.ok(
      cluster.advanceUntil(() => cluster.ids.every((id) => cluster.replica(id).view >= 1), 3000),
      'every replica moved past view 0',
    );
    for (const backup of [1, 2, 3]) {
      assert.match(
        leftOutReasons(cluster, backup)[0] ?? '',
        /^leader left requests out: a median of [2-5] clients over its last [3-5] batches with room, at most 1 expected$/,
        `backup ${backup} blames the leader for what it left out`,
      );
      assert.ok(cluster.suspicions(backup).some((suspicion) => suspicion.replica === 0));
    }
    // Neither its pace nor a request timer gave it away: only what it left out did.
    for (const backup of [1, 2, 3]) {
      const reasons = cluster.logs(backup, 'view-change-started').map((log) => String(log.details.reason));
      assert.ok(
        !reasons.some((reason) => reason.startsWith('request ') || reason.startsWith('leader turnaround')),
      );
    }
    // The other backups were told what it left out: the announcements went to backups only.
    const announcements = cluster.sent.filter(
      (envelope) => envelope.message.kind === 'request-ack' && envelope.from !== 0 && envelope.to !== 0,
    );
    assert.ok(announcements.length > 0);
    // And the next leader goes on.
    const after = cluster.client('alice').request(kv.put('after', 'yes'));
    cluster.execute(after);
    assert.ok(cluster.advanceUntil(() => cluster.ids.every((id) => cluster.executionOf(id, after)), 3000));
  });

  test('the same leader with the check off (floor 0) is replaced by nobody', () => {
    const cluster = new Harness({
      config: { pipelineDepth: 1, leaderTurnaroundFloorMs: 0 },
      clients: CLIENTS,
      replicaConfig: (config, id) => (id === 0 ? protocolUnderFaultMode(config, 'small-batches') : config),
    });
    runClosedLoop(
      cluster,
      CLIENTS.map((name) => cluster.client(name)),
      12,
      20,
    );
    assert.ok(cluster.ids.every((id) => cluster.replica(id).view === 0));
  });

  test('a leader that fills its batches is never blamed, nor one whose batches are full', () => {
    for (const maxBatchRequests of [8, 2]) {
      const cluster = new Harness({ config: { pipelineDepth: 1, maxBatchRequests }, clients: CLIENTS });
      runClosedLoop(
        cluster,
        CLIENTS.map((name) => cluster.client(name)),
        16,
        20,
      );
      assert.ok(
        cluster.ids.every((id) => cluster.replica(id).view === 0),
        `maxBatchRequests ${maxBatchRequests}`,
      );
      for (const backup of [1, 2, 3]) {
        assert.deepEqual(leftOutReasons(cluster, backup), []);
        const report = cluster.replica(backup).leaderPace;
        // Full batches (2 of 6 clients) count nobody; filled ones leave nobody out.
        assert.ok(report.leftOutClientsMedian === null || report.leftOutClientsMedian === 0);
      }
    }
  });

  test("a request waiting for acknowledgements holds its client's later ones back for the grace, then no longer", () => {
    const cluster = new Harness({ config: { pipelineDepth: 1 } });
    const alice = cluster.client('alice');
    const first = alice.request(kv.put('first', '1'));
    const second = alice.request(kv.put('second', '2'));
    // The first reaches the leader and one backup only: too few acknowledge it to propose it.
    cluster.submit(first, [0, 1]);
    cluster.execute(second);
    assert.equal(cluster.executionOf(0, second), undefined, 'held back behind the first at once');
    const graceMs = cluster.config.leaderTurnaroundFloorMs / 10;
    assert.ok(
      cluster.advanceUntil(() => cluster.ids.every((id) => cluster.executionOf(id, second)), 2 * graceMs, 5),
      'proposed on its own once the first waited the grace out',
    );
    assert.equal(cluster.executionOf(0, first), undefined);
    // The first is spread at half a request timeout and ordered then.
    assert.ok(cluster.advanceUntil(() => cluster.ids.every((id) => cluster.executionOf(id, first)), 2000));
  });

  test('faulty clients that give their first request to too few replicas cannot frame a correct leader', () => {
    // Each faulty client's first request goes to the leader and one backup only (it waits for
    // acknowledgements it will not get until it is spread), its later ones to everybody: the
    // leader proposes those later ones, the first does not hold them back.
    const cluster = new Harness({ config: { pipelineDepth: 1 }, clients: [...CLIENTS, 'mallory', 'trudy'] });
    const faulty = new Set(['mallory', 'trudy'].map((name) => cluster.client(name)));
    for (const client of faulty) cluster.submit(client.request(kv.put(`${client.id}-first`, 'x')), [0, 1]);
    runClosedLoop(
      cluster,
      [...CLIENTS, 'mallory', 'trudy'].map((name) => cluster.client(name)),
      20,
      20,
    );
    assert.ok(cluster.ids.every((id) => cluster.replica(id).view === 0));
    for (const backup of [1, 2, 3]) assert.deepEqual(leftOutReasons(cluster, backup), []);
    // Their later requests were ordered while the first waited.
    for (const client of faulty) assert.ok(cluster.replies(String(client.id)).length >= 2);
  });
});

describe('a client with its whole window in flight', () => {
  test('waits for its own requests in turn without the backups blaming a correct leader for it', () => {
    // Request timeout 1000 ms, a batch every 100 ms. The others keep requests queued, so bob's
    // fair share is a few per batch, and his last of 64 requests waits well over a second from
    // its arrival: timed from it, the backups blamed the correct leader.
    const cluster = new Harness({ config: { pipelineDepth: 1, maxOutstandingPerClient: 64 } });
    const bob = cluster.client('bob');
    const flood = Array.from({ length: cluster.config.maxOutstandingPerClient }, (_, index) =>
      bob.request(kv.put(`bob/${index}`, 'v')),
    );
    for (const request of flood) cluster.submit(request);
    runClosedLoop(
      cluster,
      ['alice', 'carol', 'dave'].map((name) => cluster.client(name)),
      40,
      100,
      2,
    );
    assert.ok(cluster.ids.every((id) => flood.every((request) => cluster.executionOf(id, request))));
    // His requests went over more than a request timeout's worth of batches.
    const batches = new Set(flood.map((request) => cluster.executionOf(0, request)!.sequence));
    assert.ok(batches.size > cluster.config.requestTimeoutMs / 100, `${batches.size} batches`);
    for (const id of cluster.ids) {
      assert.equal(cluster.replica(id).view, 0);
      assert.deepEqual(cluster.logs(id, 'view-change-started'), []);
    }
    // Nor were his requests spread to everybody as if some replica lacked them.
    assert.equal(cluster.sent.filter((envelope) => envelope.message.kind === 'forward').length, 0);
  });
});
