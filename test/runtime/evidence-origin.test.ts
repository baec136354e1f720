import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { IPC_LIMITS, parseReplicaMessage } from '../../src/runtime/ipc.js';

describe('evidence from a replica names the client that handed it in', () => {
  it('keeps a plain, short client id as the origin', () => {
    assert.deepEqual(parseReplicaMessage({ type: 'evidence', evidence: 'AAAA', origin: 'admin' }), {
      type: 'evidence',
      evidence: 'AAAA',
      origin: 'admin',
    });
    assert.deepEqual(parseReplicaMessage({ type: 'evidence', evidence: 'AAAA' }), {
      type: 'evidence',
      evidence: 'AAAA',
    });
  });

  it('drops an origin too long for the guardians to relay, or oddly spelled, but keeps the proof', () => {
    // "client <origin> via replica <id>" must fit a control message's 80-character reporter.
    assert.ok(`client ${'x'.repeat(IPC_LIMITS.maxEvidenceOriginLength)} via replica 63`.length <= 80);
    for (const origin of ['x'.repeat(IPC_LIMITS.maxEvidenceOriginLength + 1), 'a b', '', 7, 'évil\n'])
      assert.deepEqual(parseReplicaMessage({ type: 'evidence', evidence: 'AAAA', origin }), {
        type: 'evidence',
        evidence: 'AAAA',
      });
  });
});

describe('a fork proof from a replica (safe mode)', () => {
  it('is passed on as its encoded text, bounded like evidence', () => {
    assert.deepEqual(parseReplicaMessage({ type: 'fork-proof', proof: 'JQ==' }), {
      type: 'fork-proof',
      proof: 'JQ==',
    });
    assert.equal(parseReplicaMessage({ type: 'fork-proof', proof: 7 }), null);
    assert.equal(
      parseReplicaMessage({ type: 'fork-proof', proof: 'A'.repeat(IPC_LIMITS.maxEvidenceBase64 + 1) }),
      null,
    );
  });
});
