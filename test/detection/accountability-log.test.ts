import * as assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, truncate, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { type Digest, digest, InvariantViolation } from '../../src/core/ids.js';
import {
  ACCOUNTABILITY_LOG_FORMAT,
  ACCOUNTABILITY_LOG_GENESIS_HEAD,
  type AccountabilityAudit,
  type AccountabilityEntry,
  AccountabilityLog,
  AccountabilityLogError,
  auditAccountabilityLog,
  auditAccountabilityLogBytes,
  MIN_ACCOUNTABILITY_LOG_BYTES,
  rotatedPath,
} from '../../src/detection/accountability-log.js';

const directories: string[] = [];

async function freshPath(): Promise<string> {
  const directory = await mkdtemp(join(tmpdir(), 'phalanx-accountability-'));
  directories.push(directory);
  return join(directory, 'accountability.log');
}

after(async () => {
  for (const directory of directories) await rm(directory, { recursive: true, force: true });
});

function sha256(...parts: Uint8Array[]): Digest {
  const hasher = createHash('sha256');
  for (const part of parts) hasher.update(part);
  return digest(new Uint8Array(hasher.digest()));
}

function entryOf(index: number): AccountabilityEntry {
  return {
    direction: index % 2 === 0 ? 'sent' : 'received',
    peer: index % 5 === 0 ? 'alice' : `replica:${index % 4}`,
    kind: ['pre-prepare', 'prepare', 'commit', 'reply'][index % 4]!,
    digest: sha256(new TextEncoder().encode(`message ${index}`)),
    atMs: 1_700_000_000_000 + index,
  };
}

const largeLog = { maxBytes: 64 * 1024 * 1024 };

/** Writes `count` entries to a fresh log and returns the path, the bytes and the head after each. */
async function writtenLog(count: number) {
  const path = await freshPath();
  const log = await AccountabilityLog.open(path, largeLog);
  const heads: Digest[] = [log.head()];
  for (let index = 0; index < count; index++) {
    assert.equal(log.append(entryOf(index)), true);
    heads.push(log.head());
  }
  await log.close();
  return { path, heads, bytes: new Uint8Array(await readFile(path)) };
}

/** Byte offsets where each record starts, plus the end of the file: [record 1, record 2, …, end]. */
function recordOffsets(bytes: Uint8Array): number[] {
  const offsets: number[] = [];
  let offset = ACCOUNTABILITY_LOG_FORMAT.headerBytes;
  while (offset < bytes.length) {
    offsets.push(offset);
    const bodyLength = (bytes[offset]! << 8) | bytes[offset + 1]!;
    offset +=
      ACCOUNTABILITY_LOG_FORMAT.framePrefixBytes + bodyLength + ACCOUNTABILITY_LOG_FORMAT.chainHashBytes;
  }
  offsets.push(bytes.length);
  return offsets;
}

function assertBrokenAt(audit: AccountabilityAudit, entry: number, pattern?: RegExp): void {
  assert.equal(audit.ok, false, `expected a break at entry ${entry}`);
  if (audit.ok) return;
  assert.equal(audit.entry, entry, audit.reason);
  if (pattern !== undefined) assert.match(audit.reason, pattern);
}

function assertOk(audit: AccountabilityAudit): asserts audit is Extract<AccountabilityAudit, { ok: true }> {
  assert.equal(audit.ok, true, audit.ok ? '' : `entry ${audit.entry}: ${audit.reason}`);
}

describe('AccountabilityLog: writing and auditing', () => {
  it('round-trips: the audit recomputes the head the writer reports', async () => {
    const { path, heads } = await writtenLog(2000); // larger than one 64 KiB read buffer
    const audit = await auditAccountabilityLog(path);
    assertOk(audit);
    assert.equal(audit.entries, 2000);
    assert.deepEqual(audit.head, heads[2000]);
    assert.deepEqual(audit.startHead, ACCOUNTABILITY_LOG_GENESIS_HEAD);
    assert.equal(audit.droppedEntries, 0);
  });

  it('waits for the pace between entries, and audits the same when paced', async () => {
    const { path, heads } = await writtenLog(300);
    let paces = 0;
    let waiting = false;
    const audit = await auditAccountabilityLog(path, {
      pace: async () => {
        assert.equal(waiting, false, 'the audit went on before its pause ended');
        paces++;
        if (paces % 50 === 0) {
          waiting = true;
          await new Promise((resolve) => setTimeout(resolve, 1));
          waiting = false;
        }
      },
    });
    assertOk(audit);
    assert.equal(audit.entries, 300);
    assert.deepEqual(audit.head, heads[300]);
    assert.equal(paces, 301, 'once before each entry and once before finding the end');
  });

  it('writes the documented format', async () => {
    const { bytes, heads } = await writtenLog(2);
    const magic = new TextEncoder().encode(ACCOUNTABILITY_LOG_FORMAT.magic);
    assert.deepEqual(bytes.subarray(0, 8), magic);
    assert.deepEqual(bytes.subarray(8, 40), ACCOUNTABILITY_LOG_GENESIS_HEAD);
    const [first, second] = recordOffsets(bytes);
    const bodyLength = (bytes[first!]! << 8) | bytes[first! + 1]!;
    assert.equal((bytes[first! + 2]! << 8) | bytes[first! + 3]!, bodyLength ^ 0xffff);
    const body = bytes.subarray(first! + 4, first! + 4 + bodyLength);
    const storedChainHash = bytes.subarray(first! + 4 + bodyLength, second);
    // chain hash_1 = SHA-256(genesis ‖ body_1), and it is the head after the first append.
    assert.deepEqual(sha256(ACCOUNTABILITY_LOG_GENESIS_HEAD, body), digest(storedChainHash.slice()));
    assert.deepEqual(heads[1], digest(storedChainHash.slice()));
  });

  it('continues the chain after reopening', async () => {
    const { path, heads } = await writtenLog(5);
    const log = await AccountabilityLog.open(path, largeLog);
    assert.deepEqual(log.head(), heads[5]);
    log.append(entryOf(5));
    await log.close();
    const audit = await auditAccountabilityLog(path);
    assertOk(audit);
    assert.equal(audit.entries, 6);
    assert.deepEqual(audit.head, log.head());
  });

  it('rejects entries beyond the format limits, and appends after close', async () => {
    const log = await AccountabilityLog.open(await freshPath(), largeLog);
    assert.throws(() => log.append({ ...entryOf(0), peer: 'p'.repeat(129) }), InvariantViolation);
    assert.throws(
      () => log.append({ ...entryOf(0), digest: new Uint8Array(3) as Digest }),
      InvariantViolation,
    );
    assert.throws(() => log.append({ ...entryOf(0), atMs: -1 }), InvariantViolation);
    await log.close();
    assert.throws(() => log.append(entryOf(0)), InvariantViolation);
  });

  it('rejects options below the minimums', async () => {
    const path = await freshPath();
    await assert.rejects(AccountabilityLog.open(path, { maxBytes: 100 }), InvariantViolation);
    await assert.rejects(
      AccountabilityLog.open(path, { maxBytes: 1 << 20, maxBufferedBytes: 10 }),
      InvariantViolation,
    );
  });
});

describe('auditAccountabilityLog: tampering', () => {
  it('detects a flipped byte anywhere, at the entry that holds it', async () => {
    const { bytes } = await writtenLog(12);
    const offsets = recordOffsets(bytes);
    const entryHolding = (position: number): number => {
      if (position < ACCOUNTABILITY_LOG_FORMAT.headerBytes) return 0;
      return offsets.findIndex((start, index) => position >= start && position < offsets[index + 1]!) + 1;
    };
    for (let position = 0; position < bytes.length; position++) {
      const tampered = bytes.slice();
      tampered[position] = tampered[position]! ^ 0x20;
      const audit = await auditAccountabilityLogBytes(tampered);
      assertBrokenAt(audit, entryHolding(position));
      assert.equal(audit.ok === false && audit.tornTail, false, `byte ${position} flip is not a torn write`);
    }
  });

  it('detects a flipped byte in a file', async () => {
    const { path, bytes } = await writtenLog(8);
    const offsets = recordOffsets(bytes);
    const tampered = bytes.slice();
    tampered[offsets[4]! + 10] = tampered[offsets[4]! + 10]! ^ 0xff; // inside entry 5
    await writeFile(path, tampered);
    assertBrokenAt(await auditAccountabilityLog(path), 5, /entry 5/);
  });

  it('detects a removed entry where it was removed', async () => {
    const { bytes, heads } = await writtenLog(10);
    const offsets = recordOffsets(bytes);
    for (let entry = 1; entry < 10; entry++) {
      const without = new Uint8Array([
        ...bytes.subarray(0, offsets[entry - 1]),
        ...bytes.subarray(offsets[entry]),
      ]);
      assertBrokenAt(await auditAccountabilityLogBytes(without), entry, /breaks the hash chain/);
    }
    // Removing the LAST entry leaves a consistent chain: only the published head exposes it.
    const withoutLast = bytes.subarray(0, offsets[9]);
    const audit = await auditAccountabilityLogBytes(withoutLast);
    assertOk(audit);
    assert.equal(audit.entries, 9);
    assert.notDeepEqual(audit.head, heads[10]);
  });

  it('detects two swapped entries at the first of them', async () => {
    const { bytes } = await writtenLog(10);
    const offsets = recordOffsets(bytes);
    for (let entry = 1; entry < 10; entry++) {
      const [a, b, c] = [offsets[entry - 1]!, offsets[entry]!, offsets[entry + 1]!];
      const swapped = new Uint8Array([
        ...bytes.subarray(0, a),
        ...bytes.subarray(b, c),
        ...bytes.subarray(a, b),
        ...bytes.subarray(c),
      ]);
      assertBrokenAt(await auditAccountabilityLogBytes(swapped), entry, /breaks the hash chain/);
    }
  });

  it('reports a forged huge length without reading it', async () => {
    const { bytes } = await writtenLog(3);
    const offsets = recordOffsets(bytes);
    const forged = bytes.slice();
    // A length of 65535 with a matching check: well-formed, but beyond maxRecordBodyBytes.
    forged.set([0xff, 0xff, 0x00, 0x00], offsets[1]!);
    assertBrokenAt(
      await auditAccountabilityLogBytes(forged),
      2,
      /claims 65535 bytes, outside 1\.\.maxRecordBodyBytes/,
    );
  });

  it('reports an unreadable or foreign file at entry 0 without throwing', async () => {
    const path = await freshPath();
    assertBrokenAt(await auditAccountabilityLog(path), 0, /cannot read/);
    await writeFile(path, new Uint8Array(500).fill(7));
    assertBrokenAt(await auditAccountabilityLog(path), 0, /not an accountability log/);
  });

  it('refuses to open a log broken before its tail', async () => {
    const { path, bytes } = await writtenLog(6);
    const tampered = bytes.slice();
    const insideEntry3 = recordOffsets(bytes)[2]! + 8;
    tampered[insideEntry3] = tampered[insideEntry3]! ^ 1;
    await writeFile(path, tampered);
    await assert.rejects(AccountabilityLog.open(path, largeLog), AccountabilityLogError);
    await writeFile(path, new Uint8Array(500).fill(7));
    await assert.rejects(AccountabilityLog.open(path, largeLog), /not an accountability log/);
  });
});

describe('AccountabilityLog: crashes', () => {
  it('reports a torn last entry as an error, at that entry', async () => {
    const { path, bytes } = await writtenLog(7);
    const offsets = recordOffsets(bytes);
    for (let cut = 1; cut < offsets[7]! - offsets[6]!; cut += 9) {
      await writeFile(path, bytes.subarray(0, bytes.length - cut));
      const audit = await auditAccountabilityLog(path);
      assertBrokenAt(audit, 7, /torn write/);
      assert.equal(audit.ok === false && audit.tornTail, true);
    }
  });

  it('repairs a torn tail on open by cutting the incomplete entry', async () => {
    const { path, bytes, heads } = await writtenLog(7);
    await truncate(path, bytes.length - 5);
    const log = await AccountabilityLog.open(path, largeLog);
    assert.deepEqual(log.head(), heads[6]);
    assert.equal((await stat(path)).size, recordOffsets(bytes)[6]);
    log.append(entryOf(100));
    await log.close();
    const audit = await auditAccountabilityLog(path);
    assertOk(audit);
    assert.equal(audit.entries, 7);
    assert.deepEqual(audit.head, log.head());
  });

  it('recreates a file that ends inside its header', async () => {
    const path = await freshPath();
    await writeFile(path, new TextEncoder().encode('PHXAC'));
    assertBrokenAt(await auditAccountabilityLog(path), 0, /ends inside the header/);
    const log = await AccountabilityLog.open(path, largeLog);
    assert.deepEqual(log.head(), ACCOUNTABILITY_LOG_GENESIS_HEAD);
    await log.close();
    assertOk(await auditAccountabilityLog(path));
  });
});

describe('AccountabilityLog: rotation', () => {
  const maxBytes = MIN_ACCOUNTABILITY_LOG_BYTES * 3;

  it('rotates into <path>.1 and keeps the chain continuous across files', async () => {
    const path = await freshPath();
    const log = await AccountabilityLog.open(path, { maxBytes });
    let appended = 0;
    while (log.rotations < 1) {
      log.append(entryOf(appended++));
      await log.flush();
    }
    const rotated = await auditAccountabilityLog(rotatedPath(path));
    assertOk(rotated);
    assert.deepEqual(rotated.startHead, ACCOUNTABILITY_LOG_GENESIS_HEAD);
    const current = await auditAccountabilityLog(path, { expectedStartHead: rotated.head });
    assertOk(current);
    assert.equal(rotated.entries + current.entries, appended);
    assert.deepEqual(current.head, log.head());
    assert.ok((await stat(rotatedPath(path))).size <= maxBytes);
    // The current file does not continue from anything else.
    assertBrokenAt(
      await auditAccountabilityLog(path, { expectedStartHead: ACCOUNTABILITY_LOG_GENESIS_HEAD }),
      0,
      /does not continue/,
    );
    await log.close();
  });

  it('replaces the older rotated file on later rotations', async () => {
    const path = await freshPath();
    const log = await AccountabilityLog.open(path, { maxBytes });
    for (let index = 0; index < 60; index++) log.append(entryOf(index));
    await log.close();
    assert.ok(log.rotations >= 3, `rotated ${log.rotations} times`);
    const rotated = await auditAccountabilityLog(rotatedPath(path));
    assertOk(rotated);
    assert.notDeepEqual(rotated.startHead, ACCOUNTABILITY_LOG_GENESIS_HEAD);
    for (const file of [path, rotatedPath(path)]) assert.ok((await stat(file)).size <= maxBytes);
    const current = await auditAccountabilityLog(path, { expectedStartHead: rotated.head });
    assertOk(current);
    assert.deepEqual(current.head, log.head());
  });

  it('continues the rotated chain after a crash between the rename and the new file', async () => {
    const path = await freshPath();
    const log = await AccountabilityLog.open(path, { maxBytes });
    for (let index = 0; index < 20; index++) log.append(entryOf(index));
    await log.close();
    await unlink(path);
    const rotated = await auditAccountabilityLog(rotatedPath(path));
    assertOk(rotated);
    const reopened = await AccountabilityLog.open(path, { maxBytes });
    assert.deepEqual(reopened.head(), rotated.head);
    reopened.append(entryOf(20));
    await reopened.close();
    assertOk(await auditAccountabilityLog(path, { expectedStartHead: rotated.head }));
  });
});

describe('AccountabilityLog: bounded buffer and failures', () => {
  it('drops entries when the buffer is full and records the gap in the chain', async () => {
    const path = await freshPath();
    const log = await AccountabilityLog.open(path, { ...largeLog, maxBufferedBytes: 600 });
    let accepted = 0;
    let refused = 0;
    // Synchronous appends: the background writer cannot run in between, so the buffer fills.
    for (let index = 0; index < 30; index++) {
      if (log.append(entryOf(index))) accepted++;
      else refused++;
    }
    assert.ok(refused > 0 && accepted > 0);
    assert.equal(log.droppedEntries, refused);
    await log.flush();
    assert.equal(log.bufferedBytes, 0);
    assert.equal(log.append(entryOf(30)), true);
    await log.close();
    const audit = await auditAccountabilityLog(path);
    assertOk(audit);
    assert.equal(audit.droppedEntries, refused);
    assert.equal(audit.entries, accepted + 2, 'the accepted entries, one gap record and the last entry');
    assert.deepEqual(audit.head, log.head());
  });

  it('stops, and reports the write failure from flush and close', async () => {
    const path = await freshPath();
    const log = await AccountabilityLog.open(path, { maxBytes: MIN_ACCOUNTABILITY_LOG_BYTES });
    // With its directory gone, the first rotation (a rename) fails.
    await rm(join(path, '..'), { recursive: true, force: true });
    for (let index = 0; index < 10; index++) log.append(entryOf(index));
    await assert.rejects(log.flush(), /ENOENT/);
    assert.ok(log.failure !== null);
    assert.equal(log.append(entryOf(10)), false);
    assert.ok(log.droppedEntries >= 1);
    await assert.rejects(log.close(), /ENOENT/);
  });
});
