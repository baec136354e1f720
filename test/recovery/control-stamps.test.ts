/**
 * The control channel carries the originating guardian's stamp on evidence, suspicions and owed
 * rejuvenations (the guardians order accusations by it, so that every one of them picks the same
 * replicas for a reactive slot); a stamp that is not a time is refused, an absent one accepted
 * (the receiver then uses its own clock).
 */
import * as assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type ControlMessage, decodeControl, encodeControl } from '../../src/recovery/control.js';

/** A frame as decodeControl takes it: the JSON text, unchecked. */
const frame = (value: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(value));

describe('control messages with origin stamps', () => {
  const stamped: ControlMessage[] = [
    { type: 'evidence', evidence: 'AAAA', reporter: 'replica 1', atMs: 1_700_000_000_123 },
    { type: 'suspicion', accused: 3, reason: 'slow', atMs: 42 },
    { type: 'rejuvenation-owed', reason: 'kept its disk', atMs: 0 },
  ];

  test('round-trip with their stamp, and without one', () => {
    for (const message of stamped) {
      assert.deepEqual(decodeControl(encodeControl(message)), { ok: true, message });
      const { atMs: _stamp, ...bare } = message as ControlMessage & { atMs?: number };
      assert.deepEqual(decodeControl(encodeControl(bare as ControlMessage)), { ok: true, message: bare });
    }
  });

  test('a stamp that is not a time in ms is refused', () => {
    for (const message of stamped)
      for (const atMs of [-1, 1.5, '12', null, Number.MAX_SAFE_INTEGER + 2])
        assert.equal(decodeControl(frame({ ...message, atMs })).ok, false, `${message.type} ${String(atMs)}`);
  });
});
