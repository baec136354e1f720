/**
 * What the guardian integration tests share: a steady client workload, report filtering, and an
 * intruder's stolen session keys and the checkpoint certificates it forges with them.
 */
import { performance } from 'node:perf_hooks';
import type { KvClient } from '../../../src/apps/kv/client.js';
import type { ClusterConfig } from '../../../src/config/cluster-config.js';
import { clientRegistryOf } from '../../../src/config/keys.js';
import { keyFromBase64, signingKeyPairFromSeed } from '../../../src/crypto/keys.js';
import { signBytes } from '../../../src/crypto/signatures.js';
import {
  type Digest,
  keyEpoch,
  replicaId,
  type SequenceNumber,
  signature,
} from '../../../src/messages/ids.js';
import { checkpointPayload } from '../../../src/messages/signing.js';
import type { CheckpointCertificate } from '../../../src/messages/types.js';
import { channelKeyDirectory } from '../../../src/transport/key-directory.js';
import { TcpTransport } from '../../../src/transport/tcp.js';
import { replicaNode, type TransportEvents } from '../../../src/transport/transport.js';
import { decode, encode } from '../helpers.js';

/**
 * A steady client: writes its keys and reads each back, and counts anything that goes wrong. At
 * most `operationsPerSecond` (a service's steady load, not a saturating benchmark: six guardians
 * and six replicas already share two cores, and recoveries are measured against T_D).
 */
/** Errors a workload keeps (the first ones tell what went wrong; the count says how often). */
const MAX_RECORDED_ERRORS = 100;

export class Workload {
  completed = 0;
  /** Operations that failed, counting those beyond MAX_RECORDED_ERRORS. */
  failed = 0;
  readonly errors: string[] = [];
  #running = true;
  readonly #done: Promise<void>;

  constructor(kv: KvClient, prefix: string, operationsPerSecond = 100) {
    this.#done = this.#run(kv, prefix, operationsPerSecond);
  }

  async #run(kv: KvClient, prefix: string, operationsPerSecond: number): Promise<void> {
    const started = performance.now();
    for (let index = 0; this.#running; index++) {
      const key = `${prefix}/${index % 50}`;
      try {
        await kv.put(key, encode(`value ${index}`));
        const read = decode(await kv.get(key));
        if (read !== `value ${index}`) this.errors.push(`read ${String(read)} after writing value ${index}`);
        this.completed += 2;
      } catch (error) {
        // Bounded, and paced like a success: a client closed under the loop (a failed test's
        // clean-up) rejects at once, and a loop that never waits on a timer starves the event
        // loop, so the test file never gets to stop its cluster.
        if (this.errors.length < MAX_RECORDED_ERRORS)
          this.errors.push(error instanceof Error ? error.message : String(error));
        this.failed++;
      }
      const due = started + ((this.completed + this.failed) * 1000) / operationsPerSecond;
      const wait = Math.max(1, due - performance.now());
      await new Promise((resolve) => setTimeout(resolve, wait));
    }
  }

  async stop(): Promise<void> {
    this.#running = false;
    await this.#done;
  }
}

export { guardiansUp as up } from '../../../src/runtime/guardian-report.js';

/** What a replica's `/debug/stolen-keys` gives an intruder (test clusters only): its current session keys. */
export interface StolenKeys {
  readonly replica: number;
  readonly keyEpoch: number;
  readonly signingSeed: string;
  readonly certificate: string;
}

/** The session keys replica `replica` holds now, or null while it is down (its rejuvenation). */
export async function stealKeys(config: ClusterConfig, replica: number): Promise<StolenKeys | null> {
  const entry = config.replicas[replica]!;
  try {
    const response = await fetch(`http://${entry.adminHost}:${entry.adminPort}/debug/stolen-keys`);
    return response.status === 200 ? ((await response.json()) as StolenKeys) : null;
  } catch {
    return null;
  }
}

/** A checkpoint certificate for `stateRoot` at `sequence`, signed with every loot's session key. */
export function forgeCheckpointCertificate(
  loot: readonly StolenKeys[],
  sequence: SequenceNumber,
  stateRoot: Digest,
): CheckpointCertificate {
  return {
    sequence,
    stateRoot,
    votes: loot.map((keys) => ({
      replicaId: replicaId(keys.replica),
      keyEpoch: keyEpoch(keys.keyEpoch),
      signature: signature(
        signBytes(
          signingKeyPairFromSeed(keyFromBase64(keys.signingSeed)),
          checkpointPayload(sequence, stateRoot),
        ),
      ),
    })),
  };
}

/**
 * A transport that speaks as `loot.replica` with its stolen session keys, to `targets` (default:
 * every other replica). Only a lower id dials (docs/transport.md): an impostor of the highest id
 * reaches nobody.
 */
export function impostorTransport(
  config: ClusterConfig,
  loot: StolenKeys,
  events: TransportEvents = { onFrame: () => undefined },
  targets: readonly number[] = config.replicas.map((entry) => entry.id).filter((id) => id !== loot.replica),
): Promise<TcpTransport> {
  return TcpTransport.start({
    identity: {
      node: replicaNode(replicaId(loot.replica)),
      keyEpoch: keyEpoch(loot.keyEpoch),
      signingKeys: signingKeyPairFromSeed(keyFromBase64(loot.signingSeed)),
      certificate: new Uint8Array(Buffer.from(loot.certificate, 'base64')),
    },
    peers: targets.map((id) => {
      const entry = config.replicas[id]!;
      return { node: replicaNode(entry.id), host: entry.host, port: entry.port };
    }),
    keys: channelKeyDirectory(clientRegistryOf(config), config),
    events,
  });
}
