/**
 * A hostile client tries to get a correct leader blamed. MACs are per replica, so a client can make
 * a request authentic for some replicas and not for others, and choose who receives it. None of
 * that may make a correct replica suspect the leader: requests are sent to every replica, the
 * leader proposes one only once Q − 1 backups hold it, and a backup blames the leader only for a
 * request 2f + 1 replicas hold. What the client can still do is get its own request ignored.
 */
import * as assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ClientRequest } from '../../src/messages/types.js';
import { Harness, kv } from './harness.js';

/** The request with its MACs spoiled for every replica but `valid`, and no signature to fall back on. */
function authenticOnlyFor(request: ClientRequest, valid: readonly number[]): ClientRequest {
  return {
    ...request,
    signature: null,
    authenticator: request.authenticator.map((entry, replica) =>
      valid.includes(replica) ? entry : { ...entry, mac: entry.mac.map((byte) => byte ^ 0xff) },
    ),
  };
}

function noSuspicions(cluster: Harness): void {
  for (const id of cluster.ids) assert.deepEqual(cluster.suspicions(id), [], `replica ${id} suspects nobody`);
  for (const id of cluster.ids) assert.equal(cluster.replica(id).view, 0, `replica ${id} stayed in view 0`);
}

describe('a client trying to get the correct leader blamed', () => {
  test('a request authentic for the leader alone, sent to the leader alone: it is refused, nobody is suspected', () => {
    const cluster = new Harness();
    const mallory = cluster.client('bob');
    const alice = cluster.client('alice');
    const attack = authenticOnlyFor(mallory.request(kv.put('m', '1')), [0]);
    cluster.submit(attack, [0]);
    // Honest work goes on meanwhile, before and after the leader gives up on the request.
    cluster.advance(cluster.config.requestTimeoutMs / 2);
    const honest = alice.request(kv.put('a', '1'));
    cluster.execute(honest);
    cluster.advance(cluster.config.requestTimeoutMs * 3);
    const later = alice.request(kv.put('a', '2'));
    cluster.execute(later);
    for (const id of cluster.ids) {
      assert.equal(cluster.executionOf(id, attack), undefined);
      assert.ok(
        cluster.executionOf(id, honest) !== undefined && cluster.executionOf(id, later) !== undefined,
      );
    }
    noSuspicions(cluster);
    assert.equal(cluster.logs(0, 'request-refused').length, 1, 'the leader refused the request, logged once');
    // The client's properly sent requests are served as ever.
    const next = mallory.request(kv.put('m', '2'));
    cluster.execute(next);
    assert.ok(cluster.executionOf(0, next) !== undefined);
    noSuspicions(cluster);
  });

  test('a request authentic for the leader alone, sent to every replica: each backup got it from the client, so it executes', () => {
    const cluster = new Harness();
    const mallory = cluster.client('bob');
    const request = authenticOnlyFor(mallory.request(kv.put('m', '1')), [0]);
    cluster.execute(request);
    for (const id of cluster.ids) assert.ok(cluster.executionOf(id, request) !== undefined);
    noSuspicions(cluster);
  });

  test('a request the leader and f backups got (authentic for them alone) spreads by their forwards and executes', () => {
    const cluster = new Harness();
    const mallory = cluster.client('bob');
    const request = authenticOnlyFor(mallory.request(kv.put('m', '1')), [0, 1]);
    cluster.submit(request, [0, 1]);
    assert.ok(
      cluster.advanceUntil(
        () => cluster.ids.every((id) => cluster.executionOf(id, request) !== undefined),
        cluster.config.requestTimeoutMs,
      ),
    );
    noSuspicions(cluster);
  });

  test('a different request for each backup alone (authentic for that backup only) blames nobody, and is forgotten', () => {
    const cluster = new Harness();
    const mallory = cluster.client('bob');
    const attacks = [1, 2, 3].map((backup) => {
      const request = authenticOnlyFor(mallory.request(kv.put(`m${backup}`, '1')), [backup]);
      cluster.submit(request, [backup]);
      return request;
    });
    cluster.advance(cluster.config.requestTimeoutMs * 6);
    for (const request of attacks)
      for (const id of cluster.ids) assert.equal(cluster.executionOf(id, request), undefined);
    noSuspicions(cluster);
    for (const id of cluster.ids)
      assert.equal(cluster.replica(id).pendingRequestCount, 0, `replica ${id} forgot them`);
  });

  test('a correct client whose requests reach every replica is served at once, with no forwarding', () => {
    const cluster = new Harness();
    const alice = cluster.client('alice');
    const request = alice.request(kv.put('a', '1'));
    cluster.execute(request);
    for (const id of cluster.ids) assert.ok(cluster.executionOf(id, request) !== undefined);
    assert.equal(
      cluster.sent.filter((envelope) => envelope.message.kind === 'forward').length,
      0,
      'no request body travels between replicas',
    );
  });
});
