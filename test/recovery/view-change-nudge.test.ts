/**
 * The view-change nudge between guardians (control channel) and from a guardian to its replica
 * (IPC): it names the view it is about, so a replica already past that view ignores it, and
 * anything malformed is refused rather than acted upon.
 */
import * as assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { decodeControl, encodeControl } from '../../src/recovery/control.js';
import { parseGuardianMessage } from '../../src/runtime/ipc.js';

const frame = (value: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(value));

describe('view-change nudges', () => {
  test('a control nudge round-trips with or without the view it is about', () => {
    for (const aboveView of [null, 0, 17]) {
      const decoded = decodeControl(encodeControl({ type: 'nudge', aboveView }));
      assert.deepEqual(decoded, { ok: true, message: { type: 'nudge', aboveView } });
    }
  });

  test('a control nudge with a view that is not a non-negative integer is refused', () => {
    for (const aboveView of [-1, 1.5, '3', Number.MAX_SAFE_INTEGER + 2, undefined]) {
      const decoded = decodeControl(frame({ type: 'nudge', aboveView }));
      assert.equal(decoded.ok, false, `aboveView ${String(aboveView)}`);
    }
  });

  test('the IPC nudge carries the view, and a bad one is refused', () => {
    assert.deepEqual(
      parseGuardianMessage({ type: 'nudge-view-change', avoidLeaders: [1, 2], aboveView: 4 }),
      {
        type: 'nudge-view-change',
        avoidLeaders: [1, 2],
        aboveView: 4,
      },
    );
    assert.deepEqual(parseGuardianMessage({ type: 'nudge-view-change', avoidLeaders: [], aboveView: null }), {
      type: 'nudge-view-change',
      avoidLeaders: [],
      aboveView: null,
    });
    for (const aboveView of [-1, 'x', 2.5, undefined])
      assert.equal(parseGuardianMessage({ type: 'nudge-view-change', avoidLeaders: [], aboveView }), null);
    for (const avoidLeaders of [[-1], [1.5], ['1'], [null], 'x', Array.from({ length: 1000 }, () => 0)])
      assert.equal(parseGuardianMessage({ type: 'nudge-view-change', avoidLeaders, aboveView: null }), null);
  });
});
