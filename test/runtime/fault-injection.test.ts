/**
 * The runtime's test-only fault injection (src/runtime/fault-modes.ts), the replica node's
 * outgoing interceptor: what each mode does to what the core sends, and that a replica whose
 * configuration does not allow fault injection gets no interceptor and refuses fault modes (its
 * send path is the plain one). Timers are node:test's mock timers: nothing here waits for a clock.
 */
import * as assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, beforeEach, describe, it, mock } from 'node:test';
import pino from 'pino';
import { receivesEquivocation, slowLeaderDelayMs } from '../../src/adversary/outgoing.js';
import { freePortRange } from '../../src/cli/bench.js';
import { faultInjectionOf } from '../../src/cli/replica.js';
import { type ClusterConfig, loadClusterConfig } from '../../src/config/cluster-config.js';
import { generateCluster, loadReplicaKeyFile, replicaKeyPath } from '../../src/config/keys.js';
import type { Service } from '../../src/core/service.js';
import { type ReplicaId, replicaId, sequenceNumber, viewNumber } from '../../src/messages/ids.js';
import type { ReplicaMessage } from '../../src/messages/types.js';
import { createKvService } from '../../src/apps/kv/index.js';
import { FaultInjection } from '../../src/runtime/fault-modes.js';
import type { GuardianToReplica } from '../../src/runtime/ipc.js';
import { ReplicaNode } from '../../src/runtime/replica-node.js';
import { Harness } from '../core/harness.js';

const harness = new Harness();

/** A fault injection attached to a fake replica 0 of four that records what it sends. */
function attached(): {
  injection: FaultInjection;
  sent: { to: ReplicaId; message: ReplicaMessage }[];
  raw: { to: ReplicaId; bytes: Uint8Array }[];
} {
  const injection = new FaultInjection();
  const sent: { to: ReplicaId; message: ReplicaMessage }[] = [];
  const raw: { to: ReplicaId; bytes: Uint8Array }[] = [];
  injection.attach({
    id: replicaId(0),
    config: { n: 4, protocol: harness.config },
    crypto: harness.cryptos[0]!,
    send: (to, message) => sent.push({ to, message }),
    sendBytes: (to, bytes) => raw.push({ to, bytes }),
  });
  return { injection, sent, raw };
}

describe('FaultInjection, the outgoing interceptor of test clusters', () => {
  beforeEach(() => mock.timers.enable({ apis: ['setTimeout', 'setInterval'] }));
  afterEach(() => mock.timers.reset());

  it('takes nothing over without a mode: the plain path sends', () => {
    const { injection, sent } = attached();
    assert.equal(injection.broadcast(harness.proposal(1)), false);
    assert.equal(injection.send(replicaId(1), harness.proposal(1)), false);
    assert.equal(injection.reply(), false);
    assert.deepEqual(sent, []);
  });

  it("'silent' withholds messages, broadcasts and replies", () => {
    const { injection, sent } = attached();
    injection.setMode('silent');
    assert.equal(injection.broadcast(harness.proposal(1)), true);
    assert.equal(injection.send(replicaId(2), harness.proposal(1)), true);
    assert.equal(injection.reply(), true);
    assert.deepEqual(sent, []);
  });

  it("'equivocate' sends a second proposal to the backups the catalogue names, and leaves other messages alone", () => {
    const { injection, sent } = attached();
    injection.setMode('equivocate');
    const message = harness.proposal(5);
    assert.equal(injection.broadcast(message), true);
    assert.deepEqual(
      sent.map(({ to }) => to),
      [1, 2, 3],
    );
    for (const { to, message: delivered } of sent)
      assert.equal(delivered !== message, receivesEquivocation(to, message.sequence), `replica ${to}`);
    const status: ReplicaMessage = {
      kind: 'status',
      replicaId: replicaId(0),
      view: viewNumber(0),
      viewChangeInProgress: false,
      lastExecuted: sequenceNumber(0),
      stableCheckpoint: sequenceNumber(0),
    };
    assert.equal(injection.broadcast(status), false);
  });

  it("'slow-leader' holds each proposal back by the catalogue's delay", () => {
    const { injection, sent } = attached();
    injection.setMode('slow-leader');
    const message = harness.proposal(9);
    assert.equal(injection.broadcast(message), true);
    const delay = slowLeaderDelayMs(harness.config, message.sequence);
    mock.timers.tick(delay - 1);
    assert.equal(sent.length, 0);
    mock.timers.tick(1);
    assert.deepEqual(
      sent.map(({ to, message: delivered }) => [to, delivered === message]),
      [
        [1, true],
        [2, true],
        [3, true],
      ],
    );
    injection.close();
  });

  it("'flood' sends bursts to the other replicas until the mode changes", () => {
    const { injection, sent, raw } = attached();
    injection.setMode('flood');
    mock.timers.tick(50);
    assert.ok(raw.length >= 3 * 10, `${raw.length} raw frames`);
    assert.ok(sent.length > 0);
    assert.ok([...raw, ...sent].every(({ to }) => to !== 0));
    injection.setMode(null);
    const count = raw.length;
    mock.timers.tick(500);
    assert.equal(raw.length, count);
  });

  it("wraps the service: 'lie-in-replies' and 'corrupt-state' follow the mode", () => {
    const injection = new FaultInjection();
    const inner: Service = {
      execute: () => Uint8Array.of(1),
      executeReadOnly: () => Uint8Array.of(2),
      snapshot: () => [Uint8Array.of(3)],
      restore: () => undefined,
    };
    const service = injection.wrapService(inner);
    const context = { sequence: sequenceNumber(1) } as unknown as Parameters<Service['execute']>[1];
    assert.deepEqual(service.execute(new Uint8Array(), context), Uint8Array.of(1));
    injection.setMode('lie-in-replies');
    assert.notDeepEqual(service.execute(new Uint8Array(), context), Uint8Array.of(1));
    injection.setMode('corrupt-state');
    assert.notDeepEqual(service.snapshot(), [Uint8Array.of(3)]);
  });
});

describe('a replica whose configuration does not allow fault injection', () => {
  const directory = mkdtempSync(join(tmpdir(), 'phalanx-fault-injection-'));
  after(() => rmSync(directory, { recursive: true, force: true }));

  async function configuration(allowFaultInjection: boolean): Promise<ClusterConfig> {
    const basePort = await freePortRange(2 * 4 + 101);
    const { configPath } = await generateCluster({
      directory: join(directory, String(allowFaultInjection)),
      f: 1,
      k: 0,
      host: '127.0.0.1',
      basePort,
      clients: ['admin'],
      allowFaultInjection,
    });
    return loadClusterConfig(configPath);
  }

  it('gets no interceptor from `phalanx replica`, and one where the configuration allows it', async () => {
    assert.deepEqual(faultInjectionOf(await configuration(false)), {});
    assert.ok(faultInjectionOf(await configuration(true)).outgoingInterceptor instanceof FaultInjection);
  });

  it('refuses a fault mode and an interceptor at start, and fault modes from its guardian', async () => {
    const config = await configuration(false);
    const id = replicaId(0);
    const lines: string[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => lines.push(line) });
    const keys = { kind: 'key-file', file: await loadReplicaKeyFile(replicaKeyPath(config, id)) } as const;
    const common = { config, id, keys, logger, service: createKvService };
    await assert.rejects(
      ReplicaNode.start({ ...common, faultMode: 'silent' }),
      /fault mode silent refused: the configuration does not set allowFaultInjection/,
    );
    await assert.rejects(
      ReplicaNode.start({ ...common, outgoingInterceptor: new FaultInjection() }),
      /fault injection refused/,
    );
    let toReplica: ((message: GuardianToReplica) => void) | null = null;
    const node = await ReplicaNode.start({
      ...common,
      guardian: { send: () => undefined, onMessage: (handler) => (toReplica = handler) },
    });
    try {
      assert.equal(node.faultInjectionInstalled, false);
      assert.ok(toReplica !== null);
      (toReplica as (message: GuardianToReplica) => void)({ type: 'fault', mode: 'silent' });
      assert.ok(
        lines.some((line) => line.includes('fault mode refused')),
        'the guardian-switched mode is refused',
      );
      assert.ok(!lines.some((line) => line.includes('FAULT MODE ON')));
    } finally {
      await node.close();
    }
  });
});
