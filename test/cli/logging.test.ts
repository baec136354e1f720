import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { LOG_FORMATS, parseLogFormat } from '../../src/cli/logging.js';

const FIXTURE = new URL('./logging-fixture.ts', import.meta.url).pathname;
const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

function runFixture(...args: string[]): string {
  const result = spawnSync(process.execPath, ['--import', 'tsx', FIXTURE, ...args], {
    encoding: 'utf8',
    env: { ...process.env, PHALANX_LOG_FORMAT: '' },
  });
  assert.equal(result.status, 0, result.stderr);
  return result.stdout;
}

function jsonLines(text: string): Record<string, unknown>[] {
  return text
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

function assertMachineLines(lines: readonly Record<string, unknown>[]): void {
  assert.equal(lines.length, 3);
  for (const line of lines) {
    assert.match(String(line.time), ISO_UTC, 'ISO 8601 time in UTC');
    assert.equal(line.replica, 2);
    assert.equal(line.pid, undefined, 'no pid on every line');
    assert.equal(line.hostname, undefined, 'no host name on every line');
  }
  assert.deepEqual(
    lines.map((line) => line.msg),
    ['view change installed', 'rejected frame', 'checkpoint could not be written'],
  );
}

describe('process logs', () => {
  it('json: one JSON object per line, ISO times, the base id once, no pid or host name', () => {
    const text = runFixture('json');
    for (const raw of text.trim().split('\n'))
      assert.equal(raw.match(/"replica":/g)?.length, 1, `the replica key once: ${raw}`);
    assertMachineLines(jsonLines(text));
  });

  it('a log file is JSON lines with ISO times whatever the terminal format', () => {
    const directory = mkdtempSync(join(tmpdir(), 'phalanx-logging-'));
    try {
      const file = join(directory, 'replica-2.log');
      assert.equal(runFixture('pretty', file), '', 'nothing on stdout when a log file is named');
      assertMachineLines(jsonLines(readFileSync(file, 'utf8')));
    } finally {
      rmSync(directory, { recursive: true, force: true });
    }
  });

  it('pretty: one readable line per event, with its time, level, message and fields, no JSON', () => {
    const lines = runFixture('pretty').trimEnd().split('\n');
    assert.equal(lines.length, 3, lines.join('\n'));
    const events = lines.filter((line) => /^\[\d{4}-/.test(line));
    assert.equal(events.length, 3, lines.join('\n'));
    const [installed, rejected, failed] = events as [string, string, string];
    assert.match(installed, /^\[\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z\] INFO: view change installed /);
    assert.match(installed, /"view":3/);
    assert.match(installed, /"sequence":17/);
    assert.match(rejected, /WARN: rejected frame .*"reason":"bad MAC"/);
    assert.match(failed, /ERROR: checkpoint could not be written: disk full /, 'an error is its message');
    assert.ok(!failed.includes('at '), 'no stack trace on a terminal');
    for (const line of events) assert.ok(!line.startsWith('{'), `not a JSON line: ${line}`);
    assert.ok(!lines.join('\n').includes('\u001b['), 'no colours when stdout is not a terminal');
  });

  it('--log-format accepts the two formats and refuses anything else, naming them', () => {
    for (const format of LOG_FORMATS) assert.equal(parseLogFormat(format), format);
    assert.throws(() => parseLogFormat('yaml'), /--log-format must be one of pretty, json, got "yaml"/);
  });
});
