/**
 * "No acknowledged write is lost after kill -9": a child process (crash-writer.ts) appends and
 * flushes as fast as it can and prints every acknowledged sequence; it is killed with SIGKILL at a
 * random moment, and the storage it leaves behind must return every acknowledged record, in order,
 * with nothing missing in between. Several rounds on the same directory, for both disk engines.
 *
 * SIGKILL loses what the process had not handed to the kernel; it does not lose the page cache, so
 * this checks the engine's own ordering and atomic switches (buffering, group commit, compaction,
 * recovery), not the fsyncs themselves (that takes a power cut).
 */
import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { openStorage } from '../../src/storage/open.js';
import { sequenceOf } from './compliance.js';

const ROUNDS_PER_ENGINE = 4;
/** The kill comes this long (uniformly at random) after the first acknowledgement. */
const MAX_KILL_DELAY_MS = 400;
const WRITER = fileURLToPath(new URL('./crash-writer.ts', import.meta.url));
const PROJECT_ROOT = fileURLToPath(new URL('../../', import.meta.url));

interface Round {
  readonly acknowledged: number[];
  readonly killDelayMs: number;
}

function runWriterAndKill(engine: 'file' | 'leveldb', directory: string): Promise<Round> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', WRITER, engine, directory], {
      cwd: PROJECT_ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const killDelayMs = Math.floor(Math.random() * MAX_KILL_DELAY_MS);
    let output = '';
    let errors = '';
    let timer: NodeJS.Timeout | undefined;
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (text: string) => {
      output += text;
      timer ??= setTimeout(() => child.kill('SIGKILL'), killDelayMs);
    });
    child.stderr.on('data', (text: Buffer) => {
      errors += text.toString();
    });
    const watchdog = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.on('error', reject);
    child.on('exit', (_code, signal) => {
      clearTimeout(watchdog);
      clearTimeout(timer);
      if (signal !== 'SIGKILL' || timer === undefined) {
        reject(
          new Error(`writer ended on its own (signal ${signal}) or never acknowledged anything:\n${errors}`),
        );
        return;
      }
      // Only complete lines: the last one may have been cut by the kill.
      const lines = output.split('\n').slice(0, -1);
      resolve({ acknowledged: lines.map(Number), killDelayMs });
    });
  });
}

for (const engine of ['file', 'leveldb'] as const) {
  describe(`${engine} storage: kill -9`, () => {
    let directory = '';
    after(async () => {
      if (directory !== '') await rm(directory, { recursive: true, force: true });
    });

    it(`loses no acknowledged write over ${ROUNDS_PER_ENGINE} killed writers`, async (test) => {
      directory = await mkdtemp(join(tmpdir(), `phalanx-crash-${engine}-`));
      let acknowledgedSoFar = 0;
      for (let round = 1; round <= ROUNDS_PER_ENGINE; round++) {
        const { acknowledged, killDelayMs } = await runWriterAndKill(engine, directory);
        const context = `round ${round}, killed ${killDelayMs} ms after the first acknowledgement`;
        assert.ok(acknowledged.length > 0, context);
        for (let index = 1; index < acknowledged.length; index++) {
          assert.ok(
            acknowledged[index]! > acknowledged[index - 1]!,
            `acknowledgements in order (${context})`,
          );
        }
        assert.ok(acknowledged[0]! > acknowledgedSoFar, context);
        acknowledgedSoFar = acknowledged[acknowledged.length - 1]!;

        const storage = await openStorage({ engine, directory });
        const report = await storage.load();
        await storage.close();
        const restored = report.restored;
        assert.ok(restored !== undefined, context);
        assert.equal(report.corruptChunks, 0, context);
        const stable = restored.checkpoint?.certificate.sequence ?? 0;
        // Every record from just above the checkpoint on, each sequence as pre-prepare then
        // prepared, with no gap, no duplicate and nothing out of order.
        const sequences = restored.records.map((record) => sequenceOf(record));
        const kinds = restored.records.map((record) => record.kind);
        sequences.forEach((sequence, index) => {
          assert.equal(sequence, stable + 1 + Math.floor(index / 2), `record ${index} (${context})`);
          assert.equal(
            kinds[index],
            index % 2 === 0 ? 'pre-prepare' : 'prepared',
            `record ${index} (${context})`,
          );
        });
        const highest = stable + Math.floor(sequences.length / 2);
        assert.ok(
          highest >= acknowledgedSoFar,
          `acknowledged up to ${acknowledgedSoFar}, restored up to ${highest} (${context})`,
        );
        // A kill in the middle of a write may leave a lone pre-prepare at the very end (the
        // writer completes the pair when it resumes); anywhere else the pattern above fails.
        if (sequences.length % 2 === 1) assert.equal(kinds[kinds.length - 1], 'pre-prepare', context);
        acknowledgedSoFar = Math.max(acknowledgedSoFar, highest);
        test.diagnostic(
          `${context}: ${acknowledged.length} acknowledged, restored ${restored.records.length} records above checkpoint ${stable}`,
        );
      }
    });
  });
}
