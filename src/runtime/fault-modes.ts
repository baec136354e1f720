/**
 * Test-only fault injection: a replica started (or switched at run time by its guardian) into one
 * of the fault modes behaves like an intruder holds it. The modes are the runtime's part of the
 * adversary catalogue (src/adversary/catalogue.ts), and their mechanics are the catalogue's:
 * `rewriteOutgoing` for what the replica sends, `floodBurst` for 'flood', `FaultyService` for
 * what it executes ('lie-in-replies', 'corrupt-state').
 *
 * FaultInjection is the replica node's outgoing interceptor. Only a cluster whose configuration
 * says `allowFaultInjection: true` installs one (`phalanx replica` does it; ReplicaNode.start
 * refuses one otherwise), so a production replica's send path and service are the plain ones.
 */
import { randomBytes, randomInt } from 'node:crypto';
import { FaultyService } from '../adversary/faulty-service.js';
import {
  type AdversaryRandom,
  equivocatingVariant,
  FLOOD_BURST_SENDS,
  floodBurst,
  type RewriteContext,
  rewriteOutgoing,
  withholdsEverything,
} from '../adversary/outgoing.js';
import type { AdversaryBehaviour } from '../adversary/catalogue.js';
import type { Service } from '../core/service.js';
import { type ReplicaId, replicaId } from '../messages/ids.js';
import type { ReplicaMessage } from '../messages/types.js';
import type { FaultMode } from './ipc.js';
import type { InterceptedReplica, OutgoingInterceptor } from './replica-node.js';

/** How often a flooding replica sends a round of bursts. */
export const FLOOD_INTERVAL_MS = 50;
/** Frames and messages a flooding replica sends per round, per peer. */
export const FLOOD_SENDS_PER_PEER = 20;
/** Messages a slow leader holds back at once; beyond this it drops them (an intruder may). */
export const MAX_DELAYED_SENDS = 10_000;

/** A real random source for the catalogue's draws (an intruder's choices need no seed). */
export const cryptoRandom: AdversaryRandom = {
  int: (bound) => randomInt(bound),
  chance: (probability) => randomInt(2 ** 32) / 2 ** 32 < probability,
  pick: (items) => {
    if (items.length === 0) throw new RangeError('pick from an empty list');
    return items[randomInt(items.length)]!;
  },
  bytes: (length) => new Uint8Array(randomBytes(length)),
};

export class FaultInjection implements OutgoingInterceptor {
  #mode: FaultMode | null = null;
  #service: FaultyService | null = null;
  #replica: InterceptedReplica | null = null;
  #rewriteContext: RewriteContext | null = null;
  #floodTimer: NodeJS.Timeout | null = null;
  readonly #timers = new Set<NodeJS.Timeout>();
  readonly #active = (behaviour: AdversaryBehaviour): boolean => behaviour === this.#mode;

  get mode(): FaultMode | null {
    return this.#mode;
  }

  wrapService(service: Service): Service {
    this.#service = new FaultyService(service);
    this.#service.mode = this.#mode;
    return this.#service;
  }

  attach(replica: InterceptedReplica): void {
    this.#replica = replica;
    this.#rewriteContext = {
      config: replica.config.protocol,
      crypto: replica.crypto,
      random: cryptoRandom,
      // Ed25519 signs deterministically: the variant of a proposal is the same at every call.
      variantOf: (message) => equivocatingVariant(replica.crypto, message),
    };
  }

  setMode(mode: FaultMode | null): void {
    this.#mode = mode;
    if (this.#service !== null) this.#service.mode = mode;
    if (this.#floodTimer !== null) clearInterval(this.#floodTimer);
    this.#floodTimer = null;
    if (mode === 'flood') this.#floodTimer = setInterval(() => this.#flood(), FLOOD_INTERVAL_MS);
  }

  send(to: ReplicaId, message: ReplicaMessage): boolean {
    return this.#intercept([to], message);
  }

  broadcast(message: ReplicaMessage): boolean {
    return this.#intercept(this.#peers(), message);
  }

  reply(): boolean {
    // 'lie-in-replies' lies in the service (FaultyService), so that the core signs the lie.
    return withholdsEverything(this.#active);
  }

  close(): void {
    if (this.#floodTimer !== null) clearInterval(this.#floodTimer);
    this.#floodTimer = null;
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
  }

  /**
   * Sends what the mode makes of a message to each recipient, and says so; leaves it to the plain
   * path (false) when the mode changes nothing about it.
   */
  #intercept(recipients: readonly ReplicaId[], message: ReplicaMessage): boolean {
    const replica = this.#replica;
    const context = this.#rewriteContext;
    if (this.#mode === null || replica === null || context === null) return false;
    const rewrites = recipients.map((to) => ({
      to,
      rewritten: rewriteOutgoing(this.#active, to, message, context),
    }));
    const unchanged = rewrites.every(
      ({ rewritten }) => rewritten !== null && rewritten.message === message && rewritten.delayMs === 0,
    );
    if (unchanged) return false;
    for (const { to, rewritten } of rewrites) {
      if (rewritten === null) continue;
      if (rewritten.delayMs === 0) {
        replica.send(to, rewritten.message);
        continue;
      }
      if (this.#timers.size >= MAX_DELAYED_SENDS) continue;
      const timer = setTimeout(() => {
        this.#timers.delete(timer);
        replica.send(to, rewritten.message);
      }, rewritten.delayMs);
      timer.unref();
      this.#timers.add(timer);
    }
    return true;
  }

  /** One round of 'flood': bursts to the other replicas, FLOOD_SENDS_PER_PEER sends per peer. */
  #flood(): void {
    const replica = this.#replica;
    if (replica === null) return;
    const peers = this.#peers();
    if (peers.length === 0) return;
    const bursts = Math.ceil((FLOOD_SENDS_PER_PEER * peers.length) / FLOOD_BURST_SENDS);
    for (let burst = 0; burst < bursts; burst++)
      floodBurst(replica.id, peers, cryptoRandom, {
        bytes: (to, bytes) => replica.sendBytes(to, bytes),
        message: (to, message) => replica.send(to, message),
      });
  }

  #peers(): ReplicaId[] {
    const replica = this.#replica;
    if (replica === null) return [];
    const peers: ReplicaId[] = [];
    for (let index = 0; index < replica.config.n; index++)
      if (index !== replica.id) peers.push(replicaId(index));
    return peers;
  }
}
