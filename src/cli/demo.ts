/**
 * The intruder of `phalanx demo`: every so often it takes over one replica (through the
 * guardian's fault-injection endpoint, which only configurations with allowFaultInjection have)
 * and the terminal shows, from what the guardians report, how the cluster notices and evicts it:
 * evidence, suspicions, reactive and proactive rejuvenations with their durations against T_D,
 * key epochs, and the exposure every replica had against the promised bound T.
 */
import type { FaultMode } from '../runtime/ipc.js';
import { type GuardianStatus, guardiansUp as up, type RecoveryRecord } from '../runtime/guardian-report.js';
import type { LocalCluster } from '../runtime/local-cluster.js';
import { replicaId } from '../messages/ids.js';
import type { LiveWorkload } from './up.js';

/** The attacks the demo cycles through, with what a reader should expect to see. */
const INTRUSIONS: readonly { readonly mode: FaultMode; readonly what: string; readonly leader: boolean }[] = [
  {
    mode: 'lie-in-replies',
    what: 'it answers clients with made-up results (clients wait for a quorum of matching signed replies and report the signed lie)',
    leader: false,
  },
  {
    mode: 'equivocate',
    what: 'as leader it sends two different signed proposals for one sequence number',
    leader: true,
  },
  {
    mode: 'corrupt-state',
    what: 'it changes its copy of the state (its signed checkpoint will not match the others)',
    leader: false,
  },
];

const POLL_INTERVAL_MS = 1000;
const SUMMARY_INTERVAL_MS = 15_000;

interface Seen {
  recoveriesStarted: Set<string>;
  recoveriesFinished: Set<string>;
  alarms: Set<string>;
  evidence: Set<string>;
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

/**
 * How a finished rejuvenation went against T_D, in words that stay true: one cut off by the end
 * of its slot before T_D is "unfinished", not "over T_D" (exceededBound covers both).
 */
export function rejuvenationOutcome(
  record: Pick<RecoveryRecord, 'durationMs' | 'exceededBound'>,
  recoveryBoundMs: number,
): string {
  const bound = `T_D = ${seconds(recoveryBoundMs)}`;
  if (record.durationMs > recoveryBoundMs)
    return `took ${seconds(record.durationMs)}, OVER ${bound} (${record.durationMs} ms > ${recoveryBoundMs} ms)`;
  if (record.exceededBound)
    return (
      `ended UNFINISHED after ${seconds(record.durationMs)}, at its deadline ` +
      `(the end of its slot or ${bound}, whichever came first)`
    );
  return `done in ${seconds(record.durationMs)} (${bound})`;
}

/**
 * Who found a piece of evidence, from the reporter a guardian recorded: "client admin via
 * replica 3" names the client; a relay that is the accused itself (a replica forwards every
 * client report to its guardian, the accused's included) is left out, so the accused never reads
 * as its own reporter.
 */
export function evidenceFinder(reporter: string, accused: number): string {
  const via = /^(client \S+) via replica (\d+)$/.exec(reporter);
  if (via === null) return reporter;
  return Number(via[2]) === accused ? via[1]! : `${via[1]!} (relayed by replica ${via[2]!})`;
}

export class IntrusionDemo {
  readonly #cluster: LocalCluster;
  readonly #workload: LiveWorkload;
  readonly #startedAtMs = Date.now();
  readonly #seen: Seen = {
    recoveriesStarted: new Set(),
    recoveriesFinished: new Set(),
    alarms: new Set(),
    evidence: new Set(),
  };
  readonly #timers: NodeJS.Timeout[] = [];
  #intrusions = 0;
  #polling = false;
  #lastCompleted = 0;
  #lastSummaryAtMs = Date.now();
  #stopped = false;

  constructor(
    cluster: LocalCluster,
    workload: LiveWorkload,
    timing: { readonly firstIntrusionMs: number; readonly intrusionEveryMs: number },
  ) {
    this.#cluster = cluster;
    this.#workload = workload;
    this.#print(
      `the intruder strikes in ${seconds(timing.firstIntrusionMs)}, then every ${seconds(timing.intrusionEveryMs)}; ` +
        'the guardians also rejuvenate every replica on their schedule',
    );
    this.#timers.push(setInterval(() => void this.#poll(), POLL_INTERVAL_MS));
    this.#timers.push(
      setTimeout(() => {
        void this.#intrude();
        this.#timers.push(setInterval(() => void this.#intrude(), timing.intrusionEveryMs));
      }, timing.firstIntrusionMs),
    );
  }

  stop(): void {
    this.#stopped = true;
    for (const timer of this.#timers) clearInterval(timer);
  }

  #print(line: string): void {
    if (this.#stopped) return;
    const elapsed = ((Date.now() - this.#startedAtMs) / 1000).toFixed(1).padStart(6);
    process.stdout.write(`[+${elapsed}s] ${line}\n`);
  }

  async #intrude(): Promise<void> {
    const intrusion = INTRUSIONS[this.#intrusions % INTRUSIONS.length]!;
    this.#intrusions++;
    const guardians = up(await this.#cluster.guardianReports());
    const candidates = guardians.filter(
      (report) => !report.recovery.inProgress && report.replicaProcess === 'running',
    );
    if (candidates.length === 0) {
      this.#print('the intruder finds no running replica to take over this time');
      return;
    }
    let target: number;
    if (intrusion.leader) {
      const views = (await this.#cluster.reports()).flatMap((report) => (report.up ? [report.view] : []));
      target = views.length === 0 ? candidates[0]!.replica : Math.max(...views) % this.#cluster.config.n;
    } else {
      // The one whose own proactive slot is furthest away: only the evidence can get it out early.
      target = candidates.reduce((best, report) =>
        report.nextProactiveAtMs > best.nextProactiveAtMs ? report : best,
      ).replica;
    }
    try {
      await this.#cluster.injectFault(replicaId(target), intrusion.mode);
      this.#print(`INTRUSION: replica ${target} is taken over (${intrusion.mode}): ${intrusion.what}`);
    } catch (error) {
      this.#print(`the intruder failed: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  async #poll(): Promise<void> {
    if (this.#polling || this.#stopped) return;
    this.#polling = true;
    try {
      const guardians = up(await this.#cluster.guardianReports());
      for (const report of guardians) this.#report(report);
      if (Date.now() - this.#lastSummaryAtMs >= SUMMARY_INTERVAL_MS) this.#summary(guardians);
    } finally {
      this.#polling = false;
    }
  }

  #report(report: GuardianStatus): void {
    const replica = report.replica;
    const current = report.recovery;
    if (current.inProgress && current.startedAtMs !== null) {
      const key = `${replica}/${current.startedAtMs}`;
      if (!this.#seen.recoveriesStarted.has(key)) {
        this.#seen.recoveriesStarted.add(key);
        this.#print(`replica ${replica}: ${current.kind} rejuvenation started (${current.reason ?? ''})`);
      }
    }
    for (const record of [...report.recentRecoveries].reverse()) {
      const key = `${replica}/${record.startedAtMs}`;
      if (this.#seen.recoveriesFinished.has(key)) continue;
      this.#seen.recoveriesFinished.add(key);
      if (record.startedAtMs < this.#startedAtMs) continue;
      const steps = record.steps.map((step) => `${step.step} ${step.durationMs} ms`).join(', ');
      this.#print(
        `replica ${replica}: ${record.kind} rejuvenation ${rejuvenationOutcome(record, report.recoveryBoundMs)}; ` +
          `new key epoch ${record.keyEpoch}; ${steps}`,
      );
    }
    for (const alarm of report.alarms) {
      const key = `${replica}/${alarm.atMs}/${alarm.message}`;
      if (this.#seen.alarms.has(key)) continue;
      this.#seen.alarms.add(key);
      if (alarm.atMs >= this.#startedAtMs) this.#print(`ALARM at guardian ${replica}: ${alarm.message}`);
    }
    // Every guardian holds every piece of evidence; the accused's own guardian speaks for them.
    for (const record of report.evidence) {
      if (record.accused !== replica) continue;
      const key = `${record.kind}/${record.accused}/${record.reporter}/${record.atMs}`;
      if (this.#seen.evidence.has(key)) continue;
      this.#seen.evidence.add(key);
      if (record.atMs < this.#startedAtMs) continue;
      const from = evidenceFinder(record.reporter, record.accused);
      this.#print(
        record.valid
          ? `EVIDENCE against replica ${record.accused}: ${record.kind}, found by ${from}, verified by the guardians`
          : `forged evidence against replica ${record.accused} from ${from} rejected: ${record.detail}`,
      );
    }
  }

  #summary(guardians: readonly GuardianStatus[]): void {
    const now = Date.now();
    const completed = this.#workload.completed;
    const rate = ((completed - this.#lastCompleted) * 1000) / Math.max(1, now - this.#lastSummaryAtMs);
    this.#lastCompleted = completed;
    this.#lastSummaryAtMs = now;
    const exposure = guardians.length === 0 ? 0 : Math.max(...guardians.map((report) => report.exposureMs));
    const guarantee = guardians[0]?.guaranteeMs ?? 0;
    const epochs = guardians.map((report) => `${report.replica}:${report.keyEpoch}`).join(' ');
    this.#print(
      `workload ${completed} ok / ${this.#workload.failed} failed (${rate.toFixed(1)} ops/s); ` +
        `longest exposure ${seconds(exposure)} of T = ${seconds(guarantee)}; key epochs ${epochs}`,
    );
  }
}
