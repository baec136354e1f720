/**
 * The adversary catalogue (src/adversary/): every behaviour named once with where it runs, the
 * environments' lists derived from it (the simulator's in its draw order, which seeds depend on),
 * and the pure mechanics both environments share.
 */
import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  ADVERSARY_CATALOGUE,
  protocolUnderFaultMode,
  SMALL_BATCH_REQUESTS,
  AT_START_ONLY_BEHAVIOURS,
  type AdversaryBehaviour,
  isRuntimeFaultMode,
  isSimulatorBehaviour,
  LEADER_BEHAVIOURS,
  ONLY_WHEN_NAMED_BEHAVIOURS,
  RECOVERY_BEHAVIOURS,
  RUNTIME_FAULT_MODES,
  SIMULATOR_BEHAVIOURS,
  VOTE_HONEST_BEHAVIOURS,
} from '../../src/adversary/catalogue.js';
import {
  type AdversaryRandom,
  equivocatingVariant,
  FLOOD_BURST_SENDS,
  floodBurst,
  type RewriteContext,
  receivesEquivocation,
  rewriteOutgoing,
  slowLeaderDelayMs,
  stallingLeaderDelayMs,
} from '../../src/adversary/outgoing.js';
import { FaultyService } from '../../src/adversary/faulty-service.js';
import type { ExecutionContext, Service } from '../../src/core/service.js';
import { type ReplicaId, replicaId, sequenceNumber, viewNumber } from '../../src/messages/ids.js';
import { proposalPayload } from '../../src/messages/signing.js';
import type { PrePrepare, ReplicaMessage } from '../../src/messages/types.js';
import { FAULT_MODES } from '../../src/runtime/ipc.js';
import { BYZANTINE_CATALOGUE, drawnInAll } from '../../src/sim/byzantine.js';
import { Prng } from '../../src/sim/prng.js';
import { Harness } from '../core/harness.js';

/** A random source that must not be drawn from: the runtime's modes draw nothing per message. */
const noDraws: AdversaryRandom = {
  int: () => assert.fail('drew an int'),
  chance: () => assert.fail('drew a chance'),
  pick: () => assert.fail('picked'),
  bytes: () => assert.fail('drew bytes'),
};

function contextOf(harness: Harness, random: AdversaryRandom = noDraws): RewriteContext {
  const crypto = harness.cryptos[0]!;
  return {
    config: harness.config,
    crypto,
    random,
    variantOf: (message) => equivocatingVariant(crypto, message),
  };
}

const only =
  (behaviour: AdversaryBehaviour) =>
  (asked: AdversaryBehaviour): boolean =>
    asked === behaviour;

describe('adversary catalogue', () => {
  it('describes every behaviour and says where it runs', () => {
    for (const [name, entry] of Object.entries(ADVERSARY_CATALOGUE)) {
      assert.ok(entry.description.length > 10, name);
      assert.ok(entry.environments.length > 0, name);
    }
  });

  it("keeps the simulator's behaviours in their draw order (seeds replay as before)", () => {
    assert.deepEqual(SIMULATOR_BEHAVIOURS, [
      'silent',
      'equivocate',
      'forge-signatures',
      'replay',
      'wrong-digests',
      'slow-leader',
      'lie-in-view-change',
      'corrupt-checkpoint',
      'flood',
      'lie-in-replies',
      'large-values-client',
      'inflated-status',
      'key-thief',
      'stalling-source',
      'lying-source',
      'frame',
      'flood-recovering',
      'lie-in-new-view',
      'small-batches',
    ]);
    assert.equal(BYZANTINE_CATALOGUE, SIMULATOR_BEHAVIOURS);
    assert.deepEqual(RECOVERY_BEHAVIOURS, ['stalling-source', 'lying-source', 'frame', 'flood-recovering']);
    assert.deepEqual(LEADER_BEHAVIOURS, [
      'equivocate',
      'slow-leader',
      'stalling-leader',
      'lie-in-new-view',
      'small-batches',
    ]);
    assert.deepEqual(AT_START_ONLY_BEHAVIOURS, ['small-batches']);
    // Never drawn by `--byzantine all` (the draw of every seed stays as it was), run when named.
    assert.deepEqual(ONLY_WHEN_NAMED_BEHAVIOURS, ['small-batches']);
    assert.deepEqual(drawnInAll(true), SIMULATOR_BEHAVIOURS.slice(0, -1));
    assert.deepEqual(
      new Set(VOTE_HONEST_BEHAVIOURS),
      new Set(['inflated-status', 'lie-in-replies', 'large-values-client']),
    );
  });

  it('gives the runtime its ten fault modes, eight of them shared with the simulator', () => {
    assert.deepEqual(
      new Set(RUNTIME_FAULT_MODES),
      new Set([
        'equivocate',
        'corrupt-state',
        'lie-in-replies',
        'silent',
        'slow-leader',
        'flood',
        'stalling-leader',
        'stalling-source',
        'lying-source',
        'small-batches',
      ]),
    );
    assert.equal(FAULT_MODES, RUNTIME_FAULT_MODES);
    const shared = RUNTIME_FAULT_MODES.filter((mode) => isSimulatorBehaviour(mode));
    assert.deepEqual(
      new Set(shared),
      new Set([
        'equivocate',
        'lie-in-replies',
        'silent',
        'slow-leader',
        'flood',
        'stalling-source',
        'lying-source',
        'small-batches',
      ]),
    );
    assert.equal(isRuntimeFaultMode('key-thief'), false);
    assert.equal(isRuntimeFaultMode('corrupt-state'), true);
    assert.equal(isSimulatorBehaviour('corrupt-state'), false);
    assert.equal(isRuntimeFaultMode(42), false);
  });
});

describe('rewriteOutgoing', () => {
  const harness = new Harness();

  it("withholds everything when 'silent'", () => {
    assert.equal(
      rewriteOutgoing(only('silent'), replicaId(1), harness.proposal(1), contextOf(harness)),
      null,
    );
  });

  it('leaves messages a behaviour does not touch as they are (the same object, no delay, no draw)', () => {
    const message = harness.proposal(3);
    for (const behaviour of ['lie-in-replies', 'corrupt-state', 'flood'] as const) {
      const rewritten = rewriteOutgoing(only(behaviour), replicaId(1), message, contextOf(harness));
      assert.deepEqual(rewritten, { message, delayMs: 0, forgeMac: false });
      assert.equal(rewritten?.message, message);
    }
  });

  it("'equivocate': half the backups get a second proposal for the same slot, validly signed", () => {
    const message = harness.proposal(4);
    const context = contextOf(harness);
    const variants: ReplicaId[] = [];
    for (const to of [1, 2, 3].map(replicaId)) {
      const rewritten = rewriteOutgoing(only('equivocate'), to, message, context)!;
      assert.equal(rewritten.delayMs, 0);
      if (rewritten.message === message) continue;
      variants.push(to);
      const variant = rewritten.message as PrePrepare;
      assert.equal(variant.sequence, message.sequence);
      assert.notDeepEqual(variant.batchDigest, message.batchDigest);
      assert.ok(
        harness.cryptos[1]!.verifyReplicaSignature(
          replicaId(0),
          variant.keyEpoch,
          proposalPayload(variant.view, variant.sequence, variant.batchDigest),
          variant.signature,
          'proof',
        ),
      );
    }
    assert.deepEqual(
      variants,
      [1, 2, 3].map(replicaId).filter((to) => receivesEquivocation(to, message.sequence)),
    );
    assert.ok(variants.length > 0 && variants.length < 3);
  });

  it("'slow-leader': one delay per proposal for every backup, 30% to 120% of the request timeout", () => {
    for (let sequence = 1; sequence <= 50; sequence++) {
      const message = harness.proposal(sequence);
      const delays = [1, 2, 3].map(
        (to) => rewriteOutgoing(only('slow-leader'), replicaId(to), message, contextOf(harness))!.delayMs,
      );
      assert.equal(new Set(delays).size, 1);
      assert.equal(delays[0], slowLeaderDelayMs(harness.config, message.sequence));
      assert.ok(delays[0]! >= 0.3 * harness.config.requestTimeoutMs - 1);
      assert.ok(delays[0]! <= 1.2 * harness.config.requestTimeoutMs);
    }
  });

  it("'stalling-leader': every proposal held back, two holds together still under the request timeout", () => {
    const message = harness.proposal(7);
    const delays = [1, 2, 3].map(
      (to) => rewriteOutgoing(only('stalling-leader'), replicaId(to), message, contextOf(harness))!.delayMs,
    );
    assert.deepEqual(
      delays,
      [1, 2, 3].map(() => stallingLeaderDelayMs(harness.config)),
    );
    assert.ok(delays[0]! > 0.4 * harness.config.requestTimeoutMs);
    assert.ok(2 * delays[0]! < harness.config.requestTimeoutMs);
  });

  it('draws the same for the same seed (the simulator replays)', () => {
    const message: ReplicaMessage = {
      kind: 'prepare',
      view: viewNumber(0),
      sequence: sequenceNumber(1),
      batchDigest: harness.cryptos[0]!.hash(new Uint8Array([1])),
      replicaId: replicaId(0),
      proposalKeyEpoch: harness.proposal(1).keyEpoch,
      proposalSignature: harness.proposal(1).signature,
    };
    const run = (): unknown[] => {
      const context = contextOf(harness, new Prng(7));
      return Array.from({ length: 20 }, () =>
        rewriteOutgoing(
          (behaviour) => behaviour === 'wrong-digests' || behaviour === 'forge-signatures',
          replicaId(1),
          message,
          context,
        ),
      );
    };
    assert.deepEqual(run(), run());
  });
});

describe('floodBurst', () => {
  it('sends FLOOD_BURST_SENDS frames and messages, to the targets only', () => {
    const sent: { to: ReplicaId; kind: string }[] = [];
    floodBurst(replicaId(0), [replicaId(2), replicaId(3)], new Prng(1), {
      bytes: (to) => sent.push({ to, kind: 'bytes' }),
      message: (to, message) => sent.push({ to, kind: message.kind }),
    });
    assert.equal(sent.length, FLOOD_BURST_SENDS);
    assert.ok(sent.every(({ to }) => to === 2 || to === 3));
    assert.deepEqual(
      sent.slice(5).map(({ kind }) => kind),
      ['status', 'chunk-request', 'batch-request'],
    );
  });
});

describe('FaultyService', () => {
  const context = {} as ExecutionContext;
  const inner: Service = {
    execute: () => Uint8Array.of(1, 2),
    executeReadOnly: () => Uint8Array.of(3),
    snapshot: () => [Uint8Array.of(4), Uint8Array.of(5)],
    restore: () => undefined,
  };

  it('is the service itself with no mode', () => {
    const service = new FaultyService(inner);
    assert.deepEqual(service.execute(new Uint8Array(), context), Uint8Array.of(1, 2));
    assert.deepEqual(service.snapshot(), [Uint8Array.of(4), Uint8Array.of(5)]);
  });

  it("'lie-in-replies' changes results, 'corrupt-state' the last chunk of a snapshot", () => {
    const service = new FaultyService(inner);
    service.mode = 'lie-in-replies';
    assert.notDeepEqual(service.execute(new Uint8Array(), context), Uint8Array.of(1, 2));
    assert.deepEqual(service.executeReadOnly(new Uint8Array(), context), Uint8Array.of(3));
    service.mode = 'corrupt-state';
    const chunks = service.snapshot();
    assert.deepEqual(chunks[0], Uint8Array.of(4));
    assert.notDeepEqual(chunks[1], Uint8Array.of(5));
  });
});

describe('protocolUnderFaultMode', () => {
  it("caps a 'small-batches' core's batches, and leaves every other mode's configuration alone", () => {
    const protocol = { maxBatchRequests: 1024, requestTimeoutMs: 2000 };
    assert.deepEqual(protocolUnderFaultMode(protocol, 'small-batches'), {
      maxBatchRequests: SMALL_BATCH_REQUESTS,
      requestTimeoutMs: 2000,
    });
    assert.equal(protocolUnderFaultMode(protocol, 'stalling-leader'), protocol);
    assert.equal(protocolUnderFaultMode(protocol, null), protocol);
  });
});
