/**
 * The adversary catalogue: every way a replica held by an intruder misbehaves, named once, with
 * what it does and where it can be run. Two environments run them:
 *
 * - `simulator`: a Byzantine replica of the deterministic simulator (src/sim/byzantine.ts) runs the
 *   real core and an adversary that rewrites, withholds, delays, forges or adds to what it sends.
 *   `npm run sim -- --byzantine all` draws among these.
 * - `runtime`: a real replica process of a test or demo cluster (`allowFaultInjection: true`)
 *   started with `--fault-mode`, or switched at run time by its guardian (POST /fault), through
 *   the test-only fault injection of src/runtime/fault-modes.ts. Production configurations refuse.
 *
 * Both take the shared behaviours' mechanics from this folder (outgoing.ts, faulty-service.ts),
 * which is pure: randomness and time come in from the environment.
 *
 * The order of the entries is the simulator's draw order (`--byzantine all` picks by index, and a
 * seed must replay as before): new entries go at the end.
 */

export type AdversaryEnvironment = 'simulator' | 'runtime';

interface CatalogueEntry {
  readonly description: string;
  readonly environments: readonly AdversaryEnvironment[];
  /** Never changes a vote: it still prepares, commits and signs as a correct replica would. */
  readonly votesHonestly?: true;
  /** Bites only when the replica leads a view. */
  readonly leaderOnly?: true;
  /** Aimed at recovery (state transfer, guardians, replicas catching up). */
  readonly aimedAtRecovery?: true;
  /**
   * Changes how the replica's core is made, so it takes effect only when the replica starts in it
   * (`--fault-mode`), never by a switch at run time (the guardian's POST /fault refuses it).
   */
  readonly atStartOnly?: true;
  /**
   * The simulator runs it only when named (`--byzantine <name>`), never in a `--byzantine all` draw:
   * its default workload gives it nothing to bite on.
   */
  readonly onlyWhenNamed?: true;
}

export const ADVERSARY_CATALOGUE = {
  silent: {
    description: 'sends nothing at all: no message to a replica, no reply to a client',
    environments: ['simulator', 'runtime'],
  },
  equivocate: {
    description:
      'as leader, sends a second, validly signed proposal for the same (view, sequence) to half the backups',
    environments: ['simulator', 'runtime'],
    leaderOnly: true,
  },
  'forge-signatures': {
    description: 'flips bits of the signatures it sends, and now and then sends a frame with a forged MAC',
    environments: ['simulator'],
  },
  replay: {
    description: 'sends old messages it sent or received again, to random replicas',
    environments: ['simulator'],
  },
  'wrong-digests': {
    description: 'votes (prepare, commit) for batch digests nobody proposed',
    environments: ['simulator'],
  },
  'slow-leader': {
    description:
      'as leader, holds every proposal back for 30% to 120% of the request timeout (the same delay for every backup)',
    environments: ['simulator', 'runtime'],
    leaderOnly: true,
  },
  'lie-in-view-change': {
    description:
      'signs view changes that claim prepared certificates that never existed, or that hide what it prepared',
    environments: ['simulator'],
  },
  'corrupt-checkpoint': {
    description: 'signs checkpoint votes for a random state root',
    environments: ['simulator'],
  },
  'corrupt-state': {
    description:
      "changes its copy of the service state: its signed checkpoints describe a state that differs from everybody else's",
    environments: ['runtime'],
  },
  flood: {
    description:
      'sends bursts of garbage frames, frames announcing absurd lengths, and cheap requests asking for expensive work',
    environments: ['simulator', 'runtime'],
  },
  'lie-in-replies': {
    description:
      'answers clients with results it made up (the simulator rewrites the reply; a real replica lies in its service, so the core signs the lie)',
    environments: ['simulator', 'runtime'],
    votesHonestly: true,
  },
  'large-values-client': {
    description:
      "also holds a client and sends near-1 MiB values to make correct replicas' state too large to checkpoint",
    environments: ['simulator'],
    votesHonestly: true,
  },
  'inflated-status': {
    description: 'claims a view and a stable checkpoint nobody will reach in its status messages',
    environments: ['simulator'],
    votesHonestly: true,
  },
  'key-thief': {
    description:
      "steals every replica's session keys before their rejuvenation and replays them after their epochs retire",
    environments: ['simulator'],
  },
  'stalling-source': {
    description: "as a state-transfer source, answers just before the requester's source timeout",
    environments: ['simulator', 'runtime'],
    aimedAtRecovery: true,
  },
  'lying-source': {
    description: 'as a state-transfer source, answers with wrong manifests, chunks and batches',
    environments: ['simulator', 'runtime'],
    aimedAtRecovery: true,
  },
  frame: {
    description: 'reports suspicions of a correct replica to its guardian, to get it accused',
    environments: ['simulator'],
    aimedAtRecovery: true,
  },
  'flood-recovering': {
    description: 'floods the replicas being rejuvenated while they catch up',
    environments: ['simulator'],
    aimedAtRecovery: true,
  },
  'stalling-leader': {
    description:
      'as leader, holds every proposal back for 45% of the request timeout: a request waits at most two holds, just under the timeout, so nothing times out',
    // Not the simulator's: its `slow-leader` (30% to 120%) covers these delays, and no checker
    // bounds a leader's pace, so it would only slow the seeds it is drawn in. The leader-pace
    // tests (test/core/leader-pace.test.ts) and `phalanx bench attack` cover it.
    environments: ['runtime'],
    leaderOnly: true,
  },
  'lie-in-new-view': {
    description:
      'as leader of a new view, signs a NEW-VIEW its view changes do not support: one view change short of a quorum, or one of them twice',
    environments: ['simulator'],
    leaderOnly: true,
  },
  'small-batches': {
    description:
      'as leader, proposes one request per batch however many wait: every request pays the three phases, a signed reply batch and a group commit alone',
    // The simulator's too since the backups count what a leader leaves out (the batch-fill
    // suspicion): its seeds check that the detector fires and accuses no correct leader. Only when
    // named: with the simulator's 3 clients and 4 batches in flight one request per batch leaves
    // nobody waiting (the detector test runs it with 12 clients), so drawn in `all` it would only
    // spend a Byzantine replica on nothing, and reshuffle every seed's draw.
    environments: ['runtime', 'simulator'],
    leaderOnly: true,
    atStartOnly: true,
    onlyWhenNamed: true,
  },
} as const satisfies Record<string, CatalogueEntry>;

type Catalogue = typeof ADVERSARY_CATALOGUE;

export type AdversaryBehaviour = keyof Catalogue;

/** The behaviours an environment runs. */
export type BehaviourIn<Environment extends AdversaryEnvironment> = {
  [Name in AdversaryBehaviour]: Environment extends Catalogue[Name]['environments'][number] ? Name : never;
}[AdversaryBehaviour];

/** What the simulator's Byzantine replicas do (`--byzantine`). */
export type SimulatorBehaviour = BehaviourIn<'simulator'>;
/** What a real replica's fault injection does (`--fault-mode`, the guardian's POST /fault). */
export type RuntimeFaultMode = BehaviourIn<'runtime'>;

const ALL_BEHAVIOURS = Object.keys(ADVERSARY_CATALOGUE) as AdversaryBehaviour[];

function entryOf(name: AdversaryBehaviour): CatalogueEntry {
  return ADVERSARY_CATALOGUE[name];
}

/** The behaviours an environment runs, in catalogue order. */
export function behavioursIn<Environment extends AdversaryEnvironment>(
  environment: Environment,
): readonly BehaviourIn<Environment>[] {
  return ALL_BEHAVIOURS.filter((name) =>
    entryOf(name).environments.includes(environment),
  ) as BehaviourIn<Environment>[];
}

export const SIMULATOR_BEHAVIOURS: readonly SimulatorBehaviour[] = behavioursIn('simulator');
export const RUNTIME_FAULT_MODES: readonly RuntimeFaultMode[] = behavioursIn('runtime');

export function isSimulatorBehaviour(name: unknown): name is SimulatorBehaviour {
  return typeof name === 'string' && (SIMULATOR_BEHAVIOURS as readonly string[]).includes(name);
}

export function isRuntimeFaultMode(name: unknown): name is RuntimeFaultMode {
  return typeof name === 'string' && (RUNTIME_FAULT_MODES as readonly string[]).includes(name);
}

/** The behaviours with a trait, in catalogue order. */
function withTrait(
  trait: 'votesHonestly' | 'leaderOnly' | 'aimedAtRecovery' | 'atStartOnly' | 'onlyWhenNamed',
): readonly AdversaryBehaviour[] {
  return ALL_BEHAVIOURS.filter((name) => entryOf(name)[trait] === true);
}

export const VOTE_HONEST_BEHAVIOURS: readonly AdversaryBehaviour[] = withTrait('votesHonestly');
export const LEADER_BEHAVIOURS: readonly AdversaryBehaviour[] = withTrait('leaderOnly');
export const RECOVERY_BEHAVIOURS: readonly AdversaryBehaviour[] = withTrait('aimedAtRecovery');

export const AT_START_ONLY_BEHAVIOURS: readonly AdversaryBehaviour[] = withTrait('atStartOnly');
export const ONLY_WHEN_NAMED_BEHAVIOURS: readonly AdversaryBehaviour[] = withTrait('onlyWhenNamed');

/** 'small-batches': the most requests its leader proposes in one batch. */
export const SMALL_BATCH_REQUESTS = 1;

/**
 * The protocol configuration a replica's core is made with under a fault mode: the configured
 * one, except that 'small-batches' caps its batches (a correct core with a smaller limit proposes
 * what the intruder wants, and the others cannot tell it from a leader with little to propose).
 */
export function protocolUnderFaultMode<Protocol extends { readonly maxBatchRequests: number }>(
  protocol: Protocol,
  mode: AdversaryBehaviour | null | undefined,
): Protocol {
  return mode === 'small-batches'
    ? { ...protocol, maxBatchRequests: Math.min(protocol.maxBatchRequests, SMALL_BATCH_REQUESTS) }
    : protocol;
}
