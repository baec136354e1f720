/**
 * Attack modes for tests and demos: a replica started (or switched at run time by its guardian)
 * into one of these behaves like an intruder holds it. Only clusters whose configuration says
 * `allowFaultInjection: true` accept them; production configurations refuse.
 *
 * - equivocate:     as leader, sends a second, validly signed batch to half the backups
 * - corrupt-state:  its checkpoints describe a state that differs from everybody else's
 * - lie-in-replies: answers clients with results it made up (and signs them)
 * - silent:         sends nothing at all
 * - slow-leader:    as leader, holds every proposal back for a while
 * - flood:          sends bursts of garbage frames to the other replicas
 */
import { randomBytes } from 'node:crypto';
import type { ExecutionContext, Service } from '../core/service.js';
import type { CoreCrypto } from '../core/crypto.js';
import { batchContent, proposalPayload, requestContent } from '../messages/signing.js';
import type { PrePrepare } from '../messages/types.js';
import type { FaultMode } from './ipc.js';

/** Wraps the real service so that corrupt-state and lie-in-replies can be switched on and off. */
export class FaultyService implements Service {
  readonly #inner: Service;
  mode: FaultMode | null = null;

  constructor(inner: Service) {
    this.#inner = inner;
  }

  execute(operation: Uint8Array, context: ExecutionContext): Uint8Array {
    const result = this.#inner.execute(operation, context);
    if (this.mode !== 'lie-in-replies') return result;
    // Applies the operation (so the lie is not a crash) but answers something else.
    const lie = new Uint8Array(result.length + 1);
    lie.set(result);
    lie[result.length] = 0x5a;
    return lie;
  }

  executeReadOnly(operation: Uint8Array, context: ExecutionContext): Uint8Array {
    return this.#inner.executeReadOnly(operation, context);
  }

  snapshot(): readonly Uint8Array[] {
    const chunks = this.#inner.snapshot();
    if (this.mode !== 'corrupt-state' || chunks.length === 0) return chunks;
    // A bit flipped in the last chunk: the replica's checkpoint root no longer matches the
    // quorum's, which the others prove with its own signed vote.
    const corrupted = chunks.slice();
    const last = corrupted[corrupted.length - 1]!;
    const copy = new Uint8Array(last.length + 1);
    copy.set(last);
    copy[last.length] = 0xa5;
    corrupted[corrupted.length - 1] = copy;
    return corrupted;
  }

  restore(chunks: readonly Uint8Array[]): void {
    this.#inner.restore(chunks);
  }
}

/** A second proposal for the same (view, sequence): the batch without its last request, signed. */
export function equivocatingVariant(crypto: CoreCrypto, message: PrePrepare): PrePrepare {
  const batch = message.batch.length > 1 ? message.batch.slice(0, -1) : [];
  const digests = batch.map((request) => crypto.hash(requestContent(request)));
  const batchDigest = crypto.hash(batchContent(digests));
  const signed = crypto.sign(proposalPayload(message.view, message.sequence, batchDigest));
  return { ...message, batch, batchDigest, keyEpoch: signed.keyEpoch, signature: signed.signature };
}

/** Bytes that are not a message (a flood frame). */
export function garbageFrame(): Uint8Array {
  return new Uint8Array(randomBytes(16 + Math.floor(Math.random() * 200)));
}

/** How long a slow leader holds each proposal back. */
export const SLOW_LEADER_DELAY_MS = 1500;
/** Garbage frames per peer per flood tick. */
export const FLOOD_FRAMES_PER_TICK = 20;
