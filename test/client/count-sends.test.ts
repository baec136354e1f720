/**
 * What the client reports as retransmissions and read-only fallbacks (countSends), on the
 * actions of the real client protocol: a first send is neither, a send again after the
 * retransmission timeout is a retransmission, and a read-only request that falls back to
 * ordering is a first send of a new request number.
 */
import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { countSends } from '../../src/client/client.js';
import { ClientSession } from '../../src/core/client-protocol.js';
import { clientId } from '../../src/messages/ids.js';

const session = (): ClientSession =>
  new ClientSession(
    {
      n: 4,
      f: 1,
      k: 0,
      retransmitTimeoutMs: 100,
      maxRetransmitTimeoutMs: 400,
      readOnlyTimeoutMs: 50,
      maxOutstanding: 4,
      replyWindow: 8,
    },
    clientId('alice'),
    (unsigned) => ({ ...unsigned, authenticator: [], signature: null }),
    1000,
  );

describe('countSends', () => {
  it('tells first sends from retransmissions, and sees a read-only fallback as a first send', () => {
    const client = session();
    let highest = -1;
    const count = (actions: Parameters<typeof countSends>[0]) => {
      const counted = countSends(actions, highest);
      highest = counted.highestSent;
      return [counted.firstSends, counted.retransmitted];
    };
    const encoder = new TextEncoder();
    assert.deepEqual(count(client.invoke(encoder.encode('a'), { readOnly: false }, 0).actions), [1, 0]);
    assert.deepEqual(count(client.invoke(encoder.encode('b'), { readOnly: false }, 0).actions), [1, 0]);
    assert.deepEqual(count(client.tick(50)), [0, 0]);
    // Both ordered requests are due again: two retransmissions.
    assert.deepEqual(count(client.tick(100)), [0, 2]);
    assert.deepEqual(count(client.invoke(encoder.encode('c'), { readOnly: true }, 100).actions), [1, 0]);
    // The read-only request times out (50 ms) and falls back to ordering under a new number.
    assert.deepEqual(count(client.tick(150)), [1, 0]);
    // Due again: the two ordered requests (doubled timeout, 200 ms) and the fallback (100 ms).
    assert.deepEqual(count(client.tick(300)), [0, 3]);
  });
});
