/**
 * A guardian keeps its replica's safe mode (src/recovery/safe-mode-order.ts): the record names the
 * configuration it was verified under, so only the operator's new configuration ends it; a damaged
 * record is never read as "no safe mode"; the proof travels to every new process with its session
 * keys; and a process that starts in safe mode ends its rejuvenation at once instead of at T_D.
 */
import * as assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { CONTROL_LIMITS, decodeControl, encodeControl } from '../../src/recovery/control.js';
import {
  configurationFingerprint,
  judgeStoredSafeMode,
  SAFE_MODE_ORDER_LIMITS,
  type StoredSafeMode,
} from '../../src/recovery/safe-mode-order.js';
import { IPC_LIMITS, parseGuardianMessage, parseReplicaMessage } from '../../src/runtime/ipc.js';
import { OneGuardian } from './one-guardian.js';

function configuration(identitySeed: number) {
  return {
    n: 4,
    f: 1,
    replicas: [0, 1, 2, 3].map((id) => ({
      id,
      identityKey: new Uint8Array(32).fill(identitySeed + id),
    })),
  } as unknown as Parameters<typeof configurationFingerprint>[0];
}

const RECORD: StoredSafeMode = {
  configuration: configurationFingerprint(configuration(1)),
  proof: 'AAECAw==',
  culprits: [1, 2],
  verifiedAtMs: 1_700_000_000_000,
};

describe("a guardian's safe-mode record", () => {
  test('applies under the configuration it was verified in, and under no other', () => {
    const text = JSON.stringify(RECORD);
    const same = judgeStoredSafeMode(text, configurationFingerprint(configuration(1)));
    assert.equal(same.kind, 'applies');
    assert.deepEqual(same.kind === 'applies' ? same.record : null, RECORD);
    // New identity keys for every replica: the operator's way out.
    const renewed = judgeStoredSafeMode(text, configurationFingerprint(configuration(50)));
    assert.equal(renewed.kind, 'other-configuration');
    // One replica's identity key replaced is another configuration too.
    const oneReplaced = configuration(1);
    (oneReplaced.replicas[2] as { identityKey: Uint8Array }).identityKey = new Uint8Array(32).fill(99);
    assert.notEqual(configurationFingerprint(oneReplaced), RECORD.configuration);
    assert.equal(configurationFingerprint(configuration(1)), RECORD.configuration, 'stable');
  });

  test('a damaged record is unreadable, never "no safe mode"', () => {
    const fingerprint = RECORD.configuration;
    const damaged: unknown[] = [
      'not json',
      '[]',
      'null',
      { ...RECORD, configuration: 'abc' },
      { ...RECORD, proof: '' },
      { ...RECORD, proof: 'not base64!' },
      { ...RECORD, proof: 'A'.repeat(SAFE_MODE_ORDER_LIMITS.maxProofBase64 + 4) },
      { ...RECORD, culprits: [-1] },
      { ...RECORD, culprits: 'x' },
      { ...RECORD, verifiedAtMs: null },
    ];
    for (const value of damaged) {
      const text = typeof value === 'string' ? value : JSON.stringify(value);
      const verdict = judgeStoredSafeMode(text, fingerprint);
      assert.equal(verdict.kind, 'unreadable', text.slice(0, 80));
    }
  });

  test('the session keys carry the proof, within the link limit', () => {
    const keys = {
      type: 'session-keys',
      keyEpoch: 3,
      signingSeed: 'AA==',
      agreementSeed: 'AA==',
      certificate: 'AA==',
      certificates: [],
      amnesiac: true,
      faultMode: null,
    };
    assert.equal(parseGuardianMessage(keys)?.type, 'session-keys');
    const ordered = parseGuardianMessage({ ...keys, safeMode: RECORD.proof });
    assert.ok(ordered?.type === 'session-keys' && ordered.safeMode === RECORD.proof);
    assert.equal(parseGuardianMessage({ ...keys, safeMode: 7 }), null);
    assert.equal(
      parseGuardianMessage({ ...keys, safeMode: 'A'.repeat(IPC_LIMITS.maxEvidenceBase64 + 1) }),
      null,
    );
    // While the process runs (a proof learned from another guardian).
    assert.deepEqual(parseGuardianMessage({ type: 'safe-mode', proof: RECORD.proof }), {
      type: 'safe-mode',
      proof: RECORD.proof,
    });
    assert.equal(parseGuardianMessage({ type: 'safe-mode' }), null);
    assert.equal(
      parseGuardianMessage({ type: 'safe-mode', proof: 'A'.repeat(IPC_LIMITS.maxEvidenceBase64 + 1) }),
      null,
    );
    assert.deepEqual(parseReplicaMessage({ type: 'progress', stage: 'safe-mode', detail: 'checkpoint 4' }), {
      type: 'progress',
      stage: 'safe-mode',
      detail: 'checkpoint 4',
    });
  });

  test('guardians relay the proof they keep on their control channel, within its limit', () => {
    assert.deepEqual(decodeControl(encodeControl({ type: 'fork-proof', proof: RECORD.proof })), {
      ok: true,
      message: { type: 'fork-proof', proof: RECORD.proof },
    });
    const frame = (value: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(value));
    assert.equal(decodeControl(frame({ type: 'fork-proof', proof: 3 })).ok, false);
    assert.equal(
      decodeControl(frame({ type: 'fork-proof', proof: 'A'.repeat(CONTROL_LIMITS.maxBase64Bytes + 1) })).ok,
      false,
    );
    // The largest proof a replica may hand its guardian is relayed too (at 768 KiB it was not).
    const largest = 'A'.repeat(IPC_LIMITS.maxEvidenceBase64);
    assert.deepEqual(decodeControl(encodeControl({ type: 'fork-proof', proof: largest })), {
      ok: true,
      message: { type: 'fork-proof', proof: largest },
    });
  });

  test('a process that starts in safe mode ends its rejuvenation at once, without a rejoin or an alarm', () => {
    const guardian = new OneGuardian();
    // A crash: the rejuvenation after it starts a new process, which reports safe mode.
    guardian.crashIntoRejuvenation();
    guardian.actions.length = 0;
    guardian.feed({ type: 'replica-progress', now: guardian.nowMs, stage: 'safe-mode' });
    assert.equal(guardian.step(), 'idle');
    assert.ok(!guardian.actions.some((action) => action.type === 'nudge-replica'), 'no rejoin asked');
    assert.ok(!guardian.actions.some((action) => action.type === 'alarm'), 'no alarm');
    const record = guardian.core.status(guardian.nowMs).recentRecoveries[0];
    assert.ok(record !== undefined && !record.exceededBound);
  });
});
