import * as assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import type { StateTransferConfig } from '../../src/core/config.js';
import {
  type Digest,
  digest,
  InvariantViolation,
  type ReplicaId,
  replicaId,
  sequenceNumber,
  toHex,
} from '../../src/messages/ids.js';
import { type HashFunction, leafDigest, merkleRoot } from '../../src/core/merkle.js';
import { StateTransfer, type StateTransferHost } from '../../src/core/state-transfer.js';
import type { CheckpointCertificate, ChunkRequest, ReplicaMessage } from '../../src/messages/types.js';

const sha256: HashFunction = (data) => digest(new Uint8Array(createHash('sha256').update(data).digest()));

interface LogLine {
  readonly level: 'debug' | 'info' | 'warn';
  readonly event: string;
  readonly details: Record<string, string | number | boolean>;
}

class RecordingHost implements StateTransferHost {
  readonly self: ReplicaId = replicaId(0);
  readonly replicaCount = 4;
  readonly hash = sha256;
  readonly sent: { readonly to: ReplicaId; readonly message: ReplicaMessage }[] = [];
  readonly logs: LogLine[] = [];

  constructor(readonly config: StateTransferConfig) {}

  send(to: ReplicaId, message: ReplicaMessage): void {
    this.sent.push({ to, message });
  }

  log(level: LogLine['level'], event: string, details: Record<string, string | number | boolean>): void {
    this.logs.push({ level, event, details });
  }

  /** Everything sent since the last call. */
  take(): { readonly to: ReplicaId; readonly message: ReplicaMessage }[] {
    return this.sent.splice(0);
  }

  droppedSources(): number[] {
    return this.logs
      .filter((line) => line.event === 'state-transfer-source-dropped')
      .map((line) => Number(line.details.source));
  }
}

/** Four chunks in flight per source: two requests of two indices. */
const config: StateTransferConfig = {
  sourceTimeoutMs: 1000,
  chunksPerRequest: 2,
  maxRequestsInFlightPerSource: 2,
};
const sources = [1, 2, 3].map(replicaId);

interface State {
  readonly chunks: readonly Uint8Array[];
  readonly leaves: readonly Digest[];
  readonly certificate: CheckpointCertificate;
}

function stateOf(sequence: number, texts: readonly string[]): State {
  const chunks = texts.map((text) => new TextEncoder().encode(text));
  const leaves = chunks.map((chunk) => leafDigest(sha256, chunk));
  return {
    chunks,
    leaves,
    certificate: { sequence: sequenceNumber(sequence), stateRoot: merkleRoot(sha256, leaves), votes: [] },
  };
}

const eightChunks = stateOf(
  10,
  Array.from({ length: 8 }, (_, index) => `chunk ${index} at 10`),
);

function chunkRequests(
  sent: readonly { readonly to: ReplicaId; readonly message: ReplicaMessage }[],
): { readonly to: ReplicaId; readonly request: ChunkRequest }[] {
  const out: { to: ReplicaId; request: ChunkRequest }[] = [];
  for (const { to, message } of sent)
    if (message.kind === 'chunk-request') out.push({ to, request: message });
  return out;
}

function requestedIndices(
  sent: readonly { readonly to: ReplicaId; readonly message: ReplicaMessage }[],
): number[] {
  return chunkRequests(sent)
    .flatMap(({ request }) => request.indices)
    .sort((a, b) => a - b);
}

/** Answers every outstanding chunk request of `sent` correctly from `state`, except those of `silent`. */
function answer(
  transfer: StateTransfer,
  state: State,
  sent: readonly { readonly to: ReplicaId; readonly message: ReplicaMessage }[],
  now: number,
  silent: readonly number[] = [],
): void {
  for (const { to, request } of chunkRequests(sent)) {
    if (silent.includes(to)) continue;
    for (const index of request.indices) {
      transfer.onChunk(
        to,
        { kind: 'chunk', sequence: request.sequence, index, data: state.chunks[index]! },
        now,
      );
    }
  }
}

/** Keeps answering correctly until the transfer asks for nothing more. */
function answerUntilQuiet(host: RecordingHost, transfer: StateTransfer, state: State, now: number): void {
  for (let round = 0; round < 20; round++) {
    const sent = host.take();
    if (chunkRequests(sent).length === 0) return;
    answer(transfer, state, sent, now);
  }
  assert.fail('the transfer kept asking');
}

function start(state: State = eightChunks, pool = new Map<string, Uint8Array>()) {
  const host = new RecordingHost(config);
  const transfer = new StateTransfer(host, state.certificate, pool, 0);
  return { host, transfer, pool };
}

function manifestOf(state: State) {
  return { kind: 'manifest', sequence: state.certificate.sequence, leaves: state.leaves } as const;
}

describe('StateTransfer manifest', () => {
  it('asks every other replica, and only them, for the manifest of the target', () => {
    const { host } = start();
    assert.deepEqual(host.take(), [
      ...sources.map((to) => ({ to, message: { kind: 'manifest-request', sequence: sequenceNumber(10) } })),
    ]);
  });

  it('drops a source whose manifest does not hash to the certified root, and fetches nothing from it', () => {
    const { host, transfer } = start();
    host.take();
    const forged = stateOf(10, ['forged']);
    transfer.onManifest(replicaId(1), manifestOf(forged), 5);
    assert.deepEqual(host.droppedSources(), [1]);
    assert.equal(host.take().length, 0);
    transfer.onManifest(replicaId(2), manifestOf(eightChunks), 6);
    const sent = host.take();
    assert.deepEqual(requestedIndices(sent), [0, 1, 2, 3, 4, 5, 6, 7]);
    assert.ok(chunkRequests(sent).every(({ to }) => to !== 1));
  });

  it('rejects a manifest made of an inner level of the tree (it would fail every honest chunk)', () => {
    const { host, transfer } = start();
    host.take();
    const node = (left: Digest, right: Digest): Digest => {
      const input = new Uint8Array(65);
      input[0] = 0x01;
      input.set(left, 1);
      input.set(right, 33);
      return sha256(input);
    };
    const leaves = eightChunks.leaves;
    const innerLevel = [0, 2, 4, 6].map((index) => node(leaves[index]!, leaves[index + 1]!));
    transfer.onManifest(
      replicaId(1),
      { kind: 'manifest', sequence: sequenceNumber(10), leaves: innerLevel },
      1,
    );
    assert.deepEqual(host.droppedSources(), [1]);
    transfer.onManifest(replicaId(2), manifestOf(eightChunks), 2);
    answerUntilQuiet(host, transfer, eightChunks, 3);
    assert.ok(transfer.complete);
    assert.deepEqual(transfer.result().chunks, eightChunks.chunks);
  });

  it('ignores a manifest for another sequence and asks again after sourceTimeoutMs without one', () => {
    const { host, transfer } = start();
    host.take();
    transfer.onManifest(replicaId(1), { ...manifestOf(eightChunks), sequence: sequenceNumber(9) }, 1);
    assert.equal(host.take().length, 0);
    transfer.tick(999);
    assert.equal(host.take().length, 0);
    transfer.tick(1000);
    assert.deepEqual(
      host.take().map(({ to, message }) => [to, message.kind]),
      sources.map((to) => [to, 'manifest-request']),
    );
  });
});

describe('StateTransfer chunks', () => {
  it('reuses chunks held locally and requests only the missing ones', () => {
    const pool = new Map<string, Uint8Array>();
    for (const index of [0, 2, 3, 7]) pool.set(toHex(eightChunks.leaves[index]!), eightChunks.chunks[index]!);
    const { host, transfer } = start(eightChunks, pool);
    host.take();
    transfer.onManifest(replicaId(3), manifestOf(eightChunks), 1);
    const sent = host.take();
    assert.deepEqual(requestedIndices(sent), [1, 4, 5, 6]);
    answer(transfer, eightChunks, sent, 2);
    assert.equal(transfer.complete, true);
    const statistics = transfer.statistics();
    assert.equal(statistics.chunksReusedLocally, 4);
    assert.equal(statistics.chunksFetched, 4);
    assert.equal(statistics.chunksTotal, 8);
  });

  it('spreads the missing chunks over all sources, within the per-source limit', () => {
    const { host, transfer } = start();
    host.take();
    transfer.onManifest(replicaId(1), manifestOf(eightChunks), 1);
    const requests = chunkRequests(host.take());
    const perSource = new Map<number, number>();
    for (const { to, request } of requests) {
      assert.ok(request.indices.length <= config.chunksPerRequest);
      assert.equal(request.sequence, 10);
      perSource.set(to, (perSource.get(to) ?? 0) + request.indices.length);
    }
    assert.deepEqual([...perSource.keys()].sort(), [1, 2, 3]);
    for (const count of perSource.values()) {
      assert.ok(count <= config.chunksPerRequest * config.maxRequestsInFlightPerSource);
    }
  });

  it('completes with exactly the certified chunks, and refuses to hand out a result before', () => {
    const { host, transfer } = start();
    host.take();
    assert.throws(() => transfer.result(), InvariantViolation);
    transfer.onManifest(replicaId(2), manifestOf(eightChunks), 1);
    assert.equal(transfer.complete, false);
    assert.throws(() => transfer.result(), InvariantViolation);
    answerUntilQuiet(host, transfer, eightChunks, 2);
    assert.equal(transfer.complete, true);
    const result = transfer.result();
    assert.deepEqual(result.certificate, eightChunks.certificate);
    assert.deepEqual(result.leaves, eightChunks.leaves);
    assert.deepEqual(result.chunks, eightChunks.chunks);
    assert.equal(
      transfer.statistics().bytesFetched,
      eightChunks.chunks.reduce((sum, c) => sum + c.length, 0),
    );
    assert.equal(transfer.statistics().sourcesDropped, 0);
  });

  it('drops a source that sends a corrupt chunk and re-assigns its chunks to the others', () => {
    const { host, transfer } = start();
    host.take();
    transfer.onManifest(replicaId(2), manifestOf(eightChunks), 1);
    const first = host.take();
    const liar = chunkRequests(first).find(({ to }) => to === 1)!.request;
    const [corruptIndex] = liar.indices;
    const liarIndices = chunkRequests(first)
      .filter(({ to }) => to === 1)
      .flatMap(({ request }) => request.indices);
    transfer.onChunk(
      replicaId(1),
      {
        kind: 'chunk',
        sequence: sequenceNumber(10),
        index: corruptIndex!,
        data: new TextEncoder().encode('lies'),
      },
      2,
    );
    assert.deepEqual(host.droppedSources(), [1]);
    answer(transfer, eightChunks, first, 3, [1]);
    const reassigned = host.take();
    assert.ok(chunkRequests(reassigned).every(({ to }) => to !== 1));
    assert.deepEqual(
      requestedIndices(reassigned),
      liarIndices.sort((a, b) => a - b),
    );
    answer(transfer, eightChunks, reassigned, 4);
    answerUntilQuiet(host, transfer, eightChunks, 4);
    assert.equal(transfer.complete, true);
    assert.deepEqual(transfer.result().chunks, eightChunks.chunks);
    assert.equal(transfer.statistics().sourcesDropped, 1);
  });

  it('drops a stalling source after sourceTimeoutMs on tick and re-assigns its chunks', () => {
    const { host, transfer } = start();
    host.take();
    transfer.onManifest(replicaId(1), manifestOf(eightChunks), 0);
    const first = host.take();
    const stalled = chunkRequests(first)
      .filter(({ to }) => to === 2)
      .flatMap(({ request }) => request.indices)
      .sort((a, b) => a - b);
    assert.ok(stalled.length > 0);
    answer(transfer, eightChunks, first, 500, [2]);
    transfer.tick(999);
    assert.deepEqual(host.droppedSources(), []);
    assert.equal(host.take().length, 0);
    transfer.tick(1000);
    assert.deepEqual(host.droppedSources(), [2]);
    const reassigned = host.take();
    assert.ok(chunkRequests(reassigned).every(({ to }) => to !== 2));
    assert.deepEqual(requestedIndices(reassigned), stalled);
    answer(transfer, eightChunks, reassigned, 1100);
    answerUntilQuiet(host, transfer, eightChunks, 1100);
    assert.equal(transfer.complete, true);
    assert.deepEqual(transfer.result().chunks, eightChunks.chunks);
  });

  it('does not drop an idle source that has nothing in flight', () => {
    const { host, transfer } = start();
    host.take();
    transfer.onManifest(replicaId(1), manifestOf(eightChunks), 0);
    answerUntilQuiet(host, transfer, eightChunks, 10);
    transfer.tick(10_000);
    assert.deepEqual(host.droppedSources(), []);
  });

  it('revives every source when all of them were dropped, and then completes', () => {
    const { host, transfer } = start();
    host.take();
    transfer.onManifest(replicaId(1), manifestOf(eightChunks), 0);
    const first = chunkRequests(host.take());
    const corruptChunkFrom = (source: ReplicaId): void => {
      const { request } = first.find(({ to }) => to === source)!;
      transfer.onChunk(
        source,
        { kind: 'chunk', sequence: request.sequence, index: request.indices[0]!, data: new Uint8Array([9]) },
        1,
      );
    };
    corruptChunkFrom(replicaId(1));
    corruptChunkFrom(replicaId(2));
    assert.ok(!host.logs.some((line) => line.event === 'state-transfer-sources-revived'));
    const beforeLastDrop = host.sent.length;
    corruptChunkFrom(replicaId(3));
    assert.deepEqual(host.droppedSources(), [1, 2, 3]);
    assert.ok(host.logs.some((line) => line.event === 'state-transfer-sources-revived'));
    const afterRevival = chunkRequests(host.sent.slice(beforeLastDrop));
    assert.deepEqual(
      [...new Set(afterRevival.map(({ to }) => to))].sort(),
      [1, 2, 3],
      'every revived source is asked again',
    );
    answer(transfer, eightChunks, host.take(), 2);
    answerUntilQuiet(host, transfer, eightChunks, 2);
    assert.equal(transfer.complete, true);
    assert.deepEqual(transfer.result().chunks, eightChunks.chunks);
  });

  it('revives every source for the manifest when all sent bad manifests', () => {
    const { host, transfer } = start();
    host.take();
    for (const source of sources) transfer.onManifest(source, manifestOf(stateOf(10, ['bad'])), 1);
    assert.deepEqual(host.droppedSources(), [1, 2, 3]);
    transfer.tick(1000);
    assert.ok(host.logs.some((line) => line.event === 'state-transfer-sources-revived'));
    assert.deepEqual(
      host.take().map(({ to, message }) => [to, message.kind]),
      sources.map((to) => [to, 'manifest-request']),
    );
  });
});

describe('StateTransfer after an earlier transfer dropped a source', () => {
  it('leaves that source out from the start, so it costs no second timeout', () => {
    const first = start();
    first.host.take();
    first.transfer.onManifest(replicaId(1), manifestOf(eightChunks), 0);
    answer(first.transfer, eightChunks, first.host.take(), 500, [2]);
    first.transfer.tick(1000);
    answerUntilQuiet(first.host, first.transfer, eightChunks, 1100);
    assert.equal(first.transfer.complete, true);
    const dropped = first.transfer.droppedSources();
    assert.deepEqual([...dropped.keys()], [2]);
    assert.ok(!first.transfer.deliveringSources().includes(replicaId(2)));

    const host = new RecordingHost(config);
    const transfer = new StateTransfer(host, eightChunks.certificate, new Map(), 2000, dropped);
    // Neither the manifest nor any chunk is asked of it.
    assert.ok(host.sent.every(({ to }) => to !== 2));
    transfer.onManifest(replicaId(1), manifestOf(eightChunks), 2000);
    assert.ok(chunkRequests(host.sent).every(({ to }) => to !== 2));
    answerUntilQuiet(host, transfer, eightChunks, 2000);
    assert.equal(transfer.complete, true);
    assert.deepEqual(transfer.result().chunks, eightChunks.chunks);
    assert.match(
      transfer.droppedSources().get(replicaId(2))!,
      /^dropped by an earlier transfer: no chunk for/,
    );
  });

  it('asks it again when every other source is dropped too', () => {
    const host = new RecordingHost(config);
    const distrusted = new Map([[replicaId(2), 'no chunk for 1000 ms']]);
    const transfer = new StateTransfer(host, eightChunks.certificate, new Map(), 0, distrusted);
    host.take();
    transfer.onManifest(replicaId(1), manifestOf(eightChunks), 0);
    const requests = chunkRequests(host.take());
    for (const source of [1, 3].map(replicaId)) {
      const { request } = requests.find(({ to }) => to === source)!;
      transfer.onChunk(
        source,
        { kind: 'chunk', sequence: request.sequence, index: request.indices[0]!, data: new Uint8Array([9]) },
        1,
      );
    }
    assert.ok(host.logs.some((line) => line.event === 'state-transfer-sources-revived'));
    assert.ok(
      chunkRequests(host.sent).some(({ to }) => to === 2),
      'the distrusted source is asked at last',
    );
  });
});

describe('StateTransfer retarget', () => {
  it('keeps verified chunks for the newer target and fetches only what it still lacks', () => {
    const { host, transfer, pool } = start();
    host.take();
    transfer.onManifest(replicaId(1), manifestOf(eightChunks), 0);
    const first = host.take();
    // Only source 3 answers before the target moves.
    answer(transfer, eightChunks, first, 1, [1, 2]);
    const verified = chunkRequests(first)
      .filter(({ to }) => to === 3)
      .flatMap(({ request }) => request.indices);
    assert.ok(verified.length > 0);
    // The newer state shares chunks 0..5 with the old one and has new chunks 6, 7 and 8.
    const newer = stateOf(20, [
      ...eightChunks.chunks.slice(0, 6).map((chunk) => new TextDecoder().decode(chunk)),
      'chunk 6 at 20',
      'chunk 7 at 20',
      'chunk 8 at 20',
    ]);
    transfer.retarget(newer.certificate, 2);
    assert.equal(transfer.target, newer.certificate);
    assert.equal(transfer.complete, false);
    assert.deepEqual(
      host
        .take()
        .map(({ to, message }) => [
          to,
          message.kind,
          message.kind === 'manifest-request' && message.sequence,
        ]),
      sources.map((to) => [to, 'manifest-request', 20]),
    );
    for (const index of verified) assert.ok(pool.has(toHex(eightChunks.leaves[index]!)));
    transfer.onManifest(replicaId(2), manifestOf(newer), 3);
    const reusable = verified.filter((index) => index < 6);
    const expectedMissing = [0, 1, 2, 3, 4, 5, 6, 7, 8].filter((index) => !reusable.includes(index));
    assert.deepEqual(requestedIndices(host.sent), expectedMissing);
    assert.equal(transfer.statistics().chunksReusedLocally, reusable.length);
    // A late chunk for the old target (old chunk 6 differs from the new one) is ignored, not held against its sender.
    transfer.onChunk(
      replicaId(1),
      { kind: 'chunk', sequence: sequenceNumber(10), index: 6, data: eightChunks.chunks[6]! },
      3,
    );
    assert.deepEqual(host.droppedSources(), []);
    assert.equal(transfer.statistics().chunksFetched, verified.length);
    answerUntilQuiet(host, transfer, newer, 4);
    assert.equal(transfer.complete, true);
    assert.deepEqual(transfer.result().chunks, newer.chunks);
    assert.equal(transfer.statistics().retargets, 1);
  });

  it('refuses to move to an older or equal target', () => {
    const { transfer } = start();
    assert.throws(() => transfer.retarget(eightChunks.certificate, 1), InvariantViolation);
    assert.throws(() => transfer.retarget(stateOf(9, ['old']).certificate, 1), InvariantViolation);
  });
});
