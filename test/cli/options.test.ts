import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InvalidArgumentError } from 'commander';
import fc from 'fast-check';
import { OPTION_RANGES, rangedOption, rangeProblem, rangeText } from '../../src/cli/options.js';
import { kvValueJson, printableText } from '../../src/cli/kv.js';

describe('numeric options and their named ranges', () => {
  it('refuses an implausible --timeout with the allowed range in words', () => {
    const parse = rangedOption('--timeout', OPTION_RANGES.clientTimeoutMs);
    assert.throws(
      () => parse('1'),
      (error: unknown) =>
        error instanceof InvalidArgumentError &&
        error.message === '--timeout must be between 100 ms and 600000 ms, got 1',
    );
    assert.equal(parse('100'), 100);
    assert.equal(parse('600000'), 600_000);
    assert.throws(() => parse('600001'), /--timeout must be between 100 ms and 600000 ms, got 600001/);
  });

  it('refuses what is not a whole number, saying what was given', () => {
    for (const text of ['abc', '1.5', '1e3', '0x10', '', ' ', '12ms', 'Infinity', '99999999999999999999'])
      assert.equal(
        rangeProblem('--limit', OPTION_RANGES.listLimit, text),
        `--limit must be a whole number between 1 and 1000, got ${JSON.stringify(text)}`,
      );
    assert.equal(rangeProblem('--limit', OPTION_RANGES.listLimit, ' 7 '), null);
  });

  it('names units where they apply and none for plain counts', () => {
    assert.equal(rangeText(OPTION_RANGES.benchStateMb), 'between 1 MB and 4096 MB');
    assert.equal(rangeText(OPTION_RANGES.firstIntrusionSeconds), 'between 1 s and 3600 s');
    assert.equal(rangeText(OPTION_RANGES.listenPort), 'between 0 and 65535');
    assert.equal(rangeText(OPTION_RANGES.benchValueBytes), 'between 0 bytes and 1000000 bytes');
  });

  it('every range is sane: integral bounds, min ≤ max', () => {
    for (const [name, range] of Object.entries(OPTION_RANGES)) {
      assert.ok(Number.isSafeInteger(range.min) && Number.isSafeInteger(range.max), name);
      assert.ok(range.min <= range.max, name);
    }
  });

  it('accepts exactly the integers within each range', () => {
    const ranges = Object.values(OPTION_RANGES);
    fc.assert(
      fc.property(
        fc.constantFrom(...ranges),
        fc.integer({ min: -1_000_000, max: 3_000_000_000 }),
        (range, value) => {
          const problem = rangeProblem('--x', range, String(value));
          assert.equal(problem === null, value >= range.min && value <= range.max);
          if (problem === null) assert.equal(rangedOption('--x', range)(String(value)), value);
          else assert.ok(problem.endsWith(`got ${value}`), problem);
        },
      ),
    );
  });
});

describe('kv values for scripts and terminals', () => {
  it('--json gives valid UTF-8 as text and anything else as base64, saying which', () => {
    assert.deepEqual(kvValueJson(new TextEncoder().encode('héllo')), { value: 'héllo', encoding: 'utf8' });
    const binary = Uint8Array.of(0xff, 0x00, 0xfe, 0x80);
    assert.deepEqual(kvValueJson(binary), { value: '/wD+gA==', encoding: 'base64' });
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        const shown = kvValueJson(bytes);
        const back =
          shown.encoding === 'utf8'
            ? new TextEncoder().encode(shown.value)
            : Buffer.from(shown.value, 'base64');
        assert.deepEqual(new Uint8Array(back), bytes);
      }),
    );
  });

  it('a terminal gets text only when it has no control characters', () => {
    assert.equal(printableText(new TextEncoder().encode('a\tb\nc')), 'a\tb\nc');
    assert.equal(printableText(new TextEncoder().encode('\u001b[31mred')), null);
    assert.equal(printableText(Uint8Array.of(0xc3)), null);
  });
});
