import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import fc from 'fast-check';
import pino from 'pino';
import { InvariantViolation } from '../../src/messages/ids.js';
import { LOG_FILE_LIMITS, RotatingLogFile, rotatedLogPath } from '../../src/runtime/log-file.js';

const directories: string[] = [];

function freshPath(): string {
  const directory = mkdtempSync(join(tmpdir(), 'phalanx-log-file-'));
  directories.push(directory);
  return join(directory, 'replica-0.log');
}

after(() => {
  for (const directory of directories) rmSync(directory, { recursive: true, force: true });
});

/** The files of a log, oldest first, that exist. */
function logFiles(path: string, maxRotatedFiles: number): string[] {
  const files: string[] = [];
  for (let index = maxRotatedFiles; index >= 1; index--) {
    if (existsSync(rotatedLogPath(path, index))) files.push(rotatedLogPath(path, index));
  }
  if (existsSync(path)) files.push(path);
  return files;
}

/** Every line of the log, oldest first; asserts that every file holds whole lines only. */
function logLines(path: string, maxRotatedFiles: number): string[] {
  const lines: string[] = [];
  for (const file of logFiles(path, maxRotatedFiles)) {
    const text = readFileSync(file, 'utf8');
    if (text.length === 0) continue;
    assert.ok(text.endsWith('\n'), `${file} ends with a whole line`);
    lines.push(...text.slice(0, -1).split('\n'));
  }
  return lines;
}

function totalBytes(path: string, maxRotatedFiles: number): number {
  return logFiles(path, maxRotatedFiles).reduce((sum, file) => sum + statSync(file).size, 0);
}

const line = (index: number, padding = 0): string =>
  `${JSON.stringify({ level: 30, index, msg: 'x'.repeat(padding) })}\n`;

describe('RotatingLogFile', () => {
  it('rotates into <path>.1 … <path>.N and keeps no more than that', () => {
    const path = freshPath();
    const options = { maxFileBytes: 4096, maxRotatedFiles: 3, maxLineBytes: 1024 };
    const log = RotatingLogFile.open(path, options);
    for (let index = 0; index < 1000; index++) log.write(line(index, 40));
    log.close();
    assert.ok(log.rotations >= 10, `rotated ${log.rotations} times`);
    assert.deepEqual(
      readdirSync(join(path, '..')).sort(),
      ['replica-0.log', 'replica-0.log.1', 'replica-0.log.2', 'replica-0.log.3'],
      'the oldest files were dropped',
    );
    for (const file of logFiles(path, 3)) assert.ok(statSync(file).size <= options.maxFileBytes, file);
    assert.ok(totalBytes(path, 3) <= (1 + options.maxRotatedFiles) * options.maxFileBytes);
    // What is kept is the newest lines, in order, none missing in between.
    const indices = logLines(path, 3).map((text) => (JSON.parse(text) as { index: number }).index);
    assert.equal(indices.at(-1), 999);
    assert.deepEqual(
      indices,
      indices.map((_, position) => indices[0]! + position),
    );
  });

  it('continues an existing file, and rotates it when it is full', () => {
    const path = freshPath();
    const options = { maxFileBytes: 2048, maxRotatedFiles: 2, maxLineBytes: 1024 };
    const first = RotatingLogFile.open(path, options);
    first.write(line(1));
    first.close();
    const second = RotatingLogFile.open(path, options);
    second.write(line(2));
    assert.deepEqual(
      logLines(path, 2).map((text) => (JSON.parse(text) as { index: number }).index),
      [1, 2],
    );
    while (second.rotations === 0) second.write(line(3, 100));
    second.close();
    assert.ok(existsSync(rotatedLogPath(path, 1)));
  });

  it('replaces a line longer than maxLineBytes by a notice, and splits a chunk of several lines', () => {
    const path = freshPath();
    const log = RotatingLogFile.open(path, { maxFileBytes: 4096, maxRotatedFiles: 1, maxLineBytes: 1024 });
    log.write(line(1, 5000));
    log.write(line(2) + line(3) + line(4, 3000) + line(5));
    log.close();
    const lines = logLines(path, 1).map((text) => JSON.parse(text) as Record<string, unknown>);
    assert.deepEqual(
      lines.map((entry) => entry.index ?? entry.msg),
      ['log line dropped: longer than maxLineBytes', 2, 3, 'log line dropped: longer than maxLineBytes', 5],
    );
    assert.equal(lines[0]!.lineBytes, Buffer.byteLength(line(1, 5000)));
    assert.match(String(lines[0]!.excerpt), /^\{"level":30,"index":1,/);
  });

  it('drops and counts lines written after close, without throwing', () => {
    const path = freshPath();
    const log = RotatingLogFile.open(path);
    log.close();
    assert.equal(log.write(line(1)), false);
    assert.equal(log.droppedLines, 1);
  });

  it('refuses bounds that cannot hold a line', () => {
    const path = freshPath();
    assert.throws(() => RotatingLogFile.open(path, { maxFileBytes: 0 }), InvariantViolation);
    assert.throws(() => RotatingLogFile.open(path, { maxRotatedFiles: 0 }), InvariantViolation);
    assert.throws(
      () => RotatingLogFile.open(path, { maxFileBytes: 2048, maxLineBytes: 4096 }),
      InvariantViolation,
    );
    assert.throws(() => RotatingLogFile.open(path, { maxLineBytes: 100 }), InvariantViolation);
    const defaults = RotatingLogFile.open(path);
    assert.equal(defaults.maxFileBytes, LOG_FILE_LIMITS.defaultMaxFileBytes);
    assert.equal(defaults.maxRotatedFiles, LOG_FILE_LIMITS.defaultMaxRotatedFiles);
    defaults.close();
  });

  it('two writers sharing a path (a replica and its standby) keep the bound and whole lines', () => {
    const path = freshPath();
    const options = { maxFileBytes: 4096, maxRotatedFiles: 3, maxLineBytes: 1024 };
    const writers = [RotatingLogFile.open(path, options), RotatingLogFile.open(path, options)];
    for (let index = 0; index < 2000; index++) writers[index % 2]!.write(line(index, index % 97));
    for (const writer of writers) writer.close();
    // Each writer checks the file's own size before each line, so neither overshoots.
    for (const file of logFiles(path, 3)) assert.ok(statSync(file).size <= options.maxFileBytes, file);
    const indices = logLines(path, 3).map((text) => (JSON.parse(text) as { index: number }).index);
    assert.equal(indices.at(-1), 1999);
    // A writer that found the file rotated by the other followed instead of rotating again, so
    // the newest lines are all there, in order.
    assert.deepEqual(
      indices,
      indices.map((_, position) => indices[0]! + position),
    );
  });

  it('property: files stay within their bound and hold whole lines, the newest ones, in order', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 2048, max: 8192 }),
        fc.integer({ min: 1, max: 4 }),
        fc.array(fc.integer({ min: 0, max: 1500 }), { minLength: 1, maxLength: 300 }),
        (maxFileBytes, maxRotatedFiles, paddings) => {
          const path = freshPath();
          const log = RotatingLogFile.open(path, { maxFileBytes, maxRotatedFiles, maxLineBytes: 1024 });
          paddings.forEach((padding, index) => log.write(line(index, padding)));
          log.close();
          for (const file of logFiles(path, maxRotatedFiles)) assert.ok(statSync(file).size <= maxFileBytes);
          assert.ok(totalBytes(path, maxRotatedFiles) <= (1 + maxRotatedFiles) * maxFileBytes);
          const kept = logLines(path, maxRotatedFiles).map((text) => JSON.parse(text) as { index?: number });
          assert.ok(kept.length > 0);
          // The newest lines, in order, none missing (an over-long one is there as its notice).
          kept.forEach((entry, position) => {
            if (entry.index !== undefined)
              assert.equal(entry.index, paddings.length - kept.length + position);
          });
          rmSync(join(path, '..'), { recursive: true, force: true });
        },
      ),
      { numRuns: 40 },
    );
  });

  it('works as a pino destination, and a process that exits right after a fatal line keeps it', () => {
    const path = freshPath();
    const log = RotatingLogFile.open(path, { maxFileBytes: 4096, maxRotatedFiles: 2, maxLineBytes: 1024 });
    const logger = pino({ base: { replica: 0 } }, log);
    for (let index = 0; index < 100; index++) logger.info({ index }, 'served');
    logger.warn({ reason: 'garbage' }, 'rejected frame');
    let flushed = false;
    logger.flush(() => {
      flushed = true;
    });
    assert.equal(flushed, true, 'nothing is buffered');
    log.close();
    const lines = logLines(path, 2).map((text) => JSON.parse(text) as Record<string, unknown>);
    assert.equal(lines.at(-1)!.msg, 'rejected frame');
    assert.equal(lines.at(-1)!.replica, 0);
    assert.ok(log.rotations > 0);

    const exitPath = freshPath();
    const script = [
      "import pino from 'pino';",
      "import { RotatingLogFile } from './src/runtime/log-file.ts';",
      `const logger = pino({}, RotatingLogFile.open(${JSON.stringify(exitPath)}));`,
      "logger.fatal({ code: 70 }, 'replica invariant violated; stopping');",
      'process.exit(70);',
    ].join('\n');
    const child = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: join(import.meta.dirname, '..', '..'),
      encoding: 'utf8',
    });
    assert.equal(child.status, 70, child.stderr);
    const last = JSON.parse(readFileSync(exitPath, 'utf8').trim()) as Record<string, unknown>;
    assert.equal(last.msg, 'replica invariant violated; stopping');
    assert.equal(last.level, 60);
  });
});
