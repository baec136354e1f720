import * as assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rename, rm, stat, truncate, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import fc from 'fast-check';
import { bytesEqual, type Digest, digest, InvariantViolation } from '../../src/messages/ids.js';
import {
  ACCOUNTABILITY_LOG_FORMAT,
  ACCOUNTABILITY_LOG_GENESIS_HEAD,
  ACCOUNTABILITY_LOG_LIMITS,
  ACCOUNTABILITY_LOG_MESSAGE_KINDS,
  type AccountabilityAudit,
  type AccountabilityEntry,
  AccountabilityLog,
  AccountabilityLogError,
  accountabilityLogFiles,
  auditAccountabilityLog,
  auditAccountabilityLogBytes,
  auditAccountabilityLogFiles,
  MIN_ACCOUNTABILITY_LOG_BYTES,
  rotatedPath,
} from '../../src/detection/accountability-log.js';
import { ByteWriter } from '../../src/messages/bytes.js';

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

  it('chains every record as SHA-256(previous head ‖ body), whatever the body length', async () => {
    // The writer hashes through a reused buffer (one per process): a record of any length, after
    // a longer or a shorter one, must get exactly the hash a fresh SHA-256 computes.
    const path = await freshPath();
    const log = await AccountabilityLog.open(path, largeLog);
    const peerLengths = [
      1,
      ACCOUNTABILITY_LOG_LIMITS.maxPeerBytes,
      3,
      60,
      ACCOUNTABILITY_LOG_LIMITS.maxPeerBytes,
      1,
    ];
    for (const [index, length] of peerLengths.entries()) {
      assert.equal(log.append({ ...entryOf(index + 1), peer: 'p'.repeat(length) }), true);
    }
    await log.close();
    const bytes = new Uint8Array(await readFile(path));
    const offsets = recordOffsets(bytes);
    assert.equal(offsets.length, peerLengths.length + 1);
    let head = ACCOUNTABILITY_LOG_GENESIS_HEAD;
    for (let record = 0; record < peerLengths.length; record++) {
      const start = offsets[record]!;
      const bodyLength = (bytes[start]! << 8) | bytes[start + 1]!;
      const body = bytes.subarray(start + 4, start + 4 + bodyLength);
      const stored = digest(bytes.slice(start + 4 + bodyLength, offsets[record + 1]));
      assert.deepEqual(stored, sha256(head, body), `record ${record + 1}`);
      head = stored;
    }
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
    for (const writeDelayMs of [-1, 0.5, ACCOUNTABILITY_LOG_LIMITS.maxWriteDelayMs + 1])
      await assert.rejects(AccountabilityLog.open(path, { writeDelayMs }), InvariantViolation);
  });
});

describe('AccountabilityLog: delayed writes', () => {
  const headerBytes = ACCOUNTABILITY_LOG_FORMAT.headerBytes;

  it('writes appended entries together after the delay, without a flush', async () => {
    const path = await freshPath();
    const log = await AccountabilityLog.open(path, { writeDelayMs: 100 });
    for (let index = 0; index < 10; index++) log.append(entryOf(index));
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal((await stat(path)).size, headerBytes, 'written before the delay');
    const deadline = Date.now() + 5000;
    while ((await stat(path)).size === headerBytes && Date.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 20));
    assert.ok((await stat(path)).size > headerBytes, 'never written without a flush');
    assert.equal(log.bufferedBytes, 0);
    await log.close();
    const audit = await auditAccountabilityLog(path);
    assert.ok(audit.ok && audit.entries === 10 && bytesEqual(audit.head, log.head()));
  });

  it('writes at once on flush, and a write’s worth waiting at once', async () => {
    const path = await freshPath();
    const log = await AccountabilityLog.open(path, {
      writeDelayMs: ACCOUNTABILITY_LOG_LIMITS.maxWriteDelayMs,
      ...largeLog,
    });
    log.append(entryOf(0));
    await log.flush();
    assert.ok((await stat(path)).size > headerBytes);
    // 256 KiB is one write's worth: far more than a second's delay is waited for.
    let index = 1;
    while (log.bufferedBytes < 256 * 1024) log.append(entryOf(index++));
    const deadline = Date.now() + ACCOUNTABILITY_LOG_LIMITS.maxWriteDelayMs / 2;
    while (log.bufferedBytes > 0 && Date.now() < deadline)
      await new Promise((resolve) => setImmediate(resolve));
    assert.equal(log.bufferedBytes, 0, 'a full write waited for the delay');
    await log.close();
    const audit = await auditAccountabilityLog(path);
    assert.ok(audit.ok && audit.entries === index);
  });

  it('close() writes what waits at once, not after the delay', async () => {
    const path = await freshPath();
    const log = await AccountabilityLog.open(path, {
      writeDelayMs: ACCOUNTABILITY_LOG_LIMITS.maxWriteDelayMs,
    });
    log.append(entryOf(0));
    const started = Date.now();
    await log.close();
    assert.ok(Date.now() - started < ACCOUNTABILITY_LOG_LIMITS.maxWriteDelayMs, 'close waited for the delay');
    const audit = await auditAccountabilityLog(path);
    assert.ok(audit.ok && audit.entries === 1);
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

/** Every entry of a log file, as its audit reads them. */
async function entriesOf(path: string): Promise<AccountabilityEntry[]> {
  const entries: AccountabilityEntry[] = [];
  assertOk(await auditAccountabilityLog(path, { onEntry: (entry) => entries.push(entry) }));
  return entries;
}

/** A version 1 file, written by hand from its documented format (what older replicas left behind). */
function versionOneLog(entries: readonly AccountabilityEntry[]): { bytes: Uint8Array; head: Digest } {
  const encoder = new TextEncoder();
  const magic = encoder.encode('PHXACCT1');
  const headerCheck = sha256(
    encoder.encode('phalanx/accountability-log/header/v1'),
    magic,
    ACCOUNTABILITY_LOG_GENESIS_HEAD,
  );
  const parts: Uint8Array[] = [magic, ACCOUNTABILITY_LOG_GENESIS_HEAD, headerCheck];
  let head = ACCOUNTABILITY_LOG_GENESIS_HEAD;
  for (const entry of entries) {
    const writer = new ByteWriter();
    writer.u8(1);
    writer.u8(entry.direction === 'sent' ? 0 : 1);
    writer.string(entry.peer);
    writer.string(entry.kind);
    writer.bytes(entry.digest);
    writer.varuint(entry.atMs);
    const body = writer.finish().slice();
    head = sha256(head, body);
    parts.push(
      Uint8Array.of(
        body.length >> 8,
        body.length & 0xff,
        (body.length ^ 0xffff) >> 8,
        (body.length ^ 0xffff) & 0xff,
      ),
    );
    parts.push(body, head);
  }
  return { bytes: Buffer.concat(parts), head };
}

describe('AccountabilityLog: compact version 2 entries', () => {
  const replicaEntry: AccountabilityEntry = {
    direction: 'sent',
    peer: 'replica:2',
    kind: 'pre-prepare',
    digest: sha256(new TextEncoder().encode('a message')),
    atMs: 1_754_000_000_000,
  };

  it('takes 78 bytes for a message between replicas, 98 before', async () => {
    const path = await freshPath();
    const log = await AccountabilityLog.open(path);
    for (let index = 0; index < 100; index++)
      log.append({ ...replicaEntry, atMs: replicaEntry.atMs + index });
    await log.close();
    const size = (await stat(path)).size;
    assert.equal((size - ACCOUNTABILITY_LOG_FORMAT.headerBytes) / 100, 78);
    const v1 = versionOneLog([replicaEntry]);
    assert.equal(v1.bytes.length - ACCOUNTABILITY_LOG_FORMAT.headerBytes, 98);
  });

  it('reads back every peer and kind exactly, whichever form stores it', async () => {
    const peers = [
      'replica:0',
      'replica:63',
      'replica:007',
      'replica:',
      'client:bench-12',
      'client:',
      'replicas',
      'alice',
      'réplica:1',
      'p'.repeat(128),
    ];
    const kinds = [...ACCOUNTABILITY_LOG_MESSAGE_KINDS, 'a-kind-of-the-future', '', 'k'.repeat(64)];
    const written: AccountabilityEntry[] = [];
    peers.forEach((peer, index) =>
      written.push({
        ...replicaEntry,
        peer,
        kind: kinds[index % kinds.length]!,
        direction: index % 2 === 0 ? 'sent' : 'received',
        atMs: index,
      }),
    );
    kinds.forEach((kind, index) =>
      written.push({ ...replicaEntry, kind, atMs: Number.MAX_SAFE_INTEGER - index }),
    );
    const path = await freshPath();
    const log = await AccountabilityLog.open(path);
    for (const entry of written) assert.equal(log.append(entry), true);
    await log.close();
    assert.deepEqual(await entriesOf(path), written);
  });

  it('property: any entry within the limits reads back as written', async () => {
    const path = await freshPath();
    const log = await AccountabilityLog.open(path);
    const written: AccountabilityEntry[] = [];
    const peer = fc.oneof(
      fc.nat({ max: 100_000 }).map((id) => `replica:${id}`),
      fc.stringMatching(/^[A-Za-z0-9._-]{0,64}$/).map((id) => `client:${id}`),
      fc.constant('replicas'),
      fc.string({ maxLength: 40 }),
    );
    const kind = fc.oneof(fc.constantFrom(...ACCOUNTABILITY_LOG_MESSAGE_KINDS), fc.string({ maxLength: 20 }));
    fc.assert(
      fc.property(peer, kind, fc.boolean(), fc.nat({ max: Number.MAX_SAFE_INTEGER }), (p, k, sent, atMs) => {
        const entry: AccountabilityEntry = {
          direction: sent ? 'sent' : 'received',
          peer: p,
          kind: k,
          digest: sha256(new TextEncoder().encode(p + k)),
          atMs,
        };
        if (
          Buffer.byteLength(p) > ACCOUNTABILITY_LOG_LIMITS.maxPeerBytes ||
          Buffer.byteLength(k) > ACCOUNTABILITY_LOG_LIMITS.maxKindBytes
        )
          return;
        assert.equal(log.append(entry), true);
        written.push(entry);
      }),
      { numRuns: 300 },
    );
    await log.close();
    assert.deepEqual(await entriesOf(path), written);
  });

  it('a version 1 body is no version 2 body: the same chain cannot be read under the newer format', async () => {
    const { bytes } = versionOneLog([replicaEntry, replicaEntry]);
    const v1 = await auditAccountabilityLogBytes(bytes);
    assertOk(v1);
    assert.equal(v1.formatVersion, 1);
    // Relabelled as version 2 (magic and header checksum redone): the first record is refused.
    const relabelled = bytes.slice();
    const encoder = new TextEncoder();
    const magic = encoder.encode('PHXACCT2');
    relabelled.set(magic, 0);
    relabelled.set(
      sha256(encoder.encode('phalanx/accountability-log/header/v1'), magic, ACCOUNTABILITY_LOG_GENESIS_HEAD),
      40,
    );
    assertBrokenAt(await auditAccountabilityLogBytes(relabelled), 1, /unknown record type 1/);
  });
});

describe('AccountabilityLog: version 1 files', () => {
  it('are audited, and open() continues their chain in a new version 2 file', async () => {
    const path = await freshPath();
    const old = [entryOf(0), entryOf(1), entryOf(2)];
    const { bytes, head } = versionOneLog(old);
    await writeFile(path, bytes);
    assert.deepEqual(await entriesOf(path), old);
    const log = await AccountabilityLog.open(path);
    assert.deepEqual(log.head(), head);
    log.append(entryOf(3));
    await log.close();
    const files = accountabilityLogFiles(path);
    assert.deepEqual(files, [rotatedPath(path), path]);
    const audits = await auditAccountabilityLogFiles(files);
    assert.deepEqual(
      audits.map(({ audit }) => (audit.ok ? [audit.formatVersion, audit.entries] : audit.reason)),
      [
        [1, 3],
        [2, 1],
      ],
    );
    assert.deepEqual(audits[1]!.audit.ok && audits[1]!.audit.head, log.head());
    assert.deepEqual(await entriesOf(path), [entryOf(3)]);
  });
});

describe('AccountabilityLog: bounded disk footprint', () => {
  const maxBytes = MIN_ACCOUNTABILITY_LOG_BYTES * 3;

  it('keeps maxRotatedFiles rotated files and no more, the chain continuous across all of them', async () => {
    const path = await freshPath();
    const log = await AccountabilityLog.open(path, { maxBytes, maxRotatedFiles: 3 });
    for (let index = 0; index < 400; index++) log.append(entryOf(index));
    await log.close();
    assert.ok(log.rotations >= 10, `rotated ${log.rotations} times`);
    const files = accountabilityLogFiles(path);
    assert.deepEqual(files, [rotatedPath(path, 3), rotatedPath(path, 2), rotatedPath(path, 1), path]);
    assert.deepEqual((await readdir(join(path, '..'))).length, 4, 'nothing else is left behind');
    let total = 0;
    for (const file of files) {
      const size = (await stat(file)).size;
      assert.ok(size <= maxBytes, `${file}: ${size} bytes`);
      total += size;
    }
    assert.ok(total <= (1 + 3) * maxBytes);
    const audits = await auditAccountabilityLogFiles(files);
    assert.equal(audits.length, 4);
    for (const { audit } of audits) assertOk(audit);
    const last = audits[3]!.audit;
    assertOk(last);
    assert.deepEqual(last.head, log.head());
  });

  it('defaults: 8 MiB files, 3 rotated files, a 32 MiB bound in all', async () => {
    const log = await AccountabilityLog.open(await freshPath());
    assert.equal(log.maxBytes, ACCOUNTABILITY_LOG_LIMITS.defaultMaxFileBytes);
    assert.equal(log.maxRotatedFiles, ACCOUNTABILITY_LOG_LIMITS.defaultMaxRotatedFiles);
    assert.equal((1 + log.maxRotatedFiles) * log.maxBytes, 32 * 1024 * 1024);
    await log.close();
    await assert.rejects(
      AccountabilityLog.open(await freshPath(), { maxRotatedFiles: 0 }),
      InvariantViolation,
    );
  });

  it('detects rotated files swapped or removed between others', async () => {
    const path = await freshPath();
    const log = await AccountabilityLog.open(path, { maxBytes, maxRotatedFiles: 3 });
    for (let index = 0; index < 200; index++) log.append(entryOf(index));
    await log.close();
    const files = accountabilityLogFiles(path);
    const swapped = [files[0]!, files[2]!, files[1]!, files[3]!];
    const audits = await auditAccountabilityLogFiles(swapped);
    assert.equal(audits.length, 2, 'stops at the first file that does not continue the chain');
    assertBrokenAt(audits[1]!.audit, 0, /does not continue/);
    const withoutOne = [files[0]!, files[2]!, files[3]!];
    assertBrokenAt((await auditAccountabilityLogFiles(withoutOne))[1]!.audit, 0, /does not continue/);
  });

  it('continues from <path>.1 after a crash in the middle of shifting the rotated files', async () => {
    const path = await freshPath();
    const log = await AccountabilityLog.open(path, { maxBytes, maxRotatedFiles: 3 });
    for (let index = 0; index < 200; index++) log.append(entryOf(index));
    await log.close();
    const rotated = await auditAccountabilityLog(path);
    assertOk(rotated);
    // As if the process stopped after renaming <path> to <path>.1 (older ones already moved).
    await unlink(rotatedPath(path, 3));
    await rename(rotatedPath(path, 2), rotatedPath(path, 3));
    await rename(rotatedPath(path, 1), rotatedPath(path, 2));
    await rename(path, rotatedPath(path, 1));
    const reopened = await AccountabilityLog.open(path, { maxBytes, maxRotatedFiles: 3 });
    assert.deepEqual(reopened.head(), rotated.head);
    reopened.append(entryOf(1000));
    await reopened.close();
    for (const { audit } of await auditAccountabilityLogFiles(accountabilityLogFiles(path))) assertOk(audit);
  });
});
