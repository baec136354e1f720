/**
 * Child process of crash.test.ts: appends records to a storage directory as fast as it can, with
 * several flushes in flight and a checkpoint now and then, and prints each record's sequence
 * number on stdout once a flush that covers it has resolved (an acknowledged write). The parent
 * kills it with SIGKILL at a random moment.
 *
 *   node --import tsx test/storage/crash-writer.ts <file|leveldb> <directory>
 *
 * It resumes after whatever the directory holds, so successive rounds build on each other's
 * (possibly torn) output.
 */
import { openStorage } from '../../src/storage/open.js';
import { makeCheckpoint, makeChunks, prePrepareRecord, preparedRecord, sequenceOf } from './compliance.js';

/** Flushes allowed in flight at once: enough for group commit to matter. */
const MAX_FLUSHES_IN_FLIGHT = 4;
/** A checkpoint every this many sequences, covering all but the last few of them. */
const CHECKPOINT_INTERVAL = 16;
const CHECKPOINT_LAG = 5;

const [engine, directory] = process.argv.slice(2);
if ((engine !== 'file' && engine !== 'leveldb') || directory === undefined) {
  process.stderr.write('usage: crash-writer.ts <file|leveldb> <directory>\n');
  process.exit(2);
}

const storage = await openStorage({ engine, directory });
const { restored } = await storage.load();
let last = restored?.checkpoint?.certificate.sequence ?? 0;
for (const record of restored?.records ?? []) last = Math.max(last, sequenceOf(record) ?? 0);
// A kill in the middle of a write can leave a pre-prepare without its prepared: complete the pair.
const lastRecord = restored?.records.at(-1);
if (lastRecord?.kind === 'pre-prepare') storage.append(preparedRecord(0, lastRecord.message.sequence));
// Chunks that stay the same across checkpoints exercise reuse; one changes every time.
const stableChunks = makeChunks(3, 8 * 1024);

const inFlight = new Set<Promise<void>>();
for (let sequence = last + 1; ; sequence++) {
  storage.append(prePrepareRecord(0, sequence, 4));
  storage.append(preparedRecord(0, sequence));
  if (sequence % CHECKPOINT_INTERVAL === 0) {
    storage.storeCheckpoint(
      makeCheckpoint(sequence - CHECKPOINT_LAG, [...stableChunks, ...makeChunks(1, 4096)]),
    );
  }
  const flushed: Promise<void> = storage.flush().then(() => {
    // Pipes are written synchronously on Linux: once this returns, the parent can read the line.
    process.stdout.write(`${sequence}\n`);
    inFlight.delete(flushed);
  });
  inFlight.add(flushed);
  if (inFlight.size >= MAX_FLUSHES_IN_FLIGHT) await Promise.race(inFlight);
}
