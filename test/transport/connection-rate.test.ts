/** The per-client connection rate of a replica's listener (src/transport/connection-rate.ts). */
import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { ConnectionRateLimiter } from '../../src/transport/connection-rate.js';

const LIMITS = {
  maxConnectionsPerWindow: 3,
  windowMilliseconds: 1000,
  refusalMilliseconds: 5000,
  maxTrackedClients: 2,
};

describe('ConnectionRateLimiter', () => {
  it('allows the rate, refuses beyond it for the refusal time, then allows again', () => {
    const limiter = new ConnectionRateLimiter(LIMITS);
    for (const at of [0, 100, 200]) assert.equal(limiter.established('client:a', at), null);
    assert.equal(limiter.refusal('client:a', 250), null);
    assert.match(limiter.established('client:a', 300) ?? '', /opened more than 3 connections within 1000 ms/);
    assert.match(limiter.refusal('client:a', 301) ?? '', /refused for 5 s more/);
    assert.equal(limiter.refusal('client:b', 301), null, 'only the churner');
    assert.equal(limiter.refusal('client:a', 5300), null);
    assert.equal(limiter.established('client:a', 5300), null, 'a fresh window after the refusal');
  });

  it('counts only the window: a steady client under the rate is never refused', () => {
    const limiter = new ConnectionRateLimiter(LIMITS);
    for (let at = 0; at < 100_000; at += 400) assert.equal(limiter.established('client:a', at), null);
  });

  it('remembers at most maxTrackedClients, the least recently seen forgotten first', () => {
    const limiter = new ConnectionRateLimiter(LIMITS);
    for (const at of [0, 1, 2, 3]) limiter.established('client:a', at);
    assert.notEqual(limiter.refusal('client:a', 10), null);
    limiter.established('client:b', 11);
    limiter.established('client:c', 12);
    assert.equal(limiter.tracked, 2);
    assert.equal(limiter.refusal('client:a', 13), null, 'forgotten');
  });

  it('rejects limits that are not positive integers', () => {
    assert.throws(
      () => new ConnectionRateLimiter({ ...LIMITS, windowMilliseconds: 0 }),
      /windowMilliseconds/,
    );
  });

  // The rate holds for a client while it is remembered: one forgotten to make room (the tracked
  // set is bounded, the third test) starts afresh. So the property runs with room for every
  // client of the run, or with too little room, where only the bound on the set is checked.
  it('property: within any window a remembered client gets at most the rate accepted, and the tracked set stays bounded', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 0, max: 4 }), fc.integer({ min: 0, max: 400 })), {
          maxLength: 300,
        }),
        fc.boolean(),
        (events, roomForAll) => {
          const limits = { ...LIMITS, maxTrackedClients: roomForAll ? 5 : LIMITS.maxTrackedClients };
          const limiter = new ConnectionRateLimiter(limits);
          const accepted = new Map<number, number[]>();
          let now = 0;
          for (const [client, gap] of events) {
            now += gap;
            const name = `client:${client}`;
            if (limiter.refusal(name, now) !== null) continue;
            if (limiter.established(name, now) !== null) continue;
            const times = accepted.get(client) ?? [];
            times.push(now);
            accepted.set(client, times);
            if (
              roomForAll &&
              times.filter((time) => time > now - LIMITS.windowMilliseconds).length >
                LIMITS.maxConnectionsPerWindow
            )
              return false;
            if (limiter.tracked > limits.maxTrackedClients) return false;
          }
          return true;
        },
      ),
    );
  });
});
