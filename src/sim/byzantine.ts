/**
 * The simulator's Byzantine replicas. A Byzantine replica runs the real core (so it knows the
 * protocol state and can attack at the worst moment) and an adversary that rewrites, withholds,
 * delays, forges or adds to what the core sends. It signs with its own keys only: like a real
 * intruder it holds its replica's keys and nobody else's.
 *
 * The behaviours are the simulator's part of the adversary catalogue (src/adversary/catalogue.ts),
 * which names and describes each once, and the rewriting of an outgoing message is the
 * catalogue's pure `rewriteOutgoing`, shared with a real replica's fault injection. What needs
 * memory across messages or a hook into the run stays here: replayed messages, the remembered
 * equivocation variants, the extra status lies, framing suspicions, and the key thief.
 *
 * One entry is about clients: with 'large-values-client' the intruder also holds a client (its own
 * keyspace, valid keys) and runs the LargeValueClient of workload.ts, which tries to make correct
 * replicas' state too large to checkpoint. The replica it holds follows the protocol otherwise
 * (with a second behaviour drawn under `--byzantine all`, it misbehaves too).
 *
 * One entry breaks the "own keys only" rule on purpose: 'key-thief' (key-thief.ts) models an
 * intruder that took every replica's session keys shortly before that replica's rejuvenation and
 * replays them once their epochs are retired. The simulator hands it the keys (`steal`) and, for a
 * run with one, rotates every replica's keys on a recovery schedule (key-theft.ts).
 */
import {
  type AdversaryBehaviour,
  isSimulatorBehaviour,
  LEADER_BEHAVIOURS as CATALOGUE_LEADER_BEHAVIOURS,
  ONLY_WHEN_NAMED_BEHAVIOURS as CATALOGUE_ONLY_WHEN_NAMED_BEHAVIOURS,
  RECOVERY_BEHAVIOURS as CATALOGUE_RECOVERY_BEHAVIOURS,
  SIMULATOR_BEHAVIOURS,
  type SimulatorBehaviour,
  VOTE_HONEST_BEHAVIOURS as CATALOGUE_VOTE_HONEST_BEHAVIOURS,
} from '../adversary/catalogue.js';
import {
  equivocatingVariant,
  floodBurst,
  inflatedStatus,
  lyingReply,
  rewriteOutgoing,
  type RewriteContext,
  withholdsEverything,
} from '../adversary/outgoing.js';
import type { ProtocolConfig } from '../core/config.js';
import type { CoreCrypto } from '../core/crypto.js';
import { type ClientId, type ReplicaId, replicaId, type Signature } from '../messages/ids.js';
import type { Evidence, PrePrepare, ReplicaMessage, Reply, Status } from '../messages/types.js';
import type { ScheduleParameters } from '../core/schedule.js';
import type { SigningKeyPair } from '../crypto/keys.js';
import type { Conspiracy } from './colluders.js';
import type { StolenKey } from './key-theft.js';
import { KeyThief } from './key-thief.js';
import type { Prng } from './prng.js';

export { INFLATED_CLAIM } from '../adversary/outgoing.js';

/**
 * The behaviours a simulated Byzantine replica can have: the simulator's part of the adversary
 * catalogue (src/adversary/catalogue.ts, which describes each), in its draw order.
 */
export const BYZANTINE_CATALOGUE = SIMULATOR_BEHAVIOURS;

export type ByzantineBehaviour = SimulatorBehaviour;

/**
 * Behaviours that never change a vote: a replica with only these still prepares, commits, signs
 * checkpoints and view changes as a correct one would. The simulator rejuvenates a correct replica
 * alongside 'inflated-status' (the attack needs an amnesiac target) only when the other faults
 * leave room for it in f: an amnesiac counts against f. Not 'key-thief': the certificates it forges
 * carry its own signed vote for a state root nobody computed.
 */
export const VOTE_HONEST_BEHAVIOURS: readonly ByzantineBehaviour[] =
  CATALOGUE_VOTE_HONEST_BEHAVIOURS.filter(isSimulatorBehaviour);

/**
 * Behaviours that only bite when the replica leads a view. Not 'key-thief': it forges a NEW-VIEW
 * for the next view it leads whenever it replays, but its other forgeries need no leadership.
 */
export const LEADER_BEHAVIOURS: readonly ByzantineBehaviour[] =
  CATALOGUE_LEADER_BEHAVIOURS.filter(isSimulatorBehaviour);

/**
 * Behaviours aimed at recovery: a state-transfer source that answers just before the requester
 * would give up on it, one that answers with wrong manifests, chunks and batches, a replica that
 * reports suspicions of a correct replica to its guardian to get it accused ("frame"), and one
 * that floods the replicas being rejuvenated while they catch up. `--byzantine all` draws them only
 * with --recovery (the first two matter without it too and can be named explicitly).
 */
export const RECOVERY_BEHAVIOURS: readonly ByzantineBehaviour[] =
  CATALOGUE_RECOVERY_BEHAVIOURS.filter(isSimulatorBehaviour);

/**
 * Behaviours `--byzantine all` never draws: 'small-batches', which the simulator's default workload
 * gives nothing to bite on. They run when named.
 */
export const ONLY_WHEN_NAMED_BEHAVIOURS: readonly ByzantineBehaviour[] =
  CATALOGUE_ONLY_WHEN_NAMED_BEHAVIOURS.filter(isSimulatorBehaviour);

/** What `--byzantine all` draws from: with --recovery or without (RECOVERY_BEHAVIOURS). */
export function drawnInAll(recovery: boolean): readonly ByzantineBehaviour[] {
  return BYZANTINE_CATALOGUE.filter(
    (behaviour) =>
      !ONLY_WHEN_NAMED_BEHAVIOURS.includes(behaviour) &&
      (recovery || !RECOVERY_BEHAVIOURS.includes(behaviour)),
  );
}

export function isByzantineBehaviour(name: string): name is ByzantineBehaviour {
  return isSimulatorBehaviour(name);
}

export interface SendOptions {
  readonly delayMs?: number;
  readonly forgeMac?: boolean;
}

export interface AdversaryContext {
  readonly self: ReplicaId;
  readonly config: ProtocolConfig;
  readonly prng: Prng;
  readonly crypto: CoreCrypto;
  now(): number;
  sendMessage(to: ReplicaId, message: ReplicaMessage, options?: SendOptions): void;
  sendBytes(to: ReplicaId, bytes: Uint8Array): void;
  sendReply(to: ClientId, reply: Reply): void;
  /** Present in a colluding run (`--colluding`): the conspiracy rewrites what this member sends. */
  readonly conspiracy?: Conspiracy;
  /** Present when the run rotates key epochs: what 'key-thief' needs beyond a replica's own keys. */
  readonly keyTheft?: {
    readonly schedule: ScheduleParameters;
    /** How the run signs: the thief signs with stolen key pairs through it. */
    sign(signer: SigningKeyPair, payload: Uint8Array): Signature;
    /** Hands evidence to the guardians, as a compromised replica can over its IPC link. */
    reportEvidence(evidence: Evidence): void;
    /** Every signature the thief makes with a stolen key. */
    forged(signature: Signature): void;
  };
  /** Present with --recovery: the replica's link to its guardian, and what the intruder sees. */
  readonly guardian?: {
    /** Hands a suspicion to its guardian, as a compromised replica can over its IPC link. */
    reportSuspicion(accused: ReplicaId, reason: string): void;
    /** The replicas being rejuvenated now (the guardians announce it to every replica's peers). */
    recovering(): readonly ReplicaId[];
  };
}

const REPLAY_MEMORY = 256;

export class ByzantineAdversary {
  readonly behaviours: ReadonlySet<ByzantineBehaviour>;
  readonly #context: AdversaryContext;
  readonly #memory: ReplicaMessage[] = [];
  readonly #variants = new Map<string, PrePrepare>();
  /** The last STATUS the core sent, the template of the extra lies 'inflated-status' tells. */
  #lastStatus: Status | null = null;
  readonly #thief: KeyThief | null = null;
  /**
   * The intruder was evicted by a full rejuvenation of its replica (clean code, fresh keys, no
   * state), and has not broken in again yet: the replica follows the protocol. Only the key thief
   * goes on, since it replays keys it took away with it.
   */
  #evicted = false;
  /** With 'frame': the correct replica it tries to get accused. */
  readonly #framed: ReplicaId | null;
  /** The catalogue's view of what is on now (nothing a simulated replica lacks, nothing once evicted). */
  readonly #active = (behaviour: AdversaryBehaviour): boolean =>
    !this.#evicted && (this.behaviours as ReadonlySet<AdversaryBehaviour>).has(behaviour);
  readonly #rewriteContext: RewriteContext;

  constructor(behaviours: readonly ByzantineBehaviour[], context: AdversaryContext) {
    this.behaviours = new Set(behaviours);
    this.#context = context;
    this.#rewriteContext = {
      config: context.config,
      crypto: context.crypto,
      random: context.prng,
      variantOf: (message) => this.#variant(message),
    };
    // Drawn only with 'frame', so that the other behaviours' draws stay as they were.
    const others = this.#others();
    this.#framed = this.behaviours.has('frame') ? context.prng.pick(others) : null;
    if (this.behaviours.has('key-thief')) {
      const keyTheft = context.keyTheft;
      if (keyTheft === undefined) throw new Error("'key-thief' needs a run that rotates key epochs");
      this.#thief = new KeyThief({
        self: context.self,
        config: context.config,
        // A stream of its own, so its plans do not shift with the other behaviours' draws.
        prng: context.prng.fork(BYZANTINE_CATALOGUE.indexOf('key-thief')),
        crypto: context.crypto,
        schedule: keyTheft.schedule,
        sign: (signer, payload) => keyTheft.sign(signer, payload),
        now: () => context.now(),
        sendMessage: (to, message) => context.sendMessage(to, message),
        reportEvidence: (evidence) => keyTheft.reportEvidence(evidence),
        forged: (signature) => keyTheft.forged(signature),
      });
    }
  }

  /** 'key-thief': the session keys of a replica's epoch, taken just before it rotated. */
  steal(key: StolenKey): void {
    this.#thief?.steal(key);
  }

  /** Forged messages and evidence the key thief sent with stolen keys (0 for other behaviours). */
  get stolenKeyReplays(): number {
    return this.#thief?.replays ?? 0;
  }

  #has(behaviour: ByzantineBehaviour): boolean {
    return this.#active(behaviour);
  }

  /** A full rejuvenation of its replica evicted the intruder (until `breakIn`). */
  evict(): void {
    this.#evicted = true;
    this.#memory.length = 0;
    this.#variants.clear();
    this.#lastStatus = null;
  }

  /** The intruder is back in (the same exploit on the rejuvenated replica, on its new keys). */
  breakIn(): void {
    this.#evicted = false;
  }

  get evicted(): boolean {
    return this.#evicted;
  }

  /** With 'frame': whom it tries to get accused. */
  get framed(): ReplicaId | null {
    return this.#framed;
  }

  #remember(message: ReplicaMessage): void {
    if (!this.#has('replay')) return;
    this.#memory.push(message);
    if (this.#memory.length > REPLAY_MEMORY) this.#memory.shift();
  }

  incoming(from: ReplicaId, message: ReplicaMessage): void {
    this.#remember(message);
    this.#thief?.observe(from, message);
    this.#context.conspiracy?.incoming(this.#context.self, from, message);
  }

  /** Called for every message the core sends to `to` (broadcasts arrive once per recipient). */
  outgoing(to: ReplicaId, message: ReplicaMessage): void {
    const context = this.#context;
    this.#thief?.observeOwn(message);
    if (context.conspiracy !== undefined) {
      context.conspiracy.outgoing(context.self, to, message);
      return;
    }
    if (withholdsEverything(this.#active)) return;
    this.#remember(message);
    // The template of the extra lies 'inflated-status' tells at its ticks.
    if (message.kind === 'status' && this.#has('inflated-status')) this.#lastStatus = message;
    const rewritten = rewriteOutgoing(this.#active, to, message, this.#rewriteContext);
    if (rewritten === null) return;
    context.sendMessage(to, rewritten.message, { delayMs: rewritten.delayMs, forgeMac: rewritten.forgeMac });
  }

  reply(to: ClientId, reply: Reply): void {
    if (withholdsEverything(this.#active)) return;
    this.#context.sendReply(to, this.#has('lie-in-replies') ? lyingReply(reply, this.#context.prng) : reply);
  }

  tick(): void {
    const context = this.#context;
    if (withholdsEverything(this.#active)) return;
    const others = this.#others();
    if (this.#has('replay') && this.#memory.length > 0 && context.prng.chance(0.3)) {
      context.sendMessage(context.prng.pick(others), context.prng.pick(this.#memory));
    }
    if (this.#has('flood')) this.#flood(others);
    if (this.#has('flood-recovering')) {
      const targets = context.guardian?.recovering().filter((id) => id !== context.self) ?? [];
      // Ten times the plain flood, at the replicas that are catching up, while they do.
      if (targets.length > 0) for (let round = 0; round < 10; round++) this.#flood(targets);
    }
    if (
      this.#has('frame') &&
      this.#framed !== null &&
      context.guardian !== undefined &&
      context.prng.chance(0.2)
    )
      context.guardian.reportSuspicion(this.#framed, 'view change: request not executed in time');
    this.#thief?.tick();
    // Lies often, so that a replica that just restarted hears one among its first reports.
    if (this.#has('inflated-status') && this.#lastStatus !== null && context.prng.chance(0.3))
      context.sendMessage(context.prng.pick(others), inflatedStatus(this.#lastStatus));
  }

  #others(): ReplicaId[] {
    const out: ReplicaId[] = [];
    for (let index = 0; index < this.#context.config.n; index++)
      if (index !== this.#context.self) out.push(replicaId(index));
    return out;
  }

  /**
   * The second proposal for a (view, sequence) (equivocatingVariant): the same one to every backup
   * that gets it and at every retransmission, for the last 1024 proposals.
   */
  #variant(message: PrePrepare): PrePrepare {
    const key = `${message.view}:${message.sequence}`;
    const known = this.#variants.get(key);
    if (known !== undefined) return known;
    const variant = equivocatingVariant(this.#context.crypto, message);
    this.#variants.set(key, variant);
    if (this.#variants.size > 1024) this.#variants.delete(this.#variants.keys().next().value!);
    return variant;
  }

  /** 'flood': one burst of garbage and cheap requests for expensive work (floodBurst). */
  #flood(targets: readonly ReplicaId[]): void {
    const context = this.#context;
    floodBurst(context.self, targets, context.prng, {
      bytes: (to, bytes) => context.sendBytes(to, bytes),
      message: (to, message) => context.sendMessage(to, message),
    });
  }
}
