/**
 * `phalanx bench recovery --state-mb M`: how long one rejuvenation takes, step by step, for a
 * replica holding M MB of service state, and what it costs the cluster's throughput.
 *
 * It starts a throwaway guardian cluster (n = 6, f = 1, k = 1) whose schedule is phased so that no
 * slot falls while the state is loaded, loads M MB into the KV store, keeps a closed-loop workload
 * of small writes running, and watches --slots consecutive proactive slots (the first one
 * rejuvenates the initial leader). For each: throughput in the baseline window, which ends where
 * the guardian starts preparing the slot (STANDBY_LEAD_MS before it: standby process, leader
 * handoff), is the reference; throughput from the start of the rejuvenation until the replica
 * votes again is the figure under recovery; the preparation window's is reported too. The
 * headline figures are the worst over the slots. T_D is set generously (--recovery-bound) so the
 * guardian's record shows the real duration rather than the deadline.
 *
 * The last line printed is one JSON object:
 * {"state_mb", "recovery_s", "transfer_s", "throughput_ratio_during_recovery", "steps_s", "recoveries", ...}.
 * For diagnosis: PHALANX_BENCH_BUCKET_MS sets the width of the throughput timeline printed to
 * stderr (default 250), PHALANX_BENCH_LOG_LEVEL the cluster's log level (default warn), and
 * PHALANX_KEEP_BENCH_DIR=1 keeps the cluster directory with its logs.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { KvClient } from '../apps/kv/client.js';
import { PhalanxClient } from '../client/client.js';
import { scheduleOf } from '../config/cluster-config.js';
import { generateCluster } from '../config/keys.js';
import { replicaId } from '../messages/ids.js';
import { signCodeManifestFor } from '../recovery/code-manifest.js';
import { STANDBY_LEAD_MS } from '../recovery/guardian.js';
import { type Slot, slotAt } from '../core/schedule.js';
import type { GuardianStatus, RecoveryRecord } from '../runtime/guardian-report.js';
import { cliEntryPoint, LocalCluster } from '../runtime/local-cluster.js';
import { connectBenchClient, freePortRange } from './bench.js';
import { loadCheckedClusterConfig } from './options.js';

export interface RecoveryBenchOptions {
  readonly stateMb: number;
  /** T_D of the temporary cluster (generous, so the record shows the real duration). */
  readonly recoveryBoundMs: number;
  /** Closed-loop clients of small writes running throughout. */
  readonly workloadClients: number;
  /** Throughput measured over this long before the slot is the baseline. */
  readonly baselineMs: number;
  /** Consecutive proactive slots measured (the first one rejuvenates the initial leader). */
  readonly slots: number;
  readonly targetS: number;
  readonly log: (line: string) => void;
}

export interface RecoveryBenchResult {
  readonly state_mb: number;
  readonly recovery_s: number;
  readonly transfer_s: number;
  /** The lowest over the slots measured. */
  readonly throughput_ratio_during_recovery: number;
  readonly throughput_ratio_during_preparation: number;
  readonly steps_s: Readonly<Record<string, number>>;
  readonly baseline_ops_s: number;
  readonly during_recovery_ops_s: number;
  /** The most over the slots measured (see SlotMeasurement). */
  readonly operations_lost: number;
  readonly load_s: number;
  readonly recovered_replica: number;
  readonly recoveries: readonly SlotMeasurement[];
  readonly recovery_bound_s: number;
  readonly within_target: boolean;
  readonly target_s: number;
  readonly workload_errors: number;
}

const N = 6;
/** Values written to build the state: big enough to load fast, well under the 1 MiB operation limit. */
const LOAD_VALUE_BYTES = 256 * 1024;
const LOAD_CLIENTS = 4;
/** A period far longer than the bench: after the six proactive slots nothing else happens. */
const PERIOD_MS = 3_600_000;

function round(value: number, digits = 2): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}

/** Completion times of the workload, to count operations in any window afterwards. */
class CompletionLog {
  readonly times: number[] = [];
  errors = 0;
  count(fromMs: number, toMs: number): number {
    let count = 0;
    for (const time of this.times) if (time >= fromMs && time < toMs) count++;
    return count;
  }
}

/** Asks only the guardian concerned: the bench's own polling shares the cores it measures. */
async function guardianStatus(cluster: LocalCluster, id: number): Promise<GuardianStatus | null> {
  const report = await cluster.guardianReport(replicaId(id), 2000);
  return report.up ? report : null;
}

/** One proactive slot's rejuvenation, and the workload's throughput around it. */
export interface SlotMeasurement {
  readonly replica: number;
  readonly recovery_s: number;
  readonly transfer_s: number;
  /** Throughput from the start of the rejuvenation until the replica votes again, over the baseline. */
  readonly throughput_ratio: number;
  /** Throughput while the guardian prepares (standby process, leader handoff), over the baseline. */
  readonly throughput_ratio_during_preparation: number;
  readonly steps_s: Readonly<Record<string, number>>;
  readonly baseline_ops_s: number;
  readonly during_recovery_ops_s: number;
  /**
   * Operations the baseline rate would have completed during the recovery and the cluster did
   * not: the cost of one rejuvenation in operations. Unlike the ratio it does not improve when a
   * recovery merely takes longer at the same cost, nor worsen when it gets shorter.
   */
  readonly operations_lost: number;
}

async function measureSlot(
  cluster: LocalCluster,
  slot: Slot,
  completions: CompletionLog,
  options: RecoveryBenchOptions,
): Promise<SlotMeasurement> {
  const target = slot.replicas[0]!;
  options.log(
    `measuring the rejuvenation of replica ${target}, due in ${round((slot.startMs - Date.now()) / 1000, 1)} s`,
  );
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, slot.startMs - Date.now())));
  // The guardian writes the record when the replica votes again, or at T_D.
  let record: RecoveryRecord | undefined;
  const deadline = slot.startMs + options.recoveryBoundMs + 30_000;
  while (record === undefined && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 500));
    const status = await guardianStatus(cluster, target);
    record = status?.recentRecoveries.find((entry) => entry.startedAtMs >= slot.startMs - 1000);
  }
  if (record === undefined) throw new Error(`replica ${target} reported no rejuvenation in its slot`);
  const recoveryEndMs = record.startedAtMs + record.durationMs;
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, recoveryEndMs + 1000 - Date.now())));
  // Where the throughput went: completions per bucket from 1 s before to 1 s after (to stderr).
  const bucketMs = Number(process.env.PHALANX_BENCH_BUCKET_MS ?? 250);
  const buckets: string[] = [];
  for (let from = record.startedAtMs - 1000; from < recoveryEndMs + 1000; from += bucketMs)
    buckets.push(String(completions.count(from, from + bucketMs)));
  options.log(
    `replica ${target}: completions per ${bucketMs} ms from 1 s before its rejuvenation to 1 s after: ${buckets.join(' ')}`,
  );
  return slotFigures(target, record, (from, to) => completions.count(from, to), options.baselineMs);
}

/**
 * One slot's figures from the guardian's record of the rejuvenation and the workload's
 * completions (`count(from, to)`: operations completed in [from, to), ms). The baseline is the
 * `baselineMs` before the guardian's preparation (STANDBY_LEAD_MS before the start).
 */
export function slotFigures(
  replica: number,
  record: RecoveryRecord,
  count: (fromMs: number, toMs: number) => number,
  baselineMs: number,
): SlotMeasurement {
  const recoveryEndMs = record.startedAtMs + record.durationMs;
  const preparationFrom = record.startedAtMs - STANDBY_LEAD_MS;
  const baselineRate = (count(preparationFrom - baselineMs, preparationFrom) * 1000) / baselineMs;
  const preparationRate = (count(preparationFrom, record.startedAtMs) * 1000) / STANDBY_LEAD_MS;
  const duringRate = (count(record.startedAtMs, recoveryEndMs) * 1000) / Math.max(1, record.durationMs);
  const steps: Record<string, number> = {};
  for (const step of record.steps) steps[step.step] = round(step.durationMs / 1000, 3);
  const ratio = (rate: number): number => (baselineRate === 0 ? 0 : round(rate / baselineRate, 3));
  return {
    replica: replicaId(replica),
    recovery_s: round(record.durationMs / 1000, 3),
    transfer_s: steps['transferring-state'] ?? 0,
    throughput_ratio: ratio(duringRate),
    throughput_ratio_during_preparation: ratio(preparationRate),
    steps_s: steps,
    baseline_ops_s: round(baselineRate, 1),
    operations_lost: Math.round(((baselineRate - duringRate) * record.durationMs) / 1000),
    during_recovery_ops_s: round(duringRate, 1),
  };
}

export async function runRecoveryBench(options: RecoveryBenchOptions): Promise<RecoveryBenchResult> {
  const directory = mkdtempSync(join(tmpdir(), 'phalanx-bench-recovery-'));
  const basePort = await freePortRange(301 + N);
  const totalClients = LOAD_CLIENTS + options.workloadClients;
  // The first slots start once the state is surely loaded (generous: slots 1..5 leave more slack).
  const loadBudgetMs = 30_000 + options.stateMb * 400;
  const originMs = Date.now() + loadBudgetMs;
  const { configPath } = await generateCluster({
    directory,
    f: 1,
    k: 1,
    basePort,
    clients: ['admin'],
    benchClients: totalClients,
    dashboardPort: 0,
    recovery: { recoveryBoundMs: options.recoveryBoundMs, periodMs: PERIOD_MS, scheduleOriginMs: originMs },
  });
  const config = await loadCheckedClusterConfig(configPath);
  await signCodeManifestFor(config);
  const cluster = new LocalCluster({
    config,
    entryPoint: cliEntryPoint(),
    logLevel: process.env.PHALANX_BENCH_LOG_LEVEL ?? 'warn',
  });
  const clients: PhalanxClient[] = [];
  let workloadRunning = true;
  const workloads: Promise<void>[] = [];
  try {
    await cluster.startAll();
    await cluster.waitUntilReady(120_000);
    const connect = async (index: number): Promise<KvClient> => {
      const kv = await connectBenchClient(config, index);
      clients.push(kv.client);
      return kv;
    };

    // 1. The state: M MB of values, written by a few clients in parallel.
    const loadStarted = performance.now();
    const values = Math.ceil((options.stateMb * 1024 * 1024) / LOAD_VALUE_BYTES);
    const value = new Uint8Array(LOAD_VALUE_BYTES);
    for (let index = 0; index < value.length; index++) value[index] = (index * 31 + 7) & 0xff;
    let next = 0;
    const loaders = await Promise.all(Array.from({ length: LOAD_CLIENTS }, (_, index) => connect(index)));
    await Promise.all(
      loaders.map(async (kv) => {
        while (next < values) {
          const key = `state/${next++}`;
          await kv.put(key, value);
        }
      }),
    );
    const loadS = (performance.now() - loadStarted) / 1000;
    options.log(`loaded ${options.stateMb} MB (${values} values) in ${round(loadS, 1)} s`);

    // 2. A steady workload of small writes, recorded.
    const completions = new CompletionLog();
    for (let index = 0; index < options.workloadClients; index++) {
      const kv = await connect(LOAD_CLIENTS + index);
      workloads.push(
        (async () => {
          let counter = 0;
          while (workloadRunning) {
            try {
              await kv.put(`workload/${index}/${counter++ % 64}`, new Uint8Array(16));
              completions.times.push(Date.now());
            } catch {
              if (workloadRunning) completions.errors++;
            }
          }
        })(),
      );
    }

    // 3. Consecutive proactive slots, each with a whole baseline window before its preparation.
    const schedule = scheduleOf(config);
    const beforeSlotMs = STANDBY_LEAD_MS + options.baselineMs;
    let slot = slotAt(schedule, Math.max(originMs, Date.now() + beforeSlotMs));
    if (slot.kind !== 'proactive' || slot.startMs < Date.now() + beforeSlotMs)
      slot = slotAt(schedule, slot.endMs);
    const measured: SlotMeasurement[] = [];
    while (measured.length < options.slots) {
      if (slot.kind !== 'proactive')
        throw new Error(
          `loading took too long (${round(loadS, 1)} s): the proactive slots have passed; use a smaller --state-mb`,
        );
      measured.push(await measureSlot(cluster, slot, completions, options));
      slot = slotAt(schedule, slot.endMs);
    }
    // Let the workload run a moment past the last recovery so its window is complete.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    workloadRunning = false;
    const worst = measured.reduce((a, b) => (b.throughput_ratio < a.throughput_ratio ? b : a));
    return {
      state_mb: options.stateMb,
      recovery_s: Math.max(...measured.map((entry) => entry.recovery_s)),
      transfer_s: Math.max(...measured.map((entry) => entry.transfer_s)),
      throughput_ratio_during_recovery: worst.throughput_ratio,
      throughput_ratio_during_preparation: Math.min(
        ...measured.map((entry) => entry.throughput_ratio_during_preparation),
      ),
      steps_s: worst.steps_s,
      baseline_ops_s: worst.baseline_ops_s,
      during_recovery_ops_s: worst.during_recovery_ops_s,
      operations_lost: Math.max(...measured.map((entry) => entry.operations_lost)),
      load_s: round(loadS, 1),
      recovered_replica: worst.replica,
      recoveries: measured,
      recovery_bound_s: options.recoveryBoundMs / 1000,
      within_target: measured.every((entry) => entry.recovery_s < options.targetS),
      target_s: options.targetS,
      workload_errors: completions.errors,
    };
  } finally {
    workloadRunning = false;
    await Promise.allSettled(workloads);
    for (const client of clients) await client.close().catch(() => undefined);
    await cluster.stopAll();
    if (process.env.PHALANX_KEEP_BENCH_DIR === '1') options.log(`kept ${directory}`);
    else rmSync(directory, { recursive: true, force: true });
  }
}
