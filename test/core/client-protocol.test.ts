import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  type ClientAction,
  type ClientProtocolConfig,
  ClientSession,
} from '../../src/core/client-protocol.js';
import {
  type ClientId,
  clientId,
  InvariantViolation,
  keyEpoch,
  MAC_BYTES,
  replicaId,
  requestNumber,
  sequenceNumber,
  signature,
  viewNumber,
} from '../../src/messages/ids.js';
import type { ClientRequest, Reply, ReplyStatus } from '../../src/messages/types.js';

/** n = 4, f = 1: quorum 3, f + 1 = 2. */
const config: ClientProtocolConfig = {
  n: 4,
  f: 1,
  k: 0,
  retransmitTimeoutMs: 100,
  maxRetransmitTimeoutMs: 400,
  readOnlyTimeoutMs: 50,
  maxOutstanding: 4,
  replyWindow: 8,
};

const alice = clientId('alice');
const encoder = new TextEncoder();

/**
 * A session whose authenticate callback fills a dummy authenticator whose key epoch counts the
 * calls, so a re-authenticated request is recognisable.
 */
function session(overrides: Partial<ClientProtocolConfig> = {}) {
  let authentications = 0;
  const client = new ClientSession({ ...config, ...overrides }, alice, (unsigned) => {
    authentications++;
    return {
      ...unsigned,
      authenticator: Array.from({ length: config.n }, () => ({
        keyEpoch: keyEpoch(authentications),
        mac: new Uint8Array(MAC_BYTES),
      })),
      signature: null,
    };
  });
  return { client, authentications: () => authentications };
}

/** The request of the single send action (to the leader or to all replicas). */
function sentRequest(actions: readonly ClientAction[]): ClientRequest {
  assert.equal(actions.length, 1, `expected one action, got ${JSON.stringify(actions.map((a) => a.kind))}`);
  const [action] = actions;
  if (action!.kind !== 'send-all' && action!.kind !== 'send')
    assert.fail(`expected a send, got ${action!.kind}`);
  return action!.request;
}

function replyFrom(
  replica: number,
  request: Pick<ClientRequest, 'requestNumber' | 'readOnly'>,
  result: string,
  options: { status?: ReplyStatus; client?: ClientId; sequence?: number; view?: number } = {},
): Reply {
  return {
    kind: 'reply',
    view: viewNumber(options.view ?? 0),
    replicaId: replicaId(replica),
    clientId: options.client ?? alice,
    requestNumber: request.requestNumber,
    readOnly: request.readOnly,
    sequence: sequenceNumber(options.sequence ?? 5),
    status: options.status ?? 'ok',
    result: encoder.encode(result),
    proof: null,
  };
}

/**
 * `reply` as a replica in safe mode sends it: signed (a one-leaf reply proof; only a replica in
 * safe mode signs a read-only reply). The session does not check the signature.
 */
function signedReadReply(reply: Reply): Reply {
  return {
    ...reply,
    proof: {
      keyEpoch: keyEpoch(0),
      signature: signature(new Uint8Array(64)),
      leafIndex: 0,
      leafCount: 1,
      path: [],
    },
  };
}

/** Feeds replies in order; returns the actions of each. */
function feed(client: ClientSession, replies: readonly Reply[], now = 1): ClientAction[][] {
  return replies.map((reply) => client.onReply(reply, now));
}

describe('ClientSession ordered requests', () => {
  it('sends every request to every replica: ordered and read-only ones, and retransmissions', () => {
    const { client } = session();
    // Backups must hold an ordered request from its client: the leader proposes it only once
    // Q − 1 of them say so, so no client can make a backup take it on the leader's word alone.
    const ordered = client.invoke(encoder.encode('put x 1'), { readOnly: false }, 0);
    assert.equal(ordered.actions[0]!.kind, 'send-all');
    const read = client.invoke(encoder.encode('get x'), { readOnly: true }, 0);
    assert.equal(read.actions[0]!.kind, 'send-all');
    client.abandon(read.invocation);
    const retransmission = client.tick(10_000);
    assert.ok(retransmission.length >= 1 && retransmission.every((action) => action.kind === 'send-all'));
  });

  it('sends the request with a fresh request number', () => {
    const { client } = session();
    const first = client.invoke(encoder.encode('put x 1'), { readOnly: false }, 0);
    const request = sentRequest(first.actions);
    assert.equal(request.clientId, alice);
    assert.equal(request.requestNumber, 1);
    assert.equal(request.readOnly, false);
    assert.deepEqual(request.operation, encoder.encode('put x 1'));
    assert.equal(request.authenticator.length, config.n);
    const second = client.invoke(encoder.encode('put x 2'), { readOnly: false }, 0);
    assert.equal(sentRequest(second.actions).requestNumber, 2);
    assert.notEqual(second.invocation, first.invocation);
    assert.equal(client.outstanding, 2);
    assert.equal(client.nextRequestNumber, 3);
  });

  it('cuts off a replica it proved lying: one report, and its replies count again only under a later key epoch', () => {
    const { client } = session();
    const signed = (replica: number, request: ClientRequest, result: string, sequence: number): Reply => ({
      ...replyFrom(replica, request, result, { sequence }),
      proof: {
        keyEpoch: keyEpoch(0),
        signature: signature(new Uint8Array(64)),
        leafIndex: 0,
        leafCount: 1,
        path: [],
      },
    });
    const completed = (actions: readonly ClientAction[][]): boolean =>
      actions.flat().some((action) => action.kind === 'complete');
    const first = sentRequest(client.invoke(encoder.encode('put x 1'), { readOnly: false }, 0).actions);
    const reported = feed(client, [
      signed(3, first, 'a lie', 5),
      signed(0, first, 'ok', 5),
      signed(1, first, 'ok', 5),
      signed(2, first, 'ok', 5),
    ])
      .flat()
      .filter((action) => action.kind === 'report-evidence');
    assert.equal(reported.length, 1);
    assert.deepEqual([...client.cutOff], [[3, 0]]);
    // Its next reply, true or not, does not make the quorum: replicas 0, 1 and 3 are not three.
    const second = sentRequest(client.invoke(encoder.encode('put x 2'), { readOnly: false }, 0).actions);
    assert.ok(
      !completed(
        feed(client, [signed(0, second, 'ok', 6), signed(1, second, 'ok', 6), signed(3, second, 'ok', 6)]),
      ),
    );
    assert.ok(completed(feed(client, [signed(2, second, 'ok', 6)])));
    client.replicaRejuvenated(replicaId(3), keyEpoch(0));
    assert.equal(client.cutOff.size, 1, 'the epoch of the proof is no rejuvenation');
    client.replicaRejuvenated(replicaId(3), keyEpoch(1));
    assert.equal(client.cutOff.size, 0);
    const third = sentRequest(client.invoke(encoder.encode('put x 3'), { readOnly: false }, 0).actions);
    assert.ok(
      completed(
        feed(client, [signed(0, third, 'ok', 7), signed(1, third, 'ok', 7), signed(3, third, 'ok', 7)]),
      ),
    );
  });

  it('completes only with a quorum of matching replies: f + 1 is not enough', () => {
    const { client } = session();
    const { invocation, actions } = client.invoke(encoder.encode('op'), { readOnly: false }, 0);
    const request = sentRequest(actions);
    const [afterFirst, afterSecond, afterThird] = feed(client, [
      replyFrom(0, request, 'done'),
      replyFrom(1, request, 'done'),
      replyFrom(2, request, 'done'),
    ]);
    assert.deepEqual(afterFirst, []);
    assert.deepEqual(afterSecond, []);
    assert.deepEqual(afterThird, [
      {
        kind: 'complete',
        invocation,
        status: 'ok',
        result: encoder.encode('done'),
        sequence: 5,
        fastPath: false,
      },
    ]);
    assert.equal(client.outstanding, 0);
    // A late fourth reply finds nothing to complete.
    assert.deepEqual(client.onReply(replyFrom(3, request, 'done'), 2), []);
  });

  it('is not completed by a mismatching reply of a Byzantine replica, and completes on the honest quorum', () => {
    const { client } = session();
    const { invocation, actions } = client.invoke(encoder.encode('op'), { readOnly: false }, 0);
    const request = sentRequest(actions);
    const results = feed(client, [
      replyFrom(3, request, 'forged'),
      replyFrom(0, request, 'honest'),
      replyFrom(1, request, 'honest'),
      // Same bytes but another status does not match either.
      replyFrom(2, request, 'honest', { status: 'error' }),
    ]);
    assert.ok(results.every((actions) => actions.length === 0));
    assert.equal(client.outstanding, 1);
    // Replica 2 corrects itself (a later reply replaces its earlier one).
    const [completion] = feed(client, [replyFrom(2, request, 'honest')]);
    assert.deepEqual(completion, [
      {
        kind: 'complete',
        invocation,
        status: 'ok',
        result: encoder.encode('honest'),
        sequence: 5,
        fastPath: false,
      },
    ]);
  });

  it('counts duplicate replies from one replica once', () => {
    const { client } = session();
    const request = sentRequest(client.invoke(encoder.encode('op'), { readOnly: false }, 0).actions);
    const results = feed(client, [
      replyFrom(0, request, 'done'),
      replyFrom(0, request, 'done'),
      replyFrom(0, request, 'done'),
      replyFrom(1, request, 'done'),
      replyFrom(1, request, 'done'),
    ]);
    assert.ok(results.every((actions) => actions.length === 0));
    assert.equal(client.outstanding, 1);
    assert.equal(client.onReply(replyFrom(2, request, 'done'), 2)[0]?.kind, 'complete');
  });

  it('ignores replies for other clients, unknown request numbers, unknown replicas or the other path', () => {
    const { client } = session();
    const request = sentRequest(client.invoke(encoder.encode('op'), { readOnly: false }, 0).actions);
    const ignored = feed(client, [
      ...[0, 1, 2, 3].map((replica) => replyFrom(replica, request, 'done', { client: clientId('bob') })),
      ...[0, 1, 2, 3].map((replica) =>
        replyFrom(replica, { requestNumber: requestNumber(99), readOnly: false }, 'done'),
      ),
      ...[0, 1, 2, 3].map((replica) => replyFrom(replica, { ...request, readOnly: true }, 'done')),
      replyFrom(4, request, 'done'),
      replyFrom(17, request, 'done'),
      replyFrom(0, request, 'done'),
    ]);
    assert.ok(ignored.every((actions) => actions.length === 0));
    assert.equal(client.outstanding, 1);
    // Only replica 0's reply counted so far: two more real ones complete it.
    assert.deepEqual(client.onReply(replyFrom(1, request, 'done'), 2), []);
    assert.equal(client.onReply(replyFrom(2, request, 'done'), 2)[0]?.kind, 'complete');
  });

  it('tracks the highest view seen in replies', () => {
    const { client } = session();
    const request = sentRequest(client.invoke(encoder.encode('op'), { readOnly: false }, 0).actions);
    feed(client, [replyFrom(0, request, 'a', { view: 3 }), replyFrom(1, request, 'b', { view: 2 })]);
    assert.equal(client.view, 3);
  });

  it('ignores replies for an abandoned request', () => {
    const { client } = session();
    const { invocation, actions } = client.invoke(encoder.encode('op'), { readOnly: false }, 0);
    const request = sentRequest(actions);
    client.abandon(invocation);
    assert.equal(client.outstanding, 0);
    const results = feed(
      client,
      [0, 1, 2, 3].map((replica) => replyFrom(replica, request, 'done')),
    );
    assert.ok(results.every((result) => result.length === 0));
  });
});

describe('ClientSession retransmission', () => {
  it('retransmits after retransmitTimeoutMs, doubling up to maxRetransmitTimeoutMs, re-authenticated', () => {
    const { client, authentications } = session();
    const original = sentRequest(client.invoke(encoder.encode('op'), { readOnly: false }, 0).actions);
    assert.equal(authentications(), 1);
    const retransmittedAt: number[] = [];
    const epochs: number[] = [];
    for (let now = 0; now <= 2000; now += 10) {
      const actions = client.tick(now);
      if (actions.length === 0) continue;
      const request = sentRequest(actions);
      retransmittedAt.push(now);
      epochs.push(request.authenticator[0]!.keyEpoch);
      assert.equal(request.requestNumber, original.requestNumber);
      assert.equal(request.readOnly, false);
      assert.deepEqual(request.operation, original.operation);
    }
    // Timeouts 100, 200, 400, 400, 400, ...
    assert.deepEqual(retransmittedAt, [100, 300, 700, 1100, 1500, 1900]);
    assert.deepEqual(epochs, [2, 3, 4, 5, 6, 7]);
    assert.equal(authentications(), 7);
  });

  it('does not retransmit a completed request', () => {
    const { client } = session();
    const request = sentRequest(client.invoke(encoder.encode('op'), { readOnly: false }, 0).actions);
    feed(
      client,
      [0, 1, 2].map((replica) => replyFrom(replica, request, 'done')),
    );
    assert.deepEqual(client.tick(10_000), []);
  });
});

describe('ClientSession read-only requests', () => {
  it('completes on the fast path with a quorum of matching replies', () => {
    const { client } = session();
    const { invocation, actions } = client.invoke(encoder.encode('get x'), { readOnly: true }, 0);
    const request = sentRequest(actions);
    assert.equal(request.readOnly, true);
    const results = feed(client, [
      replyFrom(0, request, 'x=1', { sequence: 9 }),
      replyFrom(1, request, 'x=1', { sequence: 9 }),
      replyFrom(2, request, 'x=1', { sequence: 9 }),
    ]);
    assert.deepEqual(results.slice(0, 2), [[], []]);
    assert.deepEqual(results[2], [
      {
        kind: 'complete',
        invocation,
        status: 'ok',
        result: encoder.encode('x=1'),
        sequence: 9,
        fastPath: true,
      },
    ]);
  });

  it('flags a read that f + 1 replicas answered signed from a safe-mode snapshot, with the oldest checkpoint and the signed replies', () => {
    const { client } = session();
    const { invocation, actions } = client.invoke(encoder.encode('get x'), { readOnly: true }, 0);
    const request = sentRequest(actions);
    const signed = (replica: number, sequence: number): Reply =>
      signedReadReply(replyFrom(replica, request, 'x=0', { sequence }));
    const results = feed(client, [
      signed(0, 8),
      replyFrom(1, request, 'x=0', { sequence: 12 }),
      signed(2, 4),
    ]);
    assert.deepEqual(results.slice(0, 2), [[], []]);
    assert.equal(results[2]!.length, 1);
    const completion = results[2]![0]!;
    assert.ok(completion.kind === 'complete');
    assert.equal(completion.invocation, invocation);
    assert.equal(completion.safeModeSnapshot, true);
    assert.equal(completion.sequence, 4, 'the oldest checkpoint among the signed answers');
    assert.deepEqual(
      completion.snapshotReplies?.map((reply) => reply.replicaId),
      [0, 2],
    );
  });

  it('does not flag a read only f replicas signed: a faulty one cannot make reads look stale', () => {
    const { client } = session();
    const request = sentRequest(client.invoke(encoder.encode('get x'), { readOnly: true }, 0).actions);
    const forged = signedReadReply(replyFrom(3, request, 'x=1', { sequence: 9 }));
    const results = feed(client, [
      forged,
      replyFrom(0, request, 'x=1', { sequence: 9 }),
      replyFrom(1, request, 'x=1', { sequence: 9 }),
    ]);
    const completion = results[2]![0]!;
    assert.ok(completion.kind === 'complete');
    assert.equal(completion.safeModeSnapshot, undefined);
    assert.equal(completion.fastPath, true);
  });

  it('falls back to an ordered request with a new number once the answers cannot reach a quorum', () => {
    const { client } = session();
    const { invocation, actions } = client.invoke(encoder.encode('get x'), { readOnly: true }, 0);
    const read = sentRequest(actions);
    const [first, second, third] = feed(client, [
      replyFrom(0, read, 'x=1'),
      replyFrom(1, read, 'x=2'),
      // Still possible: 1 match + 2 undecided = 3. After this one: at best 1 + 1 < 3.
      replyFrom(2, read, 'x=3'),
    ]);
    assert.deepEqual(first, []);
    assert.deepEqual(second, []);
    const ordered = sentRequest(third!);
    assert.equal(ordered.readOnly, false);
    assert.equal(ordered.requestNumber, read.requestNumber + 1);
    assert.deepEqual(ordered.operation, read.operation);
    assert.equal(client.outstanding, 1);
    // Late fast-path replies for the abandoned read-only number count for nothing.
    assert.deepEqual(client.onReply(replyFrom(3, read, 'x=1'), 2), []);
    const results = feed(
      client,
      [0, 1, 2].map((replica) => replyFrom(replica, ordered, 'x=2')),
      3,
    );
    assert.deepEqual(results[2], [
      {
        kind: 'complete',
        invocation,
        status: 'ok',
        result: encoder.encode('x=2'),
        sequence: 5,
        fastPath: false,
      },
    ]);
  });

  it('does not fall back while a quorum is still possible', () => {
    const { client } = session();
    const read = sentRequest(client.invoke(encoder.encode('get x'), { readOnly: true }, 0).actions);
    const results = feed(client, [
      replyFrom(0, read, 'x=1'),
      replyFrom(1, read, 'x=2'),
      replyFrom(2, read, 'x=1'),
    ]);
    assert.ok(results.every((actions) => actions.length === 0));
    assert.equal(client.onReply(replyFrom(3, read, 'x=1'), 2)[0]?.kind, 'complete');
  });

  it('falls back to an ordered request after readOnlyTimeoutMs', () => {
    const { client } = session();
    const read = sentRequest(client.invoke(encoder.encode('get x'), { readOnly: true }, 0).actions);
    feed(client, [replyFrom(0, read, 'x=1'), replyFrom(1, read, 'x=1')]);
    assert.deepEqual(client.tick(config.readOnlyTimeoutMs - 1), []);
    const ordered = sentRequest(client.tick(config.readOnlyTimeoutMs));
    assert.equal(ordered.readOnly, false);
    assert.equal(ordered.requestNumber, read.requestNumber + 1);
    // The ordered request retransmits on the ordered schedule, counted from the fallback.
    assert.deepEqual(client.tick(config.readOnlyTimeoutMs + config.retransmitTimeoutMs - 1), []);
    assert.equal(
      sentRequest(client.tick(config.readOnlyTimeoutMs + config.retransmitTimeoutMs)).requestNumber,
      ordered.requestNumber,
    );
  });
});

describe('ClientSession admission', () => {
  it('canInvoke respects maxOutstanding', () => {
    const { client } = session({ maxOutstanding: 2, replyWindow: 100 });
    assert.equal(client.canInvoke, true);
    const first = sentRequest(client.invoke(encoder.encode('a'), { readOnly: false }, 0).actions);
    assert.equal(client.canInvoke, true);
    client.invoke(encoder.encode('b'), { readOnly: false }, 0);
    assert.equal(client.canInvoke, false);
    assert.throws(() => client.invoke(encoder.encode('c'), { readOnly: false }, 0), InvariantViolation);
    feed(
      client,
      [0, 1, 2].map((replica) => replyFrom(replica, first, 'ok')),
    );
    assert.equal(client.canInvoke, true);
  });

  it('canInvoke keeps new numbers within the reply window of the oldest outstanding one, with one in reserve', () => {
    const { client } = session({ maxOutstanding: 100, replyWindow: 4 });
    const oldest = sentRequest(client.invoke(encoder.encode('1'), { readOnly: false }, 0).actions);
    const second = sentRequest(client.invoke(encoder.encode('2'), { readOnly: false }, 0).actions);
    const third = sentRequest(client.invoke(encoder.encode('3'), { readOnly: false }, 0).actions);
    // Number 4 would leave no reserve for a fallback within 1..4.
    assert.equal(client.canInvoke, false);
    // Completing younger requests does not help while number 1 is outstanding.
    feed(
      client,
      [0, 1, 2].map((replica) => replyFrom(replica, second, 'ok')),
    );
    feed(
      client,
      [0, 1, 2].map((replica) => replyFrom(replica, third, 'ok')),
    );
    assert.equal(client.outstanding, 1);
    assert.equal(client.canInvoke, false);
    feed(
      client,
      [0, 1, 2].map((replica) => replyFrom(replica, oldest, 'ok')),
    );
    assert.equal(client.canInvoke, true);
    assert.equal(
      sentRequest(client.invoke(encoder.encode('4'), { readOnly: false }, 0).actions).requestNumber,
      4,
    );
  });

  it('starts from the given first request number', () => {
    const client = new ClientSession(
      config,
      alice,
      (unsigned) => ({ ...unsigned, authenticator: [], signature: null }),
      41,
    );
    assert.equal(
      sentRequest(client.invoke(encoder.encode('op'), { readOnly: false }, 0).actions).requestNumber,
      41,
    );
    assert.throws(
      () =>
        new ClientSession(
          config,
          alice,
          (unsigned) => ({ ...unsigned, authenticator: [], signature: null }),
          0,
        ),
      InvariantViolation,
    );
  });
});
