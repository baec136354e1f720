/** The guardian link's framing: bounded before anything is buffered or parsed. */
import * as assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { describe, it } from 'node:test';
import {
  encodeFrame,
  FRAME_HEADER_BYTES,
  FrameDecoder,
  FramedLink,
  IPC_LIMITS,
  MAX_GUARDIAN_FRAME_BYTES,
  MAX_REPLICA_FRAME_BYTES,
  parseGuardianMessage,
  parseReplicaMessage,
} from '../../src/runtime/ipc.js';

function header(length: number): Buffer {
  const bytes = Buffer.alloc(FRAME_HEADER_BYTES);
  bytes.writeUInt32BE(length, 0);
  return bytes;
}

describe('IPC framing', () => {
  it('round-trips messages, several per chunk', () => {
    const decoder = new FrameDecoder(1024);
    const chunk = Buffer.concat([encodeFrame({ type: 'a' }, 1024), encodeFrame({ type: 'b', n: 1 }, 1024)]);
    assert.deepEqual(decoder.push(chunk), { ok: true, messages: [{ type: 'a' }, { type: 'b', n: 1 }] });
  });

  it('reassembles a frame split at every byte, the prefix included', () => {
    const frame = encodeFrame({ type: 'status', view: 7, text: 'é'.repeat(50) }, 1024);
    const decoder = new FrameDecoder(1024);
    const messages: unknown[] = [];
    for (let index = 0; index < frame.length; index++) {
      const result = decoder.push(frame.subarray(index, index + 1));
      assert.ok(result.ok);
      messages.push(...result.messages);
      assert.ok(decoder.bufferedBytes <= FRAME_HEADER_BYTES + 1024);
    }
    assert.deepEqual(messages, [{ type: 'status', view: 7, text: 'é'.repeat(50) }]);
    assert.equal(decoder.bufferedBytes, 0);
  });

  it('refuses an oversized length on the prefix alone, before buffering the payload', () => {
    const decoder = new FrameDecoder(MAX_REPLICA_FRAME_BYTES);
    const result = decoder.push(Buffer.concat([header(0xffff_ffff), Buffer.alloc(16)]));
    assert.equal(result.ok, false);
    assert.match(result.ok ? '' : result.reason, /frame length 4294967295 is outside/);
    assert.equal(decoder.bufferedBytes, 0);
    // Failed for good: the stream has lost its framing.
    assert.equal(decoder.push(encodeFrame({ type: 'a' }, 1024)).ok, false);
  });

  it('refuses a frame one byte over the limit and accepts one at it', () => {
    const limit = 64;
    const atLimit = Buffer.from(JSON.stringify('x'.repeat(limit - 2)));
    assert.equal(atLimit.length, limit);
    assert.deepEqual(new FrameDecoder(limit).push(Buffer.concat([header(limit), atLimit])), {
      ok: true,
      messages: ['x'.repeat(limit - 2)],
    });
    assert.equal(new FrameDecoder(limit).push(header(limit + 1)).ok, false);
    assert.throws(() => encodeFrame('x'.repeat(limit), limit), RangeError);
  });

  it('refuses an empty frame and a frame that is not JSON', () => {
    assert.equal(new FrameDecoder(1024).push(header(0)).ok, false);
    const garbage = Buffer.from('{"type": nope');
    const result = new FrameDecoder(1024).push(Buffer.concat([header(garbage.length), garbage]));
    assert.equal(result.ok, false);
    assert.match(result.ok ? '' : result.reason, /not JSON/);
  });

  it('a link closes on garbage and reports it once, never throwing', async () => {
    const socket = new PassThrough();
    const seen: string[] = [];
    let closed = 0;
    const link = new FramedLink(
      socket,
      { maxIncomingBytes: 1024, maxOutgoingBytes: 1024 },
      {
        onMessage: (message) => seen.push(JSON.stringify(message)),
        onProtocolError: (reason) => seen.push(`error: ${reason}`),
        onClose: () => closed++,
      },
    );
    socket.write(encodeFrame({ type: 'ok' }, 1024));
    socket.write(Buffer.concat([header(1025), Buffer.from('rest of a flood')]));
    socket.write(encodeFrame({ type: 'after' }, 1024));
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(seen, ['{"type":"ok"}', 'error: frame length 1025 is outside 1..1024']);
    assert.equal(link.open, false);
    assert.equal(link.send({ type: 'late' }), false);
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(closed, 1);
  });
});

describe('replica-to-guardian messages', () => {
  it("reads a standby's 'booted', ignoring anything else it carries", () => {
    assert.deepEqual(parseReplicaMessage({ type: 'booted' }), { type: 'booted' });
    assert.deepEqual(parseReplicaMessage({ type: 'booted', extra: 'x'.repeat(10) }), { type: 'booted' });
  });

  it('refuses unknown types and malformed progress', () => {
    assert.equal(parseReplicaMessage({ type: 'bootedd' }), null);
    assert.equal(parseReplicaMessage(['booted']), null);
    assert.equal(parseReplicaMessage({ type: 'progress', stage: 'booted', detail: '' }), null);
  });
});

describe('guardian-to-replica messages', () => {
  it('a cut-off carries its proof within the evidence bound, and the frame bound holds the largest', () => {
    const cutOff = { type: 'cut-off', replica: 2, keyEpoch: 3, reason: 'proof: lying-reply' };
    assert.deepEqual(parseGuardianMessage(cutOff), cutOff);
    assert.deepEqual(parseGuardianMessage({ ...cutOff, evidence: 'AAEC' }), { ...cutOff, evidence: 'AAEC' });
    assert.equal(parseGuardianMessage({ ...cutOff, evidence: 7 }), null);
    const largest = 'A'.repeat(IPC_LIMITS.maxEvidenceBase64);
    assert.equal(parseGuardianMessage({ ...cutOff, evidence: largest })?.type, 'cut-off');
    assert.equal(parseGuardianMessage({ ...cutOff, evidence: `${largest}A` }), null);
    // The largest such message fits in a frame the replica accepts from its guardian.
    assert.ok(encodeFrame({ ...cutOff, evidence: largest }, MAX_GUARDIAN_FRAME_BYTES).length > 0);
  });
});
