/**
 * Remote input that asks for much more than it sends is held to a budget per sender: a client
 * reading a large value over and over, and a replica asking for the same state chunks again and
 * again. Written from the attacker's side: the flood gets at most the budget, an honest sender
 * next to it is untouched, and the refusal is logged once, not once per request.
 */
import * as assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import type { Action } from '../../src/core/actions.js';
import { replicaId, sequenceNumber } from '../../src/messages/ids.js';
import {
  READ_ONLY_REQUESTS_PER_CLIENT_PER_SECOND,
  REPLY_BYTES_BURST_PER_CLIENT,
  REPLY_BYTES_PER_CLIENT_PER_SECOND,
  STATE_BYTES_SERVED_BURST_PER_REPLICA,
} from '../../src/core/replica.js';
import { SenderBudgets } from '../../src/core/token-bucket.js';
import { Harness, kv } from './harness.js';

function replyBytes(actions: readonly Action[]): number {
  let total = 0;
  for (const action of actions) if (action.kind === 'reply') total += action.reply.result.length;
  return total;
}

describe('sender budgets', () => {
  test('a bucket never grants more than its burst plus its rate times the time elapsed', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({ units: fc.integer({ min: 1, max: 300 }), waitMs: fc.integer({ min: 0, max: 200 }) }),
          {
            maxLength: 200,
          },
        ),
        (requests) => {
          const budgets = new SenderBudgets<string>({ ratePerSecond: 1000, burst: 500, maxSenders: 4 });
          let now = 0;
          let granted = 0;
          for (const request of requests) {
            now += request.waitMs;
            if (budgets.take('a', request.units, now) === 'granted') granted += request.units;
          }
          assert.ok(granted <= 500 + now, `granted ${granted} in ${now} ms`);
        },
      ),
    );
  });

  test('reports the first refusal of an episode only, and grants again once refilled', () => {
    const budgets = new SenderBudgets<string>({ ratePerSecond: 100, burst: 100, maxSenders: 4 });
    assert.equal(budgets.take('a', 100, 0), 'granted');
    assert.equal(budgets.take('a', 1, 0), 'refused-first');
    assert.equal(budgets.take('a', 1, 0), 'refused');
    assert.equal(budgets.take('b', 50, 0), 'granted', 'another sender has its own budget');
    assert.equal(budgets.take('a', 50, 500), 'granted');
    assert.equal(budgets.take('a', 60, 500), 'refused-first');
  });
});

describe('a replica under a reading flood', () => {
  test('sends one client at most its reply budget of a large value, and nothing it asks costs another client', () => {
    const cluster = new Harness();
    // Harness replicas grant access to the clients they were built with: bob floods, carol is honest.
    const mallory = cluster.client('bob');
    const alice = cluster.client('carol');
    const large = 'x'.repeat(512 * 1024);
    cluster.execute(mallory.request(kv.put('big', large)));
    const replica = 1;
    let sent = 0;
    const logged: Action[] = [];
    for (let index = 0; index < 400; index++) {
      const actions = cluster.step(replica, {
        kind: 'client-request',
        request: mallory.request(kv.get('big'), { readOnly: true }),
      });
      sent += replyBytes(actions);
      logged.push(...actions.filter((action) => action.kind === 'log' && action.event === 'budget-exceeded'));
    }
    assert.ok(sent <= REPLY_BYTES_BURST_PER_CLIENT, `sent ${sent} bytes`);
    assert.ok(sent >= REPLY_BYTES_BURST_PER_CLIENT / 2, 'the budget is spent, not refused at once');
    assert.equal(logged.length, 1, 'one log line for the whole flood');

    // An honest client is answered meanwhile.
    const honest = cluster.step(replica, {
      kind: 'client-request',
      request: alice.request(kv.get('big'), { readOnly: true }),
    });
    assert.equal(honest.filter((action) => action.kind === 'reply').length, 1);

    // A second later the budget has refilled by its rate.
    cluster.tick(1000);
    let later = 0;
    for (let index = 0; index < 200; index++) {
      later += replyBytes(
        cluster.step(replica, {
          kind: 'client-request',
          request: mallory.request(kv.get('big'), { readOnly: true }),
        }),
      );
    }
    assert.ok(later > 0 && later <= REPLY_BYTES_PER_CLIENT_PER_SECOND + 1024 * 1024, `then ${later} bytes`);
  });

  test('executes at most its read-only request budget per second for one client', () => {
    const cluster = new Harness();
    const mallory = cluster.client('bob');
    let replies = 0;
    for (let index = 0; index < READ_ONLY_REQUESTS_PER_CLIENT_PER_SECOND + 500; index++) {
      const actions = cluster.step(2, {
        kind: 'client-request',
        request: mallory.request(kv.get('absent'), { readOnly: true }),
      });
      replies += actions.filter((action) => action.kind === 'reply').length;
    }
    assert.equal(replies, READ_ONLY_REQUESTS_PER_CLIENT_PER_SECOND);
  });
});

describe('a replica asked for its state over and over', () => {
  test('serves one peer at most its state budget however often it asks for the same chunks', () => {
    const cluster = new Harness();
    const alice = cluster.client('alice');
    // Enough state for a few large chunks, then a stable checkpoint to serve.
    for (let index = 0; index < 4; index++)
      cluster.execute(alice.request(kv.put(`large-${index}`, 'y'.repeat(900 * 1024))));
    const stable = cluster.replica(0).stableCheckpoint.sequence;
    assert.ok(stable > 0);
    const manifest = cluster
      .deliver(3, 0, { kind: 'manifest-request', sequence: sequenceNumber(stable) })
      .flatMap((action) =>
        action.kind === 'send' && action.message.kind === 'manifest' ? [action.message] : [],
      );
    assert.equal(manifest.length, 1);
    const indices = manifest[0]!.leaves.map((_, index) => index);
    let served = 0;
    let perRound = 0;
    for (let round = 0; round < 200; round++) {
      const actions = cluster.deliver(3, 0, {
        kind: 'chunk-request',
        sequence: sequenceNumber(stable),
        indices,
      });
      for (const action of actions)
        if (action.kind === 'send' && action.message.kind === 'chunk' && action.to === replicaId(3))
          served += action.message.data.length;
      if (round === 0) perRound = served;
    }
    assert.ok(
      perRound * 200 > 2 * STATE_BYTES_SERVED_BURST_PER_REPLICA,
      'unbudgeted, the flood would get far more',
    );
    assert.ok(served <= STATE_BYTES_SERVED_BURST_PER_REPLICA + 4 * 1024 * 1024, `served ${served} bytes`);
    assert.ok(served > 0);
  });
});
