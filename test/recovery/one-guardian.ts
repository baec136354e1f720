/**
 * One guardian's pure GuardianCore with a small shell that answers each action at once (replica
 * 2 of n = 6, f = 1, k = 1, T_D = 8 s), for tests of a single guardian's decisions.
 */
import type { ScheduleParameters } from '../../src/core/schedule.js';
import { keyEpoch, replicaId, signature } from '../../src/messages/ids.js';
import type { KeyCertificate } from '../../src/messages/types.js';
import {
  CRASH_SETTLE_MAX_MS,
  type GuardianAction,
  GuardianCore,
  type GuardianEvent,
} from '../../src/recovery/core/guardian-core.js';

/** The default local cluster of the docs' worked example: n = 6, f = 1, k = 1, T_D = 8 s, T_P = 56 s. */
export const SCHEDULE: ScheduleParameters = {
  n: 6,
  f: 1,
  k: 1,
  recoveryBoundMs: 8000,
  periodMs: 56_000,
  originMs: 0,
};
export const TICK_MS = 50;
/** Far from any slot of replica 2 (its proactive slot starts at 16 s of each 56 s period). */
export const START_MS = 30_000;

/** A certificate whose keys and signature are placeholders (the cores never check them). */
export function certificate(replica: number, epoch: number, issuedAtMs: number): KeyCertificate {
  return {
    replica: replicaId(replica),
    keyEpoch: keyEpoch(epoch),
    signingKey: new Uint8Array(32).fill(epoch),
    agreementKey: new Uint8Array(32).fill(epoch),
    issuedAtMs,
    signature: signature(new Uint8Array(64)),
  };
}

/** One guardian's shell: every action answered at once; the test decides what fails. */
export class OneGuardian {
  readonly core = new GuardianCore({
    id: replicaId(2),
    schedule: SCHEDULE,
    persisted: { keyEpoch: 0, lastRejuvenationAtMs: null, lastSlot: null },
    certificates: [],
    clockSkewAllowanceMs: 1000,
    recoveringNiceShareOfTd: 0.25,
  });
  nowMs = START_MS;
  /** When each 'start-replica' was asked for. */
  readonly startsAtMs: number[] = [];
  /** Every action the core asked for, in order. */
  readonly actions: GuardianAction[] = [];
  running = false;
  /** The next code check throws in the shell (a 'recovery-failed' instead of a verdict). */
  failNextCodeCheck = false;

  feed(event: GuardianEvent): void {
    const pending: GuardianEvent[] = [event];
    for (let next = pending.shift(); next !== undefined; next = pending.shift())
      for (const action of this.core.step(next)) this.#answer(action, (answer) => pending.push(answer));
  }

  #answer(action: GuardianAction, answer: (event: GuardianEvent) => void): void {
    const now = this.nowMs;
    this.actions.push(action);
    switch (action.type) {
      case 'stop-replica':
        if (this.running) answer({ type: 'replica-exited', now, expected: true, code: 0, signal: null });
        this.running = false;
        answer({ type: 'replica-stopped', now });
        return;
      case 'check-code':
        if (this.failNextCodeCheck) {
          this.failNextCodeCheck = false;
          answer({ type: 'recovery-failed', now, message: 'EMFILE: too many open files' });
          return;
        }
        answer({ type: 'code-checked', now, ok: true, problems: [] });
        return;
      case 'issue-keys':
        answer({
          type: 'keys-issued',
          now,
          certificate: certificate(2, action.nextEpoch, now),
          fresh: true,
        });
        return;
      case 'start-replica':
        this.startsAtMs.push(now);
        this.running = true;
        answer({ type: 'replica-started', now, loweredPriority: false });
        return;
      default:
        return;
    }
  }

  /** The rejuvenation state's name (a call, so the compiler does not narrow it between steps). */
  step(): string {
    return this.core.rejuvenation.name;
  }

  /** The replica process dies on its own (it was not asked to stop). */
  exits(): void {
    this.running = false;
    this.feed({ type: 'replica-exited', now: this.nowMs, expected: false, code: 1, signal: null });
  }

  /**
   * Started and caught up, then its process crashes: the rejuvenation after the crash has started
   * a new process, which is validating its state (the core asked for exactly two starts).
   */
  crashIntoRejuvenation(): void {
    this.feed({ type: 'started', now: this.nowMs });
    this.feed({ type: 'replica-progress', now: this.nowMs, stage: 'caught-up' });
    if (this.step() !== 'idle') throw new Error(`the first start is not over: ${this.step()}`);
    this.exits();
    this.runFor(CRASH_SETTLE_MAX_MS + 2 * TICK_MS);
    if (this.startsAtMs.length !== 2 || this.step() !== 'validating-state')
      throw new Error(`the crash was not rejuvenated: ${this.startsAtMs.length} starts, ${this.step()}`);
  }

  runFor(ms: number): void {
    const until = this.nowMs + ms;
    while (this.nowMs < until) {
      this.nowMs += TICK_MS;
      // Every peer's guardian is connected and says its replica votes: nothing else is out.
      for (let peer = 0; peer < SCHEDULE.n; peer++)
        if (peer !== 2) this.feed({ type: 'peer-replica-state', now: this.nowMs, from: peer, voting: true });
      this.feed({ type: 'tick', now: this.nowMs, connectedGuardians: [0, 1, 3, 4, 5] });
    }
  }
}
