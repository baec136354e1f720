import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { evidenceFinder, rejuvenationOutcome } from '../../src/cli/demo.js';

describe('the lines phalanx demo prints stay true', () => {
  it('a rejuvenation cut off before T_D is unfinished, never "over T_D"', () => {
    const cutOff = rejuvenationOutcome({ durationMs: 7959, exceededBound: true }, 8000);
    assert.doesNotMatch(cutOff, /OVER/);
    assert.equal(
      cutOff,
      'ended UNFINISHED after 8.0 s, at its deadline (the end of its slot or T_D = 8.0 s, whichever came first)',
    );
    assert.equal(
      rejuvenationOutcome({ durationMs: 8210, exceededBound: true }, 8000),
      'took 8.2 s, OVER T_D = 8.0 s (8210 ms > 8000 ms)',
    );
    assert.equal(
      rejuvenationOutcome({ durationMs: 2500, exceededBound: false }, 8000),
      'done in 2.5 s (T_D = 8.0 s)',
    );
  });

  it('the accused never reads as its own reporter', () => {
    assert.equal(evidenceFinder('client admin via replica 3', 3), 'client admin');
    assert.equal(evidenceFinder('client admin via replica 4', 3), 'client admin (relayed by replica 4)');
    assert.equal(evidenceFinder('replica 2', 3), 'replica 2');
  });
});
